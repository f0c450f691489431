/*
 * test_progress.c - issue 5 end to end: what a long run shows while it runs
 * and leaves when it ends: the --progress line and --quiet.  The --joblog
 * records and the --summary file are in test_joblog.c (suite `joblog`).
 *
 * The progress line is drawn only when stderr is a terminal, so those tests
 * run pexec with its stderr on a pseudo-terminal (openpty) whose output
 * post-processing is off: the bytes read from the master are exactly those
 * pexec wrote.  Its stdout stays a pipe, and must hold the same JSON as
 * without --progress.  The runs use the sleep plugin, whose items take known
 * times, so that a run lasts long enough for a few redraws (about four a
 * second); nothing measures time.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "helpers.h"

TestSuite(progress, .init = scratch_make, .fini = scratch_remove, .timeout = 180);

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define FAULTS FIX("faults")
#define CLEAR "\r\033[K"

/* ---- pexec with its stderr on a terminal ---- */

struct tty_run {
	char *out, *err;   /* stdout (a pipe); what the terminal got */
	size_t out_len, err_len;
	int status, hung, strays;
	unsigned cols;     /* the terminal's width */
	char cmd[1024];
};

static void kill_pid(pid_t pid)
{
	kill(pid, SIGKILL);
}

static void __attribute__((noreturn))
tty_child(const char *const *args, int in_fd, int out_fd, int tty_fd)
{
	char *argv[MAX_ARGS + 2];
	sigset_t none;
	size_t n = 0;

	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	if (in_fd < 0)
		in_fd = open("/dev/null", O_RDONLY);
	if (in_fd < 0 || dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(tty_fd, 2) < 0)
		_exit(126);
	close_range(3, ~0u, 0);
	argv[n++] = (char *)"pexec";
	for (; args[n - 1] && n <= MAX_ARGS; n++)
		argv[n] = (char *)args[n - 1];
	argv[n] = NULL;
	execv(PEXEC, argv);
	_exit(127);
}

/* Runs pexec with `args`, its stderr a terminal `cols` wide, its stdin `in`
 * through a pipe (NULL: /dev/null). */
static void run_on_tty(struct tty_run *r, const char *const *args, const char *in,
                       unsigned short cols)
{
	struct winsize ws = { .ws_row = 24, .ws_col = cols };
	struct termios tio;
	int master, slave, out[2], inp[2] = { -1, -1 };
	size_t in_off = 0, in_len = in ? strlen(in) : 0;
	double deadline = now_s() + HANG_GUARD_S;
	char buf[65536];
	pid_t pid;

	memset(r, 0, sizeof(*r));
	r->cols = cols;
	append(&r->out, &r->out_len, "", 0);
	append(&r->err, &r->err_len, "", 0);
	{
		size_t at = (size_t)snprintf(r->cmd, sizeof(r->cmd), "pexec");
		for (size_t i = 0; args[i] && at < sizeof(r->cmd); i++)
			at += (size_t)snprintf(r->cmd + at, sizeof(r->cmd) - at, " %s", args[i]);
	}
	cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(openpty(&master, &slave, NULL, NULL, &ws), 0, "openpty: %s", strerror(errno));
	/* Bytes as written: no "\n" to "\r\n". */
	cr_assert_eq(tcgetattr(slave, &tio), 0);
	tio.c_oflag &= ~(tcflag_t)OPOST;
	cr_assert_eq(tcsetattr(slave, TCSANOW, &tio), 0);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	if (in)
		cr_assert_eq(pipe2(inp, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0)
		tty_child(args, inp[0], out[1], slave);
	close(slave);
	close(out[1]);
	if (in) {
		close(inp[0]);
		fcntl(inp[1], F_SETFL, O_NONBLOCK);
		if (in_len == 0) {
			close(inp[1]);
			inp[1] = -1;
		}
	}
	fcntl(master, F_SETFL, O_NONBLOCK);
	fcntl(out[0], F_SETFL, O_NONBLOCK);

	/* The master reads EIO once no process holds the terminal open. */
	while (master >= 0 || out[0] >= 0) {
		struct pollfd fds[3];
		nfds_t n = 0;
		double left = deadline - now_s();

		if (left <= 0) {
			r->hung = 1;
			kill(pid, SIGKILL);
			break;
		}
		if (master >= 0)
			fds[n++] = (struct pollfd){ .fd = master, .events = POLLIN };
		if (out[0] >= 0)
			fds[n++] = (struct pollfd){ .fd = out[0], .events = POLLIN };
		if (inp[1] >= 0)
			fds[n++] = (struct pollfd){ .fd = inp[1], .events = POLLOUT };
		if (poll(fds, n, 100) < 0) {
			cr_assert_eq(errno, EINTR);
			continue;
		}
		if (inp[1] >= 0) {
			ssize_t w = write(inp[1], in + in_off, in_len - in_off);
			if (w > 0)
				in_off += (size_t)w;
			if (in_off == in_len || (w < 0 && errno != EAGAIN && errno != EINTR)) {
				close(inp[1]);
				inp[1] = -1;
			}
		}
		for (int k = 0; k < 2; k++) {
			int *fd = k ? &out[0] : &master;
			ssize_t got;

			if (*fd < 0)
				continue;
			while ((got = read(*fd, buf, sizeof(buf))) > 0) {
				if (k)
					append(&r->out, &r->out_len, buf, (size_t)got);
				else
					append(&r->err, &r->err_len, buf, (size_t)got);
			}
			if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
				close(*fd);
				*fd = -1;
			}
		}
	}
	if (master >= 0)
		close(master);
	if (out[0] >= 0)
		close(out[0]);
	if (inp[1] >= 0)
		close(inp[1]);
	while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
		;
	/* pexec reaps its workers before it ends: any child left to us now is
	 * one it left behind. */
	r->strays = for_children(getpid(), kill_pid);
	while (waitpid(-1, NULL, 0) > 0)
		;
}

