/*
 * split_text.c - the splitter for plain text items: one item per line
 * (PEXEC_FORMAT_LINES: `find`'s output, a list of words) or items separated
 * by NUL bytes (PEXEC_FORMAT_NUL: `find -print0`, `xargs -0`).
 *
 * Each item goes out as a JSON string holding its bytes, so that a plugin
 * sees what it would see for ["a.txt", "b.txt"]: a line is taken without its
 * newline, and without a CR just before it (CRLF files); an empty line is
 * the item "".  A last item without its separator still counts; an empty
 * input has no items.  A UTF-8 byte order mark at the start is skipped.
 *
 * The bytes must be UTF-8, as for JSON input: invalid UTF-8 (the same rules
 * as the JSON scan: no overlong forms, surrogates or code points past
 * U+10FFFF) is refused with its line, column and byte offset.  A NUL byte in
 * a line is refused too, with a pointer to -0: it is what `find -print0`
 * piped into line mode looks like.
 *
 * This is a path of its own beside the JSON scan (split_scan.c), sharing
 * only the splitter's buffer and its refill: finding a separator is a
 * memchr-like walk, and the quoting needs a buffer the JSON items never do.
 */
#include <string.h>

#include "split_internal.h"
#include "util.h"

/* scan_text() ran out of buffered bytes (0 is the clean end here). */
#define MORE 2

/* The UTF-8 sequence at p (lead byte c >= 0x80): its length, with the range
 * of its first continuation byte in *lo..*hi; 0 for a byte that cannot lead. */
static unsigned utf8_need(unsigned c, unsigned *lo, unsigned *hi)
{
	*lo = 0x80;
	*hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		return 2;
	if (c >= 0xe0 && c <= 0xef) {
		if (c == 0xe0)
			*lo = 0xa0;
		else if (c == 0xed)
			*hi = 0x9f;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (c == 0xf0)
			*lo = 0x90;
		else if (c == 0xf4)
			*hi = 0x8f;
		return 4;
	}
	return 0;
}

static const char *unit(const pexec__splitter *s)
{
	return s->delim == '\n' ? "a line" : "an item";
}

/* Finds the end of the item that begins at s->item_start, checking its
 * bytes from s->pos on.  Returns 1 with the item in item_start..item_end
 * and s->pos past its separator, MORE when the buffer ran out (s->pos at
 * the first byte not yet checked), or the error. */
static int scan_text(pexec__splitter *s)
{
	const unsigned char *const buf = s->buf, *const end = buf + s->end;
	const unsigned char *p = buf + s->pos;
	const unsigned char delim = (unsigned char)s->delim;

	while (p < end) {
		unsigned c = *p, lo, hi, n;

		if (c == delim) {
			s->item_end = (size_t)(p - buf);
			if (delim == '\n' && s->item_end > s->item_start && p[-1] == '\r')
				s->item_end--;
			p++;
			if (delim == '\n') {
				/* Lines are counted as they pass, for messages. */
				s->line++;
				s->line_start = s->base + (uint64_t)(p - buf);
			}
			s->pos = (size_t)(p - buf);
			return 1;
		}
		if (c < 0x80) {
			if (c == 0)
				return FAIL_AT(s, p, "NUL byte in a line (for items separated by NUL "
				               "bytes, use -0)");
			if (c == '\n') {
				/* Only in NUL-separated items, which may hold newlines. */
				s->line++;
				s->line_start = s->base + (uint64_t)(p - buf) + 1;
			}
			p++;
			continue;
		}
		n = utf8_need(c, &lo, &hi);
		if (n == 0)
			return FAIL_AT(s, p, "invalid UTF-8 in %s (byte 0x%02X)", unit(s), c);
		if ((size_t)(end - p) < n && !s->eof) {
			/* The sequence goes on past the buffer: checked after the refill. */
			break;
		}
		for (unsigned k = 1; k < n; k++) {
			if (p + k == end)
				return FAIL_AT(s, p + k, "unexpected end of input inside a UTF-8 "
				               "sequence");
			if (p[k] < lo || p[k] > hi)
				return FAIL_AT(s, p + k, "invalid UTF-8 in %s (byte 0x%02X)", unit(s),
				               p[k]);
			lo = 0x80;
			hi = 0xbf;
		}
		p += n;
	}
	s->pos = (size_t)(p - buf);
	return MORE;
}

/* The item's bytes as a JSON string, into s->text. */
static int quote_item(pexec__splitter *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = s->buf + s->item_start, *const end = s->buf + s->item_end;
	pexec_buf *b = &s->text;

	b->len = 0;
	if (pexec_buf_reserve(b, (size_t)(end - p) + 2))
		goto oom;
	b->data[b->len++] = '"';
	while (p < end) {
		const unsigned char *run = p;
		char esc[6] = { '\\', 0, '0', '0', 0, 0 };
		size_t elen = 2;

		while (p < end && *p >= 0x20 && *p != '"' && *p != '\\')
			p++;
		if (pexec_buf_append(b, run, (size_t)(p - run)))
			goto oom;
		if (p == end)
			break;
		switch (*p) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			esc[1] = 'u';
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			elen = 6;
		}
		if (pexec_buf_append(b, esc, elen))
			goto oom;
		p++;
	}
	if (pexec_buf_append(b, "\"", 1))
		goto oom;
	if (b->len > PEXEC_ITEM_MAX)
		return pexec__split_item_too_big(s);
	return 1;
oom:
	return pexec__fail(&s->err, PEXEC_ESYS, "cannot split '%s': out of memory", s->name),
	       -PEXEC_ESYS;
}

/* Before the first item: skips a byte order mark, once 3 bytes are in view
 * (or the input is shorter).  Returns 1 when done, or MORE. */
static int skip_bom(pexec__splitter *s)
{
	if (s->end - s->pos < 3 && !s->eof)
		return MORE;
	if (s->end - s->pos >= 3 && !memcmp(s->buf + s->pos, "\xef\xbb\xbf", 3))
		s->pos += 3;
	s->state = ST_TEXT;
	return 1;
}

/* The next item's bytes: 1 with them in item_start..item_end, 0 at the end
 * of the input, MORE, or the error. */
static int next_text(pexec__splitter *s)
{
	int r;

	if (s->state == ST_START && (r = skip_bom(s)) != 1)
		return r;
	if (!s->in_item) {
		if (s->pos == s->end && s->eof)
			return 0;
		s->in_item = 1;
		s->item_start = s->pos;
		s->item_line = s->line;
		s->item_line_start = s->line_start;
	}
	r = scan_text(s);
	if (r == MORE && s->eof) {
		/* The input ends without a last separator. */
		if (s->item_start == s->end)
			return 0;
		s->item_end = s->end;
		s->pos = s->end;
		r = 1;
	}
	if (r == MORE && s->pos - s->item_start > PEXEC_ITEM_MAX)
		return pexec__split_item_too_big(s);
	if (r == 1) {
		s->in_item = 0;
		if (s->item_end - s->item_start > PEXEC_ITEM_MAX)
			return pexec__split_item_too_big(s);
	}
	return r;
}

int pexec__split_text_next(pexec__splitter *s, const char **data, size_t *len,
                           pexec_error *err)
{
	int r;

	if (s->code)
		goto out;
	while ((r = next_text(s)) == MORE)
		if ((r = pexec__split_refill(s)) < 0)
			break;
	if (r == 1)
		r = quote_item(s);
	if (r == 1) {
		*data = s->text.data;
		*len = s->text.len;
		return 1;
	}
	if (r == 0)
		return 0;
	s->code = r;
out:
	if (err)
		*err = s->err;
	return s->code;
}
