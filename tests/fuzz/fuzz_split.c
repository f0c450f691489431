/*
 * fuzz_split.c - libFuzzer harness for the input splitter (split.h).
 *
 * Every input is split in every format (JSON, NDJSON, and the text formats
 * below), and each item is consumed until the end or an error, checking the splitter's contract:
 *  - an item is non-empty, lies inside the input, starts after the previous
 *    one ended, and has no surrounding whitespace;
 *  - the end is sticky (0 again), an error is sticky (the same code and the
 *    same message again, never another item);
 *  - an error is -PEXEC_EINPUT (or -PEXEC_ESYS for out of memory) and its
 *    message gives "line L, column C, byte B" with B within the input and L no
 *    more than its lines.
 * The same input is then split from a descriptor whose reads return 1 to 7
 * bytes at a time (read() is wrapped, see __wrap_read), so that every token
 * is cut by a refill at some point; the items and the outcome must be the
 * same as from memory.  That is the scanner's suspend/resume path, which a
 * split from memory only reaches at the very end.
 *
 * The text formats (one item per line, NUL-separated; split_text.c) hand
 * out quoted copies rather than spans of the input: there each item must be
 * one valid JSON string, there are no more items than separators plus one,
 * the same error rules hold, and the short reads give the same items.
 *
 * Built by `make fuzz` (see the Makefile), with -Wl,--wrap=read.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "split/split.h"

#define CHECK(cond) do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_split: %s:%d: check failed: %s\n", \
			        __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

/* A descriptor number no file has: read() on it (wrapped by the linker's
 * --wrap=read) serves `src` at most `short_len` bytes at a time, from memory,
 * so that no syscall slows the fuzzer down.  Other descriptors read as usual. */
#define FAKE_FD 0x7ffffff0
static const uint8_t *src;
static size_t src_len, src_pos, short_len = 1;

ssize_t __real_read(int fd, void *buf, size_t len);
ssize_t __wrap_read(int fd, void *buf, size_t len);

ssize_t __wrap_read(int fd, void *buf, size_t len)
{
	if (fd != FAKE_FD)
		return __real_read(fd, buf, len);
	if (len > short_len)
		len = short_len;
	if (len > src_len - src_pos)
		len = src_len - src_pos;
	if (len)
		memcpy(buf, src + src_pos, len);
	src_pos += len;
	return (ssize_t)len;
}

static int is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Checks the position an error message gives against the input. */
static void check_message(const char *msg, const uint8_t *data, size_t size, int code)
{
	const char *at;
	uint64_t line, column, byte, lines = 1;

	CHECK(memchr(msg, '\0', PEXEC_ERROR_MAX) != NULL);
	if (code == -PEXEC_ESYS) {
		CHECK(strstr(msg, "out of memory") != NULL);
		return;
	}
	CHECK(code == -PEXEC_EINPUT);
	CHECK(strncmp(msg, "malformed input '", 17) == 0);
	at = strstr(msg, "' at line ");
	CHECK(at != NULL);
	CHECK(strstr(msg, "line ") && strstr(msg, "column ") && strstr(msg, "byte "));
	CHECK(sscanf(at, "' at line %" SCNu64 ", column %" SCNu64 ", byte %" SCNu64 ":",
	             &line, &column, &byte) == 3);
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	CHECK(byte <= size);
	CHECK(line >= 1 && line <= lines);
	CHECK(column >= 1 && column <= byte + 1);
}

/* The outcome of one split: the items (as offsets) and how it ended. */
struct outcome {
	size_t n, cap;
	size_t (*items)[2];
	int code;
	pexec_error err;
};

static void split_mem(const uint8_t *data, size_t size, pexec_format format,
                      struct outcome *o)
{
	const char *base = (const char *)data;
	pexec__splitter *s = pexec__split_mem(base, size, "fuzz", format);
	const char *item;
	size_t len, prev_end = 0;
	int r;

	CHECK(s != NULL);
	memset(o, 0, sizeof(*o));
	while ((r = pexec__split_next(s, &item, &len, &o->err)) == 1) {
		size_t off = (size_t)(item - base);

		CHECK(item >= base && off <= size);
		CHECK(len > 0 && len <= size - off);
		CHECK(off >= prev_end);
		CHECK(!is_ws((unsigned char)item[0]) && !is_ws((unsigned char)item[len - 1]));
		prev_end = off + len;
		if (o->n == o->cap) {
			o->cap = o->cap ? 2 * o->cap : 16;
			o->items = realloc(o->items, o->cap * sizeof(*o->items));
			CHECK(o->items != NULL);
		}
		o->items[o->n][0] = off;
		o->items[o->n][1] = len;
		o->n++;
		CHECK(o->n <= size);
	}
	o->code = r;
	if (r == 0) {
		CHECK(pexec__split_next(s, &item, &len, NULL) == 0);
	} else {
		pexec_error again;

		check_message(o->err.msg, data, size, r);
		CHECK(pexec__split_next(s, &item, &len, &again) == r);
		CHECK(strcmp(again.msg, o->err.msg) == 0);
	}
	CHECK(pexec__split_offset(s) <= size);
	pexec__split_free(s);
}

