/*
 * faulty.c - a fixture plugin that fails on demand, chosen by the item:
 * "crash" raises SIGSEGV in map, "exit" calls _exit(7), "error" returns an
 * error with the message "asked to fail"; anything else passes through.
 */
/* _exit() is POSIX; plugins build as plain -std=c11. */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "pexec_plugin.h"

static int faulty_is(const cJSON *item, const char *what)
{
	return cJSON_IsString(item) && strcmp(item->valuestring, what) == 0;
}

static int faulty_map(void *state, void *input, void **output, pexec_error *err)
{
	const cJSON *item = input;

	(void)state;
	if (faulty_is(item, "crash"))
		raise(SIGSEGV);
	if (faulty_is(item, "exit"))
		_exit(7);
	if (faulty_is(item, "error")) {
		pexec_error_set(err, "asked to fail");
		return -1;
	}
	*output = input;
	return 0;
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "faulty",
	.version = "0.0.0",
	.description = "fixture: crashes, exits or fails on \"crash\", \"exit\", \"error\"",
	.map = faulty_map,
};
