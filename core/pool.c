/*
 * pool.c - the process pool: forks workers, deals chunks of items out to them,
 * collects their results and hands them to the sink, in input order unless
 * asked otherwise.  A worker that dies costs only the item it was running.
 *
 * The parent frames and routes bytes; it never parses a value.  It never
 * blocks on a worker either: its pipe ends are non-blocking and one poll()
 * loop drives every transfer, so a worker writing a large result while the
 * parent writes it the next chunk cannot deadlock them.
 *
 * Memory is bounded by the reorder window: at most `nslots` chunks exist at
 * once (running, or done and waiting for an earlier one), each at most
 * CHUNK_BYTES of items.  In ordered mode a slow chunk at the head of the
 * window stalls dispatch instead of letting results pile up.
 *
 * Chunk sizes adapt (unless --chunksize is given): each RESULTS frame carries
 * the time its worker spent, the pool keeps a moving average of the time per
 * item, and sizes the next chunks to take about CHUNK_TARGET_NS, growing at
 * most CHUNK_GROWTH times a step.  Slow items go out one by one; trivial items
 * go out by the thousands.
 *
 * Faults.  A worker's unit of work is a task: a whole chunk, or some items of
 * one.  Each worker reports, in shared memory (struct pexec__progress), which
 * item of which task it is on and at which stage.  When a worker dies, or is
 * killed for overrunning --timeout, the item it was on is blamed: it fails
 * (or, with --retries, runs again on its own), and every other item it held
 * goes out again.  A death that no item can be blamed for (the worker was
 * between items) sends the task's items out one at a time, so that the next
 * death names its item.  Either way no other item's result is lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "pool.h"
#include "util.h"
#include "worker.h"

#define CHUNK_BYTES ((size_t)128 << 10)      /* items per chunk, in bytes */
#define CHUNK_MAX_ITEMS 16384u
#define CHUNK_TARGET_NS 10000000.0           /* 10 ms of work per chunk */
#define CHUNK_GROWTH 4u
#define PREFETCH_BELOW_NS 20000000.0         /* queue a 2nd chunk under 20 ms */
#define MAX_INFLIGHT 2
#define READ_MIN ((size_t)64 << 10)
#define PIPE_SIZE (1 << 20)
#define SHUTDOWN_GRACE_MS 5000
#define EXIT_WAIT_MS 200                     /* for a worker whose pipe closed */
/* Result arenas: shared memory each worker serializes into (worker.h).
 * All of them together stay within ARENA_TOTAL, which bounds the pages they
 * add to the parent's resident memory. */
#define ARENA_TOTAL ((size_t)32 << 20)
#define ARENA_MIN ((size_t)2 << 20)
#define ARENA_MAX ((size_t)8 << 20)

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

static const char *task_data(const struct task *t)
{
	return t->pos ? t->frame.data : t->chunk->items.data;
}

static size_t task_len(const struct task *t)
{
	return t->pos ? t->frame.len : t->chunk->items.len;
}

static uint32_t task_item(const struct task *t, uint32_t i)
{
	return t->pos ? t->pos[i] : i;
}

static void task_release(struct task *t)
{
	free(t->pos);
	pexec__buf_release(&t->frame);
	memset(t, 0, sizeof(*t));
}

/* ---- workers ---- */

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void close_from(int lowfd)
{
	if (close_range((unsigned)lowfd, ~0u, 0) == 0)
		return;
	for (long fd = lowfd, max = sysconf(_SC_OPEN_MAX); fd < max && fd < 65536; fd++)
		close((int)fd);
}

/* In the child, between fork() and the worker loop: a clean signal state, a
 * death tied to the parent's, and only the descriptors a worker needs: 0 from
 * /dev/null, 1 onto stderr (a plugin's prints never reach pexec's output), 2,
 * and the two pipes as 3 and 4. */
static void __attribute__((noreturn))
child_start(struct pool *p, struct worker *w, int in_fd, int out_fd, const sigset_t *mask)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	int a, b, null_fd;

	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != p->parent)
		_exit(3);
	sigprocmask(SIG_SETMASK, mask, NULL);
	/* Other workers' arenas are none of this one's business. */
	for (unsigned i = 0; i < p->nworkers; i++)
		if (&p->workers[i] != w && p->workers[i].arena.base)
			munmap(p->workers[i].arena.base, p->workers[i].arena.size);
	if (p->opts->memory_limit) {
		struct rlimit rl = { p->opts->memory_limit, p->opts->memory_limit };
		setrlimit(RLIMIT_AS, &rl);
	}

	a = fcntl(in_fd, F_DUPFD, 5);
	b = fcntl(out_fd, F_DUPFD, 5);
	if (a < 0 || b < 0 || dup2(a, 3) < 0 || dup2(b, 4) < 0)
		_exit(3);
	null_fd = open("/dev/null", O_RDONLY);
	if (null_fd >= 0 && null_fd != 0) {
		dup2(null_fd, 0);
		if (null_fd > 4)
			close(null_fd);
	}
	if (fcntl(2, F_GETFD) >= 0)
		dup2(2, 1);
	close_from(5);
	/* Buffered output of the parent's, copied by fork(), is not ours to write. */
	__fpurge(stdout);
	pexec__worker_main(p->desc, p->opts->config, 3, 4, w->progress, &w->arena,
	                   p->timeout_ns != 0);
}

