/*
 * test_resume.c - issue 5 end to end: a run with -o FILE that was killed is
 * continued with --resume, and ends with the output of a run that never
 * stopped.
 *
 * Every test runs the built pexec as a user does (helpers.c).  The runs that
 * get interrupted use the sleep plugin, whose items take known times, so that
 * a run lasts a few seconds and its journal (FILE.pexec-journal, journal.h)
 * gets a checkpoint about once a second.  A watch polls that journal and the
 * partial output (FILE.pexec-partial) and signals pexec at the moment a test
 * wants: before any checkpoint, after one covering ~10%, ~50% or ~85% of the
 * items, always with results written past it, so that the resumed run must
 * cut the partial output back.  Nothing sleeps a fixed time and nothing
 * measures time: sleeps are lower bounds, so a loaded machine only makes the
 * checkpoints finer.
 *
 * The reference output comes from an uninterrupted run of the same command
 * with more workers (the job count is not part of what a resume checks).
 *
 * Then: SIGINT and SIGTERM, resumes refused (input, plugin, config, formats
 * changed; no journal; no -o or stdin), --resume on a finished run, a torn
 * journal, and what --unordered does.  --retry-failed is in test_retry.c; the
 * helpers both files use (struct files, struct stopper, ...) in helpers.c.
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

TestSuite(resume, .init = scratch_make, .fini = scratch_remove, .timeout = 180);

/* ---- what a finished run must have left ---- */

static cJSON *read_json(const char *path)
{
	size_t len;
	char *text = read_file(path, &len);
	cJSON *v;

	cr_assert_not_null(text, "%s was not written", path);
	v = cJSON_ParseWithOpts(text, NULL, 1);
	cr_assert_not_null(v, "%s is not one JSON value: %s", path, text);
	free(text);
	return v;
}

static double num_of(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	cr_assert(cJSON_IsNumber(v), "the summary has no number \"%s\"", key);
	return v->valuedouble;
}

/* The job log holds exactly one record for each index in [lo, hi). */
static void expect_joblog_covers(const char *path, uint64_t lo, uint64_t hi)
{
	size_t len, n = 0;
	char *text = read_file(path, &len), *line, *nl;
	unsigned char *seen = calloc(hi - lo + 1, 1);

	cr_assert_not_null(text, "the job log %s was not written", path);
	cr_assert_not_null(seen);
	for (line = text; (nl = strchr(line, '\n')); line = nl + 1) {
		cJSON *rec;
		uint64_t idx;

		*nl = '\0';
		n++;
		rec = cJSON_Parse(line);
		cr_expect_not_null(rec, "job log line is not JSON: %s", line);
		idx = u64_of(rec, "index");
		cr_expect(idx >= lo && idx < hi, "job log has index %llu, outside [%llu, %llu)",
		          (unsigned long long)idx, (unsigned long long)lo, (unsigned long long)hi);
		if (idx >= lo && idx < hi)
			seen[idx - lo]++;
		cJSON_Delete(rec);
	}
	cr_expect_eq(n, hi - lo, "job log has %zu records, want %llu", n,
	             (unsigned long long)(hi - lo));
	for (uint64_t i = lo; i < hi; i++)
		if (seen[i - lo] != 1) {
			cr_expect_fail("job log has index %llu %d times", (unsigned long long)i,
			               seen[i - lo]);
			break;
		}
	free(seen);
	free(text);
}

/* The resumed run took `resumed` items from the interrupted one, computed
 * the other n - resumed, and left what the reference run left. */
