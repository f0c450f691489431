/*
 * test_joblog.c - issue 5 end to end, continued from test_progress.c (suite
 * `joblog`): what a run
 * leaves when it ends, the --joblog records and the --summary file.
 *
 * The tests use the faults fixture plugin (tests/plugins/faults.c) to end
 * items every way they can end: ok, error, crashed, exited, killed, timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "helpers.h"

TestSuite(joblog, .init = scratch_make, .fini = scratch_remove, .timeout = 180);

#define FAULTS FIX("faults")

/* ---- --joblog ---- */

struct fate {
	const char *item;
	const char *status;
	const char *stage;   /* NULL: ok */
	unsigned attempts_with_retry;
};

/* Every way an item ends, with the faults plugin (--timeout 1). */
static const struct fate fates[] = {
	{ "1", "ok", NULL, 1 },
	{ "{\"fault\": \"error\", \"stage\": \"map\"}", "error", "map", 1 },
	{ "2", "ok", NULL, 1 },
	{ "{\"fault\": \"abort\", \"stage\": \"map\"}", "crashed", "map", 2 },
	{ "3", "ok", NULL, 1 },
	{ "{\"fault\": \"sigkill\", \"stage\": \"map\"}", "killed", "map", 2 },
	{ "{\"fault\": \"exit\", \"stage\": \"map\"}", "exited", "map", 2 },
	{ "{\"fault\": \"loop\", \"stage\": \"map\"}", "timeout", "map", 2 },
	{ "4", "ok", NULL, 1 },
	{ "5", "ok", NULL, 1 },
	{ "{\"fault\": \"error\", \"stage\": \"deserialize\"}", "error", "deserialize", 1 },
	{ "6", "ok", NULL, 1 },
	{ "7", "ok", NULL, 1 },
};

static char *fates_input(void)
{
	char *text = NULL;
	size_t len = 0;

	append(&text, &len, "[", 1);
	for (size_t i = 0; i < COUNT(fates); i++) {
		if (i)
			append(&text, &len, ",\n", 2);
		append(&text, &len, fates[i].item, strlen(fates[i].item));
	}
	append(&text, &len, "]\n", 2);
	return text;
}

