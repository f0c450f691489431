/*
 * split_scan.c - the splitter's scan (split.c has the design): byte classes,
 * the state machine over RFC 8259, the container stack, and the reading and
 * end-of-input checks it drives, with pexec__split_next() on top.  They stay
 * in one file so that the per-item path is one inlined loop.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "split_internal.h"
#include "util.h"

/* Byte classes. */
#define C_WS 1		/* JSON whitespace */
#define C_STR 2		/* a string byte needing no attention */
#define C_DIGIT 4
#define C_NUMBAD 8	/* may not directly follow a number */
#define C_HEX 16

#define NO 0
#define WS C_WS
#define SP (C_WS | C_STR)
#define PL C_STR
#define DG (C_STR | C_DIGIT | C_NUMBAD | C_HEX)
#define HX (C_STR | C_NUMBAD | C_HEX)
#define AL (C_STR | C_NUMBAD)

/* Bytes 0x80 and up are all NO: the UTF-8 check takes them one by one. */
static const unsigned char cls[256] = {
	NO, NO, NO, NO, NO, NO, NO, NO, NO, WS, WS, NO, NO, WS, NO, NO, /* 0x00 */
	NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, NO, /* 0x10 */
	SP, PL, NO, PL, PL, PL, PL, PL, PL, PL, PL, AL, PL, AL, AL, PL, /* 0x20 */
	DG, DG, DG, DG, DG, DG, DG, DG, DG, DG, PL, PL, PL, PL, PL, PL, /* 0x30 */
	PL, HX, HX, HX, HX, HX, HX, AL, AL, AL, AL, AL, AL, AL, AL, AL, /* 0x40 */
	AL, AL, AL, AL, AL, AL, AL, AL, AL, AL, AL, PL, NO, PL, PL, PL, /* 0x50 */
	PL, HX, HX, HX, HX, HX, HX, AL, AL, AL, AL, AL, AL, AL, AL, AL, /* 0x60 */
	AL, AL, AL, AL, AL, AL, AL, AL, AL, AL, AL, PL, PL, PL, PL, PL, /* 0x70 */
};

#undef NO
#undef WS
#undef SP
#undef PL
#undef DG
#undef HX
#undef AL

/* ---- the container stack ---- */

static int top_is_obj(const pexec__splitter *s)
{
	size_t i = s->depth - 1;

	return (int)(s->stack[i >> 6] >> (i & 63)) & 1;
}

static const char *kind_name(const pexec__splitter *s)
{
	return top_is_obj(s) ? "an object" : "an array";
}

static int push(pexec__splitter *s, const unsigned char *p, int obj)
{
	size_t i = s->depth;
	uint64_t bit;

	if (i >= DEPTH_MAX)
		return FAIL_AT(s, p, "nesting deeper than %zu levels", DEPTH_MAX);
	if (i >= s->stack_cap) {
		size_t cap = s->stack_cap ? s->stack_cap * 2 : 4096;
		uint64_t *stack = realloc(s->stack, cap / 8);

		if (!stack)
			return pexec__fail(&s->err, PEXEC_ESYS,
			                   "cannot split '%s': out of memory",
			                   s->name), -PEXEC_ESYS;
		s->stack = stack;
		s->stack_cap = cap;
	}
	bit = (uint64_t)1 << (i & 63);
	if (obj)
		s->stack[i >> 6] |= bit;
	else
		s->stack[i >> 6] &= ~bit;
	s->depth = i + 1;
	return 0;
}

/* ---- the scanner ---- */

/*
 * Scans from s->pos.  Returns 1 with an item in item_start..item_end,
 * NEED_MORE when the buffered bytes ran out (s->state and s->pos say where to
 * resume), or a negative code.  The states are labels; s->state is only
 * written when the scan stops, so a token costs one jump, not one switch per
 * byte.
 */
