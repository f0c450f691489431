/*
 * util.h - small helpers shared by libpexec's files: the EINTR-safe I/O
 * loops, error setting, growable byte buffers and the clocks.
 */
#ifndef PEXEC_UTIL_H
#define PEXEC_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pexec.h"

/* Reads exactly `len` bytes unless EOF comes first.  Returns the bytes read
 * (less than `len` only at EOF), or -1 with errno set.  Retries EINTR. */
ssize_t pexec__read_full(int fd, void *buf, size_t len);
/* pexec__read_full at `offset`, the file position untouched. */
ssize_t pexec__pread_full(int fd, void *buf, size_t len, off_t offset);
/* Reads once, retrying EINTR.  Returns bytes read, 0 at EOF, -1 on error. */
ssize_t pexec__read_some(int fd, void *buf, size_t len);
/* Writes all `len` bytes; returns 0, or -1 with errno set.  Retries EINTR and
 * short writes. */
int pexec__write_full(int fd, const void *buf, size_t len);

/* pexec__write_full at `offset`, the file position untouched. */
int pexec__pwrite_full(int fd, const void *buf, size_t len, off_t offset);

/* Sets err->msg from a printf format; returns `code` for tail calls. */
pexec_code pexec__fail(pexec_error *err, pexec_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* PEXEC_OK when the `n` reserved words of the struct called `what` (as
 * "pexec_opts") are all zero, else PEXEC_EUSAGE naming the first that is not
 * (pexec.h, "Growing without breaking"). */
pexec_code pexec__reserved_zero(const uint64_t *words, size_t n, const char *what,
                                pexec_error *err);
/* The number of reserved words of the struct `p` points to. */
#define PEXEC__RESERVED(p) (sizeof((p)->reserved) / sizeof((p)->reserved[0]))

/* A growable byte buffer; usable as a pexec_buf for serialize hooks. */
void pexec__buf_init(pexec_buf *buf);
void pexec__buf_release(pexec_buf *buf);
int pexec__buf_grow(pexec_buf *buf, size_t need);

/* A 64-bit hash for telling whether bytes changed (not cryptographic).
 * Chains: pass the previous result as `h` (0 to start). */
uint64_t pexec__hash(uint64_t h, const void *data, size_t len);

/* An item's share of the resume journal's hash of a run's input: its bytes
 * hashed from a seed of its index, so that the sum over items (mod 2^64)
 * depends on their order, and chunks hashed apart add up to the whole. */
static inline uint64_t pexec__item_hash(uint64_t index, const void *data, size_t len)
{
	return pexec__hash(index * 0x9e3779b97f4a7c15ull + 1, data, len);
}

/* CLOCK_MONOTONIC in ns, for durations and deadlines; the time of day in
 * seconds, for pexec_result.started. */
uint64_t pexec__now_ns(void);
double pexec__now_real(void);

#endif
