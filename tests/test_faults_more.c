/*
 * test_faults_more.c - issue 3 end to end, beyond the fault matrix of
 * test_faults.c: faults in init, retries, a worker killed from outside,
 * results of every awkward size through the pipe, and many workers crashing
 * at once.  Same fixture and checks (fault_checks.c); suite `faults_more`.
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

TestSuite(faults_more, .init = scratch_make, .fini = scratch_remove, .timeout = 600);

/* ---- 2. faults in init ---- */

Test(faults_more, init_faults_exit_2_with_the_reason)
{
	static const struct {
		const char *fault;
		const char *reasons[4];
		const char *extra[3];
	} rows[] = {
		{ "error", { "init failed: faults: asked to fail in init" }, { NULL } },
		{ "exit", { "exited with status 7 during init" }, { NULL } },
		{ "segv", { SEGV_REASONS }, { NULL } },
		{ "abort", { "killed by SIGABRT during init" }, { NULL } },
		/* --timeout covers init too: never a hang. */
		{ "loop", { "timed out after 1 s during init" }, { "--timeout", "1", NULL } },
	};
	static const char *const jobs[] = { "1", "3" };
	static const char *const ins[] = { "[1, 2, 3]", "[]" };

	for (size_t i = 0; i < COUNT(rows); i++) {
		char config[96];

		snprintf(config, sizeof(config), "{\"fault\":\"%s\",\"stage\":\"init\"}",
		         rows[i].fault);
		for (size_t j = 0; j < COUNT(jobs); j++) {
			for (size_t k = 0; k < COUNT(ins); k++) {
				const char *args[MAX_ARGS + 1] = { "-p", FAULTS, "--config", config, "-j",
					                           jobs[j] };
				struct proc_spec spec = { .args = args, .in = ins[k],
					                  .in_len = strlen(ins[k]) };
				size_t na = 6;
				struct proc r;

				for (size_t e = 0; rows[i].extra[e]; e++)
					args[na++] = rows[i].extra[e];
				run_spec(&spec, &r);
				expect_exit(&r, 2);
				cr_expect_str_eq(r.out, "", "%s: stdout after a failed init", r.cmd);
				cr_expect_not_null(strstr(r.err, "init"), "%s: %s", r.cmd, r.err);
				cr_expect_not_null(strstr(r.err, "faults"), "%s: names the plugin: %s",
				                   r.cmd, r.err);
				cr_expect(contains_any(r.err, rows[i].reasons), "%s: %s", r.cmd, r.err);
				proc_release(&r);
			}
		}
	}
}

/* ---- 3. retries, and a worker killed from outside ---- */

Test(faults_more, retries_count_every_attempt)
{
	const char *errors = scratch_path(0, "errors.ndjson");
	static const char segv[] = "{\"fault\":\"segv\",\"stage\":\"map\"}";
	static const char loop[] = "{\"fault\":\"loop\",\"stage\":\"map\"}";
	const struct failure fsegv = {
		.index = 4, .stages = { "map" }, .reasons = { SEGV_REASONS }, .attempts = 3,
		.input = segv,
	};
	const struct failure floop = {
		.index = 4, .stages = { "map" }, .reasons = { "timed out after 0.3 s" },
		.attempts = 2, .input = loop,
	};
	char *in, *want;
	struct proc r;

	input_with(9, 4, segv, "null", &in, &want);
	run(&r, in, "-p", FAULTS, "-j", "2", "--retries", "2", "--errors", errors, NULL);
	expect_exit(&r, 1);
	expect_same_bytes(r.cmd, r.out, r.out_len, want, strlen(want));
	expect_failure_line(&r, &fsegv);
	expect_error_records(r.cmd, errors, &fsegv, 1);
	proc_release(&r);
	free(in);
	free(want);

	input_with(9, 4, loop, "null", &in, &want);
	run(&r, in, "-p", FAULTS, "-j", "2", "--timeout", "0.3", "--retries", "1", "--errors",
	    errors, NULL);
	expect_exit(&r, 1);
	expect_same_bytes(r.cmd, r.out, r.out_len, want, strlen(want));
	expect_failure_line(&r, &floop);
	expect_error_records(r.cmd, errors, &floop, 1);
	proc_release(&r);
	free(in);
	free(want);

	/* An error return is the plugin's answer, not a crash: never retried. */
	input_with(5, 2, "{\"fault\":\"error\",\"stage\":\"map\"}", "null", &in, &want);
	run(&r, in, "-p", FAULTS, "-j", "2", "--retries", "3", "--errors", errors, NULL);
	expect_exit(&r, 1);
	expect_same_bytes(r.cmd, r.out, r.out_len, want, strlen(want));
	{
		const struct failure ferr = {
			.index = 2, .stages = { "map" }, .reasons = { "asked to fail in map" },
			.attempts = 1, .input = "{\"fault\":\"error\",\"stage\":\"map\"}",
		};
		expect_error_records(r.cmd, errors, &ferr, 1);
	}
	proc_release(&r);
	free(in);
	free(want);
}

