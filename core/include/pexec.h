/*
 * pexec.h - libpexec, the public API for C programs that run a pool.
 *
 * Two levels:
 *  - pexec_job_run(): what the pexec command does, as one call: load a plugin,
 *    split its input files (JSON, NDJSON or text) into items, run them on a
 *    pool of forked workers, write the results.
 *  - pexec_run(): the pool alone, over items the caller supplies through a
 *    source callback, with results handed back through a sink callback.
 *
 * The library never prints and never exits; every failure comes back as a
 * pexec_code with a one-line message in a pexec_error.  Options structs are
 * valid when zeroed: all-zero means the defaults.
 */
#ifndef PEXEC_H
#define PEXEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "pexec_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PEXEC_VERSION "0.2.0"

/* Result codes: one table makes the enum and the strings.  Codes only grow at
 * the end. */
#define PEXEC_CODE_MAP(X)                                          \
	X(OK, "success")                                           \
	X(EITEM, "some items failed")                              \
	X(EUSAGE, "usage error")                                   \
	X(EINPUT, "malformed input")                               \
	X(ELOAD, "cannot load plugin")                             \
	X(EINIT, "plugin init failed")                             \
	X(ESYS, "system error")                                    \
	X(ESTOPPED, "stopped early")                               \
	X(EPIPE, "output closed by its reader")                    \
	X(ECANCELED, "cancelled")

typedef enum pexec_code {
#define PEXEC_CODE_ENUM(name, text) PEXEC_##name,
	PEXEC_CODE_MAP(PEXEC_CODE_ENUM)
#undef PEXEC_CODE_ENUM
	PEXEC_CODE_COUNT
} pexec_code;

/* A short description of a code, e.g. "malformed input". */
const char *pexec_code_str(pexec_code code);

/* The pexec command's exit status for a code: 0 success, 1 some items failed,
 * 2 usage, input, plugin load or plugin init error, 3 system error.  (The
 * command ends by SIGPIPE, as pipelines expect, on PEXEC_EPIPE.) */
int pexec_exit_status(pexec_code code);

/* ---- plugins ---- */

/* A plugin loaded into this process (dlopen()ed, its descriptor checked). */
typedef struct pexec_loaded_plugin pexec_loaded_plugin;
/* The name 0.1 gave it; kept so that programs written for 0.1 still build. */
typedef pexec_loaded_plugin pexec_loaded;

/* Loads a plugin by path (anything containing '/', or ending in ".so") or by
 * bare name, found as NAME.so or libNAME.so on the plugin search path
 * (pexec_plugin_search_path(fallback_dir)).  Checks the ABI and the required
 * hooks.  On failure returns PEXEC_ELOAD with a message that names the file,
 * or for a bare name the directories searched. */
pexec_code pexec_plugin_load(const char *spec, const char *fallback_dir,
                             pexec_loaded_plugin **out, pexec_error *err);
/* Appended in 0.2: the directories a bare plugin name is looked up in, in
 * order, colon-separated, malloc'd (NULL when out of memory): each of
 * $PEXEC_PLUGIN_PATH; the user's own, $XDG_DATA_HOME/pexec/plugins (by
 * default ~/.local/share/pexec/plugins); then `fallback_dir`, or where it is
 * NULL the installed plugin directory, pexec_plugin_dir().  Where two
 * directories hold a plugin of one name, the earlier one's is loaded. */
char *pexec_plugin_search_path(const char *fallback_dir);
/* Appended in 0.2: the plugin directory this libpexec was built for (what
 * `pkg-config --variable=plugindir pexec-plugin` names once installed). */
const char *pexec_plugin_dir(void);
const pexec_descriptor *pexec_plugin_descriptor(const pexec_loaded_plugin *plugin);
const char *pexec_plugin_path(const pexec_loaded_plugin *plugin);
void pexec_plugin_free(pexec_loaded_plugin *plugin);
/* The plugin's manifest as JSON text (see plugin.schema.json), malloc'd;
 * NULL when out of memory. */
