/*
 * loop.c - the process pool: forks workers, deals chunks of items out to them,
 * collects their results and hands them to the sink, in input order unless
 * asked otherwise.  A worker that dies costs only the item it was running.
 *
 * The parent frames and routes bytes; it never parses a value.  It never
 * blocks on a worker either: its pipe ends are non-blocking and one poll()
 * drives every transfer, so a worker writing a large result while the
 * parent writes it the next chunk cannot deadlock them.
 *
 * The loop runs in phases, each turn the same sequence (as git's
 * run_processes_parallel does):
 *   1. read: take in what every readable worker sent, and record it (a
 *      result into its chunk, the end of a pipe as a flag) - nothing else;
 *   2. ended: settle workers whose process has ended (fault.c);
 *   3. collect: hand the done chunks that are next in order to the sink;
 *   4. dispatch: start workers where a slot is empty, retire those that
 *      have had their share, give idle ones work, write to their pipes;
 *   5. sleep: kill what overran --timeout, tick, let the sink flush what it
 *      holds, and wait for the next event or deadline.
 * So a read never forks, emits, calls the user or syncs a file, and every
 * worker is served before any of that happens.
 *
 * Memory is bounded by the reorder window: at most `nslots` chunks exist at
 * once (running, or done and waiting for an earlier one), each at most
 * CHUNK_BYTES of items, and past `window_base` chunks only while their
 * buffers hold under WINDOW_BYTES.  In ordered mode a slow chunk at the head
 * lets the others run on, within that bound, then stalls dispatch instead
 * of letting results pile up.
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
 * death names its item.  Either way no other item's result is lost.  A
 * worker's end is known from its exit (a pidfd), whatever the processes it
 * started hold open.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

/* Whether a worker has yet to report on its init: a run, even of no items,
 * ends only once every init is known to have succeeded. */
static int inits_pending(const struct pool *p)
{
	for (unsigned i = 0; i < p->nworkers; i++)
		if (p->workers[i].state == WORKER_STARTING)
			return 1;
	return 0;
}

/* Whether a worker still has chunks' output to write. */
static int writes_pending(const struct pool *p)
{
	for (unsigned i = 0; i < p->nworkers; i++)
		if (p->workers[i].pw_len)
			return 1;
	return 0;
}

static int finished(const struct pool *p)
{
	return p->stop ||
	       !(pexec__pool_work_remains(p) || inits_pending(p) || writes_pending(p));
}

/* ---- 1. read ---- */

static void read_phase(struct pool *p)
{
	for (unsigned i = 0; i < p->nworkers && !p->stop; i++) {
		struct worker *w = &p->workers[i];

		if (w->state != WORKER_GONE && w->readable)
			pexec__pool_worker_read(p, w);
		w->readable = 0;
	}
}

/* ---- 2. ended ---- */

/* A worker whose pipe reached its end while it lives on (it closed the pipe,
 * or a process it started holds it) is killed after a grace period, in which
 * a dying worker's exit status comes in. */
static void closed_while_alive(struct worker *w, uint64_t now)
{
	/* One told to leave has longer, for its fini. */
	uint64_t grace_ms = w->state == WORKER_RETIRING ? SHUTDOWN_GRACE_MS : EXIT_WAIT_MS;

	if (w->eof && !w->kill_reason && !w->closed &&
	    now - w->eof_ns >= grace_ms * 1000000u) {
		w->closed = 1;
		pexec__pool_worker_kill(w, NULL);
	}
}

