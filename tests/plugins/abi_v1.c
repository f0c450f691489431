/*
 * abi_v1.c - a fixture plugin built against the first published plugin
 * header, frozen in tests/abi/pexec_plugin_v1.h: its descriptor is ABI 1's
 * first layout, shorter than today's.  test_abi.c runs it in the current
 * pexec, every hook of that layout included, to hold the promise that a
 * plugin keeps loading in every later pexec of the same ABI major version.
 *
 * Items are numbers; each result is the number plus "add" from --config
 * (default 0, and then map passes its input through).  Values are its own
 * (a malloc'd double), so deserialize, serialize and free_value all run.
 */
#include <stdlib.h>

#include <cjson/cJSON.h>

/* Explicitly the frozen header, not sdk/ (which the build puts on -I). */
#include "../abi/pexec_plugin_v1.h"

struct abi_state {
	double add;
};

static int abi_init(const cJSON *config, void **state, pexec_error *err)
{
	const cJSON *add = cJSON_GetObjectItemCaseSensitive(config, "add");
	struct abi_state *st;

	if (add && !cJSON_IsNumber(add)) {
		pexec_error_set(err, "abi_v1: config \"add\" must be a number");
		return -1;
	}
	st = malloc(sizeof(*st));
	if (!st) {
		pexec_error_set(err, "abi_v1: out of memory");
		return -1;
	}
	st->add = add ? cJSON_GetNumberValue(add) : 0;
	*state = st;
	return 0;
}

static void abi_fini(void *state)
{
	free(state);
}

static int abi_deserialize(void *state, const char *data, size_t len, void **value,
                           pexec_error *err)
{
	double *v;
	char *end;
	double x;

	(void)state;
	/* The item bytes are NUL-terminated (OWNERSHIP). */
	x = strtod(data, &end);
	if (end == data || (size_t)(end - data) != len) {
		pexec_error_set(err, "abi_v1: not a number");
		return -1;
	}
	v = malloc(sizeof(*v));
	if (!v) {
		pexec_error_set(err, "abi_v1: out of memory");
		return -1;
	}
	*v = x;
	*value = v;
	return 0;
}

static int abi_map(void *state, void *input, void **output, pexec_error *err)
{
	const struct abi_state *st = state;
	double *v;

	if (st->add == 0) {
		*output = input; /* pass-through: pexec frees it once */
		return 0;
	}
	v = malloc(sizeof(*v));
	if (!v) {
		pexec_error_set(err, "abi_v1: out of memory");
		return -1;
	}
	*v = *(const double *)input + st->add;
	*output = v;
	return 0;
}

static int abi_serialize(void *state, const void *value, pexec_buf *out, pexec_error *err)
{
	(void)state;
	if (pexec_buf_printf(out, "%.17g", *(const double *)value)) {
		pexec_error_set(err, "abi_v1: out of memory");
		return -1;
	}
	return 0;
}

static void abi_free_value(void *state, void *value)
{
	(void)state;
	free(value);
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "abi_v1",
	.version = "1.0.0",
	.description = "fixture: built against the first published plugin header",
	.init = abi_init,
	.fini = abi_fini,
	.deserialize = abi_deserialize,
	.map = abi_map,
	.serialize = abi_serialize,
	.free_value = abi_free_value,
};
