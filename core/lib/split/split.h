/*
 * split.h - the input splitter: cuts a JSON or NDJSON stream into items.
 *
 * The parent never parses values; it only finds where each item begins and
 * ends, validating the syntax on the way (RFC 8259, UTF-8 required) so that a
 * malformed input is refused with its line, column and byte offset.  The input
 * is streamed through a bounded buffer: memory is the size of the largest item,
 * not of the input.
 */
#ifndef PEXEC_SPLIT_H
#define PEXEC_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "pexec.h"

/* The largest single item accepted, in bytes. */
#define PEXEC_ITEM_MAX ((size_t)1 << 30)

/* The public pexec_splitter (pexec.h) is this splitter. */
typedef struct pexec_splitter pexec__splitter;

/* Splits what `fd` reads (not closed by the splitter).  `name` is how
 * messages refer to the input ("inputs.json", "<stdin>"). */
pexec__splitter *pexec__split_fd(int fd, const char *name, pexec_format format);
/* Splits `len` bytes at `data`, which must outlive the splitter. */
pexec__splitter *pexec__split_mem(const char *data, size_t len, const char *name,
                                  pexec_format format);

/* Returns 1 with the next item's exact bytes (no surrounding whitespace) in
 * *data and *len, valid until the next call; 0 at the clean end of the input; or
 * -PEXEC_EINPUT for malformed input ("malformed input 'NAME' at line L, column C,
 * byte B: why"),
 * -PEXEC_ESYS for a read error.  After an error every call returns it again. */
int pexec__split_next(pexec__splitter *s, const char **data, size_t *len, pexec_error *err);

/* Bytes consumed so far (for progress reporting). */
uint64_t pexec__split_offset(const pexec__splitter *s);

void pexec__split_free(pexec__splitter *s);

#endif
