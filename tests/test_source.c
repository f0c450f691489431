/*
 * test_source.c - pexec_run() with a source that is fed from elsewhere: one
 * that answers PEXEC_NEXT_WAIT until its descriptor is readable, and one that
 * cuts chunks with PEXEC_NEXT_BOUNDARY.  pexec-mpi's pool servers are such sources;
 * these tests hold the contract without MPI.
 *
 * The source here makes its descriptor readable with a timerfd armed for a
 * millisecond whenever it says WAIT, and counts any call that comes before
 * the timer fired: the run must not ask again before the descriptor is
 * readable, nor lose or reorder an item across the waits.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"
#include "pexec.h"

#define PLUGINS PEXEC_TEST_BUILD "/plugins"
#define FAULTS PEXEC_TEST_BUILD "/tests/plugins/faults.so"

struct feed {
	int n;            /* items: the numbers 1..n, as text */
	int given;
	int calls;
	int wait_every;   /* every so many calls say WAIT first (0: never) */
	int cut_every;    /* after every so many items say CUT (0: never) */
	int tfd;          /* the timerfd behind source_fd */
	int armed;        /* a WAIT is pending on the timer */
	int waits, early, cuts;
	char text[24];
};

static int feed_next(void *ctx, const char **data, size_t *len, pexec_error *err)
{
	struct feed *f = ctx;
	uint64_t ticks;

	(void)err;
	f->calls++;
	if (f->armed) {
		if (read(f->tfd, &ticks, sizeof(ticks)) != (ssize_t)sizeof(ticks)) {
			f->early++; /* asked again before the descriptor was readable */
			return PEXEC_NEXT_WAIT;
		}
		f->armed = 0;
	} else if (f->wait_every && f->given < f->n && f->calls % f->wait_every == 0) {
		struct itimerspec in_1ms = { .it_value = { 0, 1000000 } };
		cr_assert_eq(timerfd_settime(f->tfd, 0, &in_1ms, NULL), 0);
		f->armed = 1;
		f->waits++;
		return PEXEC_NEXT_WAIT;
	}
	if (f->given >= f->n)
		return 0;
	if (f->cut_every && f->given > 0 && f->given % f->cut_every == 0 && f->cuts < f->given) {
		f->cuts = f->given; /* once per boundary */
		return PEXEC_NEXT_BOUNDARY;
	}
	f->given++;
	*len = (size_t)snprintf(f->text, sizeof(f->text), "%d", f->given);
	*data = f->text;
	return 1;
}

struct results {
	int n, got, out_of_order, failed;
	char **texts;     /* by index */
	char *reduced;    /* --reduce: the run's one value */
};

static int keep(void *ctx, const pexec_result *r, pexec_error *err)
{
	struct results *res = ctx;

	(void)err;
	if (!r)
		return 0;
	if (r->reduced) {
		res->reduced = strndup(r->data, r->len);
		return 0;
	}
	if (!r->ok || r->index >= (uint64_t)res->n) {
		res->failed++;
		return 0;
	}
	if (r->index != (uint64_t)res->got)
		res->out_of_order++;
	res->texts[r->index] = strndup(r->data, r->len);
	res->got++;
	return 0;
}

/* Runs `plugin` over 1..n through a feed; returns the code, results in `res`. */
static pexec_code run_feed(const char *plugin, pexec_opts *opts, struct feed *f,
                           struct results *res, pexec_error *err)
{
	pexec_loaded_plugin *p;
	pexec_code rc;

	res->n = f->n;
	res->texts = calloc((size_t)f->n + 1, sizeof(*res->texts));
	cr_assert(res->texts);
	f->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	cr_assert_geq(f->tfd, 0, "timerfd_create: %s", strerror(errno));
	cr_assert_eq(pexec_plugin_load(plugin, PLUGINS, &p, err), PEXEC_OK, "%s", err->msg);
	opts->source_fd = f->tfd;
	rc = pexec_run(p, opts, feed_next, f, keep, res, NULL, err);
	pexec_plugin_free(p);
	close(f->tfd);
	return rc;
}

static void results_free(struct results *res)
{
	for (int i = 0; i < res->n; i++)
		free(res->texts[i]);
	free(res->texts);
	free(res->reduced);
}

/* The same items through a source that never waits, as the reference. */
static void expect_like_plain(const char *plugin, const pexec_opts *base, struct results *got)
{
	struct feed f = { .n = got->n };
	struct results want = { 0 };
	pexec_opts opts = *base;
	pexec_error err;

	cr_assert_eq(run_feed(plugin, &opts, &f, &want, &err), PEXEC_OK, "%s", err.msg);
	for (int i = 0; i < got->n; i++)
		cr_expect_str_eq(got->texts[i] ? got->texts[i] : "(none)", want.texts[i],
		                 "item %d: %s, want %s", i, got->texts[i], want.texts[i]);
	results_free(&want);
}

