/*
 * factorial.c - n! for each item, exact, as a JSON integer of any size.
 *
 * The flagship plugin and the benchmark workload: it mirrors a Python
 * multiprocessing.Pool.map over a recursive factorial, whose ints have no
 * size limit.  It brings its own deserialize/serialize hooks, so no cJSON tree
 * is built on either side: an item's bytes become a small struct holding n,
 * map makes a bignum, and serialize writes its decimal digits straight into
 * pexec's buffer.
 *
 * The bignum is little-endian base 10^9 in uint32_t limbs: decimal output is
 * then a plain walk over the limbs, with no base conversion.  Every item is
 * computed from scratch; nothing is cached across items, so a benchmark
 * measures the work it claims to.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pexec_plugin.h"

#define FACT_BASE 1000000000u
#define FACT_BASE_DIGITS 9

/* Cost grows with the square of the result's length: 100000! (456574 digits)
 * takes seconds, which is as far as one item should go. */
#define FACT_N_MAX 100000u

/* The largest multiplier w for which limb * w + carry still fits in 64 bits:
 * with limb < 10^9 and carry <= w (which holds inductively), the sum is at
 * most 10^9 * w. */
#define FACT_W_MAX (UINT64_MAX / FACT_BASE)

/* How much of a bad item an error message quotes. */
#define FACT_QUOTE_MAX 40

/* The input value. */
struct fact_n {
	uint32_t n;
};

/* The output value: one malloc'd block, like the input, so free() frees
 * either. */
struct fact_big {
	size_t len;       /* limbs in use; the top one is non-zero */
	uint32_t limb[];  /* least significant first */
};

static const char fact_pairs[] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

static int fact_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Quotes at most FACT_QUOTE_MAX bytes of a bad item, cut on a UTF-8
 * character boundary so that the message stays valid text. */
static void fact_bad_item(pexec_error *err, const char *why, const char *data, size_t len)
{
	size_t cut = len;

	if (cut > FACT_QUOTE_MAX) {
		cut = FACT_QUOTE_MAX;
		while (cut > 0 && ((unsigned char)data[cut] & 0xc0) == 0x80)
			cut--;
	}
	pexec_error_set(err, "factorial: %s, got %.*s%s", why, (int)cut, data,
	                cut < len ? "..." : "");
}

static int fact_deserialize(void *state, const char *data, size_t len, void **value,
                            pexec_error *err)
{
	const char *p = data, *end = data + len;
	const char *digits;
	struct fact_n *v;
	uint32_t n = 0;
	int negative = 0;

	(void)state;
	/* The splitter trims items, but a pexec_run() source may not. */
	while (p < end && fact_is_space(*p))
		p++;
	while (end > p && fact_is_space(end[-1]))
		end--;
	if (p < end && *p == '-') {
		negative = 1;
		p++;
	}
	digits = p;
	/* Saturates past the limit, so that any run of digits is one number. */
	for (; p < end && *p >= '0' && *p <= '9'; p++)
		if (n <= FACT_N_MAX)
			n = n * 10 + (uint32_t)(*p - '0');
	if (p == digits || p != end) {
		fact_bad_item(err, "n must be a non-negative integer", data, len);
		return -1;
	}
	/* -0 is a JSON integer, and it is zero. */
	if (negative && n != 0) {
		fact_bad_item(err, "n must be a non-negative integer", data, len);
		return -1;
	}
	if (n > FACT_N_MAX) {
		fact_bad_item(err, "n must be at most 100000", data, len);
		return -1;
	}
	v = malloc(sizeof(*v));
	if (!v) {
		pexec_error_set(err, "factorial: out of memory");
		return -1;
	}
	v->n = n;
	*value = v;
	return 0;
}

/* An upper bound on the limbs of n!: a product has at most as many digits as
 * its factors together, so n! has at most sum(digits(k), k = 1..n). */
static size_t fact_limbs_bound(uint32_t n)
{
	size_t digits = 0;
	uint64_t lo = 1;
	unsigned d;

	for (d = 1; lo <= n; d++, lo *= 10) {
		uint64_t hi = lo * 10 - 1 < n ? lo * 10 - 1 : n;

		digits += d * (size_t)(hi - lo + 1);
	}
	return digits / FACT_BASE_DIGITS + 2;
}

static int fact_map(void *state, void *input, void **output, pexec_error *err)
{
	uint32_t n = ((const struct fact_n *)input)->n;
	struct fact_big *r;
	uint32_t k = 2;

	(void)state;
	r = malloc(sizeof(*r) + fact_limbs_bound(n) * sizeof(r->limb[0]));
	if (!r) {
		pexec_error_set(err, "factorial: out of memory for %u!", n);
		return -1;
	}
	r->limb[0] = 1;
	r->len = 1;
	/* Each pass over the limbs multiplies by as many consecutive factors
	 * as fit in one word: for n < 100 that is five to twelve of them, so
	 * the passes, not the limbs, are what it saves. */
	while (k <= n) {
		uint64_t w = k++, carry = 0;
		size_t i;

		while (k <= n && w <= FACT_W_MAX / k)
			w *= k++;
		for (i = 0; i < r->len; i++) {
			uint64_t t = (uint64_t)r->limb[i] * w + carry;

			r->limb[i] = (uint32_t)(t % FACT_BASE);
			carry = t / FACT_BASE;
		}
		while (carry) {
			r->limb[r->len++] = (uint32_t)(carry % FACT_BASE);
			carry /= FACT_BASE;
		}
	}
	*output = r;
	return 0;
}

/* Writes the 9 digits of a limb, leading zeros included, ending at `p`. */
static void fact_put_limb(char *p, uint32_t x)
{
	int i;

	for (i = 0; i < 4; i++) {
		uint32_t q = x / 100;

		p -= 2;
		memcpy(p, fact_pairs + 2 * (x - q * 100), 2);
		x = q;
	}
	p[-1] = (char)('0' + x);
}

static int fact_serialize(void *state, const void *value, pexec_buf *out, pexec_error *err)
{
	const struct fact_big *r = value;
	uint32_t top = r->limb[r->len - 1];
	char tmp[FACT_BASE_DIGITS];
	size_t top_digits = 0, need, i;
	char *p;

	(void)state;
	do
		tmp[FACT_BASE_DIGITS - ++top_digits] = (char)('0' + top % 10);
	while ((top /= 10) != 0);
	need = top_digits + (r->len - 1) * FACT_BASE_DIGITS;
	if (pexec_buf_reserve(out, need)) {
		pexec_error_set(err, "factorial: out of memory for %zu digits", need);
		return -1;
	}
	p = out->data + out->len;
	memcpy(p, tmp + FACT_BASE_DIGITS - top_digits, top_digits);
	p += top_digits;
	for (i = r->len - 1; i-- > 0; p += FACT_BASE_DIGITS)
		fact_put_limb(p + FACT_BASE_DIGITS, r->limb[i]);
	out->len += need;
	return 0;
}

static void fact_free_value(void *state, void *value)
{
	(void)state;
	free(value);
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "factorial",
	.version = "1.0.0",
	.description = "exact n! of each non-negative integer n (up to 100000) as a JSON integer",
	.deserialize = fact_deserialize,
	.map = fact_map,
	.serialize = fact_serialize,
	.free_value = fact_free_value,
};
