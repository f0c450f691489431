/*
 * test_python.c - the python plugin end to end: Python functions on pexec's
 * pool, as a Python user runs them.
 *
 * Values (exact, both ways, as json.loads and json.dumps), exceptions as
 * item failures with their traceback, what pexec does around a function
 * (--timeout, --memory-limit, --retries, --reduce, --serial, --unordered,
 * --resume, signals, pexec-mpi), and setup before the fork: one import in
 * pexec, inherited by every worker.  The functions are in tests/python/.
 *
 * The plugin is built only where Python's embedding library is installed
 * (python3-dev); without it every test is skipped, saying so.  Nothing
 * measures time: the slow import is checked by who imported it, not by how
 * long the run took.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "helpers.h"

#define PYTHON PEXEC_TEST_BUILD "/plugins/python.so"
#define FIXTURES PEXEC_SRC_DIR "/tests/python"

static void python_init(void)
{
	scratch_make();
	/* No __pycache__ written into the source tree. */
	setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
}

TestSuite(python, .init = python_init, .fini = scratch_remove, .timeout = 120);

static void need_python(void)
{
	if (access(PYTHON, R_OK) != 0)
		cr_skip_test("%s is not built (make builds it only where Python's embedding library "
		             "is installed: apt-get install python3-dev): the python plugin is not "
		             "tested", PYTHON);
}

/* --config for a function of tests/python/: {"path": [...], <members>}. */
static const char *conf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *conf(const char *fmt, ...)
{
	static char buf[4][2048];
	static int slot;
	char *b = buf[slot++ & 3];
	va_list ap;
	int n = snprintf(b, sizeof(buf[0]), "{\"path\": [\"%s\"], ", FIXTURES);

	va_start(ap, fmt);
	vsnprintf(b + n, sizeof(buf[0]) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strcat(b, "}");
	return b;
}

/* Runs pexec -p python with `args` over `in`. */
static void py_run(struct proc *r, const char *in, const char *const *args)
{
	struct args a = { .n = 0 };
	struct proc_spec s = { .in = in, .in_len = in ? strlen(in) : 0 };

	args_add(&a, ARGS("-p", PYTHON));
	args_add(&a, args);
	s.args = a.v;
	run_spec(&s, r);
}

/* The whole of stdout, for a run expected to exit `code`. */
static void expect_output(const char *in, const char *const *args, int code, const char *want)
{
	struct proc r;

	py_run(&r, in, args);
	expect_exit(&r, code);
	cr_expect_str_eq(r.out, want, "%s\nstderr: %s", r.cmd, r.err);
	proc_release(&r);
}

/* ---- values ---- */

/* The seeds' recursive factorial over 0..999, exact: the same bytes as the
 * factorial plugin's (its own bignums), in a pool and in --serial. */
Test(python, factorials_of_0_to_999_are_exact)
{
	const char *modes[] = { "-j2", "--serial" };
	char *in = NULL;
	size_t len = 0;
	struct proc ref;

	need_python();
	append(&in, &len, "[", 1);
	for (int i = 0; i < 1000; i++) {
		char num[16];
		int n = snprintf(num, sizeof(num), "%s%d", i ? "," : "", i);
		append(&in, &len, num, (size_t)n);
	}
	append(&in, &len, "]", 1);
	run(&ref, in, "-p", "factorial", NULL);
	expect_exit(&ref, 0);
	for (size_t m = 0; m < COUNT(modes); m++) {
		struct proc r;

		py_run(&r, in, ARGS(modes[m], "--config", conf("\"function\": \"fixture:factorial\"")));
		expect_exit(&r, 0);
		expect_same_bytes(modes[m], r.out, r.out_len, ref.out, ref.out_len);
		proc_release(&r);
	}
	proc_release(&ref);
	free(in);
}

/* Each JSON value is the Python value json.loads gives, and each result the
 * text json.dumps writes (with no spaces, and Unicode as it is). */
Test(python, values_are_what_json_loads_gives)
{
	static const char in[] =
		"[1, -0, 1.0, 1E5, -2.5e-3, 123456789012345678901234567890, true, false, null,"
		" \"text\", [], {}, [1, [2]], {\"b\": 1, \"a\": 2}]";
	static const char want[] =
		"[\n"
		"[\"int\",1],\n[\"int\",0],\n[\"float\",1.0],\n[\"float\",100000.0],\n"
		"[\"float\",-0.0025],\n[\"int\",123456789012345678901234567890],\n"
		"[\"bool\",true],\n[\"bool\",false],\n[\"NoneType\",null],\n[\"str\",\"text\"],\n"
		"[\"list\",[]],\n[\"dict\",{}],\n[\"list\",[1,[2]]],\n[\"dict\",{\"b\":1,\"a\":2}]\n"
		"]\n";

	need_python();
	expect_output(in, ARGS("-j2", "--config", conf("\"function\": \"fixture:kind\"")), 0, want);
	expect_output(in, ARGS("--serial", "--config", conf("\"function\": \"fixture:kind\"")), 0,
	              want);
}

Test(python, unicode_and_escapes_come_back_exactly)
{
	/* UTF-8 of every length, escapes (the pair is one code point, the lone
	 * surrogate stays one), control characters, and a key in Unicode. */
	static const char in[] =
		"[\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\", \"\\u00e9\\ud83d\\ude00\","
		" \"\\ud800\", \"tab\\there \\\"q\\\" \\\\ \\/ \\u0001\","
		" {\"cl\xc3\xa9\": \"\\n\"}]";
	static const char want[] =
		"[\n"
		"\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\",\n"
		"\"\xc3\xa9\xf0\x9f\x98\x80\",\n"
		"\"\\ud800\",\n"
		"\"tab\\there \\\"q\\\" \\\\ / \\u0001\",\n"
		"{\"cl\xc3\xa9\":\"\\n\"}\n"
		"]\n";
	static const char lengths[] = "[\n[9,\"H\xc3\x89LLO \xe2\x82\xac \xf0\x9f\x98\x80\"]\n]\n";

	need_python();
	expect_output(in, ARGS("-j2", "--config", "{\"lambda\": \"lambda x: x\"}"), 0, want);
	/* Python sees code points, not bytes. */
	expect_output("[\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"]",
	              ARGS("--config", "{\"lambda\": \"lambda s: [len(s), s.upper()]\"}"), 0,
	              lengths);
}