static void expect_resumed(const struct proc *r, const struct files *f, uint64_t resumed,
                           uint64_t n, int want_exit)
{
	cJSON *sum;

	expect_exit(r, want_exit);
	expect_same_file("resumed output", f->out, f->ref);
	cr_expect_not(exists(f->partial), "%s left behind", f->partial);
	if (want_exit == 0)
		cr_expect_not(exists(f->journal), "%s left behind after a run without failures",
		              f->journal);
	cr_expect(resumed > 0 && resumed < n,
	          "the interrupted run's journal covers %llu of %llu items: want some, not all",
	          (unsigned long long)resumed, (unsigned long long)n);
	sum = read_json(f->summary);
	cr_expect_eq(num_of(sum, "resumed"), (double)resumed, "summary: resumed %g, want %llu",
	             num_of(sum, "resumed"), (unsigned long long)resumed);
	cr_expect_eq(num_of(sum, "items"), (double)n, "summary: items %g, want %llu",
	             num_of(sum, "items"), (unsigned long long)n);
	cr_expect_eq(num_of(sum, "ok") + num_of(sum, "failed"), (double)(n - resumed),
	             "summary: %g ok + %g failed computed, want %llu", num_of(sum, "ok"),
	             num_of(sum, "failed"), (unsigned long long)(n - resumed));
	cr_expect_eq(num_of(sum, "exit_status"), want_exit);
	cJSON_Delete(sum);
	expect_joblog_covers(f->joblog, resumed, n);
}

/* ---- SIGKILL at several points ---- */

/* One run, killed again and again: before its first checkpoint, then after
 * checkpoints covering ~10%, ~50% and ~85% of the items, each time resumed
 * from where the journal says; the last resume runs to the end. */
Test(resume, sigkill_at_several_points_then_resume_gives_identical_output)
{
	/* The first 12% of the items take about a second (2 workers), the rest
	 * go at about 20% a second: a checkpoint lands near each target. */
	enum { N = 500 };
	const uint64_t targets[] = { 0, N / 10, N / 2, N * 85 / 100 };
	struct files f;
	struct args a;
	struct proc r;
	uint64_t prev = 0;

	files_init(&f, "in.json");
	write_sleep_input(f.in, N, 60, 0.035, 0.02, 0, 0);
	reference_run(&f, NULL, 0);

	for (size_t k = 0; k < COUNT(targets); k++) {
		struct stopper st = {
			.f = &f, .sig = SIGKILL, .min_items = targets[k],
			.min_checkpoints = targets[k] ? 1 : 0, .uncovered = 1,
		};
		struct jstate js;
		char what[64];

		snprintf(what, sizeof(what), "kill %zu (checkpoint >= %llu of %d items)", k,
		         (unsigned long long)targets[k], N);
		command(&a, &f, NULL, k ? ARGS("--resume") : NULL);
		run_args(&r, &a, &st);
		expect_interrupted(&r, &st, what);
		journal_state(f.journal, &js);
		/* The durability rule: a checkpoint never claims more than is on
		 * disk, and a resumed run never goes back. */
		cr_expect_geq((unsigned long long)file_size(f.partial),
		              (unsigned long long)js.bytes,
		              "%s: the partial output is shorter than its last checkpoint", what);
		cr_expect_geq(js.items, prev, "%s: the journal went back from %llu to %llu items",
		              what, (unsigned long long)prev, (unsigned long long)js.items);
		cr_expect_geq(js.items, targets[k], "%s", what);
		cr_log_info("%s: the journal covers %llu items, the partial output %lld bytes of "
		            "which %llu covered", what, (unsigned long long)js.items,
		            file_size(f.partial), (unsigned long long)js.bytes);
		prev = js.items;
		proc_release(&r);
	}

	command(&a, &f, NULL, ARGS("--resume", "--summary", f.summary, "--joblog", f.joblog, "-v"));
	run_args(&r, &a, NULL);
	expect_resumed(&r, &f, prev, N, 0);
	cr_expect(strstr(r.err, "taken from the interrupted run") != NULL,
	          "the summary line does not count the resumed items: %s", r.err);
	proc_release(&r);
}

/* A run stopped once by `sig`, when its journal has a checkpoint (SIGKILL) or
 * it has written some results (SIGINT, SIGTERM), then resumed; its output
 * must be the reference's byte for byte. */
