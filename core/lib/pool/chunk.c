/*
 * chunk.c - the pool's reorder window: a ring of `nslots` chunk slots,
 * chunks built into them from the source (sized by the moving average of
 * time per item), their results recorded as they come, and done chunks
 * handed to the sink in the collect phase: in input order unless
 * --unordered, by the batch path when every item of a chunk succeeded.
 *
 * A chunk normally answers whole, as one RESULTS frame.  Once a fault splits
 * it (fault.c), its results arrive item by item as records, kept until
 * every item has one; the items still due wait in the queue of tasks to
 * send again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "internal.h"
#include "util.h"

/* ---- the window ---- */

int pexec__pool_work_remains(const struct pool *p)
{
	return !p->source_done || p->nbusy > 0;
}

static struct chunk *slot_for(struct pool *p, uint64_t seq)
{
	return &p->slots[seq % p->nslots];
}

/* The bytes the window's slots hold, kept or in use. */
static size_t window_bytes(const struct pool *p)
{
	size_t sum = 0;

	for (unsigned i = 0; i < p->nslots; i++)
		sum += p->slots[i].items.cap + p->slots[i].results.cap;
	return sum;
}

int pexec__pool_window_has_room(const struct pool *p)
{
	uint64_t used = p->opts->unordered ? p->nbusy : p->next_seq - p->emit_seq;

	if (used >= p->nslots)
		return 0;
	return used < p->window_base || window_bytes(p) < WINDOW_BYTES;
}

static struct chunk *slot_take(struct pool *p)
{
	struct chunk *c = slot_for(p, p->next_seq);

	/* Ordered mode guarantees this slot is free; unordered mode may have to
	 * look further, past chunks that are still running. */
	for (unsigned i = 0; c->state != CHUNK_FREE && i < p->nslots; i++)
		c = &p->slots[(p->next_seq + i) % p->nslots];
	return c->state == CHUNK_FREE ? c : NULL;
}

static void slot_release(struct pool *p, struct chunk *c)
{
	if (c->arena_owner) {
		pexec__arena_release(c->arena_owner, c->arena_frame);
		c->arena_owner = NULL;
	}
	c->state = CHUNK_FREE;
	c->items.len = 0;
	c->results.len = 0;
	c->split = 0;
	c->span = 0;
	p->nbusy--;
}

/* ---- building and splitting chunks ---- */

/* The most items a chunk may have.  A span's items pass through the parent
 * as one message whatever their number, so a span is bounded by its results
 * alone: about SPAN_OUT_TARGET bytes of them, which the worker's arena holds
 * (a result frame bigger than the arena's free room comes through the pipe,
 * a copy the parent pays for). */
static double max_items(const struct pool *p)
{
	double n;

	if (!p->spans || p->out_per_item <= 0)
		return CHUNK_MAX_ITEMS;
	n = SPAN_OUT_TARGET / p->out_per_item;
	return n < CHUNK_MAX_ITEMS ? CHUNK_MAX_ITEMS : n > SPAN_MAX_ITEMS ? SPAN_MAX_ITEMS : n;
}

static uint32_t next_chunk_items(struct pool *p)
{
	double want, most;

	if (p->opts->chunksize)
		return p->opts->chunksize > CHUNK_MAX_ITEMS * 16u ? CHUNK_MAX_ITEMS * 16u
		                                                  : (uint32_t)p->opts->chunksize;
	if (p->item_ns <= 0)
		return p->chunk_items;
	want = CHUNK_TARGET_NS / p->item_ns;
	if (want < 1)
		want = 1;
	if (want > (double)p->chunk_items * CHUNK_GROWTH)
		want = (double)p->chunk_items * CHUNK_GROWTH;
	most = max_items(p);
	if (want > most)
		want = most;
	p->chunk_items = (uint32_t)want;
	return p->chunk_items;
}

/* A chunk just built takes its place in the window. */
static struct chunk *chunk_open(struct pool *p, struct chunk *c, uint32_t count)
{
	c->state = CHUNK_OPEN;
	c->seq = p->next_seq++;
	c->first = p->next_index;
	c->split = 0;
	c->results.len = 0;
	p->next_index += count;
	p->stats->items += count;
	p->nbusy++;
	return c;
}

