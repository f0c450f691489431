/*
 * pyconvert.c - what one item's JSON <-> Python conversion costs, by each
 * way the python plugin could do it (bench/run.py --python-convert builds
 * and runs it; see bench/README.md).
 *
 *     pyconvert [ITERATIONS]
 *
 * For each sample item text, and for the value it reads as, it times:
 *   load:  the plugin's own reader (plugins/python_json.c, bytes to
 *          objects); json.loads(bytes); and the json module's C scanner
 *          called directly (the str decoded first, as json.loads does);
 *   dump:  the plugin's own writer (objects to bytes in pexec's buffer);
 *          json.dumps(v, ensure_ascii=False, separators=(",", ":"));
 *          a JSONEncoder made once, its encode() per value (the C encoder
 *          behind a Python method), then the UTF-8 copied out.
 * Every way's text is checked to be the same as the plugin's, and every
 * value read to equal json.loads's.  Times are CPU time per call, the best
 * of 5 rounds, so that a busy machine slows the figures less.
 * The output is Markdown.
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "python_json.h"

static const struct sample {
	const char *what;
	const char *text;
} samples[] = {
	{ "small int (the factorial input)", "57" },
	{ "98! (a 154-digit int)",
	  "9426890448883247745626185743057242473809693764078951663494238777294707070023223798882976"
	  "159207729119823605850588608460429412647567360000000000000000000000" },
	{ "float", "3.141592653589793" },
	{ "ASCII string", "\"the quick brown fox\"" },
	{ "non-ASCII string", "\"h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac\"" },
	{ "small object", "{\"id\":12345,\"name\":\"alice\",\"tags\":[\"a\",\"b\"],\"score\":0.5}" },
	{ "array of 20 ints", "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]" },
};

static int grow(pexec_buf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	while (cap - b->len < need)
		cap *= 2;
	if (!(p = realloc(b->data, cap)))
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

static double cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what)
{
	PyErr_Print();
	fprintf(stderr, "pyconvert: %s failed\n", what);
	exit(1);
}

/* The ways, each one call on one sample. */
struct ctx {
	const char *text;
	size_t len;
	PyObject *value;        /* what the text reads as */
	PyObject *loads, *dumps, *dumps_kw, *scanner, *encode;
	pexec_buf buf;
};

static PyObject *load_own(struct ctx *c)
{
	return pyjson_load(c->text, c->len);
}

static PyObject *load_json_loads(struct ctx *c)
{
	PyObject *b = PyBytes_FromStringAndSize(c->text, (Py_ssize_t)c->len), *v;

	v = b ? PyObject_CallOneArg(c->loads, b) : NULL;
	Py_XDECREF(b);
	return v;
}

static PyObject *load_scanner(struct ctx *c)
{
	PyObject *s = PyUnicode_DecodeUTF8(c->text, (Py_ssize_t)c->len, "strict"), *zero, *r, *v;

	if (!s)
		return NULL;
	zero = PyLong_FromLong(0);
	r = PyObject_CallFunctionObjArgs(c->scanner, s, zero, NULL);
	Py_DECREF(zero);
	Py_DECREF(s);
	if (!r)
		return NULL;
	v = PyTuple_GET_ITEM(r, 0);
	Py_INCREF(v);
	Py_DECREF(r);
	return v;
}

/* Writes into c->buf; 0 or -1. */
static int dump_own(struct ctx *c)
{
	c->buf.len = 0;
	return pyjson_dump(c->value, &c->buf);
}

static int copy_out(struct ctx *c, PyObject *s)
{
	Py_ssize_t n;
	const char *t = s ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
	int rc = t ? pexec_buf_append(&c->buf, t, (size_t)n) : -1;

	Py_XDECREF(s);
	return rc;
}

static int dump_json_dumps(struct ctx *c)
{
	PyObject *args = PyTuple_Pack(1, c->value);
	PyObject *s = args ? PyObject_Call(c->dumps, args, c->dumps_kw) : NULL;

	Py_XDECREF(args);
	c->buf.len = 0;
	return copy_out(c, s);
}

static int dump_encoder(struct ctx *c)
{
	c->buf.len = 0;
	return copy_out(c, PyObject_CallOneArg(c->encode, c->value));
}