static pexec_code worker_spawn(struct pool *p, struct worker *w)
{
	int down[2] = { -1, -1 }, up[2] = { -1, -1 };
	sigset_t all, old;
	pid_t pid;

	if (pipe2(down, O_CLOEXEC) || pipe2(up, O_CLOEXEC)) {
		pexec__fail(p->err, PEXEC_ESYS, "cannot start a worker: pipe: %s", strerror(errno));
		goto fail;
	}
	/* Bigger pipes mean fewer wakeups per chunk; the default is kept if refused. */
	fcntl(down[1], F_SETPIPE_SZ, PIPE_SIZE);
	fcntl(up[1], F_SETPIPE_SZ, PIPE_SIZE);
	memset(w->progress, 0, sizeof(*w->progress));
	/* A new worker goes on where the last announced frame ended. */
	w->progress->arena_head = w->arena_end;
	atomic_store(&w->progress->arena_tail, w->arena_tail);

	/* No signal handler of the caller's may run in the child before it has
	 * reset them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		close(down[1]);
		close(up[0]);
		child_start(p, w, down[0], up[1], &old);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		pexec__fail(p->err, PEXEC_ESYS, "cannot start a worker: fork: %s", strerror(errno));
		goto fail;
	}
	close(down[0]);
	close(up[1]);
	set_nonblock(down[1]);
	set_nonblock(up[0]);
	w->pid = pid;
	w->to_fd = down[1];
	w->from_fd = up[0];
	w->state = WORKER_STARTING;
	w->ninflight = w->nsent = 0;
	w->sent_off = 0;
	w->frames_done = 0;
	w->items_given = 0;
	w->kill_reason = NULL;
	w->spawned_ns = pexec__now_ns();
	w->in.len = 0;
	p->stats->workers_started++;
	return PEXEC_OK;
fail:
	for (int i = 0; i < 2; i++) {
		if (down[i] >= 0)
			close(down[i]);
		if (up[i] >= 0)
			close(up[i]);
	}
	return PEXEC_ESYS;
}

/* Describes how a worker ended, e.g. "killed by SIGSEGV". */
static void describe_status(int status, char *out, size_t size)
{
	if (WIFSIGNALED(status)) {
		const char *abbrev = sigabbrev_np(WTERMSIG(status));
		if (abbrev)
			snprintf(out, size, "killed by SIG%s", abbrev);
		else
			snprintf(out, size, "killed by signal %d", WTERMSIG(status));
	} else if (WIFEXITED(status)) {
		snprintf(out, size, "exited with status %d", WEXITSTATUS(status));
	} else {
		snprintf(out, size, "ended (status 0x%x)", status);
	}
}

static void worker_close(struct worker *w)
{
	if (w->to_fd >= 0)
		close(w->to_fd);
	if (w->from_fd >= 0)
		close(w->from_fd);
	w->to_fd = w->from_fd = -1;
}

/* Collects a worker that is ending.  With `grace_ms`, waits that long for it
 * to end by itself (returns 1 in *by_itself) before killing it. */
static int worker_reap(struct worker *w, int grace_ms, int *by_itself)
{
	struct timespec tick = { 0, 1000 * 1000 };
	int status = 0;
	pid_t r;

	worker_close(w);
	if (by_itself)
		*by_itself = 1;
	for (int ms = 0; ms < grace_ms; ms++) {
		r = waitpid(w->pid, &status, WNOHANG);
		if (r == w->pid)
			goto out;
		if (r < 0 && errno != EINTR)
			goto out;
		nanosleep(&tick, NULL);
	}
	if (by_itself)
		*by_itself = 0;
	kill(w->pid, SIGKILL);
	while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
		;
out:
	w->state = WORKER_GONE;
	return status;
}

/* ---- chunks ---- */

static struct chunk *slot_for(struct pool *p, uint64_t seq)
{
	return &p->slots[seq % p->nslots];
}

static int window_has_room(const struct pool *p)
{
	if (p->opts->unordered)
		return p->nbusy < p->nslots;
	return p->next_seq - p->emit_seq < p->nslots;
}

static struct chunk *slot_take(struct pool *p)
{
	struct chunk *c = slot_for(p, p->next_seq);

	/* Ordered mode guarantees this slot is free; unordered mode may have to
	 * look further, past chunks that are still running. */
	for (unsigned i = 0; c->state != CHUNK_FREE && i < p->nslots; i++)
		c = &p->slots[(p->next_seq + i) % p->nslots];
	return c->state == CHUNK_FREE ? c : NULL;
}

/* Releases arena frame `frame` of worker `w`, and moves the tail past every
 * frame released in order. */
static void arena_release(struct worker *w, uint64_t frame)
{
	w->ends[frame % w->nends] |= 1;
	while (w->frames_released < w->frames_announced &&
	       (w->ends[w->frames_released % w->nends] & 1)) {
		w->arena_tail = w->ends[w->frames_released % w->nends] >> 1;
		w->frames_released++;
	}
	atomic_store_explicit(&w->progress->arena_tail, w->arena_tail, memory_order_release);
}

static void slot_release(struct pool *p, struct chunk *c)
{
	if (c->arena_owner) {
		arena_release(c->arena_owner, c->arena_frame);
		c->arena_owner = NULL;
	}
	c->state = CHUNK_FREE;
	c->items.len = 0;
	c->results.len = 0;
	c->split = 0;
	p->nbusy--;
}

static uint32_t next_chunk_items(struct pool *p)
{
	double want;

	if (p->opts->chunksize)
		return p->opts->chunksize > CHUNK_MAX_ITEMS * 16u ? CHUNK_MAX_ITEMS * 16u
		                                                  : (uint32_t)p->opts->chunksize;
	if (p->item_ns <= 0)
		return p->chunk_items;
	want = CHUNK_TARGET_NS / p->item_ns;
	if (want < 1)
		want = 1;
	if (want > (double)p->chunk_items * CHUNK_GROWTH)
		want = (double)p->chunk_items * CHUNK_GROWTH;
	if (want > CHUNK_MAX_ITEMS)
		want = CHUNK_MAX_ITEMS;
	p->chunk_items = (uint32_t)want;
	return p->chunk_items;
}

/* Builds the next chunk from the source into a free slot, at most `limit`
 * items.  Returns the chunk, or NULL when there is nothing to send (end of
 * input, or an error that set p->stop). */
static struct chunk *chunk_build(struct pool *p, uint64_t limit)
{
	uint32_t want = next_chunk_items(p), count = 0;
	struct chunk *c = slot_take(p);
	const char *data;
	size_t len;
	int rc = 0;

	if (!c)
		return NULL;
	if (limit && want > limit)
		want = (uint32_t)limit;
	c->items.len = 0;
	if (pexec__frame_begin(&c->items, PEXEC_FRAME_CHUNK, p->next_index))
		goto nomem;
	while (count < want && c->items.len < CHUNK_BYTES + PEXEC_FRAME_HEADER_SIZE) {
		rc = p->next(p->next_ctx, &data, &len, p->err);
		if (rc <= 0)
			break;
		if (pexec__frame_put_item(&c->items, data, len))
			goto nomem;
		count++;
	}
	if (rc < 0) {
		p->stop = (pexec_code)-rc;
		p->source_done = 1;
	} else if (rc == 0) {
		p->source_done = 1;
	}
	if (count == 0)
		return NULL;
	pexec__frame_end(&c->items, 0, count);
	c->state = CHUNK_OPEN;
	c->seq = p->next_seq++;
	c->first = p->next_index;
	c->count = c->pending = count;
	c->split = 0;
	c->results.len = 0;
	p->next_index += count;
	p->stats->items += count;
	p->nbusy++;
	return c;
nomem:
	p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory building a chunk");
	return NULL;
}

/* Readies a chunk for results that arrive item by item: the per-item arrays,
 * and the offset of every item's entry. */
static int chunk_split(struct pool *p, struct chunk *c)
{
	struct pexec__frame_cursor cur;
	const char *data;
	size_t len;

	if (c->split)
		return 0;
	if (c->arrays_cap < c->count) {
		size_t *io = realloc(c->item_off, c->count * sizeof(*io));
		size_t *ro = io ? realloc(c->rec_off, c->count * sizeof(*ro)) : NULL;
		unsigned *tr = ro ? realloc(c->tries, c->count * sizeof(*tr)) : NULL;
		struct item_meta *me = tr ? realloc(c->meta, c->count * sizeof(*me)) : NULL;
		if (io)
			c->item_off = io;
		if (ro)
			c->rec_off = ro;
		if (tr)
			c->tries = tr;
		if (!me) {
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
			return -1;
		}
		c->meta = me;
		c->arrays_cap = c->count;
	}
	cur.p = c->items.data + PEXEC_FRAME_HEADER_SIZE;
	cur.end = c->items.data + c->items.len;
	for (uint32_t i = 0; i < c->count; i++) {
		c->item_off[i] = (size_t)(cur.p - c->items.data);
		c->rec_off[i] = SIZE_MAX;
		c->tries[i] = 0;
		c->meta[i] = (struct item_meta){ 0, 0, -1 };
		pexec__frame_next_item(&cur, &data, &len);
	}
	c->results.len = 0;
	c->split = 1;
	return 0;
}

/* The bytes of item `i` of a split chunk. */
static void chunk_item(const struct chunk *c, uint32_t i, const char **data, size_t *len)
{
	struct pexec__frame_cursor cur = {
		.p = c->items.data + c->item_off[i], .end = c->items.data + c->items.len,
	};
	pexec__frame_next_item(&cur, data, len);
}

/* Stores one record (result or failure) for item `i` of a split chunk. */
static int chunk_put_record(struct pool *p, struct chunk *c, uint32_t i, int ok,
                            pexec_stage stage, const char *data, size_t len)
{
	size_t at = pexec__frame_record_begin(&c->results);

	if (at == (size_t)-1 || pexec_buf_append(&c->results, data, len)) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory keeping results");
		return -1;
	}
	pexec__frame_record_end(&c->results, at, ok, stage);
	c->rec_off[i] = at;
	c->pending--;
	return 0;
}

