/*
 * small_desc.c - a fixture plugin whose descriptor claims to be 16 bytes,
 * smaller than any ABI 1 descriptor: the loader must refuse it instead of
 * reading hooks the plugin never had.
 */
#include "pexec_plugin.h"

static int small_desc_map(void *state, void *input, void **output, pexec_error *err)
{
	(void)state;
	(void)err;
	*output = input;
	return 0;
}

PEXEC_PLUGIN = {
	.abi_version = PEXEC_ABI_VERSION,
	.struct_size = 16,
	.name = "small_desc",
	.version = "0.0.0",
	.description = "fixture: descriptor size 16",
	.map = small_desc_map,
};
