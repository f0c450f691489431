/*
 * python.c - a Python function on pexec's pool: CPython hosted in each
 * worker, with no pickling at all.
 *
 *     pexec -p python --config '{"function": "mymod:f"}' in.json
 *
 * setup (pexec_plugin.h), in pexec before the fork, starts the interpreter,
 * imports the module and looks the function up, then freezes the garbage
 * collector's view of everything made so far (gc.freeze()), so that no
 * collection in a worker writes to those objects' pages: every worker
 * inherits one import, copy-on-write.  Each worker's init tells CPython it
 * was forked (PyOS_AfterFork_Child); --serial and pexec's own init for
 * --reduce run where setup did, and do not.  Items go from their JSON bytes
 * straight to Python values and back (python_json.c).
 *
 * The interpreter is process-wide, and so is this plugin's state: it lives
 * in one static struct, which is what every worker inherits, and the hooks'
 * state pointer is unused.  The GIL is taken once, by setup, and held for
 * good: a worker has one thread, and pexec calls every hook from it.
 *
 * Values at the boundary: a JSON null is NULL (pexec writes "null" for a
 * NULL result itself), everything else a new reference, which pexec frees
 * through free_value.  So None never has to be told apart from "no value",
 * and an object pexec holds twice is seen as one (see py_reduce).
 */
#define _GNU_SOURCE /* dladdr */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "pexec_plugin.h"
#include "python_json.h"

/* The interpreter that libpython belongs to, from the build (Makefile);
 * it names the standard library and site-packages CPython finds. */
#ifndef PEXEC_PYTHON_EXE
#define PEXEC_PYTHON_EXE "/usr/bin/python3"
#endif

/* The largest --config "initial", as JSON text. */
#define INITIAL_MAX 65536

/* A worker's buffered prints go out at least this often (see py_flush). */
#define FLUSH_NS 10000000u

/* What setup builds (pexec_plugin.h, OWNERSHIP): one per process. */
static struct {
	int ready;           /* set up, here or in the process this one is a fork of */
	int owner;           /* this plugin started the interpreter: teardown ends it */
	pid_t setup_pid;     /* the process setup ran in */
	pid_t forked_pid;    /* the worker that has told CPython of its fork */
	PyObject *fn;        /* the function */
	PyObject *reduce;    /* --reduce's function, or NULL */
	int has_initial;     /* --config gave "initial" */
	PyObject **argv;     /* [vectorcall's spare slot, item, args..., kwargs' values...] */
	Py_ssize_t nargs;    /* the fixed positional arguments */
	PyObject *kwnames;   /* a tuple, or NULL */
	char *source;        /* --config "source", for the lines of its frames */
	char *lambda;        /* --config "lambda" (or a lambda "function") */
	PyObject *out;       /* sys.stderr, which sys.stdout is too */
	uint64_t flushed_ns;
} py;

/* The fold's starting value, as JSON text: reduce_initial points here, and
 * setup writes the --config "initial" into it, before pexec reads it (after
 * setup, in every process).  Without "reduce" it holds a text only
 * py_deserialize recognizes, by its address, to refuse --reduce. */
static char py_initial[INITIAL_MAX] = "null";

/* ---- messages ---- */

