/*
 * test_cli.c - the pexec command end to end, run as a user runs it: argv in,
 * bytes on stdin, and the whole stdout, stderr and exit status compared.
 *
 * The tables read like jq's tests/jq.test: a command line, an input, and the
 * exact output or the error it must give.  Other tests pin what a table
 * cannot: the pool's output equals --serial's byte for byte across job and
 * chunk sizes, a plugin's prints never reach stdout, a crashing plugin ends
 * the run.  -o FILE, a closed reader, a killed pexec and running out of
 * descriptors are in test_output.c (suite `output`).
 *
 * The runs go through helpers.c: the test process makes itself a child
 * subreaper, so a worker that pexec left behind would become its child: after
 * every run, having no child at all is the proof that pexec reaped its pool.
 * Timeouts are hang guards only; nothing here measures time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "helpers.h"

#define FACT_INPUTS PEXEC_SRC_DIR "/examples/factorial/inputs.json"

/* Hang guards are inside the tests; this one only backs them up. */
TestSuite(cli, .init = scratch_make, .fini = scratch_remove, .timeout = 300);

/* ---- table-driven cases ---- */

/* One command, its input, and what it must give: the exact stdout (unless
 * NULL), the exit status, and strings that stderr must contain.  A case that
 * expects exit 0 and no stderr strings expects an empty stderr. */
struct cli_case {
	const char *args[MAX_ARGS];
	const char *in;
	int status;
	const char *out;
	const char *err[4];
};

static void check_cases(const struct cli_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct cli_case *c = &cases[i];
		const char *args[MAX_ARGS + 1] = { 0 };
		struct proc_spec s = { .args = args, .in = c->in, .in_len = c->in ? strlen(c->in) : 0 };
		struct proc r;

		for (size_t k = 0; k < MAX_ARGS && c->args[k]; k++)
			args[k] = c->args[k];
		run_spec(&s, &r);
		expect_exit(&r, c->status);
		if (c->out)
			cr_expect_str_eq(r.out, c->out, "case %zu: %s: stdout", i, r.cmd);
		for (size_t k = 0; k < COUNT(c->err) && c->err[k]; k++)
			cr_expect_not_null(strstr(r.err, c->err[k]),
			                   "case %zu: %s: stderr lacks \"%s\": %s", i, r.cmd, c->err[k],
			                   r.err);
		if (c->status == 0 && !c->err[0])
			cr_expect_str_eq(r.err, "", "case %zu: %s: stderr", i, r.cmd);
		proc_release(&r);
	}
}

/* 100!, as Python's math.factorial(100) gives it. */
#define FACT_100                                                                   \
	"9332621544394415268169923885626670049071596826438162146859296389521759999"  \
	"3229915608941463976156518286253697920827223758251185210916864000000000000" \
	"000000000000"

Test(cli, factorial_is_exact)
{
	static const char in[] = "[0, 1, 5, 20, 21, 25, 30, 100, -0]";
	static const char out[] =
		"[\n1,\n1,\n120,\n2432902008176640000,\n51090942171709440000,\n"
		"15511210043330985984000000,\n265252859812191058636308480000000,\n" FACT_100
		",\n1\n]\n";
	static const struct cli_case cases[] = {
		{ { "--plugin", "factorial" }, in, 0, out, { 0 } },
		{ { "-p", "factorial", "--serial" }, in, 0, out, { 0 } },
		{ { "-p", "factorial", "-j", "3", "--chunksize", "1" }, in, 0, out, { 0 } },
		{ { "-p", "factorial", "--output-format", "ndjson" }, "[25]", 0,
		  "15511210043330985984000000\n", { 0 } },
	};

	check_cases(cases, COUNT(cases));
}

Test(cli, identity_keeps_bytes)
{
	static const char in[] =
		"[12345678901234567890123, -0.0, \"\\u00e9\", 1E400, \"\xc3\xa9\", "
		"{\"a\" : [1 ,2.50]}, 18446744073709551617]";
	static const char out[] =
		"[\n12345678901234567890123,\n-0.0,\n\"\\u00e9\",\n1E400,\n\"\xc3\xa9\",\n"
		"{\"a\" : [1 ,2.50]},\n18446744073709551617\n]\n";
	static const struct cli_case cases[] = {
		{ { "-p", "identity" }, in, 0, out, { 0 } },
		{ { "-p", "identity", "--serial" }, in, 0, out, { 0 } },
		{ { "-p", "identity", "-j", "2", "--chunksize", "1" }, in, 0, out, { 0 } },
		{ { "-p", "identity", "--unordered", "-j", "1" }, in, 0, out, { 0 } },
	};

	check_cases(cases, COUNT(cases));
}

