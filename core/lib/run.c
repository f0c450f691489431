/*
 * run.c - pexec_run(): the public entry to the pool, and the --serial path
 * that runs the same items through the same hooks in this process.  The
 * plugin's setup runs around either (loader.h).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool/pool.h"
#include "util.h"
#include "item.h"

static int cancelled(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) > 0;
}

/* --serial with a source that said PEXEC_NEXT_WAIT: lets the sink flush, then
 * sleeps until the source or the cancel descriptor is readable.  Returns 0 to
 * ask the source again, -1 with *rc set to end the run. */
static int source_wait(const pexec_opts *opts, pexec_result_fn sink, void *sink_ctx,
                       pexec_code *rc, pexec_error *err)
{
	struct pollfd fds[2] = {
		{ .fd = opts->source_fd, .events = POLLIN },
		{ .fd = opts->cancel_fd > 0 ? opts->cancel_fd : -1, .events = POLLIN },
	};
	int s;

	if (opts->source_fd <= 0) {
		*rc = pexec__fail(err, PEXEC_EUSAGE, "the source asked to wait but gave no source_fd");
		return -1;
	}
	if (sink && (s = sink(sink_ctx, NULL, err)) < 0) {
		*rc = (pexec_code)-s;
		return -1;
	}
	while (poll(fds, 2, opts->on_tick ? (int)(opts->tick_ms ? opts->tick_ms : 250) : -1) < 0)
		if (errno != EINTR) {
			*rc = pexec__fail(err, PEXEC_ESYS, "poll: %s", strerror(errno));
			return -1;
		}
	if (fds[1].revents) {
		*rc = pexec__fail(err, PEXEC_ECANCELED, "cancelled");
		return -1;
	}
	return 0;
}

/* Hands a reducing run's one value to the sink. */
static pexec_code reduced(pexec_result_fn sink, void *sink_ctx, const pexec_stats *stats,
                          const char *data, size_t len, pexec_error *err)
{
	pexec_result r = {
		.index = stats->items, .ok = 1, .data = data, .len = len, .reduced = 1,
		.attempts = 1, .seconds = -1,
	};
	int s = sink ? sink(sink_ctx, &r, err) : 0;

	return s < 0 ? (pexec_code)-s : PEXEC_OK;
}

/* The parent's side of a pooled --reduce: its own plugin state, and the
 * value the chunks' partial results are folded into. */
struct reducer {
	const pexec_descriptor *d;
	void *state;
	void *acc;
};

static int reducer_fold(void *ctx, uint32_t items, const char *data, size_t len,
                        pexec_error *err)
{
	struct reducer *red = ctx;
	pexec_error why;

	(void)items;
	if (pexec__fold_text(red->d, red->state, &red->acc, data, len, &why))
		return -(int)pexec__fail(err, PEXEC_ESTOPPED, "reduce failed in pexec: %s", why.msg);
	return 0;
}

static pexec_code pool_reduce(const pexec_descriptor *d, const pexec_opts *opts,
                              pexec_next_fn next, void *next_ctx, pexec_result_fn sink,
                              void *sink_ctx, pexec_stats *stats, pexec_error *err)
{
	struct reducer red = { .d = d };
	pexec__splitter *check = pexec__split_checker();
	pexec_error why;
	pexec_buf out;
	pexec_code rc;

	if (!check)
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	if (pexec__plugin_init(d, opts->config, &red.state, &why)) {
		pexec__split_free(check);
		return pexec__fail(err, PEXEC_EINIT, "plugin '%s' init failed: %s", d->name,
		                   why.msg);
	}
	pexec__buf_init(&out);
	rc = pexec__fold_start(d, red.state, &red.acc, err) ? PEXEC_EUSAGE : PEXEC_OK;
	if (!rc)
		rc = pexec__pool_run(d, opts, next, next_ctx, sink, sink_ctx, reducer_fold, &red,
		                     stats, err);
	if (rc == PEXEC_OK || rc == PEXEC_EITEM) {
		pexec_code done;
		if (pexec__fold_finish(d, red.state, &red.acc, &out, check, &why))
			done = pexec__fail(err, PEXEC_ESTOPPED, "reduce failed in pexec: %s", why.msg);
		else
			done = reduced(sink, sink_ctx, stats, out.data, out.len, err);
		if (done)
			rc = done;
	}
	pexec__fold_free(d, red.state, red.acc);
	pexec__plugin_fini(d, red.state);
	pexec__buf_release(&out);
	pexec__split_free(check);
	return rc;
}

