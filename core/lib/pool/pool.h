/*
 * pool.h - the two ways items are run: a pool of forked workers (pool.c) and
 * in-process (--serial, run.c).  pexec_run() in run.c chooses.
 */
#ifndef PEXEC_POOL_H
#define PEXEC_POOL_H

#include "pexec.h"

/* Takes a partial result's text in a --reduce run, in input order; it stands
 * for `items` successful items (a worker chunk's, or one).  Returns 0, or a
 * negative pexec_code with `err` filled to stop the run (opts.partial_sink's
 * contract). */
typedef int (*pexec__fold_fn)(void *ctx, uint32_t items, const char *data, size_t len,
                              pexec_error *err);

pexec_code pexec__pool_run(const pexec_descriptor *desc, const pexec_opts *opts,
                           pexec_next_fn next, void *next_ctx, pexec_result_fn sink,
                           void *sink_ctx, pexec__fold_fn fold, void *fold_ctx,
                           pexec_stats *stats, pexec_error *err);

/* ---- spans: chunks of the input itself, split by the workers ---- */

/* One chunk of the input, as a span source gives it: whole items, cut by
 * pexec__bounds_pass. */
struct pexec__span {
	const char *data;    /* its bytes (valid until the next call) */
	size_t len;
	uint64_t offset;     /* where they lie in the input */
	uint64_t line, line_start;
	uint32_t count;      /* items in it */
	int first, last;
};

/* What a run over spans reads and writes.  The pool never looks inside an
 * item: its workers split each span with the strict splitter, run its items
 * and lay their results out as they are to be written (struct
 * pexec__span_tail); the parent hands those bytes on in one piece. */
struct pexec__spans {
	/* Gives the next span of at most `want` items: 1, 0 at the end, or a
	 * negative pexec_code with `err` filled. */
	int (*next)(void *ctx, uint32_t want, struct pexec__span *span, pexec_error *err);
	/* Takes a done chunk's output bytes, in input order unless
	 * --unordered: `count` items from `first`, `written` results in the
	 * `len` bytes at `out` (a JSON array's each after ",\n"; NDJSON's each
	 * with its newline); `hash` their pexec__item_hash sum when asked.
	 * Returns 0, or a negative pexec_code to stop the run. */
	int (*put)(void *ctx, uint64_t first, uint32_t count, const char *out, size_t len,
	           uint32_t written, uint64_t hash, pexec_error *err);
	/* Takes a failed item of a chunk, before its put (its output holds its
	 * null already): the sink's contract. */
	pexec_result_fn failed;
	void *ctx;
	/* What the workers need: the input, where a span's bytes need not be
	 * sent (-1: they are sent with each span), its name and format, and the
	 * output's. */
	int input_fd;
	const char *name;
	pexec_format in_format, out_format;
	int drop_null;
	int hash;            /* sum the items' hashes (the resume journal) */
	/* Called with NULL before the pool waits: the moment to flush. */
	pexec_result_fn flush;
	/* Where the workers write chunks' output themselves, at offsets the
	 * parent gives (a regular file written with pwrite), or -1: `put` takes
	 * the bytes.  With it, `reserve` stands for `put`: it takes a chunk's
	 * place in the output (`len` bytes, `written` results) and says where
	 * its bytes go (*offset), and how many of its first bytes to leave out
	 * (*skip: a JSON array's first "," that "[" took the place of); `hash`
	 * is as put's.  *ticket names the chunk to `landed`, called (where
	 * set) once its bytes are on the file, in whatever order chunks get
	 * there; both return 0, or a negative pexec_code to stop the run. */
	int out_fd;
	const char *out_name; /* its name in messages */
	int (*reserve)(void *ctx, uint32_t count, size_t len, uint32_t written, uint64_t hash,
	               uint64_t *offset, size_t *skip, uint64_t *ticket, pexec_error *err);
	int (*landed)(void *ctx, uint64_t ticket, pexec_error *err);
	/* With out_fd: a descriptor each worker keeps open while it lives, so
	 * that the next run on the file can wait for the workers of one killed
	 * at once (job/lock.c); -1: none. */
	int keep_fd;
};

/* pexec__pool_run over spans (no --reduce, no item sink: `spans` takes the
 * output).  Items whose chunk a fault splits go through spans->failed and
 * spans->put one by one. */
pexec_code pexec__pool_run_spans(const pexec_descriptor *desc, const pexec_opts *opts,
                                 const struct pexec__spans *spans, pexec_stats *stats,
                                 pexec_error *err);
/* pexec_run() over spans (run.c): the plugin's setup around the pool, and
 * SIGPIPE kept from killing the caller. */
pexec_code pexec__run_spans(const pexec_loaded_plugin *plugin, const pexec_opts *opts,
                            const struct pexec__spans *spans, pexec_stats *stats,
                            pexec_error *err);

#endif
