/*
 * journal.c - the resume journal (journal.h).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal.h"
#include "util.h"

void pexec__journal_init(struct pexec__journal *j)
{
	memset(j, 0, sizeof(*j));
	j->fd = -1;
	pexec__buf_init(&j->out);
}

static int read_file(const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	pexec_buf b;
	ssize_t n;

	if (fd < 0)
		return -1;
	pexec__buf_init(&b);
	for (;;) {
		if (pexec_buf_reserve(&b, 65536 + 1))
			goto fail;
		n = pexec__read_some(fd, b.data + b.len, b.cap - b.len - 1);
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		b.len += (size_t)n;
	}
	close(fd);
	b.data[b.len] = '\0';
	*out = b.data;
	*len = b.len;
	return 0;
fail:
	close(fd);
	pexec__buf_release(&b);
	return -1;
}

static int add_failed(struct pexec__journal *j, uint64_t index, size_t *cap)
{
	if (j->nfailed == *cap) {
		size_t n = *cap ? *cap * 2 : 64;
		uint64_t *f = realloc(j->failed, n * sizeof(*f));
		if (!f)
			return -1;
		j->failed = f;
		*cap = n;
	}
	j->failed[j->nfailed++] = index;
	return 0;
}

static uint64_t num(const cJSON *obj, const char *key, int *ok)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	if (!cJSON_IsNumber(v) || v->valuedouble < 0) {
		*ok = 0;
		return 0;
	}
	return (uint64_t)v->valuedouble;
}

pexec_code pexec__journal_read(struct pexec__journal *j, const char *path, pexec_error *err)
{
	char *text = NULL, *line, *next;
	size_t len, cap = 0, all_failed = 0;
	pexec_code rc = PEXEC_OK;

	if (read_file(path, &text, &len))
		return pexec__fail(err, PEXEC_EUSAGE, "cannot resume: no journal '%s' (%s)", path,
		                   strerror(errno));
	for (line = text; line < text + len; line = next) {
		cJSON *rec;
		const cJSON *cp;
		int ok = 1;

		next = strchr(line, '\n');
		if (!next)
			break; /* a torn last line: never made durable */
		*next++ = '\0';
		rec = cJSON_Parse(line);
		if (!rec) {
			rc = pexec__fail(err, PEXEC_EUSAGE, "cannot resume: journal '%s' is damaged",
			                 path);
			break;
		}
		if (!j->header) {
			if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(rec, "pexec_journal")) ||
			    !(j->header = strdup(line)))
				rc = pexec__fail(err, PEXEC_EUSAGE,
				                 "cannot resume: '%s' is not a pexec journal", path);
		} else if ((cp = cJSON_GetObjectItemCaseSensitive(rec, "checkpoint"))) {
			uint64_t items = num(cp, "items", &ok), written = num(cp, "written", &ok);
			uint64_t bytes = num(cp, "bytes", &ok);
			const cJSON *h = cJSON_GetObjectItemCaseSensitive(cp, "hash");
			if (ok && cJSON_IsString(h)) {
				j->items = items;
				j->written = written;
				j->bytes = bytes;
				j->hash = strtoull(h->valuestring, NULL, 16);
				/* Failures up to here are now covered. */
				all_failed = j->nfailed;
			}
		} else if (cJSON_GetObjectItemCaseSensitive(rec, "failed")) {
			uint64_t index = num(rec, "failed", &ok);
			if (ok && add_failed(j, index, &cap))
				rc = pexec__fail(err, PEXEC_ESYS, "out of memory");
		} else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "complete"))) {
			uint64_t items = num(rec, "items", &ok);
			j->complete = 1;
			all_failed = j->nfailed;
			if (ok && items > j->items)
				j->items = items;
		}
		cJSON_Delete(rec);
		j->valid_len = (size_t)(next - text);
		if (rc)
			break;
	}
	if (!rc && !j->header)
		rc = pexec__fail(err, PEXEC_EUSAGE, "cannot resume: journal '%s' is empty", path);
	/* Failures after the last checkpoint are recomputed with their items. */
	if (!rc) {
		size_t keep = 0;
		for (size_t i = 0; i < all_failed; i++)
			if (j->failed[i] < j->items)
				j->failed[keep++] = j->failed[i];
		j->nfailed = keep;
	}
	free(text);
	return rc;
}

static pexec_code journal_flush(struct pexec__journal *j, pexec_error *err)
{
	if (j->out.len && pexec__write_full(j->fd, j->out.data, j->out.len))
		return pexec__fail(err, PEXEC_ESYS, "cannot write '%s': %s", j->path,
		                   strerror(errno));
	j->out.len = 0;
	return PEXEC_OK;
}

pexec_code pexec__journal_open(struct pexec__journal *j, const char *path, const char *header,
                               int append, pexec_error *err)
{
	j->path = strdup(path);
	if (!j->path)
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	j->fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0666);
	if (j->fd < 0)
		return pexec__fail(err, PEXEC_ESYS, "cannot create '%s': %s", path, strerror(errno));
	/* A torn last line (never made durable) goes before anything is added. */
	if (append && ftruncate(j->fd, (off_t)j->valid_len))
		return pexec__fail(err, PEXEC_ESYS, "cannot write '%s': %s", path, strerror(errno));
	if (!append) {
		if (pexec_buf_puts(&j->out, header) || pexec_buf_puts(&j->out, "\n"))
			return pexec__fail(err, PEXEC_ESYS, "out of memory");
		return journal_flush(j, err);
	}
	return PEXEC_OK;
}

int pexec__journal_failed(struct pexec__journal *j, uint64_t index)
{
	return pexec_buf_printf(&j->out, "{\"failed\":%" PRIu64 "}\n", index);
}

pexec_code pexec__journal_checkpoint(struct pexec__journal *j, uint64_t items, uint64_t written,
                                     uint64_t bytes, uint64_t hash, pexec_error *err)
{
	pexec_code rc;

	if (pexec_buf_printf(&j->out,
	                     "{\"checkpoint\":{\"items\":%" PRIu64 ",\"written\":%" PRIu64
	                     ",\"bytes\":%" PRIu64 ",\"hash\":\"%016" PRIx64 "\"}}\n",
	                     items, written, bytes, hash))
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	rc = journal_flush(j, err);
	if (!rc && fdatasync(j->fd))
		rc = pexec__fail(err, PEXEC_ESYS, "cannot write '%s': %s", j->path, strerror(errno));
	return rc;
}

pexec_code pexec__journal_complete(struct pexec__journal *j, uint64_t items, pexec_error *err)
{
	pexec_code rc;

	if (pexec_buf_printf(&j->out, "{\"complete\":true,\"items\":%" PRIu64 "}\n", items))
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	rc = journal_flush(j, err);
	if (!rc && fdatasync(j->fd))
		rc = pexec__fail(err, PEXEC_ESYS, "cannot write '%s': %s", j->path, strerror(errno));
	return rc;
}

void pexec__journal_release(struct pexec__journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	pexec__buf_release(&j->out);
	free(j->path);
	free(j->header);
	free(j->failed);
	pexec__journal_init(j);
}
