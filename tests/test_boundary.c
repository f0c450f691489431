/*
 * test_boundary.c - the parent's fast pass over the input
 * (core/lib/split/boundary.c) against the strict splitter, which is the
 * truth: on generated JSON arrays and NDJSON streams (strings with escapes,
 * brackets and commas inside strings, nested containers, whitespace and
 * newlines everywhere), the pass counts the same items and cuts exactly
 * after the separator of the item it was asked to stop at, whether it sees
 * the input whole or a few bytes at a time.  The fragment splitter
 * (pexec__split_fragment) then reads each chunk the pass cut as the strict
 * splitter reads the whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "pexec.h"
#include "split/boundary.h"
#include "split/split.h"

TestSuite(boundary);

struct text {
	char *p;
	size_t len, cap;
};

static void put(struct text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->p = realloc(t->p, t->cap);
		cr_assert_not_null(t->p);
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

static void puts_(struct text *t, const char *s)
{
	put(t, s, strlen(s));
}

static unsigned rnd(unsigned *seed, unsigned n)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 8) % n;
}

/* Whitespace; newlines only where `nl` allows them. */
static void ws(struct text *t, unsigned *seed, int nl)
{
	static const char *const spaces[] = { "", "", " ", "  ", "\t", "\n", "\r\n", " \n  " };
	const char *s = spaces[rnd(seed, nl ? 8 : 5)];

	puts_(t, s);
}

static void string(struct text *t, unsigned *seed)
{
	static const char *const parts[] = {
		"a", "xyz", ",", "[", "]", "{", "}", "\\\"", "\\\\", "\\n", "\\u00e9", "\xc3\xa9",
		" ", ":", "\\/", "\\\\\\\"", "0123456789abcdef0123456789abcdef0123456789abcdefghijk",
	};
	unsigned n = rnd(seed, 6);

	puts_(t, "\"");
	for (unsigned i = 0; i < n; i++)
		puts_(t, parts[rnd(seed, sizeof(parts) / sizeof(*parts))]);
	puts_(t, "\"");
}

static void value(struct text *t, unsigned *seed, int depth, int nl)
{
	static const char *const scalars[] = { "1", "-12.5e3", "0", "true", "false", "null",
		                               "12345678901234567890" };
	unsigned kind = depth > 3 ? rnd(seed, 2) : rnd(seed, 4);

	if (kind == 0) {
		puts_(t, scalars[rnd(seed, 7)]);
	} else if (kind == 1) {
		string(t, seed);
	} else {
		int obj = kind == 3;
		unsigned n = rnd(seed, 4);

		puts_(t, obj ? "{" : "[");
		for (unsigned i = 0; i < n; i++) {
			if (i)
				puts_(t, ",");
			ws(t, seed, nl);
			if (obj) {
				string(t, seed);
				ws(t, seed, nl);
				puts_(t, ":");
				ws(t, seed, nl);
			}
			value(t, seed, depth + 1, nl);
			ws(t, seed, nl);
		}
		puts_(t, obj ? "}" : "]");
	}
}

/* A JSON array of `n` items, or NDJSON with blank lines between. */
static void document(struct text *t, unsigned seed, unsigned n, int ndjson)
{
	t->len = 0;
	if (!ndjson)
		puts_(t, rnd(&seed, 4) ? "[" : " \n[");
	for (unsigned i = 0; i < n; i++) {
		if (ndjson) {
			if (!rnd(&seed, 4))
				puts_(t, rnd(&seed, 2) ? "\n" : "  \t\n");
			ws(t, &seed, 0);
			value(t, &seed, 0, 0);
			ws(t, &seed, 0);
			if (i + 1 < n || rnd(&seed, 2))
				puts_(t, "\n");
		} else {
			if (i)
				puts_(t, ",");
			ws(t, &seed, 1);
			value(t, &seed, 0, 1);
			ws(t, &seed, 1);
		}
	}
	if (!ndjson)
		puts_(t, rnd(&seed, 2) ? "]" : "]\n ");
}

