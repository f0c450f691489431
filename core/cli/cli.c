/*
 * cli.c - the pexec command: parses options, calls pexec_job_run(), maps the
 * result to an exit status.  Everything else is libpexec's.  pexec-mpi runs
 * the same code with its own engine (cli.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "list.h"
#include "new.h"
#include "plugins.h"
#include "report.h"
#include "suggest.h"
#include "tools.h"
#include "pexec.h"

static const char usage_text[] =
	"usage: pexec --plugin PLUGIN [options] [INPUT...]\n"
	"       pexec info PLUGIN                    print the plugin's manifest (JSON)\n"
	"       pexec check PLUGIN [SAMPLES.json]    check a plugin, and run samples through it\n"
	"       pexec new NAME                       write a plugin skeleton in NAME/\n"
	"       pexec plugins                        list the plugins found by bare name\n"
	"       pexec list                           describe every plugin on the search path:\n"
	"                                            version, description, path, shadowing\n"
	"\n"
	"Runs PLUGIN's map over every item of INPUT (a file, or '-' or nothing for\n"
	"standard input) on a pool of worker processes, and writes the results.\n"
	"Several INPUT files are read in turn as one stream, into one output.\n"
	"\n"
	"  -p, --plugin PLUGIN       a plugin file (path/to/x.so) or a bare name, found as\n"
	"                            NAME.so in $PEXEC_PLUGIN_PATH, ~/.local/share/pexec/plugins,\n"
	"                            then the installed plugin directory (pexec list)\n"
	"  -j, --jobs N              worker processes (default: the CPUs this process may use);\n"
	"                            N%, +N or -N of those CPUs, or 'cores': one per\n"
	"                            physical core\n"
	"      --chunksize N         items sent to a worker at a time (default: adaptive)\n"
	"      --unordered           write each result as it completes, not in input order\n"
	"      --serial              run in this process, without workers (for debuggers)\n"
	"      --config JSON         configuration handed to the plugin's init in each worker\n"
	"      --input-format FMT    json (one top-level array; default), ndjson (one\n"
	"                            value per line), lines (each line one item, a JSON\n"
	"                            string) or nul (the same, items separated by NUL)\n"
	"  -0, --null                items separated by NUL bytes, as find -print0 writes\n"
	"                            them: --input-format nul\n"
	"      --output-format FMT   json (an array; default) or ndjson\n"
	"  -o, --output FILE         write to FILE, which appears only if the run completes\n"
	"      --drop-null           leave null results out of the output\n"
	"      --reduce              fold all results with the plugin's reduce hook and\n"
	"                            print the one value (failed items are left out)\n"
	"      --fail-fast           stop at the first failed item\n"
	"      --timeout SECONDS     fail an item that runs longer (its worker is killed\n"
	"                            and replaced); fractions allowed\n"
	"      --retries N           run an item again, up to N times, when its worker\n"
	"                            crashed, was killed or timed out (default 0)\n"
	"      --memory-limit SIZE   address space per worker, e.g. 512M or 2G\n"
	"      --max-tasks-per-worker N  replace each worker after N items\n"
	"      --errors FILE         one JSON record per failed item (NDJSON)\n"
	"      --resume              continue an interrupted run with -o FILE: the same\n"
	"                            command again (not for --unordered or standard input)\n"
	"      --retry-failed        with --resume: also run the items that failed again\n"
	"      --progress[=MODE]     progress on stderr, then a summary: auto (the default)\n"
	"                            draws a live line with a bar on a terminal (items\n"
	"                            done and failed, percent of the input done, rate,\n"
	"                            elapsed, ETA); plain prints those figures on a line\n"
	"                            of their own every 5 s, for logs (no control codes)\n"
	"      --joblog FILE         one JSON record per item as it completes (NDJSON)\n"
	"      --summary FILE        the run's summary as JSON\n"
	"  -v, --verbose             print the summary on stderr\n"
	"  -q, --quiet               nothing on stderr but errors that end the run\n"
	"  -h, --help                show this help\n"
	"  -V, --version             show the version\n"
	"\n"
	"pexec check PLUGIN [SAMPLES.json] runs each sample through the plugin's hooks\n"
	"in a throwaway process (pexec check --help says more):\n"
	"      --must-fail FILE      samples that a hook must refuse with an error\n"
	"      --config JSON         configuration handed to the plugin's init\n"
	"      --input-format FMT    the samples' format, as for a run (default json)\n"
	"\n"
	"A failed item's slot holds null; stderr names its index and the reason.\n"
	"A worker that crashes costs only the item it was running.\n"
	"Anything a plugin prints to stdout goes to stderr.\n"
	"\n"
	"Exit status:\n"
	"  0  every item succeeded\n"
	"  1  some items failed (or --fail-fast stopped the run)\n"
	"  2  usage error, malformed input, or a plugin that cannot load or init\n"
	"  3  system error (cannot fork, read or write)\n"
	"  130, 143  stopped by SIGINT or SIGTERM: workers are killed, standard output\n"
	"     gets the results completed in order (no closing bracket), -o FILE is not\n"
	"     written; a second signal ends pexec at once\n";

/* The command's name in messages: "pexec", or "pexec-mpi". */
static const char *prog = "pexec";