static void ended_phase(struct pool *p)
{
	uint64_t now = pexec__now_ns();

	for (unsigned i = 0; i < p->nworkers && !p->stop; i++) {
		struct worker *w = &p->workers[i];

		if (w->state == WORKER_GONE)
			continue;
		if (!(w->pidfd < 0 || w->exit_ready) || !pexec__pool_worker_poll(w)) {
			closed_while_alive(w, now);
			continue;
		}
		/* Ended: what it wrote before it did is the last to read, and
		 * what it was to write to the output is written here. */
		pexec__pool_worker_read(p, w);
		if (p->spans)
			pexec__span_write_pending(p, w);
		if (w->state == WORKER_RETIRING) {
			if (w->closed || !WIFEXITED(w->status) || WEXITSTATUS(w->status) != 0)
				p->stats->workers_lost++;
		} else if (!p->stop) {
			pexec__pool_worker_lost(p, w);
		}
		pexec__pool_worker_close(w);
		pexec__contain_forget(&p->contain, w->pid);
		w->state = WORKER_GONE;
	}
}

/* ---- 4. dispatch ---- */

/* --max-tasks-per-worker: a worker that has had its share and holds nothing
 * is told to leave (EOF on its input: it runs fini and exits). */
static void maybe_retire(struct pool *p, struct worker *w)
{
	uint64_t max = p->opts->max_tasks_per_worker;

	if (max && w->state == WORKER_READY && w->items_given >= max && w->ninflight == 0) {
		close(w->to_fd);
		w->to_fd = -1;
		w->state = WORKER_RETIRING;
		w->eof_ns = pexec__now_ns();
	}
}

/* The next task for worker `w`: one to send again, else a new chunk. */
static int next_task(struct pool *p, struct worker *w, struct task *t)
{
	uint64_t max = p->opts->max_tasks_per_worker;
	uint64_t room = max ? max - w->items_given : 0;

	if (pexec__pool_requeued(p, t))
		return 1;
	if (p->stop || p->source_done || p->source_wait || !pexec__pool_window_has_room(p))
		return 0;
	memset(t, 0, sizeof(*t));
	t->chunk = pexec__pool_chunk_build(p, room);
	if (!t->chunk)
		return 0;
	t->n = t->chunk->count;
	return 1;
}

/* Gives idle workers work: first one task each, then, when chunks are quick,
 * a second one queued so that no worker waits on the parent between them. */
static void give_work(struct pool *p)
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
			pexec__pool_worker_write(w);
		}
	}
}

static void dispatch_phase(struct pool *p)
{
	for (unsigned i = 0; i < p->nworkers && !p->stop; i++) {
		struct worker *w = &p->workers[i];

		if (w->state == WORKER_GONE && pexec__pool_work_remains(p))
			p->stop = pexec__pool_worker_spawn(p, w);
		else
			maybe_retire(p, w);
	}
	give_work(p);
	for (unsigned i = 0; i < p->nworkers && !p->stop; i++) {
		struct worker *w = &p->workers[i];

		if (w->state != WORKER_GONE && (w->nsent < w->ninflight || w->orders.len))
			pexec__pool_worker_write(w);
		w->writable = 0;
	}
}

/* ---- 5. sleep ---- */

/* The deadline of a worker's current item or init (UINT64_MAX: none). */
static uint64_t deadline_of(const struct pool *p, const struct worker *w)
{
	uint64_t started;

	if (w->kill_reason || w->ended)
		return UINT64_MAX;
	if (w->state == WORKER_STARTING) {
		started = w->spawned_ns;
	} else {
		if (w->state != WORKER_READY || w->ninflight == 0 ||
		    atomic_load_explicit(&w->progress->stage, memory_order_acquire) ==
		            PEXEC_STAGE_NONE)
			return UINT64_MAX;
		started = atomic_load_explicit(&w->progress->started, memory_order_relaxed);
	}
	return started + p->timeout_ns;
}

/* --timeout: kills workers whose current item has run too long, and returns
 * how long poll() may sleep before the next deadline (-1: no deadline). */