Test(python, integers_of_any_size_are_exact)
{
	char *in = NULL, *want = NULL;
	size_t in_len = 0, want_len = 0;

	need_python();
	/* 10^5000 + 1: past Python's default 4300-digit limit on int <-> str. */
	append(&in, &in_len, "[1", 2);
	append(&want, &want_len, "[\n2", 3);
	for (int i = 0; i < 4999; i++) {
		append(&in, &in_len, "0", 1);
		append(&want, &want_len, "0", 1);
	}
	static const char in_tail[] = "1, 18446744073709551617, -99999999999999999999]";
	static const char want_tail[] = "3,\n36893488147419103235,\n-199999999999999999997\n]\n";

	append(&in, &in_len, in_tail, strlen(in_tail));
	append(&want, &want_len, want_tail, strlen(want_tail));
	expect_output(in, ARGS("-j2", "--config", "{\"lambda\": \"lambda x: 2 * x + 1\"}"), 0, want);
	free(in);
	free(want);
}

Test(python, results_json_cannot_hold_fail_naming_the_type)
{
	static const struct {
		const char *item, *why;
	} cases[] = {
		{ "set", "TypeError: Object of type set is not JSON serializable" },
		{ "object", "TypeError: Object of type object is not JSON serializable" },
		{ "bytes", "TypeError: Object of type bytes is not JSON serializable" },
		{ "nan", "ValueError: Out of range float values are not JSON compliant: nan" },
		{ "inf", "ValueError: Out of range float values are not JSON compliant: inf" },
		{ "tuple-key", "TypeError: keys must be str, int, float, bool or None, not tuple" },
		{ "circular", "RecursionError: maximum recursion depth exceeded while encoding a JSON "
		              "object" },
	};
	struct proc r;

	need_python();
	py_run(&r, "[\"set\", \"object\", \"bytes\", \"nan\", \"inf\", \"tuple-key\", \"circular\", "
	           "\"fine\"]",
	       ARGS("-j2", "--config", conf("\"function\": \"fixture:not_json\"")));
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out, "[\nnull,\nnull,\nnull,\nnull,\nnull,\nnull,\nnull,\n\"fine\"\n]\n");
	for (size_t i = 0; i < COUNT(cases); i++) {
		char *line = failure_line(r.err, i), want[256];

		snprintf(want, sizeof(want), "pexec: item %zu failed in serialize: %s", i, cases[i].why);
		cr_expect(line && !strncmp(line, want, strlen(want)), "%s: got %s", cases[i].item,
		          line ? line : "(no line)");
		free(line);
	}
	proc_release(&r);
}

