/*
 * server.c - a pool served over a byte stream (remote.h): the process each
 * pexec-mpi rank forks before MPI_Init, which runs the rank's workers.  It
 * is built on libpexec's public API alone.
 *
 * A run is pexec_run() with a source that reads CHUNK messages from the
 * socket and never blocks (PEXEC_NEXT_WAIT while nothing has come), and a
 * sink that answers each chunk with one RESULTS message once the chunk's last
 * item is in.  The pool runs in order, so chunks complete first in, first
 * out.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pexec.h"
#include "server.h"

pexec_code pexec__mpi_fail(pexec_error *err, pexec_code code, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

int pexec__mpi_pwrite_all(int fd, const char *buf, size_t len, uint64_t offset)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, (off_t)offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		buf += n;
		offset += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int pexec__msg_valid(const struct pexec__msg *h)
{
	return h->type >= PEXEC__MSG_BEGIN && h->type < PEXEC__MSG_LAST &&
	       h->len <= PEXEC__MSG_MAX;
}

/* Writes all of it; the socket is non-blocking, so a full one is waited on. */
int pexec__server_send_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -1;
			if (poll(&(struct pollfd){ .fd = fd, .events = POLLOUT }, 1, -1) < 0 &&
			    errno != EINTR)
				return -1;
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int pexec__server_send(int fd, uint32_t type, uint32_t count, uint64_t seq, uint64_t first,
                       const void *payload, size_t len)
{
	struct pexec__msg h = { type, count, seq, first, len };

	if (pexec__server_send_all(fd, &h, sizeof(h)))
		return -1;
	return len ? pexec__server_send_all(fd, payload, len) : 0;
}

int pexec__msg_take(const char *buf, size_t len, size_t *at, struct pexec__msg *h,
                    const char **payload)
{
	size_t have = len - *at;

	if (have < PEXEC__MSG_HEADER)
		return 0;
	memcpy(h, buf + *at, sizeof(*h));
	if (!pexec__msg_valid(h))
		return -1;
	if (have - PEXEC__MSG_HEADER < h->len)
		return 0;
	*payload = buf + *at + PEXEC__MSG_HEADER;
	*at += PEXEC__MSG_HEADER + h->len;
	return 1;
}

int pexec__server_take(struct server *s, struct pexec__msg *h, const char **payload)
{
	return pexec__msg_take(s->in.data, s->in.len, &s->in_at, h, payload);
}

int pexec__server_fill(struct server *s, int block)
{
	ssize_t n;

	if (s->in_at) {
		memmove(s->in.data, s->in.data + s->in_at, s->in.len - s->in_at);
		s->in.len -= s->in_at;
		s->in_at = 0;
	}
	if (pexec_buf_reserve(&s->in, 1 << 16))
		return -1;
	for (;;) {
		n = read(s->fd, s->in.data + s->in.len, s->in.cap - s->in.len);
		if (n > 0) {
			s->in.len += (size_t)n;
			return 1;
		}
		if (n == 0)
			return -1;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN || !block)
			return errno == EAGAIN ? 0 : -1;
		if (poll(&(struct pollfd){ .fd = s->fd, .events = POLLIN }, 1, -1) < 0 &&
		    errno != EINTR)
			return -1;
	}
}

int pexec__server_next(struct server *s, struct pexec__msg *h, const char **payload)
{
	for (;;) {
		int got = pexec__server_take(s, h, payload);
		if (got > 0)
			return 1;
		if (got < 0)
			return PEXEC__SERVER_MALFORMED;
		got = pexec__server_fill(s, 0);
		if (got <= 0)
			return got < 0 ? PEXEC__SERVER_LOST : 0;
	}
}

int pexec__server_next_failed(int got, pexec_error *err)
{
	return -(int)pexec__mpi_fail(err, PEXEC_ESYS, got == PEXEC__SERVER_LOST
	                             ? "lost the connection to pexec-mpi"
	                             : "malformed message from pexec-mpi");
}

