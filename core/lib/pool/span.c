/*
 * span.c - chunks that are spans of the input itself (pool.h, struct
 * pexec__spans): the parent's work per chunk, not per item.
 *
 * A span chunk's frame carries only where its bytes lie (or the bytes, where
 * the input cannot be read again), and its results come back laid out as
 * they are to be written, with the failures beside them: the parent reads no
 * item and writes no separator, and hands each chunk on in one piece.  A
 * fault turns a span into items (span_to_items), which the pool's item
 * machinery (fault.c, chunk.c) then settles one by one; such a chunk's
 * output is laid out here again from its records.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util.h"

/* ---- building ---- */

int pexec__span_build(struct pool *p, struct chunk *c, uint32_t want)
{
	const pexec_spans *sp = p->spans;
	pexec_span s;
	struct pexec__span_head head = { 0 };
	int inline_bytes = sp->input_fd < 0;
	int rc = sp->next(sp->ctx, want, &s, p->err);

	if (rc == PEXEC_NEXT_WAIT) {
		if (p->opts->source_fd <= 0)
			p->stop = pexec__fail(p->err, PEXEC_EUSAGE,
			                      "the source asked to wait but gave no source_fd");
		p->source_wait = 1;
		return 0;
	}
	if (rc <= 0) {
		if (rc < 0)
			p->stop = (pexec_code)-rc;
		p->source_done = 1;
		return 0;
	}
	if (s.last)
		p->source_done = 1;
	p->next_index = s.index;
	head = (struct pexec__span_head){
		.offset = s.offset, .len = s.len, .line = s.line, .line_start = s.line_start,
		.flags = (s.first ? PEXEC_SPAN_FIRST : 0) | (s.last ? PEXEC_SPAN_LAST : 0) |
		         (inline_bytes ? PEXEC_SPAN_INLINE : 0) | (sp->hash ? PEXEC_SPAN_HASH : 0),
	};
	c->items.len = 0;
	if (pexec__frame_begin(&c->items, PEXEC_FRAME_SPAN, p->next_index) ||
	    pexec_buf_append(&c->items, &head, sizeof(head)) ||
	    (inline_bytes && pexec_buf_append(&c->items, s.data, s.len))) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory building a chunk");
		return 0;
	}
	pexec__frame_end(&c->items, 0, s.count);
	c->span = 1;
	c->input_error = 0;
	c->count = s.count;
	/* Done when its one frame of results is in, whatever its count. */
	c->pending = 1;
	return 1;
}

static struct pexec__span_head span_head(const struct chunk *c)
{
	struct pexec__span_head head;

	memcpy(&head, c->items.data + PEXEC_FRAME_HEADER_SIZE, sizeof(head));
	return head;
}

/* ---- results ---- */

/* The parts of a SPAN_RESULTS frame, checked against each other. */
struct span_parts {
	struct pexec__span_tail tail;
	const char *out;       /* the output bytes */
	const char *fails;     /* the failure records */
	size_t fails_len;
	const char *error;     /* an input error's message */
};

static int span_parts(const char *frame, size_t len, struct span_parts *s)
{
	const char *p = frame + PEXEC_FRAME_HEADER_SIZE, *end = frame + len;

	if ((size_t)(end - p) < sizeof(s->tail))
		return -1;
	memcpy(&s->tail, p, sizeof(s->tail));
	p += sizeof(s->tail);
	if (s->tail.out_len > (size_t)(end - p) ||
	    s->tail.error_len > (size_t)(end - p) - s->tail.out_len)
		return -1;
	s->out = p;
	s->fails = p + s->tail.out_len;
	s->error = end - s->tail.error_len;
	s->fails_len = (size_t)(s->error - s->fails);
	return 0;
}

