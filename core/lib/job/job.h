/*
 * job.h - pexec_job_run() with the pool swapped out (libpexec internal).
 *
 * A job is input, output, journal and reports around one engine that turns
 * items into results.  The engine is pexec_run() unless the caller brings its
 * own with the same contract: pexec-mpi brings one that spreads the items
 * over MPI ranks (core/mpi/).
 */
#ifndef PEXEC_JOB_H
#define PEXEC_JOB_H

#include "pexec.h"

/* pexec_run()'s contract, with a context. */
typedef pexec_code (*pexec__run_fn)(void *ctx, const pexec_loaded *plugin,
                                    const pexec_opts *opts, pexec_next_fn next,
                                    void *next_ctx, pexec_result_fn sink, void *sink_ctx,
                                    pexec_stats *stats, pexec_error *err);

/* pexec_job_run() through `run` (NULL: pexec_run).  `run` may be called
 * more than once for one job (--retry-failed runs a second pass). */
pexec_code pexec__job_run(const pexec_job *job, pexec__run_fn run, void *run_ctx,
                          pexec_stats *stats, pexec_error *err);

#endif /* PEXEC_JOB_H */