/* Appends s[0..n) to the message at *at, cut on a UTF-8 boundary to fit. */
static void msg_add(pexec_error *err, size_t *at, const char *s, size_t n)
{
	size_t room = sizeof(err->msg) - 1 - *at;

	if (n > room) {
		n = room;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(err->msg + *at, s, n);
	*at += n;
	err->msg[*at] = '\0';
}

static void msg_add_str(pexec_error *err, size_t *at, PyObject *s)
{
	Py_ssize_t n;
	const char *t = s ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;

	if (t)
		msg_add(err, at, t, (size_t)n);
	PyErr_Clear();
}

/* An exception's type as tracebacks show it: module.Qualname, without
 * builtins or __main__. */
static void add_type_name(pexec_error *err, size_t *at, PyObject *type)
{
	PyObject *qual = PyType_GetQualName((PyTypeObject *)type);
	PyObject *mod = PyObject_GetAttrString(type, "__module__");

	if (mod && PyUnicode_Check(mod) && PyUnicode_CompareWithASCIIString(mod, "builtins") &&
	    PyUnicode_CompareWithASCIIString(mod, "__main__")) {
		msg_add_str(err, at, mod);
		msg_add(err, at, ".", 1);
	}
	msg_add_str(err, at, qual);
	Py_XDECREF(qual);
	Py_XDECREF(mod);
	PyErr_Clear();
}

/* Line `lineno` of `text` (a file's, or --config's), without its
 * indentation and line end, into buf; "" when there is no such line. */
static void nth_line(const char *text, long lineno, char *buf, size_t size)
{
	const char *p = text, *e;

	buf[0] = '\0';
	for (long n = 1; p && n < lineno; n++)
		if ((p = strchr(p, '\n')))
			p++;
	if (!p || lineno < 1)
		return;
	while (*p == ' ' || *p == '\t')
		p++;
	e = strchr(p, '\n');
	snprintf(buf, size, "%.*s", (int)(e ? e - p : (long)strlen(p)), p);
	if (*buf && buf[strlen(buf) - 1] == '\r')
		buf[strlen(buf) - 1] = '\0';
}

/* The source line a frame stands at: from --config for its own code, else
 * read from the file (an error path: a plain read is enough, and it spares
 * every worker the import of traceback and linecache, which is what
 * formatting with them would cost at start-up). */
static void frame_line(const char *file, long lineno, char *buf, size_t size)
{
	char chunk[4096];
	long n = 1;
	size_t have = 0;
	FILE *f;

	buf[0] = '\0';
	if (!strcmp(file, "<--config source>") || !strcmp(file, "<--config lambda>")) {
		const char *text = file[10] == 's' ? py.source : py.lambda;
		if (text)
			nth_line(text, lineno, buf, size);
		return;
	}
	if (file[0] == '<' || !(f = fopen(file, "r")))
		return;
	/* Counts lines chunk by chunk; keeps the wanted one. */
	while (fgets(chunk, sizeof(chunk), f)) {
		if (n == lineno) {
			nth_line(chunk, 1, buf, size);
			break;
		}
		have = strlen(chunk);
		if (have && chunk[have - 1] == '\n')
			n++;
	}
	fclose(f);
}

/* The last frames of a traceback, as Python prints them, oldest first,
 * after a newline: as many as fit, the innermost at least. */
#define FRAMES_KEPT 8

static void add_frames(pexec_error *err, size_t *at, PyObject *tb)
{
	char text[FRAMES_KEPT][PEXEC_ERROR_MAX];
	size_t room = sizeof(err->msg) - 2 - *at, used = 0;
	int n = 0, first;

	Py_INCREF(tb);
	while (tb && tb != Py_None) {
		PyObject *frame = PyObject_GetAttrString(tb, "tb_frame");
		PyObject *line = PyObject_GetAttrString(tb, "tb_lineno");
		PyObject *next = PyObject_GetAttrString(tb, "tb_next");
		PyCodeObject *code = frame ? PyFrame_GetCode((PyFrameObject *)frame) : NULL;
		PyObject *file = code ? PyObject_GetAttrString((PyObject *)code, "co_filename") : NULL;
		PyObject *name = code ? PyObject_GetAttrString((PyObject *)code, "co_name") : NULL;
		const char *f = file && PyUnicode_Check(file) ? PyUnicode_AsUTF8(file) : NULL;
		const char *nm = name && PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
		long lineno = line ? PyLong_AsLong(line) : -1;
		char src[256];

		if (f && nm) {
			char *t = text[n++ % FRAMES_KEPT];
			frame_line(f, lineno, src, sizeof(src));
			snprintf(t, PEXEC_ERROR_MAX, "  File \"%s\", line %ld, in %s\n%s%s%s", f, lineno,
			         nm, *src ? "    " : "", src, *src ? "\n" : "");
		}
		Py_XDECREF(frame);
		Py_XDECREF(line);
		Py_XDECREF((PyObject *)code);
		Py_XDECREF(file);
		Py_XDECREF(name);
		Py_DECREF(tb);
		tb = next;
		PyErr_Clear();
	}
	Py_XDECREF(tb);
	if (n == 0)
		return;
	for (first = n; first > 0 && first > n - FRAMES_KEPT; first--) {
		size_t len = strlen(text[(first - 1) % FRAMES_KEPT]);
		if (used + len > room)
			break;
		used += len;
	}
	if (first == n)
		first = n - 1; /* the innermost frame, cut */
	msg_add(err, at, "\n", 1);
	for (int i = first; i < n; i++)
		msg_add(err, at, text[i % FRAMES_KEPT], strlen(text[i % FRAMES_KEPT]));
	while (*at > 0 && err->msg[*at - 1] == '\n')
		err->msg[--*at] = '\0';
}

/* Turns the pending exception into a message (and clears it): the first
 * line "prefixType: text", the one-line reason; after it, the traceback's
 * last frames and the rest of a message of several lines, as fit in
 * PEXEC_ERROR_MAX. */
static void py_message(pexec_error *err, const char *prefix)
{
	PyObject *type, *value, *tb, *text = NULL;
	const char *t = NULL, *nl = NULL;
	Py_ssize_t n = 0;
	size_t at = 0;

	PyErr_Fetch(&type, &value, &tb);
	err->msg[0] = '\0';
	msg_add(err, &at, prefix, strlen(prefix));
	if (!type) {
		msg_add(err, &at, "failed without an exception", 27);
		return;
	}
	PyErr_NormalizeException(&type, &value, &tb);
	add_type_name(err, &at, type);
	if (value && (text = PyObject_Str(value)) && (t = PyUnicode_AsUTF8AndSize(text, &n)) &&
	    n > 0) {
		nl = memchr(t, '\n', (size_t)n);
		msg_add(err, &at, ": ", 2);
		msg_add(err, &at, t, nl ? (size_t)(nl - t) : (size_t)n);
	}
	PyErr_Clear();
	if (tb)
		add_frames(err, &at, tb);
	if (nl)
		msg_add(err, &at, nl, (size_t)(t + n - nl));
	Py_XDECREF(text);
	Py_XDECREF(type);
	Py_XDECREF(value);
	Py_XDECREF(tb);
	PyErr_Clear();
}

/* ---- the interpreter ---- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* print() goes to sys.stdout, which is sys.stderr here, line-buffered: a
 * whole line goes out at once (so workers' lines never interleave), and a
 * line not yet ended goes out within FLUSH_NS or at fini, without a flush
 * call per item. */
static void py_flush(int now)
{
	uint64_t t = now_ns();
	PyObject *r, *type, *value, *tb;

	if (!py.out || (!now && t - py.flushed_ns < FLUSH_NS))
		return;
	py.flushed_ns = t;
	/* The function's own exception, if it raised, waits for its message:
	 * no Python code may run with one pending, nor clear it. */
	PyErr_Fetch(&type, &value, &tb);
	r = PyObject_CallMethod(py.out, "flush", NULL);
	Py_XDECREF(r);
	PyErr_Clear();
	PyErr_Restore(type, value, tb);
}

/* f.reconfigure(line_buffering=True, write_through=False); a stream of
 * another kind is left as it is. */
static void lines_at_once(PyObject *f)
{
	PyObject *args[3] = { f, Py_True, Py_False };
	PyObject *name = PyUnicode_FromString("reconfigure");
	PyObject *kwnames = Py_BuildValue("(ss)", "line_buffering", "write_through");
	PyObject *r = name && kwnames ? PyObject_VectorcallMethod(name, args, 1, kwnames) : NULL;

	Py_XDECREF(r);
	Py_XDECREF(kwnames);
	Py_XDECREF(name);
	PyErr_Clear();
}

static int status_failed(PyStatus st, pexec_error *err)
{
	if (!PyStatus_Exception(st))
		return 0;
	pexec_error_set(err, "python: cannot start the interpreter: %s%s%s",
	                st.func ? st.func : "", st.func ? ": " : "",
	                st.err_msg ? st.err_msg : "exit requested");
	return -1;
}

/* The interpreter CPython should take its standard library and
 * site-packages from: the build's, or an active virtual environment made
 * from the same Python version. */
static void program_name(char *buf, size_t size)
{
	const char *venv = getenv("VIRTUAL_ENV");
	char site[PATH_MAX];
	struct stat st;

	snprintf(buf, size, "%s", PEXEC_PYTHON_EXE);
	if (!venv || !*venv)
		return;
	snprintf(site, sizeof(site), "%s/lib/python%d.%d/site-packages", venv, PY_MAJOR_VERSION,
	         PY_MINOR_VERSION);
	if (stat(site, &st) == 0 && S_ISDIR(st.st_mode))
		snprintf(buf, size, "%s/bin/python", venv);
}

static int py_start(pexec_error *err)
{
	char *argv[] = { "pexec", NULL }, name[PATH_MAX];
	PyPreConfig pre;
	PyConfig cfg;
	PyStatus st;
	Dl_info info;

	/* Extension modules (math, _json, numpy's) resolve CPython's symbols
	 * from the global scope, but pexec dlopen()s this plugin with
	 * RTLD_LOCAL, which keeps libpython, loaded as its dependency, out of
	 * it.  Promote the libpython already loaded; the handle is kept for
	 * the life of the process, as CPython keeps its extension modules. */
	if (!dladdr((void *)&Py_InitializeFromConfig, &info) || !info.dli_fname ||
	    !dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD)) {
		const char *why = dlerror();
		pexec_error_set(err, "python: cannot make libpython's symbols global: %s",
		                why ? why : "libpython not found");
		return -1;
	}
	if (Py_IsInitialized()) {
		/* A program embedding libpexec that runs its own interpreter. */
		py.owner = 0;
		return 0;
	}
	/* UTF-8 everywhere, without touching pexec's locale. */
	PyPreConfig_InitPythonConfig(&pre);
	pre.utf8_mode = 1;
	pre.configure_locale = 0;
	if (status_failed(Py_PreInitialize(&pre), err))
		return -1;
	PyConfig_InitPythonConfig(&cfg);
	/* pexec owns its workers' signals: no SIGINT handler, no SIGPIPE
	 * ignored, so Ctrl-C, --timeout and crashes act as for C plugins. */
	cfg.install_signal_handlers = 0;
	cfg.parse_argv = 0;
	program_name(name, sizeof(name));
	st = PyConfig_SetBytesString(&cfg, &cfg.program_name, name);
	if (!PyStatus_Exception(st))
		st = PyConfig_SetBytesArgv(&cfg, 1, argv);
	if (!PyStatus_Exception(st))
		st = Py_InitializeFromConfig(&cfg);
	PyConfig_Clear(&cfg);
	if (status_failed(st, err))
		return -1;
	py.owner = 1;
	return 0;
}

