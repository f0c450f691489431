/*
 * test_new.c - `pexec new NAME [--lang c|c++]` (core/cli/new.c), run as a
 * plugin author runs it: the skeleton it writes, in C or in C++, builds with
 * one `make` and runs at once, its disabled hooks compile and run when
 * enabled, and it refuses a bad NAME, one that exists or an unknown language
 * without touching anything.
 *
 * Each test works in its own scratch directory (Criterion runs each test in
 * its own process, so chdir is safe).  The build tree's pexec writes
 * Makefiles that include the checkout's sdk/plugin.mk; test_install.c does
 * the same with an installed pexec.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

/* Nested makes must not see the MAKEFLAGS of the `make test` running us. */
#define CLEAN_MAKE "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make"

/* The longest name taken: 64 characters. */
#define OK_64 "_ok64xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

/* What the skeleton's identity map makes of its own input.json. */
#define SKELETON_OUTPUT "[\n1,\n\"two\",\n{\"three\":3},\n[4,5],\nnull\n]\n"

static void in_scratch(void)
{
	scratch_make();
	cr_assert_eq(chdir(scratch), 0, "chdir: %s", strerror(errno));
}

TestSuite(new, .init = in_scratch, .fini = scratch_remove, .timeout = 120);

/* Runs a shell command in the scratch directory, its output kept in a log
 * that the failure message shows. */
static void sh_ok(const char *what, const char *cmd)
{
	char line[2048], *log;
	size_t len;
	int rc;

	snprintf(line, sizeof(line), "( %s ) >sh.log 2>&1", cmd);
	rc = system(line);
	log = read_file(scratch_path(0, "sh.log"), &len);
	cr_assert_eq(rc, 0, "%s failed: %s\n%s", what, cmd, log ? log : "");
	free(log);
	unlink(scratch_path(0, "sh.log"));
}

static void expect_runs(const char *mode)
{
	struct proc r;

	run(&r, NULL, "--plugin", "hello/hello.so", mode, "hello/input.json", NULL);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.out, SKELETON_OUTPUT, "%s: stderr: %s", r.cmd, r.err);
	proc_release(&r);
}

Test(new, skeleton_builds_with_one_make_and_runs)
{
	char *listing, *makefile;
	struct proc r;
	size_t len;

	run(&r, NULL, "new", "hello", NULL);
	expect_exit(&r, 0);
	cr_expect(strstr(r.out, "  make -C hello\n"), "%s", r.out);
	cr_expect(strstr(r.out, " --plugin hello/hello.so hello/input.json\n"), "%s", r.out);
	proc_release(&r);

	listing = scratch_listing();
	cr_expect_str_eq(listing, "hello\n");
	free(listing);
	makefile = read_file(scratch_path(0, "hello/Makefile"), &len);
	cr_assert_not_null(makefile);
	cr_expect(strstr(makefile, "PEXEC_SDK ?= " PEXEC_SRC_DIR "/sdk\n"), "%s", makefile);
	cr_expect(strstr(makefile, "include $(PEXEC_SDK)/plugin.mk\n"), "%s", makefile);
	free(makefile);

	sh_ok("make", CLEAN_MAKE " -C hello");
	expect_runs("-j2");
	expect_runs("--serial");
	/* Only the descriptor is exported. */
	sh_ok("nm", "test \"$(nm -D --defined-only hello/hello.so | awk '{ print $3 }')\" = "
	            "pexec_plugin");
	sh_ok("make clean", CLEAN_MAKE " -C hello clean && test ! -e hello/hello.so");
}

/* The optional hooks are disabled with #if 0 and named in comments in the
 * descriptor: enabled, they must build under strict warnings and still give
 * the same output, through init, fini, deserialize, serialize, free_value. */
