/*
 * item.c - one item through the plugin's hooks, and the --reduce fold
 * (item.h): values made and freed by the OWNERSHIP rule of pexec_plugin.h.
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "item.h"
#include "split/split.h"
#include "util.h"

int pexec__plugin_init(const pexec_descriptor *d, const char *config, void **state,
                       pexec_error *err)
{
	cJSON *tree = NULL;
	int rc;

	*state = NULL;
	if (!d->init)
		return 0;
	if (config) {
		tree = cJSON_Parse(config);
		if (!tree) {
			pexec__fail(err, PEXEC_EUSAGE, "--config is not valid JSON");
			return -1;
		}
	}
	err->msg[0] = '\0';
	rc = d->init(tree, state, err);
	cJSON_Delete(tree);
	if (rc && !err->msg[0])
		pexec__fail(err, PEXEC_EINIT, "init failed (no message)");
	return rc ? -1 : 0;
}

void pexec__plugin_fini(const pexec_descriptor *d, void *state)
{
	if (d->fini)
		d->fini(state);
}

/* Frees a value according to its kind (pexec_plugin.h, OWNERSHIP). */
static void value_free(const pexec_descriptor *d, void *state, void *value, int is_json)
{
	if (!value)
		return;
	if (is_json)
		cJSON_Delete(value);
	else if (d->free_value)
		d->free_value(state, value);
}

static int json_serialize(const cJSON *value, pexec_buf *out, pexec_error *err)
{
	char *text = cJSON_PrintUnformatted(value);
	int rc;

	if (!text) {
		pexec__fail(err, PEXEC_ESYS, "cannot print the result as JSON");
		return -1;
	}
	rc = pexec_buf_puts(out, text);
	free(text);
	if (rc)
		pexec__fail(err, PEXEC_ESYS, "out of memory");
	return rc;
}

static void set_stage(const struct pexec__stages *stages, pexec_stage stage)
{
	if (!stages)
		return;
	if (stages->between)
		stages->between(stages->ctx);
	atomic_store_explicit(stages->at, stage, memory_order_relaxed);
}

int pexec__value_from_text(const pexec_descriptor *d, void *state, const char *data,
                           size_t len, void **value, pexec_error *err)
{
	if (d->deserialize)
		return d->deserialize(state, data, len, value, err) ? -1 : 0;
	*value = cJSON_ParseWithLength(data, len);
	if (!*value) {
		pexec__fail(err, PEXEC_EINPUT,
		            "cannot parse the item as JSON (cJSON allows %d levels of nesting)",
		            CJSON_NESTING_LIMIT);
		return -1;
	}
	return 0;
}

/* Deserialize and map: *in and *res are set (res may be in itself). */
static pexec_stage item_map(const pexec_descriptor *d, void *state, const char *data,
                            size_t len, void **in, void **res, pexec_error *err,
                            const struct pexec__stages *stages)
{
	*in = *res = NULL;
	err->msg[0] = '\0';
	if (pexec__value_from_text(d, state, data, len, in, err))
		return PEXEC_STAGE_DESERIALIZE;
	set_stage(stages, PEXEC_STAGE_MAP);
	if (d->map(state, *in, res, err))
		return PEXEC_STAGE_MAP;
	return PEXEC_STAGE_NONE;
}

static void item_free(const pexec_descriptor *d, void *state, void *in, void *res)
{
	if (res != in)
		value_free(d, state, res, !d->serialize);
	value_free(d, state, in, !d->deserialize);
}

static pexec_stage failed(pexec_stage stage, pexec_error *err)
{
	if (!err->msg[0])
		pexec__fail(err, PEXEC_EITEM, "%s failed (no message)", pexec_stage_str(stage));
	return stage;
}

/* The full check of a result the fast path could not tell valid (apart, so
 * that its message buffer stays out of the item path's frame). */
static __attribute__((noinline)) int check_result(pexec__splitter *check, const char *text,
                                                  size_t len, pexec_error *err)
{
	pexec_error why;

	if (pexec__split_check(check, text, len, &why) == 0)
		return 0;
	pexec__fail(err, PEXEC_EITEM, "result is not valid JSON %s", why.msg);
	return -1;
}

/* Appends the JSON text of a result value to `out`: with the serialize hook,
 * as cJSON, or "null".  Whatever made them, the bytes must be one JSON value
 * by the splitter's own strict rules (with `check`): a plugin's garbage never
 * reaches the output.  Returns 0, or -1 with `err` filled and `out` as it
 * was. */
