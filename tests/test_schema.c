/*
 * test_schema.c - every shipped, example and fixture plugin's manifest (as
 * `pexec info` prints it) is valid against plugin.schema.json, checked by a
 * real JSON Schema draft 2020-12 validator (Ajv, installed from npm into the
 * build directory by `make test`), and the validator does reject manifests
 * that break the schema.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

#define AJV_DIR PEXEC_TEST_BUILD "/schema"
#define SCHEMA PEXEC_SRC_DIR "/plugin.schema.json"
#define VALIDATE PEXEC_SRC_DIR "/tests/schema/validate.mjs"

/* Runs `cmd` with /bin/sh; returns its exit status, stdout in *out. */
static int shell(const char *cmd, char **out)
{
	FILE *p = popen(cmd, "r");
	char *text = NULL;
	size_t len = 0;
	char buf[4096];
	size_t n;
	int status;

	cr_assert_not_null(p, "cannot run %s", cmd);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		append(&text, &len, buf, n);
	append(&text, &len, "", 1);
	status = pclose(p);
	*out = text;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Writes `pexec info PLUGIN` to `path`; the info must succeed. */
static void save_manifest(const char *plugin, const char *path)
{
	char cmd[2048], *out;

	snprintf(cmd, sizeof(cmd), "%s/pexec info %s > %s", PEXEC_TEST_BUILD, plugin, path);
	cr_assert_eq(shell(cmd, &out), 0, "%s failed", cmd);
	free(out);
}

TestSuite(schema, .init = scratch_make, .fini = scratch_remove);

Test(schema, every_plugin_manifest_is_valid)
{
	static const char *const plugins[] = {
		PEXEC_TEST_BUILD "/plugins/factorial.so",
		PEXEC_TEST_BUILD "/plugins/identity.so",
		PEXEC_TEST_BUILD "/plugins/sleep.so",
		PEXEC_TEST_BUILD "/plugins/wordcount.so",
		PEXEC_TEST_BUILD "/examples/complex.so",
		PEXEC_TEST_BUILD "/tests/plugins/faults.so",
		PEXEC_TEST_BUILD "/tests/plugins/config_echo.so",
		PEXEC_TEST_BUILD "/tests/plugins/noisy.so",
		PEXEC_TEST_BUILD "/tests/plugins/abi_v1.so",
	};
	char cmd[8192], *out;
	size_t at;

	at = (size_t)snprintf(cmd, sizeof(cmd), "node %s %s %s", VALIDATE, AJV_DIR, SCHEMA);
	for (size_t i = 0; i < sizeof(plugins) / sizeof(plugins[0]); i++) {
		char name[32];
		const char *path;

		snprintf(name, sizeof(name), "manifest-%zu.json", i);
		path = scratch_path(0, name);
		save_manifest(plugins[i], path);
		at += (size_t)snprintf(cmd + at, sizeof(cmd) - at, " %s", path);
	}
	cr_expect_eq(shell(cmd, &out), 0, "%s:\n%s", cmd, out);
	cr_expect_eq(count_of(out, ": valid\n"), sizeof(plugins) / sizeof(plugins[0]), "%s", out);
	free(out);
}

/* The validator is not a rubber stamp: manifests that break the schema in
 * different ways are each refused. */
Test(schema, broken_manifests_are_refused)
{
	static const char *const broken[] = {
		/* no name */
		"{\"version\":\"1\",\"abi\":1,\"description\":\"d\",\"hooks\":{\"init\":false,"
		"\"fini\":false,\"deserialize\":false,\"map\":true,\"serialize\":false,"
		"\"free_value\":false}}",
		/* map false */
		"{\"name\":\"x\",\"version\":\"1\",\"abi\":1,\"description\":\"d\",\"hooks\":{"
		"\"init\":false,\"fini\":false,\"deserialize\":false,\"map\":false,"
		"\"serialize\":false,\"free_value\":false}}",
		/* abi 0 */
		"{\"name\":\"x\",\"version\":\"1\",\"abi\":0,\"description\":\"d\",\"hooks\":{"
		"\"init\":false,\"fini\":false,\"deserialize\":false,\"map\":true,"
		"\"serialize\":false,\"free_value\":false}}",
		/* a name that is not an identifier */
		"{\"name\":\"two words\",\"version\":\"1\",\"abi\":1,\"description\":\"d\","
		"\"hooks\":{\"init\":false,\"fini\":false,\"deserialize\":false,\"map\":true,"
		"\"serialize\":false,\"free_value\":false}}",
	};
	char cmd[1024], *out;

	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		const char *path = scratch_path(0, "broken.json");

		write_file(path, broken[i], strlen(broken[i]));
		snprintf(cmd, sizeof(cmd), "node %s %s %s %s", VALIDATE, AJV_DIR, SCHEMA, path);
		cr_expect_eq(shell(cmd, &out), 1, "accepted: %s\n%s", broken[i], out);
		cr_expect_not_null(strstr(out, "invalid"), "%s", out);
		free(out);
	}
}
