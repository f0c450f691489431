/*
 * plugins.c - the plugins found by bare name (plugins.h).
 *
 * The directories are the ones libpexec's loader searches for a bare name,
 * in its order (pexec_plugin_search_path): each of $PEXEC_PLUGIN_PATH, the
 * user's own, then the installed directory; and within each the files are
 * taken in the loader's order too, so that the first file of a name is the
 * one that name loads.  Only directories are read: nothing is loaded, so
 * listing is quick and safe from a shell's completion.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pexec.h"
#include "plugins.h"
#include "suggest.h"

/* The files found so far. */
struct scan {
	struct cli_plugin_file *files;
	size_t n, cap;
};

/* The bare name that looks the file `file` up: NAME for NAME.so and for
 * libNAME.so (malloc'd); NULL when it is not a plugin's file name. */
static char *bare_name(const char *file)
{
	size_t len = strlen(file);

	if (len < 4 || file[0] == '.' || strcmp(file + len - 3, ".so"))
		return NULL;
	len -= 3;
	if (len > 3 && !strncmp(file, "lib", 3))
		return strndup(file + 3, len - 3);
	return strndup(file, len);
}

/* By name; of one name NAME.so, the shorter path, before libNAME.so. */
static int in_load_order(const void *a, const void *b)
{
	const struct cli_plugin_file *x = a, *y = b;
	size_t xl = strlen(x->path), yl = strlen(y->path);
	int c = strcmp(x->name, y->name);

	return c ? c : (xl > yl) - (xl < yl);
}

/* Whether the directory `st` is was read already (a search path may name one
 * twice, or by two names).  Only directories that gave files are known, but
 * one that gave none gives none again. */
static int scanned(const struct scan *s, const struct stat *st)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->files[i].dev == st->st_dev && s->files[i].ino == st->st_ino)
			return 1;
	return 0;
}

/* Adds the file `file` of the directory `dir` (open as d, described by
 * `st`) if it is a plugin's.  Returns 0, or -1 when out of memory. */
static int add_file(struct scan *s, DIR *d, const char *dir, const struct stat *st,
                    const char *file)
{
	struct cli_plugin_file *f;
	struct stat fst;
	char *name = bare_name(file);

	if (!name || fstatat(dirfd(d), file, &fst, 0) || !S_ISREG(fst.st_mode)) {
		free(name);
		return 0;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		struct cli_plugin_file *grown = realloc(s->files, cap * sizeof(*grown));

		if (!grown) {
			free(name);
			return -1;
		}
		s->files = grown;
		s->cap = cap;
	}
	f = &s->files[s->n];
	if (asprintf(&f->path, "%s/%s", dir, file) < 0) {
		free(name);
		return -1;
	}
	f->dir_len = strlen(dir);
	f->name = name;
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	s->n++;
	return 0;
}

/* Adds the plugin files of the directory dir (len bytes), in load order. */
static void add_dir(struct scan *s, const char *dir, size_t len)
{
	char path[4096];
	struct dirent *e;
	struct stat st;
	size_t first = s->n;
	DIR *d;

	if (len == 0 || len >= sizeof(path))
		return;
	memcpy(path, dir, len);
	path[len] = '\0';
	if (!(d = opendir(path)))
		return;
	if (fstat(dirfd(d), &st) == 0 && !scanned(s, &st))
		while ((e = readdir(d)) && add_file(s, d, path, &st, e->d_name) == 0)
			;
	closedir(d);
	if (s->n > first) /* (files is NULL while none was found) */
		qsort(s->files + first, s->n - first, sizeof(*s->files), in_load_order);
}

struct cli_plugin_file *cli_plugin_files(const char *dirs, size_t *n)
{
	struct scan s = { 0 };
	char *path = pexec_plugin_search_path(dirs);

	for (const char *p = path; p && *p;) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		add_dir(&s, p, len);
		p = end ? end + 1 : NULL;
	}
	free(path);
	*n = s.n;
	if (!s.n) {
		free(s.files);
		return NULL;
	}
	return s.files;
}

void cli_plugin_files_free(struct cli_plugin_file *files, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(files[i].path);
		free(files[i].name);
	}
	free(files);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **cli_plugin_names(const char *dirs, size_t *n)
{
	size_t count, kept = 0;
	struct cli_plugin_file *files = cli_plugin_files(dirs, &count);
	char **names = count ? malloc(count * sizeof(*names)) : NULL;

	*n = 0;
	if (!names)
		goto out;
	/* The names change hands: the files are freed without them. */
	for (size_t i = 0; i < count; i++) {
		names[i] = files[i].name;
		files[i].name = NULL;
	}
	qsort(names, count, sizeof(*names), by_name);
	for (size_t i = 0; i < count; i++) {
		if (kept && !strcmp(names[kept - 1], names[i]))
			free(names[i]);
		else
			names[kept++] = names[i];
	}
	*n = kept;
out:
	cli_plugin_files_free(files, count);
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
		     "Lists the plugins --plugin finds by bare name, one a line, sorted: NAME\n"
		     "for each NAME.so or libNAME.so in $PEXEC_PLUGIN_PATH, in\n"
		     "$XDG_DATA_HOME/pexec/plugins (~/.local/share/pexec/plugins), then in the\n"
		     "installed plugin directory.  Nothing is loaded.  pexec list describes\n"
		     "each file, pexec info NAME one plugin.");
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
