/*
 * split.c - the input splitter: finds where each item of a JSON array or an
 * NDJSON stream begins and ends, validating RFC 8259 syntax on the way.
 *
 * The parent runs this over every input byte, so it is built for speed and
 * bounded memory:
 *  - It never builds values.  A byte-driven state machine, its state kept in
 *    the splitter, checks the syntax and tracks only the container kinds (one
 *    bit per level, on a heap stack, so depth costs no C stack).
 *  - The input is read in blocks into one buffer that holds the current item
 *    and the unread bytes.  When an item crosses the end of the buffer, the
 *    scan stops mid-token and resumes after the refill where it stopped:
 *    rescanning from the item's start would make huge items quadratic.
 *  - Plain string bytes, digit runs and whitespace are eaten by tight inner
 *    loops over a class table; the state dispatch happens once per token.
 *
 * This file makes and frees splitters and words their messages; the scan,
 * the reading it drives and the per-item path are split_scan.c; plain text
 * items (one per line, or NUL-separated) are split_text.c.
 *
 * Raw newlines can only occur in whitespace, so the line count costs nothing
 * in strings and numbers.  Positions in messages are 1-based line and column
 * (in bytes) and the 0-based byte offset of the offending byte or of EOF.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "split_internal.h"
#include "util.h"

static pexec__splitter *split_new(const char *name, pexec_format format)
{
	size_t n = strlen(name);
	pexec__splitter *s = calloc(1, sizeof(*s) + n + 1);

	if (!s)
		return NULL;
	memcpy(s->name, name, n + 1);
	s->ndjson = format == PEXEC_FORMAT_NDJSON;
	s->delim = format == PEXEC_FORMAT_LINES ? '\n' : format == PEXEC_FORMAT_NUL ? '\0' : -1;
	pexec__buf_init(&s->text);
	s->line = 1;
	s->fd = -1;
	s->state = ST_START;
	return s;
}

pexec__splitter *pexec__split_fd(int fd, const char *name, pexec_format format)
{
	pexec__splitter *s = split_new(name, format);

	if (!s)
		return NULL;
	s->own = malloc(BLOCK);
	if (!s->own) {
		free(s);
		return NULL;
	}
	s->buf = s->own;
	s->cap = BLOCK;
	s->fd = fd;
	return s;
}

pexec__splitter *pexec__split_mem(const char *data, size_t len, const char *name,
                                  pexec_format format)
{
	pexec__splitter *s = split_new(name, format);

	if (!s)
		return NULL;
	/* Items point into the caller's bytes: nothing is copied. */
	s->buf = (const unsigned char *)data;
	s->end = len;
	s->cap = len;
	s->eof = 1;
	return s;
}

void pexec__split_free(pexec__splitter *s)
{
	if (!s)
		return;
	free(s->own);
	free(s->stack);
	pexec__buf_release(&s->text);
	free(s);
}

uint64_t pexec__split_offset(const pexec__splitter *s)
{
	return s->base + s->pos;
}

/* ---- the public face (pexec.h) ---- */

pexec_splitter *pexec_splitter_open(int fd, const char *name, pexec_format format)
{
	return pexec__split_fd(fd, name, format);
}

int pexec_splitter_next(void *splitter, const char **data, size_t *len, pexec_error *err)
{
	return pexec__split_next(splitter, data, len, err);
}

uint64_t pexec_splitter_offset(const pexec_splitter *splitter)
{
	return pexec__split_offset(splitter);
}

void pexec_splitter_free(pexec_splitter *splitter)
{
	pexec__split_free(splitter);
}

/* ---- one value at a time ---- */

pexec__splitter *pexec__split_checker(void)
{
	pexec__splitter *s = split_new("", PEXEC_FORMAT_NDJSON);

	if (s)
		s->one_value = 1;
	return s;
}

int pexec__split_check(pexec__splitter *s, const char *text, size_t len, pexec_error *err)
{
	const char *item;
	size_t n;
	int rc;

	if (pexec__split_check_fast(text, len))
		return 0;
	/* The splitter starts over on these bytes, as one NDJSON line whose
	 * value may span lines (no BOM: that is not part of a value). */
	s->buf = (const unsigned char *)text;
	s->end = s->cap = len;
	s->pos = s->item_start = s->item_end = 0;
	s->base = s->line_start = s->item_line_start = 0;
	s->line = s->item_line = 1;
	s->eof = 1;
	s->in_item = 0;
	s->depth = 0;
	s->code = 0;
	s->state = ST_ND_LINE;
	rc = pexec__split_next(s, &item, &n, err);
	if (rc == 1) {
		rc = pexec__split_next(s, &item, &n, err);
		if (rc == 1)
			pexec__fail(err, PEXEC_EINPUT, "at byte %zu: a second value after the first",
			            (size_t)(item - text));
		return rc == 0 ? 0 : -1;
	}
	if (rc == 0)
		pexec__fail(err, PEXEC_EINPUT, "at byte %zu: no value", len);
	return -1;
}

