/*
 * resume.c - a job's resume journal (job_internal.h): the header that says
 * which run a journal belongs to, opening the partial output anew or where
 * an interrupted run left it, --retry-failed's rerun of the failed items
 * merged into the old output, and finishing the journal after the run.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "item.h"
#include "job_internal.h"
#include "split/split.h"
#include "util.h"

/* Hashes a whole file (the plugin: a rebuilt plugin is another plugin). */
static uint64_t hash_file(const char *path)
{
	char buf[65536];
	uint64_t h = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	while ((n = pexec__read_some(fd, buf, sizeof(buf))) > 0)
		h = pexec__hash(h, buf, (size_t)n);
	close(fd);
	return h;
}

/* A format as the journal names it. */
static const char *format_name(pexec_format format)
{
	switch (format) {
	case PEXEC_FORMAT_NDJSON:
		return "ndjson";
	case PEXEC_FORMAT_LINES:
		return "lines";
	case PEXEC_FORMAT_NUL:
		return "nul";
	default:
		return "json";
	}
}

/* One input file as the journal knows it. */
static cJSON *input_record(const struct pexec__input_file *f, pexec_format format)
{
	cJSON *in = cJSON_CreateObject();
	char stamp[48];

	if (!in)
		return NULL;
	cJSON_AddStringToObject(in, "path", f->path);
	cJSON_AddNumberToObject(in, "size", (double)f->size);
	snprintf(stamp, sizeof(stamp), "%lld.%09ld", (long long)f->mtime.tv_sec, f->mtime.tv_nsec);
	cJSON_AddStringToObject(in, "mtime", stamp);
	cJSON_AddStringToObject(in, "format", format_name(format));
	return in;
}

/* What identifies a run for --resume: everything that shapes its output.
 * The input is one record, or, for several files, an array of them. */
static char *journal_header(const pexec_job *job, const pexec_loaded_plugin *plugin,
                            const struct pexec__inputs *inputs)
{
	const pexec_descriptor *d = pexec_plugin_descriptor(plugin);
	cJSON *h = cJSON_CreateObject(), *pl = cJSON_CreateObject(), *in = NULL;
	char hex[24], *text = NULL;

	if (!h || !pl)
		goto out;
	/* 2: the hash is of items summed (pexec__item_hash), not chained. */
	cJSON_AddNumberToObject(h, "pexec_journal", 2);
	cJSON_AddStringToObject(pl, "name", d->name);
	cJSON_AddStringToObject(pl, "version", d->version ? d->version : "");
	snprintf(hex, sizeof(hex), "%016" PRIx64, hash_file(pexec_plugin_path(plugin)));
	cJSON_AddStringToObject(pl, "file_hash", hex);
	cJSON_AddItemToObject(h, "plugin", pl);
	pl = NULL;
	if (job->opts.config)
		cJSON_AddStringToObject(h, "config", job->opts.config);
	else
		cJSON_AddNullToObject(h, "config");
	if (inputs->n == 1) {
		in = input_record(&inputs->files[0], job->input_format);
	} else if ((in = cJSON_CreateArray())) {
		for (size_t i = 0; i < inputs->n; i++)
			cJSON_AddItemToArray(in, input_record(&inputs->files[i], job->input_format));
	}
	if (!in)
		goto out;
	cJSON_AddItemToObject(h, "input", in);
	cJSON_AddStringToObject(h, "output_format", format_name(job->output_format));
	cJSON_AddBoolToObject(h, "drop_null", job->drop_null);
	text = cJSON_PrintUnformatted(h);
out:
	cJSON_Delete(h);
	cJSON_Delete(pl);
	return text;
}

/* Says what differs between the journal's header and this run's. */
static pexec_code compare_headers(const char *was, const char *now, pexec_error *err)
{
	static const struct {
		const char *key, *what;
	} parts[] = {
		{ "plugin", "the plugin changed (another file, name or version)" },
		{ "config", "the --config differs" },
		{ "input", "the input changed (its name, size, modification time or format)" },
		{ "output_format", "the --output-format differs" },
		{ "drop_null", "--drop-null differs" },
	};
	cJSON *a = cJSON_Parse(was), *b = cJSON_Parse(now);
	const cJSON *va = cJSON_GetObjectItemCaseSensitive(a, "pexec_journal");
	const cJSON *vb = cJSON_GetObjectItemCaseSensitive(b, "pexec_journal");
	pexec_code rc = PEXEC_OK;

	if (!cJSON_Compare(va, vb, 1))
		rc = pexec__fail(err, PEXEC_EUSAGE,
		                 "cannot resume: the journal is of another pexec version (%g, this one "
		                 "writes %g); run without --resume to start over",
		                 cJSON_IsNumber(va) ? va->valuedouble : 0.0,
		                 cJSON_IsNumber(vb) ? vb->valuedouble : 0.0);
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && !rc; i++) {
		const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, parts[i].key);
		const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, parts[i].key);
		if (!x || !y || !cJSON_Compare(x, y, 1))
			rc = pexec__fail(err, PEXEC_EUSAGE,
			                 "cannot resume: %s since the run began; run without "
			                 "--resume to start over", parts[i].what);
	}
	cJSON_Delete(a);
	cJSON_Delete(b);
	return rc;
}

