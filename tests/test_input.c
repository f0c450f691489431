/*
 * test_input.c - bad input end to end: malformed JSON or NDJSON ends the run
 * with exit 2, no result that parses, and one line on stderr naming the input
 * and the position (line, column, byte) of what is wrong.  Also valid input
 * the splitter must take whole: a byte order mark, 100,000 levels of nesting,
 * a 100 MB string; and a table of small documents in the style of a JSON
 * parser conformance suite (accept / reject / either), written here.
 *
 * Every test runs the built pexec as a user does (helpers.c), mostly with
 * the identity plugin, so what goes in must come back byte for byte.
 * test_split.c pins the splitter itself; this file pins what a user sees.
 * Nothing measures time: every wait is a hang guard.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

TestSuite(input, .init = scratch_make, .fini = scratch_remove, .timeout = 600);

/* ---- 1. bad input ---- */

#define DOC(s) s, sizeof(s) - 1

/* Malformed input: exit 2, nothing that parses on stdout, and one line on
 * stderr with the position (1-based line and column, 0-based byte) and why. */
struct bad_input {
	const char *in;
	size_t len;
	int ndjson;
	const char *pos;   /* "line L, column C, byte B" */
	const char *why;
};

static const struct bad_input bad_inputs[] = {
	/* truncated */
	{ DOC("[1, 2"), 0, "line 1, column 6, byte 5", "unexpected end of input" },
	{ DOC("[\n  1,\n  2"), 0, "line 3, column 4, byte 10", "unexpected end of input" },
	{ DOC("[\"abc"), 0, "line 1, column 6, byte 5", "end of input inside a string" },
	{ DOC("[{\"a\": [1, {"), 0, "line 1, column 13, byte 12", "unexpected end of input" },
	/* stray commas */
	{ DOC("[1,,2]"), 0, "line 1, column 4, byte 3", "unexpected ','" },
	{ DOC("[,1]"), 0, "line 1, column 2, byte 1", "unexpected ','" },
	{ DOC("[1,2,]"), 0, "line 1, column 6, byte 5", "trailing comma" },
	{ DOC("[{\"a\":1,}]"), 0, "line 1, column 9, byte 8", "trailing comma" },
	/* trailing garbage */
	{ DOC("[1, 2] x"), 0, "line 1, column 8, byte 7", "after the top-level array" },
	{ DOC("[1]\n\n]"), 0, "line 3, column 1, byte 5", "after the top-level array" },
	{ DOC("[1] [2]"), 0, "line 1, column 5, byte 4", "after the top-level array" },
	/* bad escapes */
	{ DOC("[\"\\x\"]"), 0, "line 1, column 4, byte 3", "invalid escape" },
	{ DOC("[\"a\\u12\"]"), 0, "line 1, column 8, byte 7", "invalid \\u escape" },
	/* control characters in strings */
	{ DOC("[\"a\tb\"]"), 0, "line 1, column 4, byte 3", "control character 0x09" },
	{ DOC("[\"a\nb\"]"), 0, "line 1, column 4, byte 3", "control character 0x0A" },
	{ DOC("[\"\x01\"]"), 0, "line 1, column 3, byte 2", "control character 0x01" },
	/* not JSON numbers or literals */
	{ DOC("[NaN]"), 0, "line 1, column 2, byte 1", "unexpected 'N'" },
	{ DOC("[1, -Infinity]"), 0, "line 1, column 6, byte 5", "invalid number" },
	{ DOC("[0x10]"), 0, "line 1, column 3, byte 2", "invalid number" },
	{ DOC("[012]"), 0, "line 1, column 3, byte 2", "leading zero" },
	{ DOC("[-01]"), 0, "line 1, column 4, byte 3", "leading zero" },
	{ DOC("[+1]"), 0, "line 1, column 2, byte 1", "invalid number" },
	{ DOC("[.5]"), 0, "line 1, column 2, byte 1", "invalid number" },
	{ DOC("[1.]"), 0, "line 1, column 4, byte 3", "invalid number" },
	{ DOC("[tru]"), 0, "line 1, column 5, byte 4", "invalid literal" },
	/* comments, single quotes */
	{ DOC("[1 /* c */]"), 0, "line 1, column 4, byte 3", "comments are not allowed" },
	{ DOC("[1, // c\n2]"), 0, "line 1, column 5, byte 4", "comments are not allowed" },
	{ DOC("['a']"), 0, "line 1, column 2, byte 1", "double quotes" },
	/* NUL bytes */
	{ DOC("[1,\0 2]"), 0, "line 1, column 4, byte 3", "NUL" },
	{ DOC("[\"a\0\"]"), 0, "line 1, column 4, byte 3", "control character 0x00" },
	/* empty input, and a top level that is not an array */
	{ DOC(""), 0, "line 1, column 1, byte 0", "empty input" },
	{ DOC(" \n\t "), 0, "line 2, column 3, byte 4", "empty input" },
	{ DOC("{\"a\": [1]}"), 0, "line 1, column 1, byte 0", "expected '['" },
	{ DOC("1"), 0, "line 1, column 1, byte 0", "expected '['" },
	{ DOC("\"x\""), 0, "line 1, column 1, byte 0", "expected '['" },
	/* structure */
	{ DOC("[1 2]"), 0, "line 1, column 4, byte 3", "unexpected '2'" },
	{ DOC("[{\"a\" 1}]"), 0, "line 1, column 7, byte 6", "expected ':'" },
	{ DOC("[1}"), 0, "line 1, column 3, byte 2", "unexpected '}'" },
	/* invalid UTF-8, inside and outside strings */
	{ DOC("[\"\xff\"]"), 0, "line 1, column 3, byte 2", "invalid UTF-8" },
	{ DOC("[\"ok\", \"\xc3\x28\"]"), 0, "line 1, column 10, byte 9", "invalid UTF-8" },
	{ DOC("[\"\xed\xa0\x80\"]"), 0, "line 1, column 4, byte 3", "invalid UTF-8" },
	{ DOC("[\"\xf4\x90\x80\x80\"]"), 0, "line 1, column 4, byte 3", "invalid UTF-8" },
	{ DOC("[\"\xc0\xaf\"]"), 0, "line 1, column 3, byte 2", "invalid UTF-8" },
	{ DOC("\xff[1]"), 0, "line 1, column 1, byte 0", "invalid UTF-8" },
	{ DOC("[1, \xef\xbb\xbf" "2]"), 0, "line 1, column 5, byte 4", "unexpected 0xEF" },
	/* NDJSON */
	{ DOC("1\n2 3\n"), 1, "line 2, column 3, byte 4", "expected end of line" },
	{ DOC("1\n[1,\n"), 1, "line 2, column 4, byte 5", "end of line inside an array" },
	{ DOC("1\n\n{\"a\":1}}\n"), 1, "line 3, column 8, byte 10", "unexpected '}'" },
	{ DOC("\"\xe2\x82\"\n"), 1, "line 1, column 4, byte 3", "invalid UTF-8" },
	{ DOC("1\n// c\n"), 1, "line 2, column 1, byte 2", "comments are not allowed" },
};

