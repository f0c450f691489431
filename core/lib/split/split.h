/*
 * split.h - the input splitter: cuts a JSON or NDJSON stream into items.
 *
 * The parent never parses values; it only finds where each item begins and
 * ends, validating the syntax on the way (RFC 8259, UTF-8 required) so that a
 * malformed input is refused with its line, column and byte offset.  The input
 * is streamed through a bounded buffer: memory is the size of the largest item,
 * not of the input.
 */
#ifndef PEXEC_SPLIT_H
#define PEXEC_SPLIT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pexec.h"

/* The largest single item accepted, in bytes. */
#define PEXEC_ITEM_MAX ((size_t)1 << 30)

/* The public pexec_splitter (pexec.h) is this splitter. */
typedef struct pexec_splitter pexec__splitter;

/* Splits what `fd` reads (not closed by the splitter).  `name` is how
 * messages refer to the input ("inputs.json", "<stdin>"). */
pexec__splitter *pexec__split_fd(int fd, const char *name, pexec_format format);
/* Splits `len` bytes at `data`, which must outlive the splitter. */
pexec__splitter *pexec__split_mem(const char *data, size_t len, const char *name,
                                  pexec_format format);

/* Returns 1 with the next item's exact bytes (no surrounding whitespace) in
 * *data and *len, valid until the next call; 0 at the clean end of the input; or
 * -PEXEC_EINPUT for malformed input ("malformed input 'NAME' at line L, column C,
 * byte B: why"),
 * -PEXEC_ESYS for a read error.  After an error every call returns it again. */
int pexec__split_next(pexec__splitter *s, const char **data, size_t *len, pexec_error *err);

/* Bytes consumed so far (for progress reporting). */
uint64_t pexec__split_offset(const pexec__splitter *s);

void pexec__split_free(pexec__splitter *s);

/* A chunk of an input: where it lies in it, and whether it is the first or
 * the last (pexec__split_fragment). */
struct pexec__fragment {
	uint64_t offset;     /* of its first byte in the input */
	uint64_t line;       /* the line that byte is on */
	uint64_t line_start; /* the offset that line begins at */
	int first, last;
};

/* Restarts a splitter of the input's name and format (pexec__split_mem,
 * reused) over the `len` bytes at `data`, one chunk of the input as
 * pexec__bounds_pass cut it: items as pexec__split_next gives them, with
 * messages that say where in the whole input.  A chunk that is not the last
 * ends just after the separator of its last item; once that item is taken,
 * pexec__split_fragment_end checks that nothing else is left. */
void pexec__split_fragment(pexec__splitter *s, const char *data, size_t len,
                           const struct pexec__fragment *f);
/* 0 when the chunk ends cleanly after the item taken last (its separator
 * and nothing else), or the error pexec__split_next would have given. */
int pexec__split_fragment_end(pexec__splitter *s, pexec_error *err);

/* A splitter kept for checking values one at a time (a worker's results):
 * NULL when out of memory; freed with pexec__split_free. */
pexec__splitter *pexec__split_checker(void);
/* Whether the 8 bytes at `p` are all ASCII digits: a byte outside '0'..'9'
 * sets its high bit in one of the three words (a borrow or carry between
 * bytes only happens where some byte is outside already). */
static inline int pexec__split_digits8(const unsigned char *p)
{
	const uint64_t ones = 0x0101010101010101ull;
	uint64_t w;

	memcpy(&w, p, 8);
	return ((w | (w + 0x46 * ones) | (w - 0x30 * ones)) & 0x8080808080808080ull) == 0;
}

/* The commonest results told valid without the state machine, inline: an
 * integer (8 digits a step, the last step overlapping) and a short string
 * of printable ASCII without escapes.  1: valid; 0: the full check decides. */
static inline int pexec__split_check_fast(const char *text, size_t n)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t i = n > 0 && p[0] == '-';

	if (i < n && (unsigned)(p[i] - '1') < 9u) {
		if (n - i < 8) {
			while (++i < n)
				if ((unsigned)(p[i] - '0') > 9u)
					return 0;
			return 1;
		}
		for (; i + 8 < n; i += 8)
			if (!pexec__split_digits8(p + i))
				return 0;
		return pexec__split_digits8(p + n - 8);
	}
	if (n == 1 && p[0] == '0')
		return 1;
	if (n >= 2 && n <= 64 && p[0] == '"' && p[n - 1] == '"') {
		for (i = 1; i < n - 1; i++)
			if (p[i] < 0x20 || p[i] > 0x7e || p[i] == '"' || p[i] == '\\')
				return 0;
		return 1;
	}
	return 0;
}

/* Whether the `len` bytes at `text` are exactly one JSON value by the same
 * strict rules (a newline is whitespace in it, and around it): 0, or -1
 * with "at byte B: why" in `err`. */
int pexec__split_check(pexec__splitter *checker, const char *text, size_t len,
                       pexec_error *err);

#endif