char *pexec_plugin_manifest(const pexec_loaded_plugin *plugin);
/* Runs the plugin's setup hook (pexec_plugin.h) here, with `config` (JSON
 * text or NULL).  Calls nest: only the outermost pair reaches the plugin,
 * so pexec_run() and pexec_instance_open(), which set up themselves, may be
 * called inside a pair; a program calls it to choose the moment (before
 * forks of its own).  PEXEC_OK, or a code with "plugin 'x' setup failed:
 * ..." (then there is no teardown to call).  Appended in 0.2. */
pexec_code pexec_plugin_setup(const pexec_loaded_plugin *plugin, const char *config,
                              pexec_error *err);
/* Ends the pair: the outermost call runs the plugin's teardown hook. */
void pexec_plugin_teardown(const pexec_loaded_plugin *plugin);

/* ---- the pool ---- */

typedef enum pexec_stage {
	PEXEC_STAGE_NONE = 0,
	PEXEC_STAGE_INIT,
	PEXEC_STAGE_DESERIALIZE,
	PEXEC_STAGE_MAP,
	PEXEC_STAGE_SERIALIZE,
	PEXEC_STAGE_WORKER, /* the worker died while holding the item */
	PEXEC_STAGE_REDUCE, /* --reduce: folding the item's result failed */
	PEXEC_STAGE_COUNT
} pexec_stage;

const char *pexec_stage_str(pexec_stage stage);

/* How an item ended. */
typedef enum pexec_status {
	PEXEC_STATUS_OK = 0,
	PEXEC_STATUS_ERROR,   /* a hook returned an error */
	PEXEC_STATUS_CRASHED, /* its worker died of a signal (SIGSEGV, SIGABRT, ...) */
	PEXEC_STATUS_EXITED,  /* its worker exited */
	PEXEC_STATUS_KILLED,  /* its worker was killed with SIGKILL, e.g. by the OOM killer */
	PEXEC_STATUS_TIMEOUT, /* it ran past --timeout */
	PEXEC_STATUS_LOST,    /* its worker closed its pipe to pexec or broke the protocol */
	PEXEC_STATUS_COUNT
} pexec_status;

/* "ok", "error", "crashed", "exited", "killed", "timeout", "lost". */
const char *pexec_status_str(pexec_status status);

/* One finished item, handed to the sink.  Pointers are valid only during the
 * callback. */
typedef struct pexec_result {
	uint64_t index;      /* 0-based position in the input */
	int ok;              /* 1: data/len is the JSON text of the result */
	const char *data;
	size_t len;
	pexec_stage stage;   /* when !ok: where it failed */
	const char *message; /* when !ok: why, one line */
	unsigned attempts;   /* times the item was run (more than 1 after retries) */
	const char *input;   /* the item's own bytes (always for a failure) */
	size_t input_len;
	pexec_status status;
	int pid;             /* the worker that ran it (this process in --serial) */
	/* When it ran, in seconds since the epoch, and for how long.  Items go
	 * to a worker in chunks, and a worker times a chunk, not each item: an
	 * item's share is the chunk's time over its items, exact when the item
	 * went alone (as slow items do).  0 and -1 when unknown. */
	double started;
	double seconds;
	/* --reduce: set on the one result a reducing run hands over at its end,
	 * the fold of every successful item's result (index: the item count). */
	int reduced;
} pexec_result;

/* Gives the next item: returns 1 with *data and *len set (valid until the next
 * call), 0 at the end, or a negative pexec_code (-PEXEC_EINPUT, ...) with
 * `err` filled.  A source fed from elsewhere (a socket) may also return
 * PEXEC_NEXT_WAIT: no item yet; the run asks again once opts.source_fd is
 * readable, and goes on with its workers meanwhile.  (A source may also
 * return PEXEC_NEXT_BOUNDARY: see opts.partial_sink.) */
typedef int (*pexec_next_fn)(void *ctx, const char **data, size_t *len, pexec_error *err);
#define PEXEC_NEXT_WAIT 2
/* Takes one result; returns 0, or a negative pexec_code to stop the run.
 * Called with result == NULL when the pool is about to wait with nothing
 * else to do: the moment to flush buffered output. */
typedef int (*pexec_result_fn)(void *ctx, const pexec_result *result, pexec_error *err);

struct pexec_stats;
struct pexec_progress;

/* Takes a run of successful results, in index order, at once: result k (index
 * first + k) is the JSON text texts[k]; inputs[k] is its item's bytes when
 * result_input is set, else inputs is NULL.  Valid during the call only.
 * Returns 0, or a negative pexec_code to stop the run. */
