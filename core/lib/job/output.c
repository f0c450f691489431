/*
 * output.c - the output writer (output.h).
 *
 * Results are copied once, into a 256 KiB buffer that goes out in one write;
 * a result bigger than the buffer is written straight from where it is.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "output.h"
#include "util.h"

#define OUT_BUF ((size_t)256 << 10)

static const char *where(const struct pexec__writer *w)
{
	return w->path ? w->path : w->owned_fd ? "output" : "<stdout>";
}

static pexec_code write_error(struct pexec__writer *w, pexec_error *err)
{
	if (errno == EPIPE)
		return pexec__fail(err, PEXEC_EPIPE, "cannot write '%s': output closed by its reader",
		                   where(w));
	return pexec__fail(err, PEXEC_ESYS, "cannot write '%s': %s", where(w), strerror(errno));
}

/* The one place bytes go out: where the file stands, or, positional, at
 * the writer's own count of them (workers write beside it). */
static pexec_code out_write(struct pexec__writer *w, const char *data, size_t len,
                            pexec_error *err)
{
	if (len && (w->positional ? pexec__pwrite_full(w->fd, data, len, w->base + (off_t)w->bytes)
	                          : pexec__write_full(w->fd, data, len)))
		return write_error(w, err);
	w->bytes += len;
	return PEXEC_OK;
}

/* A positional writer leaves the file standing where its bytes end, as a
 * writer that wrote them in turn would. */
static void position_at_end(struct pexec__writer *w)
{
	if (w->positional && w->fd >= 0)
		lseek(w->fd, w->base + (off_t)w->bytes, SEEK_SET);
}

static pexec_code flush(struct pexec__writer *w, pexec_error *err)
{
	pexec_code rc = out_write(w, w->buf, w->len, err);

	if (!rc)
		w->len = 0;
	return rc;
}

static void writer_release(struct pexec__writer *w)
{
	if (w->owned_fd && w->fd >= 0)
		close(w->fd);
	w->owned_fd = 0;
	free(w->buf);
	free(w->path);
	free(w->tmp_path);
	w->buf = w->path = w->tmp_path = NULL;
}

pexec_code pexec__writer_flush(struct pexec__writer *w, pexec_error *err)
{
	return flush(w, err);
}

static pexec_code put(struct pexec__writer *w, const char *data, size_t len, pexec_error *err)
{
	if (OUT_BUF - w->len < len) {
		pexec_code rc = flush(w, err);
		if (rc)
			return rc;
		if (len >= OUT_BUF)
			return out_write(w, data, len, err);
	}
	memcpy(w->buf + w->len, data, len);
	w->len += len;
	return PEXEC_OK;
}

static int open_unnamed(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
	int fd;

	if (!dir)
		return -1;
	fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
	free(dir);
	return fd;
}

/* Gives the unnamed file a fresh temporary name (tmp_path's XXXXXX filled). */
static int link_unnamed(struct pexec__writer *w)
{
	char proc[64];
	size_t n = strlen(w->tmp_path);

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", w->fd);
	for (int tries = 0; tries < 100; tries++) {
		static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
		unsigned long r = (unsigned long)random() ^ ((unsigned long)getpid() << 8) ^
		                  (unsigned long)tries;
		for (size_t i = n - 6; i < n; i++, r /= 36)
			w->tmp_path[i] = alphabet[r % 36];
		if (linkat(AT_FDCWD, proc, AT_FDCWD, w->tmp_path, AT_SYMLINK_FOLLOW) == 0) {
			w->unnamed = 0;
			return 0;
		}
		if (errno != EEXIST)
			return -1;
	}
	return -1;
}

