/*
 * test_loader.c - pexec_plugin_load(): how a plugin is found (by path, by
 * bare name, as NAME.so or libNAME.so, through $PEXEC_PLUGIN_PATH, the
 * user's directory, then the fallback or the library's own directory), and
 * each way a file can fail to be a plugin, with the exact message a person
 * gets: which file, and what did not match.
 *
 * The fixtures are the plugins of tests/plugins/, built as shared objects
 * beside the tests.  Criterion runs every test in its own process, so a test
 * may set the environment freely.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "pexec.h"

#ifndef PEXEC_TEST_BUILD
#error "PEXEC_TEST_BUILD must name the build directory"
#endif

#define PLUGINS_DIR PEXEC_TEST_BUILD "/plugins"
#define FIXTURES_DIR PEXEC_TEST_BUILD "/tests/plugins"
#define FACTORIAL_SO PLUGINS_DIR "/factorial.so"
#define FIXTURE(name) FIXTURES_DIR "/" name ".so"

/* A scratch directory, removed with its files after the test. */
static char scratch[64];

static void scratch_make(void)
{
	strcpy(scratch, "/tmp/test_loader.XXXXXX");
	cr_assert_not_null(mkdtemp(scratch), "mkdtemp: %s", strerror(errno));
}

static void scratch_remove(void)
{
	char cmd[128];

	if (!scratch[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	if (system(cmd) != 0)
		fprintf(stderr, "test_loader: cannot remove %s\n", scratch);
	scratch[0] = '\0';
}

TestSuite(loader, .init = scratch_make, .fini = scratch_remove);

/* Loads `spec` expecting success; returns the plugin (the caller frees it). */
static pexec_loaded_plugin *load_ok(const char *spec, const char *fallback)
{
	pexec_loaded_plugin *p = (pexec_loaded_plugin *)1;
	pexec_error err = { { 0 } };
	pexec_code rc = pexec_plugin_load(spec, fallback, &p, &err);

	cr_assert_eq(rc, PEXEC_OK, "loading '%s': rc %d: %s", spec, rc, err.msg);
	cr_assert_not_null(p);
	return p;
}

/* Loads `spec` expecting PEXEC_ELOAD; checks that *out is NULL and that the
 * message contains every string of `parts` (NULL-terminated). */
static void load_fails(const char *spec, const char *fallback, const char *const *parts)
{
	pexec_loaded_plugin *p = (pexec_loaded_plugin *)1;
	pexec_error err = { { 0 } };
	pexec_code rc = pexec_plugin_load(spec, fallback, &p, &err);

	cr_assert_eq(rc, PEXEC_ELOAD, "loading '%s': rc %d (%s), want PEXEC_ELOAD", spec, rc,
	             err.msg);
	cr_expect_null(p, "loading '%s' failed but *out was set", spec);
	cr_expect_null(strchr(err.msg, '\n'), "message is not one line: %s", err.msg);
	for (; *parts; parts++)
		cr_expect_not_null(strstr(err.msg, *parts), "message for '%s' lacks \"%s\": %s",
		                   spec, *parts, err.msg);
}

#define PARTS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* Whether this process has a file mapped whose path contains `needle`. */
static int is_mapped(const char *needle)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[4096];
	int found = 0;

	cr_assert_not_null(f);
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "cannot create %s: %s", path, strerror(errno));
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

/* ---- found ---- */

Test(loader, loads_factorial_by_path)
{
	pexec_loaded_plugin *p = load_ok(FACTORIAL_SO, NULL);
	const pexec_descriptor *d = pexec_plugin_descriptor(p);

	cr_expect_eq(d->abi_version, PEXEC_ABI_VERSION);
	cr_expect_str_eq(d->name, "factorial");
	cr_expect_not_null(d->map);
	cr_expect_not_null(d->deserialize);
	cr_expect_not_null(d->serialize);
	cr_expect_str_eq(pexec_plugin_path(p), FACTORIAL_SO);
	pexec_plugin_free(p);
}

Test(loader, loads_a_relative_so_name_from_the_current_directory)
{
	pexec_loaded_plugin *p;

	cr_assert_eq(chdir(PLUGINS_DIR), 0);
	/* Ends in ".so", so it is a path, not a bare name for the search. */
	p = load_ok("factorial.so", NULL);
	cr_expect_str_eq(pexec_plugin_descriptor(p)->name, "factorial");
	pexec_plugin_free(p);
}

Test(loader, finds_a_bare_name_in_PEXEC_PLUGIN_PATH)
{
	pexec_loaded_plugin *p;

	cr_assert_eq(setenv("PEXEC_PLUGIN_PATH", PLUGINS_DIR, 1), 0);
	p = load_ok("factorial", NULL);
	cr_expect_str_eq(pexec_plugin_descriptor(p)->name, "factorial");
	cr_expect_str_eq(pexec_plugin_path(p), FACTORIAL_SO);
	pexec_plugin_free(p);
}

Test(loader, searches_every_directory_of_PEXEC_PLUGIN_PATH_in_order)
{
	pexec_loaded_plugin *p;

	cr_assert_eq(setenv("PEXEC_PLUGIN_PATH",
	                    "/nonexistent/dir::" FIXTURES_DIR ":" PLUGINS_DIR, 1), 0);
	p = load_ok("factorial", NULL);
	cr_expect_str_eq(pexec_plugin_path(p), FACTORIAL_SO);
	pexec_plugin_free(p);
	p = load_ok("config_echo", NULL);
	cr_expect_str_eq(pexec_plugin_descriptor(p)->name, "config_echo");
	pexec_plugin_free(p);
}

Test(loader, finds_a_bare_name_in_the_fallback_dir)
{
	pexec_loaded_plugin *p;

	cr_assert_eq(unsetenv("PEXEC_PLUGIN_PATH"), 0);
	p = load_ok("factorial", PLUGINS_DIR);
	cr_expect_str_eq(pexec_plugin_descriptor(p)->name, "factorial");
	cr_expect_str_eq(pexec_plugin_path(p), FACTORIAL_SO);
	pexec_plugin_free(p);
}

Test(loader, PEXEC_PLUGIN_PATH_comes_before_the_fallback_dir)
{
	char link[128];
	pexec_loaded_plugin *p;

	/* A "factorial" in the path that is really the noisy fixture. */
	snprintf(link, sizeof(link), "%s/factorial.so", scratch);
	cr_assert_eq(symlink(FIXTURE("noisy"), link), 0);
	cr_assert_eq(setenv("PEXEC_PLUGIN_PATH", scratch, 1), 0);
	p = load_ok("factorial", PLUGINS_DIR);
	cr_expect_str_eq(pexec_plugin_descriptor(p)->name, "noisy");
	pexec_plugin_free(p);
}

/* cargo (and most build systems) call a shared library libNAME.so. */
Test(loader, finds_a_bare_name_as_libNAME_so)
{
	char link[128];
	pexec_loaded *p;

	snprintf(link, sizeof(link), "%s/libechoes.so", scratch);
	cr_assert_eq(symlink(FIXTURE("config_echo"), link), 0);
	cr_assert_eq(setenv("PEXEC_PLUGIN_PATH", scratch, 1), 0);
	p = load_ok("echoes", NULL);
	cr_expect_str_eq(pexec_plugin_descriptor(p)->name, "config_echo");
	cr_expect_str_eq(pexec_plugin_path(p), link);
	pexec_plugin_free(p);
	cr_assert_eq(unsetenv("PEXEC_PLUGIN_PATH"), 0);
	p = load_ok("echoes", scratch);
	cr_expect_str_eq(pexec_plugin_path(p), link);
	pexec_plugin_free(p);
}

/* Within one directory NAME.so wins; across directories the order of the
 * path does, whichever of the two names a directory has. */
Test(loader, NAME_so_before_libNAME_so_and_earlier_directories_first)
{
	char dir_a[128], dir_b[128], path[160];
	pexec_loaded *p;

	snprintf(dir_a, sizeof(dir_a), "%s/a", scratch);
	snprintf(dir_b, sizeof(dir_b), "%s/b", scratch);
	cr_assert_eq(mkdir(dir_a, 0777), 0);
	cr_assert_eq(mkdir(dir_b, 0777), 0);
	snprintf(path, sizeof(path), "%s/libx.so", dir_a);
	cr_assert_eq(symlink(FIXTURE("noisy"), path), 0);
	snprintf(path, sizeof(path), "%s/x.so", dir_a);
	cr_assert_eq(symlink(FIXTURE("config_echo"), path), 0);
	snprintf(path, sizeof(path), "%s/x.so", dir_b);
	cr_assert_eq(symlink(FIXTURE("faulty"), path), 0);

	cr_assert_eq(setenv("PEXEC_PLUGIN_PATH", dir_a, 1), 0);
	p = load_ok("x", dir_b);
	cr_expect_str_eq(pexec_plugin_descriptor(p)->name, "config_echo");
	pexec_plugin_free(p);

	snprintf(path, sizeof(path), "%s/x.so", dir_a);
	cr_assert_eq(unlink(path), 0);
	p = load_ok("x", dir_b);
	cr_expect_str_eq(pexec_plugin_descriptor(p)->name, "noisy",
	                 "an earlier directory's libx.so comes before a later one's x.so");
	pexec_plugin_free(p);
}

Test(loader, keeps_optional_hooks_a_plugin_has)
{
	pexec_loaded_plugin *p = load_ok(FIXTURE("config_echo"), NULL);
	const pexec_descriptor *d = pexec_plugin_descriptor(p);

	cr_expect_not_null(d->init);
	cr_expect_not_null(d->fini);
	cr_expect_not_null(d->map);
	cr_expect_null(d->deserialize);
	cr_expect_null(d->serialize);
	cr_expect_null(d->free_value);
	pexec_plugin_free(p);
}

/* ---- refused ---- */

Test(loader, rejects_a_missing_file)
{
	load_fails(PLUGINS_DIR "/missing.so", NULL,
	           PARTS("cannot load '" PLUGINS_DIR "/missing.so'", "No such file or directory"));
}

Test(loader, rejects_a_directory)
{
	load_fails(PLUGINS_DIR "/", NULL,
	           PARTS("cannot load '" PLUGINS_DIR "/'", "not a regular file"));
}

Test(loader, rejects_a_text_file)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/text.so", scratch);
	write_file(path, "this is not an ELF file\n");
	load_fails(path, NULL, PARTS("cannot load '", "/text.so'", "not a loadable shared object"));
	/* dlerror()'s own words come along. */
	{
		pexec_loaded_plugin *p;
		pexec_error err = { { 0 } };

		cr_assert_eq(pexec_plugin_load(path, NULL, &p, &err), PEXEC_ELOAD);
		cr_expect_not_null(strstr(err.msg, path), "%s", err.msg);
		cr_expect(strstr(err.msg, "invalid ELF header") || strstr(err.msg, "file too short"),
		          "no dlerror() text: %s", err.msg);
	}
}