/* Takes the first `n` items as the resumed run's, checking they are the same
 * bytes it computed. */
static pexec_code skip_done(struct job_ctx *j, uint64_t n, uint64_t want_hash, pexec_error *err)
{
	const char *data;
	size_t len;
	uint64_t h = 0;

	for (uint64_t i = 0; i < n; i++) {
		int rc = pexec__inputs_next(&j->in, &data, &len, err);
		if (rc < 0)
			return (pexec_code)-rc;
		if (rc == 0)
			return pexec__fail(err, PEXEC_EUSAGE,
			                   "cannot resume: the input changed since the run began "
			                   "(it now has fewer than %" PRIu64 " items)", n);
		h += pexec__item_hash(i, data, len);
	}
	if (h != want_hash)
		return pexec__fail(err, PEXEC_EUSAGE,
		                   "cannot resume: the input changed since the run began (its first "
		                   "%" PRIu64 " items differ); run without --resume to start over",
		                   n);
	j->hash = h;
	return PEXEC_OK;
}

/* Sets up the partial output and the journal: anew, or continuing a run. */
pexec_code pexec__job_open_journaled(struct job_ctx *j, const pexec_loaded_plugin *plugin,
                                        pexec_error *err)
{
	const pexec_job *job = j->job;
	char *header = journal_header(job, plugin, &j->in);
	struct stat st;
	pexec_code rc;

	if (!header)
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	if (job->resume && access(j->journal_path, F_OK) != 0 && access(job->output, F_OK) == 0) {
		/* A run that ended with every item done leaves no journal. */
		j->journal.complete = 1;
		rc = PEXEC_OK;
	} else if (job->resume) {
		rc = pexec__journal_read(&j->journal, j->journal_path, err);
		if (!rc)
			rc = compare_headers(j->journal.header, header, err);
		if (!rc && !j->journal.complete &&
		    (stat(j->partial_path, &st) || (uint64_t)st.st_size < j->journal.bytes))
			rc = pexec__fail(err, PEXEC_EUSAGE,
			                 "cannot resume: the partial output '%s' is missing or shorter "
			                 "than its journal says", j->partial_path);
		if (!rc && !j->journal.complete)
			rc = skip_done(j, j->journal.items, j->journal.hash, err);
		if (!rc && !j->journal.complete) {
			j->base = j->done = j->journal.items;
			j->failures = j->journal.nfailed;
		}
	} else {
		rc = PEXEC_OK;
	}
	if (!rc && !j->journal.complete) {
		rc = pexec__writer_open_partial(&j->out, job->output, j->partial_path, job->resume,
		                                j->journal.bytes, j->journal.written,
		                                job->output_format, job->drop_null, err);
		if (!rc) {
			j->out_open = 1;
			rc = pexec__journal_open(&j->journal, j->journal_path, header, job->resume,
			                         err);
		}
	}
	free(header);
	j->last_checkpoint = pexec__now_ns();
	return rc;
}

/* --retry-failed, first step: the failed items to run again, taken from
 * the journal (whose list the merge rewrites).  j->only stays NULL when
 * there are none. */
static pexec_code retry_begin(struct job_ctx *j, pexec_error *err)
{
	const struct pexec__journal *jr = &j->journal;

	if (j->job->drop_null)
		return pexec__fail(err, PEXEC_EUSAGE,
		                   "--retry-failed cannot work with --drop-null: the output no longer "
		                   "holds every item in its place");
	if (jr->nfailed == 0)
		return PEXEC_OK;
	j->only = malloc(jr->nfailed * sizeof(*j->only));
	j->retried = calloc(jr->nfailed, sizeof(*j->retried));
	if (!j->only || !j->retried) {
		free(j->only);
		free(j->retried);
		j->only = NULL;
		j->retried = NULL;
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	}
	memcpy(j->only, jr->failed, jr->nfailed * sizeof(*j->only));
	for (size_t i = 0; i < jr->nfailed; i++)
		pexec__buf_init(&j->retried[i]);
	j->nonly = jr->nfailed;
	j->only_at = 0;
	j->read_index = 0;
	return PEXEC_OK;
}

static void retry_end(struct job_ctx *j)
{
	for (size_t i = 0; j->retried && i < j->nonly; i++)
		pexec__buf_release(&j->retried[i]);
	free(j->retried);
	free(j->only);
	j->retried = NULL;
	j->only = NULL;
}

/* The old output read back, and the new one written through the partial
 * file, with the failed items' new results in their places. */
struct merge {
	int old_fd;
	pexec__splitter *old;
	struct pexec__writer w;
	int w_open;
	char *header;
	uint64_t merged;       /* items written */
	uint64_t failed_again;
};

