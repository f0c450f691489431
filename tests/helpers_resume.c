/*
 * helpers_resume.c - the helpers.h section on resumable runs (struct files,
 * struct stopper, the journal as a resume reads it), shared by
 * test_resume.c, test_retry.c and test_mpi.c.
 */
#include <errno.h>
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

/* Appends a NULL-terminated list (NULL: nothing). */
void args_add(struct args *a, const char *const *list)
{
	for (; list && *list; list++) {
		cr_assert_lt(a->n, MAX_ARGS, "too many arguments");
		a->v[a->n++] = *list;
	}
	a->v[a->n] = NULL;
}
void files_init(struct files *f, const char *in_name)
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

int exists(const char *path)
{
	return access(path, F_OK) == 0;
}

long long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : (long long)st.st_size;
}

/* Items for the sleep plugin: item i sleeps `slow_s` for i < n_slow, else
 * `fast_s`, plus i microseconds, so that every item (and result) is
 * different: a result lost, doubled or misplaced shows.  Every `bad_every`th
 * item (0: none) is the string "bad", which the plugin fails. */
void write_sleep_input(const char *path, size_t n, size_t n_slow, double slow_s,
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
uint64_t u64_of(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (uint64_t)v->valuedouble : 0;
}

/* Reads only whole lines: the journal may be growing as it is read. */
void journal_state(const char *path, struct jstate *s)
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
void run_args(struct proc *r, const struct args *a, struct stopper *stop)
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
void expect_interrupted(const struct proc *r, const struct stopper *st, const char *what)
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
void expect_same_file(const char *what, const char *path, const char *want_path)
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
/* The uninterrupted run of `opts` over f->in into f->ref. */
void reference_run(const struct files *f, const char *const *opts, int want_exit)
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
void command(struct args *a, const struct files *f, const char *const *opts,
             const char *const *more)
{
	a->n = 0;
	args_add(a, ARGS("-p", "sleep", "-j", "2", "-o", f->out));
	args_add(a, opts);
	args_add(a, more);
	args_add(a, ARGS(f->in));
}
void snapshot_take(struct snapshot *s, const struct files *f)
{
	s->listing = scratch_listing();
	s->partial = read_file(f->partial, &s->partial_len);
	s->journal = read_file(f->journal, &s->journal_len);
	s->out = read_file(f->out, &s->out_len);
}

void snapshot_release(struct snapshot *s)
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

void expect_unchanged(const struct snapshot *was, const struct files *f, const char *what)
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
void make_interrupted(const struct files *f, const char *const *opts)
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
