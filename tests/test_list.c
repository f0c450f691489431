/*
 * test_list.c - `pexec list` end to end: every plugin file on the search path
 * ($PEXEC_PLUGIN_PATH, $XDG_DATA_HOME/pexec/plugins, the build's plugin
 * directory), in the loader's order, described as the plugins' own
 * descriptors say, with the file each bare name loads and the others marked
 * shadowed; files that are not usable plugins (text, no symbol, another ABI,
 * a constructor that crashes or hangs) listed with the loader's reason while
 * the command carries on and leaves no process behind.  Also `pexec plugins`,
 * which names the same files.
 *
 * What a listing says is checked against this process's own loader
 * (pexec_plugin_load, on the same environment): the descriptors, the
 * messages, and the file a bare name finds.  Plugins whose constructors
 * misbehave are never loaded here.  Criterion runs each test in a process
 * of its own, so tests set the environment freely.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "helpers.h"
#include "pexec.h"

#define BUILD_PLUGINS PEXEC_TEST_BUILD "/plugins"
#define BUILD_PLUGIN(name) BUILD_PLUGINS "/" name ".so"

static void list_setup(void)
{
	scratch_make();
	/* Only the directories a test makes: none of the user's. */
	unsetenv("PEXEC_PLUGIN_PATH");
	setenv("XDG_DATA_HOME", scratch_path(0, "no-xdg"), 1);
}

TestSuite(list, .init = list_setup, .fini = scratch_remove, .timeout = 120);

/* A directory of the scratch one (made), its path in static storage `slot`. */
static const char *dir_of(int slot, const char *name)
{
	const char *dir = scratch_path(slot, name);

	free(shell_ok("mkdir", "mkdir -p '%s'", dir));
	return dir;
}

/* Copies the file `from` into `dir` as `name`. */
static void put(const char *from, const char *dir, const char *name)
{
	free(shell_ok("cp", "cp '%s' '%s/%s'", from, dir, name));
}

/* The JSON array `pexec list --json` prints, which must be all it prints
 * on stdout; the run must end well and leave nothing behind. */
static cJSON *list_json(void)
{
	struct proc r;
	cJSON *doc;

	run(&r, NULL, "list", "--json", NULL);
	expect_exit(&r, 0);
	doc = cJSON_Parse(r.out);
	cr_assert(cJSON_IsArray(doc), "not one JSON array:\n%s\nstderr: %s", r.out, r.err);
	proc_release(&r);
	return doc;
}

/* `v` as JSON text for a message, in static storage: a message's arguments
 * may be evaluated even where the check passes, so they do not allocate. */
static const char *show(const cJSON *v)
{
	static char text[16384];

	return cJSON_PrintPreallocated((cJSON *)v, text, sizeof(text), 0) ? text : "(too long)";
}

static const char *const FIELDS[] = { "name", "version", "description", "path",
	                              "dir", "shadowed_by", "error" };

/* Every entry has exactly the fields, each a string or null (name, path and
 * dir always strings), and its path is DIR/FILE. */
static void expect_fields(const cJSON *doc)
{
	const cJSON *e;

	cJSON_ArrayForEach(e, doc) {
		const char *path, *dir;

		cr_assert(cJSON_IsObject(e));
		cr_expect_eq(cJSON_GetArraySize(e), (int)COUNT(FIELDS), "%s", show(e));
		for (size_t i = 0; i < COUNT(FIELDS); i++) {
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, FIELDS[i]);

			cr_assert(cJSON_IsString(v) || (i != 0 && i != 3 && i != 4 && cJSON_IsNull(v)),
			          "field %s: %s", FIELDS[i], show(e));
		}
		path = cJSON_GetObjectItem(e, "path")->valuestring;
		dir = cJSON_GetObjectItem(e, "dir")->valuestring;
		cr_expect(!strncmp(path, dir, strlen(dir)) && path[strlen(dir)] == '/' &&
		          !strchr(path + strlen(dir) + 1, '/'), "path %s, dir %s", path, dir);
	}
}

