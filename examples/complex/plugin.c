/*
 * plugin.c - an example plugin with its own value type: complex numbers.
 *
 * It shows the two ways a plugin goes beyond the cJSON defaults:
 *  - A custom serializer for a struct type.  Items [re, im] are read by a
 *    hand-written deserializer into `struct cplx`, map turns each into a
 *    `struct mandel` (its Mandelbrot escape time), and serialize writes that
 *    struct as a JSON object.  No cJSON tree is built per item.
 *  - Per-worker state from --config.  init reads {"max_iter": N} into a state
 *    struct that every hook then receives, and fini frees it.
 *
 * Build with `make` (as build/examples/complex.so) and run:
 *     build/pexec --plugin build/examples/complex.so examples/complex/inputs.json
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pexec_plugin.h"

#define CPLX_MAX_ITER_DEFAULT 1000
#define CPLX_MAX_ITER_LIMIT 1000000

/* How much of a bad item an error message quotes. */
#define CPLX_QUOTE_MAX 40

struct cplx_state {
	int max_iter;
};

/* The input value. */
struct cplx {
	double re, im;
};

/* The output value. */
struct mandel {
	double re, im;
	int iterations; /* until |z| > 2, or max_iter when it never was */
	int escaped;
};

static int cplx_init(const struct cJSON *config, void **state, pexec_error *err)
{
	struct cplx_state *st;
	const cJSON *item;

	st = malloc(sizeof(*st));
	if (!st) {
		pexec_error_set(err, "complex: out of memory");
		return -1;
	}
	st->max_iter = CPLX_MAX_ITER_DEFAULT;
	if (config && !cJSON_IsObject(config)) {
		pexec_error_set(err, "complex: config must be an object like {\"max_iter\": 500}");
		goto fail;
	}
	/* A misspelt key would otherwise be ignored without a word. */
	cJSON_ArrayForEach(item, config) {
		double x = cJSON_GetNumberValue(item);

		if (strcmp(item->string, "max_iter") != 0) {
			pexec_error_set(err, "complex: unknown config key '%s' (known: max_iter)",
			                item->string);
			goto fail;
		}
		if (!cJSON_IsNumber(item) || !(x >= 1 && x <= CPLX_MAX_ITER_LIMIT) ||
		    x != (double)(int)x) {
			pexec_error_set(err, "complex: config max_iter must be an integer from 1 to %d",
			                CPLX_MAX_ITER_LIMIT);
			goto fail;
		}
		st->max_iter = (int)x;
	}
	*state = st;
	return 0;
fail:
	free(st);
	return -1;
}

static void cplx_fini(void *state)
{
	free(state);
}

static const char *cplx_skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static const char *cplx_skip_digits(const char *p, const char *end)
{
	while (p < end && *p >= '0' && *p <= '9')
		p++;
	return p;
}

/* Where the JSON number at p ends, or NULL when there is none.  strtod() alone
 * would also take "inf", "0x1p3" or "+1", none of which is JSON. */
static const char *cplx_number_end(const char *p, const char *end)
{
	const char *q;

	if (p < end && *p == '-')
		p++;
	if (p < end && *p == '0')
		p++;
	else if (p < end && *p >= '1' && *p <= '9')
		p = cplx_skip_digits(p, end);
	else
		return NULL;
	if (p < end && *p == '.') {
		q = cplx_skip_digits(p + 1, end);
		if (q == p + 1)
			return NULL;
		p = q;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		q = cplx_skip_digits(p, end);
		if (q == p)
			return NULL;
		p = q;
	}
	return p;
}

/* Reads one number and the space after it.  The item bytes end in a NUL (see
 * OWNERSHIP), so strtod() cannot run past them.  Like the "%g" in serialize,
 * strtod() follows LC_NUMERIC: a host program that calls setlocale() must keep
 * LC_NUMERIC at "C", or decimal commas would appear. */
static const char *cplx_read_number(const char *p, const char *end, double *x)
{
	const char *num_end = cplx_number_end(p, end);
	char *parsed;

	if (!num_end)
		return NULL;
	*x = strtod(p, &parsed);
	/* Overflow gives HUGE_VAL, which no JSON output could carry. */
	if (parsed != num_end || !isfinite(*x))
		return NULL;
	return cplx_skip_space(num_end, end);
}

