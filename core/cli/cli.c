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
#include "report.h"
#include "new.h"
#include "tools.h"
#include "pexec.h"

#ifndef PEXEC_PLUGIN_DIR
#define PEXEC_PLUGIN_DIR "/usr/local/lib/pexec/plugins"
#endif

static const char usage_text[] =
	"usage: pexec --plugin PLUGIN [options] [INPUT]\n"
	"       pexec info PLUGIN                    print the plugin's manifest (JSON)\n"
	"       pexec check PLUGIN [SAMPLES.json]    check a plugin, and run samples through it\n"
	"       pexec new NAME                       write a plugin skeleton in NAME/\n"
	"\n"
	"Runs PLUGIN's map over every item of INPUT (a file, or '-' or nothing for\n"
	"standard input) on a pool of worker processes, and writes the results.\n"
	"\n"
	"  -p, --plugin PLUGIN       a plugin file (path/to/x.so) or a bare name, found as\n"
	"                            NAME.so in $PEXEC_PLUGIN_PATH, then beside pexec\n"
	"  -j, --jobs N              worker processes (default: the CPUs this process may use)\n"
	"      --chunksize N         items sent to a worker at a time (default: adaptive)\n"
	"      --unordered           write each result as it completes, not in input order\n"
	"      --serial              run in this process, without workers (for debuggers)\n"
	"      --config JSON         configuration handed to the plugin's init in each worker\n"
	"      --input-format FMT    json (one top-level array; default) or ndjson\n"
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
	"      --progress            a live progress line on stderr (a terminal), then a summary\n"
	"      --joblog FILE         one JSON record per item as it completes (NDJSON)\n"
	"      --summary FILE        the run's summary as JSON\n"
	"  -v, --verbose             print the summary on stderr\n"
	"  -q, --quiet               nothing on stderr but errors that end the run\n"
	"  -h, --help                show this help\n"
	"  -V, --version             show the version\n"
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

struct cli {
	pexec_job job;
	struct cli_report report;
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

static int parse_count(const char *opt, const char *arg, unsigned long long max,
                       unsigned long long *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (!*arg || *end || errno || v == 0 || v > max || arg[0] == '-') {
		fprintf(stderr, "%s: invalid %s '%s': expected an integer from 1 to %llu\n", prog, opt,
		        arg, max);
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

static int parse_format(const char *opt, const char *arg, pexec_format *out)
{
	if (!strcmp(arg, "json"))
		*out = PEXEC_FORMAT_JSON;
	else if (!strcmp(arg, "ndjson"))
		*out = PEXEC_FORMAT_NDJSON;
	else {
		fprintf(stderr, "%s: invalid %s '%s': expected json or ndjson\n", prog, opt, arg);
		return -1;
	}
	return 0;
}

/* Where bare plugin names are found after $PEXEC_PLUGIN_PATH: beside the
 * binary (build/pexec finds build/plugins), then the configured directory. */
static char *plugin_dirs(void)
{
	char exe[PATH_MAX], *slash, *dirs;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			if (asprintf(&dirs, "%s/plugins", exe) < 0)
				return strdup(PEXEC_PLUGIN_DIR);
			if (strcmp(dirs, PEXEC_PLUGIN_DIR) == 0)
				return dirs;
			free(dirs);
			if (asprintf(&dirs, "%s/plugins:%s", exe, PEXEC_PLUGIN_DIR) >= 0)
				return dirs;
		}
	}
	return strdup(PEXEC_PLUGIN_DIR);
}

enum {
	OPT_CHUNKSIZE = 256, OPT_UNORDERED, OPT_SERIAL, OPT_CONFIG, OPT_INPUT_FORMAT,
	OPT_OUTPUT_FORMAT, OPT_DROP_NULL, OPT_FAIL_FAST, OPT_TIMEOUT, OPT_RETRIES,
	OPT_MEMORY_LIMIT, OPT_MAX_TASKS, OPT_ERRORS, OPT_RESUME, OPT_RETRY_FAILED, OPT_PROGRESS,
	OPT_JOBLOG, OPT_SUMMARY, OPT_REDUCE,
};

static const struct option long_opts[] = {
	{ "plugin", required_argument, NULL, 'p' },
	{ "jobs", required_argument, NULL, 'j' },
	{ "chunksize", required_argument, NULL, OPT_CHUNKSIZE },
	{ "unordered", no_argument, NULL, OPT_UNORDERED },
	{ "serial", no_argument, NULL, OPT_SERIAL },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "input-format", required_argument, NULL, OPT_INPUT_FORMAT },
	{ "output-format", required_argument, NULL, OPT_OUTPUT_FORMAT },
	{ "output", required_argument, NULL, 'o' },
	{ "drop-null", no_argument, NULL, OPT_DROP_NULL },
	{ "fail-fast", no_argument, NULL, OPT_FAIL_FAST },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "retries", required_argument, NULL, OPT_RETRIES },
	{ "memory-limit", required_argument, NULL, OPT_MEMORY_LIMIT },
	{ "max-tasks-per-worker", required_argument, NULL, OPT_MAX_TASKS },
	{ "errors", required_argument, NULL, OPT_ERRORS },
	{ "resume", no_argument, NULL, OPT_RESUME },
	{ "retry-failed", no_argument, NULL, OPT_RETRY_FAILED },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "joblog", required_argument, NULL, OPT_JOBLOG },
	{ "summary", required_argument, NULL, OPT_SUMMARY },
	{ "reduce", no_argument, NULL, OPT_REDUCE },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* Returns -1 to go on, or the exit status to end with. */