/* Calls module.name(), or module.name(arg) when arg >= 0; 0, or -1 with an
 * exception set. */
static int call_in(const char *module, const char *name, int arg)
{
	PyObject *m = PyImport_ImportModule(module), *r = NULL;

	if (m)
		r = arg >= 0 ? PyObject_CallMethod(m, name, "i", arg)
		             : PyObject_CallMethod(m, name, NULL);
	Py_XDECREF(m);
	Py_XDECREF(r);
	return r ? 0 : -1;
}

/* ---- --config ---- */

static const char *const config_keys[] = {
	"function", "lambda", "source", "path", "args", "kwargs", "reduce", "initial",
};

static int config_check(const cJSON *config, pexec_error *err)
{
	const cJSON *item, *fn, *lam, *path;

	if (!cJSON_IsObject(config)) {
		pexec_error_set(err, "python: --config must name the function, as "
		                     "{\"function\": \"module:name\"}");
		return -1;
	}
	cJSON_ArrayForEach(item, config) {
		size_t i = 0;

		while (i < sizeof(config_keys) / sizeof(config_keys[0]) &&
		       strcmp(item->string, config_keys[i]))
			i++;
		if (i == sizeof(config_keys) / sizeof(config_keys[0])) {
			pexec_error_set(err, "python: unknown --config key \"%.80s\" (known: function, "
			                     "lambda, source, path, args, kwargs, reduce, initial)",
			                item->string);
			return -1;
		}
	}
	fn = cJSON_GetObjectItemCaseSensitive(config, "function");
	lam = cJSON_GetObjectItemCaseSensitive(config, "lambda");
	if (!fn == !lam) {
		pexec_error_set(err, "python: --config needs one of \"function\" (\"module:name\") "
		                     "and \"lambda\"");
		return -1;
	}
	for (size_t i = 0; i < 4; i++) {
		static const char *const strings[] = { "function", "lambda", "source", "reduce" };
		item = cJSON_GetObjectItemCaseSensitive(config, strings[i]);
		if (item && !cJSON_IsString(item)) {
			pexec_error_set(err, "python: --config \"%s\" must be a string", strings[i]);
			return -1;
		}
	}
	path = cJSON_GetObjectItemCaseSensitive(config, "path");
	if (path && !cJSON_IsString(path)) {
		if (!cJSON_IsArray(path))
			goto bad_path;
		cJSON_ArrayForEach(item, path)
			if (!cJSON_IsString(item))
				goto bad_path;
	}
	item = cJSON_GetObjectItemCaseSensitive(config, "args");
	if (item && !cJSON_IsArray(item)) {
		pexec_error_set(err, "python: --config \"args\" must be an array");
		return -1;
	}
	item = cJSON_GetObjectItemCaseSensitive(config, "kwargs");
	if (item && !cJSON_IsObject(item)) {
		pexec_error_set(err, "python: --config \"kwargs\" must be an object");
		return -1;
	}
	if (cJSON_GetObjectItemCaseSensitive(config, "initial") &&
	    !cJSON_GetObjectItemCaseSensitive(config, "reduce")) {
		pexec_error_set(err, "python: --config \"initial\" is the starting value of "
		                     "\"reduce\", which is missing");
		return -1;
	}
	return 0;
bad_path:
	pexec_error_set(err, "python: --config \"path\" must be a string or an array of strings");
	return -1;
}

