/*
 * mpi_internal.h - pexec-mpi's state and the messages between its processes
 * (internal to the files of core/mpi/, built with mpicc by `make mpi`).
 *
 *   main.c       main, the processes of a rank (its pool server, forked
 *                before MPI_Init), and the relays of ranks other than 0
 *   coord.c      rank 0's coordinator: the engine under the pexec job
 *   link.c       messages to and from the pool server (a socket) and the
 *                other ranks (non-blocking MPI)
 */
#ifndef PEXEC_MPI_INTERNAL_H
#define PEXEC_MPI_INTERNAL_H

#include <mpi.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "pexec.h"
#include "remote.h"

/* How far a run may get ahead of its oldest unfinished chunk: chunks out,
 * and bytes held (their items, and results waiting to go out in order). */
#define WINDOW_CHUNKS 1024u
#define WINDOW_BYTES ((uint64_t)256 << 20)
/* How long a signalled rank 0 waits for spans placed elsewhere to land. */
#define LANDING_GRACE_NS ((uint64_t)2000000000)

/* A rank's pool server, as rank 0 sees it. */
struct peer {
	unsigned jobs;       /* its workers */
	char host[64];
	int hello;           /* its HELLO came */
	int running;         /* BEGIN sent, DONE not yet back */
	int heard;           /* a run by spans: it answered BEGIN (so it has
	                      * read the probe file) */
	uint64_t inflight;   /* items sent whose results are not back */
	uint64_t done_items; /* this run */
	uint64_t first_ns;   /* when this run's first chunk went */
	struct pexec__done counters;
};

/* A chunk handed out: its CHUNK message (kept for the items' bytes) and,
 * once back, its RESULTS payload. */
struct chunk {
	int used;
	int peer;
	uint64_t seq, first;
	uint32_t count;
	pexec_buf msg;
	char *results;
	size_t results_len;
	/* A run by spans: its input bytes (counted as held), whether it is the
	 * input's last, its SPAN_DONE in `results`, and its place awaiting
	 * the server's LANDED. */
	size_t span_len;
	int last, done, placing;
	uint64_t ticket;
};

/* An MPI send in flight and the buffer it owns. */
struct send {
	MPI_Request req;
	char *buf;
};

struct mpi {
	int rank, nranks;
	pid_t server;
	int fd;              /* the socket to this rank's server */
	int cancel_w;        /* its cancel pipe */
	int saved_stderr;    /* ranks other than 0 are quiet while options parse */

	pexec_buf in;        /* from the server, from in_at on not yet taken */
	size_t in_at;
	pexec_buf out;       /* to the server, from out_at on not yet written */
	size_t out_at;
	int server_gone;

	struct send *sends;
	size_t nsends, sends_cap;
	MPI_Request *reqs;   /* scratch for Testsome */
	int *done_idx;
	size_t reqs_cap;

	/* Rank 0: the peers (index: rank) and the run in progress. */
	struct peer *peers;
	int hellos;
	const pexec_descriptor *d;
	const pexec_opts *opts;
	pexec_next_fn next;
	void *next_ctx;
	pexec_result_fn sink;
	void *sink_ctx;
	pexec_stats *stats;
	pexec_error *err;
	pexec_code stop;
	int source_done;
	int cancelled;       /* a signal: remote ranks may be gone already */
	struct chunk *slots; /* by seq % WINDOW_CHUNKS */
	uint64_t next_seq, deliver_seq, delivered;
	uint64_t next_index;
	uint64_t buffered;   /* bytes held: chunks out, and results waiting for order */
	int running;         /* peers whose DONE is awaited */
	pexec_instance *fold; /* --reduce: the chunks' partial results folded */
	pexec_buf msgbuf;    /* failure messages, NUL-terminated */
	struct iovec *texts, *inputs; /* a run of successes for the batch sink */
	size_t iov_cap;
	uint64_t next_tick;
	int warned_binding;
	/* A run by spans (coord_spans.c): the job's spans, the probe file that
	 * tells servers they may write the output, spans placed whose LANDED
	 * is awaited, and malformed input seen (--unordered: the first in
	 * input order of those that come is the run's error). */
	const pexec_spans *spans;
	char *probe;
	int unheard;         /* servers that have not answered BEGIN yet */
	unsigned char token[16];
	double out_per_item;
	uint64_t placing;
	uint64_t error_seq;    /* the first malformed span by seq; UINT64_MAX: none */
	pexec_buf error_msg;
	/* For PEXEC_MPI_STATS: what rank 0 moved. */
	uint64_t chunks_out, bytes_out, bytes_in;
};

/* ---- link.c ---- */


