/*
 * lock.h - one output file, one run: a run that writes -o FILE holds a lock
 * on FILE.pexec-lock for its whole life (lock.c).
 */
#ifndef PEXEC_JOB_LOCK_H
#define PEXEC_JOB_LOCK_H

#include "pexec.h"

/* The byte of the lock file that writers_fd holds a read lock on. */
#define PEXEC__LOCK_WRITERS_BYTE 1

struct pexec__lock {
	int fd;         /* -1: none held */
	int writers_fd; /* for the workers to keep open while they live; -1: none */
	char *path;
};

/* Takes the lock of output `output`, then waits a moment for the workers
 * of an earlier run that was killed to be gone.  Returns PEXEC_OK,
 * PEXEC_EUSAGE with "'FILE' is being written by another pexec (pid N)" when
 * another run holds it (or one of its workers still does, after 10 s), or
 * PEXEC_ESYS when it cannot be made. */
pexec_code pexec__lock_take(struct pexec__lock *l, const char *output, pexec_error *err);
/* Lets it go, removing the lock file (idempotent). */
void pexec__lock_drop(struct pexec__lock *l);

#endif