static int scan(pexec__splitter *s)
{
	const unsigned char *const buf = s->buf;
	const unsigned char *const end = buf + s->end;
	const unsigned char *p = buf + s->pos;
	unsigned c;
	int r;
	char b[8];

/* Stops for a refill, to resume in `st` at p. */
#define SUSPEND(st) do { \
		s->state = (st); \
		s->pos = (size_t)(p - buf); \
		return NEED_MORE; \
	} while (0)

/* Skips whitespace, counting lines; leaves c = *p, or suspends in `st`. */
#define SKIP_WS(st) for (;;) { \
		if (p == end) \
			SUSPEND(st); \
		c = *p; \
		if (!(cls[c] & C_WS)) \
			break; \
		if (c == '\n') { \
			s->line++; \
			s->line_start = s->base + (uint64_t)(p - buf) + 1; \
		} \
		p++; \
	}

/* The same inside a container, where NDJSON allows no newline. */
#define SKIP_WS_IN(st) for (;;) { \
		if (p == end) \
			SUSPEND(st); \
		c = *p; \
		if (!(cls[c] & C_WS)) \
			break; \
		if (c == '\n') { \
			if (s->ndjson && !s->one_value) \
				return FAIL_AT(s, p, "unexpected end of line inside %s", \
				               kind_name(s)); \
			s->line++; \
			s->line_start = s->base + (uint64_t)(p - buf) + 1; \
		} \
		p++; \
	}

/* Marks p as the first byte of a top-level item. */
#define ITEM_BEGIN() do { \
		s->in_item = 1; \
		s->item_start = (size_t)(p - buf); \
		s->item_line = s->line; \
		s->item_line_start = s->line_start; \
	} while (0)

	switch (s->state) {
	case ST_START: goto start;
	case ST_JSON_OPEN: goto json_open;
	case ST_JSON_FIRST: goto json_first;
	case ST_JSON_NEXT: goto json_next;
	case ST_JSON_AFTER: goto json_after;
	case ST_JSON_DONE: goto json_done;
	case ST_ND_LINE: goto nd_line;
	case ST_ND_AFTER: goto nd_after;
	case ST_ND_CHECK: goto nd_check;
	case V_VALUE: goto value;
	case V_ARR_FIRST: goto arr_first;
	case V_ARR_NEXT: goto arr_next;
	case V_OBJ_FIRST: goto obj_first;
	case V_KEY: goto key;
	case V_COLON: goto colon;
	case V_AFTER: goto after;
	case V_STR: goto str;
	case V_STR_ESC: goto str_esc;
	case V_STR_HEX: goto str_hex;
	case V_STR_UTF8: goto str_utf8;
	case V_NUM_MINUS: goto num_minus;
	case V_NUM_ZERO: goto num_zero;
	case V_NUM_INT: goto num_int;
	case V_NUM_DOT: goto num_dot;
	case V_NUM_FRAC: goto num_frac;
	case V_NUM_E: goto num_e;
	case V_NUM_ESIGN: goto num_esign;
	case V_NUM_EXP: goto num_exp;
	case V_LIT: goto lit;
	case ST_TEXT: break; /* split_text.c's, never scanned here */
	}
	return FAIL_AT(s, p, "internal error: bad splitter state");