Test(cli, formats_empty_input_and_drop_null)
{
	static const struct cli_case cases[] = {
		/* ndjson in and out */
		{ { "-p", "identity", "--input-format", "ndjson", "--output-format", "ndjson" },
		  "1\n[2, 3]\n{\"a\":1}\n", 0, "1\n[2, 3]\n{\"a\":1}\n", { 0 } },
		{ { "-p", "identity", "--input-format", "ndjson", "--output-format", "ndjson" },
		  "1\n\n  2", 0, "1\n2\n", { 0 } },
		/* json in, ndjson out; an item's line breaks become spaces */
		{ { "-p", "identity", "--output-format", "ndjson" },
		  "[1, {\"a\": [1, 2]}, \"x\"]", 0, "1\n{\"a\": [1, 2]}\n\"x\"\n", { 0 } },
		{ { "-p", "identity", "--output-format", "ndjson" }, "[{\"a\":\n1}]", 0,
		  "{\"a\": 1}\n", { 0 } },
		/* ndjson in, json out */
		{ { "-p", "factorial", "--input-format", "ndjson" }, "3\n4\n", 0, "[\n6,\n24\n]\n",
		  { 0 } },
		/* nothing in */
		{ { "-p", "identity" }, "[]", 0, "[]\n", { 0 } },
		{ { "-p", "identity" }, " \n[ \n ] \n", 0, "[]\n", { 0 } },
		{ { "-p", "identity", "--serial" }, "[]", 0, "[]\n", { 0 } },
		{ { "-p", "identity", "--output-format", "ndjson" }, "[]", 0, "", { 0 } },
		{ { "-p", "identity", "--input-format", "ndjson" }, "", 0, "[]\n", { 0 } },
		/* --drop-null */
		{ { "-p", "identity", "--drop-null" }, "[1, null, 2, null]", 0, "[\n1,\n2\n]\n",
		  { 0 } },
		{ { "-p", "identity", "--drop-null" }, "[null, null]", 0, "[]\n", { 0 } },
		{ { "-p", "identity", "--drop-null", "--output-format", "ndjson" }, "[null, 1]", 0,
		  "1\n", { 0 } },
		{ { "-p", "factorial", "--drop-null", "-q" }, "[0, -1, 2]", 1, "[\n1,\n2\n]\n",
		  { 0 } },
		/* '-' and nothing both mean stdin */
		{ { "-p", "identity", "-" }, "[1, 2]", 0, "[\n1,\n2\n]\n", { 0 } },
		{ { "-p", "identity", "--serial", "-" }, "[1, 2]", 0, "[\n1,\n2\n]\n", { 0 } },
	};

	check_cases(cases, COUNT(cases));
}

Test(cli, help_and_version)
{
	static const struct cli_case cases[] = {
		{ { "--help" }, NULL, 0, NULL, { 0 } },
		{ { "-h" }, NULL, 0, NULL, { 0 } },
		{ { "--version" }, NULL, 0, "pexec 0.2.0 (plugin ABI 1)\n", { 0 } },
		{ { "-V" }, NULL, 0, "pexec 0.2.0 (plugin ABI 1)\n", { 0 } },
	};
	struct proc r;

	check_cases(cases, COUNT(cases));
	run(&r, NULL, "--help", NULL);
	expect_exit(&r, 0);
	cr_expect(strncmp(r.out, "usage: pexec --plugin PLUGIN", 28) == 0, "%s", r.out);
	cr_expect_not_null(strstr(r.out, "Exit status:"));
	cr_expect_not_null(strstr(r.out, "  3  system error"));
	proc_release(&r);
}

Test(cli, usage_errors_exit_2)
{
	static const struct cli_case cases[] = {
		{ { "-p", "identity", "--bogus" }, "[]", 2, "", { "unknown option '--bogus'",
		                                                  "pexec --help" } },
		{ { "-p", "identity", "-x" }, "[]", 2, "", { "unknown option" } },
		{ { "-p", "identity", "--jobs", "0" }, "[]", 2, "",
		  { "invalid --jobs '0'", "expected an integer from 1 to" } },
		{ { "-p", "identity", "-j", "0" }, "[]", 2, "", { "invalid --jobs '0'" } },
		{ { "-p", "identity", "--jobs", "x" }, "[]", 2, "", { "invalid --jobs 'x'" } },
		{ { "-p", "identity", "--jobs", "-x" }, "[]", 2, "", { "invalid --jobs '-x'" } },
		{ { "-p", "identity", "--jobs", "2x" }, "[]", 2, "", { "invalid --jobs '2x'" } },
		{ { "-p", "identity", "--jobs", "" }, "[]", 2, "", { "invalid --jobs ''" } },
		{ { "-p", "identity", "--jobs", "99999999999999999999999" }, "[]", 2, "",
		  { "invalid --jobs" } },
		{ { "-p", "identity", "--chunksize", "0" }, "[]", 2, "",
		  { "invalid --chunksize '0'" } },
		{ { "-p", "identity", "--input-format", "xml" }, "[]", 2, "",
		  { "invalid --input-format 'xml'", "expected json, ndjson, lines or nul" } },
		{ { "-p", "identity", "--output-format", "yaml" }, "[]", 2, "",
		  { "invalid --output-format 'yaml'" } },
		{ { "a.json" }, "[]", 2, "", { "no plugin given" } },
		{ { 0 }, "[]", 2, "", { "no plugin given" } },
		{ { "-p", "identity", "--jobs" }, "[]", 2, "", { "'--jobs' needs a value" } },
		{ { "-p" }, "[]", 2, "", { "needs a value" } },
		{ { "-p", "identity", "--config", "{bad" }, "[]", 2, "", { "invalid --config" } },
	};

	check_cases(cases, COUNT(cases));
}

