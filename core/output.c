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
	return w->path ? w->path : "<stdout>";
}

static pexec_code write_error(struct pexec__writer *w, pexec_error *err)
{
	if (errno == EPIPE)
		return pexec__fail(err, PEXEC_EPIPE, "cannot write '%s': output closed by its reader",
		                   where(w));
	return pexec__fail(err, PEXEC_ESYS, "cannot write '%s': %s", where(w), strerror(errno));
}

static pexec_code flush(struct pexec__writer *w, pexec_error *err)
{
	if (w->len && pexec__write_full(w->fd, w->buf, w->len))
		return write_error(w, err);
	w->len = 0;
	return PEXEC_OK;
}

static pexec_code put(struct pexec__writer *w, const char *data, size_t len, pexec_error *err)
{
	if (OUT_BUF - w->len < len) {
		pexec_code rc = flush(w, err);
		if (rc)
			return rc;
		if (len >= OUT_BUF)
			return pexec__write_full(w->fd, data, len) ? write_error(w, err) : PEXEC_OK;
	}
	memcpy(w->buf + w->len, data, len);
	w->len += len;
	return PEXEC_OK;
}

pexec_code pexec__writer_open(struct pexec__writer *w, const char *path, int fd,
                              pexec_format format, int drop_null, pexec_error *err)
{
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
	w->path = strdup(path);
	if (!w->path || asprintf(&w->tmp_path, "%s.pexec-XXXXXX", path) < 0) {
		w->tmp_path = NULL;
		pexec__writer_abort(w);
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	}
	w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
	if (w->fd < 0) {
		pexec_code rc = pexec__fail(err, PEXEC_ESYS, "cannot create '%s': %s", w->tmp_path,
		                            strerror(errno));
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
		pexec_code rc = put(w, w->count ? ",\n" : "[\n", 2, err);
		if (rc || (rc = put(w, data, len, err)))
			return rc;
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

static void writer_release(struct pexec__writer *w)
{
	free(w->buf);
	free(w->path);
	free(w->tmp_path);
	w->buf = w->path = w->tmp_path = NULL;
}

pexec_code pexec__writer_finish(struct pexec__writer *w, pexec_error *err)
{
	pexec_code rc = PEXEC_OK;

	if (w->format == PEXEC_FORMAT_JSON)
		rc = w->count ? put(w, "\n]\n", 3, err) : put(w, "[]\n", 3, err);
	if (!rc)
		rc = flush(w, err);
	if (!rc && w->path) {
		/* The name appears only once every byte is on disk. */
		if (fsync(w->fd) || close(w->fd)) {
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
		if (w->tmp_path)
			unlink(w->tmp_path);
	} else if (w->fd >= 0 && w->buf) {
		flush(w, &ignored);
	}
	w->fd = -1;
	writer_release(w);
}