static void check_bad_input(const char *what, const char *in, size_t len, int ndjson,
                            const char *pos, const char *why)
{
	static const char *const modes[][3] = { { "-j", "2", NULL }, { "--serial", NULL } };
	const char *path = scratch_path(2, "bad.json");

	/* A file, so that NUL bytes go in as they are and the message names it. */
	write_file(path, in, len);
	for (size_t m = 0; m < COUNT(modes); m++) {
		const char *args[MAX_ARGS + 1] = { "-p", "identity" };
		struct proc_spec spec = { .args = args };
		size_t na = 2;
		struct proc r;

		for (size_t k = 0; modes[m][k]; k++)
			args[na++] = modes[m][k];
		if (ndjson) {
			args[na++] = "--input-format";
			args[na++] = "ndjson";
		}
		args[na++] = path;
		run_spec(&spec, &r);
		expect_exit(&r, 2);
		cr_expect_not(parses(r.out), "%s: %s: stdout parses: %s", what, r.cmd, r.out);
		cr_expect_eq(line_count(r.err), 1, "%s: %s: stderr: %s", what, r.cmd, r.err);
		cr_expect_not_null(strstr(r.err, "malformed input"), "%s: %s: %s", what, r.cmd, r.err);
		cr_expect_not_null(strstr(r.err, path), "%s: %s: %s", what, r.cmd, r.err);
		if (pos)
			cr_expect_not_null(strstr(r.err, pos), "%s: %s: want \"%s\": %s", what, r.cmd,
			                   pos, r.err);
		if (why)
			cr_expect_not_null(strstr(r.err, why), "%s: %s: want \"%s\": %s", what, r.cmd,
			                   why, r.err);
		proc_release(&r);
	}
}