Test(cli, malformed_input_exits_2_with_the_position)
{
	static const struct cli_case cases[] = {
		{ { "-p", "identity" }, "[1,2", 2, NULL,
		  { "'<stdin>'", "line 1, column 5, byte 4", "unexpected end of input" } },
		{ { "-p", "identity" }, "[1,2,]", 2, NULL,
		  { "line 1, column 6, byte 5", "trailing comma" } },
		{ { "-p", "identity" }, "[\n  1,\n  2,\n]", 2, NULL,
		  { "line 4, column 1, byte 12", "trailing comma" } },
		{ { "-p", "identity" }, "[1,NaN]", 2, NULL,
		  { "line 1, column 4, byte 3", "unexpected 'N'" } },
		{ { "-p", "identity" }, "[1,/* c */2]", 2, NULL,
		  { "line 1, column 4, byte 3", "comments are not allowed" } },
		{ { "-p", "identity" }, "[1,\n// c\n2]", 2, NULL, { "line 2, column 1, byte 4" } },
		{ { "-p", "identity" }, "{\"a\": 1}", 2, "",
		  { "line 1, column 1, byte 0", "expected '['" } },
		{ { "-p", "identity" }, "", 2, "", { "line 1, column 1, byte 0", "empty input" } },
		/* inputs in another format get a hint at it */
		{ { "-p", "identity" }, "{\"a\": 1}\n{\"a\": 2}\n", 2, "",
		  { "found an object", "use --input-format ndjson", "jq -c '.[]'" } },
		{ { "-p", "identity" }, "[1]\n[2]\n", 2, NULL,
		  { "line 2, column 1, byte 4", "looks like one JSON value per line",
		    "--input-format ndjson" } },
		{ { "-p", "identity" }, "7\n8\n", 2, "", { "use --input-format ndjson" } },
		{ { "-p", "identity" }, "./a.txt\n./b.txt\n", 2, "", { "use --input-format lines" } },
		{ { "-p", "identity" }, "[1] [2]", 2, NULL, { "line 1, column 5, byte 4" } },
		{ { "-p", "identity", "--serial" }, "[1,2", 2, NULL, { "line 1, column 5, byte 4" } },
		{ { "-p", "identity", "--input-format", "ndjson" }, "1\n2 3\n", 2, NULL,
		  { "line 2" } },
		{ { "-p", "identity", "--input-format", "ndjson" }, "1\n\"abc", 2, NULL,
		  { "line 2, column 5, byte 6" } },
	};
	struct proc r;

	check_cases(cases, COUNT(cases));
	/* Whatever came out before the error is never a whole array. */
	for (size_t i = 0; i < COUNT(cases); i++) {
		const char *args[MAX_ARGS + 1] = { 0 };
		struct proc_spec s = { .args = args, .in = cases[i].in,
		                       .in_len = strlen(cases[i].in) };

		memcpy(args, cases[i].args, sizeof(cases[i].args));
		run_spec(&s, &r);
		cr_expect_not(parses(r.out), "case %zu: %s: stdout parses: %s", i, r.cmd, r.out);
		cr_expect_eq(line_count(r.err), 1, "case %zu: %s: stderr: %s", i, r.cmd, r.err);
		proc_release(&r);
	}
}

Test(cli, malformed_input_file_is_named)
{
	const char *path = scratch_path(0, "bad.json");
	struct proc r;

	write_file(path, "[1,\n  2,,\n]", 11);
	run(&r, NULL, "-p", "identity", path, NULL);
	expect_exit(&r, 2);
	cr_expect_not_null(strstr(r.err, path), "%s", r.err);
	cr_expect_not_null(strstr(r.err, "line 2, column 5, byte 8"), "%s", r.err);
	proc_release(&r);
}

/* Input that cannot be read is a system error (exit 3), as output that
 * cannot be written is; malformed input is exit 2. */
Test(cli, input_file_missing_or_a_directory_exits_3)
{
	const char *missing = scratch_path(0, "missing.json");
	const char *locked = scratch_path(1, "locked.json");
	struct proc r;

	run(&r, "[1]", "-p", "identity", missing, NULL);
	expect_exit(&r, 3);
	cr_expect_str_eq(r.out, "");
	cr_expect_not_null(strstr(r.err, missing), "%s", r.err);
	cr_expect_not_null(strstr(r.err, "No such file or directory"), "%s", r.err);
	cr_expect_eq(line_count(r.err), 1, "%s", r.err);
	proc_release(&r);

	run(&r, "[1]", "-p", "identity", scratch, NULL);
	expect_exit(&r, 3);
	cr_expect_str_eq(r.out, "");
	cr_expect_not_null(strstr(r.err, scratch), "%s", r.err);
	cr_expect_not_null(strstr(r.err, "is a directory"), "%s", r.err);
	proc_release(&r);

	/* Unreadable (root reads anything: only where the test is not root). */
	write_file(locked, "[1]", 3);
	cr_assert_eq(chmod(locked, 0), 0);
	if (access(locked, R_OK) != 0) {
		run(&r, NULL, "-p", "identity", locked, NULL);
		expect_exit(&r, 3);
		cr_expect_not_null(strstr(r.err, "Permission denied"), "%s", r.err);
		proc_release(&r);
	}
}

/* ---- plugins that do not load ---- */

