/*
 * child.c - a worker process (pexec__worker_main): init, then one CHUNK
 * frame after another, each answered with one RESULTS frame.
 *
 * A worker reads a whole CHUNK, answers it, and reads the next: it blocks on
 * both pipes, which is safe because the parent never blocks on them (see
 * loop.c).  The chunk's bytes stay untouched until its last item is
 * serialized, which is what lets a deserialize hook point into them (the
 * OWNERSHIP rule in pexec_plugin.h).  Before each item the worker says in
 * shared memory which item it is on and at which stage, so that the parent
 * can blame that item alone if the worker dies.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "item.h"
#include "util.h"

struct child {
	const pexec_descriptor *d;
	void *state;
	int in_fd, out_fd;
	int timed;           /* --timeout: each item's start time is told */
	struct pexec__progress *progress;
	struct pexec__results out;
	pexec_buf chunk;     /* the CHUNK payload being answered */
	pexec_error err;
	uint64_t frames;
	void *acc;           /* a folded chunk's value (PEXEC_CHUNK_FOLD) */
	pexec__splitter *check; /* every result is one valid JSON value */
	struct pexec__stages stages;
	int watch;           /* an item sent alone: its descriptors checked */
	/* Spans (NULL: none in this run): how to read and lay them out. */
	const pexec_spans *spans;
	pexec__splitter *fragment; /* the strict splitter, over one span at a time */
	pexec_buf bytes;     /* a span read from the input file */
	pexec_buf item;      /* an item, with the NUL hooks are promised */
	pexec_buf fails;     /* the failure records of the span being run */
	/* Spans whose output is in the arena, to be written here once the
	 * parent says where (WRITE), oldest first. */
	struct unwritten {
		uint64_t start, end; /* the frame, by the arena's count */
		size_t out_off;      /* its output bytes, from the frame's start */
		size_t out_len;
	} *unwritten;
	size_t uw_head, uw_len, uw_cap;
	/* WRITTEN frames held back to go with the next results (write_span). */
	pexec_buf acks;
};

/* Between the stages of an item sent alone (a suspect, or a slow item,
 * where two system calls cost nothing): a plugin that closed pexec's pipes
 * is caught in the stage it did it in, which the parent then blames. */
static void check_pipes(void *ctx)
{
	struct child *c = ctx;

	if (!c->watch || (fcntl(c->in_fd, F_GETFD) >= 0 && fcntl(c->out_fd, F_GETFD) >= 0))
		return;
	atomic_store_explicit(&c->progress->lost_in, atomic_load(&c->progress->stage),
	                      memory_order_release);
	_exit(3);
}

static void __attribute__((noreturn)) die(const char *what)
{
	/* The parent sees the end and reports the worker lost; say why here. */
	fprintf(stderr, "pexec: worker %ld: %s: %s\n", (long)getpid(), what, strerror(errno));
	_exit(3);
}

/* Writes a frame with a message payload (READY, INITFAIL). */
static void send_message(int fd, uint32_t type, const char *msg)
{
	pexec_buf buf;

	pexec__buf_init(&buf);
	if (pexec__frame_begin(&buf, type, 0) == 0 && pexec_buf_puts(&buf, msg) == 0) {
		pexec__frame_end(&buf, 0, 0);
		pexec__write_full(fd, buf.data, buf.len);
	}
	pexec__buf_release(&buf);
}

/* Reads the next CHUNK frame into c->chunk.  Returns 0 at the end of the
 * input (the parent is done with this worker), 1 with a chunk. */
static int read_chunk(struct child *c, struct pexec__frame_header *h)
{
	char hdr[PEXEC_FRAME_HEADER_SIZE];
	ssize_t n = pexec__read_full(c->in_fd, hdr, sizeof(hdr));

	if (n == 0)
		return 0;
	if (n < 0)
		die("cannot read from pexec");
	if ((size_t)n < sizeof(hdr)) {
		errno = EPIPE;
		die("torn frame header");
	}
	if (pexec__frame_parse_header(hdr, h, &c->err) ||
	    (h->type != PEXEC_FRAME_CHUNK && h->type != PEXEC_FRAME_SPAN &&
	     h->type != PEXEC_FRAME_WRITE)) {
		errno = EPROTO;
		die("bad frame from pexec");
	}
	c->chunk.len = 0;
	if (pexec_buf_reserve(&c->chunk, h->payload_len))
		die("cannot hold a chunk");
	n = pexec__read_full(c->in_fd, c->chunk.data, h->payload_len);
	if (n < 0 || (uint64_t)n != h->payload_len) {
		if (n >= 0)
			errno = EPIPE;
		die("cannot read a chunk");
	}
	c->chunk.len = h->payload_len;
	return 1;
}

