/*
 * contain.c - keeping what plugins start inside the run: no process a
 * plugin starts outlives pexec.
 *
 * Three layers, each for what the one before cannot reach:
 *  - Every worker leads a process group (worker.c); a process a plugin
 *    forks, system()s or popen()s is in it, and dies when the worker is
 *    killed or reaped.
 *  - While the pool runs, this process is a child subreaper: a process that
 *    left its worker's group (setsid) and whose parent died is adopted here
 *    instead of by init.  Adopted processes that ended are reaped as the run
 *    goes; those still alive when the run ends are killed, with whatever
 *    they started in turn.  (Only processes adopted during the run, and not
 *    of the caller's own process group, are touched.)
 *  - A warden, a small process forked before the workers, holds the read
 *    end of a pipe and the list of the workers' groups.  If this process
 *    dies without a word (SIGKILL), the pipe's end tells the warden, which
 *    kills every group on its list; the workers themselves die with their
 *    parent (PR_SET_PDEATHSIG).
 * Not reached: a process that left its worker's group and whose parent is
 * still alive when pexec itself is killed with SIGKILL (it is nobody's to
 * adopt yet), and one that double-forks out of a subreaper's reach then.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "contain.h"
#include "util.h"

enum { WARDEN_ADD = 1, WARDEN_FORGET, WARDEN_DONE };

struct warden_msg {
	int32_t op;
	int32_t pgid;
};

/* ---- the warden ---- */

/* Kills every group on the list; a list of `n`. */
static void warden_kill_all(const pid_t *groups, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kill(-groups[i], SIGKILL);
}

/* The warden's body: keeps the list as it is told, until told it is done
 * (exit 0) or the pipe ends (kill the list, exit 1). */
static void __attribute__((noreturn)) warden_main(int fd)
{
	pid_t *groups = NULL;
	size_t n = 0, cap = 0;
	struct warden_msg m;

	for (;;) {
		ssize_t got = pexec__read_full(fd, &m, sizeof(m));

		if (got != (ssize_t)sizeof(m)) {
			warden_kill_all(groups, n);
			_exit(1);
		}
		if (m.op == WARDEN_DONE)
			_exit(0);
		if (m.op == WARDEN_FORGET) {
			for (size_t i = 0; i < n; i++)
				if (groups[i] == m.pgid) {
					groups[i] = groups[--n];
					break;
				}
		} else if (m.op == WARDEN_ADD && m.pgid > 1) {
			if (n == cap) {
				size_t c = cap ? 2 * cap : 16;
				pid_t *g = realloc(groups, c * sizeof(*g));
				if (!g) {
					kill(-m.pgid, SIGKILL); /* better than not at all */
					continue;
				}
				groups = g;
				cap = c;
			}
			groups[n++] = m.pgid;
		}
	}
}

/* In the warden: nothing of its parent's but the pipe, no terminal's
 * signals (it has its own group, and ignores the rest), and its name. */
static void __attribute__((noreturn)) warden_start(int fd)
{
	static const int ignored[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGTSTP,
		                       SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2 };
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	int in = fcntl(fd, F_DUPFD, 3);

	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	for (size_t i = 0; i < sizeof(ignored) / sizeof(*ignored); i++)
		signal(ignored[i], SIG_IGN);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setpgid(0, 0);
	prctl(PR_SET_NAME, "pexec-warden");
	if (in < 0 || dup2(in, 0) < 0)
		_exit(1);
	close_range(1, ~0u, 0);
	warden_main(0);
}

static void warden_say(struct pexec__contain *c, int op, pid_t pgid)
{
	struct warden_msg m = { op, (int32_t)pgid };

	if (c->warden_fd >= 0 && pexec__write_full(c->warden_fd, &m, sizeof(m))) {
		/* The warden is gone: what it guarded is this process's alone now. */
		close(c->warden_fd);
		c->warden_fd = -1;
	}
}

void pexec__contain_add(struct pexec__contain *c, pid_t pgid)
{
	warden_say(c, WARDEN_ADD, pgid);
}

void pexec__contain_forget(struct pexec__contain *c, pid_t pgid)
{
	warden_say(c, WARDEN_FORGET, pgid);
}

