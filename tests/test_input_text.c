/*
 * test_input_text.c - text input end to end: `--input-format lines` (each
 * line an item, as `find` prints paths) and `-0`/`--null`/`--input-format
 * nul` (NUL-separated, as `find -print0`), run by the built pexec as a user
 * runs it.  Each item reaches the plugin as a JSON string; a malformed line
 * ends the run with exit 2 and its position; --resume keeps the format in
 * its journal.  test_split_text.c pins the splitter's side.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "helpers.h"

TestSuite(input_text, .init = scratch_make, .fini = scratch_remove, .timeout = 120);

struct text_case {
	const char *args[8];
	const char *in;
	size_t len;
	int status;
	const char *out;
	const char *err;
};

#define T(s) s, sizeof(s) - 1

static void check_cases(const struct text_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct text_case *c = &cases[i];
		const char *args[MAX_ARGS + 1] = { 0 };
		struct proc_spec s = { .args = args, .in = c->in, .in_len = c->len };
		struct proc r;

		for (size_t k = 0; k < COUNT(c->args) && c->args[k]; k++)
			args[k] = c->args[k];
		run_spec(&s, &r);
		expect_exit(&r, c->status);
		if (c->out)
			cr_expect_str_eq(r.out, c->out, "case %zu: %s: stdout", i, r.cmd);
		if (c->err)
			cr_expect_not_null(strstr(r.err, c->err), "case %zu: %s: stderr: %s", i, r.cmd,
			                   r.err);
		else
			cr_expect_str_eq(r.err, "", "case %zu: %s: stderr", i, r.cmd);
		if (c->status == 2)
			cr_expect_eq(line_count(r.err), 1, "case %zu: %s: %s", i, r.cmd, r.err);
		proc_release(&r);
	}
}

Test(input_text, lines_and_nul_items_reach_the_plugin_as_strings)
{
	static const struct text_case cases[] = {
		{ { "-p", "identity", "--input-format", "lines" }, T("a.txt\nb c\n"), 0,
		  "[\n\"a.txt\",\n\"b c\"\n]\n", NULL },
		{ { "-p", "identity", "--input-format", "lines", "--serial" }, T("a\r\n\r\nb"), 0,
		  "[\n\"a\",\n\"\",\n\"b\"\n]\n", NULL },
		{ { "-p", "identity", "--input-format", "lines", "-j", "3", "--chunksize", "1" },
		  T("1\n2\n3\n4\n"), 0, "[\n\"1\",\n\"2\",\n\"3\",\n\"4\"\n]\n", NULL },
		{ { "-p", "identity", "--input-format", "lines", "--output-format", "ndjson" },
		  T("say \"hi\"\ttab\n"), 0, "\"say \\\"hi\\\"\\ttab\"\n", NULL },
		{ { "-p", "identity", "--input-format", "lines" }, T(""), 0, "[]\n", NULL },
		{ { "-p", "identity", "-0" }, T("one\ntwo\0three\0"), 0,
		  "[\n\"one\\ntwo\",\n\"three\"\n]\n", NULL },
		{ { "-p", "identity", "--null", "--output-format", "ndjson" }, T("x\0y"), 0,
		  "\"x\"\n\"y\"\n", NULL },
		{ { "-p", "identity", "--input-format", "nul" }, T("\0"), 0, "[\n\"\"\n]\n", NULL },
		/* a later --input-format wins over -0, as options go */
		{ { "-p", "identity", "-0", "--input-format", "lines" }, T("a\n"), 0,
		  "[\n\"a\"\n]\n", NULL },
		/* factorial wants numbers: a line "5" is the string "5" */
		{ { "-p", "factorial", "--input-format", "lines", "-q" }, T("5\n"), 1,
		  "[\nnull\n]\n", NULL },
	};

	check_cases(cases, COUNT(cases));
}

Test(input_text, malformed_text_exits_2_with_the_position)
{
	static const struct text_case cases[] = {
		{ { "-p", "identity", "--input-format", "lines" }, T("ok\n\xff\n"), 2, "",
		  "pexec: malformed input '<stdin>' at line 2, column 1, byte 3: invalid UTF-8 in a "
		  "line (byte 0xFF)" },
		{ { "-p", "identity", "--input-format", "lines" }, T("a\xe2\x82"), 2, "",
		  "at line 1, column 4, byte 3: unexpected end of input inside a UTF-8 sequence" },
		{ { "-p", "identity", "--input-format", "lines" }, T("f1\0f2\0"), 2, "",
		  "at line 1, column 3, byte 2: NUL byte in a line (for items separated by NUL "
		  "bytes, use -0)" },
		{ { "-p", "identity", "-0" }, T("a\0\xc0\x80\0"), 2, NULL,
		  "at line 1, column 3, byte 2: invalid UTF-8 in an item (byte 0xC0)" },
		/* text is for input only */
		{ { "-p", "identity", "--output-format", "lines" }, T("[]"), 2, "",
		  "invalid --output-format 'lines': expected json or ndjson" },
		{ { "-p", "identity", "--input-format", "csv" }, T("[]"), 2, "",
		  "invalid --input-format 'csv': expected json, ndjson, lines or nul" },
	};

	check_cases(cases, COUNT(cases));
}

