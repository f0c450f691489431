/*
 * helpers.h - running the built pexec from end-to-end tests, as a user runs
 * it: argv in, bytes on stdin, and the whole stdout, stderr and exit status
 * collected.  Shared by the end-to-end test files (test_cli.c, test_faults.c,
 * test_input.c, ...).
 *
 * The test process makes itself a child subreaper, so a worker that pexec
 * left behind would become its child: after every run, having no child at
 * all is the proof that pexec reaped its pool.  Timeouts are hang guards
 * only; nothing here measures time.
 *
 * Helpers fail the running Criterion test (cr_assert) when the machine
 * refuses them something (fork, pipe, memory); they are for test code only.
 */
#ifndef PEXEC_TEST_HELPERS_H
#define PEXEC_TEST_HELPERS_H

#include <stddef.h>
#include <sys/types.h>

#ifndef PEXEC_TEST_BUILD
#error "PEXEC_TEST_BUILD must name the build directory"
#endif
#ifndef PEXEC_SRC_DIR
#error "PEXEC_SRC_DIR must name the source directory"
#endif

#define PEXEC PEXEC_TEST_BUILD "/pexec"
#define FIX(name) PEXEC_TEST_BUILD "/tests/plugins/" name ".so"

/* A run that takes longer than this has hung. */
#ifndef HANG_GUARD_S
#define HANG_GUARD_S 60
#endif

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_ARGS 24

struct proc;

struct proc_spec {
	const char *const *args;  /* pexec's arguments, NULL-terminated */
	const char *in;           /* stdin bytes; NULL: none */
	size_t in_len;
	const char *endless;      /* after `in`, written again and again while read */
	size_t out_max;           /* close stdout after this many bytes; 0: read it all */
	int kill_with_workers;    /* SIGKILL pexec once it has a child process */
	const char *stdout_path;  /* pexec's stdout goes to this file (created or
	                           * truncated), not to a pipe; r->out stays empty */
	double orphan_grace_s;    /* how long workers orphaned by a pexec that died
	                           * may take to die by themselves (PR_SET_PDEATHSIG);
	                           * 0: none may be left at all (but see
	                           * kill_with_workers, which gives a hang guard) */
	/* Called at least every 10 ms while pexec runs, with its pid and what it
	 * has written so far (r->out, r->err): the moment for a test to signal it
	 * or its workers.  May be NULL. */
	void (*watch)(void *ctx, pid_t pid, const struct proc *so_far);
	void *watch_ctx;
	/* While *hold_stderr is set (by a watch), stderr is not read: a process
	 * writing to it blocks once the pipe (then of one page) is full.  May be
	 * NULL. */
	const int *hold_stderr;
};

struct proc {
	char *out;                /* stdout, NUL-terminated */
	size_t out_len;
	char *err;                /* stderr, NUL-terminated */
	size_t err_len;
	int status;               /* wait status */
	int hung;                 /* killed by the hang guard */
	int strays;               /* children left to us after pexec ended */
	int survivors;            /* of those, still running after the grace time */
	char cmd[1024];           /* the command line, for messages */
};

double now_s(void);

/* Appends to a NUL-terminated buffer (*buf NULL and *len 0 to start). */
void append(char **buf, size_t *len, const char *data, size_t n);

/* Calls `fn` (may be NULL) for every process whose parent is `parent`;
 * returns how many. */
int for_children(pid_t parent, void (*fn)(pid_t));

/* Runs pexec as `s` says and collects what it did into `r` (released with
 * proc_release). */
void run_spec(const struct proc_spec *s, struct proc *r);
/* Runs pexec with the NULL-terminated arguments after `in` (stdin text;
 * NULL: no stdin). */
void run(struct proc *r, const char *in, ...);
void proc_release(struct proc *r);

/* "exit 3", "killed by signal 9 (Killed)". */
const char *describe(int status, char *buf, size_t size);
/* The run ended by itself, left nothing behind, and exited with `code`. */
void expect_exit(const struct proc *r, int code);
/* Whole outputs compared; a mismatch names the first differing byte rather
 * than printing megabytes. */
void expect_same_bytes(const char *what, const char *got, size_t got_len, const char *want,
                       size_t want_len);

size_t count_of(const char *hay, const char *needle);
size_t line_count(const char *text);
/* Whether `text` is one complete JSON value. */
int parses(const char *text);
/* A copy (malloc'd) of the line of stderr `err` that reports item `index`
 * failed ("pexec: item N failed in ..."), or NULL. */
char *failure_line(const char *err, size_t index);

/* ---- scratch files: a fresh directory per test ---- */

extern char scratch[64];
void scratch_make(void);
void scratch_remove(void);
/* A path in the scratch directory (static storage, `slot` 0..3). */
const char *scratch_path(int slot, const char *name);
void write_file(const char *path, const char *data, size_t len);
/* The whole file, NUL-terminated; NULL if it cannot be read. */
char *read_file(const char *path, size_t *len);
/* The names in the scratch directory, sorted, one per line. */
char *scratch_listing(void);

#endif
