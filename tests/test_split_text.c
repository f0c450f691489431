/*
 * test_split_text.c - the splitter's text formats (split_text.c): one item
 * per line (PEXEC_FORMAT_LINES) and NUL-separated items (PEXEC_FORMAT_NUL),
 * each handed on as a JSON string.  Which inputs give which exact items,
 * which are refused and at which exact position.
 *
 * Every case runs three ways: over memory, over a file, and over a socket
 * that hands the splitter one byte per read, so that a UTF-8 sequence, a
 * CRLF and the byte order mark are also cut by a refill.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "split/split.h"
#include "split_run.h"

#define LINES PEXEC_FORMAT_LINES
#define NUL PEXEC_FORMAT_NUL
#define IN(lit) lit, sizeof(lit) - 1
#define MAX_ITEMS 8
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

TestSuite(split_text);

static void split_bytewise(const char *in, size_t len, pexec_format format, outcome *o)
{
	int fds[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds), 0);
	split_fed(fds, in, len, 1, format, o);
}

static const struct {
	const char *name;
	void (*fn)(const char *, size_t, pexec_format, outcome *);
} ways[] = {
	{ "memory", split_mem },
	{ "file", split_file },
	{ "bytewise", split_bytewise },
};

struct text_case {
	pexec_format format;
	const char *in;
	size_t len;
	const char *items[MAX_ITEMS]; /* the JSON strings, NULL-terminated */
};

static void check_items(const struct text_case *cases, size_t ncases)
{
	for (size_t i = 0; i < ncases; i++) {
		const struct text_case *c = &cases[i];
		size_t n = 0;

		while (n < MAX_ITEMS && c->items[n])
			n++;
		for (size_t w = 0; w < COUNT(ways); w++) {
			outcome o;

			ways[w].fn(c->in, c->len, c->format, &o);
			cr_expect_eq(o.rc, 0, "case %zu %s: rc %d: %s", i, ways[w].name, o.rc,
			             o.err.msg);
			cr_expect_eq(o.n, n, "case %zu %s: %zu items, want %zu", i, ways[w].name, o.n,
			             n);
			for (size_t k = 0; k < n && k < o.n; k++) {
				cr_expect_eq(o.lens[k], strlen(c->items[k]), "case %zu %s item %zu", i,
				             ways[w].name, k);
				cr_expect_str_eq(o.items[k], c->items[k], "case %zu %s item %zu", i,
				                 ways[w].name, k);
			}
			cr_expect_eq(o.offset, c->len, "case %zu %s: offset", i, ways[w].name);
			outcome_release(&o);
		}
	}
}

struct bad_case {
	pexec_format format;
	const char *in;
	size_t len;
	const char *where;
	const char *why;
	size_t items; /* given before the error */
};

static void check_refused(const struct bad_case *cases, size_t ncases)
{
	for (size_t i = 0; i < ncases; i++) {
		const struct bad_case *c = &cases[i];
		char want[PEXEC_ERROR_MAX];

		snprintf(want, sizeof(want), "malformed input 't' at %s: %s", c->where, c->why);
		for (size_t w = 0; w < COUNT(ways); w++) {
			outcome o;

			ways[w].fn(c->in, c->len, c->format, &o);
			cr_expect_eq(o.rc, -PEXEC_EINPUT, "case %zu %s: rc %d", i, ways[w].name,
			             o.rc);
			cr_expect_str_eq(o.err.msg, want, "case %zu %s", i, ways[w].name);
			cr_expect_eq(o.n, c->items, "case %zu %s: %zu items first", i, ways[w].name,
			             o.n);
			outcome_release(&o);
		}
	}
}

Test(split_text, lines_are_items_without_their_newline)
{
	static const struct text_case cases[] = {
		{ LINES, IN(""), { NULL } },
		{ LINES, IN("a"), { "\"a\"" } },
		{ LINES, IN("a\n"), { "\"a\"" } },
		{ LINES, IN("a.txt\nsub dir/b.txt\n"), { "\"a.txt\"", "\"sub dir/b.txt\"" } },
		{ LINES, IN("  spaced  \n"), { "\"  spaced  \"" } },
		/* an empty line is the item "" */
		{ LINES, IN("\n"), { "\"\"" } },
		{ LINES, IN("a\n\nb"), { "\"a\"", "\"\"", "\"b\"" } },
		{ LINES, IN("\n\n"), { "\"\"", "\"\"" } },
		/* CRLF: the CR before the newline goes; any other CR stays */
		{ LINES, IN("a\r\nb\r\n"), { "\"a\"", "\"b\"" } },
		{ LINES, IN("\r\n"), { "\"\"" } },
		{ LINES, IN("a\rb\n"), { "\"a\\rb\"" } },
		{ LINES, IN("a\r"), { "\"a\\r\"" } },
		{ LINES, IN("a\r\r\n"), { "\"a\\r\"" } },
		/* a byte order mark at the start only */
		{ LINES, IN("\xef\xbb\xbf" "a\n"), { "\"a\"" } },
		{ LINES, IN("\xef\xbb\xbf"), { NULL } },
		{ LINES, IN("a\n\xef\xbb\xbf"), { "\"a\"", "\"\xef\xbb\xbf\"" } },
	};

	check_items(cases, COUNT(cases));
}

