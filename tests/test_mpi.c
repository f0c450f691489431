/*
 * test_mpi.c - pexec-mpi end to end: the pexec command run across the ranks
 * of an MPI job gives what pexec gives on one machine.
 *
 * Every test runs build/pexec-mpi under `mpirun -np 3` as a user does, and
 * the built pexec over the same input with the same options, and compares
 * them: stdout byte for byte (with --unordered, as a multiset of lines), the
 * exit status, the -o file, the --errors records and the failure lines (but
 * for the worker pids inside their reasons).  mpirun exits with rank 0's
 * status when that is not 0 (1: items failed, 2: a usage error, 143: SIGTERM),
 * after a banner of its own on stderr, so statuses compare as they are.
 * Then what only MPI has: a rank ended from outside (rank 0 by SIGTERM, rank
 * 2 by SIGKILL), and a --resume under mpirun that must finish the job with
 * the output of a run that never stopped.  (What runs by spans add, ranks
 * that write -o themselves and malformed input, is test_mpi_spans.c's.)
 *
 * All ranks run on this machine (--oversubscribe), each with its own pool
 * server and workers.  Where Open MPI is missing (no mpirun in PATH, or no
 * pexec-mpi, which `make` builds only when mpicc is installed) every test is
 * skipped, saying why, so that `make test` passes without it.
 *
 * Nothing measures time: every wait is a hang guard, and the run that gets
 * interrupted is stopped when its journal says so, not after a delay.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"
#include "mpi_run.h"

#define FAULTS FIX("faults")

TestSuite(mpi, .init = scratch_make, .fini = scratch_remove, .timeout = 120);

/* ---- running both ---- */

/* Both ran OPTS over `in`, exited with `want_exit`, and wrote the same
 * stdout.  The runs are left in *local and *mpi. */
static void expect_same_run(struct proc *local, struct proc *mpi, const char *const *opts,
                            const char *in, int want_exit)
{
	run_local(local, opts, in);
	expect_exit(local, want_exit);
	run_mpi(mpi, opts, in);
	expect_mpi_exit(mpi, want_exit);
	expect_same_bytes(mpi->cmd, mpi->out, mpi->out_len, local->out, local->out_len);
}

static void compare(const char *const *opts, const char *in, int want_exit)
{
	struct proc local, mpi;

	expect_same_run(&local, &mpi, opts, in, want_exit);
	proc_release(&local);
	proc_release(&mpi);
}

/* ---- inputs ---- */

/* A JSON array of `n` items for the faults plugin: the number i, except at
 * the indices in `at` (n_at of them), where it is faults[k]. */
static char *fault_items(size_t n, const size_t *at, const char *const *faults, size_t n_at)
{
	char *text = NULL, num[24];
	size_t len = 0;

	append(&text, &len, "[", 1);
	for (size_t i = 0; i < n; i++) {
		const char *item = NULL;
		int k;

		for (size_t j = 0; j < n_at; j++)
			if (at[j] == i)
				item = faults[j];
		if (i)
			append(&text, &len, ",\n", 2);
		if (item) {
			append(&text, &len, item, strlen(item));
			continue;
		}
		k = snprintf(num, sizeof(num), "%zu", i);
		append(&text, &len, num, (size_t)k);
	}
	append(&text, &len, "]\n", 2);
	return text;
}

/* `text` with every "worker N" (a pid, which differs between any two runs)
 * written "worker PID". */
static char *without_pids(const char *text)
{
	char *out = NULL;
	size_t len = 0;

	append(&out, &len, "", 0);
	for (const char *p = text; *p;) {
		if (!strncmp(p, "worker ", 7) && p[7] >= '0' && p[7] <= '9') {
			append(&out, &len, "worker PID", 10);
			for (p += 7; *p >= '0' && *p <= '9'; p++)
				;
		} else {
			append(&out, &len, p++, 1);
		}
	}
	return out;
}

