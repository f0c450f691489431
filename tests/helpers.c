/*
 * helpers.c - running the built pexec for end-to-end tests (helpers.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "helpers.h"

double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The capacity behind a buffer of `len` bytes and its NUL: a power of two,
 * so that growing by reads of 64 KiB stays linear. */
static size_t capacity_for(size_t len)
{
	size_t cap = 64;

	while (cap < len + 1)
		cap *= 2;
	return cap;
}

/* Appends to a NUL-terminated buffer (*buf NULL and *len 0 to start). */
void append(char **buf, size_t *len, const char *data, size_t n)
{
	char *p = *buf;

	if (!p || capacity_for(*len + n) > capacity_for(*len)) {
		p = realloc(p, capacity_for(*len + n));
		cr_assert_not_null(p, "out of memory");
	}
	memcpy(p + *len, data, n);
	*len += n;
	p[*len] = '\0';
	*buf = p;
}

/* The children of `parent` (all of them, or only its workers: not its
 * warden, the helper a pool starts besides its workers). */
static int children_of(pid_t parent, void (*fn)(pid_t), int workers_only)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		char path[300], buf[512], *paren;
		long ppid;
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f) && (paren = strrchr(buf, ')')) &&
		    sscanf(paren + 1, " %*c %ld", &ppid) == 1 && ppid == (long)parent &&
		    !(workers_only && strstr(buf, "(pexec-warden)"))) {
			n++;
			if (fn)
				fn((pid_t)atol(e->d_name));
		}
		fclose(f);
	}
	closedir(d);
	return n;
}

int for_children(pid_t parent, void (*fn)(pid_t))
{
	return children_of(parent, fn, 0);
}

int for_workers(pid_t pexec, void (*fn)(pid_t))
{
	return children_of(pexec, fn, 1);
}

static void kill_pid(pid_t pid)
{
	kill(pid, SIGKILL);
}

/* Reaps every child left to this process.  Those still running after
 * `grace_s` are killed and counted in *survivors.  Returns how many there
 * were in all. */
static int reap_leftovers(double grace_s, int *survivors)
{
	double deadline = now_s() + grace_s;
	int n = 0;

	*survivors = 0;
	for (;;) {
		pid_t w = waitpid(-1, NULL, WNOHANG);

		if (w > 0) {
			n++;
			continue;
		}
		if (w < 0)
			break; /* ECHILD: none left */
		if (now_s() >= deadline) {
			*survivors += for_children(getpid(), kill_pid);
			while ((w = waitpid(-1, NULL, 0)) > 0 || (w < 0 && errno == EINTR))
				if (w > 0)
					n++;
			break;
		}
		nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
	}
	return n;
}

