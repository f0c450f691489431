/*
 * mpi.c - pexec-mpi: the pexec command across the ranks of an MPI job.
 *
 *   mpirun -np 4 build/pexec-mpi --plugin factorial -o out.json in.json
 *
 * Every rank forks a pool server (remote.c) before MPI_Init, so that no
 * process that forks has MPI in it, and relays between it and rank 0.  Rank
 * 0 runs the whole pexec job (input, journal, output, reports: job.c and
 * cli.c, unchanged) with the coordinator below as its engine: it hands chunks
 * to the ranks on demand, each rank's share sized to what it has been
 * finishing, and hands the results to the job in input order (or as they
 * come, --unordered).  Rank 0's own server is reached over its socket, the
 * others through MPI.
 *
 * MPI calls are non-blocking throughout (Isend, Iprobe, Testsome), so no two
 * ranks can wait on each other; a process with nothing to do sleeps in
 * ppoll() for at most a millisecond between probes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <mpi.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "remote.h"
#include "util.h"
#include "worker.h"

#define TAG 7
/* A chunk's share of a rank's time, and how much a rank keeps in hand. */
#define CHUNK_SECONDS 0.05
#define INFLIGHT_SECONDS 0.2
#define CHUNK_ITEMS_MAX 65536u
#define CHUNK_BYTES_MAX ((size_t)1 << 20)
/* How far the run may get ahead of its oldest unfinished chunk: chunks out,
 * and bytes held (their items, and results waiting to go out in order). */
#define WINDOW_CHUNKS 1024u
#define WINDOW_BYTES ((uint64_t)256 << 20)
#define IDLE_MAX_NS 1000000L

/* A rank's pool server, as rank 0 sees it. */
struct peer {
	unsigned jobs;       /* its workers */
	char host[64];
	int hello;           /* its HELLO came */
	int running;         /* BEGIN sent, DONE not yet back */
	uint64_t inflight;   /* items sent whose results are not back */
	uint64_t done_items; /* this run */
	uint64_t first_ns;   /* when this run's first chunk went */
	struct pexec__done counters;
};

/* A chunk handed out: its CHUNK message (kept for the items' bytes) and,
 * once back, its RESULTS payload. */
struct chunk {
	int used;
	int peer;
	uint64_t seq, first;
	uint32_t count;
	pexec_buf msg;
	char *results;
	size_t results_len;
};

/* An MPI send in flight and the buffer it owns. */
struct send {
	MPI_Request req;
	char *buf;
};

struct mpi {
	int rank, nranks;
	pid_t server;
	int fd;              /* the socket to this rank's server */
	int cancel_w;        /* its cancel pipe */
	int saved_stderr;    /* ranks other than 0 are quiet while options parse */

	pexec_buf in;        /* from the server, from in_at on not yet taken */
	size_t in_at;
	pexec_buf out;       /* to the server, from out_at on not yet written */
	size_t out_at;
	int server_gone;

	struct send *sends;
	size_t nsends, sends_cap;
	MPI_Request *reqs;   /* scratch for Testsome */
	int *done_idx;
	size_t reqs_cap;