static void interrupt_then_resume(const char *const *opts, size_t n, size_t bad_every,
                                  int ndjson_in, int sig, int want_exit)
{
	struct files f;
	struct args a;
	struct proc r;
	struct stopper st = { .f = NULL };
	struct jstate js;
	uint64_t resumed;

	files_init(&f, ndjson_in ? "in.ndjson" : "in.json");
	write_sleep_input(f.in, n, 0, 0, 0.025, bad_every, ndjson_in);
	reference_run(&f, opts, want_exit);

	st = (struct stopper){ .f = &f, .sig = sig, .min_partial = 16 };
	if (sig == SIGKILL) {
		st.min_checkpoints = 1;
		st.min_items = 1;
		st.uncovered = 1;
	}
	command(&a, &f, opts, ARGS("-q"));
	run_args(&r, &a, &st);
	expect_interrupted(&r, &st, "the interrupted run");
	journal_state(f.journal, &js);
	if (sig != SIGKILL) {
		/* A run that lives through its stop makes all it wrote durable. */
		cr_expect_eq((long long)js.bytes, file_size(f.partial),
		             "after SIG%s the last checkpoint covers %llu bytes of the %lld "
		             "written", sigabbrev_np(sig), (unsigned long long)js.bytes,
		             file_size(f.partial));
	}
	resumed = js.items;
	proc_release(&r);

	command(&a, &f, opts,
	        ARGS("-q", "--resume", "--summary", f.summary, "--joblog", f.joblog));
	run_args(&r, &a, NULL);
	expect_resumed(&r, &f, resumed, n, want_exit);
	if (want_exit) {
		/* Failures keep the journal, finished, as they do for the
		 * reference run: for a later --retry-failed. */
		char ref_journal[300];
		snprintf(ref_journal, sizeof(ref_journal), "%s.pexec-journal", f.ref);
		cr_expect_eq(exists(f.journal), exists(ref_journal),
		             "the resumed run %s a journal, the uninterrupted one %s",
		             exists(f.journal) ? "kept" : "removed",
		             exists(ref_journal) ? "kept" : "removed");
		journal_state(f.journal, &js);
		cr_expect(js.complete, "the kept journal does not say the run finished");
	}
	proc_release(&r);
}

Test(resume, sigkill_then_resume_with_ndjson_input_and_output)
{
	interrupt_then_resume(ARGS("--input-format", "ndjson", "--output-format", "ndjson"), 120, 0,
	                      1, SIGKILL, 0);
}

Test(resume, sigkill_then_resume_with_drop_null)
{
	/* Every 7th item fails; its null is left out, so the output holds
	 * fewer results than the input has items. */
	interrupt_then_resume(ARGS("--drop-null"), 120, 7, 0, SIGKILL, 1);
}

Test(resume, sigint_exits_130_and_leaves_a_resumable_state)
{
	interrupt_then_resume(NULL, 100, 0, 0, SIGINT, 0);
}

Test(resume, sigterm_exits_143_and_leaves_a_resumable_state)
{
	interrupt_then_resume(NULL, 100, 0, 0, SIGTERM, 0);
}

/* ---- a torn journal ---- */

/* Cuts the journal's last line in the middle, as a crash during its write
 * would; returns the items of the checkpoint before it. */
static uint64_t tear_last_line(const struct files *f)
{
	size_t len;
	char *text = read_file(f->journal, &len), *last;
	struct jstate js;

	cr_assert_not_null(text);
	cr_assert(len > 1 && text[len - 1] == '\n', "the journal does not end a line");
	text[len - 1] = '\0';
	last = strrchr(text, '\n');
	cr_assert_not_null(last, "the journal has a single line");
	last++;
	cr_assert(strstr(last, "checkpoint") != NULL, "the last line is no checkpoint: %s", last);
	cr_assert_eq(truncate(f->journal, (off_t)((size_t)(last - text) + strlen(last) / 2)), 0);
	free(text);
	journal_state(f->journal, &js);
	return js.items;
}

Test(resume, torn_journal_resumes_from_the_checkpoint_before)
{
	enum { N = 280 };
	struct files f;
	struct args a;
	struct proc r;
	struct stopper st;
	uint64_t before;

	files_init(&f, "in.json");
	write_sleep_input(f.in, N, 0, 0, 0.02, 0, 0);
	reference_run(&f, NULL, 0);
	st = (struct stopper){ .f = &f, .sig = SIGKILL, .min_checkpoints = 2, .uncovered = 1 };
	command(&a, &f, NULL, NULL);
	run_args(&r, &a, &st);
	expect_interrupted(&r, &st, "the interrupted run");
	proc_release(&r);

	before = tear_last_line(&f);
	cr_assert_gt(before, 0, "no checkpoint before the torn one");
	command(&a, &f, NULL, ARGS("--resume", "--summary", f.summary, "--joblog", f.joblog));
	run_args(&r, &a, NULL);
	expect_resumed(&r, &f, before, N, 0);
	proc_release(&r);
}

