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

#endif
