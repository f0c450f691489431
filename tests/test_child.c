/*
 * test_child.c - the worker process's loop (pexec__worker_main, in
 * core/lib/pool/child.c) driven from the test as the pool would drive it:
 * the test forks a child that runs the loop over two pipes, with a plugin
 * loaded by pexec_plugin_load and its progress record in shared memory, and
 * plays the parent: it reads READY, sends CHUNK frames made with frame.h's
 * encoder, and decodes the RESULTS frames that come back.
 *
 * Without an arena every result comes through the pipe; with one (mapped as
 * the pool maps it, arena.c) a frame that fits lies in the arena and the
 * pipe carries only a RESULTS_SHM notice.  The worker's stderr comes back
 * through a third pipe, for what it says when it gives up.
 *
 * The faults fixture maps a number n to 2n and its reduce adds numbers; an
 * item {"fault": "error", "stage": S} fails in stage S.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "frame.h"
#include "helpers.h"
#include "pool/internal.h"
#include "util.h"

TestSuite(child, .init = scratch_make, .fini = scratch_remove, .timeout = 120);

#define FAULTS FIX("faults")
#define FAIL_IN(stage) "{\"fault\":\"error\",\"stage\":\"" stage "\"}"
#define MAX_RECS 16

/* ---- a worker process, and the parent's side of it ---- */

struct child {
	pid_t pid;
	int to, from, err;   /* the parent's ends: chunks out, frames in, its stderr */
	struct pexec__progress *progress;
	pexec_loaded_plugin *plugin;
	/* With an arena: the pool's records of it, as arena.c keeps them. */
	struct worker slot;
	struct pool pool;
	pexec_error pool_err;
	int reaped;
	int status;
};

