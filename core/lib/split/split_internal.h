/*
 * split_internal.h - the splitter's state, shared by split.c (the splitter
 * itself and the messages that say what is wrong and where) and split_scan.c
 * (the syntax: byte classes, the state machine, the container stack, and the
 * reading it drives; the per-item path stays in that one file).
 */
#ifndef PEXEC_SPLIT_INTERNAL_H
#define PEXEC_SPLIT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "split.h"

/* Read size, and the buffer's first size. */
#define BLOCK ((size_t)256 << 10)
/* Deeper nesting than this is refused rather than grown into. */
#define DEPTH_MAX ((size_t)10000000)

/* Returned by scan() when it ran out of buffered bytes. */
#define NEED_MORE 0

enum state {
	ST_START,	/* before the optional BOM */
	ST_JSON_OPEN,	/* before the top-level '[' */
	ST_JSON_FIRST,	/* after '[': an item or ']' */
	ST_JSON_NEXT,	/* after a top-level ',': an item */
	ST_JSON_AFTER,	/* after an item: ',' or ']' */
	ST_JSON_DONE,	/* after the top-level ']': only whitespace */
	ST_ND_LINE,	/* NDJSON: between values, blank lines allowed */
	ST_ND_AFTER,	/* NDJSON: after a value, only the rest of the line */
	ST_ND_CHECK,	/* NDJSON: a value is complete; the rest of its line must
			 * be blank before it is handed out */
	ST_TEXT,	/* lines or NUL-separated items (split_text.c), after the
			 * optional BOM */

	/* Inside an item. */
	V_VALUE,	/* after ':' */
	V_ARR_FIRST,	/* after '[': a value or ']' */
	V_ARR_NEXT,	/* after ',' in an array */
	V_OBJ_FIRST,	/* after '{': a key or '}' */
	V_KEY,		/* after ',' in an object */
	V_COLON,	/* after a key */
	V_AFTER,	/* after a value in a container: ',' or the close */
	V_STR,
	V_STR_ESC,	/* after '\' */
	V_STR_HEX,	/* in the 4 digits of \uXXXX */
	V_STR_UTF8,	/* in the continuation bytes of a UTF-8 sequence */
	V_NUM_MINUS,
	V_NUM_ZERO,
	V_NUM_INT,
	V_NUM_DOT,
	V_NUM_FRAC,
	V_NUM_E,
	V_NUM_ESIGN,
	V_NUM_EXP,
	V_LIT,		/* in true, false or null */
};

struct pexec_splitter {
	const unsigned char *buf;	/* the bytes being scanned */
	unsigned char *own;		/* buf when reading an fd; NULL for memory */
	size_t cap;
	size_t pos;			/* the next byte to scan */
	size_t end;			/* the end of the bytes read */
	size_t item_start, item_end;
	uint64_t base;			/* input offset of buf[0] */
	uint64_t line, line_start;	/* line_start: input offset */
	uint64_t item_line, item_line_start;
	int fd;
	int eof;
	int ndjson;
	int in_item;
	int str_key;			/* the string being scanned is a key */
	enum state state;
	unsigned need, lo, hi;		/* \u digits or UTF-8 bytes still due */
	const char *lit;		/* the literal being matched, from lit_i */
	unsigned lit_i;
	uint64_t *stack;		/* container kinds, bit set: object */
	size_t depth, stack_cap;	/* stack_cap in levels */
	int code;			/* 0, or what every call now returns */
	int one_value;			/* pexec__split_check: one value, in which a
				 * newline is whitespace; messages give the byte */
	uint64_t array_end;		/* JSON: input offset after the top-level ']' */
	int delim;			/* text items: '\n' or '\0'; -1: JSON or NDJSON */
	pexec_buf text;			/* a text item, quoted as a JSON string */
	pexec_error err;
	char name[];
};

static inline int is_utf8_lead(unsigned c)
{
	return c >= 0xc2 && c <= 0xf4;
}

/* Fails the splitter (s->err) at input offset `off`, on `line`, which began
 * at offset `line_start`; returns -PEXEC_EINPUT. */
int pexec__split_fail_pos(pexec__splitter *s, uint64_t off, uint64_t line, uint64_t line_start,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Fails at `p`, on the current line (p is never past a newline not yet
 * counted, since newlines are counted as they are passed). */
#define FAIL_AT(s, p, ...) \
	pexec__split_fail_pos((s), (s)->base + (uint64_t)((p) - (s)->buf), (s)->line, \
	                      (s)->line_start, __VA_ARGS__)

/* How a byte appears in a message: printable quoted, others in hex. */
const char *pexec__split_show(unsigned c, char out[8]);
/* An unexpected byte outside a string; `expect` says what could have come.
 * NUL, comments and bytes that cannot start UTF-8 get their own words. */
int pexec__split_unexpected(pexec__splitter *s, const unsigned char *p, const char *expect);
/* JSON: the input does not begin with '[' (p is its first byte), or has
 * more after the top-level array (p): the message says which format the
 * input looks like it is in. */
int pexec__split_not_an_array(pexec__splitter *s, const unsigned char *p);
int pexec__split_after_array(pexec__splitter *s, const unsigned char *p);
/* NDJSON: something other than blanks follows a value on its line. */
int pexec__split_rest_of_line(pexec__splitter *s, const unsigned char *p);

/* Reads more input after the bytes still needed (the current item's, from
 * item_start, or none); 0, or the error.  (split_scan.c) */
int pexec__split_refill(pexec__splitter *s);
/* Fails the current item for being over PEXEC_ITEM_MAX. */
int pexec__split_item_too_big(pexec__splitter *s);
/* pexec__split_next() for lines and NUL-separated items (split_text.c). */
int pexec__split_text_next(pexec__splitter *s, const char **data, size_t *len,
                           pexec_error *err);

#endif /* PEXEC_SPLIT_INTERNAL_H */