Test(cli, load_failures_exit_2_with_one_line_naming_the_file)
{
	const char *text = scratch_path(0, "text.so");
	const struct {
		const char *plugin;
		const char *names; /* what the message must call the file */
		const char *why;
	} cases[] = {
		{ FIX("missing"), FIX("missing"), "No such file or directory" },
		{ text, text, "not a loadable shared object" },
		{ FIX("no_symbol"), FIX("no_symbol"), "not a pexec plugin (no symbol pexec_plugin)" },
		{ FIX("bad_abi"), FIX("bad_abi"), "built for plugin ABI 99, this pexec runs ABI 1" },
		{ FIX("no_map"), FIX("no_map"), "required hook 'map' missing" },
		{ FIX("small_desc"), FIX("small_desc"), "descriptor is 16 bytes" },
		{ "nosuchplugin", "nosuchplugin.so", "PEXEC_PLUGIN_PATH" },
	};

	write_file(text, "not a shared object\n", 20);
	for (size_t i = 0; i < COUNT(cases); i++) {
		struct proc r;

		run(&r, "[1, 2]", "-p", cases[i].plugin, NULL);
		expect_exit(&r, 2);
		cr_expect_str_eq(r.out, "", "%s: stdout", r.cmd);
		cr_expect_eq(line_count(r.err), 1, "%s: stderr is not one line: %s", r.cmd, r.err);
		cr_expect(strncmp(r.err, "pexec: ", 7) == 0, "%s: %s", r.cmd, r.err);
		cr_expect_not_null(strstr(r.err, cases[i].names), "%s: %s", r.cmd, r.err);
		cr_expect_not_null(strstr(r.err, cases[i].why), "%s: %s", r.cmd, r.err);
		proc_release(&r);
	}
}

/* ---- the pool gives what --serial gives ---- */

/* `n` factorial items, a spread of sizes from 0! to 149!. */
static void make_factorial_input(const char *path, size_t n)
{
	char *data = NULL, item[32];
	size_t len = 0;

	append(&data, &len, "[", 1);
	for (size_t i = 0; i < n; i++) {
		int k = snprintf(item, sizeof(item), "%s%zu", i ? (i % 16 ? ", " : ",\n") : "",
		                 (i * 7919 + i / 3) % 150);
		append(&data, &len, item, (size_t)k);
	}
	append(&data, &len, "]\n", 2);
	write_file(path, data, len);
	free(data);
}

static void check_pool_matches_serial(const char *input)
{
	static const char *const chunks[] = { "1", "7", "1000", NULL };
	static const char *const jobs[] = { "1", "2", "3", "8" };
	struct proc want, r;

	run(&want, NULL, "-p", "factorial", "--serial", input, NULL);
	expect_exit(&want, 0);
	cr_assert(parses(want.out), "--serial output is not JSON");
	for (size_t c = 0; c < COUNT(chunks); c++) {
		for (size_t j = 0; j < COUNT(jobs); j++) {
			if (chunks[c])
				run(&r, NULL, "-p", "factorial", "-j", jobs[j], "--chunksize", chunks[c],
				    input, NULL);
			else
				run(&r, NULL, "-p", "factorial", "-j", jobs[j], input, NULL);
			expect_exit(&r, 0);
			expect_same_bytes(r.cmd, r.out, r.out_len, want.out, want.out_len);
			cr_expect_str_eq(r.err, "", "%s: stderr", r.cmd);
			proc_release(&r);
		}
	}
	proc_release(&want);
}

Test(cli, ordered_output_equals_serial_for_the_example)
{
	check_pool_matches_serial(FACT_INPUTS);
}

Test(cli, ordered_output_equals_serial_for_20000_items)
{
	const char *path = scratch_path(0, "big.json");

	make_factorial_input(path, 20000);
	check_pool_matches_serial(path);
}

Test(cli, ordered_output_equals_serial_with_failed_items)
{
	const char *path = scratch_path(0, "mixed.ndjson");
	char *data = NULL, item[32];
	size_t len = 0;
	struct proc want, r;

	for (size_t i = 0; i < 3000; i++) {
		int k = snprintf(item, sizeof(item), i % 97 == 5 ? "-%zu\n" : "%zu\n", i % 60);
		append(&data, &len, item, (size_t)k);
	}
	write_file(path, data, len);
	free(data);
	run(&want, NULL, "-p", "factorial", "-q", "--serial", "--input-format", "ndjson", path,
	    NULL);
	expect_exit(&want, 1);
	run(&r, NULL, "-p", "factorial", "-q", "-j", "3", "--chunksize", "7", "--input-format",
	    "ndjson", path, NULL);
	expect_exit(&r, 1);
	expect_same_bytes(r.cmd, r.out, r.out_len, want.out, want.out_len);
	proc_release(&r);
	run(&r, NULL, "-p", "factorial", "-q", "-j", "2", "--input-format", "ndjson", path, NULL);
	expect_exit(&r, 1);
	expect_same_bytes(r.cmd, r.out, r.out_len, want.out, want.out_len);
	proc_release(&r);
	proc_release(&want);
}

static void expect_permutation(const char *what, const struct proc *got,
                               const struct proc *want)
{
	expect_same_line_set(what, got->out, want->out);
}