/* A resumed run cuts a torn journal back to its last whole line before it
 * adds any, so the journal stays readable however often it is resumed. */
Test(resume, torn_journal_resumed_then_killed_again_still_resumes)
{
	enum { N = 160 };
	struct files f;
	struct args a;
	struct proc r;
	struct stopper st;
	struct jstate js;

	files_init(&f, "in.json");
	write_sleep_input(f.in, N, 0, 0, 0.025, 0, 0);
	reference_run(&f, NULL, 0);
	st = (struct stopper){ .f = &f, .sig = SIGTERM, .min_partial = 16 };
	command(&a, &f, NULL, ARGS("-q"));
	run_args(&r, &a, &st);
	expect_interrupted(&r, &st, "the interrupted run");
	proc_release(&r);
	tear_last_line(&f);

	/* Resumed from the torn journal, then killed after a checkpoint of its
	 * own: a line more in the journal. */
	st = (struct stopper){ .f = &f, .sig = SIGKILL, .uncovered = 1 };
	journal_state(f.journal, &js);
	st.min_lines = js.lines + 1;
	command(&a, &f, NULL, ARGS("-q", "--resume"));
	run_args(&r, &a, &st);
	expect_interrupted(&r, &st, "the resumed run");
	proc_release(&r);
	journal_state(f.journal, &js);

	command(&a, &f, NULL, ARGS("--resume", "--summary", f.summary, "--joblog", f.joblog));
	run_args(&r, &a, NULL);
	expect_resumed(&r, &f, js.items, N, 0);
	proc_release(&r);
}

static void restore_mtime(const char *path, const struct stat *st)
{
	const struct timespec times[2] = { st->st_atim, st->st_mtim };

	cr_assert_eq(utimensat(AT_FDCWD, path, times, 0), 0, "utimensat: %s", strerror(errno));
}

enum change { SAME, ITEM_CONTENT, INPUT_SIZE, INPUT_MTIME, PLUGIN_FILE, PARTIAL_GONE };

struct refusal {
	const char *name;
	enum change change;       /* made to the input or the plugin, then undone */
	const char *plugin;       /* NULL: the run's */
	const char *const *opts;  /* options in place of the run's (none) */
	const char *says;         /* the message contains this */
	int usage;                /* a usage error, not a "cannot resume" */
};

/* Every refusal leaves everything as it was, so one interrupted run serves
 * them all, and is resumed at the end. */