static void emit_one(struct pool *p, pexec_result *r)
{
	char msg[PEXEC_ERROR_MAX];

	p->stats->by_status[r->status]++;
	if (r->ok) {
		p->stats->ok++;
		r->message = NULL;
	} else {
		/* Messages travel without their NUL. */
		snprintf(msg, sizeof(msg), "%.*s", (int)r->len, r->data);
		r->message = msg;
		p->stats->failed++;
	}
	if (p->sink) {
		int rc = p->sink(p->sink_ctx, r, p->err);
		if (rc < 0)
			p->stop = (pexec_code)-rc;
	}
	if (!r->ok && p->opts->fail_fast && !p->stop)
		p->stop = pexec__fail(p->err, PEXEC_ESTOPPED,
		                      "stopped at the first failure (--fail-fast): item %llu",
		                      (unsigned long long)r->index);
	p->emitted = 1;
}

/* The batch path: a chunk of successes goes to batch_sink in one call.
 * Returns 1 if it did, 0 if the chunk needs the item-by-item path. */
static int chunk_emit_batch(struct pool *p, struct chunk *c)
{
	struct pexec__frame_cursor recs = {
		.p = c->res + PEXEC_FRAME_HEADER_SIZE, .end = c->res + c->res_len,
	};
	struct pexec__frame_cursor items = {
		.p = c->items.data + PEXEC_FRAME_HEADER_SIZE, .end = c->items.data + c->items.len,
	};
	pexec_stage stage;
	const char *data;
	size_t len;
	int byte, rc;

	if (c->split || !p->opts->batch_sink)
		return 0;
	if (p->iov_cap < c->count) {
		struct iovec *t = realloc(p->texts, c->count * sizeof(*t));
		struct iovec *in = t ? realloc(p->inputs, c->count * sizeof(*in)) : NULL;
		if (t)
			p->texts = t;
		if (!in)
			return 0;
		p->inputs = in;
		p->iov_cap = c->count;
	}
	for (uint32_t i = 0; i < c->count; i++) {
		if (pexec__frame_next_record(&recs, &data, &len, &byte, &stage) != 1 || byte != 1)
			return 0;
		p->texts[i] = (struct iovec){ (void *)data, len };
	}
	if (p->opts->result_input)
		for (uint32_t i = 0; i < c->count; i++) {
			if (pexec__frame_next_item(&items, &data, &len) != 1)
				return 0;
			p->inputs[i] = (struct iovec){ (void *)data, len };
		}
	rc = p->opts->batch_sink(p->opts->batch_ctx, c->first, c->count, p->texts,
	                         p->opts->result_input ? p->inputs : NULL, p->err);
	if (rc < 0)
		p->stop = (pexec_code)-rc;
	p->stats->ok += c->count;
	p->stats->by_status[PEXEC_STATUS_OK] += c->count;
	p->emitted = 1;
	slot_release(p, c);
	return 1;
}

