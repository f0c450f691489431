/*
 * main.c - pexec-mpi: the pexec command across the ranks of an MPI job.
 *
 *   mpirun -np 4 build/pexec-mpi --plugin factorial -o out.json in.json
 *
 * Every rank forks a pool server (server.c) before MPI_Init, so that no
 * process that forks has MPI in it.  Rank 0 runs the whole pexec job (input,
 * journal, output, reports: pexec_job_run() and the command's main, as they
 * are) with the coordinator (coord.c) as the job's engine; the other ranks
 * relay between their server and rank 0 (below).  Messages: link.c.
 *
 * pexec-mpi uses libpexec through its public API only (pexec.h), and the
 * command's main through core/cli/cli.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mpi_internal.h"

/* ---- the other ranks: relays ---- */

/* Tells rank 0 this rank's server is gone, in the answer it waits for. */
static void report_death(struct mpi *m, int hello_seen, int in_run)
{
	struct pexec__done zero = { 0 };
	char why[200], msg[sizeof(zero) + sizeof(why)];
	size_t n;

	pexec__mpi_server_death(m, why, sizeof(why));
	n = strlen(why);
	if (!hello_seen) {
		pexec__mpi_send(m, 0, PEXEC__MSG_HELLO, 0, PEXEC_ESYS, 0, why, n);
	} else if (in_run) {
		memcpy(msg, &zero, sizeof(zero));
		memcpy(msg + sizeof(zero), why, n);
		pexec__mpi_send(m, 0, PEXEC__MSG_DONE, 0, PEXEC_ESYS, 0, msg, sizeof(zero) + n);
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

		while (!quit && (got = pexec__mpi_take_remote(0, &buf, &src)) != 0) {
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
			pexec__mpi_flush(m);
			if (pexec__mpi_fill(m))
				any = 1;
			while ((got = pexec__mpi_take_local(m, &h, &payload)) == 1) {
				if (h.type == PEXEC__MSG_HELLO)
					hello_seen = 1;
				if (h.type == PEXEC__MSG_DONE)
					in_run = 0;
				if (pexec__mpi_send(m, 0, h.type, h.count, h.seq, h.first, payload, h.len)) {
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
		pexec__mpi_sends_progress(m);
		if (any)
			idle = 0;
		else
			pexec__mpi_wait(m, -1, &idle);
	}
	while (m->nsends > 0) {
		struct timespec ts = { 0, 100000 };
		pexec__mpi_sends_progress(m);
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
			pexec_buf_release(&m->slots[i].msg);
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
	pexec_buf_release(&m->in);
	pexec_buf_release(&m->out);
	pexec_buf_release(&m->msgbuf);
	pexec_buf_release(&m->error_msg);
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
	pexec_buf_init(&m->in);
	pexec_buf_init(&m->out);
	pexec_buf_init(&m->msgbuf);
	pexec_buf_init(&m->error_msg);
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
		pexec_buf_init(&m->slots[i].msg);
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
		pexec__mpi_send(m, r, PEXEC__MSG_QUIT, 0, 0, 0, NULL, 0);
	while (m->out_at < m->out.len && !m->server_gone) {
		long idle = 200000;
		pexec__mpi_wait(m, -1, &idle);
		pexec__mpi_flush(m);
	}
	while (m->nsends > 0) {
		struct timespec ts = { 0, 100000 };
		pexec__mpi_sends_progress(m);
		/* Answers still on their way (HELLOs of a job that never ran). */
		char *buf;
		int src;
		while (m->nranks > 1 && pexec__mpi_take_remote(MPI_ANY_SOURCE, &buf, &src) != 0)
			free(buf);
		nanosleep(&ts, NULL);
	}
	MPI_Finalize();
	end_server(m);
	release_all(m);
	return status;
}

/* The rank this process will be, from the launcher's environment, before
 * MPI_Init: -1 when unknown, -2 (said on stderr) when a variable holds
 * something that is not a rank: a rank read from garbage would be 0, the
 * one that speaks. */
static int launcher_rank(void)
{
	static const char *const vars[] = {
		"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID",
	};

	for (size_t i = 0; i < sizeof(vars) / sizeof(*vars); i++) {
		const char *v = getenv(vars[i]);
		char *end;
		long rank;

		if (!v || !*v)
			continue;
		errno = 0;
		rank = strtol(v, &end, 10);
		if (*end || errno || rank < 0 || rank > INT32_MAX) {
			fprintf(stderr, "pexec-mpi: %s is '%s', not a rank: is this mpirun's?\n",
			        vars[i], v);
			return -2;
		}
		return (int)rank;
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct mpi m = { .fd = -1, .cancel_w = -1, .saved_stderr = -1 };
	struct pexec__cli_engine engine = {
		.name = "pexec-mpi", .start = on_start, .run = pexec__mpi_coordinate,
		.run_spans = pexec__mpi_coordinate_spans, .ctx = &m,
		.finish = on_finish,
	};
	int rank = launcher_rank();

	/* Every rank parses the same options; only rank 0 says what is wrong
	 * with them. */
	if (rank == -2)
		return 2;
	if (rank > 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		m.saved_stderr = fcntl(2, F_DUPFD_CLOEXEC, 3);
		if (null >= 0 && m.saved_stderr >= 0)
			dup2(null, 2);
		if (null >= 0)
			close(null);
	}
	return pexec__cli_main(argc, argv, &engine);
}
