/*
 * pool_internal.h - what the files of the process pool share, and nothing
 * outside them may use: its tunables, the pool, worker, chunk and task
 * structs, and the pexec__pool_* functions one file calls in another.
 *
 *   pool.c         the run: setup, the poll() loop, dispatch, --timeout
 *                  deadlines, shutdown (its header tells how the pool works)
 *   pool_worker.c  a worker's process and pipes: fork, the child's setup,
 *                  reaping; frames read and written; the result arena
 *   pool_chunk.c   the reorder window: chunks built from the source, split
 *                  for item-by-item results, emitted to the sink in order
 *   pool_fault.c   a worker lost: blame for the item it was on, the rest
 *                  sent out again; retired workers replaced
 *
 * All of it runs in the parent, on the loop's one thread.  An error that
 * ends the run is mostly recorded in p->stop (with p->err) rather than
 * returned up the stack: callers check p->stop.
 */
#ifndef PEXEC_POOL_INTERNAL_H
#define PEXEC_POOL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "pexec.h"
#include "pool.h"
#include "worker.h"

#define CHUNK_BYTES ((size_t)128 << 10)      /* items per chunk, in bytes */
#define CHUNK_MAX_ITEMS 4096u
#define CHUNK_TARGET_NS 10000000.0           /* 10 ms of work per chunk */
#define CHUNK_GROWTH 4u
#define PREFETCH_BELOW_NS 20000000.0         /* queue a 2nd chunk under 20 ms */
#define MAX_INFLIGHT 2
#define READ_MIN ((size_t)64 << 10)
#define PIPE_SIZE (1 << 20)
#define SHUTDOWN_GRACE_MS 5000
#define EXIT_WAIT_MS 200                     /* for a worker whose pipe closed */
/* Result arenas: shared memory each worker serializes into (worker.h).  A
 * chunk's results are bounded by CHUNK_MAX_ITEMS, so 2 MiB holds several
 * frames; bigger frames go through the pipe.  The parent maps every arena,
 * so they add ARENA_SIZE per worker to its resident memory at most. */
#define ARENA_SIZE ((size_t)2 << 20)

enum chunk_state { CHUNK_FREE = 0, CHUNK_OPEN, CHUNK_DONE };

/* Who ran items and when: for a whole chunk, `started` is when it began and
 * `seconds` each item's share of its time. */
struct item_meta {
	int pid;
	double started;
	double seconds;
};

struct chunk {
	enum chunk_state state;
	uint64_t seq;
	uint64_t first;      /* index of its first item */
	uint32_t count;
	uint32_t pending;    /* items with no result or failure yet */
	pexec_buf items;     /* the CHUNK frame, kept until the results are emitted */
	pexec_buf results;   /* the RESULTS frame; or, once split, records appended */
	const char *res;     /* the RESULTS frame as received: in `results`, or in */
	size_t res_len;      /* a worker's arena until released */
	struct worker *arena_owner; /* whose arena `res` lies in; NULL: none */
	uint64_t arena_frame;       /* its number there */
	/* Once a fault splits the chunk, per item: */
	int split;
	size_t *item_off;    /* offset of its entry in `items` */
	size_t *rec_off;     /* offset of its record in `results`; SIZE_MAX: none yet */
	unsigned *tries;     /* its runs that ended: with a result, or its worker's death */
	struct item_meta *meta; /* who ran it, when */
	uint32_t arrays_cap;
	/* Who ran a chunk that answered whole, and when (pexec_result). */
	struct item_meta whole;
};

struct task {
	struct chunk *chunk;
	uint32_t n;          /* items */
	uint32_t *pos;       /* their positions in the chunk; NULL: the whole chunk */
	int isolating;       /* one item sent alone to learn whether it kills workers */
	pexec_buf frame;     /* the CHUNK frame of a partial task */
};

enum worker_state { WORKER_GONE = 0, WORKER_STARTING, WORKER_READY, WORKER_RETIRING };

struct worker {
	enum worker_state state;
	pid_t pid;
	int to_fd;           /* tasks go out here (non-blocking) */
	int from_fd;         /* results come back here (non-blocking) */
	struct task inflight[MAX_INFLIGHT];
	unsigned ninflight;
	unsigned nsent;      /* inflight[0..nsent) are fully written */
	size_t sent_off;     /* bytes of inflight[nsent] written */
	uint64_t frames_done;   /* tasks answered */
	uint64_t items_given;   /* for --max-tasks-per-worker */
	const char *kill_reason; /* set when the pool killed it */
	uint64_t spawned_ns;     /* when it was forked: --timeout covers init too */
	char timeout_msg[64];
	pexec_buf in;        /* bytes received, not yet a whole frame */
	struct pexec__progress *progress;
	/* The result arena of this worker slot, shared by its successive
	 * processes.  Frames are numbered as announced; `ends` holds, for
	 * frames not yet released, where each ends (0 once released, until
	 * the ones before it are too, since the tail only moves in order). */
	struct pexec__arena arena;
	uint64_t arena_end;      /* byte count at the end of the last announced frame */
	uint64_t arena_tail;     /* bytes released */
	uint64_t frames_announced, frames_released;
	uint64_t *ends;          /* ring of nends, by frame number */
	unsigned nends;
};