/* Where the strict splitter says each item ends: the offset just after its
 * separator (the comma, the newline), or the end for the last. */
static size_t strict_ends(const struct text *t, int ndjson, size_t *ends, size_t max)
{
	pexec__splitter *s = pexec__split_mem(t->p, t->len, "doc",
	                                      ndjson ? PEXEC_FORMAT_NDJSON : PEXEC_FORMAT_JSON);
	const char *item;
	size_t len, n = 0;
	pexec_error err;
	int rc;

	cr_assert_not_null(s);
	while ((rc = pexec__split_next(s, &item, &len, &err)) == 1 && n < max) {
		size_t end = (size_t)(item + len - t->p);
		while (end < t->len && t->p[end] != (ndjson ? '\n' : ',') &&
		       (ndjson || t->p[end] != ']'))
			end++;
		ends[n++] = end + 1;
	}
	cr_assert_eq(rc, 0, "the generated document is malformed: %s\n%s", err.msg, t->p);
	pexec__split_free(s);
	return n;
}

/* Runs the rest of the test once with each build of the pass this CPU can
 * run (SSE2, and AVX2 where it has it), `avx2` saying which. */
#define EACH_BUILD(avx2) \
	for (int avx2 = 0; avx2 < 2; avx2++) \
		if (pexec__bounds_avx2(avx2) == avx2)

Test(boundary, cuts_where_the_strict_splitter_says_items_end)
{
	struct text t = { 0 };
	size_t ends[64];

	EACH_BUILD(avx2)
	for (unsigned seed = 1; seed <= 400; seed++) {
		int ndjson = seed % 2;
		size_t n;

		document(&t, seed, 1 + seed % 20, ndjson);
		n = strict_ends(&t, ndjson, ends, 64);
		for (size_t k = 1; k < n; k++) {
			struct pexec__bounds b;
			uint32_t found;
			size_t passed;

			pexec__bounds_init(&b, ndjson);
			passed = pexec__bounds_pass(&b, (const unsigned char *)t.p, t.len, 1,
			                            (uint32_t)k, &found);
			cr_assert_eq(found, k, "avx2 %d, seed %u: %u items of %zu\n%s", avx2, seed,
			             found, k, t.p);
			cr_assert_eq(passed, ends[k - 1],
			             "avx2 %d, seed %u, item %zu: cut at %zu, want %zu\n%s", avx2, seed,
			             k, passed, ends[k - 1], t.p);
		}
	}
	free(t.p);
}

/* A few bytes at a time, as reads come: the same count, the same lines. */
Test(boundary, counts_the_same_in_pieces)
{
	struct text t = { 0 };
	size_t ends[64];

	EACH_BUILD(avx2)
	for (unsigned seed = 1; seed <= 300; seed++) {
		int ndjson = seed % 2;
		size_t n, pos = 0, lines = 0;
		struct pexec__bounds b;
		uint32_t total = 0;
		unsigned cut = seed; /* the pieces' sizes: `seed` itself is the loop's */

		document(&t, seed * 7, 1 + seed % 30, ndjson);
		n = strict_ends(&t, ndjson, ends, 64);
		pexec__bounds_init(&b, ndjson);
		while (pos < t.len) {
			/* Up to `avail` bytes have come; the pass takes what it can. */
			size_t avail = pos + 1 + rnd(&cut, 150);
			uint32_t found;
			int eof = avail >= t.len;

			if (eof)
				avail = t.len;
			pos += pexec__bounds_pass(&b, (const unsigned char *)t.p + pos, avail - pos, eof,
			                          UINT32_MAX, &found);
			total += found;
			if (eof || b.done)
				break; /* done: the pass takes nothing more */
		}
		for (size_t i = 0; i < t.len; i++)
			lines += t.p[i] == '\n';
		/* JSON counts commas as ends: the last item (before ']') the worker
		 * counts, so a pass over the whole sees one fewer. */
		cr_expect_eq(total + (ndjson ? 0 : 1), n, "avx2 %d, seed %u: %u items, want %zu\n%s",
		             avx2, seed, total, n, t.p);
		if (!ndjson)
			cr_expect(b.done, "seed %u: the close of the array was not seen", seed);
		cr_expect_leq(b.lines, lines, "seed %u", seed);
	}
	free(t.p);
}

