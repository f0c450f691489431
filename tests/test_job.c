/*
 * test_job.c - pexec_job_run() called directly, as a C program embedding
 * libpexec calls it (core/include/pexec.h, nothing internal): a job over an
 * input file into an output file or a descriptor, NDJSON both ways, the
 * callbacks called as the header documents them, the --errors records, a
 * job with its own engine, what bad input and a plugin that does not load
 * give back, and a run interrupted by its engine and then resumed to the
 * bytes an uninterrupted run writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "helpers.h"
#include "pexec.h"

TestSuite(job, .init = scratch_make, .fini = scratch_remove, .timeout = 180);

#define PLUGINS PEXEC_TEST_BUILD "/plugins"

static pexec_job job_of(const char *plugin, const char *in, const char *out)
{
	return (pexec_job){ .plugin = plugin, .plugin_dir = PLUGINS, .input = in, .output = out,
	                    .opts = { .jobs = 2 } };
}

static char *input_file(const char *name, const char *text)
{
	char *path = strdup(scratch_path(1, name));

	cr_assert_not_null(path);
	write_file(path, text, strlen(text));
	return path;
}

static void expect_file(const char *path, const char *want)
{
	size_t len;
	char *got = read_file(path, &len);

	cr_assert_not_null(got, "%s was not written", path);
	expect_same_bytes(path, got, len, want, strlen(want));
	free(got);
}

static void expect_listing(const char *want)
{
	char *list = scratch_listing();

	cr_expect_str_eq(list, want, "the scratch directory holds:\n%s", list);
	free(list);
}

/* ---- inputs and outputs ---- */

Test(job, runs_an_input_file_into_an_output_file)
{
	char *in = input_file("in.json", "[0, 1, 2, 3, 4, 5, 10]");
	const char *out = scratch_path(0, "out.json");
	pexec_job job = job_of("factorial", in, out);
	pexec_stats stats;
	pexec_error err;

	cr_assert_eq(pexec_job_run(&job, &stats, &err), PEXEC_OK, "%s", err.msg);
	expect_file(out, "[\n1,\n1,\n2,\n6,\n24,\n120,\n3628800\n]\n");
	cr_expect_eq(stats.items, 7);
	cr_expect_eq(stats.ok, 7);
	cr_expect_eq(stats.failed, 0);
	/* Complete and without failures: no partial file, no journal. */
	expect_listing("in.json\nout.json\n");
	free(in);
}

Test(job, writes_to_output_fd_and_leaves_it_open)
{
	char *in = input_file("in.json", "[3, 4]");
	const char *out = scratch_path(0, "fd.json");
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	pexec_job job = job_of("factorial", in, NULL);
	pexec_error err;

	cr_assert_geq(fd, 0);
	job.output_fd = fd;
	cr_assert_eq(pexec_job_run(&job, NULL, &err), PEXEC_OK, "%s", err.msg);
	cr_expect_eq(write(fd, "end\n", 4), 4, "the job closed its output_fd");
	close(fd);
	expect_file(out, "[\n6,\n24\n]\nend\n");
	free(in);
}

Test(job, ndjson_in_and_out)
{
	char *in = input_file("in.ndjson", "1\n\n2\n   3\n4");
	const char *out = scratch_path(0, "out.ndjson");
	pexec_job job = job_of("factorial", in, out);
	pexec_error err;

	job.input_format = PEXEC_FORMAT_NDJSON;
	job.output_format = PEXEC_FORMAT_NDJSON;
	cr_assert_eq(pexec_job_run(&job, NULL, &err), PEXEC_OK, "%s", err.msg);
	expect_file(out, "1\n2\n6\n24\n");
	free(in);
}

Test(job, drop_null_leaves_failed_items_out)
{
	char *in = input_file("in.json", "[3, \"x\", 4]");
	const char *out = scratch_path(0, "out.json");
	pexec_job job = job_of("factorial", in, out);
	pexec_error err;

	job.drop_null = 1;
	cr_assert_eq(pexec_job_run(&job, NULL, &err), PEXEC_EITEM, "%s", err.msg);
	expect_file(out, "[\n6,\n24\n]\n");
	free(in);
}

/* ---- callbacks ---- */

struct seen {
	int failures, results, progress, done_calls, done_before_last;
	uint64_t failed_index[8];
	pexec_stage failed_stage[8];
	char failed_msg[8][PEXEC_ERROR_MAX];
	char failed_input[8][32];
	uint64_t result_index[8];
	int result_ok[8], result_pid[8];
	unsigned result_attempts[8];
	pexec_progress last;
	pexec_stats last_stats;
};