/* Folds one item on its own, from the starting value, and writes that
 * partial result as the item's text (PEXEC_CHUNK_FOLD_EACH). */
static pexec_stage fold_alone(struct child *c, const char *item, size_t len)
{
	void *one;
	pexec_stage stage;

	if (pexec__fold_start(c->d, c->state, &one, &c->err)) {
		errno = EINVAL;
		die(c->err.msg);
	}
	stage = pexec__item_fold(c->d, c->state, item, len, &one, &c->err, &c->stages);
	if (stage == PEXEC_STAGE_NONE && pexec__fold_finish(c->d, c->state, &one, &c->out.buf,
	                                                    c->check, &c->err))
		stage = PEXEC_STAGE_REDUCE;
	pexec__fold_free(c->d, c->state, one);
	return stage;
}

/* One item of the chunk, at position `pos`, into a record of its own. */
static void run_item(struct child *c, const char *item, size_t len, uint32_t pos,
                     uint64_t aux)
{
	pexec_buf *res = &c->out.buf;
	_Atomic uint32_t *stage_at = &c->progress->stage;
	const struct pexec__stages *st = &c->stages;
	size_t at = pexec__frame_record_begin(res);
	pexec_stage stage;

	if (at == (size_t)-1)
		die("cannot hold results");
	atomic_store_explicit(&c->progress->pos, pos, memory_order_relaxed);
	if (c->timed)
		atomic_store_explicit(&c->progress->started, pexec__now_ns(), memory_order_relaxed);
	atomic_store_explicit(stage_at, PEXEC_STAGE_DESERIALIZE, memory_order_release);
	if (aux & PEXEC_CHUNK_FOLD)
		stage = pexec__item_fold(c->d, c->state, item, len, &c->acc, &c->err, st);
	else if (aux & PEXEC_CHUNK_FOLD_EACH)
		stage = fold_alone(c, item, len);
	else
		stage = pexec__item_run(c->d, c->state, item, len, res, c->check, &c->err, st);
	check_pipes(c);
	atomic_store_explicit(stage_at, PEXEC_STAGE_NONE, memory_order_release);
	if (stage != PEXEC_STAGE_NONE && pexec_buf_puts(res, c->err.msg))
		die("cannot hold results");
	pexec__frame_record_end(res, at, stage == PEXEC_STAGE_NONE, stage);
}

/* A folded chunk's partial result, in one more record after its items'. */
static void put_partial(struct child *c)
{
	pexec_buf *res = &c->out.buf;
	pexec_stage stage = PEXEC_STAGE_NONE;
	size_t at = pexec__frame_record_begin(res);

	if (at == (size_t)-1)
		die("cannot hold results");
	if (pexec__fold_finish(c->d, c->state, &c->acc, res, c->check, &c->err)) {
		stage = PEXEC_STAGE_REDUCE;
		if (pexec_buf_puts(res, c->err.msg))
			die("cannot hold results");
	}
	pexec__frame_record_end(res, at, stage == PEXEC_STAGE_NONE, stage);
}

/* Answers the chunk in c->chunk with one RESULTS frame. */
static void run_chunk(struct child *c, const struct pexec__frame_header *h)
{
	struct pexec__frame_cursor cur = { c->chunk.data, c->chunk.data + c->chunk.len };
	uint64_t t0 = pexec__now_ns();
	const char *item;
	size_t len;
	uint32_t count = 0;
	int more;

	atomic_store_explicit(&c->progress->pos, 0, memory_order_relaxed);
	atomic_store_explicit(&c->progress->frame_started, t0, memory_order_relaxed);
	atomic_store_explicit(&c->progress->frames, ++c->frames, memory_order_release);
	c->watch = h->count == 1;
	if ((h->aux & PEXEC_CHUNK_FOLD) && pexec__fold_start(c->d, c->state, &c->acc, &c->err)) {
		errno = EINVAL;
		die(c->err.msg);
	}
	pexec__results_begin(&c->out);
	if (pexec__frame_begin(&c->out.buf, PEXEC_FRAME_RESULTS, 0))
		die("cannot hold results");
	while ((more = pexec__frame_next_item(&cur, &item, &len)) == 1)
		run_item(c, item, len, count++, h->aux);
	if (more < 0 || count != h->count) {
		errno = EPROTO;
		die("malformed chunk from pexec");
	}
	if (h->aux & PEXEC_CHUNK_FOLD)
		put_partial(c);
	pexec__frame_end(&c->out.buf, 0, count);
	atomic_store_explicit(&c->progress->pos, count, memory_order_relaxed);
	pexec__frame_set_aux(&c->out.buf, 0, pexec__now_ns() - t0);
	/* What the plugin printed goes out before its results do. */
	fflush(stdout);
	if (pexec__results_send(&c->out, c->out_fd, &c->acks))
		die("cannot send results");
}

