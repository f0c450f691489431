/*
 * suggest.h - "did you mean ...?" for the pexec command: the known word
 * closest to a misspelt one (an option, a plugin, a subcommand, a format).
 */
#ifndef PEXEC_CLI_SUGGEST_H
#define PEXEC_CLI_SUGGEST_H

#include <stddef.h>

/* The edit distance between a and b: insertions, deletions, substitutions
 * and swaps of two neighbours, each 1 (what typing gets wrong). */
size_t cli_edit_distance(const char *a, const char *b);

/* The one of `names` (n of them) closest to `word`, when it is close
 * enough to be what was meant (one edit for names of up to 4 letters, two
 * for longer ones, and fewer than half of `word`); NULL otherwise. */
const char *cli_closest(const char *word, const char *const *names, size_t n);

#endif