/* Hands a done chunk's results to the sink and frees its slot. */
static void chunk_emit(struct pool *p, struct chunk *c)
{
	struct pexec__frame_cursor items = {
		.p = c->items.data + PEXEC_FRAME_HEADER_SIZE, .end = c->items.data + c->items.len,
	};
	const char *res = c->split ? c->results.data : c->res;
	size_t res_len = c->split ? c->results.len : c->res_len;
	struct pexec__frame_cursor recs = {
		.p = res + PEXEC_FRAME_HEADER_SIZE, .end = res + res_len,
	};
	uint32_t items_at = 0; /* the item `items` points at */

	if (chunk_emit_batch(p, c))
		return;
	for (uint32_t i = 0; i < c->count && !p->stop; i++) {
		pexec_result r = { .index = c->first + i, .attempts = 1, .pid = c->whole.pid,
		                   .started = c->whole.started + i * c->whole.seconds,
		                   .seconds = c->whole.seconds };
		int byte;

		if (c->split) {
			/* Records of a split chunk came in any order. */
			recs.p = res + c->rec_off[i];
			r.attempts = c->tries[i];
			r.pid = c->meta[i].pid;
			r.started = c->meta[i].started;
			r.seconds = c->meta[i].seconds;
		}
		if (pexec__frame_next_record(&recs, &r.data, &r.len, &byte, &r.stage) != 1) {
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "internal error: torn results");
			break;
		}
		r.status = pexec__record_status((uint8_t)byte);
		r.ok = r.status == PEXEC_STATUS_OK;
		if (!r.ok || p->opts->result_input) {
			/* The input goes with a failure (or when asked): it costs a walk. */
			if (c->split) {
				chunk_item(c, i, &r.input, &r.input_len);
			} else {
				while (items_at <= i &&
				       pexec__frame_next_item(&items, &r.input, &r.input_len) == 1)
					items_at++;
			}
		}
		emit_one(p, &r);
	}
	slot_release(p, c);
}

static void emit_ready(struct pool *p, struct chunk *done)
{
	if (p->opts->unordered) {
		chunk_emit(p, done);
		return;
	}
	while (!p->stop && p->emit_seq < p->next_seq) {
		struct chunk *c = slot_for(p, p->emit_seq);
		if (c->state != CHUNK_DONE || c->seq != p->emit_seq)
			break;
		chunk_emit(p, c);
		p->emit_seq++;
	}
}

static void chunk_check_done(struct pool *p, struct chunk *c)
{
	if (c->pending == 0 && c->state == CHUNK_OPEN) {
		c->state = CHUNK_DONE;
		emit_ready(p, c);
	}
}

/* ---- tasks that go out again ---- */

static int queue_push(struct pool *p, struct task *t)
{
	if (p->queue_len == p->queue_cap) {
		size_t cap = p->queue_cap ? 2 * p->queue_cap : 16;
		struct task *q = realloc(p->queue, cap * sizeof(*q));
		if (!q) {
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
			return -1;
		}
		p->queue = q;
		p->queue_cap = cap;
	}
	p->queue[p->queue_len++] = *t;
	return 0;
}

/* Queues items of a split chunk to run again, as one task or one by one. */
static void requeue(struct pool *p, struct chunk *c, const uint32_t *pos, uint32_t n,
                    int one_by_one)
{
	struct task t = { .chunk = c };

	for (uint32_t i = 0; i < n && !p->stop; i += t.n) {
		t.n = one_by_one ? 1 : n;
		t.isolating = one_by_one;
		t.pos = malloc(t.n * sizeof(*t.pos));
		if (!t.pos) {
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
			return;
		}
		memcpy(t.pos, pos + i, t.n * sizeof(*t.pos));
		pexec__buf_init(&t.frame);
		if (queue_push(p, &t))
			free(t.pos);
	}
}

/* Builds the CHUNK frame of a task made of some items of a chunk. */
static int task_build_frame(struct pool *p, struct task *t)
{
	const char *data;
	size_t len;

	t->frame.len = 0;
	if (pexec__frame_begin(&t->frame, PEXEC_FRAME_CHUNK, t->chunk->first + t->pos[0]))
		goto nomem;
	for (uint32_t i = 0; i < t->n; i++) {
		chunk_item(t->chunk, t->pos[i], &data, &len);
		if (pexec__frame_put_item(&t->frame, data, len))
			goto nomem;
	}
	pexec__frame_end(&t->frame, 0, t->n);
	return 0;
nomem:
	p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
	return -1;
}

/* ---- results and deaths ---- */

static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* When and by whom the items of a RESULTS frame were run. */
static struct item_meta frame_meta(const struct worker *w, const struct pexec__frame_header *h)
{
	double busy = (double)h->aux / 1e9;

	return (struct item_meta){ w->pid, now_real() - busy, h->count ? busy / h->count : 0 };
}

static void note_timing(struct pool *p, const struct pexec__frame_header *h)
{
	double per_item = (double)h->aux / (h->count ? h->count : 1);

	p->item_ns = p->item_ns > 0 ? 0.7 * p->item_ns + 0.3 * per_item : per_item;
}

static void worker_pop(struct worker *w)
{
	task_release(&w->inflight[0]);
	memmove(w->inflight, w->inflight + 1, (MAX_INFLIGHT - 1) * sizeof(w->inflight[0]));
	memset(&w->inflight[MAX_INFLIGHT - 1], 0, sizeof(w->inflight[0]));
	w->ninflight--;
	w->nsent--;
	w->frames_done++;
}

/* Stores the records of a RESULTS frame at `frame` for the items of a
 * partial task, in the chunk's own results buffer. */
static int put_task_records(struct pool *p, struct worker *w, struct task *t,
                            const struct pexec__frame_header *h, const char *frame, size_t len)
{
	struct pexec__frame_cursor cur = { .p = frame + PEXEC_FRAME_HEADER_SIZE, .end = frame + len };
	struct item_meta meta = frame_meta(w, h);
	struct chunk *c = t->chunk;
	const char *data;
	size_t dlen;
	pexec_stage stage;
	int ok;

	for (uint32_t i = 0; i < t->n; i++) {
		if (pexec__frame_next_record(&cur, &data, &dlen, &ok, &stage) != 1 ||
		    (ok != 0 && ok != 1))
			return -1;
		c->tries[t->pos[i]]++;
		c->meta[t->pos[i]] = meta;
		meta.started += meta.seconds;
		if (chunk_put_record(p, c, t->pos[i], ok, stage, data, dlen))
			return 0;
	}
	return 0;
}