pexec_code pexec__writer_open(struct pexec__writer *w, const char *path, int fd,
                              pexec_format format, int drop_null, pexec_error *err)
{
	struct stat st;

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->format = format;
	w->drop_null = drop_null;
	w->buf = malloc(OUT_BUF);
	if (!w->buf)
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	if (!path) {
		w->fd = fd;
		return PEXEC_OK;
	}
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		/* A FIFO or a device is written into, not replaced. */
		w->fd = open(path, O_WRONLY | O_CLOEXEC);
		if (w->fd < 0) {
			pexec__writer_abort(w);
			return pexec__fail(err, PEXEC_ESYS, "cannot open '%s': %s", path,
			                   strerror(errno));
		}
		w->owned_fd = 1;
		return PEXEC_OK;
	}
	w->path = strdup(path);
	if (!w->path || asprintf(&w->tmp_path, "%s.pexec-XXXXXX", path) < 0) {
		w->tmp_path = NULL;
		pexec__writer_abort(w);
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	}
	/* An unnamed file in the target's directory leaves nothing behind even
	 * if pexec is killed; where the filesystem lacks O_TMPFILE, a named
	 * temporary is removed on every failure pexec lives through. */
	w->fd = open_unnamed(path);
	if (w->fd >= 0) {
		w->unnamed = 1;
		return PEXEC_OK;
	}
	w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
	if (w->fd < 0) {
		/* The template's name was never made: the user's file and its
		 * directory are what to look at. */
		const char *slash = strrchr(path, '/');
		int dir_len = slash ? (int)(slash - path) + (slash == path) : 1;
		pexec_code rc = pexec__fail(err, PEXEC_ESYS,
		                            "cannot create output '%s': cannot create a temporary "
		                            "file in '%.*s': %s", path, dir_len,
		                            slash ? path : ".", strerror(errno));
		free(w->tmp_path);
		w->tmp_path = NULL;
		pexec__writer_abort(w);
		return rc;
	}
	{
		/* mkostemp makes the file 0600; give it what open(2) would. */
		mode_t mask = umask(022);
		umask(mask);
		fchmod(w->fd, 0666 & ~mask);
	}
	return PEXEC_OK;
}

pexec_code pexec__writer_open_partial(struct pexec__writer *w, const char *path,
                                      const char *partial, int resume, uint64_t resume_bytes,
                                      uint64_t resume_count, pexec_format format, int drop_null,
                                      pexec_error *err)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->format = format;
	w->drop_null = drop_null;
	w->buf = malloc(OUT_BUF);
	w->path = strdup(path);
	w->tmp_path = strdup(partial);
	if (!w->buf || !w->path || !w->tmp_path) {
		writer_release(w);
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	}
	w->fd = open(partial, O_WRONLY | O_CREAT | O_CLOEXEC | (resume ? 0 : O_TRUNC), 0666);
	if (w->fd < 0) {
		pexec_code rc = pexec__fail(err, PEXEC_ESYS, "cannot create output '%s': cannot "
		                            "open its partial file '%s': %s", path, partial,
		                            strerror(errno));
		writer_release(w);
		return rc;
	}
	if (resume) {
		if (ftruncate(w->fd, (off_t)resume_bytes) || lseek(w->fd, 0, SEEK_END) < 0) {
			pexec_code rc = pexec__fail(err, PEXEC_ESYS, "cannot cut '%s' back: %s",
			                            partial, strerror(errno));
			close(w->fd);
			w->fd = -1;
			writer_release(w);
			return rc;
		}
		w->bytes = resume_bytes;
		w->count = resume_count;
	}
	return PEXEC_OK;
}

pexec_code pexec__writer_sync(struct pexec__writer *w, pexec_error *err)
{
	pexec_code rc = flush(w, err);

	if (!rc && fdatasync(w->fd))
		rc = write_error(w, err);
	return rc;
}

void pexec__writer_keep(struct pexec__writer *w)
{
	pexec_error ignored;

	if (w->fd >= 0) {
		flush(w, &ignored);
		fdatasync(w->fd);
		close(w->fd);
	}
	w->fd = -1;
	writer_release(w);
}

static pexec_code put_newline(struct pexec__writer *w, pexec_error *err)
{
	pexec_code rc = put(w, "\n", 1, err);

	if (!rc)
		w->count++;
	return rc;
}