/* Builds the next chunk from the source into a free slot, at most `limit`
 * items.  Returns the chunk, or NULL when there is nothing to send (end of
 * input, or an error that set p->stop). */
struct chunk *pexec__pool_chunk_build(struct pool *p, uint64_t limit)
{
	uint32_t want = next_chunk_items(p), count = 0;
	struct chunk *c = slot_take(p);
	const char *data;
	size_t len;
	int rc = 0;

	if (!c)
		return NULL;
	if (limit && want > limit)
		want = (uint32_t)limit;
	if (p->spans) {
		if (!pexec__span_build(p, c, want))
			return NULL;
		return chunk_open(p, c, c->count);
	}
	c->items.len = 0;
	/* Under --reduce, a chunk sent whole comes back folded (frame.h). */
	if (pexec__frame_begin(&c->items, PEXEC_FRAME_CHUNK,
	                       p->next_index | (p->opts->reduce ? PEXEC_CHUNK_FOLD : 0)))
		goto nomem;
	while (count < want && c->items.len < CHUNK_BYTES + PEXEC_FRAME_HEADER_SIZE) {
		rc = p->next(p->next_ctx, &data, &len, p->err);
		if (rc == PEXEC_NEXT_BOUNDARY && count == 0)
			continue;
		if (rc != 1)
			break;
		if (pexec__frame_put_item(&c->items, data, len))
			goto nomem;
		count++;
	}
	if (rc < 0) {
		p->stop = (pexec_code)-rc;
		p->source_done = 1;
	} else if (rc == 0) {
		p->source_done = 1;
	} else if (rc == PEXEC_NEXT_WAIT) {
		if (p->opts->source_fd <= 0)
			p->stop = pexec__fail(p->err, PEXEC_EUSAGE,
			                      "the source asked to wait but gave no source_fd");
		p->source_wait = 1;
	}
	if (count == 0)
		return NULL;
	pexec__frame_end(&c->items, 0, count);
	c->count = c->pending = count;
	return chunk_open(p, c, count);
nomem:
	p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory building a chunk");
	return NULL;
}

/* Readies a chunk for results that arrive item by item: the per-item arrays,
 * and the offset of every item's entry. */
int pexec__pool_chunk_split(struct pool *p, struct chunk *c)
{
	struct pexec__frame_cursor cur;
	const char *data;
	size_t len;

	if (c->split)
		return 0;
	if (c->span && pexec__span_to_items(p, c))
		return -1;
	if (c->arrays_cap < c->count) {
		size_t *io = realloc(c->item_off, c->count * sizeof(*io));
		size_t *ro = io ? realloc(c->rec_off, c->count * sizeof(*ro)) : NULL;
		unsigned *tr = ro ? realloc(c->tries, c->count * sizeof(*tr)) : NULL;
		struct item_meta *me = tr ? realloc(c->meta, c->count * sizeof(*me)) : NULL;
		if (io)
			c->item_off = io;
		if (ro)
			c->rec_off = ro;
		if (tr)
			c->tries = tr;
		if (!me) {
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
			return -1;
		}
		c->meta = me;
		c->arrays_cap = c->count;
	}
	cur.p = c->items.data + PEXEC_FRAME_HEADER_SIZE;
	cur.end = c->items.data + c->items.len;
	for (uint32_t i = 0; i < c->count; i++) {
		c->item_off[i] = (size_t)(cur.p - c->items.data);
		c->rec_off[i] = SIZE_MAX;
		c->tries[i] = 0;
		c->meta[i] = (struct item_meta){ 0, 0, -1 };
		pexec__frame_next_item(&cur, &data, &len);
	}
	c->results.len = 0;
	c->split = 1;
	return 0;
}

/* The bytes of item `i` of a split chunk, valid while its items are. */
static void chunk_item(const struct chunk *c, uint32_t i, const char **data, size_t *len)
{
	struct pexec__frame_cursor cur = {
		.p = c->items.data + c->item_off[i], .end = c->items.data + c->items.len,
	};
	pexec__frame_next_item(&cur, data, len);
}

