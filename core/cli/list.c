/*
 * list.c - `pexec list` (list.h): every plugin file on the search path, in
 * the order the loader searches it (plugins.c finds them), each with the
 * bare name that looks it up, its version and description, and, where an
 * earlier file has its name, the file that name loads instead; a file that
 * is not a usable plugin is listed with the loader's reason.
 *
 * Loading a plugin runs its constructors, which may crash, hang or print,
 * and no plugin may stop the listing: each file is loaded in a child process
 * of its own, in a process group of its own, which sends what the
 * descriptor says back as one fixed-size record over a pipe.  Once it has
 * answered, died or run past LIST_TIMEOUT_S, its whole group is killed
 * (whatever a constructor started goes with it) and the child reaped.  For
 * the time of the listing pexec is a child subreaper, so that what a
 * constructor started and left (in the group or out of it) comes back to be
 * killed and reaped too, rather than outliving the command.  Everything is
 * loaded before anything is written.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "list.h"
#include "pexec.h"
#include "plugins.h"
#include "suggest.h"

/* Seconds a file may take to load before it counts as hanging. */
#define LIST_TIMEOUT_S 5

static const char list_usage[] =
	"usage: pexec list [--json]\n"
	"\n"
	"Lists every plugin file on the plugin search path, in the order --plugin\n"
	"searches it: each NAME.so or libNAME.so in $PEXEC_PLUGIN_PATH, then in\n"
	"$XDG_DATA_HOME/pexec/plugins (~/.local/share/pexec/plugins), then in the\n"
	"installed plugin directory.  For each: NAME, the bare name that looks it\n"
	"up, its version and description, and its path.  Of two files with one\n"
	"name the earlier is loaded: the other is marked (shadowed by PATH).  A file\n"
	"that is not a usable plugin is marked (unusable: why).  Each file is loaded\n"
	"in a throwaway child process, so that one that crashes or hangs as it loads\n"
	"costs only its own line.\n"
	"\n"
	"      --json      one JSON array instead, for scripts: an object for each\n"
	"                  file, {name, version, description, path, dir, shadowed_by,\n"
	"                  error}, with null where there is none\n"
	"  -h, --help      show this help\n";

/* What a child learnt of one file: fixed-size, written at once (a pipe
 * takes up to PIPE_BUF bytes in one piece). */
struct list_record {
	int loaded;
	int has_version;
	int has_description;
	char version[128];
	char description[1024];
	char error[PEXEC_ERROR_MAX];
};
_Static_assert(sizeof(struct list_record) <= PIPE_BUF, "a record is one write");