/* The only other global state: what the signal handler needs. */
static volatile sig_atomic_t stop_signal;
static int cancel_pipe[2] = { -1, -1 };

/* The first SIGINT or SIGTERM asks the run to stop (through the pipe the
 * pool polls); a second one ends pexec at once.  Workers die with it. */
static void on_stop_signal(int sig)
{
	int saved = errno;

	if (stop_signal) {
		signal(sig, SIG_DFL);
		raise(sig);
	}
	stop_signal = sig;
	if (write(cancel_pipe[1], "", 1) < 0) {
		/* The pipe is full: a stop is already pending. */
	}
	errno = saved;
}

static int install_stop_handlers(void)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };

	if (pipe2(cancel_pipe, O_CLOEXEC | O_NONBLOCK))
		return -1;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL))
		return -1;
	return cancel_pipe[0];
}

/* -j as given: a count, a share of the CPUs pexec may use, or one worker per
 * physical core.  Resolved once every option is read (-q silences the note
 * that -j cores may print). */
struct jobs_spec {
	enum { JOBS_DEFAULT, JOBS_COUNT, JOBS_PERCENT, JOBS_PLUS, JOBS_MINUS, JOBS_CORES } how;
	unsigned long long n;
	const char *text;
};

struct cli {
	pexec_job job;
	struct cli_report report;
	struct jobs_spec jobs;
	int out_fd;
};

/* One write, so that the line cannot be torn by other output (mpirun's). */
static int usage_error(const char *fmt, const char *arg)
{
	char what[512];

	snprintf(what, sizeof(what), fmt, arg);
	fprintf(stderr, "%s: %s\nTry '%s --help' for more information.\n", prog, what, prog);
	return 2;
}