Test(input, malformed_input_exits_2_with_the_position)
{
	for (size_t i = 0; i < COUNT(bad_inputs); i++) {
		const struct bad_input *b = &bad_inputs[i];
		char what[32];

		snprintf(what, sizeof(what), "bad input %zu", i);
		check_bad_input(what, b->in, b->len, b->ndjson, b->pos, b->why);
	}
}

Test(input, unclosed_brackets_exit_2_with_the_position)
{
	const size_t n = 200000;
	char *in = malloc(n);

	cr_assert_not_null(in);
	memset(in, '[', n);
	check_bad_input("200000 '['", in, n, 0, "line 1, column 200001, byte 200000",
	                "unexpected end of input");
	free(in);
}

/* A byte order mark before the array is skipped; anywhere else it is not
 * JSON (see the table above). */
Test(input, byte_order_mark_at_the_start_is_skipped)
{
	struct proc r;

	run(&r, "\xef\xbb\xbf[1, \"\xc3\xa9\"]", "-p", "identity", NULL);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.out, "[\n1,\n\"\xc3\xa9\"\n]\n");
	proc_release(&r);
}

/* 100,000 levels of valid nesting: the splitter takes them without
 * recursion; identity gives them back byte for byte; a plugin that parses
 * them fails that item cleanly, and the run goes on. */
Test(input, deep_nesting_is_processed_or_refused_cleanly)
{
	const size_t depth = 100000;
	const char *path = scratch_path(2, "deep.json");
	char *in = NULL, *want = NULL, *deep = malloc(2 * depth);
	size_t in_len = 0, want_len = 0;
	static const struct {
		const char *plugin;
		const char *why;
	} parsers[] = {
		{ "factorial", "must be a non-negative integer" },  /* its own deserializer */
		{ "sleep", "nesting" },                             /* cJSON, by default */
		{ FIX("config_echo"), "nesting" },
	};
	static const char *const modes[][3] = { { "-j", "2", NULL }, { "--serial", NULL } };
	struct proc r;

	cr_assert_not_null(deep);
	memset(deep, '[', depth);
	memset(deep + depth, ']', depth);
	append(&in, &in_len, "[", 1);
	append(&in, &in_len, deep, 2 * depth);
	append(&in, &in_len, ", 0]", 4);
	write_file(path, in, in_len);
	append(&want, &want_len, "[\n", 2);
	append(&want, &want_len, deep, 2 * depth);
	append(&want, &want_len, ",\n0\n]\n", 6);

	for (size_t m = 0; m < COUNT(modes); m++) {
		const char *args[MAX_ARGS + 1] = { "-p", "identity" };
		struct proc_spec spec = { .args = args };
		size_t na = 2;

		for (size_t k = 0; modes[m][k]; k++)
			args[na++] = modes[m][k];
		args[na++] = path;
		run_spec(&spec, &r);
		expect_exit(&r, 0);
		expect_same_bytes(r.cmd, r.out, r.out_len, want, want_len);
		proc_release(&r);
		for (size_t p = 0; p < COUNT(parsers); p++) {
			char *line;

			args[1] = parsers[p].plugin;
			run_spec(&spec, &r);
			expect_exit(&r, 1);
			cr_expect(strncmp(r.out, "[\nnull,\n", 8) == 0, "%s: %.20s", r.cmd, r.out);
			cr_expect(parses(r.out), "%s: stdout is not JSON", r.cmd);
			line = failure_line(r.err, 0);
			cr_expect_not_null(line, "%s: %s", r.cmd, r.err);
			if (line) {
				cr_expect_not_null(strstr(line, "failed in deserialize"), "%s: %s", r.cmd,
				                   line);
				cr_expect_not_null(strstr(line, parsers[p].why), "%s: %s", r.cmd, line);
			}
			free(line);
			cr_expect_eq(count_of(r.err, " failed in "), 1, "%s: %s", r.cmd, r.err);
			proc_release(&r);
		}
	}
	free(in);
	free(want);
	free(deep);
}