static const char *field(const cJSON *e, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The entry of `path`, which must be listed once; its position in *at. */
static const cJSON *entry(const cJSON *doc, const char *path, int *at)
{
	const cJSON *e, *found = NULL;
	int i = 0;

	cJSON_ArrayForEach(e, doc) {
		if (!strcmp(field(e, "path"), path)) {
			cr_expect_null(found, "%s listed twice", path);
			found = e;
			if (at)
				*at = i;
		}
		i++;
	}
	cr_assert_not_null(found, "%s not listed:\n%s", path, show(doc));
	return found;
}

static void expect_opt_str(const char *what, const char *got, const char *want)
{
	if (!want)
		cr_expect_null(got, "%s: %s, expected null", what, got);
	else
		cr_expect(got && !strcmp(got, want), "%s: '%s', expected '%s'", what, got, want);
}

/* The entry of `path` says what the plugin's descriptor does (loaded here),
 * is usable, and loses to `shadowed_by` (NULL: it is the one its name loads). */
static void expect_plugin(const cJSON *doc, const char *path, const char *name,
                          const char *shadowed_by)
{
	const cJSON *e = entry(doc, path, NULL);
	pexec_loaded_plugin *p;
	pexec_error err = { "" };
	const pexec_descriptor *d;

	cr_assert_eq(pexec_plugin_load(path, NULL, &p, &err), PEXEC_OK, "%s", err.msg);
	d = pexec_plugin_descriptor(p);
	expect_opt_str(path, field(e, "name"), name);
	expect_opt_str(path, field(e, "version"), d->version);
	expect_opt_str(path, field(e, "description"), d->description);
	expect_opt_str(path, field(e, "shadowed_by"), shadowed_by);
	expect_opt_str(path, field(e, "error"), NULL);
	pexec_plugin_free(p);
}

/* The file the loader, here, finds for the bare `name`. */
static void expect_loader_finds(const char *name, const char *path)
{
	pexec_loaded_plugin *p;
	pexec_error err = { "" };

	cr_assert_eq(pexec_plugin_load(name, NULL, &p, &err), PEXEC_OK, "%s", err.msg);
	cr_expect_str_eq(pexec_plugin_path(p), path, "--plugin %s", name);
	pexec_plugin_free(p);
}

/* The build's plugins: each *.so of build/plugins. */
static size_t build_plugins(char names[][64], size_t max)
{
	DIR *d = opendir(BUILD_PLUGINS);
	struct dirent *e;
	size_t n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)) && n < max) {
		size_t len = strlen(e->d_name);

		if (len > 3 && !strcmp(e->d_name + len - 3, ".so"))
			snprintf(names[n++], 64, "%.*s", (int)(len - 3), e->d_name);
	}
	closedir(d);
	cr_assert_geq(n, 4, "build/plugins has %zu plugins", n);
	return n;
}

Test(list, json_lists_the_builds_plugins_as_their_descriptors_say)
{
	char names[16][64], path[256];
	size_t n = build_plugins(names, COUNT(names));
	cJSON *doc = list_json();

	expect_fields(doc);
	cr_expect_eq(cJSON_GetArraySize(doc), (int)n, "%s", show(doc));
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), BUILD_PLUGINS "/%s.so", names[i]);
		expect_plugin(doc, path, names[i], NULL);
		expect_opt_str(path, field(entry(doc, path, NULL), "dir"), BUILD_PLUGINS);
	}
	cJSON_Delete(doc);
}

/* The column a header's title starts at, in the first line of `table`. */
static size_t column(const char *table, const char *title)
{
	const char *at = strstr(table, title);

	cr_assert(at && at < strchr(table, '\n'), "no %s in the header:\n%s", title, table);
	return (size_t)(at - table);
}