int pexec__server_push_segment(struct server *s, const struct pexec__msg *h)
{
	if (s->segs_head + s->segs_len == s->segs_cap) {
		if (s->segs_head > 0) {
			memmove(s->segs, s->segs + s->segs_head, s->segs_len * sizeof(*s->segs));
			s->segs_head = 0;
		} else {
			size_t cap = s->segs_cap ? s->segs_cap * 2 : 16;
			struct segment *n = realloc(s->segs, cap * sizeof(*n));
			if (!n)
				return -1;
			s->segs = n;
			s->segs_cap = cap;
		}
	}
	s->segs[s->segs_head + s->segs_len++] = (struct segment){
		.seq = h->seq, .first = h->first, .local_first = s->local_next, .count = h->count,
	};
	s->local_next += h->count;
	return 0;
}

/* The pool's source: the items of the CHUNK messages, in order. */
static int serve_next(void *ctx, const char **data, size_t *len, pexec_error *err)
{
	struct server *s = ctx;
	struct pexec__msg h;
	const char *payload;
	uint32_t n;
	int got;

	if (s->cut) {
		/* A partial result must not take items of two of our chunks. */
		s->cut = 0;
		return PEXEC_NEXT_BOUNDARY;
	}
	while (s->cur_left == 0) {
		if (s->ended)
			return 0;
		got = pexec__server_next(s, &h, &payload);
		if (got == 0)
			return PEXEC_NEXT_WAIT;
		if (got < 0)
			return pexec__server_next_failed(got, err);
		switch (h.type) {
		case PEXEC__MSG_CHUNK:
			if (h.count == 0)
				continue;
			if (pexec__server_push_segment(s, &h))
				return -(int)pexec__mpi_fail(err, PEXEC_ESYS, "out of memory");
			s->cur = payload;
			s->cur_end = payload + h.len;
			s->cur_left = h.count;
			break;
		case PEXEC__MSG_END:
			s->ended = 1;
			return 0;
		case PEXEC__MSG_STOP:
			return -(int)pexec__mpi_fail(err, PEXEC_ECANCELED, "stopped by pexec-mpi");
		default:
			return -(int)pexec__mpi_fail(err, PEXEC_ESYS, "unexpected message %u in a run",
			                    (unsigned)h.type);
		}
	}
	if ((size_t)(s->cur_end - s->cur) < sizeof(n))
		goto torn;
	memcpy(&n, s->cur, sizeof(n));
	if ((size_t)(s->cur_end - s->cur) - sizeof(n) < n)
		goto torn;
	*data = s->cur + sizeof(n);
	*len = n;
	s->cur += sizeof(n) + n;
	if (--s->cur_left == 0 && s->fold)
		s->cut = 1;
	return 1;
torn:
	return -(int)pexec__mpi_fail(err, PEXEC_ESYS, "malformed chunk from pexec-mpi");
}

#define RECORD_HEAD 8u
#define RECORD_META 24u

int pexec__record_put(pexec_buf *out, const struct pexec__record *rec, const char *data)
{
	unsigned char b[RECORD_HEAD + RECORD_META];
	uint8_t flags = rec->flags & (PEXEC__REC_OK | PEXEC__REC_PARTIAL);
	size_t n = RECORD_HEAD;

	if (!(flags & PEXEC__REC_OK) || rec->attempts != 1 || rec->pid != 0 || rec->seconds >= 0) {
		flags |= PEXEC__REC_META;
		memcpy(b + 8, &rec->attempts, 4);
		memcpy(b + 12, &rec->pid, 4);
		memcpy(b + 16, &rec->started, 8);
		memcpy(b + 24, &rec->seconds, 8);
		n += RECORD_META;
	}
	memcpy(b, &rec->len, 4);
	b[4] = flags;
	b[5] = rec->stage;
	b[6] = rec->status;
	b[7] = 0;
	if (pexec_buf_append(out, b, n))
		return -1;
	return rec->len ? pexec_buf_append(out, data, rec->len) : 0;
}

