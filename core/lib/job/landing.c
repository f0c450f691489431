/*
 * landing.c - which prefix of the placed chunks is on the file (landing.h).
 *
 * A queue in placing order: a chunk that lands is marked, and the prefix
 * moves past the marked chunks at the head.  Tickets count placed chunks,
 * so a ticket's place in the queue is its distance from the head's.
 */
#include <stdlib.h>
#include <string.h>

#include "landing.h"

void pexec__landing_init(struct pexec__landing *l, struct pexec__landing_sums start)
{
	memset(l, 0, sizeof(*l));
	l->sums = start;
}

void pexec__landing_release(struct pexec__landing *l)
{
	free(l->q);
	l->q = NULL;
	l->head = l->len = l->cap = 0;
}

/* Room for one more at the queue's end. */
static int make_room(struct pexec__landing *l)
{
	struct landing_chunk *q;
	size_t cap;

	if (l->head + l->len < l->cap)
		return 0;
	if (l->head > 0) {
		memmove(l->q, l->q + l->head, l->len * sizeof(*l->q));
		l->head = 0;
		return 0;
	}
	cap = l->cap ? 2 * l->cap : 64;
	if (!(q = realloc(l->q, cap * sizeof(*q))))
		return -1;
	l->q = q;
	l->cap = cap;
	return 0;
}

int pexec__landing_place(struct pexec__landing *l, uint64_t items, uint64_t hash,
                         uint64_t count, uint64_t bytes, uint64_t *ticket)
{
	struct pexec__landing_sums before = l->len ? l->q[l->head + l->len - 1].after : l->sums;

	if (make_room(l))
		return -1;
	l->q[l->head + l->len] = (struct landing_chunk){
		{ before.items + items, before.hash + hash, count, bytes }, 0,
	};
	*ticket = l->first + l->len++;
	return 0;
}

int pexec__landing_landed(struct pexec__landing *l, uint64_t ticket)
{
	size_t at = l->head + (size_t)(ticket - l->first);
	int moved = 0;

	if (ticket < l->first || ticket - l->first >= l->len || l->q[at].landed)
		return -1;
	l->q[at].landed = 1;
	while (l->len && l->q[l->head].landed) {
		l->sums = l->q[l->head].after;
		l->head++;
		l->len--;
		l->first++;
		moved = 1;
	}
	return moved;
}