struct list_entry {
	const struct cli_plugin_file *file;
	const struct cli_plugin_file *winner; /* the file its name loads; NULL: this one */
	struct list_record rec;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads up to `len` bytes before `deadline` (now_ms()); returns how many
 * came before the end of the pipe, or -1 when the time ran out first. */
static ssize_t read_until(int fd, void *buf, size_t len, long long deadline)
{
	size_t have = 0;

	while (have < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;
		int ready;

		if (left <= 0)
			return -1;
		ready = poll(&pfd, 1, (int)left);
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready == 0)
			return -1;
		if (ready < 0)
			break;
		n = read(fd, (char *)buf + have, len - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	return (ssize_t)have;
}

/* Copies `text` into a record's field; returns whether there was one. */
static int copy_field(char *field, size_t size, const char *text)
{
	if (!text)
		return 0;
	snprintf(field, size, "%s", text);
	return 1;
}

/* In the child: loads `path` and sends what its descriptor says, or the
 * loader's message, to fd. */
static void __attribute__((noreturn)) list_child(const char *path, int fd, pid_t parent)
{
	struct list_record rec = { 0 };
	pexec_loaded_plugin *plugin;
	pexec_error err = { "" };
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	/* A constructor reads none of our input, and what it prints goes to
	 * stderr, never into the listing. */
	if (null >= 0)
		dup2(null, 0);
	dup2(2, 1);
	if (pexec_plugin_load(path, NULL, &plugin, &err) == PEXEC_OK) {
		const pexec_descriptor *d = pexec_plugin_descriptor(plugin);

		rec.loaded = 1;
		rec.has_version = copy_field(rec.version, sizeof(rec.version), d->version);
		rec.has_description =
			copy_field(rec.description, sizeof(rec.description), d->description);
	} else {
		copy_field(rec.error, sizeof(rec.error), err.msg);
	}
	_exit(write_all(fd, &rec, sizeof(rec)) ? 3 : 0);
}

/* Kills every child of this process, as /proc lists them; returns how many
 * it found. */
static int kill_children(void)
{
	char path[64], buf[4096];
	ssize_t len;
	int fd, n = 0;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[len > 0 ? len : 0] = '\0';
	for (char *p = buf, *end;; p = end) {
		long pid = strtol(p, &end, 10);

		if (end == p)
			break;
		n += pid > 0 && kill((pid_t)pid, SIGKILL) == 0;
	}
	return n;
}

/* Ends the child `pid` and what it started: its group killed, itself reaped
 * (while unreaped it holds the group's id, so no other group can have it),
 * then whatever came back to this subreaper killed and reaped, until none is
 * left; where /proc cannot say, only those already ended.  Returns the
 * child's wait status. */
static int end_child(pid_t pid)
{
	int status = 0;
	pid_t w;

	if (kill(-pid, SIGKILL))
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	do
		w = waitpid(-1, NULL, kill_children() ? 0 : WNOHANG);
	while (w > 0 || (w < 0 && errno == EINTR));
	return status;
}

/* The child sent no whole record: why, as the loader would say it. */
static void list_failed(struct list_record *rec, const char *path, int timed_out, int status)
{
	const char *sig = WIFSIGNALED(status) ? sigabbrev_np(WTERMSIG(status)) : NULL;

	memset(rec, 0, sizeof(*rec));
	if (timed_out)
		snprintf(rec->error, sizeof(rec->error),
		         "cannot load '%s': no answer after %d s (it hangs as it loads)", path,
		         LIST_TIMEOUT_S);
	else if (WIFSIGNALED(status))
		snprintf(rec->error, sizeof(rec->error),
		         "cannot load '%s': it crashed as it loaded (SIG%s)", path, sig ? sig : "?");
	else
		snprintf(rec->error, sizeof(rec->error),
		         "cannot load '%s': it ended the process as it loaded (exit status %d)", path,
		         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* Loads e's file in a child and fills e->rec. */
static void list_load(struct list_entry *e)
{
	struct list_record *rec = &e->rec;
	const char *path = e->file->path;
	pid_t pid, parent = getpid();
	int fds[2], status;
	ssize_t got;

	if (pipe2(fds, O_CLOEXEC)) {
		snprintf(rec->error, sizeof(rec->error), "cannot load '%s': cannot create a pipe: %s",
		         path, strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		list_child(path, fds[1], parent);
	}
	close(fds[1]);
	if (pid < 0) {
		snprintf(rec->error, sizeof(rec->error), "cannot load '%s': cannot fork: %s", path,
		         strerror(errno));
		close(fds[0]);
		return;
	}
	setpgid(pid, pid); /* as the child does itself: whichever comes first */
	got = read_until(fds[0], rec, sizeof(*rec), now_ms() + LIST_TIMEOUT_S * 1000LL);
	close(fds[0]);
	status = end_child(pid);
	if (got != (ssize_t)sizeof(*rec))
		list_failed(rec, path, got < 0, status);
	rec->error[sizeof(rec->error) - 1] = '\0';
	rec->version[sizeof(rec->version) - 1] = '\0';
	rec->description[sizeof(rec->description) - 1] = '\0';
}

/* The loader takes a file's first of a name, in search-path order. */
static void find_winners(struct list_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < i && !e[i].winner; j++)
			if (!strcmp(e[j].file->name, e[i].file->name))
				e[i].winner = e[j].file;
}

/* The loader's message without its "cannot load 'PATH': ", which the table
 * shows in a column of its own. */
static const char *reason(const struct list_entry *e)
{
	const char *msg = e->rec.error, *path = e->file->path;
	size_t n = strlen(path);

	if (!strncmp(msg, "cannot load '", 13) && !strncmp(msg + 13, path, n) &&
	    !strncmp(msg + 13 + n, "': ", 3))
		return msg + 13 + n + 3;
	return msg;
}

enum { COL_NAME, COL_VERSION, COL_DESCRIPTION, COL_PATH, NCOLS };

/* Appends the text of one cell of the table, escaped for a terminal. */
static int cell(pexec_buf *out, const struct list_entry *e, int col)
{
	const struct list_record *r = &e->rec;
	const char *text = "-";

	if (col == COL_NAME)
		text = e->file->name;
	else if (col == COL_VERSION && r->loaded && r->has_version)
		text = r->version;
	else if (col == COL_DESCRIPTION && r->loaded && r->has_description)
		text = r->description;
	else if (col == COL_PATH)
		text = e->file->path;
	return pexec_message_line(out, text, strlen(text));
}

/* Columns a UTF-8 text takes (one for each character). */
static size_t text_width(const char *s, size_t len)
{
	size_t w = 0;

	for (size_t i = 0; i < len; i++)
		w += ((unsigned char)s[i] & 0xC0) != 0x80;
	return w;
}

/* What follows the path: which file the name loads, and why this one is
 * not usable. */
static int notes(pexec_buf *out, const struct list_entry *e)
{
	const char *why = reason(e);

	if (e->winner && (pexec_buf_puts(out, "  (shadowed by ") ||
	                  pexec_message_line(out, e->winner->path, strlen(e->winner->path)) ||
	                  pexec_buf_puts(out, ")")))
		return -1;
	if (!e->rec.loaded && (pexec_buf_puts(out, "  (unusable: ") ||
	                       pexec_message_line(out, why, strlen(why)) ||
	                       pexec_buf_puts(out, ")")))
		return -1;
	return pexec_buf_puts(out, "\n");
}

/* One row: the header's (e NULL) or an entry's, padded to `widths`. */
static int row(pexec_buf *out, const struct list_entry *e, const size_t *widths,
               pexec_buf *tmp)
{
	static const char *const titles[NCOLS] = { "NAME", "VERSION", "DESCRIPTION", "PATH" };

	for (int col = 0; col < NCOLS; col++) {
		tmp->len = 0;
		if (e ? cell(tmp, e, col) : pexec_buf_puts(tmp, titles[col]))
			return -1;
		if (pexec_buf_append(out, tmp->data, tmp->len))
			return -1;
		if (col + 1 < NCOLS &&
		    pexec_buf_printf(out, "%*s", (int)(widths[col] - text_width(tmp->data, tmp->len) + 2),
		                     ""))
			return -1;
	}
	return e ? notes(out, e) : pexec_buf_puts(out, "\n");
}

/* The table: a header, then a row a file, its columns aligned. */
static int list_table(pexec_buf *out, const struct list_entry *e, size_t n)
{
	size_t widths[NCOLS] = { 4, 7, 11, 4 };
	pexec_buf tmp;
	int rc = 0;

	if (n == 0)
		return 0;
	pexec_buf_init(&tmp);
	for (size_t i = 0; i < n && !rc; i++)
		for (int col = 0; col < NCOLS && !rc; col++) {
			tmp.len = 0;
			rc = cell(&tmp, &e[i], col);
			if (!rc && text_width(tmp.data, tmp.len) > widths[col])
				widths[col] = text_width(tmp.data, tmp.len);
		}
	rc = rc || row(out, NULL, widths, &tmp);
	for (size_t i = 0; i < n && !rc; i++)
		rc = row(out, &e[i], widths, &tmp);
	pexec_buf_release(&tmp);
	return rc ? -1 : 0;
}

/* Appends `"key": ` and the JSON string of text (len bytes), or null. */
static int json_field(pexec_buf *out, const char *key, const char *text, size_t len)
{
	if (pexec_buf_printf(out, "%s\"%s\": ", strcmp(key, "name") ? ", " : "", key))
		return -1;
	return text ? pexec_json_quote(out, text, len) : pexec_buf_puts(out, "null");
}

static int json_string(pexec_buf *out, const char *key, const char *text)
{
	return json_field(out, key, text, text ? strlen(text) : 0);
}

static int json_entry(pexec_buf *out, const struct list_entry *e)
{
	const struct list_record *r = &e->rec;
	const struct cli_plugin_file *f = e->file;

	return pexec_buf_puts(out, "  {") || json_string(out, "name", f->name) ||
	       json_string(out, "version", r->loaded && r->has_version ? r->version : NULL) ||
	       json_string(out, "description",
	                   r->loaded && r->has_description ? r->description : NULL) ||
	       json_string(out, "path", f->path) || json_field(out, "dir", f->path, f->dir_len) ||
	       json_string(out, "shadowed_by", e->winner ? e->winner->path : NULL) ||
	       json_string(out, "error", r->loaded ? NULL : r->error) || pexec_buf_puts(out, "}");
}

/* One JSON array, an object a file on a line of its own. */
static int list_json(pexec_buf *out, const struct list_entry *e, size_t n)
{
	if (pexec_buf_puts(out, n ? "[\n" : "[]\n"))
		return -1;
	for (size_t i = 0; i < n; i++)
		if (json_entry(out, &e[i]) || pexec_buf_puts(out, i + 1 < n ? ",\n" : "\n]\n"))
			return -1;
	return 0;
}

/* Returns -1 to go on, or the exit status to end with. */
static int list_args(int argc, char **argv, int *json)
{
	static const char *const known[] = { "--json", "--help" };

	for (int i = 1; i < argc; i++) {
		const char *near;

		if (!strcmp(argv[i], "--json")) {
			*json = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(list_usage, stdout);
			return fflush(stdout) ? 3 : 0;
		} else {
			near = cli_closest(argv[i], known, 2);
			fprintf(stderr, "pexec list: unknown argument '%s'%s%s%s (usage: pexec list "
			        "[--json])\n", argv[i], near ? "; did you mean '" : "",
			        near ? near : "", near ? "'?" : "");
			return 2;
		}
	}
	return -1;
}

/* Writes what was built; returns the exit status. */
static int emit(const pexec_buf *out, const char *dirs, size_t n, int json)
{
	char *path;

	if ((out->len && fwrite(out->data, 1, out->len, stdout) != out->len) || fflush(stdout)) {
		fprintf(stderr, "pexec list: cannot write standard output: %s\n", strerror(errno));
		return 3;
	}
	if (n == 0 && !json) {
		path = pexec_plugin_search_path(dirs);
		fprintf(stderr, "pexec list: no plugins on the search path %s\n",
		        path ? path : "(out of memory)");
		free(path);
	}
	return 0;
}

int cli_list(const char *dirs, int argc, char **argv)
{
	struct list_entry *entries = NULL;
	struct cli_plugin_file *files;
	pexec_buf out;
	size_t n;
	int json = 0, subreaper = 0, status = list_args(argc, argv, &json);

	if (status >= 0)
		return status;
	files = cli_plugin_files(dirs, &n);
	pexec_buf_init(&out);
	if (n && !(entries = calloc(n, sizeof(*entries))))
		goto oom;
	/* Refused, the children's groups are still killed. */
	subreaper = prctl(PR_SET_CHILD_SUBREAPER, 1) == 0;
	for (size_t i = 0; i < n; i++) {
		entries[i].file = &files[i];
		list_load(&entries[i]);
	}
	if (subreaper)
		prctl(PR_SET_CHILD_SUBREAPER, 0);
	find_winners(entries, n);
	if ((json ? list_json : list_table)(&out, entries, n))
		goto oom;
	status = emit(&out, dirs, n, json);
	goto out;
oom:
	fprintf(stderr, "pexec list: out of memory\n");
	status = 3;
out:
	pexec_buf_release(&out);
	free(entries);
	cli_plugin_files_free(files, n);
	return status;
}