Test(loader, rejects_an_empty_file)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/empty.so", scratch);
	write_file(path, "");
	load_fails(path, NULL, PARTS("/empty.so'", "not a loadable shared object"));
}

Test(loader, rejects_a_shared_object_without_the_symbol)
{
	load_fails(FIXTURE("no_symbol"), NULL,
	           PARTS("cannot load '" FIXTURE("no_symbol") "'",
	                 "not a pexec plugin (no symbol pexec_plugin)"));
}

Test(loader, rejects_abi_mismatch)
{
	load_fails(FIXTURE("bad_abi"), NULL,
	           PARTS("cannot load '" FIXTURE("bad_abi") "'",
	                 "built for plugin ABI 99, this pexec runs ABI 1"));
}

Test(loader, rejects_a_plugin_without_map)
{
	load_fails(FIXTURE("no_map"), NULL,
	           PARTS("cannot load '" FIXTURE("no_map") "'", "required hook 'map' missing"));
}

Test(loader, rejects_a_descriptor_smaller_than_abi_1)
{
	load_fails(FIXTURE("small_desc"), NULL,
	           PARTS("cannot load '" FIXTURE("small_desc") "'", "descriptor is 16 bytes",
	                 "ABI 1 needs at least"));
}

Test(loader, bare_name_not_found_names_PEXEC_PLUGIN_PATH)
{
	cr_assert_eq(setenv("PEXEC_PLUGIN_PATH", FIXTURES_DIR, 1), 0);
	load_fails("nosuchplugin", PLUGINS_DIR,
	           PARTS("'nosuchplugin'", "nosuchplugin.so", "libnosuchplugin.so",
	                 "PEXEC_PLUGIN_PATH", FIXTURES_DIR, PLUGINS_DIR));
}

