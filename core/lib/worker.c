/*
 * worker.c - one item through the hooks, and the worker process loop.
 *
 * A worker reads a whole CHUNK, answers it with one RESULTS frame, and reads
 * the next: it blocks on both pipes, which is safe because the parent never
 * blocks on them (see pool.c).  The chunk's bytes stay untouched until its
 * last item is serialized, which is what lets a deserialize hook point into
 * them (the OWNERSHIP rule in pexec_plugin.h).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "util.h"
#include "worker.h"

int pexec__plugin_init(const pexec_descriptor *d, const char *config, void **state,
                       pexec_error *err)
{
	cJSON *tree = NULL;
	int rc;

	*state = NULL;
	if (!d->init)
		return 0;
	if (config) {
		tree = cJSON_Parse(config);
		if (!tree) {
			pexec__fail(err, PEXEC_EUSAGE, "--config is not valid JSON");
			return -1;
		}
	}
	err->msg[0] = '\0';
	rc = d->init(tree, state, err);
	cJSON_Delete(tree);
	if (rc && !err->msg[0])
		pexec__fail(err, PEXEC_EINIT, "init failed (no message)");
	return rc ? -1 : 0;
}

void pexec__plugin_fini(const pexec_descriptor *d, void *state)
{
	if (d->fini)
		d->fini(state);
}

/* Frees a value according to its kind (pexec_plugin.h, OWNERSHIP). */
static void value_free(const pexec_descriptor *d, void *state, void *value, int is_json)
{
	if (!value)
		return;
	if (is_json)
		cJSON_Delete(value);
	else if (d->free_value)
		d->free_value(state, value);
}

static int json_serialize(const cJSON *value, pexec_buf *out, pexec_error *err)
{
	char *text = cJSON_PrintUnformatted(value);
	int rc;

	if (!text) {
		pexec__fail(err, PEXEC_ESYS, "cannot print the result as JSON");
		return -1;
	}
	rc = pexec_buf_puts(out, text);
	free(text);
	if (rc)
		pexec__fail(err, PEXEC_ESYS, "out of memory");
	return rc;
}

static void set_stage(struct pexec__progress *progress, pexec_stage stage)
{
	if (progress)
		atomic_store_explicit(&progress->stage, stage, memory_order_relaxed);
}

int pexec__value_from_text(const pexec_descriptor *d, void *state, const char *data,
                           size_t len, void **value, pexec_error *err)
{
	if (d->deserialize)
		return d->deserialize(state, data, len, value, err) ? -1 : 0;
	*value = cJSON_ParseWithLength(data, len);
	if (!*value) {
		pexec__fail(err, PEXEC_EINPUT,
		            "cannot parse the item as JSON (cJSON allows %d levels of nesting)",
		            CJSON_NESTING_LIMIT);
		return -1;
	}
	return 0;
}

/* Deserialize and map: *in and *res are set (res may be in itself). */
static pexec_stage item_map(const pexec_descriptor *d, void *state, const char *data,
                            size_t len, void **in, void **res, pexec_error *err,
                            struct pexec__progress *progress)
{
	*in = *res = NULL;
	err->msg[0] = '\0';
	if (pexec__value_from_text(d, state, data, len, in, err))
		return PEXEC_STAGE_DESERIALIZE;
	set_stage(progress, PEXEC_STAGE_MAP);
	if (d->map(state, *in, res, err))
		return PEXEC_STAGE_MAP;
	return PEXEC_STAGE_NONE;
}

static void item_free(const pexec_descriptor *d, void *state, void *in, void *res)
{
	if (res != in)
		value_free(d, state, res, !d->serialize);
	value_free(d, state, in, !d->deserialize);
}

static pexec_stage failed(pexec_stage stage, pexec_error *err)
{
	if (!err->msg[0])
		pexec__fail(err, PEXEC_EITEM, "%s failed (no message)", pexec_stage_str(stage));
	return stage;
}

pexec_stage pexec__item_run(const pexec_descriptor *d, void *state, const char *data,
                            size_t len, pexec_buf *out, pexec_error *err,
                            struct pexec__progress *progress)
{
	size_t start = out->len;
	void *in, *res;
	pexec_stage stage = item_map(d, state, data, len, &in, &res, err, progress);
	int rc;

