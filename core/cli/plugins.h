/*
 * plugins.h - the plugins the command finds by bare name: `pexec plugins`,
 * which lists them (for people and for shell completion), and the "did you
 * mean" for a name that is not among them.
 */
#ifndef PEXEC_CLI_PLUGINS_H
#define PEXEC_CLI_PLUGINS_H

#include <stddef.h>

/* The bare names NAME.so gives on the plugin search path that ends in `dirs`
 * (pexec_plugin_search_path(dirs); NULL: the installed directory), sorted,
 * each once; *n gets the count.  NULL (and *n 0) when there are none or no
 * memory.  Free with cli_plugin_names_free. */
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
