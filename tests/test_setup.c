/*
 * test_setup.c - the setup and teardown hooks: setup runs once, in pexec,
 * before it forks the workers; teardown once, there, after they have all
 * ended; and what setup built is one copy shared by every worker.
 *
 * The fixture (tests/plugins/setup_table.c) logs each hook with its pid and
 * builds a table in setup (or, for comparison, in each worker's init).
 * Sharing is measured from outside while the workers are alive: the sum of
 * their proportional set sizes (Pss in /proc/PID/smaps_rollup, where a page
 * shared by n processes counts 1/n in each) stays near one table, where
 * private copies count one table each.  Nothing here measures time.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "helpers.h"

#define TABLE FIX("setup_table")
#define TABLE_MIB 256

TestSuite(setup, .init = scratch_make, .fini = scratch_remove, .timeout = 120);

/* ---- the log of hooks ---- */

struct hook_log {
	char hook[16][16];
	long pid[16];
	int n;
};

static void read_log(const char *path, struct hook_log *log)
{
	size_t len;
	char *text = read_file(path, &len), *line, *save = NULL;

	memset(log, 0, sizeof(*log));
	cr_assert_not_null(text, "no hook log %s", path);
	for (line = strtok_r(text, "\n", &save); line && log->n < 16;
	     line = strtok_r(NULL, "\n", &save)) {
		cr_assert_eq(sscanf(line, "%15s %ld", log->hook[log->n], &log->pid[log->n]), 2,
		             "log line '%s'", line);
		log->n++;
	}
	free(text);
}

static int hooks_named(const struct hook_log *log, const char *hook, long pid, int same)
{
	int n = 0;

	for (int i = 0; i < log->n; i++)
		if (!strcmp(log->hook[i], hook) && (same ? log->pid[i] == pid : log->pid[i] != pid))
			n++;
	return n;
}

static void note_pid(void *ctx, pid_t pid, const struct proc *so_far)
{
	(void)so_far;
	*(pid_t *)ctx = pid;
}

static void run_logged(struct proc *r, const char *const *args, const char *in, pid_t *pid)
{
	struct proc_spec s = { .args = args, .in = in, .in_len = strlen(in), .watch = note_pid,
		               .watch_ctx = pid };

	*pid = 0;
	run_spec(&s, r);
	cr_assert_neq(*pid, 0);
}

static const char *log_config(const char *log, int mib)
{
	static char config[512];

	snprintf(config, sizeof(config), "{\"mib\": %d, \"log\": \"%s\"}", mib, log);
	return config;
}

/* The one checksum of a table of `mib` MiB: page k starts with k mod 256. */
static long long checksum(int mib)
{
	long long pages = (long long)mib << 8, sum = 0;

	for (long long k = 0; k < pages; k++)
		sum += k & 0xff;
	return sum;
}

Test(setup, runs_once_in_pexec_before_the_fork_and_teardown_after)
{
	const char *log = scratch_path(0, "hooks.log");
	char want[64];
	struct hook_log l;
	struct proc r;
	pid_t pid;

	run_logged(&r, ARGS("-p", TABLE, "-j", "3", "--chunksize", "1", "--config",
	                    log_config(log, 1)),
	           "[0, 0, 0, 0, 0, 0]", &pid);
	expect_exit(&r, 0);
	snprintf(want, sizeof(want), "[\n%lld", checksum(1));
	cr_expect(!strncmp(r.out, want, strlen(want)), "%s", r.out);
	read_log(log, &l);
	cr_assert_geq(l.n, 2, "%d lines", l.n);
	cr_expect_str_eq(l.hook[0], "setup");
	cr_expect_eq(l.pid[0], pid, "setup ran in %ld, pexec is %ld", l.pid[0], (long)pid);
	cr_expect_str_eq(l.hook[l.n - 1], "teardown");
	cr_expect_eq(l.pid[l.n - 1], pid);
	cr_expect_eq(hooks_named(&l, "setup", 0, 0), 1);
	cr_expect_eq(hooks_named(&l, "teardown", 0, 0), 1);
	cr_expect_eq(hooks_named(&l, "init", pid, 0), 3, "every worker's init, none in pexec");
	cr_expect_eq(hooks_named(&l, "init", pid, 1), 0);
	proc_release(&r);
}

Test(setup, serial_runs_every_hook_in_pexec)
{
	static const char *const order[] = { "setup", "init", "fini", "teardown" };
	const char *log = scratch_path(0, "hooks.log");
	struct hook_log l;
	struct proc r;
	pid_t pid;

	run_logged(&r, ARGS("-p", TABLE, "--serial", "--config", log_config(log, 1)), "[0, 0]",
	           &pid);
	expect_exit(&r, 0);
	read_log(log, &l);
	cr_assert_eq(l.n, 4);
	for (int i = 0; i < 4; i++) {
		cr_expect_str_eq(l.hook[i], order[i]);
		cr_expect_eq(l.pid[i], pid);
	}
	proc_release(&r);
}

Test(setup, a_failing_setup_stops_the_run_before_any_worker)
{
	const char *log = scratch_path(0, "hooks.log");
	char config[512];
	struct hook_log l;
	struct proc r;

	snprintf(config, sizeof(config), "{\"mib\": 1, \"log\": \"%s\", \"fail\": \"setup\"}", log);
	run(&r, "[0, 0]", "-p", TABLE, "-j", "2", "--config", config, NULL);
	expect_exit(&r, 2);
	cr_expect(strstr(r.err, "pexec: plugin 'setup_table' setup failed: setup_table: asked to "
	                        "fail in setup"),
	          "%s", r.err);
	cr_expect_str_eq(r.out, "");
	read_log(log, &l);
	cr_expect_eq(l.n, 1, "setup only: no init, no teardown after a failed setup");
	proc_release(&r);
}