Test(cli, unordered_output_is_a_permutation_of_ordered)
{
	const char *path = scratch_path(0, "big.json");
	const char *inputs[] = { FACT_INPUTS, path };
	static const char *const fmts[] = { "json", "ndjson" };

	make_factorial_input(path, 20000);
	for (size_t i = 0; i < COUNT(inputs); i++) {
		for (size_t f = 0; f < COUNT(fmts); f++) {
			struct proc want, r;

			run(&want, NULL, "-p", "factorial", "--output-format", fmts[f], inputs[i],
			    NULL);
			expect_exit(&want, 0);
			run(&r, NULL, "-p", "factorial", "--unordered", "-j", "3", "--chunksize", "7",
			    "--output-format", fmts[f], inputs[i], NULL);
			expect_exit(&r, 0);
			cr_expect(parses(r.out) || f == 1, "%s: not JSON", r.cmd);
			expect_permutation(r.cmd, &r, &want);
			proc_release(&r);
			run(&r, NULL, "-p", "factorial", "--unordered", "-j", "8", "--output-format",
			    fmts[f], inputs[i], NULL);
			expect_exit(&r, 0);
			expect_permutation(r.cmd, &r, &want);
			proc_release(&r);
			proc_release(&want);
		}
	}
}

/* ---- what plugins do ---- */

Test(cli, plugin_prints_go_to_stderr_not_stdout)
{
	static const char in[] = "[1, \"a\", {\"b\": null}]";
	static const char out[] = "[\n1,\n\"a\",\n{\"b\":null}\n]\n";
	static const char *const modes[][5] = {
		{ "-j", "2", "--chunksize", "1", NULL },
		{ "-j", "1", NULL },
		{ "--serial", NULL },
	};
	static const char *const prints[] = {
		"noisy: printf says hello\n", "noisy: puts says hello\n",
		"noisy: fwrite says hello\n", "noisy: write(1) says hello\n",
	};

	for (size_t m = 0; m < COUNT(modes); m++) {
		const char *args[MAX_ARGS + 1] = { "-p", FIX("noisy") };
		struct proc_spec s = { .args = args, .in = in, .in_len = strlen(in) };
		size_t n = 2;
		struct proc r;

		for (size_t k = 0; modes[m][k]; k++)
			args[n++] = modes[m][k];
		run_spec(&s, &r);
		expect_exit(&r, 0);
		cr_expect_str_eq(r.out, out, "%s: stdout", r.cmd);
		cr_expect(parses(r.out), "%s: stdout is not JSON", r.cmd);
		for (size_t k = 0; k < COUNT(prints); k++)
			cr_expect_eq(count_of(r.err, prints[k]), 3, "%s: \"%s\" %zu times on stderr: %s",
			             r.cmd, prints[k], count_of(r.err, prints[k]), r.err);
		proc_release(&r);
	}
}

Test(cli, config_reaches_init)
{
	static const char in[] = "[1, \"x\", [2], 4, 5, 6]";
	static const char out[] =
		"[\n{\"config\":{\"k\":[1,\"x\"]},\"input\":1},\n"
		"{\"config\":{\"k\":[1,\"x\"]},\"input\":\"x\"},\n"
		"{\"config\":{\"k\":[1,\"x\"]},\"input\":[2]},\n"
		"{\"config\":{\"k\":[1,\"x\"]},\"input\":4},\n"
		"{\"config\":{\"k\":[1,\"x\"]},\"input\":5},\n"
		"{\"config\":{\"k\":[1,\"x\"]},\"input\":6}\n]\n";
	static const struct cli_case cases[] = {
		{ { "-p", FIX("config_echo"), "--config", "{\"k\": [1, \"x\"]}" }, in, 0, out,
		  { 0 } },
		{ { "-p", FIX("config_echo"), "--config", "{\"k\": [1, \"x\"]}", "-j", "3",
		    "--chunksize", "1" }, in, 0, out, { 0 } },
		{ { "-p", FIX("config_echo"), "--config", "{\"k\": [1, \"x\"]}", "--serial" }, in,
		  0, out, { 0 } },
		{ { "-p", FIX("config_echo"), "--config", "42" }, "[true]", 0,
		  "[\n{\"config\":42,\"input\":true}\n]\n", { 0 } },
		{ { "-p", FIX("config_echo") }, "[1]", 0, "[\n{\"config\":null,\"input\":1}\n]\n",
		  { 0 } },
		{ { "-p", FIX("config_echo"), "--serial" }, "[1]", 0,
		  "[\n{\"config\":null,\"input\":1}\n]\n", { 0 } },
		/* invalid --config: refused before anything runs */
		{ { "-p", FIX("config_echo"), "--config", "{\"k\": " }, "[1]", 2, "",
		  { "invalid --config" } },
		{ { "-p", FIX("config_echo"), "--config", "{} x", "--serial" }, "[1]", 2, "",
		  { "invalid --config" } },
		{ { "-p", FIX("config_echo"), "--config", "" }, "[1]", 2, "", { "invalid --config" } },
	};

	check_cases(cases, COUNT(cases));
}

Test(cli, init_failure_exits_2_with_the_plugin_message)
{
	static const struct cli_case cases[] = {
		{ { "-p", FIX("init_fail") }, "[1, 2]", 2, "", { "init refused: bad config" } },
		{ { "-p", FIX("init_fail"), "-j", "3" }, "[1, 2]", 2, "",
		  { "init refused: bad config", "init_fail" } },
		{ { "-p", FIX("init_fail"), "--serial" }, "[1, 2]", 2, "",
		  { "init refused: bad config" } },
		{ { "-p", FIX("init_fail"), "--config", "{}", "--serial" }, "[]", 2, "",
		  { "init refused: bad config" } },
	};

	check_cases(cases, COUNT(cases));
}

