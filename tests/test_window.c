/*
 * test_window.c - the pool's reorder window (core/lib/pool/chunk.c), driven
 * by hand through core/lib/pool/internal.h: a struct pool with no workers,
 * chunks built from a source of items the test gives, completed out of
 * order as a worker's answer would complete them (a RESULTS frame in the
 * chunk, nothing pending), and the collect phase watched through a sink that
 * records what it got.
 *
 * Item i is the text of the number i; its result, when it succeeds, is the
 * JSON string "r<i>", and when it fails, the message "bad <i>".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "frame.h"
#include "helpers.h"
#include "pool/internal.h"
#include "util.h"

#define MAX_ITEMS 512
#define MAX_GOT 512

/* ---- the source ---- */

struct source {
	char *texts[MAX_ITEMS];
	size_t n, at;
	size_t error_at;    /* -PEXEC_EINPUT instead of this item; SIZE_MAX: never */
	size_t boundary_at; /* PEXEC_NEXT_BOUNDARY once before this item; SIZE_MAX: never */
	int boundary_said;
};

static int source_next(void *ctx, const char **data, size_t *len, pexec_error *err)
{
	struct source *s = ctx;

	if (s->at == s->error_at)
		return -(int)pexec__fail(err, PEXEC_EINPUT, "bad input at item %zu", s->at);
	if (s->at == s->boundary_at && !s->boundary_said) {
		s->boundary_said = 1;
		return PEXEC_NEXT_BOUNDARY;
	}
	if (s->at == s->n)
		return 0;
	*data = s->texts[s->at];
	*len = strlen(s->texts[s->at]);
	s->at++;
	return 1;
}

/* ---- the sink ---- */

struct got {
	uint64_t index;
	int ok;
	pexec_status status;
	pexec_stage stage;
	unsigned attempts;
	char *text;    /* the result, or NULL */
	char *message; /* a failure's message, or NULL */
	char *input;   /* the input handed over, or NULL */
};

struct batch {
	uint64_t first;
	uint32_t count;
	char *texts;   /* the texts, joined by ' ' */
	char *inputs;  /* the same for the inputs; NULL when none were given */
};

struct folded {
	uint32_t items;
	char *text;
};

struct window {
	struct pool p;
	pexec_opts opts;
	pexec_stats stats;
	pexec_error err;
	struct source src;
	struct got got[MAX_GOT];
	size_t ngot;
	struct batch batches[MAX_GOT];
	size_t nbatches;
	struct folded folds[MAX_GOT];
	size_t nfolds;
};

static char *copy_of(const char *data, size_t len)
{
	char *s = data ? strndup(data, len) : NULL;

	cr_assert(s || !data, "out of memory");
	return s;
}

static int record_sink(void *ctx, const pexec_result *r, pexec_error *err)
{
	struct window *w = ctx;
	struct got *g;

	(void)err;
	if (!r)
		return 0;
	cr_assert_lt(w->ngot, MAX_GOT);
	g = &w->got[w->ngot++];
	*g = (struct got){ .index = r->index, .ok = r->ok, .status = r->status,
	                   .stage = r->stage, .attempts = r->attempts };
	if (r->ok)
		g->text = copy_of(r->data, r->len);
	else
		g->message = copy_of(r->message, r->message ? strlen(r->message) : 0);
	g->input = copy_of(r->input, r->input_len);
	return 0;
}

static char *joined(const struct iovec *v, uint32_t n)
{
	char *s = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&s, &len);

	cr_assert_not_null(f);
	for (uint32_t i = 0; i < n; i++)
		fprintf(f, "%s%.*s", i ? " " : "", (int)v[i].iov_len, (const char *)v[i].iov_base);
	cr_assert_eq(fclose(f), 0);
	return s;
}

static int record_batch(void *ctx, uint64_t first, uint32_t count, const struct iovec *texts,
                        const struct iovec *inputs, pexec_error *err)
{
	struct window *w = ctx;
	struct batch *b;

	(void)err;
	cr_assert_lt(w->nbatches, MAX_GOT);
	b = &w->batches[w->nbatches++];
	b->first = first;
	b->count = count;
	b->texts = joined(texts, count);
	b->inputs = inputs ? joined(inputs, count) : NULL;
	return 0;
}