static int check_deadlines(struct pool *p, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	if (!p->timeout_ns)
		return -1;
	for (unsigned i = 0; i < p->nworkers; i++) {
		struct worker *w = &p->workers[i];
		uint64_t deadline;

		if (w->state == WORKER_GONE || (deadline = deadline_of(p, w)) == UINT64_MAX)
			continue;
		if (now >= deadline) {
			snprintf(w->timeout_msg, sizeof(w->timeout_msg), "timed out after %g s",
			         p->opts->timeout);
			pexec__pool_worker_kill(w, w->timeout_msg);
			continue;
		}
		if (deadline < next)
			next = deadline;
	}
	if (next == UINT64_MAX)
		return 50; /* an item may begin at any moment: look again soon */
	return (int)((next - now) / 1000000) + 1;
}

static int min_timeout(int a, int b)
{
	return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* How long the wait may last: deadlines, ticks, and the workers whose end
 * must be looked for (no pidfd; a pipe closed while alive). */
static int sleep_timeout(struct pool *p)
{
	uint64_t now = pexec__now_ns();
	int timeout = check_deadlines(p, now);

	if (p->opts->on_tick) {
		if (now >= p->next_tick) {
			p->opts->on_tick(p->opts->tick_ctx, p->stats);
			p->next_tick = now + p->tick_ns;
		}
		timeout = min_timeout(timeout, (int)((p->next_tick - now) / 1000000) + 1);
	}
	for (unsigned i = 0; i < p->nworkers; i++) {
		const struct worker *w = &p->workers[i];
		if (w->state == WORKER_GONE)
			continue;
		if (w->pidfd < 0)
			timeout = min_timeout(timeout, NO_PIDFD_POLL_MS);
		if (w->eof && !w->closed)
			timeout = min_timeout(timeout, EXIT_WAIT_MS / 4);
	}
	return timeout;
}

/* Fills `fds` for the wait; `at[i]` is where worker i's entries begin. */
static nfds_t wait_set(struct pool *p, struct pollfd *fds, nfds_t *at)
{
	nfds_t n = 0;

	if (p->opts->cancel_fd > 0)
		fds[n++] = (struct pollfd){ .fd = p->opts->cancel_fd, .events = POLLIN };
	if (p->source_wait)
		fds[n++] = (struct pollfd){ .fd = p->opts->source_fd, .events = POLLIN };
	for (unsigned i = 0; i < p->nworkers; i++) {
		const struct worker *w = &p->workers[i];

		at[i] = n;
		if (w->state == WORKER_GONE)
			continue;
		fds[n++] = (struct pollfd){ .fd = w->eof ? -1 : w->from_fd, .events = POLLIN };
		fds[n++] = (struct pollfd){ .fd = w->pidfd, .events = POLLIN };
		fds[n++] = (struct pollfd){
			.fd = w->nsent < w->ninflight || w->orders.len ? w->to_fd : -1,
			.events = POLLOUT,
		};
	}
	return n;
}

/* Reaps what the run adopted and has ended (the living are left to their
 * work until the run ends). */
static void sweep(struct pool *p)
{
	uint64_t now = pexec__now_ns();
	pid_t pids[64];
	unsigned n = 0;

	if (!p->contain.subreaper || now < p->next_sweep)
		return;
	p->next_sweep = now + SWEEP_NS;
	for (unsigned i = 0; i < p->nworkers && n < 64; i++)
		if (p->workers[i].state != WORKER_GONE)
			pids[n++] = p->workers[i].pid;
	pexec__contain_sweep(&p->contain, pids, n, 0);
}

static void sleep_phase(struct pool *p, struct pollfd *fds, nfds_t *at)
{
	int timeout;
	nfds_t n, k = 0;

	sweep(p);
	timeout = sleep_timeout(p);
	if (p->emitted && p->sink) {
		/* About to wait: let the sink push out what it holds. */
		int rc = p->sink(p->sink_ctx, NULL, p->err);
		p->emitted = 0;
		if (rc < 0) {
			p->stop = (pexec_code)-rc;
			return;
		}
		if (rc > 0 && p->spans && p->source_wait) {
			/* The flush took in input that source_fd no longer shows. */
			p->source_wait = 0;
			timeout = 0;
		}
	}
	n = wait_set(p, fds, at);
	if (poll(fds, n, timeout) < 0 && errno != EINTR) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS, "poll: %s", strerror(errno));
		return;
	}
	if (p->opts->cancel_fd > 0 && fds[k++].revents) {
		p->stop = pexec__fail(p->err, PEXEC_ECANCELED, "cancelled");
		return;
	}
	if (p->source_wait && fds[k++].revents)
		p->source_wait = 0;
	for (unsigned i = 0; i < p->nworkers; i++) {
		struct worker *w = &p->workers[i];
		if (w->state == WORKER_GONE)
			continue;
		w->readable = fds[at[i]].revents != 0;
		w->exit_ready = fds[at[i] + 1].revents != 0;
		w->writable = fds[at[i] + 2].revents != 0;
	}
}