typedef int (*pexec_batch_fn)(void *ctx, uint64_t first, uint32_t count,
                              const struct iovec *texts, const struct iovec *inputs,
                              pexec_error *err);

/*
 * Growing without breaking.  A program allocates pexec_opts, pexec_job and
 * pexec_stats itself, so their size and the offset of every member are part
 * of libpexec.so.0's ABI.  Each ends in `reserved` words: a member added in a
 * later 0.x takes the first of them (and the array shrinks by as many), so
 * sizeof and every older offset stay what a program was built with, and
 * pexec_job, which holds a pexec_opts, keeps its layout too.  A program must
 * therefore zero these structs as a whole, as any initializer does
 * (`pexec_opts o = { .jobs = 4 };`, `= { 0 }`, or memset), never fill them
 * member by member on the stack.  pexec_run() and pexec_job_run() refuse,
 * with PEXEC_EUSAGE and a message naming the word, a reserved word that is
 * not zero: a program built against a newer pexec.h than the library it
 * runs with, or one that did not zero its struct.  Structs the library
 * allocates and hands over (pexec_result, pexec_progress) only grow at the
 * end.  When the words run out, the soname changes.
 */
typedef struct pexec_opts {
	unsigned jobs;        /* workers; 0: the CPUs this process may use */
	size_t chunksize;     /* items per chunk; 0: adaptive */
	int unordered;        /* hand results over as they complete */
	int serial;           /* run in this process, no fork */
	int fail_fast;        /* stop at the first failed item */
	const char *config;   /* JSON text given to init; NULL: none */
	/* Fault isolation (pool only; --serial refuses them). */
	double timeout;       /* seconds an item may run before its worker is
	                       * killed and the item fails; 0: no limit */
	unsigned retries;     /* further tries for an item whose worker crashed,
	                       * was killed or timed out */
	uint64_t memory_limit;         /* bytes of address space per worker; 0: none */
	uint64_t max_tasks_per_worker; /* items before a worker is replaced; 0: never */
	/* A descriptor that becomes readable to stop the run at once (the CLI's
	 * signal handlers write to a pipe); 0: none.  pexec_run then returns
	 * PEXEC_ECANCELED. */
	int cancel_fd;
	/* Called about every tick_ms (default 250) while the run lasts, e.g. to
	 * draw progress; may be NULL.  `stats` counts what was handed over. */
	void (*on_tick)(void *ctx, const struct pexec_stats *stats);
	void *tick_ctx;
	unsigned tick_ms;
	/* Hand every result its item's input bytes, not only failures (costs a
	 * walk over the chunk). */
	int result_input;
	/* --serial: time each item for pexec_result.started/seconds (costs
	 * three clock reads an item).  Pools time chunks anyway. */
	int item_times;
	/* When set, a chunk whose items all succeeded goes here in one call
	 * instead of item by item to the sink (which still gets failures and
	 * the NULL flush hint): the parent's cost per result drops to filling
	 * one iovec. */
	pexec_batch_fn batch_sink;
	void *batch_ctx;
	/* Fold every successful result with the plugin's reduce hook instead of
	 * handing results over: the sink gets failures as they come and, at the
	 * end, one result with `reduced` set.  Needs a plugin with reduce, and
	 * ordered mode. */
	int reduce;
	/* Where the source returns PEXEC_NEXT_WAIT: the descriptor that becomes
	 * readable when it may have more. */
	int source_fd;

	/* ---- appended in 0.2 ---- */

	/* With `reduce`: hand the partial results to this callback, in input
	 * order, instead of folding them into one value (a program that folds
	 * further itself, as pexec-mpi's ranks do; see pexec_instance_fold).
	 * Each partial is the JSON text of the fold of `items` successful
	 * results (a worker's chunk; in --serial, one item).  Returns 0, or a
	 * negative pexec_code to stop the run.  No reduced result is handed to
	 * the sink then.  A source may return PEXEC_NEXT_BOUNDARY between two
	 * items: no chunk, and so no partial result, spans them. */
	int (*partial_sink)(void *ctx, uint32_t items, const char *data, size_t len,
	                    pexec_error *err);
	void *partial_ctx;

	/* Room to grow (see "Growing without breaking" above): must be zero. */
	uint64_t reserved[16];
} pexec_opts;