static int record_fold(void *ctx, uint32_t items, const char *data, size_t len, pexec_error *err)
{
	struct window *w = ctx;

	(void)err;
	cr_assert_lt(w->nfolds, MAX_GOT);
	w->folds[w->nfolds++] = (struct folded){ items, copy_of(data, len) };
	return 0;
}

/* ---- the pool, by hand ---- */

/* A pool of `nslots` chunk slots over `n` items, as loop.c's setup leaves
 * it (but with no workers). */
static void window_init(struct window *w, const pexec_opts *opts, unsigned nslots, size_t n)
{
	memset(w, 0, sizeof(*w));
	w->opts = *opts;
	cr_assert_leq(n, MAX_ITEMS);
	w->src.n = n;
	w->src.error_at = w->src.boundary_at = SIZE_MAX;
	for (size_t i = 0; i < n; i++)
		cr_assert_geq(asprintf(&w->src.texts[i], "%zu", i), 0);
	w->p = (struct pool){
		.opts = &w->opts, .stats = &w->stats, .err = &w->err,
		.next = source_next, .next_ctx = &w->src,
		.sink = record_sink, .sink_ctx = w,
		.fold = record_fold, .fold_ctx = w,
		.chunk_items = 1, .nslots = nslots,
	};
	w->p.slots = calloc(nslots, sizeof(*w->p.slots));
	cr_assert_not_null(w->p.slots);
	for (unsigned i = 0; i < nslots; i++) {
		pexec__buf_init(&w->p.slots[i].items);
		pexec__buf_init(&w->p.slots[i].results);
	}
}

static void window_release(struct window *w)
{
	for (unsigned i = 0; i < w->p.nslots; i++) {
		struct chunk *c = &w->p.slots[i];
		pexec__buf_release(&c->items);
		pexec__buf_release(&c->results);
		free(c->item_off);
		free(c->rec_off);
		free(c->tries);
		free(c->meta);
	}
	for (size_t i = 0; i < w->p.queue_len; i++)
		pexec__pool_task_release(&w->p.queue[i]);
	free(w->p.queue);
	free(w->p.slots);
	free(w->p.texts);
	free(w->p.inputs);
	for (size_t i = 0; i < w->src.n; i++)
		free(w->src.texts[i]);
	for (size_t i = 0; i < w->ngot; i++) {
		free(w->got[i].text);
		free(w->got[i].message);
		free(w->got[i].input);
	}
	for (size_t i = 0; i < w->nbatches; i++) {
		free(w->batches[i].texts);
		free(w->batches[i].inputs);
	}
	for (size_t i = 0; i < w->nfolds; i++)
		free(w->folds[i].text);
}

static struct chunk *build(struct window *w)
{
	struct chunk *c = pexec__pool_chunk_build(&w->p, 0);

	cr_assert_not_null(c, "no chunk built: %s", w->p.stop ? w->err.msg : "(no error)");
	cr_assert_eq(w->p.stop, PEXEC_OK, "%s", w->err.msg);
	return c;
}

/* The bytes of item `pos` of a chunk's CHUNK frame. */
static void chunk_item_at(const struct chunk *c, uint32_t pos, const char **data, size_t *len)
{
	struct pexec__frame_cursor cur = {
		.p = c->items.data + PEXEC_FRAME_HEADER_SIZE, .end = c->items.data + c->items.len,
	};

	for (uint32_t i = 0; i <= pos; i++)
		cr_assert_eq(pexec__frame_next_item(&cur, data, len), 1, "item %u of the chunk", i);
}

/* The aux field of a chunk's CHUNK frame: its first index and flags. */
static uint64_t chunk_aux(const struct chunk *c)
{
	struct pexec__frame_header h;
	pexec_error err;

	cr_assert_eq(pexec__frame_parse_header(c->items.data, &h, &err), 0, "%s", err.msg);
	cr_assert_eq(h.type, PEXEC_FRAME_CHUNK);
	return h.aux;
}

static int failing(uint64_t index, const uint64_t *fails, size_t nfails)
{
	for (size_t i = 0; i < nfails; i++)
		if (fails[i] == index)
			return 1;
	return 0;
}