static void on_failure(void *ctx, const pexec_result *r)
{
	struct seen *s = ctx;

	cr_assert_lt(s->failures, 8);
	cr_expect_not(r->ok);
	s->failed_index[s->failures] = r->index;
	s->failed_stage[s->failures] = r->stage;
	snprintf(s->failed_msg[s->failures], PEXEC_ERROR_MAX, "%s", r->message ? r->message : "");
	snprintf(s->failed_input[s->failures], 32, "%.*s", (int)r->input_len,
	         r->input ? r->input : "");
	s->failures++;
}

static void on_result(void *ctx, const pexec_result *r)
{
	struct seen *s = ctx;

	cr_assert_lt(s->results, 8);
	s->result_index[s->results] = r->index;
	s->result_ok[s->results] = r->ok;
	s->result_pid[s->results] = r->pid;
	s->result_attempts[s->results] = r->attempts;
	s->results++;
}

static void on_progress(void *ctx, const pexec_progress *p)
{
	struct seen *s = ctx;

	if (s->done_calls)
		s->done_before_last = 1; /* a call after the one with done set */
	s->progress++;
	s->done_calls += p->done;
	s->last = *p;
	if (p->stats)
		s->last_stats = *p->stats;
	s->last.stats = NULL;
}

static void watch(pexec_job *job, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	job->on_failure = on_failure;
	job->on_failure_ctx = s;
	job->on_result = on_result;
	job->on_result_ctx = s;
	job->on_progress = on_progress;
	job->on_progress_ctx = s;
}

#define FAILING_INPUT "[3, \"x\", 5, {\"n\": 1}]"

Test(job, callbacks_are_called_as_documented)
{
	char *in = input_file("in.json", FAILING_INPUT);
	const char *out = scratch_path(0, "out.json");
	pexec_job job = job_of("factorial", in, out);
	pexec_stats stats;
	pexec_error err;
	struct seen s;

	watch(&job, &s);
	cr_assert_eq(pexec_job_run(&job, &stats, &err), PEXEC_EITEM, "%s", err.msg);
	expect_file(out, "[\n6,\nnull,\n120,\nnull\n]\n");

	cr_assert_eq(s.failures, 2);
	cr_expect_eq(s.failed_index[0], 1);
	cr_expect_eq(s.failed_index[1], 3);
	cr_expect_eq(s.failed_stage[0], PEXEC_STAGE_DESERIALIZE);
	cr_expect(strncmp(s.failed_msg[0], "factorial: ", 11) == 0, "message: %s", s.failed_msg[0]);
	cr_expect_str_eq(s.failed_input[0], "\"x\"");
	cr_expect_str_eq(s.failed_input[1], "{\"n\": 1}");

	/* Every item, in order, as written; run by a worker, not here. */
	cr_assert_eq(s.results, 4);
	for (int i = 0; i < 4; i++) {
		cr_expect_eq(s.result_index[i], (uint64_t)i);
		cr_expect_eq(s.result_ok[i], i % 2 == 0, "item %d", i);
		cr_expect(s.result_pid[i] > 0 && s.result_pid[i] != getpid(), "item %d: pid %d", i,
		          s.result_pid[i]);
		cr_expect_eq(s.result_attempts[i], 1);
	}

	/* Progress: at least the last call, which alone has done set and sees
	 * the whole input. */
	cr_expect_geq(s.progress, 1);
	cr_expect_eq(s.done_calls, 1, "%d calls with done set", s.done_calls);
	cr_expect_not(s.done_before_last, "a progress call after the one with done set");
	cr_expect(s.last.done);
	cr_expect_eq(s.last.bytes_total, strlen(FAILING_INPUT));
	cr_expect_eq(s.last.bytes_read, strlen(FAILING_INPUT));
	cr_expect_eq(s.last.skipped, 0);
	cr_expect_eq(s.last_stats.items, 4);
	cr_expect_eq(s.last_stats.ok, 2);
	cr_expect_eq(s.last_stats.failed, 2);
	cr_expect_eq(stats.failed, 2);
	free(in);
}

/* One --errors record: of item `index`, failed in deserialize with
 * `reason`, and with `input` as its excerpt. */