/* ---- spans ---- */

/* The span's bytes: sent with it, or read from the input file. */
static const char *span_bytes(struct child *c, const struct pexec__span_head *head,
                              const char *after)
{
	ssize_t n;

	if (head->flags & PEXEC_SPAN_INLINE)
		return after;
	c->bytes.len = 0;
	if (pexec_buf_reserve(&c->bytes, head->len + 1))
		die("cannot hold a span");
	n = pexec__pread_full(c->spans->input_fd, c->bytes.data, head->len, (off_t)head->offset);
	if (n < 0 || (uint64_t)n != head->len) {
		if (n >= 0)
			errno = EIO;
		die("cannot read the input");
	}
	return c->bytes.data;
}

/* A failure's record, kept apart until the span's output is all laid out. */
static void note_failure(struct child *c, uint32_t pos, pexec_stage stage, const char *item,
                         size_t len)
{
	unsigned char head[PEXEC_SPAN_FAILURE_HEAD] = { 0 };
	uint32_t mlen = (uint32_t)strlen(c->err.msg), ilen = (uint32_t)len;

	memcpy(head, &pos, 4);
	head[4] = pexec__record_byte(PEXEC_STATUS_ERROR);
	head[5] = (unsigned char)stage;
	memcpy(head + 8, &mlen, 4);
	memcpy(head + 12, &ilen, 4);
	if (pexec_buf_append(&c->fails, head, sizeof(head)) ||
	    pexec_buf_append(&c->fails, c->err.msg, mlen) ||
	    pexec_buf_append(&c->fails, item, len))
		die("cannot hold results");
}

/* One item of a span, its result laid out as it is to be written: after
 * ",\n" in a JSON array, with its newline (and no other) on an NDJSON line;
 * null for a failure, nothing for a null under --drop-null. */
static void span_item(struct child *c, const char *data, size_t len, uint32_t pos,
                      uint64_t index, struct pexec__span_tail *tail)
{
	const pexec_spans *sp = c->spans;
	pexec_buf *out = &c->out.buf;
	int json = sp->out_format == PEXEC_FORMAT_JSON;
	size_t at = out->len, text;
	pexec_stage stage;

	c->item.len = 0;
	if (pexec_buf_reserve(&c->item, len + 1))
		die("cannot hold an item");
	memcpy(c->item.data, data, len);
	c->item.data[len] = '\0';
	atomic_store_explicit(&c->progress->pos, pos, memory_order_relaxed);
	if (c->timed)
		atomic_store_explicit(&c->progress->started, pexec__now_ns(), memory_order_relaxed);
	atomic_store_explicit(&c->progress->stage, PEXEC_STAGE_DESERIALIZE, memory_order_release);
	if (json && pexec_buf_append(out, ",\n", 2))
		die("cannot hold results");
	text = out->len;
	stage = pexec__item_run(c->d, c->state, c->item.data, len, out, c->check, &c->err,
	                        &c->stages);
	check_pipes(c);
	atomic_store_explicit(&c->progress->stage, PEXEC_STAGE_NONE, memory_order_release);
	if (stage != PEXEC_STAGE_NONE) {
		note_failure(c, pos, stage, data, len);
		tail->failures++;
		if (pexec_buf_append(out, "null", 4))
			die("cannot hold results");
	}
	if (sp->drop_null && out->len - text == 4 && !memcmp(out->data + text, "null", 4)) {
		out->len = at;
	} else {
		if (!json) {
			/* A newline in valid JSON text is whitespace: a space keeps
			 * the value on its line. */
			for (char *p = out->data + text; (p = memchr(p, '\n', (size_t)(out->data + out->len - p)));)
				*p = ' ';
			for (char *p = out->data + text; (p = memchr(p, '\r', (size_t)(out->data + out->len - p)));)
				*p = ' ';
			if (pexec_buf_append(out, "\n", 1))
				die("cannot hold results");
		}
		tail->written++;
	}
	if (sp->hash)
		tail->hash += pexec__item_hash(index, data, len);
}

