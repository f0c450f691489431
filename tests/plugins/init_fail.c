/*
 * init_fail.c - a fixture plugin whose init always refuses, with a message
 * that pexec must pass on.
 */
#include "pexec_plugin.h"

static int init_fail_init(const struct cJSON *config, void **state, pexec_error *err)
{
	(void)config;
	*state = NULL;
	pexec_error_set(err, "init refused: bad config");
	return -1;
}

static int init_fail_map(void *state, void *input, void **output, pexec_error *err)
{
	(void)state;
	(void)err;
	*output = input;
	return 0;
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "init_fail",
	.version = "0.0.0",
	.description = "fixture: init always fails",
	.init = init_fail_init,
	.map = init_fail_map,
};