Test(python, keys_and_tuples_are_written_as_json_dumps_writes_them)
{
	need_python();
	expect_output("[0]", ARGS("--config", conf("\"function\": \"fixture:keys\"")), 0,
	              "[\n{\"2\":\"int\",\"2.5\":\"float\",\"true\":\"bool\",\"null\":\"none\","
	              "\"s\":[1,2]}\n]\n");
}

/* Deeper than Python's recursion limit: a RecursionError for the item, as
 * json.loads gives, not a crash. */
Test(python, nesting_past_the_recursion_limit_fails_its_item)
{
	char *in = NULL;
	size_t len = 0;
	struct proc r;

	need_python();
	append(&in, &len, "[1, ", 4);
	for (int i = 0; i < 5000; i++)
		append(&in, &len, "[", 1);
	for (int i = 0; i < 5000; i++)
		append(&in, &len, "]", 1);
	append(&in, &len, ", 2]", 4);
	py_run(&r, in, ARGS("-j2", "--config", "{\"lambda\": \"lambda x: 0\"}"));
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out, "[\n0,\nnull,\n0\n]\n");
	cr_expect(strstr(r.err, "item 1 failed in deserialize: RecursionError: maximum recursion "
	                        "depth exceeded while decoding a JSON value"),
	          "%s", r.err);
	proc_release(&r);
	free(in);
}

/* ---- exceptions ---- */

Test(python, an_exception_fails_only_its_item)
{
	const char *errors = scratch_path(0, "errors.ndjson");
	char *in = NULL, *rec_text, *line;
	size_t len = 0;
	struct proc r;
	cJSON *rec;

	need_python();
	append(&in, &len, "[", 1);
	for (int i = 0; i < 20; i++) {
		char num[8];
		int n = snprintf(num, sizeof(num), "%s%d", i ? "," : "", i);
		append(&in, &len, num, (size_t)n);
	}
	append(&in, &len, "]", 1);
	py_run(&r, in, ARGS("-j2", "--errors", errors, "--config",
	                    conf("\"function\": \"fixture:unlucky\"")));
	expect_exit(&r, 1);
	for (int i = 0; i < 20; i++) {
		char want[32];
		snprintf(want, sizeof(want), "\n%d%s", 2 * i, i == 19 ? "\n]" : ",");
		if (i == 13)
			cr_expect(strstr(r.out, "\nnull,"), "%s", r.out);
		else
			cr_expect(strstr(r.out, want), "item %d: %s", i, r.out);
	}
	line = failure_line(r.err, 13);
	cr_assert_not_null(line, "%s", r.err);
	cr_expect(!strncmp(line, "pexec: item 13 failed in map: ValueError: unlucky",
	                   strlen("pexec: item 13 failed in map: ValueError: unlucky")),
	          "%s", line);
	free(line);
	cr_expect_eq(count_of(r.err, "failed in"), 1, "%s", r.err);
	/* The --errors record carries the traceback's last frames, as the
	 * message's detail (its first line is the reason). */
	rec_text = read_file(errors, &len);
	cr_assert_not_null(rec_text);
	rec = cJSON_Parse(rec_text);
	cr_assert_not_null(rec, "%s", rec_text);
	cr_expect_eq(cJSON_GetObjectItem(rec, "index")->valueint, 13);
	cr_expect_str_eq(cJSON_GetObjectItem(rec, "reason")->valuestring, "ValueError: unlucky");
	cr_expect(strstr(cJSON_GetObjectItem(rec, "detail")->valuestring,
	                 "fixture.py\", line "), "%s", rec_text);
	cr_expect(strstr(cJSON_GetObjectItem(rec, "detail")->valuestring,
	                 "raise ValueError(\"unlucky\")"), "%s", rec_text);
	cJSON_Delete(rec);
	free(rec_text);
	proc_release(&r);
	free(in);
}

Test(python, exceptions_of_a_module_and_system_exit_are_item_failures)
{
	struct proc r;

	need_python();
	py_run(&r, "[1, 2]", ARGS("-j2", "--config", conf("\"function\": \"fixture:own_exception\"")));
	expect_exit(&r, 1);
	cr_expect(strstr(r.err, "item 1 failed in map: fixture.Unlucky: item 2"), "%s", r.err);
	proc_release(&r);
	/* sys.exit() in the function ends the item, not the worker, nor pexec. */
	py_run(&r, "[1, 2]", ARGS("--serial", "--config", conf("\"function\": \"fixture:exits\"")));
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out, "[\nnull,\nnull\n]\n");
	cr_expect(strstr(r.err, "item 0 failed in map: SystemExit: 3"), "%s", r.err);
	proc_release(&r);
}