/* Splits and runs the items of a span; returns how many ran.  An input
 * error ends it, its message in c->err (and *error set). */
static uint32_t span_items(struct child *c, const struct pexec__span_head *head,
                           const char *bytes, uint32_t count, uint64_t first,
                           struct pexec__span_tail *tail, int *error)
{
	struct pexec__fragment f = { head->offset, head->line, head->line_start,
		                     (head->flags & PEXEC_SPAN_FIRST) != 0,
		                     (head->flags & PEXEC_SPAN_LAST) != 0 };
	uint32_t n = 0;

	pexec__split_fragment(c->fragment, bytes, head->len, &f);
	*error = 0;
	for (;; n++) {
		const char *item;
		size_t len;
		int got;

		if (!f.last && n == count) {
			*error = pexec__split_fragment_end(c->fragment, &c->err) != 0;
			break;
		}
		got = pexec__split_next(c->fragment, &item, &len, &c->err);
		if (got <= 0) {
			*error = got < 0 || !f.last;
			if (got == 0 && !f.last)
				pexec__fail(&c->err, PEXEC_EINPUT, "internal error: a chunk with fewer "
				            "items than counted");
			break;
		}
		span_item(c, item, len, n, first + n, tail);
	}
	return n;
}

/* Notes the span frame being sent from the arena as one the parent will
 * ask this worker to write. */
static void keep_unwritten(struct child *c, size_t out_len)
{
	struct unwritten *u;

	if (c->uw_head + c->uw_len == c->uw_cap) {
		if (c->uw_head) {
			memmove(c->unwritten, c->unwritten + c->uw_head, c->uw_len * sizeof(*u));
			c->uw_head = 0;
		} else {
			size_t cap = c->uw_cap ? 2 * c->uw_cap : 16;
			if (!(u = realloc(c->unwritten, cap * sizeof(*u))))
				die("cannot hold results");
			c->unwritten = u;
			c->uw_cap = cap;
		}
	}
	c->unwritten[c->uw_head + c->uw_len++] = (struct unwritten){
		.start = c->out.start, .end = c->out.start + c->out.buf.len,
		.out_off = PEXEC_FRAME_HEADER_SIZE + sizeof(struct pexec__span_tail),
		.out_len = out_len,
	};
}

/* Whether the parent has sent more: a frame, or the pipe's end. */
static int input_waiting(const struct child *c)
{
	struct pollfd in = { .fd = c->in_fd, .events = POLLIN };

	return poll(&in, 1, 0) > 0;
}

static void send_acks(struct child *c)
{
	if (c->acks.len && pexec__write_full(c->out_fd, c->acks.data, c->acks.len))
		die("cannot send results");
	c->acks.len = 0;
}

/* A WRITE: the oldest unwritten span's output into the output file, and
 * WRITTEN back (with the errno when it failed).  Where the parent has sent
 * more, the WRITTEN waits to go with the results of that: the parent then
 * wakes once a span, not twice, and a WRITTEN is never later than the
 * next frame takes, nor held while this worker waits. */
static void write_span(struct child *c, const struct pexec__frame_header *h)
{
	struct pexec__write_order w;
	struct pexec__frame_header ack = { PEXEC_FRAME_WRITTEN, 0, 0, 0 };
	const struct unwritten *u = c->uw_len ? &c->unwritten[c->uw_head] : NULL;

	if (!u || h->payload_len != sizeof(w)) {
		errno = EPROTO;
		die("a write that was not asked for");
	}
	memcpy(&w, c->chunk.data, sizeof(w));
	if (w.end != u->end || w.skip > u->out_len) {
		errno = EPROTO;
		die("a write of another span");
	}
	if (pexec__pwrite_full(c->spans->out_fd,
	                       c->out.arena->base + (u->start % c->out.arena->size) + u->out_off +
	                               w.skip,
	                       u->out_len - w.skip, (off_t)w.offset))
		ack.count = (uint32_t)errno;
	ack.aux = u->end;
	c->uw_head++;
	c->uw_len--;
	if (pexec_buf_append(&c->acks, &ack, sizeof(ack)))
		die("cannot send results");
	if (!input_waiting(c))
		send_acks(c);
}