/* Bytes of any kind, JSON's structural ones thick among them. */
static void noise(struct text *t, unsigned seed, size_t n)
{
	static const char pick[] = "\"\\,[]{}\n \t\rab1:";

	t->len = 0;
	put(t, "[", 1);
	for (size_t i = 1; i < n; i++) {
		char c = rnd(&seed, 4) ? pick[rnd(&seed, sizeof(pick) - 1)] : (char)rnd(&seed, 256);
		put(t, &c, 1);
	}
}

/* Where the CPU has AVX2, its build of the pass and the SSE2 one agree on
 * every input, well-formed or not: the bytes passed, the items found and
 * the state they leave, in pieces of any size. */
Test(boundary, both_builds_pass_alike_on_any_bytes)
{
	struct text t = { 0 };

	if (!pexec__bounds_avx2(1))
		cr_skip_test("this CPU has no AVX2: there is one build to run");
	for (unsigned seed = 1; seed <= 3000; seed++) {
		int ndjson = seed % 3 == 0;
		struct pexec__bounds b[2];
		size_t pos[2] = { 0, 0 };
		unsigned size = seed;

		noise(&t, seed, 1 + rnd(&size, 700));
		for (int avx2 = 0; avx2 < 2; avx2++) {
			unsigned cut = seed;
			pexec__bounds_avx2(avx2);
			pexec__bounds_init(&b[avx2], ndjson);
			while (pos[avx2] < t.len && !b[avx2].done) {
				uint32_t want = 1 + rnd(&cut, 9), found;
				size_t avail = pos[avx2] + 1 + rnd(&cut, 200);
				size_t n;
				int eof = avail >= t.len;

				n = pexec__bounds_pass(&b[avx2], (const unsigned char *)t.p + pos[avx2],
				                       (eof ? t.len : avail) - pos[avx2], eof, want, &found);
				if (n == 0 && found == 0 && !eof)
					continue;
				pos[avx2] += n;
				if (eof && n == 0)
					break;
			}
		}
		cr_assert_eq(pos[0], pos[1], "seed %u: passed %zu and %zu bytes", seed, pos[0],
		             pos[1]);
		cr_assert(!memcmp(&b[0], &b[1], sizeof(b[0])), "seed %u: the states differ: "
		          "lines %llu/%llu, depth %ld/%ld, in_string %d/%d", seed,
		          (unsigned long long)b[0].lines, (unsigned long long)b[1].lines,
		          b[0].depth, b[1].depth, b[0].in_string, b[1].in_string);
	}
	free(t.p);
}

/* Each chunk the pass cuts reads, fragment by fragment, as the whole does:
 * the same items, in order, and a clean end after each chunk's last. */
