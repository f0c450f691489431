/*
 * coord.c - pexec-mpi's rank 0: the engine under the pexec job
 * (a pexec_engine_fn).  It reads items from the job's source into chunks, hands
 * them to the ranks' pool servers on demand, each rank's share sized to what
 * it has been finishing, and hands the results to the job's sink in input
 * order (or as they come, --unordered) within a bounded window.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpi_internal.h"

/* A chunk's share of a rank's time, and how much a rank keeps in hand. */
#define CHUNK_SECONDS 0.05
#define INFLIGHT_SECONDS 0.2
#define CHUNK_ITEMS_MAX 65536u
#define CHUNK_BYTES_MAX ((size_t)1 << 20)

pexec_code pexec__coord_fail(struct mpi *m, pexec_code code, const char *fmt, ...)
{
	va_list ap;

	if (m->stop)
		return m->stop;
	va_start(ap, fmt);
	vsnprintf(m->err->msg, sizeof(m->err->msg), fmt, ap);
	va_end(ap);
	m->stop = code;
	return code;
}

const char *pexec__coord_peer_name(struct mpi *m, int r, char *buf, size_t size)
{
	snprintf(buf, size, "rank %d (%s)", r, m->peers[r].hello ? m->peers[r].host : "?");
	return buf;
}

/* Items a rank should hold: what it finishes in INFLIGHT_SECONDS, at least
 * two per worker. */
uint64_t pexec__coord_peer_want(const struct peer *p, uint64_t now)
{
	double rate = 0, want;

	if (p->done_items > 0 && now > p->first_ns)
		rate = (double)p->done_items * 1e9 / (double)(now - p->first_ns);
	want = rate * INFLIGHT_SECONDS;
	if (want < 2.0 * p->jobs)
		want = 2.0 * p->jobs;
	if (want > 4.0 * CHUNK_ITEMS_MAX)
		want = 4.0 * CHUNK_ITEMS_MAX;
	return (uint64_t)want;
}

static uint32_t peer_chunk(const struct peer *p, uint64_t now)
{
	uint64_t n = pexec__coord_peer_want(p, now) * (uint64_t)(CHUNK_SECONDS * 1000) /
	             (uint64_t)(INFLIGHT_SECONDS * 1000);

	if (n < p->jobs)
		n = p->jobs;
	return n > CHUNK_ITEMS_MAX ? CHUNK_ITEMS_MAX : (uint32_t)n;
}

struct chunk *pexec__coord_slot(struct mpi *m, uint64_t seq)
{
	return &m->slots[seq % WINDOW_CHUNKS];
}

/* Builds the next chunk for peer `r` from the source and sends it.  Returns
 * 1 when one went, 0 when there was nothing to send. */
static int send_chunk(struct mpi *m, int r, uint64_t now)
{
	struct chunk *c = pexec__coord_slot(m, m->next_seq);
	uint32_t want = peer_chunk(&m->peers[r], now), count = 0;
	struct pexec__msg h = { PEXEC__MSG_CHUNK, 0, m->next_seq, m->next_index, 0 };
	const char *data;
	size_t len;
	int got = 0;

	c->msg.len = 0;
	if (pexec_buf_append(&c->msg, &h, sizeof(h)))
		goto nomem;
	while (count < want && c->msg.len < CHUNK_BYTES_MAX) {
		uint32_t n;
		got = m->next(m->next_ctx, &data, &len, m->err);
		if (got != 1)
			break;
		if (len > UINT32_MAX - 8) {
			pexec__coord_fail(m, PEXEC_EINPUT, "item %" PRIu64 " is larger than 4 GiB",
			                  m->next_index + count);
			return 0;
		}
		n = (uint32_t)len;
		if (pexec_buf_append(&c->msg, &n, sizeof(n)) || pexec_buf_append(&c->msg, data, len))
			goto nomem;
		count++;
	}
	if (got < 0) {
		m->stop = (pexec_code)-got; /* the source filled err */
		m->source_done = 1;
	} else if (got == 0) {
		m->source_done = 1;
	}
	if (count == 0)
		return 0;
	h.count = count;
	h.len = c->msg.len - PEXEC__MSG_HEADER;
	memcpy(c->msg.data, &h, sizeof(h));
	if (r == m->rank) {
		if (pexec_buf_append(&m->out, c->msg.data, c->msg.len))
			goto nomem;
		pexec__mpi_flush(m);
	} else {
		char *copy = malloc(c->msg.len);
		if (!copy)
			goto nomem;
		memcpy(copy, c->msg.data, c->msg.len);
		if (pexec__mpi_isend(m, r, copy, c->msg.len)) {
			pexec__coord_fail(m, PEXEC_ESYS, "MPI_Isend to rank %d failed", r);
			return 0;
		}
	}
	m->chunks_out++;
	m->bytes_out += c->msg.len;
	m->buffered += c->msg.len;
	c->used = 1;
	c->peer = r;
	c->seq = m->next_seq++;
	c->first = m->next_index;
	c->count = count;
	c->results = NULL;
	m->next_index += count;
	m->stats->items += count;
	if (m->peers[r].first_ns == 0)
		m->peers[r].first_ns = now;
	m->peers[r].inflight += count;
	return 1;
nomem:
	pexec__coord_fail(m, PEXEC_ESYS, "out of memory building a chunk");
	return 0;
}