/* The lines of stderr that start with `prefix`, in order, without it, and
 * with pids hidden. */
static char *lines_starting(const char *err, const char *prefix)
{
	char *picked = NULL, *out;
	size_t len = 0, n = strlen(prefix);

	append(&picked, &len, "", 0);
	for (const char *l = err; *l;) {
		const char *nl = strchr(l, '\n');
		size_t k = nl ? (size_t)(nl - l) + 1 : strlen(l);

		if (!strncmp(l, prefix, n))
			append(&picked, &len, l + n, k - n);
		l += k;
	}
	out = without_pids(picked);
	free(picked);
	return out;
}

/* ---- 1. ordered output ---- */

Test(mpi, factorial_output_is_identical_to_pexec)
{
	char *json = random_integers(2000, 0), *ndjson = random_integers(2000, 1);

	need_mpi();
	write_file(scratch_path(0, "in.json"), json, strlen(json));
	compare(ARGS("-p", "factorial", "-j", "2", scratch_path(0, "in.json")), NULL, 0);
	compare(ARGS("-p", "factorial", "-j", "2", "--output-format", "ndjson",
	             scratch_path(0, "in.json")), NULL, 0);
	write_file(scratch_path(1, "in.ndjson"), ndjson, strlen(ndjson));
	compare(ARGS("-p", "factorial", "-j", "2", "--input-format", "ndjson", "--output-format",
	             "ndjson", scratch_path(1, "in.ndjson")), NULL, 0);
	/* One item a chunk: far more chunks than the coordinator's window holds
	 * out of order at once. */
	compare(ARGS("-p", "factorial", "-j", "2", "--chunksize", "1", "--input-format", "ndjson",
	             scratch_path(1, "in.ndjson")), NULL, 0);
	free(json);
	free(ndjson);
}

/* ---- 2. --unordered ---- */

Test(mpi, unordered_output_has_the_lines_of_the_ordered_one)
{
	static const char *const fmts[] = { "ndjson", "json" };
	char *ndjson = random_integers(2000, 1);
	const char *in = scratch_path(0, "in.ndjson");

	need_mpi();
	write_file(in, ndjson, strlen(ndjson));
	for (size_t f = 0; f < COUNT(fmts); f++) {
		struct proc want, r;

		run_local(&want, ARGS("-p", "factorial", "-j", "2", "--input-format", "ndjson",
		                      "--output-format", fmts[f], in), NULL);
		expect_exit(&want, 0);
		run_mpi(&r, ARGS("-p", "factorial", "-j", "2", "--unordered", "--input-format",
		                 "ndjson", "--output-format", fmts[f], in), NULL);
		expect_mpi_exit(&r, 0);
		cr_expect(f == 0 || parses(r.out), "%s: not one JSON value", r.cmd);
		expect_same_line_set(r.cmd, r.out, want.out);
		proc_release(&r);
		proc_release(&want);
	}
	free(ndjson);
}

/* ---- 3. faults, --timeout, --retries, --errors ---- */

