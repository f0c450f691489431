/*
 * worker.c - the pool's side of one worker: starting its process (the fork
 * and the child's setup before pexec__worker_main), noticing its end and
 * reaping it, and moving frames through its two non-blocking pipes: CHUNK
 * frames out, RESULTS frames (or RESULTS_SHM notices of frames in its result
 * arena) in.
 *
 * Reading only records: results become chunk records (chunk.c), the end of
 * the pipe becomes w->eof.  What a worker's end costs is fault.c's to say,
 * in its own phase of the loop.
 *
 * A worker leads a process group of its own, so that whatever it starts (a
 * plugin may fork, or run a helper) ends with it: killing a worker kills its
 * group.  Its end is known from its exit (a pidfd), not from the end of its
 * pipe, which a process it started may hold open.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

/* ---- starting workers ---- */

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

/* Puts `fd` at `to`, close-on-exec; 0 or -1. */
static int place_fd(int fd, int to)
{
	return fd < 0 || dup2(fd, to) < 0 || fcntl(to, F_SETFD, FD_CLOEXEC) < 0 ? -1 : 0;
}

/* In the child: the two pipes as 3 and 4, the input file spans are read from
 * as 5, the output file they are written to as 6 and the descriptor to keep
 * while it lives as 7 (where there are such), all close-on-exec (a helper a
 * plugin execs holds none of pexec's descriptors), 0 from /dev/null, 1 onto
 * stderr (a plugin's prints never reach pexec's output), 2, and nothing
 * else. */
static void child_descriptors(int in_fd, int out_fd, const pexec_spans *sp)
{
	int from[5] = { in_fd, out_fd, sp ? sp->input_fd : -1, sp ? sp->out_fd : -1,
	                sp && sp->out_fd >= 0 ? sp->keep_fd : -1 };
	int null_fd;

	for (int i = 0; i < 5; i++)
		if (from[i] >= 0 && (from[i] = fcntl(from[i], F_DUPFD, 8)) < 0)
			_exit(3);
	for (int i = 0; i < 5; i++)
		if (from[i] >= 0 ? place_fd(from[i], 3 + i) : (close(3 + i), 0))
			_exit(3);
	close_from(8);
	null_fd = open("/dev/null", O_RDONLY);
	if (null_fd >= 0 && null_fd != 0) {
		dup2(null_fd, 0);
		close(null_fd);
	}
	if (fcntl(2, F_GETFD) >= 0)
		dup2(2, 1);
}

/* In the child, between fork() and the worker loop: a clean signal state, a
 * death tied to the parent's, a process group of its own, and only the
 * descriptors a worker needs. */
static void __attribute__((noreturn))
child_start(struct pool *p, struct worker *w, int in_fd, int out_fd, const sigset_t *mask)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };

	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != p->parent)
		_exit(3);
	setpgid(0, 0);
	/* Out of the terminal's foreground group, a worker must still be able
	 * to write to it (stty tostop). */
	signal(SIGTTOU, SIG_IGN);
	sigprocmask(SIG_SETMASK, mask, NULL);
	/* Other workers' arenas are none of this one's business. */
	for (unsigned i = 0; i < p->nworkers; i++)
		if (&p->workers[i] != w && p->workers[i].arena.base)
			munmap(p->workers[i].arena.base, p->workers[i].arena.size);
	if (p->opts->memory_limit) {
		struct rlimit rl = { p->opts->memory_limit, p->opts->memory_limit };
		setrlimit(RLIMIT_AS, &rl);
	}
	child_descriptors(in_fd, out_fd, p->spans);
	/* Buffered output of the parent's, copied by fork(), is not ours to write. */
	__fpurge(stdout);
	if (p->spans) {
		p->child_spans = *p->spans;
		if (p->child_spans.input_fd >= 0)
			p->child_spans.input_fd = 5;
		if (p->child_spans.out_fd >= 0)
			p->child_spans.out_fd = 6;
	}
	pexec__worker_main(p->desc, p->opts->config, 3, 4, w->progress, &w->arena,
	                   p->timeout_ns != 0, p->spans ? &p->child_spans : NULL);
}

