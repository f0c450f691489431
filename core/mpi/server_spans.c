/*
 * server_spans.c - a rank's pool server in a run by spans (remote.h): the
 * SPAN messages are the spans of pexec_run_spans(), and each span's output
 * goes back in one SPAN_DONE.  Where this server may write the output file
 * itself (the probe file's token read back), it keeps each span's output
 * until the coordinator PLACEs it, writes it there, and says LANDED once
 * the bytes are on disk: the result bytes never cross to rank 0, and the
 * journal never counts a span another node still holds in its page cache.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

struct span_run {
	struct server *s;
	struct pexec__span_begin b;
	char *name, *out_path, *probe, *keep; /* copied: BEGIN's buffer moves */
};

/* ---- the run's set-up ---- */

static char *take_string(const char **p, const char *end, uint32_t len)
{
	char *str;

	if ((size_t)(end - *p) < len || !(str = malloc((size_t)len + 1)))
		return NULL;
	memcpy(str, *p, len);
	str[len] = '\0';
	*p += len;
	return str;
}

static int parse_begin(struct span_run *r, const char *payload, size_t len)
{
	const char *p = payload + sizeof(r->b), *end = payload + len;

	if (len < sizeof(r->b))
		return -1;
	memcpy(&r->b, payload, sizeof(r->b));
	r->name = take_string(&p, end, r->b.name_len);
	r->out_path = take_string(&p, end, r->b.out_path_len);
	r->probe = take_string(&p, end, r->b.probe_len);
	r->keep = take_string(&p, end, r->b.keep_len);
	return r->name && r->out_path && r->probe && r->keep && p == end ? 0 : -1;
}

/* Whether the probe file beside the output holds this run's token: then
 * the output this server opens by name is rank 0's own file. */
static int probe_matches(const struct span_run *r)
{
	unsigned char got[sizeof(r->b.token)];
	int fd = open(r->probe, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, got, sizeof(got));
	close(fd);
	return n == (ssize_t)sizeof(got) && !memcmp(got, r->b.token, sizeof(got));
}

/* Opens the output to write this server's spans into, where it can, with
 * the lock file held as every writer of it holds it (pexec_spans.keep_path);
 * otherwise the bytes go back to rank 0. */
static void open_output(struct span_run *r)
{
	struct server *s = r->s;
	struct flock lk = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 1, .l_len = 1 };

	if (!*r->out_path || !*r->probe || !probe_matches(r))
		return;
	if (*r->keep) {
		s->keep_fd = open(r->keep, O_RDWR | O_CLOEXEC);
		if (s->keep_fd < 0 || fcntl(s->keep_fd, F_OFD_SETLK, &lk) < 0) {
			if (s->keep_fd >= 0)
				close(s->keep_fd);
			s->keep_fd = -1;
			return;
		}
	}
	s->out_fd = open(r->out_path, O_WRONLY | O_CLOEXEC);
}

/* ---- the outputs this server writes ---- */

static int hold(struct server *s, uint64_t seq, const char *out, size_t len)
{
	char *copy = malloc(len ? len : 1);

	if (!copy)
		return -1;
	if (s->nheld == s->held_cap) {
		size_t cap = s->held_cap ? 2 * s->held_cap : 16;
		struct held *h = realloc(s->held, cap * sizeof(*h));
		if (!h) {
			free(copy);
			return -1;
		}
		s->held = h;
		s->held_cap = cap;
	}
	memcpy(copy, out, len);
	s->held[s->nheld++] = (struct held){ seq, copy, len };
	return 0;
}

static void drop_held(struct server *s)
{
	for (size_t i = 0; i < s->nheld; i++)
		free(s->held[i].bytes);
	s->nheld = 0;
}

/* ---- LANDED, once what was written is on disk ---- */

/* How long written spans may wait for one sync that lands them all: one
 * fdatasync a span would stall this server's pool on the disk. */
#define SYNC_EVERY_NS 50000000ull

static int note_unsynced(struct server *s, uint64_t seq)
{
	if (s->nunsynced == s->unsynced_cap) {
		size_t cap = s->unsynced_cap ? 2 * s->unsynced_cap : 16;
		uint64_t *u = realloc(s->unsynced, cap * sizeof(*u));
		if (!u)
			return -1;
		s->unsynced = u;
		s->unsynced_cap = cap;
	}
	s->unsynced[s->nunsynced++] = seq;
	return 0;
}