/* An item that fails after a while, when its worker's prints are due to
 * be flushed (every 10 ms): the flush must not lose its exception. */
Test(python, a_slow_exception_keeps_its_message)
{
	struct proc r;

	need_python();
	py_run(&r, "[1, 2]", ARGS("-j2", "--config",
	                          "{\"lambda\": \"lambda x: print(x) or __import__('time').sleep(0.05)"
	                          " or 1 / 0\"}"));
	expect_exit(&r, 1);
	cr_expect_eq(count_of(r.err, "failed in map: ZeroDivisionError: division by zero"), 2, "%s",
	             r.err);
	proc_release(&r);
	py_run(&r, "[1, 2, 3]", ARGS("--reduce", "--serial", "--config",
	                             "{\"lambda\": \"lambda x: x\", \"reduce\": \"lambda a, b: "
	                             "__import__('time').sleep(0.05) or a / 0\"}"));
	expect_exit(&r, 1);
	cr_expect_eq(count_of(r.err, "failed in reduce: ZeroDivisionError"), 2, "%s", r.err);
	proc_release(&r);
}

/* ---- what pexec does around a function ---- */

Test(python, timeout_kills_a_function_stuck_in_a_loop)
{
	struct proc r;

	need_python();
	py_run(&r, "[0, 1, 2, 3]", ARGS("-j2", "--timeout", "0.5", "--config",
	                                "{\"lambda\": \"lambda x: (x if x != 1 else "
	                                "[0 for _ in iter(int, 1)])\"}"));
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out, "[\n0,\nnull,\n2,\n3\n]\n");
	cr_expect(strstr(r.err, "item 1 failed in map: worker ") && strstr(r.err, "timed out"),
	          "%s", r.err);
	proc_release(&r);
	py_run(&r, "[0, 1, 2]", ARGS("-j2", "--timeout", "0.5", "--config",
	                             conf("\"function\": \"fixture:spin\"")));
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out, "[\n0,\nnull,\n2\n]\n");
	proc_release(&r);
}

Test(python, memory_limit_contains_a_function_that_grows)
{
	struct proc r;

	need_python();
	if (SANITIZED)
		cr_skip_test("AddressSanitizer reserves more address space than any limit allows");
	py_run(&r, "[0, 1, 2]", ARGS("-j2", "--memory-limit", "1G", "--config",
	                             conf("\"function\": \"fixture:grow\"")));
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out, "[\n0,\nnull,\n2\n]\n");
	cr_expect(strstr(r.err, "item 1 failed in map: MemoryError"), "%s", r.err);
	proc_release(&r);
}

Test(python, retries_run_a_killed_item_again)
{
	char in[512];
	struct proc r;

	need_python();
	snprintf(in, sizeof(in), "[\"%s\"]", scratch_path(0, "marker"));
	py_run(&r, in, ARGS("-j2", "--retries", "1", "--config",
	                    conf("\"function\": \"fixture:crash_once\"")));
	expect_exit(&r, 0);
	cr_expect_str_eq(r.out, "[\n\"ok\"\n]\n", "%s", r.err);
	proc_release(&r);
}

Test(python, prints_go_to_stderr_never_into_the_output)
{
	const char *modes[] = { "-j2", "--serial" };

	need_python();
	for (size_t m = 0; m < COUNT(modes); m++) {
		struct proc r;

		py_run(&r, "[1, 2, 3]", ARGS(modes[m], "--config", conf("\"function\": \"fixture:shout\"")));
		expect_exit(&r, 0);
		cr_expect_str_eq(r.out, "[\n1,\n2,\n3\n]\n", "%s", modes[m]);
		for (int i = 1; i <= 3; i++) {
			char want[32];
			snprintf(want, sizeof(want), "shout %d\n", i);
			cr_expect(strstr(r.err, want), "%s: %s", modes[m], r.err);
			/* An unfinished line is not lost either. */
			snprintf(want, sizeof(want), "partial %d", i);
			cr_expect(strstr(r.err, want), "%s: %s", modes[m], r.err);
		}
		proc_release(&r);
	}
}

Test(python, unordered_gives_the_same_results)
{
	static const char in[] = "[5, 4, 3, 2, 1, 0, 6, 7, 8, 9]";
	struct proc a, b;

	need_python();
	py_run(&a, in, ARGS("-j3", "--chunksize", "1", "--output-format", "ndjson", "--config",
	                    conf("\"function\": \"fixture:factorial\"")));
	py_run(&b, in, ARGS("-j3", "--chunksize", "1", "--unordered", "--output-format", "ndjson",
	                    "--config", conf("\"function\": \"fixture:factorial\"")));
	expect_exit(&a, 0);
	expect_exit(&b, 0);
	expect_same_line_set("--unordered", b.out, a.out);
	proc_release(&a);
	proc_release(&b);
}

