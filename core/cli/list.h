/*
 * list.h - the `pexec list` subcommand: every plugin file on the search path,
 * described, with the one each bare name loads.
 */
#ifndef PEXEC_CLI_LIST_H
#define PEXEC_CLI_LIST_H

/* Runs `pexec list [--json]` (argv[0] is "list") over the plugin search path
 * that ends in `dirs` (NULL: the installed directory).  Returns the exit
 * status: 0 (files that are not usable plugins included), 2 usage error, 3
 * when standard output cannot be written. */
int cli_list(const char *dirs, int argc, char **argv);

#endif