Test(mpi, faults_fail_the_same_items_as_in_pexec)
{
	static const size_t at[] = { 17, 50, 120, 200, 250, 251, 280 };
	static const char *const faults[] = {
		"{\"fault\":\"segv\",\"stage\":\"map\"}",
		"{\"fault\":\"error\",\"stage\":\"map\"}",
		"{\"fault\":\"loop\",\"stage\":\"map\"}",
		"{\"fault\":\"exit\",\"stage\":\"serialize\",\"code\":3}",
		"{\"fault\":\"error\",\"stage\":\"deserialize\"}",
		"{\"fault\":\"sigkill\",\"stage\":\"map\"}",
		"{\"fault\":\"abort\",\"stage\":\"deserialize\"}",
	};
	char *in = fault_items(300, at, faults, COUNT(at));
	const char *path = scratch_path(0, "in.json");
	const char *errs_local = scratch_path(1, "errors-local.ndjson");
	const char *errs_mpi = scratch_path(2, "errors-mpi.ndjson");
	struct proc local, mpi;
	char *want, *got, *el, *em;
	size_t len;

	need_mpi();
	write_file(path, in, strlen(in));
	run_local(&local, ARGS("-p", FAULTS, "-j", "2", "--timeout", "0.5", "--retries", "1",
	                       "--errors", errs_local, path), NULL);
	expect_exit(&local, 1);
	run_mpi(&mpi, ARGS("-p", FAULTS, "-j", "2", "--timeout", "0.5", "--retries", "1",
	                   "--errors", errs_mpi, path), NULL);
	expect_mpi_exit(&mpi, 1);
	expect_same_bytes(mpi.cmd, mpi.out, mpi.out_len, local.out, local.out_len);

	/* The same records, in the same order, but for the pids. */
	el = read_file(errs_local, &len);
	em = read_file(errs_mpi, &len);
	cr_assert_not_null(el, "%s: no --errors file", local.cmd);
	cr_assert_not_null(em, "%s: no --errors file", mpi.cmd);
	cr_expect_eq(line_count(el), COUNT(at), "%s: %zu --errors records, want %zu: %s",
	             local.cmd, line_count(el), COUNT(at), el);
	want = without_pids(el);
	got = without_pids(em);
	cr_expect_str_eq(got, want, "%s: --errors records differ:\n%s\nwant:\n%s", mpi.cmd, got,
	                 want);
	free(want);
	free(got);
	free(el);
	free(em);

	/* And the same failure lines on stderr. */
	want = lines_starting(local.err, "pexec: item ");
	got = lines_starting(mpi.err, "pexec-mpi: item ");
	cr_expect_str_eq(got, want, "%s: failure lines differ:\n%s\nwant:\n%s", mpi.cmd, got, want);
	free(want);
	free(got);
	proc_release(&local);
	proc_release(&mpi);
	free(in);
}

/* ---- 4. --reduce ---- */

Test(mpi, reduce_gives_the_value_pexec_gives)
{
	static const size_t at[] = { 123, 321 };
	static const char *const faults[] = {
		"{\"fault\":\"segv\",\"stage\":\"map\"}",
		"{\"fault\":\"exit\",\"stage\":\"deserialize\"}",
	};
	char *words = word_files(60), *numbers = fault_items(500, at, faults, COUNT(at));
	struct proc local, mpi;

	need_mpi();
	expect_same_run(&local, &mpi, ARGS("-p", "wordcount", "--reduce", "-j", "2"), words, 0);
	cr_expect_str_eq(local.out, "{\"beta\":60,\"gamma\":120,\"alpha\":1770}\n");
	proc_release(&local);
	proc_release(&mpi);
	compare(ARGS("-p", "wordcount", "--reduce", "-j", "1", "--chunksize", "1"), words, 0);

	/* Items that fail in map or deserialize are left out of the sum. */
	expect_same_run(&local, &mpi, ARGS("-p", FAULTS, "--reduce", "-j", "2"), numbers, 1);
	cr_expect_str_eq(local.out, "248612\n");
	proc_release(&local);
	proc_release(&mpi);
	free(words);
	free(numbers);
}

/* A fault in the reduce hook itself costs pexec only the item whose result
 * was being folded (the worker that folds its chunk fails that item).
 * pexec-mpi must do the same. */
