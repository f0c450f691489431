/*
 * pexec_plugin.h - the one header a pexec task plugin includes.
 *
 * A plugin is a shared object that exports one data symbol, `pexec_plugin`, a
 * const descriptor naming the ABI it was built for and its hooks.  pexec
 * dlopen()s the plugin in the parent before forking its workers, so code never
 * crosses a process boundary; only bytes do.  Each worker calls, per item:
 *
 *     bytes --deserialize--> value --map--> value --serialize--> bytes
 *
 * Without deserialize/serialize hooks the values are cJSON trees and JSON text
 * is the wire format.  With them the plugin chooses its own representation.
 *
 * OWNERSHIP - the whole rule, stated once
 * ---------------------------------------
 *  - Item bytes (`data`, `len` given to deserialize) belong to pexec.  They are
 *    followed by a NUL byte, and stay valid and unchanged until that item's
 *    result has been serialized, so a value may point into them.
 *  - The input value belongs to pexec once deserialize returns.  map borrows
 *    it and must not free it or keep a pointer to it after returning.
 *  - The output value of map belongs to pexec.  It is either a new value or
 *    the input value itself (pass-through); pexec frees a pass-through once.
 *    Setting *output to NULL means the result is JSON null.
 *  - A value is a cJSON tree when the hook that produced it is absent: the
 *    input when there is no deserialize, the output when there is no
 *    serialize.  pexec frees cJSON trees with cJSON_Delete and every other
 *    value with free_value (if free_value is NULL, it frees nothing: such
 *    values must be static or live in the plugin's state).  A pass-through
 *    value must be of the same kind on both sides.
 *  - serialize appends bytes to a pexec_buf owned by pexec, only through the
 *    helpers below.  It must not keep the buffer.
 *  - The config given to setup or init belongs to pexec and lives only
 *    during that call.  The state init makes belongs to the plugin; pexec
 *    hands it to every hook and to fini, and never looks inside.
 *  - What setup builds belongs to the plugin and lives in its own static
 *    memory (setup has no state to return: init runs in other processes,
 *    forked after setup, and finds it there).  Workers inherit it
 *    copy-on-write: they may read it, but what one writes stays its own.
 *    teardown frees it.
 *  - An error message is copied out of the pexec_error by pexec.
 *
 * RULES FOR HOOKS
 *  - Report failure by returning non-zero, with a message set through
 *    pexec_error_set().  Its first line says what went wrong, and is what
 *    stderr shows (escaped where it holds control characters or bytes that
 *    are not UTF-8); anything after a newline is detail (a traceback), kept
 *    in --errors and --joblog records as "detail".  Never print to stdout
 *    (pexec redirects it to stderr in workers, but output is pexec's), never
 *    exit, never install signal handlers.
 *  - Hooks are called from one thread per worker process; state needs no
 *    locking.  setup and teardown are called from the thread that runs the
 *    pool, in the process that forks the workers, once per run: the one
 *    place where a plugin's static variables are the right home for state.
 *    Its init can tell a forked worker (getpid() differs from the pid
 *    setup saw) from --serial and from pexec's own init for --reduce.
 *
 * ABI STABILITY
 *  - PEXEC_ABI_VERSION is the major version: pexec refuses a plugin built for
 *    another one.  Within a major version the descriptor only grows at its end
 *    (struct_size tells pexec how much of it a plugin has); no field is ever
 *    reordered or removed.
 *  - What is not the descriptor is frozen outright for a major version, since
 *    plugins compile it in and say nothing of its size: pexec_buf's layout
 *    (data, len, cap, grow, priv, which the inline helpers below read and
 *    write) and PEXEC_ERROR_MAX (pexec_error_set writes up to that many
 *    bytes).  Neither changes within ABI 1.
 *
 * C++
 *  - This header is C++ too (C++14 and later; C++20 for the designated
 *    initializers of the PEXEC_PLUGIN example below, which must then name
 *    members in declaration order).  It declares pexec_plugin with C linkage,
 *    so the descriptor written as in C is exported from C++ as well.  C++17
 *    has no designated initializers: fill a PEXEC_DESCRIPTOR_INIT copy in a
 *    constexpr function instead (GUIDE.md shows how).  No C++ exception may
 *    leave a hook: catch everything in each hook and return an error.
 */
#ifndef PEXEC_PLUGIN_H
#define PEXEC_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PEXEC_ABI_VERSION 1u
#define PEXEC_PLUGIN_SYMBOL "pexec_plugin"
#define PEXEC_ERROR_MAX 512