start:
	/* A BOM needs its 3 bytes in view before it can be told apart. */
	if (end - p < 3 && !s->eof)
		SUSPEND(ST_START);
	if (end - p >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
		p += 3;
	if (s->ndjson)
		goto nd_line;

json_open:
	SKIP_WS(ST_JSON_OPEN);
	if (c != '[') {
		if (c == 0 || (c >= 0x80 && !is_utf8_lead(c)))
			return pexec__split_unexpected(s, p, "");
		return pexec__split_not_an_array(s, p);
	}
	p++;
json_first:
	SKIP_WS(ST_JSON_FIRST);
	if (c == ']') {
		p++;
		s->array_end = s->base + (uint64_t)(p - buf);
		goto json_done;
	}
	ITEM_BEGIN();
	goto value_start;

json_next:
	SKIP_WS(ST_JSON_NEXT);
	if (c == ']')
		return FAIL_AT(s, p, "trailing comma before ']'");
	ITEM_BEGIN();
	goto value_start;

json_after:
	SKIP_WS(ST_JSON_AFTER);
	if (c == ',') {
		p++;
		goto json_next;
	}
	if (c == ']') {
		p++;
		s->array_end = s->base + (uint64_t)(p - buf);
		goto json_done;
	}
	return pexec__split_unexpected(s, p, "',' or ']'");

json_done:
	SKIP_WS(ST_JSON_DONE);
	if (c == 0 || (c >= 0x80 && !is_utf8_lead(c)))
		return pexec__split_unexpected(s, p, "");
	return pexec__split_after_array(s, p);

nd_line:
	SKIP_WS(ST_ND_LINE);
	ITEM_BEGIN();
	goto value_start;

nd_after:
	for (;;) {
		if (p == end)
			SUSPEND(ST_ND_AFTER);
		c = *p;
		if (c != ' ' && c != '\t' && c != '\r')
			break;
		p++;
	}
	if (c == '\n') {
		s->line++;
		s->line_start = s->base + (uint64_t)(p - buf) + 1;
		p++;
		goto nd_line;
	}
	return pexec__split_rest_of_line(s, p);

nd_check:
	/* An NDJSON item goes out only once its line is known to hold nothing
	 * else, so that a malformed line never yields a result. */
	for (;;) {
		if (p == end)
			SUSPEND(ST_ND_CHECK);
		c = *p;
		if (c != ' ' && c != '\t' && c != '\r')
			break;
		p++;
	}
	if (c != '\n')
		return pexec__split_rest_of_line(s, p);
	s->line++;
	s->line_start = s->base + (uint64_t)(p - buf) + 1;
	p++;
	s->in_item = 0;
	s->state = ST_ND_LINE;
	s->pos = (size_t)(p - buf);
	return 1;

	/* ---- values ---- */

value:
	SKIP_WS_IN(V_VALUE);
value_start:
	/* c == *p, the first byte of a value.  Small numbers are the common
	 * item: they skip the switch. */
	if (c - '1' < 9u) {
		p++;
		goto num_int;
	}
	switch (c) {
	case '"':
		p++;
		s->str_key = 0;
		goto str;
	case '[':
		if ((r = push(s, p, 0)) < 0)
			return r;
		p++;
		goto arr_first;
	case '{':
		if ((r = push(s, p, 1)) < 0)
			return r;
		p++;
		goto obj_first;
	case '-':
		p++;
		goto num_minus;
	case '0':
		p++;
		goto num_zero;
	case '1': case '2': case '3': case '4': case '5':
	case '6': case '7': case '8': case '9':
		p++;
		goto num_int;
	case 't':
		s->lit = "true";
		break;
	case 'f':
		s->lit = "false";
		break;
	case 'n':
		s->lit = "null";
		break;
	case '\'':
		return FAIL_AT(s, p, "unexpected ''' (strings take double quotes)");
	case '+':
		return FAIL_AT(s, p, "invalid number: leading '+'");
	case '.':
		return FAIL_AT(s, p, "invalid number: no digit before '.'");
	default:
		return pexec__split_unexpected(s, p, "a value");
	}
	s->lit_i = 1;
	p++;
lit:
	while (s->lit[s->lit_i]) {
		if (p == end)
			SUSPEND(V_LIT);
		if (*p != (unsigned char)s->lit[s->lit_i])
			return FAIL_AT(s, p, "invalid literal (expected '%s')", s->lit);
		p++;
		s->lit_i++;
	}
	goto value_done;

value_done:
	if (s->depth == 0) {
		s->item_end = (size_t)(p - buf);
		if (s->ndjson)
			goto nd_check;
		s->in_item = 0;
		s->state = ST_JSON_AFTER;
		/* Taking the comma that usually follows now saves the next
		 * call a trip through json_after. */
		if (!s->ndjson && p < end && *p == ',') {
			p++;
			s->state = ST_JSON_NEXT;
		}
		s->pos = (size_t)(p - buf);
		return 1;
	}
after:
	SKIP_WS_IN(V_AFTER);
	if (c == ',') {
		p++;
		if (top_is_obj(s))
			goto key;
		goto arr_next;
	}
	if (top_is_obj(s)) {
		if (c != '}')
			return pexec__split_unexpected(s, p, "',' or '}'");
	} else if (c != ']') {
		return pexec__split_unexpected(s, p, "',' or ']'");
	}
	p++;
	s->depth--;
	goto value_done;

arr_first:
	SKIP_WS_IN(V_ARR_FIRST);
	if (c == ']') {
		p++;
		s->depth--;
		goto value_done;
	}
	goto value_start;

arr_next:
	SKIP_WS_IN(V_ARR_NEXT);
	if (c == ']')
		return FAIL_AT(s, p, "trailing comma before ']'");
	goto value_start;

obj_first:
	SKIP_WS_IN(V_OBJ_FIRST);
	if (c == '}') {
		p++;
		s->depth--;
		goto value_done;
	}
	if (c != '"')
		return pexec__split_unexpected(s, p, "a string key or '}'");
	p++;
	s->str_key = 1;
	goto str;

key:
	SKIP_WS_IN(V_KEY);
	if (c == '}')
		return FAIL_AT(s, p, "trailing comma before '}'");
	if (c != '"')
		return pexec__split_unexpected(s, p, "a string key");
	p++;
	s->str_key = 1;
	goto str;

colon:
	SKIP_WS_IN(V_COLON);
	if (c != ':')
		return pexec__split_unexpected(s, p, "':'");
	p++;
	goto value;

	/* ---- strings ---- */

str:
	for (;;) {
		while (p < end && (cls[*p] & C_STR))
			p++;
		if (p == end)
			SUSPEND(V_STR);
		c = *p;
		if (c == '"') {
			p++;
			if (s->str_key)
				goto colon;
			goto value_done;
		}
		if (c == '\\') {
			p++;
			goto str_esc;
		}
		if (c < 0x20)
			return FAIL_AT(s, p, "control character 0x%02X in string", c);
		/* UTF-8: the lead fixes the count and the range of the first
		 * continuation, which is what shuts out overlongs, UTF-16
		 * surrogates (ED A0..BF) and code points past U+10FFFF. */
		s->lo = 0x80;
		s->hi = 0xbf;
		if (c >= 0xc2 && c <= 0xdf) {
			s->need = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			s->need = 2;
			if (c == 0xe0)
				s->lo = 0xa0;
			else if (c == 0xed)
				s->hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			s->need = 3;
			if (c == 0xf0)
				s->lo = 0x90;
			else if (c == 0xf4)
				s->hi = 0x8f;
		} else {
			return FAIL_AT(s, p, "invalid UTF-8 in string");
		}
		p++;
str_utf8:
		while (s->need) {
			if (p == end)
				SUSPEND(V_STR_UTF8);
			if (*p < s->lo || *p > s->hi)
				return FAIL_AT(s, p, "invalid UTF-8 in string");
			s->lo = 0x80;
			s->hi = 0xbf;
			s->need--;
			p++;
		}
	}

str_esc:
	if (p == end)
		SUSPEND(V_STR_ESC);
	c = *p;
	switch (c) {
	case '"': case '\\': case '/': case 'b':
	case 'f': case 'n': case 'r': case 't':
		p++;
		goto str;
	case 'u':
		p++;
		s->need = 4;
		goto str_hex;
	}
	if (c > 0x20 && c < 0x7f)
		return FAIL_AT(s, p, "invalid escape '\\%c' in string", (char)c);
	return FAIL_AT(s, p, "invalid escape: byte 0x%02X after '\\' in string", c);

str_hex:
	/* Lone surrogates are let through: pairing is the plugin's concern. */
	while (s->need) {
		if (p == end)
			SUSPEND(V_STR_HEX);
		if (!(cls[*p] & C_HEX))
			return FAIL_AT(s, p, "invalid \\u escape in string: %s is not a hex digit",
			               pexec__split_show(*p, b));
		s->need--;
		p++;
	}
	goto str;

	/* ---- numbers ---- */

num_minus:
	if (p == end)
		SUSPEND(V_NUM_MINUS);
	c = *p;
	if (c == '0') {
		p++;
		goto num_zero;
	}
	if (!(cls[c] & C_DIGIT))
		return FAIL_AT(s, p, "invalid number: expected a digit after '-'");
	p++;
	goto num_int;

num_zero:
	if (p == end)
		SUSPEND(V_NUM_ZERO);
	c = *p;
	if (cls[c] & C_DIGIT)
		return FAIL_AT(s, p, "invalid number: leading zero");
	goto num_int_end;

num_int:
	while (p < end && (cls[*p] & C_DIGIT))
		p++;
	if (p == end)
		SUSPEND(V_NUM_INT);
	c = *p;
num_int_end:
	if (c == '.') {
		p++;
		goto num_dot;
	}
	if (c == 'e' || c == 'E') {
		p++;
		goto num_e;
	}
	goto num_end;

num_dot:
	if (p == end)
		SUSPEND(V_NUM_DOT);
	if (!(cls[*p] & C_DIGIT))
		return FAIL_AT(s, p, "invalid number: expected a digit after '.'");
	p++;
num_frac:
	while (p < end && (cls[*p] & C_DIGIT))
		p++;
	if (p == end)
		SUSPEND(V_NUM_FRAC);
	c = *p;
	if (c == 'e' || c == 'E') {
		p++;
		goto num_e;
	}
	goto num_end;

num_e:
	if (p == end)
		SUSPEND(V_NUM_E);
	if (*p == '+' || *p == '-')
		p++;
num_esign:
	if (p == end)
		SUSPEND(V_NUM_ESIGN);
	if (!(cls[*p] & C_DIGIT))
		return FAIL_AT(s, p, "invalid number: expected a digit in the exponent");
	p++;
num_exp:
	while (p < end && (cls[*p] & C_DIGIT))
		p++;
	if (p == end)
		SUSPEND(V_NUM_EXP);
	c = *p;
num_end:
	/* A number ends at the first byte not its own; "0x1F", "1.2.3" and
	 * "12abc" stop here rather than as a puzzling missing comma. */
	if (cls[c] & C_NUMBAD)
		return FAIL_AT(s, p, "invalid number: unexpected %s", pexec__split_show(c, b));
	goto value_done;

#undef SUSPEND
#undef SKIP_WS
#undef SKIP_WS_IN
#undef ITEM_BEGIN
}