/* Hands out chunks to the ranks that have room, the emptiest first. */
int pexec__coord_hungriest(const struct mpi *m, uint64_t now)
{
	int best = -1;
	double best_fill = 1.0;

	for (int r = 0; r < m->nranks; r++) {
		const struct peer *p = &m->peers[r];
		double f;
		if (!p->running)
			continue;
		f = (double)p->inflight / (double)pexec__coord_peer_want(p, now);
		if (f < best_fill) {
			best_fill = f;
			best = r;
		}
	}
	return best;
}

static void dispatch(struct mpi *m)
{
	uint64_t now = pexec__mpi_now_ns();

	while (!m->stop && !m->source_done) {
		int best;

		if (m->next_seq - m->deliver_seq >= WINDOW_CHUNKS || m->buffered > WINDOW_BYTES)
			return;
		best = pexec__coord_hungriest(m, now);
		if (best < 0 || !send_chunk(m, best, now))
			return;
	}
}

/* --reduce: folds a chunk's partial result. */
static void fold_partial(struct mpi *m, const char *data, size_t len)
{
	pexec_error why;

	if (pexec_instance_fold(m->fold, data, len, &why))
		pexec__coord_fail(m, PEXEC_ESTOPPED, "reduce failed in pexec: %s", why.msg);
}

/* Hands a run of successful results to the batch sink. */
static int flush_batch(struct mpi *m, uint64_t first, size_t *n)
{
	int rc;

	if (*n == 0)
		return 0;
	rc = m->opts->batch_sink(m->opts->batch_ctx, first, (uint32_t)*n, m->texts,
	                         m->opts->result_input ? m->inputs : NULL, m->err);
	*n = 0;
	if (rc < 0) {
		m->stop = (pexec_code)-rc;
		return -1;
	}
	return 0;
}

static int hand_over(struct mpi *m, const struct chunk *c, uint32_t i,
                     const struct pexec__record *rec, const char *text, const char *input,
                     uint32_t ilen)
{
	pexec_result r = {
		.index = c->first + i, .ok = (rec->flags & PEXEC__REC_OK) != 0,
		.stage = (pexec_stage)rec->stage, .attempts = rec->attempts,
		.input = input, .input_len = ilen, .status = (pexec_status)rec->status,
		.pid = rec->pid, .started = rec->started, .seconds = rec->seconds,
	};
	int s;

	if (r.ok) {
		r.data = text;
		r.len = rec->len;
	} else {
		m->msgbuf.len = 0;
		if (pexec_buf_append(&m->msgbuf, text, rec->len) ||
		    pexec_buf_append(&m->msgbuf, "", 1)) {
			pexec__coord_fail(m, PEXEC_ESYS, "out of memory");
			return -1;
		}
		r.message = m->msgbuf.data;
	}
	s = m->sink(m->sink_ctx, &r, m->err);
	if (s < 0) {
		m->stop = (pexec_code)-s;
		return -1;
	}
	return 0;
}

