/*
 * test_split.c - the input splitter: which inputs it accepts and the exact
 * items it returns, which it refuses and the exact position it names, and
 * deep nesting.  Streaming and the contract around the scan are in
 * test_split_stream.c.
 *
 * Every table case runs three ways: over memory, over a file, and over a
 * socket that hands the splitter one byte per read, so that each state of
 * the scanner is also left and resumed mid-token.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "split/split.h"
#include "split_run.h"
#include "util.h"

#define JSON PEXEC_FORMAT_JSON
#define NDJSON PEXEC_FORMAT_NDJSON

/* An input given as a string literal, NUL bytes included. */
#define IN(lit) lit, sizeof(lit) - 1

#define MAX_ITEMS 16

typedef struct accept_case {
	pexec_format format;
	const char *in;
	size_t len;
	const char *items[MAX_ITEMS]; /* NULL-terminated */
} accept_case;

typedef struct reject_case {
	pexec_format format;
	const char *in;
	size_t len;
	const char *where; /* "line L, column C, byte B" */
	const char *why;
} reject_case;


/* One byte per read(): a SOCK_SEQPACKET socket returns one write per read. */
static void split_bytewise(const char *in, size_t len, pexec_format format, outcome *o)
{
	int fds[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds), 0);
	split_fed(fds, in, len, 1, format, o);
}

typedef void (*split_fn)(const char *, size_t, pexec_format, outcome *);

static const struct {
	const char *name;
	split_fn fn;
} ways[] = {
	{ "memory", split_mem },
	{ "file", split_file },
	{ "bytewise", split_bytewise },
};

static void check_accept(const accept_case *cases, size_t ncases)
{
	for (size_t i = 0; i < ncases; i++) {
		const accept_case *c = &cases[i];

		for (size_t w = 0; w < sizeof(ways) / sizeof(ways[0]); w++) {
			outcome o;
			size_t n = 0;

			ways[w].fn(c->in, c->len, c->format, &o);
			cr_expect_eq(o.rc, 0, "case %zu (%s) %s: rc %d: %s", i, c->in,
			             ways[w].name, o.rc, o.err.msg);
			while (n < MAX_ITEMS && c->items[n])
				n++;
			cr_expect_eq(o.n, n, "case %zu (%s) %s: %zu items, want %zu", i,
			             c->in, ways[w].name, o.n, n);
			for (size_t k = 0; k < n && k < o.n; k++) {
				cr_expect_eq(o.lens[k], strlen(c->items[k]),
				             "case %zu item %zu", i, k);
				cr_expect_str_eq(o.items[k], c->items[k], "case %zu (%s) %s: item %zu",
				                 i, c->in, ways[w].name, k);
			}
			cr_expect_eq(o.offset, c->len, "case %zu %s: offset", i, ways[w].name);
			outcome_release(&o);
		}
	}
}

