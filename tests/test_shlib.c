/*
 * test_shlib.c - libpexec.so.0 as the build makes it: its soname, and the
 * symbols it exports, which must be exactly the functions the public header
 * (core/include/pexec.h) declares: nothing internal (pexec__*, a helper
 * without the prefix) leaks out, and nothing public is missing from
 * core/lib/libpexec.map.  Then a program linked against it (not against the
 * archive) runs a pool and finds a plugin by bare name on the library's own
 * search path.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "helpers.h"
#include "pexec.h"

#define SHLIB PEXEC_TEST_BUILD "/libpexec.so." PEXEC_VERSION

TestSuite(shlib, .init = scratch_make, .fini = scratch_remove, .timeout = 120);

/* The functions pexec.h declares: a declaration starts a line with its
 * return type (comment lines start with a space or a '*', members with a
 * tab), and the first pexec_ name followed by '(' on it is the function. */
static char *declared_functions(void)
{
	return shell_ok("pexec.h", "grep -E '^[a-z]' '" PEXEC_SRC_DIR "/core/include/pexec.h'"
	                " | grep -Ev '^(typedef|static|struct|enum|union)\\b'"
	                " | grep -oE '\\bpexec_[a-z0-9_]+\\(' | tr -d '(' | sort -u");
}

Test(shlib, has_the_soname_libpexec_so_0)
{
	char *out = shell_ok("readelf", "readelf -d '%s'", SHLIB);

	cr_expect(strstr(out, "Library soname: [libpexec.so.0]"), "%s", out);
	free(out);
	out = shell_ok("readlink", "readlink '%s/libpexec.so.0' '%s/libpexec.so'", PEXEC_TEST_BUILD,
	               PEXEC_TEST_BUILD);
	cr_expect_str_eq(out, "libpexec.so." PEXEC_VERSION "\nlibpexec.so.0\n");
	free(out);
}

Test(shlib, exports_the_public_functions_and_nothing_else)
{
	char *exported = shell_ok("nm", "nm -D --defined-only '%s' | awk '$2 ~ /^[TDBRVWi]$/"
	                          " { sub(/@.*/, \"\", $3); print $3 }' | sort -u", SHLIB);
	char *declared = declared_functions();

	/* A check that could not fail: the header yields the API it has. */
	cr_assert_gt(count_of(declared, "\n"), 25, "%s", declared);
	cr_assert(strstr(declared, "pexec_run\n") && strstr(declared, "pexec_job_run\n"), "%s",
	          declared);
	cr_expect_str_eq(exported, declared,
	                 "exported (left) and declared in pexec.h (right) differ:\n%s\n--\n%s",
	                 exported, declared);
	cr_expect_null(strstr(exported, "pexec__"), "%s", exported);
	free(exported);
	free(declared);
}

/* Every export is in the interface PEXEC_0, none unversioned. */
Test(shlib, versions_every_export)
{
	char *out = shell_ok("nm", "nm -D --defined-only '%s' | awk '$2 == \"T\" && $3 !~ /@@PEXEC_0$/'",
	                     SHLIB);

	cr_expect_str_empty(out, "exports outside PEXEC_0:\n%s", out);
	free(out);
}

/* tests/embed/run_pool.c, linked against libpexec.so (not the archive),
 * finds identity by bare name on the library's own path, the build's. */
Test(shlib, a_program_linked_against_it_runs_a_pool)
{
	char *out;

	free(shell_ok("cc", "cc -std=c11 -Wall -Wextra -Werror %s -I'%s/core/include' -I'%s/sdk'"
	              " -o '%s' '%s/tests/embed/run_pool.c' -L'%s' -lpexec", PEXEC_TEST_SANFLAGS,
	              PEXEC_SRC_DIR, PEXEC_SRC_DIR, scratch_path(0, "prog"), PEXEC_SRC_DIR,
	              PEXEC_TEST_BUILD));
	out = shell_ok("readelf", "readelf -d '%s'", scratch_path(0, "prog"));
	cr_expect(strstr(out, "Shared library: [libpexec.so.0]"), "%s", out);
	free(out);
	out = shell_ok("prog", "env -u PEXEC_PLUGIN_PATH LD_LIBRARY_PATH='%s' '%s' identity -",
	               PEXEC_TEST_BUILD, scratch_path(0, "prog"));
	cr_expect_str_eq(out, PEXEC_TEST_BUILD "/plugins/identity.so\n"
	                 "0 1 1\n1 1 [2, \"two\"]\n2 1 {\"three\": 3}\n");
	free(out);
}
