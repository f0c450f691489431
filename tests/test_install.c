/*
 * test_install.c - `make install` as a packager runs it, and what a user
 * does with the result: every test installs into its own DESTDIR (PREFIX
 * /usr/local) and then uses only what was installed there.
 *
 *  - a plugin built out of tree with nothing but `pkg-config pexec-plugin`,
 *    run by the installed pexec;
 *  - the shipped plugins found by bare name;
 *  - a C program built with `pkg-config libpexec` that runs a pool;
 *  - `pexec new` from the installed binary, built with the installed SDK;
 *  - C++ plugins built with the installed pkg-config file and SDK;
 *  - the man pages, and `make uninstall` leaving nothing behind.
 *
 * DESTDIR only stages: the installed pexec has /usr/local/lib/pexec/plugins
 * compiled in, which does not exist under the DESTDIR, so bare names are
 * looked up through PEXEC_PLUGIN_PATH pointing into it (the compiled-in
 * directory is checked through the message that names it).  pkg-config reads
 * the DESTDIR's .pc files with PKG_CONFIG_SYSROOT_DIR set to it, as for a
 * sysroot.  `pexec new` finds the SDK beside its binary, so needs no help.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"
#include "pexec.h"

#ifndef PEXEC_TEST_MAKEVARS
#define PEXEC_TEST_MAKEVARS ""
#endif
#ifndef PEXEC_TEST_SANFLAGS
#define PEXEC_TEST_SANFLAGS ""
#endif

#define PREFIX "/usr/local"

/* Nested makes must not see the MAKEFLAGS of the `make test` running us
 * (command-line variables, a jobserver whose descriptors we do not have). */
#define CLEAN_MAKE "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make"

TestSuite(install, .init = scratch_make, .fini = scratch_remove, .timeout = 180);

static char destdir[300];

/* A path under the DESTDIR's PREFIX (static storage, `slot` 0..3). */
static const char *inst(int slot, const char *rel)
{
	static char paths[4][512];

	snprintf(paths[slot], sizeof(paths[slot]), "%s" PREFIX "/%s", destdir, rel);
	return paths[slot];
}

/* Runs a shell command; returns its exit status (-1: it did not exit) and,
 * in *out (may be NULL; free it), its stdout and stderr together. */