/* SIGINT ends the run as for C plugins: the interpreter installed no
 * handler of its own, so neither pexec nor its workers wait on Python. */
static void interrupt_when_started(void *ctx, pid_t pid, const struct proc *so_far)
{
	int *sent = ctx;

	if (!*sent && strstr(so_far->out, "0.1")) {
		kill(pid, SIGINT);
		*sent = 1;
	}
}

Test(python, sigint_ends_the_run)
{
	int sent = 0;
	struct proc r;
	struct proc_spec s = {
		.args = ARGS("-p", PYTHON, "-j2", "--chunksize", "1", "--config",
		             "{\"lambda\": \"lambda x: __import__('time').sleep(x) or x\"}"),
		.in = "[0.1, 30, 30, 30, 30]",
		.watch = interrupt_when_started,
		.watch_ctx = &sent,
	};

	need_python();
	s.in_len = strlen(s.in);
	run_spec(&s, &r);
	cr_assert(sent, "the run ended before the first result: %s", r.err);
	expect_exit(&r, 130);
	proc_release(&r);
}

Test(python, resume_continues_an_interrupted_run)
{
	struct files f;
	struct stopper st = { .f = &f, .sig = SIGTERM, .min_items = 5, .min_partial = 16 };
	struct args a = { .n = 0 }, b = { .n = 0 };
	const char *config = "{\"lambda\": \"lambda x: __import__('time').sleep(x) or x * 2\"}";
	struct proc r, ref;

	need_python();
	files_init(&f, "in.json");
	write_sleep_input(f.in, 150, 0, 0, 0.03, 0, 0);
	args_add(&a, ARGS("-p", PYTHON, "-j2", "-q", "--config", config, "-o", f.out, f.in));
	run_args(&r, &a, &st);
	expect_interrupted(&r, &st, "the interrupted run");
	proc_release(&r);
	args_add(&b, a.v);
	args_add(&b, ARGS("--resume"));
	run_args(&r, &b, NULL);
	expect_exit(&r, 0);
	proc_release(&r);
	run(&ref, NULL, "-p", PYTHON, "-j2", "--config", config, f.in, NULL);
	expect_exit(&ref, 0);
	{
		size_t len;
		char *got = read_file(f.out, &len);
		cr_assert_not_null(got);
		expect_same_bytes("resumed", got, len, ref.out, ref.out_len);
		free(got);
	}
	proc_release(&ref);
}

/* ---- --reduce ---- */

Test(python, reduce_folds_in_every_mode)
{
	static const char *const modes[][5] = {
		{ "--serial", NULL }, { "-j", "2", NULL }, { "-j", "3", "--chunksize", "7", NULL },
	};
	char *in = NULL;
	size_t len = 0;

	need_python();
	append(&in, &len, "[", 1);
	for (int i = 0; i < 500; i++)
		append(&in, &len, i ? ",1" : "1", i ? 2 : 1);
	append(&in, &len, "]", 1);
	for (size_t m = 0; m < COUNT(modes); m++) {
		const char *args[12] = { "--reduce" };
		size_t k = 1;

		for (size_t i = 0; modes[m][i]; i++)
			args[k++] = modes[m][i];
		args[k++] = "--config";
		args[k++] = conf("\"function\": \"fixture:count\", \"reduce\": \"fixture:add\", "
		                 "\"initial\": 0");
		args[k] = NULL;
		expect_output(in, args, 0, "500\n");
		/* A lambda, and no "initial": the fold starts at the first result. */
		args[k - 1] = "{\"lambda\": \"lambda x: [x]\", \"reduce\": \"lambda a, b: a + b\"}";
		{
			struct proc r;
			py_run(&r, "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", args);
			expect_exit(&r, 0);
			cr_expect_str_eq(r.out, "[1,2,3,4,5,6,7,8,9,10]\n", "mode %zu", m);
			proc_release(&r);
		}
	}
	free(in);
}

Test(python, reduce_of_nothing_is_the_initial_value)
{
	need_python();
	expect_output("[]", ARGS("--reduce", "-j2", "--config",
	                         conf("\"function\": \"fixture:count\", \"reduce\": \"fixture:add\", "
	                              "\"initial\": {\"n\": 0}")),
	              0, "{\"n\":0}\n");
}