Test(boundary, fragments_read_as_the_whole)
{
	struct text t = { 0 };

	for (unsigned seed = 1; seed <= 200; seed++) {
		int ndjson = seed % 2;
		unsigned cut = seed; /* the chunks' sizes: `seed` itself is the loop's */
		pexec_format fmt = ndjson ? PEXEC_FORMAT_NDJSON : PEXEC_FORMAT_JSON;
		pexec__splitter *whole, *part;
		struct pexec__bounds b;
		size_t pos = 0;
		pexec_error err;

		document(&t, seed * 13, 2 + seed % 25, ndjson);
		whole = pexec__split_mem(t.p, t.len, "doc", fmt);
		part = pexec__split_mem("", 0, "doc", fmt);
		pexec__bounds_init(&b, ndjson);
		while (pos < t.len) {
			struct pexec__fragment f = { .offset = pos, .line = b.lines + 1,
				                     .line_start = b.line_start, .first = pos == 0 };
			uint32_t want = 1 + rnd(&cut, 4), found;
			size_t n = pexec__bounds_pass(&b, (const unsigned char *)t.p + pos, t.len - pos,
			                              1, want, &found);
			const char *a, *c;
			size_t alen, clen;

			f.last = found < want || b.done || pos + n == t.len;
			if (f.last)
				n = t.len - pos;
			pexec__split_fragment(part, t.p + pos, n, &f);
			for (uint32_t k = 0; f.last ? 1 : k < found; k++) {
				int got = pexec__split_next(part, &c, &clen, &err);
				if (f.last && got == 0)
					break;
				cr_assert_eq(got, 1, "seed %u at %zu: %s", seed, pos, err.msg);
				cr_assert_eq(pexec__split_next(whole, &a, &alen, &err), 1);
				cr_assert(alen == clen && !memcmp(a, c, alen), "seed %u: %.*s != %.*s",
				          seed, (int)alen, a, (int)clen, c);
			}
			if (!f.last)
				cr_assert_eq(pexec__split_fragment_end(part, &err), 0, "seed %u: %s", seed,
				             err.msg);
			pos += n;
		}
		{
			const char *rest;
			size_t rlen;
			cr_expect_eq(pexec__split_next(whole, &rest, &rlen, &err), 0,
			             "seed %u: items left", seed);
		}
		pexec__split_free(whole);
		pexec__split_free(part);
	}
	free(t.p);
}

/* An error in a chunk is said as the whole input's splitter says it: the
 * same line, column, byte and words. */
Test(boundary, a_fragments_error_is_the_wholes)
{
	static const char *const docs[] = {
		"[1,\n2,\n  3x, 4]", "[1, 2, [3,\n]]", "[\"a\", \"b\\q\", 5]", "[1, 2, 3,]",
		"[1,\n 2 3, 4]", "{\"a\": 1}\n{\"b\": }\n", "1\n2\n3 4\n", "[1, 2] x",
	};

	for (size_t d = 0; d < sizeof(docs) / sizeof(*docs); d++) {
		const char *doc = docs[d];
		size_t len = strlen(doc), pos = 0;
		int ndjson = doc[0] != '[';
		pexec_format fmt = ndjson ? PEXEC_FORMAT_NDJSON : PEXEC_FORMAT_JSON;
		pexec__splitter *whole = pexec__split_mem(doc, len, "in.json", fmt);
		pexec__splitter *part = pexec__split_mem("", 0, "in.json", fmt);
		pexec_error want, got = { { 0 } };
		struct pexec__bounds b;
		const char *item;
		size_t ilen;
		int rc;

		while ((rc = pexec__split_next(whole, &item, &ilen, &want)) == 1)
			;
		cr_assert_lt(rc, 0, "'%s' is well formed", doc);
		pexec__bounds_init(&b, ndjson);
		for (rc = 0; rc == 0 && pos < len;) {
			struct pexec__fragment f = { .offset = pos, .line = b.lines + 1,
				                     .line_start = b.line_start, .first = pos == 0 };
			uint32_t found;
			size_t n = pexec__bounds_pass(&b, (const unsigned char *)doc + pos, len - pos, 1,
			                              1, &found);

			f.last = found < 1 || b.done || pos + n == len;
			if (f.last)
				n = len - pos;
			pexec__split_fragment(part, doc + pos, n, &f);
			while ((rc = pexec__split_next(part, &item, &ilen, &got)) == 1 && !f.last)
				break;
			if (rc == 1)
				rc = pexec__split_fragment_end(part, &got);
			if (rc > 0)
				rc = 0;
			pos += n;
		}
		cr_expect_str_eq(got.msg, want.msg, "'%s'", doc);
		pexec__split_free(whole);
		pexec__split_free(part);
	}
}