static void expect_error_record(const char *line, long index, const char *reason,
                                const char *input)
{
	cJSON *rec = cJSON_Parse(line);
	const cJSON *in;

	cr_assert_not_null(rec, "a record is not JSON: %s", line);
	cr_expect_eq(cJSON_GetObjectItem(rec, "index")->valueint, index, "record: %s", line);
	cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(rec, "stage")), "deserialize");
	cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(rec, "reason")), reason,
	                 "item %ld: the reason is not the message", index);
	cr_expect_eq(cJSON_GetObjectItem(rec, "attempts")->valueint, 1);
	in = cJSON_GetObjectItem(rec, "input");
	cr_assert(cJSON_IsString(in), "record: %s", line);
	cr_expect_str_eq(in->valuestring, input, "item %ld", index);
	cJSON_Delete(rec);
}

Test(job, errors_file_has_one_record_per_failed_item)
{
	static const long want_index[] = { 1, 3, 4 };
	char long_item[400], excerpt[210];
	const char *want_input[] = { "\"x\"", "{\"n\": 1}", excerpt };
	char *text = NULL, *in, *data, *line;
	const char *out = scratch_path(0, "out.json"), *errors = scratch_path(2, "errors.ndjson");
	pexec_job job;
	pexec_error err;
	struct seen s;
	size_t len = 0, dlen;

	/* The third failure's input is longer than an excerpt (200 bytes):
	 * its first 200 bytes and "...". */
	memset(long_item, 'y', sizeof(long_item));
	long_item[0] = long_item[301] = '"';
	long_item[302] = '\0';
	snprintf(excerpt, sizeof(excerpt), "%.200s...", long_item);
	append(&text, &len, "[3, \"x\", 5, {\"n\": 1}, ", 22);
	append(&text, &len, long_item, strlen(long_item));
	append(&text, &len, "]", 1);
	in = input_file("in.json", text);
	job = job_of("factorial", in, out);
	job.errors = errors;
	watch(&job, &s);
	cr_assert_eq(pexec_job_run(&job, NULL, &err), PEXEC_EITEM, "%s", err.msg);
	cr_assert_eq(s.failures, 3);

	data = read_file(errors, &dlen);
	cr_assert_not_null(data, "no errors file");
	cr_assert_eq(line_count(data), 3, "errors file:\n%s", data);
	line = data;
	for (int i = 0; i < 3; i++) {
		char *nl = strchr(line, '\n');

		*nl = '\0';
		expect_error_record(line, want_index[i], s.failed_msg[i], want_input[i]);
		line = nl + 1;
	}
	free(data);
	free(text);
	free(in);
}

/* ---- a job's own engine ---- */

struct engine {
	int calls;
	int item_by_item;   /* calls the sink for every result, batch_sink or not */
	uint64_t given;     /* items its source gave */
	const pexec_loaded_plugin *plugin;
	unsigned jobs;      /* what opts said */
};

/* pexec_run's contract without a pool: item text T becomes the result [T].
 * Successes go to batch_sink in one call when it is set. */
static pexec_code bracket_engine(void *ctx, const pexec_loaded_plugin *plugin,
                                 const pexec_opts *opts, pexec_next_fn next, void *next_ctx,
                                 pexec_result_fn sink, void *sink_ctx, pexec_stats *stats,
                                 pexec_error *err)
{
	struct engine *e = ctx;
	const char *data;
	size_t len;
	int rc;
	char *texts[16], *inputs[16];
	struct iovec tv[16], iv[16];
	uint64_t n = 0;

	e->calls++;
	e->plugin = plugin;
	e->jobs = opts->jobs;
	while ((rc = next(next_ctx, &data, &len, err)) == 1) {
		cr_assert_lt(n, 16);
		cr_assert_geq(asprintf(&texts[n], "[%.*s]", (int)len, data), 0);
		inputs[n] = strndup(data, len);
		n++;
	}
	if (rc < 0)
		return (pexec_code)-rc;
	e->given = n;
	stats->items = stats->ok = n;
	for (uint64_t i = 0; i < n; i++) {
		tv[i] = (struct iovec){ texts[i], strlen(texts[i]) };
		iv[i] = (struct iovec){ inputs[i], strlen(inputs[i]) };
	}
	if (opts->batch_sink && !e->item_by_item) {
		rc = opts->batch_sink(opts->batch_ctx, 0, (uint32_t)n, tv,
		                      opts->result_input ? iv : NULL, err);
	} else {
		rc = 0;
		for (uint64_t i = 0; i < n && rc == 0; i++) {
			pexec_result r = {
				.index = i, .ok = 1, .data = texts[i], .len = tv[i].iov_len,
				.attempts = 1, .input = inputs[i], .input_len = iv[i].iov_len,
				.pid = getpid(), .seconds = -1,
			};
			rc = sink(sink_ctx, &r, err);
		}
	}
	for (uint64_t i = 0; i < n; i++) {
		free(texts[i]);
		free(inputs[i]);
	}
	return rc < 0 ? (pexec_code)-rc : PEXEC_OK;
}

