/*
 * split_run.c - running the splitter in tests (split_run.h).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "split_run.h"
#include "util.h"

void outcome_release(outcome *o)
{
	for (size_t i = 0; i < o->n; i++)
		free(o->items[i]);
	free(o->items);
	free(o->lens);
	memset(o, 0, sizeof(*o));
}

void drain(pexec__splitter *s, outcome *o)
{
	const char *data;
	size_t len;

	memset(o, 0, sizeof(*o));
	cr_assert_not_null(s);
	while ((o->rc = pexec__split_next(s, &data, &len, &o->err)) == 1) {
		if (o->n == o->cap) {
			o->cap = o->cap ? 2 * o->cap : 16;
			o->items = realloc(o->items, o->cap * sizeof(*o->items));
			o->lens = realloc(o->lens, o->cap * sizeof(*o->lens));
			cr_assert(o->items && o->lens);
		}
		o->items[o->n] = malloc(len + 1);
		memcpy(o->items[o->n], data, len);
		o->items[o->n][len] = 0;
		o->lens[o->n++] = len;
	}
	o->offset = pexec__split_offset(s);
	pexec__split_free(s);
}

void split_mem(const char *in, size_t len, pexec_format format, outcome *o)
{
	drain(pexec__split_mem(in, len, "t", format), o);
}

int temp_file(const void *in, size_t len)
{
	char path[] = "/tmp/test_split.XXXXXX";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	unlink(path);
	cr_assert_eq(pexec__write_full(fd, in, len), 0);
	cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

void split_file(const char *in, size_t len, pexec_format format, outcome *o)
{
	int fd = temp_file(in, len);

	drain(pexec__split_fd(fd, "t", format), o);
	close(fd);
}

void split_fed(int fds[2], const char *in, size_t len, size_t chunk, pexec_format format,
               outcome *o)
{
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		for (size_t off = 0; off < len; off += chunk) {
			size_t n = len - off < chunk ? len - off : chunk;
			if (pexec__write_full(fds[1], in + off, n) < 0)
				_exit(1);
		}
		_exit(0);
	}
	close(fds[1]);
	drain(pexec__split_fd(fds[0], "t", format), o);
	close(fds[0]);
	/* The child may die of SIGPIPE when the splitter stopped early. */
	cr_assert_eq(waitpid(pid, &status, 0), pid);
}