/* Splits the same bytes from a descriptor read `chunk` bytes at a time and
 * compares with the split from memory. */
static void split_fd(const uint8_t *data, size_t size, pexec_format format, size_t chunk,
                     const struct outcome *want)
{
	pexec__splitter *s;
	pexec_error err;
	const char *item;
	size_t len, n = 0;
	int r;

	src = data;
	src_len = size;
	src_pos = 0;
	short_len = chunk;
	s = pexec__split_fd(FAKE_FD, "fuzz", format);
	CHECK(s != NULL);
	while ((r = pexec__split_next(s, &item, &len, &err)) == 1) {
		CHECK(n < want->n);
		CHECK(len == want->items[n][1]);
		CHECK(memcmp(item, data + want->items[n][0], len) == 0);
		n++;
	}
	CHECK(r == want->code);
	CHECK(n == want->n);
	if (r < 0)
		CHECK(strcmp(err.msg, want->err.msg) == 0);
	CHECK(src_pos == size || r < 0);
	pexec__split_free(s);
}

/* The items of a text split, copied out (they live in the splitter). */
struct text_outcome {
	char *bytes;
	size_t len, n;
	int code;
	pexec_error err;
};

static void split_text(pexec__splitter *s, const uint8_t *data, size_t size,
                       pexec_format format, struct text_outcome *o)
{
	const char delim = format == PEXEC_FORMAT_LINES ? '\n' : '\0';
	const char *item;
	size_t len, seps = 0;
	int r;

	for (size_t i = 0; i < size; i++)
		seps += data[i] == (uint8_t)delim;
	memset(o, 0, sizeof(*o));
	CHECK(s != NULL);
	while ((r = pexec__split_next(s, &item, &len, &o->err)) == 1) {
		pexec_error e;

		CHECK(len >= 2 && item[0] == '"' && item[len - 1] == '"');
		CHECK(pexec_json_check(item, len, &e) == 0);
		CHECK(memchr(item, '\n', len) == NULL);
		o->bytes = realloc(o->bytes, o->len + len + 1);
		CHECK(o->bytes != NULL);
		memcpy(o->bytes + o->len, item, len);
		o->len += len;
		o->bytes[o->len++] = '\n';
		o->n++;
		CHECK(o->n <= seps + 1);
	}
	o->code = r;
	if (r == 0) {
		CHECK(pexec__split_next(s, &item, &len, NULL) == 0);
	} else {
		pexec_error again;

		check_message(o->err.msg, data, size, r);
		CHECK(pexec__split_next(s, &item, &len, &again) == r);
		CHECK(strcmp(again.msg, o->err.msg) == 0);
	}
	CHECK(pexec__split_offset(s) <= size);
	pexec__split_free(s);
}

static void fuzz_text(const uint8_t *data, size_t size, pexec_format format, size_t chunk)
{
	struct text_outcome mem, fd;

	split_text(pexec__split_mem((const char *)data, size, "fuzz", format), data, size, format,
	           &mem);
	src = data;
	src_len = size;
	src_pos = 0;
	short_len = chunk;
	split_text(pexec__split_fd(FAKE_FD, "fuzz", format), data, size, format, &fd);
	CHECK(fd.code == mem.code && fd.n == mem.n && fd.len == mem.len);
	CHECK(fd.len == 0 || memcmp(fd.bytes, mem.bytes, fd.len) == 0);
	if (fd.code < 0)
		CHECK(strcmp(fd.err.msg, mem.err.msg) == 0);
	free(mem.bytes);
	free(fd.bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const pexec_format formats[] = { PEXEC_FORMAT_JSON, PEXEC_FORMAT_NDJSON };
	/* The read size follows from the input, so a crash reproduces. */
	size_t chunk = 1 + (size ? data[size - 1] % 7 : 0);

	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		struct outcome o;

		split_mem(data, size, formats[i], &o);
		split_fd(data, size, formats[i], chunk, &o);
		free(o.items);
	}
	fuzz_text(data, size, PEXEC_FORMAT_LINES, chunk);
	fuzz_text(data, size, PEXEC_FORMAT_NUL, chunk);
	return 0;
}
