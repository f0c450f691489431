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
 * Then: faults in init, retries, a worker killed from outside, results of
 * every awkward size through the pipe, and many workers crashing at once.
 * SIGINT/SIGTERM/SIGKILL to pexec, and output that cannot be written, are in
 * test_signals.c (suite `faults` too).  Bad
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

#include "helpers.h"

/* How a worker that wrote through a null pointer is reported.  In the
 * sanitizer build UBSan (built into the fixture too) catches the store
 * before the kernel does and ends the worker with exit status 1, or with
 * abort() when ASAN_OPTIONS says abort_on_error=1, as CI's does. */
#if SANITIZED
#define SEGV_REASONS "killed by SIGSEGV", "exited with status 1", "killed by SIGABRT"
#else
#define SEGV_REASONS "killed by SIGSEGV"
#endif

#define FAULTS FIX("faults")

TestSuite(faults, .init = scratch_make, .fini = scratch_remove, .timeout = 600);

/* ---- inputs and what they must give ---- */

/* A JSON array of `n` items for the faults plugin: item i is the number i,
 * except where odd[i] is set, where it is the JSON text `odd_item`.  *want is the
 * stdout expected: 2i for each number, `slot` for each odd item. */
static void build_input(size_t n, const unsigned char *odd, const char *odd_item,
                        const char *slot, char **in, char **want)
{
	size_t in_len = 0, want_len = 0;
	char num[32];

	*in = *want = NULL;
	append(in, &in_len, "[", 1);
	append(want, &want_len, "[\n", 2);
	for (size_t i = 0; i < n; i++) {
		const char *sep = i + 1 < n ? ",\n" : "\n";
		int k;

		if (i)
			append(in, &in_len, ", ", 2);
		if (odd[i]) {
			append(in, &in_len, odd_item, strlen(odd_item));
			append(want, &want_len, slot, strlen(slot));
		} else {
			k = snprintf(num, sizeof(num), "%zu", i);
			append(in, &in_len, num, (size_t)k);
			k = snprintf(num, sizeof(num), "%zu", 2 * i);
			append(want, &want_len, num, (size_t)k);
		}
		append(want, &want_len, sep, strlen(sep));
	}
	append(in, &in_len, "]", 1);
	append(want, &want_len, "]\n", 2);
}

/* The same with one odd item, at `at`. */
static void input_with(size_t n, size_t at, const char *odd_item, const char *slot, char **in,
                       char **want)
{
	unsigned char *odd = calloc(n, 1);

	cr_assert_not_null(odd);
	odd[at] = 1;
	build_input(n, odd, odd_item, slot, in, want);
	free(odd);
}

static int contains_any(const char *text, const char *const *alts)
{
	for (size_t i = 0; alts[i]; i++)
		if (strstr(text, alts[i]))
			return 1;
	return 0;
}

static int equals_any(const char *text, const char *const *alts)
{
	for (size_t i = 0; alts[i]; i++)
		if (!strcmp(text, alts[i]))
			return 1;
	return 0;
}

/* What a failed item must be reported as. */
struct failure {
	size_t index;
	const char *stages[3];  /* any of these stages (NULL-terminated) */
	const char *reasons[4]; /* its reason contains one of these */
	unsigned attempts;
	const char *input;      /* the item's bytes, as the excerpt must quote them */
};

/* stderr names the item, its stage and its reason, on one line. */
static void expect_failure_line(const struct proc *r, const struct failure *f)
{
	char *line = failure_line(r->err, f->index);
	const char *stage;
	int stage_ok = 0;

	cr_expect_not_null(line, "%s: stderr does not report item %zu: %s", r->cmd, f->index,
	                   r->err);
	if (!line)
		return;
	stage = line + strlen("pexec: item  failed in ") + (size_t)snprintf(NULL, 0, "%zu", f->index);
	for (size_t i = 0; f->stages[i]; i++) {
		size_t n = strlen(f->stages[i]);
		if (!strncmp(stage, f->stages[i], n) && !strncmp(stage + n, ": ", 2))
			stage_ok = 1;
	}
	cr_expect(stage_ok, "%s: wrong stage (want %s%s%s): %s", r->cmd, f->stages[0],
	          f->stages[1] ? " or " : "", f->stages[1] ? f->stages[1] : "", line);
	cr_expect(contains_any(line, f->reasons), "%s: reason is not \"%s\"...: %s", r->cmd,
	          f->reasons[0], line);
	free(line);
}

/* The --errors file holds exactly one NDJSON record per failure in `fs`, in
 * any order, each with index, stage, reason, attempts and the input. */