/* The input ended in s->state.  Returns 0 at a clean end, 1 for an NDJSON
 * number that the end of input completes, or the error. */
static int at_eof(pexec__splitter *s)
{
	const unsigned char *p = s->buf + s->end;

	switch (s->state) {
	case ST_START:
	case ST_JSON_OPEN:
		return FAIL_AT(s, p, "empty input: expected a JSON array");
	case ST_JSON_FIRST:
	case ST_JSON_NEXT:
	case ST_JSON_AFTER:
		return FAIL_AT(s, p, "unexpected end of input inside the top-level array");
	case ST_JSON_DONE:
	case ST_ND_LINE:
	case ST_ND_AFTER:
		return 0;
	case ST_ND_CHECK:
		/* The last line ends without a newline. */
		s->in_item = 0;
		s->pos = s->end;
		s->state = ST_ND_LINE;
		return 1;
	case V_STR:
	case V_STR_ESC:
	case V_STR_HEX:
	case V_STR_UTF8:
		return FAIL_AT(s, p, "unexpected end of input inside a string");
	case V_NUM_MINUS:
	case V_NUM_DOT:
	case V_NUM_E:
	case V_NUM_ESIGN:
		return FAIL_AT(s, p, "unexpected end of input inside a number");
	case V_LIT:
		return FAIL_AT(s, p, "unexpected end of input inside a literal");
	case V_NUM_ZERO:
	case V_NUM_INT:
	case V_NUM_FRAC:
	case V_NUM_EXP:
		if (s->depth > 0)
			break;
		if (!s->ndjson)
			return FAIL_AT(s, p, "unexpected end of input inside the top-level array");
		s->in_item = 0;
		s->item_end = s->end;
		s->pos = s->end;
		s->state = ST_ND_AFTER;
		return 1;
	default:
		break;
	}
	return FAIL_AT(s, p, "unexpected end of input inside %s", kind_name(s));
}