/* The slot's fields for a new process. */
static void worker_reset(struct pool *p, struct worker *w, pid_t pid, int to_fd, int from_fd)
{
	w->pid = pid;
	/* Where pidfds are refused (an old kernel, a seccomp filter), the end
	 * is polled for with waitpid(). */
	w->pidfd = pidfd_open(pid, 0);
	w->to_fd = to_fd;
	w->from_fd = from_fd;
	w->state = WORKER_STARTING;
	w->ninflight = w->nsent = 0;
	w->sent_off = 0;
	w->frames_done = 0;
	w->items_given = 0;
	w->kill_reason = NULL;
	w->readable = w->writable = w->exit_ready = w->eof = w->ended = w->closed = 0;
	w->status = 0;
	w->spawned_ns = pexec__now_ns();
	w->in.len = 0;
	w->orders.len = w->orders_off = 0;
	p->stats->workers_started++;
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
	/* Both sides set the group, so it is there whichever runs first. */
	setpgid(pid, pid);
	pexec__contain_add(&p->contain, pid);
	close(down[0]);
	close(up[1]);
	set_nonblock(down[1]);
	set_nonblock(up[0]);
	worker_reset(p, w, pid, down[1], up[0]);
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

/* ---- ending workers ---- */

void pexec__pool_worker_kill(struct worker *w, const char *reason)
{
	if (reason && !w->kill_reason)
		w->kill_reason = reason;
	kill(-w->pid, SIGKILL);
	kill(w->pid, SIGKILL);
}

void pexec__pool_worker_close(struct worker *w)
{
	if (w->to_fd >= 0)
		close(w->to_fd);
	if (w->from_fd >= 0)
		close(w->from_fd);
	w->to_fd = w->from_fd = -1;
}

/* A reaped worker: what it started goes with it.  Its pipes stay open, for
 * the last of what it wrote to be read. */
static void reaped(struct worker *w, int status)
{
	w->ended = 1;
	w->status = status;
	kill(-w->pid, SIGKILL);
	if (w->pidfd >= 0)
		close(w->pidfd);
	w->pidfd = -1;
}

int pexec__pool_worker_poll(struct worker *w)
{
	int status;
	pid_t r;

	if (w->ended)
		return 1;
	do
		r = waitpid(w->pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == w->pid || (r < 0 && errno == ECHILD)) {
		reaped(w, r == w->pid ? status : 0);
		return 1;
	}
	return 0;
}

int pexec__pool_worker_end(struct worker *w, int ms)
{
	struct timespec tick = { 0, 1000 * 1000 };
	int status = 0, by_itself;

	for (int waited = 0; waited < ms && !pexec__pool_worker_poll(w); waited++) {
		if (w->pidfd >= 0)
			poll(&(struct pollfd){ .fd = w->pidfd, .events = POLLIN }, 1, 1);
		else
			nanosleep(&tick, NULL);
	}
	by_itself = w->ended;
	if (!w->ended) {
		pexec__pool_worker_kill(w, NULL);
		while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
			;
		reaped(w, status);
	}
	pexec__pool_worker_close(w);
	return by_itself;
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
	p->fruitless_deaths = 0;
}

/* The oldest task is answered: it leaves the worker. */
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

/* A whole chunk answered through the pipe: the frame's bytes become the
 * chunk's results, and any bytes after them move to the chunk's old results
 * buffer, which becomes w->in (no copy, no allocation per chunk). */
static void take_whole(struct pool *p, struct worker *w, const struct pexec__frame_header *h,
                       size_t len)
{
	struct chunk *c = w->inflight[0].chunk;
	pexec_buf old = c->results;

	old.len = 0;
	if (w->in.len > len && pexec_buf_append(&old, w->in.data + len, w->in.len - len)) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
		return;
	}
	c->results = w->in;
	c->results.len = len;
	c->res = c->results.data;
	c->res_len = len;
	c->whole = frame_meta(w, h);
	w->in = old;
	c->pending = 0;
}

