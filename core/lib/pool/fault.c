/*
 * fault.c - what a worker's end costs (see "Faults" in loop.c): the
 * item it was on is blamed, failing or going out again alone (--retries);
 * every other item it held goes out again; a death no item can be blamed for
 * sends the task out one item at a time.  A replacement is started while
 * work remains.  Workers retired by --max-tasks-per-worker are replaced here
 * too.
 *
 * Items sent again wait in p->queue as tasks of some items of their chunk;
 * dispatch (pool.c) takes them before new chunks.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "frame.h"
#include "internal.h"
#include "util.h"
#include "worker.h"

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
int pexec__pool_task_build_frame(struct pool *p, struct task *t)
{
	const char *data;
	size_t len;

	t->frame.len = 0;
	if (pexec__frame_begin(&t->frame, PEXEC_FRAME_CHUNK,
	                       (t->chunk->first + t->pos[0]) |
	                               (p->opts->reduce ? PEXEC_CHUNK_FOLD_EACH : 0)))
		goto nomem;
	for (uint32_t i = 0; i < t->n; i++) {
		pexec__pool_chunk_item(t->chunk, t->pos[i], &data, &len);
		if (pexec__frame_put_item(&t->frame, data, len))
			goto nomem;
	}
	pexec__frame_end(&t->frame, 0, t->n);
	return 0;
nomem:
	p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
	return -1;
}

/* ---- lost and retired workers ---- */

static uint32_t task_item(const struct task *t, uint32_t i)
{
	return t->pos ? t->pos[i] : i;
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

/* Settles an item whose run ended with its worker's death: another try, or
 * a failure record. */
static void blame(struct pool *p, struct chunk *c, uint32_t i, pexec_stage stage,
                  const char *why, pexec_status status, struct item_meta meta)
{
	c->tries[i]++;
	c->meta[i] = meta;
	if (c->tries[i] <= p->opts->retries) {
		p->stats->retried++;
		requeue(p, c, &i, 1, 1);
		return;
	}
	if (status == PEXEC_STATUS_TIMEOUT)
		p->stats->timed_out++;
	pexec__pool_chunk_put_record(p, c, i, pexec__record_byte(status),
	                             stage == PEXEC_STAGE_NONE ? PEXEC_STAGE_WORKER : stage, why,
	                             strlen(why));
	pexec__pool_chunk_check_done(p, c);
}

/* A worker ended while holding tasks (it died, was killed for a timeout, or
 * broke the protocol): blame the item it was on, send the rest out again, and
 * start a replacement while there is work left. */
void pexec__pool_worker_lost(struct pool *p, struct worker *w)
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
	struct item_meta meta;

	/* Progress is read once the worker is gone, so it shows where it
	 * stopped.  A worker that closed its pipe and went on working until
	 * killed stopped on an item that did nothing wrong: no blame then. */
	status = pexec__pool_worker_reap(w, w->kill_reason ? 0 : EXIT_WAIT_MS, &by_itself);
	frames = atomic_load(&pr->frames);
	at = atomic_load(&pr->pos);
	stage = by_itself || w->kill_reason ? (pexec_stage)atomic_load(&pr->stage)
	                                    : PEXEC_STAGE_NONE;
	{
		/* When the blamed item began: exact under --timeout (items are
		 * timed then), else when its chunk began, which for an item sent
		 * alone (as a suspect always is) is the same. */
		uint64_t now = pexec__now_ns();
		uint64_t began = p->timeout_ns && stage != PEXEC_STAGE_NONE
		                         ? atomic_load(&pr->started)
		                         : atomic_load(&pr->frame_started);
		double ago = began && began <= now ? (double)(now - began) / 1e9 : -1;

		meta = (struct item_meta){ pid, ago >= 0 ? pexec__now_real() - ago : 0, ago };
	}
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

		if (pexec__pool_chunk_split(p, c))
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
			blame(p, c, task_item(t, at), stage, why, kind, meta);
			requeue(p, c, rest, nrest, 0);
		} else if (started && (t->n == 1 || t->isolating)) {
			p->fruitless_deaths = 0;
			blame(p, c, task_item(t, 0), PEXEC_STAGE_WORKER, why, kind, meta);
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
		pexec__pool_task_release(&w->inflight[k]);
	w->ninflight = w->nsent = 0;
	if (!p->stop && pexec__pool_work_remains(p))
		p->stop = pexec__pool_worker_spawn(p, w);
}

/* A worker asked to leave (--max-tasks-per-worker) has gone: replace it. */
void pexec__pool_worker_retired(struct pool *p, struct worker *w)
{
	int by_itself, status = pexec__pool_worker_reap(w, SHUTDOWN_GRACE_MS, &by_itself);

	if (!by_itself || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		p->stats->workers_lost++;
	if (!p->stop && pexec__pool_work_remains(p))
		p->stop = pexec__pool_worker_spawn(p, w);
}