	/* Rank 0: the peers (index: rank) and the run in progress. */
	struct peer *peers;
	int hellos;
	const pexec_descriptor *d;
	const pexec_opts *opts;
	pexec_next_fn next;
	void *next_ctx;
	pexec_result_fn sink;
	void *sink_ctx;
	pexec_stats *stats;
	pexec_error *err;
	pexec_code stop;
	int source_done;
	int cancelled;       /* a signal: remote ranks may be gone already */
	struct chunk *slots; /* by seq % WINDOW_CHUNKS */
	uint64_t next_seq, deliver_seq, delivered;
	uint64_t next_index;
	uint64_t buffered;   /* bytes held: chunks out, and results waiting for order */
	int running;         /* peers whose DONE is awaited */
	void *state, *acc;   /* --reduce */
	pexec_buf msgbuf;    /* failure messages, NUL-terminated */
	struct iovec *texts, *inputs; /* a run of successes for the batch sink */
	size_t iov_cap;
	int inited;          /* --reduce: init ran in this process */
	uint64_t next_tick;
	int warned_binding;
	/* For PEXEC_MPI_STATS: what rank 0 moved. */
	uint64_t chunks_out, bytes_out, bytes_in;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- sending ---- */

static int mpi_send(struct mpi *m, int to, char *buf, size_t len)
{
	struct send *s;

	if (m->nsends == m->sends_cap) {
		size_t cap = m->sends_cap ? m->sends_cap * 2 : 64;
		struct send *n = realloc(m->sends, cap * sizeof(*n));
		if (!n) {
			free(buf);
			return -1;
		}
		m->sends = n;
		m->sends_cap = cap;
	}
	s = &m->sends[m->nsends];
	s->buf = buf;
	if (MPI_Isend(buf, (int)len, MPI_BYTE, to, TAG, MPI_COMM_WORLD, &s->req) != MPI_SUCCESS) {
		free(buf);
		return -1;
	}
	m->nsends++;
	return 0;
}

/* Frees the buffers of the sends that have completed. */
static void sends_progress(struct mpi *m)
{
	int n = 0;

	if (m->nsends == 0)
		return;
	if (m->reqs_cap < m->nsends) {
		MPI_Request *r = realloc(m->reqs, m->nsends * sizeof(*r));
		int *d = r ? realloc(m->done_idx, m->nsends * sizeof(*d)) : NULL;
		if (r)
			m->reqs = r;
		if (!d)
			return;
		m->done_idx = d;
		m->reqs_cap = m->nsends;
	}
	for (size_t i = 0; i < m->nsends; i++)
		m->reqs[i] = m->sends[i].req;
	MPI_Testsome((int)m->nsends, m->reqs, &n, m->done_idx, MPI_STATUSES_IGNORE);
	if (n <= 0)
		return;
	for (int k = 0; k < n; k++) {
		free(m->sends[m->done_idx[k]].buf);
		m->sends[m->done_idx[k]].buf = NULL;
	}
	size_t w = 0;
	for (size_t i = 0; i < m->nsends; i++)
		if (m->sends[i].buf)
			m->sends[w++] = m->sends[i];
	m->nsends = w;
}

/* Writes what the server can take now. */
static void flush_out(struct mpi *m)
{
	while (m->out_at < m->out.len) {
		ssize_t n = send(m->fd, m->out.data + m->out_at, m->out.len - m->out_at,
		                 MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				m->server_gone = 1;
			return;
		}
		m->out_at += (size_t)n;
	}
	m->out.len = m->out_at = 0;
}

/* Sends a message to rank `to`'s server: the header, then the payload. */
static int send_msg(struct mpi *m, int to, uint32_t type, uint32_t count, uint64_t seq,
                    uint64_t first, const void *payload, size_t len)
{
	struct pexec__msg h = { type, count, seq, first, len };
	char *buf;

	if (to == m->rank) {
		if (pexec_buf_append(&m->out, &h, sizeof(h)) ||
		    (len && pexec_buf_append(&m->out, payload, len)))
			return -1;
		flush_out(m);
		return 0;
	}
	buf = malloc(sizeof(h) + len);
	if (!buf)
		return -1;
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), payload, len);
	return mpi_send(m, to, buf, sizeof(h) + len);
}

/* ---- receiving ---- */

/* Reads what the server has sent.  Returns 1 for bytes, 0 for none. */
static int fill_in(struct mpi *m)
{
	ssize_t n;

	if (m->in_at && m->in_at == m->in.len) {
		m->in.len = m->in_at = 0;
	} else if (m->in_at > (1u << 20)) {
		memmove(m->in.data, m->in.data + m->in_at, m->in.len - m->in_at);
		m->in.len -= m->in_at;
		m->in_at = 0;
	}
	if (pexec_buf_reserve(&m->in, 1 << 16))
		return 0;
	for (;;) {
		n = read(m->fd, m->in.data + m->in.len, m->in.cap - m->in.len);
		if (n > 0) {
			m->in.len += (size_t)n;
			return 1;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN)
			m->server_gone = 1;
		return 0;
	}
}

/* The next whole message from the server (pexec__msg_take). */
static int take_local(struct mpi *m, struct pexec__msg *h, char **payload)
{
	const char *p;
	int got = pexec__msg_take(m->in.data, m->in.len, &m->in_at, h, &p);

	*payload = (char *)p;
	return got;
}

/* The next message from another rank (from rank `from`, or any): 1 with the
 * whole message in *buf (malloc'd: header then payload) and its sender in
 * *src, 0 for none, -1 malformed. */