Test(mpi, reduce_fault_in_the_reduce_hook_fails_only_its_item)
{
	static const size_t at[] = { 123, 321 };
	static const char *const faults[][2] = {
		{ "{\"fault\":\"error\",\"stage\":\"reduce\"}",
		  "{\"fault\":\"error\",\"stage\":\"reduce\"}" },
		{ "{\"fault\":\"segv\",\"stage\":\"reduce\"}",
		  "{\"fault\":\"segv\",\"stage\":\"reduce\"}" },
	};

	need_mpi();
	for (size_t f = 0; f < COUNT(faults); f++) {
		char *numbers = fault_items(500, at, faults[f], COUNT(at));
		struct proc local, mpi;
		char *want, *got;

		expect_same_run(&local, &mpi, ARGS("-p", FAULTS, "--reduce", "-j", "2"), numbers, 1);
		cr_expect_str_eq(local.out, "248612\n");
		want = lines_starting(local.err, "pexec: item ");
		got = lines_starting(mpi.err, "pexec-mpi: item ");
		cr_expect_str_eq(got, want, "%s: failure lines differ:\n%s\nwant:\n%s\nstderr: %s",
		                 mpi.cmd, got, want, mpi.err);
		free(want);
		free(got);
		proc_release(&local);
		proc_release(&mpi);
		free(numbers);
	}
}

/* The python plugin across ranks: each rank's pool server sets up (one
 * import) before forking its workers, and rank 0, which folds, sets up
 * too.  Values, a failed item and a fold come out as from pexec. */
Test(mpi, python_functions_give_what_pexec_gives)
{
	char *numbers = random_integers(2000, 0), fn[512], fold[512];
	struct proc local, mpi;
	char *want, *got;

	need_mpi();
	if (access(PEXEC_TEST_BUILD "/plugins/python.so", R_OK) != 0)
		cr_skip_test("the python plugin is not built (needs python3-dev)");
	setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
	snprintf(fn, sizeof(fn), "{\"path\": [\"%s/tests/python\"], \"function\": "
	         "\"fixture:factorial\"}", PEXEC_SRC_DIR);
	snprintf(fold, sizeof(fold), "{\"path\": [\"%s/tests/python\"], \"function\": "
	         "\"fixture:unlucky\", \"reduce\": \"fixture:add\", \"initial\": 0}",
	         PEXEC_SRC_DIR);
	compare(ARGS("-p", "python", "-j", "2", "--config", fn), numbers, 0);
	expect_same_run(&local, &mpi, ARGS("-p", "python", "-j", "2", "--reduce", "--config", fold),
	                "[1, 13, 2, 13, 3]", 1);
	cr_expect_str_eq(local.out, "12\n");
	want = lines_starting(local.err, "pexec: item ");
	got = lines_starting(mpi.err, "pexec-mpi: item ");
	cr_expect_str_eq(got, want, "%s: failure lines differ:\n%s\nwant:\n%s", mpi.cmd, got, want);
	free(want);
	free(got);
	proc_release(&local);
	proc_release(&mpi);
	free(numbers);
}

/* ---- 5. stdin ---- */

Test(mpi, input_from_stdin)
{
	char *json = random_integers(500, 0);

	need_mpi();
	compare(ARGS("-p", "factorial", "-j", "2"), json, 0);
	compare(ARGS("-p", "factorial", "-j", "2", "-"), json, 0);
	free(json);
}

/* ---- 6. -o FILE ---- */

Test(mpi, output_file_is_identical_and_nothing_is_left_beside_it)
{
	char *json = random_integers(2000, 0);
	const char *in = scratch_path(0, "in.json"), *ref = scratch_path(1, "ref.json");
	const char *out = scratch_path(2, "out.json");
	struct proc local, mpi;
	char *listing;

	need_mpi();
	write_file(in, json, strlen(json));
	run_local(&local, ARGS("-p", "factorial", "-j", "2", "-o", ref, in), NULL);
	expect_exit(&local, 0);
	run_mpi(&mpi, ARGS("-p", "factorial", "-j", "2", "-o", out, in), NULL);
	expect_mpi_exit(&mpi, 0);
	cr_expect_eq(mpi.out_len, 0, "%s: wrote to stdout with -o: %.80s", mpi.cmd, mpi.out);
	expect_same_file(mpi.cmd, out, ref);
	/* No FILE.pexec-journal, no FILE.pexec-partial. */
	listing = scratch_listing();
	cr_expect_str_eq(listing, "in.json\nout.json\nref.json\n", "%s: the directory holds:\n%s",
	                 mpi.cmd, listing);
	free(listing);
	proc_release(&local);
	proc_release(&mpi);
	free(json);
}

