/*
 * boundary.h - where items end, found fast: the parent's pass over the input
 * when workers split and check their chunks themselves (boundary.c).
 *
 * The parent needs only where a chunk of whole items may end and how many
 * items it holds, so this pass looks at nothing but the bytes that decide
 * that: quotes, backslashes, brackets and commas of a JSON array (outside
 * strings, at the top level), newlines of NDJSON, 64 bytes a step.  It does
 * not check the syntax: the workers run the strict splitter over each chunk
 * (pexec__split_fragment), and the first error in input order is the one
 * reported.  Up to that error the two agree on every byte, so a chunk of a
 * well-formed input always ends between two items.
 */
#ifndef PEXEC_SPLIT_BOUNDARY_H
#define PEXEC_SPLIT_BOUNDARY_H

#include <stddef.h>
#include <stdint.h>

/* The pass's state between calls. */
struct pexec__bounds {
	int ndjson;
	int in_string;       /* JSON: the next byte is inside a string */
	int escaped;         /* JSON: the next byte is escaped */
	long depth;          /* JSON: containers open (1: in the top-level array) */
	int done;            /* JSON: the top-level array has closed (or could not open) */
	int content;         /* NDJSON: a byte other than whitespace since the last newline */
	uint64_t offset;     /* input bytes passed */
	uint64_t lines;      /* newlines passed */
	uint64_t line_start; /* offset of the first byte of the current line */
};

void pexec__bounds_init(struct pexec__bounds *b, int ndjson);

/* Passes over `data[0..len)`, the input's next bytes, until `want` items
 * have ended (an item ends at its top-level comma, or at the newline of its
 * NDJSON line): returns how many bytes it passed (up to and including the
 * last end) and the items ended in *items.  It stops short of a last block
 * of under 64 bytes unless `eof`; at `eof` the bytes left count one more
 * item if an NDJSON line holds one.  Once b->done, JSON passes nothing: what
 * follows the top-level array is the last chunk's. */
size_t pexec__bounds_pass(struct pexec__bounds *b, const unsigned char *data, size_t len,
                          int eof, uint32_t want, uint32_t *items);

/* Whether the pass uses its AVX2 build (32 bytes a compare) where the CPU
 * has AVX2: `on` 1 by default; 0 makes it use the SSE2 one, for tests that
 * run both.  Returns whether AVX2 is now in use. */
int pexec__bounds_avx2(int on);

#endif