/* Appends one record to `b`: a result text (byte 1) or a message. */
static void put_record(pexec_buf *b, int byte, pexec_stage stage, const char *text)
{
	size_t at = pexec__frame_record_begin(b);

	cr_assert_neq(at, (size_t)-1);
	cr_assert_eq(pexec_buf_puts(b, text), 0);
	pexec__frame_record_end(b, at, byte, stage);
}

/* What a worker's whole answer does to a chunk: the RESULTS frame in
 * c->results, nothing pending.  Items whose index is in `fails` fail in
 * map; the others succeed.  With `partial`, the frame is a folded one
 * (PEXEC_CHUNK_FOLD): empty texts for successes, then the partial. */
static void answer(struct window *w, struct chunk *c, const uint64_t *fails, size_t nfails,
                   const char *partial)
{
	char text[64];

	c->results.len = 0;
	cr_assert_eq(pexec__frame_begin(&c->results, PEXEC_FRAME_RESULTS, 0), 0);
	for (uint32_t i = 0; i < c->count; i++) {
		uint64_t index = c->first + i;

		if (failing(index, fails, nfails)) {
			snprintf(text, sizeof(text), "bad %llu", (unsigned long long)index);
			put_record(&c->results, 0, PEXEC_STAGE_MAP, text);
		} else if (partial) {
			put_record(&c->results, 1, PEXEC_STAGE_NONE, "");
		} else {
			snprintf(text, sizeof(text), "\"r%llu\"", (unsigned long long)index);
			put_record(&c->results, 1, PEXEC_STAGE_NONE, text);
		}
	}
	if (partial)
		put_record(&c->results, 1, PEXEC_STAGE_NONE, partial);
	pexec__frame_end(&c->results, 0, c->count);
	c->res = c->results.data;
	c->res_len = c->results.len;
	c->pending = 0;
	pexec__pool_chunk_check_done(&w->p, c);
}

static void answer_ok(struct window *w, struct chunk *c)
{
	answer(w, c, NULL, 0, NULL);
}

/* The sink got exactly the items `want` (in that order), each with its own
 * result or, for those in `fails`, its failure in map. */
static void expect_got(const struct window *w, const uint64_t *want, size_t n,
                       const uint64_t *fails, size_t nfails)
{
	char text[64], input[32];

	cr_assert_eq(w->ngot, n, "the sink got %zu results, want %zu", w->ngot, n);
	for (size_t i = 0; i < n; i++) {
		const struct got *g = &w->got[i];

		cr_expect_eq(g->index, want[i], "result %zu is item %llu, want %llu", i,
		             (unsigned long long)g->index, (unsigned long long)want[i]);
		if (failing(g->index, fails, nfails)) {
			snprintf(text, sizeof(text), "bad %llu", (unsigned long long)g->index);
			snprintf(input, sizeof(input), "%llu", (unsigned long long)g->index);
			cr_expect_not(g->ok, "item %llu", (unsigned long long)g->index);
			cr_expect_eq(g->status, PEXEC_STATUS_ERROR);
			cr_expect_eq(g->stage, PEXEC_STAGE_MAP);
			cr_expect_str_eq(g->message ? g->message : "(none)", text);
			cr_expect_str_eq(g->input ? g->input : "(none)", input,
			                 "a failure goes with its input");
		} else {
			snprintf(text, sizeof(text), "\"r%llu\"", (unsigned long long)g->index);
			cr_expect(g->ok, "item %llu: %s", (unsigned long long)g->index, g->message);
			cr_expect_eq(g->status, PEXEC_STATUS_OK);
			cr_expect_str_eq(g->text ? g->text : "(none)", text);
		}
	}
}

static void expect_all_free(const struct window *w)
{
	cr_expect_eq(w->p.nbusy, 0, "%u slots still busy", w->p.nbusy);
	cr_expect_eq(w->p.ndone, 0, "%u chunks done, not emitted", w->p.ndone);
	for (unsigned i = 0; i < w->p.nslots; i++)
		cr_expect_eq(w->p.slots[i].state, CHUNK_FREE, "slot %u", i);
}

/* ---- ordered and unordered ---- */

