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
 * changed; no journal; no -o or stdin), --resume on a finished run,
 * --retry-failed, a torn journal, and what --unordered does.
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

/* ---- command lines ---- */

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

struct args {
	const char *v[MAX_ARGS + 1];
	size_t n;
};

/* Appends a NULL-terminated list (NULL: nothing). */
static void args_add(struct args *a, const char *const *list)
{
	for (; list && *list; list++) {
		cr_assert_lt(a->n, MAX_ARGS, "too many arguments");
		a->v[a->n++] = *list;
	}
	a->v[a->n] = NULL;
}

/* ---- the files of one run ---- */

struct files {
	char in[256], out[256], partial[300], journal[300], ref[256];
	char summary[256], joblog[256], errors[256];
};

static void files_init(struct files *f, const char *in_name)
{
	snprintf(f->in, sizeof(f->in), "%s/%s", scratch, in_name);
	snprintf(f->out, sizeof(f->out), "%s/out.json", scratch);
	snprintf(f->partial, sizeof(f->partial), "%s.pexec-partial", f->out);
	snprintf(f->journal, sizeof(f->journal), "%s.pexec-journal", f->out);
	snprintf(f->ref, sizeof(f->ref), "%s/ref.json", scratch);
	snprintf(f->summary, sizeof(f->summary), "%s/summary.json", scratch);
	snprintf(f->joblog, sizeof(f->joblog), "%s/joblog.ndjson", scratch);
	snprintf(f->errors, sizeof(f->errors), "%s/errors.ndjson", scratch);
}

static int exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static long long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : (long long)st.st_size;
}

/* Items for the sleep plugin: item i sleeps `slow_s` for i < n_slow, else
 * `fast_s`, plus i microseconds, so that every item (and result) is
 * different: a result lost, doubled or misplaced shows.  Every `bad_every`th
 * item (0: none) is the string "bad", which the plugin fails. */
static void write_sleep_input(const char *path, size_t n, size_t n_slow, double slow_s,
                              double fast_s, size_t bad_every, int ndjson)
{
	char *text = NULL, item[64];
	size_t len = 0;

	append(&text, &len, ndjson ? "" : "[", ndjson ? 0 : 1);
	for (size_t i = 0; i < n; i++) {
		int k;

		if (bad_every && i % bad_every == bad_every - 1)
			k = snprintf(item, sizeof(item), "\"bad\"");
		else
			k = snprintf(item, sizeof(item), "%.6f",
			             (i < n_slow ? slow_s : fast_s) + (double)i * 1e-6);
		if (i && !ndjson)
			append(&text, &len, ", ", 2);
		append(&text, &len, item, (size_t)k);
		if (ndjson)
			append(&text, &len, "\n", 1);
	}
	if (!ndjson)
		append(&text, &len, "]\n", 2);
	write_file(path, text, len);
	free(text);
}

/* ---- the journal as a resume would read it ---- */

struct jstate {
	int lines;            /* whole lines; -1: no journal */
	int checkpoints;
	uint64_t items, written, bytes;  /* the last checkpoint */
	int complete;
	int failed;           /* {"failed":N} lines */
};

static uint64_t u64_of(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (uint64_t)v->valuedouble : 0;
}

/* Reads only whole lines: the journal may be growing as it is read. */
static void journal_state(const char *path, struct jstate *s)
{
	size_t len;
	char *text = read_file(path, &len), *line, *nl;

	memset(s, 0, sizeof(*s));
	if (!text) {
		s->lines = -1;
		return;
	}
	for (line = text; (nl = memchr(line, '\n', len - (size_t)(line - text))); line = nl + 1) {
		cJSON *rec, *cp;

		*nl = '\0';
		s->lines++;
		rec = cJSON_Parse(line);
		if ((cp = cJSON_GetObjectItemCaseSensitive(rec, "checkpoint"))) {
			s->checkpoints++;
			s->items = u64_of(cp, "items");
			s->written = u64_of(cp, "written");
			s->bytes = u64_of(cp, "bytes");
		} else if (cJSON_GetObjectItemCaseSensitive(rec, "failed")) {
			s->failed++;
		} else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "complete"))) {
			s->complete = 1;
		}
		cJSON_Delete(rec);
	}
	free(text);
}

/* ---- interrupting a run at a chosen point ---- */

/* Signals pexec once its journal's last checkpoint covers at least
 * `min_items` items (and there are `min_checkpoints` of them), and its partial
 * output holds more than `min_partial` bytes and, with `uncovered`, more than
 * that checkpoint covers. */
struct stopper {
	const struct files *f;
	int sig;
	uint64_t min_items;
	int min_checkpoints;
	int min_lines;        /* whole lines in the journal */
	long long min_partial;
	int uncovered;
	int sent;
	struct jstate seen;   /* the journal when the signal went */
};

static void stopper_watch(void *ctx, pid_t pid, const struct proc *so_far)
{
	struct stopper *s = ctx;
	struct jstate js;
	long long part;

	(void)so_far;
	if (s->sent)
		return;
	journal_state(s->f->journal, &js);
	if (js.lines < 1 || js.lines < s->min_lines || js.checkpoints < s->min_checkpoints ||
	    js.items < s->min_items)
		return;
	part = file_size(s->f->partial);
	if (part <= s->min_partial || (s->uncovered && part <= (long long)js.bytes))
		return;
	kill(pid, s->sig);
	s->sent = 1;
	s->seen = js;
}

/* Runs pexec; with a stopper, signalled as it says.  A pexec killed with
 * SIGKILL leaves its workers to PR_SET_PDEATHSIG, given a hang guard's time
 * to die (r->survivors counts those that did not). */
