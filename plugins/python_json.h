/*
 * python_json.h - JSON text to Python values and back, for the python
 * plugin (python.c), straight between bytes and objects.
 *
 * The values are those of Python's json module: json.loads(text) and
 * json.dumps(value, ensure_ascii=False, allow_nan=False) with the tightest
 * separators, so integers of any size are exact, strings keep full Unicode,
 * and a value JSON cannot hold is an error naming its type.  Both directions
 * work on the bytes directly, with no intermediate str object and no call
 * into Python code: an item's text is usually short, and at that size the
 * calls, not the parsing, are what costs.
 *
 * Both need the GIL (the plugin holds it throughout) and report failure as
 * a Python exception set, for the caller to turn into a message.
 */
#ifndef PEXEC_PYTHON_JSON_H
#define PEXEC_PYTHON_JSON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "pexec_plugin.h"

/* The value of the JSON text data[0..len) (one value; whitespace around it
 * allowed), as a new reference; NULL with ValueError set when the text is
 * not one valid JSON value, or another exception (MemoryError,
 * RecursionError for nesting past Python's limit).  `data` need not be
 * NUL-terminated. */
PyObject *pyjson_load(const char *data, size_t len);

/* Appends the JSON text of `value` to `out`.  Returns 0, or -1 with an
 * exception set: TypeError "Object of type set is not JSON serializable"
 * for a value JSON has no form for, ValueError for NaN and infinities,
 * RecursionError for nesting past Python's limit (a list that contains
 * itself), MemoryError.  On failure `out` may hold part of the text: the
 * caller cuts it back. */
int pyjson_dump(PyObject *value, pexec_buf *out);

#endif