/* Syncs the output and says LANDED for every span written since the last
 * sync (with the sync's errno where it failed): always when `now` or when
 * the pool holds no span (nothing else would wake this server, and rank 0
 * may be waiting for these), else once SYNC_EVERY_NS has passed.  0, or -1
 * with the connection lost. */
static int land_written(struct server *s, int now)
{
	uint64_t t = pexec__mpi_now_ns();
	int error;

	if (!s->nunsynced || (!now && s->segs_len > 0 && t - s->synced_ns < SYNC_EVERY_NS))
		return 0;
	error = s->write_error;
	if (!error && fdatasync(s->out_fd))
		error = s->write_error = errno;
	s->synced_ns = t;
	for (size_t i = 0; i < s->nunsynced; i++)
		if (pexec__server_send(s->fd, PEXEC__MSG_LANDED, (uint32_t)error, s->unsynced[i], 0,
		                       NULL, 0))
			return -1;
	s->nunsynced = 0;
	return 0;
}

/* PLACE: a held output written at its offset; LANDED comes with the next
 * sync (land_written), or now where the write failed. */
static int on_place(struct server *s, const struct pexec__msg *h)
{
	size_t i = 0;
	int error = 0;
	struct held *x;

	while (i < s->nheld && s->held[i].seq != h->seq)
		i++;
	if (i == s->nheld)
		return -1;
	x = &s->held[i];
	if (s->write_error) {
		error = s->write_error;
	} else if (x->len > h->count &&
	           pexec__mpi_pwrite_all(s->out_fd, x->bytes + h->count, x->len - h->count,
	                                 h->first)) {
		error = s->write_error = errno;
	}
	free(x->bytes);
	*x = s->held[--s->nheld];
	if (error)
		return pexec__server_send(s->fd, PEXEC__MSG_LANDED, (uint32_t)error, h->seq, 0,
		                          NULL, 0);
	return note_unsynced(s, h->seq);
}

/* Handles the PLACE messages that have come, up to anything else (left
 * for the source).  0; 1 when something else is left read (the socket no
 * longer shows it); -1 with the connection lost. */
static int take_places(struct server *s)
{
	for (;;) {
		struct pexec__msg h;
		const char *payload;
		int got = pexec__server_next(s, &h, &payload);

		if (got < 0)
			return -1;
		if (got == 0)
			return land_written(s, 0) ? -1 : 0;
		if (h.type != PEXEC__MSG_PLACE) {
			s->in_at -= PEXEC__MSG_HEADER + h.len; /* left whole, for the source */
			return land_written(s, 0) ? -1 : 1;
		}
		if (on_place(s, &h))
			return -1;
	}
}

/* ---- pexec_spans's hooks ---- */

static int span_next(void *ctx, uint32_t want, pexec_span *span, pexec_error *err)
{
	struct span_run *r = ctx;
	struct server *s = r->s;
	struct pexec__span_wire w;
	struct pexec__msg h;
	const char *payload;
	int got;

	(void)want; /* rank 0 sizes the spans */
	if (s->ended)
		return 0;
	for (;;) {
		got = pexec__server_next(s, &h, &payload);
		if (got == 0 && land_written(s, 0))
			got = PEXEC__SERVER_LOST;
		if (got == 0)
			return PEXEC_NEXT_WAIT;
		if (got < 0)
			return pexec__server_next_failed(got, err);
		if (h.type == PEXEC__MSG_PLACE) {
			if (on_place(s, &h))
				return -(int)pexec__mpi_fail(err, PEXEC_ESYS, "a place for no span");
			if (land_written(s, 0))
				return -(int)pexec__mpi_fail(err, PEXEC_ESYS,
				                             "lost the connection to pexec-mpi");
			continue;
		}
		if (h.type == PEXEC__MSG_END) {
			s->ended = 1;
			return 0;
		}
		if (h.type == PEXEC__MSG_STOP) {
			s->stopped = 1;
			return -(int)pexec__mpi_fail(err, PEXEC_ECANCELED, "stopped by pexec-mpi");
		}
		if (h.type != PEXEC__MSG_SPAN || h.len < sizeof(w))
			return -(int)pexec__mpi_fail(err, PEXEC_ESYS, "unexpected message %u in a run",
			                             (unsigned)h.type);
		break;
	}
	memcpy(&w, payload, sizeof(w));
	if (pexec__server_push_segment(s, &h))
		return -(int)pexec__mpi_fail(err, PEXEC_ESYS, "out of memory");
	*span = (pexec_span){
		.data = payload + sizeof(w), .len = h.len - sizeof(w), .index = h.first,
		.offset = w.offset,
		.line = w.line, .line_start = w.line_start, .count = h.count, .first = w.first != 0,
		.last = w.last != 0,
	};
	return 1;
}