	if (stage != PEXEC_STAGE_NONE)
		goto fail;
	stage = PEXEC_STAGE_SERIALIZE;
	set_stage(progress, stage);
	if (!res)
		rc = pexec_buf_append(out, "null", 4);
	else if (!d->serialize)
		rc = json_serialize(res, out, err);
	else
		rc = d->serialize(state, res, out, err);
	if (rc)
		goto fail;
	if (out->len == start) {
		pexec__fail(err, PEXEC_EITEM, "serialize wrote nothing (a result is one JSON value)");
		goto fail;
	}
	if (out->len - start > PEXEC_RESULT_MAX) {
		pexec__fail(err, PEXEC_EITEM, "result of %zu bytes is larger than the 1 GiB limit",
		            out->len - start);
		goto fail;
	}
	item_free(d, state, in, res);
	return PEXEC_STAGE_NONE;
fail:
	out->len = start;
	item_free(d, state, in, res);
	return failed(stage, err);
}

int pexec__fold_start(const pexec_descriptor *d, void *state, void **acc, pexec_error *err)
{
	const char *text = d->reduce_initial ? d->reduce_initial : "null";

	err->msg[0] = '\0';
	*acc = NULL;
	if (!strcmp(text, "null"))
		return 0;
	if (pexec__value_from_text(d, state, text, strlen(text), acc, err)) {
		char why[PEXEC_ERROR_MAX];
		snprintf(why, sizeof(why), "%s", err->msg);
		pexec__fail(err, PEXEC_EUSAGE, "plugin '%s': its reduce_initial '%.80s' is not a "
		            "value it reads: %s", d->name, text, why);
		return -1;
	}
	return 0;
}

void pexec__fold_free(const pexec_descriptor *d, void *state, void *acc)
{
	value_free(d, state, acc, !d->serialize);
}

int pexec__fold_value(const pexec_descriptor *d, void *state, void **acc, void *v,
                      pexec_error *err)
{
	void *r = NULL;

	err->msg[0] = '\0';
	if (d->reduce(state, *acc, v, &r, err)) {
		if (!err->msg[0])
			pexec__fail(err, PEXEC_EITEM, "reduce failed (no message)");
		if (v != *acc)
			pexec__fold_free(d, state, v);
		return -1;
	}
	/* pexec owns a and b: whichever is not the result goes. */
	if (*acc != r)
		pexec__fold_free(d, state, *acc);
	if (v != r && v != *acc)
		pexec__fold_free(d, state, v);
	*acc = r;
	return 0;
}

int pexec__fold_text(const pexec_descriptor *d, void *state, void **acc, const char *text,
                     size_t len, pexec_error *err)
{
	void *v = NULL;

	err->msg[0] = '\0';
	if (len == 4 && !memcmp(text, "null", 4))
		return pexec__fold_value(d, state, acc, NULL, err);
	if (pexec__value_from_text(d, state, text, len, &v, err))
		return -1;
	return pexec__fold_value(d, state, acc, v, err);
}

int pexec__fold_finish(const pexec_descriptor *d, void *state, void **acc, pexec_buf *out,
                       pexec_error *err)
{
	size_t start = out->len;
	int rc;

	if (!*acc)
		rc = pexec_buf_append(out, "null", 4);
	else if (!d->serialize)
		rc = json_serialize(*acc, out, err);
	else
		rc = d->serialize(state, *acc, out, err);
	if (!rc && out->len == start) {
		pexec__fail(err, PEXEC_EITEM, "serialize wrote nothing (a result is one JSON value)");
		rc = -1;
	}
	if (rc)
		out->len = start;
	pexec__fold_free(d, state, *acc);
	*acc = NULL;
	return rc ? -1 : 0;
}

pexec_stage pexec__item_fold(const pexec_descriptor *d, void *state, const char *data,
                             size_t len, void **acc, pexec_error *err,
                             struct pexec__progress *progress)
{
	void *in, *res;
	pexec_stage stage = item_map(d, state, data, len, &in, &res, err, progress);

	if (stage != PEXEC_STAGE_NONE) {
		item_free(d, state, in, res);
		return failed(stage, err);
	}
	/* The result goes into the fold; the input goes, unless it is the result. */
	if (in != res)
		value_free(d, state, in, !d->deserialize);
	set_stage(progress, PEXEC_STAGE_REDUCE);
	if (pexec__fold_value(d, state, acc, res, err))
		return failed(PEXEC_STAGE_REDUCE, err);
	return PEXEC_STAGE_NONE;
}

