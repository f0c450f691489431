/*
 * python_json.c - JSON text to Python values and back (python_json.h).
 *
 * The reader is a plain recursive descent over the bytes, strict as RFC 8259
 * (pexec's splitter has already checked items, but partial results and
 * library sources come here unchecked).  Its fast paths are the common
 * items: a number of up to 18 digits becomes an int without a string in
 * between, and a string without escapes is copied (ASCII) or decoded
 * (UTF-8) in one call.  The writer walks the value and writes into pexec's
 * buffer, escaping as json.dumps(ensure_ascii=False) does, and lone
 * surrogates (which UTF-8 cannot carry) as \uXXXX.
 *
 * Neither calls Python code: the only methods used are int's and float's own
 * repr (as json does), so a value cannot change while it is being written.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "python_json.h"

/* ---- reading ---- */

struct reader {
	const unsigned char *p, *end, *start;
};

static PyObject *bad(const struct reader *r, const char *what)
{
	PyErr_Format(PyExc_ValueError, "not valid JSON: %s at byte %zd", what,
	             (Py_ssize_t)(r->p - r->start));
	return NULL;
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static void skip_space(struct reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
		r->p++;
}

static PyObject *read_value(struct reader *r);

static PyObject *read_number(struct reader *r)
{
	const unsigned char *s = r->p, *q = s;
	int negative = 0, integer = 1;
	char small[64], *text = small;
	PyObject *v;
	size_t n;

	if (*q == '-') {
		negative = 1;
		q++;
	}
	if (q >= r->end || !is_digit(*q)) {
		r->p = q;
		return bad(r, "expected a digit");
	}
	if (*q == '0')
		q++;
	else
		while (q < r->end && is_digit(*q))
			q++;
	n = (size_t)(q - s) - (size_t)negative;
	if (q < r->end && *q == '.') {
		integer = 0;
		if (++q >= r->end || !is_digit(*q)) {
			r->p = q;
			return bad(r, "expected a digit after '.'");
		}
		while (q < r->end && is_digit(*q))
			q++;
	}
	if (q < r->end && (*q == 'e' || *q == 'E')) {
		integer = 0;
		if (++q < r->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= r->end || !is_digit(*q)) {
			r->p = q;
			return bad(r, "expected a digit in the exponent");
		}
		while (q < r->end && is_digit(*q))
			q++;
	}
	r->p = q;
	if (integer && n <= 18) {
		long long x = 0;

		for (const unsigned char *d = s + negative; d < q; d++)
			x = x * 10 + (*d - '0');
		return PyLong_FromLongLong(negative ? -x : x);
	}
	/* Both conversions read up to a NUL, which the text need not have
	 * where the number ends. */
	n = (size_t)(q - s);
	if (n >= sizeof(small) && !(text = PyMem_Malloc(n + 1)))
		return PyErr_NoMemory();
	memcpy(text, s, n);
	text[n] = '\0';
	if (integer) {
		v = PyLong_FromString(text, NULL, 10);
	} else {
		/* Out of range gives an infinity, as json.loads does. */
		double d = PyOS_string_to_double(text, NULL, NULL);

		v = d == -1.0 && PyErr_Occurred() ? NULL : PyFloat_FromDouble(d);
	}
	if (text != small)
		PyMem_Free(text);
	return v;
}

/* One UTF-8 sequence at *pp (before `end`), checked as strictly as Python's
 * own decoder: no overlong forms, no surrogates, nothing past U+10FFFF. */
static int utf8_next(const unsigned char **pp, const unsigned char *end, Py_UCS4 *out)
{
	const unsigned char *p = *pp;
	unsigned c = *p;
	Py_UCS4 cp, min;
	int n;

	if (c >= 0xc2 && c <= 0xdf) {
		n = 1, cp = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 2, cp = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 3, cp = c & 0x07, min = 0x10000;
	} else {
		return -1;
	}
	if (end - p <= n)
		return -1;
	for (int i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
		return -1;
	*out = cp;
	*pp = p + n + 1;
	return 0;
}

static int hex4(const unsigned char *p, const unsigned char *end, Py_UCS4 *out)
{
	Py_UCS4 v = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		unsigned c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			v |= (c | 0x20) - 'a' + 10;
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* A string with escapes (the slow path): decoded into code points, so that
 * an escaped lone surrogate, valid JSON that UTF-8 cannot carry, survives
 * as json.loads keeps it.  `s` is just past the opening quote. */
static PyObject *read_escaped(struct reader *r, const unsigned char *s)
{
	const unsigned char *q = s, *p;
	Py_UCS4 *buf;
	Py_ssize_t n = 0;
	PyObject *u;

	while (q < r->end && *q != '"') {
		if (*q < 0x20) {
			r->p = q;
			return bad(r, "control character in a string");
		}
		if (*q == '\\' && ++q >= r->end)
			break;
		q++;
	}
	if (q >= r->end) {
		r->p = s - 1;
		return bad(r, "unterminated string");
	}
	buf = PyMem_Malloc((size_t)(q - s) * sizeof(Py_UCS4) + 1);
	if (!buf)
		return PyErr_NoMemory();
	for (p = s; p < q;) {
		Py_UCS4 c = *p, lo;

		if (c == '\\') {
			switch (p[1]) {
			case '"': c = '"'; break;
			case '\\': c = '\\'; break;
			case '/': c = '/'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'u':
				if (hex4(p + 2, q, &c))
					goto bad_escape;
				p += 4;
				/* A pair makes one code point; a lone half stays. */
				if (c >= 0xd800 && c < 0xdc00 && q - p >= 8 && p[2] == '\\' &&
				    p[3] == 'u' && !hex4(p + 4, q, &lo) && lo >= 0xdc00 && lo < 0xe000) {
					c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
					p += 6;
				}
				break;
			default:
				goto bad_escape;
			}
			p += 2;
		} else if (c < 0x80) {
			p++;
		} else if (utf8_next(&p, q, &c)) {
			PyMem_Free(buf);
			r->p = p;
			return bad(r, "invalid UTF-8 in a string");
		}
		buf[n++] = c;
	}
	u = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, buf, n);
	PyMem_Free(buf);
	r->p = q + 1;
	return u;
bad_escape:
	PyMem_Free(buf);
	r->p = p;
	return bad(r, "invalid escape in a string");
}

static PyObject *read_string(struct reader *r)
{
	const unsigned char *s = r->p + 1, *q = s;
	unsigned high = 0;
	PyObject *u;

	while (q < r->end && *q != '"' && *q != '\\' && *q >= 0x20)
		high |= *q++;
	if (q >= r->end || *q != '"')
		return read_escaped(r, s);
	r->p = q + 1;
	if (high >= 0x80)
		return PyUnicode_DecodeUTF8((const char *)s, q - s, "strict");
	u = PyUnicode_New(q - s, 127);
	if (u)
		memcpy(PyUnicode_1BYTE_DATA(u), s, (size_t)(q - s));
	return u;
}

static PyObject *read_literal(struct reader *r, const char *word, PyObject *v)
{
	size_t n = strlen(word);

	if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n))
		return bad(r, "expected a value");
	r->p += n;
	Py_INCREF(v);
	return v;
}

