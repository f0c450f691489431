/*
 * test_cpp.c - plugins in C++, as a C++ author writes, builds and runs them.
 *
 * The header's side: a descriptor written exactly as in C builds with
 * sdk/plugin.mk as C++20 under -Wall -Wextra -Werror (and more), is exported
 * and runs; the C++17 way (a constexpr function filling
 * PEXEC_DESCRIPTOR_INIT) builds under -std=c++17 -Wpedantic -Werror with no
 * static constructor; both pass `pexec check`; an exception that escapes a
 * noexcept hook costs only its item.  The fixtures are sources in
 * tests/plugins/ (cpp_as_in_c.cc, cpp17.cpp, cpp_escape.cc), built here in a
 * scratch directory, with clang++ too where it is installed.
 *
 * Then examples/cpp (accesslog, built by make as build/examples/cpp.so)
 * end to end: whole outputs against examples/cpp/expected.json, its
 * exceptions reported as item failures (exit 1, null slots, every other item
 * intact), --config, `pexec check`, and what it exports.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define EXAMPLE_SO PEXEC_TEST_BUILD "/examples/cpp.so"
#define EXAMPLE_DIR PEXEC_SRC_DIR "/examples/cpp"
#define PLUGIN_MK PEXEC_SRC_DIR "/sdk/plugin.mk"

/* Nested makes must not see the MAKEFLAGS of the `make test` running us. */
#define CLEAN_MAKE "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make"

/* What an author who wants no warning at all might build with. */
#define STRICT "-O2 -g -Wall -Wextra -Werror -Wpedantic -Wshadow -Wold-style-cast"

static void in_scratch(void)
{
	scratch_make();
	cr_assert_eq(chdir(scratch), 0, "chdir: %s", strerror(errno));
}

TestSuite(cpp, .init = in_scratch, .fini = scratch_remove, .timeout = 120);

/* Copies tests/plugins/FILE into the scratch directory and builds it there
 * with plugin.mk's own rule; returns make's output (malloc'd). */
static char *build(const char *file, const char *cxx, const char *cxxflags)
{
	char so[128];

	snprintf(so, sizeof(so), "%.*s.so", (int)(strrchr(file, '.') - file), file);
	return shell_ok(file, "cp '%s/tests/plugins/%s' . && rm -f %s && " CLEAN_MAKE
	                " -f '%s' %s CXX=%s CXXFLAGS='%s'",
	                PEXEC_SRC_DIR, file, so, PLUGIN_MK, so, cxx, cxxflags);
}

static int have(const char *program)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", program);
	return system(cmd) == 0;
}

/* What both fixtures make of [1, 2.5, "x", -4], in a pool and in --serial. */
static void expect_squares(const char *so, const char *name, const char *why)
{
	static const char *const modes[] = { "-j2", "--serial" };
	char failure[160];
	struct proc r;

	snprintf(failure, sizeof(failure), "pexec: item 2 failed in map: %s: %s\n", name, why);
	for (size_t i = 0; i < COUNT(modes); i++) {
		run(&r, "[1, 2.5, \"x\", -4]", "--plugin", so, modes[i], NULL);
		expect_exit(&r, 1);
		cr_expect_str_eq(r.out, "[\n1,\n6.25,\nnull,\n16\n]\n", "%s: stderr: %s", r.cmd,
		                 r.err);
		cr_expect_str_eq(r.err, failure, "%s", r.cmd);
		proc_release(&r);
	}
}

/* ---- the header and plugin.mk ---- */

Test(cpp, descriptor_written_as_in_c_builds_clean_as_cpp20_and_runs)
{
	const char *compilers[] = { "g++", "clang++" };
	char *out, *syms;

	for (size_t i = 0; i < COUNT(compilers); i++) {
		if (!have(compilers[i])) {
			cr_log_warn("%s is not installed: the descriptor not built with it",
			            compilers[i]);
			continue;
		}
		/* The .cc rule, with plugin.mk's -std=c++20 (no -std= here). */
		out = build("cpp_as_in_c.cc", compilers[i], STRICT);
		cr_expect(strstr(out, " -std=c++20 "), "%s", out);
		free(out);
		expect_squares("./cpp_as_in_c.so", "cpp_as_in_c", "expected a number, got a string");
		/* Exported; anything else exported is std:: code (see the last
		 * test). */
		syms = shell_ok("nm", "nm -DC --defined-only cpp_as_in_c.so | grep -v 'std::' | "
		                      "awk '{ print $2, $3 }'");
		cr_expect_str_eq(syms, "D pexec_plugin\n", "%s", compilers[i]);
		free(syms);
	}
}