static double time_load(struct ctx *c, PyObject *(*way)(struct ctx *), long n)
{
	double best = 1e300;

	for (int round = 0; round < 5; round++) {
		double t0 = cpu_ns();
		for (long i = 0; i < n; i++) {
			PyObject *v = way(c);
			if (!v)
				die("a load");
			Py_DECREF(v);
		}
		double t = (cpu_ns() - t0) / (double)n;
		if (t < best)
			best = t;
	}
	return best;
}

static double time_dump(struct ctx *c, int (*way)(struct ctx *), long n)
{
	double best = 1e300;

	for (int round = 0; round < 5; round++) {
		double t0 = cpu_ns();
		for (long i = 0; i < n; i++)
			if (way(c))
				die("a dump");
		double t = (cpu_ns() - t0) / (double)n;
		if (t < best)
			best = t;
	}
	return best;
}

static PyObject *attr(PyObject *o, const char *name)
{
	PyObject *v = PyObject_GetAttrString(o, name);

	if (!v)
		die(name);
	return v;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000;
	struct ctx c = { .buf = { .grow = grow } };
	PyObject *json, *decoder, *encoder_cls, *kw, *enc;
	pexec_buf own = { .grow = grow };

	Py_InitializeEx(0);
	PyRun_SimpleString("import sys; sys.set_int_max_str_digits(0)");
	json = PyImport_ImportModule("json");
	if (!json)
		die("import json");
	c.loads = attr(json, "loads");
	c.dumps = attr(json, "dumps");
	kw = Py_BuildValue("{sOs(ss)}", "ensure_ascii", Py_False, "separators", ",", ":");
	c.dumps_kw = kw;
	decoder = PyObject_CallNoArgs(attr(json, "JSONDecoder"));
	if (!decoder)
		die("JSONDecoder()");
	c.scanner = attr(decoder, "scan_once");
	encoder_cls = attr(json, "JSONEncoder");
	{
		PyObject *none = PyTuple_New(0);
		enc = PyObject_Call(encoder_cls, none, kw);
		Py_DECREF(none);
	}
	if (!enc)
		die("JSONEncoder()");
	c.encode = attr(enc, "encode");

	printf("CPU time per call, best of 5 rounds of %ld calls (Python %s).\n\n", n,
	       Py_GetVersion());
	printf("| item | load: plugin's reader | json.loads | C scanner direct | "
	       "dump: plugin's writer | json.dumps | JSONEncoder.encode |\n");
	printf("|---|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		PyObject *want, *got;
		double l1, l2, l3, d1, d2, d3;

		c.text = samples[i].text;
		c.len = strlen(c.text);
		want = load_json_loads(&c);
		got = load_own(&c);
		if (!want || !got || PyObject_RichCompareBool(want, got, Py_EQ) != 1)
			die("the plugin's reader agreeing with json.loads");
		Py_DECREF(got);
		c.value = want;
		/* The same text every way. */
		if (dump_own(&c))
			die("the plugin's writer");
		own.len = 0;
		pexec_buf_append(&own, c.buf.data, c.buf.len);
		if (dump_json_dumps(&c) || c.buf.len != own.len || memcmp(c.buf.data, own.data, own.len))
			die("json.dumps agreeing with the plugin's writer");
		if (dump_encoder(&c) || c.buf.len != own.len || memcmp(c.buf.data, own.data, own.len))
			die("JSONEncoder agreeing with the plugin's writer");
		l1 = time_load(&c, load_own, n);
		l2 = time_load(&c, load_json_loads, n);
		l3 = time_load(&c, load_scanner, n);
		d1 = time_dump(&c, dump_own, n);
		d2 = time_dump(&c, dump_json_dumps, n);
		d3 = time_dump(&c, dump_encoder, n);
		printf("| %s | %.0f ns | %.0f ns | %.0f ns | %.0f ns | %.0f ns | %.0f ns |\n",
		       samples[i].what, l1, l2, l3, d1, d2, d3);
		Py_DECREF(want);
		c.value = NULL;
	}
	free(c.buf.data);
	free(own.data);
	return 0;
}
