/*
 * tools.c - `pexec info` and `pexec check`: what a plugin author asks
 * of a plugin before running it.
 *
 * Both load the plugin in a throwaway child process, so that a plugin that
 * crashes while loading (a constructor, a bad relocation) or in a hook takes
 * only the child down.  The child writes its report to a pipe line by line;
 * the parent prints it and, if the child died, says where it was.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pexec.h"
#include "plugins.h"
#include "suggest.h"
#include "tools.h"

#define CHECK_TIMEOUT_S 60

struct check {
	const char *spec;       /* the plugin */
	const char *plugin_dir;
	const char *sample;     /* SAMPLES.json, or NULL */
	const char *must_fail;  /* --must-fail FILE: samples a hook must refuse, or NULL */
	const char *config;     /* --config */
	const char *format_name; /* --input-format */
	pexec_format format;    /* of the samples */
	FILE *out;              /* the report, in the child */
	int failed;
	int checks;
};

/* One line of the report: "ok    what" or "FAIL  what: why". */
static void verdict(struct check *c, int ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void verdict(struct check *c, int ok, const char *fmt, ...)
{
	va_list ap;

	c->checks++;
	if (!ok)
		c->failed++;
	fputs(ok ? "ok    " : "FAIL  ", c->out);
	va_start(ap, fmt);
	vfprintf(c->out, fmt, ap);
	va_end(ap);
	fputc('\n', c->out);
	fflush(c->out);
}

/* Whether `text` is exactly one JSON value on one line (NDJSON's rule). */
static int valid_json(const char *text, size_t len)
{
	pexec_error err;

	return pexec_json_check(text, len, &err) == 0 && !memchr(text, '\n', len);
}

static void excerpt(char *out, size_t size, const char *data, size_t len)
{
	size_t n = len < size - 4 ? len : size - 4;

	memcpy(out, data, n);
	strcpy(out + n, len > n ? "..." : "");
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
}

/* One sample that must succeed: through the hooks twice, the result one
 * valid JSON value, the same bytes each time, and read back where it can be. */
static void check_good(struct check *c, pexec_instance *in, uint64_t index, const char *data,
                       size_t len, const char *in_text)
{
	pexec_buf out, again;
	pexec_error err;
	char out_text[48];
	unsigned long long i = (unsigned long long)index;
	pexec_stage stage;
	int rt;

	pexec_buf_init(&out);
	pexec_buf_init(&again);
	stage = pexec_instance_map(in, data, len, &out, &err);
	if (stage != PEXEC_STAGE_NONE) {
		verdict(c, 0, "sample %llu: %s failed: %s", i, pexec_stage_str(stage), err.msg);
	} else if (!valid_json(out.data, out.len)) {
		excerpt(out_text, sizeof(out_text), out.data, out.len);
		verdict(c, 0, "sample %llu: the result is not one valid JSON value: %s", i,
		        out_text);
	} else if (pexec_instance_map(in, data, len, &again, &err) != PEXEC_STAGE_NONE ||
	           again.len != out.len || memcmp(again.data, out.data, out.len)) {
		verdict(c, 0, "sample %llu: a second run gave other bytes (serialize must "
		        "write a value the same way each time)", i);
	} else if ((again.len = 0,
	            rt = pexec_instance_rewrite(in, out.data, out.len, &again, &err)) < 0) {
		verdict(c, 0, "sample %llu: the result does not round-trip: %s", i, err.msg);
	} else {
		excerpt(out_text, sizeof(out_text), out.data, out.len);
		verdict(c, 1, "sample %llu: %s -> %s%s", i, in_text, out_text,
		        rt ? " (reads back and writes the same)" : "");
	}
	pexec_buf_release(&out);
	pexec_buf_release(&again);
}

/* One sample that must fail: a hook must refuse it with an error.  (A crash
 * is never a pass: it takes the check process down, and is reported so.) */
static void check_bad(struct check *c, pexec_instance *in, uint64_t index, const char *data,
                      size_t len, const char *in_text)
{
	pexec_buf out;
	pexec_error err;
	char out_text[48];
	unsigned long long i = (unsigned long long)index;
	pexec_stage stage;

	pexec_buf_init(&out);
	stage = pexec_instance_map(in, data, len, &out, &err);
	if (stage != PEXEC_STAGE_NONE) {
		verdict(c, 1, "must-fail sample %llu: %s fails in %s: %s", i, in_text,
		        pexec_stage_str(stage), err.msg);
	} else {
		excerpt(out_text, sizeof(out_text), out.data, out.len);
		verdict(c, 0, "must-fail sample %llu: %s -> %s, but it must fail", i, in_text,
		        out_text);
	}
	pexec_buf_release(&out);
}

/* Runs each item of the samples file `path` through the hooks; `bad`: the
 * samples that must fail. */
static void check_samples(struct check *c, pexec_instance *in, const char *path, int bad)
{
	const char *what = bad ? "must-fail samples" : "samples";
	pexec_splitter *s;
	pexec_error err;
	const char *data;
	size_t len;
	uint64_t index = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0) {
		verdict(c, 0, "read %s '%s': %s", what, path, strerror(errno));
		return;
	}
	s = pexec_splitter_open(fd, path, c->format);
	while (s && (rc = pexec_splitter_next(s, &data, &len, &err)) == 1) {
		char in_text[48];

		excerpt(in_text, sizeof(in_text), data, len);
		fprintf(c->out, "..    %ssample %llu: %s\n", bad ? "must-fail " : "",
		        (unsigned long long)index, in_text);
		fflush(c->out);
		if (bad)
			check_bad(c, in, index, data, len, in_text);
		else
			check_good(c, in, index, data, len, in_text);
		index++;
	}
	if (!s)
		verdict(c, 0, "read %s '%s': out of memory", what, path);
	else if (rc < 0)
		verdict(c, 0, "read %s: %s", what, err.msg);
	else if (index == 0)
		verdict(c, 0, "read %s '%s': no items", what, path);
	pexec_splitter_free(s);
	close(fd);
}

