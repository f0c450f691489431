/*
 * no_map.c - a fixture plugin with a valid ABI 1 descriptor but no map hook,
 * the one hook that is required.
 */
#include "pexec_plugin.h"

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "no_map",
	.version = "0.0.0",
	.description = "fixture: has no map hook",
};
