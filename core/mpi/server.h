/*
 * server.h - a rank's pool server (remote.h) as its two files share it:
 * server.c serves runs item by item, server_spans.c runs by spans.
 */
#ifndef PEXEC_MPI_SERVER_H
#define PEXEC_MPI_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "pexec.h"
#include "remote.h"

/* A chunk given to the pool whose results are being gathered. */
struct segment {
	uint64_t seq, first;
	uint64_t local_first;      /* its first item's index in this server's run */
	uint32_t count;
	uint32_t done;             /* items accounted for */
	uint32_t emitted;          /* records written */
};

/* A span's output the server writes itself once it is placed. */
struct held {
	uint64_t seq;
	char *bytes;
	size_t len;
};

struct server {
	int fd, cancel_fd;
	unsigned flags;            /* PEXEC__RUN_*, from BEGIN */

	pexec_buf in;              /* bytes read, from in_at on not yet taken */
	size_t in_at;
	const char *cur, *cur_end; /* the chunk being given out */
	uint32_t cur_left;
	int cut;                   /* folding: a chunk was given out whole */
	int ended;                 /* END seen: the source is done */
	uint64_t local_next;       /* the run's index of the next chunk's first item */

	struct segment *segs;      /* chunks given out, oldest first */
	size_t segs_head, segs_len, segs_cap;
	pexec_buf out;             /* the head chunk's RESULTS message */

	/* --reduce: the pool hands over its partial results (workers fold, as
	 * in pexec, so a fault in reduce fails its item), and each chunk's are
	 * folded here into the chunk's own partial result (remote.h). */
	pexec_instance *fold;

	/* A run by spans: its failures gathered for the head span, and where
	 * this server writes output itself (out_fd, with the lock file held
	 * open at keep_fd), the outputs waiting for their place. */
	pexec_buf fails;
	uint32_t nfails;
	int out_fd, keep_fd;
	struct held *held;
	size_t nheld, held_cap;
	uint64_t *unsynced;        /* spans written, their LANDED awaiting a sync */
	size_t nunsynced, unsynced_cap;
	uint64_t synced_ns;        /* when the output was last synced */
	int stopped;               /* STOP seen */
	int write_error;           /* errno of a write that failed */
};

/* Writes all of `data` to the socket, waiting where it is full. */
int pexec__server_send_all(int fd, const void *data, size_t len);
/* One message: the header, then the payload.  0, or -1. */
int pexec__server_send(int fd, uint32_t type, uint32_t count, uint64_t seq, uint64_t first,
                       const void *payload, size_t len);
/* The next whole message read (pexec__msg_take). */
int pexec__server_take(struct server *s, struct pexec__msg *h, const char **payload);
/* Reads what the socket has (waiting when `block`), first moving the
 * untaken bytes to the front: only when nothing points into the buffer.
 * 1 for bytes read, 0 for none yet, -1 at EOF or on an error. */
int pexec__server_fill(struct server *s, int block);
/* The next whole message, reading what the socket has without waiting:
 * 1, 0 for none yet, or PEXEC__SERVER_LOST (EOF, an error) or
 * PEXEC__SERVER_MALFORMED. */
#define PEXEC__SERVER_LOST (-1)
#define PEXEC__SERVER_MALFORMED (-2)
int pexec__server_next(struct server *s, struct pexec__msg *h, const char **payload);
/* What a pexec_source_fn returns for pexec__server_next's `got` < 0, with
 * `err` said. */
int pexec__server_next_failed(int got, pexec_error *err);
/* Notes a chunk of message `h` given to the pool.  0, or -1. */
int pexec__server_push_segment(struct server *s, const struct pexec__msg *h);

/* Reads the cancel pipe empty. */
void pexec__server_drain(int fd);

/* server_spans.c: one run by spans, from BEGIN (its payload) to DONE. */
int pexec__server_run_spans(struct server *s, const pexec_loaded_plugin *plugin,
                            const pexec_opts *opts, const char *begin, size_t begin_len);

#endif /* PEXEC_MPI_SERVER_H */