static int take_remote(int from, char **buf, int *src)
{
	MPI_Status st;
	int flag = 0, count = 0;
	struct pexec__msg h;

	MPI_Iprobe(from, TAG, MPI_COMM_WORLD, &flag, &st);
	if (!flag)
		return 0;
	MPI_Get_count(&st, MPI_BYTE, &count);
	*buf = malloc(count > 0 ? (size_t)count : 1);
	if (!*buf)
		return -1;
	MPI_Recv(*buf, count, MPI_BYTE, st.MPI_SOURCE, TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
	*src = st.MPI_SOURCE;
	if ((size_t)count < PEXEC__MSG_HEADER)
		return -1;
	memcpy(&h, *buf, sizeof(h));
	if (!pexec__msg_valid(&h) || h.len != (size_t)count - PEXEC__MSG_HEADER)
		return -1;
	return 1;
}

/* Sleeps until the server's socket (or `extra`) has something, or for the
 * idle step when other ranks must be probed.  `*idle` grows while nothing
 * happens and is reset by the caller when something does. */
static void wait_a_little(struct mpi *m, int extra, long *idle)
{
	struct pollfd fds[2] = {
		{ .fd = m->server_gone ? -1 : m->fd,
		  .events = POLLIN | (m->out_at < m->out.len ? POLLOUT : 0) },
		{ .fd = extra > 0 ? extra : -1, .events = POLLIN },
	};
	struct timespec ts = { 0, *idle };

	if (m->nranks == 1 && m->nsends == 0) {
		int ms = m->opts && m->opts->on_tick ? 50 : -1;
		if (poll(fds, 2, ms) < 0 && errno != EINTR)
			return;
		return;
	}
	ppoll(fds, 2, &ts, NULL);
	*idle = *idle ? *idle * 2 : 20000;
	if (*idle > IDLE_MAX_NS)
		*idle = IDLE_MAX_NS;
}

/* Why this rank's server is gone (its socket reached EOF), once reaped. */
static void server_death(struct mpi *m, char *buf, size_t size)
{
	int ws = 0;

	if (m->server > 0 && waitpid(m->server, &ws, 0) == m->server) {
		m->server = 0;
		if (WIFSIGNALED(ws))
			snprintf(buf, size, "its pool process was killed by signal %d (%s)",
			         WTERMSIG(ws), strsignal(WTERMSIG(ws)));
		else
			snprintf(buf, size, "its pool process exited with status %d", WEXITSTATUS(ws));
		return;
	}
	snprintf(buf, size, "its pool process closed its connection");
}

/* ---- the coordinator (rank 0) ---- */

static pexec_code fail(struct mpi *m, pexec_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Stops the run with `code` and a message, unless it is stopping already. */
static pexec_code fail(struct mpi *m, pexec_code code, const char *fmt, ...)
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

static const char *peer_name(struct mpi *m, int r, char *buf, size_t size)
{
	snprintf(buf, size, "rank %d (%s)", r, m->peers[r].hello ? m->peers[r].host : "?");
	return buf;
}

/* Items a rank should hold: what it finishes in INFLIGHT_SECONDS, at least
 * two per worker. */
static uint64_t peer_want(const struct peer *p, uint64_t now)
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
	uint64_t n = peer_want(p, now) * (uint64_t)(CHUNK_SECONDS * 1000) /
	             (uint64_t)(INFLIGHT_SECONDS * 1000);

	if (n < p->jobs)
		n = p->jobs;
	return n > CHUNK_ITEMS_MAX ? CHUNK_ITEMS_MAX : (uint32_t)n;
}

static struct chunk *slot(struct mpi *m, uint64_t seq)
{
	return &m->slots[seq % WINDOW_CHUNKS];
}

/* Builds the next chunk for peer `r` from the source and sends it.  Returns
 * 1 when one went, 0 when there was nothing to send. */
static int send_chunk(struct mpi *m, int r, uint64_t now)
{
	struct chunk *c = slot(m, m->next_seq);
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
			fail(m, PEXEC_EINPUT, "item %" PRIu64 " is larger than 4 GiB",
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
		flush_out(m);
	} else {
		char *copy = malloc(c->msg.len);
		if (!copy)
			goto nomem;
		memcpy(copy, c->msg.data, c->msg.len);
		if (mpi_send(m, r, copy, c->msg.len)) {
			fail(m, PEXEC_ESYS, "MPI_Isend to rank %d failed", r);
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
	fail(m, PEXEC_ESYS, "out of memory building a chunk");
	return 0;
}

/* Hands out chunks to the ranks that have room, the emptiest first. */
static void dispatch(struct mpi *m)
{
	uint64_t now = now_ns();

	while (!m->stop && !m->source_done) {
		int best = -1;
		double best_fill = 1.0;

		if (m->next_seq - m->deliver_seq >= WINDOW_CHUNKS || m->buffered > WINDOW_BYTES)
			return;
		for (int r = 0; r < m->nranks; r++) {
			struct peer *p = &m->peers[r];
			double f;
			if (!p->running)
				continue;
			f = (double)p->inflight / (double)peer_want(p, now);
			if (f < best_fill) {
				best_fill = f;
				best = r;
			}
		}
		if (best < 0 || !send_chunk(m, best, now))
			return;
	}
}

/* --reduce: folds a chunk's partial result. */
static void fold_partial(struct mpi *m, const char *data, size_t len)
{
	pexec_error why;

	if (!m->acc && pexec__fold_start(m->d, m->state, &m->acc, &why)) {
		fail(m, PEXEC_ESTOPPED, "reduce failed in pexec: %s", why.msg);
		return;
	}
	if (pexec__fold_text(m->d, m->state, &m->acc, data, len, &why))
		fail(m, PEXEC_ESTOPPED, "reduce failed in pexec: %s", why.msg);
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
			fail(m, PEXEC_ESYS, "out of memory");
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
			fail(m, PEXEC_ESYS, "out of memory");
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
			fail(m, PEXEC_ESTOPPED, "stopped at the first failure (--fail-fast): item %" PRIu64,
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
	fail(m, PEXEC_ESYS, "malformed results from %s", peer_name(m, c->peer, who, sizeof(who)));
}

/* Frees a chunk's slot; a buffer grown by a big chunk is not kept. */
static void slot_free(struct mpi *m, struct chunk *c)
{
	free(c->results);
	m->buffered -= c->results_len + c->msg.len;
	c->results = NULL;
	c->results_len = 0;
	c->used = 0;
	if (c->msg.cap > CHUNK_BYTES_MAX / 4)
		pexec__buf_release(&c->msg);
	c->msg.len = 0;
}

static void release(struct mpi *m, struct chunk *c)
{
	slot_free(m, c);
	m->delivered++;
}

static void on_results(struct mpi *m, int r, const struct pexec__msg *h, char *payload,
                       char *owned)
{
	struct chunk *c = slot(m, h->seq);
	struct peer *p = &m->peers[r];
	char who[96];

	if (!c->used || c->seq != h->seq || c->peer != r || c->count != h->count || c->results) {
		free(owned);
		fail(m, PEXEC_ESYS, "%s sent results for a chunk it does not hold",
		     peer_name(m, r, who, sizeof(who)));
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
			fail(m, PEXEC_ESYS, "out of memory");
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
		release(m, c);
		return;
	}
	while (!m->stop && m->deliver_seq < m->next_seq && slot(m, m->deliver_seq)->results) {
		struct chunk *d = slot(m, m->deliver_seq);
		deliver(m, d);
		release(m, d);
		m->deliver_seq++;
	}
}

static void on_done(struct mpi *m, int r, const struct pexec__msg *h, const char *payload)
{
	struct peer *p = &m->peers[r];
	pexec_code code = (pexec_code)h->seq;
	char who[96];

	if (!p->running)
		return;
	p->running = 0;
	m->running--;
	if (h->len >= sizeof(p->counters))
		memcpy(&p->counters, payload, sizeof(p->counters));
	if (code == PEXEC_OK || code == PEXEC_EITEM || (code == PEXEC_ECANCELED && m->stop))
		return;
	if (code == PEXEC_ECANCELED)
		code = PEXEC_ESYS;
	fail(m, code, "%s: %.*s", peer_name(m, r, who, sizeof(who)),
	     (int)(h->len - (h->len >= sizeof(p->counters) ? sizeof(p->counters) : h->len)),
	     payload + (h->len >= sizeof(p->counters) ? sizeof(p->counters) : h->len));
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
		fail(m, (pexec_code)h->seq, "rank %d: %.*s", r, (int)h->len, payload);
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

	switch (h->type) {
	case PEXEC__MSG_HELLO:
		on_hello(m, r, h, payload);
		break;
	case PEXEC__MSG_RESULTS:
		on_results(m, r, h, payload, owned);
		return;
	case PEXEC__MSG_DONE:
		on_done(m, r, h, payload);
		break;
	default:
		fail(m, PEXEC_ESYS, "unexpected message %u from %s", (unsigned)h->type,
		     peer_name(m, r, who, sizeof(who)));
	}
	free(owned);
}

/* Takes in what has come from the servers.  Returns whether anything did. */
static int receive(struct mpi *m)
{
	struct pexec__msg h;
	char *payload, *buf;
	int any = 0, got, src;

	fill_in(m);
	while ((got = take_local(m, &h, &payload)) == 1) {
		on_message(m, m->rank, &h, payload, NULL);
		any = 1;
	}
	if (got < 0)
		fail(m, PEXEC_ESYS, "malformed message from rank %d's pool", m->rank);
	if (m->server_gone && m->peers[m->rank].running) {
		char why[200];
		m->peers[m->rank].running = 0;
		m->running--;
		char who[96];
		server_death(m, why, sizeof(why));
		fail(m, PEXEC_ESYS, "%s: %s", peer_name(m, m->rank, who, sizeof(who)), why);
	}
	while (m->nranks > 1 && (got = take_remote(MPI_ANY_SOURCE, &buf, &src)) != 0) {
		any = 1;
		if (got < 0) {
			free(buf);
			fail(m, PEXEC_ESYS, "malformed message from rank %d", src);
			continue;
		}
		memcpy(&h, buf, sizeof(h));
		/* The payload is handed on alone: move it to the buffer's start so
		 * that a RESULTS payload can be kept (and freed) as it is. */
		memmove(buf, buf + PEXEC__MSG_HEADER, h.len);
		on_message(m, src, &h, buf, buf);
	}
	sends_progress(m);
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
		send_msg(m, r, PEXEC__MSG_STOP, 0, 0, 0, NULL, 0);
	}
}

/* Waits until every server has said HELLO (the first run only). */
static pexec_code await_hellos(struct mpi *m)
{
	long idle = 0;

	while (m->hellos < m->nranks && !m->stop) {
		if (receive(m))
			idle = 0;
		else if (m->server_gone)
			return fail(m, PEXEC_ESYS, "rank %d: its pool process ended before starting",
			            m->rank);
		else if (m->hellos < m->nranks)
			wait_a_little(m, m->opts->cancel_fd, &idle);
		if (m->opts->cancel_fd > 0 &&
		    poll(&(struct pollfd){ .fd = m->opts->cancel_fd, .events = POLLIN }, 1, 0) > 0)
			return fail(m, PEXEC_ECANCELED, "cancelled");
	}
	return m->stop;
}

static pexec_code coordinate(void *ctx, const pexec_loaded *plugin, const pexec_opts *opts,
                             pexec_next_fn next, void *next_ctx, pexec_result_fn sink,
                             void *sink_ctx, pexec_stats *stats, pexec_error *err)
{
	struct mpi *m = ctx;
	pexec_stats local;
	pexec_error why;
	long idle = 0;
	int stopping = 0;
	pexec_code rc;

	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	err->msg[0] = '\0';
	m->d = pexec_plugin_descriptor(plugin);
	m->opts = opts;
	m->next = next;
	m->next_ctx = next_ctx;
	m->sink = sink;
	m->sink_ctx = sink_ctx;
	m->stats = stats;
	m->err = err;
	m->stop = PEXEC_OK;
	m->source_done = 0;
	m->next_seq = m->deliver_seq = m->delivered = 0;
	m->next_index = 0;
	m->buffered = 0;
	m->acc = m->state = NULL;
	m->next_tick = now_ns();

	if (opts->reduce && !m->d->reduce)
		return fail(m, PEXEC_EUSAGE, "plugin '%s' has no reduce hook: --reduce needs one",
		            m->d->name);
	if (opts->reduce && !m->d->deserialize != !m->d->serialize)
		return fail(m, PEXEC_EUSAGE,
		            "plugin '%s' cannot reduce: partial results cross between processes "
		            "through serialize and deserialize, so it needs both or neither",
		            m->d->name);
	if (opts->reduce && opts->unordered)
		return fail(m, PEXEC_EUSAGE, "--reduce folds results in input order: drop --unordered");
	if (opts->serial && (opts->timeout > 0 || opts->retries || opts->memory_limit ||
	                     opts->max_tasks_per_worker))
		return fail(m, PEXEC_EUSAGE,
		            "--timeout, --retries, --memory-limit and --max-tasks-per-worker "
		            "need worker processes: drop --serial");
	if (opts->reduce) {
		if (pexec__plugin_init(m->d, opts->config, &m->state, &why))
			return fail(m, PEXEC_EINIT, "plugin '%s' init failed: %s", m->d->name,
			            why.msg);
		m->inited = 1;
	}
	rc = await_hellos(m);
	if (rc)
		goto out;

	for (int r = 0; r < m->nranks; r++) {
		struct peer *p = &m->peers[r];
		p->inflight = p->done_items = p->first_ns = 0;
		p->running = 1;
		memset(&p->counters, 0, sizeof(p->counters));
		send_msg(m, r, PEXEC__MSG_BEGIN, opts->item_times ? PEXEC__RUN_TIMES : 0, 0, 0, NULL,
		         0);
	}
	m->running = m->nranks;

	for (;;) {
		int ended;

		/* A signal first, before any result is taken as final. */
		if (opts->cancel_fd > 0 && !m->cancelled &&
		    poll(&(struct pollfd){ .fd = opts->cancel_fd, .events = POLLIN }, 1, 0) > 0) {
			m->cancelled = 1;
			m->stop = PEXEC_OK; /* a cancel overrides any other reason */
			fail(m, PEXEC_ECANCELED, "cancelled");
		}
		if (!m->stop)
			dispatch(m);
		ended = !m->stop && m->source_done && m->delivered == m->next_seq;
		if ((ended || m->stop) && !stopping) {
			stopping = 1;
			if (m->stop)
				stop_servers(m);
			else
				for (int r = 0; r < m->nranks; r++)
					send_msg(m, r, PEXEC__MSG_END, 0, 0, 0, NULL, 0);
		}
		if (stopping && m->running == 0)
			break;
		if (opts->on_tick && now_ns() >= m->next_tick) {
			opts->on_tick(opts->tick_ctx, stats);
			m->next_tick = now_ns() + (uint64_t)(opts->tick_ms ? opts->tick_ms : 250) * 1000000u;
		}
		if (m->stop && m->cancelled)
			stop_servers(m); /* forgets remote ranks */
		flush_out(m);
		if (receive(m)) {
			idle = 0;
			continue;
		}
		wait_a_little(m, m->cancelled ? -1 : opts->cancel_fd, &idle);
	}

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
	if (rc == PEXEC_OK && opts->reduce) {
		pexec_buf out;
		pexec__buf_init(&out);
		if ((!m->acc && pexec__fold_start(m->d, m->state, &m->acc, &why)) ||
		    pexec__fold_finish(m->d, m->state, &m->acc, &out, &why)) {
			rc = fail(m, PEXEC_ESTOPPED, "reduce failed in pexec: %s", why.msg);
		} else if (sink) {
			pexec_result r = {
				.index = stats->items, .ok = 1, .data = out.data, .len = out.len,
				.reduced = 1, .attempts = 1, .seconds = -1,
			};
			int s = sink(sink_ctx, &r, err);
			if (s < 0)
				rc = (pexec_code)-s;
		}
		pexec__buf_release(&out);
	}
	if (rc == PEXEC_OK && stats->failed)
		rc = PEXEC_EITEM;
out:
	if (m->inited) {
		pexec__fold_free(m->d, m->state, m->acc);
		pexec__plugin_fini(m->d, m->state);
		m->inited = 0;
	}
	m->acc = m->state = NULL;
	return rc;
}

/* ---- the other ranks: relays ---- */

/* Tells rank 0 this rank's server is gone, in the answer it waits for. */
static void report_death(struct mpi *m, int hello_seen, int in_run)
{
	struct pexec__done zero = { 0 };
	char why[200], msg[sizeof(zero) + sizeof(why)];
	size_t n;

	server_death(m, why, sizeof(why));
	n = strlen(why);
	if (!hello_seen) {
		send_msg(m, 0, PEXEC__MSG_HELLO, 0, PEXEC_ESYS, 0, why, n);
	} else if (in_run) {
		memcpy(msg, &zero, sizeof(zero));
		memcpy(msg + sizeof(zero), why, n);
		send_msg(m, 0, PEXEC__MSG_DONE, 0, PEXEC_ESYS, 0, msg, sizeof(zero) + n);
	}
}

/* Passes messages between rank 0 and this rank's server until QUIT.  A server
 * that dies is reported to rank 0, which ends the run with that message. */
static int relay(struct mpi *m)
{
	long idle = 0;
	int quit = 0, dead = 0, hello_seen = 0, in_run = 0;
	char *buf;
	int src, got;

	while (!quit || (!dead && m->out_at < m->out.len)) {
		int any = 0;
		struct pexec__msg h;
		char *payload;

		while (!quit && (got = take_remote(0, &buf, &src)) != 0) {
			any = 1;
			if (got < 0) {
				fprintf(stderr, "pexec-mpi: rank %d: malformed message from rank 0\n",
				        m->rank);
				MPI_Abort(MPI_COMM_WORLD, 3);
			}
			memcpy(&h, buf, sizeof(h));
			if (h.type == PEXEC__MSG_QUIT)
				quit = 1;
			if (dead) {
				if (h.type == PEXEC__MSG_BEGIN)
					report_death(m, 1, 1);
				free(buf);
				continue;
			}
			if (h.type == PEXEC__MSG_BEGIN)
				in_run = 1;
			if (h.type == PEXEC__MSG_STOP && write(m->cancel_w, "", 1) < 0) {
				/* full: a stop is pending already */
			}
			if (pexec_buf_append(&m->out, buf, PEXEC__MSG_HEADER + h.len)) {
				fprintf(stderr, "pexec-mpi: rank %d: out of memory\n", m->rank);
				MPI_Abort(MPI_COMM_WORLD, 3);
			}
			free(buf);
		}
		if (!dead) {
			flush_out(m);
			if (fill_in(m))
				any = 1;
			while ((got = take_local(m, &h, &payload)) == 1) {
				if (h.type == PEXEC__MSG_HELLO)
					hello_seen = 1;
				if (h.type == PEXEC__MSG_DONE)
					in_run = 0;
				if (send_msg(m, 0, h.type, h.count, h.seq, h.first, payload, h.len)) {
					fprintf(stderr, "pexec-mpi: rank %d: out of memory\n", m->rank);
					MPI_Abort(MPI_COMM_WORLD, 3);
				}
			}
			if (got < 0)
				m->server_gone = 1;
			if (m->server_gone) {
				dead = 1;
				any = 1;
				report_death(m, hello_seen, in_run);
				in_run = 0;
			}
		}
		sends_progress(m);
		if (any)
			idle = 0;
		else
			wait_a_little(m, -1, &idle);
	}
	while (m->nsends > 0) {
		struct timespec ts = { 0, 100000 };
		sends_progress(m);
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* ---- process set-up ---- */

/* Forks this rank's pool server; MPI is not yet initialised. */
static int start_server(struct mpi *m, const pexec_job *job)
{
	int sv[2], cancel[2];
	pid_t parent = getpid();

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	if (pipe2(cancel, O_CLOEXEC)) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	fflush(NULL);
	m->server = fork();
	if (m->server < 0)
		return -1;
	if (m->server == 0) {
		/* The server ends with this process, whatever ends it.  Ctrl-C and
		 * mpirun's SIGTERM are this process's to handle: the server and its
		 * workers leave its process group, or a worker killed by the same
		 * signal would read as a failed item before rank 0 stops the run. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		setpgid(0, 0);
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		/* A write to a dead worker or peer is an error to handle, as in
		 * pexec_run(); workers get SIGPIPE back at fork. */
		signal(SIGPIPE, SIG_IGN);
		close(sv[0]);
		close(cancel[1]);
		_exit(pexec__serve(job->plugin, job->plugin_dir, &job->opts, sv[1], cancel[0]));
	}
	close(sv[1]);
	close(cancel[0]);
	m->fd = sv[0];
	m->cancel_w = cancel[1];
	if (fcntl(m->fd, F_SETFL, O_NONBLOCK) || fcntl(m->cancel_w, F_SETFL, O_NONBLOCK))
		return -1;
	return 0;
}

/* Frees what this process allocated (the sends have all completed). */
static void release_all(struct mpi *m)
{
	if (m->slots) {
		for (unsigned i = 0; i < WINDOW_CHUNKS; i++) {
			pexec__buf_release(&m->slots[i].msg);
			free(m->slots[i].results);
		}
	}
	free(m->slots);
	free(m->peers);
	free(m->sends);
	free(m->reqs);
	free(m->done_idx);
	free(m->texts);
	free(m->inputs);
	pexec__buf_release(&m->in);
	pexec__buf_release(&m->out);
	pexec__buf_release(&m->msgbuf);
	m->slots = NULL;
	m->peers = NULL;
	m->sends = NULL;
}

static void end_server(struct mpi *m)
{
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	if (m->server > 0) {
		waitpid(m->server, NULL, 0);
		m->server = 0;
	}
}

static int on_start(void *ctx, const pexec_job *job)
{
	struct mpi *m = ctx;
	int provided, status;

	if (m->saved_stderr >= 0) {
		dup2(m->saved_stderr, 2);
		close(m->saved_stderr);
		m->saved_stderr = -1;
	}
	if (start_server(m, job)) {
		fprintf(stderr, "pexec-mpi: cannot start the pool process: %s\n", strerror(errno));
		return 3;
	}
	if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS) {
		fprintf(stderr, "pexec-mpi: MPI_Init failed\n");
		return 3;
	}
	MPI_Comm_rank(MPI_COMM_WORLD, &m->rank);
	MPI_Comm_size(MPI_COMM_WORLD, &m->nranks);
	pexec__buf_init(&m->in);
	pexec__buf_init(&m->out);
	pexec__buf_init(&m->msgbuf);
	if (m->rank != 0) {
		status = relay(m);
		MPI_Finalize();
		end_server(m);
		release_all(m);
		return status;
	}
	m->peers = calloc((size_t)m->nranks, sizeof(*m->peers));
	m->slots = calloc(WINDOW_CHUNKS, sizeof(*m->slots));
	if (!m->peers || !m->slots) {
		fprintf(stderr, "pexec-mpi: out of memory\n");
		MPI_Abort(MPI_COMM_WORLD, 3);
	}
	for (unsigned i = 0; i < WINDOW_CHUNKS; i++)
		pexec__buf_init(&m->slots[i].msg);
	return -1;
}

/* PEXEC_MPI_STATS=1: rank 0's own cost, to size a cluster with (bench/). */
static void print_stats(const struct mpi *m)
{
	struct rusage ru;
	const char *env = getenv("PEXEC_MPI_STATS");

	if (!env || strcmp(env, "1") || getrusage(RUSAGE_SELF, &ru))
		return;
	fprintf(stderr, "pexec-mpi: stats: ranks %d; rank 0 cpu user %.3f s sys %.3f s; "
	        "chunks %" PRIu64 "; bytes out %" PRIu64 " in %" PRIu64 "\n", m->nranks,
	        (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
	        (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6, m->chunks_out,
	        m->bytes_out, m->bytes_in);
}

static int on_finish(void *ctx, pexec_code rc, int status)
{
	struct mpi *m = ctx;

	print_stats(m);
	if (rc == PEXEC_ECANCELED) {
		/* mpirun ends every rank with SIGTERM when one fails or on Ctrl-C;
		 * the others may be gone, so no goodbyes. */
		kill(m->server, SIGKILL);
		end_server(m);
		release_all(m);
		return status;
	}
	for (int r = 0; r < m->nranks; r++)
		send_msg(m, r, PEXEC__MSG_QUIT, 0, 0, 0, NULL, 0);
	while (m->out_at < m->out.len && !m->server_gone) {
		long idle = 200000;
		wait_a_little(m, -1, &idle);
		flush_out(m);
	}
	while (m->nsends > 0) {
		struct timespec ts = { 0, 100000 };
		sends_progress(m);
		/* Answers still on their way (HELLOs of a job that never ran). */
		char *buf;
		int src;
		while (m->nranks > 1 && take_remote(MPI_ANY_SOURCE, &buf, &src) != 0)
			free(buf);
		nanosleep(&ts, NULL);
	}
	MPI_Finalize();
	end_server(m);
	release_all(m);
	return status;
}

/* The rank this process will be, from the launcher's environment, before
 * MPI_Init: -1 when unknown. */
static int launcher_rank(void)
{
	static const char *const vars[] = {
		"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID",
	};

	for (size_t i = 0; i < sizeof(vars) / sizeof(*vars); i++) {
		const char *v = getenv(vars[i]);
		if (v && *v)
			return atoi(v);
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct mpi m = { .fd = -1, .cancel_w = -1, .saved_stderr = -1 };
	struct pexec__cli_engine engine = {
		.name = "pexec-mpi", .start = on_start, .run = coordinate, .ctx = &m,
		.finish = on_finish,
	};

	/* Every rank parses the same options; only rank 0 says what is wrong
	 * with them. */
	if (launcher_rank() > 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		m.saved_stderr = fcntl(2, F_DUPFD_CLOEXEC, 3);
		if (null >= 0 && m.saved_stderr >= 0)
			dup2(null, 2);
		if (null >= 0)
			close(null);
	}
	return pexec__cli_main(argc, argv, &engine);
}