/* A --config value as a Python value (through its JSON text: cJSON has read
 * it already, so its numbers are doubles there). */
static PyObject *config_value(const cJSON *v)
{
	char *text = cJSON_PrintUnformatted(v);
	PyObject *o;

	if (!text)
		return PyErr_NoMemory();
	o = pyjson_load(text, strlen(text));
	free(text);
	return o;
}

/* Puts the "path" entries (default: the current directory) first on
 * sys.path, in their order, relative ones made absolute. */
static int add_paths(const cJSON *config, pexec_error *err)
{
	const cJSON *path = cJSON_GetObjectItemCaseSensitive(config, "path"), *e;
	PyObject *list = PyList_New(0), *os_path = PyImport_ImportModule("os.path");
	PyObject *sys_path = PySys_GetObject("path"); /* borrowed */
	int rc = -1;

	if (!list || !os_path || !sys_path)
		goto out;
	if (!path) {
		PyObject *dot = PyUnicode_FromString(".");
		if (!dot || PyList_Append(list, dot)) {
			Py_XDECREF(dot);
			goto out;
		}
		Py_DECREF(dot);
	} else if (cJSON_IsString(path)) {
		PyObject *s = PyUnicode_DecodeFSDefault(path->valuestring);
		if (!s || PyList_Append(list, s)) {
			Py_XDECREF(s);
			goto out;
		}
		Py_DECREF(s);
	} else {
		cJSON_ArrayForEach(e, path) {
			PyObject *s = PyUnicode_DecodeFSDefault(e->valuestring);
			if (!s || PyList_Append(list, s)) {
				Py_XDECREF(s);
				goto out;
			}
			Py_DECREF(s);
		}
	}
	for (Py_ssize_t i = PyList_GET_SIZE(list); i-- > 0;) {
		PyObject *abs = PyObject_CallMethod(os_path, "abspath", "O", PyList_GET_ITEM(list, i));
		int bad = !abs || PyList_Insert(sys_path, 0, abs);

		Py_XDECREF(abs);
		if (bad)
			goto out;
	}
	rc = 0;
out:
	if (rc)
		py_message(err, "python: cannot set sys.path: ");
	Py_XDECREF(list);
	Py_XDECREF(os_path);
	return rc;
}

