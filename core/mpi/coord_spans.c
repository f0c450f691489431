/*
 * coord_spans.c - rank 0 in a run by spans (pexec_spans): the job's spans go
 * to the ranks' servers as they are, each span's output comes back in one
 * SPAN_DONE, and rank 0 hands it to the job in input order.  Where a server
 * can write the output file itself, only the span's size comes back: rank 0
 * takes the span's place in the output and tells the server where to write
 * it (PLACE), and the journal counts it once the server says LANDED.  Rank
 * 0's work is then per span, never per item or per result byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "mpi_internal.h"

/* A span's results, about: they fit a worker's arena. */
#define SPAN_OUT_TARGET ((size_t)256 << 10)
#define SPAN_ITEMS_MAX 65536u

/* ---- the run's start and end ---- */

/* The probe file beside the output, with this run's token: a server that
 * reads the token back opens the same output file by its name. */
static void write_probe(struct mpi *m)
{
	const pexec_spans *sp = m->spans;
	int fd;

	if (sp->out_fd < 0 || !sp->out_path || asprintf(&m->probe, "%s.probe", sp->out_path) < 0) {
		m->probe = NULL;
		return;
	}
	/* One a killed run left is this output's (the job holds its lock). */
	unlink(m->probe);
	fd = open(m->probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0 && getrandom(m->token, sizeof(m->token), 0) == (ssize_t)sizeof(m->token) &&
	    write(fd, m->token, sizeof(m->token)) == (ssize_t)sizeof(m->token) && close(fd) == 0)
		return;
	if (fd >= 0) {
		close(fd);
		unlink(m->probe);
	}
	free(m->probe);
	m->probe = NULL;
}

/* Appends n bytes at p; s may be NULL when n is 0. */
static char *put(char *p, const void *s, size_t n)
{
	if (n)
		memcpy(p, s, n);
	return p + n;
}

int pexec__mpi_spans_begin(struct mpi *m, char **buf, size_t *len)
{
	const pexec_spans *sp = m->spans;
	const char *name = sp->name ? sp->name : "<stdin>";
	const char *keep;
	struct pexec__span_begin b = {
		.in_format = (uint32_t)sp->in_format, .out_format = (uint32_t)sp->out_format,
		.drop_null = (uint32_t)sp->drop_null, .hash = (uint32_t)sp->hash,
	};
	char *p;

	write_probe(m);
	keep = m->probe && sp->keep_path ? sp->keep_path : "";
	memcpy(b.token, m->token, sizeof(b.token));
	b.name_len = (uint32_t)strlen(name);
	b.out_path_len = m->probe ? (uint32_t)strlen(sp->out_path) : 0;
	b.probe_len = m->probe ? (uint32_t)strlen(m->probe) : 0;
	b.keep_len = (uint32_t)strlen(keep);
	*len = sizeof(b) + b.name_len + b.out_path_len + b.probe_len + b.keep_len;
	if (!(*buf = p = malloc(*len)))
		return -1;
	p = put(p, &b, sizeof(b));
	p = put(p, name, b.name_len);
	p = put(p, sp->out_path, b.out_path_len);
	p = put(p, m->probe, b.probe_len);
	put(p, keep, b.keep_len);
	return 0;
}

static void remove_probe(struct mpi *m)
{
	if (m->probe)
		unlink(m->probe);
	free(m->probe);
	m->probe = NULL;
}

void pexec__mpi_spans_heard(struct mpi *m, int r)
{
	if (m->peers[r].heard)
		return;
	m->peers[r].heard = 1;
	/* Every server has opened the output (or not) by now. */
	if (--m->unheard == 0)
		remove_probe(m);
}

void pexec__mpi_spans_end(struct mpi *m)
{
	remove_probe(m);
	m->spans = NULL;
}

/* ---- spans out ---- */

/* Items for rank `r`'s next span: a share of what it should hold that
 * keeps each of its workers fed, with results that fit an arena. */
static uint32_t span_items(const struct mpi *m, const struct peer *p, uint64_t now)
{
	uint64_t n = pexec__coord_peer_want(p, now) / (2u * p->jobs);

	if (m->out_per_item > 0 && n > SPAN_OUT_TARGET / m->out_per_item)
		n = (uint64_t)(SPAN_OUT_TARGET / m->out_per_item);
	if (n < 1)
		n = 1;
	return n > SPAN_ITEMS_MAX ? SPAN_ITEMS_MAX : (uint32_t)n;
}

/* Takes the next span from the job and sends it to rank `r`.  Returns 1
 * when one went, 0 when there was none to send. */
