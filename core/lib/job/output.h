/*
 * output.h - the output writer: results in order as a JSON array or as
 * NDJSON, buffered, to a descriptor or to a file that only appears, renamed
 * from a temporary, when the run completed.
 */
#ifndef PEXEC_OUTPUT_H
#define PEXEC_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "pexec.h"

struct pexec__writer {
	int fd;
	char *path;      /* the final name, NULL when writing to a descriptor */
	char *tmp_path;  /* where the bytes go until finish() renames them */
	int unnamed;     /* O_TMPFILE: no name at all until finish() */
	int owned_fd;    /* a FIFO or device opened by name, written in place */
	pexec_format format;
	int drop_null;
	uint64_t count;  /* results written */
	uint64_t bytes;  /* bytes gone out to fd (not counting buf) */
	int positional;  /* written with pwrite at base + bytes */
	off_t base;
	char *buf;
	size_t len;
};

/* Writes to `path` (through a temporary file beside it) or, when `path` is
 * NULL, to `fd`, which stays open. */
pexec_code pexec__writer_open(struct pexec__writer *w, const char *path, int fd,
                              pexec_format format, int drop_null, pexec_error *err);
/* Writes to `path` through a named partial file (`partial`) that a later run
 * can continue: it is created anew, or, with `resume`, cut back to
 * `resume_bytes` and continued after `resume_count` results. */
pexec_code pexec__writer_open_partial(struct pexec__writer *w, const char *path,
                                      const char *partial, int resume, uint64_t resume_bytes,
                                      uint64_t resume_count, pexec_format format, int drop_null,
                                      pexec_error *err);
/* Flushes and makes durable what was written: afterwards w->bytes and
 * w->count describe a prefix that survives a crash. */
pexec_code pexec__writer_sync(struct pexec__writer *w, pexec_error *err);
/* Ends an incomplete run, keeping a partial file for a later resume. */
void pexec__writer_keep(struct pexec__writer *w);
/* Adds one result: `len` bytes of JSON text. */
pexec_code pexec__writer_put(struct pexec__writer *w, const char *data, size_t len,
                             pexec_error *err);
/* Writes out what is buffered (the pool calls for it before it waits). */
pexec_code pexec__writer_flush(struct pexec__writer *w, pexec_error *err);
/* Adds `count` results at once (the pool's batch path). */
pexec_code pexec__writer_put_batch(struct pexec__writer *w, const struct iovec *texts,
                                   uint32_t count, pexec_error *err);
/* Adds a chunk of `written` results laid out by a worker (pool.h, struct
 * pexec__spans): a JSON array's each after ",\n", NDJSON's each with its
 * newline, --drop-null's nulls left out already. */
pexec_code pexec__writer_put_span(struct pexec__writer *w, const char *out, size_t len,
                                  uint32_t written, pexec_error *err);
/* Makes the writer write at its own count of bytes (pwrite), so that
 * workers may write chunks in the places it hands out, where its file
 * allows (a regular file, not opened to append).  Returns whether it does. */
int pexec__writer_positional(struct pexec__writer *w);
/* Takes the place of a chunk laid out by a worker (as put_span would write
 * it): its bytes go to *offset on, but their first *skip (a JSON array's
 * first ",", for which "[" is written here). */
pexec_code pexec__writer_reserve(struct pexec__writer *w, size_t len, uint32_t written,
                                 uint64_t *offset, size_t *skip, pexec_error *err);
/* Completes the output (closing bracket, flush, fsync and rename). */
pexec_code pexec__writer_finish(struct pexec__writer *w, pexec_error *err);
/* Ends an incomplete run: a descriptor gets what was complete, without the
 * closing bracket, so it never parses as a whole result; a file is removed. */
void pexec__writer_abort(struct pexec__writer *w);

/* Appends `len` bytes as a JSON string (quotes included), cut to at most
 * `max` bytes of input at a UTF-8 character boundary ("..." marks a cut);
 * bytes that are not UTF-8 become U+FFFD.  Returns 0 or -1 (no memory). */
int pexec__json_quote(pexec_buf *out, const char *data, size_t len, size_t max);

#endif