/* ---- --serial ---- */

/* A --serial run: the items through the hooks in this process, one by one. */
struct serial {
	const pexec_descriptor *d;
	const pexec_opts *opts;
	pexec_result_fn sink;
	void *sink_ctx;
	pexec_stats *stats;
	pexec_error *err;
	void *state;
	void *acc;           /* --reduce folded here (not with partial_sink) */
	int folding;
	pexec_buf item;      /* the item, with the NUL hooks are promised */
	pexec_buf out;
	pexec__splitter *check; /* results are checked as in workers */
	pexec_error item_err;
	uint64_t index;
	uint64_t next_tick, tick_ns;
	int pid;
};

static pexec_code serial_refuse(const pexec_opts *opts, pexec_error *err)
{
	if (opts->timeout > 0 || opts->retries || opts->memory_limit || opts->max_tasks_per_worker)
		return pexec__fail(err, PEXEC_EUSAGE,
		                   "--timeout, --retries, --memory-limit and --max-tasks-per-worker "
		                   "need worker processes: drop --serial");
	return PEXEC_OK;
}

/* Every 64 items: a cancel, and the tick.  Returns PEXEC_OK to go on. */
static pexec_code serial_poll(struct serial *s)
{
	const pexec_opts *opts = s->opts;

	if (s->index & 63)
		return PEXEC_OK;
	if (opts->cancel_fd > 0 && cancelled(opts->cancel_fd))
		return pexec__fail(s->err, PEXEC_ECANCELED, "cancelled");
	if (opts->on_tick && pexec__now_ns() >= s->next_tick) {
		opts->on_tick(opts->tick_ctx, s->stats);
		s->next_tick = pexec__now_ns() + s->tick_ns;
	}
	return PEXEC_OK;
}

/* Runs one item and hands on its result: to the sink, or into the fold.
 * Returns PEXEC_OK to go on, or the code that ends the run. */
static pexec_code serial_item(struct serial *s, const char *data, size_t len)
{
	const pexec_opts *opts = s->opts;
	pexec_result r = { .index = s->index, .attempts = 1, .pid = s->pid, .seconds = -1 };
	uint64_t t0 = 0;
	int rc = 0;

	s->stats->items++;
	s->item.len = s->out.len = 0;
	if (pexec_buf_reserve(&s->item, len + 1))
		return pexec__fail(s->err, PEXEC_ESYS, "out of memory");
	memcpy(s->item.data, data, len);
	s->item.data[len] = '\0';
	if (opts->item_times) {
		t0 = pexec__now_ns();
		r.started = pexec__now_real();
	}
	r.stage = s->folding ? pexec__item_fold(s->d, s->state, s->item.data, len, &s->acc,
	                                        &s->item_err, NULL)
	                     : pexec__item_run(s->d, s->state, s->item.data, len, &s->out,
	                                       s->check, &s->item_err, NULL);
	if (opts->item_times)
		r.seconds = (double)(pexec__now_ns() - t0) / 1e9;
	r.input = s->item.data;
	r.input_len = len;
	r.ok = r.stage == PEXEC_STAGE_NONE;
	r.status = r.ok ? PEXEC_STATUS_OK : PEXEC_STATUS_ERROR;
	s->stats->by_status[r.status]++;
	if (r.ok) {
		r.data = s->out.data;
		r.len = s->out.len;
		s->stats->ok++;
	} else {
		r.message = s->item_err.msg;
		s->stats->failed++;
	}
	if (opts->reduce && r.ok)
		rc = opts->partial_sink ? opts->partial_sink(opts->partial_ctx, 1, r.data, r.len,
		                                             s->err)
		                        : 0;
	else if (s->sink)
		rc = s->sink(s->sink_ctx, &r, s->err);
	if (rc < 0)
		return (pexec_code)-rc;
	if (!r.ok && opts->fail_fast)
		return pexec__fail(s->err, PEXEC_ESTOPPED,
		                   "stopped at the first failure (--fail-fast): item %llu",
		                   (unsigned long long)s->index);
	s->index++;
	return PEXEC_OK;
}

