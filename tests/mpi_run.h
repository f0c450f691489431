/*
 * mpi_run.h - running pexec-mpi under mpirun, and pexec beside it, for
 * the suites that compare the two (test_mpi.c, test_mpi_spans.c).
 */
#ifndef PEXEC_TEST_MPI_RUN_H
#define PEXEC_TEST_MPI_RUN_H

#include <stddef.h>

#include "helpers.h"

#define PEXEC_MPI PEXEC_TEST_BUILD "/pexec-mpi"
#define RANKS "3"

/* How long processes that mpirun left behind may take to die by
 * themselves.  When rank 0 exits non-zero (failed items, a usage error, a
 * signal) or a rank is killed, mpirun aborts the job: it kills the other
 * ranks and may exit before it has reaped them.  Their pool servers and
 * workers die by PR_SET_PDEATHSIG when their parent does, a moment later.
 * All of them come to this process (a child subreaper, helpers.c): dead
 * within this grace is mpirun's teardown; alive after it is a process left
 * behind.  A job that exits 0 must leave nothing at all. */
#define ORPHAN_GRACE_S 5

/* mpirun's own messages: blocks between two rules of 74 dashes. */
#define MPIRUN_RULE "--------------------------------------------------------------------------\n"

/* Skips the test where pexec-mpi cannot run. */
void need_mpi(void);
/* pexec OPTS, with `in` (NULL: none) on stdin. */
void run_local(struct proc *r, const char *const *opts, const char *in);
/* The arguments of mpirun -np RANKS pexec-mpi OPTS (mpi_run.c says why the
 * sanitizers' runs get more). */
void mpi_command(struct args *a, const char *const *opts);
/* mpirun -np RANKS pexec-mpi OPTS, with `in` (NULL: none) on stdin. */
void run_mpi(struct proc *r, const char *const *opts, const char *in);
/* The job ended by itself and exited with `code`, and left no process
 * behind (after a failure, none outlived ORPHAN_GRACE_S). */
void expect_mpi_exit(const struct proc *r, int code);
/* `n` integers from 1 to 99, the same every run, as a JSON array or NDJSON
 * (malloc'd). */
char *random_integers(size_t n, int ndjson);
/* `err` without mpirun's messages (malloc'd). */
char *without_banners(const char *err);

#endif