/* In the child: load, describe, setup, init, samples, fini, teardown.  Exits with 0 when
 * every check passed, 1 when some failed, 2 when the plugin did not load. */
static void __attribute__((noreturn)) check_child(struct check *c, int info)
{
	const pexec_descriptor *d;
	pexec_loaded_plugin *plugin;
	pexec_instance *in;
	pexec_error err;
	char *manifest;

	fprintf(c->out, "..    load '%s'\n", c->spec);
	fflush(c->out);
	if (pexec_plugin_load(c->spec, c->plugin_dir, &plugin, &err)) {
		char hint[128];

		fprintf(c->out, "FAIL  %s%s\n..    done\n", err.msg,
		        cli_plugin_hint(c->plugin_dir, c->spec, hint, sizeof(hint)));
		fflush(c->out);
		_exit(2);
	}
	d = pexec_plugin_descriptor(plugin);
	manifest = pexec_plugin_manifest(plugin);
	if (info) {
		fprintf(c->out, "%s\n..    done\n", manifest ? manifest : "{}");
		fflush(c->out);
		_exit(manifest ? 0 : 3);
	}
	verdict(c, 1, "loads: %s %s, plugin ABI %u, from %s", d->name,
	        d->version ? d->version : "(no version)", d->abi_version, pexec_plugin_path(plugin));
	verdict(c, d->description && *d->description, "has a one-line description");
	{
		static const char *const names[] = { "config_schema", "input_schema",
			                             "output_schema" };
		const char *texts[] = { d->config_schema, d->input_schema, d->output_schema };
		for (size_t i = 0; i < 3; i++)
			if (texts[i])
				verdict(c, valid_json(texts[i], strlen(texts[i])),
				        "its %s is valid JSON", names[i]);
	}
	if (d->setup) {
		fprintf(c->out, "..    setup\n");
		fflush(c->out);
	}
	/* As pexec would before forking its workers; this child is the one
	 * process here, so init runs where setup did, as in --serial. */
	if (pexec_plugin_setup(plugin, c->config, &err)) {
		verdict(c, 0, "%s", err.msg);
		fprintf(c->out, "..    done\n");
		fflush(c->out);
		_exit(1);
	}
	if (d->setup)
		verdict(c, 1, "setup%s%s", c->config ? " with --config " : "",
		        c->config ? c->config : "");
	if (d->init) {
		fprintf(c->out, "..    init\n");
		fflush(c->out);
	}
	if (pexec_instance_open(plugin, c->config, &in, &err)) {
		verdict(c, 0, "%s%s%s%s", err.msg, c->config ? " (with --config " : "",
		        c->config ? c->config : "", c->config ? ")" : "");
		fprintf(c->out, "..    done\n");
		fflush(c->out);
		_exit(1);
	}
	if (d->init)
		verdict(c, 1, "init%s%s", c->config ? " with --config " : "",
		        c->config ? c->config : "");
	if (c->sample)
		check_samples(c, in, c->sample, 0);
	if (c->must_fail)
		check_samples(c, in, c->must_fail, 1);
	if (d->fini)
		fprintf(c->out, "..    fini\n");
	fflush(c->out);
	pexec_instance_close(in);
	if (d->fini)
		verdict(c, 1, "fini");
	if (d->teardown) {
		fprintf(c->out, "..    teardown\n");
		fflush(c->out);
	}
	pexec_plugin_teardown(plugin);
	if (d->teardown)
		verdict(c, 1, "teardown");
	fprintf(c->out, "%d of %d checks passed\n..    done\n", c->checks - c->failed, c->checks);
	fflush(c->out);
	free(manifest);
	_exit(c->failed ? 1 : 0);
}