static void expect_engine_output(int item_by_item, int watched)
{
	char *in = input_file("in.json", "[1, \"two\", {\"three\": 3}]");
	const char *out = scratch_path(0, "out.json");
	pexec_job job = job_of("factorial", in, out);
	struct engine e = { .item_by_item = item_by_item };
	pexec_error err;
	struct seen s;

	job.engine = bracket_engine;
	job.engine_ctx = &e;
	job.opts.jobs = 3;
	if (watched)
		watch(&job, &s);
	cr_assert_eq(pexec_job_run(&job, NULL, &err), PEXEC_OK, "%s", err.msg);
	cr_expect_eq(e.calls, 1);
	cr_expect_eq(e.given, 3);
	cr_expect_not_null(e.plugin, "the engine got no plugin");
	cr_expect_eq(e.jobs, 3, "the engine did not get the job's options");
	expect_file(out, "[\n[1],\n[\"two\"],\n[{\"three\": 3}]\n]\n");
	if (watched)
		cr_expect_eq(s.results, 3);
	expect_listing("in.json\nout.json\n");
	unlink(out);
	free(in);
}

Test(job, a_custom_engine_is_called_and_its_results_written)
{
	expect_engine_output(0, 0); /* through the batch path */
	expect_engine_output(1, 0); /* item by item */
	expect_engine_output(1, 1); /* with on_result, which turns the batch path off */
}

/* ---- what fails around the run ---- */

Test(job, bad_input_gives_einput_with_its_position)
{
	char *in = input_file("in.json", "[1, 2,]");
	const char *out = scratch_path(0, "out.json");
	pexec_job job = job_of("factorial", in, out);
	pexec_error err;
	char want[600];

	cr_expect_eq(pexec_job_run(&job, NULL, &err), PEXEC_EINPUT);
	snprintf(want, sizeof(want),
	         "malformed input '%s' at line 1, column 7, byte 6: trailing comma before ']'", in);
	cr_expect_str_eq(err.msg, want);
	/* Nothing to resume: no output, no partial file, no journal. */
	expect_listing("in.json\n");
	free(in);
}

Test(job, bad_input_to_a_descriptor_never_parses_as_complete)
{
	char *in = input_file("in.json", "[3, 4, 5, 6 7]");
	const char *out = scratch_path(0, "fd.json");
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	pexec_job job = job_of("factorial", in, NULL);
	pexec_error err;
	size_t len;
	char *got;

	cr_assert_geq(fd, 0);
	job.output_fd = fd;
	cr_expect_eq(pexec_job_run(&job, NULL, &err), PEXEC_EINPUT);
	cr_expect(strstr(err.msg, "at line 1, column 13, byte 12") != NULL, "message: %s", err.msg);
	close(fd);
	got = read_file(out, &len);
	cr_expect_not(parses(got), "the output of a failed run parses: %s", got);
	cr_expect(strncmp(got, "[\n", 2) == 0 || !*got, "output: %s", got);
	free(got);
	free(in);
}

Test(job, a_plugin_that_does_not_load_gives_eload)
{
	char *in = input_file("in.json", "[1]");
	const char *out = scratch_path(0, "out.json");
	pexec_job job = job_of(FIX("no_symbol"), in, out);
	pexec_error err;
	struct seen s;

	watch(&job, &s);
	cr_expect_eq(pexec_job_run(&job, NULL, &err), PEXEC_ELOAD);
	cr_expect_str_eq(err.msg, "cannot load '" FIX("no_symbol") "': not a pexec plugin "
	                          "(no symbol pexec_plugin)");
	cr_expect_eq(s.progress, 1, "on_progress is called once, at the end, even so");
	cr_expect(s.last.done);
	job.plugin = "nonesuch";
	cr_expect_eq(pexec_job_run(&job, NULL, &err), PEXEC_ELOAD);
	cr_expect(strstr(err.msg, "nonesuch") != NULL, "message: %s", err.msg);
	expect_listing("in.json\n");
	free(in);
}

/* ---- an interrupted run, resumed ---- */

struct stopping {
	int calls;
	uint64_t stop_after;  /* results handed on before the cancel; UINT64_MAX: none */
	int keep_batch;       /* leave the job's batch path on (results then go uncounted) */
	uint64_t passed;      /* results handed on */
	uint64_t computed;    /* items the source gave */
	pexec_result_fn sink;
	void *sink_ctx;
	pexec_next_fn next;
	void *next_ctx;
};

