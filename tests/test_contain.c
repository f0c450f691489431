/*
 * test_contain.c - no process a plugin starts can stall a run or outlive it
 * (core/lib/pool/contain.c, and the process groups of core/lib/pool/worker.c).
 *
 * Every test runs the built pexec over the spawner fixture plugin
 * (tests/plugins/spawner.c), whose helpers sleep for 100 s: longer than the
 * hang guard, so a run that waited for one would be killed as hung.  The test
 * process is a child subreaper (helpers.c): a process pexec left behind comes
 * to it, and is counted.  Nothing measures time; waits are hang guards.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define SPAWNER FIX("spawner")

TestSuite(contain, .init = scratch_make, .fini = scratch_remove, .timeout = 300);

/* The whole output of a run whose first item failed and the rest passed. */
#define FIRST_NULL "[\nnull,\n1,\n2,\n3\n]\n"

static void expect_first_failed(const struct proc *r, const char *reason)
{
	char *line = failure_line(r->err, 0);

	expect_exit(r, 1);
	cr_expect_str_eq(r->out, FIRST_NULL, "%s", r->cmd);
	cr_assert_not_null(line, "%s: no failure line for item 0; stderr: %s", r->cmd, r->err);
	cr_expect_not_null(strstr(line, reason), "%s: %s, want '%s'", r->cmd, line, reason);
	free(line);
}

/* A worker that crashes while a process it forked holds its pipes is known
 * dead at once, from its exit: the run does not wait for the helper. */
Test(contain, a_crash_is_seen_whatever_a_helper_holds)
{
	static const char *const spawns[] = { "child", "exec", "system" };

	for (size_t i = 0; i < COUNT(spawns); i++) {
		char in[128];
		struct proc r;

		snprintf(in, sizeof(in), "[{\"spawn\":\"%s\",\"then\":\"crash\"},1,2,3]", spawns[i]);
		run(&r, in, "-p", SPAWNER, "-j", "2", "--chunksize", "1", NULL);
		expect_first_failed(&r, "failed in map: worker ");
		proc_release(&r);
	}
}

/* --timeout kills a worker stuck in an item on time, however long the
 * process it started would keep its pipes open. */
Test(contain, a_timeout_is_not_held_up_by_a_helper)
{
	struct proc r;

	run(&r, "[{\"spawn\":\"child\",\"then\":\"hang\"},1,2,3]", "-p", SPAWNER, "-j", "2",
	    "--chunksize", "1", "--timeout", "1", NULL);
	expect_first_failed(&r, "timed out after 1 s");
	proc_release(&r);
}

/* Whatever a plugin starts, in the worker's group or out of it, is gone
 * when a run that succeeded has ended. */
Test(contain, no_helper_outlives_a_run)
{
	static const char *const spawns[] = { "child", "exec", "system", "setsid", "daemon" };

	for (size_t i = 0; i < COUNT(spawns); i++) {
		char item[64], in[128], want[128];
		struct proc r;

		snprintf(item, sizeof(item), "{\"spawn\":\"%s\",\"then\":\"ok\"}", spawns[i]);
		snprintf(in, sizeof(in), "[%s,1]", item);
		snprintf(want, sizeof(want), "[\n%s,\n1\n]\n", item);
		run(&r, in, "-p", SPAWNER, "-j", "2", "--chunksize", "1", NULL);
		expect_exit(&r, 0);
		cr_expect_str_eq(r.out, want, "%s", r.cmd);
		proc_release(&r);
	}
}

/* A worker that execs another program is no worker any more: its pipes
 * close with the exec (they are close-on-exec), it is killed, and the item
 * it was on fails alone. */
Test(contain, a_worker_that_execs_fails_its_item)
{
	struct proc r;
	char *line;

	run(&r, "[1,{\"spawn\":\"self\"},2,3]", "-p", SPAWNER, "-j", "2", "--chunksize", "1",
	    NULL);
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out, "[\n1,\nnull,\n2,\n3\n]\n", "%s", r.cmd);
	line = failure_line(r.err, 1);
	cr_assert_not_null(line, "%s: no failure line for item 1; stderr: %s", r.cmd, r.err);
	cr_expect_not_null(strstr(line, "failed in worker: worker "), "%s", line);
	cr_expect_not_null(strstr(line, "closed its connection to pexec"), "%s", line);
	free(line);
	proc_release(&r);
}

/* Signals pexec once the plugin's helper is running (its marker exists). */
struct at_marker {
	const char *path;
	int sig;
	int sent;
};

static void signal_at_marker(void *ctx, pid_t pexec, const struct proc *so_far)
{
	struct at_marker *m = ctx;
	struct stat st;

	(void)so_far;
	if (m->sent || stat(m->path, &st) != 0)
		return;
	cr_assert_eq(kill(pexec, m->sig), 0);
	m->sent = 1;
}

/* Runs items that start helpers and hang, and signals pexec once the first
 * helper runs. */
static void run_and_signal(struct proc *r, const char *spawn, int sig, double grace_s)
{
	static char config[600], in[256];
	struct at_marker m = { .path = scratch_path(0, "marker"), .sig = sig };
	const char *args[] = { "-p", SPAWNER, "-j", "2", "--chunksize", "1", "--config", config,
		               NULL };
	struct proc_spec s = { .args = args, .in = in, .watch = signal_at_marker, .watch_ctx = &m,
		               .orphan_grace_s = grace_s };

	snprintf(config, sizeof(config), "{\"marker\":\"%s\"}", m.path);
	snprintf(in, sizeof(in), "[{\"spawn\":\"%s\",\"then\":\"hang\"},"
	         "{\"spawn\":\"%s\",\"then\":\"hang\"}]", spawn, spawn);
	s.in_len = strlen(in);
	run_spec(&s, r);
	cr_assert(m.sent, "%s: the helper never ran; stderr: %s", r->cmd, r->err);
}

/* SIGTERM ends the run at once, and everything its plugin started with it,
 * even what left its worker's process group. */
Test(contain, sigterm_takes_every_helper_along)
{
	static const char *const spawns[] = { "child", "setsid", "daemon" };

	for (size_t i = 0; i < COUNT(spawns); i++) {
		struct proc r;

		unlink(scratch_path(0, "marker"));
		run_and_signal(&r, spawns[i], SIGTERM, 0);
		expect_exit(&r, 143);
		proc_release(&r);
	}
}

/* pexec killed with SIGKILL cannot clean up; its warden does: the helpers
 * in the workers' process groups are gone within the grace period. */
Test(contain, sigkill_of_pexec_takes_the_workers_groups_along)
{
	static const char *const spawns[] = { "child", "system" };

	for (size_t i = 0; i < COUNT(spawns); i++) {
		struct proc r;

		unlink(scratch_path(0, "marker"));
		run_and_signal(&r, spawns[i], SIGKILL, 3);
		/* A helper left alive would hold pexec's stderr open: a hang. */
		cr_expect_not(r.hung, "%s: its output never closed", r.cmd);
		cr_expect(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL, "%s", r.cmd);
		cr_expect_gt(r.strays, 0, "%s: nothing was orphaned: the test proves nothing",
		             r.cmd);
		cr_expect_eq(r.survivors, 0, "%s: %d processes outlived pexec by 3 s", r.cmd,
		             r.survivors);
		proc_release(&r);
	}
}