/* Stores one record (result or failure) for item `i` of a split chunk. */
int pexec__pool_chunk_put_record(struct pool *p, struct chunk *c, uint32_t i, int ok,
                                 pexec_stage stage, const char *data, size_t len)
{
	size_t at = pexec__frame_record_begin(&c->results);

	if (at == (size_t)-1 || pexec_buf_append(&c->results, data, len)) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory keeping results");
		return -1;
	}
	pexec__frame_record_end(&c->results, at, ok, stage);
	c->rec_off[i] = at;
	c->pending--;
	return 0;
}

/* ---- emitting ---- */

static void emit_one(struct pool *p, pexec_result *r)
{
	p->stats->by_status[r->status]++;
	if (r->ok) {
		p->stats->ok++;
		r->message = NULL;
	} else {
		/* Messages travel without their NUL; the pool's copy with one
		 * outlives the call, as the result's pointers must. */
		snprintf(p->message, sizeof(p->message), "%.*s", (int)r->len, r->data);
		r->message = p->message;
		p->stats->failed++;
	}
	if (p->sink) {
		int rc = p->sink(p->sink_ctx, r, p->err);
		if (rc < 0)
			p->stop = (pexec_code)-rc;
	}
	if (!r->ok && p->opts->fail_fast && !p->stop)
		p->stop = pexec__fail(p->err, PEXEC_ESTOPPED,
		                      "stopped at the first failure (--fail-fast): item %llu",
		                      (unsigned long long)r->index);
	p->emitted = 1;
}

/* One result of a span chunk a fault split, handed over as a whole span's
 * would be: a failure to spans->failed, and every result laid out. */
static void span_record(struct pool *p, pexec_result *r, uint32_t *written, uint64_t *hash)
{
	p->stats->by_status[r->status]++;
	if (r->ok) {
		p->stats->ok++;
	} else {
		int rc;
		snprintf(p->message, sizeof(p->message), "%.*s", (int)r->len, r->data);
		r->message = p->message;
		p->stats->failed++;
		if ((rc = p->spans->failed(p->spans->ctx, r, p->err)) < 0)
			p->stop = (pexec_code)-rc;
	}
	if (pexec__span_lay_out(p, r, written, hash))
		p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
	p->emitted = 1;
}

/* The batch path: a chunk of successes goes to batch_sink in one call.
 * Returns 1 if it did, 0 if the chunk needs the item-by-item path. */
static int chunk_emit_batch(struct pool *p, struct chunk *c)
{
	struct pexec__frame_cursor recs = {
		.p = c->res + PEXEC_FRAME_HEADER_SIZE, .end = c->res + c->res_len,
	};
	struct pexec__frame_cursor items = {
		.p = c->items.data + PEXEC_FRAME_HEADER_SIZE, .end = c->items.data + c->items.len,
	};
	pexec_stage stage;
	const char *data;
	size_t len;
	int byte, rc;

	if (c->split || !p->opts->batch_sink || p->opts->reduce)
		return 0;
	if (p->iov_cap < c->count) {
		struct iovec *t = realloc(p->texts, c->count * sizeof(*t));
		struct iovec *in = t ? realloc(p->inputs, c->count * sizeof(*in)) : NULL;
		if (t)
			p->texts = t;
		if (!in)
			return 0;
		p->inputs = in;
		p->iov_cap = c->count;
	}
	for (uint32_t i = 0; i < c->count; i++) {
		if (pexec__frame_next_record(&recs, &data, &len, &byte, &stage) != 1 || byte != 1)
			return 0;
		p->texts[i] = (struct iovec){ (void *)data, len };
	}
	if (p->opts->result_input)
		for (uint32_t i = 0; i < c->count; i++) {
			if (pexec__frame_next_item(&items, &data, &len) != 1)
				return 0;
			p->inputs[i] = (struct iovec){ (void *)data, len };
		}
	rc = p->opts->batch_sink(p->opts->batch_ctx, c->first, c->count, p->texts,
	                         p->opts->result_input ? p->inputs : NULL, p->err);
	if (rc < 0)
		p->stop = (pexec_code)-rc;
	p->stats->ok += c->count;
	p->stats->by_status[PEXEC_STATUS_OK] += c->count;
	p->emitted = 1;
	slot_release(p, c);
	return 1;
}

