/*
 * test_plugins.c - the shipped plugins, called through their descriptors.
 *
 * Each test dlopen()s a built plugin and drives its hooks the way a worker
 * does: init, then per item deserialize -> map -> serialize, freeing values by
 * the OWNERSHIP rule of pexec_plugin.h, then fini.  No pool is involved, so a
 * failure here is the plugin's own.  The output buffer grows to exactly what
 * is asked for, so a serializer that writes past its reservation shows up
 * under AddressSanitizer.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "pexec_plugin.h"

#ifndef PEXEC_TEST_BUILD
#error "PEXEC_TEST_BUILD must name the build directory"
#endif

#define FACTORIAL_SO PEXEC_TEST_BUILD "/plugins/factorial.so"
#define IDENTITY_SO PEXEC_TEST_BUILD "/plugins/identity.so"
#define SLEEP_SO PEXEC_TEST_BUILD "/plugins/sleep.so"
#define COMPLEX_SO PEXEC_TEST_BUILD "/examples/complex.so"

struct tplug {
	void *dl;
	const pexec_descriptor *d;
	void *state;
};

/* The result of one item: the JSON text, or the error message. */
struct tresult {
	int ok;
	char *text;
	pexec_error err;
};

static int tbuf_grow(pexec_buf *buf, size_t need)
{
	size_t cap = buf->len + need;
	char *data = realloc(buf->data, cap);

	if (!data)
		return -1;
	buf->data = data;
	buf->cap = cap;
	return 0;
}

static void tplug_open(struct tplug *p, const char *path, const char *config)
{
	cJSON *conf = NULL;
	pexec_error err = { "" };

	memset(p, 0, sizeof(*p));
	p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	cr_assert_not_null(p->dl, "dlopen %s: %s", path, dlerror());
	p->d = dlsym(p->dl, PEXEC_PLUGIN_SYMBOL);
	cr_assert_not_null(p->d, "%s: no symbol %s", path, PEXEC_PLUGIN_SYMBOL);
	cr_assert_eq(p->d->abi_version, PEXEC_ABI_VERSION);
	cr_assert_eq(p->d->struct_size, sizeof(pexec_descriptor));
	cr_assert_not_null(p->d->map);
	if (config) {
		conf = cJSON_Parse(config);
		cr_assert_not_null(conf, "bad test config %s", config);
	}
	if (p->d->init)
		cr_assert_eq(p->d->init(conf, &p->state, &err), 0, "init: %s", err.msg);
	/* The config lives only during init. */
	cJSON_Delete(conf);
}

static int tplug_init_fails(const char *path, const char *config, pexec_error *err)
{
	struct tplug p;
	cJSON *conf = cJSON_Parse(config);
	void *state = NULL;
	int rc;

	cr_assert_not_null(conf);
	memset(&p, 0, sizeof(p));
	p.dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	cr_assert_not_null(p.dl, "dlopen %s: %s", path, dlerror());
	p.d = dlsym(p.dl, PEXEC_PLUGIN_SYMBOL);
	cr_assert_not_null(p.d);
	cr_assert_not_null(p.d->init);
	rc = p.d->init(conf, &state, err);
	cJSON_Delete(conf);
	if (rc == 0 && p.d->fini)
		p.d->fini(state);
	dlclose(p.dl);
	return rc != 0;
}

static void tplug_close(struct tplug *p)
{
	if (p->d->fini)
		p->d->fini(p->state);
	dlclose(p->dl);
}

/* Frees a value the way pexec does: cJSON trees when the hook that made it is
 * absent, free_value otherwise. */
static void tplug_free(const struct tplug *p, void *value, int is_cjson)
{
	if (!value)
		return;
	if (is_cjson)
		cJSON_Delete(value);
	else if (p->d->free_value)
		p->d->free_value(p->state, value);
}

/* Runs one item through deserialize -> map -> serialize. */
static struct tresult tplug_run(const struct tplug *p, const char *item)
{
	struct tresult r = { 0, NULL, { "" } };
	pexec_buf buf = { NULL, 0, 0, tbuf_grow, NULL };
	size_t len = strlen(item);
	void *in = NULL, *out = NULL;
	char *bytes, *text;

	/* The item in a block of its own, NUL-terminated as pexec gives it,
	 * so a read past it is caught. */
	bytes = malloc(len + 1);
	cr_assert_not_null(bytes);
	memcpy(bytes, item, len + 1);
	cr_assert_eq(tbuf_grow(&buf, 1), 0);