/* Hands one chunk's results to the job. */
static void deliver(struct mpi *m, struct chunk *c)
{
	const char *p = c->results, *end = c->results + c->results_len;
	const char *in = c->msg.data + PEXEC__MSG_HEADER;
	const int batch = m->opts->batch_sink && !m->opts->reduce;
	uint64_t run_first = c->first;
	size_t run = 0;
	char who[96];

	if (batch && m->iov_cap < c->count) {
		struct iovec *t = realloc(m->texts, c->count * sizeof(*t));
		struct iovec *u = t ? realloc(m->inputs, c->count * sizeof(*u)) : NULL;
		if (t)
			m->texts = t;
		if (!u) {
			pexec__coord_fail(m, PEXEC_ESYS, "out of memory");
			return;
		}
		m->inputs = u;
		m->iov_cap = c->count;
	}
	for (uint32_t i = 0; i < c->count && !m->stop; i++) {
		struct pexec__record rec;
		uint32_t ilen;
		const char *text, *input;

		if (pexec__record_get(&p, end, &rec, &text) || rec.status >= PEXEC_STATUS_COUNT ||
		    rec.stage > PEXEC_STAGE_REDUCE)
			goto torn;
		memcpy(&ilen, in, sizeof(ilen));
		input = in + sizeof(ilen);
		in += sizeof(ilen) + ilen;

		m->stats->by_status[rec.status]++;
		if (rec.flags & PEXEC__REC_OK) {
			m->stats->ok++;
			if (m->opts->reduce)
				continue;
			if (batch && rec.pid == 0) {
				/* No timing to tell: one of a run for the batch sink. */
				if (run == 0)
					run_first = c->first + i;
				m->texts[run] = (struct iovec){ (void *)text, rec.len };
				m->inputs[run] = (struct iovec){ (void *)input, ilen };
				run++;
				continue;
			}
		} else {
			m->stats->failed++;
		}
		if (flush_batch(m, run_first, &run))
			return;
		if (m->sink && hand_over(m, c, i, &rec, text, input, ilen))
			return;
		if (!(rec.flags & PEXEC__REC_OK) && m->opts->fail_fast) {
			pexec__coord_fail(m, PEXEC_ESTOPPED,
			                  "stopped at the first failure (--fail-fast): item %" PRIu64,
			                  c->first + i);
			return;
		}
	}
	if (m->stop || flush_batch(m, run_first, &run))
		return;
	if (m->opts->reduce) {
		struct pexec__record rec;
		const char *part;
		if (pexec__record_get(&p, end, &rec, &part) || !(rec.flags & PEXEC__REC_PARTIAL))
			goto torn;
		fold_partial(m, part, rec.len);
	}
	return;
torn:
	pexec__coord_fail(m, PEXEC_ESYS, "malformed results from %s",
	                  pexec__coord_peer_name(m, c->peer, who, sizeof(who)));
}

/* Frees a chunk's slot; a buffer grown by a big chunk is not kept. */
static void slot_free(struct mpi *m, struct chunk *c)
{
	free(c->results);
	m->buffered -= c->results_len + c->msg.len + c->span_len;
	c->results = NULL;
	c->results_len = c->span_len = 0;
	c->used = c->done = c->placing = 0;
	if (c->msg.cap > CHUNK_BYTES_MAX / 4)
		pexec_buf_release(&c->msg);
	c->msg.len = 0;
}

void pexec__coord_release(struct mpi *m, struct chunk *c)
{
	slot_free(m, c);
	m->delivered++;
}

static void on_results(struct mpi *m, int r, const struct pexec__msg *h, char *payload,
                       char *owned)
{
	struct chunk *c = pexec__coord_slot(m, h->seq);
	struct peer *p = &m->peers[r];
	char who[96];

	if (!c->used || c->seq != h->seq || c->peer != r || c->count != h->count || c->results) {
		free(owned);
		pexec__coord_fail(m, PEXEC_ESYS, "%s sent results for a chunk it does not hold",
		                  pexec__coord_peer_name(m, r, who, sizeof(who)));
		return;
	}
	p->inflight -= c->count;
	p->done_items += c->count;
	if (m->stop) {
		free(owned);
		return;
	}
	if (!owned) {
		owned = malloc(h->len ? h->len : 1);
		if (!owned) {
			pexec__coord_fail(m, PEXEC_ESYS, "out of memory");
			return;
		}
		memcpy(owned, payload, h->len);
		payload = owned;
	}
	c->results = payload;
	c->results_len = h->len;
	m->bytes_in += h->len;
	m->buffered += h->len;
	/* `owned` is freed through c->results: payload starts it (remote
	 * messages are handed in without their header). */
	if (m->opts->unordered) {
		deliver(m, c);
		pexec__coord_release(m, c);
		return;
	}
	while (!m->stop && m->deliver_seq < m->next_seq) {
		struct chunk *d = pexec__coord_slot(m, m->deliver_seq);
		if (!d->results)
			break;
		deliver(m, d);
		pexec__coord_release(m, d);
		m->deliver_seq++;
	}
}