/* Folds a partial result into the run's value (--reduce), in input order. */
static void fold(struct pool *p, uint32_t items, const char *data, size_t len)
{
	int rc = p->fold(p->fold_ctx, items, data, len, p->err);

	if (rc < 0)
		p->stop = (pexec_code)-rc;
}

/* Hands a done chunk's results to the sink and frees its slot. */
static void chunk_emit(struct pool *p, struct chunk *c)
{
	struct pexec__frame_cursor items = {
		.p = c->items.data + PEXEC_FRAME_HEADER_SIZE, .end = c->items.data + c->items.len,
	};
	const char *res = c->split ? c->results.data : c->res;
	size_t res_len = c->split ? c->results.len : c->res_len;
	struct pexec__frame_cursor recs = {
		.p = res + PEXEC_FRAME_HEADER_SIZE, .end = res + res_len,
	};
	uint32_t items_at = 0; /* the item `items` points at */
	uint32_t folded = 0;   /* successes a whole chunk's partial stands for */
	uint32_t written = 0;  /* spans: results laid out again */
	uint64_t hash = 0;

	if (c->span) {
		pexec__span_emit(p, c);
		slot_release(p, c);
		return;
	}
	if (chunk_emit_batch(p, c))
		return;
	p->layout.len = 0;
	for (uint32_t i = 0; i < c->count && !p->stop; i++) {
		pexec_result r = { .index = c->first + i, .attempts = 1, .pid = c->whole.pid,
		                   .started = c->whole.started + i * c->whole.seconds,
		                   .seconds = c->whole.seconds };
		int byte;

		if (c->split) {
			/* Records of a split chunk came in any order. */
			recs.p = res + c->rec_off[i];
			r.attempts = c->tries[i];
			r.pid = c->meta[i].pid;
			r.started = c->meta[i].started;
			r.seconds = c->meta[i].seconds;
		}
		if (pexec__frame_next_record(&recs, &r.data, &r.len, &byte, &r.stage) != 1) {
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "internal error: torn results");
			break;
		}
		r.status = pexec__record_status((uint8_t)byte);
		r.ok = r.status == PEXEC_STATUS_OK;
		if (!r.ok || p->opts->result_input || (p->spans && p->spans->hash)) {
			/* The input goes with a failure (or when asked): it costs a walk. */
			if (c->split) {
				chunk_item(c, i, &r.input, &r.input_len);
			} else {
				while (items_at <= i &&
				       pexec__frame_next_item(&items, &r.input, &r.input_len) == 1)
					items_at++;
			}
		}
		if (p->opts->reduce && r.ok) {
			/* Folded, not handed over: a split chunk's items came back
			 * one by one, and are folded so, in order. */
			p->stats->ok++;
			p->stats->by_status[PEXEC_STATUS_OK]++;
			if (c->split)
				fold(p, 1, r.data, r.len);
			folded++;
			continue;
		}
		if (p->spans)
			span_record(p, &r, &written, &hash);
		else
			emit_one(p, &r);
	}
	if (p->spans && !p->stop) {
		int rc = pexec__span_put_layout(p, c, written, hash);
		if (rc < 0)
			p->stop = (pexec_code)-rc;
	}
	if (p->opts->reduce && !c->split && !p->stop) {
		/* A chunk sent whole: its partial result follows its records. */
		const char *data;
		size_t len;
		pexec_stage stage;
		int byte;

		recs.p = c->res + PEXEC_FRAME_HEADER_SIZE;
		for (uint32_t i = 0; i <= c->count; i++)
			if (pexec__frame_next_record(&recs, &data, &len, &byte, &stage) != 1) {
				p->stop = pexec__fail(p->err, PEXEC_ESYS,
				                      "protocol error: a folded chunk without its result");
				break;
			}
		if (!p->stop && byte != 1)
			p->stop = pexec__fail(p->err, PEXEC_ESTOPPED, "reduce failed in a worker: %.*s",
			                      (int)len, data);
		else if (!p->stop)
			fold(p, folded, data, len);
	}
	slot_release(p, c);
}

