/*
 * report.c - failed items, progress, job log and summary for the pexec
 * command (report.h).
 *
 * The progress shows what is done, not what was read: items done and
 * failed, the percent of the input whose items are complete (the job's
 * bytes_done; the bytes read run ahead by everything in flight), the rate,
 * the elapsed time and an ETA from this run's share of the rest, as pv and
 * GNU parallel's --bar do.  On a terminal it is one line with a bar, fitted
 * to the terminal's width (read at each draw, so a resized window is
 * followed), redrawn in place (carriage return, erase line) at most five
 * times a second; anything else printed meanwhile clears it first.
 * --progress=plain prints the same figures as a plain line every few seconds
 * instead, for logs: no control code is ever written there, nor anywhere
 * without a terminal.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "report.h"
#include "suggest.h"

/* The live line at most this often, a plain line this often (seconds). */
#define REDRAW_S 0.2
#define PLAIN_S 5.0
/* A bar narrower than this is left out. */
#define BAR_MIN 10

static void clear_line(struct cli_report *r)
{
	if (r->drawn) {
		fputs("\r\033[K", stderr);
		r->drawn = 0;
	}
}

int cli_report_check_mode(struct cli_report *r)
{
	static const char *const modes[] = { "auto", "plain" };
	const char *near;

	if (!r->progress_mode || !strcmp(r->progress_mode, "auto") ||
	    !strcmp(r->progress_mode, "plain"))
		return 0;
	near = cli_closest(r->progress_mode, modes, 2);
	fprintf(stderr, "%s: invalid --progress '%s': expected auto or plain%s%s%s\n", r->prog,
	        r->progress_mode, near ? "; did you mean '" : "", near ? near : "",
	        near ? "'?" : "");
	return -1;
}

