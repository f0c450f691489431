/*
 * test_faults.c - issue 3 end to end: a fault costs only the item at fault.
 *
 * Every test runs the built pexec as a user does (helpers.c), mostly over
 * the faults fixture plugin (tests/plugins/faults.c), which misbehaves on
 * request: {"fault": F, "stage": S} makes hook S error out, _exit(7),
 * segfault, abort, loop, eat memory, SIGKILL itself, print garbage to stdout
 * or close its descriptors; every other number n maps to 2n.  Rows of the
 * fault matrix assert the whole stdout, the failure line on stderr (index,
 * stage, reason), the --errors record, and that no process is left behind:
 * the test process is a child subreaper (helpers.c), so a worker pexec did
 * not reap would come to it.
 *
 * Faults in init, retries, a worker killed from outside, results of every
 * awkward size through the pipe, and many workers crashing at once are in
 * test_faults_more.c; the inputs and checks both use, in fault_checks.c.
 * SIGINT/SIGTERM/SIGKILL to pexec, and output that cannot be written, are in
 * test_signals.c (suite `signals`).  Bad
 * input (malformed input with its position, and a conformance table of small
 * documents) is in test_input.c.
 *
 * Nothing measures time: every wait is a hang guard, generous enough for a
 * loaded 2-core machine.
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

#include "fault_checks.h"
#include "helpers.h"

TestSuite(faults, .init = scratch_make, .fini = scratch_remove, .timeout = 600);

/* ---- 1. the fault matrix ---- */

struct fault_row {
	const char *fault;
	int fails;                /* 0: the run succeeds anyway (garbage) */
	const char *reasons[4];   /* NULL: the plugin's own message */
	const char *extra[3];     /* options the row needs */
	int stage_may_be_worker;  /* see the close row */
};

struct variant {
	const char *args[5];
	size_t n;                 /* items */
	size_t at;                /* where the faulty one is */
};

/* ~30 innocent items around the faulty one, then the same with one item per
 * chunk; with a single worker, where the items after the fault can only come
 * out of a replacement; and with adaptive chunks over 2000 quick items, where
 * the faulty one shares its chunk with hundreds of innocent ones. */
static const struct variant variants[] = {
	{ { "-j", "2", NULL }, 31, 15 },
	{ { "-j", "2", "--chunksize", "1", NULL }, 31, 15 },
	{ { "-j", "1", "--chunksize", "1", NULL }, 31, 15 },
	{ { "-j", "2", NULL }, 2001, 1000 },
};

static const char *const stages[] = { "deserialize", "map", "serialize" };

static void check_row(const struct fault_row *row)
{
	const char *errors = scratch_path(0, "errors.ndjson");

	for (size_t s = 0; s < COUNT(stages); s++) {
		char item[128], message[128];

		snprintf(item, sizeof(item), "{\"fault\":\"%s\",\"stage\":\"%s\"}", row->fault,
		         stages[s]);
		snprintf(message, sizeof(message), "faults: asked to fail in %s", stages[s]);
		for (size_t v = 0; v < COUNT(variants); v++) {
			const struct variant *var = &variants[v];
			const char *args[MAX_ARGS + 1] = { "-p", FAULTS };
			size_t na = 2;
			struct failure f = {
				.index = var->at,
				.stages = { stages[s], row->stage_may_be_worker ? "worker" : NULL },
				.attempts = 1,
				.input = item,
			};
			struct proc_spec spec = { .args = args };
			char *in, *want;
			struct proc r;

			for (size_t k = 0; var->args[k]; k++)
				args[na++] = var->args[k];
			for (size_t k = 0; row->extra[k]; k++)
				args[na++] = row->extra[k];
			args[na++] = "--errors";
			args[na++] = errors;
			memcpy(f.reasons, row->reasons, sizeof(f.reasons));
			if (!row->reasons[0])
				f.reasons[0] = message;
			/* garbage: the item is echoed, as any object is. */
			input_with(var->n, var->at, item, row->fails ? "null" : item, &in, &want);
			spec.in = in;
			spec.in_len = strlen(in);
			run_spec(&spec, &r);
			expect_exit(&r, row->fails ? 1 : 0);
			expect_same_bytes(r.cmd, r.out, r.out_len, want, strlen(want));
			if (row->fails) {
				expect_failure_line(&r, &f);
				cr_expect_eq(count_of(r.err, " failed in "), 1,
				             "%s: one failure, reported once: %s", r.cmd, r.err);
				expect_error_records(r.cmd, errors, &f, 1);
			} else {
				cr_expect(parses(r.out), "%s: stdout is not JSON", r.cmd);
				cr_expect_not_null(strstr(r.err, "]]} not json {{["),
				                   "%s: the plugin's garbage did not go to stderr: %s",
				                   r.cmd, r.err);
				cr_expect_eq(count_of(r.err, " failed in "), 0, "%s: %s", r.cmd, r.err);
				expect_error_records(r.cmd, errors, NULL, 0);
			}
			proc_release(&r);
			free(in);
			free(want);
		}
	}
}