/* Runs "source" in __main__, where "function" and "reduce" may then name
 * what it defines; its text is kept, for the lines of its frames. */
static int run_source(const char *source, pexec_error *err)
{
	PyObject *main = PyImport_AddModule("__main__"); /* borrowed */
	PyObject *code = NULL, *r = NULL;

	if (!(py.source = strdup(source))) {
		pexec_error_set(err, "python: out of memory");
		return -1;
	}
	if (!main || !(code = Py_CompileString(source, "<--config source>", Py_file_input)))
		goto fail;
	r = PyEval_EvalCode(code, PyModule_GetDict(main), PyModule_GetDict(main));
	Py_DECREF(code);
	if (!r)
		goto fail;
	Py_DECREF(r);
	return 0;
fail:
	py_message(err, "python: --config \"source\" failed: ");
	return -1;
}

static int is_lambda(const char *spec)
{
	return !strncmp(spec, "lambda", 6) && (spec[6] == ' ' || spec[6] == ':' || spec[6] == '\t');
}

/* What a --config function names: "module:name" (imported; the name may
 * be dotted, as "Class.method"), a name "source" defined, or a lambda
 * expression.  A new reference, or NULL with `err` filled. */
static PyObject *resolve(const char *key, const char *spec, int have_source, pexec_error *err)
{
	const char *colon = strchr(spec, ':'), *name = spec;
	PyObject *obj = NULL, *main_dict;
	char *copy = NULL, *part, *save = NULL;

	if (is_lambda(spec)) {
		PyObject *main = PyImport_AddModule("__main__"); /* borrowed */
		PyObject *code = main ? Py_CompileString(spec, "<--config lambda>", Py_eval_input)
		                      : NULL;

		main_dict = main ? PyModule_GetDict(main) : NULL;
		if (!py.lambda)
			py.lambda = strdup(spec);
		obj = code ? PyEval_EvalCode(code, main_dict, main_dict) : NULL;
		Py_XDECREF(code);
		if (!obj) {
			char prefix[64];
			snprintf(prefix, sizeof(prefix), "python: --config \"%s\": ", key);
			py_message(err, prefix);
			return NULL;
		}
		goto callable;
	}
	if (colon) {
		char module[512];

		snprintf(module, sizeof(module), "%.*s", (int)(colon - spec), spec);
		obj = PyImport_ImportModule(module);
		if (!obj) {
			char prefix[640];
			snprintf(prefix, sizeof(prefix), "python: cannot import '%s' (--config \"%s\"): ",
			         module, key);
			py_message(err, prefix);
			return NULL;
		}
		name = colon + 1;
	} else if (have_source) {
		obj = PyImport_AddModule("__main__");
		Py_XINCREF(obj);
	} else {
		pexec_error_set(err, "python: --config \"%s\" is '%.200s': write it as "
		                     "\"module:%.200s\" (or define it in \"source\")", key, spec, spec);
		return NULL;
	}
	copy = strdup(name);
	if (!copy || !obj) {
		Py_XDECREF(obj);
		free(copy);
		pexec_error_set(err, "python: out of memory");
		return NULL;
	}
	for (part = strtok_r(copy, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
		PyObject *next = PyObject_GetAttrString(obj, part);

		Py_DECREF(obj);
		if (!(obj = next)) {
			char prefix[640];
			snprintf(prefix, sizeof(prefix), "python: --config \"%s\" '%.200s': ", key, spec);
			py_message(err, prefix);
			free(copy);
			return NULL;
		}
	}
	free(copy);
callable:
	if (!PyCallable_Check(obj)) {
		PyObject *tn = PyType_GetName(Py_TYPE(obj));
		pexec_error_set(err, "python: --config \"%s\" '%.200s' is not callable (a %s)", key,
		                spec, tn ? PyUnicode_AsUTF8(tn) : "?");
		Py_XDECREF(tn);
		Py_DECREF(obj);
		PyErr_Clear();
		return NULL;
	}
	return obj;
}

/* The fixed arguments: argv[1] is each item's slot, then "args", then the
 * values of "kwargs", whose names make kwnames (vectorcall's layout). */
static int build_args(const cJSON *config, pexec_error *err)
{
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(config, "args");
	const cJSON *kwargs = cJSON_GetObjectItemCaseSensitive(config, "kwargs"), *e;
	Py_ssize_t nargs = args ? cJSON_GetArraySize(args) : 0;
	Py_ssize_t nkw = kwargs ? cJSON_GetArraySize(kwargs) : 0, i = 2;

	py.argv = calloc((size_t)(2 + nargs + nkw), sizeof(PyObject *));
	if (!py.argv || (nkw && !(py.kwnames = PyTuple_New(nkw)))) {
		pexec_error_set(err, "python: out of memory");
		return -1;
	}
	py.nargs = nargs;
	cJSON_ArrayForEach(e, args)
		if (!(py.argv[i++] = config_value(e)))
			goto fail;
	cJSON_ArrayForEach(e, kwargs) {
		PyObject *k = PyUnicode_FromString(e->string);
		if (!k)
			goto fail;
		PyTuple_SET_ITEM(py.kwnames, i - 2 - nargs, k);
		if (!(py.argv[i++] = config_value(e)))
			goto fail;
	}
	return 0;
fail:
	py_message(err, "python: --config \"args\" or \"kwargs\": ");
	return -1;
}

static int set_initial(const cJSON *config, pexec_error *err)
{
	const cJSON *initial = cJSON_GetObjectItemCaseSensitive(config, "initial");
	char *text;

	if (!py.reduce) {
		snprintf(py_initial, sizeof(py_initial), "(none: --config has no \"reduce\")");
		return 0;
	}
	py.has_initial = initial != NULL;
	if (!initial) {
		snprintf(py_initial, sizeof(py_initial), "null");
		return 0;
	}
	text = cJSON_PrintUnformatted(initial);
	if (!text || strlen(text) >= sizeof(py_initial)) {
		pexec_error_set(err, "python: --config \"initial\" is %s", text ? "longer than 64 KiB "
		                "of JSON" : "too big for memory");
		free(text);
		return -1;
	}
	memcpy(py_initial, text, strlen(text) + 1);
	free(text);
	return 0;
}

static void py_release(void)
{
	if (py.argv) {
		for (Py_ssize_t i = 2; i < 2 + py.nargs + (py.kwnames ? PyTuple_GET_SIZE(py.kwnames) : 0);
		     i++)
			Py_XDECREF(py.argv[i]);
		free(py.argv);
	}
	Py_XDECREF(py.kwnames);
	Py_XDECREF(py.fn);
	Py_XDECREF(py.reduce);
	Py_XDECREF(py.out);
	free(py.source);
	free(py.lambda);
	py.argv = NULL;
	py.kwnames = py.fn = py.reduce = py.out = NULL;
	py.source = py.lambda = NULL;
	py.nargs = 0;
	py.has_initial = 0;
}

/* ---- the hooks ---- */

static int py_setup(const cJSON *config, pexec_error *err)
{
	const cJSON *source, *fn, *reduce;
	PyObject *stderr_obj;

	if (config_check(config, err) || py_start(err))
		return -1;
	/* No collection from here on may leave holes in pages the workers
	 * will share; gc.freeze() below then keeps the objects made so far out
	 * of every later collection (gc.enable() again in init). */
	if (call_in("gc", "disable", -1) || call_in("sys", "set_int_max_str_digits", 0)) {
		py_message(err, "python: cannot configure the interpreter: ");
		return -1;
	}
	/* print() never reaches pexec's output (in --serial, stdout is it),
	 * and goes out a whole line at a time, even under PYTHONUNBUFFERED,
	 * so that lines of workers printing at once never interleave. */
	stderr_obj = PySys_GetObject("stderr");
	if (!stderr_obj || PySys_SetObject("stdout", stderr_obj)) {
		pexec_error_set(err, "python: no sys.stderr");
		return -1;
	}
	Py_INCREF(stderr_obj);
	py.out = stderr_obj;
	lines_at_once(stderr_obj);
	if (add_paths(config, err))
		goto fail;
	source = cJSON_GetObjectItemCaseSensitive(config, "source");
	if (source && run_source(source->valuestring, err))
		goto fail;
	fn = cJSON_GetObjectItemCaseSensitive(config, "function");
	if (!fn)
		fn = cJSON_GetObjectItemCaseSensitive(config, "lambda");
	if (!(py.fn = resolve(cJSON_GetObjectItemCaseSensitive(config, "function") ? "function"
	                                                                            : "lambda",
	                      fn->valuestring, source != NULL, err)))
		goto fail;
	reduce = cJSON_GetObjectItemCaseSensitive(config, "reduce");
	if (reduce && !(py.reduce = resolve("reduce", reduce->valuestring, source != NULL, err)))
		goto fail;
	if (build_args(config, err) || set_initial(config, err))
		goto fail;
	if (call_in("gc", "freeze", -1)) {
		py_message(err, "python: gc.freeze() failed: ");
		goto fail;
	}
	py.ready = 1;
	py.setup_pid = getpid();
	py.forked_pid = 0;
	return 0;
fail:
	py_release();
	return -1;
}

static void py_teardown(void)
{
	if (!py.ready || getpid() != py.setup_pid)
		return;
	py_flush(1);
	py_release();
	if (py.owner)
		Py_FinalizeEx();
	memset(&py, 0, sizeof(py));
	snprintf(py_initial, sizeof(py_initial), "null");
}

static int py_init(const cJSON *config, void **state, pexec_error *err)
{
	*state = NULL;
	/* A pexec that predates setup calls only init: set up here, then. */
	if (!py.ready && py_setup(config, err))
		return -1;
	if (getpid() != py.setup_pid && getpid() != py.forked_pid) {
		/* A fork CPython did not make itself: its locks, thread states
		 * and at-fork callbacks (random reseeds) are put right. */
		PyOS_AfterFork_Child();
		py.forked_pid = getpid();
	}
	if (call_in("gc", "enable", -1)) {
		py_message(err, "python: gc.enable() failed: ");
		return -1;
	}
	py.flushed_ns = now_ns();
	return 0;
}

static void py_fini(void *state)
{
	(void)state;
	py_flush(1);
}

static int py_deserialize(void *state, const char *data, size_t len, void **value,
                          pexec_error *err)
{
	PyObject *v;

	(void)state;
	if (data == py_initial && !py.reduce) {
		pexec_error_set(err, "python: --reduce needs a \"reduce\" function in --config");
		return -1;
	}
	v = pyjson_load(data, len);
	if (!v) {
		py_message(err, "");
		return -1;
	}
	if (v == Py_None) {
		Py_DECREF(v);
		v = NULL;
	}
	*value = v;
	return 0;
}

static int py_map(void *state, void *input, void **output, pexec_error *err)
{
	PyObject *r;

	(void)state;
	py.argv[1] = input ? input : Py_None;
	r = PyObject_Vectorcall(py.fn, py.argv + 1,
	                        (size_t)(1 + py.nargs) | PY_VECTORCALL_ARGUMENTS_OFFSET, py.kwnames);
	py.argv[1] = NULL;
	py_flush(0);
	if (!r) {
		py_message(err, "");
		return -1;
	}
	if (r == Py_None) {
		Py_DECREF(r);
		r = NULL;
	} else if (r == input) {
		/* A pass-through: pexec frees it once, for both. */
		Py_DECREF(r);
	}
	*output = r;
	return 0;
}

static int py_serialize(void *state, const void *value, pexec_buf *out, pexec_error *err)
{
	size_t start = out->len;

	(void)state;
	if (pyjson_dump((PyObject *)value, out)) {
		out->len = start;
		py_message(err, "");
		return -1;
	}
	return 0;
}

static void py_free_value(void *state, void *value)
{
	(void)state;
	Py_DECREF((PyObject *)value);
}

/* pexec owns a and b (a NULL is None) and frees the one not returned, or
 * both; an object it holds twice (a == b) it frees once, so the second
 * reference is dropped here, and a result that is a or b is one pexec
 * already holds. */
static int py_reduce(void *state, void *a, void *b, void **out, pexec_error *err)
{
	PyObject *args[3] = { NULL, a ? a : Py_None, b ? b : Py_None }, *r;

	(void)state;
	if (!py.has_initial && (!a || !b)) {
		/* Without "initial" the fold starts at the first result, and
		 * None results are left out of it. */
		*out = a ? a : b;
		return 0;
	}
	r = PyObject_Vectorcall(py.reduce, args + 1, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
	py_flush(0);
	if (a && a == b)
		Py_DECREF((PyObject *)a);
	if (!r) {
		py_message(err, "");
		return -1;
	}
	if (r == Py_None) {
		Py_DECREF(r);
		r = NULL;
	} else if (r == a || r == b) {
		Py_DECREF(r);
	}
	*out = r;
	return 0;
}

static const char py_config_schema[] =
	"{\"type\": \"object\","
	" \"description\": \"the Python function to run on each item: f(item, *args, **kwargs)\","
	" \"properties\": {"
	"  \"function\": {\"type\": \"string\", \"description\": \"module:name, imported (name may "
	"be dotted, as Class.method); a name defined by source; or a lambda expression\"},"
	"  \"lambda\": {\"type\": \"string\", \"description\": \"a lambda expression, evaluated in "
	"__main__, as the function\"},"
	"  \"source\": {\"type\": \"string\", \"description\": \"Python source run in __main__ first, "
	"where function and reduce may find what it defines\"},"
	"  \"path\": {\"type\": [\"string\", \"array\"], \"items\": {\"type\": \"string\"},"
	" \"description\": \"put first on sys.path (relative to the current directory); default: "
	"the current directory, as python -m does\"},"
	"  \"args\": {\"type\": \"array\", \"description\": \"fixed positional arguments after the "
	"item (functools.partial)\"},"
	"  \"kwargs\": {\"type\": \"object\", \"description\": \"fixed keyword arguments\"},"
	"  \"reduce\": {\"type\": \"string\", \"description\": \"for --reduce: f(a, b) folding two "
	"results into one, named as function is\"},"
	"  \"initial\": {\"description\": \"for --reduce: the fold's starting value, an identity of "
	"reduce (0 for a sum); without it the fold starts at the first result and None results are "
	"left out\"}"
	" },"
	" \"oneOf\": [{\"required\": [\"function\"]}, {\"required\": [\"lambda\"]}],"
	" \"additionalProperties\": false}";

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "python",
	.version = "1.0.0",
	.description = "a Python function on each item, as json.loads gives it; its result as "
	               "json.dumps writes it",
	.setup = py_setup,
	.teardown = py_teardown,
	.init = py_init,
	.fini = py_fini,
	.deserialize = py_deserialize,
	.map = py_map,
	.serialize = py_serialize,
	.free_value = py_free_value,
	.reduce = py_reduce,
	.reduce_initial = py_initial,
	.config_schema = py_config_schema,
	.input_description = "any JSON value: the function's first argument, as json.loads reads it",
	.output_description = "the function's result as JSON (None is null); a result JSON cannot "
	                      "hold fails its item",
};
