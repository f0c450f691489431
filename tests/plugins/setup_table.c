/*
 * setup_table.c - a fixture plugin for the setup and teardown hooks: setup
 * builds a table (256 MiB by default) in pexec before it forks the workers,
 * and every worker reads the one copy it inherited.
 *
 * Each item is a number of seconds to sleep (so that a test can look at the
 * workers while they are alive); its result is a checksum of the table, read
 * from every page of it, which proves the worker sees what setup wrote.
 *
 * --config (all optional):
 *   "mib":   the table's size in MiB (default 256)
 *   "build": "setup" (default) or "init": where the table is built; in init,
 *            each worker builds its own copy, the case setup exists to avoid
 *   "log":   a file to which each hook appends "HOOK PID" as it runs
 *   "fail":  "setup" makes setup fail
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, nanosleep */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "pexec_plugin.h"

#define PAGE 4096u

/* What setup built: the plugin's own static memory, inherited by every
 * worker (pexec_plugin.h, OWNERSHIP). */
static struct {
	unsigned char *base;
	size_t size;
	int in_init;
	char log[256];
} table;

static void note(const char *hook)
{
	FILE *f;

	if (!table.log[0] || !(f = fopen(table.log, "a")))
		return;
	fprintf(f, "%s %ld\n", hook, (long)getpid());
	fclose(f);
}

static int build(pexec_error *err)
{
	void *p = mmap(NULL, table.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
	               0);

	if (p == MAP_FAILED) {
		pexec_error_set(err, "setup_table: cannot map %zu bytes", table.size);
		return -1;
	}
	table.base = p;
	/* Every page written, so that all of it is resident in this process:
	 * the first byte of page k holds k mod 256. */
	for (size_t off = 0; off < table.size; off += PAGE)
		memset(table.base + off, (int)((off / PAGE) & 0xff), PAGE);
	return 0;
}

static int table_setup(const cJSON *config, pexec_error *err)
{
	const cJSON *mib = cJSON_GetObjectItemCaseSensitive(config, "mib");
	const cJSON *where = cJSON_GetObjectItemCaseSensitive(config, "build");
	const cJSON *log = cJSON_GetObjectItemCaseSensitive(config, "log");
	const cJSON *fail = cJSON_GetObjectItemCaseSensitive(config, "fail");

	table.size = (size_t)(cJSON_IsNumber(mib) ? mib->valuedouble : 256) << 20;
	table.in_init = cJSON_IsString(where) && !strcmp(where->valuestring, "init");
	snprintf(table.log, sizeof(table.log), "%s", cJSON_IsString(log) ? log->valuestring : "");
	note("setup");
	if (cJSON_IsString(fail) && !strcmp(fail->valuestring, "setup")) {
		pexec_error_set(err, "setup_table: asked to fail in setup");
		return -1;
	}
	return table.in_init ? 0 : build(err);
}

static void table_teardown(void)
{
	note("teardown");
	if (table.base && !table.in_init)
		munmap(table.base, table.size);
	table.base = NULL;
}

static int table_init(const cJSON *config, void **state, pexec_error *err)
{
	(void)config;
	note("init");
	*state = NULL;
	if (!table.size) {
		pexec_error_set(err, "setup_table: init before setup");
		return -1;
	}
	return table.in_init ? build(err) : 0;
}

static void table_fini(void *state)
{
	(void)state;
	note("fini");
	if (table.in_init && table.base) {
		munmap(table.base, table.size);
		table.base = NULL;
	}
}

static int table_map(void *state, void *input, void **output, pexec_error *err)
{
	const cJSON *item = input;
	uint64_t sum = 0;

	(void)state;
	if (!cJSON_IsNumber(item) || item->valuedouble < 0) {
		pexec_error_set(err, "setup_table: expected a number of seconds");
		return -1;
	}
	for (size_t off = 0; off < table.size; off += PAGE)
		sum += table.base[off];
	if (item->valuedouble > 0) {
		struct timespec ts = { (time_t)item->valuedouble,
			               (long)((item->valuedouble - (double)(time_t)item->valuedouble) *
			                      1e9) };
		while (nanosleep(&ts, &ts))
			;
	}
	*output = cJSON_CreateNumber((double)sum);
	return *output ? 0 : -1;
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "setup_table",
	.version = "1.0.0",
	.description = "a table built once by setup, read by every worker (test fixture)",
	.setup = table_setup,
	.teardown = table_teardown,
	.init = table_init,
	.fini = table_fini,
	.map = table_map,
};