static void set_nonblock(int fd)
{
	cr_assert_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void __attribute__((noreturn))
child_exec(const struct proc_spec *s, int in_fd, int out_fd, int err_fd)
{
	char *argv[MAX_ARGS + 2];
	sigset_t none;
	size_t n = 0;

	/* What a shell gives a command: default SIGPIPE, nothing blocked. */
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (s->stdout_path) {
		out_fd = open(s->stdout_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (out_fd < 0)
			_exit(126);
	}
	if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
		_exit(126);
	close_range(3, ~0u, 0);
	argv[n++] = (char *)(s->program ? s->program : "pexec");
	for (; s->args[n - 1] && n <= MAX_ARGS; n++)
		argv[n] = (char *)s->args[n - 1];
	argv[n] = NULL;
	if (s->program)
		execvp(s->program, argv);
	else
		execv(PEXEC, argv);
	_exit(127);
}

/* Runs pexec as `s` says and collects what it did into `r` (released with
 * proc_release). */
void run_spec(const struct proc_spec *s, struct proc *r)
{
	int in[2], out[2], err[2];
	size_t in_off = 0, rep_off = 0, rep_len = s->endless ? strlen(s->endless) : 0;
	double deadline = now_s() + HANG_GUARD_S;
	int killed = 0;
	pid_t pid;
	char buf[65536];

	memset(r, 0, sizeof(*r));
	append(&r->out, &r->out_len, "", 0);
	append(&r->err, &r->err_len, "", 0);
	{
		size_t at = 0;
		at += (size_t)snprintf(r->cmd, sizeof(r->cmd), "%s", s->program ? s->program : "pexec");
		for (size_t i = 0; s->args[i] && at < sizeof(r->cmd); i++)
			at += (size_t)snprintf(r->cmd + at, sizeof(r->cmd) - at, " %s", s->args[i]);
	}

	/* Orphaned workers become ours, so that none can go unnoticed. */
	cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	/* A pexec that stops reading must not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
	/* A writer to a held stderr should block soon: one page. */
	if (s->hold_stderr)
		cr_assert_geq(fcntl(err[1], F_SETPIPE_SZ, 4096), 0);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0)
		child_exec(s, in[0], out[1], err[1]);
	close(in[0]);
	close(out[1]);
	close(err[1]);
	set_nonblock(in[1]);
	set_nonblock(out[0]);
	set_nonblock(err[0]);
	if (!s->in && !s->endless)
		close_fd(&in[1]);
	if (s->stdout_path)
		close_fd(&out[0]);

	while (out[0] >= 0 || err[0] >= 0) {
		struct pollfd fds[3];
		nfds_t n = 0;
		double left = deadline - now_s();
		int wait_ms;

		if (left <= 0 && !r->hung) {
			r->hung = 1;
			kill(pid, SIGKILL);
			/* Its workers die with it; give them the same guard. */
			deadline = now_s() + HANG_GUARD_S;
			continue;
		}
		if (left <= 0)
			break;
		if (s->kill_with_workers && !killed && for_workers(pid, NULL) > 0) {
			kill(pid, SIGKILL);
			killed = 1;
		}
		if (s->watch)
			s->watch(s->watch_ctx, pid, r);
		if (in[1] >= 0)
			fds[n++] = (struct pollfd){ .fd = in[1], .events = POLLOUT };
		if (out[0] >= 0)
			fds[n++] = (struct pollfd){ .fd = out[0], .events = POLLIN };
		if (err[0] >= 0 && !(s->hold_stderr && *s->hold_stderr))
			fds[n++] = (struct pollfd){ .fd = err[0], .events = POLLIN };
		wait_ms = left > 1 ? 1000 : (int)(left * 1000) + 1;
		if ((s->kill_with_workers && !killed) || (s->watch && wait_ms > 10))
			wait_ms = 10;
		if (poll(fds, n, wait_ms) < 0) {
			cr_assert_eq(errno, EINTR, "poll: %s", strerror(errno));
			continue;
		}
		if (in[1] >= 0) {
			const char *src;
			size_t len;
			ssize_t w;

			if (s->in && in_off < s->in_len) {
				src = s->in + in_off;
				len = s->in_len - in_off;
			} else if (s->endless) {
				src = s->endless + rep_off;
				len = rep_len - rep_off;
			} else {
				src = NULL;
				len = 0;
			}
			w = len ? write(in[1], src, len) : 0;
			if (w > 0) {
				if (s->in && in_off < s->in_len)
					in_off += (size_t)w;
				else
					rep_off = (rep_off + (size_t)w) % rep_len;
			}
			if ((w < 0 && errno != EAGAIN && errno != EINTR) ||
			    (!s->endless && in_off == s->in_len))
				close_fd(&in[1]);
		}
		for (int k = 0; k < 2; k++) {
			int *fd = k ? &err[0] : &out[0];
			ssize_t got;

			if (*fd < 0 || (k && s->hold_stderr && *s->hold_stderr))
				continue;
			while ((got = read(*fd, buf, sizeof(buf))) > 0) {
				if (k)
					append(&r->err, &r->err_len, buf, (size_t)got);
				else
					append(&r->out, &r->out_len, buf, (size_t)got);
				if (!k && s->out_max && r->out_len >= s->out_max)
					break;
			}
			if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR) ||
			    (!k && s->out_max && r->out_len >= s->out_max))
				close_fd(fd);
		}
	}
	close_fd(&in[1]);
	close_fd(&out[0]);
	close_fd(&err[0]);
	if (!r->hung) {
		/* Output closed; the process itself must end too. */
		while (waitpid(pid, &r->status, WNOHANG) == 0) {
			if (now_s() >= deadline) {
				r->hung = 1;
				kill(pid, SIGKILL);
				break;
			}
			nanosleep(&(struct timespec){ 0, 2 * 1000 * 1000 }, NULL);
		}
	}
	if (r->hung)
		while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
			;
	/* pexec is gone: anything still our child was left behind by it.  A
	 * killed pexec's workers die by PR_SET_PDEATHSIG, given a hang guard's
	 * time; otherwise pexec must have reaped them all itself. */
	r->strays = reap_leftovers(s->kill_with_workers || r->hung ? HANG_GUARD_S
	                                                             : s->orphan_grace_s,
	                           &r->survivors);
}

