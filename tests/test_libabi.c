/*
 * test_libabi.c - libpexec.so.0's ABI for the structs a program allocates
 * (pexec_opts, pexec_job, pexec_stats; pexec.h, "Growing without breaking"):
 * their sizes and every member's offset are frozen in tests/abi/
 * libpexec_v0.layout, recorded when soname 0 was first published.  Every
 * line there must still hold, so a program built against an older pexec.h
 * keeps working with this library; a member added since (taken from
 * `reserved`) adds a line.  When this fails, a change broke built programs:
 * take the member from the reserved words instead, or change the soname.
 *
 * And the library's side of the scheme: a reserved word that is not zero
 * (a program built against a newer header) is refused with a message.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "helpers.h"
#include "pexec.h"

#define LAYOUT_FILE PEXEC_SRC_DIR "/tests/abi/libpexec_v0.layout"

TestSuite(libabi, .timeout = 60);

#define MEMBER(type, m) { #type "." #m, offsetof(type, m) }
#define SIZE(type) { #type, sizeof(type) }

/* Today's header: the size of each struct and the offset of each member. */
static const struct {
	const char *name;
	size_t value;
} today[] = {
	SIZE(pexec_opts),
	MEMBER(pexec_opts, jobs), MEMBER(pexec_opts, chunksize), MEMBER(pexec_opts, unordered),
	MEMBER(pexec_opts, serial), MEMBER(pexec_opts, fail_fast), MEMBER(pexec_opts, config),
	MEMBER(pexec_opts, timeout), MEMBER(pexec_opts, retries), MEMBER(pexec_opts, memory_limit),
	MEMBER(pexec_opts, max_tasks_per_worker), MEMBER(pexec_opts, cancel_fd),
	MEMBER(pexec_opts, on_tick), MEMBER(pexec_opts, tick_ctx), MEMBER(pexec_opts, tick_ms),
	MEMBER(pexec_opts, result_input), MEMBER(pexec_opts, item_times),
	MEMBER(pexec_opts, batch_sink), MEMBER(pexec_opts, batch_ctx), MEMBER(pexec_opts, reduce),
	MEMBER(pexec_opts, source_fd), MEMBER(pexec_opts, partial_sink),
	MEMBER(pexec_opts, partial_ctx),
	SIZE(pexec_stats),
	MEMBER(pexec_stats, items), MEMBER(pexec_stats, ok), MEMBER(pexec_stats, failed),
	MEMBER(pexec_stats, workers_started), MEMBER(pexec_stats, workers_lost),
	MEMBER(pexec_stats, retried), MEMBER(pexec_stats, timed_out), MEMBER(pexec_stats, by_status),
	SIZE(pexec_job),
	MEMBER(pexec_job, plugin), MEMBER(pexec_job, plugin_dir), MEMBER(pexec_job, input),
	MEMBER(pexec_job, output), MEMBER(pexec_job, output_fd), MEMBER(pexec_job, input_format),
	MEMBER(pexec_job, output_format), MEMBER(pexec_job, drop_null), MEMBER(pexec_job, errors),
	MEMBER(pexec_job, opts), MEMBER(pexec_job, on_failure), MEMBER(pexec_job, on_failure_ctx),
	MEMBER(pexec_job, on_result), MEMBER(pexec_job, on_result_ctx),
	MEMBER(pexec_job, on_progress), MEMBER(pexec_job, on_progress_ctx),
	MEMBER(pexec_job, progress_ms), MEMBER(pexec_job, resume), MEMBER(pexec_job, retry_failed),
	MEMBER(pexec_job, engine), MEMBER(pexec_job, engine_ctx), MEMBER(pexec_job, inputs),
	MEMBER(pexec_job, ninputs), MEMBER(pexec_job, span_engine),
	SIZE(pexec_span),
	MEMBER(pexec_span, data), MEMBER(pexec_span, len), MEMBER(pexec_span, index),
	MEMBER(pexec_span, offset),
	MEMBER(pexec_span, line), MEMBER(pexec_span, line_start), MEMBER(pexec_span, count),
	MEMBER(pexec_span, first), MEMBER(pexec_span, last),
	SIZE(pexec_spans),
	MEMBER(pexec_spans, next), MEMBER(pexec_spans, put), MEMBER(pexec_spans, failed),
	MEMBER(pexec_spans, ctx), MEMBER(pexec_spans, input_fd), MEMBER(pexec_spans, name),
	MEMBER(pexec_spans, in_format), MEMBER(pexec_spans, out_format),
	MEMBER(pexec_spans, drop_null), MEMBER(pexec_spans, hash), MEMBER(pexec_spans, flush),
	MEMBER(pexec_spans, out_fd), MEMBER(pexec_spans, out_name), MEMBER(pexec_spans, reserve),
	MEMBER(pexec_spans, landed), MEMBER(pexec_spans, keep_fd), MEMBER(pexec_spans, out_path),
	MEMBER(pexec_spans, keep_path),
	SIZE(pexec_error),
};

/* The reserved words end each struct: what a member takes from them moves
 * their start, never the struct's end. */