static PyObject *read_array(struct reader *r)
{
	PyObject *list = PyList_New(0);

	if (!list)
		return NULL;
	r->p++;
	skip_space(r);
	if (r->p < r->end && *r->p == ']') {
		r->p++;
		return list;
	}
	for (;;) {
		PyObject *v = read_value(r);

		if (!v || PyList_Append(list, v))
			goto fail;
		Py_DECREF(v);
		skip_space(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == ']') {
			r->p++;
			return list;
		}
		bad(r, "expected ',' or ']'");
		v = NULL;
fail:
		Py_XDECREF(v);
		Py_DECREF(list);
		return NULL;
	}
}

static PyObject *read_object(struct reader *r)
{
	PyObject *dict = PyDict_New(), *k = NULL, *v = NULL;

	if (!dict)
		return NULL;
	r->p++;
	skip_space(r);
	if (r->p < r->end && *r->p == '}') {
		r->p++;
		return dict;
	}
	for (;;) {
		skip_space(r);
		if (r->p >= r->end || *r->p != '"') {
			bad(r, "expected a string key");
			goto fail;
		}
		if (!(k = read_string(r)))
			goto fail;
		skip_space(r);
		if (r->p >= r->end || *r->p != ':') {
			bad(r, "expected ':'");
			goto fail;
		}
		r->p++;
		/* A repeated key keeps its last value, as json.loads does. */
		if (!(v = read_value(r)) || PyDict_SetItem(dict, k, v))
			goto fail;
		Py_CLEAR(k);
		Py_CLEAR(v);
		skip_space(r);
		if (r->p < r->end && *r->p == ',') {
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == '}') {
			r->p++;
			return dict;
		}
		bad(r, "expected ',' or '}'");
		goto fail;
	}
fail:
	Py_XDECREF(k);
	Py_XDECREF(v);
	Py_DECREF(dict);
	return NULL;
}

