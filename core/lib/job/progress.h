/*
 * progress.h - how much of a job's input is done: the bytes of input whose
 * items are complete (pexec_progress.bytes_done), which the bytes read
 * overstate by everything in flight.
 */
#ifndef PEXEC_PROGRESS_H
#define PEXEC_PROGRESS_H

#include <stdint.h>

#define PEXEC__MARKS 64

/* Where the input stood when the run had read so many items, noted at each
 * progress tick: a few dozen marks, however long the run. */
struct pexec__marks {
	struct {
		uint64_t items, bytes;
	} m[PEXEC__MARKS];
	unsigned n;
};

/* The run starts with `bytes` of input behind it (a resumed run's). */
void pexec__marks_start(struct pexec__marks *marks, uint64_t bytes);
/* Notes that `items` items had been read from `bytes` of input. */
void pexec__marks_add(struct pexec__marks *marks, uint64_t items, uint64_t bytes);
/* The bytes of input the first `done` items read span, `items` having been
 * read from `bytes` by now: exact at the marks, and between two marks as if
 * the items between were of one size.  Marks no longer needed are dropped.
 * In ordered output the done items are the first ones; unordered, this is
 * what they would span if they were. */
uint64_t pexec__marks_done(struct pexec__marks *marks, uint64_t done, uint64_t items,
                           uint64_t bytes);

#endif