static pexec_code loop(struct pool *p)
{
	struct pollfd *fds = calloc(3 * (size_t)p->nworkers + 2, sizeof(*fds));
	nfds_t *at = calloc(p->nworkers, sizeof(*at));

	if (!fds || !at) {
		free(fds);
		free(at);
		return pexec__fail(p->err, PEXEC_ESYS, "out of memory");
	}
	for (;;) {
		read_phase(p);
		ended_phase(p);
		pexec__pool_collect(p);
		if (finished(p))
			break;
		dispatch_phase(p);
		if (finished(p))
			break;
		sleep_phase(p, fds, at);
	}
	free(fds);
	free(at);
	return p->stop;
}

/* ---- setup and shutdown ---- */

/* Ends every worker: politely (EOF on its input, then up to a grace period
 * for fini) after a complete run, at once otherwise. */
static void shutdown_workers(struct pool *p, int now)
{
	uint64_t until = pexec__now_ns() + (uint64_t)SHUTDOWN_GRACE_MS * 1000000u;

	for (unsigned i = 0; i < p->nworkers; i++) {
		struct worker *w = &p->workers[i];
		if (w->state == WORKER_GONE)
			continue;
		if (now)
			pexec__pool_worker_kill(w, NULL);
		if (w->to_fd >= 0)
			close(w->to_fd);
		w->to_fd = -1;
	}
	for (unsigned i = 0; i < p->nworkers; i++) {
		struct worker *w = &p->workers[i];
		uint64_t t = pexec__now_ns();
		int left_ms = t >= until ? 0 : (int)((until - t) / 1000000);

		if (w->state == WORKER_GONE)
			continue;
		if (now)
			pexec__pool_worker_end(w, 0);
		else if (!pexec__pool_worker_end(w, left_ms) ||
		         !(WIFEXITED(w->status) && WEXITSTATUS(w->status) == 0))
			p->stats->workers_lost++;
		pexec__contain_forget(&p->contain, w->pid);
		w->state = WORKER_GONE;
		/* Its output written, even on the way out: what was done stays. */
		if (p->spans)
			pexec__span_write_pending(p, w);
	}
}

