/*
 * test_valid.c - pexec's output is a valid document whatever a plugin's
 * serializer writes: every result is checked, in the worker that made it,
 * by the splitter's own strict rules (core/lib/item.c, pexec__split_check),
 * and one that is not exactly one JSON value fails its item at serialize.
 *
 * The badjson fixture (tests/plugins/badjson.c) serializes the bytes an item
 * asks for in hex: cut short, invalid UTF-8, an embedded NUL, two values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "helpers.h"
#include "pexec.h"

#define BADJSON FIX("badjson")

TestSuite(valid, .init = scratch_make, .fini = scratch_remove, .timeout = 300);

/* Items: `{"a":` (cut short), `"\xff"` (invalid UTF-8), `1\0` (a NUL), `1 2`
 * (two values), and good ones between them. */
static const char input[] = "[\"hex:7b2261223a\", 1, \"hex:22ff22\", \"hex:3100\", \"hex:312032\","
                            " [2, 3]]";

static const struct {
	size_t index;
	const char *reason;
} bad[] = {
	{ 0, "result is not valid JSON at byte 5: unexpected end of input inside an object" },
	{ 2, "result is not valid JSON at byte 1: invalid UTF-8 in string" },
	{ 3, "result is not valid JSON at byte 1: NUL byte" },
	{ 4, "result is not valid JSON at byte 2: unexpected '2' after the value" },
};

static void expect_bad_items_failed(const struct proc *r)
{
	for (size_t i = 0; i < COUNT(bad); i++) {
		char want[256], *line = failure_line(r->err, bad[i].index);

		snprintf(want, sizeof(want), "pexec: item %zu failed in serialize: %s", bad[i].index,
		         bad[i].reason);
		cr_assert_not_null(line, "%s: no failure line for item %zu; stderr: %s", r->cmd,
		                   bad[i].index, r->err);
		cr_expect_str_eq(line, want, "%s", r->cmd);
		free(line);
	}
}

Test(valid, results_that_are_not_json_fail_their_items)
{
	static const char *const modes[][3] = {
		{ "-j", "2", NULL }, { "-j", "1", NULL }, { "--serial", NULL, NULL },
	};

	for (size_t m = 0; m < COUNT(modes); m++) {
		struct proc r;

		run(&r, input, "-p", BADJSON, "--chunksize", "2", modes[m][0], modes[m][1], NULL);
		expect_exit(&r, 1);
		cr_expect_str_eq(r.out, "[\nnull,\n1,\nnull,\nnull,\nnull,\n[2, 3]\n]\n", "%s",
		                 r.cmd);
		cr_expect(parses(r.out), "%s: the output is not valid JSON", r.cmd);
		expect_bad_items_failed(&r);
		proc_release(&r);
	}
}

Test(valid, ndjson_output_is_one_valid_value_per_line)
{
	struct proc r;

	/* `[1,\n2]` is valid JSON; on an NDJSON line its newline becomes a space. */
	run(&r, "[\"hex:5b312c0a325d\", \"hex:7b2261223a\", 4]", "-p", BADJSON, "-j", "2",
	    "--output-format", "ndjson", NULL);
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out, "[1, 2]\nnull\n4\n", "%s", r.cmd);
	proc_release(&r);
}

Test(valid, an_invalid_partial_result_stops_a_reduce)
{
	static const char *const modes[] = { "-j2", "--serial" };

	for (size_t m = 0; m < COUNT(modes); m++) {
		struct proc r;

		run(&r, "[1, \"bad-partial\"]", "-p", BADJSON, "--reduce", modes[m], NULL);
		expect_exit(&r, 1);
		cr_expect_str_eq(r.out, "", "%s: an invalid value was written", r.cmd);
		cr_expect_not_null(strstr(r.err, "result is not valid JSON at byte 5: unexpected "
		                                 "end of input inside an object"),
		                   "%s: %s", r.cmd, r.err);
		proc_release(&r);
	}
}

/* The check itself, through the public API. */
Test(valid, json_check_says_what_and_where)
{
	static const struct {
		const char *text;
		size_t len;
		const char *why; /* NULL: valid */
	} cases[] = {
		{ "1", 1, NULL },
		{ "-12345678901234567890", 21, NULL },
		{ " {\"a\": [1, 2.5e3, null]}\n", 25, NULL },
		{ "[1,\n2]", 6, NULL },
		{ "\"plain\"", 7, NULL },
		{ "\"\\u00e9\\n\"", 10, NULL },
		{ "01", 2, "at byte 1: invalid number: leading zero" },
		{ "1 2", 3, "at byte 2: unexpected '2' after the value" },
		{ "1\n2", 3, "at byte 2: a second value after the first" },
		{ "", 0, "at byte 0: no value" },
		{ "\"a\x01\"", 4, "at byte 2: " },
		{ "[1,]", 4, "at byte 3: trailing comma before ']'" },
		{ "123a", 4, "at byte 3: " },
	};

	for (size_t i = 0; i < COUNT(cases); i++) {
		pexec_error err = { { 0 } };
		int rc = pexec_json_check(cases[i].text, cases[i].len, &err);

		if (!cases[i].why) {
			cr_expect_eq(rc, 0, "'%s': %s", cases[i].text, err.msg);
			continue;
		}
		cr_expect_eq(rc, -1, "'%s' passed", cases[i].text);
		cr_expect(strncmp(err.msg, cases[i].why, strlen(cases[i].why)) == 0,
		          "'%s': %s, want %s", cases[i].text, err.msg, cases[i].why);
	}
}