int pexec__split_item_too_big(pexec__splitter *s)
{
	return pexec__split_fail_pos(s, s->base + s->item_start, s->item_line, s->item_line_start,
	                "item larger than 1 GiB");
}

/* Reads more input after the bytes still needed: the current item's, or
 * none between items.  Moves them to the front first, and grows the buffer
 * when one item fills it, so memory follows the largest item. */
int pexec__split_refill(pexec__splitter *s)
{
	size_t keep = s->in_item ? s->item_start : s->pos;
	ssize_t n;

	if (keep > 0) {
		memmove(s->own, s->own + keep, s->end - keep);
		s->base += keep;
		s->pos -= keep;
		s->end -= keep;
		if (s->state == ST_ND_CHECK)
			s->item_end -= keep;
		if (s->in_item)
			s->item_start = 0;
	}
	if (s->in_item && s->end - s->item_start > PEXEC_ITEM_MAX)
		return pexec__split_item_too_big(s);
	if (s->cap - s->end < BLOCK / 2) {
		size_t cap = s->cap * 2;
		unsigned char *own;

		if (cap > PEXEC_ITEM_MAX + BLOCK)
			cap = PEXEC_ITEM_MAX + BLOCK;
		own = realloc(s->own, cap);
		if (!own)
			return pexec__fail(&s->err, PEXEC_ESYS,
			                   "cannot split '%s': out of memory",
			                   s->name), -PEXEC_ESYS;
		s->own = own;
		s->buf = own;
		s->cap = cap;
	}
	n = pexec__read_some(s->fd, s->own + s->end, s->cap - s->end);
	if (n < 0)
		return pexec__fail(&s->err, PEXEC_ESYS, "cannot read '%s': %s",
		                   s->name, strerror(errno)), -PEXEC_ESYS;
	if (n == 0)
		s->eof = 1;
	s->end += (size_t)n;
	return 0;
}