#define PEXEC_NEXT_BOUNDARY 3

typedef struct pexec_stats {
	uint64_t items;       /* items read from the source */
	uint64_t ok;
	uint64_t failed;
	uint64_t workers_started;
	uint64_t workers_lost; /* died without being asked to */
	uint64_t retried;      /* items run again after a crash, kill or timeout */
	uint64_t timed_out;    /* items that failed by --timeout */
	uint64_t by_status[PEXEC_STATUS_COUNT]; /* items by how they ended */
	/* Room to grow: counters added later take these words (by_status among
	 * them: PEXEC_STATUS_COUNT is part of this layout); zeroed. */
	uint64_t reserved[8];
} pexec_stats;

/* Runs `plugin` over every item of `next` and hands each result to `sink`, in
 * input order unless opts->unordered.  Returns PEXEC_OK when every item
 * succeeded, PEXEC_EITEM when some failed (each was handed to the sink with
 * ok == 0), or another code with `err` filled when the run itself failed.
 * `stats` may be NULL.  The plugin's setup hook runs first, in this process,
 * before any worker is forked, and its teardown last (PEXEC_EINIT when setup
 * fails). */
pexec_code pexec_run(const pexec_loaded_plugin *plugin, const pexec_opts *opts,
                     pexec_next_fn next, void *next_ctx,
                     pexec_result_fn sink, void *sink_ctx,
                     pexec_stats *stats, pexec_error *err);

/* The number of CPUs this process may actually use: its affinity mask,
 * limited by a cgroup CPU quota when there is one.  At least 1. */
unsigned pexec_cpu_count(void);

/* Appended in 0.2: the physical cores the CPUs this process may use sit on
 * (hyper-threads of one core count once), read from the sysfs CPU topology,
 * and limited by a cgroup CPU quota as pexec_cpu_count() is; 0 when the
 * topology cannot be read. */
unsigned pexec_cpu_cores(void);

/* ---- whole jobs: what the pexec command runs ---- */

typedef enum pexec_format {
	PEXEC_FORMAT_JSON = 0, /* one top-level array; its elements are the items */
	PEXEC_FORMAT_NDJSON,   /* one JSON value per line */
	/* Appended in 0.2, for input only: plain text items, each handed on as
	 * a JSON string of its bytes, which must be UTF-8. */
	PEXEC_FORMAT_LINES,    /* one item per line, without its newline and a CR
	                        * before it; an empty line is "" */
	PEXEC_FORMAT_NUL,      /* items separated by NUL bytes (find -print0) */
} pexec_format;

/* pexec_run()'s contract, with a context: the engine under a job. */
typedef pexec_code (*pexec_engine_fn)(void *ctx, const pexec_loaded_plugin *plugin,
                                      const pexec_opts *opts, pexec_next_fn next,
                                      void *next_ctx, pexec_result_fn sink, void *sink_ctx,
                                      pexec_stats *stats, pexec_error *err);

/* Appended in 0.2: pexec_run_spans()'s contract, with a context: the engine
 * under a job that goes by spans (below, "Runs by spans"). */
typedef struct pexec_spans pexec_spans;
typedef pexec_code (*pexec_span_engine_fn)(void *ctx, const pexec_loaded_plugin *plugin,
                                           const pexec_opts *opts, const pexec_spans *spans,
                                           pexec_stats *stats, pexec_error *err);