Test(new, skeleton_hooks_build_and_run_when_enabled)
{
	struct proc r;

	run(&r, NULL, "new", "hello", NULL);
	expect_exit(&r, 0);
	proc_release(&r);
	sh_ok("enabling the hooks",
	      "sed -i -e '/^#if 0$/d' -e '/^#endif$/d' -e 's|^\t/\\* \\(\\..*\\) \\*/$|\t\\1|' "
	      "hello/hello.c && ! grep -q '^#if' hello/hello.c && "
	      "test $(grep -c '^\t\\.[a-z_]* = hello_' hello/hello.c) = 6");
	sh_ok("make", CLEAN_MAKE " -C hello CFLAGS='-O2 -g -Wall -Wextra -Werror -Wshadow "
	              "-Wstrict-prototypes -Wmissing-prototypes -Wconversion'");
	expect_runs("-j2");
	expect_runs("--serial");
}

Test(new, cpp_skeleton_builds_with_one_make_and_runs)
{
	char *listing, *makefile;
	struct proc r;
	size_t len;

	run(&r, NULL, "new", "hello", "--lang", "c++", NULL);
	expect_exit(&r, 0);
	cr_expect(strstr(r.out, "wrote hello/hello.cc, hello/Makefile and hello/input.json\n"),
	          "%s", r.out);
	cr_expect(strstr(r.out, "  make -C hello\n"), "%s", r.out);
	proc_release(&r);

	listing = scratch_listing();
	cr_expect_str_eq(listing, "hello\n");
	free(listing);
	cr_expect_eq(access("hello/hello.cc", F_OK), 0);
	cr_expect_neq(access("hello/hello.c", F_OK), 0);
	makefile = read_file(scratch_path(0, "hello/Makefile"), &len);
	cr_assert_not_null(makefile);
	cr_expect(strstr(makefile, "# CXXFLAGS (default -O2 -g -Wall -Wextra) can be replaced"),
	          "%s", makefile);
	cr_expect(strstr(makefile, "include $(PEXEC_SDK)/plugin.mk\n"), "%s", makefile);
	free(makefile);

	/* Built as C++ (g++ -std=c++20, from plugin.mk), without a warning. */
	sh_ok("make", CLEAN_MAKE " -C hello CXXFLAGS='-O2 -g -Wall -Wextra -Werror' >make.log && "
	              "grep -q -- ' -std=c++20 ' make.log && rm make.log");
	expect_runs("-j2");
	expect_runs("--serial");
	sh_ok("nm", "test \"$(nm -D --defined-only hello/hello.so | awk '{ print $3 }')\" = "
	            "pexec_plugin");
	sh_ok("make clean", CLEAN_MAKE " -C hello clean && test ! -e hello/hello.so");
}

/* In C++ the descriptor names its hooks in the header's order (C++20's rule
 * for designated initializers): enabled, they must build and run. */
Test(new, cpp_skeleton_hooks_build_and_run_when_enabled)
{
	struct proc r;

	run(&r, NULL, "new", "--lang=c++", "hello", NULL);
	expect_exit(&r, 0);
	proc_release(&r);
	sh_ok("enabling the hooks",
	      "sed -i -e '/^#if 0$/d' -e '/^#endif$/d' -e 's|^\t/\\* \\(\\..*\\) \\*/$|\t\\1|' "
	      "hello/hello.cc && ! grep -q '^#if' hello/hello.cc && "
	      "test $(grep -c '^\t\\.[a-z_]* = hello_' hello/hello.cc) = 6");
	sh_ok("make", CLEAN_MAKE " -C hello CXXFLAGS='-O2 -g -Wall -Wextra -Werror -Wpedantic "
	              "-Wshadow -Wold-style-cast -Wconversion -Wsign-conversion'");
	expect_runs("-j2");
	expect_runs("--serial");
}