static PyObject *read_value(struct reader *r)
{
	PyObject *v;

	skip_space(r);
	if (r->p >= r->end)
		return bad(r, "expected a value");
	switch (*r->p) {
	case '[':
	case '{':
		/* Nesting deeper than Python's recursion limit is a
		 * RecursionError, as with json.loads, not a C stack overflow. */
		if (Py_EnterRecursiveCall(" while decoding a JSON value"))
			return NULL;
		v = *r->p == '[' ? read_array(r) : read_object(r);
		Py_LeaveRecursiveCall();
		return v;
	case '"':
		return read_string(r);
	case 't':
		return read_literal(r, "true", Py_True);
	case 'f':
		return read_literal(r, "false", Py_False);
	case 'n':
		return read_literal(r, "null", Py_None);
	default:
		if (*r->p == '-' || is_digit(*r->p))
			return read_number(r);
		return bad(r, "expected a value");
	}
}

PyObject *pyjson_load(const char *data, size_t len)
{
	struct reader r = { (const unsigned char *)data, (const unsigned char *)data + len,
		            (const unsigned char *)data };
	PyObject *v = read_value(&r);

	if (!v)
		return NULL;
	skip_space(&r);
	if (r.p != r.end) {
		Py_DECREF(v);
		return bad(&r, "text after the value");
	}
	return v;
}

/* ---- writing ---- */

static int put(pexec_buf *out, const char *s, size_t n)
{
	if (pexec_buf_append(out, s, n)) {
		PyErr_NoMemory();
		return -1;
	}
	return 0;
}

static int dump_value(PyObject *v, pexec_buf *out);

static int dump_int(PyObject *v, pexec_buf *out)
{
	int overflow;
	long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
	PyObject *text;
	const char *s;
	Py_ssize_t n;
	int rc;

	if (x == -1 && PyErr_Occurred())
		return -1;
	if (!overflow) {
		char tmp[24], *p = tmp + sizeof(tmp);
		unsigned long long u = x < 0 ? 0ull - (unsigned long long)x : (unsigned long long)x;

		do
			*--p = (char)('0' + u % 10);
		while ((u /= 10) != 0);
		if (x < 0)
			*--p = '-';
		return put(out, p, (size_t)(tmp + sizeof(tmp) - p));
	}
	/* int's own repr, not a subclass's, as json does. */
	text = PyLong_Type.tp_repr(v);
	if (!text)
		return -1;
	s = PyUnicode_AsUTF8AndSize(text, &n);
	rc = s ? put(out, s, (size_t)n) : -1;
	Py_DECREF(text);
	return rc;
}

static int dump_float(PyObject *v, pexec_buf *out)
{
	double d = PyFloat_AS_DOUBLE(v);
	char *s;
	int rc;

	if (!isfinite(d)) {
		PyErr_Format(PyExc_ValueError, "Out of range float values are not JSON compliant: %s",
		             d != d ? "nan" : d > 0 ? "inf" : "-inf");
		return -1;
	}
	/* What float's repr writes: the shortest text that reads back as d. */
	s = PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
	if (!s)
		return -1;
	rc = put(out, s, strlen(s));
	PyMem_Free(s);
	return rc;
}

static char *put_escape(char *w, Py_UCS4 c)
{
	static const char hex[] = "0123456789abcdef";

	*w++ = '\\';
	switch (c) {
	case '"': *w++ = '"'; return w;
	case '\\': *w++ = '\\'; return w;
	case '\n': *w++ = 'n'; return w;
	case '\r': *w++ = 'r'; return w;
	case '\t': *w++ = 't'; return w;
	case '\b': *w++ = 'b'; return w;
	case '\f': *w++ = 'f'; return w;
	}
	*w++ = 'u';
	for (int shift = 12; shift >= 0; shift -= 4)
		*w++ = hex[(c >> shift) & 0xf];
	return w;
}

/* Code points written per reservation: at most 6 bytes each. */
#define STRING_RUN 4096

