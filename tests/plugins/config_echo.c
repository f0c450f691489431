/*
 * config_echo.c - a fixture plugin that shows what init was given: each
 * item's result is {"config": <the --config JSON, or null>, "input": <item>}.
 */
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "pexec_plugin.h"

static int echo_init(const cJSON *config, void **state, pexec_error *err)
{
	/* The config lives only during init: keep a copy. */
	cJSON *copy = config ? cJSON_Duplicate(config, 1) : cJSON_CreateNull();

	if (!copy) {
		pexec_error_set(err, "config_echo: out of memory");
		return -1;
	}
	*state = copy;
	return 0;
}

static void echo_fini(void *state)
{
	cJSON_Delete(state);
}

static int echo_map(void *state, void *input, void **output, pexec_error *err)
{
	cJSON *obj = cJSON_CreateObject();
	cJSON *conf = cJSON_Duplicate(state, 1);
	cJSON *in = cJSON_Duplicate(input, 1);

	if (!obj || !conf || !in) {
		cJSON_Delete(obj);
		cJSON_Delete(conf);
		cJSON_Delete(in);
		pexec_error_set(err, "config_echo: out of memory");
		return -1;
	}
	cJSON_AddItemToObject(obj, "config", conf);
	cJSON_AddItemToObject(obj, "input", in);
	*output = obj;
	return 0;
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "config_echo",
	.version = "0.0.0",
	.description = "fixture: returns {\"config\": <--config>, \"input\": <item>}",
	.init = echo_init,
	.fini = echo_fini,
	.map = echo_map,
};
