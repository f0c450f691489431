/*
 * spans.c - a job's input as spans (spans.h): the parent reads the input in
 * blocks and lets the boundary pass (split/boundary.c) find where the next
 * chunk of items ends; it never looks at an item.  A span's bytes stay in
 * the buffer until the next call, so the pool can send them where the
 * workers cannot read the input again themselves.
 *
 * Chunks are sized in items by the pool, and kept to about SPAN_BYTES here
 * by the bytes an item has taken so far, so that a run of large items does
 * not make large chunks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "spans.h"
#include "util.h"

#define READ_BLOCK ((size_t)256 << 10)
#define SPAN_BYTES ((size_t)1 << 20)
/* A chunk of one item may be this big; beyond, a worker says the item is
 * too large. */
#define SPAN_MAX (((size_t)1 << 30) + ((size_t)1 << 20))

pexec_code pexec__span_src_open(struct pexec__span_src *s, int fd, const char *name,
                                pexec_format format, pexec_error *err)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->name = name;
	s->format = format;
	s->first = 1;
	s->cap = READ_BLOCK;
	s->buf = malloc(s->cap);
	if (!s->buf)
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	pexec__bounds_init(&s->b, format == PEXEC_FORMAT_NDJSON);
	return PEXEC_OK;
}

void pexec__span_src_release(struct pexec__span_src *s)
{
	free(s->buf);
	s->buf = NULL;
}

uint64_t pexec__span_src_offset(const struct pexec__span_src *s)
{
	return s->base + s->pos;
}

/* Reads more, keeping the bytes from `start` on (moved to the front), and
 * growing the buffer when they fill it.  0, or -1 with `err` filled. */
static int refill(struct pexec__span_src *s, pexec_error *err)
{
	ssize_t n;

	if (s->start > 0) {
		memmove(s->buf, s->buf + s->start, s->end - s->start);
		s->base += s->start;
		s->pos -= s->start;
		s->end -= s->start;
		s->start = 0;
	}
	if (s->cap - s->end < READ_BLOCK / 2) {
		size_t cap = s->cap * 2 > SPAN_MAX ? SPAN_MAX : s->cap * 2;
		unsigned char *buf = cap > s->cap ? realloc(s->buf, cap) : NULL;

		if (!buf) {
			/* A chunk this big is one item too big; let its worker say so. */
			s->eof = 1;
			return 0;
		}
		s->buf = buf;
		s->cap = cap;
	}
	n = pexec__read_some(s->fd, s->buf + s->end, s->cap - s->end);
	if (n < 0) {
		pexec__fail(err, PEXEC_ESYS, "cannot read '%s': %s", s->name, strerror(errno));
		return -1;
	}
	if (n == 0)
		s->eof = 1;
	s->end += (size_t)n;
	return 0;
}

/* After the top-level array: what follows is the last chunk's, up to the
 * first byte that is not whitespace (its worker says what is wrong). */
static int trailing(struct pexec__span_src *s, pexec_error *err)
{
	for (;;) {
		for (; s->pos < s->end; s->pos++) {
			unsigned char c = s->buf[s->pos];
			if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
				s->pos++;
				return 0;
			}
		}
		if (s->eof)
			return 0;
		if (refill(s, err))
			return -1;
	}
}

/* Whether an item stands between the last separator and the top-level
 * array's close at buf[close]: something other than whitespace, a ',' or
 * the '[' before it, within the chunk. */
static int item_before_close(const struct pexec__span_src *s, size_t close)
{
	while (close > s->start) {
		unsigned char c = s->buf[--close];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		return c != ',' && c != '[';
	}
	return 0;
}

/* Passes over the input until `want` items end, or it does. */
static int pass(struct pexec__span_src *s, uint32_t want, uint32_t *found, int *last,
                pexec_error *err)
{
	*found = 0;
	*last = 0;
	for (;;) {
		uint32_t got;

		s->pos += pexec__bounds_pass(&s->b, s->buf + s->pos, s->end - s->pos, s->eof,
		                             want - *found, &got);
		*found += got;
		if (s->b.done) {
			if (s->pos > s->start && s->buf[s->pos - 1] == ']' &&
			    item_before_close(s, s->pos - 1))
				++*found;
			*last = 1;
			return trailing(s, err);
		}
		if (s->eof && s->pos == s->end) {
			*last = 1;
			return 0;
		}
		if (*found == want)
			return 0;
		if (refill(s, err))
			return -1;
	}
}

int pexec__span_src_next(void *ctx, uint32_t want, pexec_span *span, pexec_error *err)
{
	struct pexec__span_src *s = ctx;
	uint32_t found;
	int last;

	if (s->finished)
		return 0;
	if (s->bytes_per_item > 0 && SPAN_BYTES / s->bytes_per_item < want)
		want = SPAN_BYTES / s->bytes_per_item < 1 ? 1 : (uint32_t)(SPAN_BYTES /
		                                                           s->bytes_per_item);
	s->start = s->pos;
	*span = (pexec_span){
		.index = s->items, .offset = s->b.offset, .line = s->b.lines + 1,
		.line_start = s->b.line_start, .first = s->first,
	};
	if (pass(s, want, &found, &last, err))
		return -(int)PEXEC_ESYS;
	if (last) {
		/* Whatever is left is the last chunk's, for its worker to check. */
		if (s->b.ndjson || !s->b.done)
			s->pos = s->end;
		s->finished = 1;
	}
	span->data = (const char *)s->buf + s->start;
	span->len = s->pos - s->start;
	span->count = found;
	span->last = last;
	s->items += found;
	if (found)
		s->bytes_per_item = (double)span->len / found;
	s->first = 0;
	return 1;
}