int pexec__span_take(struct pool *p, struct chunk *c, const char *frame, size_t len)
{
	struct pexec__frame_header h;
	struct span_parts s;
	pexec_error perr;

	if (pexec__frame_parse_header(frame, &h, &perr) || h.type != PEXEC_FRAME_SPAN_RESULTS ||
	    span_parts(frame, len, &s))
		return -1;
	if (s.tail.error_len) {
		/* Nothing after it is to be run: the first such chunk in input
		 * order is the error the run stops with. */
		c->input_error = 1;
		p->source_done = 1;
	} else if (h.count != c->count) {
		if (!(span_head(c).flags & PEXEC_SPAN_LAST))
			return -1;
		/* The last chunk's own count (the pass guesses whether an item
		 * stands before the closing bracket). */
		p->stats->items += h.count;
		p->stats->items -= c->count;
		c->count = h.count;
	}
	if (c->count) {
		double per_item = (double)s.tail.out_len / c->count;

		p->out_per_item = p->out_per_item > 0 ? 0.7 * p->out_per_item + 0.3 * per_item
		                                      : per_item;
	}
	c->res = frame;
	c->res_len = len;
	c->pending = 0;
	return 0;
}

/* ---- handing over ---- */

/* A failure record of a span's results, as the sink takes it. */
static const char *span_failure(struct pool *p, const struct chunk *c, const char *rec,
                                const char *end, pexec_result *r)
{
	uint32_t pos, mlen, ilen;

	if ((size_t)(end - rec) < PEXEC_SPAN_FAILURE_HEAD)
		return NULL;
	memcpy(&pos, rec, 4);
	memcpy(&mlen, rec + 8, 4);
	memcpy(&ilen, rec + 12, 4);
	if (pos >= c->count || (size_t)(end - rec) - PEXEC_SPAN_FAILURE_HEAD < (size_t)mlen + ilen)
		return NULL;
	*r = (pexec_result){
		.index = c->first + pos, .stage = (pexec_stage)(uint8_t)rec[5], .attempts = 1,
		.status = pexec__record_status((uint8_t)rec[4]), .pid = c->whole.pid,
		.started = c->whole.started + pos * c->whole.seconds, .seconds = c->whole.seconds,
		.input = rec + PEXEC_SPAN_FAILURE_HEAD + mlen, .input_len = ilen,
	};
	snprintf(p->message, sizeof(p->message), "%.*s", (int)mlen, rec + PEXEC_SPAN_FAILURE_HEAD);
	r->message = p->message;
	return r->input + ilen;
}

static void counted(struct pool *p, pexec_status status)
{
	p->stats->by_status[status]++;
	if (status == PEXEC_STATUS_OK)
		p->stats->ok++;
	else
		p->stats->failed++;
}

/* Writes a placed chunk's bytes (those after the first `skip`) from here,
 * and says they landed. */
static int write_here(struct pool *p, const char *out, size_t len, uint64_t offset, size_t skip,
                      uint64_t ticket)
{
	const pexec_spans *sp = p->spans;

	if (len > skip && pexec__pwrite_full(sp->out_fd, out + skip, len - skip, (off_t)offset))
		return -(int)pexec__fail(p->err, PEXEC_ESYS, "cannot write '%s': %s", sp->out_name,
		                         strerror(errno));
	return sp->landed ? sp->landed(sp->ctx, ticket, p->err) : 0;
}

/* A chunk's place in the output file, and its bytes written there: by the
 * worker whose arena they lie in (WRITE), or here. */
