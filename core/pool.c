/*
 * pool.c - the process pool: forks workers, deals chunks of items out to them,
 * collects their results and hands them to the sink, in input order unless
 * asked otherwise.
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
 * go out by the tens of thousands.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
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

enum chunk_state { CHUNK_FREE = 0, CHUNK_RUNNING, CHUNK_DONE };

struct chunk {
	enum chunk_state state;
	uint64_t seq;
	uint64_t first;      /* index of its first item */
	uint32_t count;
	pexec_buf buf;       /* the CHUNK frame while running, the RESULTS frame when done */
};

enum worker_state { WORKER_GONE = 0, WORKER_STARTING, WORKER_READY };

struct worker {
	enum worker_state state;
	pid_t pid;
	int to_fd;           /* chunks go out here (non-blocking) */
	int from_fd;         /* results come back here (non-blocking) */
	struct chunk *inflight[MAX_INFLIGHT];
	unsigned ninflight;
	unsigned nsent;      /* inflight[0..nsent) are fully written */
	size_t sent_off;     /* bytes of inflight[nsent] written */
	pexec_buf in;        /* bytes received, not yet a whole frame */
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
	struct chunk *slots;
	unsigned nslots;
	unsigned nbusy;      /* slots not FREE */
	uint64_t next_seq;   /* the next chunk to build */
	uint64_t emit_seq;   /* ordered mode: the next chunk to hand over */
	uint64_t next_index; /* the next item's index */
	int source_done;
	pexec_code stop;     /* set: stop dispatching and end the run with it */

	double item_ns;      /* moving average of worker time per item; 0: unknown */
	uint32_t chunk_items;
	pid_t parent;
};

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
child_start(struct pool *p, int in_fd, int out_fd, const sigset_t *mask)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	int a, b, null_fd;

	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != p->parent)
		_exit(3);
	sigprocmask(SIG_SETMASK, mask, NULL);

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
	pexec__worker_main(p->desc, p->opts->config, 3, 4);
}

