/*
 * rusage.c - runs one command and reports its wall time and peak RSS.
 *
 *     rusage REPORT COMMAND [ARG...]
 *
 * bench/run.py runs every measured command under this launcher, which forks,
 * execs COMMAND, waits for it with wait4() and writes one line to REPORT:
 *
 *     <exit> <wall_ns> <maxrss_kib> <user_us> <sys_us>
 *
 * exit is the command's exit status, or 128 + the signal that ended it.
 *
 * Why a launcher, and why in C: on Linux, wait4()'s ru_maxrss is the largest
 * RSS of the child *and of every descendant it waited for* (the kernel folds a
 * reaped child's peak into its parent's), which is what the benchmark wants:
 * the peak of any process of a run, pexec's workers or Pool's included.  But
 * the kernel also folds in, at execve(), the peak RSS of the memory image the
 * child had before exec - a copy of, or with vfork the very image of, the
 * process that spawned it.  Spawned straight from the Python harness, every
 * figure would be at least the harness's own peak (tens or hundreds of MiB
 * once it has parsed an output).  Spawned from this small program, that floor
 * is this program's size, about a MiB, below anything measured.
 *
 * The wall time runs from just before fork() to just after wait4() returns,
 * so the harness's own process start-up is not counted against the command.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	struct rusage ru;
	long long start, wall;
	int status, code;
	FILE *report;
	pid_t pid;

	if (argc < 3) {
		fprintf(stderr, "usage: rusage REPORT COMMAND [ARG...]\n");
		return 125;
	}
	/* Opened before the fork, so a bad path fails before anything runs. */
	report = fopen(argv[1], "we");
	if (!report) {
		fprintf(stderr, "rusage: cannot open '%s': %s\n", argv[1], strerror(errno));
		return 125;
	}

	start = now_ns();
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "rusage: cannot fork: %s\n", strerror(errno));
		return 125;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "rusage: cannot run '%s': %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	while (wait4(pid, &status, 0, &ru) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "rusage: wait4: %s\n", strerror(errno));
			return 125;
		}
	}
	wall = now_ns() - start;

	code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	fprintf(report, "%d %lld %ld %lld %lld\n", code, wall, ru.ru_maxrss,
	        (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
	        (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec);
	if (fclose(report) != 0) {
		fprintf(stderr, "rusage: cannot write '%s': %s\n", argv[1], strerror(errno));
		return 125;
	}
	return 0;
}