/* ---- 7. usage errors ---- */

/* Every rank parses the options; only rank 0 says what is wrong, once, as
 * pexec does but for the program's name. */
Test(mpi, usage_error_exits_2_with_one_message)
{
	static const char *const cases[][3] = {
		{ "--jobs", "0", NULL },
		{ "--timeout", "-1", NULL },
		{ "--no-such-option", NULL },
	};

	need_mpi();
	for (size_t c = 0; c < COUNT(cases); c++) {
		struct args a = { 0 };
		struct proc local, mpi;
		char *first, *err, line[512];
		const char *nl;

		args_add(&a, ARGS("-p", "factorial"));
		args_add(&a, cases[c]);
		args_add(&a, ARGS(scratch_path(0, "missing.json")));
		run_local(&local, a.v, "[1]");
		expect_exit(&local, 2);
		run_mpi(&mpi, a.v, "[1]");
		expect_mpi_exit(&mpi, 2);
		cr_expect_eq(mpi.out_len, 0, "%s: wrote to stdout: %.80s", mpi.cmd, mpi.out);
		/* pexec's first line, "pexec: ...", as pexec-mpi's. */
		nl = strchr(local.err, '\n');
		cr_assert(!strncmp(local.err, "pexec: ", 7) && nl, "%s: %s", local.cmd, local.err);
		first = strndup(local.err + 7, (size_t)(nl - local.err) - 7);
		snprintf(line, sizeof(line), "pexec-mpi: %s\n", first);
		err = without_banners(mpi.err);
		cr_expect_eq(count_of(err, line), 1, "%s: stderr has \"%.*s\" %zu times, want "
		             "once:\n%s", mpi.cmd, (int)strlen(line) - 1, line, count_of(err, line),
		             mpi.err);
		cr_expect_eq(count_of(err, first), 1, "%s: the message comes %zu times: %s", mpi.cmd,
		             count_of(err, first), mpi.err);
		free(err);
		free(first);
		proc_release(&local);
		proc_release(&mpi);
	}
}

/* ---- 8. a plugin that cannot be loaded ---- */

Test(mpi, plugin_that_cannot_be_loaded_is_named_and_leaves_no_output)
{
	const char *in = scratch_path(0, "in.json"), *plugin = scratch_path(1, "no-such-plugin.so");
	const char *out = scratch_path(2, "out.json");
	struct proc local, mpi;
	char *listing;

	need_mpi();
	write_file(in, "[1, 2, 3]\n", 10);
	run_local(&local, ARGS("-p", plugin, "-o", out, in), NULL);
	expect_exit(&local, 2);
	run_mpi(&mpi, ARGS("-p", plugin, "-o", out, in), NULL);
	expect_mpi_exit(&mpi, 2);
	cr_expect(strstr(mpi.err, "pexec-mpi: cannot load") != NULL,
	          "%s: stderr does not say the plugin cannot be loaded: %s", mpi.cmd, mpi.err);
	cr_expect_eq(count_of(mpi.err, plugin), 1, "%s: stderr names %s %zu times, want once: %s",
	             mpi.cmd, plugin, count_of(mpi.err, plugin), mpi.err);
	listing = scratch_listing();
	cr_expect_str_eq(listing, "in.json\n", "%s: the directory holds:\n%s", mpi.cmd, listing);
	free(listing);
	proc_release(&local);
	proc_release(&mpi);
}

/* ---- 9. a rank ended from outside, then --resume ---- */

/* The rank of a process by its environment (OMPI_COMM_WORLD_RANK, which
 * Open MPI sets for every rank), if it runs pexec-mpi; -1 otherwise. */