static int same_file_bytes(const char *a_path, size_t a_off, const char *b_path, size_t b_off,
                           size_t len)
{
	int fa = open(a_path, O_RDONLY | O_CLOEXEC), fb = open(b_path, O_RDONLY | O_CLOEXEC);
	const char *a, *b;
	int same;

	cr_assert(fa >= 0 && fb >= 0);
	a = mmap(NULL, a_off + len, PROT_READ, MAP_PRIVATE, fa, 0);
	b = mmap(NULL, b_off + len, PROT_READ, MAP_PRIVATE, fb, 0);
	cr_assert(a != MAP_FAILED && b != MAP_FAILED);
	same = memcmp(a + a_off, b + b_off, len) == 0;
	munmap((void *)a, a_off + len);
	munmap((void *)b, b_off + len);
	close(fa);
	close(fb);
	return same;
}

/* A 100 MB string, with escapes and multi-byte characters all along it,
 * goes through identity intact. */
Test(input, huge_string_item_comes_back_intact)
{
	static const char piece[] = "abc \\\"quoted\\\" \\u00e9\\n \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 "
	                            "0123456789 \\\\ /";
	const size_t reps = (100u << 20) / (sizeof(piece) - 1);
	const size_t item_len = 2 + reps * (sizeof(piece) - 1);
	const char *in = scratch_path(2, "huge.json"), *out = scratch_path(1, "out.json");
	const char *args[] = { "-p", "identity", "-j", "2", in, NULL };
	struct proc_spec spec = { .args = args, .stdout_path = out };
	struct stat st;
	struct proc r;
	FILE *f = fopen(in, "w");

	cr_assert_not_null(f);
	fputs("[\"", f);
	for (size_t i = 0; i < reps; i++)
		fwrite(piece, 1, sizeof(piece) - 1, f);
	fputs("\"]", f);
	cr_assert_eq(fclose(f), 0);

	run_spec(&spec, &r);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.err, "", "%s: stderr", r.cmd);
	cr_assert_eq(stat(out, &st), 0);
	/* "[\n" item "\n]\n" */
	cr_assert_eq((size_t)st.st_size, item_len + 5, "%s: output of %zu bytes, want %zu", r.cmd,
	             (size_t)st.st_size, item_len + 5);
	cr_expect(same_file_bytes(in, 1, out, 2, item_len), "%s: the item changed", r.cmd);
	proc_release(&r);
}

/* ---- 2. a parser conformance table, through the splitter ---- */

enum verdict { ACCEPT, REJECT, EITHER };

/* Small documents in the manner of a JSON parser test suite (written for
 * pexec, not copied from one).  Each goes in as the one item of an array and
 * as an NDJSON line.  Accepted: identity gives it back byte for byte.
 * Rejected: exit 2 with its position.  Either: what RFC 8259 leaves open
 * (lone surrogates, numbers no double holds); only no crash and no hang. */
