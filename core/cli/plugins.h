/*
 * plugins.h - the plugins the command finds by bare name: the plugin files on
 * the search path (which `pexec list` describes), `pexec plugins`, which
 * lists their names (for people and for shell completion), and the "did you
 * mean" for a name that is not among them.
 */
#ifndef PEXEC_CLI_PLUGINS_H
#define PEXEC_CLI_PLUGINS_H

#include <stddef.h>
#include <sys/types.h>

/* One plugin file on the search path. */
struct cli_plugin_file {
	char *path;     /* DIR/FILE, as the loader would open it */
	size_t dir_len; /* path's first dir_len bytes are DIR */
	char *name;     /* the bare name that looks it up: NAME for NAME.so and
	                 * for libNAME.so */
	dev_t dev;      /* DIR's, so that a directory named twice counts once */
	ino_t ino;
};

/* Every NAME.so and libNAME.so (regular files; hidden ones left out) on the
 * plugin search path that ends in `dirs` (pexec_plugin_search_path(dirs);
 * NULL: the installed directory), in the loader's order: directory by
 * directory, each once, those that cannot be read skipped; within one, by
 * name, NAME.so before libNAME.so.  So the first file of a name is the one
 * the bare name loads.  *n gets the count; NULL (and *n 0) when there are
 * none or no memory.  Free with cli_plugin_files_free. */
struct cli_plugin_file *cli_plugin_files(const char *dirs, size_t *n);
void cli_plugin_files_free(struct cli_plugin_file *files, size_t n);

/* The bare names of cli_plugin_files(dirs), sorted, each once; *n gets the
 * count.  NULL (and *n 0) when there are none or no memory.  Free with
 * cli_plugin_names_free. */
char **cli_plugin_names(const char *dirs, size_t *n);
void cli_plugin_names_free(char **names, size_t n);

/* For a plugin `spec` that did not load: "; did you mean 'NAME'?" when
 * spec is a bare name that is not installed and NAME is close to it, else
 * "".  Written into out (size bytes). */
const char *cli_plugin_hint(const char *dirs, const char *spec, char *out, size_t size);

/* `pexec plugins` (argv[0] is "plugins"): prints the names, one a line.
 * Returns the exit status. */
int cli_plugins(const char *dirs, int argc, char **argv);

#endif