/* Writes a frame with a message payload (INITFAIL). */
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

static void die(const char *what)
{
	/* The parent sees EOF and reports the worker lost; say why here. */
	fprintf(stderr, "pexec: worker %ld: %s: %s\n", (long)getpid(), what, strerror(errno));
	_exit(3);
}

/* Results being written: into the arena while they fit, else on the heap. */
struct results {
	pexec_buf buf;       /* what serialize hooks append to */
	pexec_buf heap;      /* the heap store, kept between frames */
	const struct pexec__arena *arena;
	struct pexec__progress *progress;
	uint64_t head;       /* arena bytes ever used by this worker */
	uint64_t start;      /* head where the current frame begins */
	size_t last_len;     /* the previous frame's size: the next is likely alike */
	int in_arena;
};

/* Runs below this are not worth starting a frame in. */
#define ARENA_MIN_RUN ((size_t)64 << 10)

/* grow() of a buffer in the arena: the frame moves to the heap. */
static int arena_spill(pexec_buf *buf, size_t need)
{
	struct results *r = buf->priv;

	r->heap.len = 0;
	if (pexec__buf_grow(&r->heap, buf->len + need))
		return -1;
	memcpy(r->heap.data, buf->data, buf->len);
	r->heap.len = buf->len;
	*buf = r->heap;
	r->in_arena = 0;
	return 0;
}

static void results_begin(struct results *r)
{
	const struct pexec__arena *a = r->arena;
	uint64_t tail = atomic_load_explicit(&r->progress->arena_tail, memory_order_acquire);
	size_t off, run, space, want = r->last_len + r->last_len / 2;

	if (want < ARENA_MIN_RUN)
		want = ARENA_MIN_RUN;
	r->in_arena = 0;
	if (a && a->base) {
		off = (size_t)(r->head % a->size);
		space = a->size - (size_t)(r->head - tail);
		run = a->size - off;
		if (run < want && space - run >= want) {
			/* Too little room before the end: start over at the
			 * beginning, leaving the end unused this round. */
			r->head += run;
			space -= run;
			off = 0;
			run = a->size;
		}
		if (run > space)
			run = space;
		if (run >= want) {
			r->buf = (pexec_buf){ .data = a->base + off, .cap = run,
			                      .grow = arena_spill, .priv = r };
			r->start = r->head;
			r->in_arena = 1;
			return;
		}
	}
	r->buf = r->heap;
	r->buf.len = 0;
}

/* Sends the finished frame: a notice for an arena frame, the bytes else. */
static int results_send(struct results *r, int fd)
{
	r->last_len = r->buf.len;
	if (r->in_arena) {
		char hdr[PEXEC_FRAME_HEADER_SIZE];
		pexec_buf notice = { .data = hdr, .cap = sizeof(hdr) };

		r->head = r->start + r->buf.len;
		pexec__frame_begin(&notice, PEXEC_FRAME_RESULTS_SHM, r->head);
		pexec__frame_end(&notice, 0, (uint32_t)r->buf.len);
		return pexec__write_full(fd, hdr, sizeof(hdr));
	}
	r->heap = r->buf;
	return pexec__write_full(fd, r->buf.data, r->buf.len);
}

