/*
 * lock.h - one output file, one run: a run that writes -o FILE holds a lock
 * on FILE.pexec-lock for its whole life (lock.c).
 */
#ifndef PEXEC_JOB_LOCK_H
#define PEXEC_JOB_LOCK_H

#include "pexec.h"

struct pexec__lock {
	int fd;       /* -1: none held */
	char *path;
};

/* Takes the lock of output `output`.  Returns PEXEC_OK, PEXEC_EUSAGE with
 * "'FILE' is being written by another pexec (pid N)" when another run holds
 * it, or PEXEC_ESYS when it cannot be made. */
pexec_code pexec__lock_take(struct pexec__lock *l, const char *output, pexec_error *err);
/* Lets it go, removing the lock file (idempotent). */
void pexec__lock_drop(struct pexec__lock *l);

#endif