static int sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int sh(char **out, const char *fmt, ...)
{
	char cmd[4096], line[4200], buf[4096], *text = NULL;
	size_t len = 0, n;
	va_list ap;
	FILE *p;
	int status;

	va_start(ap, fmt);
	cr_assert_lt(vsnprintf(cmd, sizeof(cmd), fmt, ap), (int)sizeof(cmd));
	va_end(ap);
	snprintf(line, sizeof(line), "( %s ) 2>&1", cmd);
	p = popen(line, "r");
	cr_assert_not_null(p, "popen: %s", strerror(errno));
	append(&text, &len, "", 0);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		append(&text, &len, buf, n);
	status = pclose(p);
	if (out)
		*out = text;
	else
		free(text);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Like sh(), but the command must succeed; returns its output. */
static char *sh_ok(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *sh_ok(const char *what, const char *fmt, ...)
{
	char cmd[4096], *out;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	cr_assert_lt(vsnprintf(cmd, sizeof(cmd), fmt, ap), (int)sizeof(cmd));
	va_end(ap);
	rc = sh(&out, "%s", cmd);
	cr_assert_eq(rc, 0, "%s failed (exit %d): %s\n%s", what, rc, cmd, out);
	return out;
}

/* `make install` into scratch/dest.  Tests run in parallel: one make at a
 * time in this build directory, or two would compile the same objects. */
static void install(void)
{
	int fd = open(PEXEC_TEST_BUILD "/.install-test.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0666);

	cr_assert_geq(fd, 0, "lock: %s", strerror(errno));
	cr_assert_eq(flock(fd, LOCK_EX), 0);
	snprintf(destdir, sizeof(destdir), "%s/dest", scratch);
	free(sh_ok("make install", CLEAN_MAKE " -s -C '%s' install DESTDIR='%s' PREFIX=" PREFIX
	           " " PEXEC_TEST_MAKEVARS, PEXEC_SRC_DIR, destdir));
	close(fd);
}

/* `make install PREFIX=scratch/prefix`, no DESTDIR: an install whose
 * compiled-in directories exist, as after a real one.  Returns the prefix. */
static const char *install_prefix(void)
{
	static char prefix[300];
	int fd = open(PEXEC_TEST_BUILD "/.install-test.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0666);

	cr_assert_geq(fd, 0, "lock: %s", strerror(errno));
	cr_assert_eq(flock(fd, LOCK_EX), 0);
	snprintf(prefix, sizeof(prefix), "%s/prefix", scratch);
	free(sh_ok("make install", CLEAN_MAKE " -s -C '%s' install PREFIX='%s' " PEXEC_TEST_MAKEVARS,
	           PEXEC_SRC_DIR, prefix));
	close(fd);
	return prefix;
}

static int is_file(const char *path, mode_t mode)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == mode;
}

/* The shell command that makes pkg-config read the DESTDIR's .pc files and
 * point into it. */
static const char *pkg_env(void)
{
	static char env[1024];

	snprintf(env, sizeof(env), "export PKG_CONFIG_PATH='%s' PKG_CONFIG_SYSROOT_DIR='%s'",
	         inst(3, "lib/pkgconfig"), destdir);
	return env;
}

Test(install, installs_every_file_and_uninstall_removes_them)
{
	static const struct {
		const char *path;
		mode_t mode;
	} files[] = {
		{ "bin/pexec", 0755 },
		{ "lib/libpexec.a", 0644 },
		{ "lib/libpexec.so." PEXEC_VERSION, 0755 },
		{ "include/pexec/pexec.h", 0644 },
		{ "include/pexec/pexec_plugin.h", 0644 },
		{ "share/pexec/sdk/plugin.mk", 0644 },
		{ "share/pexec/sdk/pexec_plugin.h", 0644 },
		{ "share/pexec/sdk/GUIDE.md", 0644 },
		{ "lib/pkgconfig/pexec-plugin.pc", 0644 },
		{ "lib/pkgconfig/libpexec.pc", 0644 },
		{ "lib/pexec/plugins/factorial.so", 0644 },
		{ "lib/pexec/plugins/identity.so", 0644 },
		{ "lib/pexec/plugins/sleep.so", 0644 },
		{ "share/man/man1/pexec.1", 0644 },
		{ "share/man/man7/pexec-plugin.7", 0644 },
		{ "share/bash-completion/completions/pexec", 0644 },
		{ "share/bash-completion/completions/pexec-mpi", 0644 },
		{ "share/zsh/site-functions/_pexec", 0644 },
	};
	char *out, *left;
	int groff;

	install();
	for (size_t i = 0; i < COUNT(files); i++)
		cr_expect(is_file(inst(0, files[i].path), files[i].mode), "%s: missing, or not mode %o",
		          inst(0, files[i].path), (unsigned)files[i].mode);

	/* Core headers are never installed; pexec.h is the one public one. */
	out = sh_ok("ls", "ls '%s'", inst(0, "include/pexec"));
	cr_expect_str_eq(out, "pexec.h\npexec_plugin.h\n");
	free(out);
	out = sh_ok("ls", "ls '%s'", inst(0, "include"));
	cr_expect_str_eq(out, "pexec\n");
	free(out);

	/* The shared library's links: libpexec.so.0 (its soname) for programs
	 * that run, libpexec.so for the linker. */
	out = sh_ok("readlink", "readlink '%s' '%s'", inst(0, "lib/libpexec.so.0"),
	            inst(1, "lib/libpexec.so"));
	cr_expect_str_eq(out, "libpexec.so." PEXEC_VERSION "\nlibpexec.so.0\n");
	free(out);
	out = sh_ok("readelf", "readelf -d '%s'", inst(0, "lib/libpexec.so." PEXEC_VERSION));
	cr_expect(strstr(out, "Library soname: [libpexec.so.0]"), "%s", out);
	free(out);

	/* The SDK's header is the installed one, byte for byte. */
	cr_expect_eq(sh(NULL, "cmp '%s' '%s'", inst(0, "include/pexec/pexec_plugin.h"),
	                PEXEC_SRC_DIR "/sdk/pexec_plugin.h"), 0);

	/* make install fills in the .pc files' variables, never their comments. */
	for (int i = 0; i < 2; i++) {
		static const char *const pcs[][2] = {
			{ "lib/pkgconfig/pexec-plugin.pc", "sdk/pexec-plugin.pc.in" },
			{ "lib/pkgconfig/libpexec.pc", "core/lib/libpexec.pc.in" },
		};
		out = sh_ok("comments", "grep '^#' '%s'", inst(0, pcs[i][0]));
		left = sh_ok("comments", "grep '^#' '%s/%s'", PEXEC_SRC_DIR, pcs[i][1]);
		cr_expect_str_eq(out, left, "%s: its comment differs from the template's", pcs[i][0]);
		cr_expect_null(strchr(out, '@'), "%s: %s", pcs[i][0], out);
		free(out);
		free(left);
	}

	out = sh_ok("pexec --version", "'%s' --version", inst(0, "bin/pexec"));
	cr_expect(strstr(out, PEXEC_VERSION), "%s", out);
	free(out);

	/* The man pages render, without a warning when groff is there to say. */
	groff = sh(NULL, "command -v groff") == 0;
	for (int i = 0; i < 2; i++) {
		const char *page = inst(0, i ? "share/man/man7/pexec-plugin.7" : "share/man/man1/pexec.1");

		if (groff) {
			out = sh_ok("groff", "LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z '%s'", page);
			cr_expect_str_empty(out, "%s: %s", page, out);
			free(out);
			out = sh_ok("groff", "LC_ALL=C.UTF-8 groff -man -Tutf8 -P-cbou '%s'", page);
			cr_expect(strstr(out, i ? "OWNERSHIP" : "EXIT STATUS"), "%s renders as: %.300s",
			          page, out);
			free(out);
		}
	}
	if (!groff)
		cr_log_warn("groff is not installed: the man pages were not rendered");

	free(sh_ok("make uninstall", CLEAN_MAKE " -s -C '%s' uninstall DESTDIR='%s' PREFIX=" PREFIX
	           " " PEXEC_TEST_MAKEVARS, PEXEC_SRC_DIR, destdir));
	left = sh_ok("find", "cd '%s' && find . ! -type d", destdir);
	cr_expect_str_empty(left, "left behind by make uninstall:\n%s", left);
	free(left);
	left = sh_ok("find", "cd '%s' && find . -path '*pexec*'", destdir);
	cr_expect_str_empty(left, "directories left behind by make uninstall:\n%s", left);
	free(left);
}

/* The guide's first plugin, built as its author would, outside any pexec
 * checkout, with nothing but the installed pkg-config file. */
Test(install, plugin_builds_out_of_tree_with_pkg_config_alone)
{
	static const char hello_c[] =
		"#include <cjson/cJSON.h>\n"
		"#include \"pexec_plugin.h\"\n"
		"\n"
		"static int square_map(void *state, void *input, void **output, pexec_error *err)\n"
		"{\n"
		"\tdouble x = cJSON_GetNumberValue(input);\n"
		"\n"
		"\t(void)state;\n"
		"\tif (!cJSON_IsNumber((cJSON *)input)) {\n"
		"\t\tpexec_error_set(err, \"hello: expected a number\");\n"
		"\t\treturn -1;\n"
		"\t}\n"
		"\t*output = cJSON_CreateNumber(x * x);\n"
		"\treturn *output ? 0 : -1;\n"
		"}\n"
		"\n"
		"PEXEC_PLUGIN = {\n"
		"\tPEXEC_DESCRIPTOR_HEADER,\n"
		"\t.name = \"hello\",\n"
		"\t.version = \"0.1.0\",\n"
		"\t.description = \"the square of each number\",\n"
		"\t.map = square_map,\n"
		"};\n";
	char *out;

	install();
	cr_assert_eq(mkdir(scratch_path(0, "src"), 0777), 0);
	write_file(scratch_path(0, "src/hello.c"), hello_c, sizeof(hello_c) - 1);
	write_file(scratch_path(0, "src/in.json"), "[1, 2, 3, \"x\"]", 14);

	out = sh_ok("pkg-config", "%s && pkg-config --cflags --libs pexec-plugin", pkg_env());
	cr_expect(strstr(out, inst(0, "include/pexec")), "flags not into the DESTDIR: %s", out);
	free(out);
	out = sh_ok("pkg-config", "%s && pkg-config --modversion pexec-plugin", pkg_env());
	cr_expect_str_eq(out, PEXEC_VERSION "\n");
	free(out);

	free(sh_ok("building the plugin",
	           "cd '%s/src' && %s && cc $(pkg-config --cflags pexec-plugin) -O2 -Wall -Wextra "
	           "-Werror -o hello.so hello.c $(pkg-config --libs pexec-plugin)",
	           scratch, pkg_env()));
	free(sh_ok("exports", "nm -D --defined-only '%s/src/hello.so' | grep -qw pexec_plugin",
	           scratch));

	cr_expect_eq(sh(&out, "cd '%s/src' && '%s' --plugin ./hello.so in.json 2>err", scratch,
	                inst(0, "bin/pexec")), 1, "%s", out);
	cr_expect_str_eq(out, "[\n1,\n4,\n9,\nnull\n]\n");
	free(out);
	out = read_file(scratch_path(0, "src/err"), &(size_t){ 0 });
	cr_expect_str_eq(out, "pexec: item 3 failed in map: hello: expected a number\n");
	free(out);
}

Test(install, shipped_plugins_are_found_by_bare_name)
{
	char *out;

	install();
	/* The installed bash completion offers them, as the installed pexec
	 * lists them. */
	cr_expect_eq(sh(&out, "PEXEC_PLUGIN_PATH='%s' bash --norc -c 'source %s && "
	                "COMP_WORDS=(%s -p wor) COMP_CWORD=2; _pexec; echo \"${COMPREPLY[*]}\"'",
	                inst(0, "lib/pexec/plugins"),
	                inst(1, "share/bash-completion/completions/pexec"), inst(2, "bin/pexec")),
	             0, "%s", out);
	cr_expect_str_eq(out, "wordcount\n");
	free(out);
	cr_expect_eq(sh(&out, "echo '[5, 20]' | PEXEC_PLUGIN_PATH='%s' '%s' --plugin factorial",
	                inst(0, "lib/pexec/plugins"), inst(1, "bin/pexec")), 0, "%s", out);
	cr_expect_str_eq(out, "[\n120,\n2432902008176640000\n]\n");
	free(out);

	cr_expect_eq(sh(&out, "PEXEC_PLUGIN_PATH='%s' '%s' info identity",
	                inst(0, "lib/pexec/plugins"), inst(1, "bin/pexec")), 0, "%s", out);
	cr_expect(strstr(out, "\"identity\""), "%s", out);
	free(out);

	/* Without PEXEC_PLUGIN_PATH the installed binary looks in the installed
	 * plugin directory: the one it names when a name is not found. */
	cr_expect_eq(sh(&out, "echo '[1]' | env -u PEXEC_PLUGIN_PATH '%s' --plugin no_such_plugin",
	                inst(0, "bin/pexec")), 2, "%s", out);
	cr_expect(strstr(out, PREFIX "/lib/pexec/plugins"), "%s", out);
	free(out);
}

#define RUN_POOL_OUT "0 1 1\n1 1 [2, \"two\"]\n2 1 {\"three\": 3}\n"

/* A program that runs a pool through libpexec (tests/embed/run_pool.c),
 * built with `pkg-config libpexec` alone, shared and then static: three
 * items through the installed identity plugin. */
Test(install, libpexec_embeds_with_pkg_config_alone)
{
	char *out;

	install();
	out = sh_ok("pkg-config", "%s && pkg-config --cflags --libs libpexec", pkg_env());
	cr_expect(strstr(out, inst(0, "include/pexec")), "flags not into the DESTDIR: %s", out);
	cr_expect(strstr(out, inst(0, "lib")), "flags not into the DESTDIR: %s", out);
	free(out);

	/* A sanitized libpexec needs its runtime in the program too.  The
	 * shared library first: the DESTDIR's lib is not on the loader's path,
	 * so LD_LIBRARY_PATH says where it is. */
	free(sh_ok("building the program",
	           "cd '%s' && %s && cc -std=c11 -O2 -Wall -Wextra -Werror " PEXEC_TEST_SANFLAGS
	           " $(pkg-config --cflags libpexec) -o prog '%s/tests/embed/run_pool.c'"
	           " $(pkg-config --libs libpexec)", scratch, pkg_env(), PEXEC_SRC_DIR));
	out = sh_ok("readelf", "readelf -d '%s/prog'", scratch);
	cr_expect(strstr(out, "Shared library: [libpexec.so.0]"), "prog needs no libpexec.so.0:\n%s",
	          out);
	free(out);
	cr_expect_eq(sh(&out, "LD_LIBRARY_PATH='%s' '%s/prog' identity '%s'", inst(0, "lib"), scratch,
	                inst(1, "lib/pexec/plugins")), 0, "%s", out);
	cr_expect(strstr(out, "/identity.so\n" RUN_POOL_OUT), "%s", out);
	free(out);

	/* The static archive, named by its path, with what --static adds but
	 * its own -lpexec: that one would find libpexec.so.  --no-as-needed
	 * because some toolchains pass --as-needed by default, which would hide
	 * a stray -lpexec here and not on the next machine. */
	free(sh_ok("building the program statically",
	           "cd '%s' && %s && libs= && for f in $(pkg-config --libs --static libpexec); do"
	           " [ \"$f\" = -lpexec ] || libs=\"$libs $f\"; done &&"
	           " cc -std=c11 -O2 -Wall -Wextra -Werror " PEXEC_TEST_SANFLAGS
	           " $(pkg-config --cflags libpexec) -o prog-static '%s/tests/embed/run_pool.c'"
	           " -Wl,--no-as-needed '%s/libpexec.a' $libs",
	           scratch, pkg_env(), PEXEC_SRC_DIR, inst(0, "lib")));
	out = sh_ok("readelf", "readelf -d '%s/prog-static'", scratch);
	cr_expect(!strstr(out, "libpexec"), "prog-static needs a libpexec:\n%s", out);
	free(out);
	cr_expect_eq(sh(&out, "'%s/prog-static' identity '%s'", scratch, inst(0, "lib/pexec/plugins")),
	             0, "%s", out);
	cr_expect(strstr(out, "/identity.so\n" RUN_POOL_OUT), "%s", out);
	free(out);
}

/* `pexec new` from the installed binary writes a Makefile that includes the
 * installed SDK (found beside the binary, so inside the DESTDIR here). */
Test(install, new_skeleton_builds_with_the_installed_sdk)
{
	char sdk[PATH_MAX], want[PATH_MAX + 32], *out;

	install();
	cr_assert_not_null(realpath(inst(0, "share/pexec/sdk"), sdk));
	cr_assert_eq(mkdir(scratch_path(0, "work"), 0777), 0);

	out = sh_ok("pexec new", "cd '%s/work' && '%s' new hello", scratch, inst(0, "bin/pexec"));
	cr_expect(strstr(out, "make -C hello\n"), "%s", out);
	free(out);

	out = read_file(scratch_path(0, "work/hello/Makefile"), &(size_t){ 0 });
	cr_assert_not_null(out);
	snprintf(want, sizeof(want), "PEXEC_SDK ?= %s\n", sdk);
	cr_expect(strstr(out, want), "want '%s' in:\n%s", want, out);
	free(out);

	free(sh_ok("make", CLEAN_MAKE " -C '%s/work/hello'", scratch));
	cr_expect_eq(sh(&out, "cd '%s/work' && '%s' --plugin hello/hello.so hello/input.json",
	                scratch, inst(0, "bin/pexec")), 0, "%s", out);
	cr_expect_str_eq(out, "[\n1,\n\"two\",\n{\"three\":3},\n[4,5],\nnull\n]\n");
	free(out);
}

/* C++ with what is installed: a descriptor written as in C through
 * pkg-config alone, the C++17 way through the installed plugin.mk, and
 * `pexec new --lang c++`; each runs in the installed pexec. */
Test(install, cpp_plugins_build_with_pkg_config_and_the_installed_sdk)
{
	char *out;

	install();
	cr_assert_eq(mkdir(scratch_path(0, "src"), 0777), 0);
	free(sh_ok("copying the fixtures", "cp '%s/tests/plugins/cpp_as_in_c.cc' "
	           "'%s/tests/plugins/cpp17.cpp' '%s/src/'", PEXEC_SRC_DIR, PEXEC_SRC_DIR, scratch));
	write_file(scratch_path(0, "src/in.json"), "[1, 3]", 6);

	free(sh_ok("building with pkg-config",
	           "cd '%s/src' && %s && g++ -std=c++20 $(pkg-config --cflags pexec-plugin) -O2 "
	           "-Wall -Wextra -Werror -o cpp_as_in_c.so cpp_as_in_c.cc "
	           "$(pkg-config --libs pexec-plugin)",
	           scratch, pkg_env()));
	free(sh_ok("building with the installed plugin.mk",
	           "cd '%s/src' && " CLEAN_MAKE " -f '%s' cpp17.so "
	           "CXXFLAGS='-std=c++17 -O2 -Wall -Wextra -Werror -Wpedantic'",
	           scratch, inst(0, "share/pexec/sdk/plugin.mk")));
	free(sh_ok("pexec new --lang c++", "cd '%s' && '%s' new hello --lang c++ && "
	           CLEAN_MAKE " -C hello CXXFLAGS='-O2 -Wall -Wextra -Werror'",
	           scratch, inst(0, "bin/pexec")));

	cr_expect_eq(sh(&out, "cd '%s/src' && '%s' --plugin ./cpp_as_in_c.so in.json", scratch,
	                inst(0, "bin/pexec")), 0, "%s", out);
	cr_expect_str_eq(out, "[\n1,\n9\n]\n");
	free(out);
	cr_expect_eq(sh(&out, "cd '%s/src' && '%s' --plugin ./cpp17.so in.json", scratch,
	                inst(0, "bin/pexec")), 0, "%s", out);
	cr_expect_str_eq(out, "[\n1,\n9\n]\n");
	free(out);
	cr_expect_eq(sh(&out, "cd '%s' && '%s' --plugin hello/hello.so src/in.json", scratch,
	                inst(0, "bin/pexec")), 0, "%s", out);
	cr_expect_str_eq(out, "[\n1,\n3\n]\n");
	free(out);
}

/* The whole way of an installed plugin: pkg-config names the plugin
 * directory, a `pexec new` skeleton's `make install` puts its plugin there,
 * and the installed pexec and a program linked against the installed
 * libpexec.so.0 both find it by bare name; `make install-user` puts one in
 * the user's directory, which comes first.  PREFIX/bin/plugins is not
 * searched. */
Test(install, installed_plugins_are_found_where_pkg_config_says)
{
	const char *prefix = install_prefix();
	char env[1200], *out;

	snprintf(env, sizeof(env), "export PKG_CONFIG_PATH='%s/lib/pkgconfig' XDG_DATA_HOME='%s/xdg'"
	         " LD_LIBRARY_PATH='%s/lib'; unset PEXEC_PLUGIN_PATH PKG_CONFIG_SYSROOT_DIR",
	         prefix, scratch, prefix);
	out = sh_ok("pkg-config", "%s; pkg-config --variable=plugindir pexec-plugin", env);
	cr_expect(!strncmp(out, prefix, strlen(prefix)) && !strcmp(out + strlen(prefix),
	          "/lib/pexec/plugins\n"), "plugindir: %s", out);
	free(out);

	cr_assert_eq(mkdir(scratch_path(0, "work"), 0777), 0);
	free(sh_ok("pexec new", "cd '%s/work' && '%s/bin/pexec' new hello", scratch, prefix));
	free(sh_ok("make install", "%s; " CLEAN_MAKE " -s -C '%s/work/hello' install", env, scratch));
	cr_expect(is_file(scratch_path(0, "prefix/lib/pexec/plugins/hello.so"), 0644));

	cr_expect_eq(sh(&out, "%s; cd '%s/work/hello' && '%s/bin/pexec' --plugin hello input.json",
	                env, scratch, prefix), 0, "%s", out);
	cr_expect_str_eq(out, "[\n1,\n\"two\",\n{\"three\":3},\n[4,5],\nnull\n]\n");
	free(out);

	free(sh_ok("building the program", "%s; cd '%s' && cc -std=c11 " PEXEC_TEST_SANFLAGS
	           " $(pkg-config --cflags libpexec) -o prog '%s/tests/embed/run_pool.c'"
	           " $(pkg-config --libs libpexec)", env, scratch, PEXEC_SRC_DIR));
	cr_expect_eq(sh(&out, "%s; '%s/prog' hello -", env, scratch), 0, "%s", out);
	cr_expect(!strncmp(out, prefix, strlen(prefix)) &&
	          !strcmp(out + strlen(prefix), "/lib/pexec/plugins/hello.so\n"
	                  "0 1 1\n1 1 [2,\"two\"]\n2 1 {\"three\":3}\n"),
	          "%s", out);
	free(out);

	/* The user's copy wins over the installed one. */
	free(sh_ok("make install-user", "%s; " CLEAN_MAKE " -s -C '%s/work/hello' install-user", env,
	           scratch));
	cr_expect_eq(sh(&out, "%s; '%s/prog' hello -", env, scratch), 0, "%s", out);
	cr_expect(strstr(out, "/xdg/pexec/plugins/hello.so\n"), "%s", out);
	free(out);

	/* pexec list shows what is installed, and which hello wins. */
	{
		char user_hello[700], shadowed[1600];

		snprintf(user_hello, sizeof(user_hello), "%s/xdg/pexec/plugins/hello.so", scratch);
		snprintf(shadowed, sizeof(shadowed), "%s/lib/pexec/plugins/hello.so  (shadowed by %s)",
		         prefix, user_hello);
		cr_expect_eq(sh(&out, "%s; '%s/bin/pexec' list", env, prefix), 0, "%s", out);
		cr_expect(strstr(out, user_hello), "%s", out);
		cr_expect(strstr(out, shadowed), "%s", out);
		cr_expect(strstr(out, "/lib/pexec/plugins/identity.so\n"), "%s", out);
		free(out);
	}

	/* Nothing is looked up beside the binary. */
	free(sh_ok("mkdir", "mkdir -p '%s/bin/plugins' && cp '%s/lib/pexec/plugins/hello.so' "
	           "'%s/bin/plugins/ghost.so'", prefix, prefix, prefix));
	cr_expect_eq(sh(&out, "%s; echo '[1]' | '%s/bin/pexec' --plugin ghost", env, prefix), 2,
	             "%s", out);
	cr_expect(strstr(out, "no ghost.so or libghost.so"), "%s", out);
	free(out);
}
