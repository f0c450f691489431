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

/* ---- spans (pexec.h, pexec_spans): chunks of the input itself ----
 *
 * The pool never looks inside an item: its workers split each span with
 * the strict splitter, run its items and lay their results out as they are
 * to be written (struct pexec__span_tail); the parent hands those bytes on
 * in one piece. */

/* pexec__pool_run over spans (no --reduce, no item sink: `spans` takes the
 * output).  Items whose chunk a fault splits go through spans->failed and
 * spans->put one by one. */
pexec_code pexec__pool_run_spans(const pexec_descriptor *desc, const pexec_opts *opts,
                                 const pexec_spans *spans, pexec_stats *stats,
                                 pexec_error *err);

#endif