static void child_start(struct child *c, const char *plugin, const char *config, int with_arena,
                        int timed)
{
	int down[2], up[2], err[2];
	pexec_error e;

	memset(c, 0, sizeof(*c));
	cr_assert_eq(pexec_plugin_load(plugin, NULL, &c->plugin, &e), PEXEC_OK, "%s", e.msg);
	c->progress = mmap(NULL, sizeof(*c->progress), PROT_READ | PROT_WRITE,
	                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(c->progress, MAP_FAILED);
	memset(c->progress, 0, sizeof(*c->progress));
	c->slot.progress = c->progress;
	c->pool.err = &c->pool_err;
	if (with_arena) {
		cr_assert_eq(pexec__arena_setup(&c->slot, 4), 0);
		cr_assert_not_null(c->slot.arena.base, "no shared arena could be mapped");
	}
	cr_assert_eq(pipe2(down, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(up, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
	fflush(NULL);
	c->pid = fork();
	cr_assert_geq(c->pid, 0, "fork: %s", strerror(errno));
	if (c->pid == 0) {
		/* The worker: nothing of Criterion's from here on. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(err[1], 2) < 0)
			_exit(126);
		close(down[1]);
		close(up[0]);
		close(err[0]);
		pexec__worker_main(pexec_plugin_descriptor(c->plugin), config, down[0], up[1],
		                   c->progress, with_arena ? &c->slot.arena : NULL, timed, NULL);
	}
	close(down[0]);
	close(up[1]);
	close(err[1]);
	c->to = down[1];
	c->from = up[0];
	c->err = err[0];
}

/* Waits for the worker to end (a hang guard, not a measure). */
static int child_wait(struct child *c)
{
	double deadline = now_s() + HANG_GUARD_S;

	while (!c->reaped) {
		pid_t r = waitpid(c->pid, &c->status, WNOHANG);

		if (r == c->pid) {
			c->reaped = 1;
			break;
		}
		cr_assert(r == 0 || errno == EINTR, "waitpid: %s", strerror(errno));
		cr_assert_lt(now_s(), deadline, "the worker did not end");
		nanosleep(&(struct timespec){ 0, 2 * 1000 * 1000 }, NULL);
	}
	return c->status;
}

static void child_release(struct child *c)
{
	if (!c->reaped) {
		kill(c->pid, SIGKILL);
		while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
			;
	}
	if (c->to >= 0)
		close(c->to);
	close(c->from);
	close(c->err);
	if (c->slot.ends)
		pexec__arena_release_all(&c->slot);
	munmap(c->progress, sizeof(*c->progress));
	pexec_plugin_free(c->plugin);
}

/* Closes the worker's input: it is done with, as the pool tells it. */
static void child_close_input(struct child *c)
{
	close(c->to);
	c->to = -1;
}

static void expect_exit_code(struct child *c, int code)
{
	int status = child_wait(c);
	char how[128];

	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == code, "the worker ended by %s, "
	          "want exit %d", describe(status, how, sizeof(how)), code);
}

/* Reads up to `n` bytes, fewer only at EOF. */
static size_t read_upto(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		cr_assert_eq(poll(&pfd, 1, HANG_GUARD_S * 1000), 1, "the worker sent nothing");
		r = read(fd, (char *)buf + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		cr_assert_geq(r, 0, "read: %s", strerror(errno));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* What the worker wrote to stderr until it ended. */
static char *child_stderr(struct child *c)
{
	char *text = NULL, buf[4096];
	size_t len = 0, n;

	append(&text, &len, "", 0);
	while ((n = read_upto(c->err, buf, sizeof(buf))) > 0)
		append(&text, &len, buf, n);
	return text;
}

struct frame {
	struct pexec__frame_header h;
	char *data;   /* the whole frame, header included; malloc'd */
	size_t len;
};

/* The next frame from the worker, checked by the decoder. */
static void read_frame(struct child *c, struct frame *f)
{
	pexec_error err;

	f->data = malloc(PEXEC_FRAME_HEADER_SIZE);
	cr_assert_not_null(f->data);
	cr_assert_eq(read_upto(c->from, f->data, PEXEC_FRAME_HEADER_SIZE), PEXEC_FRAME_HEADER_SIZE,
	             "no whole frame header from the worker");
	cr_assert_eq(pexec__frame_parse_header(f->data, &f->h, &err), 0, "%s", err.msg);
	f->len = PEXEC_FRAME_HEADER_SIZE + f->h.payload_len;
	f->data = realloc(f->data, f->len + 1);
	cr_assert_not_null(f->data);
	cr_assert_eq(read_upto(c->from, f->data + PEXEC_FRAME_HEADER_SIZE, f->h.payload_len),
	             f->h.payload_len, "a torn frame from the worker");
	f->data[f->len] = '\0';
}

static void frame_release(struct frame *f)
{
	free(f->data);
	f->data = NULL;
}

static void expect_ready(struct child *c)
{
	struct frame f;

	read_frame(c, &f);
	cr_assert_eq(f.h.type, PEXEC_FRAME_READY, "the first frame is 0x%08x, not READY",
	             f.h.type);
	cr_expect_eq(f.h.payload_len, 0);
	frame_release(&f);
}

static void write_all(int fd, const void *data, size_t len)
{
	cr_assert_eq(pexec__write_full(fd, data, len), 0, "write: %s", strerror(errno));
}

/* Sends a CHUNK frame of `n` items; `count` is what its header says. */
static void send_chunk_counted(struct child *c, uint64_t aux, const char *const *items, size_t n,
                               uint32_t count)
{
	pexec_buf b;

	pexec__buf_init(&b);
	cr_assert_eq(pexec__frame_begin(&b, PEXEC_FRAME_CHUNK, aux), 0);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(pexec__frame_put_item(&b, items[i], strlen(items[i])), 0);
	pexec__frame_end(&b, 0, count);
	write_all(c->to, b.data, b.len);
	pexec__buf_release(&b);
}

static void send_chunk(struct child *c, uint64_t aux, const char *const *items, size_t n)
{
	send_chunk_counted(c, aux, items, n, (uint32_t)n);
}

struct rec {
	int byte;
	pexec_stage stage;
	char text[128];  /* the start of it */
	size_t len;
};

/* Decodes the records of a RESULTS frame at `frame` (header included);
 * returns how many. */
static size_t records_of(const char *frame, size_t len, struct rec *recs)
{
	struct pexec__frame_cursor cur = { frame + PEXEC_FRAME_HEADER_SIZE, frame + len };
	const char *data;
	size_t n = 0, dlen;
	int rc;

	while ((rc = pexec__frame_next_record(&cur, &data, &dlen, &recs[n].byte,
	                                      &recs[n].stage)) == 1) {
		recs[n].len = dlen;
		snprintf(recs[n].text, sizeof(recs[n].text), "%.*s", (int)dlen, data);
		cr_assert_lt(++n, MAX_RECS);
	}
	cr_assert_eq(rc, 0, "a malformed RESULTS payload");
	return n;
}

/* Reads a RESULTS frame through the pipe and decodes it. */
static size_t read_results(struct child *c, struct rec *recs, uint32_t *count)
{
	struct frame f;
	size_t n;

	read_frame(c, &f);
	cr_assert_eq(f.h.type, PEXEC_FRAME_RESULTS, "frame 0x%08x, not RESULTS", f.h.type);
	*count = f.h.count;
	n = records_of(f.data, f.len, recs);
	frame_release(&f);
	return n;
}

static void expect_rec(const struct rec *r, int ok, pexec_stage stage, const char *text,
                       size_t i)
{
	cr_expect_eq(r->byte, ok, "record %zu: status byte %d, want %d", i, r->byte, ok);
	cr_expect_eq(r->stage, stage, "record %zu: stage %s, want %s", i, pexec_stage_str(r->stage),
	             pexec_stage_str(stage));
	cr_expect_str_eq(r->text, text, "record %zu", i);
}

/* ---- chunks in, results out ---- */

Test(child, answers_each_chunk_with_its_results_in_order)
{
	static const char *const first[] = { "1", "2", "3", "4" }, *const second[] = { "21" };
	struct child c;
	struct rec recs[MAX_RECS];
	uint32_t count;

	child_start(&c, FAULTS, NULL, 0, 0);
	expect_ready(&c);
	send_chunk(&c, 100, first, COUNT(first));
	cr_assert_eq(read_results(&c, recs, &count), 4);
	cr_expect_eq(count, 4);
	for (size_t i = 0; i < 4; i++) {
		char want[8];
		snprintf(want, sizeof(want), "%zu", 2 * (i + 1));
		expect_rec(&recs[i], 1, PEXEC_STAGE_NONE, want, i);
	}
	send_chunk(&c, 104, second, COUNT(second));
	cr_assert_eq(read_results(&c, recs, &count), 1);
	expect_rec(&recs[0], 1, PEXEC_STAGE_NONE, "42", 0);
	child_close_input(&c);
	expect_exit_code(&c, 0);
	child_release(&c);
}

Test(child, a_failing_item_carries_its_stage_and_message)
{
	static const char *const items[] = {
		"1", FAIL_IN("deserialize"), "2", FAIL_IN("map"), FAIL_IN("serialize"), "3",
	};
	struct child c;
	struct rec recs[MAX_RECS];
	uint32_t count;

	child_start(&c, FAULTS, NULL, 0, 0);
	expect_ready(&c);
	send_chunk(&c, 0, items, COUNT(items));
	cr_assert_eq(read_results(&c, recs, &count), COUNT(items));
	expect_rec(&recs[0], 1, PEXEC_STAGE_NONE, "2", 0);
	expect_rec(&recs[1], 0, PEXEC_STAGE_DESERIALIZE, "faults: asked to fail in deserialize", 1);
	expect_rec(&recs[2], 1, PEXEC_STAGE_NONE, "4", 2);
	expect_rec(&recs[3], 0, PEXEC_STAGE_MAP, "faults: asked to fail in map", 3);
	expect_rec(&recs[4], 0, PEXEC_STAGE_SERIALIZE, "faults: asked to fail in serialize", 4);
	expect_rec(&recs[5], 1, PEXEC_STAGE_NONE, "6", 5);
	child_close_input(&c);
	expect_exit_code(&c, 0);
	child_release(&c);
}

Test(child, progress_counts_chunks_begun_and_ends_at_the_item_count)
{
	static const char *const three[] = { "1", "2", "3" }, *const five[] = { "1", "2", "3", "4",
	                                                                        "5" };
	struct child c;
	struct rec recs[MAX_RECS];
	uint32_t count;

	child_start(&c, FAULTS, NULL, 0, 0);
	expect_ready(&c);
	cr_expect_eq(atomic_load(&c.progress->frames), 0);
	send_chunk(&c, 0, three, COUNT(three));
	read_results(&c, recs, &count);
	cr_expect_eq(atomic_load(&c.progress->frames), 1);
	cr_expect_eq(atomic_load(&c.progress->pos), 3);
	cr_expect_eq(atomic_load(&c.progress->stage), PEXEC_STAGE_NONE,
	             "a stage is still set between chunks");
	cr_expect_neq(atomic_load(&c.progress->frame_started), 0);
	/* Untimed: no item's start is told. */
	cr_expect_eq(atomic_load(&c.progress->started), 0);
	send_chunk(&c, 3, five, COUNT(five));
	read_results(&c, recs, &count);
	cr_expect_eq(atomic_load(&c.progress->frames), 2);
	cr_expect_eq(atomic_load(&c.progress->pos), 5);
	child_close_input(&c);
	expect_exit_code(&c, 0);
	child_release(&c);
}

Test(child, a_timed_worker_tells_when_its_item_started)
{
	static const char *const items[] = { "1" };
	struct child c;
	struct rec recs[MAX_RECS];
	uint32_t count;
	uint64_t before = pexec__now_ns(), started;

	child_start(&c, FAULTS, NULL, 0, 1);
	expect_ready(&c);
	send_chunk(&c, 0, items, 1);
	read_results(&c, recs, &count);
	started = atomic_load(&c.progress->started);
	cr_expect(started >= before && started <= pexec__now_ns(),
	          "the item's start is not a CLOCK_MONOTONIC time of this run: %llu",
	          (unsigned long long)started);
	child_close_input(&c);
	expect_exit_code(&c, 0);
	child_release(&c);
}

Test(child, eof_on_its_input_runs_fini_and_exits_0)
{
	static const char *const items[] = { "\"a\"" };
	const char *marks = scratch_path(0, "marks");
	char config[512], *text, byte;
	struct child c;
	struct rec recs[MAX_RECS];
	uint32_t count;
	size_t len;

	snprintf(config, sizeof(config), "{\"marks\":\"%s\"}", marks);
	child_start(&c, FIX("lifecycle"), config, 0, 0);
	expect_ready(&c);
	text = read_file(marks, &len);
	cr_expect_str_eq(text ? text : "(none)", "init\n");
	free(text);
	send_chunk(&c, 0, items, 1);
	cr_assert_eq(read_results(&c, recs, &count), 1);
	expect_rec(&recs[0], 1, PEXEC_STAGE_NONE, "\"a\"", 0);
	child_close_input(&c);
	expect_exit_code(&c, 0);
	text = read_file(marks, &len);
	cr_expect_str_eq(text ? text : "(none)", "init\nfini\n", "fini did not run before exit");
	free(text);
	/* And nothing more came through the pipe. */
	cr_expect_eq(read_upto(c.from, &byte, 1), 0, "bytes after the last RESULTS frame");
	child_release(&c);
}

Test(child, an_init_that_fails_sends_initfail_and_exits_2)
{
	static const struct {
		const char *plugin, *config, *msg;
	} cases[] = {
		{ FIX("init_fail"), NULL, "init refused: bad config" },
		{ FAULTS, FAIL_IN("init"), "faults: asked to fail in init" },
	};

	for (size_t i = 0; i < COUNT(cases); i++) {
		struct child c;
		struct frame f;
		char byte;

		child_start(&c, cases[i].plugin, cases[i].config, 0, 0);
		read_frame(&c, &f);
		cr_expect_eq(f.h.type, PEXEC_FRAME_INITFAIL, "case %zu: frame 0x%08x", i, f.h.type);
		cr_expect_str_eq(f.data + PEXEC_FRAME_HEADER_SIZE, cases[i].msg, "case %zu", i);
		cr_expect_eq(f.h.payload_len, strlen(cases[i].msg));
		frame_release(&f);
		expect_exit_code(&c, 2);
		cr_expect_eq(read_upto(c.from, &byte, 1), 0, "case %zu: more after INITFAIL", i);
		child_release(&c);
	}
}

/* ---- --reduce ---- */

Test(child, a_fold_chunk_answers_empty_texts_and_one_partial)
{
	static const char *const items[] = { "1", "2", FAIL_IN("map"), "3" };
	struct child c;
	struct rec recs[MAX_RECS];
	uint32_t count;

	child_start(&c, FAULTS, NULL, 0, 0);
	expect_ready(&c);
	send_chunk(&c, 10 | PEXEC_CHUNK_FOLD, items, COUNT(items));
	cr_assert_eq(read_results(&c, recs, &count), COUNT(items) + 1,
	             "a folded chunk is not its records plus one partial");
	cr_expect_eq(count, COUNT(items), "the header counts the items, not the partial");
	expect_rec(&recs[0], 1, PEXEC_STAGE_NONE, "", 0);
	expect_rec(&recs[1], 1, PEXEC_STAGE_NONE, "", 1);
	expect_rec(&recs[2], 0, PEXEC_STAGE_MAP, "faults: asked to fail in map", 2);
	expect_rec(&recs[3], 1, PEXEC_STAGE_NONE, "", 3);
	/* 2 + 4 + 6 */
	expect_rec(&recs[4], 1, PEXEC_STAGE_NONE, "12", 4);

	/* The next folded chunk starts from reduce_initial again. */
	send_chunk(&c, 14 | PEXEC_CHUNK_FOLD, items, 1);
	cr_assert_eq(read_results(&c, recs, &count), 2);
	expect_rec(&recs[1], 1, PEXEC_STAGE_NONE, "2", 1);
	child_close_input(&c);
	expect_exit_code(&c, 0);
	child_release(&c);
}

Test(child, a_fold_each_chunk_answers_each_items_own_partial)
{
	static const char *const items[] = { "5", "7" };
	struct child c;
	struct rec recs[MAX_RECS];
	uint32_t count;

	child_start(&c, FAULTS, NULL, 0, 0);
	expect_ready(&c);
	send_chunk(&c, 3 | PEXEC_CHUNK_FOLD_EACH, items, COUNT(items));
	cr_assert_eq(read_results(&c, recs, &count), 2);
	expect_rec(&recs[0], 1, PEXEC_STAGE_NONE, "10", 0);
	expect_rec(&recs[1], 1, PEXEC_STAGE_NONE, "14", 1);
	child_close_input(&c);
	expect_exit_code(&c, 0);
	child_release(&c);
}

/* ---- the result arena ---- */

/* Reads a RESULTS_SHM notice and takes its frame as the pool does; returns
 * the frame (in the arena) and its number. */
static const char *read_arena_frame(struct child *c, struct frame *notice, uint64_t *frame_no)
{
	const char *frame;

	read_frame(c, notice);
	cr_assert_eq(notice->h.type, PEXEC_FRAME_RESULTS_SHM,
	             "frame 0x%08x, not a RESULTS_SHM notice", notice->h.type);
	cr_expect_eq(notice->h.payload_len, 0);
	frame = pexec__arena_take(&c->pool, &c->slot, &notice->h, frame_no);
	cr_assert_not_null(frame, "the notice does not describe a frame in the arena");
	cr_assert(frame >= c->slot.arena.base &&
	                  frame + notice->h.count <= c->slot.arena.base + c->slot.arena.size,
	          "the frame lies outside the arena");
	return frame;
}

Test(child, with_an_arena_results_lie_in_it_and_the_pipe_carries_a_notice)
{
	static const char *const items[] = { "1", FAIL_IN("map"), "3" };
	struct child c;
	struct frame notice;
	struct rec recs[MAX_RECS];
	const char *frame;
	uint64_t frame_no, first_end;
	struct pexec__frame_header h;
	pexec_error err;

	child_start(&c, FAULTS, NULL, 1, 0);
	expect_ready(&c);
	send_chunk(&c, 0, items, COUNT(items));
	frame = read_arena_frame(&c, &notice, &frame_no);
	cr_assert_eq(pexec__frame_parse_header(frame, &h, &err), 0, "%s", err.msg);
	cr_expect_eq(h.type, PEXEC_FRAME_RESULTS);
	cr_expect_eq(h.count, 3);
	cr_expect_eq(PEXEC_FRAME_HEADER_SIZE + h.payload_len, notice.h.count);
	cr_assert_eq(records_of(frame, notice.h.count, recs), 3);
	expect_rec(&recs[0], 1, PEXEC_STAGE_NONE, "2", 0);
	expect_rec(&recs[1], 0, PEXEC_STAGE_MAP, "faults: asked to fail in map", 1);
	expect_rec(&recs[2], 1, PEXEC_STAGE_NONE, "6", 2);
	cr_expect_eq(frame_no, 0);
	first_end = notice.h.aux;
	cr_expect_eq(first_end, notice.h.count, "the first frame does not start the arena");
	frame_release(&notice);

	/* Released, the worker sees the tail move; the next frame follows. */
	pexec__arena_release(&c.slot, frame_no);
	cr_expect_eq(atomic_load(&c.progress->arena_tail), first_end);
	send_chunk(&c, 3, items, 1);
	frame = read_arena_frame(&c, &notice, &frame_no);
	cr_expect_eq(frame_no, 1);
	cr_expect_eq(frame, c.slot.arena.base + first_end,
	             "the second frame is not after the first");
	cr_assert_eq(records_of(frame, notice.h.count, recs), 1);
	expect_rec(&recs[0], 1, PEXEC_STAGE_NONE, "2", 0);
	pexec__arena_release(&c.slot, frame_no);
	frame_release(&notice);
	child_close_input(&c);
	expect_exit_code(&c, 0);
	child_release(&c);
}

Test(child, a_frame_too_big_for_the_arena_comes_through_the_pipe)
{
	char big_item[64];
	const char *const items[] = { big_item }, *const small[] = { "1" };
	const size_t big = ARENA_SIZE + ARENA_SIZE / 2;
	struct child c;
	struct rec recs[MAX_RECS];
	struct frame f;
	uint32_t count;
	int in_arena = 0;

	snprintf(big_item, sizeof(big_item), "{\"size\":%zu}", big);
	child_start(&c, FAULTS, NULL, 1, 0);
	expect_ready(&c);
	send_chunk(&c, 0, items, 1);
	cr_assert_eq(read_results(&c, recs, &count), 1, "not through the pipe");
	cr_expect_eq(recs[0].byte, 1);
	cr_expect_eq(recs[0].len, big);
	/* Small frames go back to the arena (after one sized like the last). */
	for (int i = 0; i < 3 && !in_arena; i++) {
		uint64_t frame_no;

		send_chunk(&c, 1 + (uint64_t)i, small, 1);
		read_frame(&c, &f);
		if (f.h.type == PEXEC_FRAME_RESULTS_SHM) {
			cr_assert_not_null(pexec__arena_take(&c.pool, &c.slot, &f.h, &frame_no));
			pexec__arena_release(&c.slot, frame_no);
			in_arena = 1;
		} else {
			cr_expect_eq(f.h.type, PEXEC_FRAME_RESULTS);
		}
		frame_release(&f);
	}
	cr_expect(in_arena, "small frames never went back to the arena");
	child_close_input(&c);
	expect_exit_code(&c, 0);
	child_release(&c);
}

Test(child, the_arena_starts_over_at_its_beginning_when_its_end_is_too_short)
{
	/* Frames of 3/10 of the arena: the third finds 4/10 left before the
	 * end, less than a frame like the last one and a half, and starts over
	 * at the beginning, where the released frames were. */
	const size_t size = ARENA_SIZE * 3 / 10;
	char item[64];
	const char *const items[] = { item };
	struct child c;
	struct frame notice;
	uint64_t frame_no, prev_end = 0;

	snprintf(item, sizeof(item), "{\"size\":%zu}", size);
	child_start(&c, FAULTS, NULL, 1, 0);
	expect_ready(&c);
	for (int i = 0; i < 3; i++) {
		const char *frame;
		size_t off;

		send_chunk(&c, (uint64_t)i, items, 1);
		frame = read_arena_frame(&c, &notice, &frame_no);
		off = (size_t)(frame - c.slot.arena.base);
		if (i < 2)
			cr_expect_eq(off, prev_end, "frame %d at %zu, want %llu", i, off,
			             (unsigned long long)prev_end);
		else
			cr_expect_eq(off, 0, "frame %d at %zu, not at the beginning", i, off);
		cr_expect_eq(notice.h.aux % ARENA_SIZE, off + notice.h.count,
		             "frame %d: the notice does not say where it ends", i);
		prev_end = notice.h.aux;
		pexec__arena_release(&c.slot, frame_no);
		frame_release(&notice);
	}
	cr_expect_eq(atomic_load(&c.progress->arena_tail), prev_end);
	child_close_input(&c);
	expect_exit_code(&c, 0);
	child_release(&c);
}

/* ---- a parent that breaks the protocol ---- */

Test(child, gives_up_with_exit_3_on_what_is_not_a_whole_chunk)
{
	static const char *const two[] = { "1", "2" };
	static const struct {
		const char *what;
		int kind;
		const char *says;
	} cases[] = {
		{ "a frame that is not a CHUNK", 0, "bad frame from pexec" },
		{ "a torn header", 1, "torn frame header" },
		{ "a chunk cut short", 2, "cannot read a chunk" },
		{ "a chunk whose count lies", 3, "malformed chunk from pexec" },
	};

	for (size_t i = 0; i < COUNT(cases); i++) {
		struct child c;
		pexec_buf b;
		char *err, want[128];

		child_start(&c, FAULTS, NULL, 0, 0);
		expect_ready(&c);
		pexec__buf_init(&b);
		switch (cases[i].kind) {
		case 0:
			cr_assert_eq(pexec__frame_begin(&b, PEXEC_FRAME_RESULTS, 0), 0);
			pexec__frame_end(&b, 0, 0);
			write_all(c.to, b.data, b.len);
			break;
		case 1:
			write_all(c.to, "\x01\x00\x78\x70\x02", 5);
			break;
		case 2:
			cr_assert_eq(pexec__frame_begin(&b, PEXEC_FRAME_CHUNK, 0), 0);
			cr_assert_eq(pexec__frame_put_item(&b, "1", 1), 0);
			pexec__frame_end(&b, 0, 1);
			write_all(c.to, b.data, b.len - 2);
			break;
		default:
			send_chunk_counted(&c, 0, two, 2, 3);
			break;
		}
		pexec__buf_release(&b);
		child_close_input(&c);
		expect_exit_code(&c, 3);
		err = child_stderr(&c);
		snprintf(want, sizeof(want), "pexec: worker %ld: %s: ", (long)c.pid, cases[i].says);
		cr_expect(strncmp(err, want, strlen(want)) == 0, "%s: the worker said \"%s\", want "
		          "\"%s...\"", cases[i].what, err, want);
		free(err);
		child_release(&c);
	}
}