Test(faults, error_return_fails_only_its_item)
{
	static const struct fault_row row = { "error", 1, { NULL }, { NULL }, 0 };
	check_row(&row);
}

Test(faults, exit_fails_only_its_item_and_is_replaced)
{
	static const struct fault_row row = { "exit", 1, { "exited with status 7" }, { NULL }, 0 };
	check_row(&row);
}

Test(faults, segv_fails_only_its_item_and_is_replaced)
{
	static const struct fault_row row = { "segv", 1, { SEGV_REASONS }, { NULL }, 0 };
	check_row(&row);
}

Test(faults, abort_fails_only_its_item_and_is_replaced)
{
	static const struct fault_row row = { "abort", 1, { "killed by SIGABRT" }, { NULL }, 0 };
	check_row(&row);
}

Test(faults, endless_loop_times_out_and_is_replaced)
{
	static const struct fault_row row = { "loop", 1, { "timed out after 1 s" },
		                               { "--timeout", "1", NULL }, 0 };
	check_row(&row);
}

/* AddressSanitizer reserves terabytes of address space for its shadow
 * memory, so under the RLIMIT_AS that --memory-limit sets, a sanitized
 * worker cannot even start ("ERROR: Failed to mmap"): the row means nothing
 * in that build. */
Test(faults, runaway_memory_fails_only_its_item_and_is_replaced, .disabled = SANITIZED)
{
	/* malloc fails at the limit and the plugin writes through its null. */
	static const struct fault_row row = { "memory", 1, { "SIGSEGV (under --memory-limit)" },
		                               { "--memory-limit", "256M", NULL }, 0 };
	check_row(&row);
}

Test(faults, sigkill_fails_only_its_item_and_is_replaced)
{
	static const struct fault_row row = { "sigkill", 1, { "killed by SIGKILL" }, { NULL }, 0 };
	check_row(&row);
}

Test(faults, garbage_on_stdout_goes_to_stderr)
{
	static const struct fault_row row = { "garbage", 0, { NULL }, { NULL }, 0 };
	check_row(&row);
}

/* A worker that closes its descriptors carries on with its chunk and dies
 * only when it cannot send the results.  By then it is between items, so its
 * chunk's items go out again one at a time; a worker checks its pipes
 * between the stages of an item sent alone, so the culprit is then caught in
 * the stage it closed them in, which is the one blamed.  (On a loaded
 * machine this row could also catch the bug pinned deterministically by
 * closed_descriptors_never_blame_an_innocent_item below.) */
Test(faults, closed_descriptors_fail_only_their_item)
{
	static const struct fault_row row = {
		"close", 1, { "closed pexec's descriptors in " }, { NULL }, 0,
	};
	check_row(&row);
}