static int send_span(struct mpi *m, int r, uint64_t now)
{
	struct chunk *c = pexec__coord_slot(m, m->next_seq);
	pexec_span s;
	struct pexec__span_wire w;
	struct pexec__msg h = { PEXEC__MSG_SPAN, 0, m->next_seq, m->next_index, 0 };
	char *buf;
	int got = m->spans->next(m->spans->ctx, span_items(m, &m->peers[r], now), &s, m->err);

	if (got != 1) {
		if (got < 0)
			m->stop = (pexec_code)-got; /* the source filled err */
		m->source_done = 1;
		return 0;
	}
	if (s.last)
		m->source_done = 1;
	w = (struct pexec__span_wire){ s.offset, s.line, s.line_start, (uint32_t)s.first,
		                       (uint32_t)s.last };
	h.count = s.count;
	h.len = sizeof(w) + s.len;
	if (!(buf = malloc(PEXEC__MSG_HEADER + h.len))) {
		pexec__coord_fail(m, PEXEC_ESYS, "out of memory building a span");
		return 0;
	}
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + PEXEC__MSG_HEADER, &w, sizeof(w));
	memcpy(buf + PEXEC__MSG_HEADER + sizeof(w), s.data, s.len);
	if (pexec__mpi_send_built(m, r, buf, PEXEC__MSG_HEADER + h.len)) {
		pexec__coord_fail(m, PEXEC_ESYS, "cannot send a span to rank %d", r);
		return 0;
	}
	*c = (struct chunk){ .used = 1, .peer = r, .seq = m->next_seq++, .first = m->next_index,
		             .count = s.count, .msg = c->msg, .span_len = s.len, .last = s.last };
	m->chunks_out++;
	m->bytes_out += PEXEC__MSG_HEADER + h.len;
	m->buffered += s.len;
	m->next_index += s.count;
	m->stats->items += s.count;
	if (m->peers[r].first_ns == 0)
		m->peers[r].first_ns = now;
	m->peers[r].inflight += s.count;
	return 1;
}

void pexec__mpi_spans_dispatch(struct mpi *m)
{
	uint64_t now = pexec__mpi_now_ns();

	while (!m->stop && !m->source_done && m->error_seq == UINT64_MAX) {
		int best;

		/* The window: chunks and bytes out, and a slot free (a placed
		 * span keeps its slot until it has landed). */
		if (m->next_seq - m->deliver_seq >= WINDOW_CHUNKS || m->buffered > WINDOW_BYTES ||
		    pexec__coord_slot(m, m->next_seq)->used)
			return;
		best = pexec__coord_hungriest(m, now);
		if (best < 0 || !send_span(m, best, now))
			return;
	}
}

/* ---- outputs in ---- */

/* The parts of a SPAN_DONE, checked against each other. */
struct span_done_parts {
	struct pexec__span_done d;
	const char *fails, *error, *out;
	size_t fails_len;
};

static int done_parts(const struct chunk *c, struct span_done_parts *s)
{
	const char *p = c->results, *end = c->results + c->results_len;
	size_t rest;

	if (c->results_len < sizeof(s->d))
		return -1;
	memcpy(&s->d, p, sizeof(s->d));
	p += sizeof(s->d);
	rest = (size_t)(end - p);
	if (s->d.error_len > rest)
		return -1;
	rest -= s->d.error_len;
	if (!(s->d.flags & PEXEC__SPAN_HELD) && !s->d.error_len) {
		if (s->d.out_len > rest)
			return -1;
		rest -= s->d.out_len;
	}
	s->fails = p;
	s->fails_len = rest;
	s->error = p + rest;
	s->out = s->error + s->d.error_len;
	return 0;
}

/* Hands each failed item of a span to the job, as the pool would. */
static int hand_failures(struct mpi *m, const struct chunk *c, const struct span_done_parts *s)
{
	const char *p = s->fails, *end = s->fails + s->fails_len;

	for (uint32_t k = 0; k < s->d.failures; k++) {
		struct pexec__span_fail f;
		pexec_result r;
		int rc;

		if ((size_t)(end - p) < sizeof(f))
			return -1;
		memcpy(&f, p, sizeof(f));
		p += sizeof(f);
		if (f.pos >= c->count || f.status >= PEXEC_STATUS_COUNT ||
		    f.stage > PEXEC_STAGE_REDUCE || (size_t)(end - p) < (size_t)f.message_len + f.input_len)
			return -1;
		m->msgbuf.len = 0;
		if (pexec_buf_append(&m->msgbuf, p, f.message_len) || pexec_buf_append(&m->msgbuf, "", 1))
			return -2;
		r = (pexec_result){
			.index = c->first + f.pos, .stage = (pexec_stage)f.stage,
			.attempts = f.attempts, .status = (pexec_status)f.status, .pid = f.pid,
			.started = f.started, .seconds = f.seconds, .message = m->msgbuf.data,
			.input = p + f.message_len, .input_len = f.input_len,
		};
		p += f.message_len + f.input_len;
		m->stats->by_status[f.status]++;
		m->stats->failed++;
		if ((rc = m->spans->failed(m->spans->ctx, &r, m->err)) < 0) {
			m->stop = (pexec_code)-rc;
			return 0;
		}
	}
	return p == end ? 0 : -1;
}

