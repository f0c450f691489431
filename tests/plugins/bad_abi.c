/*
 * bad_abi.c - a fixture plugin that claims ABI 99: the loader must refuse it
 * before it reads anything past abi_version and say which ABI it was built
 * for and which pexec runs.
 */
#include "pexec_plugin.h"

static int bad_abi_map(void *state, void *input, void **output, pexec_error *err)
{
	(void)state;
	(void)err;
	*output = input;
	return 0;
}

PEXEC_PLUGIN = {
	.abi_version = 99,
	.struct_size = (uint32_t)sizeof(pexec_descriptor),
	.name = "bad_abi",
	.version = "0.0.0",
	.description = "fixture: claims plugin ABI 99",
	.map = bad_abi_map,
};