Test(cpp, config_reaches_a_cpp_init_and_its_exceptions_fail_init)
{
	struct proc r;

	free(build("cpp_as_in_c.cc", "g++", STRICT));
	run(&r, "[1, 3]", "--plugin", "./cpp_as_in_c.so", "--config", "{\"add\": 10}", NULL);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.out, "[\n11,\n19\n]\n", "stderr: %s", r.err);
	proc_release(&r);
	run(&r, "[1, 3]", "--plugin", "./cpp_as_in_c.so", "--config", "{\"add\": \"x\"}", NULL);
	expect_exit(&r, 2);
	cr_expect_str_eq(r.out, "");
	cr_expect(strstr(r.err, "pexec: plugin 'cpp_as_in_c' init failed: cpp_as_in_c: config "
	                        "\"add\" must be a number\n"),
	          "%s", r.err);
	proc_release(&r);
}

Test(cpp, cpp17_descriptor_builds_without_designated_initializers_and_runs)
{
	const char *compilers[] = { "g++", "clang++" };
	char *out;

	for (size_t i = 0; i < COUNT(compilers); i++) {
		if (!have(compilers[i])) {
			cr_log_warn("%s is not installed: the descriptor not built with it",
			            compilers[i]);
			continue;
		}
		/* The .cpp rule; -Wpedantic -Werror refuses designated initializers,
		 * which C++17 has only as an extension. */
		out = build("cpp17.cpp", compilers[i], "-std=c++17 " STRICT);
		cr_expect(strstr(out, " -std=c++17 "), "%s", out);
		free(out);
		expect_squares("./cpp17.so", "cpp17", "expected a number");
		/* Constant-initialized: nothing runs when pexec loads it. */
		free(shell_ok("static constructors", "! nm cpp17.so | grep _GLOBAL__sub_I"));
	}
}

Test(cpp, cpp_plugins_pass_pexec_check)
{
	static const char *const fixtures[][2] = {
		{ "cpp_as_in_c.cc", "./cpp_as_in_c.so" },
		{ "cpp17.cpp", "./cpp17.so" },
	};
	struct proc r;

	write_file("good.json", "[0, 1.5, -3]", 12);
	write_file("bad.json", "[2, {\"a\": 1}]", 13);
	for (size_t i = 0; i < COUNT(fixtures); i++) {
		free(build(fixtures[i][0], "g++", STRICT));
		run(&r, NULL, "check", fixtures[i][1], "good.json", NULL);
		expect_exit(&r, 0);
		cr_expect(strstr(r.out, "ok    sample 2: -3 -> 9"), "%s", r.out);
		cr_expect(strstr(r.out, " checks passed\n") && !strstr(r.out, "FAIL"), "%s", r.out);
		proc_release(&r);
		run(&r, NULL, "check", fixtures[i][1], "bad.json", NULL);
		expect_exit(&r, 1);
		cr_expect(strstr(r.out, "ok    sample 0: 2 -> 4"), "%s", r.out);
		cr_expect(strstr(r.out, "FAIL  sample 1: map failed: cpp"), "%s", r.out);
		cr_expect(strstr(r.out, "expected a number"), "%s", r.out);
		proc_release(&r);
	}
}

/* The backstop when a hook breaks the rule: noexcept turns the escaping
 * exception into std::terminate in the worker, never an unwind into pexec. */
Test(cpp, exception_escaping_a_noexcept_hook_fails_only_its_item)
{
	char *line;
	struct proc r;

	/* Without -Werror: g++ rightly warns that this throw calls terminate. */
	free(build("cpp_escape.cc", "g++", "-O2 -g -Wall -Wextra"));
	run(&r, "[1, \"throw\", 3, 4, 5]", "--plugin", "./cpp_escape.so", "-j2", NULL);
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out, "[\n1,\nnull,\n3,\n4,\n5\n]\n", "stderr: %s", r.err);
	line = failure_line(r.err, 1);
	cr_assert_not_null(line, "%s", r.err);
	cr_expect(strstr(line, "failed in map: worker ") && strstr(line, " killed by SIGABRT"),
	          "%s", line);
	cr_expect(strstr(r.err, "what():  escaped"), "%s", r.err);
	free(line);
	proc_release(&r);
}

/* ---- examples/cpp ---- */

Test(cpp, example_runs_end_to_end)
{
	static const char *const modes[] = { "-j2", "-j1", "--serial" };
	static const char failures[] =
		"pexec: item 6 failed in map: accesslog: not a Common Log Format line: "
		"this line was cut off by a full disk\n"
		"pexec: item 7 failed in map: accesslog: bytes 99999999999999999999999 does not "
		"fit in 64 bits\n"
		"pexec: item 9 failed in map: accesslog: expected a log line (a string)\n";
	size_t want_len;
	char *want = read_file(EXAMPLE_DIR "/expected.json", &want_len);
	struct proc r;

	cr_assert_not_null(want);
	for (size_t i = 0; i < COUNT(modes); i++) {
		run(&r, NULL, "--plugin", EXAMPLE_SO, modes[i], EXAMPLE_DIR "/inputs.json", NULL);
		expect_exit(&r, 1);
		expect_same_bytes(r.cmd, r.out, r.out_len, want, want_len);
		expect_same_line_set(r.cmd, r.err, failures);
		proc_release(&r);
	}
	free(want);
}

