/*
 * mpi_run.c - running pexec-mpi under mpirun, and pexec beside it
 * (mpi_run.h).
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "mpi_run.h"

static int in_path(const char *name)
{
	const char *path = getenv("PATH");

	for (const char *p = path ? path : ""; *p;) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char file[PATH_MAX];

		if (n && (size_t)snprintf(file, sizeof(file), "%.*s/%s", (int)n, p, name) <
		             sizeof(file) &&
		    access(file, X_OK) == 0)
			return 1;
		p += n + (end != NULL);
	}
	return 0;
}

/* Skips the test where pexec-mpi cannot run. */
void need_mpi(void)
{
	if (access(PEXEC_MPI, X_OK) != 0)
		cr_skip_test("%s is not built (make builds it only where Open MPI's mpicc is "
		             "installed): pexec-mpi not tested", PEXEC_MPI);
	if (!in_path("mpirun"))
		cr_skip_test("no mpirun in PATH (install Open MPI): pexec-mpi not tested");
}

/* pexec OPTS, with `in` (NULL: none) on stdin. */
void run_local(struct proc *r, const char *const *opts, const char *in)
{
	struct args a = { 0 };
	struct proc_spec s = { .args = a.v, .in = in, .in_len = in ? strlen(in) : 0 };

	args_add(&a, opts);
	run_spec(&s, r);
}

/* The arguments of mpirun -np RANKS pexec-mpi OPTS.
 *
 * Under the sanitizers the ranks get LSAN_OPTIONS with the slow unwinder:
 * Open MPI keeps allocations of its own to the end, which tests/lsan.supp
 * must suppress by its libraries' names (libmpi.so, libevent_core), but the
 * default fast unwinder stops in Open MPI's components, which have no frame
 * pointers and are unloaded by MPI_Finalize, so those stacks would show no
 * library a suppression could name. */
void mpi_command(struct args *a, const char *const *opts)
{
	static char lsan[1024];

	a->n = 0;
	args_add(a, ARGS("--allow-run-as-root", "--oversubscribe", "-np", RANKS));
	if (SANITIZED) {
		const char *was = getenv("LSAN_OPTIONS");

		snprintf(lsan, sizeof(lsan), "LSAN_OPTIONS=%s%sfast_unwind_on_malloc=0",
		         was ? was : "", was && *was ? ":" : "");
		args_add(a, ARGS("-x", lsan));
	}
	args_add(a, ARGS(PEXEC_MPI));
	args_add(a, opts);
}

/* mpirun -np RANKS pexec-mpi OPTS, with `in` (NULL: none) on stdin. */
void run_mpi(struct proc *r, const char *const *opts, const char *in)
{
	struct args a;
	struct proc_spec s = { .program = "mpirun", .args = a.v, .in = in,
		               .in_len = in ? strlen(in) : 0, .orphan_grace_s = ORPHAN_GRACE_S };

	mpi_command(&a, opts);
	run_spec(&s, r);
}

/* The job ended by itself and exited with `code` (mpirun passes rank 0's
 * status on).  After a failure mpirun's teardown may hand its ranks' processes
 * to us (ORPHAN_GRACE_S): none may outlive the grace.  After a success
 * nothing may be left at all. */
void expect_mpi_exit(const struct proc *r, int code)
{
	expect_exit_status(r, code);
	if (code == 0)
		cr_expect_eq(r->strays, 0, "%s: %d processes left behind", r->cmd, r->strays);
	cr_expect_eq(r->survivors, 0, "%s: %d processes outlived the job by %d s", r->cmd,
	             r->survivors, ORPHAN_GRACE_S);
}

/* `n` integers from 1 to 99, the same every run, as a JSON array or NDJSON. */
char *random_integers(size_t n, int ndjson)
{
	uint64_t x = 0x9e3779b97f4a7c15u;
	char *text = NULL, num[16];
	size_t len = 0;

	append(&text, &len, ndjson ? "" : "[", !ndjson);
	for (size_t i = 0; i < n; i++) {
		int k;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		k = snprintf(num, sizeof(num), "%s%d%s", !ndjson && i ? ", " : "",
		             (int)(x % 99) + 1, ndjson ? "\n" : "");
		append(&text, &len, num, (size_t)k);
	}
	append(&text, &len, ndjson ? "" : "]\n", ndjson ? 0 : 2);
	return text;
}

/* `err` without mpirun's messages.  mpirun forwards a rank's stderr as it
 * reads it, so a block of its own can land inside a message the rank wrote
 * in more than one write(2), as usage_error() in core/cli/cli.c does. */
char *without_banners(const char *err)
{
	const size_t n = strlen(MPIRUN_RULE);
	const char *p = err, *open, *close;
	char *out = NULL;
	size_t len = 0;

	append(&out, &len, "", 0);
	while ((open = strstr(p, MPIRUN_RULE)) && (close = strstr(open + n, MPIRUN_RULE))) {
		append(&out, &len, p, (size_t)(open - p));
		p = close + n;
	}
	append(&out, &len, p, strlen(p));
	return out;
}