Test(window, ordered_hands_over_in_input_order_once_the_head_is_done)
{
	static const uint64_t all[] = { 0, 1, 2, 3, 4, 5 };
	struct window w;
	struct chunk *c[3];

	window_init(&w, &(pexec_opts){ .chunksize = 2 }, 8, 6);
	for (int i = 0; i < 3; i++)
		c[i] = build(&w);
	cr_expect(!pexec__pool_chunk_build(&w.p, 0), "a chunk past the end of the input");
	cr_expect(w.p.source_done);
	answer_ok(&w, c[2]);
	pexec__pool_collect(&w.p);
	cr_expect_eq(w.ngot, 0, "the last chunk went out before the first");
	answer_ok(&w, c[1]);
	pexec__pool_collect(&w.p);
	cr_expect_eq(w.ngot, 0, "the second chunk went out before the first");
	cr_expect_eq(w.p.ndone, 2);
	cr_expect(pexec__pool_work_remains(&w.p));

	/* A chunk with an item still pending is not done. */
	c[0]->pending = 1;
	pexec__pool_chunk_check_done(&w.p, c[0]);
	cr_expect_eq(c[0]->state, CHUNK_OPEN);
	answer_ok(&w, c[0]);
	pexec__pool_collect(&w.p);
	expect_got(&w, all, COUNT(all), NULL, 0);
	expect_all_free(&w);
	cr_expect_eq(w.p.emit_seq, 3);
	cr_expect_not(pexec__pool_work_remains(&w.p));
	cr_expect_eq(w.stats.items, 6);
	cr_expect_eq(w.stats.ok, 6);
	cr_expect_eq(w.stats.by_status[PEXEC_STATUS_OK], 6);
	window_release(&w);
}

Test(window, unordered_hands_over_each_chunk_as_it_is_done)
{
	static const uint64_t want[] = { 4, 5, 0, 1, 2, 3 };
	struct window w;
	struct chunk *c[3];

	window_init(&w, &(pexec_opts){ .chunksize = 2, .unordered = 1 }, 8, 6);
	for (int i = 0; i < 3; i++)
		c[i] = build(&w);
	answer_ok(&w, c[2]);
	pexec__pool_collect(&w.p);
	cr_expect_eq(w.ngot, 2, "a done chunk waited for the ones before it");
	answer_ok(&w, c[0]);
	pexec__pool_collect(&w.p);
	answer_ok(&w, c[1]);
	pexec__pool_collect(&w.p);
	expect_got(&w, want, COUNT(want), NULL, 0);
	expect_all_free(&w);
	window_release(&w);
}

Test(window, refuses_a_new_chunk_when_full)
{
	struct window w;
	struct chunk *c[3], *next;

	window_init(&w, &(pexec_opts){ .chunksize = 1 }, 3, 10);
	for (int i = 0; i < 3; i++) {
		cr_expect(pexec__pool_window_has_room(&w.p), "no room for chunk %d of 3", i);
		c[i] = build(&w);
	}
	cr_expect_not(pexec__pool_window_has_room(&w.p), "room for a 4th chunk in 3 slots");
	cr_expect_null(pexec__pool_chunk_build(&w.p, 0), "a chunk built into a full window");
	cr_expect_eq(w.src.at, 3, "the source was read for a chunk with no slot");

	/* A done chunk behind a running head frees nothing in order. */
	answer_ok(&w, c[1]);
	pexec__pool_collect(&w.p);
	cr_expect_not(pexec__pool_window_has_room(&w.p), "room while the head still runs");

	/* The head done: two chunks out, two slots free, the next chunk goes
	 * in the head's old slot. */
	answer_ok(&w, c[0]);
	pexec__pool_collect(&w.p);
	cr_expect_eq(w.ngot, 2);
	cr_expect(pexec__pool_window_has_room(&w.p));
	next = build(&w);
	cr_expect_eq(next, c[0], "chunk 3 is not in slot 3 %% 3");
	cr_expect_eq(next->seq, 3);
	cr_expect_eq(next->first, 3);
	window_release(&w);
}

