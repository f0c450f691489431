/*
 * identity.c - each item's result is the item itself, byte for byte.
 *
 * The overhead benchmark: whatever pexec costs per item, with no work to hide
 * it.  It never parses, so nothing is lost in translation either: 64-bit ids,
 * integers beyond double precision, escapes and spacing inside the item all
 * come back exactly as they went in.
 */
#include <stdlib.h>

#include "pexec_plugin.h"

/* Points into the item's bytes, which pexec keeps valid and unchanged until
 * the item's result has been serialized (see OWNERSHIP). */
struct ident_value {
	const char *data;
	size_t len;
};

static int ident_deserialize(void *state, const char *data, size_t len, void **value,
                             pexec_error *err)
{
	struct ident_value *v;

	(void)state;
	v = malloc(sizeof(*v));
	if (!v) {
		pexec_error_set(err, "identity: out of memory");
		return -1;
	}
	v->data = data;
	v->len = len;
	*value = v;
	return 0;
}

/* Pass-through: pexec frees the one value once. */
static int ident_map(void *state, void *input, void **output, pexec_error *err)
{
	(void)state;
	(void)err;
	*output = input;
	return 0;
}

static int ident_serialize(void *state, const void *value, pexec_buf *out, pexec_error *err)
{
	const struct ident_value *v = value;

	(void)state;
	if (pexec_buf_append(out, v->data, v->len)) {
		pexec_error_set(err, "identity: out of memory for %zu bytes", v->len);
		return -1;
	}
	return 0;
}

static void ident_free_value(void *state, void *value)
{
	(void)state;
	free(value);
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "identity",
	.version = "1.0.0",
	.description = "returns each item unchanged, byte for byte (measures pexec's own overhead)",
	.deserialize = ident_deserialize,
	.map = ident_map,
	.serialize = ident_serialize,
	.free_value = ident_free_value,
};