/* The example: `find . -name '*.txt' | pexec -p wordcount
 * --input-format lines`, against the same paths as a JSON array. */
Test(input_text, find_output_runs_through_wordcount)
{
	char *paths = word_files(5), *lines = NULL, *nuls = NULL;
	size_t lines_len = 0, nuls_len = 0;
	cJSON *arr = cJSON_Parse(paths), *p;
	struct proc want, r;

	cr_assert_not_null(arr);
	cJSON_ArrayForEach(p, arr) {
		append(&lines, &lines_len, p->valuestring, strlen(p->valuestring));
		append(&lines, &lines_len, "\n", 1);
		append(&nuls, &nuls_len, p->valuestring, strlen(p->valuestring) + 1);
	}
	run(&want, paths, "-p", "wordcount", NULL);
	expect_exit(&want, 0);
	run(&r, lines, "-p", "wordcount", "--input-format", "lines", NULL);
	expect_exit(&r, 0);
	expect_same_bytes(r.cmd, r.out, r.out_len, want.out, want.out_len);
	proc_release(&r);
	{
		struct proc_spec s = { .args = ARGS("-p", "wordcount", "-0"), .in = nuls,
		                       .in_len = nuls_len };
		run_spec(&s, &r);
	}
	expect_exit(&r, 0);
	expect_same_bytes(r.cmd, r.out, r.out_len, want.out, want.out_len);
	proc_release(&r);
	proc_release(&want);
	run(&want, paths, "-p", "wordcount", "--reduce", NULL);
	run(&r, lines, "-p", "wordcount", "--reduce", "--input-format", "lines", NULL);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.out, want.out);
	proc_release(&r);
	proc_release(&want);
	cJSON_Delete(arr);
	free(paths);
	free(lines);
	free(nuls);
}

/* A lines run with a file that is missing keeps its journal; the journal
 * knows the input was lines, and --retry-failed picks the item up once the
 * file exists. */
Test(input_text, resume_keeps_the_text_format)
{
	const char *list = scratch_path(0, "list.txt"), *out = scratch_path(1, "out.json");
	const char *late = scratch_path(2, "late.txt");
	char *paths = word_files(2), text[1024], *got;
	cJSON *arr = cJSON_Parse(paths);
	struct proc r;

	snprintf(text, sizeof(text), "%s\n%s\n%s\n",
	         cJSON_GetArrayItem(arr, 0)->valuestring, late,
	         cJSON_GetArrayItem(arr, 1)->valuestring);
	write_file(list, text, strlen(text));
	run(&r, NULL, "-p", "wordcount", "--input-format", "lines", "-q", "-o", out, list, NULL);
	expect_exit(&r, 1);
	proc_release(&r);
	/* The same input read as JSON is another input. */
	run(&r, NULL, "-p", "wordcount", "-o", out, "--resume", list, NULL);
	expect_exit(&r, 2);
	cr_expect_not_null(strstr(r.err, "cannot resume: the input changed"), "%s", r.err);
	proc_release(&r);
	run(&r, NULL, "-p", "wordcount", "--input-format", "lines", "-o", out, "--resume", list,
	    NULL);
	expect_exit(&r, 1);
	cr_expect_not_null(strstr(r.err, "nothing to resume"), "%s", r.err);
	proc_release(&r);
	write_file(late, "late words", 10);
	run(&r, NULL, "-p", "wordcount", "--input-format", "lines", "-o", out, "--resume",
	    "--retry-failed", list, NULL);
	expect_exit(&r, 0);
	proc_release(&r);
	got = read_file(out, &(size_t){ 0 });
	cr_assert_not_null(got);
	cr_expect_not_null(strstr(got, "{\"late\":1,\"words\":1}"), "%s", got);
	cr_expect_eq(count_of(got, "null"), 0, "%s", got);
	free(got);
	cJSON_Delete(arr);
	free(paths);
}