/* ---- adopted processes ---- */

/* This process's children, from /proc (each thread's list: an orphan is
 * adopted by some thread of the subreaper).  Returns how many went into
 * out[0..max), or -1 where /proc cannot tell. */
static int children(pid_t *out, int max)
{
	DIR *tasks = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!tasks)
		return -1;
	while ((e = readdir(tasks)) && n < max) {
		char path[300], buf[4096];
		ssize_t len;
		int fd;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/children", e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = pexec__read_full(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		for (char *p = buf, *end; *p && n < max; p = end) {
			long pid = strtol(p, &end, 10);
			if (end == p)
				break;
			out[n++] = (pid_t)pid;
		}
	}
	closedir(tasks);
	return n;
}

static int listed(const pid_t *list, int n, pid_t pid)
{
	for (int i = 0; i < n; i++)
		if (list[i] == pid)
			return 1;
	return 0;
}

/* Whether `pid` is one this run adopted: not a worker, not the warden, not
 * a child the caller had before the run, not of the caller's group. */
static int adopted(const struct pexec__contain *c, pid_t pid, const pid_t *workers,
                   unsigned nworkers)
{
	for (unsigned i = 0; i < nworkers; i++)
		if (workers[i] == pid)
			return 0;
	return pid != c->warden && !listed(c->before, c->nbefore, pid) &&
	       getpgid(pid) != c->own_pgrp;
}

int pexec__contain_sweep(struct pexec__contain *c, const pid_t *workers, unsigned nworkers,
                         int kill_them)
{
	pid_t kids[256];
	int n = c->subreaper ? children(kids, 256) : 0, seen = 0;

	for (int i = 0; i < n; i++) {
		pid_t pid = kids[i];
		pid_t pgid = getpgid(pid);

		if (!adopted(c, pid, workers, nworkers))
			continue;
		seen++;
		if (kill_them) {
			/* Its group too: what it started goes with it. */
			if (pgid > 1 && pgid != c->own_pgrp)
				kill(-pgid, SIGKILL);
			kill(pid, SIGKILL);
		}
		waitpid(pid, NULL, WNOHANG);
	}
	return seen;
}

/* ---- the run ---- */

void pexec__contain_start(struct pexec__contain *c)
{
	int fds[2], was = 0, n;
	sigset_t all, old;
	pid_t pid;

	memset(c, 0, sizeof(*c));
	c->warden_fd = -1;
	c->own_pgrp = getpgrp();
	if (prctl(PR_GET_CHILD_SUBREAPER, &was) == 0 && !was &&
	    prctl(PR_SET_CHILD_SUBREAPER, 1) == 0)
		c->subreaper = 1;
	if (c->subreaper) {
		n = children(c->before, (int)(sizeof(c->before) / sizeof(*c->before)));
		c->nbefore = n > 0 ? n : 0;
	}
	if (pipe2(fds, O_CLOEXEC))
		return;
	/* No handler of the caller's may run in the warden before it has reset
	 * them all. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		close(fds[1]);
		warden_start(fds[0]);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(fds[0]);
	if (pid < 0) {
		close(fds[1]);
		return;
	}
	c->warden = pid;
	c->warden_fd = fds[1];
}

void pexec__contain_end(struct pexec__contain *c)
{
	struct timespec tick = { 0, 2 * 1000 * 1000 };

	/* Each kill may orphan what its victim started, which is adopted in
	 * turn: sweep until none is left (the killed are reaped as they go),
	 * for a second at most. */
	for (int i = 0; i < 500 && pexec__contain_sweep(c, NULL, 0, 1) > 0; i++)
		nanosleep(&tick, NULL);
	if (c->subreaper)
		prctl(PR_SET_CHILD_SUBREAPER, 0);
	c->subreaper = 0;
	warden_say(c, WARDEN_DONE, 0);
	if (c->warden_fd >= 0)
		close(c->warden_fd);
	c->warden_fd = -1;
	if (c->warden > 0)
		while (waitpid(c->warden, NULL, 0) < 0 && errno == EINTR)
			;
	c->warden = 0;
}