/* How many lines of `text` are exactly `line` (which ends in '\n'). */
static size_t lines_equal_to(const char *text, const char *line)
{
	size_t n = 0, len = strlen(line);

	for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
		if (!strncmp(p, line, len))
			n++;
		if (!strchr(p, '\n'))
			break;
	}
	return n;
}

struct outside_kill {
	pid_t worker;   /* from the first line of stdout */
	int killed;
};

/* Once the worker that answered {"pid":true} has spent 20 ticks of CPU (it
 * can only be in the endless loop of the next item), kill it as the OOM
 * killer would. */
static void kill_busy_worker(void *ctx, pid_t pexec, const struct proc *so_far)
{
	struct outside_kill *k = ctx;

	if (k->killed)
		return;
	if (!k->worker) {
		const char *nl = strchr(so_far->out, '\n');
		if (!nl)
			return;
		k->worker = (pid_t)atol(so_far->out);
		cr_assert_gt(k->worker, 0, "first line is not a pid: %s", so_far->out);
	}
	if (cpu_ticks_of_child(k->worker, pexec) >= 20) {
		cr_assert_eq(kill(k->worker, SIGKILL), 0);
		k->killed = 1;
	}
}

Test(faults_more, worker_killed_from_outside_costs_only_its_item)
{
	const char *errors = scratch_path(0, "errors.ndjson");
	static const char loop[] = "{\"fault\":\"loop\",\"stage\":\"map\"}";
	static const char in[] = "[{\"pid\":true}, {\"fault\":\"loop\",\"stage\":\"map\"}, 5]";
	const char *args[] = { "-p", FAULTS, "-j", "1", "--chunksize", "1", "--unordered",
		               "--output-format", "ndjson", "--errors", errors, NULL };
	struct outside_kill k = { 0 };
	struct proc_spec spec = { .args = args, .in = in, .in_len = strlen(in),
		                  .watch = kill_busy_worker, .watch_ctx = &k };
	struct failure f = {
		.index = 1, .stages = { "map" }, .reasons = { "killed by SIGKILL" }, .attempts = 1,
		.input = loop,
	};
	char pid_line[32], reason[64];
	struct proc r;

	run_spec(&spec, &r);
	cr_assert(k.killed, "%s: the worker was never seen busy; stdout: %s", r.cmd, r.out);
	expect_exit(&r, 1);
	snprintf(pid_line, sizeof(pid_line), "%ld\n", (long)k.worker);
	snprintf(reason, sizeof(reason), "worker %ld killed by SIGKILL", (long)k.worker);
	f.reasons[0] = reason;
	/* The result it delivered before it was killed is kept, once; the item
	 * after the loop came out of a replacement (there is one worker). */
	cr_expect_eq(line_count(r.out), 3, "%s: %s", r.cmd, r.out);
	cr_expect(strncmp(r.out, pid_line, strlen(pid_line)) == 0, "%s: %s", r.cmd, r.out);
	cr_expect_eq(lines_equal_to(r.out, pid_line), 1, "%s: %s", r.cmd, r.out);
	cr_expect_eq(lines_equal_to(r.out, "null\n"), 1, "%s: %s", r.cmd, r.out);
	cr_expect_eq(lines_equal_to(r.out, "10\n"), 1, "%s: %s", r.cmd, r.out);
	expect_failure_line(&r, &f);
	expect_error_records(r.cmd, errors, &f, 1);
	proc_release(&r);
}

/* ---- 4. results of every awkward size through the pipe ---- */

/* Runs [1, {"size": N}, 3] and checks the output file without copying it:
 * [2, "xxx...x" (N bytes of JSON text), 6]. */