static void expect_error_records(const char *cmd, const char *path, const struct failure *fs,
                                 size_t n)
{
	size_t len, lines;
	char *data = read_file(path, &len), *save = NULL;
	unsigned char *seen = calloc(n + 1, 1);
	size_t strangers = 0;   /* records of items not in `fs` */

	cr_assert_not_null(data, "%s: --errors file %s was not written", cmd, path);
	lines = line_count(data);
	cr_expect_eq(lines, n, "%s: %zu records in --errors, want %zu: %.400s", cmd, lines, n,
	             data);
	cr_expect(len == 0 || data[len - 1] == '\n', "%s: --errors does not end a line", cmd);
	for (char *l = strtok_r(data, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		cJSON *rec = cJSON_Parse(l);
		const cJSON *idx = cJSON_GetObjectItemCaseSensitive(rec, "index");
		const cJSON *stage = cJSON_GetObjectItemCaseSensitive(rec, "stage");
		const cJSON *reason = cJSON_GetObjectItemCaseSensitive(rec, "reason");
		const cJSON *att = cJSON_GetObjectItemCaseSensitive(rec, "attempts");
		const cJSON *input = cJSON_GetObjectItemCaseSensitive(rec, "input");
		const struct failure *f = NULL;
		size_t k;

		cr_expect(cJSON_IsObject(rec), "%s: --errors record is not a JSON object: %s", cmd, l);
		cr_expect(cJSON_IsNumber(idx) && cJSON_IsString(stage) && cJSON_IsString(reason) &&
		          cJSON_IsNumber(att) && cJSON_IsString(input),
		          "%s: --errors record lacks a field: %s", cmd, l);
		if (!cJSON_IsNumber(idx) || !cJSON_IsString(stage) || !cJSON_IsString(reason) ||
		    !cJSON_IsNumber(att) || !cJSON_IsString(input)) {
			cJSON_Delete(rec);
			continue;
		}
		for (k = 0; k < n; k++)
			if ((double)fs[k].index == idx->valuedouble) {
				f = &fs[k];
				break;
			}
		if (!f && ++strangers <= 3)
			cr_expect_fail("%s: --errors names an item that did not fail: %s", cmd, l);
		if (f) {
			cr_expect_not(seen[k], "%s: item %zu recorded twice in --errors", cmd, f->index);
			seen[k] = 1;
			cr_expect(equals_any(stage->valuestring, f->stages), "%s: stage: %s", cmd, l);
			cr_expect(contains_any(reason->valuestring, f->reasons), "%s: reason: %s", cmd,
			          l);
			cr_expect_eq(att->valuedouble, (double)f->attempts, "%s: attempts: %s", cmd, l);
			if (f->input)
				cr_expect_str_eq(input->valuestring, f->input, "%s: input: %s", cmd, l);
		}
		cJSON_Delete(rec);
	}
	cr_expect_eq(strangers, 0, "%s: %zu records of items that did not fail", cmd, strangers);
	for (size_t k = 0; k < n; k++)
		cr_expect(seen[k], "%s: item %zu has no --errors record", cmd, fs[k].index);
	free(seen);
	free(data);
}

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
 * only when it cannot send the results (exit 3; or, if it is slow to exit,
 * pexec kills it: "closed its connection").  By then it is between items, so
 * the item can only be found by running the chunk's items one at a time:
 * the stage it is reported in may be "worker".  (On a loaded machine this
 * row could also catch the bug pinned deterministically by
 * closed_descriptors_never_blame_an_innocent_item below.) */
Test(faults, closed_descriptors_fail_only_their_item)
{
	static const struct fault_row row = {
		"close", 1, { "exited with status 3", "closed its connection to pexec" }, { NULL }, 1,
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
		if (for_children(pexec, note_child) != 1 || proc_state(seen_child) != 'S' ||
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
		.stages = { "map", "worker" },
		.reasons = { "exited with status 3", "closed its connection to pexec" },
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

/* ---- 2. faults in init ---- */

Test(faults, init_faults_exit_2_with_the_reason)
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

Test(faults, retries_count_every_attempt)
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

Test(faults, worker_killed_from_outside_costs_only_its_item)
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

Test(faults, results_of_every_size_cross_the_pipe)
{
	static const size_t sizes[] = { 2, 65535, 65536, 65537, (4u << 20) + 1, 100u << 20 };

	for (size_t i = 0; i < COUNT(sizes); i++)
		check_result_size(sizes[i]);
}

Test(faults, empty_result_fails_at_serialize)
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
Test(faults, many_workers_crashing_at_once_cost_only_their_items)
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

