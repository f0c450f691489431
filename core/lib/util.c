/*
 * util.c - the syscall loops written once (EINTR, short counts), error
 * setting, and the growable buffer behind pexec_buf.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

ssize_t pexec__read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

ssize_t pexec__read_some(int fd, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = read(fd, buf, len);
		if (n >= 0 || errno != EINTR)
			return n;
	}
}

ssize_t pexec__pread_full(int fd, void *buf, size_t len, off_t offset)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got, offset + (off_t)got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Writes all of buf, at `offset` with pwrite(), or with write() where
 * `offset` is negative. */
static int write_all(int fd, const char *p, size_t len, off_t offset)
{
	while (len > 0) {
		ssize_t n = offset < 0 ? write(fd, p, len) : pwrite(fd, p, len, offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
		if (offset >= 0)
			offset += n;
	}
	return 0;
}

int pexec__pwrite_full(int fd, const void *buf, size_t len, off_t offset)
{
	if (offset < 0) {
		errno = EINVAL;
		return -1;
	}
	return write_all(fd, buf, len, offset);
}

int pexec__write_full(int fd, const void *buf, size_t len)
{
	return write_all(fd, buf, len, -1);
}

pexec_code pexec__fail(pexec_error *err, pexec_code code, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

pexec_code pexec__reserved_zero(const uint64_t *words, size_t n, const char *what,
                                pexec_error *err)
{
	for (size_t i = 0; i < n; i++)
		if (words[i])
			return pexec__fail(err, PEXEC_EUSAGE,
			                   "%s.reserved[%zu] is not zero: the program was built "
			                   "against a newer pexec.h than this libpexec %s, or did not "
			                   "zero its %s", what, i, PEXEC_VERSION, what);
	return PEXEC_OK;
}

void pexec__buf_init(pexec_buf *buf)
{
	buf->data = NULL;
	buf->len = 0;
	buf->cap = 0;
	buf->grow = pexec__buf_grow;
	buf->priv = NULL;
}

void pexec__buf_release(pexec_buf *buf)
{
	free(buf->data);
	pexec__buf_init(buf);
}

void pexec_buf_init(pexec_buf *buf)
{
	pexec__buf_init(buf);
}

void pexec_buf_release(pexec_buf *buf)
{
	pexec__buf_release(buf);
}

int pexec__buf_grow(pexec_buf *buf, size_t need)
{
	size_t cap = buf->cap ? buf->cap : 256;
	char *data;

	if (need > SIZE_MAX / 2 - buf->len)
		return -1;
	while (cap - buf->len < need)
		cap *= 2;
	data = realloc(buf->data, cap);
	if (!data)
		return -1;
	buf->data = data;
	buf->cap = cap;
	return 0;
}

uint64_t pexec__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double pexec__now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t pexec__hash(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t w;

	h ^= (uint64_t)len * 0x9e3779b97f4a7c15ull;
	while (len >= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 29;
		p += 8;
		len -= 8;
	}
	w = 0;
	memcpy(&w, p, len);
	h = (h ^ w) * 0x94d049bb133111ebull;
	return h ^ (h >> 32);
}
