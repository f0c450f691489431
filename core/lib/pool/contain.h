/*
 * contain.h - keeping the processes plugins start inside the run (contain.c):
 * the subreaper, the processes it adopts, and the warden that ends the
 * workers' process groups if pexec itself is killed.
 */
#ifndef PEXEC_POOL_CONTAIN_H
#define PEXEC_POOL_CONTAIN_H

#include <sys/types.h>

struct pexec__contain {
	int subreaper;       /* this process became one for the run */
	pid_t own_pgrp;      /* the caller's process group: never touched */
	pid_t before[64];    /* children the caller had when the run began */
	int nbefore;
	pid_t warden;
	int warden_fd;       /* -1: no warden (it could not be started) */
};

/* Makes this process a child subreaper (unless it is one already) and
 * starts the warden.  Either may be refused; the run goes on without. */
void pexec__contain_start(struct pexec__contain *c);
/* Tells the warden about a worker's process group, and that it is gone. */
void pexec__contain_add(struct pexec__contain *c, pid_t pgid);
void pexec__contain_forget(struct pexec__contain *c, pid_t pgid);
/* Reaps adopted processes that have ended; with `kill_them`, kills the
 * living ones and their groups first.  `workers` (may be NULL) are the
 * pool's own children.  Returns how many adopted processes it saw. */
int pexec__contain_sweep(struct pexec__contain *c, const pid_t *workers, unsigned nworkers,
                         int kill_them);
/* Kills what is left of what was adopted, ends the warden, and gives the
 * process back its subreaper setting. */
void pexec__contain_end(struct pexec__contain *c);

#endif
