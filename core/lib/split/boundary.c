/*
 * boundary.c - where items end, 64 bytes a step (boundary.h).
 *
 * Each step turns a block of 64 input bytes into bit masks, one bit a byte:
 * quotes, backslashes, commas, opening and closing brackets, newlines and
 * whitespace (AVX2 compares where the CPU has them, SSE2 where the
 * compiler has them, a byte loop elsewhere).  For a JSON array, the quotes
 * that are not escaped toggle "inside a string"; a prefix XOR of them gives
 * that state for every byte at once.  Outside strings, a block without
 * brackets at depth 1 has its items' ends in its comma mask, counted with
 * one popcount; only blocks with brackets (objects and arrays as items) are
 * walked bit by bit.  Backslashes are rare in most data and are walked one
 * by one when present.  NDJSON needs no string state (a raw newline cannot
 * be in a string): an item ends at each newline of a line that holds
 * anything but whitespace.
 */
#include <stdatomic.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "boundary.h"

#define BLOCK 64

/* x86-64's baseline has no popcount instruction, and libgcc's stand-in
 * for it took 8% of the parent's time: the pass is built twice, and
 * the loader picks the build with POPCNT where the CPU has it.  The block
 * functions are inlined into the pass, so that both builds have them.  A
 * third build, with AVX2 (boundary_pass.h included again under its target
 * pragma), took the parent's CPU on 1M small integers from 7.3 to 5.7 ms:
 * on such input the pass is a third of the parent's work. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#ifdef __SSE2__
#define PASS_AVX2 1
#endif
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

/* ---- the pass, in two builds ---- */

#define VARIANT(name) name##_generic
#define VARIANT_ATTR PASS_CLONES
#define CLASSIFY classify
#include "boundary_pass.h"
#undef VARIANT
#undef VARIANT_ATTR
#undef CLASSIFY

#ifdef PASS_AVX2
#pragma GCC push_options
#pragma GCC target("avx2,popcnt")
#include <immintrin.h>

IN_PASS uint64_t eq64(__m256i lo, __m256i hi, char c)
{
	__m256i v = _mm256_set1_epi8(c);

	return (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, v)) |
	       (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, v)) << 32;
}

/* classify(), 32 bytes a compare. */
IN_PASS void classify_avx2(const unsigned char *p, struct masks *m, int ndjson)
{
	__m256i lo = _mm256_loadu_si256((const __m256i *)(const void *)p);
	__m256i hi = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
	__m256i low_lo, low_hi;

	memset(m, 0, sizeof(*m));
	m->nl = eq64(lo, hi, '\n');
	if (ndjson) {
		m->ws = eq64(lo, hi, ' ') | eq64(lo, hi, '\t') | eq64(lo, hi, '\r') | m->nl;
		return;
	}
	low_lo = _mm256_or_si256(lo, _mm256_set1_epi8(0x20));
	low_hi = _mm256_or_si256(hi, _mm256_set1_epi8(0x20));
	m->quote = eq64(lo, hi, '"');
	m->bslash = eq64(lo, hi, '\\');
	m->comma = eq64(lo, hi, ',');
	m->open = eq64(low_lo, low_hi, '{');
	m->close = eq64(low_lo, low_hi, '}');
	m->ws = m->nl;
}

#define VARIANT(name) name##_avx2
#define VARIANT_ATTR
#define CLASSIFY classify_avx2
#include "boundary_pass.h"
#undef VARIANT
#undef VARIANT_ATTR
#undef CLASSIFY
#pragma GCC pop_options
#endif

/* Which build: -1 until the first pass asks the CPU (atomic: a program
 * embedding libpexec may split in two threads at once). */
static _Atomic int use_avx2 = -1;

int pexec__bounds_avx2(int on)
{
	int avx2 = 0;

#ifdef PASS_AVX2
	__builtin_cpu_init();
	avx2 = on && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
#else
	(void)on;
#endif
	atomic_store_explicit(&use_avx2, avx2, memory_order_relaxed);
	return avx2;
}

size_t pexec__bounds_pass(struct pexec__bounds *b, const unsigned char *data, size_t len,
                          int eof, uint32_t want, uint32_t *items)
{
	int avx2 = atomic_load_explicit(&use_avx2, memory_order_relaxed);

	if (avx2 < 0)
		avx2 = pexec__bounds_avx2(1);
#ifdef PASS_AVX2
	if (avx2)
		return pass_avx2(b, data, len, eof, want, items);
#endif
	return pass_generic(b, data, len, eof, want, items);
}
