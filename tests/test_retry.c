/*
 * test_retry.c - issue 5 end to end: --resume --retry-failed runs again the
 * items that failed in a finished (or interrupted) run with -o FILE, and
 * keeps the failures that fail again in the journal for the next retry;
 * --retry-failed with --drop-null is refused.
 *
 * Suite `retry`; the helpers it shares with test_resume.c are in
 * helpers_resume.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "helpers.h"

TestSuite(retry, .init = scratch_make, .fini = scratch_remove, .timeout = 180);

/* ---- --retry-failed ---- */

/* "[\n" a ",\n" b ... "\n]\n", as pexec writes a JSON array. */
static char *json_array_text(const char *const *items)
{
	char *text = NULL;
	size_t len = 0;

	append(&text, &len, "[\n", 2);
	for (size_t i = 0; items[i]; i++) {
		if (i)
			append(&text, &len, ",\n", 2);
		append(&text, &len, items[i], strlen(items[i]));
	}
	append(&text, &len, "\n]\n", 3);
	return text;
}

static void expect_file_is(const char *what, const char *path, const char *want)
{
	size_t len;
	char *got = read_file(path, &len);

	cr_expect_not_null(got, "%s: %s missing", what, path);
	if (got)
		expect_same_bytes(what, got, len, want, strlen(want));
	free(got);
}

/* A retry that takes longer than a checkpoint interval writes no checkpoint
 * through an output that is not open: it ends with every result in place. */
Test(retry, retry_failed_recomputes_transient_failures)
{
	/* Items 2 and 4 take 1.1 and 1.3 s: they time out at 0.4 s, not at 30. */
	const char *in_text = "[0.01, 0.01, 1.1, 0.01, 1.3, 0.01]";
	const char *const items[] = { "0.01", "0.01", "1.1", "0.01", "1.3", "0.01", NULL };
	const char *const first[] = { "0.01", "0.01", "null", "0.01", "null", "0.01", NULL };
	char *want = json_array_text(items), *want_first = json_array_text(first);
	struct files f;
	struct args a;
	struct proc r;
	struct jstate js;

	files_init(&f, "in.json");
	write_file(f.in, in_text, strlen(in_text));
	command(&a, &f, ARGS("-q", "--timeout", "0.4"), NULL);
	run_args(&r, &a, NULL);
	expect_exit(&r, 1);
	proc_release(&r);
	expect_file_is("the run with timeouts", f.out, want_first);
	journal_state(f.journal, &js);
	cr_assert(js.complete && js.failed == 2,
	          "the journal of a finished run with 2 failures: complete %d, %d failed",
	          js.complete, js.failed);

	command(&a, &f, ARGS("-q", "--timeout", "30"),
	        ARGS("--resume", "--retry-failed", "--joblog", f.joblog));
	run_args(&r, &a, NULL);
	expect_exit(&r, 0);
	expect_file_is("the output after --retry-failed", f.out, want);
	cr_expect_not(exists(f.journal), "the journal is kept although nothing failed");
	cr_expect_not(exists(f.partial), "%s left behind", f.partial);
	{
		/* Only the two failed items ran again. */
		size_t len;
		char *log = read_file(f.joblog, &len);
		cr_expect(log && line_count(log) == 2 && strstr(log, "\"index\":2,") &&
		          strstr(log, "\"index\":4,"),
		          "the job log of the retry is not items 2 and 4: %s",
		          log ? log : "(none)");
		free(log);
	}
	proc_release(&r);
	free(want);
	free(want_first);
}

/* The same, for a run that was interrupted: --resume --retry-failed first
 * completes it, then retries what failed. */
Test(retry, retry_failed_after_an_interruption_completes_then_retries)
{
	enum { N = 81 };
	struct files f;
	struct args a;
	struct proc r;
	struct stopper st;
	char *text = NULL;
	size_t len = 0;

	/* Items 0 and 1 take 1.1 and 1.3 s and time out at 0.4; the others
	 * 0.02 s. */
	files_init(&f, "in.json");
	append(&text, &len, "[1.1, 1.3", 9);
	for (size_t i = 2; i < N; i++) {
		char item[32];
		int k = snprintf(item, sizeof(item), ", %.6f", 0.02 + (double)i * 1e-6);
		append(&text, &len, item, (size_t)k);
	}
	append(&text, &len, "]", 1);
	write_file(f.in, text, len);
	free(text);
	reference_run(&f, NULL, 0);

	/* Stopped once items 0 and 1 have failed and some results followed. */
	st = (struct stopper){ .f = &f, .sig = SIGTERM, .min_partial = 40 };
	command(&a, &f, ARGS("--timeout", "0.4"), NULL);
	run_args(&r, &a, &st);
	expect_interrupted(&r, &st, "the interrupted run");
	cr_expect(strstr(r.err, "item 0 failed") && strstr(r.err, "item 1 failed"),
	          "items 0 and 1 did not time out: %s", r.err);
	proc_release(&r);

	command(&a, &f, ARGS("-q", "--timeout", "30"), ARGS("--resume", "--retry-failed"));
	run_args(&r, &a, NULL);
	expect_exit(&r, 0);
	expect_same_file("the output after --resume --retry-failed", f.out, f.ref);
	cr_expect_not(exists(f.journal), "the journal is kept although nothing failed");
	cr_expect_not(exists(f.partial), "%s left behind", f.partial);
	proc_release(&r);
}

