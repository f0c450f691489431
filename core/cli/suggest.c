/*
 * suggest.c - the closest known word to a misspelt one (suggest.h).
 *
 * The distance is the optimal string alignment distance (Levenshtein's
 * edits plus the swap of two neighbouring letters, which typing makes
 * often), over words of at most WORD_MAX bytes: longer words are never
 * close to anything.
 */
#include <string.h>

#include "suggest.h"

#define WORD_MAX 64

size_t cli_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[WORD_MAX + 1][WORD_MAX + 1];

	if (la > WORD_MAX || lb > WORD_MAX)
		return (size_t)-1;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t best = d[i - 1][j - 1] + cost;

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

const char *cli_closest(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1, len = strlen(word);

	for (size_t i = 0; i < n; i++) {
		size_t d = cli_edit_distance(word, names[i]);
		size_t limit = strlen(names[i]) <= 4 ? 1 : 2;

		if (d > 0 && d <= limit && 2 * d < len && d < best_d) {
			best = names[i];
			best_d = d;
		}
	}
	return best;
}