static int rank_of(pid_t pid)
{
	char path[64];
	size_t len;
	char *comm, *env;
	int rank = -1;

	snprintf(path, sizeof(path), "/proc/%ld/comm", (long)pid);
	comm = read_file(path, &len);
	if (!comm || strcmp(comm, "pexec-mpi\n")) {
		free(comm);
		return -1;
	}
	free(comm);
	snprintf(path, sizeof(path), "/proc/%ld/environ", (long)pid);
	env = read_file(path, &len);
	for (size_t at = 0; env && at < len; at += strlen(env + at) + 1)
		if (!strncmp(env + at, "OMPI_COMM_WORLD_RANK=", 21))
			rank = atoi(env + at + 21);
	free(env);
	return rank;
}

/* for_children() callbacks take only a pid: the rank sought and the
 * process found. */
static int sought_rank;
static pid_t rank_pid;

static void note_rank(pid_t pid)
{
	if (rank_of(pid) == sought_rank)
		rank_pid = pid;
}

/* Signals one rank's pexec-mpi once the journal has a checkpoint covering
 * some items.  Open MPI starts the ranks on this machine as mpirun's own
 * children; the pool server a rank forks, and its workers, inherit the same
 * environment but are that rank's children, not mpirun's. */
struct rank_stopper {
	struct files *f;
	int rank, sig;
	int sent;
};

static void stop_rank(void *ctx, pid_t mpirun, const struct proc *so_far)
{
	struct rank_stopper *s = ctx;
	struct jstate js;

	(void)so_far;
	if (s->sent)
		return;
	journal_state(s->f->journal, &js);
	if (js.checkpoints < 1 || js.items < 1)
		return;
	sought_rank = s->rank;
	rank_pid = 0;
	for_children(mpirun, note_rank);
	if (!rank_pid)
		return;
	cr_assert_eq(kill(rank_pid, s->sig), 0, "kill rank %d (pid %ld): %s", s->rank,
	             (long)rank_pid, strerror(errno));
	s->sent = 1;
}

/* About 3 s of work for 3 ranks of 2 workers, a checkpoint a second. */
enum { SLEEP_ITEMS = 300 };

/* The sleep job over a fresh input, signalled as `st` says, after the
 * uninterrupted run that gives the reference output. */
static void interrupted_run(struct proc *r, struct rank_stopper *st)
{
	struct args a;
	struct proc_spec s = { .program = "mpirun", .args = a.v, .watch = stop_rank,
		               .watch_ctx = st, .orphan_grace_s = ORPHAN_GRACE_S };

	need_mpi();
	files_init(st->f, "in.json");
	write_sleep_input(st->f->in, SLEEP_ITEMS, 0, 0, 0.06, 0, 0);
	reference_run(st->f, NULL, 0);
	mpi_command(&a, ARGS("-p", "sleep", "-j", "2", "-q", "-o", st->f->out, st->f->in));
	run_spec(&s, r);
	cr_assert(st->sent, "%s: the run ended (status 0x%x) before its journal had a checkpoint; "
	          "stderr: %s", r->cmd, r->status, r->err);
	cr_assert_not(r->hung, "%s: hung; stderr: %s", r->cmd, r->err);
	cr_expect_eq(r->survivors, 0, "%s: %d processes outlived the job by %d s", r->cmd,
	             r->survivors, ORPHAN_GRACE_S);
	cr_expect_not(exists(st->f->out), "%s: %s appeared although the run did not end", r->cmd,
	              st->f->out);
	cr_expect(exists(st->f->partial), "%s: no partial output %s left", r->cmd, st->f->partial);
	cr_expect(exists(st->f->journal), "%s: no journal %s left", r->cmd, st->f->journal);
}

