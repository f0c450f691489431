/*
 * split_run.h - running the splitter in tests (test_split.c,
 * test_split_stream.c): over memory, a file or a pipe fed by a child, every
 * item it gives copied out, up to its end or its first error.
 */
#ifndef PEXEC_TEST_SPLIT_RUN_H
#define PEXEC_TEST_SPLIT_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "split/split.h"

/* What a splitter gave, up to its end or its first error. */
typedef struct outcome {
	char **items;
	size_t *lens;
	size_t n, cap;
	int rc;
	pexec_error err;
	uint64_t offset;
} outcome;

void outcome_release(outcome *o);
/* Takes every item of `s` (then frees it) into `o`. */
void drain(pexec__splitter *s, outcome *o);
void split_mem(const char *in, size_t len, pexec_format format, outcome *o);
/* A temporary file holding `len` bytes, positioned at its start. */
int temp_file(const void *in, size_t len);
void split_file(const char *in, size_t len, pexec_format format, outcome *o);
/* Feeds `in` from a child process through `fds`, `chunk` bytes per write. */
void split_fed(int fds[2], const char *in, size_t len, size_t chunk, pexec_format format,
               outcome *o);

#endif