Test(window, unordered_makes_room_as_any_chunk_is_done)
{
	struct window w;
	struct chunk *c[3], *next;

	window_init(&w, &(pexec_opts){ .chunksize = 1, .unordered = 1 }, 3, 10);
	for (int i = 0; i < 3; i++)
		c[i] = build(&w);
	cr_expect_not(pexec__pool_window_has_room(&w.p));
	answer_ok(&w, c[1]);
	pexec__pool_collect(&w.p);
	cr_expect_eq(w.ngot, 1);
	cr_expect(pexec__pool_window_has_room(&w.p), "no room though a slot is free");
	next = build(&w);
	cr_expect_eq(next, c[1], "the new chunk is not in the one free slot");
	cr_expect_eq(next->first, 3);
	cr_expect_not(pexec__pool_window_has_room(&w.p));
	window_release(&w);
}

/* ---- what the sink gets ---- */

Test(window, failures_reach_the_sink_item_by_item_with_message_index_and_input)
{
	static const uint64_t all[] = { 0, 1, 2, 3, 4, 5 }, fails[] = { 1, 4 };
	struct window w;
	struct chunk *c[2];

	window_init(&w, &(pexec_opts){ .chunksize = 3, .result_input = 1 }, 8, 6);
	c[0] = build(&w);
	c[1] = build(&w);
	answer(&w, c[1], fails, COUNT(fails), NULL);
	answer(&w, c[0], fails, COUNT(fails), NULL);
	pexec__pool_collect(&w.p);
	expect_got(&w, all, COUNT(all), fails, COUNT(fails));
	/* With result_input every result has its input, not only failures. */
	for (size_t i = 0; i < w.ngot; i++) {
		char want[16];
		snprintf(want, sizeof(want), "%zu", i);
		cr_expect_str_eq(w.got[i].input ? w.got[i].input : "(none)", want);
		cr_expect_eq(w.got[i].attempts, 1);
	}
	cr_expect_eq(w.stats.ok, 4);
	cr_expect_eq(w.stats.failed, 2);
	cr_expect_eq(w.stats.by_status[PEXEC_STATUS_ERROR], 2);
	cr_expect_eq(w.p.stop, PEXEC_OK, "a failure without --fail-fast stopped the run");
	window_release(&w);
}

Test(window, a_record_of_a_dead_worker_reaches_the_sink_with_its_status)
{
	struct window w;
	struct chunk *c;

	window_init(&w, &(pexec_opts){ .chunksize = 2 }, 8, 2);
	c = build(&w);
	cr_assert_eq(pexec__frame_begin(&c->results, PEXEC_FRAME_RESULTS, 0), 0);
	put_record(&c->results, 1, PEXEC_STAGE_NONE, "\"r0\"");
	put_record(&c->results, pexec__record_byte(PEXEC_STATUS_CRASHED), PEXEC_STAGE_WORKER,
	           "worker 42 killed by SIGSEGV");
	pexec__frame_end(&c->results, 0, 2);
	c->res = c->results.data;
	c->res_len = c->results.len;
	c->pending = 0;
	pexec__pool_chunk_check_done(&w.p, c);
	pexec__pool_collect(&w.p);
	cr_assert_eq(w.ngot, 2);
	cr_expect(w.got[0].ok);
	cr_expect_not(w.got[1].ok);
	cr_expect_eq(w.got[1].status, PEXEC_STATUS_CRASHED);
	cr_expect_eq(w.got[1].stage, PEXEC_STAGE_WORKER);
	cr_expect_str_eq(w.got[1].message, "worker 42 killed by SIGSEGV");
	cr_expect_str_eq(w.got[1].input ? w.got[1].input : "(none)", "1");
	cr_expect_eq(w.stats.by_status[PEXEC_STATUS_CRASHED], 1);
	cr_expect_eq(w.stats.failed, 1);
	window_release(&w);
}

