/*
 * tools.h - the `pexec info` and `pexec check` subcommands.
 */
#ifndef PEXEC_CLI_TOOLS_H
#define PEXEC_CLI_TOOLS_H

#include "pexec.h"

/* Runs `pexec info ...` or `pexec check ...` (argv[0] is "info" or "check");
 * returns the exit status: 0 all well, 1 a check failed (or the plugin
 * crashed in a hook), 2 usage error or a plugin that does not load, 3 system
 * error. */
int cli_tool(const char *plugin_dir, int argc, char **argv);

#endif