pexec_code pexec__writer_put(struct pexec__writer *w, const char *data, size_t len,
                             pexec_error *err)
{
	if (w->drop_null && len == 4 && memcmp(data, "null", 4) == 0)
		return PEXEC_OK;
	if (w->format == PEXEC_FORMAT_JSON) {
		pexec_code rc;

		if (OUT_BUF - w->len >= len + 2) {
			/* The common case, in one copy. */
			memcpy(w->buf + w->len, w->count ? ",\n" : "[\n", 2);
			memcpy(w->buf + w->len + 2, data, len);
			w->len += len + 2;
		} else if ((rc = put(w, w->count ? ",\n" : "[\n", 2, err)) ||
		           (rc = put(w, data, len, err))) {
			return rc;
		}
		w->count++;
		return PEXEC_OK;
	}
	if (memchr(data, '\n', len) || memchr(data, '\r', len)) {
		/* A line break in valid JSON text can only be whitespace, so turning
		 * it into a space keeps the value and the one-value-per-line rule. */
		for (size_t i = 0; i < len; i++) {
			char ch = data[i] == '\n' || data[i] == '\r' ? ' ' : data[i];
			pexec_code rc = put(w, &ch, 1, err);
			if (rc)
				return rc;
		}
		return put_newline(w, err);
	}
	pexec_code rc = put(w, data, len, err);
	return rc ? rc : put_newline(w, err);
}


pexec_code pexec__writer_finish(struct pexec__writer *w, pexec_error *err)
{
	pexec_code rc = PEXEC_OK;

	if (w->format == PEXEC_FORMAT_JSON)
		rc = w->count ? put(w, "\n]\n", 3, err) : put(w, "[]\n", 3, err);
	if (!rc)
		rc = flush(w, err);
	if (!rc)
		position_at_end(w);
	if (!rc && w->path) {
		/* The name appears only once every byte is on disk. */
		if (fsync(w->fd)) {
			rc = write_error(w, err);
		} else if (w->unnamed && link_unnamed(w)) {
			rc = pexec__fail(err, PEXEC_ESYS, "cannot create output '%s': cannot name "
			                 "its temporary file '%s': %s", w->path, w->tmp_path,
			                 strerror(errno));
		} else if (close(w->fd)) {
			w->fd = -1;
			rc = write_error(w, err);
		} else {
			w->fd = -1;
			if (rename(w->tmp_path, w->path))
				rc = pexec__fail(err, PEXEC_ESYS, "cannot rename '%s' to '%s': %s",
				                 w->tmp_path, w->path, strerror(errno));
		}
	}
	if (rc) {
		pexec__writer_abort(w);
		return rc;
	}
	writer_release(w);
	return PEXEC_OK;
}

void pexec__writer_abort(struct pexec__writer *w)
{
	pexec_error ignored;

	if (w->path) {
		if (w->fd >= 0)
			close(w->fd);
		if (w->tmp_path && !w->unnamed)
			unlink(w->tmp_path);
	} else if (w->fd >= 0 && w->buf) {
		flush(w, &ignored);
		position_at_end(w);
	}
	if (w->path || !w->owned_fd)
		w->fd = -1;
	writer_release(w);
}

/* Length of the UTF-8 sequence at p (at most n bytes), or 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

int pexec__json_quote(pexec_buf *out, const char *data, size_t len, size_t max)
{
	const unsigned char *p = (const unsigned char *)data;
	size_t i = 0;

	if (pexec_buf_append(out, "\"", 1))
		return -1;
	while (i < len) {
		size_t n = utf8_len(p + i, len - i);
		char esc[8];
		int rc;

		if (i + (n ? n : 1) > max) {
			if (pexec_buf_puts(out, "..."))
				return -1;
			break;
		}
		if (n == 0) {
			rc = pexec_buf_puts(out, "\\ufffd");
			n = 1;
		} else if (p[i] == '"' || p[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)p[i];
			rc = pexec_buf_append(out, esc, 2);
		} else if (p[i] < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
			rc = pexec_buf_append(out, esc, 6);
		} else {
			rc = pexec_buf_append(out, p + i, n);
		}
		if (rc)
			return -1;
		i += n;
	}
	return pexec_buf_append(out, "\"", 1);
}

/* Chunks' output this big goes out straight from where it lies. */
#define SPAN_DIRECT ((size_t)64 << 10)

