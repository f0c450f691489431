/*
 * pool.h - the two ways items are run: a pool of forked workers (pool.c) and
 * in-process (--serial, run.c).  pexec_run() in run.c chooses.
 */
#ifndef PEXEC_POOL_H
#define PEXEC_POOL_H

#include "pexec.h"

/* Folds a partial result's text into a --reduce run's value, in input order;
 * it stands for `items` successful items (a worker chunk's, or one).
 * Returns 0, or -1 with `err` filled to stop the run. */
typedef int (*pexec__fold_fn)(void *ctx, uint32_t items, const char *data, size_t len,
                              pexec_error *err);

pexec_code pexec__pool_run(const pexec_descriptor *desc, const pexec_opts *opts,
                           pexec_next_fn next, void *next_ctx, pexec_result_fn sink,
                           void *sink_ctx, pexec__fold_fn fold, void *fold_ctx,
                           pexec_stats *stats, pexec_error *err);

#endif
