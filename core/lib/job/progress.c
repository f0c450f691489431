/*
 * progress.c - the bytes of input whose items are complete (progress.h).
 *
 * The splitter knows how far it has read, but a progress display that shows
 * that runs ahead of the work (22% at 7 of 40 items done): the items read
 * but not finished are in flight.  Noting where the input stood at each tick
 * (items read, bytes read) and finding the done count among the marks gives
 * the bytes the done items span, at no cost per item.  Marks behind the done
 * count are dropped; if the marks fill up (a run whose in-flight items span
 * many ticks), every other one goes, which only coarsens the estimate.
 */
#include <string.h>

#include "progress.h"

void pexec__marks_start(struct pexec__marks *marks, uint64_t bytes)
{
	marks->m[0].items = 0;
	marks->m[0].bytes = bytes;
	marks->n = 1;
}

void pexec__marks_add(struct pexec__marks *marks, uint64_t items, uint64_t bytes)
{
	if (marks->n && marks->m[marks->n - 1].items >= items)
		return; /* nothing read since the last mark */
	if (marks->n == PEXEC__MARKS) {
		unsigned k = 1;

		for (unsigned i = 2; i < marks->n; i += 2)
			marks->m[k++] = marks->m[i];
		marks->n = k;
	}
	marks->m[marks->n].items = items;
	marks->m[marks->n].bytes = bytes;
	marks->n++;
}

uint64_t pexec__marks_done(struct pexec__marks *marks, uint64_t done, uint64_t items,
                           uint64_t bytes)
{
	uint64_t lo_items, lo_bytes, hi_items = items, hi_bytes = bytes;
	unsigned i = 0;

	if (marks->n == 0)
		return done >= items ? bytes : 0;
	while (i + 1 < marks->n && marks->m[i + 1].items <= done)
		i++;
	/* The marks before i are behind the done count for good. */
	if (i > 0) {
		memmove(marks->m, marks->m + i, (marks->n - i) * sizeof(marks->m[0]));
		marks->n -= i;
	}
	lo_items = marks->m[0].items;
	lo_bytes = marks->m[0].bytes;
	if (marks->n > 1) {
		hi_items = marks->m[1].items;
		hi_bytes = marks->m[1].bytes;
	}
	if (done <= lo_items || hi_items <= lo_items || hi_bytes <= lo_bytes)
		return done >= hi_items ? hi_bytes : lo_bytes;
	if (done >= hi_items)
		return hi_bytes;
	return lo_bytes + (uint64_t)((double)(hi_bytes - lo_bytes) * (double)(done - lo_items) /
	                             (double)(hi_items - lo_items));
}