static int span_failed(void *ctx, const pexec_result *res, pexec_error *err)
{
	struct span_run *r = ctx;
	struct server *s = r->s;
	const struct segment *g = s->segs_len ? &s->segs[s->segs_head] : NULL;
	struct pexec__span_fail f;

	if (!g || res->index < g->first)
		return -(int)pexec__mpi_fail(err, PEXEC_ESYS, "a failure for no span");
	f = (struct pexec__span_fail){
		.pos = (uint32_t)(res->index - g->first), .status = (uint8_t)res->status,
		.stage = (uint8_t)res->stage, .attempts = res->attempts, .pid = res->pid,
		.started = res->started, .seconds = res->seconds,
		.message_len = (uint32_t)strlen(res->message), .input_len = (uint32_t)res->input_len,
	};
	if (pexec_buf_append(&s->fails, &f, sizeof(f)) ||
	    pexec_buf_append(&s->fails, res->message, f.message_len) ||
	    pexec_buf_append(&s->fails, res->input, f.input_len))
		return -(int)pexec__mpi_fail(err, PEXEC_ESYS, "out of memory");
	s->nfails++;
	return 0;
}

/* SPAN_DONE for the head span: its head, failures, an error's message, and
 * the output bytes unless they are held.  Returns 0, or -1. */
static int send_done(struct server *s, uint32_t count, const char *out, size_t len,
                     uint32_t written, uint64_t hash, const char *error)
{
	const struct segment *g = &s->segs[s->segs_head];
	size_t elen = error ? strlen(error) : 0;
	int held = !error && s->out_fd >= 0;
	struct pexec__span_done d = {
		.out_len = error ? 0 : len, .hash = hash, .written = written,
		.failures = s->nfails, .error_len = (uint32_t)elen,
		.flags = held ? PEXEC__SPAN_HELD : 0,
	};
	struct pexec__msg h = { PEXEC__MSG_SPAN_DONE, count, g->seq, g->first,
		                sizeof(d) + s->fails.len + elen + (held || error ? 0 : len) };

	if (held && hold(s, g->seq, out, len))
		return -1;
	if (pexec__server_send_all(s->fd, &h, sizeof(h)) ||
	    pexec__server_send_all(s->fd, &d, sizeof(d)) ||
	    pexec__server_send_all(s->fd, s->fails.data, s->fails.len) ||
	    pexec__server_send_all(s->fd, error, elen) ||
	    (!held && !error && pexec__server_send_all(s->fd, out, len)))
		return -1;
	s->fails.len = 0;
	s->nfails = 0;
	s->segs_head++;
	s->segs_len--;
	return 0;
}

static int span_put(void *ctx, uint64_t first, uint32_t count, const char *out, size_t len,
                    uint32_t written, uint64_t hash, pexec_error *err)
{
	struct span_run *r = ctx;
	struct server *s = r->s;

	if (!s->segs_len || s->segs[s->segs_head].first != first)
		return -(int)pexec__mpi_fail(err, PEXEC_ESYS, "output for no span");
	if (send_done(s, count, out, len, written, hash, NULL))
		return -(int)pexec__mpi_fail(err, PEXEC_ESYS, "lost the connection to pexec-mpi: %s",
		                             strerror(errno));
	return 0;
}

static int span_flush(void *ctx, const pexec_result *res, pexec_error *err)
{
	struct span_run *r = ctx;
	int got;

	(void)res;
	if ((got = take_places(r->s)) < 0)
		return -(int)pexec__mpi_fail(err, PEXEC_ESYS, "lost the connection to pexec-mpi");
	return got;
}

/* ---- the run ---- */

/* After the pool: the held outputs' places, until none is left or the run
 * is stopped, and every written one landed.  0, or -1 with the connection
 * lost. */
