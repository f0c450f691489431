/*
 * test_signals.c - issue 3 end to end, continued from test_faults.c (suite
 * `signals`): SIGINT, SIGTERM and
 * SIGKILL to pexec, and output that cannot be written (a full disk, a reader
 * that went away).
 *
 * Nothing measures time: every wait is a hang guard.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "helpers.h"

TestSuite(signals, .init = scratch_make, .fini = scratch_remove, .timeout = 600);

#define FAULTS FIX("faults")

/* ---- 6. signals ---- */

struct stop_signal {
	int sig;
	int times;        /* signals to send back to back */
	int wait_workers; /* with -o: send once pexec has this many workers */
	double at;        /* ... and this much later (not a measurement: a delay) */
	int sent;
};

/* Sends the signal(s) once pexec has written its first result (or, with
 * nothing on stdout, once its workers are up and a little later). */
static void send_stop(void *ctx, pid_t pexec, const struct proc *so_far)
{
	struct stop_signal *s = ctx;

	if (s->sent)
		return;
	if (s->wait_workers) {
		if (s->at == 0 && for_workers(pexec, NULL) >= s->wait_workers)
			s->at = now_s() + 0.5;
		if (s->at == 0 || now_s() < s->at)
			return;
	} else if (!strstr(so_far->out, "0.2")) {
		return;
	}
	for (int i = 0; i < s->times; i++)
		cr_assert_eq(kill(pexec, s->sig), 0);
	s->sent = 1;
}

/* An input that never ends, of items that take 0.2 s: only a signal can
 * stop the run. */
static void run_until_signal(struct proc *r, struct stop_signal *stop, const char *output)
{
	const char *args[] = { "-p", "sleep", "-j", "4", output ? "-o" : NULL, output, NULL };
	struct proc_spec spec = { .args = args, .in = "[", .in_len = 1, .endless = "0.2, ",
		                  .watch = send_stop, .watch_ctx = stop,
		                  /* a pexec ended at once by a second signal leaves its
		                   * workers to die by PR_SET_PDEATHSIG */
		                  .orphan_grace_s = stop->times > 1 ? HANG_GUARD_S : 0 };

	run_spec(&spec, r);
	cr_assert(stop->sent, "%s: never got to send the signal; stderr: %s", r->cmd, r->err);
}

Test(signals, sigint_and_sigterm_stop_with_130_and_143)
{
	static const struct {
		int sig;
		int status;
		const char *name;
	} sigs[] = { { SIGINT, 130, "SIGINT" }, { SIGTERM, 143, "SIGTERM" } };

	for (size_t i = 0; i < COUNT(sigs); i++) {
		struct stop_signal stop = { .sig = sigs[i].sig, .times = 1 };
		char want[64];
		struct proc r;

		run_until_signal(&r, &stop, NULL);
		expect_exit(&r, sigs[i].status);
		/* What was complete, in order, and never a complete array. */
		cr_expect(strncmp(r.out, "[\n0.2", 5) == 0, "%s: stdout: %.40s", r.cmd, r.out);
		cr_expect_not(parses(r.out), "%s: stdout parses as a whole result", r.cmd);
		snprintf(want, sizeof(want), "stopped by %s", sigs[i].name);
		cr_expect_not_null(strstr(r.err, want), "%s: stderr: %s", r.cmd, r.err);
		proc_release(&r);
	}
}

Test(signals, signal_leaves_no_output_file)
{
	static const int sigs[] = { SIGINT, SIGTERM };

	for (size_t i = 0; i < COUNT(sigs); i++) {
		const char *out = scratch_path(1, "out.json");
		struct stop_signal stop = { .sig = sigs[i], .times = 1, .wait_workers = 4 };
		struct proc r;
		char *list;

		run_until_signal(&r, &stop, out);
		expect_exit(&r, 128 + sigs[i]);
		cr_expect_str_eq(r.out, "", "%s: stdout with -o", r.cmd);
		cr_expect_neq(access(out, F_OK), 0, "%s: %s exists after a stopped run", r.cmd, out);
		list = scratch_listing();
		cr_expect_str_eq(list, "", "%s: left in the directory: %s", r.cmd, list);
		free(list);
		proc_release(&r);
	}
}

Test(signals, second_sigint_ends_at_once)
{
	struct stop_signal stop = { .sig = SIGINT, .times = 2 };
	char how[128];
	struct proc r;

	run_until_signal(&r, &stop, NULL);
	cr_assert_not(r.hung, "%s: hung after two SIGINTs", r.cmd);
	cr_expect((WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGINT) ||
	          (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 130),
	          "%s: %s", r.cmd, describe(r.status, how, sizeof(how)));
	cr_expect_not(parses(r.out), "%s: stdout parses as a whole result", r.cmd);
	cr_expect_eq(r.survivors, 0, "%s: %d workers outlived pexec", r.cmd, r.survivors);
	proc_release(&r);
}

struct busy_kill {
	int workers;
	int killed;
};

/* SIGKILL to pexec once each of its workers is spinning in its endless loop
 * (has used 5 ticks of CPU). */