static int stopping_next(void *ctx, const char **data, size_t *len, pexec_error *err)
{
	struct stopping *s = ctx;
	int rc = s->next(s->next_ctx, data, len, err);

	s->computed += rc == 1;
	return rc;
}

static int stopping_sink(void *ctx, const pexec_result *r, pexec_error *err)
{
	struct stopping *s = ctx;

	if (r && s->passed == s->stop_after) {
		snprintf(err->msg, sizeof(err->msg), "cancelled");
		return -(int)PEXEC_ECANCELED;
	}
	s->passed += r != NULL;
	return s->sink(s->sink_ctx, r, err);
}

/* pexec_run, whose sink cancels the run after `stop_after` results, as a
 * signal to the pexec command would (pexec_run returns PEXEC_ECANCELED). */
static pexec_code stopping_engine(void *ctx, const pexec_loaded_plugin *plugin,
                                  const pexec_opts *opts, pexec_next_fn next, void *next_ctx,
                                  pexec_result_fn sink, void *sink_ctx, pexec_stats *stats,
                                  pexec_error *err)
{
	struct stopping *s = ctx;
	pexec_opts o = *opts;

	s->calls++;
	s->sink = sink;
	s->sink_ctx = sink_ctx;
	s->next = next;
	s->next_ctx = next_ctx;
	if (!s->keep_batch)
		o.batch_sink = NULL; /* every result through the counting sink */
	return pexec_run(plugin, &o, stopping_next, s, stopping_sink, s, stats, err);
}

static char *numbers(int n)
{
	char *text = NULL, item[16];
	size_t len = 0;

	append(&text, &len, "[", 1);
	for (int i = 0; i < n; i++) {
		int k = snprintf(item, sizeof(item), "%s%d", i ? ", " : "", i);
		append(&text, &len, item, (size_t)k);
	}
	append(&text, &len, "]\n", 2);
	return text;
}

Test(job, a_run_interrupted_by_its_engine_resumes_to_the_same_bytes)
{
	static const uint64_t stops[] = { 0, 15, 39 };
	char *text = numbers(40), *in = input_file("in.json", text);
	const char *ref = scratch_path(0, "ref.json");
	char out[256], partial[300], journal[300];
	pexec_job job = job_of("factorial", in, ref);
	pexec_error err;

	snprintf(out, sizeof(out), "%s/out.json", scratch);
	snprintf(partial, sizeof(partial), "%s.pexec-partial", out);
	snprintf(journal, sizeof(journal), "%s.pexec-journal", out);
	cr_assert_eq(pexec_job_run(&job, NULL, &err), PEXEC_OK, "reference run: %s", err.msg);
	for (size_t k = 0; k < COUNT(stops); k++) {
		struct stopping first = { .stop_after = stops[k] };
		struct stopping again = { .stop_after = UINT64_MAX, .keep_batch = 1 };
		struct jstate js;
		struct seen s;

		job = job_of("factorial", in, out);
		job.engine = stopping_engine;
		job.engine_ctx = &first;
		cr_assert_eq(pexec_job_run(&job, NULL, &err), PEXEC_ECANCELED,
		             "stop after %llu: %s", (unsigned long long)stops[k], err.msg);
		cr_expect_eq(first.passed, stops[k]);
		cr_expect_not(exists(out), "an interrupted run wrote its output");
		cr_expect(exists(partial) && exists(journal),
		          "no partial output or journal to resume");
		journal_state(journal, &js);
		cr_expect_eq(js.items, stops[k],
		             "the journal's last checkpoint covers %llu items, want %llu",
		             (unsigned long long)js.items, (unsigned long long)stops[k]);
		cr_expect_not(js.complete);

		job.resume = 1;
		job.engine_ctx = &again;
		memset(&s, 0, sizeof(s));
		job.on_progress = on_progress;
		job.on_progress_ctx = &s;
		cr_assert_eq(pexec_job_run(&job, NULL, &err), PEXEC_OK, "resume after %llu: %s",
		             (unsigned long long)stops[k], err.msg);
		cr_expect_eq(again.calls, 1);
		cr_expect_eq(again.computed, 40 - stops[k], "the resumed run computed %llu items, "
		             "want %llu", (unsigned long long)again.computed,
		             (unsigned long long)(40 - stops[k]));
		cr_expect_eq(s.last.skipped, stops[k]);
		expect_same_file("resumed output", out, ref);
		cr_expect_not(exists(partial));
		cr_expect_not(exists(journal));
		unlink(out);
	}
	free(text);
	free(in);
}