Test(list, table_has_a_row_a_plugin_its_columns_aligned)
{
	char names[16][64];
	size_t n = build_plugins(names, COUNT(names)), cols[4];
	static const char *const titles[] = { "NAME", "VERSION", "DESCRIPTION", "PATH" };
	cJSON *doc = list_json(), *e;
	struct proc r;
	const char *line;

	run(&r, NULL, "list", NULL);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.err, "");
	cr_expect_eq(line_count(r.out), n + 1, "%s", r.out);
	for (size_t c = 0; c < 4; c++)
		cols[c] = column(r.out, titles[c]);
	cr_expect_eq(cols[0], 0);
	/* Each row holds its plugin's fields, each where its title is. */
	line = strchr(r.out, '\n') + 1;
	cJSON_ArrayForEach(e, doc) {
		const char *values[] = { field(e, "name"), field(e, "version"),
			                 field(e, "description"), field(e, "path") };

		for (size_t c = 0; c < 4; c++)
			cr_expect(!strncmp(line + cols[c], values[c], strlen(values[c])),
			          "%s not under %s in:\n%s", values[c], titles[c], r.out);
		cr_expect_eq(line[cols[3] + strlen(values[3])], '\n', "%s", r.out);
		line = strchr(line, '\n') + 1;
	}
	proc_release(&r);
	cJSON_Delete(doc);
}

/* $PEXEC_PLUGIN_PATH's directories in turn, then the user's, then the
 * build's: of one name, the first file is the one --plugin loads. */
Test(list, earlier_directories_shadow_later_ones_as_the_loader_does)
{
	const char *a = dir_of(0, "a"), *b = dir_of(1, "b");
	const char *user = dir_of(2, "xdg/pexec/plugins");
	char path[700], a_id[300], b_id[300], u_id[300], u_sleep[300];
	int at_a, at_b, at_u, at_build;
	cJSON *doc;
	struct proc r;

	put(BUILD_PLUGIN("identity"), a, "identity.so");
	put(BUILD_PLUGIN("factorial"), b, "identity.so");
	put(BUILD_PLUGIN("wordcount"), user, "identity.so");
	put(BUILD_PLUGIN("factorial"), user, "sleep.so");
	snprintf(a_id, sizeof(a_id), "%s/identity.so", a);
	snprintf(b_id, sizeof(b_id), "%s/identity.so", b);
	snprintf(u_id, sizeof(u_id), "%s/identity.so", user);
	snprintf(u_sleep, sizeof(u_sleep), "%s/sleep.so", user);
	/* A directory named twice is read once. */
	snprintf(path, sizeof(path), "%s:%s:%s", a, b, a);
	setenv("PEXEC_PLUGIN_PATH", path, 1);
	setenv("XDG_DATA_HOME", scratch_path(3, "xdg"), 1);

	doc = list_json();
	expect_fields(doc);
	expect_plugin(doc, a_id, "identity", NULL);
	expect_plugin(doc, b_id, "identity", a_id);
	expect_plugin(doc, u_id, "identity", a_id);
	expect_plugin(doc, BUILD_PLUGIN("identity"), "identity", a_id);
	expect_plugin(doc, u_sleep, "sleep", NULL);
	expect_plugin(doc, BUILD_PLUGIN("sleep"), "sleep", u_sleep);
	expect_plugin(doc, BUILD_PLUGIN("factorial"), "factorial", NULL);
	expect_loader_finds("identity", a_id);
	expect_loader_finds("sleep", u_sleep);
	entry(doc, a_id, &at_a);
	entry(doc, b_id, &at_b);
	entry(doc, u_id, &at_u);
	entry(doc, BUILD_PLUGIN("identity"), &at_build);
	cr_expect(at_a < at_b && at_b < at_u && at_u < at_build, "%d %d %d %d", at_a, at_b, at_u,
	          at_build);
	cJSON_Delete(doc);

	run(&r, NULL, "list", NULL);
	expect_exit(&r, 0);
	snprintf(path, sizeof(path), "%s  (shadowed by %s)\n", b_id, a_id);
	cr_expect_not_null(strstr(r.out, path), "no '%s' in:\n%s", path, r.out);
	snprintf(path, sizeof(path), BUILD_PLUGIN("sleep") "  (shadowed by %s)\n", u_sleep);
	cr_expect_not_null(strstr(r.out, path), "no '%s' in:\n%s", path, r.out);
	snprintf(path, sizeof(path), "%s\n", a_id);
	cr_expect_not_null(strstr(r.out, path), "%s not the winner in:\n%s", a_id, r.out);
	proc_release(&r);
}

/* libNAME.so is NAME (as cargo names a Rust plugin); in one directory,
 * NAME.so comes first. */
