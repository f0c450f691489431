/*
 * link.c - pexec-mpi's messages: to and from this rank's pool server
 * over its socket (non-blocking, buffered both ways), and to and from the
 * other ranks with non-blocking MPI only (Isend, Iprobe, Testsome), so that
 * no two ranks can wait on each other.  A process with nothing to do sleeps
 * in ppoll() for at most a millisecond between probes.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mpi_internal.h"

uint64_t pexec__mpi_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define TAG 7
/* Rank 0 probes the other ranks from IDLE_MIN_NS after its last message,
 * doubling to IDLE_MAX_NS.  A rank holds INFLIGHT_SECONDS (200 ms) of
 * work (coord.c), so a reply 1 ms late never idles it, and each wake-up
 * is a context switch that rank 0 pays: shorter steps cost CPU for no
 * speed. */
#define IDLE_MIN_NS 250000L
#define IDLE_MAX_NS 1000000L

/* ---- sending ---- */

int pexec__mpi_isend(struct mpi *m, int to, char *buf, size_t len)
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
void pexec__mpi_sends_progress(struct mpi *m)
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
void pexec__mpi_flush(struct mpi *m)
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
int pexec__mpi_send(struct mpi *m, int to, uint32_t type, uint32_t count, uint64_t seq,
                    uint64_t first, const void *payload, size_t len)
{
	struct pexec__msg h = { type, count, seq, first, len };
	char *buf;

	if (to == m->rank) {
		if (pexec_buf_append(&m->out, &h, sizeof(h)) ||
		    (len && pexec_buf_append(&m->out, payload, len)))
			return -1;
		pexec__mpi_flush(m);
		return 0;
	}
	buf = malloc(sizeof(h) + len);
	if (!buf)
		return -1;
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy(buf + sizeof(h), payload, len);
	return pexec__mpi_isend(m, to, buf, sizeof(h) + len);
}

int pexec__mpi_send_built(struct mpi *m, int to, char *buf, size_t len)
{
	int rc = 0;

	if (to != m->rank)
		return pexec__mpi_isend(m, to, buf, len);
	if (pexec_buf_append(&m->out, buf, len))
		rc = -1;
	free(buf);
	if (!rc)
		pexec__mpi_flush(m);
	return rc;
}

/* ---- receiving ---- */

/* Reads what the server has sent.  Returns 1 for bytes, 0 for none. */
int pexec__mpi_fill(struct mpi *m)
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
int pexec__mpi_take_local(struct mpi *m, struct pexec__msg *h, char **payload)
{
	const char *p;
	int got = pexec__msg_take(m->in.data, m->in.len, &m->in_at, h, &p);

	*payload = (char *)p;
	return got;
}

/* The next message from another rank (from rank `from`, or any): 1 with the
 * whole message in *buf (malloc'd: header then payload) and its sender in
 * *src, 0 for none, -1 malformed. */
int pexec__mpi_take_remote(int from, char **buf, int *src)
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
void pexec__mpi_wait(struct mpi *m, int extra, long *idle)
{
	struct pollfd fds[2] = {
		{ .fd = m->server_gone ? -1 : m->fd,
		  .events = POLLIN | (m->out_at < m->out.len ? POLLOUT : 0) },
		{ .fd = extra > 0 ? extra : -1, .events = POLLIN },
	};
	struct timespec ts = { 0, *idle };

	if (m->nranks == 1 && m->nsends == 0) {
		/* Nothing to probe: the socket and `extra` say when to wake. */
		poll(fds, 2, m->opts && m->opts->on_tick ? 50 : -1);
		return;
	}
	ppoll(fds, 2, &ts, NULL);
	*idle = *idle ? *idle * 2 : IDLE_MIN_NS;
	if (*idle > IDLE_MAX_NS)
		*idle = IDLE_MAX_NS;
}

/* Why this rank's server is gone (its socket reached EOF), once reaped. */
void pexec__mpi_server_death(struct mpi *m, char *buf, size_t size)
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