/* Writes a span's returned output at its place, here. */
static int write_here(struct mpi *m, const struct span_done_parts *s, uint64_t offset,
                      size_t skip)
{
	if (s->d.out_len <= skip)
		return 0;
	return pexec__mpi_pwrite_all(m->spans->out_fd, s->out + skip, s->d.out_len - skip, offset);
}

/* A span's output into the job's: its place taken and written (by its
 * server, which then says LANDED, or here), or handed to `put`. */
static void hand_output(struct mpi *m, struct chunk *c, const struct span_done_parts *s)
{
	const pexec_spans *sp = m->spans;
	uint64_t offset;
	size_t skip;
	int rc;

	if (sp->out_fd < 0) {
		rc = sp->put(sp->ctx, c->first, c->count, s->out, s->d.out_len, s->d.written, s->d.hash,
		             m->err);
	} else {
		rc = sp->reserve(sp->ctx, c->count, s->d.out_len, s->d.written, s->d.hash, &offset,
		                 &skip, &c->ticket, m->err);
		if (rc == 0 && (s->d.flags & PEXEC__SPAN_HELD)) {
			if (pexec__mpi_send(m, c->peer, PEXEC__MSG_PLACE, (uint32_t)skip, c->seq, offset,
			                    NULL, 0)) {
				pexec__coord_fail(m, PEXEC_ESYS, "out of memory");
				return;
			}
			c->placing = 1;
			m->placing++;
			return;
		}
		if (rc == 0 && write_here(m, s, offset, skip)) {
			pexec__coord_fail(m, PEXEC_ESYS, "cannot write '%s': %s", sp->out_name,
			                  strerror(errno));
			return;
		}
		if (rc == 0 && sp->landed)
			rc = sp->landed(sp->ctx, c->ticket, m->err);
	}
	if (rc < 0) {
		m->stop = (pexec_code)-rc;
		return;
	}
	pexec__coord_release(m, c);
}

/* Remembers a span's malformed input as it comes back, in whatever order:
 * the run's error if no span before it has one.  No span goes out after it
 * (those before it are all out), and its server, which ends its run there,
 * is not taken for one that failed. */
static void note_error(struct mpi *m, const struct chunk *c)
{
	struct span_done_parts s;

	if (done_parts(c, &s) || !s.d.error_len)
		return; /* torn: emit says so */
	if (c->seq > m->error_seq)
		return;
	m->error_seq = c->seq;
	m->error_msg.len = 0;
	if (pexec_buf_append(&m->error_msg, s.error, s.d.error_len) ||
	    pexec_buf_append(&m->error_msg, "", 1))
		pexec__coord_fail(m, PEXEC_ESYS, "out of memory");
}

/* A span's outcome handed to the job: malformed input (in order, the run's
 * error), or its failures and then its output. */
static void emit(struct mpi *m, struct chunk *c)
{
	struct span_done_parts s;
	char who[96];
	int rc;

	if (done_parts(c, &s))
		goto torn;
	if (s.d.error_len) {
		/* In order, the first: the run's error (--unordered: settle). */
		if (!m->opts->unordered)
			pexec__coord_fail(m, PEXEC_EINPUT, "%s", m->error_msg.data);
		pexec__coord_release(m, c);
		return;
	}
	if ((rc = hand_failures(m, c, &s)) == -1)
		goto torn;
	if (rc == -2) {
		pexec__coord_fail(m, PEXEC_ESYS, "out of memory");
		return;
	}
	m->stats->ok += c->count - s.d.failures;
	m->stats->by_status[PEXEC_STATUS_OK] += c->count - s.d.failures;
	if (!m->stop)
		hand_output(m, c, &s);
	return;
torn:
	pexec__coord_fail(m, PEXEC_ESYS, "malformed output from %s",
	                  pexec__coord_peer_name(m, c->peer, who, sizeof(who)));
}

