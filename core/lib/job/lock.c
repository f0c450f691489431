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
 *
 * The run's lock is on the file's first byte.  Its workers, which may write
 * into FILE's partial file themselves, keep open a second descriptor of the
 * lock file (writers_fd) that holds an open-file-description read lock on
 * the second byte: such a lock lasts while any process keeps that open file,
 * so a run killed at once (SIGKILL) leaves it held until its last worker,
 * killed a moment later, is gone, perhaps from the middle of a write.  The
 * next run, once it has the first byte, waits until nobody holds the second,
 * so that no write of the old run can land in the new one's file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

/* The run's byte, and its writers'. */
#define RUN_BYTE 0
#define WRITERS_BYTE PEXEC__LOCK_WRITERS_BYTE
/* How long an earlier run's workers may take to die: they are killed with
 * their parent (PR_SET_PDEATHSIG), so this is only ever a moment. */
#define WRITERS_WAIT_MS 10000

/* Who holds the lock on `fd`'s first byte (0: unknown). */
static long holder(int fd)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = RUN_BYTE,
	                    .l_len = 1 };

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

/* Waits until no worker of an earlier run holds the writers' byte, then
 * opens this run's writers_fd, with its own read lock on it. */
static pexec_code writers_gone(struct pexec__lock *l, const char *output, pexec_error *err)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = WRITERS_BYTE,
	                    .l_len = 1 };
	struct timespec pause = { 0, 10 * 1000 * 1000 };
	int waited = 0;

	while (fcntl(l->fd, F_OFD_SETLK, &fl) < 0) {
		if ((errno == EACCES || errno == EAGAIN) && waited < WRITERS_WAIT_MS) {
			nanosleep(&pause, NULL);
			waited += 10;
			continue;
		}
		return errno == EACCES || errno == EAGAIN
		               ? pexec__fail(err, PEXEC_EUSAGE, "'%s' is still being written by a "
		                             "worker of an earlier pexec", output)
		               : pexec__fail(err, PEXEC_ESYS, "cannot lock '%s': %s", l->path,
		                             strerror(errno));
	}
	fl.l_type = F_UNLCK;
	fcntl(l->fd, F_OFD_SETLK, &fl);
	fl.l_type = F_RDLCK;
	l->writers_fd = open(l->path, O_RDWR | O_CLOEXEC);
	if (l->writers_fd < 0 || fcntl(l->writers_fd, F_OFD_SETLK, &fl) < 0)
		return pexec__fail(err, PEXEC_ESYS, "cannot lock '%s': %s", l->path, strerror(errno));
	return PEXEC_OK;
}

pexec_code pexec__lock_take(struct pexec__lock *l, const char *output, pexec_error *err)
{
	l->fd = l->writers_fd = -1;
	if (asprintf(&l->path, "%s.pexec-lock", output) < 0) {
		l->path = NULL;
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	}
	for (int tries = 0; tries < 100; tries++) {
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = RUN_BYTE,
		                    .l_len = 1 };
		char pid[32];
		pexec_code rc;
		int fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);

		if (fd < 0) {
			/* Nothing can be created beside FILE: its output will fail
			 * to be made too, and say so in its own words. */
			return PEXEC_OK;
		}
		if (fcntl(fd, F_SETLK, &fl) < 0) {
			rc = errno == EACCES || errno == EAGAIN
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
		if ((rc = writers_gone(l, output, err))) {
			/* Not removed: the lock file is the earlier run's still. */
			if (l->writers_fd >= 0)
				close(l->writers_fd);
			close(fd);
			l->fd = l->writers_fd = -1;
		}
		return rc;
	}
	return pexec__fail(err, PEXEC_ESYS, "cannot lock '%s': it keeps being replaced", l->path);
}

void pexec__lock_drop(struct pexec__lock *l)
{
	if (l->writers_fd >= 0)
		close(l->writers_fd);
	if (l->fd >= 0) {
		/* Removed while held, so that no run takes the old file after. */
		unlink(l->path);
		close(l->fd);
	}
	l->fd = l->writers_fd = -1;
	free(l->path);
	l->path = NULL;
}
