/*
 * internal.h - what the files of the process pool share, and nothing
 * outside them may use: its tunables, the pool, worker, chunk and task
 * structs, and the pexec__pool_* functions one file calls in another.
 *
 *   loop.c    the run: setup, the loop in phases, dispatch, --timeout
 *             deadlines, shutdown (its header tells how the pool works)
 *   fault.c   a worker that ended unasked: the item it was on blamed, the
 *             rest of what it held sent out again
 *   worker.c  a worker's process and pipes: fork and the child's setup,
 *             noticing its end, reaping; frames read (and their results
 *             recorded) and tasks written
 *   chunk.c   the reorder window: chunks built from the source, results
 *             recorded, done chunks handed to the sink in order
 *   arena.c   the shared-memory result arenas, both sides of them
 *   child.c   the worker process itself: init, then chunks in, results out
 *   contain.c what plugins start stays in the run: the subreaper, adopted
 *             processes, the warden (contain.h)
 *   span.c    chunks that are spans of the input: built, taken, handed over
 *             whole, or turned into items after a fault
 *
 * Calls go one way: loop -> fault, worker, chunk, arena, contain; fault ->
 * chunk; worker -> chunk, span, arena, contain; chunk -> span, arena;
 * child -> arena.
 *
 * All of it but child.c runs in the parent, on the loop's one thread.  An
 * error that ends the run is recorded in p->stop (with p->err) rather than
 * returned up the stack: callers check p->stop.
 */
#ifndef PEXEC_POOL_INTERNAL_H
#define PEXEC_POOL_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "contain.h"
#include "frame.h"
#include "split/split.h"
#include "pexec.h"
#include "pool.h"

#define CHUNK_BYTES ((size_t)128 << 10)      /* items per chunk, in bytes */
#define CHUNK_MAX_ITEMS 4096u
#define SPAN_MAX_ITEMS 65536u                /* a span's, where its results are small */
#define SPAN_OUT_TARGET ((double)(ARENA_SIZE / 8)) /* a span's result bytes, about */

#define CHUNK_TARGET_NS 10000000.0           /* 10 ms of work per chunk */
#define CHUNK_GROWTH 4u
#define PREFETCH_BELOW_NS 20000000.0         /* queue a 2nd chunk under 20 ms */
#define MAX_INFLIGHT 2
/* The reorder window: WINDOW_BASE chunks at least; beyond, up to
 * WINDOW_PER_WORKER a worker while the slots hold under WINDOW_BYTES, so a
 * slow chunk at the head does not idle the other workers. */
#define WINDOW_BASE_PER_WORKER 4u
#define WINDOW_PER_WORKER 512u
#define WINDOW_BYTES ((size_t)32 << 20)
#define READ_MIN ((size_t)64 << 10)
#define PIPE_SIZE (1 << 20)
#define SHUTDOWN_GRACE_MS 5000
#define EXIT_WAIT_MS 200                     /* for a worker whose pipe closed */
#define NO_PIDFD_POLL_MS 20                  /* where pidfds are refused */
#define SWEEP_NS 1000000000ull               /* adopted processes reaped this often */
/* Result arenas: shared memory each worker serializes into.  A chunk's
 * results are bounded by CHUNK_MAX_ITEMS, so 2 MiB holds several frames;
 * bigger frames go through the pipe.  The parent maps every arena, so they
 * add ARENA_SIZE per worker to its resident memory at most. */
#define ARENA_SIZE ((size_t)2 << 20)

/* ---- memory shared between the parent and one worker ---- */

/* What a worker is doing (one per worker, on its own cache line).  The
 * worker only stores; the parent reads it to learn which item was running
 * when a worker died or overran --timeout, so that only that item is
 * blamed. */
struct pexec__progress {
	_Atomic uint64_t frames;  /* CHUNK frames the worker has begun */
	_Atomic uint32_t pos;     /* position of the current item in that frame */
	_Atomic uint32_t stage;   /* its pexec_stage; NONE between items */
	_Atomic uint64_t started; /* CLOCK_MONOTONIC ns it started (when timed) */
	/* The result arena (struct pexec__arena): counts of bytes ever used,
	 * the parent's releases, and where a new worker starts. */
	_Atomic uint64_t arena_tail;
	uint64_t arena_head;
	_Atomic uint64_t frame_started; /* CLOCK_MONOTONIC ns the current frame began */
	/* The stage an item sent alone was in when the plugin closed pexec's
	 * pipes (NONE: it did not). */
	_Atomic uint32_t lost_in;
	char pad[12];
};

