/*
 * boundary.c - where items end, 64 bytes a step (boundary.h).
 *
 * Each step turns a block of 64 input bytes into bit masks, one bit a byte:
 * quotes, backslashes, commas, opening and closing brackets, newlines and
 * whitespace (SSE2 compares where the compiler has them, a byte loop
 * elsewhere).  For a JSON array, the quotes that are not escaped toggle
 * "inside a string"; a prefix XOR of them gives that state for every byte at
 * once.  Outside strings, a block without brackets at depth 1 has its items'
 * ends in its comma mask, counted with one popcount; only blocks with
 * brackets (objects and arrays as items) are walked bit by bit.  Backslashes
 * are rare in most data and are walked one by one when present.  NDJSON
 * needs no string state (a raw newline cannot be in a string): an item ends
 * at each newline of a line that holds anything but whitespace.
 */
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "boundary.h"

#define BLOCK 64

/* x86-64's baseline has no popcount instruction, and libgcc's stand-in
 * for it took 8% of the parent's time: the pass is built twice, and
 * the loader picks the build with POPCNT where the CPU has it.  The block
 * functions are inlined into the pass, so that both builds have them. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define PASS_CLONES __attribute__((target_clones("popcnt", "default")))
#define IN_PASS static inline __attribute__((always_inline))
#else
#define PASS_CLONES
#define IN_PASS static inline
#endif

struct masks {
	uint64_t quote, bslash, comma, open, close, nl, ws;
};

#ifdef __SSE2__
IN_PASS uint64_t eq16(__m128i v, char c)
{
	return (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c)));
}

IN_PASS void classify(const unsigned char *p, struct masks *m, int ndjson)
{
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < 4; i++) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
		unsigned shift = 16u * (unsigned)i;

		m->nl |= eq16(v, '\n') << shift;
		if (ndjson) {
			m->ws |= (eq16(v, ' ') | eq16(v, '\t') | eq16(v, '\r')) << shift;
			continue;
		}
		/* '[' and '{' (']' and '}') differ only in 0x20. */
		__m128i low = _mm_or_si128(v, _mm_set1_epi8(0x20));
		m->quote |= eq16(v, '"') << shift;
		m->bslash |= eq16(v, '\\') << shift;
		m->comma |= eq16(v, ',') << shift;
		m->open |= eq16(low, '{') << shift;
		m->close |= eq16(low, '}') << shift;
	}
	m->ws |= m->nl;
}
#else
IN_PASS void classify(const unsigned char *p, struct masks *m, int ndjson)
{
	memset(m, 0, sizeof(*m));
	for (unsigned i = 0; i < BLOCK; i++) {
		uint64_t bit = 1ull << i;
		unsigned c = p[i];

		if (c == '\n')
			m->nl |= bit;
		if (ndjson) {
			if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
				m->ws |= bit;
			continue;
		}
		if (c == '"')
			m->quote |= bit;
		else if (c == '\\')
			m->bslash |= bit;
		else if (c == ',')
			m->comma |= bit;
		else if ((c | 0x20) == '{')
			m->open |= bit;
		else if ((c | 0x20) == '}')
			m->close |= bit;
	}
}
#endif

IN_PASS uint64_t prefix_xor(uint64_t x)
{
	x ^= x << 1;
	x ^= x << 2;
	x ^= x << 4;
	x ^= x << 8;
	x ^= x << 16;
	x ^= x << 32;
	return x;
}

/* Bits 0..i. */
IN_PASS uint64_t upto(unsigned i)
{
	return i >= 63 ? ~0ull : (2ull << i) - 1;
}

/* The bytes escaped by a backslash, given those of the block and whether
 * its first byte is escaped; *carry: the next block's first is. */
static uint64_t escapes(uint64_t bslash, int *carry)
{
	uint64_t esc = *carry ? 1 : 0;

	*carry = 0;
	while (bslash) {
		unsigned i = (unsigned)__builtin_ctzll(bslash);
		bslash &= bslash - 1;
		if (esc >> i & 1)
			continue; /* an escaped backslash escapes nothing */
		if (i == 63)
			*carry = 1;
		else
			esc |= 1ull << (i + 1);
	}
	return esc;
}

/* Passes `n` bytes (n <= 64) of the block whose newlines are `nl`. */
IN_PASS void count_lines(struct pexec__bounds *b, uint64_t nl, unsigned n)
{
	nl &= upto(n - 1);
	if (nl) {
		b->lines += (uint64_t)__builtin_popcountll(nl);
		b->line_start = b->offset + 64 - (unsigned)__builtin_clzll(nl);
	}
	b->offset += n;
}

void pexec__bounds_init(struct pexec__bounds *b, int ndjson)
{
	memset(b, 0, sizeof(*b));
	b->ndjson = ndjson;
}

/* Before the top-level '[': a BOM and whitespace.  Returns the bytes passed;
 * sets depth 1 at the '[', or done at anything else. */
