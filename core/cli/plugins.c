/*
 * plugins.c - the plugins found by bare name (plugins.h).
 *
 * The directories are the ones libpexec's loader searches for a bare name,
 * in its order (pexec_plugin_search_path): each of $PEXEC_PLUGIN_PATH, the
 * user's own, then the installed directory.  Only the file names are read:
 * nothing is loaded, so listing is quick and safe from a shell's completion.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pexec.h"
#include "plugins.h"
#include "suggest.h"

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the NAME of every NAME.so in the directory dir (len bytes). */
static void add_dir(const char *dir, size_t len, char ***names, size_t *n, size_t *cap)
{
	char path[4096];
	struct dirent *e;
	DIR *d;

	if (len == 0 || len >= sizeof(path))
		return;
	memcpy(path, dir, len);
	path[len] = '\0';
	if (!(d = opendir(path)))
		return;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);

		if (l < 4 || strcmp(e->d_name + l - 3, ".so") || e->d_name[0] == '.')
			continue;
		if (*n == *cap) {
			size_t c = *cap ? 2 * *cap : 16;
			char **grown = realloc(*names, c * sizeof(*grown));
			if (!grown)
				break;
			*names = grown;
			*cap = c;
		}
		if (!((*names)[*n] = strndup(e->d_name, l - 3)))
			break;
		(*n)++;
	}
	closedir(d);
}

static void add_list(const char *dirs, char ***names, size_t *n, size_t *cap)
{
	for (const char *p = dirs; p && *p;) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		add_dir(p, len, names, n, cap);
		p = end ? end + 1 : NULL;
	}
}

char **cli_plugin_names(const char *dirs, size_t *n)
{
	char **names = NULL, *path = pexec_plugin_search_path(dirs);
	size_t cap = 0, kept = 0;

	*n = 0;
	add_list(path, &names, n, &cap);
	free(path);
	if (!*n) {
		free(names);
		return NULL;
	}
	qsort(names, *n, sizeof(*names), by_name);
	for (size_t i = 0; i < *n; i++) {
		if (kept && !strcmp(names[kept - 1], names[i]))
			free(names[i]);
		else
			names[kept++] = names[i];
	}
	*n = kept;
	return names;
}

void cli_plugin_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

const char *cli_plugin_hint(const char *dirs, const char *spec, char *out, size_t size)
{
	size_t n, len = strlen(spec);
	char **names;
	const char *best;
	int installed = 0;

	out[0] = '\0';
	/* Paths are the user's own: only bare names are looked up. */
	if (strchr(spec, '/') || (len > 3 && !strcmp(spec + len - 3, ".so")))
		return out;
	names = cli_plugin_names(dirs, &n);
	for (size_t i = 0; i < n; i++)
		installed |= !strcmp(names[i], spec);
	best = installed ? NULL : cli_closest(spec, (const char *const *)names, n);
	if (best)
		snprintf(out, size, "; did you mean '%s'?", best);
	cli_plugin_names_free(names, n);
	return out;
}

int cli_plugins(const char *dirs, int argc, char **argv)
{
	size_t n;
	char **names;

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		puts("usage: pexec plugins\n\n"
		     "Lists the plugins --plugin finds by bare name, one a line: each NAME.so\n"
		     "in $PEXEC_PLUGIN_PATH, then beside pexec, then in the installed plugin\n"
		     "directory.  pexec info NAME describes one.");
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "pexec plugins: unexpected argument '%s'\nusage: pexec plugins\n",
		        argv[1]);
		return 2;
	}
	names = cli_plugin_names(dirs, &n);
	for (size_t i = 0; i < n; i++)
		puts(names[i]);
	cli_plugin_names_free(names, n);
	return fflush(stdout) ? 3 : 0;
}
