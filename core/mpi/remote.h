/*
 * remote.h - a pool served over a byte stream: pexec-mpi's pool servers
 * (server.c) and the messages they exchange with rank 0.
 *
 * pexec-mpi keeps MPI out of the processes that fork: on every rank a pool
 * server (pexec__serve) is forked before MPI_Init and talks to its rank's
 * MPI process over a socketpair.  The MPI process relays messages between the
 * socket and rank 0, whose coordinator (core/mpi/coord.c) reads the input, hands
 * out chunks, and puts the results back in order.  Messages are the same
 * bytes on the socket and inside MPI: a fixed header and a payload, in host
 * byte order (the ranks of one run share an architecture).
 *
 *   coordinator -> server
 *     BEGIN   a run starts; count: PEXEC__RUN_* flags.
 *     CHUNK   seq: the chunk's number, first: its first item's index, count
 *             items, each [u32 len][len bytes].
 *     END     no more chunks in this run: finish them, then DONE.
 *     STOP    stop this run at once (with a byte on the server's cancel
 *             pipe, so that it does not wait for its workers): then DONE.
 *     QUIT    leave (between runs).
 *   and, in a run by spans (BEGIN with PEXEC__RUN_SPANS):
 *     SPAN    seq, first as CHUNK's, count: its items (the last span's a
 *             guess); payload: struct pexec__span_wire, then the span's
 *             bytes.
 *     PLACE   seq: a span the server holds the output of; first: the
 *             offset to write it at; count: how many of its first bytes to
 *             leave out.  The server answers LANDED.
 *   server -> coordinator
 *     HELLO   once, at start: count: its workers; first: the CPUs online on
 *             its node (high 32 bits) and its pid; payload: its host name.
 *             With seq != 0 it could not start: seq is the pexec_code and
 *             the payload the message.
 *     RESULTS seq, first, count as in the CHUNK; `count` records, each
 *             [u32 len][u8 flags][u8 stage][u8 status][u8 0], then, with
 *             PEXEC__REC_META, [u32 attempts][i32 pid][f64 started]
 *             [f64 seconds], then `len` bytes: a result's JSON text or a
 *             failure's message.  A success run once, untimed, is 8 bytes
 *             and its text.  Under --reduce the successes carry no
 *             text and one more record follows: the fold of the chunk's
 *             results (PEXEC__REC_PARTIAL).
 *     DONE    the run ended: seq: its pexec_code; payload: struct
 *             pexec__done, then the error message when it failed.
 *   and, in a run by spans:
 *     SPAN_DONE  seq, first as the SPAN's, count: its items; payload:
 *             struct pexec__span_done, its failure records (struct
 *             pexec__span_fail, message, input), the input error's
 *             message, then the output bytes unless the server holds them
 *             (PEXEC__SPAN_HELD: it writes them itself at the PLACE).
 *     LANDED  seq: a placed span is on the file; count: 0, or the errno
 *             the write failed with.
 *
 * A run by spans starts with BEGIN's payload, struct pexec__span_begin and
 * its four strings.  Where the output is a file that the servers may open
 * too (out_path), the coordinator writes a token into a probe file beside
 * it; a server that opens both and reads the token back holds its spans'
 * output and writes it itself, so that rank 0 moves no result byte.
 */
#ifndef PEXEC_REMOTE_H
#define PEXEC_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "pexec.h"

enum pexec__msg_type {
	PEXEC__MSG_BEGIN = 1,
	PEXEC__MSG_CHUNK,
	PEXEC__MSG_END,
	PEXEC__MSG_STOP,
	PEXEC__MSG_QUIT,
	PEXEC__MSG_HELLO,
	PEXEC__MSG_RESULTS,
	PEXEC__MSG_DONE,
	PEXEC__MSG_SPAN,
	PEXEC__MSG_PLACE,
	PEXEC__MSG_SPAN_DONE,
	PEXEC__MSG_LANDED,
	PEXEC__MSG_LAST
};

struct pexec__msg {
	uint32_t type;
	uint32_t count;
	uint64_t seq;
	uint64_t first;
	uint64_t len;       /* payload bytes after the header */
};
#define PEXEC__MSG_HEADER ((size_t)sizeof(struct pexec__msg))
/* The largest payload a side accepts. */
#define PEXEC__MSG_MAX ((uint64_t)1 << 31)