static int await_places(struct server *s)
{
	while (s->nheld > 0 && !s->stopped) {
		struct pexec__msg h;
		const char *payload;
		int got = pexec__server_take(s, &h, &payload);

		if (got == 0) {
			if (pexec__server_fill(s, 1) < 0)
				return -1;
			continue;
		}
		if (got < 0)
			return -1;
		if (h.type == PEXEC__MSG_STOP)
			s->stopped = 1;
		else if (h.type == PEXEC__MSG_PLACE && on_place(s, &h))
			return -1;
	}
	return land_written(s, 1);
}

static pexec_code run_pool(struct span_run *r, const pexec_loaded_plugin *plugin,
                           const pexec_opts *base, pexec_stats *stats, pexec_error *err)
{
	struct server *s = r->s;
	pexec_opts o = *base;
	pexec_spans sp = {
		.next = span_next, .put = span_put, .failed = span_failed, .flush = span_flush,
		.ctx = r, .input_fd = -1, .name = r->name, .in_format = (pexec_format)r->b.in_format,
		.out_format = (pexec_format)r->b.out_format, .drop_null = (int)r->b.drop_null,
		.hash = (int)r->b.hash, .out_fd = -1, .keep_fd = -1,
	};

	/* Order and fail-fast are the coordinator's business: here every span
	 * runs in order, to the end. */
	o.unordered = 0;
	o.fail_fast = 0;
	o.result_input = 0;
	o.item_times = 0;
	o.batch_sink = NULL;
	o.on_tick = NULL;
	o.source_fd = s->fd;
	o.cancel_fd = s->cancel_fd;
	return pexec_run_spans(plugin, &o, &sp, stats, err);
}

/* The run's end: the span malformed input stopped (its SPAN_DONE), the
 * held outputs placed (a stopped run's written ones landed), then DONE.
 * 0, or -1 with the connection lost. */
static int finish(struct server *s, pexec_code rc, const pexec_stats *stats,
                  const pexec_error *err)
{
	struct pexec__done done = {
		stats->workers_started, stats->workers_lost, stats->retried, stats->timed_out,
	};
	size_t mlen = rc != PEXEC_OK && rc != PEXEC_EITEM ? strlen(err->msg) : 0;
	char *reply;
	int bad;

	if (rc == PEXEC_EINPUT && s->segs_len > 0 && send_done(s, 0, NULL, 0, 0, 0, err->msg))
		return -1;
	if (rc == PEXEC_OK || rc == PEXEC_EITEM || rc == PEXEC_EINPUT ? await_places(s)
	                                                               : land_written(s, 1))
		return -1;
	drop_held(s);
	if (!(reply = malloc(sizeof(done) + mlen + 1)))
		return -1;
	memcpy(reply, &done, sizeof(done));
	memcpy(reply + sizeof(done), err->msg, mlen);
	bad = pexec__server_send(s->fd, PEXEC__MSG_DONE, 0, (uint64_t)rc, 0, reply,
	                         sizeof(done) + mlen);
	free(reply);
	return bad;
}

int pexec__server_run_spans(struct server *s, const pexec_loaded_plugin *plugin,
                            const pexec_opts *opts, const char *begin, size_t begin_len)
{
	struct span_run r = { .s = s };
	pexec_stats stats = { 0 };
	pexec_error err = { { 0 } };
	pexec_code rc;
	int bad;

	pexec__server_drain(s->cancel_fd); /* a STOP that came after the last run ended */
	s->flags = PEXEC__RUN_SPANS;
	s->ended = s->stopped = s->write_error = 0;
	s->nunsynced = 0;
	s->synced_ns = pexec__mpi_now_ns();
	s->segs_head = s->segs_len = 0;
	s->local_next = 0;
	s->fails.len = 0;
	s->nfails = 0;
	if (parse_begin(&r, begin, begin_len)) {
		rc = pexec__mpi_fail(&err, PEXEC_ESYS, "malformed BEGIN from pexec-mpi");
	} else {
		open_output(&r);
		rc = run_pool(&r, plugin, opts, &stats, &err);
	}
	bad = finish(s, rc, &stats, &err);
	if (s->out_fd >= 0)
		close(s->out_fd);
	if (s->keep_fd >= 0)
		close(s->keep_fd);
	s->out_fd = s->keep_fd = -1;
	free(r.name);
	free(r.out_path);
	free(r.probe);
	free(r.keep);
	return bad;
}