Test(libabi, reserved_words_end_each_struct)
{
	cr_expect_eq(offsetof(pexec_opts, reserved) + sizeof(((pexec_opts *)0)->reserved),
	             sizeof(pexec_opts));
	cr_expect_eq(offsetof(pexec_job, reserved) + sizeof(((pexec_job *)0)->reserved),
	             sizeof(pexec_job));
	cr_expect_eq(offsetof(pexec_stats, reserved) + sizeof(((pexec_stats *)0)->reserved),
	             sizeof(pexec_stats));
	cr_expect_eq(offsetof(pexec_span, reserved) + sizeof(((pexec_span *)0)->reserved),
	             sizeof(pexec_span));
	cr_expect_eq(offsetof(pexec_spans, reserved) + sizeof(((pexec_spans *)0)->reserved),
	             sizeof(pexec_spans));
}

static long today_value(const char *name)
{
	for (size_t i = 0; i < COUNT(today); i++)
		if (!strcmp(today[i].name, name))
			return (long)today[i].value;
	return -1;
}

/* The frozen numbers are those of LP64 Linux (x86-64, arm64), where soname 0
 * was published; elsewhere the layout is the C compiler's, not pexec's. */
Test(libabi, structs_keep_the_layout_soname_0_published)
{
	char line[256], name[200];
	unsigned long want;
	size_t lines = 0;
	FILE *f;

	if (sizeof(void *) != 8 || sizeof(long) != 8) {
		cr_log_warn("not LP64: the frozen layout does not apply");
		return;
	}
	f = fopen(LAYOUT_FILE, "r");
	cr_assert_not_null(f, "%s", LAYOUT_FILE);
	while (fgets(line, sizeof(line), f)) {
		long got;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		cr_assert_eq(sscanf(line, "%199s %lu", name, &want), 2, "bad line: %s", line);
		got = today_value(name);
		cr_expect_eq(got, (long)want, "%s: %ld today, %lu when soname 0 was published", name,
		             got, want);
		lines++;
	}
	fclose(f);
	cr_expect_geq(lines, COUNT(today), "%s has fewer entries than the test knows", LAYOUT_FILE);
}

static int take_nothing(void *ctx, const pexec_result *r, pexec_error *err)
{
	(void)ctx;
	(void)r;
	(void)err;
	return 0;
}

static int no_items(void *ctx, const char **data, size_t *len, pexec_error *err)
{
	(void)ctx;
	(void)data;
	(void)len;
	(void)err;
	return 0;
}

Test(libabi, a_reserved_word_that_is_not_zero_is_refused)
{
	pexec_opts opts = { .serial = 1 };
	pexec_loaded_plugin *p;
	pexec_error err = { { 0 } };

	cr_assert_eq(pexec_plugin_load(PEXEC_TEST_BUILD "/plugins/identity.so", NULL, &p, &err),
	             PEXEC_OK, "%s", err.msg);
	cr_expect_eq(pexec_run(p, &opts, no_items, NULL, take_nothing, NULL, NULL, &err), PEXEC_OK,
	             "%s", err.msg);
	opts.reserved[3] = 1;
	cr_expect_eq(pexec_run(p, &opts, no_items, NULL, take_nothing, NULL, NULL, &err),
	             PEXEC_EUSAGE);
	cr_expect(strstr(err.msg, "pexec_opts.reserved[3] is not zero: the program was built "
	                          "against a newer pexec.h"), "%s", err.msg);
	pexec_plugin_free(p);
}

Test(libabi, a_job_with_a_reserved_word_set_is_refused_before_anything_runs)
{
	pexec_job job = { .plugin = PEXEC_TEST_BUILD "/plugins/identity.so",
	                  .input = "/nonexistent/input.json" };
	pexec_error err = { { 0 } };

	job.reserved[0] = 7;
	cr_expect_eq(pexec_job_run(&job, NULL, &err), PEXEC_EUSAGE);
	cr_expect(strstr(err.msg, "pexec_job.reserved[0] is not zero"), "%s", err.msg);
	job.reserved[0] = 0;
	job.opts.reserved[15] = 1;
	cr_expect_eq(pexec_job_run(&job, NULL, &err), PEXEC_EUSAGE);
	cr_expect(strstr(err.msg, "pexec_opts.reserved[15] is not zero"), "%s", err.msg);
}

/* What the library writes into a program's pexec_stats: nothing past what
 * it knows, and the reserved words zero. */
Test(libabi, stats_reserved_words_come_back_zero)
{
	pexec_opts opts = { .serial = 1 };
	pexec_stats stats;
	pexec_loaded_plugin *p;
	pexec_error err = { { 0 } };

	memset(&stats, 0xa5, sizeof(stats));
	cr_assert_eq(pexec_plugin_load(PEXEC_TEST_BUILD "/plugins/identity.so", NULL, &p, &err),
	             PEXEC_OK, "%s", err.msg);
	cr_expect_eq(pexec_run(p, &opts, no_items, NULL, take_nothing, NULL, &stats, &err), PEXEC_OK);
	for (size_t i = 0; i < COUNT(stats.reserved); i++)
		cr_expect_eq(stats.reserved[i], 0, "reserved[%zu]", i);
	pexec_plugin_free(p);
}