Test(list, libNAME_so_is_listed_as_NAME_after_NAME_so)
{
	const char *a = dir_of(0, "a");
	char lib_fact[300], id[300], lib_id[300];
	int at_id, at_lib;
	cJSON *doc;
	struct proc r;

	put(BUILD_PLUGIN("factorial"), a, "libfactorial.so");
	put(BUILD_PLUGIN("identity"), a, "libidentity.so");
	put(BUILD_PLUGIN("sleep"), a, "identity.so");
	snprintf(lib_fact, sizeof(lib_fact), "%s/libfactorial.so", a);
	snprintf(id, sizeof(id), "%s/identity.so", a);
	snprintf(lib_id, sizeof(lib_id), "%s/libidentity.so", a);
	setenv("PEXEC_PLUGIN_PATH", a, 1);

	doc = list_json();
	expect_fields(doc);
	expect_plugin(doc, lib_fact, "factorial", NULL);
	expect_plugin(doc, BUILD_PLUGIN("factorial"), "factorial", lib_fact);
	expect_plugin(doc, id, "identity", NULL);
	expect_plugin(doc, lib_id, "identity", id);
	expect_loader_finds("factorial", lib_fact);
	expect_loader_finds("identity", id);
	entry(doc, id, &at_id);
	entry(doc, lib_id, &at_lib);
	cr_expect_lt(at_id, at_lib);
	cJSON_Delete(doc);

	/* pexec plugins names them the same way, each once. */
	run(&r, NULL, "plugins", NULL);
	expect_exit(&r, 0);
	cr_expect_eq(count_of(r.out, "factorial\n"), 1, "%s", r.out);
	cr_expect_eq(count_of(r.out, "identity\n"), 1, "%s", r.out);
	cr_expect_null(strstr(r.out, "lib"), "%s", r.out);
	proc_release(&r);
}

/* The loader's own message for `path`, loaded here. */
static void loader_message(const char *path, pexec_error *err)
{
	pexec_loaded_plugin *p;

	cr_assert_neq(pexec_plugin_load(path, NULL, &p, err), PEXEC_OK, "%s loads", path);
}

/* The entry of `path` is unusable, and says why: `want` when given. */
static const char *expect_unusable(const cJSON *doc, const char *path, const char *want)
{
	const cJSON *e = entry(doc, path, NULL);
	const char *why = field(e, "error");

	cr_assert_not_null(why, "%s has no error: %s", path, show(e));
	cr_expect_null(field(e, "version"), "%s", path);
	cr_expect_null(field(e, "description"), "%s", path);
	cr_expect_null(strchr(why, '\n'), "not one line: %s", why);
	if (want)
		cr_expect_str_eq(why, want, "%s", path);
	return why;
}

Test(list, files_that_are_not_plugins_are_listed_unusable)
{
	static const char *const fixtures[] = { "no_symbol", "bad_abi", "no_map", "crash_at_load" };
	const char *a = dir_of(0, "a");
	char path[300], id[300];
	pexec_error err;
	cJSON *doc;
	struct proc r;

	snprintf(path, sizeof(path), "%s/bad.so", a);
	write_file(path, "not a shared object\n", 20);
	for (size_t i = 0; i < COUNT(fixtures); i++) {
		char file[64];

		snprintf(file, sizeof(file), "%s.so", fixtures[i]);
		snprintf(path, sizeof(path), PEXEC_TEST_BUILD "/tests/plugins/%s.so", fixtures[i]);
		put(path, a, file);
	}
	put(BUILD_PLUGIN("identity"), a, "identity.so");
	snprintf(id, sizeof(id), "%s/identity.so", a);
	setenv("PEXEC_PLUGIN_PATH", a, 1);

	doc = list_json();
	expect_fields(doc);
	/* What the loader says of each, word for word. */
	for (size_t i = 0; i < COUNT(fixtures) - 1; i++) {
		snprintf(path, sizeof(path), "%s/%s.so", a, fixtures[i]);
		loader_message(path, &err);
		expect_unusable(doc, path, err.msg);
	}
	snprintf(path, sizeof(path), "%s/bad.so", a);
	loader_message(path, &err);
	expect_unusable(doc, path, err.msg);
	/* A crash as it loads is that file's error, not the command's.  (Under
	 * AddressSanitizer the child ends by the sanitizer's hand instead.) */
	snprintf(path, sizeof(path), "%s/crash_at_load.so", a);
	if (!SANITIZED) {
		char want[400];

		snprintf(want, sizeof(want), "cannot load '%s': it crashed as it loaded (SIGSEGV)", path);
		expect_unusable(doc, path, want);
	} else {
		cr_expect_not_null(strstr(expect_unusable(doc, path, NULL), path));
	}
	expect_plugin(doc, id, "identity", NULL);
	cJSON_Delete(doc);

	run(&r, NULL, "list", NULL);
	expect_exit(&r, 0);
	cr_expect_eq(count_of(r.out, "  (unusable: "), COUNT(fixtures) + 1, "%s", r.out);
	snprintf(path, sizeof(path), "%s/bad.so  (unusable: not a loadable shared object", a);
	cr_expect_not_null(strstr(r.out, path), "no '%s' in:\n%s", path, r.out);
	cr_expect_not_null(strstr(r.out, "(unusable: not a pexec plugin (no symbol pexec_plugin))\n"),
	                   "%s", r.out);
	proc_release(&r);
}