/* Takes a whole RESULTS frame of `len` bytes from the front of w->in. */
static int take_results(struct pool *p, struct worker *w, const struct pexec__frame_header *h,
                        size_t len)
{
	struct task *t = &w->inflight[0];
	struct chunk *c = t->chunk;

	if (h->count != t->n)
		return -1;
	note_timing(p, h);
	p->fruitless_deaths = 0;
	if (!t->pos) {
		/* The whole chunk answered at once: its bytes become the chunk's
		 * results, and any bytes after them move to the chunk's old results
		 * buffer, which becomes w->in (no copy, no allocation per chunk). */
		pexec_buf old = c->results;
		old.len = 0;
		if (w->in.len > len && pexec_buf_append(&old, w->in.data + len, w->in.len - len)) {
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
			return 0;
		}
		c->results = w->in;
		c->results.len = len;
		c->res = c->results.data;
		c->res_len = len;
		c->whole = frame_meta(w, h);
		w->in = old;
		c->pending = 0;
	} else {
		if (put_task_records(p, w, t, h, w->in.data, len))
			return -1;
		memmove(w->in.data, w->in.data + len, w->in.len - len);
		w->in.len -= len;
	}
	worker_pop(w);
	chunk_check_done(p, c);
	return 0;
}

/* Makes room for more frames awaiting release (small ones released out of
 * order can queue up behind one that is not). */
static int ends_grow(struct pool *p, struct worker *w)
{
	unsigned n = 2 * w->nends;
	uint64_t *ends = calloc(n, sizeof(*ends));

	if (!ends) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
		return -1;
	}
	for (uint64_t f = w->frames_released; f < w->frames_announced; f++)
		ends[f % n] = w->ends[f % w->nends];
	free(w->ends);
	w->ends = ends;
	w->nends = n;
	return 0;
}

/* Takes a RESULTS frame announced in the worker's arena: a whole chunk's
 * results are read where they lie until the chunk is emitted; a partial
 * task's are copied out and the frame released at once. */
static int take_arena_results(struct pool *p, struct worker *w,
                              const struct pexec__frame_header *notice)
{
	const struct pexec__arena *a = &w->arena;
	struct pexec__frame_header h;
	pexec_error perr;
	uint64_t end = notice->aux, len = notice->count, frame_no;
	const char *frame;
	struct task *t = &w->inflight[0];
	struct chunk *c = t->chunk;
	size_t off;

	if (!a->base || len < PEXEC_FRAME_HEADER_SIZE || end < w->arena_end + len ||
	    end - w->arena_tail > a->size)
		return -1;
	if (w->frames_announced - w->frames_released >= w->nends && ends_grow(p, w))
		return 0;
	off = (size_t)((end - len) % a->size);
	if (off + len > a->size)
		return -1;
	frame = a->base + off;
	if (pexec__frame_parse_header(frame, &h, &perr) || h.type != PEXEC_FRAME_RESULTS ||
	    h.payload_len != len - PEXEC_FRAME_HEADER_SIZE || h.count != t->n)
		return -1;
	w->arena_end = end;
	frame_no = w->frames_announced++;
	w->ends[frame_no % w->nends] = end << 1;
	note_timing(p, &h);
	p->fruitless_deaths = 0;
	if (!t->pos) {
		c->res = frame;
		c->res_len = (size_t)len;
		c->whole = frame_meta(w, &h);
		c->arena_owner = w;
		c->arena_frame = frame_no;
		c->pending = 0;
	} else {
		int rc = put_task_records(p, w, t, &h, frame, (size_t)len);
		arena_release(w, frame_no);
		if (rc)
			return -1;
	}
	worker_pop(w);
	chunk_check_done(p, c);
	return 0;
}

static int work_remains(const struct pool *p)
{
	return !p->source_done || p->nbusy > 0;
}

/* Whether a worker has yet to report on its init: a run, even of no items,
 * ends only once every init is known to have succeeded. */
static int inits_pending(const struct pool *p)
{
	for (unsigned i = 0; i < p->nworkers; i++)
		if (p->workers[i].state == WORKER_STARTING)
			return 1;
	return 0;
}

/* Settles an item whose run ended with its worker's death: another try, or
 * a failure record. */
static void blame(struct pool *p, struct chunk *c, uint32_t i, pexec_stage stage,
                  const char *why, pexec_status status, int pid)
{
	c->tries[i]++;
	c->meta[i] = (struct item_meta){ pid, 0, -1 };
	if (c->tries[i] <= p->opts->retries) {
		p->stats->retried++;
		requeue(p, c, &i, 1, 1);
		return;
	}
	if (status == PEXEC_STATUS_TIMEOUT) {
		p->stats->timed_out++;
		c->meta[i].seconds = p->opts->timeout;
	}
	chunk_put_record(p, c, i, pexec__record_byte(status),
	                 stage == PEXEC_STAGE_NONE ? PEXEC_STAGE_WORKER : stage, why, strlen(why));
	chunk_check_done(p, c);
}

/* A worker ended while holding tasks (it died, was killed for a timeout, or
 * broke the protocol): blame the item it was on, send the rest out again, and
 * start a replacement while there is work left. */