/* Header-internal.  PEXEC__CAST keeps C++ -Wold-style-cast quiet about the
 * casts in the macros and helpers below.  PEXEC__ZERO gives every member of
 * the descriptor after struct_size a default of zero in C++, as members left
 * out of a C designated initializer are: without it, g++ and clang++ -Wextra
 * warn of each member a descriptor leaves out.  A default member initializer
 * changes no layout. */
#ifdef __cplusplus
#define PEXEC__CAST(type, value) static_cast<type>(value)
#if __cplusplus >= 201402L
#define PEXEC__ZERO = {}
#else
#define PEXEC__ZERO
#endif
#else
#define PEXEC__CAST(type, value) ((type)(value))
#define PEXEC__ZERO
#endif

struct cJSON;

/* A message from a hook (or from libpexec) to its caller. */
typedef struct pexec_error {
	char msg[PEXEC_ERROR_MAX];
} pexec_error;

/* Bytes being built by pexec; grow() is pexec's, call it only through the
 * inline helpers below. */
typedef struct pexec_buf {
	char *data;
	size_t len;
	size_t cap;
	int (*grow)(struct pexec_buf *buf, size_t need); /* 0, or -1: no memory */
	void *priv;
} pexec_buf;

typedef struct pexec_descriptor {
	uint32_t abi_version;  /* PEXEC_ABI_VERSION, set by PEXEC_DESCRIPTOR_HEADER */
	uint32_t struct_size;  /* sizeof(pexec_descriptor) the plugin was built with */
	const char *name PEXEC__ZERO;        /* short name, e.g. "factorial" */
	const char *version PEXEC__ZERO;     /* the plugin's own version, e.g. "1.0.0" */
	const char *description PEXEC__ZERO; /* one line */

	/* Optional.  Called once per worker (and once in --serial) before any
	 * item.  `config` is the parsed --config JSON, or NULL when none was
	 * given.  Sets *state to whatever the other hooks should receive. */
	int (*init)(const struct cJSON *config, void **state, pexec_error *err) PEXEC__ZERO;
	/* Optional.  Called once per worker when it finishes normally. */
	void (*fini)(void *state) PEXEC__ZERO;

	/* Optional.  Makes the input value from one item's JSON text. */
	int (*deserialize)(void *state, const char *data, size_t len, void **value,
	                   pexec_error *err) PEXEC__ZERO;
	/* Required.  One input value to one output value. */
	int (*map)(void *state, void *input, void **output, pexec_error *err) PEXEC__ZERO;
	/* Optional.  Appends the JSON text of an output value to `out`.  The text
	 * must be one valid JSON value: pexec does not re-parse it. */
	int (*serialize)(void *state, const void *value, pexec_buf *out,
	                 pexec_error *err) PEXEC__ZERO;
	/* Optional.  Frees a value made by deserialize or map (see OWNERSHIP). */
	void (*free_value)(void *state, void *value) PEXEC__ZERO;

	/* ---- appended in pexec 0.2; a plugin built earlier reads as NULL ---- */

	/* Optional declarations, shown by `pexec info` and checked by nothing
	 * else: a JSON Schema (as JSON text) for --config, and a one-line
	 * description and a JSON Schema for one input item and one result. */
	const char *config_schema PEXEC__ZERO;
	const char *input_description PEXEC__ZERO;
	const char *input_schema PEXEC__ZERO;
	const char *output_description PEXEC__ZERO;
	const char *output_schema PEXEC__ZERO;

	/* Optional, for `pexec --reduce`: an associative combine of two result
	 * values into one, *out = a (+) b.  pexec owns a and b; *out may be a or
	 * b itself (pexec frees the other) or a new value (pexec frees both).
	 * Each worker folds its own results, chunk by chunk, and the parent
	 * folds the chunks' partial results in input order; partial results
	 * cross between processes through serialize and deserialize, so a
	 * reducing plugin's input and output values are of one kind (both
	 * hooks, or neither).  `reduce_initial` is the JSON text of the fold's
	 * starting value, which must be an identity of reduce (0 for a sum, {}
	 * for merged counts); NULL means JSON null.  pexec reads the text only
	 * after setup, so a plugin whose starting value comes from --config may
	 * point reduce_initial at a buffer of its own that setup fills. */
	int (*reduce)(void *state, void *a, void *b, void **out, pexec_error *err) PEXEC__ZERO;
	const char *reduce_initial PEXEC__ZERO;

	/* ---- appended after 0.2 (setup before the fork); a plugin built
	 * earlier reads as NULL ---- */

	/* Optional.  Work done once, before the fork: pexec calls setup in the
	 * process that starts the workers, before it forks any of them and
	 * before any init there, with the parsed --config (NULL without one).
	 * Whatever setup builds (a table, an imported interpreter module) lives
	 * in the plugin's own static memory, and every worker, forked afterwards,
	 * inherits it copy-on-write: built once, in memory shared by all the
	 * workers until one writes to it.  init, in each worker, then finds it
	 * there.  A failing setup stops the run as a failing init does (exit
	 * status 2).  In --serial, setup runs in pexec itself, before init. */
	int (*setup)(const struct cJSON *config, pexec_error *err) PEXEC__ZERO;
	/* Optional.  Called once in that same process after every worker has
	 * ended and after its own fini (--reduce calls init and fini there too),
	 * when setup succeeded (or the plugin has none).  Like fini, it does not
	 * run when pexec itself dies. */
	void (*teardown)(void) PEXEC__ZERO;

	/* New members are appended below, never inserted, each with PEXEC__ZERO
	 * (tests/test_cpp.c builds a C++ descriptor with -Wextra -Werror). */
} pexec_descriptor;