Test(python, a_failing_reduce_fails_only_its_item)
{
	struct proc r;

	need_python();
	py_run(&r, "[1, 2, 7, 4]", ARGS("--reduce", "-j2", "--config",
	                                conf("\"lambda\": \"lambda x: x\", \"reduce\": "
	                                     "\"fixture:fail_reduce\", \"initial\": 0")));
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out, "7\n");
	cr_expect(strstr(r.err, "item 2 failed in reduce: ArithmeticError: no sevens"), "%s", r.err);
	proc_release(&r);
}

Test(python, reduce_without_a_reduce_function_is_refused)
{
	struct proc r;

	need_python();
	py_run(&r, "[1, 2]", ARGS("--reduce", "--config", "{\"lambda\": \"lambda x: x\"}"));
	expect_exit(&r, 2);
	cr_expect(strstr(r.err, "--reduce needs a \"reduce\" function in --config"), "%s", r.err);
	proc_release(&r);
}

/* ---- setup before the fork ---- */

static void note_pexec(void *ctx, pid_t pid, const struct proc *so_far)
{
	(void)so_far;
	*(pid_t *)ctx = pid;
}

/* A module that takes a second to import is imported once, by pexec in
 * setup, not by each of 8 workers: its log of importers has one line. */
Test(python, a_module_is_imported_once_before_the_fork)
{
	const char *log = scratch_path(0, "imports.log");
	pid_t pid = 0;
	char *text, want[32];
	size_t len;
	struct proc r;
	struct proc_spec s = {
		.args = ARGS("-p", PYTHON, "-j8", "--chunksize", "1", "--config",
		             conf("\"function\": \"slow_import:imported_by\"")),
		.in = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]",
		.watch = note_pexec,
		.watch_ctx = &pid,
	};

	need_python();
	setenv("PEXEC_TEST_IMPORT_LOG", log, 1);
	s.in_len = strlen(s.in);
	run_spec(&s, &r);
	expect_exit(&r, 0);
	text = read_file(log, &len);
	cr_assert_not_null(text, "the module was never imported");
	snprintf(want, sizeof(want), "%ld\n", (long)pid);
	cr_expect_str_eq(text, want, "imported by more than pexec (%ld): %s", (long)pid, text);
	/* Every worker's function ran in a child of pexec. */
	snprintf(want, sizeof(want), "\n%ld", (long)pid);
	cr_expect_eq(count_of(r.out, want), 16, "%s", r.out);
	free(text);
	proc_release(&r);
}

/* Each worker is told of its fork (its random numbers are its own, as
 * after os.fork()), collects garbage again, and kept setup's frozen
 * objects out of its collections. */
Test(python, workers_are_told_of_their_fork)
{
	struct proc r;
	cJSON *all, *e;
	int pids = 0;
	long first_pid = 0;
	double first_random = -1;

	need_python();
	py_run(&r, "[0, 0, 0, 0, 0, 0, 0, 0]",
	       ARGS("-j4", "--chunksize", "1", "--config",
	            conf("\"function\": \"fixture:worker_state\"")));
	expect_exit(&r, 0);
	all = cJSON_Parse(r.out);
	cr_assert_not_null(all, "%s", r.out);
	cJSON_ArrayForEach(e, all) {
		long pid = (long)cJSON_GetArrayItem(e, 0)->valuedouble;
		double rnd = cJSON_GetArrayItem(e, 1)->valuedouble;

		cr_expect(cJSON_IsTrue(cJSON_GetArrayItem(e, 2)), "gc not enabled in a worker");
		cr_expect(cJSON_IsTrue(cJSON_GetArrayItem(e, 3)), "nothing frozen by setup");
		if (!first_pid) {
			first_pid = pid;
			first_random = rnd;
		} else if (pid != first_pid) {
			pids++;
			cr_expect(rnd != first_random, "two workers drew the same random number");
		}
	}
	cr_expect_gt(pids, 0, "every item ran in one worker: %s", r.out);
	cJSON_Delete(all);
	proc_release(&r);
}

/* atexit hooks registered at import run once, in pexec's teardown (the
 * interpreter is finalized there), never in a worker. */
Test(python, teardown_runs_atexit_once_in_pexec)
{
	const char *log = scratch_path(0, "exits.log");
	pid_t pid = 0;
	char *text, want[32];
	size_t len;
	struct proc r;
	struct proc_spec s = {
		.args = ARGS("-p", PYTHON, "-j3", "--config", conf("\"function\": \"fixture:count\"")),
		.in = "[1, 2, 3, 4, 5, 6]",
		.watch = note_pexec,
		.watch_ctx = &pid,
	};

	need_python();
	setenv("PEXEC_TEST_EXIT_LOG", log, 1);
	s.in_len = strlen(s.in);
	run_spec(&s, &r);
	expect_exit(&r, 0);
	text = read_file(log, &len);
	cr_assert_not_null(text, "atexit never ran");
	snprintf(want, sizeof(want), "%ld\n", (long)pid);
	cr_expect_str_eq(text, want);
	free(text);
	proc_release(&r);
}