static int dump_string(PyObject *s, pexec_buf *out)
{
	Py_ssize_t n, i = 0;
	int kind;
	const void *data;

	if (PyUnicode_READY(s))
		return -1;
	n = PyUnicode_GET_LENGTH(s);
	kind = PyUnicode_KIND(s);
	data = PyUnicode_DATA(s);
	if (PyUnicode_IS_ASCII(s)) {
		const unsigned char *a = data;

		while (i < n && a[i] >= 0x20 && a[i] != '"' && a[i] != '\\')
			i++;
		if (i == n) {
			char *w;

			if (pexec_buf_reserve(out, (size_t)n + 2)) {
				PyErr_NoMemory();
				return -1;
			}
			w = out->data + out->len;
			*w++ = '"';
			memcpy(w, a, (size_t)n);
			w[n] = '"';
			out->len += (size_t)n + 2;
			return 0;
		}
		i = 0;
	}
	if (put(out, "\"", 1))
		return -1;
	while (i < n) {
		Py_ssize_t stop = n - i > STRING_RUN ? i + STRING_RUN : n;
		char *w;

		if (pexec_buf_reserve(out, (size_t)(stop - i) * 6 + 1)) {
			PyErr_NoMemory();
			return -1;
		}
		w = out->data + out->len;
		for (; i < stop; i++) {
			Py_UCS4 c = PyUnicode_READ(kind, data, i);

			if (c < 0x80) {
				if (c >= 0x20 && c != '"' && c != '\\')
					*w++ = (char)c;
				else
					w = put_escape(w, c);
			} else if (c < 0x800) {
				*w++ = (char)(0xc0 | c >> 6);
				*w++ = (char)(0x80 | (c & 0x3f));
			} else if (c >= 0xd800 && c < 0xe000) {
				w = put_escape(w, c);
			} else if (c < 0x10000) {
				*w++ = (char)(0xe0 | c >> 12);
				*w++ = (char)(0x80 | (c >> 6 & 0x3f));
				*w++ = (char)(0x80 | (c & 0x3f));
			} else {
				*w++ = (char)(0xf0 | c >> 18);
				*w++ = (char)(0x80 | (c >> 12 & 0x3f));
				*w++ = (char)(0x80 | (c >> 6 & 0x3f));
				*w++ = (char)(0x80 | (c & 0x3f));
			}
		}
		out->len = (size_t)(w - out->data);
	}
	return put(out, "\"", 1);
}

static int not_serializable(PyObject *v, const char *fmt)
{
	PyObject *name = PyType_GetName(Py_TYPE(v));

	if (name) {
		PyErr_Format(PyExc_TypeError, fmt, name);
		Py_DECREF(name);
	}
	return -1;
}

/* A key as json.dumps writes it: str as it is; int, float, bool and None as
 * the text of their JSON value. */
static int dump_key(PyObject *k, pexec_buf *out)
{
	if (PyUnicode_Check(k))
		return dump_string(k, out);
	if (k == Py_True)
		return put(out, "\"true\"", 6);
	if (k == Py_False)
		return put(out, "\"false\"", 7);
	if (k == Py_None)
		return put(out, "\"null\"", 6);
	if (PyLong_Check(k) || PyFloat_Check(k)) {
		if (put(out, "\"", 1) || (PyLong_Check(k) ? dump_int(k, out) : dump_float(k, out)))
			return -1;
		return put(out, "\"", 1);
	}
	return not_serializable(k, "keys must be str, int, float, bool or None, not %U");
}

static int dump_container(PyObject *v, pexec_buf *out)
{
	Py_ssize_t i, pos = 0;
	PyObject *k, *item;
	int first = 1;

	if (PyDict_Check(v)) {
		if (put(out, "{", 1))
			return -1;
		while (PyDict_Next(v, &pos, &k, &item)) {
			if ((!first && put(out, ",", 1)) || dump_key(k, out) || put(out, ":", 1) ||
			    dump_value(item, out))
				return -1;
			first = 0;
		}
		return put(out, "}", 1);
	}
	if (put(out, "[", 1))
		return -1;
	/* Sizes are read again each time round: nothing here runs Python
	 * code, but a list's size is cheap to trust only that way. */
	for (i = 0; i < (PyList_Check(v) ? PyList_GET_SIZE(v) : PyTuple_GET_SIZE(v)); i++) {
		item = PyList_Check(v) ? PyList_GET_ITEM(v, i) : PyTuple_GET_ITEM(v, i);
		if ((i && put(out, ",", 1)) || dump_value(item, out))
			return -1;
	}
	return put(out, "]", 1);
}

static int dump_value(PyObject *v, pexec_buf *out)
{
	int rc;

	if (v == Py_None)
		return put(out, "null", 4);
	if (v == Py_True)
		return put(out, "true", 4);
	if (v == Py_False)
		return put(out, "false", 5);
	if (PyUnicode_Check(v))
		return dump_string(v, out);
	if (PyLong_Check(v))
		return dump_int(v, out);
	if (PyFloat_Check(v))
		return dump_float(v, out);
	if (PyList_Check(v) || PyTuple_Check(v) || PyDict_Check(v)) {
		if (Py_EnterRecursiveCall(" while encoding a JSON object"))
			return -1;
		rc = dump_container(v, out);
		Py_LeaveRecursiveCall();
		return rc;
	}
	return not_serializable(v, "Object of type %U is not JSON serializable");
}

int pyjson_dump(PyObject *value, pexec_buf *out)
{
	return dump_value(value, out);
}