Test(loader, bare_name_not_found_says_PEXEC_PLUGIN_PATH_is_unset)
{
	cr_assert_eq(unsetenv("PEXEC_PLUGIN_PATH"), 0);
	load_fails("nosuchplugin", NULL,
	           PARTS("'nosuchplugin'", "no nosuchplugin.so or libnosuchplugin.so on the plugin "
	                 "search path ", "(PEXEC_PLUGIN_PATH unset)"));
}

Test(loader, bare_name_is_not_found_in_the_current_directory)
{
	cr_assert_eq(unsetenv("PEXEC_PLUGIN_PATH"), 0);
	cr_assert_eq(chdir(PLUGINS_DIR), 0);
	load_fails("factorial", "/nonexistent", PARTS("'factorial'", "PEXEC_PLUGIN_PATH"));
}

/* The search path: $PEXEC_PLUGIN_PATH, the user's directory, then the
 * fallback directory or, without one, the library's own. */
Test(loader, search_path_is_env_then_user_then_installed)
{
	char *path;

	cr_assert_eq(setenv("PEXEC_PLUGIN_PATH", "/a:/b", 1), 0);
	cr_assert_eq(setenv("XDG_DATA_HOME", "/xdg", 1), 0);
	path = pexec_plugin_search_path(NULL);
	cr_expect_str_eq(path, "/a:/b:/xdg/pexec/plugins:" PLUGINS_DIR);
	free(path);
	path = pexec_plugin_search_path("/fallback");
	cr_expect_str_eq(path, "/a:/b:/xdg/pexec/plugins:/fallback");
	free(path);
	cr_expect_str_eq(pexec_plugin_dir(), PLUGINS_DIR);

	/* No (or a relative) XDG_DATA_HOME: the specification's default. */
	cr_assert_eq(unsetenv("PEXEC_PLUGIN_PATH"), 0);
	cr_assert_eq(setenv("XDG_DATA_HOME", "relative", 1), 0);
	cr_assert_eq(setenv("HOME", "/home/u", 1), 0);
	path = pexec_plugin_search_path(NULL);
	cr_expect_str_eq(path, "/home/u/.local/share/pexec/plugins:" PLUGINS_DIR);
	free(path);
	cr_assert_eq(unsetenv("XDG_DATA_HOME"), 0);
	cr_assert_eq(unsetenv("HOME"), 0);
	path = pexec_plugin_search_path(NULL);
	cr_expect_str_eq(path, PLUGINS_DIR);
	free(path);
}