/* factorial of -1 fails however often it is tried. */
static void factorial_with_failures(struct files *f, struct args *a)
{
	const char *in_text = "[1, 2, -1, 3, -1, 5]";
	struct proc r;

	files_init(f, "in.json");
	write_file(f->in, in_text, strlen(in_text));
	a->n = 0;
	args_add(a, ARGS("-p", "factorial", "-q", "-o", f->out, f->in));
	run_args(&r, a, NULL);
	expect_exit(&r, 1);
	proc_release(&r);
}

static const char factorial_want[] = "[\n1,\n2,\nnull,\n6,\nnull,\n120\n]\n";

Test(retry, retry_failed_keeps_deterministic_failures)
{
	struct files f;
	struct args a;
	struct proc r;
	struct jstate js;

	factorial_with_failures(&f, &a);
	a.n = 0;
	args_add(&a, ARGS("-p", "factorial", "-q", "-o", f.out, "--resume", "--retry-failed",
	                  "--joblog", f.joblog, f.in));
	run_args(&r, &a, NULL);
	expect_exit(&r, 1);
	expect_file_is("the output after --retry-failed", f.out, factorial_want);
	cr_expect(exists(f.journal), "the journal is gone although items still fail");
	cr_expect_not(exists(f.partial), "%s left behind", f.partial);
	{
		size_t len;
		char *log = read_file(f.joblog, &len);
		cr_expect(log && line_count(log) == 2 && strstr(log, "\"index\":2,") &&
		          strstr(log, "\"index\":4,") && count_of(log, "\"status\":\"error\"") == 2,
		          "the job log of the retry is not items 2 and 4, failed: %s",
		          log ? log : "(none)");
		free(log);
	}
	journal_state(f.journal, &js);
	cr_expect(js.complete, "the kept journal does not say the run finished");
	proc_release(&r);
}

/* A retry that leaves failures keeps them in the journal for the next one
 * (each round's job log is removed first: on --resume it is appended to). */
Test(retry, retry_failed_twice_still_knows_the_failures)
{
	struct files f;
	struct args a;
	struct proc r;

	factorial_with_failures(&f, &a);
	for (int round = 0; round < 2; round++) {
		unlink(f.joblog);
		a.n = 0;
		args_add(&a, ARGS("-p", "factorial", "-q", "-o", f.out, "--resume",
		                  "--retry-failed", "--joblog", f.joblog, f.in));
		run_args(&r, &a, NULL);
		expect_exit(&r, 1);
		expect_file_is("the output after --retry-failed", f.out, factorial_want);
		{
			size_t len;
			char *log = read_file(f.joblog, &len);
			cr_expect(log && line_count(log) == 2,
			          "retry %d: the failed items were not run again: job log %s",
			          round + 1, log ? log : "(none)");
			free(log);
		}
		proc_release(&r);
	}
}

Test(retry, retry_failed_with_drop_null_is_refused)
{
	struct files f;
	struct args a;
	struct proc r;
	struct snapshot was;

	factorial_with_failures(&f, &a);
	/* Again, with --drop-null from the start. */
	a.n = 0;
	args_add(&a, ARGS("-p", "factorial", "-q", "--drop-null", "-o", f.out, f.in));
	run_args(&r, &a, NULL);
	expect_exit(&r, 1);
	proc_release(&r);
	expect_file_is("the --drop-null run", f.out, "[\n1,\n2,\n6,\n120\n]\n");
	snapshot_take(&was, &f);

	a.n = 0;
	args_add(&a, ARGS("-p", "factorial", "-q", "--drop-null", "-o", f.out, "--resume",
	                  "--retry-failed", f.in));
	run_args(&r, &a, NULL);
	expect_exit(&r, 2);
	cr_expect(strstr(r.err, "--drop-null") != NULL, "stderr does not name --drop-null: %s",
	          r.err);
	expect_unchanged(&was, &f, "--retry-failed --drop-null");
	proc_release(&r);
	snapshot_release(&was);
}

/* --retry-failed with --drop-null is refused before any work is done. */
Test(retry, retry_failed_with_drop_null_is_refused_before_any_work)
{
	struct files f;
	struct args a;
	struct proc r;
	struct snapshot was;

	files_init(&f, "in.json");
	write_sleep_input(f.in, 100, 0, 0, 0.02, 7, 0);
	make_interrupted(&f, ARGS("--drop-null"));
	snapshot_take(&was, &f);
	command(&a, &f, ARGS("--drop-null", "-q"), ARGS("--resume", "--retry-failed"));
	run_args(&r, &a, NULL);
	expect_exit(&r, 2);
	cr_expect(strstr(r.err, "--drop-null") != NULL, "stderr does not name --drop-null: %s",
	          r.err);
	expect_unchanged(&was, &f, "--resume --retry-failed --drop-null");
	proc_release(&r);
	snapshot_release(&was);
}