int pexec__split_fragment_end(pexec__splitter *s, pexec_error *err)
{
	int r = s->code ? s->code : scan(s);

	if (r == NEED_MORE && s->pos == s->end &&
	    (s->state == ST_JSON_NEXT || s->state == ST_ND_LINE))
		return 0;
	if (r > 0)
		r = pexec__split_fail_pos(s, s->base + s->item_start, s->item_line,
		                          s->item_line_start,
		                          "internal error: a chunk holds more items than counted");
	else if (r == NEED_MORE)
		r = FAIL_AT(s, s->buf + s->end, "internal error: a chunk ends inside an item");
	s->code = r;
	if (err)
		*err = s->err;
	return r;
}

int pexec__split_next(pexec__splitter *s, const char **data, size_t *len, pexec_error *err)
{
	int r;

	if (s->delim >= 0)
		return pexec__split_text_next(s, data, len, err);
	if (s->code)
		goto out;
	for (;;) {
		r = scan(s);
		if (r != NEED_MORE)
			break;
		if (s->eof) {
			r = at_eof(s);
			break;
		}
		r = pexec__split_refill(s);
		if (r < 0)
			break;
	}
	if (r == 1 && s->item_end - s->item_start > PEXEC_ITEM_MAX)
		r = pexec__split_item_too_big(s);
	if (r == 1) {
		*data = (const char *)s->buf + s->item_start;
		*len = s->item_end - s->item_start;
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