Test(new, lang_c_is_the_default_and_unknown_languages_are_refused)
{
	static const char *const bad[][2] = {
		{ "--lang", "rust" }, { "--lang", "C" }, { "--lang=cpp", NULL }, { "--lang=", NULL },
	};
	char *listing;
	struct proc r;

	for (size_t i = 0; i < COUNT(bad); i++) {
		if (bad[i][1])
			run(&r, NULL, "new", "hello", bad[i][0], bad[i][1], NULL);
		else
			run(&r, NULL, "new", "hello", bad[i][0], NULL);
		expect_exit(&r, 2);
		cr_expect(strstr(r.err, "pexec new: unknown language '"), "%s: %s", r.cmd, r.err);
		cr_expect(strstr(r.err, "' (c or c++)\n"), "%s: %s", r.cmd, r.err);
		cr_expect_str_empty(r.out, "%s", r.cmd);
		proc_release(&r);
	}
	run(&r, NULL, "new", "hello", "--lang", NULL);
	expect_exit(&r, 2);
	cr_expect(strstr(r.err, "option '--lang' needs a language (c or c++)"), "%s", r.err);
	proc_release(&r);
	listing = scratch_listing();
	cr_expect_str_eq(listing, "", "a refused language left files behind");
	free(listing);

	run(&r, NULL, "new", "--lang", "c", "hello", NULL);
	expect_exit(&r, 0);
	cr_expect(strstr(r.out, "wrote hello/hello.c, hello/Makefile and hello/input.json\n"),
	          "%s", r.out);
	proc_release(&r);
	cr_expect_eq(access("hello/hello.c", F_OK), 0);
	sh_ok("make", CLEAN_MAKE " -C hello");
	expect_runs("-j2");
}

Test(new, refuses_a_name_that_is_not_an_identifier)
{
	static const char *const bad[] = {
		"1hello", "hello-world", "hello.c", "../hello", "a/b", "x y", "",
		"a2222222222222222222222222222222222222222222222222222222222222222", /* 65 */
	};
	char *listing;
	struct proc r;

	for (size_t i = 0; i < COUNT(bad); i++) {
		run(&r, NULL, "new", bad[i], NULL);
		expect_exit(&r, 2);
		cr_expect(strstr(r.err, "invalid plugin name"), "%s: %s", r.cmd, r.err);
		cr_expect_str_empty(r.out, "%s", r.cmd);
		proc_release(&r);
	}
	run(&r, NULL, "new", OK_64, NULL);
	expect_exit(&r, 0);
	proc_release(&r);
	run(&r, NULL, "new", NULL);
	expect_exit(&r, 2);
	cr_expect(strstr(r.err, "usage: pexec new NAME"), "%s", r.err);
	proc_release(&r);
	run(&r, NULL, "new", "a", "b", NULL);
	expect_exit(&r, 2);
	proc_release(&r);
	run(&r, NULL, "new", "--force", "a", NULL);
	expect_exit(&r, 2);
	cr_expect(strstr(r.err, "unknown option '--force'"), "%s", r.err);
	proc_release(&r);

	listing = scratch_listing();
	cr_expect_str_eq(listing, OK_64 "\n");
	free(listing);
}

Test(new, never_overwrites)
{
	char *text;
	struct proc r;
	size_t len;

	cr_assert_eq(mkdir("hello", 0777), 0);
	write_file("hello/hello.c", "mine\n", 5);
	write_file("file", "mine\n", 5);
	run(&r, NULL, "new", "hello", NULL);
	expect_exit(&r, 2);
	cr_expect(strstr(r.err, "cannot create 'hello': it already exists"), "%s", r.err);
	proc_release(&r);
	run(&r, NULL, "new", "file", NULL);
	expect_exit(&r, 2);
	proc_release(&r);

	text = read_file("hello/hello.c", &len);
	cr_expect_str_eq(text, "mine\n");
	free(text);
	text = read_file("file", &len);
	cr_expect_str_eq(text, "mine\n");
	free(text);
	text = scratch_listing();
	cr_expect_str_eq(text, "file\nhello\n");
	free(text);
	cr_expect_neq(access("hello/Makefile", F_OK), 0);
}

Test(new, help)
{
	struct proc r;

	run(&r, NULL, "new", "--help", NULL);
	expect_exit(&r, 0);
	cr_expect(strstr(r.out, "usage: pexec new NAME [--lang c|c++]\n"), "%s", r.out);
	cr_expect_str_empty(r.err);
	proc_release(&r);
}