typedef struct pexec_job {
	const char *plugin;        /* path or bare name */
	const char *plugin_dir;    /* where bare names are looked up last; NULL:
	                            * the installed directory (pexec_plugin_search_path) */
	const char *input;         /* path; NULL or "-": standard input */
	const char *output;        /* path, written through a temporary file and
	                            * renamed on success; NULL: output_fd */
	int output_fd;             /* 0: standard output */
	pexec_format input_format;
	pexec_format output_format;
	int drop_null;             /* leave null results out */
	const char *errors;        /* path: one NDJSON record per failed item; NULL: none */
	pexec_opts opts;
	/* Called for every failed item, e.g. to report it; may be NULL. */
	void (*on_failure)(void *ctx, const pexec_result *result);
	void *on_failure_ctx;
	/* Called for every item as its result is written (a job log); may be NULL. */
	void (*on_result)(void *ctx, const pexec_result *result);
	void *on_result_ctx;
	/* Called a few times a second while the run lasts, and once more at the
	 * end (with done set); may be NULL. */
	void (*on_progress)(void *ctx, const struct pexec_progress *progress);
	void *on_progress_ctx;
	unsigned progress_ms;      /* 0: 250 */
	/* With `output`: continue an interrupted run of the same command (see
	 * README, "Resuming"); with retry_failed, also run its failed items again. */
	int resume;
	int retry_failed;

	/* ---- appended in 0.2 ---- */

	/* What turns the items into results: pexec_run() when NULL, or a
	 * function with its contract (pexec-mpi brings one that spreads the
	 * items over MPI ranks).  It may be called more than once for one job
	 * (--retry-failed runs a second pass). */
	pexec_engine_fn engine;
	void *engine_ctx;
	/* Several inputs, read in turn as one stream of items into one output
	 * (item indexes run on across them); when ninputs > 0 they replace
	 * `input`.  Each is a path, or "-" for standard input (once), and each
	 * is a whole input of input_format on its own (for JSON, an array
	 * each).  A malformed one is named in the message; --resume checks
	 * them all. */
	const char *const *inputs;
	size_t ninputs;
	/* Where the run goes by spans (one JSON or NDJSON input from its start,
	 * and nothing that needs each item here: no --serial, --reduce,
	 * --fail-fast, on_result, --retry-failed or resumed prefix), the engine
	 * that takes them instead of pexec_run_spans(), with engine_ctx; NULL:
	 * pexec_run_spans() where `engine` is NULL too, else item by item
	 * through `engine`. */
	pexec_span_engine_fn span_engine;

	/* Room to grow (see "Growing without breaking" above): must be zero. */
	uint64_t reserved[15];
} pexec_job;

/* Where a job stands, for progress displays. */
typedef struct pexec_progress {
	const pexec_stats *stats;
	uint64_t bytes_read;       /* of the input */
	uint64_t bytes_total;      /* the input's size; 0: unknown (a pipe) */
	uint64_t skipped;          /* items taken from a resumed run's journal */
	double elapsed;            /* seconds since the run began */
	int done;                  /* the last call */
	/* Appended in 0.2: the bytes of the input whose items are complete,
	 * resumed ones included (bytes_read also counts the items in flight).
	 * Exact where the job last noted its reading (each call) and as if
	 * items were of one size between; with unordered output, what the done
	 * items would span were they the first ones. */
	uint64_t bytes_done;
} pexec_progress;

/* Runs a whole job: loads its plugin, splits its input into items, runs them
 * through job->engine (pexec_run() by default), writes the output.  Returns
 * what pexec_run() returns, or the code of what failed around it. */
pexec_code pexec_job_run(const pexec_job *job, pexec_stats *stats, pexec_error *err);

/* ---- appended in 0.2: the parts of a job, for programs that build their own ---- */

/* Makes `buf` an empty growable buffer (for pexec_instance_map and friends,
 * whose results are appended to it); pexec_buf_release frees its bytes. */
void pexec_buf_init(pexec_buf *buf);
void pexec_buf_release(pexec_buf *buf);

/* Appends `len` bytes as a JSON string, quotes included; bytes that are not
 * UTF-8 become U+FFFD.  Returns 0, or -1 when out of memory. */
int pexec_json_quote(pexec_buf *out, const char *data, size_t len);
/* Appends the first line of a message (what comes before its first
 * newline: the rest is detail, see pexec_plugin.h) for a terminal or a log:
 * control characters and bytes that are not UTF-8 as \xNN (a tab as \t), so
 * that a plugin's message can neither start a line of its own nor move the
 * cursor.  Returns 0, or -1 when out of memory. */
int pexec_message_line(pexec_buf *out, const char *msg, size_t len);

/* Whether `text` is exactly one JSON value, by RFC 8259 and strict UTF-8
 * (whitespace around it allowed): 0, or -1 with `err` saying what is wrong
 * and where ("at byte 5: unexpected end of input"). */
int pexec_json_check(const char *text, size_t len, pexec_error *err);