struct pool {
	const pexec_descriptor *desc;
	const pexec_opts *opts;
	pexec_next_fn next;
	void *next_ctx;
	pexec_result_fn sink;
	void *sink_ctx;
	pexec__fold_fn fold;      /* --reduce: folds results in input order */
	void *fold_ctx;
	pexec_stats *stats;
	pexec_error *err;

	struct worker *workers;
	unsigned nworkers;
	struct pexec__progress *progress; /* shared with the workers */
	struct chunk *slots;
	unsigned nslots;
	unsigned nbusy;      /* slots not FREE */
	uint64_t next_seq;   /* the next chunk to build */
	uint64_t emit_seq;   /* ordered mode: the next chunk to hand over */
	uint64_t next_index; /* the next item's index */
	int source_done;
	int source_wait;     /* the source said PEXEC_NEXT_WAIT: poll source_fd */
	pexec_code stop;     /* set: stop dispatching and end the run with it */

	struct task *queue;  /* tasks to send again, oldest first */
	size_t queue_len, queue_cap;
	unsigned fruitless_deaths; /* worker deaths since an item last completed */
	int emitted;         /* results handed over since the last flush */

	struct iovec *texts, *inputs; /* batch_sink scratch, iov_cap each */
	size_t iov_cap;

	double item_ns;      /* moving average of worker time per item; 0: unknown */
	uint32_t chunk_items;
	uint64_t timeout_ns;
	uint64_t tick_ns, next_tick;
	pid_t parent;
};

/* ---- pool.c ---- */

/* Whether items remain to be built or to be answered. */
int pexec__pool_work_remains(const struct pool *p);
/* Frees a task's position list and partial frame and zeroes it; its chunk
 * is not touched. */
void pexec__pool_task_release(struct task *t);

/* ---- pool_worker.c ---- */

/* Forks a process for worker slot `w`, with fresh pipes; returns PEXEC_OK,
 * or PEXEC_ESYS with p->err filled. */
pexec_code pexec__pool_worker_spawn(struct pool *p, struct worker *w);
/* Closes the parent's ends of the worker's pipes (idempotent). */
void pexec__pool_worker_close(struct worker *w);
/* Closes the pipes and collects the worker, killing it after `grace_ms`;
 * returns its wait status.  *by_itself (may be NULL): it ended unkilled. */
int pexec__pool_worker_reap(struct worker *w, int grace_ms, int *by_itself);
/* Reads what the worker sent and handles every whole frame; on EOF or a
 * protocol error, ends the worker (worker_lost or worker_retired). */
void pexec__pool_worker_read(struct pool *p, struct worker *w);
/* Writes as much of the worker's unsent tasks as its pipe takes now. */
void pexec__pool_worker_write(struct worker *w);
/* Releases frame `frame` of the worker's result arena (in any order; the
 * tail the worker sees moves only past frames released in order). */
void pexec__pool_arena_release(struct worker *w, uint64_t frame);

/* ---- pool_chunk.c ---- */

/* Whether the reorder window has room for one more chunk. */
int pexec__pool_window_has_room(const struct pool *p);
/* Builds the next chunk from the source into a free slot, at most `limit`
 * items (0: no limit); NULL when there is none to send (no free slot, end of
 * input, or an error that set p->stop). */
struct chunk *pexec__pool_chunk_build(struct pool *p, uint64_t limit);
/* Readies a chunk for item-by-item records (idempotent); -1 with p->stop. */
int pexec__pool_chunk_split(struct pool *p, struct chunk *c);
/* The bytes of item `i` of a split chunk, valid while its items are. */
void pexec__pool_chunk_item(const struct chunk *c, uint32_t i, const char **data, size_t *len);
/* Stores item `i`'s record in a split chunk; -1 with p->stop (out of memory). */
int pexec__pool_chunk_put_record(struct pool *p, struct chunk *c, uint32_t i, int ok,
                                 pexec_stage stage, const char *data, size_t len);
/* Once no item of `c` is pending, marks it done and emits what is ready. */
void pexec__pool_chunk_check_done(struct pool *p, struct chunk *c);

/* ---- pool_fault.c ---- */

/* Builds the CHUNK frame of a task of some items of a chunk; -1 with p->stop. */
int pexec__pool_task_build_frame(struct pool *p, struct task *t);
/* A worker ended unasked (died, was killed, broke the protocol): reaps it,
 * blames the item it was on, queues the rest again and starts a replacement
 * while work remains.  One that ends during init stops the run. */
void pexec__pool_worker_lost(struct pool *p, struct worker *w);
/* A worker told to leave (--max-tasks-per-worker) ended: reaps it and starts
 * a replacement while work remains. */
void pexec__pool_worker_retired(struct pool *p, struct worker *w);

#endif