	if (p->d->deserialize) {
		if (p->d->deserialize(p->state, bytes, len, &in, &r.err))
			goto out;
	} else {
		in = cJSON_ParseWithLength(bytes, len);
		cr_assert_not_null(in, "bad test item %s", item);
	}
	if (p->d->map(p->state, in, &out, &r.err))
		goto out;
	if (!out) {
		cr_assert_eq(pexec_buf_puts(&buf, "null"), 0);
	} else if (p->d->serialize) {
		if (p->d->serialize(p->state, out, &buf, &r.err))
			goto out;
	} else {
		text = cJSON_PrintUnformatted(out);
		cr_assert_not_null(text);
		cr_assert_eq(pexec_buf_puts(&buf, text), 0);
		cJSON_free(text);
	}
	cr_assert_eq(pexec_buf_append(&buf, "", 1), 0);
	r.ok = 1;
	r.text = buf.data;
	buf.data = NULL;
out:
	/* A pass-through value is freed once. */
	if (out != in)
		tplug_free(p, out, !p->d->serialize);
	tplug_free(p, in, !p->d->deserialize);
	free(buf.data);
	free(bytes);
	return r;
}

/* Runs an item that must succeed and checks its whole output. */
static void expect_output(const struct tplug *p, const char *item, const char *want)
{
	struct tresult r = tplug_run(p, item);

	cr_assert(r.ok, "%s: unexpected error: %s", item, r.err.msg);
	cr_expect_str_eq(r.text, want, "%s: got %s, want %s", item, r.text, want);
	free(r.text);
}

/* Runs an item that must fail, with `want` in its message. */
static void expect_error(const struct tplug *p, const char *item, const char *want)
{
	struct tresult r = tplug_run(p, item);

	cr_assert(!r.ok, "%s: succeeded with %s", item, r.text);
	cr_expect(strstr(r.err.msg, want) != NULL, "%s: message '%s' lacks '%s'", item,
	          r.err.msg, want);
	free(r.text);
}

static char *run_ok(const struct tplug *p, const char *item)
{
	struct tresult r = tplug_run(p, item);

	cr_assert(r.ok, "%s: unexpected error: %s", item, r.err.msg);
	return r.text;
}

