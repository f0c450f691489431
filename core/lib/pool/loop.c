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
 *
 * The pool is four files that share pool_internal.h: this one runs it
 * (setup, the poll() loop, dispatch, --timeout deadlines, shutdown);
 * pool_worker.c starts, feeds and reaps the worker processes; pool_chunk.c
 * keeps the reorder window and hands results to the sink; pool_fault.c
 * settles what a lost worker held.
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

#include "pool.h"
#include "internal.h"
#include "util.h"
#include "worker.h"

int pexec__pool_work_remains(const struct pool *p)
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

void pexec__pool_task_release(struct task *t)
{
	free(t->pos);
	pexec__buf_release(&t->frame);
	memset(t, 0, sizeof(*t));
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
		return pexec__pool_task_build_frame(p, t) == 0;
	}
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
			pexec__pool_worker_write(w);
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
	struct pollfd *fds = calloc(2 * (size_t)p->nworkers + 2, sizeof(*fds));

	if (!fds)
		return pexec__fail(p->err, PEXEC_ESYS, "out of memory");
	while (!p->stop && (pexec__pool_work_remains(p) || inits_pending(p))) {
		nfds_t n = 0, source_at = 0;
		int timeout;

		dispatch(p);
		for (unsigned i = 0; i < p->nworkers; i++)
			maybe_retire(p, &p->workers[i]);
		if (p->stop || !(pexec__pool_work_remains(p) || inits_pending(p)))
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
		if (p->source_wait) {
			source_at = n;
			fds[n++] = (struct pollfd){ .fd = p->opts->source_fd, .events = POLLIN };
		}
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
		if (p->source_wait && fds[source_at].revents)
			p->source_wait = 0;
		for (unsigned i = 0; i < p->nworkers && !p->stop; i++) {
			struct worker *w = &p->workers[i];
			if (w->state == WORKER_GONE)
				continue;
			if (w->nsent < w->ninflight)
				pexec__pool_worker_write(w);
			pexec__pool_worker_read(p, w);
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
			pexec__pool_worker_reap(w, 0, NULL);
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
			pexec__pool_worker_close(w);
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
			pexec__pool_worker_reap(&p->workers[i], 0, NULL);
			p->stats->workers_lost++;
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
		pexec__pool_task_release(&p->queue[i]);
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
	arena_size = ARENA_SIZE;
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
		rc = pexec__pool_worker_spawn(&p, &p.workers[i]);
	if (!rc)
		rc = loop(&p);
	shutdown_workers(&p, rc != PEXEC_OK);
	if (rc == PEXEC_OK && stats->failed)
		rc = PEXEC_EITEM;
out:
	pool_release(&p);
	return rc;
}