/* Asks the source for items until it ends or the run stops. */
static pexec_code serial_loop(struct serial *s, pexec_next_fn next, void *next_ctx)
{
	pexec_code rc = PEXEC_OK;

	while (rc == PEXEC_OK && (rc = serial_poll(s)) == PEXEC_OK) {
		const char *data;
		size_t len;
		int got = next(next_ctx, &data, &len, s->err);

		if (got == PEXEC_NEXT_BOUNDARY)
			continue;
		if (got == PEXEC_NEXT_WAIT) {
			if (source_wait(s->opts, s->sink, s->sink_ctx, &rc, s->err))
				break;
			continue;
		}
		if (got <= 0)
			return got < 0 ? (pexec_code)-got : PEXEC_OK;
		rc = serial_item(s, data, len);
	}
	return rc;
}

/* A --reduce run's end in --serial: the folded value to the sink. */
static pexec_code serial_reduced(struct serial *s)
{
	s->out.len = 0;
	if (pexec__fold_finish(s->d, s->state, &s->acc, &s->out, s->check, &s->item_err))
		return pexec__fail(s->err, PEXEC_ESTOPPED, "reduce failed: %s", s->item_err.msg);
	return reduced(s->sink, s->sink_ctx, s->stats, s->out.data, s->out.len, s->err);
}

static pexec_code serial_run(const pexec_descriptor *d, const pexec_opts *opts,
                             pexec_next_fn next, void *next_ctx, pexec_result_fn sink,
                             void *sink_ctx, pexec_stats *stats, pexec_error *err)
{
	struct serial s = {
		.d = d, .opts = opts, .sink = sink, .sink_ctx = sink_ctx, .stats = stats,
		.err = err, .folding = opts->reduce && !opts->partial_sink, .pid = (int)getpid(),
		.tick_ns = (uint64_t)(opts->tick_ms ? opts->tick_ms : 250) * 1000000u,
	};
	pexec_code rc = serial_refuse(opts, err);

	if (rc)
		return rc;
	if (!(s.check = pexec__split_checker()))
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	pexec__buf_init(&s.item);
	pexec__buf_init(&s.out);
	if (pexec__plugin_init(d, opts->config, &s.state, &s.item_err)) {
		rc = pexec__fail(err, PEXEC_EINIT, "plugin '%s' init failed: %s", d->name,
		                 s.item_err.msg);
		goto out;
	}
	if (s.folding && pexec__fold_start(d, s.state, &s.acc, err))
		rc = PEXEC_EUSAGE;
	if (!rc)
		rc = serial_loop(&s, next, next_ctx);
	if (s.folding && rc == PEXEC_OK)
		rc = serial_reduced(&s);
	pexec__fold_free(d, s.state, s.acc);
	pexec__plugin_fini(d, s.state);
	if (rc == PEXEC_OK && stats->failed)
		rc = PEXEC_EITEM;
out:
	pexec__buf_release(&s.item);
	pexec__buf_release(&s.out);
	pexec__split_free(s.check);
	return rc;
}

/* A write to a dead worker or a closed output must come back as EPIPE, not
 * kill the caller: SIGPIPE stays blocked while a run lasts, and one raised
 * by the run is consumed before the caller's mask comes back. */
struct sigpipe_guard {
	sigset_t set, old;
	int pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t now;

	sigemptyset(&g->set);
	sigaddset(&g->set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &g->set, &g->old);
	sigpending(&now);
	g->pending = sigismember(&now, SIGPIPE);
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
	struct timespec zero = { 0, 0 };