void pexec__pool_chunk_check_done(struct pool *p, struct chunk *c)
{
	if (c->pending == 0 && c->state == CHUNK_OPEN) {
		c->state = CHUNK_DONE;
		p->ndone++;
	}
}

/* --unordered: a chunk whose input is malformed stops the run only once no
 * chunk before it is left (one of them may hold an earlier error). */
static int before_all_left(const struct pool *p, const struct chunk *c)
{
	for (unsigned i = 0; i < p->nslots; i++)
		if (p->slots[i].state != CHUNK_FREE && p->slots[i].seq < c->seq)
			return 0;
	return 1;
}

void pexec__pool_collect(struct pool *p)
{
	if (p->opts->unordered) {
		for (unsigned i = 0; i < p->nslots && p->ndone > 0 && !p->stop; i++) {
			struct chunk *c = &p->slots[i];
			if (c->state == CHUNK_DONE && (!c->input_error || before_all_left(p, c))) {
				p->ndone--;
				chunk_emit(p, c);
			}
		}
		return;
	}
	while (!p->stop && p->emit_seq < p->next_seq) {
		struct chunk *c = slot_for(p, p->emit_seq);
		if (c->state != CHUNK_DONE || c->seq != p->emit_seq)
			break;
		p->ndone--;
		chunk_emit(p, c);
		p->emit_seq++;
	}
}

/* ---- tasks: whole chunks, or some items of one ---- */

void pexec__pool_task_release(struct task *t)
{
	free(t->pos);
	pexec__buf_release(&t->frame);
	memset(t, 0, sizeof(*t));
}

const char *pexec__pool_task_data(const struct task *t)
{
	return t->pos ? t->frame.data : t->chunk->items.data;
}

size_t pexec__pool_task_len(const struct task *t)
{
	return t->pos ? t->frame.len : t->chunk->items.len;
}

static int queue_push(struct pool *p, struct task *t)
{
	if (p->queue_len == p->queue_cap) {
		size_t cap = p->queue_cap ? 2 * p->queue_cap : 16;
		struct task *q = realloc(p->queue, cap * sizeof(*q));
		if (!q) {
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
			return -1;
		}
		p->queue = q;
		p->queue_cap = cap;
	}
	p->queue[p->queue_len++] = *t;
	return 0;
}

void pexec__pool_requeue(struct pool *p, struct chunk *c, const uint32_t *pos, uint32_t n,
                         int one_by_one)
{
	struct task t = { .chunk = c };

	for (uint32_t i = 0; i < n && !p->stop; i += t.n) {
		t.n = one_by_one ? 1 : n;
		t.isolating = one_by_one;
		t.pos = malloc(t.n * sizeof(*t.pos));
		if (!t.pos) {
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
			return;
		}
		memcpy(t.pos, pos + i, t.n * sizeof(*t.pos));
		pexec__buf_init(&t.frame);
		if (queue_push(p, &t))
			free(t.pos);
	}
}

/* Builds the CHUNK frame of a task made of some items of a chunk. */
static int task_build_frame(struct pool *p, struct task *t)
{
	const char *data;
	size_t len;

	t->frame.len = 0;
	if (pexec__frame_begin(&t->frame, PEXEC_FRAME_CHUNK,
	                       (t->chunk->first + t->pos[0]) |
	                               (p->opts->reduce ? PEXEC_CHUNK_FOLD_EACH : 0)))
		goto nomem;
	for (uint32_t i = 0; i < t->n; i++) {
		chunk_item(t->chunk, t->pos[i], &data, &len);
		if (pexec__frame_put_item(&t->frame, data, len))
			goto nomem;
	}
	pexec__frame_end(&t->frame, 0, t->n);
	return 0;
nomem:
	p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
	return -1;
}

int pexec__pool_requeued(struct pool *p, struct task *t)
{
	if (p->queue_len == 0 || p->stop)
		return 0;
	*t = p->queue[0];
	memmove(p->queue, p->queue + 1, (p->queue_len - 1) * sizeof(*p->queue));
	p->queue_len--;
	if (task_build_frame(p, t) == 0)
		return 1;
	pexec__pool_task_release(t);
	return 0;
}