static const char *str_of(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One record per item, each exactly once, with what the issue asks for.
 * Items whose worker died get their start and seconds checked only with
 * `death_times` (see joblog_times_of_items_whose_worker_died). */
static void expect_joblog(const char *path, int retries, int death_times, double t_before,
                          double t_after)
{
	size_t len, n = 0;
	char *text = read_file(path, &len), *line, *nl;
	int seen[COUNT(fates)] = { 0 };

	cr_assert_not_null(text, "no job log %s", path);
	cr_expect(len && text[len - 1] == '\n', "the job log does not end a line");
	for (line = text; (nl = strchr(line, '\n')); line = nl + 1) {
		cJSON *rec;
		const cJSON *idx, *att, *pid, *start, *secs;
		const struct fate *f;
		size_t i;

		*nl = '\0';
		n++;
		rec = cJSON_Parse(line);
		cr_assert_not_null(rec, "job log line is not JSON: %s", line);
		idx = cJSON_GetObjectItemCaseSensitive(rec, "index");
		cr_assert(cJSON_IsNumber(idx) && idx->valuedouble >= 0 &&
		          idx->valuedouble < (double)COUNT(fates),
		          "bad index: %s", line);
		i = (size_t)idx->valuedouble;
		f = &fates[i];
		seen[i]++;
		cr_expect(str_of(rec, "status") && !strcmp(str_of(rec, "status"), f->status),
		          "item %zu: status is not \"%s\": %s", i, f->status, line);
		att = cJSON_GetObjectItemCaseSensitive(rec, "attempts");
		cr_expect(cJSON_IsNumber(att) &&
		          att->valuedouble == (retries ? f->attempts_with_retry : 1),
		          "item %zu: attempts is not %u: %s", i,
		          retries ? f->attempts_with_retry : 1, line);
		pid = cJSON_GetObjectItemCaseSensitive(rec, "pid");
		cr_expect(cJSON_IsNumber(pid) && pid->valuedouble > 0, "item %zu: no pid: %s", i,
		          line);
		start = cJSON_GetObjectItemCaseSensitive(rec, "start");
		secs = cJSON_GetObjectItemCaseSensitive(rec, "seconds");
		if (death_times || !f->stage || !strcmp(f->status, "error")) {
			cr_expect(cJSON_IsNumber(start) && start->valuedouble >= t_before - 1 &&
			          start->valuedouble <= t_after + 1,
			          "item %zu: start is not a time during the run (%.3f to %.3f): %s",
			          i, t_before, t_after, line);
			cr_expect(cJSON_IsNumber(secs) && secs->valuedouble >= 0,
			          "item %zu: no seconds: %s", i, line);
		}
		if (f->stage) {
			cr_expect(str_of(rec, "stage") && !strcmp(str_of(rec, "stage"), f->stage),
			          "item %zu: stage is not \"%s\": %s", i, f->stage, line);
			cr_expect(str_of(rec, "error") && *str_of(rec, "error"),
			          "item %zu: no error: %s", i, line);
		} else {
			cr_expect(!cJSON_GetObjectItemCaseSensitive(rec, "stage") &&
			          !cJSON_GetObjectItemCaseSensitive(rec, "error"),
			          "item %zu succeeded but has an error: %s", i, line);
		}
		cJSON_Delete(rec);
	}
	cr_expect_eq(n, COUNT(fates), "%zu job log records for %zu items", n, COUNT(fates));
	for (size_t i = 0; i < COUNT(fates); i++)
		cr_expect_eq(seen[i], 1, "item %zu has %d job log records", i, seen[i]);
	free(text);
}

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The fates input through a pool with a job log, checked by expect_joblog
 * (with the times of the items whose worker died when `died_times`). */
static void fates_joblog(int died_times)
{
	char *in = fates_input(), log[256];
	struct proc r;
	double t0, t1;

	snprintf(log, sizeof(log), "%s/joblog.ndjson", scratch);
	t0 = wall_now();
	run(&r, in, "-p", FAULTS, "-j", "2", "-q", "--timeout", "1", "--joblog", log, NULL);
	t1 = wall_now();
	expect_exit(&r, 1);
	expect_joblog(log, 0, died_times, t0, t1);
	proc_release(&r);
	free(in);
}

Test(joblog, joblog_has_one_record_per_item_however_it_ended)
{
	fates_joblog(0);
}

/* The record of an item whose worker died (crashed, exited, killed,
 * timeout) says when the item began and how long it ran until then. */
Test(joblog, joblog_times_of_items_whose_worker_died)
{
	fates_joblog(1);
}

/* In --serial mode items run in pexec itself: the records are the same. */
Test(joblog, joblog_in_serial_mode)
{
	const char *in = "[1, {\"fault\": \"error\", \"stage\": \"map\"}, 2]";
	char log[256];
	struct proc r;
	size_t len;
	char *text;

	snprintf(log, sizeof(log), "%s/joblog.ndjson", scratch);
	run(&r, in, "-p", FAULTS, "--serial", "-q", "--joblog", log, NULL);
	expect_exit(&r, 1);
	text = read_file(log, &len);
	cr_assert_not_null(text);
	cr_expect_eq(line_count(text), 3, "%s", text);
	cr_expect_eq(count_of(text, "\"status\":\"ok\""), 2, "%s", text);
	cr_expect_eq(count_of(text, "\"status\":\"error\""), 1, "%s", text);
	cr_expect_eq(count_of(text, "\"start\":"), 3, "records without a start: %s", text);
	cr_expect_eq(count_of(text, "\"seconds\":"), 3, "records without seconds: %s", text);
	cr_expect(strstr(text, "\"stage\":\"map\",\"error\":\"faults: asked to fail in map\""),
	          "%s", text);
	free(text);
	proc_release(&r);
}

/* ---- --summary ---- */

static double num_of(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	cr_assert(cJSON_IsNumber(v), "the summary has no number \"%s\"", key);
	return v->valuedouble;
}

Test(joblog, summary_file_matches_the_run)
{
	char *in = fates_input(), sum_path[256], log[256], *text;
	struct proc r;
	size_t len;
	cJSON *sum;
	const cJSON *by;
	double t0, t1, wall, items;
	static const struct {
		const char *kind;
		double n;
	} by_kind[] = {
		{ "error", 2 }, { "crashed", 1 }, { "exited", 1 },
		{ "killed", 1 }, { "timeout", 1 }, { "lost", 0 },
	};

	snprintf(sum_path, sizeof(sum_path), "%s/summary.json", scratch);
	snprintf(log, sizeof(log), "%s/joblog.ndjson", scratch);
	t0 = wall_now();
	run(&r, in, "-p", FAULTS, "-j", "2", "--timeout", "1", "--retries", "1", "--progress",
	    "--summary", sum_path, "--joblog", log, NULL);
	t1 = wall_now();
	expect_exit(&r, 1);
	expect_joblog(log, 1, 0, t0, t1);

	text = read_file(sum_path, &len);
	cr_assert_not_null(text, "no summary file");
	sum = cJSON_ParseWithOpts(text, NULL, 1);
	cr_assert_not_null(sum, "the summary is not one JSON value: %s", text);
	cr_expect(cJSON_IsObject(sum), "%s", text);
	items = (double)COUNT(fates);
	cr_expect_eq(num_of(sum, "items"), items, "%s", text);
	cr_expect_eq(num_of(sum, "ok"), 7, "%s", text);
	cr_expect_eq(num_of(sum, "failed"), 6, "%s", text);
	by = cJSON_GetObjectItemCaseSensitive(sum, "failed_by");
	cr_assert(cJSON_IsObject(by), "no failed_by: %s", text);
	for (size_t i = 0; i < COUNT(by_kind); i++)
		cr_expect_eq(num_of(by, by_kind[i].kind), by_kind[i].n, "failed_by.%s: %s",
		             by_kind[i].kind, text);
	cr_expect_eq(num_of(sum, "retried"), 4, "%s", text);
	cr_expect_eq(num_of(sum, "resumed"), 0, "%s", text);
	cr_expect_eq(num_of(sum, "exit_status"), 1, "%s", text);
	wall = num_of(sum, "wall_seconds");
	cr_expect(wall > 0 && wall <= t1 - t0 + 1, "wall_seconds %g for a run of %g s", wall,
	          t1 - t0);
	/* Written with one decimal. */
	cr_expect(num_of(sum, "items_per_second") >= items / wall - 0.051 &&
	          num_of(sum, "items_per_second") <= items / wall + 0.051,
	          "items_per_second %g, but %g items in %g s", num_of(sum, "items_per_second"),
	          items, wall);
	/* The same on stderr. */
	cr_expect(strstr(r.err, "pexec: 13 items in ") &&
	          strstr(r.err, ": 7 ok, 6 failed (2 error, 1 crashed, 1 exited, 1 killed, "
	                        "1 timeout), 4 retried\n"),
	          "%s: the summary line: %s", r.cmd, r.err);
	cJSON_Delete(sum);
	free(text);
	proc_release(&r);
	free(in);
}

Test(joblog, summary_file_of_a_clean_run)
{
	char sum_path[256], *text;
	struct proc r;
	size_t len;
	cJSON *sum;

	snprintf(sum_path, sizeof(sum_path), "%s/summary.json", scratch);
	run(&r, "[1, 2, 3, 4, 5]", "-p", "factorial", "--summary", sum_path, NULL);
	expect_exit(&r, 0);
	cr_expect_eq(r.err_len, 0, "the summary is printed without --progress or -v: %s", r.err);
	text = read_file(sum_path, &len);
	cr_assert_not_null(text, "no summary file");
	sum = cJSON_ParseWithOpts(text, NULL, 1);
	cr_assert_not_null(sum, "the summary is not one JSON value: %s", text);
	cr_expect_eq(num_of(sum, "items"), 5, "%s", text);
	cr_expect_eq(num_of(sum, "ok"), 5, "%s", text);
	cr_expect_eq(num_of(sum, "failed"), 0, "%s", text);
	cr_expect_eq(num_of(sum, "retried"), 0, "%s", text);
	cr_expect_eq(num_of(sum, "exit_status"), 0, "%s", text);
	cJSON_Delete(sum);
	free(text);
	proc_release(&r);
}