Test(resume, refused_when_the_run_changed_and_nothing_is_touched)
{
	enum { N = 100 };
	const struct refusal cases[] = {
		{ "a done item's bytes changed (same size, same mtime)", ITEM_CONTENT, NULL, NULL,
		  "the input changed", 0 },
		{ "the input's size changed", INPUT_SIZE, NULL, NULL, "the input changed", 0 },
		{ "only the input's mtime changed", INPUT_MTIME, NULL, NULL, "the input changed",
		  0 },
		{ "another plugin", SAME, "identity", NULL, "the plugin changed", 0 },
		{ "the plugin file was rebuilt", PLUGIN_FILE, NULL, NULL, "the plugin changed", 0 },
		{ "--config differs", SAME, NULL, ARGS("--config", "{\"k\":1}"), "--config differs",
		  0 },
		{ "--output-format differs", SAME, NULL, ARGS("--output-format", "ndjson"),
		  "--output-format differs", 0 },
		{ "--input-format differs", SAME, NULL, ARGS("--input-format", "ndjson"),
		  "the input changed", 0 },
		{ "--drop-null differs", SAME, NULL, ARGS("--drop-null"), "--drop-null differs",
		  0 },
		{ "--unordered", SAME, NULL, ARGS("--unordered"), "ordered", 1 },
		{ "the partial output is gone", PARTIAL_GONE, NULL, NULL, "partial output", 0 },
	};
	struct files f;
	struct snapshot was;
	struct stat in_st;
	char plugin[256], moved[320];
	size_t in_len, so_len;
	char *in_bytes, *so_bytes;
	struct args a;
	struct proc r;
	struct jstate js;

	files_init(&f, "in.json");
	write_sleep_input(f.in, N, 0, 0, 0.02, 0, 0);
	reference_run(&f, NULL, 0);
	/* A copy of the plugin, to rebuild. */
	snprintf(plugin, sizeof(plugin), "%s/sleep.so", scratch);
	so_bytes = read_file(PEXEC_TEST_BUILD "/plugins/sleep.so", &so_len);
	cr_assert_not_null(so_bytes);
	write_file(plugin, so_bytes, so_len);

	a.n = 0;
	args_add(&a, ARGS("-p", plugin, "-j", "2", "-q", "-o", f.out, f.in));
	{
		struct stopper st = { .f = &f, .sig = SIGTERM, .min_partial = 16 };
		run_args(&r, &a, &st);
		expect_interrupted(&r, &st, "the interrupted run");
		proc_release(&r);
	}
	journal_state(f.journal, &js);
	cr_assert_gt(js.items, 0, "the interrupted run's journal covers no item");
	in_bytes = read_file(f.in, &in_len);
	cr_assert_not_null(in_bytes);
	cr_assert_eq(stat(f.in, &in_st), 0);
	snapshot_take(&was, &f);

	for (size_t i = 0; i < COUNT(cases); i++) {
		const struct refusal *c = &cases[i];
		char *changed;

		switch (c->change) {
		case ITEM_CONTENT:
			/* The last digit of item 0, which the checkpoint covers. */
			changed = strdup(in_bytes);
			cr_assert_not_null(changed);
			{
				char *digit = strchr(changed, ',') - 1;
				*digit = *digit == '9' ? '8' : '9';
			}
			write_file(f.in, changed, in_len);
			free(changed);
			restore_mtime(f.in, &in_st);
			break;
		case INPUT_SIZE:
			write_file(f.in, in_bytes, in_len - 1); /* the final newline */
			restore_mtime(f.in, &in_st);
			break;
		case INPUT_MTIME: {
			struct stat later = in_st;
			later.st_mtim.tv_sec += 10;
			restore_mtime(f.in, &later);
			break;
		}
		case PLUGIN_FILE: {
			/* Still the same loadable plugin, with a byte more. */
			FILE *so = fopen(plugin, "a");
			cr_assert_not_null(so);
			fputc(0, so);
			fclose(so);
			break;
		}
		case PARTIAL_GONE:
			snprintf(moved, sizeof(moved), "%s/moved-away", scratch);
			cr_assert_eq(rename(f.partial, moved), 0);
			break;
		case SAME:
			break;
		}
		a.n = 0;
		args_add(&a, ARGS("-p", c->plugin ? c->plugin : plugin, "-j", "2", "-q", "-o",
		                  f.out));
		args_add(&a, c->opts);
		args_add(&a, ARGS("--resume", f.in));
		run_args(&r, &a, NULL);
		expect_exit(&r, 2);
		if (c->change == PARTIAL_GONE)
			cr_assert_eq(rename(moved, f.partial), 0);
		cr_expect(strstr(r.err, c->says) != NULL, "%s: stderr does not say \"%s\": %s",
		          c->name, c->says, r.err);
		cr_expect_eq(line_count(r.err), 1, "%s: not one line: %s", c->name, r.err);
		if (!c->usage)
			cr_expect(strstr(r.err, "cannot resume") != NULL,
			          "%s: stderr does not say it cannot resume: %s", c->name, r.err);
		expect_unchanged(&was, &f, c->name);
		proc_release(&r);

		/* Undone. */
		write_file(f.in, in_bytes, in_len);
		restore_mtime(f.in, &in_st);
		write_file(plugin, so_bytes, so_len);
	}

	/* The right command still resumes. */
	a.n = 0;
	args_add(&a, ARGS("-p", plugin, "-j", "2", "-q", "-o", f.out, "--resume", "--summary",
	                  f.summary, "--joblog", f.joblog, f.in));
	run_args(&r, &a, NULL);
	expect_resumed(&r, &f, js.items, N, 0);
	proc_release(&r);
	snapshot_release(&was);
	free(in_bytes);
	free(so_bytes);
}