static void worker_lost(struct pool *p, struct worker *w)
{
	enum worker_state was = w->state;
	struct pexec__progress *pr = w->progress;
	uint64_t frames;
	uint32_t at;
	pexec_stage stage;
	char why[PEXEC_ERROR_MAX], how[96];
	int by_itself, status, timed_out = w->kill_reason == w->timeout_msg;
	pexec_status kind;
	pid_t pid = w->pid;

	/* Progress is read once the worker is gone, so it shows where it
	 * stopped.  A worker that closed its pipe and went on working until
	 * killed stopped on an item that did nothing wrong: no blame then. */
	status = worker_reap(w, w->kill_reason ? 0 : EXIT_WAIT_MS, &by_itself);
	frames = atomic_load(&pr->frames);
	at = atomic_load(&pr->pos);
	stage = by_itself || w->kill_reason ? (pexec_stage)atomic_load(&pr->stage)
	                                    : PEXEC_STAGE_NONE;
	if (w->kill_reason)
		snprintf(how, sizeof(how), "%s", w->kill_reason);
	else if (!by_itself)
		snprintf(how, sizeof(how), "closed its connection to pexec");
	else
		describe_status(status, how, sizeof(how));
	p->stats->workers_lost++;
	if (timed_out)
		kind = PEXEC_STATUS_TIMEOUT;
	else if (w->kill_reason || !by_itself)
		kind = PEXEC_STATUS_LOST;
	else if (WIFSIGNALED(status))
		kind = WTERMSIG(status) == SIGKILL ? PEXEC_STATUS_KILLED : PEXEC_STATUS_CRASHED;
	else
		kind = PEXEC_STATUS_EXITED;
	if (was == WORKER_STARTING) {
		p->stop = pexec__fail(p->err, PEXEC_EINIT, "plugin '%s': worker %ld %s during init",
		                      p->desc->name, (long)pid, how);
		return;
	}
	snprintf(why, sizeof(why), "worker %ld %s%s", (long)pid, how,
	         p->opts->memory_limit && by_itself && !w->kill_reason && WIFSIGNALED(status) &&
	                         (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGABRT ||
	                          WTERMSIG(status) == SIGBUS)
	                 ? " (under --memory-limit)" : "");
	if (++p->fruitless_deaths > 3 * p->nworkers + 16) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS,
		                      "workers keep dying without finishing an item (last: %s)", why);
		return;
	}

	for (unsigned k = 0; k < w->ninflight && !p->stop; k++) {
		struct task *t = &w->inflight[k];
		struct chunk *c = t->chunk;
		/* Only the oldest task can have been started, and only if the
		 * worker began more frames than it answered. */
		int started = k == 0 && frames > w->frames_done;
		uint32_t *rest, nrest = 0;

		if (chunk_split(p, c))
			return;
		rest = malloc(t->n * sizeof(*rest));
		if (!rest) {
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
			return;
		}
		if (started && stage != PEXEC_STAGE_NONE && at < t->n) {
			/* The item it was on is the one at fault. */
			p->fruitless_deaths = 0;
			for (uint32_t i = 0; i < t->n; i++)
				if (i != at)
					rest[nrest++] = task_item(t, i);
			blame(p, c, task_item(t, at), stage, why, kind, pid);
			requeue(p, c, rest, nrest, 0);
		} else if (started && (t->n == 1 || t->isolating)) {
			p->fruitless_deaths = 0;
			blame(p, c, task_item(t, 0), PEXEC_STAGE_WORKER, why, kind, pid);
		} else {
			/* Between items, or not begun: no item to blame.  A started task
			 * goes out one item at a time to find its culprit. */
			for (uint32_t i = 0; i < t->n; i++)
				rest[nrest++] = task_item(t, i);
			requeue(p, c, rest, nrest, started);
		}
		free(rest);
	}
	for (unsigned k = 0; k < MAX_INFLIGHT; k++)
		task_release(&w->inflight[k]);
	w->ninflight = w->nsent = 0;
	if (!p->stop && work_remains(p))
		p->stop = worker_spawn(p, w);
}

