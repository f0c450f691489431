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

#include "loader.h"
#include "pool/pool.h"
#include "util.h"
#include "worker.h"

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
	if (pexec__fold_text(red->d, red->state, &red->acc, data, len, &why)) {
		pexec__fail(err, PEXEC_ESTOPPED, "reduce failed in pexec: %s", why.msg);
		return -1;
	}
	return 0;
}

static pexec_code pool_reduce(const pexec_descriptor *d, const pexec_opts *opts,
                              pexec_next_fn next, void *next_ctx, pexec_result_fn sink,
                              void *sink_ctx, pexec_stats *stats, pexec_error *err)
{
	struct reducer red = { .d = d };
	pexec_error why;
	pexec_buf out;
	pexec_code rc;

	if (pexec__plugin_init(d, opts->config, &red.state, &why))
		return pexec__fail(err, PEXEC_EINIT, "plugin '%s' init failed: %s", d->name,
		                   why.msg);
	if (pexec__fold_start(d, red.state, &red.acc, err)) {
		pexec__plugin_fini(d, red.state);
		return PEXEC_EUSAGE;
	}
	pexec__buf_init(&out);
	rc = pexec__pool_run(d, opts, next, next_ctx, sink, sink_ctx, reducer_fold, &red, stats,
	                     err);
	if (rc == PEXEC_OK || rc == PEXEC_EITEM) {
		pexec_code done = PEXEC_OK;
		if (pexec__fold_finish(d, red.state, &red.acc, &out, &why))
			done = pexec__fail(err, PEXEC_ESTOPPED, "reduce failed in pexec: %s", why.msg);
		else
			done = reduced(sink, sink_ctx, stats, out.data, out.len, err);
		if (done)
			rc = done;
	}
	pexec__fold_free(d, red.state, red.acc);
	pexec__plugin_fini(d, red.state);
	pexec__buf_release(&out);
	return rc;
}

static pexec_code serial_run(const pexec_descriptor *d, const pexec_opts *opts,
                             pexec_next_fn next, void *next_ctx, pexec_result_fn sink,
                             void *sink_ctx, pexec_stats *stats, pexec_error *err)
{
	pexec_buf item, out;
	pexec_error item_err;
	void *state = NULL;
	pexec_code rc = PEXEC_OK;
	void *acc = NULL;
	uint64_t index = 0, next_tick = 0, t0 = 0;
	const int pid = (int)getpid();
	struct timespec wall;
	const uint64_t tick_ns = (uint64_t)(opts->tick_ms ? opts->tick_ms : 250) * 1000000u;

	if (opts->timeout > 0 || opts->retries || opts->memory_limit || opts->max_tasks_per_worker)
		return pexec__fail(err, PEXEC_EUSAGE,
		                   "--timeout, --retries, --memory-limit and --max-tasks-per-worker "
		                   "need worker processes: drop --serial");
	pexec__buf_init(&item);
	pexec__buf_init(&out);
	if (pexec__plugin_init(d, opts->config, &state, &item_err))
		return pexec__fail(err, PEXEC_EINIT, "plugin '%s' init failed: %s", d->name,
		                   item_err.msg);
	if (opts->reduce && pexec__fold_start(d, state, &acc, err)) {
		pexec__plugin_fini(d, state);
		return PEXEC_EUSAGE;
	}
	for (;;) {
		pexec_result r = { .index = index };
		const char *data;
		size_t len;
		int got;

		if ((index & 63) == 0) {
			if (opts->cancel_fd > 0 && cancelled(opts->cancel_fd)) {
				rc = pexec__fail(err, PEXEC_ECANCELED, "cancelled");
				break;
			}
			if (opts->on_tick && pexec__now_ns() >= next_tick) {
				opts->on_tick(opts->tick_ctx, stats);
				next_tick = pexec__now_ns() + tick_ns;
			}
		}
		got = next(next_ctx, &data, &len, err);
		if (got == PEXEC_NEXT_CUT)
			continue;
		if (got == PEXEC_NEXT_WAIT) {
			if (source_wait(opts, sink, sink_ctx, &rc, err))
				break;
			continue;
		}
		if (got < 0) {
			rc = (pexec_code)-got;
			break;
		}
		if (got == 0)
			break;
		stats->items++;
		/* Hooks are promised a NUL after the item's bytes. */
		item.len = 0;
		out.len = 0;
		if (pexec_buf_reserve(&item, len + 1)) {
			rc = pexec__fail(err, PEXEC_ESYS, "out of memory");
			break;
		}
		memcpy(item.data, data, len);
		item.data[len] = '\0';
		if (opts->item_times) {
			t0 = pexec__now_ns();
			clock_gettime(CLOCK_REALTIME, &wall);
			r.started = (double)wall.tv_sec + (double)wall.tv_nsec / 1e9;
		}
		r.stage = opts->reduce
		                  ? pexec__item_fold(d, state, item.data, len, &acc, &item_err, NULL)
		                  : pexec__item_run(d, state, item.data, len, &out, &item_err, NULL);
		r.seconds = opts->item_times ? (double)(pexec__now_ns() - t0) / 1e9 : -1;
		r.input = item.data;
		r.input_len = len;
		r.attempts = 1;
		r.pid = pid;
		r.ok = r.stage == PEXEC_STAGE_NONE;
		r.status = r.ok ? PEXEC_STATUS_OK : PEXEC_STATUS_ERROR;
		stats->by_status[r.status]++;
		if (r.ok) {
			r.data = out.data;
			r.len = out.len;
			stats->ok++;
		} else {
			r.message = item_err.msg;
			stats->failed++;
		}
		if (sink && !(opts->reduce && r.ok)) {
			int s = sink(sink_ctx, &r, err);
			if (s < 0) {
				rc = (pexec_code)-s;
				break;
			}
		}
		if (!r.ok && opts->fail_fast) {
			rc = pexec__fail(err, PEXEC_ESTOPPED,
			                 "stopped at the first failure (--fail-fast): item %llu",
			                 (unsigned long long)index);
			break;
		}
		index++;
	}
	if (opts->reduce && rc == PEXEC_OK) {
		out.len = 0;
		if (pexec__fold_finish(d, state, &acc, &out, &item_err))
			rc = pexec__fail(err, PEXEC_ESTOPPED, "reduce failed: %s", item_err.msg);
		else
			rc = reduced(sink, sink_ctx, stats, out.data, out.len, err);
	}
	pexec__fold_free(d, state, acc);
	pexec__plugin_fini(d, state);
	pexec__buf_release(&item);
	pexec__buf_release(&out);
	if (rc == PEXEC_OK && stats->failed)
		rc = PEXEC_EITEM;
	return rc;
}