static void tty_release(struct tty_run *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

static void expect_tty_exit(const struct tty_run *r, int code)
{
	char how[128];

	cr_assert_not(r->hung, "%s: hung; terminal got: %s", r->cmd, r->err);
	cr_expect(WIFEXITED(r->status) && WEXITSTATUS(r->status) == code,
	          "%s: %s, want exit %d; terminal got: %s", r->cmd,
	          describe(r->status, how, sizeof(how)), code, r->err);
	cr_expect_eq(r->strays, 0, "%s: %d processes left behind", r->cmd, r->strays);
}

/* ---- inputs ---- */

/* n items for the sleep plugin, `s` seconds each (plus i microseconds);
 * every `bad_every`th (0: none) is "bad", which fails. */
static char *sleep_items(size_t n, double s, size_t bad_every)
{
	char *text = NULL, item[64];
	size_t len = 0;

	append(&text, &len, "[", 1);
	for (size_t i = 0; i < n; i++) {
		int k = bad_every && i % bad_every == bad_every - 1
		                ? snprintf(item, sizeof(item), "%s\"bad\"", i ? ", " : "")
		                : snprintf(item, sizeof(item), "%s%.6f", i ? ", " : "",
		                           s + (double)i * 1e-6);
		append(&text, &len, item, (size_t)k);
	}
	append(&text, &len, "]\n", 2);
	return text;
}

/* The stdout of the same run without any reporting. */
static char *plain_output(const char *in_text, size_t *len)
{
	struct proc r;
	char *out;

	run(&r, in_text, "-p", "sleep", "-j", "16", "-q", NULL);
	cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) <= 1, "%s: %s", r.cmd, r.err);
	out = r.out;
	*len = r.out_len;
	r.out = NULL;
	proc_release(&r);
	return out;
}

/* ---- reading the terminal's stream ---- */

/* Whether `s` holds no control character (UTF-8 bytes pass). */
static int printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

