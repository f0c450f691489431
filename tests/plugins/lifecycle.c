/*
 * lifecycle.c - a fixture plugin that leaves a mark where its init and fini
 * ran: with a config {"marks": PATH}, init appends "init\n" to the file
 * PATH and fini "fini\n", so that a test can tell that a worker ran its fini
 * before it exited.  Each item's result is the item.
 */
/* strdup() is POSIX; plugins build as plain -std=c11. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pexec_plugin.h"

static int mark(const char *path, const char *what)
{
	FILE *f = fopen(path, "a");
	int ok = f && fputs(what, f) >= 0;

	if (f && fclose(f))
		ok = 0;
	return ok ? 0 : -1;
}

static int life_init(const cJSON *config, void **state, pexec_error *err)
{
	const cJSON *marks = cJSON_GetObjectItemCaseSensitive(config, "marks");

	*state = NULL;
	if (!cJSON_IsString(marks))
		return 0;
	*state = strdup(marks->valuestring);
	if (!*state || mark(*state, "init\n")) {
		pexec_error_set(err, "lifecycle: cannot mark '%s'", marks->valuestring);
		free(*state);
		*state = NULL;
		return -1;
	}
	return 0;
}

static void life_fini(void *state)
{
	if (state)
		mark(state, "fini\n");
	free(state);
}

/* Pass-through of a cJSON tree: pexec frees it once. */
static int life_map(void *state, void *input, void **output, pexec_error *err)
{
	(void)state;
	(void)err;
	*output = input;
	return 0;
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "lifecycle",
	.version = "0.0.0",
	.description = "fixture: marks a file where init and fini ran",
	.init = life_init,
	.fini = life_fini,
	.map = life_map,
};