/* A run of no items still ends only once every worker's init is known:
 * a failing init exits 2 with the plugin's message, as --serial does. */
Test(cli, init_failure_exits_2_even_without_items)
{
	static const struct cli_case cases[] = {
		{ { "-p", FIX("init_fail"), "--serial" }, "[]", 2, "",
		  { "init refused: bad config" } },
		{ { "-p", FIX("init_fail") }, "[]", 2, "", { "init refused: bad config" } },
		{ { "-p", FIX("init_fail"), "-j", "2", "--input-format", "ndjson" }, "", 2, "",
		  { "init refused: bad config" } },
	};

	check_cases(cases, COUNT(cases));
}

Test(cli, failed_items_are_null_and_named_on_stderr)
{
	static const char out[] = "[\n6,\nnull,\n24\n]\n";
	static const char why[] = "factorial: n must be a non-negative integer, got -1";
	static const struct cli_case cases[] = {
		{ { "-p", "factorial" }, "[3, -1, 4]", 1, out, { "item 1 ", why } },
		{ { "-p", "factorial", "-j", "3", "--chunksize", "1" }, "[3, -1, 4]", 1, out,
		  { "item 1 ", why } },
		{ { "-p", "factorial", "--serial" }, "[3, -1, 4]", 1, out, { "item 1 ", why } },
		{ { "-p", FIX("faulty"), "-j", "2" }, "[\"a\", 2, \"error\", null]", 1,
		  "[\n\"a\",\n2,\nnull,\nnull\n]\n", { "item 2 ", "asked to fail" } },
		{ { "-p", FIX("faulty"), "--serial" }, "[\"error\"]", 1, "[\nnull\n]\n",
		  { "item 0 ", "asked to fail" } },
	};
	struct proc r;

	check_cases(cases, COUNT(cases));
	/* One line per failed item, and nothing with -q. */
	run(&r, "[3, -1, 4, \"x\"]", "-p", "factorial", NULL);
	expect_exit(&r, 1);
	cr_expect_eq(line_count(r.err), 2, "%s", r.err);
	cr_expect_not_null(strstr(r.err, "item 3 "), "%s", r.err);
	proc_release(&r);
	run(&r, "[3, -1, 4]", "-p", "factorial", "-q", NULL);
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out, out);
	cr_expect_str_eq(r.err, "");
	proc_release(&r);
}

Test(cli, fail_fast_stops_with_an_incomplete_array)
{
	static const char *const modes[][5] = {
		{ NULL },
		{ "-j", "3", "--chunksize", "1", NULL },
		{ "--serial", NULL },
		{ "--unordered", NULL },
	};

	for (size_t m = 0; m < COUNT(modes); m++) {
		const char *args[MAX_ARGS + 1] = { "-p", "factorial", "--fail-fast" };
		struct proc_spec s = { .args = args, .in = "[3, -1, 4]", .in_len = 10 };
		size_t n = 3;
		struct proc r;

		for (size_t k = 0; modes[m][k]; k++)
			args[n++] = modes[m][k];
		run_spec(&s, &r);
		expect_exit(&r, 1);
		cr_expect_not(parses(r.out), "%s: stdout is a complete JSON value: %s", r.cmd,
		              r.out);
		cr_expect_not_null(strstr(r.err, "item 1"), "%s: %s", r.cmd, r.err);
		cr_expect_not_null(strstr(r.err, "--fail-fast"), "%s: %s", r.cmd, r.err);
		proc_release(&r);
	}
}

/* `n` strings "i0", "i1", ... with `fault` instead at every index i where
 * i % every == at, as a JSON array; and the output expected when only those
 * items fail. */
static void faulty_case(size_t n, size_t every, size_t at, const char *fault, char **in,
                        char **want)
{
	size_t in_len = 0, want_len = 0;
	char item[64];

	*in = *want = NULL;
	append(in, &in_len, "[", 1);
	append(want, &want_len, "[\n", 2);
	for (size_t i = 0; i < n; i++) {
		const int faulty = i % every == at;
		int k;

		if (faulty)
			k = snprintf(item, sizeof(item), "%s\"%s\"", i ? ", " : "", fault);
		else
			k = snprintf(item, sizeof(item), "%s\"i%zu\"", i ? ", " : "", i);
		append(in, &in_len, item, (size_t)k);
		if (faulty)
			k = snprintf(item, sizeof(item), "null%s\n", i + 1 < n ? "," : "");
		else
			k = snprintf(item, sizeof(item), "\"i%zu\"%s\n", i, i + 1 < n ? "," : "");
		append(want, &want_len, item, (size_t)k);
	}
	append(in, &in_len, "]", 1);
	append(want, &want_len, "]\n", 2);
}