static pexec_code worker_spawn(struct pool *p, struct worker *w)
{
	int down[2] = { -1, -1 }, up[2] = { -1, -1 };
	sigset_t all, old;
	pid_t pid;

	if (pipe2(down, O_CLOEXEC) || pipe2(up, O_CLOEXEC)) {
		pexec__fail(p->err, PEXEC_ESYS, "cannot create a pipe: %s", strerror(errno));
		goto fail;
	}
	/* Bigger pipes mean fewer wakeups per chunk; the default is kept if refused. */
	fcntl(down[1], F_SETPIPE_SZ, PIPE_SIZE);
	fcntl(up[1], F_SETPIPE_SZ, PIPE_SIZE);

	/* No signal handler of the caller's may run in the child before it has
	 * reset them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		close(down[1]);
		close(up[0]);
		child_start(p, down[0], up[1], &old);
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

/* Closes a worker's pipes and collects its exit status, killing it first if
 * `kill_it`.  Returns the wait status. */
static int worker_reap(struct worker *w, int kill_it)
{
	int status = 0;

	if (w->to_fd >= 0)
		close(w->to_fd);
	if (w->from_fd >= 0)
		close(w->from_fd);
	w->to_fd = w->from_fd = -1;
	if (kill_it)
		kill(w->pid, SIGKILL);
	while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
		;
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

static void slot_release(struct pool *p, struct chunk *c)
{
	c->state = CHUNK_FREE;
	c->buf.len = 0;
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

/* Builds the next chunk from the source into a free slot.  Returns the chunk,
 * or NULL when there is nothing to send (end of input, or an error that set
 * p->stop). */
static struct chunk *chunk_build(struct pool *p)
{
	uint32_t want = next_chunk_items(p), count = 0;
	struct chunk *c = slot_take(p);
	const char *data;
	size_t len;
	int rc = 0;

	if (!c)
		return NULL;
	c->buf.len = 0;
	if (pexec__frame_begin(&c->buf, PEXEC_FRAME_CHUNK, p->next_index))
		goto nomem;
	while (count < want && c->buf.len < CHUNK_BYTES + PEXEC_FRAME_HEADER_SIZE) {
		rc = p->next(p->next_ctx, &data, &len, p->err);
		if (rc <= 0)
			break;
		if (pexec__frame_put_item(&c->buf, data, len))
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
	pexec__frame_end(&c->buf, 0, count);
	c->state = CHUNK_RUNNING;
	c->seq = p->next_seq++;
	c->first = p->next_index;
	c->count = count;
	p->next_index += count;
	p->stats->items += count;
	p->nbusy++;
	return c;
nomem:
	p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory building a chunk");
	return NULL;
}

/* Replaces a chunk's contents with one failure record per item. */
static void chunk_fail_all(struct pool *p, struct chunk *c, const char *why)
{
	c->buf.len = 0;
	if (pexec__frame_begin(&c->buf, PEXEC_FRAME_RESULTS, 0))
		goto nomem;
	for (uint32_t i = 0; i < c->count; i++) {
		size_t at = pexec__frame_record_begin(&c->buf);
		if (at == (size_t)-1 || pexec_buf_puts(&c->buf, why))
			goto nomem;
		pexec__frame_record_end(&c->buf, at, 0, PEXEC_STAGE_WORKER);
	}
	pexec__frame_end(&c->buf, 0, c->count);
	c->state = CHUNK_DONE;
	return;
nomem:
	p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory recording a failure");
}

/* Hands a done chunk's results to the sink and frees its slot. */
static void chunk_emit(struct pool *p, struct chunk *c)
{
	struct pexec__frame_cursor cur = {
		.p = c->buf.data + PEXEC_FRAME_HEADER_SIZE,
		.end = c->buf.data + c->buf.len,
	};
	pexec_result r = { 0 };
	char msg[PEXEC_ERROR_MAX];
	int more;

	r.index = c->first;
	while (!p->stop && (more = pexec__frame_next_record(&cur, &r.data, &r.len, &r.ok,
	                                                    &r.stage)) == 1) {
		if (r.ok) {
			p->stats->ok++;
			r.message = NULL;
		} else {
			/* Messages travel without their NUL. */
			snprintf(msg, sizeof(msg), "%.*s", (int)r.len, r.data);
			r.message = msg;
			p->stats->failed++;
		}
		if (p->sink) {
			int rc = p->sink(p->sink_ctx, &r, p->err);
			if (rc < 0)
				p->stop = (pexec_code)-rc;
		}
		if (!r.ok && p->opts->fail_fast && !p->stop)
			p->stop = pexec__fail(p->err, PEXEC_ESTOPPED,
			                      "stopped at the first failure (--fail-fast): item %llu",
			                      (unsigned long long)r.index);
		r.index++;
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

/* ---- the event loop ---- */

static void note_timing(struct pool *p, const struct pexec__frame_header *h)
{
	double per_item = (double)h->aux / (h->count ? h->count : 1);

	p->item_ns = p->item_ns > 0 ? 0.7 * p->item_ns + 0.3 * per_item : per_item;
}

/* Takes a whole RESULTS frame of `len` bytes from the front of w->in: the
 * bytes become the chunk's, and any bytes after it move to the chunk's old
 * buffer, which becomes w->in (buffers are recycled, never freed per chunk). */
static void take_results(struct pool *p, struct worker *w, const struct pexec__frame_header *h,
                         size_t len)
{
	struct chunk *c = w->inflight[0];
	pexec_buf old = c->buf;

	if (h->count != c->count) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS,
		                      "protocol error: worker %ld answered %u results for %u items",
		                      (long)w->pid, h->count, c->count);
		return;
	}
	note_timing(p, h);
	old.len = 0;
	if (w->in.len > len && pexec_buf_append(&old, w->in.data + len, w->in.len - len)) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
		return;
	}
	c->buf = w->in;
	c->buf.len = len;
	w->in = old;
	c->state = CHUNK_DONE;
	memmove(w->inflight, w->inflight + 1, (MAX_INFLIGHT - 1) * sizeof(w->inflight[0]));
	w->ninflight--;
	w->nsent--;
	emit_ready(p, c);
}

/* Handles every whole frame at the front of w->in. */
static void worker_frames(struct pool *p, struct worker *w)
{
	struct pexec__frame_header h;

	while (!p->stop && w->in.len >= PEXEC_FRAME_HEADER_SIZE) {
		size_t len;

		if (pexec__frame_parse_header(w->in.data, &h, p->err)) {
			p->stop = PEXEC_ESYS;
			return;
		}
		len = PEXEC_FRAME_HEADER_SIZE + h.payload_len;
		if (w->in.len < len)
			return;
		switch (h.type) {
		case PEXEC_FRAME_READY:
			w->state = WORKER_READY;
			break;
		case PEXEC_FRAME_INITFAIL:
			p->stop = pexec__fail(p->err, PEXEC_EINIT, "plugin '%s' init failed: %.*s",
			                      p->desc->name, (int)h.payload_len,
			                      w->in.data + PEXEC_FRAME_HEADER_SIZE);
			return;
		case PEXEC_FRAME_RESULTS:
			if (w->ninflight == 0 || w->nsent == 0) {
				p->stop = pexec__fail(p->err, PEXEC_ESYS,
				                      "protocol error: results from idle worker %ld",
				                      (long)w->pid);
				return;
			}
			take_results(p, w, &h, len);
			continue; /* w->in was replaced */
		default:
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "protocol error: unexpected frame");
			return;
		}
		memmove(w->in.data, w->in.data + len, w->in.len - len);
		w->in.len -= len;
	}
}

static int work_remains(const struct pool *p)
{
	return !p->source_done || p->nbusy > 0;
}

/* A worker's pipe closed: it died.  Its chunks fail, item by item, and a new
 * worker takes its place while there is work left. */
static void worker_lost(struct pool *p, struct worker *w)
{
	enum worker_state was = w->state;
	char why[PEXEC_ERROR_MAX], how[64];
	pid_t pid = w->pid;

	describe_status(worker_reap(w, 1), how, sizeof(how));
	p->stats->workers_lost++;
	if (was == WORKER_STARTING) {
		p->stop = pexec__fail(p->err, PEXEC_EINIT, "plugin '%s': worker %ld %s during init",
		                      p->desc->name, (long)pid, how);
		return;
	}
	snprintf(why, sizeof(why), "worker %ld %s", (long)pid, how);
	for (unsigned i = 0; i < w->ninflight && !p->stop; i++) {
		chunk_fail_all(p, w->inflight[i], why);
		emit_ready(p, w->inflight[i]);
	}
	w->ninflight = w->nsent = 0;
	if (!p->stop && work_remains(p))
		p->stop = worker_spawn(p, w);
}

static void worker_read(struct pool *p, struct worker *w)
{
	for (;;) {
		size_t want = READ_MIN;
		ssize_t n;

		if (w->in.len >= PEXEC_FRAME_HEADER_SIZE) {
			struct pexec__frame_header h;
			if (pexec__frame_parse_header(w->in.data, &h, p->err)) {
				p->stop = PEXEC_ESYS;
				return;
			}
			if (PEXEC_FRAME_HEADER_SIZE + h.payload_len - w->in.len > want)
				want = PEXEC_FRAME_HEADER_SIZE + h.payload_len - w->in.len;
		}
		if (pexec_buf_reserve(&w->in, want)) {
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory reading results");
			return;
		}
		n = read(w->from_fd, w->in.data + w->in.len, w->in.cap - w->in.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			worker_lost(p, w);
			return;
		}
		if (n == 0) {
			worker_lost(p, w);
			return;
		}
		w->in.len += (size_t)n;
		worker_frames(p, w);
		if (p->stop || w->state == WORKER_GONE)
			return;
	}
}

static void worker_write(struct pool *p, struct worker *w)
{
	(void)p;
	while (w->nsent < w->ninflight) {
		struct chunk *c = w->inflight[w->nsent];
		ssize_t n = write(w->to_fd, c->buf.data + w->sent_off, c->buf.len - w->sent_off);

		if (n < 0) {
			/* EPIPE: the worker is gone; its EOF on the other pipe says so. */
			return;
		}
		w->sent_off += (size_t)n;
		if (w->sent_off == c->buf.len) {
			w->nsent++;
			w->sent_off = 0;
		}
	}
}

/* Gives idle workers work: first one chunk each, then, when chunks are quick,
 * a second one queued so that no worker waits on the parent between chunks. */
static void dispatch(struct pool *p)
{
	unsigned depth = p->item_ns > 0 && p->item_ns * p->chunk_items < PREFETCH_BELOW_NS
	                         ? MAX_INFLIGHT : 1;

	for (unsigned level = 1; level <= depth; level++) {
		for (unsigned i = 0; i < p->nworkers; i++) {
			struct worker *w = &p->workers[i];
			struct chunk *c;

			if (p->stop || p->source_done || !window_has_room(p))
				return;
			if (w->state == WORKER_GONE || w->ninflight >= level)
				continue;
			c = chunk_build(p);
			if (!c)
				continue;
			w->inflight[w->ninflight++] = c;
			worker_write(p, w);
		}
	}
}

static pexec_code loop(struct pool *p)
{
	struct pollfd *fds = calloc(2 * (size_t)p->nworkers, sizeof(*fds));

	if (!fds)
		return pexec__fail(p->err, PEXEC_ESYS, "out of memory");
	while (!p->stop && work_remains(p)) {
		nfds_t n = 0;

		dispatch(p);
		if (p->stop || !work_remains(p))
			break;
		for (unsigned i = 0; i < p->nworkers; i++) {
			struct worker *w = &p->workers[i];
			if (w->state == WORKER_GONE)
				continue;
			fds[n++] = (struct pollfd){ .fd = w->from_fd, .events = POLLIN };
			if (w->nsent < w->ninflight)
				fds[n++] = (struct pollfd){ .fd = w->to_fd, .events = POLLOUT };
		}
		if (poll(fds, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "poll: %s", strerror(errno));
			break;
		}
		for (unsigned i = 0; i < p->nworkers && !p->stop; i++) {
			struct worker *w = &p->workers[i];
			if (w->state == WORKER_GONE)
				continue;
			if (w->nsent < w->ninflight)
				worker_write(p, w);
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
			worker_reap(w, 1);
			continue;
		}
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
			close(w->from_fd);
			w->from_fd = -1;
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
			worker_reap(&p->workers[i], 1);
			p->stats->workers_lost++;
		}
}

pexec_code pexec__pool_run(const pexec_descriptor *desc, const pexec_opts *opts,
                           pexec_next_fn next, void *next_ctx, pexec_result_fn sink,
                           void *sink_ctx, pexec_stats *stats, pexec_error *err)
{
	struct pool p = {
		.desc = desc, .opts = opts, .next = next, .next_ctx = next_ctx,
		.sink = sink, .sink_ctx = sink_ctx, .stats = stats, .err = err,
		.chunk_items = 1, .parent = getpid(),
	};
	pexec_code rc = PEXEC_OK;

	p.nworkers = opts->jobs ? opts->jobs : pexec_cpu_count();
	p.nslots = 4 * p.nworkers < 8 ? 8 : 4 * p.nworkers;
	p.workers = calloc(p.nworkers, sizeof(*p.workers));
	p.slots = calloc(p.nslots, sizeof(*p.slots));
	if (!p.workers || !p.slots) {
		rc = pexec__fail(err, PEXEC_ESYS, "out of memory for %u workers", p.nworkers);
		goto out;
	}
	for (unsigned i = 0; i < p.nslots; i++)
		pexec__buf_init(&p.slots[i].buf);
	for (unsigned i = 0; i < p.nworkers; i++) {
		p.workers[i].to_fd = p.workers[i].from_fd = -1;
		pexec__buf_init(&p.workers[i].in);
	}
	for (unsigned i = 0; i < p.nworkers && !rc; i++)
		rc = worker_spawn(&p, &p.workers[i]);
	if (!rc)
		rc = loop(&p);
	shutdown_workers(&p, rc != PEXEC_OK);
	if (rc == PEXEC_OK && stats->failed)
		rc = PEXEC_EITEM;
out:
	if (p.workers)
		for (unsigned i = 0; i < p.nworkers; i++)
			pexec__buf_release(&p.workers[i].in);
	if (p.slots)
		for (unsigned i = 0; i < p.nslots; i++)
			pexec__buf_release(&p.slots[i].buf);
	free(p.workers);
	free(p.slots);
	return rc;
}
