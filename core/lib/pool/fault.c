/*
 * fault.c - what a worker's unasked end costs (see "Faults" in loop.c): the
 * item it was on is blamed, failing or going out again alone (--retries);
 * every other item it held goes out again; a death no item can be blamed for
 * sends the task out one item at a time.
 *
 * It runs in the loop's phase for workers that ended, once the worker is
 * reaped and the last of what it wrote has been read, so the shared memory
 * that says where it was is final.  Items sent again wait in p->queue as
 * tasks of some items of their chunk (chunk.c); the dispatch phase starts a
 * replacement worker and takes them before new chunks.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "internal.h"
#include "util.h"

/* How a worker ended, as the failed item's record tells it. */
struct death {
	pexec_stage stage;   /* where the worker was; NONE: no item to blame */
	pexec_status kind;
	char how[96];        /* "killed by SIGSEGV" */
	char why[PEXEC_ERROR_MAX]; /* "worker 4242 killed by SIGSEGV" */
	struct item_meta meta;
	uint64_t frames;     /* CHUNK frames it had begun */
	uint32_t at;         /* the item it was on, in the oldest task */
};

/* Describes a wait status, e.g. "killed by SIGSEGV". */
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

/* When the blamed item began: exact under --timeout (items are timed then),
 * else when its chunk began, which for an item sent alone (as a suspect
 * always is) is the same. */
static struct item_meta death_meta(const struct pool *p, const struct worker *w,
                                   pexec_stage stage)
{
	const struct pexec__progress *pr = w->progress;
	uint64_t now = pexec__now_ns();
	uint64_t began = p->timeout_ns && stage != PEXEC_STAGE_NONE
	                         ? atomic_load(&pr->started)
	                         : atomic_load(&pr->frame_started);
	double ago = began && began <= now ? (double)(now - began) / 1e9 : -1;

	return (struct item_meta){ w->pid, ago >= 0 ? pexec__now_real() - ago : 0, ago };
}

/* Classifies the end of a reaped worker.  One that closed its pipe and went
 * on working until killed stopped on an item that did nothing wrong: no
 * blame then. */
static void classify(const struct pool *p, const struct worker *w, struct death *d)
{
	int by_itself = !w->kill_reason && !w->closed, status = w->status;
	pexec_stage lost_in = (pexec_stage)atomic_load(&w->progress->lost_in);
	char *how = d->how;

	d->frames = atomic_load(&w->progress->frames);
	d->at = atomic_load(&w->progress->pos);
	d->stage = by_itself || w->kill_reason ? (pexec_stage)atomic_load(&w->progress->stage)
	                                       : PEXEC_STAGE_NONE;
	d->meta = death_meta(p, w, d->stage);
	if (lost_in != PEXEC_STAGE_NONE) {
		/* It said where, before it went. */
		d->stage = lost_in;
		snprintf(how, sizeof(d->how), "closed pexec's descriptors in %s",
		         pexec_stage_str(lost_in));
	} else if (w->kill_reason)
		snprintf(how, sizeof(d->how), "%s", w->kill_reason);
	else if (!by_itself)
		snprintf(how, sizeof(d->how), "closed its connection to pexec");
	else
		describe_status(status, how, sizeof(d->how));
	if (w->kill_reason == w->timeout_msg)
		d->kind = PEXEC_STATUS_TIMEOUT;
	else if (!by_itself || lost_in != PEXEC_STAGE_NONE)
		d->kind = PEXEC_STATUS_LOST;
	else if (WIFSIGNALED(status))
		d->kind = WTERMSIG(status) == SIGKILL ? PEXEC_STATUS_KILLED : PEXEC_STATUS_CRASHED;
	else
		d->kind = PEXEC_STATUS_EXITED;
	snprintf(d->why, sizeof(d->why), "worker %ld %s%s", (long)w->pid, how,
	         p->opts->memory_limit && by_itself && WIFSIGNALED(status) &&
	                         (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGABRT ||
	                          WTERMSIG(status) == SIGBUS)
	                 ? " (under --memory-limit)" : "");
}

/* Settles an item whose run ended with its worker's death: another try, or
 * a failure record. */
static void blame(struct pool *p, struct chunk *c, uint32_t i, pexec_stage stage,
                  const struct death *d)
{
	p->fruitless_deaths = 0;
	c->tries[i]++;
	c->meta[i] = d->meta;
	if (c->tries[i] <= p->opts->retries) {
		p->stats->retried++;
		pexec__pool_requeue(p, c, &i, 1, 1);
		return;
	}
	if (d->kind == PEXEC_STATUS_TIMEOUT)
		p->stats->timed_out++;
	pexec__pool_chunk_put_record(p, c, i, pexec__record_byte(d->kind),
	                             stage == PEXEC_STAGE_NONE ? PEXEC_STAGE_WORKER : stage, d->why,
	                             strlen(d->why));
	pexec__pool_chunk_check_done(p, c);
}

static uint32_t task_item(const struct task *t, uint32_t i)
{
	return t->pos ? t->pos[i] : i;
}

/* What one task of the lost worker costs.  Only the oldest can have been
 * started, and only if the worker began more frames than it answered. */
static void settle_task(struct pool *p, struct task *t, int started, const struct death *d)
{
	struct chunk *c = t->chunk;
	uint32_t *rest, nrest = 0;

	if (pexec__pool_chunk_split(p, c))
		return;
	rest = malloc(t->n * sizeof(*rest));
	if (!rest) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
		return;
	}
	if (started && d->stage != PEXEC_STAGE_NONE && d->at < t->n) {
		/* The item it was on is the one at fault. */
		for (uint32_t i = 0; i < t->n; i++)
			if (i != d->at)
				rest[nrest++] = task_item(t, i);
		blame(p, c, task_item(t, d->at), d->stage, d);
		pexec__pool_requeue(p, c, rest, nrest, 0);
	} else if (started && (t->n == 1 || t->isolating)) {
		blame(p, c, task_item(t, 0), PEXEC_STAGE_WORKER, d);
	} else {
		/* Between items, or not begun: no item to blame.  A started task
		 * goes out one item at a time to find its culprit. */
		for (uint32_t i = 0; i < t->n; i++)
			rest[nrest++] = task_item(t, i);
		pexec__pool_requeue(p, c, rest, nrest, started);
	}
	free(rest);
}

void pexec__pool_worker_lost(struct pool *p, struct worker *w)
{
	struct death d;

	classify(p, w, &d);
	p->stats->workers_lost++;
	if (w->state == WORKER_STARTING) {
		p->stop = pexec__fail(p->err, PEXEC_EINIT, "plugin '%s': worker %ld %s during init",
		                      p->desc->name, (long)w->pid, d.how);
		return;
	}
	if (++p->fruitless_deaths > 3 * p->nworkers + 16) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS,
		                      "workers keep dying without finishing an item (last: %s)", d.why);
		return;
	}
	for (unsigned k = 0; k < w->ninflight && !p->stop; k++)
		settle_task(p, &w->inflight[k], k == 0 && d.frames > w->frames_done, &d);
	for (unsigned k = 0; k < MAX_INFLIGHT; k++)
		pexec__pool_task_release(&w->inflight[k]);
	w->ninflight = w->nsent = 0;
}