static pexec_code merge_open(struct job_ctx *j, struct merge *m, pexec_error *err)
{
	const pexec_job *job = j->job;
	pexec_code rc;

	m->old_fd = open(job->output, O_RDONLY | O_CLOEXEC);
	if (m->old_fd < 0)
		return pexec__fail(err, PEXEC_EUSAGE, "cannot retry: cannot read '%s': %s",
		                   job->output, strerror(errno));
	m->old = pexec__split_fd(m->old_fd, job->output, job->output_format);
	rc = m->old ? pexec__writer_open_partial(&m->w, job->output, j->partial_path, 0, 0, 0,
	                                         job->output_format, 0, err)
	            : pexec__fail(err, PEXEC_ESYS, "out of memory");
	if (rc)
		return rc;
	m->w_open = 1;
	pexec__journal_release(&j->journal);
	m->header = journal_header(job, j->plugin, &j->in);
	return m->header ? pexec__journal_open(&j->journal, j->journal_path, m->header, 0, err)
	                 : pexec__fail(err, PEXEC_ESYS, "out of memory");
}

/* Copies the old output item by item; a failed item that failed again is
 * noted in the new journal. */
static pexec_code merge_items(struct job_ctx *j, struct merge *m, pexec_error *err)
{
	pexec_code rc = PEXEC_OK;

	for (uint64_t k = 0; !rc; m->merged++) {
		const char *data;
		size_t len;
		uint64_t i = m->merged;
		int got = pexec__split_next(m->old, &data, &len, err);

		if (got < 0) {
			rc = (pexec_code)-got;
			break;
		}
		if (got == 0)
			break;
		if (k < j->nonly && j->only[k] == i) {
			if (j->retried[k].data) {
				data = j->retried[k].data;
				len = j->retried[k].len;
			} else {
				m->failed_again++;
				pexec__journal_failed(&j->journal, i);
			}
			k++;
		}
		rc = pexec__writer_put(&m->w, data, len, err);
	}
	return rc;
}

/* Puts the merged output in place, and keeps the journal (complete) while
 * items still fail, or removes it. */
static pexec_code merge_finish(struct job_ctx *j, struct merge *m, pexec_code rc,
                               pexec_error *err)
{
	struct pexec__journal *jr = &j->journal;

	if (!m->w_open)
		return rc;
	if (!rc)
		rc = pexec__writer_sync(&m->w, err);
	if (!rc && m->failed_again)
		rc = pexec__journal_checkpoint(jr, m->merged, m->w.count, m->w.bytes, 0, err);
	if (!rc)
		rc = pexec__writer_finish(&m->w, err);
	else
		pexec__writer_abort(&m->w);
	m->w_open = 0;
	if (!rc && m->failed_again)
		rc = pexec__journal_complete(jr, m->merged, err);
	else if (!rc)
		unlink(j->journal_path);
	if (!rc && m->failed_again)
		rc = PEXEC_EITEM;
	return rc;
}

static void merge_release(struct merge *m)
{
	if (m->w_open)
		pexec__writer_abort(&m->w);
	pexec__split_free(m->old);
	if (m->old_fd >= 0)
		close(m->old_fd);
	free(m->header);
}

/* --retry-failed over a finished run: recompute its failed items, then write
 * the output again with their new results in their places. */
pexec_code pexec__job_retry_failed(struct job_ctx *j, pexec_error *err)
{
	struct merge m = { .old_fd = -1 };
	pexec_opts opts = j->job->opts;
	pexec_code rc = retry_begin(j, err);

	if (rc || !j->only)
		return rc;
	opts.result_input = 1;
	rc = j->run(j->run_ctx, j->plugin, &opts, pexec__job_next, j, pexec__job_sink, j, j->stats,
	            err);
	if (rc == PEXEC_OK || rc == PEXEC_EITEM) {
		rc = merge_open(j, &m, err);
		if (!rc)
			rc = merge_items(j, &m, err);
		rc = merge_finish(j, &m, rc, err);
	}
	merge_release(&m);
	retry_end(j);
	return rc;
}

/* Ends a journaled run: the output renamed into place, and the journal
 * removed, or kept (complete) while some items failed. */
pexec_code pexec__job_finish_journaled(struct job_ctx *j, pexec_code rc, pexec_error *err)
{
	pexec_error e2;

	switch (rc) {
	case PEXEC_OK:
	case PEXEC_EITEM:
		if (pexec__job_checkpoint(j, &e2) || pexec__writer_finish(&j->out, &e2)) {
			*err = e2;
			j->out_open = 0;
			return PEXEC_ESYS;
		}
		j->out_open = 0;
		if (j->failures == 0)
			unlink(j->journal_path);
		else if (pexec__journal_complete(&j->journal, j->done, &e2)) {
			*err = e2;
			return PEXEC_ESYS;
		}
		return rc;
	case PEXEC_ECANCELED:
	case PEXEC_ESYS:
	case PEXEC_EPIPE:
		/* Interrupted: what is done stays, for --resume. */
		pexec__job_checkpoint(j, &e2);
		pexec__writer_keep(&j->out);
		j->out_open = 0;
		return rc;
	default:
		/* The same run would fail the same way: nothing to resume. */
		pexec__writer_abort(&j->out);
		j->out_open = 0;
		unlink(j->journal_path);
		return rc;
	}
}