Test(cli, crash_ends_the_run_and_is_reported)
{
	static const struct {
		const char *fault;
		const char *why;
	} faults[] = {
		{ "crash", "killed by SIGSEGV" },
		{ "exit", "exited with status 7" },
	};

	for (size_t f = 0; f < COUNT(faults); f++) {
		char *in, *want;
		struct proc r;
		cJSON *arr;

		faulty_case(40, 40, 20, faults[f].fault, &in, &want);
		run(&r, in, "-p", FIX("faulty"), "-j", "2", "--chunksize", "1", NULL);
		expect_exit(&r, 1);
		cr_expect_not_null(strstr(r.err, faults[f].why), "%s: %s", r.cmd, r.err);
		cr_expect_not_null(strstr(r.err, "item 20 "), "%s: %s", r.cmd, r.err);
		/* A complete array of 40, the faulty item's slot null. */
		arr = cJSON_Parse(r.out);
		cr_expect(cJSON_IsArray(arr), "%s: stdout is not an array: %s", r.cmd, r.out);
		cr_expect_eq(cJSON_GetArraySize(arr), 40, "%s", r.cmd);
		cr_expect(cJSON_IsNull(cJSON_GetArrayItem(arr, 20)), "%s", r.cmd);
		cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(arr, 0)), "i0");
		cJSON_Delete(arr);
		proc_release(&r);
		free(in);
		free(want);
	}
}

/* A worker that dies fails only the item it was running; the chunk queued
 * behind it goes out again to another worker. */
Test(cli, crash_fails_only_its_own_item)
{
	static const char *const faults[] = { "crash", "exit" };

	for (size_t f = 0; f < COUNT(faults); f++) {
		char *in, *want;
		struct proc r;

		faulty_case(400, 40, 20, faults[f], &in, &want);
		run(&r, in, "-p", FIX("faulty"), "-j", "2", "--chunksize", "1", NULL);
		expect_exit(&r, 1);
		cr_expect_str_eq(r.out, want, "%s: only items 20, 60, ... 380 should fail", r.cmd);
		cr_expect_eq(line_count(r.err), 10, "%s: ten failures, each reported once: %s",
		             r.cmd, r.err);
		proc_release(&r);
		free(in);
		free(want);
	}
}

Test(cli, every_item_crashing_still_ends)
{
	static const char in[] = "[\"crash\", \"crash\", \"crash\", \"crash\", \"exit\"]";
	struct proc r;

	run(&r, in, "-p", FIX("faulty"), "-j", "2", NULL);
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out, "[\nnull,\nnull,\nnull,\nnull,\nnull\n]\n");
	cr_expect_not_null(strstr(r.err, "SIGSEGV"), "%s", r.err);
	proc_release(&r);

	run(&r, in, "-p", FIX("faulty"), "-j", "2", "--chunksize", "1", "--fail-fast", NULL);
	expect_exit(&r, 1);
	cr_expect_not(parses(r.out), "%s", r.out);
	cr_expect_not_null(strstr(r.err, "SIGSEGV"), "%s", r.err);
	proc_release(&r);
}

/* ---- ending early ---- */

Test(cli, no_process_left_behind)
{
	static const struct cli_case cases[] = {
		{ { "-p", "factorial", "-j", "8" }, "[1]", 0, "[\n1\n]\n", { 0 } },
		{ { "-p", "factorial", "-j", "8" }, "[]", 0, "[]\n", { 0 } },
		{ { "-p", FIX("faulty"), "-j", "4" }, "[\"crash\"]", 1, "[\nnull\n]\n", { "SIGSEGV" } },
		{ { "-p", "factorial", "-j", "4", "--fail-fast" }, "[-1, 2, 3]", 1, NULL, { 0 } },
		{ { "-p", FIX("init_fail"), "-j", "4" }, "[1]", 2, "", { "init refused" } },
		{ { "-p", "identity", "-j", "4" }, "[1,", 2, NULL, { "byte 3" } },
	};
	struct proc r;

	/* check_cases() checks r.strays after each run. */
	check_cases(cases, COUNT(cases));
	run(&r, NULL, "-p", "identity", FACT_INPUTS, NULL);
	expect_exit(&r, 0);
	proc_release(&r);
	cr_expect_eq(waitpid(-1, NULL, WNOHANG), -1, "a child remains");
	cr_expect_eq(errno, ECHILD);
	cr_expect_eq(for_children(getpid(), NULL), 0);
}

/* ---- did you mean ---- */

