/*
 * lock.c - one output file, one run (lock.h).
 *
 * Two runs on the same -o FILE would write over each other's partial file
 * and journal.  So a run first takes a write lock (fcntl, a process's own:
 * the kernel drops it when the process ends, however it ends) on
 * FILE.pexec-lock, before it touches anything of FILE's, and keeps it to the
 * end, when it removes the lock file.  A lock file left by a run that was
 * killed holds no lock, and the next run simply takes it.  A run that opened
 * the file just before its holder removed it finds, once it has the lock,
 * that the name is another file's now (or none's), and starts over.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lock.h"
#include "util.h"

/* Whether `fd` is still the file the name `path` leads to. */
static int still_named(int fd, const char *path)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/* Who holds the lock on `fd` (0: unknown). */
static long holder(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

	if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
		return (long)fl.l_pid;
	return 0;
}

static pexec_code busy(const char *output, long pid, pexec_error *err)
{
	if (pid > 0)
		return pexec__fail(err, PEXEC_EUSAGE,
		                   "'%s' is being written by another pexec (pid %ld)", output, pid);
	return pexec__fail(err, PEXEC_EUSAGE, "'%s' is being written by another pexec", output);
}

pexec_code pexec__lock_take(struct pexec__lock *l, const char *output, pexec_error *err)
{
	l->fd = -1;
	if (asprintf(&l->path, "%s.pexec-lock", output) < 0) {
		l->path = NULL;
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	}
	for (int tries = 0; tries < 100; tries++) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
		char pid[32];
		int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);

		if (fd < 0) {
			/* Nothing can be created beside FILE: its output will fail
			 * to be made too, and say so in its own words. */
			return PEXEC_OK;
		}
		if (fcntl(fd, F_SETLK, &fl) < 0) {
			pexec_code rc = errno == EACCES || errno == EAGAIN
			                        ? busy(output, holder(fd), err)
			                        : pexec__fail(err, PEXEC_ESYS, "cannot lock '%s': %s",
			                                      l->path, strerror(errno));
			close(fd);
			return rc;
		}
		if (!still_named(fd, l->path)) {
			close(fd);
			continue;
		}
		/* For a person who looks: whose it is. */
		snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
		if (ftruncate(fd, 0) == 0 && pexec__write_full(fd, pid, strlen(pid))) {
			/* the lock is what counts, not its text */
		}
		l->fd = fd;
		return PEXEC_OK;
	}
	return pexec__fail(err, PEXEC_ESYS, "cannot lock '%s': it keeps being replaced", l->path);
}

void pexec__lock_drop(struct pexec__lock *l)
{
	if (l->fd >= 0) {
		/* Removed while held, so that no run takes the old file after. */
		unlink(l->path);
		close(l->fd);
	}
	l->fd = -1;
	free(l->path);
	l->path = NULL;
}
