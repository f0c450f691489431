/*
 * run_pool.c - a program that embeds libpexec, as its users write one: it
 * loads PLUGIN (a bare name is looked up in DIR last, or with "-" on the
 * library's own search path), prints the file it loaded, then runs three
 * items through a pool of two and prints "INDEX OK RESULT" for each.
 *
 *   run_pool PLUGIN DIR|-
 *
 * Built by the tests (test_install.c, test_shlib.c) against the installed
 * or the built library, shared or static, with nothing but pexec.h.
 */
#include <stdio.h>
#include <string.h>

#include "pexec.h"

static const char *items[] = { "1", "[2, \"two\"]", "{\"three\": 3}" };

static int next(void *ctx, const char **data, size_t *len, pexec_error *err)
{
	size_t *i = ctx;

	(void)err;
	if (*i == sizeof(items) / sizeof(items[0]))
		return 0;
	*data = items[*i];
	*len = strlen(items[(*i)++]);
	return 1;
}

static int take(void *ctx, const pexec_result *r, pexec_error *err)
{
	(void)ctx;
	(void)err;
	if (r)
		printf("%llu %d %.*s\n", (unsigned long long)r->index, r->ok, (int)r->len, r->data);
	return 0;
}

int main(int argc, char **argv)
{
	pexec_opts opts = { .jobs = 2, .chunksize = 1 };
	pexec_loaded_plugin *plugin;
	pexec_error err;
	pexec_code rc;
	size_t i = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: run_pool PLUGIN DIR|-\n");
		return 2;
	}
	if (pexec_plugin_load(argv[1], strcmp(argv[2], "-") ? argv[2] : NULL, &plugin, &err)) {
		fprintf(stderr, "run_pool: %s\n", err.msg);
		return 2;
	}
	printf("%s\n", pexec_plugin_path(plugin));
	rc = pexec_run(plugin, &opts, next, &i, take, NULL, NULL, &err);
	pexec_plugin_free(plugin);
	if (rc)
		fprintf(stderr, "run_pool: %s\n", err.msg);
	return pexec_exit_status(rc);
}
