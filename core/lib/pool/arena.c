/*
 * arena.c - the shared-memory result arenas (struct pexec__arena), both
 * sides of them.
 *
 * Each worker slot has a ring of ARENA_SIZE bytes, mapped shared before the
 * fork, that its worker serializes results straight into; the pipe then
 * carries only a RESULTS_SHM notice of where a frame lies.  The worker owns
 * the head (bytes ever written), the parent the tail (bytes released,
 * published in progress->arena_tail).  The parent reads a whole chunk's
 * frame where it lies and releases it once the chunk is emitted, in any
 * order; the tail moves only past frames released in order.  A frame that
 * does not fit in the free run goes through the pipe instead, so a full
 * ring never makes anyone wait.  Successive processes of one slot share
 * its arena: a new one starts where the last announced frame ended.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "internal.h"
#include "util.h"

/* ---- the parent's side ---- */

int pexec__arena_setup(struct worker *w, unsigned frames_max)
{
	void *base = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE,
	                  MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (base != MAP_FAILED) {
		w->arena.base = base;
		w->arena.size = ARENA_SIZE;
	}
	w->nends = frames_max;
	w->ends = calloc(w->nends, sizeof(*w->ends));
	return w->ends ? 0 : -1;
}

void pexec__arena_release_all(struct worker *w)
{
	if (w->arena.base)
		munmap(w->arena.base, w->arena.size);
	w->arena.base = NULL;
	free(w->ends);
	w->ends = NULL;
}

void pexec__arena_release(struct worker *w, uint64_t frame)
{
	w->ends[frame % w->nends] |= 1;
	while (w->frames_released < w->frames_announced &&
	       (w->ends[w->frames_released % w->nends] & 1)) {
		w->arena_tail = w->ends[w->frames_released % w->nends] >> 1;
		w->frames_released++;
	}
	atomic_store_explicit(&w->progress->arena_tail, w->arena_tail, memory_order_release);
}

/* Makes room for more frames awaiting release (small ones released out of
 * order can queue up behind one that is not). */
static int ends_grow(struct pool *p, struct worker *w)
{
	unsigned n = 2 * w->nends;
	uint64_t *ends = calloc(n, sizeof(*ends));

	if (!ends) {
		p->stop = pexec__fail(p->err, PEXEC_ESYS, "out of memory");
		return -1;
	}
	for (uint64_t f = w->frames_released; f < w->frames_announced; f++)
		ends[f % n] = w->ends[f % w->nends];
	free(w->ends);
	w->ends = ends;
	w->nends = n;
	return 0;
}

const char *pexec__arena_take(struct pool *p, struct worker *w,
                              const struct pexec__frame_header *notice, uint64_t *frame_no)
{
	const struct pexec__arena *a = &w->arena;
	struct pexec__frame_header h;
	pexec_error perr;
	uint64_t end = notice->aux, len = notice->count;
	const char *frame;
	size_t off;

	if (!a->base || len < PEXEC_FRAME_HEADER_SIZE || end < w->arena_end + len ||
	    end - w->arena_tail > a->size)
		return NULL;
	if (w->frames_announced - w->frames_released >= w->nends && ends_grow(p, w))
		return NULL;
	off = (size_t)((end - len) % a->size);
	if (off + len > a->size)
		return NULL;
	frame = a->base + off;
	if (pexec__frame_parse_header(frame, &h, &perr) ||
	    (h.type != PEXEC_FRAME_RESULTS && h.type != PEXEC_FRAME_SPAN_RESULTS) ||
	    h.payload_len != len - PEXEC_FRAME_HEADER_SIZE)
		return NULL;
	w->arena_end = end;
	*frame_no = w->frames_announced++;
	w->ends[*frame_no % w->nends] = end << 1;
	return frame;
}

/* ---- the worker's side ---- */

/* Runs below this are not worth starting a frame in. */
#define ARENA_MIN_RUN ((size_t)64 << 10)

/* grow() of a buffer in the arena: the frame moves to the heap. */
static int arena_spill(pexec_buf *buf, size_t need)
{
	struct pexec__results *r = buf->priv;

	r->heap.len = 0;
	if (pexec__buf_grow(&r->heap, buf->len + need))
		return -1;
	memcpy(r->heap.data, buf->data, buf->len);
	r->heap.len = buf->len;
	*buf = r->heap;
	r->in_arena = 0;
	return 0;
}

void pexec__results_begin(struct pexec__results *r)
{
	const struct pexec__arena *a = r->arena;
	uint64_t tail = atomic_load_explicit(&r->progress->arena_tail, memory_order_acquire);
	size_t off, run, space, want = r->last_len + r->last_len / 2;

	if (want < ARENA_MIN_RUN)
		want = ARENA_MIN_RUN;
	r->in_arena = 0;
	if (a && a->base) {
		off = (size_t)(r->head % a->size);
		space = a->size - (size_t)(r->head - tail);
		run = a->size - off;
		if (run < want && space - run >= want) {
			/* Too little room before the end: start over at the
			 * beginning, leaving the end unused this round. */
			r->head += run;
			space -= run;
			off = 0;
			run = a->size;
		}
		if (run > space)
			run = space;
		if (run >= want) {
			r->buf = (pexec_buf){ .data = a->base + off, .cap = run,
			                      .grow = arena_spill, .priv = r };
			r->start = r->head;
			r->in_arena = 1;
			return;
		}
	}
	r->buf = r->heap;
	r->buf.len = 0;
}

/* `a` then `b` down a blocking pipe in one writev where it takes them. */
static int write_two(int fd, const void *a, size_t alen, const void *b, size_t blen)
{
	struct iovec iov[2] = { { (void *)a, alen }, { (void *)b, blen } };
	int i = alen ? 0 : 1;

	while (i < 2) {
		ssize_t n = writev(fd, iov + i, 2 - i);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		for (; i < 2 && (size_t)n >= iov[i].iov_len; i++)
			n -= (ssize_t)iov[i].iov_len;
		if (i < 2) {
			iov[i].iov_base = (char *)iov[i].iov_base + n;
			iov[i].iov_len -= (size_t)n;
		}
	}
	return 0;
}

int pexec__results_send(struct pexec__results *r, int fd, pexec_buf *before)
{
	const char *pre = before ? before->data : NULL;
	size_t pre_len = before ? before->len : 0;

	r->last_len = r->buf.len;
	if (before)
		before->len = 0;
	if (r->in_arena) {
		char hdr[PEXEC_FRAME_HEADER_SIZE];
		pexec_buf notice = { .data = hdr, .cap = sizeof(hdr) };

		r->head = r->start + r->buf.len;
		pexec__frame_begin(&notice, PEXEC_FRAME_RESULTS_SHM, r->head);
		pexec__frame_end(&notice, 0, (uint32_t)r->buf.len);
		return write_two(fd, pre, pre_len, hdr, sizeof(hdr));
	}
	r->heap = r->buf;
	return write_two(fd, pre, pre_len, r->buf.data, r->buf.len);
}