Test(python, c_extension_modules_import)
{
	need_python();
	expect_output("[10]", ARGS("-j2", "--config", conf("\"function\": \"fixture:c_extensions\"")),
	              0, "[\n[3628800,\"2.5\",\"_json\"]\n]\n");
	/* A C function as the function itself. */
	expect_output("[16, 2]", ARGS("--config", "{\"function\": \"math:sqrt\"}"), 0,
	              "[\n4.0,\n1.4142135623730951\n]\n");
}

/* ---- --config ---- */

Test(python, source_lambda_args_and_kwargs)
{
	need_python();
	expect_output("[1, 2]", ARGS("-j2", "--config",
	                             "{\"source\": \"def f(x):\\n    return x + 1\", "
	                             "\"function\": \"f\"}"),
	              0, "[\n2,\n3\n]\n");
	expect_output("[1, 2]", ARGS("--config", conf("\"function\": \"fixture:add3\", \"args\": "
	                                              "[10], \"kwargs\": {\"z\": 100}")),
	              0, "[\n111,\n112\n]\n");
	expect_output("[\"a\"]", ARGS("--config", "{\"lambda\": \"lambda x, y: x * y\", \"args\": "
	                                          "[3]}"),
	              0, "[\n\"aaa\"\n]\n");
}

/* "path" defaults to the current directory, as python -m does. */
Test(python, the_current_directory_is_on_the_path)
{
	const char *mod = scratch_path(0, "here.py");
	char cwd[4096];

	need_python();
	write_file(mod, "def f(x):\n    return -x\n", 24);
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	cr_assert_eq(chdir(scratch), 0);
	expect_output("[1]", ARGS("--config", "{\"function\": \"here:f\"}"), 0, "[\n-1\n]\n");
	cr_assert_eq(chdir(cwd), 0);
}

Test(python, bad_configs_are_refused_before_any_item)
{
	static const struct {
		const char *config, *why;
	} cases[] = {
		{ NULL, "python: --config must name the function" },
		{ "{}", "needs one of \"function\"" },
		{ "{\"function\": \"f\"}", "write it as \"module:f\"" },
		{ "{\"function\": \"m:f\", \"lambda\": \"lambda x: x\"}", "needs one of" },
		{ "{\"function\": \"nosuchmodule:f\"}", "cannot import 'nosuchmodule' (--config "
		                                         "\"function\"): ModuleNotFoundError: No module "
		                                         "named 'nosuchmodule'" },
		{ "{\"function\": \"math:nosuch\"}", "AttributeError" },
		{ "{\"function\": \"math:pi\"}", "'math:pi' is not callable (a float)" },
		{ "{\"lambda\": \"lambda x: \"}", "SyntaxError" },
		{ "{\"function\": \"math:sqrt\", \"colour\": 1}", "unknown --config key \"colour\"" },
		{ "{\"function\": \"math:sqrt\", \"args\": 1}", "\"args\" must be an array" },
		{ "{\"function\": \"math:sqrt\", \"initial\": 0}", "\"reduce\", which is missing" },
	};

	need_python();
	for (size_t i = 0; i < COUNT(cases); i++) {
		struct proc r;

		if (cases[i].config)
			py_run(&r, "[1]", ARGS("-j2", "--config", cases[i].config));
		else
			py_run(&r, "[1]", ARGS("-j2"));
		expect_exit(&r, 2);
		cr_expect(strstr(r.err, "pexec: plugin 'python' setup failed: "), "%s", r.err);
		cr_expect(strstr(r.err, cases[i].why), "%s: %s", cases[i].config, r.err);
		cr_expect_str_eq(r.out, "");
		proc_release(&r);
	}
}

Test(python, info_describes_the_config)
{
	struct proc r;
	cJSON *m, *props;

	need_python();
	run(&r, NULL, "info", PYTHON, NULL);
	expect_exit(&r, 0);
	m = cJSON_Parse(r.out);
	cr_assert_not_null(m, "%s", r.out);
	props = cJSON_GetObjectItem(cJSON_GetObjectItem(m, "config"), "properties");
	cr_expect_not_null(cJSON_GetObjectItem(props, "function"), "%s", r.out);
	cr_expect_not_null(cJSON_GetObjectItem(props, "reduce"), "%s", r.out);
	cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "hooks"), "setup")));
	cJSON_Delete(m);
	proc_release(&r);
}