/* Takes a SPAN_DONE's payload into its slot (copied where it lies in the
 * socket's buffer), with the span's own count. */
static int keep_done(struct mpi *m, struct chunk *c, const struct pexec__msg *h,
                     uint32_t count, char *payload, char *owned)
{
	if (!owned) {
		if (!(owned = malloc(h->len ? h->len : 1)))
			return -1;
		memcpy(owned, payload, h->len);
	}
	c->results = owned;
	c->results_len = h->len;
	c->done = 1;
	m->bytes_in += h->len;
	m->buffered += h->len;
	if (count != c->count) {
		/* The pass guessed the last span's count. */
		m->stats->items += count;
		m->stats->items -= c->count;
		c->count = count;
	}
	return 0;
}

/* How many output bytes an item makes, from a span that came back. */
static void learn_size(struct mpi *m, const struct chunk *c)
{
	struct pexec__span_done d;
	double per_item;

	if (!c->count || c->results_len < sizeof(d))
		return;
	memcpy(&d, c->results, sizeof(d));
	per_item = (double)d.out_len / c->count;
	m->out_per_item = m->out_per_item > 0 ? 0.7 * m->out_per_item + 0.3 * per_item : per_item;
}

void pexec__mpi_on_span_done(struct mpi *m, int r, const struct pexec__msg *h, char *payload,
                             char *owned)
{
	struct chunk *c = pexec__coord_slot(m, h->seq);
	struct peer *p = &m->peers[r];
	char who[96];

	if (!c->used || c->seq != h->seq || c->peer != r || c->done ||
	    (h->count != c->count && !c->last && h->count != 0)) {
		free(owned);
		pexec__coord_fail(m, PEXEC_ESYS, "%s sent the output of a span it does not hold",
		                  pexec__coord_peer_name(m, r, who, sizeof(who)));
		return;
	}
	p->inflight -= c->count;
	p->done_items += h->count;
	/* Malformed input's SPAN_DONE counts no items. */
	if (keep_done(m, c, h, h->count ? h->count : c->count, payload, owned)) {
		pexec__coord_fail(m, PEXEC_ESYS, "out of memory");
		return;
	}
	learn_size(m, c);
	note_error(m, c);
	if (m->stop)
		return;
	if (m->opts->unordered) {
		emit(m, c);
		return;
	}
	while (!m->stop && m->deliver_seq < m->next_seq) {
		struct chunk *d = pexec__coord_slot(m, m->deliver_seq);
		if (!d->used || !d->done || d->placing)
			break;
		m->deliver_seq++;
		emit(m, d);
	}
}

void pexec__mpi_on_landed(struct mpi *m, int r, const struct pexec__msg *h)
{
	struct chunk *c = pexec__coord_slot(m, h->seq);
	char who[96];
	int rc;

	if (!c->used || c->seq != h->seq || c->peer != r || !c->placing) {
		pexec__coord_fail(m, PEXEC_ESYS, "%s says a span landed that was not placed",
		                  pexec__coord_peer_name(m, r, who, sizeof(who)));
		return;
	}
	m->placing--;
	if (h->count) {
		pexec__coord_fail(m, PEXEC_ESYS, "%s cannot write '%s': %s",
		                  pexec__coord_peer_name(m, r, who, sizeof(who)), m->spans->out_name,
		                  strerror((int)h->count));
		return;
	}
	if (m->spans->landed && (rc = m->spans->landed(m->spans->ctx, c->ticket, m->err)) < 0) {
		m->stop = (pexec_code)-rc;
		return;
	}
	pexec__coord_release(m, c);
}

void pexec__mpi_spans_abandon(struct mpi *m, int r)
{
	for (unsigned i = 0; i < WINDOW_CHUNKS && m->placing > 0; i++) {
		struct chunk *c = &m->slots[i];
		if (c->used && c->placing && c->peer == r) {
			c->placing = 0;
			m->placing--;
		}
	}
}

void pexec__mpi_spans_settle(struct mpi *m)
{
	if (m->stop || !m->opts->unordered || m->error_seq == UINT64_MAX)
		return;
	/* Every span before the first malformed one is back: that one is the
	 * run's error.  (Those after it on its server never come back.) */
	for (unsigned i = 0; i < WINDOW_CHUNKS; i++) {
		const struct chunk *c = &m->slots[i];
		if (c->used && !c->done && c->seq < m->error_seq)
			return;
	}
	pexec__coord_fail(m, PEXEC_EINPUT, "%s", m->error_msg.data);
}
