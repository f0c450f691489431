/*
 * job_internal.h - what job.c and resume.c share of a running job: its
 * state, and the steps each calls of the other's.
 */
#ifndef PEXEC_JOB_INTERNAL_H
#define PEXEC_JOB_INTERNAL_H

#include "inputs.h"
#include "journal.h"
#include "landing.h"
#include "lock.h"
#include "output.h"
#include "progress.h"
#include "spans.h"

struct job_ctx {
	const pexec_job *job;
	pexec_engine_fn run; /* the engine: pexec_run() or the job's own */
	void *run_ctx;
	pexec_loaded_plugin *plugin;
	struct pexec__inputs in;
	int in_open;
	struct pexec__writer out;
	int out_open;
	int errors_fd;       /* --errors FILE, or -1 */
	struct pexec__lock lock; /* -o FILE is this run's alone */
	struct pexec__span_src src; /* the input as spans, where the run goes so */
	int spanning;
	pexec_buf record;
	uint64_t t0;
	pexec_stats *stats;
	struct pexec__marks marks; /* for pexec_progress.bytes_done */

	/* The resume journal (with an output file and a regular input). */
	int journaling;
	struct pexec__journal journal;
	char *journal_path, *partial_path;
	uint64_t base;       /* items taken over from the resumed run */
	uint64_t done;       /* items whose results are in the output */
	uint64_t hash;       /* of their input bytes */
	uint64_t failures;   /* failed items, the resumed run's included */
	uint64_t last_checkpoint;
	/* Where the workers write the output themselves: what has landed. */
	int landing_on;
	struct pexec__landing landing;

	/* --retry-failed: the failed items, and their new results. */
	uint64_t *only;
	size_t nonly, only_at;
	uint64_t read_index; /* index of the next item the splitter yields */
	pexec_buf *retried;  /* one result (or NULL) per failed item */
};

/* job.c: the splitter's next item and the writer's sink, as pexec_run
 * takes them, and a checkpoint of the journal. */
int pexec__job_next(void *ctx, const char **data, size_t *len, pexec_error *err);
int pexec__job_sink(void *ctx, const pexec_result *res, pexec_error *err);
pexec_code pexec__job_checkpoint(struct job_ctx *j, pexec_error *err);

/* resume.c: the journaled output opened anew or continued (the journal's
 * header checked against this run's plugin, config and inputs); the failed
 * items of a finished run run again and merged into its output; and the
 * journal and the partial output finished after the run, as `rc` says. */
pexec_code pexec__job_open_journaled(struct job_ctx *j, const pexec_loaded_plugin *plugin,
                                     pexec_error *err);
pexec_code pexec__job_retry_failed(struct job_ctx *j, pexec_error *err);
pexec_code pexec__job_finish_journaled(struct job_ctx *j, pexec_code rc, pexec_error *err);

#endif