static int place(struct pool *p, struct chunk *c, const struct span_parts *s)
{
	const pexec_spans *sp = p->spans;
	struct worker *w = c->arena_owner;
	struct pexec__write_order order;
	struct pexec__frame_header h = { PEXEC_FRAME_WRITE, 0, sizeof(order), 0 };
	uint64_t offset, ticket;
	size_t skip;
	int rc = sp->reserve(sp->ctx, c->count, s->tail.out_len, s->tail.written, s->tail.hash,
	                     &offset, &skip, &ticket, p->err);

	/* The worker keeps every span with output in its arena for a WRITE
	 * (child.c), so each gets one, even when all its bytes are skipped. */
	if (rc < 0 || s->tail.out_len == 0 || !w)
		return rc < 0 ? rc : write_here(p, s->out, s->tail.out_len, offset, skip, ticket);
	if (w->pw_head + w->pw_len == w->pw_cap) {
		size_t cap = w->pw_cap ? 2 * w->pw_cap : 16;
		struct pending_write *pw;
		if (w->pw_head) {
			memmove(w->pw, w->pw + w->pw_head, w->pw_len * sizeof(*pw));
			w->pw_head = 0;
		} else if ((pw = realloc(w->pw, cap * sizeof(*pw)))) {
			w->pw = pw;
			w->pw_cap = cap;
		} else {
			return -(int)pexec__fail(p->err, PEXEC_ESYS, "out of memory");
		}
	}
	w->pw[w->pw_head + w->pw_len++] = (struct pending_write){
		c->arena_frame, offset, s->out + skip, s->tail.out_len - skip, ticket,
	};
	order = (struct pexec__write_order){ w->ends[c->arena_frame % w->nends] >> 1, offset, skip };
	if (pexec_buf_append(&w->orders, &h, sizeof(h)) ||
	    pexec_buf_append(&w->orders, &order, sizeof(order)))
		return -(int)pexec__fail(p->err, PEXEC_ESYS, "out of memory");
	/* The frame is the order's now, released once it is done. */
	c->arena_owner = NULL;
	return 0;
}

int pexec__span_written(struct pool *p, struct worker *w, uint64_t end, int error)
{
	struct pending_write *pw = w->pw_len ? &w->pw[w->pw_head] : NULL;

	if (!pw || (w->ends[pw->frame_no % w->nends] >> 1) != end)
		return -1;
	if (error) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS, "cannot write '%s': %s",
		                      p->spans->out_name, strerror(error));
	} else if (p->spans->landed) {
		int rc = p->spans->landed(p->spans->ctx, pw->ticket, p->err);
		if (rc < 0 && !p->stop)
			p->stop = (pexec_code)-rc;
	}
	pexec__arena_release(w, pw->frame_no);
	w->pw_head++;
	w->pw_len--;
	return 0;
}

int pexec__span_write_pending(struct pool *p, struct worker *w)
{
	int rc = 0;

	for (; w->pw_len; w->pw_head++, w->pw_len--) {
		struct pending_write *pw = &w->pw[w->pw_head];
		int wrc = rc ? 0 : write_here(p, pw->out, pw->len, pw->offset, 0, pw->ticket);
		if (wrc < 0) {
			if (!p->stop)
				p->stop = (pexec_code)-wrc;
			rc = -1;
		}
		pexec__arena_release(w, pw->frame_no);
	}
	w->orders.len = w->orders_off = 0;
	return rc;
}

void pexec__span_emit(struct pool *p, struct chunk *c)
{
	const pexec_spans *sp = p->spans;
	const char *rec, *end;
	struct span_parts s;
	uint32_t failures = 0;
	int rc;

	if (span_parts(c->res, c->res_len, &s)) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS, "internal error: torn results");
		return;
	}
	if (c->input_error) {
		p->stop = pexec__fail(p->err, PEXEC_EINPUT, "%.*s", (int)s.tail.error_len, s.error);
		return;
	}
	end = s.fails + s.fails_len;
	for (rec = s.fails; rec < end && !p->stop; failures++) {
		pexec_result r;
		if (!(rec = span_failure(p, c, rec, end, &r))) {
			p->stop = pexec__fail(p->err, PEXEC_ESYS, "internal error: torn failures");
			return;
		}
		counted(p, r.status);
		if ((rc = sp->failed(sp->ctx, &r, p->err)) < 0)
			p->stop = (pexec_code)-rc;
	}
	p->stats->ok += c->count - failures;
	p->stats->by_status[PEXEC_STATUS_OK] += c->count - failures;
	if (p->stop)
		rc = 0;
	else if (sp->out_fd >= 0)
		rc = place(p, c, &s);
	else
		rc = sp->put(sp->ctx, c->first, c->count, s.out, s.tail.out_len, s.tail.written,
		             s.tail.hash, p->err);
	if (rc < 0)
		p->stop = (pexec_code)-rc;
	p->emitted = 1;
}

/* ---- a span a fault splits ---- */