/* Stages, one step at a time from outside, what a loaded machine does by
 * chance: the worker closes its descriptors on the first item of its chunk
 * and goes on, while pexec, stopped meanwhile, only looks once the worker is
 * well into the rest of the chunk.  The rest are garbage items, which write
 * to the worker's stdout, that is pexec's stderr: while the test does not
 * read it, the worker blocks there, mid-item, once the pipe is full.  The
 * steps:
 *   0. open the input FIFO for writing once pexec has it open;
 *   1. stop the worker once it waits for work;
 *   2. write the whole input: pexec sends the worker one chunk;
 *   3. once the chunk is all in the worker's pipe (the bytes there stop
 *      growing, pexec sleeps), stop reading stderr, stop pexec and let the
 *      worker go;
 *   4. once the worker has closed its descriptor 4 and sleeps (blocked on the
 *      full stderr pipe), let pexec go and read stderr again.
 * Only the first item may then be blamed. */
struct close_race {
	const char *fifo;
	const char *input;
	size_t input_len, written;
	int queued, still;    /* bytes in the worker's pipe, for `still` looks */
	int wfd;
	int state;
	int hold_stderr;
	pid_t worker;
	int staged;           /* step 4 found the worker blocked mid-chunk */
};

static char proc_state(pid_t pid)
{
	char path[64], buf[512], *paren, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f) && (paren = strrchr(buf, ')')))
		st = paren[2];
	fclose(f);
	return st;
}

/* Whether descriptor `fd` of `a` and of `b` are one file ("pipe:[1234]"),
 * or `b` has none. */