Test(cpp, example_config_chooses_fields_and_its_exceptions_fail_init)
{
	static const struct {
		const char *config, *message;
	} bad[] = {
		{ "{\"fields\": [\"status\", \"size\"]}", "unknown field 'size' (host, ident, " },
		{ "{\"fields\": []}", "config \"fields\" must be a non-empty array of names" },
		{ "{\"fields\": [\"path\", \"path\"]}", "field 'path' named twice" },
		{ "{\"field\": [\"path\"]}", "unknown config key 'field' (only \"fields\")" },
		{ "[\"path\"]", "config must be an object" },
	};
	/* A path with a quote in it, which the result must escape. */
	static const char in[] =
		"[\"10.0.0.7 - alice [02/Dec/2024:07:02:40 +0000] \\\"POST /a\\\"b HTTP/1.1\\\" "
		"201 -\", \"bad\"]";
	struct proc r;

	run(&r, in, "--plugin", EXAMPLE_SO, "--config",
	    "{\"fields\": [\"status\", \"path\", \"bytes\", \"user\"]}", NULL);
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out,
	                 "[\n{\"status\":201,\"path\":\"/a\\\"b\",\"bytes\":null,"
	                 "\"user\":\"alice\"},\nnull\n]\n",
	                 "stderr: %s", r.err);
	proc_release(&r);
	for (size_t i = 0; i < COUNT(bad); i++) {
		run(&r, in, "--plugin", EXAMPLE_SO, "--config", bad[i].config, NULL);
		expect_exit(&r, 2);
		cr_expect_str_eq(r.out, "", "%s", r.cmd);
		cr_expect(strstr(r.err, "pexec: plugin 'accesslog' init failed: accesslog: "),
		          "%s: %s", r.cmd, r.err);
		cr_expect(strstr(r.err, bad[i].message), "%s: %s", r.cmd, r.err);
		proc_release(&r);
	}
}

Test(cpp, example_refuses_lines_too_long_for_its_regex)
{
	size_t n = 9000;
	char *in = malloc(n + 5);
	struct proc r;

	cr_assert_not_null(in);
	memcpy(in, "[\"", 2);
	memset(in + 2, 'a', n);
	strcpy(in + 2 + n, "\"]");
	run(&r, in, "--plugin", EXAMPLE_SO, NULL);
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out, "[\nnull\n]\n");
	cr_expect_str_eq(r.err, "pexec: item 0 failed in map: accesslog: line of 9000 bytes "
	                        "(at most 8192)\n");
	proc_release(&r);
	free(in);
}

Test(cpp, example_passes_pexec_check)
{
	struct proc r;

	run(&r, NULL, "check", EXAMPLE_SO, EXAMPLE_DIR "/samples.json", NULL);
	expect_exit(&r, 0);
	cr_expect(strstr(r.out, "ok    loads: accesslog 1.0.0, plugin ABI 1"), "%s", r.out);
	cr_expect(strstr(r.out, "ok    sample 2: "), "%s", r.out);
	cr_expect(!strstr(r.out, "FAIL"), "%s", r.out);
	proc_release(&r);
	run(&r, NULL, "check", EXAMPLE_SO, EXAMPLE_DIR "/inputs.json", NULL);
	expect_exit(&r, 1);
	cr_expect(strstr(r.out, "FAIL  sample 7: map failed: accesslog: bytes "
	                        "99999999999999999999999 does not fit in 64 bits\n"),
	          "%s", r.out);
	proc_release(&r);
}

/* GUIDE.md's word on `nm -D`: a C++ plugin exports pexec_plugin, and also
 * the std:: template code it instantiated (libstdc++'s headers make it
 * visible whatever -fvisibility says), and nothing else (but, in the
 * sanitizer build, ASan's __odr_asan.* indicators of exported globals). */
Test(cpp, example_exports_pexec_plugin_and_otherwise_only_std)
{
	char *syms = shell_ok("nm", "nm -DC --defined-only '%s' | grep -v -e 'std::' -e "
	                            "' __odr_asan\\.' | awk '{ print $2, $3 }'", EXAMPLE_SO);

	cr_expect_str_eq(syms, "D pexec_plugin\n");
	free(syms);
	syms = shell_ok("nm", "nm -DC --defined-only '%s' | grep -c 'std::'", EXAMPLE_SO);
	cr_expect_gt(atoi(syms), 0, "no std:: symbols at all: GUIDE.md says otherwise");
	free(syms);
}