/* Answers a SPAN with one SPAN_RESULTS frame. */
static void run_span(struct child *c, const struct pexec__frame_header *h)
{
	struct pexec__span_head head;
	struct pexec__span_tail tail = { 0 };
	uint64_t t0 = pexec__now_ns();
	const char *bytes;
	size_t tail_at;
	uint32_t n;
	int error;

	if (!c->spans || c->chunk.len < sizeof(head)) {
		errno = EPROTO;
		die("a span that was not asked for");
	}
	memcpy(&head, c->chunk.data, sizeof(head));
	if ((head.flags & PEXEC_SPAN_INLINE) && c->chunk.len - sizeof(head) != head.len) {
		errno = EPROTO;
		die("a torn span");
	}
	atomic_store_explicit(&c->progress->pos, 0, memory_order_relaxed);
	atomic_store_explicit(&c->progress->frame_started, t0, memory_order_relaxed);
	atomic_store_explicit(&c->progress->frames, ++c->frames, memory_order_release);
	c->watch = h->count == 1;
	bytes = span_bytes(c, &head, c->chunk.data + sizeof(head));
	pexec__results_begin(&c->out);
	if (pexec__frame_begin(&c->out.buf, PEXEC_FRAME_SPAN_RESULTS, 0) ||
	    pexec_buf_append(&c->out.buf, &tail, sizeof(tail)))
		die("cannot hold results");
	tail_at = c->out.buf.len - sizeof(tail);
	c->fails.len = 0;
	n = span_items(c, &head, bytes, h->count, h->aux, &tail, &error);
	tail.out_len = c->out.buf.len - tail_at - sizeof(tail);
	if (error) {
		tail.error_len = (uint32_t)strlen(c->err.msg);
		if (pexec_buf_append(&c->fails, c->err.msg, tail.error_len))
			die("cannot hold results");
	}
	if (pexec_buf_append(&c->out.buf, c->fails.data, c->fails.len))
		die("cannot hold results");
	memcpy(c->out.buf.data + tail_at, &tail, sizeof(tail));
	pexec__frame_end(&c->out.buf, 0, n);
	atomic_store_explicit(&c->progress->pos, n, memory_order_relaxed);
	pexec__frame_set_aux(&c->out.buf, 0, pexec__now_ns() - t0);
	fflush(stdout);
	/* The parent asks for a write of every span with output (span.c). */
	if (c->spans->out_fd >= 0 && c->out.in_arena && tail.out_len > 0)
		keep_unwritten(c, tail.out_len);
	if (pexec__results_send(&c->out, c->out_fd, &c->acks))
		die("cannot send results");
}

void pexec__worker_main(const pexec_descriptor *d, const char *config, int in_fd, int out_fd,
                        struct pexec__progress *progress, const struct pexec__arena *arena,
                        int timed, const pexec_spans *spans)
{
	struct child c = {
		.d = d, .in_fd = in_fd, .out_fd = out_fd, .timed = timed, .progress = progress,
		.out = { .arena = arena, .progress = progress, .head = progress->arena_head },
		.spans = spans,
	};

	c.stages = (struct pexec__stages){ &progress->stage, check_pipes, &c };
	struct pexec__frame_header h;

	if (pexec__plugin_init(d, config, &c.state, &c.err)) {
		send_message(out_fd, PEXEC_FRAME_INITFAIL, c.err.msg);
		_exit(2);
	}
	send_message(out_fd, PEXEC_FRAME_READY, "");
	c.check = pexec__split_checker();
	if (!c.check)
		die("cannot check results");
	if (spans && !(c.fragment = pexec__split_mem("", 0, spans->name, spans->in_format)))
		die("cannot split spans");
	pexec__buf_init(&c.chunk);
	pexec__buf_init(&c.out.heap);
	pexec__buf_init(&c.bytes);
	pexec__buf_init(&c.item);
	pexec__buf_init(&c.fails);
	pexec__buf_init(&c.acks);
	while (read_chunk(&c, &h)) {
		if (h.type == PEXEC_FRAME_SPAN)
			run_span(&c, &h);
		else if (h.type == PEXEC_FRAME_WRITE)
			write_span(&c, &h);
		else
			run_chunk(&c, &h);
	}
	send_acks(&c);
	pexec__plugin_fini(d, c.state);
	fflush(stdout);
	fflush(stderr);
	pexec__buf_release(&c.chunk);
	pexec__buf_release(&c.out.heap);
	pexec__buf_release(&c.bytes);
	pexec__buf_release(&c.item);
	pexec__buf_release(&c.fails);
	pexec__split_free(c.check);
	pexec__split_free(c.fragment);
	pexec__buf_release(&c.acks);
	free(c.unwritten);
	_exit(0);
}