static const struct conformance {
	enum verdict verdict;
	const char *doc;
	size_t len;
} docs[] = {
	/* numbers */
	{ ACCEPT, DOC("0") },
	{ ACCEPT, DOC("-0") },
	{ ACCEPT, DOC("1") },
	{ ACCEPT, DOC("-1") },
	{ ACCEPT, DOC("1234567890123456789012345678901234567890") },
	{ ACCEPT, DOC("1.5") },
	{ ACCEPT, DOC("-0.0") },
	{ ACCEPT, DOC("0.5e1") },
	{ ACCEPT, DOC("1e10") },
	{ ACCEPT, DOC("1E+10") },
	{ ACCEPT, DOC("1e-10") },
	{ ACCEPT, DOC("-1.25E-3") },
	{ ACCEPT, DOC("0e0") },
	{ ACCEPT, DOC("1.0E-0") },
	{ ACCEPT, DOC("1e400") },
	{ ACCEPT, DOC("-1e-400") },
	{ REJECT, DOC("01") },
	{ REJECT, DOC("-01") },
	{ REJECT, DOC("-") },
	{ REJECT, DOC("--1") },
	{ REJECT, DOC("-a") },
	{ REJECT, DOC("1.") },
	{ REJECT, DOC(".5") },
	{ REJECT, DOC("1.e5") },
	{ REJECT, DOC("1e") },
	{ REJECT, DOC("1e+") },
	{ REJECT, DOC("1e1.5") },
	{ REJECT, DOC("0.1.2") },
	{ REJECT, DOC("1-") },
	{ REJECT, DOC("+1") },
	{ REJECT, DOC("0x1F") },
	{ REJECT, DOC("NaN") },
	{ REJECT, DOC("Infinity") },
	{ REJECT, DOC("-Infinity") },
	{ EITHER, DOC("1e99999999999999999999") },
	{ EITHER, DOC("123e-999999") },
	{ EITHER, DOC("100000000000000000000000000000000000000000000000000000000000000000000000") },
	/* literals */
	{ ACCEPT, DOC("true") },
	{ ACCEPT, DOC("false") },
	{ ACCEPT, DOC("null") },
	{ REJECT, DOC("tru") },
	{ REJECT, DOC("True") },
	{ REJECT, DOC("nul") },
	{ REJECT, DOC("nulll") },
	{ REJECT, DOC("undefined") },
	/* strings */
	{ ACCEPT, DOC("\"\"") },
	{ ACCEPT, DOC("\"abc\"") },
	{ ACCEPT, DOC("\" \"") },
	{ ACCEPT, DOC("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"") },
	{ ACCEPT, DOC("\"\\u0000\"") },
	{ ACCEPT, DOC("\"\\u00e9\\u20AC\"") },
	{ ACCEPT, DOC("\"\\ud83d\\ude00\"") },
	{ ACCEPT, DOC("\"\\uFFFF\"") },
	{ ACCEPT, DOC("\"\\u005C\"") },
	{ ACCEPT, DOC("\"\xc3\xa9\"") },
	{ ACCEPT, DOC("\"\xe2\x82\xac\"") },
	{ ACCEPT, DOC("\"\xf0\x9f\x98\x80\"") },
	{ ACCEPT, DOC("\"\xef\xbf\xbf\"") },
	{ ACCEPT, DOC("\"\xf4\x8f\xbf\xbf\"") },
	{ ACCEPT, DOC("\"\x7f\"") },
	{ ACCEPT, DOC("\"a/b\"") },
	{ ACCEPT, DOC("\"]\"") },
	{ ACCEPT, DOC("\",\"") },
	{ ACCEPT, DOC("\"[{\"") },
	{ REJECT, DOC("'a'") },
	{ REJECT, DOC("\"abc") },
	{ REJECT, DOC("\"\\\"") },
	{ REJECT, DOC("\"\\x41\"") },
	{ REJECT, DOC("\"\\U0041\"") },
	{ REJECT, DOC("\"\\u\"") },
	{ REJECT, DOC("\"\\u12\"") },
	{ REJECT, DOC("\"\\u12G4\"") },
	{ REJECT, DOC("\"a\tb\"") },
	{ REJECT, DOC("\"a\nb\"") },
	{ REJECT, DOC("\"\x01\"") },
	{ REJECT, DOC("\"\x1f\"") },
	{ REJECT, DOC("\"\xff\"") },
	{ REJECT, DOC("\"\x80\"") },
	{ REJECT, DOC("\"\xc0\xaf\"") },
	{ REJECT, DOC("\"\xc3\"") },
	{ REJECT, DOC("\"\xe2\x82\"") },
	{ REJECT, DOC("\"\xed\xa0\x80\"") },
	{ REJECT, DOC("\"\xf4\x90\x80\x80\"") },
	{ REJECT, DOC("\"\xf8\x88\x80\x80\x80\"") },
	{ EITHER, DOC("\"\\ud800\"") },
	{ EITHER, DOC("\"\\udc00\"") },
	{ EITHER, DOC("\"\\ud800\\u0041\"") },
	{ EITHER, DOC("\"\\udbff\\udfff\"") },
	{ EITHER, DOC("\"\xef\xb7\x90\"") },
	{ EITHER, DOC("\"\\u0000abc\\u0000\"") },
	/* arrays and objects */
	{ ACCEPT, DOC("[]") },
	{ ACCEPT, DOC("{}") },
	{ ACCEPT, DOC("[1,2,3]") },
	{ ACCEPT, DOC("[ 1 , 2 ]") },
	{ ACCEPT, DOC("[\"\"]") },
	{ ACCEPT, DOC("[null,[null,[null]]]") },
	{ ACCEPT, DOC("[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]") },
	{ ACCEPT, DOC("{\"a\":1,\"b\":[true,false,null]}") },
	{ ACCEPT, DOC("{\"\":0}") },
	{ ACCEPT, DOC("{\"a\":{\"a\":{\"a\":{}}}}") },
	{ ACCEPT, DOC("{\"a\" : 1 , \"a\" : 2}") },
	{ ACCEPT, DOC("{\"k\":[{},[],\"\",0,-0.0]}") },
	{ ACCEPT, DOC("{\"}\":\"{\"}") },
	{ ACCEPT, DOC("[\t\r\n1\r\n]") },
	{ REJECT, DOC("[1,]") },
	{ REJECT, DOC("[,1]") },
	{ REJECT, DOC("[1 2]") },
	{ REJECT, DOC("[1,,2]") },
	{ REJECT, DOC("[-]") },
	{ REJECT, DOC("{\"a\"}") },
	{ REJECT, DOC("{\"a\":}") },
	{ REJECT, DOC("{\"a\" 1}") },
	{ REJECT, DOC("{a:1}") },
	{ REJECT, DOC("{\"a\":1,}") },
	{ REJECT, DOC("{,}") },
	{ REJECT, DOC("{1:2}") },
	{ REJECT, DOC("{\"a\":[}") },
	{ REJECT, DOC("[1]]") },
	{ REJECT, DOC("[1}") },
	{ REJECT, DOC("{\"a\":1]") },
	{ REJECT, DOC("[") },
	{ REJECT, DOC("{") },
	{ REJECT, DOC("]") },
	{ REJECT, DOC("}") },
	/* what is not JSON at all */
	{ REJECT, DOC("/* c */ 1") },
	{ REJECT, DOC("1 // c") },
	{ REJECT, DOC("# c") },
	{ REJECT, DOC("\"a\" \"b\"") },
	{ REJECT, DOC("true false") },
	{ REJECT, DOC("\xc3\xa9") },
	{ REJECT, DOC("1\xef\xbb\xbf") },
	{ REJECT, DOC("\0") },
	{ REJECT, DOC("nu\0ll") },
	{ REJECT, DOC("\x0c" "1") },
};

/* The position in a malformed-input message, checked against the input:
 * the byte is within it (or at its end), and on line 1 the column is the
 * byte + 1. */
static void expect_position(const struct proc *r, const char *what, size_t in_len)
{
	const char *at = strstr(r->err, " at line ");
	unsigned long line, col, byte;

	cr_expect_not_null(at, "%s: %s: no position: %s", what, r->cmd, r->err);
	if (!at)
		return;
	cr_expect_eq(sscanf(at, " at line %lu, column %lu, byte %lu", &line, &col, &byte), 3,
	             "%s: %s: %s", what, r->cmd, r->err);
	cr_expect_leq(byte, in_len, "%s: %s: byte %lu past the input", what, r->cmd, byte);
	if (line == 1)
		cr_expect_eq(col, byte + 1, "%s: %s: %s", what, r->cmd, r->err);
}

static void check_conformance(enum verdict verdict)
{
	const char *path = scratch_path(2, "doc.json");
	size_t checked = 0;

	for (size_t i = 0; i < COUNT(docs); i++) {
		const struct conformance *d = &docs[i];
		const int has_newline = memchr(d->doc, '\n', d->len) || memchr(d->doc, '\r', d->len);

		if (d->verdict != verdict)
			continue;
		checked++;
		/* As an array's one item, and (for one-line documents) as an NDJSON
		 * line. */
		for (int nd = 0; nd < 2; nd++) {
			const char *args[] = { "-p", "identity", "-j", "1", "--input-format",
				               nd ? "ndjson" : "json", "--output-format",
				               nd ? "ndjson" : "json", path, NULL };
			struct proc_spec spec = { .args = args };
			char *in = NULL, *want = NULL, what[32], how[128];
			size_t in_len = 0, want_len = 0;
			struct proc r;
			int accepted;

			if (nd && has_newline && verdict != REJECT)
				continue;
			append(&in, &in_len, nd ? "" : "[", nd ? 0 : 1);
			append(&in, &in_len, d->doc, d->len);
			append(&in, &in_len, nd ? "\n" : "]", 1);
			append(&want, &want_len, nd ? "" : "[\n", nd ? 0 : 2);
			append(&want, &want_len, d->doc, d->len);
			append(&want, &want_len, nd ? "\n" : "\n]\n", nd ? 1 : 3);
			write_file(path, in, in_len);
			snprintf(what, sizeof(what), "doc %zu (%s)", i, nd ? "ndjson" : "json");

			run_spec(&spec, &r);
			cr_expect_not(r.hung, "%s: %s: hung", what, r.cmd);
			cr_expect(WIFEXITED(r.status), "%s: %s: %s", what, r.cmd,
			          describe(r.status, how, sizeof(how)));
			cr_expect_eq(r.strays, 0, "%s: %s: processes left behind", what, r.cmd);
			accepted = WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0;
			if (verdict == ACCEPT || (verdict == EITHER && accepted)) {
				cr_expect(accepted, "%s: %s: refused: %s", what, r.cmd, r.err);
				if (accepted)
					expect_same_bytes(what, r.out, r.out_len, want, want_len);
				cr_expect_str_eq(r.err, "", "%s: %s: stderr", what, r.cmd);
			} else {
				cr_expect(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 2,
				          "%s: %s: %s, want exit 2; stdout: %s", what, r.cmd,
				          describe(r.status, how, sizeof(how)), r.out);
				cr_expect_not_null(strstr(r.err, "malformed input"), "%s: %s: %s", what,
				                   r.cmd, r.err);
				cr_expect_eq(line_count(r.err), 1, "%s: %s: %s", what, r.cmd, r.err);
				/* (NDJSON output is a line per result: see
				 * malformed_ndjson_line_gives_no_result.) */
				if (!nd)
					cr_expect_not(parses(r.out), "%s: %s: stdout parses", what, r.cmd);
				expect_position(&r, what, in_len);
			}
			proc_release(&r);
			free(in);
			free(want);
		}
	}
	cr_assert_gt(checked, 0);
}

Test(input, conformance_accepted_documents_round_trip)
{
	check_conformance(ACCEPT);
}

Test(input, conformance_rejected_documents_exit_2_with_the_position)
{
	check_conformance(REJECT);
}

Test(input, conformance_open_documents_neither_crash_nor_hang)
{
	check_conformance(EITHER);
}

Test(input, conformance_table_is_large_enough)
{
	size_t n[3] = { 0 };

	for (size_t i = 0; i < COUNT(docs); i++)
		n[docs[i].verdict]++;
	cr_expect_geq(COUNT(docs), 60);
	cr_expect(n[ACCEPT] >= 20 && n[REJECT] >= 20 && n[EITHER] >= 5, "%zu %zu %zu", n[ACCEPT],
	          n[REJECT], n[EITHER]);
}

/* The splitter once handed over an NDJSON line's value as soon as the value
 * ended, and only looked at the rest of the line when asked for the next
 * item: a malformed line such as `nulll` or `1 // c` ran as `null` or `1`,
 * and its result was written (with -j1, nearly always) before the run
 * stopped with exit 2.  A value is handed over only once the rest of its
 * line is known to be blank. */
Test(input, malformed_ndjson_line_gives_no_result)
{
	static const char *const lines[] = {
		"nulll\n", "1 // c\n", "\"a\" \"b\"\n", "true false\n", "[1]]\n", "{}x\n",
	};

	for (size_t i = 0; i < COUNT(lines); i++) {
		struct proc r;

		run(&r, lines[i], "-p", "identity", "-j", "1", "--input-format", "ndjson",
		    "--output-format", "ndjson", NULL);
		expect_exit(&r, 2);
		cr_expect_str_eq(r.out, "", "%s: a result for the malformed line %s", r.cmd, lines[i]);
		proc_release(&r);
	}
}