static int cplx_deserialize(void *state, const char *data, size_t len, void **value,
                            pexec_error *err)
{
	const char *p = data, *end = data + len;
	struct cplx c, *v;
	size_t cut = len;

	(void)state;
	p = cplx_skip_space(p, end);
	if (p == end || *p != '[')
		goto bad;
	p = cplx_skip_space(p + 1, end);
	p = cplx_read_number(p, end, &c.re);
	if (!p || p == end || *p != ',')
		goto bad;
	p = cplx_skip_space(p + 1, end);
	p = cplx_read_number(p, end, &c.im);
	if (!p || p == end || *p != ']')
		goto bad;
	if (cplx_skip_space(p + 1, end) != end)
		goto bad;

	v = malloc(sizeof(*v));
	if (!v) {
		pexec_error_set(err, "complex: out of memory");
		return -1;
	}
	*v = c;
	*value = v;
	return 0;
bad:
	if (cut > CPLX_QUOTE_MAX) {
		cut = CPLX_QUOTE_MAX;
		while (cut > 0 && ((unsigned char)data[cut] & 0xc0) == 0x80)
			cut--;
	}
	pexec_error_set(err, "complex: item must be [re, im] with two finite numbers, got %.*s%s",
	                (int)cut, data, cut < len ? "..." : "");
	return -1;
}

static int cplx_map(void *state, void *input, void **output, pexec_error *err)
{
	const struct cplx_state *st = state;
	const struct cplx *c = input;
	int max_iter = st ? st->max_iter : CPLX_MAX_ITER_DEFAULT;
	double zr = 0, zi = 0;
	struct mandel *m;
	int i;

	m = malloc(sizeof(*m));
	if (!m) {
		pexec_error_set(err, "complex: out of memory");
		return -1;
	}
	m->re = c->re;
	m->im = c->im;
	m->iterations = max_iter;
	m->escaped = 0;
	/* z <- z^2 + c from z = 0; once |z| > 2 the orbit is known to diverge. */
	for (i = 1; i <= max_iter; i++) {
		double t = zr * zr - zi * zi + c->re;

		zi = 2 * zr * zi + c->im;
		zr = t;
		if (zr * zr + zi * zi > 4) {
			m->iterations = i;
			m->escaped = 1;
			break;
		}
	}
	*output = m;
	return 0;
}

/* The shortest "%.*g" that reads back as the same double: 0.1 stays "0.1"
 * where a bare "%.17g" would print 0.10000000000000001.  JSON has no inf or
 * nan; deserialize refused them, but null is the honest answer should one
 * ever get here. */
static void cplx_format_double(char *buf, size_t size, double x)
{
	int prec;

	if (!isfinite(x)) {
		snprintf(buf, size, "null");
		return;
	}
	for (prec = 15; prec < 17; prec++) {
		snprintf(buf, size, "%.*g", prec, x);
		if (strtod(buf, NULL) == x)
			return;
	}
	snprintf(buf, size, "%.17g", x);
}

static int cplx_serialize(void *state, const void *value, pexec_buf *out, pexec_error *err)
{
	const struct mandel *m = value;
	char re[32], im[32];

	(void)state;
	cplx_format_double(re, sizeof(re), m->re);
	cplx_format_double(im, sizeof(im), m->im);
	if (pexec_buf_printf(out, "{\"re\":%s,\"im\":%s,\"iterations\":%d,\"inside\":%s}",
	                     re, im, m->iterations, m->escaped ? "false" : "true")) {
		pexec_error_set(err, "complex: out of memory");
		return -1;
	}
	return 0;
}

/* Both value types are single malloc'd blocks. */
static void cplx_free_value(void *state, void *value)
{
	(void)state;
	free(value);
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "complex",
	.version = "1.0.0",
	.description = "Mandelbrot escape time of each point [re, im]; config {\"max_iter\": N}",
	.init = cplx_init,
	.fini = cplx_fini,
	.deserialize = cplx_deserialize,
	.map = cplx_map,
	.serialize = cplx_serialize,
	.free_value = cplx_free_value,
};