void pexec__worker_main(const pexec_descriptor *d, const char *config, int in_fd, int out_fd,
                        struct pexec__progress *progress, const struct pexec__arena *arena,
                        int timed)
{
	struct pexec__frame_header h;
	char hdr[PEXEC_FRAME_HEADER_SIZE];
	pexec_buf chunk;
	struct results out = { .arena = arena, .progress = progress };
	pexec_buf *res = &out.buf;
	pexec_error err;
	void *state;
	uint64_t frames = 0;
	void *acc = NULL;
	int fold, fold_each;
	ssize_t n;

	if (pexec__plugin_init(d, config, &state, &err)) {
		send_message(out_fd, PEXEC_FRAME_INITFAIL, err.msg);
		_exit(2);
	}
	send_message(out_fd, PEXEC_FRAME_READY, "");
	pexec__buf_init(&chunk);
	pexec__buf_init(&out.heap);
	out.head = progress->arena_head;

	for (;;) {
		struct pexec__frame_cursor cur;
		const char *item;
		size_t len, at;
		uint32_t count = 0;
		uint64_t t0;
		int more;

		n = pexec__read_full(in_fd, hdr, sizeof(hdr));
		if (n == 0)
			break;
		if (n < 0)
			die("cannot read from pexec");
		if ((size_t)n < sizeof(hdr)) {
			errno = EPIPE;
			die("torn frame header");
		}
		if (pexec__frame_parse_header(hdr, &h, &err) || h.type != PEXEC_FRAME_CHUNK) {
			errno = EPROTO;
			die("bad frame from pexec");
		}
		chunk.len = 0;
		if (pexec_buf_reserve(&chunk, h.payload_len))
			die("cannot hold a chunk");
		n = pexec__read_full(in_fd, chunk.data, h.payload_len);
		if (n < 0 || (uint64_t)n != h.payload_len) {
			if (n >= 0)
				errno = EPIPE;
			die("cannot read a chunk");
		}
		chunk.len = h.payload_len;
		atomic_store_explicit(&progress->pos, 0, memory_order_relaxed);
		t0 = pexec__now_ns();
		atomic_store_explicit(&progress->frame_started, t0, memory_order_relaxed);
		atomic_store_explicit(&progress->frames, ++frames, memory_order_release);

		fold = (h.aux & PEXEC_CHUNK_FOLD) != 0;
		fold_each = (h.aux & PEXEC_CHUNK_FOLD_EACH) != 0;
		if (fold && pexec__fold_start(d, state, &acc, &err)) {
			errno = EINVAL;
			die(err.msg);
		}
		results_begin(&out);
		if (pexec__frame_begin(res, PEXEC_FRAME_RESULTS, 0))
			die("cannot hold results");
		cur.p = chunk.data;
		cur.end = chunk.data + chunk.len;
		while ((more = pexec__frame_next_item(&cur, &item, &len)) == 1) {
			pexec_stage stage;

			at = pexec__frame_record_begin(res);
			if (at == (size_t)-1)
				die("cannot hold results");
			atomic_store_explicit(&progress->pos, count, memory_order_relaxed);
			if (timed)
				atomic_store_explicit(&progress->started, pexec__now_ns(),
				                      memory_order_relaxed);
			atomic_store_explicit(&progress->stage, PEXEC_STAGE_DESERIALIZE,
			                      memory_order_release);
			if (fold) {
				stage = pexec__item_fold(d, state, item, len, &acc, &err, progress);
			} else if (fold_each) {
				void *one;
				if (pexec__fold_start(d, state, &one, &err)) {
					errno = EINVAL;
					die(err.msg);
				}
				stage = pexec__item_fold(d, state, item, len, &one, &err, progress);
				if (stage == PEXEC_STAGE_NONE &&
				    pexec__fold_finish(d, state, &one, res, &err))
					stage = PEXEC_STAGE_REDUCE;
				pexec__fold_free(d, state, one);
			} else {
				stage = pexec__item_run(d, state, item, len, res, &err, progress);
			}
			atomic_store_explicit(&progress->stage, PEXEC_STAGE_NONE, memory_order_release);
			if (stage != PEXEC_STAGE_NONE && pexec_buf_puts(res, err.msg))
				die("cannot hold results");
			pexec__frame_record_end(res, at, stage == PEXEC_STAGE_NONE, stage);
			count++;
		}
		if (more < 0 || count != h.count) {
			errno = EPROTO;
			die("malformed chunk from pexec");
		}
		if (fold) {
			/* The chunk's partial result, after its `count` records. */
			pexec_stage stage = PEXEC_STAGE_NONE;

			at = pexec__frame_record_begin(res);
			if (at == (size_t)-1)
				die("cannot hold results");
			if (pexec__fold_finish(d, state, &acc, res, &err)) {
				stage = PEXEC_STAGE_REDUCE;
				if (pexec_buf_puts(res, err.msg))
					die("cannot hold results");
			}
			pexec__frame_record_end(res, at, stage == PEXEC_STAGE_NONE, stage);
		}
		pexec__frame_end(res, 0, count);
		atomic_store_explicit(&progress->pos, count, memory_order_relaxed);
		pexec__frame_set_aux(res, 0, pexec__now_ns() - t0);
		/* What the plugin printed goes out before its results do. */
		fflush(stdout);
		if (results_send(&out, out_fd))
			die("cannot send results");
	}
	pexec__plugin_fini(d, state);
	fflush(stdout);
	fflush(stderr);
	pexec__buf_release(&chunk);
	pexec__buf_release(&out.heap);
	_exit(0);
}