static int parse_args(struct cli *cli, int argc, char **argv)
{
	pexec_job *job = &cli->job;
	unsigned long long n;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":p:j:o:qvhV", long_opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			job->plugin = optarg;
			break;
		case 'j':
			if (parse_count("--jobs", optarg, 4096, &n))
				return 2;
			job->opts.jobs = (unsigned)n;
			break;
		case OPT_CHUNKSIZE:
			if (parse_count("--chunksize", optarg, 1u << 20, &n))
				return 2;
			job->opts.chunksize = (size_t)n;
			break;
		case OPT_UNORDERED:
			job->opts.unordered = 1;
			break;
		case OPT_SERIAL:
			job->opts.serial = 1;
			break;
		case OPT_CONFIG:
			job->opts.config = optarg;
			break;
		case OPT_INPUT_FORMAT:
			if (parse_format("--input-format", optarg, &job->input_format))
				return 2;
			break;
		case OPT_OUTPUT_FORMAT:
			if (parse_format("--output-format", optarg, &job->output_format))
				return 2;
			break;
		case 'o':
			job->output = optarg;
			break;
		case OPT_DROP_NULL:
			job->drop_null = 1;
			break;
		case OPT_FAIL_FAST:
			job->opts.fail_fast = 1;
			break;
		case OPT_TIMEOUT:
			if (parse_seconds("--timeout", optarg, &job->opts.timeout))
				return 2;
			break;
		case OPT_RETRIES:
			if (!strcmp(optarg, "0"))
				job->opts.retries = 0;
			else if (parse_count("--retries", optarg, 1000, &n))
				return 2;
			else
				job->opts.retries = (unsigned)n;
			break;
		case OPT_MEMORY_LIMIT:
			if (parse_size("--memory-limit", optarg, &job->opts.memory_limit))
				return 2;
			break;
		case OPT_MAX_TASKS:
			if (parse_count("--max-tasks-per-worker", optarg, UINT64_MAX >> 1, &n))
				return 2;
			job->opts.max_tasks_per_worker = n;
			break;
		case OPT_ERRORS:
			job->errors = optarg;
			break;
		case OPT_RESUME:
			job->resume = 1;
			break;
		case OPT_RETRY_FAILED:
			job->retry_failed = 1;
			break;
		case OPT_PROGRESS:
			cli->report.progress_asked = 1;
			break;
		case OPT_JOBLOG:
			cli->report.joblog_path = optarg;
			break;
		case OPT_SUMMARY:
			cli->report.summary_path = optarg;
			break;
		case OPT_REDUCE:
			job->opts.reduce = 1;
			break;
		case 'v':
			cli->report.verbose = 1;
			break;
		case 'q':
			cli->report.quiet = 1;
			break;
		case 'h':
			if (strcmp(prog, "pexec"))
				printf("%s: pexec across MPI ranks; run it under mpirun, with pexec's "
				       "options (-j is workers per rank):\n\n", prog);
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("%s %s (plugin ABI %u)\n", prog, PEXEC_VERSION, PEXEC_ABI_VERSION);
			return 0;
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		job->input = argv[optind++];
	if (optind < argc)
		return usage_error("unexpected argument '%s' (one INPUT at most)", argv[optind]);
	if (!job->plugin)
		return usage_error("%s", "no plugin given (--plugin PLUGIN)");
	return -1;
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

int pexec__cli_main(int argc, char **argv, const struct pexec__cli_engine *engine)
{
	struct cli cli = { 0 };
	pexec_error err = { { 0 } };
	char *dirs = NULL;
	pexec_code rc;
	int status;

	if (engine) {
		prog = engine->name;
	} else if (argc > 1 && !strcmp(argv[1], "new")) {
		return cli_new(argc - 1, argv + 1);
	} else if (argc > 1 && (!strcmp(argv[1], "info") || !strcmp(argv[1], "check"))) {
		dirs = plugin_dirs();
		status = cli_tool(dirs, argc - 1, argv + 1);
		free(dirs);
		return status;
	}
	status = parse_args(&cli, argc, argv);
	if (status >= 0)
		return status;
	dirs = plugin_dirs();
	cli.job.plugin_dir = dirs;
	/* pexec-mpi: a rank other than 0 serves rank 0 from here on. */
	if (engine && (status = engine->start(engine->ctx, &cli.job)) >= 0) {
		free(dirs);
		return status;
	}
	cli.out_fd = isolate_stdout();
	if (cli.out_fd < 0) {
		fprintf(stderr, "%s: cannot use standard output: %s\n", prog, strerror(errno));
		return 3;
	}
	/* --serial runs plugin code in this process, where an item may never
	 * return: there SIGINT and SIGTERM keep their default, immediate effect.
	 * (pexec-mpi runs no plugin code here.) */
	if (!cli.job.opts.serial || engine) {
		cli.job.opts.cancel_fd = install_stop_handlers();
		if (cli.job.opts.cancel_fd < 0) {
			fprintf(stderr, "%s: cannot set up signal handling: %s\n", prog, strerror(errno));
			return 3;
		}
	}
	cli.job.output_fd = cli.out_fd;
	cli.report.append = cli.job.resume;
	cli.report.prog = prog;
	if (cli_report_open(&cli.report)) {
		free(dirs);
		return 3;
	}
	cli.job.on_failure = cli_report_failure;
	cli.job.on_failure_ctx = &cli.report;
	if (cli.report.joblog) {
		cli.job.on_result = cli_report_result;
		cli.job.on_result_ctx = &cli.report;
	}
	cli.job.on_progress = cli_report_progress;
	cli.job.on_progress_ctx = &cli.report;

	if (engine) {
		cli.job.engine = engine->run;
		cli.job.engine_ctx = engine->ctx;
	}
	rc = pexec_job_run(&cli.job, NULL, &err);
	free(dirs);
	status = rc == PEXEC_ECANCELED ? 128 + stop_signal : pexec_exit_status(rc);
	if (cli_report_close(&cli.report, rc, status) && status < 2)
		status = 3;
	if (rc == PEXEC_ECANCELED) {
		const char *name = sigabbrev_np(stop_signal);
		fprintf(stderr, "%s: stopped by SIG%s%s\n", prog, name ? name : "?",
		        partial_kept(&cli) ? "; run the same command with --resume to continue"
		                           : "");
		if (engine)
			status = engine->finish(engine->ctx, rc, status);
		return status;
	}
	if (rc != PEXEC_OK && rc != PEXEC_EITEM) {
		if (rc == PEXEC_EPIPE) {
			/* `pexec ... | head`: end quietly, the way a pipeline expects. */
			if (engine)
				engine->finish(engine->ctx, rc, status);
			signal(SIGPIPE, SIG_DFL);
			raise(SIGPIPE);
		}
		fprintf(stderr, "%s: %s\n", prog, err.msg[0] ? err.msg : pexec_code_str(rc));
		if (cli.job.output && (rc == PEXEC_ESYS || rc == PEXEC_EPIPE) && partial_kept(&cli))
			fprintf(stderr, "%s: what was done is kept: run the same command with "
			        "--resume to continue\n", prog);
	}
	if (engine)
		status = engine->finish(engine->ctx, rc, status);
	return status;
}
