/*
 * worker.h - what runs items: one item through the plugin's hooks, and the
 * loop of a forked worker process.  --serial mode uses the same item path, so
 * serial and parallel runs produce the same bytes.
 */
#ifndef PEXEC_WORKER_H
#define PEXEC_WORKER_H

#include <stddef.h>

#include "pexec.h"

/* Calls init (if the plugin has one) with `config` (JSON text or NULL). */
int pexec__plugin_init(const pexec_descriptor *d, const char *config, void **state,
                       pexec_error *err);
void pexec__plugin_fini(const pexec_descriptor *d, void *state);

/* Runs one item (`data[len]` must be NUL) through deserialize, map and
 * serialize, appending the result's JSON text to `out`.  Returns
 * PEXEC_STAGE_NONE on success; otherwise the failed stage, with `out` as it
 * was and `err` filled. */
pexec_stage pexec__item_run(const pexec_descriptor *d, void *state, const char *data,
                            size_t len, pexec_buf *out, pexec_error *err);

/* The body of a worker process: init, READY, then CHUNK frames from `in_fd`
 * answered by RESULTS frames on `out_fd` until EOF.  Never returns. */
void pexec__worker_main(const pexec_descriptor *d, const char *config, int in_fd, int out_fd)
	__attribute__((noreturn));

#endif