#define PEXEC_DESCRIPTOR_HEADER \
	.abi_version = PEXEC_ABI_VERSION, \
	.struct_size = PEXEC__CAST(uint32_t, sizeof(pexec_descriptor))

/* A whole descriptor with only the header set, every hook NULL: for C++17,
 * which has no designated initializers, to copy and fill in a constexpr
 * function (see GUIDE.md).  C may use it too. */
#ifdef __cplusplus
#define PEXEC_DESCRIPTOR_INIT \
	{ PEXEC_ABI_VERSION, PEXEC__CAST(uint32_t, sizeof(pexec_descriptor)) }
#else
#define PEXEC_DESCRIPTOR_INIT { PEXEC_DESCRIPTOR_HEADER }
#endif

#if defined(__GNUC__)
#define PEXEC_EXPORT __attribute__((visibility("default")))
#else
#define PEXEC_EXPORT
#endif

/* The one symbol a plugin defines:
 *
 *     PEXEC_PLUGIN = { PEXEC_DESCRIPTOR_HEADER, .name = "x", .map = x_map, ... };
 *
 * (in C++20, members in declaration order).  It is declared here, with C
 * linkage, because in C++ a namespace-scope const defined without an earlier
 * extern declaration is private to its file, and would never be exported;
 * PEXEC_PLUGIN also says extern "C" itself, so that it means this symbol
 * even where written inside a namespace. */
PEXEC_EXPORT extern const pexec_descriptor pexec_plugin;

#ifdef __cplusplus
#define PEXEC_PLUGIN extern "C" PEXEC_EXPORT const pexec_descriptor pexec_plugin
#else
#define PEXEC_PLUGIN PEXEC_EXPORT const pexec_descriptor pexec_plugin
#endif

static inline void pexec_error_set(pexec_error *err, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

static inline void pexec_error_set(pexec_error *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

/* Makes room for `n` more bytes at buf->data + buf->len; returns 0 or -1. */
static inline int pexec_buf_reserve(pexec_buf *buf, size_t n)
{
	return buf->cap - buf->len >= n ? 0 : buf->grow(buf, n);
}

static inline int pexec_buf_append(pexec_buf *buf, const void *data, size_t n)
{
	if (n == 0)
		return 0; /* data may be NULL then */
	if (pexec_buf_reserve(buf, n))
		return -1;
	memcpy(buf->data + buf->len, data, n);
	buf->len += n;
	return 0;
}

static inline int pexec_buf_puts(pexec_buf *buf, const char *s)
{
	return pexec_buf_append(buf, s, strlen(s));
}

static inline int pexec_buf_printf(pexec_buf *buf, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

static inline int pexec_buf_printf(pexec_buf *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf->data + buf->len, buf->cap - buf->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if (PEXEC__CAST(size_t, n) >= buf->cap - buf->len) {
		if (pexec_buf_reserve(buf, PEXEC__CAST(size_t, n) + 1))
			return -1;
		va_start(ap, fmt);
		vsnprintf(buf->data + buf->len, buf->cap - buf->len, fmt, ap);
		va_end(ap);
	}
	buf->len += PEXEC__CAST(size_t, n);
	return 0;
}

#ifdef __cplusplus
}
#endif

#endif /* PEXEC_PLUGIN_H */
