/*
 * worker.h - what runs items: one item through the plugin's hooks, and the
 * loop of a forked worker process.  --serial mode uses the same item path, so
 * serial and parallel runs produce the same bytes.
 */
#ifndef PEXEC_WORKER_H
#define PEXEC_WORKER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "pexec.h"

/* What a worker is doing, in memory it shares with the parent (one per
 * worker, on its own cache line).  The worker only stores; the parent reads
 * it to learn which item was running when a worker died or overran
 * --timeout, so that only that item is blamed. */
struct pexec__progress {
	_Atomic uint64_t frames;  /* CHUNK frames the worker has begun */
	_Atomic uint32_t pos;     /* position of the current item in that frame */
	_Atomic uint32_t stage;   /* its pexec_stage; NONE between items */
	_Atomic uint64_t started; /* CLOCK_MONOTONIC ns it started (when timed) */
	/* The result arena (see struct pexec__arena): counts of bytes ever
	 * used, the parent's releases, and where a new worker starts. */
	_Atomic uint64_t arena_tail;
	uint64_t arena_head;
	_Atomic uint64_t frame_started; /* CLOCK_MONOTONIC ns the current frame began */
	char pad[16];
};

/* A ring in memory shared with the parent, into which a worker serializes
 * its results, so that result bytes never go through a pipe: the pipe only
 * carries a RESULTS_SHM notice of where the frame lies.  The worker owns the
 * head, the parent the tail (progress->arena_tail); frames are released in
 * the order they were written.  A frame that does not fit goes through the
 * pipe instead, so a full ring never makes anyone wait. */
struct pexec__arena {
	char *base;
	size_t size;
};

/* Calls init (if the plugin has one) with `config` (JSON text or NULL). */
int pexec__plugin_init(const pexec_descriptor *d, const char *config, void **state,
                       pexec_error *err);
void pexec__plugin_fini(const pexec_descriptor *d, void *state);

/* Makes a value from JSON text (`data[len]` must be NUL): with the
 * deserialize hook, or as a cJSON tree.  Returns 0, or -1 with `err` filled. */
int pexec__value_from_text(const pexec_descriptor *d, void *state, const char *data,
                           size_t len, void **value, pexec_error *err);

/* Runs one item (`data[len]` must be NUL) through deserialize, map and
 * serialize, appending the result's JSON text to `out`.  Returns
 * PEXEC_STAGE_NONE on success; otherwise the failed stage, with `out` as it
 * was and `err` filled. */
pexec_stage pexec__item_run(const pexec_descriptor *d, void *state, const char *data,
                            size_t len, pexec_buf *out, pexec_error *err,
                            struct pexec__progress *progress);

/* --reduce (the reduce hook in pexec_plugin.h).  A fold's value is of the
 * plugin's one value kind.  fold_start makes the starting value from
 * reduce_initial; fold_value folds v (taken over) into *acc; fold_text does
 * the same for a serialized value; fold_finish serializes *acc into `out`
 * and frees it.  Each returns 0, or -1 with `err` filled (*acc stays valid
 * and owned by the caller, who frees it with fold_free). */
int pexec__fold_start(const pexec_descriptor *d, void *state, void **acc, pexec_error *err);
int pexec__fold_value(const pexec_descriptor *d, void *state, void **acc, void *v,
                      pexec_error *err);
int pexec__fold_text(const pexec_descriptor *d, void *state, void **acc, const char *text,
                     size_t len, pexec_error *err);
int pexec__fold_finish(const pexec_descriptor *d, void *state, void **acc, pexec_buf *out,
                       pexec_error *err);
void pexec__fold_free(const pexec_descriptor *d, void *state, void *acc);
/* Runs one item through deserialize and map and folds its result into *acc.
 * Returns PEXEC_STAGE_NONE, or the failed stage (REDUCE for the fold). */
pexec_stage pexec__item_fold(const pexec_descriptor *d, void *state, const char *data,
                             size_t len, void **acc, pexec_error *err,
                             struct pexec__progress *progress);

/* The body of a worker process: init, READY, then CHUNK frames from `in_fd`
 * answered by RESULTS frames on `out_fd` until EOF.  Reports each item in
 * `progress`, with its start time when `timed`.  Never returns. */
void pexec__worker_main(const pexec_descriptor *d, const char *config, int in_fd, int out_fd,
                        struct pexec__progress *progress, const struct pexec__arena *arena,
                        int timed)
	__attribute__((noreturn));

#endif