Test(split_text, items_are_quoted_as_json_strings)
{
	static const struct text_case cases[] = {
		{ LINES, IN("say \"hi\"\n"), { "\"say \\\"hi\\\"\"" } },
		{ LINES, IN("C:\\dir\\f\n"), { "\"C:\\\\dir\\\\f\"" } },
		{ LINES, IN("t\tb\bf\f\n"), { "\"t\\tb\\bf\\f\"" } },
		{ LINES, IN("\x01\x1f\x7f/\n"), { "\"\\u0001\\u001f\x7f/\"" } },
		/* UTF-8 passes as it is */
		{ LINES, IN("\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\n"),
		  { "\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\"" } },
		{ LINES, IN("\xef\xbf\xbf\xf4\x8f\xbf\xbf"), { "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"" } },
	};

	check_items(cases, COUNT(cases));
}

Test(split_text, nul_separated_items_keep_their_newlines)
{
	static const struct text_case cases[] = {
		{ NUL, IN(""), { NULL } },
		{ NUL, IN("a\0b\0"), { "\"a\"", "\"b\"" } },
		{ NUL, IN("a\0b"), { "\"a\"", "\"b\"" } },
		{ NUL, IN("\0"), { "\"\"" } },
		{ NUL, IN("\0\0x"), { "\"\"", "\"\"", "\"x\"" } },
		{ NUL, IN("two\nlines\0"), { "\"two\\nlines\"" } },
		{ NUL, IN("crlf\r\n\0"), { "\"crlf\\r\\n\"" } },
		{ NUL, IN("\xef\xbb\xbf" "a\0"), { "\"a\"" } },
	};

	check_items(cases, COUNT(cases));
}

Test(split_text, invalid_utf8_is_refused_with_its_position)
{
	static const struct bad_case cases[] = {
		{ LINES, IN("ok\n\xff\n"), "line 2, column 1, byte 3",
		  "invalid UTF-8 in a line (byte 0xFF)", 1 },
		{ LINES, IN("ab\xc3(\n"), "line 1, column 4, byte 3",
		  "invalid UTF-8 in a line (byte 0x28)", 0 },
		/* overlong, a surrogate, past U+10FFFF, a lone continuation byte */
		{ LINES, IN("\xc0\xaf"), "line 1, column 1, byte 0",
		  "invalid UTF-8 in a line (byte 0xC0)", 0 },
		{ LINES, IN("x\n\xe0\x80\x80"), "line 2, column 2, byte 3",
		  "invalid UTF-8 in a line (byte 0x80)", 1 },
		{ LINES, IN("\xed\xa0\x80"), "line 1, column 2, byte 1",
		  "invalid UTF-8 in a line (byte 0xA0)", 0 },
		{ LINES, IN("\xf4\x90\x80\x80"), "line 1, column 2, byte 1",
		  "invalid UTF-8 in a line (byte 0x90)", 0 },
		{ LINES, IN("a\n\n\x80"), "line 3, column 1, byte 3",
		  "invalid UTF-8 in a line (byte 0x80)", 2 },
		/* cut short by the end of the input */
		{ LINES, IN("a\xe2\x82"), "line 1, column 4, byte 3",
		  "unexpected end of input inside a UTF-8 sequence", 0 },
		{ LINES, IN("\xef\xbb"), "line 1, column 3, byte 2",
		  "unexpected end of input inside a UTF-8 sequence", 0 },
		/* and in NUL-separated items, whose newlines count as lines */
		{ NUL, IN("a\nb\0\xff"), "line 2, column 3, byte 4",
		  "invalid UTF-8 in an item (byte 0xFF)", 1 },
		{ NUL, IN("\xc3\0"), "line 1, column 2, byte 1",
		  "invalid UTF-8 in an item (byte 0x00)", 0 },
	};

	check_refused(cases, COUNT(cases));
}

Test(split_text, a_nul_byte_in_a_line_points_to_dash_0)
{
	static const struct bad_case cases[] = {
		{ LINES, IN("ok\0x\0"), "line 1, column 3, byte 2",
		  "NUL byte in a line (for items separated by NUL bytes, use -0)", 0 },
		{ LINES, IN("a\nb\0"), "line 2, column 2, byte 3",
		  "NUL byte in a line (for items separated by NUL bytes, use -0)", 1 },
	};

	check_refused(cases, COUNT(cases));
}

/* Lines far longer than one read, and many of them, come out whole. */
Test(split_text, long_lines_and_many_lines_stream_through)
{
	size_t n = 3 * 256 * 1024 + 17, lines = 20000;
	char *in = malloc(n + 1 + lines * 8), *want = malloc(n + 3);
	size_t len = 0;
	outcome o;

	cr_assert(in && want);
	memset(in, 'x', n);
	in[n] = '\n';
	len = n + 1;
	for (size_t i = 0; i < lines; i++)
		len += (size_t)sprintf(in + len, "%zu\r\n", i % 1000);
	split_file(in, len, LINES, &o);
	cr_assert_eq(o.rc, 0, "%s", o.err.msg);
	cr_assert_eq(o.n, lines + 1);
	want[0] = '"';
	memset(want + 1, 'x', n);
	memcpy(want + n + 1, "\"", 2);
	cr_expect_eq(o.lens[0], n + 2);
	cr_expect_str_eq(o.items[0], want);
	cr_expect_str_eq(o.items[lines], "\"999\"");
	cr_expect_eq(o.offset, len);
	outcome_release(&o);
	free(in);
	free(want);
}
