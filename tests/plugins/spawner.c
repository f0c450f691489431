/*
 * spawner.c - a fixture plugin that starts processes of its own, for the
 * tests that no process a plugin starts stalls or outlives a run
 * (test_contain.c).
 *
 * An item {"spawn": S, "then": T} starts S in map, then does T; a number
 * maps to itself.  Spawns (each helper sleeps for 100 s, longer than any
 * test waits):
 *
 *   child     fork(): the child keeps every descriptor the worker has
 *   exec      fork() and exec sleep: the helper holds what survives exec
 *   system    system("sleep 100 &"): a background job of a shell
 *   setsid    fork() and setsid(): the child leaves the worker's group
 *   daemon    fork, setsid, fork again, and the middle one exits: the
 *             helper is orphaned at once, in a session of its own
 *   self      the worker itself execs sleep (its pipes are close-on-exec)
 *
 * Thens: ok (the item is the result), crash (abort()), hang (sleep 100 s).
 * With a config {"marker": PATH}, PATH is created once a helper is running,
 * so that a test can wait for it.
 */
#define _POSIX_C_SOURCE 200809L

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pexec_plugin.h"

static char marker[512];

static int spawner_init(const cJSON *config, void **state, pexec_error *err)
{
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(config, "marker");

	(void)err;
	*state = NULL;
	if (cJSON_IsString(m))
		snprintf(marker, sizeof(marker), "%s", m->valuestring);
	return 0;
}

static void mark(void)
{
	if (marker[0])
		close(open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
}

static void __attribute__((noreturn)) helper(void)
{
	mark();
	sleep(100);
	_exit(0);
}

static void __attribute__((noreturn)) exec_sleep(void)
{
	mark();
	execlp("sleep", "sleep", "100", (char *)NULL);
	_exit(127);
}

/* Starts the helper `how`; returns 0, or -1 for an unknown one. */
static int spawn(const char *how)
{
	pid_t pid;

	if (!strcmp(how, "self"))
		exec_sleep();
	if (!strcmp(how, "system")) {
		if (system("sleep 100 &") < 0)
			return -1;
		mark();
		return 0;
	}
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		if (!strcmp(how, "daemon"))
			waitpid(pid, NULL, 0);
		return 0;
	}
	if (!strcmp(how, "child"))
		helper();
	if (!strcmp(how, "exec"))
		exec_sleep();
	setsid();
	if (!strcmp(how, "setsid"))
		helper();
	if (fork() == 0)
		helper();
	_exit(0);
}

static int spawner_map(void *state, void *input, void **output, pexec_error *err)
{
	const cJSON *item = input;
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(item, "spawn");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(item, "then");

	(void)state;
	*output = input;
	if (cJSON_IsString(s) && spawn(s->valuestring)) {
		pexec_error_set(err, "spawner: cannot spawn '%s'", s->valuestring);
		return -1;
	}
	if (cJSON_IsString(t) && !strcmp(t->valuestring, "crash"))
		abort();
	if (cJSON_IsString(t) && !strcmp(t->valuestring, "hang"))
		sleep(100);
	return 0;
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "spawner",
	.version = "1.0.0",
	.description = "starts processes of its own (a test fixture)",
	.init = spawner_init,
	.map = spawner_map,
};