/* The input splitter: cuts a JSON array or an NDJSON stream read from `fd`
 * into items, checking the syntax (RFC 8259, UTF-8) as it goes, in bounded
 * memory; or lines or NUL-separated text, each item then a JSON string
 * (PEXEC_FORMAT_LINES, PEXEC_FORMAT_NUL).  `name` is how messages call the input.  NULL when out of memory.
 * pexec_splitter_next has pexec_next_fn's contract, so a splitter can be a
 * pexec_run() source as it is: 1 and the item's exact bytes (valid until the
 * next call), 0 at the clean end, -PEXEC_EINPUT with "malformed input 'NAME'
 * at line L, column C, byte B: why", or -PEXEC_ESYS when reading fails. */
typedef struct pexec_splitter pexec_splitter;
pexec_splitter *pexec_splitter_open(int fd, const char *name, pexec_format format);
int pexec_splitter_next(void *splitter, const char **data, size_t *len, pexec_error *err);
/* Bytes of the input consumed so far. */
uint64_t pexec_splitter_offset(const pexec_splitter *splitter);
void pexec_splitter_free(pexec_splitter *splitter);

/* A plugin's hooks in this process: what `pexec check` drives, and what a
 * program needs to fold partial results itself.  Opening runs the plugin's
 * setup (pexec_plugin_setup: nested) and init here (with `config`, JSON text
 * or NULL); closing runs fini and teardown. */
typedef struct pexec_instance pexec_instance;
pexec_code pexec_instance_open(const pexec_loaded_plugin *plugin, const char *config,
                               pexec_instance **out, pexec_error *err);
/* One item (`len` bytes, NUL-terminated or not) through deserialize, map and
 * serialize: its result's JSON text is appended to `out`.  Returns
 * PEXEC_STAGE_NONE, or the stage that failed, with `err` filled and `out`
 * as it was. */
pexec_stage pexec_instance_map(pexec_instance *instance, const char *data, size_t len,
                               pexec_buf *out, pexec_error *err);
/* Reads a result back through deserialize and writes it again through
 * serialize (into `out`), where the plugin's inputs and results are values
 * of one kind (cJSON trees, or a reducing plugin's own values).  Returns 1
 * when done, 0 where it does not apply, -1 with `err` filled. */
int pexec_instance_rewrite(pexec_instance *instance, const char *text, size_t len,
                           pexec_buf *out, pexec_error *err);
/* --reduce here: folds a partial result (the JSON text of a value of the
 * plugin's kind, as partial_sink gets them) into the instance's value, which
 * starts as the plugin's reduce_initial.  PEXEC_OK, or PEXEC_ESTOPPED with
 * the reason in `err` (the plugin's message, or why the text did not read). */
pexec_code pexec_instance_fold(pexec_instance *instance, const char *text, size_t len,
                               pexec_error *err);
/* Appends the folded value's JSON text to `out`; the fold starts over. */
pexec_code pexec_instance_fold_take(pexec_instance *instance, pexec_buf *out,
                                    pexec_error *err);
void pexec_instance_close(pexec_instance *instance);

/* ---- appended in 0.2: runs by spans, for engines that spread a job ---- */

/* A run by spans never looks at an item where the input is read: the input
 * is cut into spans of whole items where items end (a pass that finds the
 * structure without checking it), each worker checks and splits its spans
 * with the strict splitter, runs their items and lays their results out as
 * they are to be written, and each span's output is handed on in one piece.
 * pexec_job_run() goes so where it can; an engine that spreads a job over
 * machines (pexec-mpi) takes the spans from the job (pexec_job.span_engine)
 * and runs them where it likes with pexec_run_spans(). */

/* One span: whole items, as they lie in the input. */
typedef struct pexec_span {
	const char *data;    /* its bytes (valid until the source's next call) */
	size_t len;
	uint64_t index;      /* its first item's index in the input: the
	                      * earlier spans' items (results and item hashes
	                      * are numbered by it) */
	uint64_t offset;     /* where they lie in the input */
	uint64_t line;       /* the line of the input it starts on, from 1, */
	uint64_t line_start; /* and that line's offset: messages name both */
	uint32_t count;      /* its items; of the input's last span, a guess
	                      * that its run corrects (see `put`) */
	int first, last;     /* the input's first span, and its last */
	uint64_t reserved[2]; /* room to grow: zero */
} pexec_span;

