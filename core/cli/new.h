/*
 * new.h - the `pexec new` subcommand: a plugin skeleton to start from.
 */
#ifndef PEXEC_CLI_NEW_H
#define PEXEC_CLI_NEW_H

/* Runs `pexec new NAME` (argv[0] is "new"): writes NAME/NAME.c, NAME/Makefile
 * and NAME/input.json, a plugin that builds with `make -C NAME` and runs at
 * once, and prints the commands to build and run it.  Never overwrites: an
 * existing NAME is refused.  Returns the exit status: 0 written, 2 usage
 * error (a NAME that is not a C identifier, or that exists), 3 system error
 * (what was written is removed again). */
int cli_new(int argc, char **argv);

#endif