int pexec__record_get(const char **p, const char *end, struct pexec__record *rec,
                      const char **data)
{
	const char *q = *p;

	if ((size_t)(end - q) < RECORD_HEAD)
		return -1;
	memcpy(&rec->len, q, 4);
	rec->flags = (uint8_t)q[4];
	rec->stage = (uint8_t)q[5];
	rec->status = (uint8_t)q[6];
	q += RECORD_HEAD;
	if (rec->flags & PEXEC__REC_META) {
		if ((size_t)(end - q) < RECORD_META)
			return -1;
		memcpy(&rec->attempts, q, 4);
		memcpy(&rec->pid, q + 4, 4);
		memcpy(&rec->started, q + 8, 8);
		memcpy(&rec->seconds, q + 16, 8);
		q += RECORD_META;
	} else {
		rec->attempts = 1;
		rec->pid = 0;
		rec->started = 0;
		rec->seconds = -1;
	}
	if ((size_t)(end - q) < rec->len)
		return -1;
	*data = q;
	*p = q + rec->len;
	return 0;
}

/* Empty records for the head chunk's successes up to item `upto` of it,
 * folded but not handed over one by one (--reduce). */
static int placeholders(struct server *s, struct segment *g, uint32_t upto)
{
	const struct pexec__record ok = {
		.flags = PEXEC__REC_OK, .status = PEXEC_STATUS_OK, .attempts = 1, .seconds = -1,
	};

	for (; g->emitted < upto; g->emitted++)
		if (pexec__record_put(&s->out, &ok, NULL))
			return -1;
	return 0;
}

/* Starts the head chunk's RESULTS message if it is not yet begun. */
static int begin_results(struct server *s)
{
	if (s->out.len == 0) {
		if (pexec_buf_reserve(&s->out, PEXEC__MSG_HEADER))
			return -1;
		s->out.len = PEXEC__MSG_HEADER;
	}
	return 0;
}

/* The head chunk is complete: its RESULTS go out.  Returns 0, or a
 * pexec_code with `err` filled. */
static pexec_code finish_segment(struct server *s, pexec_error *err)
{
	struct segment *g = &s->segs[s->segs_head];
	struct pexec__msg h = { PEXEC__MSG_RESULTS, g->count, g->seq, g->first, 0 };

	if (begin_results(s) || placeholders(s, g, g->count))
		return pexec__mpi_fail(err, PEXEC_ESYS, "out of memory");
	if (s->fold) {
		struct pexec__record rec = {
			.flags = PEXEC__REC_OK | PEXEC__REC_PARTIAL, .status = PEXEC_STATUS_OK,
			.attempts = 1, .seconds = -1,
		};
		pexec_buf part;
		pexec_error why;
		int bad;

		pexec_buf_init(&part);
		if (pexec_instance_fold_take(s->fold, &part, &why)) {
			pexec_buf_release(&part);
			return pexec__mpi_fail(err, PEXEC_ESTOPPED, "reduce failed in pexec: %s", why.msg);
		}
		rec.len = (uint32_t)part.len;
		bad = pexec__record_put(&s->out, &rec, part.data);
		pexec_buf_release(&part);
		if (bad)
			return pexec__mpi_fail(err, PEXEC_ESYS, "out of memory");
	}
	h.len = s->out.len - PEXEC__MSG_HEADER;
	memcpy(s->out.data, &h, sizeof(h));
	if (pexec__server_send_all(s->fd, s->out.data, s->out.len))
		return pexec__mpi_fail(err, PEXEC_ESYS, "lost the connection to pexec-mpi: %s",
		                       strerror(errno));
	s->out.len = 0;
	s->segs_head++;
	s->segs_len--;
	return 0;
}

/* Adds the record of the run's item `index` (which is in the head chunk).
 * Returns 0, or a pexec_code with `err` filled. */
