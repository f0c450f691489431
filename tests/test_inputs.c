/*
 * test_inputs.c - several input files as one stream (core/lib/job/inputs.c),
 * end to end: `pexec -p P a.json b.json c.json` gives the one output that
 * the concatenation of their items gives, item indexes running on across
 * the files; a malformed file is named; a missing one stops the run before
 * any work; --resume is keyed to all of them.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "helpers.h"

TestSuite(inputs, .init = scratch_make, .fini = scratch_remove, .timeout = 180);

static const char *file_with(int slot, const char *name, const char *text)
{
	const char *path = scratch_path(slot, name);

	write_file(path, text, strlen(text));
	return path;
}

Test(inputs, several_files_are_one_stream)
{
	const char *a = file_with(0, "a.json", "[1, 2, 3]");
	const char *b = file_with(1, "b.json", "[]");
	const char *c = file_with(2, "c.json", "[4,\n 5]\n");
	static const char want[] = "[\n1,\n2,\n3,\n4,\n5\n]\n";
	static const char *const modes[][5] = {
		{ NULL },
		{ "--serial", NULL },
		{ "-j", "3", "--chunksize", "1", NULL },
		{ "--unordered", "-j", "1", NULL },
	};

	for (size_t m = 0; m < COUNT(modes); m++) {
		const char *args[MAX_ARGS + 1] = { "-p", "identity" };
		struct proc_spec s = { .args = args };
		size_t n = 2;
		struct proc r;

		for (size_t k = 0; modes[m][k]; k++)
			args[n++] = modes[m][k];
		args[n++] = a;
		args[n++] = b;
		args[n++] = c;
		run_spec(&s, &r);
		expect_exit(&r, 0);
		cr_expect_str_eq(r.out, want, "%s", r.cmd);
		cr_expect_str_eq(r.err, "", "%s", r.cmd);
		proc_release(&r);
	}
}

Test(inputs, formats_and_standard_input_among_the_files)
{
	const char *a = file_with(0, "a.ndjson", "1\n2\n");
	const char *b = file_with(1, "b.ndjson", "3");
	const char *l = file_with(2, "l.txt", "x\ny\n");
	struct proc r;

	run(&r, "{\"in\":1}\n", "-p", "identity", "--input-format", "ndjson", "--output-format",
	    "ndjson", a, "-", b, NULL);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.out, "1\n2\n{\"in\":1}\n3\n");
	proc_release(&r);
	run(&r, NULL, "-p", "identity", "--input-format", "lines", l, l, NULL);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.out, "[\n\"x\",\n\"y\",\n\"x\",\n\"y\"\n]\n");
	proc_release(&r);
	/* The same file twice is read twice. */
	run(&r, NULL, "-p", "identity", "--input-format", "ndjson", a, a, NULL);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.out, "[\n1,\n2,\n1,\n2\n]\n");
	proc_release(&r);
}

/* Indexes run on across the files: the second file's first item is 3. */
Test(inputs, indexes_run_on_across_the_files)
{
	const char *a = file_with(0, "a.json", "[1, 2, -1]");
	const char *b = file_with(1, "b.json", "[-2, 3]");
	const char *errors = scratch_path(2, "errors.ndjson");
	char *e;
	struct proc r;

	run(&r, NULL, "-p", "factorial", "--errors", errors, a, b, NULL);
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out, "[\n1,\n2,\nnull,\nnull,\n6\n]\n");
	cr_expect_not_null(strstr(r.err, "pexec: item 2 failed"), "%s", r.err);
	cr_expect_not_null(strstr(r.err, "pexec: item 3 failed"), "%s", r.err);
	proc_release(&r);
	e = read_file(errors, &(size_t){ 0 });
	cr_assert_not_null(e);
	cr_expect_not_null(strstr(e, "{\"index\":3,"), "%s", e);
	free(e);
}

Test(inputs, a_bad_file_is_named)
{
	const char *a = file_with(0, "a.json", "[1, 2]");
	const char *bad = file_with(1, "bad.json", "[1,\n 2,]");
	const char *missing = scratch_path(2, "missing.json");
	char want[512];
	struct proc r;

	/* Malformed: the message names the file, the position is inside it. */
	run(&r, NULL, "-p", "identity", "-j", "1", a, bad, NULL);
	expect_exit(&r, 2);
	snprintf(want, sizeof(want), "pexec: malformed input '%s' at line 2, column 4, byte 7: "
	         "trailing comma before ']'\n", bad);
	cr_expect_str_eq(r.err, want);
	cr_expect_not(parses(r.out), "%s", r.out);
	proc_release(&r);

	/* Missing, a directory (exit 3: cannot be read), standard input twice
	 * (exit 2): refused before any work. */
	run(&r, NULL, "-p", "identity", a, missing, NULL);
	expect_exit(&r, 3);
	snprintf(want, sizeof(want), "pexec: cannot open input '%s': No such file or directory\n",
	         missing);
	cr_expect_str_eq(r.err, want);
	cr_expect_str_eq(r.out, "", "work began before the missing file was seen");
	proc_release(&r);
	run(&r, NULL, "-p", "identity", a, scratch, NULL);
	expect_exit(&r, 3);
	cr_expect_not_null(strstr(r.err, "is a directory"), "%s", r.err);
	cr_expect_str_eq(r.out, "");
	proc_release(&r);
	run(&r, "[1]", "-p", "identity", "-", a, "-", NULL);
	expect_exit(&r, 2);
	cr_expect_not_null(strstr(r.err, "standard input ('-') can be one of the inputs only once"),
	                   "%s", r.err);
	proc_release(&r);
}

