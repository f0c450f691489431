/*
 * test_records.c - every record pexec writes is valid whatever a plugin's
 * message holds: on stderr one line, its control characters and bytes that
 * are not UTF-8 escaped (pexec_message_line); in --errors and --joblog one
 * valid JSON record a line, the message's first line as the reason and the
 * rest as its detail.  The sayer fixture (tests/plugins/sayer.c) fails with
 * the bytes an item asks for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "helpers.h"
#include "pexec.h"

#define SAYER FIX("sayer")

TestSuite(records, .init = scratch_make, .fini = scratch_remove, .timeout = 300);

/* Messages: "bad" then a line that forges pexec's own; an escape sequence
 * that clears the screen; bytes that are not UTF-8 around an 'A'. */
static const char input[] =
	"[\"hex:6261640a70657865633a206974656d2039206661696c656420696e206d61703a20666f72676564\","
	" \"hex:1b5b324a6f6f7073\", \"hex:fffe41\", 1]";

/* Every line of `path` is one valid JSON value (by pexec's own strict
 * rules: UTF-8 too); returns them parsed, in an array. */
static cJSON *records(const char *path)
{
	size_t len;
	char *text = read_file(path, &len), *line = text, *nl;
	cJSON *all = cJSON_CreateArray();

	cr_assert_not_null(text, "no %s", path);
	for (; (nl = strchr(line, '\n')); line = nl + 1) {
		pexec_error err;
		cJSON *v;

		cr_expect_eq(pexec_json_check(line, (size_t)(nl - line), &err), 0, "%s: %.*s: %s",
		             path, (int)(nl - line), line, err.msg);
		v = cJSON_ParseWithLength(line, (size_t)(nl - line));
		cr_assert_not_null(v);
		cJSON_AddItemToArray(all, v);
	}
	cr_expect_str_eq(line, "", "%s ends with half a line", path);
	free(text);
	return all;
}

static const char *text_of(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

Test(records, a_plugins_message_cannot_break_a_record)
{
	const char *errors = scratch_path(0, "errors.ndjson"), *joblog = scratch_path(1, "jl.ndjson");
	cJSON *e, *j;
	struct proc r;

	run(&r, input, "-p", SAYER, "-j", "2", "--errors", errors, "--joblog", joblog, NULL);
	expect_exit(&r, 1);
	/* stderr: three lines, each only what it says. */
	cr_expect_str_eq(r.err, "pexec: item 0 failed in map: bad\n"
	                        "pexec: item 1 failed in map: \\x1b[2Joops\n"
	                        "pexec: item 2 failed in map: \\xff\\xfeA\n");
	e = records(errors);
	j = records(joblog);
	cr_assert_eq(cJSON_GetArraySize(e), 3);
	cr_assert_eq(cJSON_GetArraySize(j), 4);
	cr_expect_str_eq(text_of(cJSON_GetArrayItem(e, 0), "reason"), "bad");
	cr_expect_str_eq(text_of(cJSON_GetArrayItem(e, 0), "detail"),
	                 "pexec: item 9 failed in map: forged");
	cr_expect_str_eq(text_of(cJSON_GetArrayItem(e, 1), "reason"), "\x1b[2Joops");
	cr_expect_null(text_of(cJSON_GetArrayItem(e, 1), "detail"));
	cr_expect_str_eq(text_of(cJSON_GetArrayItem(e, 2), "reason"), "\xef\xbf\xbd\xef\xbf\xbd" "A");
	for (int i = 0; i < 4; i++) {
		const cJSON *rec = cJSON_GetArrayItem(j, i);
		int index = cJSON_GetObjectItemCaseSensitive(rec, "index")->valueint;
		if (index == 0) {
			cr_expect_str_eq(text_of(rec, "error"), "bad");
			cr_expect_str_eq(text_of(rec, "detail"), "pexec: item 9 failed in map: forged");
		}
	}
	cJSON_Delete(e);
	cJSON_Delete(j);
	proc_release(&r);
}

Test(records, message_line_escapes_what_a_terminal_would_act_on)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "plain words", "plain words" },
		{ "first\nsecond", "first" },
		{ "tab\there", "tab\\there" },
		{ "bell\a cr\r del\x7f", "bell\\x07 cr\\x0d del\\x7f" },
		{ "caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac" },
		{ "c1 \xc2\x9b" "2J", "c1 \\xc2\\x9b2J" },
		{ "cut \xe2\x82", "cut \\xe2\\x82" },
		{ "over \xc0\xaf", "over \\xc0\\xaf" },
	};

	for (size_t i = 0; i < COUNT(cases); i++) {
		pexec_buf b;

		pexec_buf_init(&b);
		cr_assert_eq(pexec_message_line(&b, cases[i].in, strlen(cases[i].in)), 0);
		cr_assert_eq(pexec_buf_append(&b, "", 1), 0);
		cr_expect_str_eq(b.data, cases[i].want);
		pexec_buf_release(&b);
	}
}