	if (!g->pending)
		while (sigtimedwait(&g->set, NULL, &zero) == SIGPIPE)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* What pexec_run() refuses of a plugin and options. */
static pexec_code run_refuse(const pexec_descriptor *d, const pexec_opts *opts,
                             pexec_error *err)
{
	if (pexec__reserved_zero(opts->reserved, PEXEC__RESERVED(opts), "pexec_opts", err))
		return PEXEC_EUSAGE;
	if (opts->reduce && !d->reduce)
		return pexec__fail(err, PEXEC_EUSAGE,
		                   "plugin '%s' has no reduce hook: --reduce needs one", d->name);
	if (opts->reduce && !d->deserialize != !d->serialize)
		return pexec__fail(err, PEXEC_EUSAGE,
		                   "plugin '%s' cannot reduce: partial results cross between "
		                   "processes through serialize and deserialize, so it needs both or "
		                   "neither", d->name);
	if (opts->reduce && opts->unordered)
		return pexec__fail(err, PEXEC_EUSAGE,
		                   "--reduce folds results in input order: drop --unordered");
	return PEXEC_OK;
}

pexec_code pexec_run(const pexec_loaded_plugin *plugin, const pexec_opts *opts,
                     pexec_next_fn next, void *next_ctx,
                     pexec_result_fn sink, void *sink_ctx,
                     pexec_stats *stats, pexec_error *err)
{
	static const pexec_opts defaults;
	const pexec_descriptor *d = pexec_plugin_descriptor(plugin);
	struct sigpipe_guard guard;
	pexec_stats local;
	pexec_code rc;

	if (!opts)
		opts = &defaults;
	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	err->msg[0] = '\0';
	sigpipe_block(&guard);
	rc = run_refuse(d, opts, err);
	if (!rc && (rc = pexec_plugin_setup(plugin, opts->config, err)) == PEXEC_OK) {
		/* Before the fork, so that every worker inherits what setup built. */
		if (opts->serial)
			rc = serial_run(d, opts, next, next_ctx, sink, sink_ctx, stats, err);
		else if (opts->reduce && opts->partial_sink)
			rc = pexec__pool_run(d, opts, next, next_ctx, sink, sink_ctx,
			                     opts->partial_sink, opts->partial_ctx, stats, err);
		else if (opts->reduce)
			rc = pool_reduce(d, opts, next, next_ctx, sink, sink_ctx, stats, err);
		else
			rc = pexec__pool_run(d, opts, next, next_ctx, sink, sink_ctx, NULL, NULL,
			                     stats, err);
		pexec_plugin_teardown(plugin);
	}
	sigpipe_restore(&guard);
	return rc;
}

/* What a run by spans cannot do, or was not given. */
static pexec_code spans_refuse(const pexec_opts *opts, const pexec_spans *spans,
                               pexec_error *err)
{
	if (opts->serial || opts->reduce || opts->fail_fast)
		return pexec__fail(err, PEXEC_EUSAGE, "a run by spans takes no --serial, --reduce "
		                   "or --fail-fast: those need each item in this process");
	if (!spans->next || !spans->failed || (spans->out_fd >= 0 ? !spans->reserve : !spans->put))
		return pexec__fail(err, PEXEC_EUSAGE, "pexec_spans needs next, failed, and put "
		                   "(or reserve, with out_fd)");
	if ((spans->in_format != PEXEC_FORMAT_JSON && spans->in_format != PEXEC_FORMAT_NDJSON) ||
	    (spans->out_format != PEXEC_FORMAT_JSON && spans->out_format != PEXEC_FORMAT_NDJSON))
		return pexec__fail(err, PEXEC_EUSAGE, "a run by spans reads and writes JSON or NDJSON");
	if (pexec__reserved_zero(opts->reserved, PEXEC__RESERVED(opts), "pexec_opts", err) ||
	    pexec__reserved_zero(spans->reserved, PEXEC__RESERVED(spans), "pexec_spans", err))
		return PEXEC_EUSAGE;
	return PEXEC_OK;
}

pexec_code pexec_run_spans(const pexec_loaded_plugin *plugin, const pexec_opts *opts,
                           const pexec_spans *spans, pexec_stats *stats, pexec_error *err)
{
	struct sigpipe_guard guard;
	pexec_stats local;
	pexec_code rc;

	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	err->msg[0] = '\0';
	if ((rc = spans_refuse(opts, spans, err)))
		return rc;
	sigpipe_block(&guard);
	rc = pexec_plugin_setup(plugin, opts->config, err);
	if (rc == PEXEC_OK) {
		rc = pexec__pool_run_spans(pexec_plugin_descriptor(plugin), opts, spans, stats, err);
		pexec_plugin_teardown(plugin);
	}
	sigpipe_restore(&guard);
	return rc;
}