static void kill_pexec_when_busy(void *ctx, pid_t pexec, const struct proc *so_far)
{
	struct busy_kill *b = ctx;

	(void)so_far;
	if (b->killed)
		return;
	seen_parent = pexec;
	seen_least_ticks = LONG_MAX;
	if (for_workers(pexec, note_child) >= b->workers && seen_least_ticks >= 5) {
		cr_assert_eq(kill(pexec, SIGKILL), 0);
		b->killed = 1;
	}
}

Test(signals, killed_pexec_takes_its_busy_workers_along)
{
	struct busy_kill b = { .workers = 3 };
	const char *args[] = { "-p", FAULTS, "-j", "3", "--chunksize", "1", NULL };
	struct proc_spec spec = { .args = args, .in = "[", .in_len = 1,
		                  .endless = "{\"fault\":\"loop\",\"stage\":\"map\"}, ",
		                  .watch = kill_pexec_when_busy, .watch_ctx = &b,
		                  .orphan_grace_s = HANG_GUARD_S };
	struct proc r;

	run_spec(&spec, &r);
	cr_assert(b.killed, "%s: its workers were never seen busy", r.cmd);
	cr_assert_not(r.hung, "%s: its output never closed", r.cmd);
	cr_expect(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL);
	/* Its orphans came to us, and died without our help. */
	cr_expect_geq(r.strays, 3, "%s: only %d orphans: the test proves little", r.cmd,
	              r.strays);
	cr_expect_eq(r.survivors, 0, "%s: %d workers outlived pexec", r.cmd, r.survivors);
	proc_release(&r);
}

/* ---- 7. output that cannot be written ---- */

/* `n` numbers, one per line, as a JSON array: enough output that pexec
 * writes while it runs, not only at the end. */
static const char *numbers_file(size_t n)
{
	const char *path = scratch_path(2, "numbers.json");
	char *data = NULL, num[32];
	size_t len = 0;

	append(&data, &len, "[", 1);
	for (size_t i = 0; i < n; i++) {
		int k = snprintf(num, sizeof(num), "%s%zu\n", i ? "," : "", i);
		append(&data, &len, num, (size_t)k);
	}
	append(&data, &len, "]", 1);
	write_file(path, data, len);
	free(data);
	return path;
}

Test(signals, full_disk_exits_3_with_a_message)
{
	const char *input = numbers_file(100000);
	static const char *const modes[][5] = {
		{ "-j", "2", NULL },
		{ "-j", "2", "--output-format", "ndjson", NULL },
		{ "--unordered", NULL },
		{ "--serial", NULL },
	};

	for (size_t m = 0; m < COUNT(modes); m++) {
		const char *args[MAX_ARGS + 1] = { "-p", "identity" };
		struct proc_spec spec = { .args = args, .stdout_path = "/dev/full" };
		size_t na = 2;
		struct proc r;

		for (size_t k = 0; modes[m][k]; k++)
			args[na++] = modes[m][k];
		args[na++] = input;
		run_spec(&spec, &r);
		expect_exit(&r, 3);
		cr_expect_not_null(strstr(r.err, "cannot write"), "%s: %s", r.cmd, r.err);
		cr_expect_not_null(strstr(r.err, strerror(ENOSPC)), "%s: %s", r.cmd, r.err);
		cr_expect_eq(line_count(r.err), 1, "%s: %s", r.cmd, r.err);
		proc_release(&r);
	}
	/* Even a tiny output fails, at the end. */
	{
		const char *args[] = { "-p", "identity", NULL };
		struct proc_spec spec = { .args = args, .in = "[1]", .in_len = 3,
			                  .stdout_path = "/dev/full" };
		struct proc r;

		run_spec(&spec, &r);
		expect_exit(&r, 3);
		cr_expect_not_null(strstr(r.err, strerror(ENOSPC)), "%s: %s", r.cmd, r.err);
		proc_release(&r);
	}
}

Test(signals, closed_reader_ends_the_run_quietly_by_sigpipe)
{
	static const char *const modes[][5] = {
		{ "-j", "2", NULL },
		{ "-j", "2", "--chunksize", "1", NULL },
		{ "--unordered", "--output-format", "ndjson", NULL },
		{ "--serial", NULL },
	};

	for (size_t m = 0; m < COUNT(modes); m++) {
		const char *args[MAX_ARGS + 1] = { "-p", "identity" };
		struct proc_spec spec = { .args = args, .in = "[", .in_len = 1,
			                  .endless = "12345, \"abc\", ", .out_max = 100 };
		char how[128];
		size_t na = 2;
		struct proc r;

		for (size_t k = 0; modes[m][k]; k++)
			args[na++] = modes[m][k];
		run_spec(&spec, &r);
		cr_assert_not(r.hung, "%s: did not stop when its reader went away", r.cmd);
		cr_expect(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGPIPE, "%s: %s", r.cmd,
		          describe(r.status, how, sizeof(how)));
		cr_expect_str_eq(r.err, "", "%s: not quiet", r.cmd);
		cr_expect_eq(r.strays, 0, "%s: %d processes left behind", r.cmd, r.strays);
		proc_release(&r);
	}
}