void proc_release(struct proc *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

/* Runs pexec with the NULL-terminated arguments after `in` (stdin text;
 * NULL: no stdin). */
void run(struct proc *r, const char *in, ...)
{
	const char *args[MAX_ARGS + 1];
	struct proc_spec s = { .args = args, .in = in, .in_len = in ? strlen(in) : 0 };
	size_t n = 0;
	va_list ap;

	va_start(ap, in);
	while ((args[n] = va_arg(ap, const char *)) != NULL) {
		cr_assert_lt(n, MAX_ARGS, "too many arguments");
		n++;
	}
	va_end(ap);
	run_spec(&s, r);
}

const char *describe(int status, char *buf, size_t size)
{
	if (WIFEXITED(status))
		snprintf(buf, size, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status),
		         strsignal(WTERMSIG(status)));
	else
		snprintf(buf, size, "status 0x%x", status);
	return buf;
}

void expect_exit_status(const struct proc *r, int code)
{
	char how[128];

	cr_assert_not(r->hung, "%s: hung, killed after %d s; stderr: %s", r->cmd, HANG_GUARD_S,
	              r->err);
	cr_expect(WIFEXITED(r->status) && WEXITSTATUS(r->status) == code,
	          "%s: %s, want exit %d; stderr: %s", r->cmd,
	          describe(r->status, how, sizeof(how)), code, r->err);
}

/* The run ended by itself, left nothing behind, and exited with `code`. */
void expect_exit(const struct proc *r, int code)
{
	expect_exit_status(r, code);
	cr_expect_eq(r->strays, 0, "%s: %d processes left behind", r->cmd, r->strays);
}

/* Whole outputs compared; a mismatch names the first differing byte rather
 * than printing megabytes. */
void expect_same_bytes(const char *what, const char *got, size_t got_len,
                              const char *want, size_t want_len)
{
	size_t i = 0;

	if (got_len == want_len && memcmp(got, want, got_len) == 0)
		return;
	while (i < got_len && i < want_len && got[i] == want[i])
		i++;
	cr_expect_fail("%s: output differs from byte %zu (lengths %zu and %zu): got \"%.40s\", "
	               "want \"%.40s\"", what, i, got_len, want_len,
	               i < got_len ? got + i : "", i < want_len ? want + i : "");
}

size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0, len = strlen(needle);

	for (const char *p = hay; (p = strstr(p, needle)); p += len)
		n++;
	return n;
}

/* A plain loop: the sanitizers' strstr() and strtok_r() interceptors read the
 * whole rest of the string on every call, which is quadratic on megabytes. */
size_t line_count(const char *text)
{
	size_t n = 0;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

/* Whether `text` is one complete JSON value. */
int parses(const char *text)
{
	cJSON *v = cJSON_ParseWithOpts(text, NULL, 1);

	cJSON_Delete(v);
	return v != NULL;
}

/* A copy of the line of stderr that reports item `index` failed, or NULL. */
char *failure_line(const char *err, size_t index)
{
	char key[64];
	const char *p, *nl;

	snprintf(key, sizeof(key), "pexec: item %zu failed in ", index);
	p = strstr(err, key);
	if (!p)
		return NULL;
	nl = strchr(p, '\n');
	return strndup(p, nl ? (size_t)(nl - p) : strlen(p));
}

/* ---- scratch files ---- */

char scratch[64];

void scratch_make(void)
{
	strcpy(scratch, "/tmp/pexec-test.XXXXXX");
	cr_assert_not_null(mkdtemp(scratch), "mkdtemp: %s", strerror(errno));
}

void scratch_remove(void)
{
	char cmd[128];

	if (!scratch[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	if (system(cmd) != 0)
		fprintf(stderr, "pexec tests: cannot remove %s\n", scratch);
	scratch[0] = '\0';
}

/* A path in the scratch directory (static storage, `slot` 0..3). */
const char *scratch_path(int slot, const char *name)
{
	static char paths[4][256];

	snprintf(paths[slot], sizeof(paths[slot]), "%s/%s", scratch, name);
	return paths[slot];
}

void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "cannot create %s: %s", path, strerror(errno));
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

/* The whole file, NUL-terminated; NULL if it cannot be read. */
char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *data = NULL, buf[65536];
	size_t n;

	*len = 0;
	if (!f)
		return NULL;
	append(&data, len, "", 0);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		append(&data, len, buf, n);
	fclose(f);
	return data;
}

/* The names in the scratch directory, sorted, one per line. */
char *scratch_listing(void)
{
	struct dirent **names;
	char *list = NULL;
	size_t len = 0;
	int n = scandir(scratch, &names, NULL, alphasort);

	cr_assert_geq(n, 0);
	append(&list, &len, "", 0);
	for (int i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
			append(&list, &len, names[i]->d_name, strlen(names[i]->d_name));
			append(&list, &len, "\n", 1);
		}
		free(names[i]);
	}
	free(names);
	return list;
}

