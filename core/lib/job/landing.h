/*
 * landing.h - the chunks a journaled run's workers write into the output
 * themselves (pool.h, pexec_spans): placed in input order, but
 * landing on the file in whatever order the workers get to them.  The
 * journal may only count a prefix that has landed; this keeps track of
 * which prefix that is.
 */
#ifndef PEXEC_JOB_LANDING_H
#define PEXEC_JOB_LANDING_H

#include <stddef.h>
#include <stdint.h>

/* What a prefix of chunks adds up to: its items and their pexec__item_hash
 * sum, and where the output writer stood after it (results, bytes). */
struct pexec__landing_sums {
	uint64_t items, hash, count, bytes;
};

struct pexec__landing {
	struct landing_chunk {
		struct pexec__landing_sums after; /* the sums with this chunk in */
		int landed;
	} *q;
	size_t head, len, cap;
	uint64_t first;                       /* the ticket of q[head] */
	struct pexec__landing_sums sums;      /* the landed prefix's */
};

/* Starts with the prefix that is on the file already (a resumed run's). */
void pexec__landing_init(struct pexec__landing *l, struct pexec__landing_sums start);
void pexec__landing_release(struct pexec__landing *l);

/* A chunk placed, after those placed before it: `items` items whose hash
 * sum is `hash`, the writer at `count` results and `bytes` bytes after it.
 * Sets *ticket for pexec__landing_landed.  0, or -1 when out of memory. */
int pexec__landing_place(struct pexec__landing *l, uint64_t items, uint64_t hash,
                         uint64_t count, uint64_t bytes, uint64_t *ticket);

/* The chunk of `ticket` is on the file; l->sums moves past every chunk of
 * the landed prefix.  Returns 1 when it moved, 0 when not, -1 for a ticket
 * that is not waiting. */
int pexec__landing_landed(struct pexec__landing *l, uint64_t ticket);

#endif