Test(window, batch_sink_gets_a_chunk_of_successes_in_one_call)
{
	static const uint64_t fails[] = { 4 }, item_by_item[] = { 3, 4, 5 };
	struct window w;
	struct chunk *c[2];

	window_init(&w, &(pexec_opts){ .chunksize = 3, .result_input = 1 }, 8, 6);
	w.opts.batch_sink = record_batch;
	w.opts.batch_ctx = &w;
	c[0] = build(&w);
	c[1] = build(&w);
	answer(&w, c[1], fails, COUNT(fails), NULL);
	answer_ok(&w, c[0]);
	pexec__pool_collect(&w.p);

	cr_assert_eq(w.nbatches, 1, "%zu batches, want 1", w.nbatches);
	cr_expect_eq(w.batches[0].first, 0);
	cr_expect_eq(w.batches[0].count, 3);
	cr_expect_str_eq(w.batches[0].texts, "\"r0\" \"r1\" \"r2\"");
	cr_expect_str_eq(w.batches[0].inputs ? w.batches[0].inputs : "(none)", "0 1 2");
	/* A chunk with a failure goes item by item, successes and all. */
	expect_got(&w, item_by_item, COUNT(item_by_item), fails, COUNT(fails));
	cr_expect_eq(w.stats.ok, 5);
	cr_expect_eq(w.stats.by_status[PEXEC_STATUS_OK], 5);
	cr_expect_eq(w.stats.failed, 1);
	expect_all_free(&w);
	window_release(&w);
}

Test(window, batch_sink_gets_no_inputs_unless_asked)
{
	struct window w;
	struct chunk *c;

	window_init(&w, &(pexec_opts){ .chunksize = 2 }, 8, 2);
	w.opts.batch_sink = record_batch;
	w.opts.batch_ctx = &w;
	c = build(&w);
	answer_ok(&w, c);
	pexec__pool_collect(&w.p);
	cr_assert_eq(w.nbatches, 1);
	cr_expect_null(w.batches[0].inputs);
	cr_expect_str_eq(w.batches[0].texts, "\"r0\" \"r1\"");
	window_release(&w);
}

Test(window, fail_fast_stops_at_the_first_failure_in_order)
{
	static const uint64_t fails[] = { 3, 4 }, want[] = { 0, 1, 2, 3 };
	struct window w;
	struct chunk *c[3];

	window_init(&w, &(pexec_opts){ .chunksize = 2, .fail_fast = 1 }, 8, 6);
	for (int i = 0; i < 3; i++)
		c[i] = build(&w);
	/* Item 4's chunk is done first, but item 3 comes first in order. */
	answer(&w, c[2], fails, COUNT(fails), NULL);
	pexec__pool_collect(&w.p);
	answer(&w, c[1], fails, COUNT(fails), NULL);
	pexec__pool_collect(&w.p);
	cr_expect_eq(w.ngot, 0);
	answer(&w, c[0], fails, COUNT(fails), NULL);
	pexec__pool_collect(&w.p);
	expect_got(&w, want, COUNT(want), fails, COUNT(fails));
	cr_expect_eq(w.p.stop, PEXEC_ESTOPPED);
	cr_expect_str_eq(w.err.msg, "stopped at the first failure (--fail-fast): item 3");
	/* Stopped: nothing more goes out. */
	pexec__pool_collect(&w.p);
	cr_expect_eq(w.ngot, COUNT(want));
	window_release(&w);
}

/* ---- chunk sizes ---- */

/* The counts of the chunks built from `n` items until the source ends. */
static void expect_chunk_counts(struct window *w, const uint32_t *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct chunk *c = build(w);
		struct pexec__frame_header h;
		pexec_error err;

		cr_expect_eq(c->count, want[i], "chunk %zu has %u items, want %u", i, c->count,
		             want[i]);
		/* Its CHUNK frame says the same, and where it begins. */
		cr_assert_eq(pexec__frame_parse_header(c->items.data, &h, &err), 0, "%s", err.msg);
		cr_expect_eq(h.type, PEXEC_FRAME_CHUNK);
		cr_expect_eq(h.count, c->count);
		cr_expect_eq(h.payload_len, c->items.len - PEXEC_FRAME_HEADER_SIZE);
		cr_expect_eq(h.aux & ~(PEXEC_CHUNK_FOLD | PEXEC_CHUNK_FOLD_EACH), c->first);
		/* Free the slot for the next. */
		answer_ok(w, c);
		pexec__pool_collect(&w->p);
	}
	cr_expect_null(pexec__pool_chunk_build(&w->p, 0), "more chunks than expected");
}

