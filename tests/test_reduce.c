/*
 * test_reduce.c - `pexec --reduce`: workers fold their chunks' results, the
 * parent folds the partial results in input order, and the one value equals
 * what a plain single-process fold gives, whatever the job count, chunk size
 * or fault.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define FAULTS PEXEC_TEST_BUILD "/tests/plugins/faults.so"

TestSuite(reduce, .init = scratch_make, .fini = scratch_remove);

Test(reduce, wordcount_equals_a_plain_count_in_every_mode)
{
	static const char *const modes[][5] = {
		{ "--serial", NULL },
		{ "-j", "1", NULL },
		{ "-j", "2", NULL },
		{ "-j", "3", "--chunksize", "1", NULL },
		{ "-j", "2", "--chunksize", "7", NULL },
	};
	const int n = 60;
	char *in = word_files(n), want[128];
	/* alpha: 0 + 1 + ... + 59; words in first-seen order: file 0 has no
	 * alpha, so beta and gamma come first. */
	snprintf(want, sizeof(want), "{\"beta\":%d,\"gamma\":%d,\"alpha\":%d}\n", n, 2 * n,
	         n * (n - 1) / 2);

	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		const char *args[12] = { "-p", "wordcount", "--reduce" };
		size_t k = 3;
		struct proc r;
		struct proc_spec spec = { .args = args, .in = in, .in_len = strlen(in) };

		for (size_t i = 0; modes[m][i]; i++)
			args[k++] = modes[m][i];
		args[k] = NULL;
		run_spec(&spec, &r);
		expect_exit(&r, 0);
		cr_expect_str_eq(r.out, want, "mode %zu", m);
		proc_release(&r);
	}
	free(in);
}

Test(reduce, empty_input_gives_the_initial_value)
{
	struct proc r;

	run(&r, "[]", "-p", "wordcount", "--reduce", NULL);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.out, "{}\n");
	proc_release(&r);
	run(&r, "[]", "-p", FAULTS, "--reduce", "-j", "2", NULL);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.out, "0\n");
	proc_release(&r);
}

/* Items whose map or reduce crashes, errs or whose file is missing are left
 * out of the value and reported; every other item is in it. */
Test(reduce, faults_leave_out_only_their_items)
{
	static const char *const faults[] = {
		"{\"fault\":\"segv\",\"stage\":\"map\"}",
		"{\"fault\":\"segv\",\"stage\":\"reduce\"}",
		"{\"fault\":\"error\",\"stage\":\"reduce\"}",
		"{\"fault\":\"exit\",\"stage\":\"deserialize\"}",
	};
	static const char *const modes[][5] = {
		{ "-j", "2", NULL },
		{ "-j", "3", "--chunksize", "5", NULL },
		{ "--serial", NULL },
	};
	for (size_t f = 0; f < sizeof(faults) / sizeof(faults[0]); f++) {
		char *in = NULL, want[32];
		size_t len = 0;
		long sum = 0;

		append(&in, &len, "[", 1);
		for (int i = 0; i < 500; i++) {
			char num[16];
			if (i)
				append(&in, &len, ",", 1);
			if (i == 123 || i == 321) {
				append(&in, &len, faults[f], strlen(faults[f]));
				continue;
			}
			snprintf(num, sizeof(num), "%d", i);
			append(&in, &len, num, strlen(num));
			sum += 2 * i;
		}
		append(&in, &len, "]", 2);
		snprintf(want, sizeof(want), "%ld\n", sum);
		for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
			const char *args[12] = { "-p", FAULTS, "--reduce" };
			size_t k = 3;
			struct proc r;
			struct proc_spec spec = { .args = args, .in = in, .in_len = strlen(in) };

			if (!strcmp(modes[m][0], "--serial") && strstr(faults[f], "segv"))
				continue; /* a crash in --serial takes pexec down: it runs in-process */
			if (!strcmp(modes[m][0], "--serial") && strstr(faults[f], "exit"))
				continue;
			for (size_t i = 0; modes[m][i]; i++)
				args[k++] = modes[m][i];
			args[k] = NULL;
			run_spec(&spec, &r);
			expect_exit(&r, 1);
			cr_expect_str_eq(r.out, want, "fault %s, mode %zu", faults[f], m);
			cr_expect_eq(count_of(r.err, " failed in "), 2, "fault %s, mode %zu: %s",
			             faults[f], m, r.err);
			cr_expect_not_null(strstr(r.err, "item 123 "), "%s", r.err);
			cr_expect_not_null(strstr(r.err, "item 321 "), "%s", r.err);
			proc_release(&r);
		}
		free(in);
	}
}

Test(reduce, refusals)
{
	static const struct {
		const char *args[8];
		const char *why;
	} cases[] = {
		{ { "-p", "factorial", "--reduce", NULL }, "has no reduce hook" },
		{ { "-p", "wordcount", "--reduce", "--unordered", NULL }, "--unordered" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct proc r;
		struct proc_spec spec = { .args = cases[i].args, .in = "[1]", .in_len = 3 };

		run_spec(&spec, &r);
		expect_exit(&r, 2);
		cr_expect_not_null(strstr(r.err, cases[i].why), "%s", r.err);
		cr_expect_eq(line_count(r.err), 1, "%s", r.err);
		proc_release(&r);
	}
}

Test(reduce, writes_one_value_to_an_output_file)
{
	char *in = word_files(3), *out;
	const char *path = scratch_path(1, "counts.json");
	const char *in_path = scratch_path(1, "paths.json");
	size_t len;
	struct proc r;

	write_file(in_path, in, strlen(in));
	run(&r, NULL, "-p", "wordcount", "--reduce", "-o", path, in_path, NULL);
	expect_exit(&r, 0);
	out = read_file(path, &len);
	cr_expect_str_eq(out, "{\"beta\":3,\"gamma\":6,\"alpha\":3}\n");
	free(out);
	free(in);
	proc_release(&r);
	run(&r, NULL, "-p", "wordcount", "--reduce", "-o", path, "--resume", in_path, NULL);
	expect_exit(&r, 2);
	proc_release(&r);
}