static void expect_waited_well(const pexec_opts *base)
{
	struct feed f = { .n = 300, .wait_every = 7 };
	struct results res = { 0 };
	pexec_opts opts = *base;
	pexec_error err;

	cr_assert_eq(run_feed("factorial", &opts, &f, &res, &err), PEXEC_OK, "%s", err.msg);
	cr_expect_gt(f.waits, 10, "the source said WAIT %d times", f.waits);
	cr_expect_eq(f.early, 0, "asked again %d times before the source was readable", f.early);
	cr_expect_eq(res.got, 300, "%d results of 300", res.got);
	cr_expect_eq(res.out_of_order, 0, "%d results out of order", res.out_of_order);
	cr_expect_eq(res.failed, 0);
	expect_like_plain("factorial", base, &res);
	results_free(&res);
}

Test(source, pool_asks_again_only_once_the_source_is_readable)
{
	expect_waited_well(&(pexec_opts){ .jobs = 2 });
}

Test(source, pool_with_one_item_a_chunk_waits_the_same)
{
	expect_waited_well(&(pexec_opts){ .jobs = 2, .chunksize = 1 });
}

Test(source, serial_sleeps_on_the_source_too)
{
	expect_waited_well(&(pexec_opts){ .serial = 1 });
}

Test(source, wait_without_a_source_fd_is_refused)
{
	pexec_loaded_plugin *p;
	pexec_error err;
	struct feed f = { .n = 10, .wait_every = 1 };
	struct results res = { .n = 10 };
	pexec_opts opts = { .jobs = 1 };

	res.texts = calloc(11, sizeof(*res.texts));
	f.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	cr_assert_eq(pexec_plugin_load("factorial", PLUGINS, &p, &err), PEXEC_OK, "%s", err.msg);
	cr_expect_eq(pexec_run(p, &opts, feed_next, &f, keep, &res, NULL, &err), PEXEC_EUSAGE);
	cr_expect(strstr(err.msg, "source_fd") != NULL, "message: %s", err.msg);
	opts.serial = 1;
	f.armed = 0;
	cr_expect_eq(pexec_run(p, &opts, feed_next, &f, keep, &res, NULL, &err), PEXEC_EUSAGE);
	pexec_plugin_free(p);
	close(f.tfd);
	results_free(&res);
}

Test(source, cuts_change_no_result)
{
	struct feed f = { .n = 500, .cut_every = 3 };
	struct results res = { 0 };
	pexec_opts opts = { .jobs = 2 };
	pexec_error err;

	cr_assert_eq(run_feed("factorial", &opts, &f, &res, &err), PEXEC_OK, "%s", err.msg);
	cr_expect_gt(f.cuts, 0);
	cr_expect_eq(res.got, 500);
	cr_expect_eq(res.out_of_order, 0);
	expect_like_plain("factorial", &(pexec_opts){ .jobs = 2 }, &res);
	results_free(&res);
}

/* Under --reduce the workers fold each chunk: cuts give more, smaller
 * chunks, and the value must not change (faults.so maps n to 2n and sums). */
Test(source, cuts_and_waits_keep_a_reduce_exact)
{
	static const pexec_opts kinds[] = {
		{ .jobs = 2, .reduce = 1 },
		{ .jobs = 2, .reduce = 1, .chunksize = 4 },
		{ .serial = 1, .reduce = 1 },
	};

	for (size_t k = 0; k < COUNT(kinds); k++) {
		struct feed f = { .n = 1000, .cut_every = 7, .wait_every = 11 };
		struct results res = { 0 };
		pexec_opts opts = kinds[k];
		pexec_error err;

		cr_assert_eq(run_feed(FAULTS, &opts, &f, &res, &err), PEXEC_OK, "kind %zu: %s", k,
		             err.msg);
		cr_expect_eq(f.early, 0, "kind %zu: asked again early", k);
		cr_expect_eq(res.got, 0, "kind %zu: %d results handed over item by item", k, res.got);
		cr_expect(f.cuts > 0 && f.waits > 0, "kind %zu: %d cuts, %d waits", k, f.cuts,
		          f.waits);
		/* 2 + 4 + ... + 2000 */
		cr_expect_str_eq(res.reduced ? res.reduced : "(none)", "1001000", "kind %zu", k);
		results_free(&res);
	}
}
