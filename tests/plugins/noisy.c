/*
 * noisy.c - a fixture plugin that breaks the "never print to stdout" rule in
 * every way it can (printf, puts, fwrite, and write(1, ...) past stdio), then
 * returns its input.  pexec's output must stay clean JSON; the noise belongs
 * on stderr.
 */
/* write() is POSIX; plugins build as plain -std=c11. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <unistd.h>

#include "pexec_plugin.h"

static int noisy_map(void *state, void *input, void **output, pexec_error *err)
{
	static const char raw[] = "noisy: write(1) says hello\n";
	ssize_t n;

	(void)state;
	(void)err;
	printf("noisy: printf says hello\n");
	puts("noisy: puts says hello");
	fwrite("noisy: fwrite says hello\n", 1, 25, stdout);
	n = write(1, raw, sizeof(raw) - 1);
	(void)n;
	/* Pass-through of a cJSON tree: pexec frees it once. */
	*output = input;
	return 0;
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "noisy",
	.version = "0.0.0",
	.description = "fixture: prints to stdout from map, returns its input",
	.map = noisy_map,
};
