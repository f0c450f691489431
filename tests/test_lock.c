/*
 * test_lock.c - one output file, one run (core/lib/job/lock.c): a second
 * run on the same -o FILE, with or without --resume, stops at once with exit
 * 2 and names the run that holds it, and touches nothing of the first's.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

TestSuite(lock, .init = scratch_make, .fini = scratch_remove, .timeout = 300);

/* Runs pexec to its end with `args`, its stderr into `err_path`; returns
 * its wait status.  (Not run(): that reaps every child of the test, and the
 * first run is one.) */
static int run_beside(const char *const *args, const char *err_path)
{
	const char *argv[MAX_ARGS + 2] = { PEXEC };
	int status;
	pid_t pid;
	size_t n = 1;

	for (; args[n - 1]; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (null < 0 || err < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(err, 2) < 0)
			_exit(127);
		execv(PEXEC, (char *const *)argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return status;
}

struct second {
	const char *in, *out, *lock, *partial, *journal, *err;
	pid_t first;
	int done;
};

/* The lock file, for holds_the_lock_file (for_workers takes no context). */
static const char *lock_path;
static int workers_holding;

/* Whether worker `pid` keeps the lock file open as its descriptor 7: what
 * makes the next run wait for it should its run be killed at once. */
static void holds_the_lock_file(pid_t pid)
{
	char link[64], target[512];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%ld/fd/7", (long)pid);
	n = readlink(link, target, sizeof(target) - 1);
	if (n > 0) {
		target[n] = 0;
		workers_holding += !strcmp(target, lock_path);
	}
}

/* Once the first run holds the lock: its workers keep the lock file open;
 * the second run, with and without --resume, and the first's files
 * compared before and after. */
static void second_run(void *ctx, pid_t pexec, const struct proc *so_far)
{
	struct second *s = ctx;
	struct stat st;
	char want[512];

	(void)so_far;
	if (s->done || stat(s->lock, &st) != 0 || stat(s->journal, &st) != 0)
		return;
	lock_path = s->lock;
	workers_holding = 0;
	if (for_workers(pexec, holds_the_lock_file) == 0 || workers_holding == 0)
		return;
	s->done = 1;
	snprintf(want, sizeof(want), "pexec: '%s' is being written by another pexec (pid %ld)\n",
	         s->out, (long)pexec);
	for (int resume = 0; resume < 2; resume++) {
		const char *args[] = { "-p", "sleep", "-o", s->out, s->in,
			               resume ? "--resume" : NULL, NULL };
		size_t plen, jlen, plen2, jlen2;
		char *partial = read_file(s->partial, &plen), *journal = read_file(s->journal, &jlen);
		int status = run_beside(args, s->err);
		size_t elen;
		char *err = read_file(s->err, &elen);
		char *partial2 = read_file(s->partial, &plen2), *journal2 = read_file(s->journal, &jlen2);

		cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 2, "second run: status 0x%x",
		          status);
		cr_expect_str_eq(err, want);
		/* The first run goes on writing, so its files may only have grown. */
		cr_expect(partial && partial2 && plen2 >= plen && !memcmp(partial, partial2, plen),
		          "the second run touched the partial output");
		cr_expect(journal && journal2 && jlen2 >= jlen && !memcmp(journal, journal2, jlen),
		          "the second run touched the journal");
		free(partial);
		free(journal);
		free(partial2);
		free(journal2);
		free(err);
	}
}

Test(lock, a_second_run_on_the_same_output_stops_at_once)
{
	struct second s = {
		.in = scratch_path(0, "in.json"), .out = scratch_path(1, "out.json"),
		.err = scratch_path(2, "second.err"),
	};
	char lock[300], partial[300], journal[300];
	const char *args[] = { "-p", "sleep", "-j", "2", "--chunksize", "1", "-o", s.out, s.in,
		               NULL };
	struct proc_spec spec = { .args = args, .watch = second_run, .watch_ctx = &s };
	struct proc r;
	size_t olen;
	char *out;

	snprintf(lock, sizeof(lock), "%s.pexec-lock", s.out);
	snprintf(partial, sizeof(partial), "%s.pexec-partial", s.out);
	snprintf(journal, sizeof(journal), "%s.pexec-journal", s.out);
	s.lock = lock;
	s.partial = partial;
	s.journal = journal;
	write_file(s.in, "[0.3, 0.3, 0.3, 0.3, 0.3, 0.3]", 30);
	run_spec(&spec, &r);
	cr_assert(s.done, "the first run never held its lock, with workers that keep its file");
	expect_exit(&r, 0);
	out = read_file(s.out, &olen);
	cr_expect_str_eq(out, "[\n0.3,\n0.3,\n0.3,\n0.3,\n0.3,\n0.3\n]\n");
	cr_expect_not(exists(lock), "the lock file is left behind");
	free(out);
	proc_release(&r);
}

/* A lock file a killed run left holds no lock: the next run takes it. */
Test(lock, a_lock_file_left_behind_holds_nothing)
{
	const char *in = scratch_path(0, "in.json"), *out = scratch_path(1, "out.json");
	char lock[300];
	struct proc r;

	snprintf(lock, sizeof(lock), "%s.pexec-lock", out);
	write_file(in, "[1, 2]", 6);
	write_file(lock, "12345\n", 6);
	run(&r, NULL, "-p", "identity", "-o", out, in, NULL);
	expect_exit(&r, 0);
	cr_expect_not(exists(lock));
	proc_release(&r);
}

/* What a worker of a run killed at once (SIGKILL) is to the next run: it
 * keeps the lock file's writers' byte and FILE's partial file open, and
 * writes into the file a moment after its run is gone. */
static pid_t late_writer(const char *lock, const char *partial)
{
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 1, .l_len = 1 };
	int ready[2];
	pid_t pid;
	char c;

	cr_assert_eq(pipe(ready), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int lfd = open(lock, O_RDWR | O_CREAT, 0644);
		int pfd = open(partial, O_RDWR | O_CREAT, 0644);
		struct timespec pause = { 0, 400 * 1000 * 1000 };

		if (lfd < 0 || pfd < 0 || fcntl(lfd, F_OFD_SETLK, &fl) < 0)
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		nanosleep(&pause, NULL);
		_exit(pwrite(pfd, "GARBAGE", 7, 2) == 7 ? 0 : 1);
	}
	close(ready[1]);
	cr_assert_eq(read(ready[0], &c, 1), 1, "the late writer never got going");
	close(ready[0]);
	return pid;
}

/* The next run waits for such a worker to be gone before it touches the
 * partial file, so its late write lands in nothing of the new run's. */
Test(lock, a_killed_runs_last_worker_is_waited_for)
{
	const char *in = scratch_path(0, "in.json"), *out = scratch_path(1, "out.json");
	const char *err = scratch_path(2, "err");
	const char *args[] = { "-p", "identity", "-o", out, in, NULL };
	char lock[300], partial[300];
	int status, wrote;
	size_t olen;
	pid_t writer;
	char *got;

	snprintf(lock, sizeof(lock), "%s.pexec-lock", out);
	snprintf(partial, sizeof(partial), "%s.pexec-partial", out);
	write_file(in, "[1, 2, 3, 4, 5, 6]", 18);
	writer = late_writer(lock, partial);
	status = run_beside(args, err);
	cr_assert_eq(waitpid(writer, &wrote, 0), writer);
	cr_assert(WIFEXITED(wrote) && WEXITSTATUS(wrote) == 0, "the late writer did not write");
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pexec: %d", status);
	got = read_file(out, &olen);
	cr_expect_str_eq(got, "[\n1,\n2,\n3,\n4,\n5,\n6\n]\n");
	cr_expect_not(exists(lock), "the lock file is left behind");
	free(got);
}