Test(python, check_runs_samples_through_a_function)
{
	const char *samples = scratch_path(0, "samples.json");
	struct proc r;

	need_python();
	write_file(samples, "[3, \"x\"]", 8);
	run(&r, NULL, "check", PYTHON, samples, "--config", "{\"lambda\": \"lambda x: x * 2\"}",
	    NULL);
	expect_exit(&r, 0);
	cr_expect(strstr(r.out, "ok    setup"), "%s", r.out);
	cr_expect(strstr(r.out, "sample 0: 3 -> 6"), "%s", r.out);
	cr_expect(strstr(r.out, "sample 1: \"x\" -> \"xx\""), "%s", r.out);
	proc_release(&r);
}

/* ---- the seeds' examples ---- */

/* examples/python/run.sh: each seed's program on pexec beside the Pool.map
 * program it replaces, their results compared by the script itself. */
Test(python, the_seeds_examples_run_and_agree_with_pool_map)
{
	char dir[300];
	struct proc r;
	struct proc_spec s = {
		.program = PEXEC_SRC_DIR "/examples/python/run.sh",
		.args = ARGS(dir, "2000"),
	};

	need_python();
	snprintf(dir, sizeof(dir), "%s/examples", scratch);
	setenv("PEXEC", PEXEC, 1);
	run_spec(&s, &r);
	expect_exit_status(&r, 0);
	cr_expect(strstr(r.out, "PicklingError"), "Pool.map pickled a lambda? %s", r.out);
	cr_expect(strstr(r.out, "ok    24 results, each None"), "%s\n%s", r.out, r.err);
	cr_expect(strstr(r.out, "ok    factorials: pexec and Pool.map agree"), "%s\n%s", r.out,
	          r.err);
	cr_expect(strstr(r.out, "ok    easy_parallelize: pexec and Pool.map agree"), "%s\n%s",
	          r.out, r.err);
	proc_release(&r);
}

/* With a virtual environment active (VIRTUAL_ENV, as `activate` sets it)
 * made from the plugin's own Python version, its site-packages are on
 * sys.path, as they would be for `python` there. */
Test(python, an_active_virtual_environment_is_used)
{
	char venv[300], path[700], exe[256], version[256], config[128];
	const char *base;
	struct proc r;

	need_python();
	/* The interpreter the plugin runs, e.g. /usr/bin/python3.11. */
	run(&r, "[0]", "-p", PYTHON, "--output-format", "ndjson", "--config",
	    "{\"lambda\": \"lambda x: __import__('sys').executable\"}", NULL);
	expect_exit(&r, 0);
	cr_assert_eq(sscanf(r.out, "\"%255[^\"]\"", exe), 1, "%s", r.out);
	proc_release(&r);
	base = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
	cr_assert(!strncmp(base, "python3.", 8), "%s", exe);
	snprintf(version, sizeof(version), "%s", base);
	/* A venv as `python -m venv` lays it out. */
	snprintf(venv, sizeof(venv), "%s/venv", scratch);
	snprintf(path, sizeof(path), "%s/bin", venv);
	cr_assert_eq(mkdir(venv, 0755), 0);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/bin/python", venv);
	cr_assert_eq(symlink(exe, path), 0);
	snprintf(path, sizeof(path), "%s/pyvenv.cfg", venv);
	{
		char cfg[400];
		int n = snprintf(cfg, sizeof(cfg), "home = %.*s\ninclude-system-site-packages = false\n",
		                 (int)(base - exe - 1), exe);
		write_file(path, cfg, (size_t)n);
	}
	snprintf(path, sizeof(path), "%s/lib", venv);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/lib/%s", venv, version);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/lib/%s/site-packages", venv, version);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/lib/%s/site-packages/in_venv.py", venv, version);
	write_file(path, "def f(x):\n    return 'venv'\n", 28);
	snprintf(config, sizeof(config), "{\"function\": \"in_venv:f\"}");
	setenv("VIRTUAL_ENV", venv, 1);
	expect_output("[0]", ARGS("--config", config), 0, "[\n\"venv\"\n]\n");
	unsetenv("VIRTUAL_ENV");
	py_run(&r, "[0]", ARGS("--config", config));
	expect_exit(&r, 2);
	cr_expect(strstr(r.err, "No module named 'in_venv'"), "%s", r.err);
	proc_release(&r);
}