/* A plugin in the user's directory wins over the installed one of its name,
 * and loses to one in $PEXEC_PLUGIN_PATH. */
Test(loader, user_dir_comes_between_PEXEC_PLUGIN_PATH_and_the_installed_dir)
{
	char dir[128], link[160];
	pexec_loaded_plugin *p;

	snprintf(dir, sizeof(dir), "%s/pexec", scratch);
	cr_assert_eq(mkdir(dir, 0777), 0);
	snprintf(dir, sizeof(dir), "%s/pexec/plugins", scratch);
	cr_assert_eq(mkdir(dir, 0777), 0);
	snprintf(link, sizeof(link), "%s/factorial.so", dir);
	cr_assert_eq(symlink(FIXTURE("noisy"), link), 0);
	cr_assert_eq(unsetenv("PEXEC_PLUGIN_PATH"), 0);
	cr_assert_eq(setenv("XDG_DATA_HOME", scratch, 1), 0);
	p = load_ok("factorial", NULL);
	cr_expect_str_eq(pexec_plugin_descriptor(p)->name, "noisy");
	pexec_plugin_free(p);

	cr_assert_eq(setenv("PEXEC_PLUGIN_PATH", PLUGINS_DIR, 1), 0);
	p = load_ok("factorial", NULL);
	cr_expect_str_eq(pexec_plugin_descriptor(p)->name, "factorial");
	pexec_plugin_free(p);
}

Test(loader, rejects_an_empty_name)
{
	load_fails("", PLUGINS_DIR, PARTS("empty name"));
}

Test(loader, unloads_a_refused_plugin)
{
	static const char *const refused[] = {
		FIXTURE("no_symbol"), FIXTURE("bad_abi"), FIXTURE("no_map"), FIXTURE("small_desc"),
	};

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		pexec_loaded_plugin *p;
		pexec_error err = { { 0 } };
		const char *base = strrchr(refused[i], '/');

		cr_assert_eq(pexec_plugin_load(refused[i], NULL, &p, &err), PEXEC_ELOAD);
		cr_expect_not(is_mapped(base), "%s stays mapped after it was refused", refused[i]);
	}
}

Test(loader, free_unloads_and_accepts_null)
{
	pexec_loaded_plugin *p = load_ok(FIXTURE("faulty"), NULL);

	cr_expect(is_mapped("/faulty.so"));
	pexec_plugin_free(p);
	cr_expect_not(is_mapped("/faulty.so"));
	pexec_plugin_free(NULL);
}