static void run_args(struct proc *r, const struct args *a, struct stopper *stop)
{
	struct proc_spec s = {
		.args = a->v,
		.watch = stop ? stopper_watch : NULL,
		.watch_ctx = stop,
		.orphan_grace_s = stop ? HANG_GUARD_S : 0,
	};

	run_spec(&s, r);
}

/* The run was stopped by `sig` and left a resumable state. */
static void expect_interrupted(const struct proc *r, const struct stopper *st, const char *what)
{
	const struct files *f = st->f;
	char how[128];

	cr_assert(st->sent, "%s: %s: the run ended (%s) before the moment to signal it; stderr: %s",
	          what, r->cmd, describe(r->status, how, sizeof(how)), r->err);
	cr_assert_not(r->hung, "%s: %s: hung", what, r->cmd);
	if (st->sig == SIGKILL) {
		cr_expect(WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGKILL,
		          "%s: %s: %s, want killed by SIGKILL", what, r->cmd,
		          describe(r->status, how, sizeof(how)));
		cr_expect_eq(r->survivors, 0, "%s: %d workers outlived the killed pexec", what,
		             r->survivors);
	} else {
		expect_exit(r, 128 + st->sig);
		cr_expect(strstr(r->err, "--resume") != NULL,
		          "%s: stderr does not say to use --resume: %s", what, r->err);
	}
	cr_expect_not(exists(f->out), "%s: %s appeared although the run did not end", what, f->out);
	cr_expect(exists(f->partial), "%s: no partial output %s left", what, f->partial);
	cr_expect(exists(f->journal), "%s: no journal %s left", what, f->journal);
}

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

static void expect_same_file(const char *what, const char *path, const char *want_path)
{
	size_t got_len, want_len;
	char *got = read_file(path, &got_len), *want = read_file(want_path, &want_len);

	cr_assert_not_null(want, "%s: %s missing", what, want_path);
	cr_expect_not_null(got, "%s: %s missing", what, path);
	if (got)
		expect_same_bytes(what, got, got_len, want, want_len);
	free(got);
	free(want);
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

/* The uninterrupted run of `opts` over f->in into f->ref. */
static void reference_run(const struct files *f, const char *const *opts, int want_exit)
{
	struct args a = { 0 };
	struct proc r;

	args_add(&a, ARGS("-p", "sleep", "-j", "16", "-q", "-o", f->ref));
	args_add(&a, opts);
	args_add(&a, ARGS(f->in));
	run_args(&r, &a, NULL);
	expect_exit(&r, want_exit);
	cr_assert(exists(f->ref), "the reference run wrote no %s", f->ref);
	proc_release(&r);
}

/* pexec -p sleep -j 2 OPTS -o OUT [--resume ...] IN */
static void command(struct args *a, const struct files *f, const char *const *opts,
                    const char *const *more)
{
	a->n = 0;
	args_add(a, ARGS("-p", "sleep", "-j", "2", "-o", f->out));
	args_add(a, opts);
	args_add(a, more);
	args_add(a, ARGS(f->in));
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

/* ---- refusals ---- */

/* What a refused resume must not touch. */
struct snapshot {
	char *listing, *partial, *journal, *out;
	size_t partial_len, journal_len, out_len;
};

static void snapshot_take(struct snapshot *s, const struct files *f)
{
	s->listing = scratch_listing();
	s->partial = read_file(f->partial, &s->partial_len);
	s->journal = read_file(f->journal, &s->journal_len);
	s->out = read_file(f->out, &s->out_len);
}

static void snapshot_release(struct snapshot *s)
{
	free(s->listing);
	free(s->partial);
	free(s->journal);
	free(s->out);
	memset(s, 0, sizeof(*s));
}

static void expect_same_or_absent(const char *what, const char *a, size_t a_len, const char *b,
                                  size_t b_len)
{
	cr_expect_eq(a != NULL, b != NULL, "%s: %s", what, a ? "removed" : "created");
	if (a && b)
		expect_same_bytes(what, a, a_len, b, b_len);
}

static void expect_unchanged(const struct snapshot *was, const struct files *f, const char *what)
{
	struct snapshot now;
	char label[160];

	snapshot_take(&now, f);
	cr_expect_str_eq(now.listing, was->listing, "%s: the directory changed:\n%s\nwas:\n%s",
	                 what, now.listing, was->listing);
	snprintf(label, sizeof(label), "%s: partial output", what);
	expect_same_or_absent(label, now.partial, now.partial_len, was->partial, was->partial_len);
	snprintf(label, sizeof(label), "%s: journal", what);
	expect_same_or_absent(label, now.journal, now.journal_len, was->journal, was->journal_len);
	snprintf(label, sizeof(label), "%s: output", what);
	expect_same_or_absent(label, now.out, now.out_len, was->out, was->out_len);
	snapshot_release(&now);
}

/* Leaves f->out's partial output and journal as a SIGTERM leaves them, with
 * a checkpoint covering some items. */
static void make_interrupted(const struct files *f, const char *const *opts)
{
	struct args a;
	struct proc r;
	struct stopper st = { .f = f, .sig = SIGTERM, .min_partial = 16 };
	struct jstate js;

	command(&a, f, opts, ARGS("-q"));
	run_args(&r, &a, &st);
	expect_interrupted(&r, &st, "the interrupted run");
	proc_release(&r);
	journal_state(f->journal, &js);
	cr_assert_gt(js.items, 0, "the interrupted run's journal covers no item");
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
Test(resume, retry_failed_recomputes_transient_failures)
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
Test(resume, retry_failed_after_an_interruption_completes_then_retries)
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

Test(resume, retry_failed_keeps_deterministic_failures)
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
Test(resume, retry_failed_twice_still_knows_the_failures)
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

Test(resume, retry_failed_with_drop_null_is_refused)
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
Test(resume, retry_failed_with_drop_null_is_refused_before_any_work)
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