/* A worker asked to leave (--max-tasks-per-worker) has gone: replace it. */
static void worker_retired(struct pool *p, struct worker *w)
{
	int by_itself, status = worker_reap(w, SHUTDOWN_GRACE_MS, &by_itself);

	if (!by_itself || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		p->stats->workers_lost++;
	if (!p->stop && work_remains(p))
		p->stop = worker_spawn(p, w);
}

/* Handles every whole frame at the front of w->in.  Returns -1 when the
 * worker broke the protocol. */
static int worker_frames(struct pool *p, struct worker *w)
{
	struct pexec__frame_header h;
	pexec_error perr;

	while (!p->stop && w->in.len >= PEXEC_FRAME_HEADER_SIZE) {
		size_t len;

		if (pexec__frame_parse_header(w->in.data, &h, &perr))
			return -1;
		len = PEXEC_FRAME_HEADER_SIZE + h.payload_len;
		if (w->in.len < len)
			return 0;
		switch (h.type) {
		case PEXEC_FRAME_READY:
			if (w->state == WORKER_STARTING)
				w->state = WORKER_READY;
			break;
		case PEXEC_FRAME_INITFAIL:
			p->stop = pexec__fail(p->err, PEXEC_EINIT, "plugin '%s' init failed: %.*s",
			                      p->desc->name, (int)h.payload_len,
			                      w->in.data + PEXEC_FRAME_HEADER_SIZE);
			return 0;
		case PEXEC_FRAME_RESULTS:
			if (w->nsent == 0 || take_results(p, w, &h, len))
				return -1;
			continue; /* take_results consumed the frame */
		case PEXEC_FRAME_RESULTS_SHM:
			if (w->nsent == 0 || h.payload_len != 0 || take_arena_results(p, w, &h))
				return -1;
			break;
		default:
			return -1;
		}
		memmove(w->in.data, w->in.data + len, w->in.len - len);
		w->in.len -= len;
	}
	return 0;
}

static void worker_read(struct pool *p, struct worker *w)
{
	for (;;) {
		size_t want = READ_MIN;
		ssize_t n;

		if (w->in.len >= PEXEC_FRAME_HEADER_SIZE) {
			struct pexec__frame_header h;
			pexec_error perr;
			if (pexec__frame_parse_header(w->in.data, &h, &perr))
				goto broken;
			if (PEXEC_FRAME_HEADER_SIZE + h.payload_len - w->in.len > want)
				want = PEXEC_FRAME_HEADER_SIZE + h.payload_len - w->in.len;
		}
		if (pexec_buf_reserve(&w->in, want)) {
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory reading results");
			return;
		}
		n = read(w->from_fd, w->in.data + w->in.len, w->in.cap - w->in.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			if (w->state == WORKER_RETIRING)
				worker_retired(p, w);
			else
				worker_lost(p, w);
			return;
		}
		w->in.len += (size_t)n;
		if (worker_frames(p, w))
			goto broken;
		if (p->stop || w->state == WORKER_GONE)
			return;
	}
broken:
	kill(w->pid, SIGKILL);
	w->kill_reason = "sent a malformed message";
	worker_lost(p, w);
}

static void worker_write(struct worker *w)
{
	while (w->nsent < w->ninflight) {
		struct task *t = &w->inflight[w->nsent];
		size_t len = task_len(t);
		ssize_t n = write(w->to_fd, task_data(t) + w->sent_off, len - w->sent_off);

		if (n < 0) {
			/* EAGAIN: later.  EPIPE: the worker is gone, which its EOF on
			 * the other pipe will say. */
			return;
		}
		w->sent_off += (size_t)n;
		if (w->sent_off == len) {
			w->nsent++;
			w->sent_off = 0;
		}
	}
}

/* --max-tasks-per-worker: a worker that has had its share and holds nothing
 * is told to leave (EOF on its input: it runs fini and exits). */
static void maybe_retire(struct pool *p, struct worker *w)
{
	uint64_t max = p->opts->max_tasks_per_worker;

	if (max && w->state == WORKER_READY && w->items_given >= max && w->ninflight == 0) {
		close(w->to_fd);
		w->to_fd = -1;
		w->state = WORKER_RETIRING;
	}
}

/* The next task for worker `w`: one to send again, else a new chunk. */
static int next_task(struct pool *p, struct worker *w, struct task *t)
{
	uint64_t max = p->opts->max_tasks_per_worker;
	uint64_t room = max ? max - w->items_given : 0;

	if (p->queue_len > 0) {
		*t = p->queue[0];
		memmove(p->queue, p->queue + 1, (p->queue_len - 1) * sizeof(*p->queue));
		p->queue_len--;
		return task_build_frame(p, t) == 0;
	}
	if (p->stop || p->source_done || !window_has_room(p))
		return 0;
	memset(t, 0, sizeof(*t));
	t->chunk = chunk_build(p, room);
	if (!t->chunk)
		return 0;
	t->n = t->chunk->count;
	return 1;
}

/* Gives idle workers work: first one task each, then, when chunks are quick,
 * a second one queued so that no worker waits on the parent between them. */
static void dispatch(struct pool *p)
{
	unsigned depth = p->item_ns > 0 && p->item_ns * p->chunk_items < PREFETCH_BELOW_NS &&
	                                 !p->timeout_ns
	                         ? MAX_INFLIGHT : 1;
	uint64_t max = p->opts->max_tasks_per_worker;

	for (unsigned level = 1; level <= depth; level++) {
		for (unsigned i = 0; i < p->nworkers && !p->stop; i++) {
			struct worker *w = &p->workers[i];
			struct task *t;

			if (w->state != WORKER_STARTING && w->state != WORKER_READY)
				continue;
			if (w->ninflight >= level || (max && w->items_given >= max))
				continue;
			t = &w->inflight[w->ninflight];
			if (!next_task(p, w, t))
				return;
			w->ninflight++;
			w->items_given += t->n;
			worker_write(w);
		}
	}
}

/* --timeout: kills workers whose current item has run too long, and returns
 * how long poll() may sleep before the next deadline (-1: no deadline). */
static int check_deadlines(struct pool *p)
{
	uint64_t now = pexec__now_ns(), next = UINT64_MAX;

	if (!p->timeout_ns)
		return -1;
	for (unsigned i = 0; i < p->nworkers; i++) {
		struct worker *w = &p->workers[i];
		uint64_t started, deadline;

		if (w->kill_reason)
			continue;
		if (w->state == WORKER_STARTING) {
			started = w->spawned_ns;
		} else {
			if (w->state != WORKER_READY || w->ninflight == 0 ||
			    atomic_load_explicit(&w->progress->stage, memory_order_acquire) ==
			            PEXEC_STAGE_NONE)
				continue;
			started = atomic_load_explicit(&w->progress->started, memory_order_relaxed);
		}
		deadline = started + p->timeout_ns;
		if (now >= deadline) {
			snprintf(w->timeout_msg, sizeof(w->timeout_msg), "timed out after %g s",
			         p->opts->timeout);
			w->kill_reason = w->timeout_msg;
			kill(w->pid, SIGKILL);
			continue;
		}
		if (deadline < next)
			next = deadline;
	}
	if (next == UINT64_MAX)
		return 50; /* an item may begin at any moment: look again soon */
	return (int)((next - now) / 1000000) + 1;
}

static pexec_code loop(struct pool *p)
{
	struct pollfd *fds = calloc(2 * (size_t)p->nworkers + 1, sizeof(*fds));

	if (!fds)
		return pexec__fail(p->err, PEXEC_ESYS, "out of memory");
	while (!p->stop && (work_remains(p) || inits_pending(p))) {
		nfds_t n = 0;
		int timeout;

		dispatch(p);
		for (unsigned i = 0; i < p->nworkers; i++)
			maybe_retire(p, &p->workers[i]);
		if (p->stop || !(work_remains(p) || inits_pending(p)))
			break;
		timeout = check_deadlines(p);
		if (p->opts->on_tick) {
			uint64_t now = pexec__now_ns();
			int until;

			if (now >= p->next_tick) {
				p->opts->on_tick(p->opts->tick_ctx, p->stats);
				p->next_tick = now + p->tick_ns;
			}
			until = (int)((p->next_tick - now) / 1000000) + 1;
			if (timeout < 0 || until < timeout)
				timeout = until;
		}
		if (p->emitted && p->sink) {
			/* About to wait: let the sink push out what it holds. */
			int rc = p->sink(p->sink_ctx, NULL, p->err);
			p->emitted = 0;
			if (rc < 0) {
				p->stop = (pexec_code)-rc;
				break;
			}
		}
		if (p->opts->cancel_fd > 0)
			fds[n++] = (struct pollfd){ .fd = p->opts->cancel_fd, .events = POLLIN };
		for (unsigned i = 0; i < p->nworkers; i++) {
			struct worker *w = &p->workers[i];
			if (w->state == WORKER_GONE)
				continue;
			fds[n++] = (struct pollfd){ .fd = w->from_fd, .events = POLLIN };
			if (w->nsent < w->ninflight && w->to_fd >= 0)
				fds[n++] = (struct pollfd){ .fd = w->to_fd, .events = POLLOUT };
		}
		if (poll(fds, n, timeout) < 0 && errno != EINTR) {
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "poll: %s", strerror(errno));
			break;
		}
		if (p->opts->cancel_fd > 0 && fds[0].revents) {
			p->stop = pexec__fail(p->err, PEXEC_ECANCELED, "cancelled");
			break;
		}
		for (unsigned i = 0; i < p->nworkers && !p->stop; i++) {
			struct worker *w = &p->workers[i];
			if (w->state == WORKER_GONE)
				continue;
			if (w->nsent < w->ninflight)
				worker_write(w);
			worker_read(p, w);
		}
	}
	free(fds);
	return p->stop;
}