static void on_done(struct mpi *m, int r, const struct pexec__msg *h, const char *payload)
{
	struct peer *p = &m->peers[r];
	pexec_code code = (pexec_code)h->seq;
	/* The payload: the counters, then a failed run's message. */
	size_t counters = h->len >= sizeof(p->counters) ? sizeof(p->counters) : h->len;
	char who[96];

	if (!p->running)
		return;
	p->running = 0;
	m->running--;
	if (m->placing)
		pexec__mpi_spans_abandon(m, r);
	if (counters == sizeof(p->counters))
		memcpy(&p->counters, payload, sizeof(p->counters));
	if (code == PEXEC_OK || code == PEXEC_EITEM || (code == PEXEC_ECANCELED && m->stop))
		return;
	/* Malformed input: its span's SPAN_DONE told it, to be taken in order. */
	if (code == PEXEC_EINPUT && m->spans && m->error_seq != UINT64_MAX)
		return;
	if (code == PEXEC_ECANCELED)
		code = PEXEC_ESYS;
	pexec__coord_fail(m, code, "%s: %.*s", pexec__coord_peer_name(m, r, who, sizeof(who)),
	                  (int)(h->len - counters), payload + counters);
}

static void on_hello(struct mpi *m, int r, const struct pexec__msg *h, const char *payload)
{
	struct peer *p = &m->peers[r];
	size_t n = h->len < sizeof(p->host) - 1 ? h->len : sizeof(p->host) - 1;

	if (p->hello)
		return;
	p->hello = 1;
	m->hellos++;
	if (h->seq) {
		pexec__coord_fail(m, (pexec_code)h->seq, "rank %d: %.*s", r, (int)h->len, payload);
		p->host[0] = '\0';
		return;
	}
	memcpy(p->host, payload, n);
	p->host[n] = '\0';
	p->jobs = h->count ? h->count : 1;
	/* mpirun binds each rank to one core unless told otherwise, which
	 * leaves a pool of one worker on a node of many: say so, once. */
	if (!m->opts->jobs && !m->opts->serial && p->jobs == 1 && (h->first >> 32) > 1 &&
	    !m->warned_binding) {
		m->warned_binding = 1;
		fprintf(stderr, "pexec-mpi: rank %d (%s) may use 1 of its node's %u CPUs, so its "
		        "pool has 1 worker: mpirun binds each rank to a core by default; start one "
		        "rank per node with --map-by ppr:1:node --bind-to none, or give -j\n", r,
		        p->host, (unsigned)(h->first >> 32));
	}
}

/* One message from rank `r`'s server.  `owned`: the malloc'd buffer the
 * payload lies in (remote), or NULL (it lies in the socket's buffer). */
static void on_message(struct mpi *m, int r, const struct pexec__msg *h, char *payload,
                       char *owned)
{
	char who[96];

	if (m->spans && (h->type == PEXEC__MSG_SPAN_DONE || h->type == PEXEC__MSG_DONE))
		pexec__mpi_spans_heard(m, r);
	switch (h->type) {
	case PEXEC__MSG_HELLO:
		on_hello(m, r, h, payload);
		free(owned);
		return;
	case PEXEC__MSG_RESULTS:
		on_results(m, r, h, payload, owned);
		return;
	case PEXEC__MSG_DONE:
		on_done(m, r, h, payload);
		free(owned);
		return;
	case PEXEC__MSG_SPAN_DONE:
		if (m->spans) {
			pexec__mpi_on_span_done(m, r, h, payload, owned);
			return;
		}
		break;
	case PEXEC__MSG_LANDED:
		if (m->spans) {
			pexec__mpi_on_landed(m, r, h);
			free(owned);
			return;
		}
		break;
	}
	pexec__coord_fail(m, PEXEC_ESYS, "unexpected message %u from %s", (unsigned)h->type,
	                  pexec__coord_peer_name(m, r, who, sizeof(who)));
	free(owned);
}

