/*
 * boundary_pass.h - the body of boundary.c's pass, included there once for
 * each way of classifying a block: VARIANT(name) names this copy's
 * functions, CLASSIFY is its classify function, VARIANT_ATTR marks its
 * pass.  The copies differ in nothing else, so that the SSE2 build and the
 * AVX2 build cannot drift apart (test_boundary.c runs both).
 */

/* One JSON block of `n` valid bytes at `p` (padded to 64). */
IN_PASS unsigned VARIANT(json_block)(struct pexec__bounds *b, const unsigned char *p, unsigned n,
                           uint32_t want, uint32_t *found)
{
	struct masks m;
	uint64_t esc, in_str, outside, ends;
	unsigned passed;

	CLASSIFY(p, &m, 0);
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
IN_PASS unsigned VARIANT(nd_block)(struct pexec__bounds *b, const unsigned char *p, unsigned n,
                         uint32_t want, uint32_t *found)
{
	struct masks m;
	uint64_t content, nl, below = 0;
	unsigned passed = n;

	CLASSIFY(p, &m, 1);
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

VARIANT_ATTR
static size_t VARIANT(pass)(struct pexec__bounds *b, const unsigned char *data, size_t len,
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
		pos += b->ndjson ? VARIANT(nd_block)(b, p, n, want, &found)
		                 : VARIANT(json_block)(b, p, n, want, &found);
	}
	if (eof && b->ndjson && pos == len && b->content && found < want) {
		b->content = 0;
		found++; /* a last line without its newline */
	}
	*items = found;
	return pos;
}