struct pexec_spans {
	/* Gives the next span of at most `want` items: 1, 0 at the end, a
	 * negative pexec_code with `err` filled, or PEXEC_NEXT_WAIT (none yet:
	 * asked again once opts.source_fd is readable). */
	int (*next)(void *ctx, uint32_t want, pexec_span *span, pexec_error *err);
	/* Takes a done span's output, in input order unless opts.unordered:
	 * `count` items from index `first` (the run's count, which can differ
	 * from the last span's guess), `written` results in the `len` bytes at
	 * `out` (a JSON array's each after ",\n"; NDJSON's each with its
	 * newline; nulls left out under drop_null), `hash`, where `hash` is
	 * set, the sum of their items' hashes (the job's resume journal keeps
	 * it: an engine hands it on).  Returns 0, or a negative
	 * pexec_code with `err` filled to stop the run. */
	int (*put)(void *ctx, uint64_t first, uint32_t count, const char *out, size_t len,
	           uint32_t written, uint64_t hash, pexec_error *err);
	/* Takes each failed item of a span, before the span's put (its output
	 * holds null in its place): the sink's contract. */
	pexec_result_fn failed;
	void *ctx;
	/* The input where the workers may read spans themselves (a regular
	 * file, read with pread), or -1: each span's bytes are sent with it. */
	int input_fd;
	const char *name;    /* the input in messages */
	pexec_format in_format, out_format; /* JSON or NDJSON each */
	int drop_null;
	int hash;            /* sum the items' hashes for `put` and `reserve` */
	/* Called with NULL before the run waits: the moment to flush.  Returns
	 * 0; 1 when it has read input for `next` that opts.source_fd will not
	 * show as readable (the run asks `next` again at once); or a negative
	 * pexec_code to stop the run. */
	pexec_result_fn flush;
	/* The output where the workers write spans themselves, at offsets
	 * `reserve` gives (a regular file, written with pwrite), or -1: `put`
	 * takes the bytes.  With it, `reserve` stands for `put`: it takes a
	 * span's place in the output (`len` bytes, `written` results) and
	 * says where its bytes go (*offset) and how many of its first bytes
	 * to leave out (*skip: a JSON array's first ",", which "[" stands
	 * for); *ticket names the span to `landed` (where set), called once
	 * its bytes are on the file, in whatever order spans get there.  Both
	 * return 0, or a negative pexec_code to stop the run. */
	int out_fd;
	const char *out_name; /* the output in messages */
	int (*reserve)(void *ctx, uint32_t count, size_t len, uint32_t written, uint64_t hash,
	               uint64_t *offset, size_t *skip, uint64_t *ticket, pexec_error *err);
	int (*landed)(void *ctx, uint64_t ticket, pexec_error *err);
	/* With out_fd: a descriptor each worker keeps open while it lives (fd
	 * 7), so that the next run on the file can wait for the workers of one
	 * killed at once; -1: none. */
	int keep_fd;
	/* For processes elsewhere that could write the output themselves: the
	 * path out_fd has (NULL: it has none yet), and the path of the file
	 * keep_fd is, which such a writer opens and holds an open-file-
	 * description read lock (F_OFD_SETLK) on byte 1 of while it writes. */
	const char *out_path;
	const char *keep_path;

	/* Room to grow: must be zero. */
	uint64_t reserved[8];
};

/* Runs the spans `spans` gives through the plugin's pool, as pexec_run()
 * runs items: the plugin's setup around it, its workers, faults settled
 * item by item, the results laid out and handed to `spans`.  Takes
 * pexec_run()'s options, but refuses serial, reduce and fail_fast
 * (PEXEC_EUSAGE) and does not use batch_sink, partial_sink or item_times.
 * Returns what pexec_run()
 * returns; malformed input stops it with PEXEC_EINPUT and the message of
 * the first error in input order. */
pexec_code pexec_run_spans(const pexec_loaded_plugin *plugin, const pexec_opts *opts,
                           const pexec_spans *spans, pexec_stats *stats, pexec_error *err);

#ifdef __cplusplus
}
#endif

#endif /* PEXEC_H */