static void check_reject(const reject_case *cases, size_t ncases)
{
	for (size_t i = 0; i < ncases; i++) {
		const reject_case *c = &cases[i];
		char want[PEXEC_ERROR_MAX];

		snprintf(want, sizeof(want), "malformed input 't' at %s: %s", c->where, c->why);
		for (size_t w = 0; w < sizeof(ways) / sizeof(ways[0]); w++) {
			outcome o;

			ways[w].fn(c->in, c->len, c->format, &o);
			cr_expect_eq(o.rc, -PEXEC_EINPUT, "case %zu %s: rc %d", i,
			             ways[w].name, o.rc);
			cr_expect_str_eq(o.err.msg, want, "case %zu %s", i, ways[w].name);
			outcome_release(&o);
		}
	}
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- accepted ---- */

Test(split, accepts_empty_array_and_whitespace_variants)
{
	static const accept_case cases[] = {
		{ JSON, IN("[]"), { NULL } },
		{ JSON, IN(" \t\r\n[ \n\t]\r\n  "), { NULL } },
		{ JSON, IN("[1,2,3]"), { "1", "2", "3" } },
		{ JSON, IN("\n[\n  1 ,\r\n\t2\t,3\n]\n"), { "1", "2", "3" } },
		{ JSON, IN("[ { \"a\" : 1 ,\n \"b\" : [ 1 , 2 ] } ]"),
		  { "{ \"a\" : 1 ,\n \"b\" : [ 1 , 2 ] }" } },
	};

	check_accept(cases, COUNT(cases));
}

Test(split, accepts_numbers_and_keeps_their_text)
{
	static const accept_case cases[] = {
		{ JSON, IN("[0,-0,1,-1,0.5,-1.5e10,1E+2,2e-3,0e0,10.25E-07]"),
		  { "0", "-0", "1", "-1", "0.5", "-1.5e10", "1E+2", "2e-3", "0e0",
		    "10.25E-07" } },
		{ JSON, IN("[12345678901234567890123,-9223372036854775808,18446744073709551615]"),
		  { "12345678901234567890123", "-9223372036854775808",
		    "18446744073709551615" } },
		{ JSON, IN("[3.141592653589793238462643383279502884197]"),
		  { "3.141592653589793238462643383279502884197" } },
	};

	check_accept(cases, COUNT(cases));
}

Test(split, accepts_strings_with_escapes_and_utf8)
{
	static const accept_case cases[] = {
		{ JSON, IN("[\"a\",\"\",\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]"),
		  { "\"a\"", "\"\"", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"" } },
		{ JSON, IN("[\"\\u00e9\\uD83D\\uDE00\",\"\\ud800\",\"\\uABCD\"]"),
		  { "\"\\u00e9\\uD83D\\uDE00\"", "\"\\ud800\"", "\"\\uABCD\"" } },
		/* 2, 3 and 4 byte sequences, the highest of each, U+10FFFF, DEL. */
		{ JSON, IN("[\"\xc3\xa9\",\"\xe4\xb8\xad\xe6\x96\x87\",\"\xf0\x9f\x98\x80\","
		           "\"\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf\",\"\x7f\"]"),
		  { "\"\xc3\xa9\"", "\"\xe4\xb8\xad\xe6\x96\x87\"", "\"\xf0\x9f\x98\x80\"",
		    "\"\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf\"", "\"\x7f\"" } },
		{ JSON, IN("[\"[1,2]\",\"{\\\"a\\\":]\"]"), { "\"[1,2]\"", "\"{\\\"a\\\":]\"" } },
	};

	check_accept(cases, COUNT(cases));
}

Test(split, accepts_nested_containers_and_literals)
{
	static const accept_case cases[] = {
		{ JSON, IN("[[1,[2,[3]]],{\"a\":{\"b\":[true,false,null]}},{},[],[{}],[[]]]"),
		  { "[1,[2,[3]]]", "{\"a\":{\"b\":[true,false,null]}}", "{}", "[]", "[{}]",
		    "[[]]" } },
		{ JSON, IN("[true,false,null]"), { "true", "false", "null" } },
		{ JSON, IN("[{\"\":\"\",\"k\":[{\"x\":-1e-1}]}]"),
		  { "{\"\":\"\",\"k\":[{\"x\":-1e-1}]}" } },
	};

	check_accept(cases, COUNT(cases));
}

Test(split, skips_a_bom)
{
	static const accept_case cases[] = {
		{ JSON, IN("\xef\xbb\xbf[1]"), { "1" } },
		{ JSON, IN("\xef\xbb\xbf \n[]"), { NULL } },
		{ NDJSON, IN("\xef\xbb\xbf{\"a\":1}\n"), { "{\"a\":1}" } },
		{ NDJSON, IN("\xef\xbb\xbf"), { NULL } },
	};

	check_accept(cases, COUNT(cases));
}

Test(split, ndjson_takes_one_value_per_line)
{
	static const accept_case cases[] = {
		{ NDJSON, IN("1\n\"a\"\n[1, 2]\n{\"k\":null}\ntrue\n"),
		  { "1", "\"a\"", "[1, 2]", "{\"k\":null}", "true" } },
		{ NDJSON, IN("\n\n  \n1\n\t\n 2 \n\n"), { "1", "2" } },
		{ NDJSON, IN("1\r\n{\"a\":2}\r\n\r\n"), { "1", "{\"a\":2}" } },
		{ NDJSON, IN("1\n2"), { "1", "2" } },
		{ NDJSON, IN("[1]\n{\"a\":1}"), { "[1]", "{\"a\":1}" } },
		{ NDJSON, IN("\"x\""), { "\"x\"" } },
		{ NDJSON, IN("-0.5e3"), { "-0.5e3" } },
		{ NDJSON, IN("null  \t\r"), { "null" } },
		{ NDJSON, IN("[ 1 ,\t2 ]\n"), { "[ 1 ,\t2 ]" } },
		{ NDJSON, IN(""), { NULL } },
		{ NDJSON, IN(" \n\r\n\t"), { NULL } },
	};

	check_accept(cases, COUNT(cases));
}

/* ---- refused, with the position ---- */

Test(split, rejects_empty_input_and_non_array_top_level)
{
	static const reject_case cases[] = {
		{ JSON, IN(""), "line 1, column 1, byte 0", "empty input: expected a JSON array" },
		{ JSON, IN("  \n "), "line 2, column 2, byte 4", "empty input: expected a JSON array" },
		{ JSON, IN("\xef\xbb\xbf"), "line 1, column 4, byte 3",
		  "empty input: expected a JSON array" },
		/* Each with a hint at the format the input looks like. */
		{ JSON, IN("{}"), "line 1, column 1, byte 0",
		  "expected '[' to begin the top-level array, found an object (for one JSON value "
		  "per line, use --input-format ndjson; for the object's values as the items, "
		  "jq -c '.[]')" },
		{ JSON, IN("{\"a\":1}\n{\"a\":2}\n"), "line 1, column 1, byte 0",
		  "expected '[' to begin the top-level array, found an object (for one JSON value "
		  "per line, use --input-format ndjson; for the object's values as the items, "
		  "jq -c '.[]')" },
		{ JSON, IN(" 1"), "line 1, column 2, byte 1",
		  "expected '[' to begin the top-level array (for one JSON value per line, use "
		  "--input-format ndjson)" },
		{ JSON, IN("\xef\xbb\xbf\"a\""), "line 1, column 4, byte 3",
		  "expected '[' to begin the top-level array (for one JSON value per line, use "
		  "--input-format ndjson)" },
		{ JSON, IN("./a.txt\n./b.txt\n"), "line 1, column 1, byte 0",
		  "expected '[' to begin the top-level array (for one item per line of text, use "
		  "--input-format lines)" },
	};

	check_reject(cases, COUNT(cases));
}

Test(split, rejects_trailing_garbage)
{
	static const reject_case cases[] = {
		{ JSON, IN("[1] x"), "line 1, column 5, byte 4",
		  "unexpected data after the top-level array" },
		{ JSON, IN("[1][2]"), "line 1, column 4, byte 3",
		  "unexpected data after the top-level array" },
		{ JSON, IN("[]\n\n,"), "line 3, column 1, byte 4",
		  "unexpected data after the top-level array" },
		/* A value first on a line of its own: NDJSON of arrays. */
		{ JSON, IN("[1]\n[2]\n"), "line 2, column 1, byte 4",
		  "unexpected data after the top-level array (it looks like one JSON value per "
		  "line: use --input-format ndjson)" },
		{ JSON, IN("[1]\r\n \t{\"b\":2}"), "line 2, column 3, byte 7",
		  "unexpected data after the top-level array (it looks like one JSON value per "
		  "line: use --input-format ndjson)" },
		{ JSON, IN("[1]\n x [2]"), "line 2, column 2, byte 5",
		  "unexpected data after the top-level array" },
	};

	check_reject(cases, COUNT(cases));
}

Test(split, rejects_truncated_input)
{
	static const reject_case cases[] = {
		{ JSON, IN("["), "line 1, column 2, byte 1",
		  "unexpected end of input inside the top-level array" },
		{ JSON, IN("[1"), "line 1, column 3, byte 2",
		  "unexpected end of input inside the top-level array" },
		{ JSON, IN("[1,\n"), "line 2, column 1, byte 4",
		  "unexpected end of input inside the top-level array" },
		{ JSON, IN("[\"ab"), "line 1, column 5, byte 4",
		  "unexpected end of input inside a string" },
		{ JSON, IN("[\"a\\"), "line 1, column 5, byte 4",
		  "unexpected end of input inside a string" },
		{ JSON, IN("[\"\\u12"), "line 1, column 7, byte 6",
		  "unexpected end of input inside a string" },
		{ JSON, IN("[[1,2"), "line 1, column 6, byte 5",
		  "unexpected end of input inside an array" },
		{ JSON, IN("[{\"a\":1"), "line 1, column 8, byte 7",
		  "unexpected end of input inside an object" },
		{ JSON, IN("[{\"a\""), "line 1, column 6, byte 5",
		  "unexpected end of input inside an object" },
		{ JSON, IN("[-"), "line 1, column 3, byte 2",
		  "unexpected end of input inside a number" },
		{ JSON, IN("[1."), "line 1, column 4, byte 3",
		  "unexpected end of input inside a number" },
		{ JSON, IN("[1e-"), "line 1, column 5, byte 4",
		  "unexpected end of input inside a number" },
		{ JSON, IN("[tru"), "line 1, column 5, byte 4",
		  "unexpected end of input inside a literal" },
		{ NDJSON, IN("[1,"), "line 1, column 4, byte 3",
		  "unexpected end of input inside an array" },
		{ NDJSON, IN("1\n\"abc"), "line 2, column 5, byte 6",
		  "unexpected end of input inside a string" },
	};

	check_reject(cases, COUNT(cases));
}

Test(split, rejects_stray_and_trailing_commas)
{
	static const reject_case cases[] = {
		{ JSON, IN("[,1]"), "line 1, column 2, byte 1", "unexpected ',' (expected a value)" },
		{ JSON, IN("[1,,2]"), "line 1, column 4, byte 3", "unexpected ',' (expected a value)" },
		{ JSON, IN("[1,]"), "line 1, column 4, byte 3", "trailing comma before ']'" },
		{ JSON, IN("[1,\n ]"), "line 2, column 2, byte 5", "trailing comma before ']'" },
		{ JSON, IN("[[1,]]"), "line 1, column 5, byte 4", "trailing comma before ']'" },
		{ JSON, IN("[{\"a\":1,}]"), "line 1, column 9, byte 8", "trailing comma before '}'" },
		{ JSON, IN("[[,]]"), "line 1, column 3, byte 2", "unexpected ',' (expected a value)" },
		{ JSON, IN("[{,}]"), "line 1, column 3, byte 2",
		  "unexpected ',' (expected a string key or '}')" },
		{ JSON, IN("[{\"a\":1,,}]"), "line 1, column 9, byte 8",
		  "unexpected ',' (expected a string key)" },
	};

	check_reject(cases, COUNT(cases));
}

Test(split, rejects_structural_mistakes)
{
	static const reject_case cases[] = {
		{ JSON, IN("[1 2]"), "line 1, column 4, byte 3", "unexpected '2' (expected ',' or ']')" },
		{ JSON, IN("[[1 2]]"), "line 1, column 5, byte 4", "unexpected '2' (expected ',' or ']')" },
		{ JSON, IN("[{\"a\" 1}]"), "line 1, column 7, byte 6", "unexpected '1' (expected ':')" },
		{ JSON, IN("[{\"a\"=1}]"), "line 1, column 6, byte 5", "unexpected '=' (expected ':')" },
		{ JSON, IN("[{1:2}]"), "line 1, column 3, byte 2",
		  "unexpected '1' (expected a string key or '}')" },
		{ JSON, IN("[{a:2}]"), "line 1, column 3, byte 2",
		  "unexpected 'a' (expected a string key or '}')" },
		{ JSON, IN("[{\"a\":1,2:3}]"), "line 1, column 9, byte 8",
		  "unexpected '2' (expected a string key)" },
		{ JSON, IN("[{\"a\":}]"), "line 1, column 7, byte 6", "unexpected '}' (expected a value)" },
		{ JSON, IN("[[1}]"), "line 1, column 4, byte 3", "unexpected '}' (expected ',' or ']')" },
		{ JSON, IN("[{\"a\":1]]"), "line 1, column 8, byte 7",
		  "unexpected ']' (expected ',' or '}')" },
		{ JSON, IN("[]]"), "line 1, column 3, byte 2", "unexpected data after the top-level array" },
		{ JSON, IN("[\n  1,\n  x\n]"), "line 3, column 3, byte 9",
		  "unexpected 'x' (expected a value)" },
		{ JSON, IN("[\r\n1,\r\n]"), "line 3, column 1, byte 7", "trailing comma before ']'" },
	};

	check_reject(cases, COUNT(cases));
}

Test(split, rejects_bad_escapes_and_control_characters)
{
	static const reject_case cases[] = {
		{ JSON, IN("[\"\\x\"]"), "line 1, column 4, byte 3", "invalid escape '\\x' in string" },
		{ JSON, IN("[\"ab\\'\"]"), "line 1, column 6, byte 5", "invalid escape '\\'' in string" },
		{ JSON, IN("[\"\\U0041\"]"), "line 1, column 4, byte 3", "invalid escape '\\U' in string" },
		{ JSON, IN("[\"\\\x01\"]"), "line 1, column 4, byte 3",
		  "invalid escape: byte 0x01 after '\\' in string" },
		{ JSON, IN("[\"\\u12g4\"]"), "line 1, column 7, byte 6",
		  "invalid \\u escape in string: 'g' is not a hex digit" },
		{ JSON, IN("[\"\\u12\"]"), "line 1, column 7, byte 6",
		  "invalid \\u escape in string: '\"' is not a hex digit" },
		{ JSON, IN("[\"a\x01\"]"), "line 1, column 4, byte 3", "control character 0x01 in string" },
		{ JSON, IN("[\"a\nb\"]"), "line 1, column 4, byte 3", "control character 0x0A in string" },
		{ JSON, IN("[\"\t\"]"), "line 1, column 3, byte 2", "control character 0x09 in string" },
		{ JSON, IN("[\"\x1f\"]"), "line 1, column 3, byte 2", "control character 0x1F in string" },
		{ NDJSON, IN("\"a\rb\"\n"), "line 1, column 3, byte 2",
		  "control character 0x0D in string" },
	};

	check_reject(cases, COUNT(cases));
}

Test(split, rejects_non_json_numbers)
{
	static const reject_case cases[] = {
		{ JSON, IN("[NaN]"), "line 1, column 2, byte 1", "unexpected 'N' (expected a value)" },
		{ JSON, IN("[Infinity]"), "line 1, column 2, byte 1", "unexpected 'I' (expected a value)" },
		{ JSON, IN("[-Infinity]"), "line 1, column 3, byte 2",
		  "invalid number: expected a digit after '-'" },
		{ JSON, IN("[0x1F]"), "line 1, column 3, byte 2", "invalid number: unexpected 'x'" },
		{ JSON, IN("[01]"), "line 1, column 3, byte 2", "invalid number: leading zero" },
		{ JSON, IN("[-01]"), "line 1, column 4, byte 3", "invalid number: leading zero" },
		{ JSON, IN("[00]"), "line 1, column 3, byte 2", "invalid number: leading zero" },
		{ JSON, IN("[+1]"), "line 1, column 2, byte 1", "invalid number: leading '+'" },
		{ JSON, IN("[.5]"), "line 1, column 2, byte 1", "invalid number: no digit before '.'" },
		{ JSON, IN("[1.]"), "line 1, column 4, byte 3", "invalid number: expected a digit after '.'" },
		{ JSON, IN("[1.e5]"), "line 1, column 4, byte 3",
		  "invalid number: expected a digit after '.'" },
		{ JSON, IN("[1e]"), "line 1, column 4, byte 3",
		  "invalid number: expected a digit in the exponent" },
		{ JSON, IN("[1e+]"), "line 1, column 5, byte 4",
		  "invalid number: expected a digit in the exponent" },
		{ JSON, IN("[1.2.3]"), "line 1, column 5, byte 4", "invalid number: unexpected '.'" },
		{ JSON, IN("[12abc]"), "line 1, column 4, byte 3", "invalid number: unexpected 'a'" },
		{ JSON, IN("[1e5e]"), "line 1, column 5, byte 4", "invalid number: unexpected 'e'" },
		{ JSON, IN("[--1]"), "line 1, column 3, byte 2",
		  "invalid number: expected a digit after '-'" },
		{ NDJSON, IN("1-\n"), "line 1, column 2, byte 1", "invalid number: unexpected '-'" },
	};

	check_reject(cases, COUNT(cases));
}

Test(split, rejects_comments_quotes_and_bad_literals)
{
	static const reject_case cases[] = {
		{ JSON, IN("[1 // c\n]"), "line 1, column 4, byte 3",
		  "unexpected '/' (comments are not allowed)" },
		{ JSON, IN("[/* c */ 1]"), "line 1, column 2, byte 1",
		  "unexpected '/' (comments are not allowed)" },
		{ NDJSON, IN("1 # c\n"), "line 1, column 3, byte 2",
		  "unexpected '#' after the value (expected end of line)" },
		{ JSON, IN("['a']"), "line 1, column 2, byte 1",
		  "unexpected ''' (strings take double quotes)" },
		{ JSON, IN("[{'a':1}]"), "line 1, column 3, byte 2",
		  "unexpected ''' (expected a string key or '}')" },
		{ JSON, IN("[True]"), "line 1, column 2, byte 1", "unexpected 'T' (expected a value)" },
		{ JSON, IN("[nul]"), "line 1, column 5, byte 4", "invalid literal (expected 'null')" },
		{ JSON, IN("[fals3]"), "line 1, column 6, byte 5", "invalid literal (expected 'false')" },
		{ JSON, IN("[truex]"), "line 1, column 6, byte 5", "unexpected 'x' (expected ',' or ']')" },
		{ JSON, IN("[undefined]"), "line 1, column 2, byte 1", "unexpected 'u' (expected a value)" },
	};

	check_reject(cases, COUNT(cases));
}

Test(split, rejects_nul_bytes)
{
	static const reject_case cases[] = {
		{ JSON, IN("\0"), "line 1, column 1, byte 0", "NUL byte" },
		{ JSON, IN("[1,\0]"), "line 1, column 4, byte 3", "NUL byte" },
		{ JSON, IN("[1\0]"), "line 1, column 3, byte 2", "NUL byte" },
		{ JSON, IN("[1]\0"), "line 1, column 4, byte 3", "NUL byte" },
		{ JSON, IN("[[\0]]"), "line 1, column 3, byte 2", "NUL byte" },
		{ JSON, IN("[\"a\0\"]"), "line 1, column 4, byte 3", "control character 0x00 in string" },
		{ NDJSON, IN("1\n\0\n"), "line 2, column 1, byte 2", "NUL byte" },
		{ NDJSON, IN("1\0\n"), "line 1, column 2, byte 1", "NUL byte" },
	};

	check_reject(cases, COUNT(cases));
}

Test(split, rejects_invalid_utf8)
{
	static const reject_case cases[] = {
		{ JSON, IN("[\"\xff\"]"), "line 1, column 3, byte 2", "invalid UTF-8 in string" },
		/* A continuation byte with no lead. */
		{ JSON, IN("[\"a\x80\"]"), "line 1, column 4, byte 3", "invalid UTF-8 in string" },
		/* Overlong encodings of '/' in 2 and 3 bytes. */
		{ JSON, IN("[\"\xc0\xaf\"]"), "line 1, column 3, byte 2", "invalid UTF-8 in string" },
		{ JSON, IN("[\"\xe0\x80\xaf\"]"), "line 1, column 4, byte 3", "invalid UTF-8 in string" },
		{ JSON, IN("[\"\xf0\x80\x80\xaf\"]"), "line 1, column 4, byte 3",
		  "invalid UTF-8 in string" },
		/* U+D800 encoded in UTF-8. */
		{ JSON, IN("[\"\xed\xa0\x80\"]"), "line 1, column 4, byte 3", "invalid UTF-8 in string" },
		/* U+110000 and a lead that could only start one. */
		{ JSON, IN("[\"\xf4\x90\x80\x80\"]"), "line 1, column 4, byte 3",
		  "invalid UTF-8 in string" },
		{ JSON, IN("[\"\xf5\x80\x80\x80\"]"), "line 1, column 3, byte 2",
		  "invalid UTF-8 in string" },
		/* Sequences cut short by the closing quote or another lead. */
		{ JSON, IN("[\"\xc3\"]"), "line 1, column 4, byte 3", "invalid UTF-8 in string" },
		{ JSON, IN("[\"\xe2\x82\"]"), "line 1, column 5, byte 4", "invalid UTF-8 in string" },
		{ JSON, IN("[\"\xf0\x9f\x98\xc3\xa9\"]"), "line 1, column 6, byte 5",
		  "invalid UTF-8 in string" },
		{ JSON, IN("[\"\xe2\x82"), "line 1, column 5, byte 4",
		  "unexpected end of input inside a string" },
		/* Outside strings. */
		{ JSON, IN("[\xff]"), "line 1, column 2, byte 1", "invalid UTF-8 byte 0xFF" },
		{ JSON, IN("[1,\x80]"), "line 1, column 4, byte 3", "invalid UTF-8 byte 0x80" },
		{ JSON, IN("[\xc3\xa9]"), "line 1, column 2, byte 1", "unexpected 0xC3 (expected a value)" },
		{ NDJSON, IN("1\xfe\n"), "line 1, column 2, byte 1", "invalid UTF-8 byte 0xFE" },
		{ JSON, IN("\xef\xbb[]"), "line 1, column 1, byte 0",
		  "expected '[' to begin the top-level array (for one item per line of text, use "
		  "--input-format lines)" },
	};

	check_reject(cases, COUNT(cases));
}

Test(split, ndjson_rejects_values_that_leave_their_line)
{
	static const reject_case cases[] = {
		{ NDJSON, IN("[1,\n2]\n"), "line 1, column 4, byte 3",
		  "unexpected end of line inside an array" },
		{ NDJSON, IN("{\"a\":\n1}\n"), "line 1, column 6, byte 5",
		  "unexpected end of line inside an object" },
		{ NDJSON, IN("1\n[1,2\n"), "line 2, column 5, byte 6",
		  "unexpected end of line inside an array" },
		{ NDJSON, IN("[\r\n]\r\n"), "line 1, column 3, byte 2",
		  "unexpected end of line inside an array" },
		{ NDJSON, IN("1 2\n"), "line 1, column 3, byte 2",
		  "unexpected '2' after the value (expected end of line)" },
		{ NDJSON, IN("1\n[1]x\n"), "line 2, column 4, byte 5",
		  "unexpected 'x' after the value (expected end of line)" },
		{ NDJSON, IN("{}{}\n"), "line 1, column 3, byte 2",
		  "unexpected '{' after the value (expected end of line)" },
		{ NDJSON, IN("1,\n2\n"), "line 1, column 2, byte 1",
		  "unexpected ',' after the value (expected end of line)" },
		{ NDJSON, IN("\n\n-\n"), "line 3, column 2, byte 3",
		  "invalid number: expected a digit after '-'" },
		{ NDJSON, IN("]\n"), "line 1, column 1, byte 0", "unexpected ']' (expected a value)" },
	};

	check_reject(cases, COUNT(cases));
}

/* ---- depth ---- */

static char *nested(size_t depth, int close, size_t *len)
{
	char *in = malloc(2 * depth + 3);
	size_t n = 0;

	cr_assert_not_null(in);
	in[n++] = '[';
	memset(in + n, '[', depth);
	n += depth;
	if (close) {
		memset(in + n, ']', depth);
		n += depth;
		in[n++] = ']';
	}
	*len = n;
	return in;
}

Test(split, accepts_100000_deep_nesting_as_one_item)
{
	size_t len;
	char *in = nested(100000, 1, &len);
	outcome o;

	split_mem(in, len, JSON, &o);
	cr_assert_eq(o.rc, 0, "%s", o.err.msg);
	cr_assert_eq(o.n, 1);
	cr_assert_eq(o.lens[0], 200000);
	cr_assert(memcmp(o.items[0], in + 1, 200000) == 0);
	outcome_release(&o);

	split_file(in, len, JSON, &o);
	cr_assert_eq(o.rc, 0, "%s", o.err.msg);
	cr_assert_eq(o.n, 1);
	cr_assert_eq(o.lens[0], 200000);
	outcome_release(&o);

	/* The same as an NDJSON line, without the outer array. */
	split_mem(in + 1, len - 2, NDJSON, &o);
	cr_assert_eq(o.rc, 0, "%s", o.err.msg);
	cr_assert_eq(o.n, 1);
	outcome_release(&o);
	free(in);
}

Test(split, rejects_200000_unclosed_brackets)
{
	size_t len;
	char *in = nested(200000, 0, &len);
	outcome o;

	split_file(in, len, JSON, &o);
	cr_assert_eq(o.rc, -PEXEC_EINPUT);
	cr_assert_str_eq(o.err.msg, "malformed input 't' at line 1, column 200002, byte 200001: "
	                 "unexpected end of input inside an array");
	outcome_release(&o);
	free(in);
}

Test(split, rejects_nesting_past_the_limit)
{
	size_t len;
	char *in = nested(10000001, 0, &len);
	outcome o;

	split_mem(in, len, JSON, &o);
	cr_assert_eq(o.rc, -PEXEC_EINPUT);
	cr_assert_str_eq(o.err.msg, "malformed input 't' at line 1, column 10000002, "
	                 "byte 10000001: nesting deeper than 10000000 levels");
	outcome_release(&o);
	free(in);
}