/* "1,234" -> 1234; -1 unless digits with a comma between groups of three. */
static long long count_value(const char *s)
{
	long long v = 0;
	size_t len = strlen(s);

	if (!len)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int comma_here = (len - i - 1) % 4 == 3;

		if (comma_here != (s[i] == ','))
			return -1;
		if (comma_here)
			continue;
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static int clock_ok(const char *s)
{
	unsigned a, b, c;
	int n = 0;

	if (sscanf(s, "%u:%2u:%2u%n", &a, &b, &c, &n) == 3 && (size_t)n == strlen(s))
		return b < 60 && c < 60;
	n = 0;
	return sscanf(s, "%u:%2u%n", &a, &b, &n) == 2 && (size_t)n == strlen(s) && b < 60;
}

struct line {
	double pct;          /* -1: none shown */
	long long items, rate, failed;
	int eta;             /* an ETA shown */
	int bar;             /* the bar's width; 0: none */
};

/* "4,512 done, 3 failed | 812/s | 0:05 elapsed[ | ETA 0:06]": the figures
 * after the percentage and bar.  Returns 0 if `text` is not that. */
static int parse_rest(const char *text, int with_total, struct line *l)
{
	char items[64], rate[64], el[64], eta[64];
	unsigned long failed;
	int n = -1;

	if (with_total) {
		if (sscanf(text, "%63[0-9,] done, %lu failed | %63[0-9,]/s | %63[0-9:] elapsed | "
		           "ETA %63[0-9:-]%n", items, &failed, rate, el, eta, &n) != 5 ||
		    (size_t)n != strlen(text) || (!clock_ok(eta) && strcmp(eta, "--:--")))
			return 0;
		l->eta = 1;
	} else if (sscanf(text, "%63[0-9,] done, %lu failed | %63[0-9,]/s | %63[0-9:] "
	                  "elapsed%n", items, &failed, rate, el, &n) != 4 ||
	           (size_t)n != strlen(text)) {
		return 0;
	}
	l->items = count_value(items);
	l->rate = count_value(rate);
	l->failed = (long long)failed;
	return l->items >= 0 && l->rate >= 0 && clock_ok(el);
}

/* Parses one progress line: "pexec:  45% [===>    ] REST" (or, without room
 * for a bar, "pexec:  45% | REST") when the input's size is known
 * (`with_total`), else "pexec: REST"; returns 0 if it is not one. */
static int parse_progress(const char *seg, size_t len, int with_total, struct line *l)
{
	char text[1024];
	const char *p;
	int n = -1;

	if (len >= sizeof(text) || !printable(seg, len))
		return 0;
	memcpy(text, seg, len);
	text[len] = '\0';
	memset(l, 0, sizeof(*l));
	l->pct = -1;
	if (!with_total)
		return !strncmp(text, "pexec: ", 7) && parse_rest(text + 7, 0, l);
	if (sscanf(text, "pexec: %lf%%%n", &l->pct, &n) != 1 || n < 0)
		return 0;
	p = text + n;
	if (!strncmp(p, " [", 2)) {
		const char *close = strchr(p + 2, ']');
		if (!close || close[1] != ' ')
			return 0;
		l->bar = (int)(close - (p + 2));
		/* '=' for what is done, then '>' and blanks, or all '='. */
		for (const char *b = p + 2; b < close; b++)
			if (*b != '=' && !(*b == '>' && (b == p + 2 || b[-1] == '=')) &&
			    !(*b == ' ' && b > p + 2 && (b[-1] == '>' || b[-1] == ' ')))
				return 0;
		p = close + 2;
	} else if (!strncmp(p, " | ", 3)) {
		p += 3;
	} else {
		return 0;
	}
	return parse_rest(p, 1, l);
}

/* The stream, cut at every CLEAR, is made of segments, each some whole lines
 * (failure reports, or last of all the summary) then at most one progress
 * line, which the next CLEAR erases: a progress line is never left on the
 * screen, nor followed by anything but a CLEAR.  Checks that, and returns how
 * many progress lines there were. */
static size_t expect_redraws(const struct tty_run *r, size_t n_items, size_t n_failed,
                             int with_total)
{
	const char *e = r->err, *end = r->err + r->err_len, *seg = e, *summary = NULL;
	size_t redraws = 0, last_items = 0, failures = 0;
	double last_pct = 0;
	char want[128];

	cr_assert(r->err_len > 0 && end[-1] == '\n', "%s: the terminal's stream does not end a "
	          "line: \"%s\"", r->cmd, e);
	while (seg < end) {
		const char *next = strstr(seg, CLEAR);
		const char *seg_end = next ? next : end, *line = seg, *nl;
		struct line l;

		/* Whole lines. */
		while ((nl = memchr(line, '\n', (size_t)(seg_end - line)))) {
			size_t len = (size_t)(nl - line);

			if (!strncmp(line, "pexec: item ", 12) && printable(line, len)) {
				failures++;
			} else if (nl + 1 == end && printable(line, len)) {
				summary = line;
			} else {
				cr_expect_fail("%s: unexpected line on the terminal: \"%.*s\"",
				               r->cmd, (int)len, line);
			}
			line = nl + 1;
		}
		/* Then what the next CLEAR erases. */
		if (line < seg_end) {
			size_t len = (size_t)(seg_end - line);

			cr_expect(next != NULL, "%s: the progress line is not cleared at the end: "
			          "\"%.*s\"", r->cmd, (int)len, line);
			if (parse_progress(line, len, with_total, &l)) {
				redraws++;
				cr_expect(l.items >= (long long)last_items &&
				          l.items <= (long long)n_items,
				          "%s: %lld items after %zu", r->cmd, l.items, last_items);
				cr_expect(l.failed <= (long long)n_failed && l.failed <= l.items);
				if (with_total) {
					double items_pct = 100.0 * (double)l.items / (double)n_items;

					cr_expect(l.pct >= last_pct && l.pct <= 100,
					          "%s: %g%% after %g%%", r->cmd, l.pct, last_pct);
					/* The percent is of the input done, not read:
					 * these items are all of a size. */
					cr_expect(l.pct <= items_pct + 10 && l.pct >= items_pct - 10,
					          "%s: %g%% with %lld of %zu items done", r->cmd, l.pct,
					          l.items, n_items);
					last_pct = l.pct;
				}
				/* A bar takes the terminal's width, but its last column. */
				if (l.bar)
					cr_expect_eq(len, r->cols - 1, "%s: a line of %zu columns with a "
					             "bar, on a terminal of %u: \"%.*s\"", r->cmd, len,
					             r->cols, (int)len, line);
				last_items = (size_t)l.items;
			} else {
				cr_expect_fail("%s: not a progress line%s: \"%.*s\"", r->cmd,
				               with_total ? " with a percentage and ETA"
				                          : " (without percentage and ETA)",
				               (int)len, line);
			}
		}
		seg = next ? next + strlen(CLEAR) : end;
	}
	cr_expect_eq(failures, n_failed, "%s: %zu failure lines, want %zu", r->cmd, failures,
	             n_failed);
	cr_assert_not_null(summary, "%s: no summary line last: \"%s\"", r->cmd, e);
	snprintf(want, sizeof(want), "pexec: %zu items in ", n_items);
	cr_expect(!strncmp(summary, want, strlen(want)), "%s: summary: %s", r->cmd, summary);
	snprintf(want, sizeof(want), " ok, %zu failed", n_failed);
	cr_expect(strstr(summary, want) != NULL, "%s: summary: %s", r->cmd, summary);
	return redraws;
}

/* Without failures, the last thing before the summary is the clear. */
static void expect_cleared_then_summary(const struct tty_run *r)
{
	const char *last = NULL;

	for (const char *p = r->err; (p = strstr(p, CLEAR)); p += strlen(CLEAR))
		last = p;
	cr_assert_not_null(last, "%s: nothing cleared: %s", r->cmd, r->err);
	last += strlen(CLEAR);
	cr_expect(!strncmp(last, "pexec: ", 7) && strchr(last, '\n') == r->err + r->err_len - 1,
	          "%s: the stream does not end with a clear and the summary line: \"%s\"",
	          r->cmd, last);
}

/* ---- the progress line on a terminal ---- */

Test(progress, on_a_terminal_for_a_file_redraws_with_percentage_and_eta)
{
	char path[256], *in = sleep_items(100, 0.02, 0), *want;
	size_t want_len;
	struct tty_run r;

	snprintf(path, sizeof(path), "%s/in.json", scratch);
	write_file(path, in, strlen(in));
	want = plain_output(in, &want_len);
	run_on_tty(&r, ARGS("-p", "sleep", "-j", "2", "--progress", path), NULL, 200);
	expect_tty_exit(&r, 0);
	cr_expect_geq(expect_redraws(&r, 100, 0, 1), 2, "%s: fewer than 2 redraws: %s", r.cmd,
	              r.err);
	expect_cleared_then_summary(&r);
	cr_expect(strstr(r.err, "% [") && strstr(r.err, "] ") && strstr(r.err, " done, ") &&
	          strstr(r.err, "/s | ") && strstr(r.err, " failed | ") &&
	          strstr(r.err, " elapsed") && strstr(r.err, "ETA "), "%s: %s", r.cmd, r.err);
	expect_same_bytes("stdout under --progress", r.out, r.out_len, want, want_len);
	tty_release(&r);
	free(want);
	free(in);
}

Test(progress, on_a_terminal_for_a_pipe_shows_count_and_rate_only)
{
	char *in = sleep_items(100, 0.02, 0), *want;
	size_t want_len;
	struct tty_run r;

	want = plain_output(in, &want_len);
	run_on_tty(&r, ARGS("-p", "sleep", "-j", "2", "--progress"), in, 200);
	expect_tty_exit(&r, 0);
	cr_expect_geq(expect_redraws(&r, 100, 0, 0), 2, "%s: fewer than 2 redraws: %s", r.cmd,
	              r.err);
	expect_cleared_then_summary(&r);
	cr_expect(!strstr(r.err, "%") && !strstr(r.err, "ETA"),
	          "%s: a percentage or ETA without a known total: %s", r.cmd, r.err);
	expect_same_bytes("stdout under --progress", r.out, r.out_len, want, want_len);
	tty_release(&r);
	free(want);
	free(in);
}

/* Failure lines clear the progress line first and take whole lines. */
Test(progress, on_a_terminal_failures_are_printed_on_lines_of_their_own)
{
	char path[256], *in = sleep_items(100, 0.02, 10), *want;
	size_t want_len;
	struct tty_run r;

	snprintf(path, sizeof(path), "%s/in.json", scratch);
	write_file(path, in, strlen(in));
	want = plain_output(in, &want_len);
	run_on_tty(&r, ARGS("-p", "sleep", "-j", "2", "--progress", path), NULL, 200);
	expect_tty_exit(&r, 1);
	expect_redraws(&r, 100, 10, 1);
	cr_expect_eq(count_of(r.err, "pexec: item "), 10, "%s: %s", r.cmd, r.err);
	for (const char *p = r.err; (p = strstr(p, "pexec: item ")); p++)
		cr_expect(p == r.err || p[-1] == '\n' ||
		          (p - r.err >= 4 && !strncmp(p - 4, CLEAR, 4)),
		          "%s: a failure line shares a line with the progress: \"%.60s\"", r.cmd,
		          p - 30 > r.err ? p - 30 : r.err);
	cr_expect(strstr(r.err, "10 failed (10 error)") != NULL, "%s: %s", r.cmd, r.err);
	expect_same_bytes("stdout under --progress", r.out, r.out_len, want, want_len);
	tty_release(&r);
	free(want);
	free(in);
}

/* The line is cut to the terminal's width: it never wraps (a wrapped line
 * could not be redrawn in place). */
Test(progress, on_a_narrow_terminal_the_line_never_wraps)
{
	char path[256], *in = sleep_items(40, 0.02, 0);
	struct tty_run r;
	size_t lines = 0;

	snprintf(path, sizeof(path), "%s/in.json", scratch);
	write_file(path, in, strlen(in));
	run_on_tty(&r, ARGS("-p", "sleep", "-j", "2", "--progress", path), NULL, 40);
	expect_tty_exit(&r, 0);
	for (const char *p = r.err; (p = strstr(p, CLEAR)); ) {
		const char *next;
		size_t len;

		p += strlen(CLEAR);
		next = strstr(p, CLEAR);
		if (!next)
			break; /* the summary */
		len = (size_t)(next - p);
		lines++;
		cr_expect_lt(len, 40, "%s: a progress line of %zu columns on a terminal of 40: "
		             "\"%.*s\"", r.cmd, len, (int)len, p);
	}
	cr_expect_geq(lines, 1, "%s: no progress line: %s", r.cmd, r.err);
	tty_release(&r);
	free(in);
}

Test(progress, quiet_on_a_terminal_writes_nothing)
{
	char path[256], *in = sleep_items(40, 0.02, 10);
	struct tty_run r;

	snprintf(path, sizeof(path), "%s/in.json", scratch);
	write_file(path, in, strlen(in));
	run_on_tty(&r, ARGS("-p", "sleep", "-j", "2", "--progress", "-q", path), NULL, 200);
	expect_tty_exit(&r, 1);
	cr_expect_eq(r.err_len, 0, "%s: the terminal got: \"%s\"", r.cmd, r.err);
	cr_expect(parses(r.out), "%s: stdout: %s", r.cmd, r.out);
	tty_release(&r);
	free(in);
}

/* ---- without a terminal ---- */

Test(progress, without_a_terminal_no_control_codes_and_a_summary)
{
	char path[256], *in = sleep_items(60, 0.02, 10);
	struct proc r;

	snprintf(path, sizeof(path), "%s/in.json", scratch);
	write_file(path, in, strlen(in));
	run(&r, NULL, "-p", "sleep", "-j", "2", "--progress", path, NULL);
	expect_exit(&r, 1);
	for (size_t i = 0; i < r.err_len; i++) {
		unsigned char c = (unsigned char)r.err[i];
		if ((c < 0x20 && c != '\n') || c == 0x7f) {
			cr_expect_fail("%s: control byte 0x%02x at %zu of stderr: \"%s\"", r.cmd, c,
			               i, r.err);
			break;
		}
	}
	cr_expect_eq(count_of(r.err, "pexec: item "), 6, "%s: %s", r.cmd, r.err);
	cr_expect(strstr(r.err, "pexec: 60 items in ") &&
	          strstr(r.err, ": 54 ok, 6 failed (6 error)\n"),
	          "%s: no summary line: %s", r.cmd, r.err);
	cr_expect(r.err_len && r.err[r.err_len - 1] == '\n');
	cr_expect(parses(r.out), "%s: stdout: %s", r.cmd, r.out);
	proc_release(&r);
	free(in);
}

/* --quiet silences failures, the summary and the progress line; an error
 * that ends the run is still said. */
Test(progress, quiet_writes_nothing_but_errors_that_end_the_run)
{
	char *in = sleep_items(20, 0.001, 5);
	struct proc r;

	run(&r, in, "-p", "sleep", "-j", "2", "-q", NULL);
	expect_exit(&r, 1);
	cr_expect_eq(r.err_len, 0, "%s: stderr: %s", r.cmd, r.err);
	cr_expect_eq(count_of(r.out, "null"), 4, "%s: stdout: %s", r.cmd, r.out);
	proc_release(&r);

	run(&r, in, "-p", "sleep", "-j", "2", "-q", "--progress", "--verbose", NULL);
	expect_exit(&r, 1);
	cr_expect_eq(r.err_len, 0, "%s: stderr: %s", r.cmd, r.err);
	proc_release(&r);

	run(&r, in, "-p", "no-such-plugin", "-q", NULL);
	expect_exit(&r, 2);
	cr_expect(strstr(r.err, "no-such-plugin") != NULL, "%s: the error is silenced: %s", r.cmd,
	          r.err);
	proc_release(&r);
	free(in);
}

/* A first item that takes long holds the others' results back (ordered
 * output): while it runs, much of the input is read, but none of it done,
 * and the line says 0%, not the share read. */
Test(progress, percent_is_of_items_done_not_read)
{
	char path[256], *in = sleep_items(60, 0.01, 0);
	struct tty_run r;
	size_t zero_lines = 0;

	/* Item 0 sleeps 1.5 s. */
	memcpy(in + 1, "1.500000", 8);
	snprintf(path, sizeof(path), "%s/in.json", scratch);
	write_file(path, in, strlen(in));
	run_on_tty(&r, ARGS("-p", "sleep", "-j", "2", "--progress", path), NULL, 120);
	expect_tty_exit(&r, 0);
	expect_redraws(&r, 60, 0, 1);
	for (const char *p = r.err; (p = strstr(p, CLEAR)); p += strlen(CLEAR)) {
		const char *q = p + strlen(CLEAR), *next = strstr(q, CLEAR);
		struct line l;

		if (next && parse_progress(q, (size_t)(next - q), 1, &l) && l.items == 0) {
			zero_lines++;
			cr_expect_eq(l.pct, 0, "%s: %g%% with no item done", r.cmd, l.pct);
		}
	}
	cr_expect_geq(zero_lines, 2, "%s: %zu lines while item 0 ran: %s", r.cmd, zero_lines,
	              r.err);
	tty_release(&r);
	free(in);
}

#define BAR_MIN_COLS 10

/* The bar takes what the text leaves of the terminal's width: wider on a
 * wider terminal, none where too little is left. */
Test(progress, the_bar_is_fitted_to_the_terminal)
{
	char path[256], *in = sleep_items(60, 0.02, 0);
	static const unsigned short widths[] = { 150, 90, 70 };
	int bars[3] = { 0 };

	snprintf(path, sizeof(path), "%s/in.json", scratch);
	write_file(path, in, strlen(in));
	for (size_t w = 0; w < COUNT(widths); w++) {
		struct tty_run r;

		run_on_tty(&r, ARGS("-p", "sleep", "-j", "2", "--progress", path), NULL, widths[w]);
		expect_tty_exit(&r, 0);
		expect_redraws(&r, 60, 0, 1);
		for (const char *p = r.err; (p = strstr(p, CLEAR)); p += strlen(CLEAR)) {
			const char *q = p + strlen(CLEAR), *next = strstr(q, CLEAR);
			struct line l;

			if (next && parse_progress(q, (size_t)(next - q), 1, &l) && l.bar > bars[w])
				bars[w] = l.bar;
		}
		tty_release(&r);
	}
	/* 60 columns more make the bar as much wider, give or take what the
	 * figures' own width changed between the runs. */
	cr_expect(bars[1] >= BAR_MIN_COLS && bars[0] >= bars[1] + 55 && bars[0] <= bars[1] + 65,
	          "bars of %d and %d columns at 150 and 90", bars[0], bars[1]);
	cr_expect_eq(bars[2], 0, "a bar of %d columns on a terminal of 70", bars[2]);
	free(in);
}

/* --progress=plain, for logs: a plain line every few seconds with the same
 * figures, never a control code, then the summary. */
Test(progress, plain_progress_prints_plain_lines)
{
	char path[256], *in = sleep_items(280, 0.05, 0);
	struct proc r;
	size_t lines = 0;
	double last_pct = 0, wall = 0;

	snprintf(path, sizeof(path), "%s/in.json", scratch);
	write_file(path, in, strlen(in));
	/* 280 items of 50 ms on 2 workers: 7 s at least. */
	run(&r, NULL, "-p", "sleep", "-j", "2", "--progress=plain", path, NULL);
	expect_exit(&r, 0);
	for (const char *p = r.err, *nl; (nl = strchr(p, '\n')); p = nl + 1) {
		size_t len = (size_t)(nl - p);
		struct line l;

		cr_expect(printable(p, len), "%s: a control byte on \"%.*s\"", r.cmd, (int)len, p);
		if (!strncmp(p, "pexec: 280 items in ", 20)) {
			cr_expect_eq(nl + 1, r.err + r.err_len, "%s: the summary is not last", r.cmd);
			wall = atof(p + 20);
			continue;
		}
		cr_expect(parse_progress(p, len, 1, &l), "%s: not a progress line: \"%.*s\"",
		          r.cmd, (int)len, p);
		cr_expect_eq(l.bar, 0);
		cr_expect_geq(l.pct, last_pct);
		last_pct = l.pct;
		lines++;
	}
	cr_expect_geq(lines, 1, "%s: no plain progress line: %s", r.cmd, r.err);
	cr_expect_leq(lines, (size_t)(wall / 5), "%s: more than one line each 5 s of %g s: %s",
	              r.cmd, wall, r.err);
	cr_expect(parses(r.out), "%s", r.cmd);
	proc_release(&r);
	free(in);
}
