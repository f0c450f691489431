/*
 * report.c - failed items, progress, job log and summary for the pexec
 * command (report.h).
 *
 * The progress line is drawn only on a terminal, redrawn in place (carriage
 * return, erase line) and cut to the terminal's width so that it never wraps;
 * anything else printed meanwhile clears it first.  Without a terminal no
 * control code is ever written.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "report.h"

static void clear_line(struct cli_report *r)
{
	if (r->drawn) {
		fputs("\r\033[K", stderr);
		r->drawn = 0;
	}
}

int cli_report_open(struct cli_report *r)
{
	r->progress = r->progress_asked && !r->quiet && isatty(2);
	if (r->joblog_path) {
		r->joblog = fopen(r->joblog_path, r->append ? "ae" : "we");
		if (!r->joblog) {
			fprintf(stderr, "%s: cannot create '%s': %s\n", r->prog, r->joblog_path,
			        strerror(errno));
			return -1;
		}
	}
	return 0;
}

void cli_report_failure(void *ctx, const pexec_result *res)
{
	struct cli_report *r = ctx;

	if (r->quiet)
		return;
	clear_line(r);
	fprintf(stderr, "%s: item %" PRIu64 " failed in %s: %s\n", r->prog, res->index,
	        pexec_stage_str(res->stage), res->message ? res->message : "no message");
}

/* Writes `s` as a JSON string. */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void cli_report_result(void *ctx, const pexec_result *res)
{
	struct cli_report *r = ctx;
	FILE *f = r->joblog;

	if (!f)
		return;
	fprintf(f, "{\"index\":%" PRIu64 ",\"status\":\"%s\",\"attempts\":%u,\"pid\":%d", res->index,
	        pexec_status_str(res->status), res->attempts, res->pid);
	if (res->started > 0)
		fprintf(f, ",\"start\":%.6f", res->started);
	if (res->seconds >= 0)
		fprintf(f, ",\"seconds\":%.6f", res->seconds);
	if (!res->ok) {
		fprintf(f, ",\"stage\":\"%s\",\"error\":", pexec_stage_str(res->stage));
		json_string(f, res->message ? res->message : "");
	}
	fputs("}\n", f);
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

void cli_report_progress(void *ctx, const pexec_progress *p)
{
	struct cli_report *r = ctx;
	const pexec_stats *st = p->stats;
	uint64_t done = st->ok + st->failed + p->skipped;
	char line[512], items[32], rate[32], el[32], eta[32];
	double dt = p->elapsed - r->last_elapsed;
	int n;

	r->last = *p;
	r->final = *st;
	r->last.stats = &r->final;
	if (!r->progress || p->done)
		return;
	if (dt > 0) {
		double now = (double)(done - r->last_done) / dt;
		r->rate = r->rate > 0 ? 0.7 * r->rate + 0.3 * now : now;
	}
	r->last_done = done;
	r->last_elapsed = p->elapsed;
	count_text(done, items, sizeof(items));
	count_text((uint64_t)(r->rate + 0.5), rate, sizeof(rate));
	clock_text(p->elapsed, el, sizeof(el));
	if (p->bytes_total > 0 && p->bytes_read > 0) {
		double frac = (double)p->bytes_read / (double)p->bytes_total;
		if (frac > 1)
			frac = 1;
		clock_text(frac > 0 ? p->elapsed * (1 - frac) / frac : 0, eta, sizeof(eta));
		n = snprintf(line, sizeof(line),
		             "%s: %3.0f%% | %s items | %s/s | %" PRIu64
		             " failed | %s elapsed | ETA %s", r->prog,
		             frac * 100, items, rate, st->failed, el, eta);
	} else {
		n = snprintf(line, sizeof(line),
		             "%s: %s items | %s/s | %" PRIu64 " failed | %s elapsed", r->prog, items,
		             rate, st->failed, el);
	}
	if (n > 0 && (unsigned)n >= term_width())
		line[term_width() - 1] = '\0';
	fprintf(stderr, "\r\033[K%s", line);
	fflush(stderr);
	r->drawn = 1;
}

static const char *const kinds[] = { "error", "crashed", "exited", "killed", "timeout", "lost" };

static void summary_json(FILE *f, const struct cli_report *r, int exit_status)
{
	const pexec_stats *st = &r->final;
	double wall = r->last.elapsed;

	fprintf(f,
	        "{\"items\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64
	        ",\"failed_by\":{",
	        st->ok + st->failed + r->last.skipped, st->ok, st->failed);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		fprintf(f, "%s\"%s\":%" PRIu64, i ? "," : "", kinds[i], st->by_status[i + 1]);
	fprintf(f,
	        "},\"retried\":%" PRIu64 ",\"resumed\":%" PRIu64 ",\"wall_seconds\":%.6f,"
	        "\"items_per_second\":%.1f,\"workers_started\":%" PRIu64
	        ",\"workers_lost\":%" PRIu64 ",\"exit_status\":%d}\n",
	        st->retried, r->last.skipped, wall,
	        wall > 0 ? (double)(st->ok + st->failed) / wall : 0.0, st->workers_started,
	        st->workers_lost, exit_status);
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
	if (r->joblog && (ferror(r->joblog) | fclose(r->joblog))) {
		fprintf(stderr, "%s: cannot write '%s': %s\n", r->prog, r->joblog_path,
		        strerror(errno));
		status = -1;
	}
	r->joblog = NULL;
	return status;
}
