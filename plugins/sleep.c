/*
 * sleep.c - sleeps x seconds for each item x, then returns x.
 *
 * The timing example of the seeds: with every item a known duration, a run's
 * wall time shows how well the pool spreads work (N items of x seconds on J
 * workers should take about N * x / J).  It has no deserialize or serialize
 * hook, so it also shows the default: items arrive and leave as cJSON trees.
 */
/* nanosleep() is POSIX; plugins build as plain -std=c11. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "pexec_plugin.h"

#define SLEEP_MAX_SECONDS 86400.0

/* How much of a bad item an error message quotes. */
#define SLEEP_QUOTE_MAX 40

static void sleep_bad_item(const cJSON *item, pexec_error *err)
{
	char *text = cJSON_PrintUnformatted(item);
	size_t len = text ? strlen(text) : 0;
	size_t cut = len;

	if (cut > SLEEP_QUOTE_MAX) {
		cut = SLEEP_QUOTE_MAX;
		while (cut > 0 && ((unsigned char)text[cut] & 0xc0) == 0x80)
			cut--;
	}
	pexec_error_set(err, "sleep: x must be a number of seconds from 0 to 86400, got %.*s%s",
	                (int)cut, text ? text : "", cut < len ? "..." : "");
	cJSON_free(text);
}

static int sleep_map(void *state, void *input, void **output, pexec_error *err)
{
	const cJSON *item = input;
	struct timespec left;
	double x;

	(void)state;
	if (!cJSON_IsNumber(item)) {
		sleep_bad_item(item, err);
		return -1;
	}
	x = cJSON_GetNumberValue(item);
	if (!(x >= 0 && x <= SLEEP_MAX_SECONDS)) {
		sleep_bad_item(item, err);
		return -1;
	}
	left.tv_sec = (time_t)x;
	/* Rounded by hand: lround() would need libm, which the plugin build
	 * does not link. */
	left.tv_nsec = (long)((x - (double)left.tv_sec) * 1e9 + 0.5);
	if (left.tv_nsec >= 1000000000L) {
		left.tv_sec++;
		left.tv_nsec -= 1000000000L;
	}
	/* A signal cuts the sleep short; nanosleep then says how much was
	 * left, so the total is still x. */
	while (nanosleep(&left, &left) != 0) {
		if (errno != EINTR) {
			pexec_error_set(err, "sleep: nanosleep failed: %s", strerror(errno));
			return -1;
		}
	}
	/* Pass-through: the result is the same tree, freed once by pexec. */
	*output = input;
	return 0;
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "sleep",
	.version = "1.0.0",
	.description = "sleeps x seconds for each number x (0 to 86400) and returns x",
	.map = sleep_map,
};