Test(window, chunks_follow_chunksize)
{
	static const uint32_t want[] = { 3, 3, 3, 1 };
	struct window w;

	window_init(&w, &(pexec_opts){ .chunksize = 3 }, 2, 10);
	expect_chunk_counts(&w, want, COUNT(want));
	cr_expect_eq(w.ngot, 10);
	window_release(&w);
}

Test(window, chunk_build_keeps_to_its_limit)
{
	struct window w;
	struct chunk *c;

	window_init(&w, &(pexec_opts){ .chunksize = 5 }, 4, 10);
	c = pexec__pool_chunk_build(&w.p, 2);
	cr_assert_not_null(c);
	cr_expect_eq(c->count, 2, "--max-tasks-per-worker's limit of 2 gave %u items", c->count);
	c = build(&w);
	cr_expect_eq(c->count, 5);
	cr_expect_eq(c->first, 2);
	window_release(&w);
}

Test(window, chunk_items_are_the_source_bytes_in_order)
{
	struct window w;
	struct chunk *c;
	const char *data;
	size_t len;

	window_init(&w, &(pexec_opts){ .chunksize = 4 }, 4, 4);
	c = build(&w);
	for (uint32_t i = 0; i < 4; i++) {
		char want[8];
		chunk_item_at(c, i, &data, &len);
		snprintf(want, sizeof(want), "%u", i);
		cr_expect_eq(len, strlen(want));
		cr_expect(memcmp(data, want, len) == 0, "item %u", i);
	}
	window_release(&w);
}

Test(window, adaptive_chunks_grow_toward_the_target_a_step_at_a_time)
{
	static const uint32_t want[] = { 1, 4, 16, 64, 100, 100 };
	struct window w;

	cr_assert_eq(CHUNK_GROWTH, 4, "the counts below assume a growth of 4 a step");
	window_init(&w, &(pexec_opts){ 0 }, 2, 1 + 4 + 16 + 64 + 100 + 100);
	for (size_t i = 0; i < COUNT(want); i++) {
		struct chunk *c;

		/* Unknown time per item: one item; then items of 1/100 of the
		 * target: up to 100 at once, growing at most CHUNK_GROWTH times a
		 * chunk. */
		if (i == 1)
			w.p.item_ns = CHUNK_TARGET_NS / 100;
		c = build(&w);
		cr_expect_eq(c->count, want[i], "chunk %zu has %u items, want %u", i, c->count,
		             want[i]);
		answer_ok(&w, c);
		pexec__pool_collect(&w.p);
	}
	cr_expect(w.src.at == w.src.n && w.ngot == w.src.n, "%zu items read, %zu handed over",
	          w.src.at, w.ngot);
	window_release(&w);
}

Test(window, a_chunk_stops_at_chunk_bytes_of_items)
{
	enum { ITEM = 1000 };
	struct window w;
	struct chunk *c;
	size_t per_item = ITEM + PEXEC_ITEM_OVERHEAD;

	window_init(&w, &(pexec_opts){ .chunksize = 1000 }, 2, 200);
	for (size_t i = 0; i < w.src.n; i++) {
		free(w.src.texts[i]);
		w.src.texts[i] = malloc(ITEM + 1);
		cr_assert_not_null(w.src.texts[i]);
		memset(w.src.texts[i], 'x', ITEM);
		w.src.texts[i][ITEM] = '\0';
	}
	c = build(&w);
	cr_expect_lt(c->count, 200);
	cr_expect_geq(c->count * per_item, CHUNK_BYTES, "a chunk of %u items stopped early",
	              c->count);
	cr_expect_lt((c->count - 1) * per_item, CHUNK_BYTES, "a chunk of %u items went past "
	             "CHUNK_BYTES", c->count);
	window_release(&w);
}

Test(window, a_boundary_ends_a_chunk)
{
	struct window w;
	struct chunk *c;

	window_init(&w, &(pexec_opts){ .chunksize = 10 }, 4, 6);
	w.src.boundary_at = 2;
	c = build(&w);
	cr_expect_eq(c->count, 2, "a chunk spans the boundary");
	c = build(&w);
	cr_expect_eq(c->first, 2);
	cr_expect_eq(c->count, 4);
	window_release(&w);
}

