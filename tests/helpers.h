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
#include <stdint.h>
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
#define MAX_ARGS 40

struct proc;

struct proc_spec {
	const char *program;      /* what runs (looked up in PATH); NULL: PEXEC */
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
/* The same for pexec's workers: its children but its warden (the process a
 * pool starts to end the workers' process groups if pexec is killed). */
int for_workers(pid_t pexec, void (*fn)(pid_t));

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
/* The same, without the check for processes left behind. */
void expect_exit_status(const struct proc *r, int code);
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

/* ---- resumable runs (helpers_resume.c): test_resume.c, test_retry.c, test_mpi.c ---- */

struct cJSON;

/* A NULL-terminated argument list, as a literal. */
#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

struct args {
	const char *v[MAX_ARGS + 1];
	size_t n;
};
/* Appends a NULL-terminated list (NULL: nothing). */
void args_add(struct args *a, const char *const *list);

/* The files of one run, all in the scratch directory. */
struct files {
	char in[256], out[256], partial[300], journal[300], ref[256];
	char summary[256], joblog[256], errors[256];
};
void files_init(struct files *f, const char *in_name);
int exists(const char *path);
/* -1 if it cannot be stat()ed. */
long long file_size(const char *path);
/* Items for the sleep plugin: item i sleeps `slow_s` for i < n_slow, else
 * `fast_s`, plus i microseconds; every `bad_every`th item (0: none) is the
 * string "bad", which the plugin fails. */
void write_sleep_input(const char *path, size_t n, size_t n_slow, double slow_s,
                       double fast_s, size_t bad_every, int ndjson);

/* The journal as a resume would read it. */
struct jstate {
	int lines;            /* whole lines; -1: no journal */
	int checkpoints;
	uint64_t items, written, bytes;  /* the last checkpoint */
	int complete;
	int failed;           /* {"failed":N} lines */
};
uint64_t u64_of(const struct cJSON *obj, const char *key);
/* Reads only whole lines: the journal may be growing as it is read. */
void journal_state(const char *path, struct jstate *s);

/* Signals pexec once its journal's last checkpoint covers at least
 * `min_items` items (and there are `min_checkpoints` of them), and its partial
 * output holds more than `min_partial` bytes and, with `uncovered`, more than
 * that checkpoint covers. */
struct stopper {
	const struct files *f;
	int sig;
	uint64_t min_items;
	int min_checkpoints;
	int min_lines;        /* whole lines in the journal */
	long long min_partial;
	int uncovered;
	int sent;
	struct jstate seen;   /* the journal when the signal went */
};
/* Runs pexec; with a stopper, signalled as it says. */
void run_args(struct proc *r, const struct args *a, struct stopper *stop);
/* The run was stopped by st->sig and left a resumable state. */
void expect_interrupted(const struct proc *r, const struct stopper *st, const char *what);
void expect_same_file(const char *what, const char *path, const char *want_path);
/* The uninterrupted run of `opts` over f->in into f->ref. */
void reference_run(const struct files *f, const char *const *opts, int want_exit);
/* pexec -p sleep -j 2 OPTS -o OUT [--resume ...] IN */
void command(struct args *a, const struct files *f, const char *const *opts,
             const char *const *more);

/* What a refused resume must not touch. */
struct snapshot {
	char *listing, *partial, *journal, *out;
	size_t partial_len, journal_len, out_len;
};
void snapshot_take(struct snapshot *s, const struct files *f);
void snapshot_release(struct snapshot *s);
/* Nothing in the scratch directory changed since `was`. */
void expect_unchanged(const struct snapshot *was, const struct files *f, const char *what);
/* Leaves f->out's partial output and journal as a SIGTERM leaves them, with
 * a checkpoint covering some items. */
void make_interrupted(const struct files *f, const char *const *opts);

/* ---- workers seen from outside: shared by test_faults.c and test_signals.c ---- */

/* CPU time (user + system, in clock ticks) of `pid` if its parent is
 * `parent`; -1 otherwise. */
long cpu_ticks_of_child(pid_t pid, pid_t parent);
/* for_children() callbacks take only a pid; these carry what they find:
 * the last child seen, and the least CPU time among the children of
 * `seen_parent`. */
extern pid_t seen_parent, seen_child;
extern long seen_least_ticks;
void note_child(pid_t pid);

/* ---- shared by several test files ---- */

/* Runs a shell command line (printf-style; stderr joins stdout) and fails
 * the test, naming `what` and showing all it printed, unless it exits 0.
 * Returns what it printed (malloc'd). */
char *shell_ok(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The sanitizer build (make SANITIZE=1): some faults look different from
 * outside there, and pexec-mpi's ranks need LeakSanitizer's slow unwinder. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* The lines of `text`, each without a trailing ',' (so that the elements of
 * a JSON array compare whatever their position), sorted.  lines[0] is the
 * block that holds them all: free(lines[0]) then free(lines). */
char **sorted_lines(const char *text, size_t *n);
/* The same lines in any order (sorted_lines); a mismatch names the first. */
void expect_same_line_set(const char *what, const char *got, const char *want);
/* Writes N files in the scratch directory where file i holds "alpha" i
 * times, "beta" once and "Gamma" twice; returns the JSON array of their
 * paths (malloc'd). */
char *word_files(int n);

#endif