/* Takes in what has come from the servers.  Returns whether anything did. */
static int receive(struct mpi *m)
{
	struct pexec__msg h;
	char *payload, *buf;
	int any = 0, got, src;

	pexec__mpi_fill(m);
	while ((got = pexec__mpi_take_local(m, &h, &payload)) == 1) {
		on_message(m, m->rank, &h, payload, NULL);
		any = 1;
	}
	if (got < 0)
		pexec__coord_fail(m, PEXEC_ESYS, "malformed message from rank %d's pool", m->rank);
	if (m->server_gone && m->peers[m->rank].running) {
		char why[200];
		m->peers[m->rank].running = 0;
		m->running--;
		char who[96];
		pexec__mpi_server_death(m, why, sizeof(why));
		pexec__coord_fail(m, PEXEC_ESYS, "%s: %s",
		                  pexec__coord_peer_name(m, m->rank, who, sizeof(who)), why);
	}
	while (m->nranks > 1 && (got = pexec__mpi_take_remote(MPI_ANY_SOURCE, &buf, &src)) != 0) {
		any = 1;
		if (got < 0) {
			free(buf);
			pexec__coord_fail(m, PEXEC_ESYS, "malformed message from rank %d", src);
			continue;
		}
		memcpy(&h, buf, sizeof(h));
		/* The payload is handed on alone: move it to the buffer's start so
		 * that a RESULTS payload can be kept (and freed) as it is. */
		memmove(buf, buf + PEXEC__MSG_HEADER, h.len);
		on_message(m, src, &h, buf, buf);
	}
	pexec__mpi_sends_progress(m);
	return any;
}

/* Tells every running server to stop, and forgets chunks out. */
static void stop_servers(struct mpi *m)
{
	for (int r = 0; r < m->nranks; r++) {
		if (!m->peers[r].running)
			continue;
		if (r == m->rank) {
			if (write(m->cancel_w, "", 1) < 0) {
				/* full: a stop is pending already */
			}
		} else if (m->cancelled) {
			/* A signal: the other ranks are being ended by mpirun, and
			 * waiting for them could be forever. */
			m->peers[r].running = 0;
			m->running--;
			continue;
		}
		pexec__mpi_send(m, r, PEXEC__MSG_STOP, 0, 0, 0, NULL, 0);
	}
}

/* Whether the run's cancel descriptor (a signal, in the CLI) is readable. */
static int cancel_seen(const struct mpi *m)
{
	return m->opts->cancel_fd > 0 &&
	       poll(&(struct pollfd){ .fd = m->opts->cancel_fd, .events = POLLIN }, 1, 0) > 0;
}

/* Waits until every server has said HELLO (the first run only). */
static pexec_code await_hellos(struct mpi *m)
{
	long idle = 0;

	while (m->hellos < m->nranks && !m->stop) {
		if (receive(m))
			idle = 0;
		else if (m->server_gone)
			return pexec__coord_fail(m, PEXEC_ESYS,
			                         "rank %d: its pool process ended before starting", m->rank);
		else if (m->hellos < m->nranks)
			pexec__mpi_wait(m, m->opts->cancel_fd, &idle);
		if (cancel_seen(m))
			return pexec__coord_fail(m, PEXEC_ECANCELED, "cancelled");
	}
	return m->stop;
}