/* An integer from `min` (0 or 1) to `max`. */
static int parse_count(const char *opt, const char *arg, unsigned long long min,
                       unsigned long long max, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (!*arg || *end || errno || v < min || v > max || arg[0] == '-') {
		fprintf(stderr, "%s: invalid %s '%s': expected an integer from %llu to %llu\n", prog,
		        opt, arg, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_seconds(const char *opt, const char *arg, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (!*arg || *end || errno || !(v > 0) || v > 1e9) {
		fprintf(stderr, "%s: invalid %s '%s': expected seconds greater than 0\n", prog, opt, arg);
		return -1;
	}
	*out = v;
	return 0;
}

/* "512M", "2G", "1048576": bytes, with K, M, G or T as powers of 1024. */
static int parse_size(const char *opt, const char *arg, uint64_t *out)
{
	static const char units[] = "KMGT";
	const char *u;
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (*end && end[1] == '\0' && (u = strchr(units, end[0] & ~0x20)) && *u) {
		shift = 10 * (unsigned)(u - units + 1);
		end++;
	}
	if (!*arg || arg[0] == '-' || *end || errno || v == 0 || (v << shift >> shift) != v ||
	    (v << shift) < (1u << 20)) {
		fprintf(stderr, "%s: invalid %s '%s': expected a size of at least 1M, "
		        "like 512M or 2G\n", prog, opt, arg);
		return -1;
	}
	*out = v << shift;
	return 0;
}

/* json, ndjson; for input also lines and nul (text items). */
static int parse_format(const char *opt, const char *arg, int input, pexec_format *out)
{
	static const struct {
		const char *name;
		pexec_format format;
	} names[] = {
		{ "json", PEXEC_FORMAT_JSON },
		{ "ndjson", PEXEC_FORMAT_NDJSON },
		{ "lines", PEXEC_FORMAT_LINES },
		{ "nul", PEXEC_FORMAT_NUL },
	};

	for (size_t i = 0; i < (input ? 4 : 2); i++) {
		if (!strcmp(arg, names[i].name)) {
			*out = names[i].format;
			return 0;
		}
	}
	{
		const char *const list[] = { names[0].name, names[1].name, names[2].name,
			                     names[3].name };
		const char *near = cli_closest(arg, list, input ? 4 : 2);
		char hint[64] = "";

		if (near)
			snprintf(hint, sizeof(hint), "; did you mean '%s'?", near);
		fprintf(stderr, "%s: invalid %s '%s': expected %s%s\n", prog, opt, arg,
		        input ? "json, ndjson, lines or nul" : "json or ndjson", hint);
	}
	return -1;
}

#define JOBS_MAX 4096

/* Digits only, as an unsigned number no bigger than `max`. */
static int plain_number(const char *s, size_t len, unsigned long long max,
                        unsigned long long *out)
{
	unsigned long long v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > max / 10)
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* -j N, N%, +N, -N or cores, as GNU parallel takes them. */
static int parse_jobs(const char *arg, struct jobs_spec *out)
{
	size_t len = strlen(arg);
	struct jobs_spec j = { .text = arg };
	int bad;

	if (!strcmp(arg, "cores")) {
		j.how = JOBS_CORES;
		bad = 0;
	} else if (len > 1 && arg[len - 1] == '%') {
		j.how = JOBS_PERCENT;
		bad = plain_number(arg, len - 1, 100000, &j.n) || j.n == 0;
	} else if (arg[0] == '+' || arg[0] == '-') {
		j.how = arg[0] == '+' ? JOBS_PLUS : JOBS_MINUS;
		bad = plain_number(arg + 1, len - 1, JOBS_MAX, &j.n);
	} else {
		j.how = JOBS_COUNT;
		bad = plain_number(arg, len, JOBS_MAX, &j.n) || j.n == 0;
	}
	if (bad) {
		const char *const cores[] = { "cores" };
		fprintf(stderr, "%s: invalid --jobs '%s': expected an integer from 1 to %d, N%% or "
		        "+N or -N of the CPUs pexec may use, or 'cores'%s\n", prog, arg, JOBS_MAX,
		        cli_closest(arg, cores, 1) ? "; did you mean 'cores'?" : "");
		return -1;
	}
	*out = j;
	return 0;
}

/* The worker count -j asks for, now that -q is known.  Returns -1 to go on,
 * or the exit status to end with. */
static int resolve_jobs(struct cli *cli)
{
	const struct jobs_spec *j = &cli->jobs;
	unsigned long long cpus = pexec_cpu_count(), n = 0;

	switch (j->how) {
	case JOBS_DEFAULT:
		return -1;
	case JOBS_COUNT:
		n = j->n;
		break;
	case JOBS_PERCENT:
		n = cpus * j->n / 100;
		break;
	case JOBS_PLUS:
		n = cpus + j->n;
		break;
	case JOBS_MINUS:
		n = j->n < cpus ? cpus - j->n : 1;
		break;
	case JOBS_CORES:
		n = pexec_cpu_cores();
		if (n == 0) {
			n = cpus;
			if (!cli->report.quiet)
				fprintf(stderr, "%s: -j cores: cannot read the CPU topology in "
				        "/sys/devices/system/cpu; one worker per CPU instead (%llu)\n",
				        prog, n);
		}
		break;
	}
	if (n == 0)
		n = 1;
	if (n > JOBS_MAX) {
		fprintf(stderr, "%s: invalid --jobs '%s': that is %llu workers, more than %d\n",
		        prog, j->text, n, JOBS_MAX);
		return 2;
	}
	cli->job.opts.jobs = (unsigned)n;
	return -1;
}

enum arg_kind {
	ARG_FLAG,    /* no value: sets an int to 1 */
	ARG_TEXT,    /* keeps the value as given */
	ARG_UINT,    /* an integer from 1 to max, into an unsigned */
	ARG_UINT0,   /* the same, or 0 */
	ARG_SIZE,    /* an integer from 1 to max, into a size_t */
	ARG_U64,     /* an integer from 1 to max, into a uint64_t */
	ARG_SECONDS, /* seconds greater than 0, into a double */
	ARG_BYTES,   /* a size such as 512M, into a uint64_t */
	ARG_IN_FORMAT,  /* json, ndjson, lines or nul, into a pexec_format */
	ARG_OUT_FORMAT, /* json or ndjson */
	ARG_NUL,     /* no value: the input format is nul */
	ARG_JOBS,    /* -j's forms, into a struct jobs_spec */
	ARG_PROGRESS, /* an optional auto or plain, into the struct cli_report */
	ARG_HELP,
	ARG_VERSION,
};

/* One option of the command: its names, what its value is, and where it
 * goes.  getopt's table and every check are made from these. */
struct cli_option {
	const char *name;
	char short_name;        /* 0: a long name only */
	enum arg_kind kind;
	void *value;
	unsigned long long max; /* for the integer kinds */
};

#define MAX_OPTIONS 40

/* The command's options, pointing into `cli`; returns how many. */
static size_t cli_options(struct cli *cli, struct cli_option *out)
{
	pexec_job *job = &cli->job;
	pexec_opts *o = &job->opts;
	struct cli_report *r = &cli->report;
	const struct cli_option table[] = {
		{ "plugin", 'p', ARG_TEXT, &job->plugin, 0 },
		{ "jobs", 'j', ARG_JOBS, &cli->jobs, 0 },
		{ "chunksize", 0, ARG_SIZE, &o->chunksize, 1u << 20 },
		{ "unordered", 0, ARG_FLAG, &o->unordered, 0 },
		{ "serial", 0, ARG_FLAG, &o->serial, 0 },
		{ "config", 0, ARG_TEXT, &o->config, 0 },
		{ "input-format", 0, ARG_IN_FORMAT, &job->input_format, 0 },
		{ "null", '0', ARG_NUL, &job->input_format, 0 },
		{ "output-format", 0, ARG_OUT_FORMAT, &job->output_format, 0 },
		{ "output", 'o', ARG_TEXT, &job->output, 0 },
		{ "drop-null", 0, ARG_FLAG, &job->drop_null, 0 },
		{ "fail-fast", 0, ARG_FLAG, &o->fail_fast, 0 },
		{ "timeout", 0, ARG_SECONDS, &o->timeout, 0 },
		{ "retries", 0, ARG_UINT0, &o->retries, 1000 },
		{ "memory-limit", 0, ARG_BYTES, &o->memory_limit, 0 },
		{ "max-tasks-per-worker", 0, ARG_U64, &o->max_tasks_per_worker, UINT64_MAX >> 1 },
		{ "errors", 0, ARG_TEXT, &job->errors, 0 },
		{ "resume", 0, ARG_FLAG, &job->resume, 0 },
		{ "retry-failed", 0, ARG_FLAG, &job->retry_failed, 0 },
		{ "progress", 0, ARG_PROGRESS, r, 0 },
		{ "joblog", 0, ARG_TEXT, &r->joblog_path, 0 },
		{ "summary", 0, ARG_TEXT, &r->summary_path, 0 },
		{ "reduce", 0, ARG_FLAG, &o->reduce, 0 },
		{ "verbose", 'v', ARG_FLAG, &r->verbose, 0 },
		{ "quiet", 'q', ARG_FLAG, &r->quiet, 0 },
		{ "help", 'h', ARG_HELP, NULL, 0 },
		{ "version", 'V', ARG_VERSION, NULL, 0 },
	};
	_Static_assert(sizeof(table) / sizeof(table[0]) <= MAX_OPTIONS, "MAX_OPTIONS");

	memcpy(out, table, sizeof(table));
	return sizeof(table) / sizeof(table[0]);
}

static int takes_value(enum arg_kind kind)
{
	return kind != ARG_FLAG && kind != ARG_NUL && kind != ARG_HELP && kind != ARG_VERSION &&
	       kind != ARG_PROGRESS;
}

/* Checks and stores one option's value.  Returns -1 to go on, or the exit
 * status to end with. */
static int apply_option(const struct cli_option *opt, const char *arg)
{
	char name[64];
	unsigned long long n;

	snprintf(name, sizeof(name), "--%s", opt->name);
	switch (opt->kind) {
	case ARG_FLAG:
		*(int *)opt->value = 1;
		break;
	case ARG_TEXT:
		*(const char **)opt->value = arg;
		break;
	case ARG_UINT0:
	case ARG_UINT:
		if (parse_count(name, arg, opt->kind == ARG_UINT0 ? 0 : 1, opt->max, &n))
			return 2;
		*(unsigned *)opt->value = (unsigned)n;
		break;
	case ARG_SIZE:
		if (parse_count(name, arg, 1, opt->max, &n))
			return 2;
		*(size_t *)opt->value = (size_t)n;
		break;
	case ARG_U64:
		if (parse_count(name, arg, 1, opt->max, &n))
			return 2;
		*(uint64_t *)opt->value = n;
		break;
	case ARG_SECONDS:
		if (parse_seconds(name, arg, opt->value))
			return 2;
		break;
	case ARG_BYTES:
		if (parse_size(name, arg, opt->value))
			return 2;
		break;
	case ARG_IN_FORMAT:
	case ARG_OUT_FORMAT:
		if (parse_format(name, arg, opt->kind == ARG_IN_FORMAT, opt->value))
			return 2;
		break;
	case ARG_NUL:
		*(pexec_format *)opt->value = PEXEC_FORMAT_NUL;
		break;
	case ARG_JOBS:
		if (parse_jobs(arg, opt->value))
			return 2;
		break;
	case ARG_PROGRESS: {
		struct cli_report *r = opt->value;
		r->progress_asked = 1;
		r->progress_mode = arg;
		r->prog = prog;
		if (cli_report_check_mode(r))
			return 2;
		break;
	}
	case ARG_HELP:
		if (strcmp(prog, "pexec"))
			printf("%s: pexec across MPI ranks; run it under mpirun, with pexec's "
			       "options (-j is workers per rank):\n\n", prog);
		fputs(usage_text, stdout);
		return 0;
	case ARG_VERSION:
		printf("%s %s (plugin ABI %u)\n", prog, PEXEC_VERSION, PEXEC_ABI_VERSION);
		return 0;
	}
	return -1;
}

/* getopt's view of the options: long ones give 256 + their index, short
 * ones their letter. */
static void getopt_tables(const struct cli_option *opts, size_t n, struct option *longs,
                          char *shorts)
{
	size_t at = 0;

	shorts[at++] = ':';
	for (size_t i = 0; i < n; i++) {
		longs[i] = (struct option){ opts[i].name,
			                    opts[i].kind == ARG_PROGRESS ? optional_argument
			                    : takes_value(opts[i].kind) ? required_argument
			                                                : no_argument,
			                    NULL, 256 + (int)i };
		if (opts[i].short_name) {
			shorts[at++] = opts[i].short_name;
			if (takes_value(opts[i].kind))
				shorts[at++] = ':';
		}
	}
	longs[n] = (struct option){ 0 };
	shorts[at] = '\0';
}

/* The option getopt returned `c` for, or NULL. */
static const struct cli_option *option_of(const struct cli_option *opts, size_t n, int c)
{
	if (c >= 256 && (size_t)(c - 256) < n)
		return &opts[c - 256];
	for (size_t i = 0; i < n; i++)
		if (opts[i].short_name && opts[i].short_name == c)
			return &opts[i];
	return NULL;
}

/* An option getopt did not take: a long one that is misspelt ("did you
 * mean ...?") or the start of several, or an unknown letter. */
static int unknown_option(const struct cli_option *opts, size_t n, const char *arg)
{
	const char *names[MAX_OPTIONS], *near;
	char word[80], msg[512];
	size_t len, at = 0, matches = 0;

	if (strncmp(arg, "--", 2) || !arg[2])
		return usage_error("unknown option '%s'", arg);
	len = strcspn(arg + 2, "=");
	snprintf(word, sizeof(word), "%.*s", (int)len, arg + 2);
	for (size_t i = 0; i < n; i++) {
		names[i] = opts[i].name;
		matches += !strncmp(opts[i].name, word, len);
		if (!strcmp(opts[i].name, word) && arg[2 + len] == '=')
			return usage_error("option '--%s' takes no value", word);
	}
	if (matches > 1) {
		/* getopt takes a unique start of a name: this one starts several. */
		at = (size_t)snprintf(msg, sizeof(msg), "option '--%s' is ambiguous; did you mean",
		                      word);
		for (size_t i = 0, k = 0; i < n && at < sizeof(msg); i++) {
			if (strncmp(opts[i].name, word, len))
				continue;
			k++;
			at += (size_t)snprintf(msg + at, sizeof(msg) - at, "%s'--%s'",
			                       k == 1 ? " " : k == matches ? " or " : ", ",
			                       opts[i].name);
		}
		if (at < sizeof(msg))
			snprintf(msg + at, sizeof(msg) - at, "?");
		return usage_error("%s", msg);
	}
	near = cli_closest(word, names, n);
	if (!near)
		return usage_error("unknown option '%s'", arg);
	snprintf(msg, sizeof(msg), "unknown option '%s'; did you mean '--%s'?", arg, near);
	return usage_error("%s", msg);
}

/* No --plugin: if the first word is close to a subcommand, that was meant. */
static int no_plugin(const char *first)
{
	static const char *const subcommands[] = { "info", "check", "new", "plugins", "list" };
	const char *near = first ? cli_closest(first, subcommands, 5) : NULL;
	char msg[256];

	if (!near)
		return usage_error("%s", "no plugin given (--plugin PLUGIN)");
	snprintf(msg, sizeof(msg), "no plugin given (--plugin PLUGIN); did you mean 'pexec %s'?",
	         near);
	return usage_error("%s", msg);
}

/* Returns -1 to go on, or the exit status to end with. */
static int parse_args(struct cli *cli, int argc, char **argv)
{
	struct cli_option opts[MAX_OPTIONS];
	struct option longs[MAX_OPTIONS + 1];
	char shorts[2 * MAX_OPTIONS + 2];
	size_t n = cli_options(cli, opts);
	int c, status;

	getopt_tables(opts, n, longs, shorts);
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const struct cli_option *opt = option_of(opts, n, c);

		if (c == ':')
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		if (!opt)
			return unknown_option(opts, n, argv[optind - 1]);
		if ((status = apply_option(opt, optarg)) >= 0)
			return status;
	}
	/* One INPUT is the job's input; several are read in turn. */
	if (argc - optind == 1) {
		cli->job.input = argv[optind];
	} else if (argc - optind > 1) {
		cli->job.inputs = (const char *const *)argv + optind;
		cli->job.ninputs = (size_t)(argc - optind);
	}
	if (!cli->job.plugin)
		return no_plugin(optind < argc ? argv[optind] : NULL);
	return resolve_jobs(cli);
}

/* Keeps pexec's output to itself: results go to a private copy of stdout, and
 * fd 1 becomes stderr, so a plugin's printf (in --serial mode, or from a
 * constructor) cannot land in the middle of the results. */
static int isolate_stdout(void)
{
	int fd = fcntl(1, F_DUPFD_CLOEXEC, 3);

	if (fd < 0)
		return -1;
	fflush(stdout);
	if (dup2(2, 1) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Whether an interrupted run left its partial output for --resume. */
static int partial_kept(const struct cli *cli)
{
	char path[PATH_MAX];

	if (!cli->job.output ||
	    snprintf(path, sizeof(path), "%s.pexec-partial", cli->job.output) >= (int)sizeof(path))
		return 0;
	return access(path, F_OK) == 0;
}

/* pexec's own subcommands (new, info, check, plugins, list); -1 when argv
 * names none. */
static int run_subcommand(int argc, char **argv)
{
	if (argc < 2)
		return -1;
	if (!strcmp(argv[1], "new"))
		return cli_new(argc - 1, argv + 1);
	/* Plugins are looked up on libpexec's search path (NULL: its own). */
	if (!strcmp(argv[1], "list"))
		return cli_list(NULL, argc - 1, argv + 1);
	if (strcmp(argv[1], "info") && strcmp(argv[1], "check") && strcmp(argv[1], "plugins"))
		return -1;
	return !strcmp(argv[1], "plugins") ? cli_plugins(NULL, argc - 1, argv + 1)
	                                   : cli_tool(NULL, argc - 1, argv + 1);
}

/* Between the options and the run: stdout kept for the results, the stop
 * signals, the reports and the job's callbacks.  Returns -1 to go on, or the
 * exit status to end with. */
static int prepare_run(struct cli *cli, const struct pexec__cli_engine *engine)
{
	cli->out_fd = isolate_stdout();
	if (cli->out_fd < 0) {
		fprintf(stderr, "%s: cannot use standard output: %s\n", prog, strerror(errno));
		return 3;
	}
	/* --serial runs plugin code in this process, where an item may never
	 * return: there SIGINT and SIGTERM keep their default, immediate effect.
	 * (pexec-mpi runs no plugin code here.) */
	if (!cli->job.opts.serial || engine) {
		cli->job.opts.cancel_fd = install_stop_handlers();
		if (cli->job.opts.cancel_fd < 0) {
			fprintf(stderr, "%s: cannot set up signal handling: %s\n", prog,
			        strerror(errno));
			return 3;
		}
	}
	cli->job.output_fd = cli->out_fd;
	cli->report.append = cli->job.resume;
	cli->report.prog = prog;
	if (cli_report_open(&cli->report))
		return 3;
	cli->job.on_failure = cli_report_failure;
	cli->job.on_failure_ctx = &cli->report;
	if (cli->report.joblog) {
		cli->job.on_result = cli_report_result;
		cli->job.on_result_ctx = &cli->report;
	}
	cli->job.on_progress = cli_report_progress;
	cli->job.on_progress_ctx = &cli->report;
	if (engine) {
		cli->job.engine = engine->run;
		cli->job.span_engine = engine->run_spans;
		cli->job.engine_ctx = engine->ctx;
	}
	return -1;
}

/* Says how the run ended, where something is left to say, and returns the
 * exit status. */
static int finish_run(struct cli *cli, pexec_code rc, const pexec_error *err,
                      const struct pexec__cli_engine *engine)
{
	int status = rc == PEXEC_ECANCELED ? 128 + stop_signal : pexec_exit_status(rc);

	if (cli_report_close(&cli->report, rc, status) && status < 2)
		status = 3;
	if (rc == PEXEC_EITEM && cli->report.final.failed == 0 && err->msg[0] &&
	    !cli->report.quiet) {
		/* Exit 1 without a failed item to show for it (--resume of a run
		 * that completed with failures): the job says why. */
		fprintf(stderr, "%s: %s\n", prog, err->msg);
	} else if (rc == PEXEC_ECANCELED) {
		const char *name = sigabbrev_np(stop_signal);
		fprintf(stderr, "%s: stopped by SIG%s%s\n", prog, name ? name : "?",
		        partial_kept(cli) ? "; run the same command with --resume to continue"
		                          : "");
	} else if (rc != PEXEC_OK && rc != PEXEC_EITEM) {
		if (rc == PEXEC_EPIPE) {
			/* `pexec ... | head`: end quietly, the way a pipeline expects. */
			if (engine)
				engine->finish(engine->ctx, rc, status);
			signal(SIGPIPE, SIG_DFL);
			raise(SIGPIPE);
		}
		char hint[128] = "";
		const char *msg = err->msg[0] ? err->msg : pexec_code_str(rc);
		pexec_buf line;

		if (rc == PEXEC_ELOAD)
			cli_plugin_hint(NULL, cli->job.plugin, hint, sizeof(hint));
		/* It may hold a plugin's words (init's message): one line, escaped. */
		pexec_buf_init(&line);
		if (pexec_message_line(&line, msg, strlen(msg)) == 0 &&
		    pexec_buf_append(&line, "", 1) == 0)
			fprintf(stderr, "%s: %s%s\n", prog, line.data, hint);
		pexec_buf_release(&line);
		if (cli->job.output && (rc == PEXEC_ESYS || rc == PEXEC_EPIPE) && partial_kept(cli))
			fprintf(stderr, "%s: what was done is kept: run the same command with "
			        "--resume to continue\n", prog);
	}
	if (engine)
		status = engine->finish(engine->ctx, rc, status);
	return status;
}

int pexec__cli_main(int argc, char **argv, const struct pexec__cli_engine *engine)
{
	struct cli cli = { 0 };
	pexec_error err = { { 0 } };
	pexec_code rc;
	int status;

	if (engine)
		prog = engine->name;
	else if ((status = run_subcommand(argc, argv)) >= 0)
		return status;
	status = parse_args(&cli, argc, argv);
	if (status >= 0)
		return status;
	/* pexec-mpi: a rank other than 0 serves rank 0 from here on. */
	if (engine && (status = engine->start(engine->ctx, &cli.job)) >= 0)
		goto out;
	status = prepare_run(&cli, engine);
	if (status >= 0)
		goto out;
	rc = pexec_job_run(&cli.job, NULL, &err);
	status = finish_run(&cli, rc, &err, engine);
out:
	return status;
}
