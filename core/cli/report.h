/*
 * report.h - what the pexec command tells a person about a run: failed
 * items, the progress (a live line with a bar on a terminal, or plain lines),
 * the job log and the summary.  Part of the
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
	int progress;         /* --progress, and stderr is a terminal: the live line */
	int plain;            /* --progress=plain: a plain line every few seconds */
	int progress_asked;   /* --progress (summary on stderr even without a terminal) */
	const char *progress_mode; /* --progress=MODE: auto (the default) or plain */
	FILE *joblog;         /* --joblog FILE */
	pexec_buf pending;    /* its records not yet written, whole lines */
	const char *joblog_path;
	const char *summary_path; /* --summary FILE */
	int append;           /* --resume: the job log goes on where it was */
	int drawn;            /* a progress line is on the screen */
	int write_failed;     /* the job log could not be written */
	double rate;          /* items per second, smoothed */
	double last_elapsed;
	uint64_t last_done;
	double drawn_at;      /* when the live line was last drawn; -1: never */
	double plain_at;      /* when the last plain line was printed */
	uint64_t first_bytes_done; /* at the first call: a resumed run's head start */
	int seen;             /* a progress call came */
	pexec_progress last;  /* the final figures */
	pexec_stats final;
};

/* Checks --progress=MODE; returns 0, or -1 with a message printed. */
int cli_report_check_mode(struct cli_report *r);
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