pexec_code pexec_run(const pexec_loaded *plugin, const pexec_opts *opts,
                     pexec_next_fn next, void *next_ctx,
                     pexec_result_fn sink, void *sink_ctx,
                     pexec_stats *stats, pexec_error *err)
{
	static const pexec_opts defaults;
	const pexec_descriptor *d = pexec_plugin_descriptor(plugin);
	pexec_stats local;
	sigset_t pipe_set, old;
	struct timespec zero = { 0, 0 };
	int pending;
	pexec_code rc;

	if (!opts)
		opts = &defaults;
	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	err->msg[0] = '\0';

	/* A write to a dead worker or a closed output must come back as EPIPE,
	 * not kill the caller: SIGPIPE stays blocked while the run lasts, and one
	 * raised by the run is consumed before the caller's mask comes back. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	{
		sigset_t now;
		sigpending(&now);
		pending = sigismember(&now, SIGPIPE);
	}

	if (opts->reduce && !d->reduce)
		rc = pexec__fail(err, PEXEC_EUSAGE,
		                 "plugin '%s' has no reduce hook: --reduce needs one", d->name);
	else if (opts->reduce && !d->deserialize != !d->serialize)
		rc = pexec__fail(err, PEXEC_EUSAGE,
		                 "plugin '%s' cannot reduce: partial results cross between processes "
		                 "through serialize and deserialize, so it needs both or neither",
		                 d->name);
	else if (opts->reduce && opts->unordered)
		rc = pexec__fail(err, PEXEC_EUSAGE,
		                 "--reduce folds results in input order: drop --unordered");
	else if ((rc = pexec__plugin_setup(plugin, opts->config, err)) == PEXEC_OK) {
		/* Before the fork, so that every worker inherits what setup built. */
		if (opts->serial)
			rc = serial_run(d, opts, next, next_ctx, sink, sink_ctx, stats, err);
		else if (opts->reduce)
			rc = pool_reduce(d, opts, next, next_ctx, sink, sink_ctx, stats, err);
		else
			rc = pexec__pool_run(d, opts, next, next_ctx, sink, sink_ctx, NULL, NULL,
			                     stats, err);
		pexec__plugin_teardown(plugin);
	}

	if (!pending)
		while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
			;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}
