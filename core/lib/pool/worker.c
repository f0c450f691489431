/*
 * worker.c - the pool's side of one worker: starting its process (the
 * fork and the child's setup before pexec__worker_main), ending and reaping
 * it, and moving frames through its two non-blocking pipes: CHUNK frames out,
 * RESULTS frames (or RESULTS_SHM notices of frames in its result arena) in.
 *
 * Results become chunk records here; chunk.c emits them once a chunk is
 * complete.  When the pipe says the worker is gone, fault.c decides
 * what its items cost.  The arena bookkeeping lives here too: a frame in the
 * arena stays there until the chunk that reads it is emitted.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
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
#include "internal.h"
#include "util.h"
#include "worker.h"

/* ---- starting and ending workers ---- */

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

pexec_code pexec__pool_worker_spawn(struct pool *p, struct worker *w)
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

void pexec__pool_worker_close(struct worker *w)
{
	if (w->to_fd >= 0)
		close(w->to_fd);
	if (w->from_fd >= 0)
		close(w->from_fd);
	w->to_fd = w->from_fd = -1;
}

/* Collects a worker that is ending.  With `grace_ms`, waits that long for it
 * to end by itself (returns 1 in *by_itself) before killing it. */
int pexec__pool_worker_reap(struct worker *w, int grace_ms, int *by_itself)
{
	struct timespec tick = { 0, 1000 * 1000 };
	int status = 0;
	pid_t r;

	pexec__pool_worker_close(w);
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

/* ---- the result arena ---- */

/* Releases arena frame `frame` of worker `w`, and moves the tail past every
 * frame released in order. */
void pexec__pool_arena_release(struct worker *w, uint64_t frame)
{
	w->ends[frame % w->nends] |= 1;
	while (w->frames_released < w->frames_announced &&
	       (w->ends[w->frames_released % w->nends] & 1)) {
		w->arena_tail = w->ends[w->frames_released % w->nends] >> 1;
		w->frames_released++;
	}
	atomic_store_explicit(&w->progress->arena_tail, w->arena_tail, memory_order_release);
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

/* ---- results ---- */

/* When and by whom the items of a RESULTS frame were run. */
static struct item_meta frame_meta(const struct worker *w, const struct pexec__frame_header *h)
{
	double busy = (double)h->aux / 1e9;

	return (struct item_meta){ w->pid, pexec__now_real() - busy, h->count ? busy / h->count : 0 };
}

static void note_timing(struct pool *p, const struct pexec__frame_header *h)
{
	double per_item = (double)h->aux / (h->count ? h->count : 1);

	p->item_ns = p->item_ns > 0 ? 0.7 * p->item_ns + 0.3 * per_item : per_item;
}

static void worker_pop(struct worker *w)
{
	pexec__pool_task_release(&w->inflight[0]);
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
		if (pexec__pool_chunk_put_record(p, c, t->pos[i], ok, stage, data, dlen))
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
	pexec__pool_chunk_check_done(p, c);
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
		pexec__pool_arena_release(w, frame_no);
		if (rc)
			return -1;
	}
	worker_pop(w);
	pexec__pool_chunk_check_done(p, c);
	return 0;
}

/* ---- the pipes ---- */

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

void pexec__pool_worker_read(struct pool *p, struct worker *w)
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
				pexec__pool_worker_retired(p, w);
			else
				pexec__pool_worker_lost(p, w);
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
	pexec__pool_worker_lost(p, w);
}

static const char *task_data(const struct task *t)
{
	return t->pos ? t->frame.data : t->chunk->items.data;
}

static size_t task_len(const struct task *t)
{
	return t->pos ? t->frame.len : t->chunk->items.len;
}

void pexec__pool_worker_write(struct worker *w)
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