/* Ends every worker: politely (EOF on its input, then up to a grace period
 * for fini) after a complete run, at once otherwise. */
static void shutdown_workers(struct pool *p, int now)
{
	struct timespec tick = { 0, 2 * 1000 * 1000 };
	int left = 0;

	for (unsigned i = 0; i < p->nworkers; i++) {
		struct worker *w = &p->workers[i];
		if (w->state == WORKER_GONE)
			continue;
		if (now) {
			kill(w->pid, SIGKILL);
			worker_reap(w, 0, NULL);
			continue;
		}
		if (w->to_fd >= 0)
			close(w->to_fd);
		w->to_fd = -1;
		left++;
	}
	for (int ms = 0; left > 0 && ms < SHUTDOWN_GRACE_MS; ms += 2) {
		for (unsigned i = 0; i < p->nworkers; i++) {
			struct worker *w = &p->workers[i];
			int status;
			if (w->state == WORKER_GONE || waitpid(w->pid, &status, WNOHANG) != w->pid)
				continue;
			worker_close(w);
			w->state = WORKER_GONE;
			if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
				p->stats->workers_lost++;
			left--;
		}
		if (left > 0)
			nanosleep(&tick, NULL);
	}
	for (unsigned i = 0; i < p->nworkers; i++)
		if (p->workers[i].state != WORKER_GONE) {
			worker_reap(&p->workers[i], 0, NULL);
			p->stats->workers_lost++;
		}
}

static void pool_release(struct pool *p)
{
	if (p->workers)
		for (unsigned i = 0; i < p->nworkers; i++) {
			struct worker *w = &p->workers[i];
			for (unsigned k = 0; k < MAX_INFLIGHT; k++)
				task_release(&w->inflight[k]);
			pexec__buf_release(&w->in);
			if (w->arena.base)
				munmap(w->arena.base, w->arena.size);
			free(w->ends);
		}
	if (p->slots)
		for (unsigned i = 0; i < p->nslots; i++) {
			struct chunk *c = &p->slots[i];
			pexec__buf_release(&c->items);
			pexec__buf_release(&c->results);
			free(c->item_off);
			free(c->rec_off);
			free(c->tries);
			free(c->meta);
		}
	for (size_t i = 0; i < p->queue_len; i++)
		task_release(&p->queue[i]);
	free(p->queue);
	free(p->texts);
	free(p->inputs);
	free(p->workers);
	free(p->slots);
	if (p->progress)
		munmap(p->progress, p->nworkers * sizeof(*p->progress));
}

pexec_code pexec__pool_run(const pexec_descriptor *desc, const pexec_opts *opts,
                           pexec_next_fn next, void *next_ctx, pexec_result_fn sink,
                           void *sink_ctx, pexec_stats *stats, pexec_error *err)
{
	struct pool p = {
		.desc = desc, .opts = opts, .next = next, .next_ctx = next_ctx,
		.sink = sink, .sink_ctx = sink_ctx, .stats = stats, .err = err,
		.chunk_items = 1, .parent = getpid(),
		.timeout_ns = (uint64_t)(opts->timeout * 1e9),
		.tick_ns = (uint64_t)(opts->tick_ms ? opts->tick_ms : 250) * 1000000u,
	};
	pexec_code rc = PEXEC_OK;
	size_t arena_size;
	void *shm;

	p.nworkers = opts->jobs ? opts->jobs : pexec_cpu_count();
	p.nslots = 4 * p.nworkers < 8 ? 8 : 4 * p.nworkers;
	p.workers = calloc(p.nworkers, sizeof(*p.workers));
	p.slots = calloc(p.nslots, sizeof(*p.slots));
	shm = mmap(NULL, p.nworkers * sizeof(*p.progress), PROT_READ | PROT_WRITE,
	           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm != MAP_FAILED)
		p.progress = shm;
	if (!p.workers || !p.slots || !p.progress) {
		rc = pexec__fail(err, PEXEC_ESYS, "out of memory for %u workers", p.nworkers);
		goto out;
	}
	for (unsigned i = 0; i < p.nslots; i++) {
		pexec__buf_init(&p.slots[i].items);
		pexec__buf_init(&p.slots[i].results);
	}
	arena_size = ARENA_TOTAL / p.nworkers;
	arena_size = arena_size < ARENA_MIN ? ARENA_MIN : arena_size > ARENA_MAX ? ARENA_MAX
	                                                                          : arena_size;
	for (unsigned i = 0; i < p.nworkers; i++) {
		struct worker *w = &p.workers[i];
		void *base;

		w->to_fd = w->from_fd = -1;
		w->progress = &p.progress[i];
		pexec__buf_init(&w->in);
		/* Without an arena (mmap refused) results come through the pipe. */
		base = mmap(NULL, arena_size, PROT_READ | PROT_WRITE,
		            MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (base != MAP_FAILED) {
			w->arena.base = base;
			w->arena.size = arena_size;
		}
		w->nends = p.nslots + MAX_INFLIGHT + 1;
		w->ends = calloc(w->nends, sizeof(*w->ends));
		if (!w->ends) {
			rc = pexec__fail(err, PEXEC_ESYS, "out of memory for %u workers", p.nworkers);
			goto out;
		}
	}
	for (unsigned i = 0; i < p.nworkers && !rc; i++)
		rc = worker_spawn(&p, &p.workers[i]);
	if (!rc)
		rc = loop(&p);
	shutdown_workers(&p, rc != PEXEC_OK);
	if (rc == PEXEC_OK && stats->failed)
		rc = PEXEC_EITEM;
out:
	pool_release(&p);
	return rc;
}