static void pool_release(struct pool *p)
{
	if (p->workers)
		for (unsigned i = 0; i < p->nworkers; i++) {
			struct worker *w = &p->workers[i];
			for (unsigned k = 0; k < MAX_INFLIGHT; k++)
				pexec__pool_task_release(&w->inflight[k]);
			pexec__buf_release(&w->in);
			pexec__buf_release(&w->orders);
			free(w->pw);
			pexec__arena_release_all(w);
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
		pexec__pool_task_release(&p->queue[i]);
	pexec__split_free(p->fragment);
	pexec__buf_release(&p->layout);
	free(p->queue);
	free(p->texts);
	free(p->inputs);
	free(p->workers);
	free(p->slots);
	if (p->progress)
		munmap(p->progress, p->nworkers * sizeof(*p->progress));
}

/* The pool's memory: workers, chunk slots, the shared progress records and
 * the result arenas.  Workers start in the first dispatch phase. */
static pexec_code pool_setup(struct pool *p)
{
	void *shm;

	p->nworkers = p->opts->jobs ? p->opts->jobs : pexec_cpu_count();
	p->window_base = WINDOW_BASE_PER_WORKER * p->nworkers < 8
	                         ? 8 : WINDOW_BASE_PER_WORKER * p->nworkers;
	/* Out of order nothing waits on a head: the base window is enough. */
	p->nslots = p->opts->unordered ? p->window_base : WINDOW_PER_WORKER * p->nworkers;
	p->workers = calloc(p->nworkers, sizeof(*p->workers));
	p->slots = calloc(p->nslots, sizeof(*p->slots));
	shm = mmap(NULL, p->nworkers * sizeof(*p->progress), PROT_READ | PROT_WRITE,
	           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm != MAP_FAILED)
		p->progress = shm;
	if (!p->workers || !p->slots || !p->progress)
		return pexec__fail(p->err, PEXEC_ESYS, "out of memory for %u workers", p->nworkers);
	for (unsigned i = 0; i < p->nslots; i++) {
		pexec__buf_init(&p->slots[i].items);
		pexec__buf_init(&p->slots[i].results);
	}
	for (unsigned i = 0; i < p->nworkers; i++) {
		struct worker *w = &p->workers[i];

		w->to_fd = w->from_fd = w->pidfd = -1;
		w->progress = &p->progress[i];
		pexec__buf_init(&w->in);
		pexec__buf_init(&w->orders);
		if (pexec__arena_setup(w, p->nslots + MAX_INFLIGHT + 1))
			return pexec__fail(p->err, PEXEC_ESYS, "out of memory for %u workers",
			                   p->nworkers);
	}
	return PEXEC_OK;
}

/* Setup, the loop, shutdown and release of a pool filled in by the caller. */
static pexec_code pool_run(struct pool *p)
{
	pexec_code rc = pool_setup(p);

	pexec__buf_init(&p->layout);
	pexec__contain_start(&p->contain);
	p->next_sweep = pexec__now_ns() + SWEEP_NS;
	if (!rc)
		rc = loop(p);
	if (p->workers)
		shutdown_workers(p, rc != PEXEC_OK);
	pexec__contain_end(&p->contain);
	if (rc == PEXEC_OK && p->stats->failed)
		rc = PEXEC_EITEM;
	pool_release(p);
	return rc;
}

pexec_code pexec__pool_run(const pexec_descriptor *desc, const pexec_opts *opts,
                           pexec_next_fn next, void *next_ctx, pexec_result_fn sink,
                           void *sink_ctx, pexec__fold_fn fold, void *fold_ctx,
                           pexec_stats *stats, pexec_error *err)
{
	struct pool p = {
		.desc = desc, .opts = opts, .next = next, .next_ctx = next_ctx,
		.sink = sink, .sink_ctx = sink_ctx, .fold = fold, .fold_ctx = fold_ctx,
		.stats = stats, .err = err,
		.chunk_items = 1, .parent = getpid(),
		.timeout_ns = (uint64_t)(opts->timeout * 1e9),
		.tick_ns = (uint64_t)(opts->tick_ms ? opts->tick_ms : 250) * 1000000u,
	};

	return pool_run(&p);
}

pexec_code pexec__pool_run_spans(const pexec_descriptor *desc, const pexec_opts *opts,
                                 const pexec_spans *spans, pexec_stats *stats,
                                 pexec_error *err)
{
	struct pool p = {
		.desc = desc, .opts = opts, .spans = spans,
		/* The sink is only asked to flush (NULL) before the pool waits. */
		.sink = spans->flush, .sink_ctx = spans->ctx,
		.stats = stats, .err = err,
		.chunk_items = 1, .parent = getpid(),
		.timeout_ns = (uint64_t)(opts->timeout * 1e9),
		.tick_ns = (uint64_t)(opts->tick_ms ? opts->tick_ms : 250) * 1000000u,
	};

	return pool_run(&p);
}