/* mpirun ... --resume finishes the job as the uninterrupted run did. */
static void expect_resume_completes(const struct files *f)
{
	struct args a;
	struct proc_spec s = { .program = "mpirun", .args = a.v,
		               .orphan_grace_s = ORPHAN_GRACE_S };
	struct proc r;
	struct jstate js;

	journal_state(f->journal, &js);
	cr_expect(js.items > 0 && js.items < SLEEP_ITEMS,
	          "the interrupted run's journal covers %llu of %d items: want some, not all",
	          (unsigned long long)js.items, SLEEP_ITEMS);
	mpi_command(&a, ARGS("-p", "sleep", "-j", "2", "-q", "-o", f->out, "--resume", f->in));
	run_spec(&s, &r);
	expect_mpi_exit(&r, 0);
	expect_same_file(r.cmd, f->out, f->ref);
	cr_expect_not(exists(f->partial), "%s: %s left behind", r.cmd, f->partial);
	cr_expect_not(exists(f->journal), "%s: %s left behind", r.cmd, f->journal);
	proc_release(&r);
}

/* SIGTERM to rank 0 stops the job as it stops pexec: exit 143 (passed on by
 * mpirun), everything written made durable, --resume named. */
Test(mpi, sigterm_to_rank_0_then_resume_gives_identical_output)
{
	struct files f;
	struct rank_stopper st = { .f = &f, .rank = 0, .sig = SIGTERM };
	struct proc r;
	struct jstate js;
	char how[128];

	interrupted_run(&r, &st);
	cr_expect(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 128 + SIGTERM,
	          "%s: %s, want exit %d; stderr: %s", r.cmd, describe(r.status, how, sizeof(how)),
	          128 + SIGTERM, r.err);
	cr_expect(strstr(r.err, "--resume") != NULL, "%s: stderr does not say to use --resume: %s",
	          r.cmd, r.err);
	journal_state(f.journal, &js);
	cr_expect_eq((long long)js.bytes, file_size(f.partial),
	             "%s: after SIGTERM the last checkpoint covers %llu bytes of the %lld written",
	             r.cmd, (unsigned long long)js.bytes, file_size(f.partial));
	proc_release(&r);
	expect_resume_completes(&f);
}

/* SIGKILL to rank 2 (not the one that writes): mpirun ends the whole job,
 * names the dead rank, and what rank 0 had journalled resumes. */
Test(mpi, sigkill_to_rank_2_ends_the_job_then_resume_gives_identical_output)
{
	struct files f;
	struct rank_stopper st = { .f = &f, .rank = 2, .sig = SIGKILL };
	struct proc r;
	struct jstate js;
	char how[128];

	interrupted_run(&r, &st);
	cr_expect(!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0,
	          "%s: %s after rank 2 was killed, want a failure", r.cmd,
	          describe(r.status, how, sizeof(how)));
	cr_expect(strstr(r.err, "rank 2") && strstr(r.err, "exited on signal 9"),
	          "%s: stderr does not name rank 2 killed by signal 9: %s", r.cmd, r.err);
	/* A checkpoint never claims more than is on disk. */
	journal_state(f.journal, &js);
	cr_expect_geq((unsigned long long)file_size(f.partial), (unsigned long long)js.bytes,
	              "%s: the partial output is shorter than its last checkpoint", r.cmd);
	proc_release(&r);
	expect_resume_completes(&f);
}

/* A rank read from a launcher variable that holds no rank would be 0, the
 * rank that speaks: refused instead, before MPI starts. */
Test(mpi, a_launcher_rank_that_is_no_number_is_refused)
{
	static const char *const args[] = { "-p", "identity", NULL };
	struct proc_spec s = { .program = PEXEC_MPI, .args = args, .in = "[1]", .in_len = 3 };
	struct proc r;

	if (access(PEXEC_MPI, X_OK) != 0)
		cr_skip_test("no %s (make mpi needs Open MPI)", PEXEC_MPI);
	setenv("OMPI_COMM_WORLD_RANK", "1x", 1);
	run_spec(&s, &r);
	unsetenv("OMPI_COMM_WORLD_RANK");
	expect_exit(&r, 2);
	cr_expect_str_eq(r.err, "pexec-mpi: OMPI_COMM_WORLD_RANK is '1x', not a rank: is this "
	                        "mpirun's?\n");
	proc_release(&r);
}
