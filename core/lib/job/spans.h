/*
 * spans.h - a job's input as spans for the pool (spans.c): read in blocks,
 * cut by the boundary pass into chunks of whole items.
 */
#ifndef PEXEC_JOB_SPANS_H
#define PEXEC_JOB_SPANS_H

#include <stddef.h>
#include <stdint.h>

#include "pexec.h"
#include "pool/pool.h"
#include "split/boundary.h"

struct pexec__span_src {
	int fd;
	const char *name;
	pexec_format format;
	unsigned char *buf;  /* input bytes from offset `base` on */
	size_t cap, start, pos, end; /* the next span from `start`; passed up to `pos` */
	uint64_t base;
	struct pexec__bounds b;
	int eof, first, finished;
	double bytes_per_item;
	uint64_t items;      /* in the spans given so far */
};

/* Reads `fd` (not closed here), an input in JSON or NDJSON called `name`
 * in messages.  PEXEC_OK, or PEXEC_ESYS when out of memory. */
pexec_code pexec__span_src_open(struct pexec__span_src *s, int fd, const char *name,
                                pexec_format format, pexec_error *err);
/* pexec_spans's `next`: the next span of at most `want` items. */
int pexec__span_src_next(void *ctx, uint32_t want, pexec_span *span, pexec_error *err);
/* Bytes of the input cut into spans so far. */
uint64_t pexec__span_src_offset(const struct pexec__span_src *s);
void pexec__span_src_release(struct pexec__span_src *s);

#endif