int cli_report_open(struct cli_report *r)
{
	int plain = r->progress_mode && !strcmp(r->progress_mode, "plain");

	r->progress = r->progress_asked && !plain && !r->quiet && isatty(2);
	r->plain = r->progress_asked && plain && !r->quiet;
	r->drawn_at = -1;
	if (r->joblog_path) {
		r->joblog = fopen(r->joblog_path, r->append ? "ae" : "we");
		/* Records go out whole, from r->pending (joblog_flush). */
		if (r->joblog)
			setvbuf(r->joblog, NULL, _IONBF, 0);
		pexec_buf_init(&r->pending);
		if (!r->joblog) {
			fprintf(stderr, "%s: cannot create '%s': %s\n", r->prog, r->joblog_path,
			        strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* A plugin's message says anything: on stderr its first line only, its
 * control characters and bytes that are not UTF-8 shown escaped, in one
 * write, so that it can neither forge a line of pexec's nor reach the
 * terminal as an escape sequence. */
void cli_report_failure(void *ctx, const pexec_result *res)
{
	struct cli_report *r = ctx;
	const char *msg = res->message ? res->message : "no message";
	pexec_buf line;

	if (r->quiet)
		return;
	clear_line(r);
	pexec_buf_init(&line);
	if (pexec_buf_printf(&line, "%s: item %" PRIu64 " failed in %s: ", r->prog, res->index,
	                     pexec_stage_str(res->stage)) == 0 &&
	    pexec_message_line(&line, msg, strlen(msg)) == 0 && pexec_buf_puts(&line, "\n") == 0)
		fwrite(line.data, 1, line.len, stderr);
	pexec_buf_release(&line);
}

/* Job log records held before they are written: whole lines, a few times a
 * second or when this much is held. */
#define JOBLOG_HOLD ((size_t)64 << 10)

/* Appends `len` bytes of `s` as a JSON string; -1 when out of memory. */
static int json_string(pexec_buf *b, const char *s, size_t len)
{
	return pexec_json_quote(b, s, len);
}

/* Writes the records held, whole: a reader following the file (tail -f)
 * never sees half of one. */
static void joblog_flush(struct cli_report *r)
{
	if (r->joblog && r->pending.len) {
		if (fwrite(r->pending.data, 1, r->pending.len, r->joblog) != r->pending.len)
			r->write_failed = 1;
		r->pending.len = 0;
	}
}

void cli_report_result(void *ctx, const pexec_result *res)
{
	struct cli_report *r = ctx;
	pexec_buf *b = &r->pending;
	int bad;

	if (!r->joblog)
		return;
	bad = pexec_buf_printf(b, "{\"index\":%" PRIu64 ",\"status\":\"%s\",\"attempts\":%u,"
	                       "\"pid\":%d", res->index, pexec_status_str(res->status),
	                       res->attempts, res->pid);
	if (!bad && res->started > 0)
		bad = pexec_buf_printf(b, ",\"start\":%.6f", res->started);
	if (!bad && res->seconds >= 0)
		bad = pexec_buf_printf(b, ",\"seconds\":%.6f", res->seconds);
	if (!bad && !res->ok) {
		/* The message's first line, and what follows it as detail. */
		const char *msg = res->message ? res->message : "";
		const char *nl = strchr(msg, '\n');

		bad = pexec_buf_printf(b, ",\"stage\":\"%s\",\"error\":",
		                       pexec_stage_str(res->stage)) ||
		      json_string(b, msg, nl ? (size_t)(nl - msg) : strlen(msg)) ||
		      (nl && (pexec_buf_puts(b, ",\"detail\":") ||
		              json_string(b, nl + 1, strlen(nl + 1))));
	}
	if (bad || pexec_buf_puts(b, "}\n"))
		r->write_failed = 1;
	if (b->len >= JOBLOG_HOLD)
		joblog_flush(r);
}

static void clock_text(double s, char *out, size_t size)
{
	unsigned long t = (unsigned long)(s + 0.5);

	if (t >= 3600)
		snprintf(out, size, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(out, size, "%lu:%02lu", t / 60, t % 60);
}

/* 1234567 -> "1,234,567" */
static void count_text(uint64_t n, char *out, size_t size)
{
	char digits[32];
	int len = snprintf(digits, sizeof(digits), "%" PRIu64, n), o = 0;

	for (int i = 0; i < len && (size_t)o + 2 < size; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			out[o++] = ',';
		out[o++] = digits[i];
	}
	out[o] = '\0';
}

static unsigned term_width(void)
{
	struct winsize ws;

	if (ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
		return ws.ws_col;
	return 80;
}

/* The figures of one progress line, as text. */
struct figures {
	char pct[8];     /* " 45%", or "" when the input's size is unknown */
	double frac;     /* of the input done, 0 to 1; -1: unknown */
	char rest[256];  /* "4,512 done, 3 failed | 812/s | 0:05 elapsed | ETA 0:06" */
};

static void figures_of(struct cli_report *r, const pexec_progress *p, struct figures *f)
{
	const pexec_stats *st = p->stats;
	char done[32], rate[32], el[32], eta[32] = "";

	count_text(st->ok + st->failed + p->skipped, done, sizeof(done));
	count_text((uint64_t)(r->rate + 0.5), rate, sizeof(rate));
	clock_text(p->elapsed, el, sizeof(el));
	f->pct[0] = '\0';
	f->frac = -1;
	if (p->bytes_total > 0) {
		uint64_t bytes = p->bytes_done < p->bytes_total ? p->bytes_done : p->bytes_total;
		/* This run's share of what was left when it began, for the ETA. */
		double left = (double)(p->bytes_total - r->first_bytes_done);
		double ours = bytes > r->first_bytes_done ? (double)(bytes - r->first_bytes_done) : 0;

		f->frac = (double)bytes / (double)p->bytes_total;
		snprintf(f->pct, sizeof(f->pct), "%3.0f%%", f->frac * 100);
		if (left > 0 && ours > 0)
			clock_text(p->elapsed * (left - ours) / ours, eta + 4, sizeof(eta) - 4);
		else
			snprintf(eta + 4, sizeof(eta) - 4, "--:--");
		memcpy(eta, "ETA ", 4);
	}
	snprintf(f->rest, sizeof(f->rest), "%s done, %" PRIu64 " failed | %s/s | %s elapsed%s%s",
	         done, st->failed, rate, el, eta[0] ? " | " : "", eta);
}

/* The live line, `width` columns at most: "pexec:  45% [===>   ] rest", the
 * bar filling what the text leaves; without it where that is too little. */
static void live_line(const struct cli_report *r, const struct figures *f, unsigned width,
                      char *line, size_t size)
{
	size_t head = strlen(r->prog) + 2 + strlen(f->pct), rest = strlen(f->rest);
	long bar = (long)width - 1 - (long)head - 4 - (long)rest;
	int n;

	if (f->frac >= 0 && bar >= BAR_MIN && (size_t)bar + head + rest + 8 < size) {
		long full = (long)(f->frac * (double)bar);
		char *b;

		n = snprintf(line, size, "%s: %s [", r->prog, f->pct);
		b = line + n;
		for (long i = 0; i < bar; i++)
			b[i] = i < full ? '=' : i == full ? '>' : ' ';
		snprintf(b + bar, size - (size_t)(b + bar - line), "] %s", f->rest);
	} else if (f->frac >= 0) {
		snprintf(line, size, "%s: %s | %s", r->prog, f->pct, f->rest);
	} else {
		snprintf(line, size, "%s: %s", r->prog, f->rest);
	}
	if (strlen(line) >= width)
		line[width - 1] = '\0';
}

void cli_report_progress(void *ctx, const pexec_progress *p)
{
	struct cli_report *r = ctx;

	joblog_flush(r); /* a few times a second: a follower sees them soon */
	uint64_t done = p->stats->ok + p->stats->failed + p->skipped;
	double dt = p->elapsed - r->last_elapsed;
	struct figures f;
	char line[1024];

	r->last = *p;
	r->final = *p->stats;
	r->last.stats = &r->final;
	if (!r->seen) {
		r->seen = 1;
		r->first_bytes_done = p->bytes_done;
		r->last_done = done;
	}
	if (p->done || !(r->progress || r->plain))
		return;
	if (dt > 0) {
		double now = (double)(done - r->last_done) / dt;
		r->rate = r->rate > 0 ? 0.7 * r->rate + 0.3 * now : now;
		r->last_done = done;
		r->last_elapsed = p->elapsed;
	}
	if (r->plain) {
		if (p->elapsed - r->plain_at < PLAIN_S)
			return;
		r->plain_at = p->elapsed;
		figures_of(r, p, &f);
		if (f.frac >= 0)
			fprintf(stderr, "%s: %s | %s\n", r->prog, f.pct, f.rest);
		else
			fprintf(stderr, "%s: %s\n", r->prog, f.rest);
		fflush(stderr);
		return;
	}
	if (r->drawn_at >= 0 && p->elapsed - r->drawn_at < REDRAW_S)
		return;
	r->drawn_at = p->elapsed;
	figures_of(r, p, &f);
	live_line(r, &f, term_width(), line, sizeof(line));
	fprintf(stderr, "\r\033[K%s", line);
	fflush(stderr);
	r->drawn = 1;
}

static const char *const kinds[] = { "error", "crashed", "exited", "killed", "timeout", "lost" };

/* CPU seconds (user + system) of this process, and of the processes it
 * has reaped (its workers, and theirs). */
static void cpu_seconds(double *self, double *children)
{
	struct rusage ru;

	*self = *children = 0;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		*self = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		        (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	if (getrusage(RUSAGE_CHILDREN, &ru) == 0)
		*children = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		            (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void summary_json(FILE *f, const struct cli_report *r, int exit_status)
{
	const pexec_stats *st = &r->final;
	double wall = r->last.elapsed, self, children;

	fprintf(f,
	        "{\"items\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64
	        ",\"failed_by\":{",
	        st->ok + st->failed + r->last.skipped, st->ok, st->failed);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		fprintf(f, "%s\"%s\":%" PRIu64, i ? "," : "", kinds[i], st->by_status[i + 1]);
	fprintf(f,
	        "},\"retried\":%" PRIu64 ",\"resumed\":%" PRIu64 ",\"wall_seconds\":%.6f,"
	        "\"items_per_second\":%.1f,\"workers_started\":%" PRIu64
	        ",\"workers_lost\":%" PRIu64 ",\"exit_status\":%d",
	        st->retried, r->last.skipped, wall,
	        wall > 0 ? (double)(st->ok + st->failed) / wall : 0.0, st->workers_started,
	        st->workers_lost, exit_status);
	/* What the run cost: pexec's own process, and its workers. */
	cpu_seconds(&self, &children);
	fprintf(f, ",\"cpu_seconds\":{\"pexec\":%.6f,\"workers\":%.6f}}\n", self, children);
}

int cli_report_close(struct cli_report *r, pexec_code rc, int exit_status)
{
	const pexec_stats *st = &r->final;
	int status = 0;

	(void)rc;
	clear_line(r);
	if (!r->quiet && (r->verbose || r->progress_asked)) {
		char items[32], ok[32], rate[32];
		double wall = r->last.elapsed;

		count_text(st->ok + st->failed + r->last.skipped, items, sizeof(items));
		count_text(st->ok, ok, sizeof(ok));
		count_text(wall > 0 ? (uint64_t)((double)(st->ok + st->failed) / wall) : 0, rate,
		           sizeof(rate));
		fprintf(stderr, "%s: %s items in %.2f s (%s/s): %s ok, %" PRIu64 " failed", r->prog,
		        items, wall, rate, ok, st->failed);
		if (st->failed) {
			const char *sep = " (";
			for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
				if (st->by_status[i + 1]) {
					fprintf(stderr, "%s%" PRIu64 " %s", sep, st->by_status[i + 1],
					        kinds[i]);
					sep = ", ";
				}
			fputc(')', stderr);
		}
		if (st->retried)
			fprintf(stderr, ", %" PRIu64 " retried", st->retried);
		if (r->last.skipped)
			fprintf(stderr, ", %" PRIu64 " taken from the interrupted run", r->last.skipped);
		fputc('\n', stderr);
	}
	if (r->summary_path) {
		FILE *f = fopen(r->summary_path, "we");
		if (!f) {
			fprintf(stderr, "%s: cannot create '%s': %s\n", r->prog, r->summary_path,
			        strerror(errno));
			status = -1;
		} else {
			summary_json(f, r, exit_status);
			if (fclose(f)) {
				fprintf(stderr, "%s: cannot write '%s': %s\n", r->prog, r->summary_path,
				        strerror(errno));
				status = -1;
			}
		}
	}
	joblog_flush(r);
	pexec_buf_release(&r->pending);
	if (r->joblog && (r->write_failed | ferror(r->joblog) | fclose(r->joblog))) {
		fprintf(stderr, "%s: cannot write '%s': %s\n", r->prog, r->joblog_path,
		        strerror(errno));
		status = -1;
	}
	r->joblog = NULL;
	return status;
}
