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

#include "loader.h"
#include "tools.h"
#include "split/split.h"
#include "util.h"
#include "worker.h"

#define CHECK_TIMEOUT_S 60

struct check {
	const char *spec;       /* the plugin */
	const char *plugin_dir;
	const char *sample;     /* SAMPLE.json, or NULL */
	const char *config;     /* --config */
	pexec_format format;    /* of the sample */
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

/* Whether `text` is exactly one JSON value, by pexec's own strict splitter. */
static int valid_json(const char *text, size_t len)
{
	pexec__splitter *s;
	pexec_error err;
	const char *item;
	size_t item_len;
	int ok;

	s = pexec__split_mem(text, len, "result", PEXEC_FORMAT_NDJSON);
	if (!s)
		return 0;
	ok = pexec__split_next(s, &item, &item_len, &err) == 1 && item_len <= len &&
	     pexec__split_next(s, &item, &item_len, &err) == 0 && !memchr(text, '\n', len);
	pexec__split_free(s);
	return ok;
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

/* Reads a result back and writes it again: the bytes must be the same.
 * Only where results and inputs are values of one kind (cJSON trees, or a
 * reducing plugin's own values, which cross back through deserialize);
 * elsewhere deserialize reads another kind of value.  Returns 1 if checked,
 * 0 if not applicable, -1 with `err` filled if it failed. */
static int round_trip(const pexec_descriptor *d, void *state, const pexec_buf *out,
                      pexec_buf *again, pexec_error *err)
{
	void *v = NULL;
	int rc;

	if (!d->deserialize != !d->serialize || (d->deserialize && !d->reduce))
		return 0;
	again->len = 0;
	if (d->deserialize) {
		if (d->deserialize(state, out->data, out->len, &v, err)) {
			pexec_error_set(err, "deserialize refused it: %s", err->msg);
			return -1;
		}
	} else if (!(v = cJSON_ParseWithLength(out->data, out->len))) {
		pexec_error_set(err, "cJSON cannot read it back");
		return -1;
	}
	rc = pexec__fold_finish(d, state, &v, again, err);
	if (rc)
		return -1;
	if (again->len != out->len || memcmp(again->data, out->data, out->len)) {
		pexec_error_set(err, "written again it reads %.*s",
		                (int)(again->len < 60 ? again->len : 60), again->data);
		return -1;
	}
	return 1;
}

/* Runs each sample item through the hooks, twice. */
static void check_samples(struct check *c, const pexec_descriptor *d, void *state)
{
	pexec__splitter *s;
	pexec_buf item, out, again;
	pexec_error err;
	const char *data;
	size_t len;
	uint64_t index = 0;
	int fd = open(c->sample, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0) {
		verdict(c, 0, "read samples '%s': %s", c->sample, strerror(errno));
		return;
	}
	s = pexec__split_fd(fd, c->sample, c->format);
	pexec__buf_init(&item);
	pexec__buf_init(&out);
	pexec__buf_init(&again);
	while (s && (rc = pexec__split_next(s, &data, &len, &err)) == 1) {
		char in_text[48], out_text[48];
		pexec_stage stage;
		int rt;

		if (pexec_buf_reserve(&item, len + 1))
			break;
		memcpy(item.data, data, len);
		item.data[len] = '\0';
		excerpt(in_text, sizeof(in_text), data, len);
		fprintf(c->out, "..    sample %llu: %s\n", (unsigned long long)index, in_text);
		fflush(c->out);
		out.len = again.len = 0;
		stage = pexec__item_run(d, state, item.data, len, &out, &err, NULL);
		if (stage != PEXEC_STAGE_NONE) {
			verdict(c, 0, "sample %llu: %s failed: %s", (unsigned long long)index,
			        pexec_stage_str(stage), err.msg);
		} else if (!valid_json(out.data, out.len)) {
			excerpt(out_text, sizeof(out_text), out.data, out.len);
			verdict(c, 0, "sample %llu: the result is not one valid JSON value: %s",
			        (unsigned long long)index, out_text);
		} else if (pexec__item_run(d, state, item.data, len, &again, &err, NULL) !=
		                   PEXEC_STAGE_NONE ||
		           again.len != out.len || memcmp(again.data, out.data, out.len)) {
			verdict(c, 0, "sample %llu: a second run gave other bytes (serialize must "
			        "write a value the same way each time)", (unsigned long long)index);
		} else if ((rt = round_trip(d, state, &out, &again, &err)) < 0) {
			verdict(c, 0, "sample %llu: the result does not round-trip: %s",
			        (unsigned long long)index, err.msg);
		} else {
			excerpt(out_text, sizeof(out_text), out.data, out.len);
			verdict(c, 1, "sample %llu: %s -> %s%s", (unsigned long long)index, in_text,
			        out_text, rt ? " (reads back and writes the same)" : "");
		}
		index++;
	}
	if (!s)
		verdict(c, 0, "read samples '%s': out of memory", c->sample);
	else if (rc < 0)
		verdict(c, 0, "read samples: %s", err.msg);
	else if (index == 0)
		verdict(c, 0, "read samples '%s': no items", c->sample);
	pexec__split_free(s);
	pexec__buf_release(&item);
	pexec__buf_release(&out);
	pexec__buf_release(&again);
	close(fd);
}

/* In the child: load, describe, setup, init, samples, fini, teardown.  Exits with 0 when
 * every check passed, 1 when some failed, 2 when the plugin did not load. */
static void __attribute__((noreturn)) check_child(struct check *c, int info)
{
	const pexec_descriptor *d;
	pexec_loaded *plugin;
	pexec_error err;
	void *state = NULL;
	char *manifest;

	fprintf(c->out, "..    load '%s'\n", c->spec);
	fflush(c->out);
	if (pexec_plugin_load(c->spec, c->plugin_dir, &plugin, &err)) {
		fprintf(c->out, "FAIL  %s\n..    done\n", err.msg);
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
	if (pexec__plugin_setup(plugin, c->config, &err)) {
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
	if (pexec__plugin_init(d, c->config, &state, &err)) {
		verdict(c, 0, "init%s%s: %s", c->config ? " with --config " : "",
		        c->config ? c->config : "", err.msg);
		fprintf(c->out, "..    done\n");
		fflush(c->out);
		_exit(1);
	}
	if (d->init)
		verdict(c, 1, "init%s%s", c->config ? " with --config " : "",
		        c->config ? c->config : "");
	if (c->sample)
		check_samples(c, d, state);
	if (d->fini) {
		fprintf(c->out, "..    fini\n");
		fflush(c->out);
		pexec__plugin_fini(d, state);
		verdict(c, 1, "fini");
	}
	if (d->teardown) {
		fprintf(c->out, "..    teardown\n");
		fflush(c->out);
	}
	pexec__plugin_teardown(plugin);
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
		n = pexec__read_some(pipefd[0], buf + have, sizeof(buf) - 1 - have);
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

static int tool_usage(const char *tool)
{
	if (!strcmp(tool, "info"))
		fputs("usage: pexec info PLUGIN\n", stderr);
	else
		fputs("usage: pexec check PLUGIN [SAMPLES.json] [--config JSON] "
		      "[--input-format json|ndjson]\n", stderr);
	return 2;
}

int cli_tool(const char *plugin_dir, int argc, char **argv)
{
	struct check c = { .plugin_dir = plugin_dir };
	int info = !strcmp(argv[0], "info");

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--config") && i + 1 < argc && !info) {
			c.config = argv[++i];
		} else if (!strcmp(argv[i], "--input-format") && i + 1 < argc && !info) {
			const char *f = argv[++i];
			if (!strcmp(f, "ndjson"))
				c.format = PEXEC_FORMAT_NDJSON;
			else if (strcmp(f, "json"))
				return tool_usage(argv[0]);
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			tool_usage(argv[0]);
			return 0;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "pexec %s: unknown option '%s'\n", argv[0], argv[i]);
			return tool_usage(argv[0]);
		} else if (!c.spec) {
			c.spec = argv[i];
		} else if (!c.sample && !info) {
			c.sample = argv[i];
		} else {
			fprintf(stderr, "pexec %s: unexpected argument '%s'\n", argv[0], argv[i]);
			return tool_usage(argv[0]);
		}
	}
	if (!c.spec)
		return tool_usage(argv[0]);
	return run_check(&c, info);
}
