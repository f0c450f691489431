/*
 * report.h - what the pexec command tells a person about a run: failed
 * items, the live progress line, the job log and the summary.  Part of the
 * command, not of libpexec: it prints.
 */
#ifndef PEXEC_CLI_REPORT_H
#define PEXEC_CLI_REPORT_H

#include <stdio.h>

#include "pexec.h"

struct cli_report {
	const char *prog;     /* the command's name, for messages */
	int quiet;            /* -q: only errors that end the run */
	int verbose;          /* --verbose: the summary on stderr */
	int progress;         /* --progress, and stderr is a terminal */
	int progress_asked;   /* --progress (summary on stderr even without a terminal) */
	FILE *joblog;         /* --joblog FILE */
	const char *joblog_path;
	const char *summary_path; /* --summary FILE */
	int append;           /* --resume: the job log goes on where it was */
	int drawn;            /* a progress line is on the screen */
	int write_failed;     /* the job log could not be written */
	double rate;          /* items per second, smoothed */
	double last_elapsed;
	uint64_t last_done;
	pexec_progress last;  /* the final figures */
	pexec_stats final;
};

/* Opens what was asked for; returns 0, or -1 with a message printed. */
int cli_report_open(struct cli_report *r);

/* pexec_job callbacks; ctx is the struct cli_report. */
void cli_report_failure(void *ctx, const pexec_result *result);
void cli_report_result(void *ctx, const pexec_result *result);
void cli_report_progress(void *ctx, const pexec_progress *progress);

/* Ends the run's reporting: clears the progress line, prints and writes the
 * summary.  Returns 0, or -1 if the job log or summary could not be written
 * (a message is printed). */
int cli_report_close(struct cli_report *r, pexec_code rc, int exit_status);

#endif
