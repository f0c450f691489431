/*
 * badjson.c - a fixture plugin whose serialize writes whatever it is told,
 * valid JSON or not, for the tests that pexec's output stays a valid
 * document whatever a plugin's serializer writes (test_valid.c).
 *
 * Values are byte strings.  An item that is the JSON string "hex:HH..."
 * maps to the bytes HH... (so that cut-short JSON, invalid UTF-8 or a NUL
 * can be asked for); any other item maps to its own text.  serialize writes
 * the bytes as they are.  reduce (for --reduce) keeps its right operand,
 * except that a "bad-partial" on either side makes `{"a":` (an invalid
 * partial result).
 */
#include <stdlib.h>
#include <string.h>

#include "pexec_plugin.h"

struct bytes {
	size_t len;
	char data[];
};

static struct bytes *bytes_new(const char *data, size_t len)
{
	struct bytes *b = malloc(sizeof(*b) + len);

	if (b) {
		b->len = len;
		memcpy(b->data, data, len);
	}
	return b;
}

static int is_text(const struct bytes *b, const char *text)
{
	return b && b->len == strlen(text) && !memcmp(b->data, text, b->len);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int badjson_deserialize(void *state, const char *data, size_t len, void **value,
                               pexec_error *err)
{
	(void)state;
	*value = bytes_new(data, len);
	if (!*value) {
		pexec_error_set(err, "badjson: out of memory");
		return -1;
	}
	return 0;
}

static int badjson_map(void *state, void *input, void **output, pexec_error *err)
{
	struct bytes *in = input, *out;
	static const char prefix[] = "\"hex:";

	(void)state;
	if (in->len < sizeof(prefix) || memcmp(in->data, prefix, sizeof(prefix) - 1) ||
	    in->data[in->len - 1] != '"') {
		*output = input;
		return 0;
	}
	out = malloc(sizeof(*out) + in->len);
	if (!out) {
		pexec_error_set(err, "badjson: out of memory");
		return -1;
	}
	out->len = 0;
	for (size_t i = sizeof(prefix) - 1; i + 2 < in->len; i += 2) {
		int hi = hexval(in->data[i]), lo = hexval(in->data[i + 1]);
		if (hi < 0 || lo < 0) {
			free(out);
			pexec_error_set(err, "badjson: bad hex in the item");
			return -1;
		}
		out->data[out->len++] = (char)(hi << 4 | lo);
	}
	*output = out;
	return 0;
}

static int badjson_serialize(void *state, const void *value, pexec_buf *out, pexec_error *err)
{
	const struct bytes *b = value;

	(void)state;
	if (pexec_buf_append(out, b->data, b->len)) {
		pexec_error_set(err, "badjson: out of memory");
		return -1;
	}
	return 0;
}

static void badjson_free(void *state, void *value)
{
	(void)state;
	free(value);
}

static int badjson_reduce(void *state, void *a, void *b, void **out, pexec_error *err)
{
	(void)state;
	if (is_text(a, "\"bad-partial\"") || is_text(b, "\"bad-partial\"")) {
		*out = bytes_new("{\"a\":", 5);
		if (!*out) {
			pexec_error_set(err, "badjson: out of memory");
			return -1;
		}
		return 0;
	}
	*out = b;
	return 0;
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "badjson",
	.version = "1.0.0",
	.description = "serializes whatever it is told, valid JSON or not (a test fixture)",
	.deserialize = badjson_deserialize,
	.map = badjson_map,
	.serialize = badjson_serialize,
	.free_value = badjson_free,
	.reduce = badjson_reduce,
};