pexec_code pexec__writer_put_span(struct pexec__writer *w, const char *out, size_t len,
                                  uint32_t written, pexec_error *err)
{
	pexec_code rc;

	if (written == 0)
		return PEXEC_OK;
	if (w->format == PEXEC_FORMAT_JSON && w->count == 0) {
		/* The array's first result: "[" where its "," was. */
		if ((rc = put(w, "[", 1, err)))
			return rc;
		out++;
		len--;
	}
	if (len >= SPAN_DIRECT) {
		if ((rc = flush(w, err)) || (rc = out_write(w, out, len, err)))
			return rc;
	} else if ((rc = put(w, out, len, err))) {
		return rc;
	}
	w->count += written;
	return PEXEC_OK;
}

int pexec__writer_positional(struct pexec__writer *w)
{
	struct stat st;
	off_t at;
	int fl = fcntl(w->fd, F_GETFL);

	if (w->positional)
		return 1;
	if (fl < 0 || (fl & O_APPEND) || fstat(w->fd, &st) || !S_ISREG(st.st_mode) ||
	    (at = lseek(w->fd, 0, SEEK_CUR)) < 0)
		return 0;
	w->base = at - (off_t)w->bytes;
	w->positional = 1;
	return 1;
}

pexec_code pexec__writer_reserve(struct pexec__writer *w, size_t len, uint32_t written,
                                 uint64_t *offset, size_t *skip, pexec_error *err)
{
	pexec_code rc;

	*skip = 0;
	if (written == 0) {
		*skip = len;
		*offset = 0;
		return PEXEC_OK;
	}
	if (w->format == PEXEC_FORMAT_JSON && w->count == 0) {
		/* The array's first result: "[" where its "," was. */
		if ((rc = put(w, "[", 1, err)))
			return rc;
		*skip = 1;
	}
	if ((rc = flush(w, err)))
		return rc;
	*offset = (uint64_t)w->base + w->bytes;
	w->bytes += len - *skip;
	w->count += written;
	return PEXEC_OK;
}

pexec_code pexec__writer_put_batch(struct pexec__writer *w, const struct iovec *texts,
                                   uint32_t count, pexec_error *err)
{
	/* writer_put already copies separator and text in one go when they fit;
	 * what the batch saves is the pool's callback per result. */
	for (uint32_t i = 0; i < count; i++) {
		pexec_code rc = pexec__writer_put(w, texts[i].iov_base, texts[i].iov_len, err);
		if (rc)
			return rc;
	}
	return PEXEC_OK;
}

int pexec_json_quote(pexec_buf *out, const char *data, size_t len)
{
	return pexec__json_quote(out, data, len, SIZE_MAX);
}

/* A code point of a C1 control (U+0080..U+009F), which a terminal may take
 * for the start of an escape sequence as it does ESC. */
static int is_c1(const unsigned char *p, size_t n)
{
	return n == 2 && p[0] == 0xc2 && p[1] < 0xa0;
}

int pexec_message_line(pexec_buf *out, const char *msg, size_t len)
{
	const unsigned char *p = (const unsigned char *)msg;
	const char *nl = memchr(msg, '\n', len);
	size_t end = nl ? (size_t)(nl - msg) : len;

	for (size_t i = 0; i < end;) {
		size_t n = utf8_len(p + i, end - i);
		char esc[8];
		int rc;

		if (p[i] == '\t') {
			rc = pexec_buf_append(out, "\\t", 2);
			n = 1;
		} else if (n == 0 || p[i] < 0x20 || p[i] == 0x7f || is_c1(p + i, n)) {
			/* One byte at a time: the lead of a C1 control, or a byte
			 * that starts no character. */
			snprintf(esc, sizeof(esc), "\\x%02x", p[i]);
			rc = pexec_buf_append(out, esc, 4);
			n = 1;
		} else {
			rc = pexec_buf_append(out, p + i, n);
		}
		if (rc)
			return -1;
		i += n;
	}
	return 0;
}