Test(setup, check_runs_setup_before_init_and_teardown_at_the_end)
{
	static const char *const order[] = { "setup", "init", "fini", "teardown" };
	const char *log = scratch_path(0, "hooks.log");
	const char *samples = scratch_path(1, "samples.json");
	struct hook_log l;
	struct proc r;

	write_file(samples, "[0]", 3);
	run(&r, NULL, "check", TABLE, samples, "--config", log_config(log, 1), NULL);
	expect_exit(&r, 0);
	cr_expect(strstr(r.out, "ok    setup with --config"), "%s", r.out);
	cr_expect(strstr(r.out, "ok    teardown"), "%s", r.out);
	read_log(log, &l);
	cr_assert_eq(l.n, 4);
	for (int i = 0; i < 4; i++) {
		cr_expect_str_eq(l.hook[i], order[i]);
		cr_expect_eq(l.pid[i], l.pid[0]);
	}
	proc_release(&r);
}

Test(setup, info_lists_the_hooks)
{
	struct proc r;
	cJSON *m, *hooks;

	run(&r, NULL, "info", TABLE, NULL);
	expect_exit(&r, 0);
	m = cJSON_Parse(r.out);
	cr_assert_not_null(m, "%s", r.out);
	hooks = cJSON_GetObjectItem(m, "hooks");
	cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(hooks, "setup")));
	cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(hooks, "teardown")));
	cJSON_Delete(m);
	proc_release(&r);
	run(&r, NULL, "info", "identity", NULL);
	m = cJSON_Parse(r.out);
	cr_assert_not_null(m, "%s", r.out);
	hooks = cJSON_GetObjectItem(m, "hooks");
	cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(hooks, "setup")));
	cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(hooks, "teardown")));
	cJSON_Delete(m);
	proc_release(&r);
}

/* ---- sharing, from /proc ---- */

struct pss_watch {
	int workers;          /* how many must be alive for a sample */
	long long sum_kib;    /* this sample's sum, being taken */
	int seen;             /* workers whose Pss this sample read */
	long long max_kib;    /* the largest sum of a whole sample */
	int samples;
};

static struct pss_watch *watching;

static long long pss_kib(pid_t pid)
{
	char path[64], line[256];
	long long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/smaps_rollup", (long)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Pss: %lld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static void add_pss(pid_t pid)
{
	long long kib = pss_kib(pid);

	if (kib >= 0) {
		watching->sum_kib += kib;
		watching->seen++;
	}
}

/* A sample counts only when every worker was alive and read. */
static void sample_pss(void *ctx, pid_t pid, const struct proc *so_far)
{
	struct pss_watch *w = ctx;

	(void)so_far;
	watching = w;
	w->sum_kib = 0;
	w->seen = 0;
	if (for_workers(pid, add_pss) != w->workers || w->seen != w->workers)
		return;
	w->samples++;
	if (w->sum_kib > w->max_kib)
		w->max_kib = w->sum_kib;
}

/* Runs `jobs` workers, one item of `seconds` each, and samples their Pss. */
static void run_sampled(const char *build, int jobs, const char *seconds, struct pss_watch *w)
{
	char config[128], j[16], *in = NULL, want[64];
	size_t len = 0;
	struct proc r;
	struct proc_spec s = { .watch = sample_pss, .watch_ctx = w };

	snprintf(config, sizeof(config), "{\"mib\": %d, \"build\": \"%s\"}", TABLE_MIB, build);
	snprintf(j, sizeof(j), "%d", jobs);
	append(&in, &len, "[", 1);
	for (int i = 0; i < jobs; i++) {
		if (i)
			append(&in, &len, ",", 1);
		append(&in, &len, seconds, strlen(seconds));
	}
	append(&in, &len, "]", 1);
	s.args = ARGS("-p", TABLE, "-j", j, "--chunksize", "1", "--config", config);
	s.in = in;
	s.in_len = len;
	memset(w, 0, sizeof(*w));
	w->workers = jobs;
	run_spec(&s, &r);
	expect_exit(&r, 0);
	snprintf(want, sizeof(want), "%lld", checksum(TABLE_MIB));
	cr_expect_eq(count_of(r.out, want), (size_t)jobs, "every worker read the table: %s", r.out);
	cr_assert_gt(w->samples, 0, "never saw %d workers alive at once", jobs);
	proc_release(&r);
	free(in);
}

Test(setup, eight_workers_share_one_table_built_in_setup)
{
	struct pss_watch w;
	const long long table_kib = (long long)TABLE_MIB << 10;

	run_sampled("setup", 8, "1.5", &w);
	cr_expect_lt(w.max_kib * 2, table_kib * 3,
	             "the 8 workers' Pss adds up to %lld MiB, over 1.5 times the %d MiB table "
	             "(%d samples)", w.max_kib >> 10, TABLE_MIB, w.samples);
}

/* The comparison that shows the measure can tell: a table built in each
 * worker's init is one private copy per worker. */
Test(setup, tables_built_in_init_are_one_copy_per_worker)
{
	struct pss_watch w;
	const long long table_kib = (long long)TABLE_MIB << 10;

	run_sampled("init", 2, "1.5", &w);
	cr_expect_gt(w.max_kib * 2, table_kib * 3,
	             "2 workers with a table each: Pss adds up to only %lld MiB", w.max_kib >> 10);
}