static pexec_code add_result(struct server *s, uint64_t index, const struct pexec__record *rec,
                             const char *data, pexec_error *err)
{
	struct segment *g;

	if (s->segs_len == 0 || index < s->segs[s->segs_head].local_first ||
	    index - s->segs[s->segs_head].local_first >= s->segs[s->segs_head].count)
		return pexec__mpi_fail(err, PEXEC_ESYS, "a result for no chunk");
	g = &s->segs[s->segs_head];
	if (begin_results(s) ||
	    placeholders(s, g, (uint32_t)(index - g->local_first)) ||
	    pexec__record_put(&s->out, rec, data))
		return pexec__mpi_fail(err, PEXEC_ESYS, "out of memory");
	g->emitted++;
	if (++g->done == g->count)
		return finish_segment(s, err);
	return 0;
}

static int serve_sink(void *ctx, const pexec_result *r, pexec_error *err)
{
	struct server *s = ctx;
	struct pexec__record rec;

	if (!r)
		return 0;
	rec = (struct pexec__record){
		.len = (uint32_t)(r->ok ? r->len : strlen(r->message)),
		.flags = r->ok ? PEXEC__REC_OK : 0,
		.stage = (uint8_t)r->stage,
		.status = (uint8_t)r->status,
		.attempts = r->attempts,
		.pid = r->pid,
		.started = r->started,
		.seconds = r->seconds,
	};
	return -(int)add_result(s, r->index, &rec, r->ok ? r->data : r->message, err);
}

static int serve_batch(void *ctx, uint64_t first, uint32_t count, const struct iovec *texts,
                       const struct iovec *inputs, pexec_error *err)
{
	struct server *s = ctx;
	struct pexec__record rec = {
		.flags = PEXEC__REC_OK, .status = PEXEC_STATUS_OK, .attempts = 1, .pid = 0,
		.started = 0, .seconds = -1,
	};

	(void)inputs;
	for (uint32_t k = 0; k < count; k++) {
		pexec_code rc;
		rec.len = (uint32_t)texts[k].iov_len;
		rc = add_result(s, first + k, &rec, texts[k].iov_base, err);
		if (rc)
			return -(int)rc;
	}
	return 0;
}

/* --reduce: a partial result from the pool, standing for `items` successes
 * of the head chunk (a partial of none is reduce's identity: nothing to do). */
static int serve_fold(void *ctx, uint32_t items, const char *data, size_t len,
                      pexec_error *err)
{
	struct server *s = ctx;
	struct segment *g;
	pexec_error why;

	if (items == 0)
		return 0;
	if (s->segs_len == 0)
		return -(int)pexec__mpi_fail(err, PEXEC_ESYS, "a partial result for no chunk");
	g = &s->segs[s->segs_head];
	if (pexec_instance_fold(s->fold, data, len, &why))
		return -(int)pexec__mpi_fail(err, PEXEC_ESTOPPED, "reduce failed in pexec: %s", why.msg);
	g->done += items;
	if (g->done > g->count)
		return -(int)pexec__mpi_fail(err, PEXEC_ESYS, "a partial result across chunks");
	if (g->done == g->count)
		return -(int)finish_segment(s, err);
	return 0;
}