static int same_fd(pid_t a, pid_t b, int fd)
{
	char path[64], la[128] = "", lb[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%ld/fd/%d", (long)b, fd);
	n = readlink(path, lb, sizeof(lb) - 1);
	if (n < 0)
		return 1;
	lb[n] = '\0';
	snprintf(path, sizeof(path), "/proc/%ld/fd/%d", (long)a, fd);
	n = readlink(path, la, sizeof(la) - 1);
	la[n < 0 ? 0 : n] = '\0';
	return !strcmp(la, lb);
}

static void stage_close_race(void *ctx, pid_t pexec, const struct proc *so_far)
{
	struct close_race *c = ctx;
	char path[64];

	(void)so_far;
	switch (c->state) {
	case 0:
		c->wfd = open(c->fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (c->wfd >= 0)
			c->state = 1;
		break;
	case 1:
		/* Once it waits for work on a descriptor 3 of its own (until
		 * the worker has set itself up, its 3 is one it got from pexec). */
		seen_parent = pexec;
		if (for_workers(pexec, note_child) != 1 || proc_state(seen_child) != 'S' ||
		    same_fd(pexec, seen_child, 3))
			break;
		c->worker = seen_child;
		cr_assert_eq(kill(c->worker, SIGSTOP), 0);
		c->state = 2;
		/* fall through */
	case 2:
		while (c->written < c->input_len) {
			ssize_t n = write(c->wfd, c->input + c->written, c->input_len - c->written);
			if (n <= 0)
				return; /* the FIFO is full: next time */
			c->written += (size_t)n;
		}
		close(c->wfd);
		c->wfd = -1;
		c->state = 3;
		/* fall through */
	case 3: {
		int fd, queued = 0;

		snprintf(path, sizeof(path), "/proc/%ld/fd/3", (long)c->worker);
		fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		cr_assert_geq(fd, 0, "cannot open the worker's pipe: %s", strerror(errno));
		cr_assert_eq(ioctl(fd, FIONREAD, &queued), 0);
		close(fd);
		/* All sent: something is queued, no more comes, pexec waits. */
		if (queued == 0 || queued != c->queued || proc_state(pexec) != 'S') {
			c->queued = queued;
			c->still = 0;
			break;
		}
		if (++c->still < 5)
			break;
		c->hold_stderr = 1;
		cr_assert_eq(kill(pexec, SIGSTOP), 0);
		cr_assert_eq(kill(c->worker, SIGCONT), 0);
		c->state = 4;
		c->still = 0;
		break;
	}
	case 4: {
		char st = proc_state(c->worker);

		snprintf(path, sizeof(path), "/proc/%ld/fd/4", (long)c->worker);
		if (st == 'S' && access(path, F_OK) != 0) {
			/* Asleep for a few looks: blocked on the full pipe. */
			if (++c->still < 5)
				break;
			c->staged = 1;
		} else if (st != 0 && st != 'Z') {
			c->still = 0;
			break;
		}
		/* Staged, or the worker is gone: let everything go on. */
		cr_assert_eq(kill(pexec, SIGCONT), 0);
		c->hold_stderr = 0;
		c->state = 5;
		break;
	}
	default:
		break;
	}
}

/* pexec once read a dead worker's progress (which item, at which stage) as
 * soon as its pipe reached EOF, and blamed that item.  A worker whose
 * connection closes has not necessarily died there: one that closed its
 * descriptors goes on through the rest of its chunk, so the item it was on
 * when pexec looked was innocent; it failed, and the real culprit went out
 * again with the rest, to kill the next worker the same way.  A loaded
 * machine did this by chance (the matrix's close row caught it); staged
 * here, it happens every time.  Progress is to be trusted only once the
 * worker has died by itself; one that closed its connection and had to be
 * killed has its items isolated one at a time. */
Test(faults, closed_descriptors_never_blame_an_innocent_item)
{
	const char *errors = scratch_path(0, "errors.ndjson");
	const char *fifo = scratch_path(2, "in.fifo");
	static const char item[] = "{\"fault\":\"close\",\"stage\":\"map\"}";
	static const char garbage[] = "{\"fault\":\"garbage\",\"stage\":\"map\"}";
	/* One chunk (under 128 KiB), and 17 bytes of garbage an item: far more
	 * than the page the held stderr pipe holds. */
	const size_t n = 2000;
	const struct failure f = {
		.index = 0,
		.stages = { "map" },
		.reasons = { "closed pexec's descriptors in map" },
		.attempts = 1,
		.input = item,
	};
	const char *args[] = { "-p", FAULTS, "-j", "1", "--chunksize", "20000", "--errors", errors,
		               fifo, NULL };
	struct close_race c = { .fifo = fifo, .wfd = -1 };
	struct proc_spec spec = { .args = args, .watch = stage_close_race, .watch_ctx = &c,
		                  .hold_stderr = &c.hold_stderr };
	char *in = NULL, *want = NULL;
	size_t in_len = 0, want_len = 0;
	struct proc r;

	cr_assert_eq(mkfifo(fifo, 0600), 0);
	append(&in, &in_len, "[", 1);
	append(&in, &in_len, item, strlen(item));
	append(&want, &want_len, "[\nnull", 6);
	for (size_t i = 1; i < n; i++) {
		append(&in, &in_len, ",", 1);
		append(&in, &in_len, garbage, strlen(garbage));
		append(&want, &want_len, ",\n", 2);
		append(&want, &want_len, garbage, strlen(garbage));
	}
	append(&in, &in_len, "]", 1);
	append(&want, &want_len, "\n]\n", 3);
	c.input = in;
	c.input_len = in_len;

	run_spec(&spec, &r);
	if (c.wfd >= 0)
		close(c.wfd);
	cr_assert_eq(c.state, 5, "%s: staging stopped at step %d", r.cmd, c.state);
	cr_expect(c.staged, "%s: the worker never blocked mid-chunk: nothing was staged", r.cmd);
	expect_exit(&r, 1);
	expect_same_bytes(r.cmd, r.out, r.out_len, want, want_len);
	cr_expect_eq(count_of(r.err, " failed in "), 1, "%s: innocent items blamed", r.cmd);
	expect_failure_line(&r, &f);
	expect_error_records(r.cmd, errors, &f, 1);
	proc_release(&r);
	free(in);
	free(want);
}
