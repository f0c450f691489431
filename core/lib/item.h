/*
 * item.h - what runs items: one item through the plugin's hooks (init,
 * deserialize, map, serialize, fini), and the --reduce fold.  Workers,
 * --serial and pexec_instance all use this one path, so every way of running
 * an item produces the same bytes.
 */
#ifndef PEXEC_ITEM_H
#define PEXEC_ITEM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "pexec.h"
#include "split/split.h"

/* Where a worker tells the stage each item is in, as it begins (memory the
 * parent reads to blame an item), and a check it runs between stages (NULL:
 * none; it may end the process). */
struct pexec__stages {
	_Atomic uint32_t *at;
	void (*between)(void *ctx);
	void *ctx;
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
 * was and `err` filled.  With `check` (pexec__split_checker), a result that
 * is not one valid JSON value fails at serialize.  `stages` (may be NULL)
 * is told each stage as it begins. */
pexec_stage pexec__item_run(const pexec_descriptor *d, void *state, const char *data,
                            size_t len, pexec_buf *out, pexec__splitter *check,
                            pexec_error *err, const struct pexec__stages *stages);

/* --reduce (the reduce hook in pexec_plugin.h).  A fold's value is of the
 * plugin's one value kind.  fold_start makes the starting value from
 * reduce_initial; fold_value folds v (taken over) into *acc; fold_text does
 * the same for a serialized value; fold_finish serializes *acc into `out`
 * (checked as item_run's results are, with `check`) and frees it.  Each returns 0, or -1 with `err` filled (*acc stays valid
 * and owned by the caller, who frees it with fold_free). */
int pexec__fold_start(const pexec_descriptor *d, void *state, void **acc, pexec_error *err);
int pexec__fold_value(const pexec_descriptor *d, void *state, void **acc, void *v,
                      pexec_error *err);
int pexec__fold_text(const pexec_descriptor *d, void *state, void **acc, const char *text,
                     size_t len, pexec_error *err);
int pexec__fold_finish(const pexec_descriptor *d, void *state, void **acc, pexec_buf *out,
                       pexec__splitter *check, pexec_error *err);
void pexec__fold_free(const pexec_descriptor *d, void *state, void *acc);
/* Runs one item through deserialize and map and folds its result into *acc.
 * Returns PEXEC_STAGE_NONE, or the failed stage (REDUCE for the fold). */
pexec_stage pexec__item_fold(const pexec_descriptor *d, void *state, const char *data,
                             size_t len, void **acc, pexec_error *err, const struct pexec__stages *stages);

#endif