/* Runs the child, relays its report (with `..` progress lines dropped) and
 * says where it was if it died.  Returns the exit status. */
static int run_check(struct check *c, int info)
{
	int pipefd[2], status = 0, timed_out = 0;
	char buf[4096], last[512] = "";
	size_t have = 0;
	pid_t pid;
	time_t deadline = time(NULL) + CHECK_TIMEOUT_S;

	if (pipe2(pipefd, O_CLOEXEC)) {
		fprintf(stderr, "pexec: cannot create a pipe: %s\n", strerror(errno));
		return 3;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "pexec: cannot fork: %s\n", strerror(errno));
		return 3;
	}
	if (pid == 0) {
		close(pipefd[0]);
		dup2(2, 1); /* the plugin's own prints go to stderr */
		c->out = fdopen(pipefd[1], "w");
		if (!c->out)
			_exit(3);
		check_child(c, info);
	}
	close(pipefd[1]);
	for (;;) {
		struct pollfd pfd = { .fd = pipefd[0], .events = POLLIN };
		int left = (int)(deadline - time(NULL));
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, left * 1000) == 0) {
			timed_out = 1;
			kill(pid, SIGKILL);
			break;
		}
		n = read(pipefd[0], buf + have, sizeof(buf) - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		for (char *nl; (nl = strchr(buf, '\n'));) {
			*nl = '\0';
			if (strncmp(buf, "..    ", 6) == 0)
				snprintf(last, sizeof(last), "%.500s", buf + 6);
			else
				puts(buf);
			have -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, have + 1);
		}
		if (have == sizeof(buf) - 1) {
			fwrite(buf, 1, have, stdout);
			have = 0;
		}
	}
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out) {
		printf("FAIL  %s: no answer after %d s\n", last[0] ? last : "the plugin",
		       CHECK_TIMEOUT_S);
		return 1;
	}
	if (WIFSIGNALED(status)) {
		const char *sig = sigabbrev_np(WTERMSIG(status));
		printf("FAIL  %s: the plugin crashed (SIG%s)\n", last[0] ? last : "the plugin",
		       sig ? sig : "?");
		return info ? 2 : 1;
	}
	if (strcmp(last, "done") != 0) {
		/* The process ended without finishing: the plugin exited (or a
		 * sanitizer ended it) in the middle of a step. */
		printf("FAIL  %s: the plugin ended the process (exit status %d)\n",
		       last[0] ? last : "the plugin", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return info ? 2 : 1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
}

static const char check_usage[] =
	"usage: pexec check PLUGIN [SAMPLES.json] [--must-fail FILE] [--config JSON]\n"
	"                   [--input-format FMT]\n"
	"\n"
	"Loads PLUGIN in a throwaway process, checks its descriptor, and runs each\n"
	"sample through its hooks: each item of SAMPLES.json must give one valid\n"
	"JSON value, the same bytes each time; each item of --must-fail FILE must be\n"
	"refused by a hook with an error (a crash never passes).\n"
	"\n"
	"      --must-fail FILE      samples that a hook must refuse\n"
	"      --config JSON         configuration handed to the plugin's init\n"
	"      --input-format FMT    the samples' format: json (default), ndjson,\n"
	"                            lines or nul, as for a run\n"
	"\n"
	"Exit status: 0 every check passed, 1 some failed (or the plugin crashed),\n"
	"2 usage error or a plugin that does not load, 3 system error.\n";

/* The usage line on stderr (a usage error), or all of it on stdout (--help). */
static int tool_usage(const char *tool, int help)
{
	FILE *f = help ? stdout : stderr;

	if (!strcmp(tool, "info"))
		fputs("usage: pexec info PLUGIN\n", f);
	else if (help)
		fputs(check_usage, f);
	else
		fprintf(f, "%.*s", (int)(strstr(check_usage, "\n\n") - check_usage + 1),
		        check_usage);
	return help ? 0 : 2;
}

/* The value of option argv[*i] (moving *i past it), or NULL with a message. */
static const char *option_value(int argc, char **argv, int *i)
{
	if (*i + 1 < argc)
		return argv[++*i];
	fprintf(stderr, "pexec %s: option '%s' needs a value\n", argv[0], argv[*i]);
	return NULL;
}

static int parse_sample_format(const char *name, pexec_format *out)
{
	static const char *const names[] = { "json", "ndjson", "lines", "nul" };
	static const pexec_format formats[] = { PEXEC_FORMAT_JSON, PEXEC_FORMAT_NDJSON,
		                                PEXEC_FORMAT_LINES, PEXEC_FORMAT_NUL };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(name, names[i])) {
			*out = formats[i];
			return 0;
		}
	}
	return -1;
}