/* The span's bytes again: from its frame, or read from the input. */
static const char *span_again(struct pool *p, const struct chunk *c,
                              const struct pexec__span_head *head)
{
	ssize_t n;

	if (head->flags & PEXEC_SPAN_INLINE)
		return c->items.data + PEXEC_FRAME_HEADER_SIZE + sizeof(*head);
	p->layout.len = 0;
	if (pexec_buf_reserve(&p->layout, head->len + 1)) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
		return NULL;
	}
	n = pexec__pread_full(p->spans->input_fd, p->layout.data, head->len, (off_t)head->offset);
	if (n < 0 || (uint64_t)n != head->len) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS, "cannot read '%s' again: %s",
		                      p->spans->name, n < 0 ? strerror(errno) : "it is shorter");
		return NULL;
	}
	return p->layout.data;
}

int pexec__span_to_items(struct pool *p, struct chunk *c)
{
	struct pexec__span_head head = span_head(c);
	struct pexec__fragment f = { head.offset, head.line, head.line_start,
		                     (head.flags & PEXEC_SPAN_FIRST) != 0,
		                     (head.flags & PEXEC_SPAN_LAST) != 0 };
	const char *bytes = span_again(p, c, &head), *item;
	pexec_buf frame;
	size_t len;
	uint32_t n = 0;
	int got = 1;

	if (!bytes)
		return -1;
	if (!p->fragment &&
	    !(p->fragment = pexec__split_mem("", 0, p->spans->name, p->spans->in_format))) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
		return -1;
	}
	pexec__split_fragment(p->fragment, bytes, head.len, &f);
	pexec__buf_init(&frame);
	if (pexec__frame_begin(&frame, PEXEC_FRAME_CHUNK, c->first))
		goto nomem;
	while ((f.last || n < c->count) &&
	       (got = pexec__split_next(p->fragment, &item, &len, p->err)) == 1) {
		if (pexec__frame_put_item(&frame, item, len))
			goto nomem;
		n++;
	}
	if (got < 0 || (!f.last && pexec__split_fragment_end(p->fragment, p->err))) {
		p->stop = PEXEC_EINPUT;
		pexec__buf_release(&frame);
		return -1;
	}
	pexec__frame_end(&frame, 0, n);
	pexec__buf_release(&c->items);
	c->items = frame;
	p->stats->items += n;
	p->stats->items -= c->count;
	c->count = c->pending = n;
	c->span = 0;
	return 0;
nomem:
	pexec__buf_release(&frame);
	p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
	return -1;
}

/* One record of a split span chunk laid out again, as a worker would. */
int pexec__span_lay_out(struct pool *p, const pexec_result *r, uint32_t *written,
                        uint64_t *hash)
{
	const pexec_spans *sp = p->spans;
	int json = sp->out_format == PEXEC_FORMAT_JSON;
	const char *text = r->ok ? r->data : "null";
	size_t len = r->ok ? r->len : 4, at;

	if (sp->hash)
		*hash += pexec__item_hash(r->index, r->input, r->input_len);
	if (sp->drop_null && len == 4 && !memcmp(text, "null", 4))
		return 0;
	if ((json && pexec_buf_append(&p->layout, ",\n", 2)))
		return -1;
	at = p->layout.len;
	if (pexec_buf_append(&p->layout, text, len))
		return -1;
	if (!json) {
		for (size_t i = at; i < p->layout.len; i++)
			if (p->layout.data[i] == '\n' || p->layout.data[i] == '\r')
				p->layout.data[i] = ' ';
		if (pexec_buf_append(&p->layout, "\n", 1))
			return -1;
	}
	++*written;
	return 0;
}

int pexec__span_put_layout(struct pool *p, struct chunk *c, uint32_t written, uint64_t hash)
{
	const pexec_spans *sp = p->spans;
	uint64_t offset, ticket;
	size_t skip;
	int rc;

	if (sp->out_fd < 0)
		return sp->put(sp->ctx, c->first, c->count, p->layout.data, p->layout.len, written,
		               hash, p->err);
	rc = sp->reserve(sp->ctx, c->count, p->layout.len, written, hash, &offset, &skip, &ticket,
	                 p->err);
	return rc < 0 ? rc : write_here(p, p->layout.data, p->layout.len, offset, skip, ticket);
}