static size_t json_open(struct pexec__bounds *b, const unsigned char *p, size_t len)
{
	size_t i = 0;

	if (b->offset == 0 && len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
		i = 3;
	for (; i < len; i++) {
		if (p[i] == '[') {
			b->depth = 1;
			i++;
			break;
		}
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n') {
			b->done = 1; /* not an array: the worker of the one chunk says so */
			break;
		}
		if (p[i] == '\n') {
			b->lines++;
			b->line_start = b->offset + i + 1;
		}
	}
	b->offset += i;
	return i;
}

/* Walks a block with brackets bit by bit.  Returns the bytes of it passed:
 * all 64, or up to the item end that made `want`, or up to the close of the
 * top-level array. */
static unsigned json_walk(struct pexec__bounds *b, const unsigned char *p, uint64_t structural,
                          uint32_t want, uint32_t *found)
{
	while (structural) {
		unsigned i = (unsigned)__builtin_ctzll(structural);
		unsigned c = p[i] | 0x20;

		structural &= structural - 1;
		if (c == '{') {
			b->depth++;
		} else if (c == '}') {
			if (--b->depth <= 0) {
				b->done = 1;
				return i + 1;
			}
		} else if (b->depth == 1 && ++*found == want) {
			return i + 1;
		}
	}
	return BLOCK;
}

/* One JSON block of `n` valid bytes at `p` (padded to 64). */
IN_PASS unsigned json_block(struct pexec__bounds *b, const unsigned char *p, unsigned n,
                           uint32_t want, uint32_t *found)
{
	struct masks m;
	uint64_t esc, in_str, outside, ends;
	unsigned passed;

	classify(p, &m, 0);
	esc = m.bslash || b->escaped ? escapes(m.bslash, &b->escaped) : 0;
	in_str = prefix_xor(m.quote & ~esc);
	if (b->in_string)
		in_str = ~in_str;
	outside = ~in_str;
	if (!((m.open | m.close) & outside) && b->depth == 1) {
		ends = m.comma & outside;
		if (*found + (uint32_t)__builtin_popcountll(ends) < want) {
			*found += (uint32_t)__builtin_popcountll(ends);
			passed = BLOCK;
		} else {
			/* The item end that makes `want`: clear the ones before it. */
			for (uint32_t k = want - *found; k > 1; k--)
				ends &= ends - 1;
			passed = (unsigned)__builtin_ctzll(ends) + 1;
			*found = want;
		}
	} else if ((m.open | m.close) & outside) {
		passed = json_walk(b, p, (m.comma | m.open | m.close) & outside, want, found);
	} else {
		passed = BLOCK; /* deeper, and no bracket: nothing to see */
	}
	if (passed > n)
		passed = n;
	/* A block cut short ends outside any string, at a comma or the close. */
	b->in_string = passed == BLOCK ? (int)(in_str >> 63) : 0;
	if (passed != BLOCK)
		b->escaped = 0;
	count_lines(b, m.nl, passed);
	return passed;
}

/* One NDJSON block: an item ends at each newline after content. */
IN_PASS unsigned nd_block(struct pexec__bounds *b, const unsigned char *p, unsigned n,
                         uint32_t want, uint32_t *found)
{
	struct masks m;
	uint64_t content, nl, below = 0;
	unsigned passed = n;

	classify(p, &m, 1);
	content = ~m.ws & upto(n - 1);
	nl = m.nl & upto(n - 1);
	while (nl) {
		unsigned i = (unsigned)__builtin_ctzll(nl);
		uint64_t line = upto(i) & ~below;

		nl &= nl - 1;
		below = upto(i);
		if (b->content || (content & line)) {
			b->content = 0;
			if (++*found == want) {
				passed = i + 1;
				break;
			}
		}
	}
	if (passed == n && (content & ~below))
		b->content = 1;
	count_lines(b, m.nl, passed);
	return passed;
}

PASS_CLONES
size_t pexec__bounds_pass(struct pexec__bounds *b, const unsigned char *data, size_t len,
                          int eof, uint32_t want, uint32_t *items)
{
	size_t pos = 0;
	uint32_t found = 0;

	if (!b->ndjson && !b->done && b->depth == 0)
		pos = json_open(b, data, len);
	while (found < want && !b->done && pos < len) {
		unsigned char pad[BLOCK];
		const unsigned char *p = data + pos;
		unsigned n = BLOCK;

		if (len - pos < BLOCK) {
			if (!eof)
				break;
			n = (unsigned)(len - pos);
			memset(pad, ' ', BLOCK);
			memcpy(pad, p, n);
			p = pad;
		}
		pos += b->ndjson ? nd_block(b, p, n, want, &found)
		                 : json_block(b, p, n, want, &found);
	}
	if (eof && b->ndjson && pos == len && b->content && found < want) {
		b->content = 0;
		found++; /* a last line without its newline */
	}
	*items = found;
	return pos;
}