/* Where `pexec check`'s option `name` keeps its value; NULL: no such option. */
static const char **check_option(struct check *c, const char *name)
{
	if (!strcmp(name, "--config"))
		return &c->config;
	if (!strcmp(name, "--must-fail"))
		return &c->must_fail;
	if (!strcmp(name, "--input-format"))
		return &c->format_name;
	return NULL;
}

static int parse_tool_args(struct check *c, int info, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], **value = info ? NULL : check_option(c, a);

		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return tool_usage(argv[0], 1);
		if (value) {
			if (!(*value = option_value(argc, argv, &i)))
				return tool_usage(argv[0], 0);
		} else if (a[0] == '-' && a[1]) {
			static const char *const known[] = { "--config", "--must-fail",
				                             "--input-format", "--help" };
			const char *near = info ? cli_closest(a, known + 3, 1)
			                        : cli_closest(a, known, 4);

			fprintf(stderr, "pexec %s: unknown option '%s'%s%s%s\n", argv[0], a,
			        near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
			return tool_usage(argv[0], 0);
		} else if (!c->spec) {
			c->spec = a;
		} else if (!c->sample && !info) {
			c->sample = a;
		} else {
			fprintf(stderr, "pexec %s: unexpected argument '%s'\n", argv[0], a);
			return tool_usage(argv[0], 0);
		}
	}
	if (c->format_name && parse_sample_format(c->format_name, &c->format)) {
		fprintf(stderr, "pexec %s: invalid --input-format '%s': expected json, ndjson, "
		        "lines or nul\n", argv[0], c->format_name);
		return tool_usage(argv[0], 0);
	}
	return c->spec ? -1 : tool_usage(argv[0], 0);
}

int cli_tool(const char *plugin_dir, int argc, char **argv)
{
	struct check c = { .plugin_dir = plugin_dir };
	int info = !strcmp(argv[0], "info");
	int status = parse_tool_args(&c, info, argc, argv);

	return status >= 0 ? status : run_check(&c, info);
}