/* A ring in shared memory into which a worker serializes its results, so
 * that result bytes never go through a pipe: the pipe only carries a
 * RESULTS_SHM notice of where the frame lies.  The worker owns the head, the
 * parent the tail (progress->arena_tail); frames are released in the order
 * they were written.  A frame that does not fit goes through the pipe
 * instead, so a full ring never makes anyone wait. */
struct pexec__arena {
	char *base;
	size_t size;
};

/* ---- the parent's records ---- */

enum chunk_state { CHUNK_FREE = 0, CHUNK_OPEN, CHUNK_DONE };

/* Who ran items and when: for a whole chunk, `started` is when it began and
 * `seconds` each item's share of its time. */
struct item_meta {
	int pid;
	double started;
	double seconds;
};

struct worker;

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
	/* A span of the input (span.c): `items` is its SPAN frame. */
	int span;
	int input_error;     /* its worker found the input malformed in it */
};

/* A worker's unit of work: a whole chunk, or some items of one. */
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
	pid_t pid;           /* also the process group of it and its descendants */
	int pidfd;           /* readable once it has ended; -1 where refused */
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
	/* What the last wait and read found: */
	int readable;        /* from_fd has bytes or its end */
	int exit_ready;      /* pidfd: the process has ended */
	int writable;
	int eof;             /* from_fd reached its end (or broke) */
	uint64_t eof_ns;
	int ended;           /* the process has ended and is reaped */
	int status;          /* its wait status, once ended */
	int closed;          /* killed for closing its pipe while alive */
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
	/* Chunks' output in this slot's arena that its worker is to write
	 * (WRITE), oldest first, and the orders not yet sent. */
	struct pending_write {
		uint64_t frame_no;
		uint64_t offset;     /* where in the output file */
		const char *out;     /* the bytes, in the arena */
		size_t len;
		uint64_t ticket;     /* the chunk's, for spans->landed */
	} *pw;
	size_t pw_head, pw_len, pw_cap;
	pexec_buf orders;        /* WRITE frames to send, from orders_off on */
	size_t orders_off;
};

struct pool {
	const pexec_descriptor *desc;
	const pexec_opts *opts;
	pexec_next_fn next;
	void *next_ctx;
	pexec_result_fn sink;
	void *sink_ctx;
	pexec__fold_fn fold;      /* --reduce: takes partial results in input order */
	void *fold_ctx;
	pexec_stats *stats;
	pexec_error *err;

	struct worker *workers;
	unsigned nworkers;
	struct pexec__progress *progress; /* shared with the workers */
	struct chunk *slots;
	unsigned nslots;
	unsigned window_base; /* chunks the window holds whatever their size */
	unsigned nbusy;      /* slots not FREE */
	uint64_t next_seq;   /* the next chunk to build */
	uint64_t emit_seq;   /* ordered mode: the next chunk to hand over */
	uint64_t next_index; /* the next item's index */
	unsigned ndone;      /* chunks DONE, not yet emitted */
	int source_done;
	int source_wait;     /* the source said PEXEC_NEXT_WAIT: poll source_fd */
	pexec_code stop;     /* set: stop dispatching and end the run with it */

	struct task *queue;  /* tasks to send again, oldest first */
	size_t queue_len, queue_cap;
	unsigned fruitless_deaths; /* worker deaths since an item last completed */
	int emitted;         /* results handed over since the last flush */

	char message[PEXEC_ERROR_MAX]; /* a failure's message, for the sink */
	struct iovec *texts, *inputs; /* batch_sink scratch, iov_cap each */
	size_t iov_cap;

	double item_ns;      /* moving average of worker time per item; 0: unknown */
	double out_per_item; /* of a span's output bytes per item, the same; 0: unknown */
	uint32_t chunk_items;
	uint64_t timeout_ns;
	uint64_t tick_ns, next_tick;
	pid_t parent;