/* Sends a message to rank `to`'s pool server (this rank's: through the
 * socket): the header, then the payload.  Returns 0, or -1. */
int pexec__mpi_send(struct mpi *m, int to, uint32_t type, uint32_t count, uint64_t seq,
                    uint64_t first, const void *payload, size_t len);
/* Sends a message built whole in `buf` (header first, malloc'd, taken
 * over) to rank `to`'s server.  0, or -1. */
int pexec__mpi_send_built(struct mpi *m, int to, char *buf, size_t len);
/* MPI_Isend of `buf` (malloc'd, taken over) to rank `to`. */
int pexec__mpi_isend(struct mpi *m, int to, char *buf, size_t len);
/* Frees the buffers of the MPI sends that have completed. */
void pexec__mpi_sends_progress(struct mpi *m);
/* Writes to the pool server what its socket takes now. */
void pexec__mpi_flush(struct mpi *m);
/* Reads what the pool server has sent; returns 1 for bytes, 0 for none. */
int pexec__mpi_fill(struct mpi *m);
/* The next whole message from the pool server (pexec__msg_take). */
int pexec__mpi_take_local(struct mpi *m, struct pexec__msg *h, char **payload);
/* The next message from rank `from` (or MPI_ANY_SOURCE): 1 with the whole
 * message in *buf (malloc'd: header, then payload) and its sender in *src,
 * 0 for none, -1 for a malformed one. */
int pexec__mpi_take_remote(int from, char **buf, int *src);
/* Sleeps until the socket (or `extra`) has something, or for the idle step
 * between MPI probes, which grows in *idle while nothing happens. */
void pexec__mpi_wait(struct mpi *m, int extra, long *idle);
/* Why this rank's pool server is gone (its socket reached EOF), once reaped. */
void pexec__mpi_server_death(struct mpi *m, char *buf, size_t size);

/* ---- coord.c ---- */

/* Stops the run with `code` and a message, unless it is stopping already;
 * returns the run's code. */
pexec_code pexec__coord_fail(struct mpi *m, pexec_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "rank R (host)", for messages. */
const char *pexec__coord_peer_name(struct mpi *m, int r, char *buf, size_t size);
/* Items rank `r` should hold now: what it finishes in a moment's work. */
uint64_t pexec__coord_peer_want(const struct peer *p, uint64_t now);
/* The running rank that holds the least of what it should, or -1 when
 * every one holds enough. */
int pexec__coord_hungriest(const struct mpi *m, uint64_t now);
/* The slot of chunk `seq`. */
struct chunk *pexec__coord_slot(struct mpi *m, uint64_t seq);
/* Frees a chunk's slot and counts it delivered. */
void pexec__coord_release(struct mpi *m, struct chunk *c);

/* pexec_run()'s contract across the ranks (a pexec_engine_fn). */
pexec_code pexec__mpi_coordinate(void *ctx, const pexec_loaded_plugin *plugin,
                                 const pexec_opts *opts, pexec_next_fn next, void *next_ctx,
                                 pexec_result_fn sink, void *sink_ctx, pexec_stats *stats,
                                 pexec_error *err);

/* pexec_run_spans()'s contract across the ranks (a pexec_span_engine_fn). */
pexec_code pexec__mpi_coordinate_spans(void *ctx, const pexec_loaded_plugin *plugin,
                                       const pexec_opts *opts, const pexec_spans *spans,
                                       pexec_stats *stats, pexec_error *err);

/* ---- coord_spans.c ---- */

/* BEGIN's payload for a run by spans (malloc'd, in *buf), after the probe
 * file is written where servers could write the output.  0, or -1. */
int pexec__mpi_spans_begin(struct mpi *m, char **buf, size_t *len);
/* Hands out spans to the ranks that have room. */
void pexec__mpi_spans_dispatch(struct mpi *m);
/* SPAN_DONE and LANDED from rank `r` (`owned`: as on_message's). */
void pexec__mpi_on_span_done(struct mpi *m, int r, const struct pexec__msg *h, char *payload,
                             char *owned);
void pexec__mpi_on_landed(struct mpi *m, int r, const struct pexec__msg *h);
/* Rank `r`'s server has said DONE: its spans still placed will not land. */
void pexec__mpi_spans_abandon(struct mpi *m, int r);
/* Malformed input of an --unordered run, once every span out is back. */
void pexec__mpi_spans_settle(struct mpi *m);
/* Rank `r`'s server answered BEGIN: the probe file goes once all have. */
void pexec__mpi_spans_heard(struct mpi *m, int r);
/* The probe file removed. */
void pexec__mpi_spans_end(struct mpi *m);

#endif /* PEXEC_MPI_INTERNAL_H */