void pexec__split_fragment(pexec__splitter *s, const char *data, size_t len,
                           const struct pexec__fragment *f)
{
	s->buf = (const unsigned char *)data;
	s->end = s->cap = len;
	s->pos = s->item_start = s->item_end = 0;
	s->base = f->offset;
	s->line = s->item_line = f->line;
	s->line_start = s->item_line_start = f->line_start;
	/* A chunk is all there is to see: its items end inside it. */
	s->eof = 1;
	s->in_item = 0;
	s->depth = 0;
	s->code = 0;
	s->state = f->first ? ST_START : s->ndjson ? ST_ND_LINE : ST_JSON_NEXT;
}

int pexec_json_check(const char *text, size_t len, pexec_error *err)
{
	pexec__splitter *s = pexec__split_checker();
	int rc;

	if (!s) {
		pexec__fail(err, PEXEC_ESYS, "out of memory");
		return -1;
	}
	rc = pexec__split_check(s, text, len, err);
	pexec__split_free(s);
	return rc;
}

/* ---- errors ---- */

int pexec__split_fail_pos(pexec__splitter *s, uint64_t off, uint64_t line,
                          uint64_t line_start, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (s->one_value)
		pexec__fail(&s->err, PEXEC_EINPUT, "at byte %" PRIu64 ": %s", off, why);
	else
		pexec__fail(&s->err, PEXEC_EINPUT,
		            "malformed input '%s' at line %" PRIu64 ", column %" PRIu64
		            ", byte %" PRIu64 ": %s",
		            s->name, line, off - line_start + 1, off, why);
	return -PEXEC_EINPUT;
}

const char *pexec__split_show(unsigned c, char out[8])
{
	if (c > 0x20 && c < 0x7f)
		snprintf(out, 8, "'%c'", (char)c);
	else
		snprintf(out, 8, "0x%02X", c);
	return out;
}

int pexec__split_unexpected(pexec__splitter *s, const unsigned char *p, const char *expect)
{
	char b[8];

	if (*p == 0)
		return FAIL_AT(s, p, "NUL byte");
	if (*p >= 0x80 && !is_utf8_lead(*p))
		return FAIL_AT(s, p, "invalid UTF-8 byte 0x%02X", *p);
	if (*p == '/')
		return FAIL_AT(s, p, "unexpected '/' (comments are not allowed)");
	return FAIL_AT(s, p, "unexpected %s (expected %s)", pexec__split_show(*p, b), expect);
}

int pexec__split_rest_of_line(pexec__splitter *s, const unsigned char *p)
{
	char b[8];

	if (*p == 0 || (*p >= 0x80 && !is_utf8_lead(*p)) || *p == '/')
		return pexec__split_unexpected(s, p, "");
	return FAIL_AT(s, p, "unexpected %s after the value%s", pexec__split_show(*p, b),
	               s->one_value ? "" : " (expected end of line)");
}

/* Whether c can begin a JSON value. */
static int value_start(unsigned c)
{
	return c == '{' || c == '[' || c == '"' || c == '-' || (c >= '0' && c <= '9') ||
	       c == 't' || c == 'f' || c == 'n';
}

int pexec__split_not_an_array(pexec__splitter *s, const unsigned char *p)
{
	static const char what[] = "expected '[' to begin the top-level array";

	if (*p == '{')
		return FAIL_AT(s, p, "%s, found an object (for one JSON value per line, use "
		               "--input-format ndjson; for the object's values as the items, "
		               "jq -c '.[]')", what);
	if (value_start(*p))
		return FAIL_AT(s, p, "%s (for one JSON value per line, use --input-format ndjson)",
		               what);
	return FAIL_AT(s, p, "%s (for one item per line of text, use --input-format lines)",
	               what);
}

int pexec__split_after_array(pexec__splitter *s, const unsigned char *p)
{
	static const char what[] = "unexpected data after the top-level array";

	/* Only whitespace lies between the array's end and p: a value that
	 * begins a later line is the next line of an NDJSON file. */
	if (s->line_start > s->array_end && value_start(*p))
		return FAIL_AT(s, p, "%s (it looks like one JSON value per line: use "
		               "--input-format ndjson)", what);
	return FAIL_AT(s, p, "%s", what);
}