	struct pexec__contain contain; /* what plugins start stays in the run */

	/* A run over spans (pexec__pool_run_spans); NULL: over items. */
	const pexec_spans *spans;
	pexec_spans child_spans; /* a worker's copy, its input fd its own */
	pexec__splitter *fragment;       /* to split a span a fault needs in items */
	pexec_buf layout;                /* a split span's output, laid out again */

	uint64_t next_sweep;
};

/* ---- fault.c ---- */

/* Settles what a worker that ended unasked held (it died, was killed, broke
 * the protocol): the item it was on is blamed, the rest go out again.  One
 * that ends during init stops the run. */
void pexec__pool_worker_lost(struct pool *p, struct worker *w);

/* ---- worker.c ---- */

/* Forks a process for worker slot `w`, with fresh pipes; returns PEXEC_OK,
 * or PEXEC_ESYS with p->err filled. */
pexec_code pexec__pool_worker_spawn(struct pool *p, struct worker *w);
/* Kills the worker and every process it started that is still in its
 * process group (idempotent; its end is noticed later, by
 * pexec__pool_worker_poll). */
void pexec__pool_worker_kill(struct worker *w, const char *reason);
/* Reads what the worker sent and records every whole frame; at the end of
 * its pipe sets w->eof.  A worker that breaks the protocol is killed. */
void pexec__pool_worker_read(struct pool *p, struct worker *w);
/* Writes as much of the worker's unsent tasks as its pipe takes now. */
void pexec__pool_worker_write(struct worker *w);
/* Whether the worker has ended: reaps it if so (w->ended, w->status) and
 * kills what it left in its process group.  Its pipes stay open. */
int pexec__pool_worker_poll(struct worker *w);
/* Closes the parent's ends of the worker's pipes (idempotent). */
void pexec__pool_worker_close(struct worker *w);
/* Waits up to `ms` for the worker to end by itself, then kills it; reaps
 * it and closes its pipes.  Returns whether it ended by itself. */
int pexec__pool_worker_end(struct worker *w, int ms);

/* ---- chunk.c ---- */

/* Whether items remain to be built or to be answered. */
int pexec__pool_work_remains(const struct pool *p);
/* Whether the reorder window has room for one more chunk. */
int pexec__pool_window_has_room(const struct pool *p);
/* Builds the next chunk from the source into a free slot, at most `limit`
 * items (0: no limit); NULL when there is none to send (no free slot, end of
 * input, or an error that set p->stop). */
struct chunk *pexec__pool_chunk_build(struct pool *p, uint64_t limit);
/* Readies a chunk for item-by-item records (idempotent); -1 with p->stop. */
int pexec__pool_chunk_split(struct pool *p, struct chunk *c);
/* Stores item `i`'s record in a split chunk; -1 with p->stop (out of memory). */
int pexec__pool_chunk_put_record(struct pool *p, struct chunk *c, uint32_t i, int ok,
                                 pexec_stage stage, const char *data, size_t len);
/* Marks a chunk done once no item of it is pending (emitted by collect). */
void pexec__pool_chunk_check_done(struct pool *p, struct chunk *c);
/* The collect phase: hands every done chunk that is next in order (any
 * done chunk, --unordered) to the sink, and frees its slot. */
void pexec__pool_collect(struct pool *p);
/* Queues items of a split chunk to run again, as one task or one by one. */
void pexec__pool_requeue(struct pool *p, struct chunk *c, const uint32_t *pos, uint32_t n,
                         int one_by_one);
/* Takes the oldest task queued to run again, its CHUNK frame built; 0 when
 * there is none (or p->stop). */
int pexec__pool_requeued(struct pool *p, struct task *t);
/* Frees a task's position list and partial frame and zeroes it; its chunk
 * is not touched. */
void pexec__pool_task_release(struct task *t);
/* The CHUNK frame of a task, and its length. */
const char *pexec__pool_task_data(const struct task *t);
size_t pexec__pool_task_len(const struct task *t);

/* ---- span.c ---- */

