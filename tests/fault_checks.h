/*
 * fault_checks.h - fault-test inputs for the faults fixture plugin and what
 * a failed item must look like from outside (its stderr line, its --errors
 * record); shared by test_faults.c and test_faults_more.c.
 */
#ifndef PEXEC_TEST_FAULT_CHECKS_H
#define PEXEC_TEST_FAULT_CHECKS_H

#include <stddef.h>

#include "helpers.h"

/* How a worker that wrote through a null pointer is reported.  In the
 * sanitizer build UBSan (built into the fixture too) catches the store
 * before the kernel does and ends the worker with exit status 1, or with
 * abort() when ASAN_OPTIONS says abort_on_error=1, as CI's does. */
#if SANITIZED
#define SEGV_REASONS "killed by SIGSEGV", "exited with status 1", "killed by SIGABRT"
#else
#define SEGV_REASONS "killed by SIGSEGV"
#endif

#define FAULTS FIX("faults")

/* What a failed item must be reported as. */
struct failure {
	size_t index;
	const char *stages[3];  /* any of these stages (NULL-terminated) */
	const char *reasons[4]; /* its reason contains one of these */
	unsigned attempts;
	const char *input;      /* the item's bytes, as the excerpt must quote them */
};

/* A JSON array of `n` items for the faults plugin: item i is the number i,
 * except where odd[i] is set, where it is the JSON text `odd_item`.  *want is
 * the stdout expected: 2i for each number, `slot` for each odd item. */
void build_input(size_t n, const unsigned char *odd, const char *odd_item, const char *slot,
                 char **in, char **want);
/* The same with one odd item, at `at`. */
void input_with(size_t n, size_t at, const char *odd_item, const char *slot, char **in,
                char **want);
/* Whether `text` contains (equals) one of the NULL-terminated `alts`. */
int contains_any(const char *text, const char *const *alts);
int equals_any(const char *text, const char *const *alts);
/* stderr names the item, its stage and its reason, on one line. */
void expect_failure_line(const struct proc *r, const struct failure *f);
/* The --errors file holds exactly one NDJSON record per failure in `fs`, in
 * any order, each with index, stage, reason, attempts and the input. */
void expect_error_records(const char *cmd, const char *path, const struct failure *fs,
                          size_t n);

#endif