/* ---- shell commands: test_cpp.c, test_rust.c ---- */

char *shell_ok(const char *what, const char *fmt, ...)
{
	char cmd[4096], buf[4096], *out = NULL;
	size_t len = 0, n;
	va_list ap;
	FILE *p;
	int status;

	va_start(ap, fmt);
	cr_assert_lt((size_t)vsnprintf(cmd, sizeof(cmd) - 16, fmt, ap), sizeof(cmd) - 16,
	             "%s: command too long", what);
	va_end(ap);
	strcat(cmd, " 2>&1");
	p = popen(cmd, "r");
	cr_assert_not_null(p, "%s: popen: %s", what, strerror(errno));
	append(&out, &len, "", 0);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		append(&out, &len, buf, n);
	status = pclose(p);
	cr_assert(status == 0, "%s failed (%s): %s\n%s", what,
	          describe(status, buf, sizeof(buf)), cmd, out);
	return out;
}

/* ---- workers seen from outside: shared by test_faults.c and test_signals.c ---- */

/* CPU time (user + system, in clock ticks) of `pid` if its parent is
 * `parent`; -1 otherwise. */
long cpu_ticks_of_child(pid_t pid, pid_t parent)
{
	char path[64], buf[1024], *paren;
	unsigned long utime, stime;
	long ppid;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	ok = fgets(buf, sizeof(buf), f) && (paren = strrchr(buf, ')')) &&
	     sscanf(paren + 1, " %*c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ppid, &utime,
	            &stime) == 3 && ppid == (long)parent;
	fclose(f);
	return ok ? (long)(utime + stime) : -1;
}

/* for_children() callbacks take only a pid; these carry what they find:
 * the last child seen, and the least CPU time among the children of
 * `seen_parent`. */
pid_t seen_parent, seen_child;
long seen_least_ticks;

void note_child(pid_t pid)
{
	long t = cpu_ticks_of_child(pid, seen_parent);

	seen_child = pid;
	if (t < seen_least_ticks)
		seen_least_ticks = t;
}

/* ---- shared by several test files ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lines of `text`, each without a trailing ',' (so that the elements of
 * a JSON array compare whatever their position), sorted.  lines[0] is the
 * block that holds them all: free(lines[0]) then free(lines). */
char **sorted_lines(const char *text, size_t *n)
{
	size_t cap = line_count(text) + 2, k = 0;
	char **lines = calloc(cap, sizeof(*lines));
	char *copy = strdup(text);

	cr_assert(lines && copy);
	lines[k++] = copy;
	for (char *l = copy, *next; *l; l = next) {
		char *nl = strchr(l, '\n');
		size_t len;

		next = nl ? nl + 1 : l + strlen(l);
		if (nl)
			*nl = '\0';
		len = strlen(l);
		if (len && l[len - 1] == ',')
			l[len - 1] = '\0';
		if (len)
			lines[k++] = l;
	}
	qsort(lines + 1, k - 1, sizeof(*lines), cmp_str);
	*n = k - 1;
	return lines;
}

/* Writes N files where file i holds "alpha" i times, "beta" once and
 * "Gamma" twice; returns the JSON array of their paths. */
char *word_files(int n)
{
	char *paths = NULL;
	size_t len = 0;

	append(&paths, &len, "[", 1);
	for (int i = 0; i < n; i++) {
		char name[32], *text = NULL;
		size_t tlen = 0;
		const char *path;

		snprintf(name, sizeof(name), "words-%d.txt", i);
		path = scratch_path(0, name);
		for (int k = 0; k < i; k++)
			append(&text, &tlen, "alpha, ", 7);
		append(&text, &tlen, "beta\nGamma gamma.", 17);
		write_file(path, text ? text : "", tlen);
		free(text);
		if (i)
			append(&paths, &len, ",", 1);
		append(&paths, &len, "\"", 1);
		append(&paths, &len, path, strlen(path));
		append(&paths, &len, "\"", 1);
	}
	append(&paths, &len, "]", 2);
	return paths;
}

void expect_same_line_set(const char *what, const char *got, const char *want)
{
	size_t ng, nw;
	char **g = sorted_lines(got, &ng), **w = sorted_lines(want, &nw);

	cr_expect_eq(ng, nw, "%s: %zu lines, want %zu", what, ng, nw);
	for (size_t i = 1; i <= ng && i <= nw; i++)
		if (strcmp(g[i], w[i])) {
			cr_expect_fail("%s: not the same lines: sorted line %zu is \"%.40s\", want "
			               "\"%.40s\"", what, i, g[i], w[i]);
			break;
		}
	free(g[0]);
	free(w[0]);
	free(g);
	free(w);
}