static inline __attribute__((always_inline)) int
serialize_value(const pexec_descriptor *d, void *state, const void *value,
                pexec_buf *out, pexec__splitter *check, pexec_error *err)
{
	size_t start = out->len, n;
	int rc;

	if (!value)
		rc = pexec_buf_append(out, "null", 4);
	else if (!d->serialize)
		rc = json_serialize(value, out, err);
	else
		rc = d->serialize(state, value, out, err);
	n = out->len - start;
	if (!rc && n == 0)
		rc = pexec__fail(err, PEXEC_EITEM, "serialize wrote nothing (a result is one JSON "
		                 "value)");
	else if (!rc && n > PEXEC_RESULT_MAX)
		rc = pexec__fail(err, PEXEC_EITEM, "result of %zu bytes is larger than the 1 GiB "
		                 "limit", n);
	else if (!rc && check && !pexec__split_check_fast(out->data + start, n))
		rc = check_result(check, out->data + start, n, err);
	if (rc)
		out->len = start;
	return rc ? -1 : 0;
}

pexec_stage pexec__item_run(const pexec_descriptor *d, void *state, const char *data,
                            size_t len, pexec_buf *out, pexec__splitter *check,
                            pexec_error *err, const struct pexec__stages *stages)
{
	void *in, *res;
	pexec_stage stage = item_map(d, state, data, len, &in, &res, err, stages);

	if (stage == PEXEC_STAGE_NONE) {
		stage = PEXEC_STAGE_SERIALIZE;
		set_stage(stages, stage);
		if (serialize_value(d, state, res, out, check, err) == 0)
			stage = PEXEC_STAGE_NONE;
	}
	item_free(d, state, in, res);
	return stage == PEXEC_STAGE_NONE ? stage : failed(stage, err);
}

int pexec__fold_start(const pexec_descriptor *d, void *state, void **acc, pexec_error *err)
{
	const char *text = d->reduce_initial ? d->reduce_initial : "null";

	err->msg[0] = '\0';
	*acc = NULL;
	if (!strcmp(text, "null"))
		return 0;
	if (pexec__value_from_text(d, state, text, strlen(text), acc, err)) {
		char why[PEXEC_ERROR_MAX];
		snprintf(why, sizeof(why), "%s", err->msg);
		pexec__fail(err, PEXEC_EUSAGE, "plugin '%s': its reduce_initial '%.80s' is not a "
		            "value it reads: %s", d->name, text, why);
		return -1;
	}
	return 0;
}

void pexec__fold_free(const pexec_descriptor *d, void *state, void *acc)
{
	value_free(d, state, acc, !d->serialize);
}

int pexec__fold_value(const pexec_descriptor *d, void *state, void **acc, void *v,
                      pexec_error *err)
{
	void *r = NULL;

	err->msg[0] = '\0';
	if (d->reduce(state, *acc, v, &r, err)) {
		if (!err->msg[0])
			pexec__fail(err, PEXEC_EITEM, "reduce failed (no message)");
		if (v != *acc)
			pexec__fold_free(d, state, v);
		return -1;
	}
	/* pexec owns a and b: whichever is not the result goes. */
	if (*acc != r)
		pexec__fold_free(d, state, *acc);
	if (v != r && v != *acc)
		pexec__fold_free(d, state, v);
	*acc = r;
	return 0;
}

int pexec__fold_text(const pexec_descriptor *d, void *state, void **acc, const char *text,
                     size_t len, pexec_error *err)
{
	void *v = NULL;

	err->msg[0] = '\0';
	if (len == 4 && !memcmp(text, "null", 4))
		return pexec__fold_value(d, state, acc, NULL, err);
	if (pexec__value_from_text(d, state, text, len, &v, err))
		return -1;
	return pexec__fold_value(d, state, acc, v, err);
}

int pexec__fold_finish(const pexec_descriptor *d, void *state, void **acc, pexec_buf *out,
                       pexec__splitter *check, pexec_error *err)
{
	int rc = serialize_value(d, state, *acc, out, check, err);

	pexec__fold_free(d, state, *acc);
	*acc = NULL;
	return rc;
}

pexec_stage pexec__item_fold(const pexec_descriptor *d, void *state, const char *data,
                             size_t len, void **acc, pexec_error *err,
                             const struct pexec__stages *stages)
{
	void *in, *res;
	pexec_stage stage = item_map(d, state, data, len, &in, &res, err, stages);

	if (stage != PEXEC_STAGE_NONE) {
		item_free(d, state, in, res);
		return failed(stage, err);
	}
	/* The result goes into the fold; the input goes, unless it is the result. */
	if (in != res)
		value_free(d, state, in, !d->deserialize);
	set_stage(stages, PEXEC_STAGE_REDUCE);
	if (pexec__fold_value(d, state, acc, res, err))
		return failed(PEXEC_STAGE_REDUCE, err);
	return PEXEC_STAGE_NONE;
}