/* Many files at once use no more descriptors than one. */
Test(inputs, many_files_open_one_at_a_time)
{
	const char *args[MAX_ARGS + 1] = { "prlimit", "--nofile=32", PEXEC, "-p", "identity",
		                           "-j", "1" };
	struct proc_spec s = { .program = "prlimit", .args = args + 1 };
	char want[4096] = "[\n";
	size_t n = 7, at = 2;
	struct proc r;

	for (int i = 0; n < MAX_ARGS; i++, n++) {
		char name[32], text[32];

		snprintf(name, sizeof(name), "f%d.json", i);
		snprintf(text, sizeof(text), "[%d]", i);
		args[n] = strdup(file_with(i % 4, name, text));
		at += (size_t)snprintf(want + at, sizeof(want) - at, "%s%d", i ? ",\n" : "", i);
	}
	snprintf(want + at, sizeof(want) - at, "\n]\n");
	run_spec(&s, &r);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.out, want, "%s: %s", r.cmd, r.err);
	proc_release(&r);
	for (size_t i = 7; i < n; i++)
		free((char *)args[i]);
}

/* --resume is keyed to every file: the same list continues, another list
 * (a file more or less, another order, a changed file) is refused. */
Test(inputs, resume_is_keyed_to_all_the_files)
{
	const char *a = file_with(0, "a.json", "[1, -1]");
	const char *b = file_with(1, "b.json", "[2]");
	const char *out = scratch_path(2, "out.json");
	struct proc r;

	run(&r, NULL, "-p", "factorial", "-q", "-o", out, a, b, NULL);
	expect_exit(&r, 1);
	proc_release(&r);
	{
		const char *const *other[] = {
			ARGS("-p", "factorial", "-q", "-o", out, "--resume", b, a),
			ARGS("-p", "factorial", "-q", "-o", out, "--resume", a),
			ARGS("-p", "factorial", "-q", "-o", out, "--resume", a, b, b),
		};
		for (size_t i = 0; i < COUNT(other); i++) {
			struct proc_spec s = { .args = other[i] };
			run_spec(&s, &r);
			expect_exit(&r, 2);
			cr_expect_not_null(strstr(r.err, "cannot resume: the input changed"), "%s: %s",
			                   r.cmd, r.err);
			proc_release(&r);
		}
	}
	run(&r, NULL, "-p", "factorial", "-o", out, "--resume", a, b, NULL);
	expect_exit(&r, 1);
	cr_expect_not_null(strstr(r.err, "nothing to resume"), "%s", r.err);
	proc_release(&r);
	run(&r, NULL, "-p", "factorial", "-q", "-o", out, "--resume", a, "-", NULL);
	expect_exit(&r, 2);
	cr_expect_not_null(strstr(r.err, "--resume needs an input file"), "%s", r.err);
	proc_release(&r);
}

/* An interrupted run over two files, resumed, writes what one run writes. */
Test(inputs, interrupted_then_resumed_across_two_files)
{
	struct files f;
	const char *second = scratch_path(3, "second.json");
	struct stopper st = { .sig = SIGTERM, .min_partial = 16, .min_items = 1,
		              .min_checkpoints = 1 };
	struct args a = { 0 };
	struct proc r;

	files_init(&f, "first.json");
	write_sleep_input(f.in, 60, 0, 0, 0.02, 0, 0);
	write_sleep_input(second, 60, 0, 0, 0.02, 0, 0);
	st.f = &f;
	args_add(&a, ARGS("-p", "sleep", "-j", "16", "-q", "-o", f.ref, f.in, second));
	run_args(&r, &a, NULL);
	expect_exit(&r, 0);
	proc_release(&r);

	a.n = 0;
	args_add(&a, ARGS("-p", "sleep", "-j", "2", "-q", "-o", f.out, f.in, second));
	run_args(&r, &a, &st);
	expect_interrupted(&r, &st, "the run over two files");
	proc_release(&r);
	a.n = 0;
	args_add(&a, ARGS("-p", "sleep", "-j", "2", "-q", "-o", f.out, "--resume",
	                  "--summary", f.summary, f.in, second));
	run_args(&r, &a, NULL);
	expect_exit(&r, 0);
	expect_same_file("the resumed output", f.out, f.ref);
	proc_release(&r);
	{
		char *sum = read_file(f.summary, &(size_t){ 0 });
		cJSON *s = cJSON_Parse(sum);
		cr_expect_eq(cJSON_GetNumberValue(cJSON_GetObjectItem(s, "items")), 120, "%s", sum);
		cr_expect_gt(cJSON_GetNumberValue(cJSON_GetObjectItem(s, "resumed")), 0, "%s", sum);
		cJSON_Delete(s);
		free(sum);
	}
}