static void check_result_size(size_t size)
{
	static const char head[] = "[\n2,\n", tail[] = ",\n6\n]\n";
	const char *out = scratch_path(1, "out.json");
	char in[64];
	const char *args[] = { "-p", FAULTS, "-j", "2", NULL };
	struct proc_spec spec = { .args = args, .in = in, .stdout_path = out };
	const size_t want = sizeof(head) - 1 + size + sizeof(tail) - 1;
	struct stat st;
	struct proc r;
	const char *map, *body;
	int fd;

	snprintf(in, sizeof(in), "[1, {\"size\": %zu}, 3]", size);
	spec.in_len = strlen(in);
	run_spec(&spec, &r);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.err, "", "%s: stderr", r.cmd);
	fd = open(out, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_expect_eq((size_t)st.st_size, want, "size %zu: output of %zu bytes, want %zu", size,
	             (size_t)st.st_size, want);
	if ((size_t)st.st_size == want) {
		size_t bad = SIZE_MAX;

		map = mmap(NULL, want, PROT_READ, MAP_PRIVATE, fd, 0);
		cr_assert_neq(map, MAP_FAILED);
		body = map + sizeof(head) - 1;
		cr_expect(memcmp(map, head, sizeof(head) - 1) == 0, "size %zu: head", size);
		cr_expect(memcmp(body + size, tail, sizeof(tail) - 1) == 0, "size %zu: tail", size);
		cr_expect(body[0] == '"' && body[size - 1] == '"', "size %zu: not a string", size);
		for (size_t i = 1; i + 1 < size; i++)
			if (body[i] != 'x') {
				bad = i;
				break;
			}
		cr_expect_eq(bad, SIZE_MAX, "size %zu: byte %zu of the result is 0x%02x", size, bad,
		             bad == SIZE_MAX ? 0 : (unsigned char)body[bad]);
		munmap((void *)map, want);
	}
	close(fd);
	proc_release(&r);
}

Test(faults_more, results_of_every_size_cross_the_pipe)
{
	static const size_t sizes[] = { 2, 65535, 65536, 65537, (4u << 20) + 1, 100u << 20 };

	for (size_t i = 0; i < COUNT(sizes); i++)
		check_result_size(sizes[i]);
}

Test(faults_more, empty_result_fails_at_serialize)
{
	const char *errors = scratch_path(0, "errors.ndjson");
	const struct failure f = {
		.index = 1, .stages = { "serialize" }, .reasons = { "wrote nothing" },
		.attempts = 1, .input = "{\"size\": 0}",
	};
	struct proc r;

	run(&r, "[1, {\"size\": 0}, 3]", "-p", FAULTS, "-j", "2", "--errors", errors, NULL);
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out, "[\n2,\nnull,\n6\n]\n", "%s", r.cmd);
	expect_failure_line(&r, &f);
	expect_error_records(r.cmd, errors, &f, 1);
	proc_release(&r);
}

/* ---- 5. crash races ---- */

/* `n` workers, `n` segv items among 200 innocent ones: together (with one
 * item per chunk, so that every worker takes one and they all die at once)
 * or spread out (adaptive chunks); ten times each. */
Test(faults_more, many_workers_crashing_at_once_cost_only_their_items)
{
	static const unsigned ns[] = { 1, 2, 5, 13 };
	static const char segv[] = "{\"fault\":\"segv\",\"stage\":\"map\"}";

	for (size_t i = 0; i < COUNT(ns); i++) {
		const unsigned n = ns[i];
		const size_t total = 200 + n;
		char jobs[16];

		snprintf(jobs, sizeof(jobs), "%u", n);
		for (int spread = 0; spread < 2; spread++) {
			unsigned char *odd = calloc(total, 1);
			char *in, *want;

			cr_assert_not_null(odd);
			for (unsigned k = 0; k < n; k++)
				odd[spread ? 7 + k * (total - 8) / n : 100 + k] = 1;
			build_input(total, odd, segv, "null", &in, &want);
			for (int rep = 0; rep < 10; rep++) {
				struct proc r;

				if (spread)
					run(&r, in, "-p", FAULTS, "-j", jobs, NULL);
				else
					run(&r, in, "-p", FAULTS, "-j", jobs, "--chunksize", "1", NULL);
				expect_exit(&r, 1);
				expect_same_bytes(r.cmd, r.out, r.out_len, want, strlen(want));
				cr_expect_eq(count_of(r.err, " failed in map: "), n,
				             "%s: want exactly %u failures: %s", r.cmd, n, r.err);
				for (size_t k = 0; k < total; k++) {
					char *line = odd[k] ? failure_line(r.err, k) : NULL;
					cr_expect(!odd[k] || line, "%s: item %zu not reported", r.cmd, k);
					free(line);
				}
				proc_release(&r);
			}
			free(in);
			free(want);
			free(odd);
		}
	}
}