Test(cli, misspellings_get_did_you_mean)
{
	static const struct cli_case cases[] = {
		{ { "--plugn", "identity" }, "[]", 2, "",
		  { "pexec: unknown option '--plugn'; did you mean '--plugin'?\n", "pexec --help" } },
		{ { "-p", "identity", "--serail" }, "[]", 2, "",
		  { "unknown option '--serail'; did you mean '--serial'?" } },
		{ { "-p", "identity", "--jbos=2" }, "[]", 2, "",
		  { "unknown option '--jbos=2'; did you mean '--jobs'?" } },
		{ { "-p", "identity", "--ouptut-format", "ndjson" }, "[]", 2, "",
		  { "did you mean '--output-format'?" } },
		/* a start of several names, and a value for a flag */
		{ { "-p", "identity", "--re" }, "[]", 2, "",
		  { "option '--re' is ambiguous; did you mean '--retries', '--resume', "
		    "'--retry-failed' or '--reduce'?" } },
		{ { "-p", "identity", "--drop-null=1" }, "[]", 2, "",
		  { "option '--drop-null' takes no value" } },
		/* nothing close: no guess */
		{ { "-p", "identity", "--bogus" }, "[]", 2, "", { "unknown option '--bogus'\n" } },
		/* values */
		{ { "-p", "identity", "--input-format", "jsno" }, "[]", 2, "",
		  { "invalid --input-format 'jsno': expected json, ndjson, lines or nul; did you "
		    "mean 'json'?" } },
		{ { "-p", "identity", "--output-format", "ndjsn" }, "[]", 2, "",
		  { "did you mean 'ndjson'?" } },
		{ { "-p", "identity", "-j", "core" }, "[]", 2, "", { "did you mean 'cores'?" } },
		{ { "-p", "identity", "--progress=plian" }, "[]", 2, "",
		  { "invalid --progress 'plian': expected auto or plain; did you mean 'plain'?" } },
		/* subcommands and plugins */
		{ { "chekc", "factorial" }, "[]", 2, "",
		  { "no plugin given (--plugin PLUGIN); did you mean 'pexec check'?" } },
		{ { "-p", "factorail" }, "[1]", 2, "",
		  { "cannot load plugin 'factorail'", "; did you mean 'factorial'?\n" } },
		{ { "-p", "wordcuont" }, "[1]", 2, "", { "; did you mean 'wordcount'?\n" } },
		{ { "-p", "zzzzzz" }, "[1]", 2, "", { "cannot load plugin 'zzzzzz'" } },
	};
	struct proc r;

	check_cases(cases, COUNT(cases));
	for (size_t i = 0; i < COUNT(cases); i++) {
		const char *args[MAX_ARGS + 1] = { 0 };
		struct proc_spec s = { .args = args, .in = cases[i].in, .in_len = 2 };

		memcpy(args, cases[i].args, sizeof(cases[i].args));
		run_spec(&s, &r);
		cr_expect_eq(line_count(r.err), strstr(r.err, "--help") ? 2 : 1, "%s: %s", r.cmd,
		             r.err);
		if (strstr(cases[i].args[1] ? cases[i].args[1] : "", "zzz") ||
		    strstr(cases[i].err[0], "bogus"))
			cr_expect_null(strstr(r.err, "did you mean"), "%s: %s", r.cmd, r.err);
		proc_release(&r);
	}
	/* A plugin found through PEXEC_PLUGIN_PATH is a candidate too; a path
	 * is the user's own, never guessed at. */
	setenv("PEXEC_PLUGIN_PATH", PEXEC_TEST_BUILD "/tests/plugins", 1);
	run(&r, "[1]", "-p", "fauty", NULL);
	expect_exit(&r, 2);
	cr_expect_not_null(strstr(r.err, "did you mean 'faulty'?"), "%s", r.err);
	proc_release(&r);
	run(&r, "[1]", "-p", "./factorail.so", NULL);
	expect_exit(&r, 2);
	cr_expect_null(strstr(r.err, "did you mean"), "%s", r.err);
	proc_release(&r);
	run(&r, NULL, "check", "factorail", NULL);
	expect_exit(&r, 2);
	cr_expect_not_null(strstr(r.out, "did you mean 'factorial'?"), "%s", r.out);
	proc_release(&r);
	run(&r, NULL, "check", "factorial", "--must-fial", "x", NULL);
	expect_exit(&r, 2);
	cr_expect_not_null(strstr(r.err, "did you mean '--must-fail'?"), "%s", r.err);
	proc_release(&r);
	unsetenv("PEXEC_PLUGIN_PATH");
}

Test(cli, plugins_lists_what_bare_names_find)
{
	struct proc r;

	run(&r, NULL, "plugins", NULL);
	expect_exit(&r, 0);
	/* python is built where python3-dev is installed. */
	cr_expect(!strcmp(r.out, "factorial\nidentity\nsleep\nwordcount\n") ||
	          !strcmp(r.out, "factorial\nidentity\npython\nsleep\nwordcount\n"), "%s", r.out);
	cr_expect_str_eq(r.err, "");
	proc_release(&r);
	/* $PEXEC_PLUGIN_PATH's come in too, sorted, each name once. */
	setenv("PEXEC_PLUGIN_PATH",
	       PEXEC_TEST_BUILD "/tests/plugins:" PEXEC_TEST_BUILD "/plugins:/nonexistent", 1);
	run(&r, NULL, "plugins", NULL);
	expect_exit(&r, 0);
	cr_expect_not_null(strstr(r.out, "\nfaulty\n"), "%s", r.out);
	cr_expect_eq(count_of(r.out, "factorial\n"), 1, "%s", r.out);
	for (const char *p = r.out, *nl; (nl = strchr(p, '\n')) && nl[1]; p = nl + 1) {
		size_t a = (size_t)(nl - p), b = strcspn(nl + 1, "\n");
		int cmp = strncmp(p, nl + 1, a < b ? a : b);
		cr_expect(cmp < 0 || (cmp == 0 && a < b), "not sorted, or twice: %s", r.out);
	}
	proc_release(&r);
	unsetenv("PEXEC_PLUGIN_PATH");
	run(&r, NULL, "plugins", "--help", NULL);
	expect_exit(&r, 0);
	cr_expect_not_null(strstr(r.out, "usage: pexec plugins"), "%s", r.out);
	proc_release(&r);
	run(&r, NULL, "plugins", "extra", NULL);
	expect_exit(&r, 2);
	proc_release(&r);
}