/* Fills free chunk `c` with the next span of at most `want` items (its SPAN
 * frame, count and pending); 0 when there is none (the end, or p->stop). */
int pexec__span_build(struct pool *p, struct chunk *c, uint32_t want);
/* Records a SPAN_RESULTS frame of `len` bytes at `frame` (in the worker's
 * arena, or the chunk's results buffer) as `c`'s; -1 for one that lies. */
int pexec__span_take(struct pool *p, struct chunk *c, const char *frame, size_t len);
/* Hands a done span chunk to p->spans: its failures, then its output (or,
 * for an input error, stops the run with it). */
void pexec__span_emit(struct pool *p, struct chunk *c);
/* Turns a span chunk into a chunk of items (its CHUNK frame), for the
 * fault machinery to settle item by item; -1 with p->stop. */
int pexec__span_to_items(struct pool *p, struct chunk *c);
/* Hands over the output a split span chunk's records were laid out in
 * (p->layout): put, or its place reserved and written here. */
int pexec__span_put_layout(struct pool *p, struct chunk *c, uint32_t written, uint64_t hash);
/* Writes, from the parent, what worker `w` was to write and has not (it
 * ended), and lets its arena frames go; -1 with p->stop when a write fails. */
int pexec__span_write_pending(struct pool *p, struct worker *w);
/* WRITTEN from worker `w`: its oldest order is done (`error`: the errno it
 * failed with).  -1 for an answer to no order. */
int pexec__span_written(struct pool *p, struct worker *w, uint64_t end, int error);
/* Lays out one result of such a chunk in p->layout as a worker would have
 * (counting it in *written, hashing its input into *hash); -1: no memory. */
int pexec__span_lay_out(struct pool *p, const pexec_result *r, uint32_t *written,
                        uint64_t *hash);

/* ---- arena.c ---- */

/* Maps slot `w`'s arena (none, where mmap refuses: results then come
 * through the pipe); the ring of frame ends.  -1 when out of memory. */
int pexec__arena_setup(struct worker *w, unsigned frames_max);
void pexec__arena_release_all(struct worker *w);
/* Takes a RESULTS_SHM notice: checks it and returns the frame it announces
 * (its number in *frame_no), or NULL for a notice that lies. */
const char *pexec__arena_take(struct pool *p, struct worker *w,
                              const struct pexec__frame_header *notice, uint64_t *frame_no);
/* Releases frame `frame` of the worker's arena (in any order; the tail the
 * worker sees moves only past frames released in order). */
void pexec__arena_release(struct worker *w, uint64_t frame);

/* The worker's side: results being written into the arena while they fit,
 * else on the heap (the frame then goes through the pipe). */
struct pexec__results {
	pexec_buf buf;       /* what serialize hooks append to */
	pexec_buf heap;      /* the heap store, kept between frames */
	const struct pexec__arena *arena;
	struct pexec__progress *progress;
	uint64_t head;       /* arena bytes ever used by this worker */
	uint64_t start;      /* head where the current frame begins */
	size_t last_len;     /* the previous frame's size: the next is likely alike */
	int in_arena;
};
/* Starts a frame's results: in the arena if there is room for a frame like
 * the last one, else on the heap. */
void pexec__results_begin(struct pexec__results *r);
/* Sends the finished frame: a notice for an arena frame, the bytes else,
 * after the frames in `before` (NULL: none; emptied), in one write where
 * the pipe takes it.  Returns 0, or -1 with errno set. */
int pexec__results_send(struct pexec__results *r, int fd, pexec_buf *before);

/* ---- child.c ---- */

/* The body of a worker process: init, READY, then CHUNK frames from `in_fd`
 * answered by RESULTS frames on `out_fd` (SPAN frames by SPAN_RESULTS, with
 * `spans`: NULL when the run has none) until EOF.  Reports each item in
 * `progress`, with its start time when `timed`.  Never returns. */
void pexec__worker_main(const pexec_descriptor *d, const char *config, int in_fd, int out_fd,
                        struct pexec__progress *progress, const struct pexec__arena *arena,
                        int timed, const pexec_spans *spans)
	__attribute__((noreturn));

#endif