Test(window, a_source_error_stops_the_run_and_keeps_the_items_before_it)
{
	struct window w;
	struct chunk *c;

	window_init(&w, &(pexec_opts){ .chunksize = 10 }, 4, 6);
	w.src.error_at = 3;
	c = pexec__pool_chunk_build(&w.p, 0);
	cr_assert_not_null(c);
	cr_expect_eq(c->count, 3);
	cr_expect_eq(w.p.stop, PEXEC_EINPUT);
	cr_expect_str_eq(w.err.msg, "bad input at item 3");
	cr_expect(w.p.source_done);
	window_release(&w);
}

/* ---- split chunks ---- */

Test(window, split_chunk_records_out_of_order_emit_in_item_order)
{
	static const uint32_t order[] = { 2, 0, 3, 1 };
	static const uint64_t all[] = { 0, 1, 2, 3, 4, 5 }, fails[] = { 3 };
	struct window w;
	struct chunk *c[2];

	window_init(&w, &(pexec_opts){ .chunksize = 4 }, 4, 6);
	c[0] = build(&w);
	c[1] = build(&w);
	/* The chunk behind it is done already. */
	answer_ok(&w, c[1]);
	cr_assert_eq(pexec__pool_chunk_split(&w.p, c[0]), 0, "%s", w.err.msg);
	cr_assert_eq(pexec__pool_chunk_split(&w.p, c[0]), 0, "split is not idempotent");
	for (size_t k = 0; k < COUNT(order); k++) {
		uint32_t i = order[k];
		char text[32];
		int ok = !failing(i, fails, COUNT(fails));

		snprintf(text, sizeof(text), ok ? "\"r%u\"" : "bad %u", i);
		c[0]->tries[i] = 1 + (i == 0); /* item 0 ran twice */
		cr_assert_eq(pexec__pool_chunk_put_record(&w.p, c[0], i, ok,
		                                          ok ? PEXEC_STAGE_NONE : PEXEC_STAGE_MAP,
		                                          text, strlen(text)),
		             0);
		pexec__pool_chunk_check_done(&w.p, c[0]);
		pexec__pool_collect(&w.p);
		if (k + 1 < COUNT(order))
			cr_expect_eq(w.ngot, 0, "emitted with %zu of 4 records", k + 1);
	}
	expect_got(&w, all, COUNT(all), fails, COUNT(fails));
	cr_expect_eq(w.got[0].attempts, 2);
	cr_expect_eq(w.got[1].attempts, 1);
	expect_all_free(&w);
	window_release(&w);
}

/* ---- --reduce ---- */

Test(window, reduce_folds_each_chunks_partial_in_order)
{
	static const uint64_t fails[] = { 1 }, failed[] = { 1 };
	struct window w;
	struct chunk *c[2];

	window_init(&w, &(pexec_opts){ .chunksize = 3, .reduce = 1 }, 4, 6);
	c[0] = build(&w);
	c[1] = build(&w);
	cr_expect(chunk_aux(c[0]) & PEXEC_CHUNK_FOLD,
	          "a --reduce chunk is not flagged for folding");
	cr_expect_eq(chunk_aux(c[1]) & ~PEXEC_CHUNK_FOLD, 3);
	answer(&w, c[1], NULL, 0, "345");
	pexec__pool_collect(&w.p);
	cr_expect_eq(w.nfolds, 0, "a partial folded out of order");
	answer(&w, c[0], fails, COUNT(fails), "12");
	pexec__pool_collect(&w.p);
	cr_assert_eq(w.nfolds, 2);
	cr_expect_eq(w.folds[0].items, 2, "the first partial stands for its 2 successes");
	cr_expect_str_eq(w.folds[0].text, "12");
	cr_expect_eq(w.folds[1].items, 3);
	cr_expect_str_eq(w.folds[1].text, "345");
	/* The sink gets the failure only. */
	expect_got(&w, failed, COUNT(failed), fails, COUNT(fails));
	cr_expect_eq(w.stats.ok, 5);
	cr_expect_eq(w.stats.failed, 1);
	window_release(&w);
}