/* Records a RESULTS frame of `len` bytes from the front of w->in. */
static int take_results(struct pool *p, struct worker *w, const struct pexec__frame_header *h,
                        size_t len)
{
	struct task *t = &w->inflight[0];
	struct chunk *c = t->chunk;

	if ((h->type == PEXEC_FRAME_SPAN_RESULTS) != c->span || (!c->span && h->count != t->n))
		return -1;
	note_timing(p, h);
	if (c->span) {
		take_whole(p, w, h, len);
		if (!p->stop && pexec__span_take(p, c, c->results.data, len))
			return -1;
	} else if (!t->pos) {
		take_whole(p, w, h, len);
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

/* Records a RESULTS frame announced in the worker's arena: a whole chunk's
 * results are read where they lie until the chunk is emitted; a partial
 * task's are copied out and the frame released at once. */
static int take_arena_results(struct pool *p, struct worker *w,
                              const struct pexec__frame_header *notice)
{
	struct task *t = &w->inflight[0];
	struct chunk *c = t->chunk;
	struct pexec__frame_header h;
	pexec_error perr;
	uint64_t frame_no;
	const char *frame = pexec__arena_take(p, w, notice, &frame_no);

	if (!frame)
		return p->stop ? 0 : -1;
	pexec__frame_parse_header(frame, &h, &perr);
	if ((h.type == PEXEC_FRAME_SPAN_RESULTS) != c->span || (!c->span && h.count != t->n))
		return -1;
	note_timing(p, &h);
	if (c->span) {
		if (pexec__span_take(p, c, frame, notice->count))
			return -1;
		c->whole = frame_meta(w, &h);
		c->arena_owner = w;
		c->arena_frame = frame_no;
	} else if (!t->pos) {
		c->res = frame;
		c->res_len = notice->count;
		c->whole = frame_meta(w, &h);
		c->arena_owner = w;
		c->arena_frame = frame_no;
		c->pending = 0;
	} else {
		int rc = put_task_records(p, w, t, &h, frame, notice->count);
		pexec__arena_release(w, frame_no);
		if (rc)
			return -1;
	}
	worker_pop(w);
	pexec__pool_chunk_check_done(p, c);
	return 0;
}

/* ---- the pipes ---- */

/* Records one whole frame of `len` bytes at the front of w->in.  Returns 1
 * when the frame was consumed from w->in, 0 when it is still there, -1 when
 * the worker broke the protocol. */
static int take_frame(struct pool *p, struct worker *w, const struct pexec__frame_header *h,
                      size_t len)
{
	switch (h->type) {
	case PEXEC_FRAME_READY:
		if (w->state == WORKER_STARTING)
			w->state = WORKER_READY;
		return 0;
	case PEXEC_FRAME_INITFAIL:
		p->stop = pexec__fail(p->err, PEXEC_EINIT, "plugin '%s' init failed: %.*s",
		                      p->desc->name, (int)h->payload_len,
		                      w->in.data + PEXEC_FRAME_HEADER_SIZE);
		return 0;
	case PEXEC_FRAME_RESULTS:
	case PEXEC_FRAME_SPAN_RESULTS:
		if (w->nsent == 0 || take_results(p, w, h, len))
			return -1;
		return 1;
	case PEXEC_FRAME_RESULTS_SHM:
		if (w->nsent == 0 || h->payload_len != 0 || take_arena_results(p, w, h))
			return -1;
		return 0;
	case PEXEC_FRAME_WRITTEN:
		return p->spans && pexec__span_written(p, w, h->aux, (int)h->count) == 0 ? 0 : -1;
	default:
		return -1;
	}
}

/* Records every whole frame at the front of w->in.  Returns -1 when the
 * worker broke the protocol. */
static int worker_frames(struct pool *p, struct worker *w)
{
	struct pexec__frame_header h;
	pexec_error perr;

	while (!p->stop && w->in.len >= PEXEC_FRAME_HEADER_SIZE) {
		size_t len;
		int taken;

		if (pexec__frame_parse_header(w->in.data, &h, &perr))
			return -1;
		len = PEXEC_FRAME_HEADER_SIZE + h.payload_len;
		if (w->in.len < len)
			return 0;
		taken = take_frame(p, w, &h, len);
		if (taken < 0)
			return -1;
		if (!taken) {
			memmove(w->in.data, w->in.data + len, w->in.len - len);
			w->in.len -= len;
		}
	}
	return 0;
}

/* How much to read: at least what the frame at the front still lacks. */
static size_t read_want(const struct worker *w, int *broken)
{
	struct pexec__frame_header h;
	pexec_error perr;
	size_t want = READ_MIN;

	*broken = 0;
	if (w->in.len >= PEXEC_FRAME_HEADER_SIZE) {
		if (pexec__frame_parse_header(w->in.data, &h, &perr))
			*broken = 1;
		else if (PEXEC_FRAME_HEADER_SIZE + h.payload_len - w->in.len > want)
			want = PEXEC_FRAME_HEADER_SIZE + h.payload_len - w->in.len;
	}
	return want;
}

void pexec__pool_worker_read(struct pool *p, struct worker *w)
{
	while (!p->stop && !w->eof && w->from_fd >= 0) {
		int broken;
		size_t want = read_want(w, &broken), room;
		ssize_t n;

		if (broken)
			goto broken;
		if (pexec_buf_reserve(&w->in, want)) {
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory reading results");
			return;
		}
		room = w->in.cap - w->in.len;
		n = read(w->from_fd, w->in.data + w->in.len, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			w->eof = 1;
			w->eof_ns = pexec__now_ns();
			return;
		}
		w->in.len += (size_t)n;
		if (worker_frames(p, w))
			goto broken;
		/* Less than there was room for: the pipe is empty (a read more
		 * would only say EAGAIN), and poll says when it is not. */
		if ((size_t)n < room)
			return;
	}
	return;
broken:
	pexec__pool_worker_kill(w, "sent a malformed message");
	w->eof = 1;
	w->eof_ns = pexec__now_ns();
}

/* Up to this many frames go in one writev. */
#define WRITE_IOV 16

/* What is due to the worker, in the order it must read it: the rest of a
 * task frame begun, the WRITE orders (which go between whole task frames),
 * then the tasks not yet sent.  Returns the iovecs filled. */
static int due_to_worker(const struct worker *w, struct iovec *iov)
{
	unsigned k = w->nsent;
	int n = 0;

	if (w->sent_off > 0) {
		const struct task *t = &w->inflight[k++];
		iov[n++] = (struct iovec){ (char *)pexec__pool_task_data(t) + w->sent_off,
			                   pexec__pool_task_len(t) - w->sent_off };
	}
	if (w->orders_off < w->orders.len)
		iov[n++] = (struct iovec){ w->orders.data + w->orders_off,
			                   w->orders.len - w->orders_off };
	for (; k < w->ninflight && n < WRITE_IOV; k++)
		iov[n++] = (struct iovec){ (char *)pexec__pool_task_data(&w->inflight[k]),
			                   pexec__pool_task_len(&w->inflight[k]) };
	return n;
}

/* Counts `n` bytes of due_to_worker()'s as sent. */
static void sent_to_worker(struct worker *w, size_t n)
{
	if (w->sent_off > 0) {
		size_t rest = pexec__pool_task_len(&w->inflight[w->nsent]) - w->sent_off;
		size_t k = n < rest ? n : rest;

		w->sent_off += k;
		n -= k;
		if (k < rest)
			return;
		w->nsent++;
		w->sent_off = 0;
	}
	if (w->orders_off < w->orders.len) {
		size_t rest = w->orders.len - w->orders_off, k = n < rest ? n : rest;

		w->orders_off += k;
		n -= k;
		if (k < rest)
			return;
		w->orders.len = w->orders_off = 0;
	}
	while (n > 0) {
		size_t len = pexec__pool_task_len(&w->inflight[w->nsent]);

		if (n < len) {
			w->sent_off = n;
			return;
		}
		w->nsent++;
		n -= len;
	}
}

/* Sends what is due to the worker in as few writes as the pipe takes: one
 * a wake-up in the common case, where a write an order and a task each
 * cost the worker a wake-up and the parent a system call. */
void pexec__pool_worker_write(struct worker *w)
{
	while (w->to_fd >= 0 && (w->nsent < w->ninflight || w->orders_off < w->orders.len)) {
		struct iovec iov[WRITE_IOV + 2];
		ssize_t n = writev(w->to_fd, iov, due_to_worker(w, iov));

		if (n < 0) {
			/* EAGAIN: later.  EPIPE: the worker is gone, which its end
			 * will say. */
			return;
		}
		sent_to_worker(w, (size_t)n);
	}
}
