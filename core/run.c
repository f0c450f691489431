/*
 * run.c - pexec_run(): the public entry to the pool, and the --serial path
 * that runs the same items through the same hooks in this process.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"
#include "util.h"
#include "worker.h"

static int cancelled(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) > 0;
}

static pexec_code serial_run(const pexec_descriptor *d, const pexec_opts *opts,
                             pexec_next_fn next, void *next_ctx, pexec_result_fn sink,
                             void *sink_ctx, pexec_stats *stats, pexec_error *err)
{
	pexec_buf item, out;
	pexec_error item_err;
	void *state = NULL;
	pexec_code rc = PEXEC_OK;
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
		r.stage = pexec__item_run(d, state, item.data, len, &out, &item_err, NULL);
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
		if (sink) {
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

	if (opts->serial)
		rc = serial_run(d, opts, next, next_ctx, sink, sink_ctx, stats, err);
	else
		rc = pexec__pool_run(d, opts, next, next_ctx, sink, sink_ctx, stats, err);

	if (!pending)
		while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE)
			;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}
