/*
 * cli.h - the pexec command's main, shared by pexec (core/cli/main.c) and
 * pexec-mpi (core/mpi/main.c), which take the same options.
 */
#ifndef PEXEC_CLI_H
#define PEXEC_CLI_H

#include "pexec.h"

/* What pexec-mpi changes: the name in messages, and the engine under the job. */
struct pexec__cli_engine {
	const char *name;
	/* Called once the options are parsed: returns -1 for this process to run
	 * the job (MPI rank 0), or the exit status to end with (the other ranks,
	 * which serve rank 0 until it lets them go). */
	int (*start)(void *ctx, const pexec_job *job);
	pexec_engine_fn run;
	pexec_span_engine_fn run_spans; /* the job's spans, where it goes by them */
	void *ctx;
	/* Called after the job with its code and exit status; returns the exit
	 * status to end with. */
	int (*finish)(void *ctx, pexec_code rc, int status);
};

/* pexec's main; engine NULL: pexec itself (with its info, check and new
 * subcommands). */
int pexec__cli_main(int argc, char **argv, const struct pexec__cli_engine *engine);

#endif /* PEXEC_CLI_H */