static size_t trailing_zeros(const char *s)
{
	size_t n = strlen(s), z = 0;

	while (z < n && s[n - 1 - z] == '0')
		z++;
	return z;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

Test(plugins, factorial_describes_itself)
{
	struct tplug p;

	tplug_open(&p, FACTORIAL_SO, NULL);
	cr_expect_str_eq(p.d->name, "factorial");
	cr_expect_str_eq(p.d->version, "1.0.0");
	cr_expect(p.d->description && *p.d->description);
	cr_expect_not_null(p.d->deserialize);
	cr_expect_not_null(p.d->serialize);
	cr_expect_not_null(p.d->free_value);
	tplug_close(&p);
}

Test(plugins, factorial_small_values_are_exact)
{
	struct tplug p;

	tplug_open(&p, FACTORIAL_SO, NULL);
	expect_output(&p, "0", "1");
	expect_output(&p, "1", "1");
	expect_output(&p, "5", "120");
	expect_output(&p, "20", "2432902008176640000");
	/* The first one past 64 bits. */
	expect_output(&p, "21", "51090942171709440000");
	expect_output(&p, "25", "15511210043330985984000000");
	expect_output(&p, "100",
	              "93326215443944152681699238856266700490715968264381621468592963895217"
	              "59999322991560894146397615651828625369792082722375825118521091686400"
	              "0000000000000000000000");
	/* -0 is a JSON integer too. */
	expect_output(&p, "-0", "1");
	tplug_close(&p);
}

Test(plugins, factorial_1000_is_exact)
{
	struct tplug p;
	char *s;

	tplug_open(&p, FACTORIAL_SO, NULL);
	s = run_ok(&p, "1000");
	cr_expect_eq(strlen(s), 2568);
	cr_expect(strncmp(s, "402387260077", 12) == 0, "1000! starts %.12s", s);
	cr_expect_eq(trailing_zeros(s), 249);
	free(s);
	tplug_close(&p);
}

Test(plugins, factorial_20000_is_exact_and_quick)
{
	struct tplug p;
	struct timespec t0;
	double took;
	char *s;

	tplug_open(&p, FACTORIAL_SO, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	s = run_ok(&p, "20000");
	took = seconds_since(&t0);
	cr_expect_eq(strlen(s), 77338);
	cr_expect(strncmp(s, "18192063202303451348", 20) == 0, "20000! starts %.20s", s);
	cr_expect_eq(trailing_zeros(s), 4999);
	/* Generous, for sanitizer builds on a busy machine. */
	cr_expect_lt(took, 5.0, "20000! took %.3f s", took);
	free(s);
	tplug_close(&p);
}

Test(plugins, factorial_rejects_what_is_not_a_natural_number)
{
	struct tplug p;

	tplug_open(&p, FACTORIAL_SO, NULL);
	expect_error(&p, "-1", "factorial: n must be a non-negative integer, got -1");
	expect_error(&p, "1.5", "factorial: n must be a non-negative integer, got 1.5");
	expect_error(&p, "1e3", "got 1e3");
	expect_error(&p, "\"5\"", "got \"5\"");
	expect_error(&p, "true", "non-negative integer");
	expect_error(&p, "[3]", "non-negative integer");
	expect_error(&p, "null", "non-negative integer");
	expect_error(&p, "100001", "factorial: n must be at most 100000, got 100001");
	expect_error(&p, "123456789012345678901234567890", "at most 100000");
	tplug_close(&p);
}

Test(plugins, factorial_quotes_at_most_40_bytes)
{
	struct tplug p;
	struct tresult r;

	tplug_open(&p, FACTORIAL_SO, NULL);
	r = tplug_run(&p, "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"");
	cr_assert(!r.ok);
	cr_expect_str_eq(r.err.msg, "factorial: n must be a non-negative integer, got "
	                            "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...");
	/* A character that straddles the cut is left out whole. */
	r = tplug_run(&p, "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\xc3\xa9\"");
	cr_assert(!r.ok);
	cr_expect_str_eq(r.err.msg, "factorial: n must be a non-negative integer, got "
	                            "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...");
	tplug_close(&p);
}

Test(plugins, identity_returns_bytes_unchanged)
{
	struct tplug p;

	tplug_open(&p, IDENTITY_SO, NULL);
	cr_expect_str_eq(p.d->name, "identity");
	expect_output(&p, "12345678901234567890123", "12345678901234567890123");
	expect_output(&p, "{\"a\":[1,2]}", "{\"a\":[1,2]}");
	expect_output(&p, "\"\\u00e9\"", "\"\\u00e9\"");
	expect_output(&p, "{ \"id\" : 9007199254740993 }", "{ \"id\" : 9007199254740993 }");
	tplug_close(&p);
}

Test(plugins, sleep_sleeps_and_returns_x)
{
	struct tplug p;
	struct timespec t0;
	double took;

	tplug_open(&p, SLEEP_SO, NULL);
	cr_expect_str_eq(p.d->name, "sleep");
	cr_expect_null(p.d->deserialize);
	cr_expect_null(p.d->serialize);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	expect_output(&p, "0.01", "0.01");
	took = seconds_since(&t0);
	cr_expect_geq(took, 0.01, "slept only %.4f s", took);
	expect_output(&p, "0", "0");
	tplug_close(&p);
}

Test(plugins, sleep_rejects_bad_durations)
{
	struct tplug p;

	tplug_open(&p, SLEEP_SO, NULL);
	expect_error(&p, "\"x\"", "sleep: x must be a number of seconds from 0 to 86400, got \"x\"");
	expect_error(&p, "-1", "got -1");
	expect_error(&p, "86401", "got 86401");
	expect_error(&p, "[1]", "got [1]");
	tplug_close(&p);
}

/* The fields of a complex.so result. */
struct tmandel {
	double re, im;
	int iterations;
	int inside;
};

static struct tmandel run_complex(const struct tplug *p, const char *item)
{
	struct tmandel m;
	char *s = run_ok(p, item);
	cJSON *o = cJSON_Parse(s), *f;

	cr_assert_not_null(o, "%s: output is not JSON: %s", item, s);
	cr_assert_eq(cJSON_GetArraySize(o), 4, "%s: %s", item, s);
	f = cJSON_GetObjectItemCaseSensitive(o, "re");
	cr_assert(cJSON_IsNumber(f), "%s: %s", item, s);
	m.re = f->valuedouble;
	f = cJSON_GetObjectItemCaseSensitive(o, "im");
	cr_assert(cJSON_IsNumber(f), "%s: %s", item, s);
	m.im = f->valuedouble;
	f = cJSON_GetObjectItemCaseSensitive(o, "iterations");
	cr_assert(cJSON_IsNumber(f), "%s: %s", item, s);
	m.iterations = f->valueint;
	f = cJSON_GetObjectItemCaseSensitive(o, "inside");
	cr_assert(cJSON_IsBool(f), "%s: %s", item, s);
	m.inside = cJSON_IsTrue(f);
	cJSON_Delete(o);
	free(s);
	return m;
}

Test(plugins, complex_inside_point_stays_bounded)
{
	struct tplug p;
	struct tmandel m;

	tplug_open(&p, COMPLEX_SO, NULL);
	cr_expect_str_eq(p.d->name, "complex");
	m = run_complex(&p, "[0,0]");
	cr_expect(m.inside);
	cr_expect_eq(m.iterations, 1000);
	cr_expect_eq(m.re, 0.0);
	cr_expect_eq(m.im, 0.0);
	/* -2 is on the boundary: the orbit sits at |z| = 2 and never exceeds it. */
	m = run_complex(&p, "[ -2 , 0 ]");
	cr_expect(m.inside);
	tplug_close(&p);
}

Test(plugins, complex_outside_point_escapes)
{
	struct tplug p;
	struct tmandel m;

	tplug_open(&p, COMPLEX_SO, NULL);
	m = run_complex(&p, "[2,2]");
	cr_expect(!m.inside);
	cr_expect_eq(m.iterations, 1);
	cr_expect_eq(m.re, 2.0);
	cr_expect_eq(m.im, 2.0);
	/* c = 1: z goes 1, 2, 5. */
	m = run_complex(&p, "[1,0]");
	cr_expect(!m.inside);
	cr_expect_eq(m.iterations, 3);
	tplug_close(&p);
}

Test(plugins, complex_serializes_doubles_exactly)
{
	struct tplug p;

	tplug_open(&p, COMPLEX_SO, NULL);
	expect_output(&p, "[0.1,-1e-300]",
	              "{\"re\":0.1,\"im\":-1e-300,\"iterations\":1000,\"inside\":true}");
	expect_output(&p, "[3,0.30000000000000004]",
	              "{\"re\":3,\"im\":0.30000000000000004,\"iterations\":1,\"inside\":false}");
	tplug_close(&p);
}

Test(plugins, complex_rejects_malformed_points)
{
	struct tplug p;

	tplug_open(&p, COMPLEX_SO, NULL);
	expect_error(&p, "[1]", "complex: item must be [re, im] with two finite numbers, got [1]");
	expect_error(&p, "[1,2,3]", "got [1,2,3]");
	expect_error(&p, "[\"1\",2]", "got [\"1\",2]");
	expect_error(&p, "{\"re\":1}", "item must be [re, im]");
	expect_error(&p, "[1e400,0]", "two finite numbers");
	tplug_close(&p);
}

Test(plugins, complex_config_reaches_init)
{
	struct tplug p;
	struct tmandel m;

	tplug_open(&p, COMPLEX_SO, "{\"max_iter\":50}");
	m = run_complex(&p, "[0,0]");
	cr_expect(m.inside);
	cr_expect_eq(m.iterations, 50);
	tplug_close(&p);
}

Test(plugins, complex_rejects_bad_config)
{
	pexec_error err = { "" };

	cr_expect(tplug_init_fails(COMPLEX_SO, "{\"max_iters\":50}", &err));
	cr_expect(strstr(err.msg, "unknown config key 'max_iters'"), "got '%s'", err.msg);
	cr_expect(tplug_init_fails(COMPLEX_SO, "{\"max_iter\":0}", &err));
	cr_expect(strstr(err.msg, "max_iter must be an integer"), "got '%s'", err.msg);
	cr_expect(tplug_init_fails(COMPLEX_SO, "{\"max_iter\":2.5}", &err));
	cr_expect(tplug_init_fails(COMPLEX_SO, "[50]", &err));
	cr_expect(strstr(err.msg, "config must be an object"), "got '%s'", err.msg);
}