/* A constructor that never returns, after writing to stdout and starting a
 * helper: killed with its helper (run() fails on any process left behind),
 * and the listing is still clean JSON. */
Test(list, a_plugin_that_hangs_as_it_loads_is_killed_with_its_helper)
{
	const char *a = dir_of(0, "a");
	char path[300], want[400];
	cJSON *doc;

	put(FIX("hang_at_load"), a, "hang_at_load.so");
	put(BUILD_PLUGIN("identity"), a, "identity.so");
	setenv("PEXEC_PLUGIN_PATH", a, 1);
	doc = list_json();
	expect_fields(doc);
	snprintf(path, sizeof(path), "%s/hang_at_load.so", a);
	snprintf(want, sizeof(want), "cannot load '%s': no answer after 5 s (it hangs as it loads)",
	         path);
	expect_unusable(doc, path, want);
	snprintf(path, sizeof(path), "%s/identity.so", a);
	expect_plugin(doc, path, "identity", NULL);
	cJSON_Delete(doc);
}

Test(list, directories_that_do_not_exist_are_skipped_silently)
{
	char path[300];
	struct proc r;

	snprintf(path, sizeof(path), "/nonexistent/pexec:%s::%s", dir_of(0, "empty"),
	         scratch_path(1, "missing"));
	setenv("PEXEC_PLUGIN_PATH", path, 1);
	run(&r, NULL, "list", NULL);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.err, "");
	cr_expect_not_null(strstr(r.out, BUILD_PLUGIN("factorial") "\n"), "%s", r.out);
	proc_release(&r);
}

Test(list, help_bad_arguments_and_a_full_stdout)
{
	struct proc r;
	struct proc_spec s = { .args = ARGS("list"), .stdout_path = "/dev/full" };

	run(&r, NULL, "list", "--help", NULL);
	expect_exit(&r, 0);
	cr_expect(!strncmp(r.out, "usage: pexec list [--json]\n", 27), "%s", r.out);
	cr_expect_not_null(strstr(r.out, "--json"), "%s", r.out);
	proc_release(&r);
	run(&r, NULL, "list", "-h", NULL);
	expect_exit(&r, 0);
	cr_expect(!strncmp(r.out, "usage: pexec list", 17), "%s", r.out);
	proc_release(&r);
	run(&r, NULL, "list", "--bogus", NULL);
	expect_exit(&r, 2);
	cr_expect_str_eq(r.out, "");
	cr_expect_str_eq(r.err, "pexec list: unknown argument '--bogus' (usage: pexec list [--json])\n");
	proc_release(&r);
	run(&r, NULL, "list", "--json", "--jsno", NULL);
	expect_exit(&r, 2);
	cr_expect_str_eq(r.out, "");
	cr_expect_eq(line_count(r.err), 1, "%s", r.err);
	cr_expect_not_null(strstr(r.err, "did you mean '--json'?"), "%s", r.err);
	proc_release(&r);
	run_spec(&s, &r);
	expect_exit(&r, 3);
	cr_expect_not_null(strstr(r.err, "pexec list: cannot write standard output"), "%s", r.err);
	proc_release(&r);
}
