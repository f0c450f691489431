/*
 * sayer.c - a fixture plugin whose error messages hold whatever an item
 * asks for, for the tests that every record pexec writes stays valid
 * whatever a plugin's message holds (test_records.c).
 *
 * An item that is the JSON string "hex:HH..." fails in map with the bytes
 * HH... as its message (a newline, an escape sequence, bytes that are not
 * UTF-8); any other item maps to itself.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "pexec_plugin.h"

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int sayer_map(void *state, void *input, void **output, pexec_error *err)
{
	const cJSON *item = input;
	const char *s = cJSON_IsString(item) ? item->valuestring : NULL;
	size_t n = 0;

	(void)state;
	*output = input;
	if (!s || strncmp(s, "hex:", 4))
		return 0;
	for (s += 4; hexval(s[0]) >= 0 && hexval(s[1]) >= 0 && n + 1 < sizeof(err->msg); s += 2)
		err->msg[n++] = (char)(hexval(s[0]) << 4 | hexval(s[1]));
	err->msg[n] = '\0';
	return -1;
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "sayer",
	.version = "1.0.0",
	.description = "fails with whatever message an item asks for (a test fixture)",
	.map = sayer_map,
};
