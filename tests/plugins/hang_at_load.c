/*
 * hang_at_load.c - a fixture plugin whose constructor does all that a loader
 * must survive short of crashing: it writes to stdout, starts a helper
 * process that would outlive the loader, then never returns.  For `pexec
 * list`, which must list it as unusable and leave no process behind.
 */
/* fork(), sleep() and write() are POSIX; plugins build as plain -std=c11. */
#define _POSIX_C_SOURCE 200809L

#include <unistd.h>

#include "pexec_plugin.h"

__attribute__((constructor)) static void hang(void)
{
	static const char noise[] = "hang_at_load: a constructor writes to stdout\n";
	ssize_t n = write(1, noise, sizeof(noise) - 1);

	(void)n;
	if (fork() == 0) {
		sleep(100);
		_exit(0);
	}
	for (;;)
		sleep(100);
}

static int hang_map(void *state, void *in, void **out, pexec_error *err)
{
	(void)state;
	(void)err;
	*out = in;
	return 0;
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "hang_at_load",
	.version = "1.0.0",
	.description = "hangs when loaded, with a helper process (test fixture)",
	.map = hang_map,
};