void pexec__server_drain(int fd)
{
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

/* One run, from BEGIN to DONE. */
static int serve_run(struct server *s, const pexec_loaded_plugin *plugin, const pexec_opts *base,
                     unsigned flags)
{
	pexec_opts o = *base;
	pexec_stats stats;
	pexec_error err = { { 0 } };
	struct pexec__done done = { 0 };
	pexec_buf reply;
	pexec_code rc = PEXEC_OK;
	int failed;

	pexec__server_drain(s->cancel_fd); /* a STOP that came after the last run ended */
	s->flags = flags;
	s->ended = 0;
	s->cur_left = 0;
	s->segs_head = s->segs_len = 0;
	s->out.len = 0;
	/* Order, fail-fast and input bytes are the coordinator's business: here
	 * every chunk runs in order, to the end. */
	o.unordered = 0;
	o.fail_fast = 0;
	o.reduce = 0;
	o.result_input = 0;
	o.item_times = (flags & PEXEC__RUN_TIMES) != 0;
	o.source_fd = s->fd;
	o.cancel_fd = s->cancel_fd;
	o.on_tick = NULL;
	o.batch_sink = o.item_times ? NULL : serve_batch;
	o.batch_ctx = s;
	s->cut = 0;
	s->local_next = 0;
	memset(&stats, 0, sizeof(stats));
	if (base->reduce) {
		/* The pool's partial results come here, to be folded by chunk. */
		rc = pexec_instance_open(plugin, base->config, &s->fold, &err);
		o.reduce = 1;
		o.partial_sink = serve_fold;
		o.partial_ctx = s;
	}
	if (rc == PEXEC_OK)
		rc = pexec_run(plugin, &o, serve_next, s, serve_sink, s, &stats, &err);
	pexec_instance_close(s->fold);
	s->fold = NULL;
	done.workers_started = stats.workers_started;
	done.workers_lost = stats.workers_lost;
	done.retried = stats.retried;
	done.timed_out = stats.timed_out;
	pexec_buf_init(&reply);
	failed = pexec_buf_append(&reply, &done, sizeof(done)) ||
	         (rc != PEXEC_OK && rc != PEXEC_EITEM &&
	          pexec_buf_append(&reply, err.msg, strlen(err.msg)));
	if (!failed)
		failed = pexec__server_send(s->fd, PEXEC__MSG_DONE, 0, (uint64_t)rc, 0, reply.data,
		                            reply.len);
	pexec_buf_release(&reply);
	return failed ? -1 : 0;
}

int pexec__serve(const char *plugin, const char *plugin_dir, const pexec_opts *opts, int fd,
                 int cancel_fd)
{
	struct server s = { .fd = fd, .cancel_fd = cancel_fd, .out_fd = -1, .keep_fd = -1 };
	pexec_loaded_plugin *loaded = NULL;
	pexec_error err = { { 0 } };
	char host[256] = "?";
	struct pexec__msg h;
	const char *payload;
	pexec_code rc;
	int status = 1, got;
	unsigned jobs;
	long online;

	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    fcntl(cancel_fd, F_SETFL, fcntl(cancel_fd, F_GETFL) | O_NONBLOCK) < 0)
		return 1;
	gethostname(host, sizeof(host) - 1);
	rc = pexec_plugin_load(plugin, plugin_dir, &loaded, &err);
	if (rc) {
		pexec__server_send(fd, PEXEC__MSG_HELLO, 0, (uint64_t)rc, 0, err.msg, strlen(err.msg));
		return 1;
	}
	jobs = opts->serial ? 1 : opts->jobs ? opts->jobs : pexec_cpu_count();
	pexec_buf_init(&s.in);
	pexec_buf_init(&s.out);
	pexec_buf_init(&s.fails);
	online = sysconf(_SC_NPROCESSORS_ONLN);
	if (pexec__server_send(fd, PEXEC__MSG_HELLO, jobs, 0,
	                       (uint64_t)(online > 0 ? online : 1) << 32 | (uint32_t)getpid(), host,
	                       strlen(host)))
		goto out;
	for (;;) {
		got = pexec__server_take(&s, &h, &payload);
		if (got == 0) {
			if (pexec__server_fill(&s, 1) < 0)
				goto out;
			continue;
		}
		if (got < 0)
			goto out;
		if (h.type == PEXEC__MSG_QUIT) {
			status = 0;
			goto out;
		}
		if (h.type == PEXEC__MSG_BEGIN) {
			if ((h.count & PEXEC__RUN_SPANS)
			        ? pexec__server_run_spans(&s, loaded, opts, payload, h.len)
			        : serve_run(&s, loaded, opts, h.count))
				goto out;
		}
		/* Anything else between runs is left over from a stopped one. */
	}
out:
	pexec_buf_release(&s.in);
	pexec_buf_release(&s.out);
	pexec_buf_release(&s.fails);
	free(s.segs);
	free(s.held);
	free(s.unsynced);
	pexec_plugin_free(loaded);
	return status;
}