/* A refused --resume leaves the job log of the run it refused alone (on
 * --resume the job log is appended to). */
Test(resume, refused_resume_leaves_the_job_log_alone)
{
	struct files f;
	struct args a;
	struct proc r;
	struct stat st;
	size_t before_len, after_len;
	char *before, *after;

	files_init(&f, "in.json");
	write_sleep_input(f.in, 100, 0, 0, 0.02, 0, 0);
	make_interrupted(&f, ARGS("--joblog", f.joblog));
	before = read_file(f.joblog, &before_len);
	cr_assert(before && before_len > 0, "the interrupted run wrote no job log");
	cr_assert_eq(stat(f.in, &st), 0);
	st.st_mtim.tv_sec += 10;
	restore_mtime(f.in, &st);

	command(&a, &f, ARGS("--joblog", f.joblog), ARGS("--resume"));
	run_args(&r, &a, NULL);
	expect_exit(&r, 2);
	after = read_file(f.joblog, &after_len);
	cr_expect_not_null(after, "the job log is gone");
	if (after)
		expect_same_bytes("the job log after a refused --resume", after, after_len, before,
		                  before_len);
	proc_release(&r);
	free(before);
	free(after);
}

Test(resume, refused_without_journal_or_output)
{
	struct files f;
	struct snapshot was;
	struct args a;
	struct proc r;

	files_init(&f, "in.json");
	write_sleep_input(f.in, 5, 0, 0, 0.001, 0, 0);
	snapshot_take(&was, &f);
	command(&a, &f, NULL, ARGS("--resume"));
	run_args(&r, &a, NULL);
	expect_exit(&r, 2);
	cr_expect(strstr(r.err, "cannot resume") && strstr(r.err, "journal"),
	          "stderr does not say there is no journal: %s", r.err);
	cr_expect_eq(line_count(r.err), 1, "not one line: %s", r.err);
	expect_unchanged(&was, &f, "--resume with nothing to resume");
	proc_release(&r);
	snapshot_release(&was);
}

/* --resume continues a file into -o FILE: anything else is a usage error. */
Test(resume, needs_an_input_file_and_an_output_file)
{
	struct files f;
	struct snapshot was;
	const char *in_text = "[0.001, 0.001]";

	files_init(&f, "in.json");
	write_file(f.in, in_text, strlen(in_text));
	snapshot_take(&was, &f);
	{
		const char *const *cases[] = {
			ARGS("-p", "sleep", "--resume", f.in),
			ARGS("-p", "sleep", "--resume", "-o", f.out),
			ARGS("-p", "sleep", "--resume", "-o", f.out, "-"),
			ARGS("-p", "sleep", "--retry-failed", "-o", f.out, f.in),
			ARGS("-p", "sleep", "--resume", "--retry-failed", "-o", f.out, "-"),
		};
		for (size_t i = 0; i < COUNT(cases); i++) {
			struct args a = { 0 };
			struct proc r;

			args_add(&a, cases[i]);
			{
				struct proc_spec s = { .args = a.v, .in = in_text,
				                       .in_len = strlen(in_text) };
				run_spec(&s, &r);
			}
			expect_exit(&r, 2);
			cr_expect(strstr(r.err, "--resume") != NULL,
			          "%s: stderr does not name --resume: %s", r.cmd, r.err);
			cr_expect_eq(r.out_len, 0, "%s: wrote to stdout: %s", r.cmd, r.out);
			expect_unchanged(&was, &f, r.cmd);
			proc_release(&r);
		}
	}
	snapshot_release(&was);
}

/* ---- a finished run ---- */

