/*
 * crash_at_load.c - a fixture plugin that crashes as it is loaded (in a
 * constructor), for `pexec info` and `pexec check`, which must survive it.
 */
#include <signal.h>

#include "pexec_plugin.h"

__attribute__((constructor)) static void crash(void)
{
	raise(SIGSEGV);
}

static int crash_map(void *state, void *in, void **out, pexec_error *err)
{
	(void)state;
	(void)err;
	*out = in;
	return 0;
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "crash_at_load",
	.version = "1.0.0",
	.description = "crashes when loaded (test fixture)",
	.map = crash_map,
};