/* What a run over the ranks refuses, as pexec_run() would. */
static pexec_code refuse(struct mpi *m)
{
	const pexec_opts *opts = m->opts;

	if (opts->reduce && !m->d->reduce)
		return pexec__coord_fail(m, PEXEC_EUSAGE,
		                         "plugin '%s' has no reduce hook: --reduce needs one", m->d->name);
	if (opts->reduce && !m->d->deserialize != !m->d->serialize)
		return pexec__coord_fail(m, PEXEC_EUSAGE,
		                         "plugin '%s' cannot reduce: partial results cross between "
		                         "processes through serialize and deserialize, so it needs "
		                         "both or neither", m->d->name);
	if (opts->reduce && opts->unordered)
		return pexec__coord_fail(m, PEXEC_EUSAGE,
		                         "--reduce folds results in input order: drop --unordered");
	if (opts->serial && (opts->timeout > 0 || opts->retries || opts->memory_limit ||
	                     opts->max_tasks_per_worker))
		return pexec__coord_fail(m, PEXEC_EUSAGE,
		                         "--timeout, --retries, --memory-limit and "
		                         "--max-tasks-per-worker need worker processes: drop --serial");
	return PEXEC_OK;
}

/* Every server starts the run (its BEGIN, and a run by spans' payload). */
static void begin_run(struct mpi *m, const char *payload, size_t len)
{
	unsigned flags = (m->opts->item_times ? PEXEC__RUN_TIMES : 0) |
	                 (m->spans ? PEXEC__RUN_SPANS : 0);

	for (int r = 0; r < m->nranks; r++) {
		struct peer *p = &m->peers[r];
		p->inflight = p->done_items = p->first_ns = 0;
		p->running = 1;
		p->heard = 0;
		memset(&p->counters, 0, sizeof(p->counters));
		pexec__mpi_send(m, r, PEXEC__MSG_BEGIN, flags, 0, 0, payload, len);
	}
	m->running = m->nranks;
	m->unheard = m->nranks;
}

/* After a signal the other ranks are forgotten, but a span one of them
 * was told to write may be on the file already: its LANDED is awaited a
 * moment, so that the journal counts what is there.  Whether to go on
 * waiting (`*until`: the moment's end, set on the first call). */
static int awaiting_landings(const struct mpi *m, uint64_t *until)
{
	uint64_t now;

	if (!m->cancelled || m->placing == 0)
		return 0;
	now = pexec__mpi_now_ns();
	if (*until == 0)
		*until = now + LANDING_GRACE_NS;
	return now < *until;
}

/* Deals chunks out and takes results in until every server has answered
 * END (or STOP, once the run stops) with DONE. */
static void run_loop(struct mpi *m)
{
	const pexec_opts *opts = m->opts;
	uint64_t landing_until = 0;
	long idle = 0;
	int stopping = 0;

	for (;;) {
		int ended;

		/* A signal first, before any result is taken as final. */
		if (!m->cancelled && cancel_seen(m)) {
			m->cancelled = 1;
			m->stop = PEXEC_OK; /* a cancel overrides any other reason */
			pexec__coord_fail(m, PEXEC_ECANCELED, "cancelled");
			if (stopping)
				stop_servers(m); /* again: forgets the remote ranks */
		}
		if (!m->stop && m->spans)
			pexec__mpi_spans_dispatch(m);
		else if (!m->stop)
			dispatch(m);
		if (m->spans)
			pexec__mpi_spans_settle(m);
		ended = !m->stop && m->source_done && m->delivered == m->next_seq;
		if ((ended || m->stop) && !stopping) {
			stopping = 1;
			if (m->stop)
				stop_servers(m);
			else
				for (int r = 0; r < m->nranks; r++)
					pexec__mpi_send(m, r, PEXEC__MSG_END, 0, 0, 0, NULL, 0);
		}
		if (stopping && m->running == 0 && !awaiting_landings(m, &landing_until))
			break;
		if (opts->on_tick && pexec__mpi_now_ns() >= m->next_tick) {
			opts->on_tick(opts->tick_ctx, m->stats);
			m->next_tick = pexec__mpi_now_ns() +
			               (uint64_t)(opts->tick_ms ? opts->tick_ms : 250) * 1000000u;
		}
		pexec__mpi_flush(m);
		if (receive(m)) {
			idle = 0;
			continue;
		}
		pexec__mpi_wait(m, m->cancelled ? -1 : opts->cancel_fd, &idle);
	}
}