/* BEGIN flags. */
#define PEXEC__RUN_TIMES 1u    /* every record carries its timing */
#define PEXEC__RUN_SPANS 2u    /* a run by spans (pexec_spans) */

/* A run by spans: BEGIN's payload, then the input's name, the output's
 * path (for servers that may write it), the probe file's and the lock
 * file's (see above), each `*_len` bytes. */
struct pexec__span_begin {
	uint32_t in_format, out_format;
	uint32_t drop_null, hash;
	uint8_t token[16];
	uint32_t name_len, out_path_len, probe_len, keep_len;
};

/* A SPAN's head: pexec_span's fields that are not its bytes. */
struct pexec__span_wire {
	uint64_t offset, line, line_start;
	uint32_t first, last;
};

/* A SPAN_DONE's head. */
struct pexec__span_done {
	uint64_t out_len;   /* the output's bytes */
	uint64_t hash;
	uint32_t written;
	uint32_t failures;  /* records that follow */
	uint32_t error_len; /* malformed input: the message, and nothing else */
	uint32_t flags;     /* PEXEC__SPAN_HELD */
};
#define PEXEC__SPAN_HELD 1u

/* One failed item of a span, then `message_len` and `input_len` bytes. */
struct pexec__span_fail {
	uint32_t pos;       /* in the span */
	uint8_t status, stage, pad[2];
	uint32_t attempts;
	int32_t pid;
	double started, seconds;
	uint32_t message_len, input_len;
};

/* One result of a RESULTS payload, decoded. */
struct pexec__record {
	uint32_t len;
	uint8_t flags;      /* PEXEC__REC_* */
	uint8_t stage;      /* pexec_stage of a failure */
	uint8_t status;     /* pexec_status */
	uint8_t pad;
	uint32_t attempts;
	int32_t pid;
	double started;
	double seconds;
};
#define PEXEC__REC_OK 1u
#define PEXEC__REC_PARTIAL 2u  /* the chunk's fold (--reduce) */
#define PEXEC__REC_META 4u     /* attempts, pid and times follow (else 1, 0, unknown) */

/* Appends `rec` and its `rec->len` bytes in the wire form above; returns 0,
 * or -1 out of memory. */
int pexec__record_put(pexec_buf *out, const struct pexec__record *rec, const char *data);
/* Decodes the record at *p (before `end`): returns 0 with *rec and *data
 * set and *p moved past it, or -1 for a torn one. */
int pexec__record_get(const char **p, const char *end, struct pexec__record *rec,
                      const char **data);

/* A finished run's counters, from the server's pexec_stats. */
struct pexec__done {
	uint64_t workers_started;
	uint64_t workers_lost;
	uint64_t retried;
	uint64_t timed_out;
};

/* Serves runs over `fd` (a stream socket) until QUIT or EOF: loads the
 * plugin, says HELLO, then for each BEGIN runs pexec_run() with `opts` over
 * the chunks that come.  `cancel_fd` gets a byte with every STOP.  Returns
 * the exit status for the server process: 0 after QUIT, 1 otherwise. */
int pexec__serve(const char *plugin, const char *plugin_dir, const pexec_opts *opts, int fd,
                 int cancel_fd);

/* CLOCK_MONOTONIC in ns (link.c; rank 0 and the servers both use it). */
uint64_t pexec__mpi_now_ns(void);

/* Sets err->msg from a printf format; returns `code` for tail calls. */
pexec_code pexec__mpi_fail(pexec_error *err, pexec_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Writes all `len` bytes at `offset` of `fd`: 0, or -1 with errno set
 * (EIO for a write that made no progress). */
int pexec__mpi_pwrite_all(int fd, const char *buf, size_t len, uint64_t offset);

/* Whether `h` is a message a peer may send: a known type, a payload under
 * the limit. */
int pexec__msg_valid(const struct pexec__msg *h);
/* Takes the next whole message from the bytes `buf[*at..len)`: returns 1
 * with *h and *payload set (pointing into buf) and *at moved past it, 0 when
 * it has not all come yet, -1 for one that is not valid. */
int pexec__msg_take(const char *buf, size_t len, size_t *at, struct pexec__msg *h,
                    const char **payload);

#endif /* PEXEC_REMOTE_H */