Test(resume, on_a_finished_run_is_a_no_op)
{
	struct files f;
	struct args a;
	struct proc r;
	struct snapshot was;
	struct stat before, after;

	files_init(&f, "in.json");
	write_sleep_input(f.in, 20, 0, 0, 0.001, 0, 0);
	command(&a, &f, NULL, NULL);
	run_args(&r, &a, NULL);
	expect_exit(&r, 0);
	proc_release(&r);
	cr_assert(exists(f.out));
	cr_expect_not(exists(f.journal), "a run without failures kept its journal");
	cr_expect_not(exists(f.partial));
	cr_assert_eq(stat(f.out, &before), 0);
	snapshot_take(&was, &f);

	for (int retry = 0; retry < 2; retry++) {
		command(&a, &f, NULL,
		        retry ? ARGS("--resume", "--retry-failed") : ARGS("--resume"));
		run_args(&r, &a, NULL);
		expect_exit(&r, 0);
		expect_unchanged(&was, &f, r.cmd);
		cr_assert_eq(stat(f.out, &after), 0);
		cr_expect(before.st_ino == after.st_ino &&
		          before.st_mtim.tv_sec == after.st_mtim.tv_sec &&
		          before.st_mtim.tv_nsec == after.st_mtim.tv_nsec,
		          "%s: the output was written again", r.cmd);
		proc_release(&r);
	}
	snapshot_release(&was);
}

/* ---- --unordered ---- */

/* An --unordered run writes results as they complete, so no prefix of the
 * input is ever done: it keeps no journal, an interrupted one leaves nothing
 * to resume and does not suggest --resume, and --resume with --unordered is
 * refused (exit 2), as is --resume after it. */
Test(resume, unordered_keeps_no_journal_and_cannot_be_resumed)
{
	struct files f;
	struct args a;
	struct proc r;
	struct snapshot was;
	struct stopper st;
	size_t len;
	char *errors;

	files_init(&f, "in.json");
	/* Item 2 fails at once: the --errors file shows results are flowing. */
	write_sleep_input(f.in, 100, 0, 0, 0.02, 0, 0);
	errors = read_file(f.in, &len);
	cr_assert_not_null(errors);
	cr_assert_not_null(strstr(errors, "0.020002"));
	memcpy(strstr(errors, "0.020002"), "\"bad\"   ", 8);
	write_file(f.in, errors, len);
	free(errors);

	/* The stopper waits on a journal: for this run, on the errors file. */
	st = (struct stopper){ .sig = SIGINT };
	{
		struct files watch = f;
		snprintf(watch.journal, sizeof(watch.journal), "%s", f.errors);
		snprintf(watch.partial, sizeof(watch.partial), "%s", f.errors);
		st.f = &watch;
		command(&a, &f, ARGS("--unordered", "--errors", f.errors), NULL);
		run_args(&r, &a, &st);
		cr_assert(st.sent, "the run ended before it could be stopped: %s", r.err);
		expect_exit(&r, 130);
	}
	cr_expect(strstr(r.err, "stopped by SIGINT") != NULL, "stderr: %s", r.err);
	cr_expect(strstr(r.err, "--resume") == NULL,
	          "an --unordered run suggests --resume, which it cannot do: %s", r.err);
	proc_release(&r);
	cr_expect_not(exists(f.out));
	cr_expect_not(exists(f.partial), "an --unordered run left %s", f.partial);
	cr_expect_not(exists(f.journal), "an --unordered run left %s", f.journal);
	snapshot_take(&was, &f);
	cr_expect_eq(count_of(was.listing, "out.json"), 0, "left behind: %s", was.listing);

	command(&a, &f, ARGS("--unordered", "--errors", f.errors), ARGS("--resume"));
	run_args(&r, &a, NULL);
	expect_exit(&r, 2);
	cr_expect(strstr(r.err, "ordered") != NULL, "stderr does not say why: %s", r.err);
	expect_unchanged(&was, &f, "--resume --unordered");
	proc_release(&r);

	command(&a, &f, ARGS("--errors", f.errors), ARGS("--resume"));
	run_args(&r, &a, NULL);
	expect_exit(&r, 2);
	cr_expect(strstr(r.err, "no journal") != NULL, "stderr: %s", r.err);
	expect_unchanged(&was, &f, "--resume after an --unordered run");
	proc_release(&r);
	snapshot_release(&was);
}