/* The run's figures from every rank, and a reducing run's one value. */
static pexec_code finish_run(struct mpi *m)
{
	pexec_stats *stats = m->stats;
	pexec_code rc;

	for (int r = 0; r < m->nranks; r++) {
		stats->workers_started += m->peers[r].counters.workers_started;
		stats->workers_lost += m->peers[r].counters.workers_lost;
		stats->retried += m->peers[r].counters.retried;
		stats->timed_out += m->peers[r].counters.timed_out;
	}
	for (unsigned i = 0; i < WINDOW_CHUNKS; i++)
		if (m->slots[i].used)
			slot_free(m, &m->slots[i]);
	rc = m->stop;
	if (rc == PEXEC_OK && m->opts->reduce) {
		pexec_buf out;
		pexec_error why;

		pexec_buf_init(&out);
		if (pexec_instance_fold_take(m->fold, &out, &why)) {
			rc = pexec__coord_fail(m, PEXEC_ESTOPPED, "reduce failed in pexec: %s", why.msg);
		} else if (m->sink) {
			pexec_result r = {
				.index = stats->items, .ok = 1, .data = out.data, .len = out.len,
				.reduced = 1, .attempts = 1, .seconds = -1,
			};
			int s = m->sink(m->sink_ctx, &r, m->err);
			if (s < 0)
				rc = (pexec_code)-s;
		}
		pexec_buf_release(&out);
	}
	if (rc == PEXEC_OK && stats->failed)
		rc = PEXEC_EITEM;
	return rc;
}

/* A run's state set anew. */
static void start(struct mpi *m, const pexec_loaded_plugin *plugin, const pexec_opts *opts,
                  pexec_stats *stats, pexec_error *err)
{
	memset(stats, 0, sizeof(*stats));
	err->msg[0] = '\0';
	m->d = pexec_plugin_descriptor(plugin);
	m->opts = opts;
	m->next = NULL;
	m->sink = NULL;
	m->spans = NULL;
	m->stats = stats;
	m->err = err;
	m->stop = PEXEC_OK;
	m->source_done = 0;
	m->next_seq = m->deliver_seq = m->delivered = 0;
	m->next_index = 0;
	m->buffered = 0;
	m->next_tick = pexec__mpi_now_ns();
	m->fold = NULL;
	m->placing = 0;
	m->error_seq = UINT64_MAX;
	m->out_per_item = 0;
}

/* The run, once its source and sink are set: BEGIN (with `payload`), the
 * chunks out and their results in, the figures. */
static pexec_code coordinate(struct mpi *m, const char *payload, size_t len)
{
	pexec_code rc = await_hellos(m);

	if (!rc) {
		begin_run(m, payload, len);
		run_loop(m);
		rc = finish_run(m);
	}
	return rc;
}

pexec_code pexec__mpi_coordinate(void *ctx, const pexec_loaded_plugin *plugin,
                                 const pexec_opts *opts, pexec_next_fn next, void *next_ctx,
                                 pexec_result_fn sink, void *sink_ctx, pexec_stats *stats,
                                 pexec_error *err)
{
	struct mpi *m = ctx;
	pexec_stats local;
	pexec_code rc;

	start(m, plugin, opts, stats ? stats : &local, err);
	m->next = next;
	m->next_ctx = next_ctx;
	m->sink = sink;
	m->sink_ctx = sink_ctx;
	rc = refuse(m);
	if (!rc && opts->reduce && (rc = pexec_instance_open(plugin, opts->config, &m->fold, err)))
		m->stop = rc;
	if (!rc)
		rc = coordinate(m, NULL, 0);
	pexec_instance_close(m->fold);
	m->fold = NULL;
	return rc;
}

pexec_code pexec__mpi_coordinate_spans(void *ctx, const pexec_loaded_plugin *plugin,
                                       const pexec_opts *opts, const pexec_spans *spans,
                                       pexec_stats *stats, pexec_error *err)
{
	struct mpi *m = ctx;
	pexec_stats local;
	char *payload = NULL;
	size_t len = 0;
	pexec_code rc;

	start(m, plugin, opts, stats ? stats : &local, err);
	m->spans = spans;
	rc = refuse(m);
	if (!rc && pexec__mpi_spans_begin(m, &payload, &len))
		rc = pexec__coord_fail(m, PEXEC_ESYS, "out of memory");
	if (!rc)
		rc = coordinate(m, payload, len);
	free(payload);
	pexec__mpi_spans_end(m);
	return rc;
}
