/*
 * job.c - pexec_job_run(): a whole run as the pexec command does it.  Loads
 * the plugin, opens the input and the output, and wires the splitter (source)
 * and the writer (sink) to pexec_run().
 *
 * With an output file the run keeps a resume journal (journal.h) and writes
 * through FILE.pexec-partial, so that an interrupted run can be continued with
 * `resume`, and a finished run's failed items recomputed with `retry_failed`.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inputs.h"
#include "journal.h"
#include "landing.h"
#include "lock.h"
#include "spans.h"
#include "output.h"
#include "progress.h"
#include "split/split.h"
#include "util.h"
#include "item.h"

/* The longest excerpt of a failed item's input in an --errors record. */
#define EXCERPT_MAX 200
#define CHECKPOINT_NS 1000000000ull

struct job_ctx {
	const pexec_job *job;
	pexec_engine_fn run; /* the engine: pexec_run() or the job's own */
	void *run_ctx;
	pexec_loaded_plugin *plugin;
	struct pexec__inputs in;
	int in_open;
	struct pexec__writer out;
	int out_open;
	int errors_fd;       /* --errors FILE, or -1 */
	struct pexec__lock lock; /* -o FILE is this run's alone */
	struct pexec__span_src src; /* the input as spans, where the run goes so */
	int spanning;
	pexec_buf record;
	uint64_t t0;
	pexec_stats *stats;
	struct pexec__marks marks; /* for pexec_progress.bytes_done */

	/* The resume journal (with an output file and a regular input). */
	int journaling;
	struct pexec__journal journal;
	char *journal_path, *partial_path;
	uint64_t base;       /* items taken over from the resumed run */
	uint64_t done;       /* items whose results are in the output */
	uint64_t hash;       /* of their input bytes */
	uint64_t failures;   /* failed items, the resumed run's included */
	uint64_t last_checkpoint;
	/* Where the workers write the output themselves: what has landed. */
	int landing_on;
	struct pexec__landing landing;

	/* --retry-failed: the failed items, and their new results. */
	uint64_t *only;
	size_t nonly, only_at;
	uint64_t read_index; /* index of the next item the splitter yields */
	pexec_buf *retried;  /* one result (or NULL) per failed item */
};

static int job_next(void *ctx, const char **data, size_t *len, pexec_error *err)
{
	struct job_ctx *j = ctx;

	if (!j->only)
		return pexec__inputs_next(&j->in, data, len, err);
	/* Retrying: only the failed items go out. */
	while (j->only_at < j->nonly) {
		int rc = pexec__inputs_next(&j->in, data, len, err);
		if (rc <= 0)
			return rc;
		if (j->read_index++ == j->only[j->only_at]) {
			j->only_at++;
			return 1;
		}
	}
	return 0;
}

/* {"index":N,"stage":"map","reason":"...","detail":"...","attempts":N,
 * "input":"..."}: the reason is the message's first line, the detail (only
 * when there is one) what follows it, as a plugin's traceback. */
static pexec_code write_error_record(struct job_ctx *j, const pexec_result *r, pexec_error *err)
{
	pexec_buf *b = &j->record;
	const char *msg = r->message ? r->message : "";
	const char *nl = strchr(msg, '\n');
	size_t first = nl ? (size_t)(nl - msg) : strlen(msg);

	b->len = 0;
	if (pexec_buf_printf(b, "{\"index\":%llu,\"stage\":\"%s\",\"reason\":",
	                     (unsigned long long)r->index, pexec_stage_str(r->stage)) ||
	    pexec__json_quote(b, msg, first, SIZE_MAX) ||
	    (nl && (pexec_buf_puts(b, ",\"detail\":") ||
	            pexec__json_quote(b, nl + 1, strlen(nl + 1), SIZE_MAX))) ||
	    pexec_buf_printf(b, ",\"attempts\":%u,\"input\":", r->attempts) ||
	    pexec__json_quote(b, r->input ? r->input : "", r->input ? r->input_len : 0,
	                      EXCERPT_MAX) ||
	    pexec_buf_puts(b, "}\n"))
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	if (pexec__write_full(j->errors_fd, b->data, b->len))
		return pexec__fail(err, PEXEC_ESYS, "cannot write '%s': %s", j->job->errors,
		                   strerror(errno));
	return PEXEC_OK;
}

/* Makes what the output holds durable, then says so in the journal: every
 * result written, or where workers write, the prefix of them that landed. */
static pexec_code checkpoint(struct job_ctx *j, pexec_error *err)
{
	pexec_code rc = pexec__writer_sync(&j->out, err);
	uint64_t count = j->landing_on ? j->landing.sums.count : j->out.count;
	uint64_t bytes = j->landing_on ? j->landing.sums.bytes : j->out.bytes;

	if (!rc)
		rc = pexec__journal_checkpoint(&j->journal, j->done, count, bytes, j->hash, err);
	j->last_checkpoint = pexec__now_ns();
	return rc;
}

/* A failed item, told where it is to be told: the job's callback, --errors,
 * the journal. */
static pexec_code note_failure(struct job_ctx *j, const pexec_result *r, pexec_error *err)
{
	pexec_code rc = PEXEC_OK;

	j->failures++;
	if (j->job->on_failure)
		j->job->on_failure(j->job->on_failure_ctx, r);
	if (j->errors_fd >= 0)
		rc = write_error_record(j, r, err);
	if (!rc && j->journaling && !j->only && pexec__journal_failed(&j->journal, r->index))
		rc = pexec__fail(err, PEXEC_ESYS, "out of memory");
	return rc;
}

static int job_sink(void *ctx, const pexec_result *res, pexec_error *err)
{
	struct job_ctx *j = ctx;
	pexec_result r;
	pexec_code rc = PEXEC_OK;

	if (!res) {
		/* The pool is about to wait: out with what is buffered, and a
		 * checkpoint when one is due.  (A retry writes nothing until its
		 * merge.) */
		if (j->only)
			return 0;
		if (j->journaling && pexec__now_ns() - j->last_checkpoint >= CHECKPOINT_NS)
			rc = checkpoint(j, err);
		else
			rc = pexec__writer_flush(&j->out, err);
		return rc ? -(int)rc : 0;
	}
	r = *res;
	r.index = j->only ? j->only[res->index] : j->base + res->index;
	if (j->only) {
		/* Kept until the merge; a failure stays null. */
		pexec_buf *b = &j->retried[res->index];
		if (r.ok && pexec_buf_append(b, r.data, r.len))
			rc = pexec__fail(err, PEXEC_ESYS, "out of memory");
	} else if (r.ok) {
		rc = pexec__writer_put(&j->out, r.data, r.len, err);
	} else if (!j->job->opts.reduce) {
		rc = pexec__writer_put(&j->out, "null", 4, err);
	}
	if (!r.ok && !rc)
		rc = note_failure(j, &r, err);
	if (j->job->on_result)
		j->job->on_result(j->job->on_result_ctx, &r);
	if (!rc && j->journaling && !j->only) {
		j->hash += pexec__item_hash(j->done, r.input, r.input_len);
		j->done++;
		if ((j->done & 1023) == 0 && pexec__now_ns() - j->last_checkpoint >= CHECKPOINT_NS)
			rc = checkpoint(j, err);
	}
	return rc ? -(int)rc : 0;
}

/* The pool's batch path: successes only, in order. */
static int job_batch(void *ctx, uint64_t first, uint32_t count, const struct iovec *texts,
                     const struct iovec *inputs, pexec_error *err)
{
	struct job_ctx *j = ctx;
	pexec_code rc = pexec__writer_put_batch(&j->out, texts, count, err);

	(void)first;
	if (!rc && j->journaling) {
		for (uint32_t i = 0; i < count; i++)
			j->hash += pexec__item_hash(j->done + i, inputs[i].iov_base, inputs[i].iov_len);
		j->done += count;
		if (pexec__now_ns() - j->last_checkpoint >= CHECKPOINT_NS)
			rc = checkpoint(j, err);
	}
	return rc ? -(int)rc : 0;
}

/* ---- the pool over spans (pool.h): the parent's work per chunk ---- */

static int span_next(void *ctx, uint32_t want, struct pexec__span *span, pexec_error *err)
{
	struct job_ctx *j = ctx;

	return pexec__span_src_next(&j->src, want, span, err);
}

/* A failed item of a chunk: its null is in the chunk's output already. */
static int span_failed(void *ctx, const pexec_result *r, pexec_error *err)
{
	pexec_code rc = note_failure(ctx, r, err);

	return rc ? -(int)rc : 0;
}

static int span_put(void *ctx, uint64_t first, uint32_t count, const char *out, size_t len,
                    uint32_t written, uint64_t hash, pexec_error *err)
{
	struct job_ctx *j = ctx;
	pexec_code rc = pexec__writer_put_span(&j->out, out, len, written, err);

	(void)first;
	if (!rc && j->journaling) {
		j->hash += hash;
		j->done += count;
		if (pexec__now_ns() - j->last_checkpoint >= CHECKPOINT_NS)
			rc = checkpoint(j, err);
	}
	return rc ? -(int)rc : 0;
}

static int span_reserve(void *ctx, uint32_t count, size_t len, uint32_t written, uint64_t hash,
                        uint64_t *offset, size_t *skip, uint64_t *ticket, pexec_error *err)
{
	struct job_ctx *j = ctx;
	pexec_code rc = pexec__writer_reserve(&j->out, len, written, offset, skip, err);

	*ticket = 0;
	if (!rc && j->landing_on &&
	    pexec__landing_place(&j->landing, count, hash, j->out.count, j->out.bytes, ticket))
		rc = pexec__fail(err, PEXEC_ESYS, "out of memory");
	return rc ? -(int)rc : 0;
}

/* A placed chunk is on the file: the journal may count the prefix that is. */
static int span_landed(void *ctx, uint64_t ticket, pexec_error *err)
{
	struct job_ctx *j = ctx;
	pexec_code rc = PEXEC_OK;
	int moved = pexec__landing_landed(&j->landing, ticket);

	if (moved < 0)
		return -(int)pexec__fail(err, PEXEC_ESYS, "internal error: chunk %" PRIu64
		                         " landed twice", ticket);
	j->done = j->landing.sums.items;
	j->hash = j->landing.sums.hash;
	if (moved && pexec__now_ns() - j->last_checkpoint >= CHECKPOINT_NS)
		rc = checkpoint(j, err);
	return rc ? -(int)rc : 0;
}

/* Whether this run can go by spans: nothing that needs each item in the
 * parent (a job log, --fail-fast, --reduce, --serial, a second pass, an
 * engine of the caller's), one input in JSON or NDJSON, from its start. */
static int spans_apply(const struct job_ctx *j, const pexec_opts *opts)
{
	const pexec_job *job = j->job;

	return !job->engine && !opts->serial && !opts->reduce && !opts->fail_fast &&
	       !job->on_result && !j->only && j->base == 0 && j->in_open && j->in.n == 1 &&
	       (job->input_format == PEXEC_FORMAT_JSON || job->input_format == PEXEC_FORMAT_NDJSON);
}

/* The run by spans: the workers split, run and lay out; the input file,
 * where it is one, is theirs to read. */
static pexec_code run_spans(struct job_ctx *j, const pexec_opts *opts, pexec_error *err)
{
	const struct pexec__input_file *f = &j->in.files[0];
	struct pexec__spans sp = {
		.next = span_next, .put = span_put, .failed = span_failed, .flush = job_sink,
		.ctx = j, .input_fd = f->regular ? j->in.fd : -1, .name = f->name,
		.in_format = j->job->input_format, .out_format = j->job->output_format,
		.drop_null = j->job->drop_null, .hash = j->journaling, .out_fd = -1,
		.keep_fd = -1,
	};
	pexec_code rc = pexec__span_src_open(&j->src, j->in.fd, f->name, j->job->input_format, err);

	if (rc)
		return rc;
	/* Where the output is a file the workers can write at offsets, they
	 * write their chunks themselves; a journaled run's checkpoints then
	 * count the prefix of chunks that has landed. */
	if (pexec__writer_positional(&j->out)) {
		sp.out_fd = j->out.fd;
		sp.out_name = j->job->output ? j->job->output : "<stdout>";
		sp.reserve = span_reserve;
		sp.keep_fd = j->lock.writers_fd;
		if (j->journaling) {
			pexec__landing_init(&j->landing, (struct pexec__landing_sums){
				j->done, j->hash, j->out.count, j->out.bytes });
			j->landing_on = 1;
			sp.landed = span_landed;
		}
	}
	j->spanning = 1;
	rc = pexec__run_spans(j->plugin, opts, &sp, j->stats, err);
	return rc;
}

/* Where the job stands, for its on_progress. */
static pexec_progress progress_now(struct job_ctx *j, const pexec_stats *stats, int done)
{
	pexec_progress pr = {
		.stats = stats,
		.bytes_read = j->spanning ? pexec__span_src_offset(&j->src)
		              : j->in_open ? pexec__inputs_offset(&j->in) : 0,
		.bytes_total = j->in_open ? pexec__inputs_total(&j->in) : 0,
		.skipped = j->base,
		.elapsed = (double)(pexec__now_ns() - j->t0) / 1e9,
		.done = done,
	};

	pexec__marks_add(&j->marks, stats->items, pr.bytes_read);
	pr.bytes_done = pexec__marks_done(&j->marks, stats->ok + stats->failed, stats->items,
	                                  pr.bytes_read);
	return pr;
}

static void job_tick(void *ctx, const pexec_stats *stats)
{
	struct job_ctx *j = ctx;
	pexec_progress pr = progress_now(j, stats, 0);

	j->job->on_progress(j->job->on_progress_ctx, &pr);
}

static pexec_code check_config(const char *config, pexec_error *err)
{
	const char *end = NULL;
	cJSON *tree;

	if (!config)
		return PEXEC_OK;
	tree = cJSON_ParseWithOpts(config, &end, 1);
	if (!tree)
		return pexec__fail(err, PEXEC_EUSAGE,
		                   "invalid --config: not valid JSON at byte %td of '%s'",
		                   end ? end - config : (ptrdiff_t)0, config);
	cJSON_Delete(tree);
	return PEXEC_OK;
}

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
static pexec_code open_journaled_output(struct job_ctx *j, const pexec_loaded_plugin *plugin,
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
static pexec_code retry_failed(struct job_ctx *j, pexec_error *err)
{
	struct merge m = { .old_fd = -1 };
	pexec_opts opts = j->job->opts;
	pexec_code rc = retry_begin(j, err);

	if (rc || !j->only)
		return rc;
	opts.result_input = 1;
	rc = j->run(j->run_ctx, j->plugin, &opts, job_next, j, job_sink, j, j->stats, err);
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
static pexec_code finish_journaled(struct job_ctx *j, pexec_code rc, pexec_error *err)
{
	pexec_error e2;

	switch (rc) {
	case PEXEC_OK:
	case PEXEC_EITEM:
		if (checkpoint(j, &e2) || pexec__writer_finish(&j->out, &e2)) {
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
		checkpoint(j, &e2);
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

static pexec_code local_run(void *ctx, const pexec_loaded_plugin *plugin, const pexec_opts *opts,
                            pexec_next_fn next, void *next_ctx, pexec_result_fn sink,
                            void *sink_ctx, pexec_stats *stats, pexec_error *err)
{
	(void)ctx;
	return pexec_run(plugin, opts, next, next_ctx, sink, sink_ctx, stats, err);
}

/* Whether one of the job's inputs is standard input. */
static int reads_stdin(const pexec_job *job)
{
	if (job->ninputs == 0)
		return !job->input || !strcmp(job->input, "-");
	for (size_t i = 0; i < job->ninputs; i++)
		if (!job->inputs[i] || !strcmp(job->inputs[i], "-"))
			return 1;
	return 0;
}

/* What no run can start with: a bad --config, or options that do not go
 * together. */
static pexec_code check_job(const pexec_job *job, pexec_error *err)
{
	pexec_code rc = check_config(job->opts.config, err);

	if (rc)
		return rc;
	if (pexec__reserved_zero(job->reserved, PEXEC__RESERVED(job), "pexec_job", err) ||
	    pexec__reserved_zero(job->opts.reserved, PEXEC__RESERVED(&job->opts), "pexec_opts", err))
		return PEXEC_EUSAGE;
	if ((job->resume || job->retry_failed) && (!job->output || reads_stdin(job)))
		return pexec__fail(err, PEXEC_EUSAGE,
		                   "--resume needs an input file and -o FILE (a run that read "
		                   "standard input cannot be continued)");
	if (job->resume && job->opts.reduce)
		return pexec__fail(err, PEXEC_EUSAGE, "--resume cannot continue a --reduce run");
	if (job->resume && job->opts.unordered)
		return pexec__fail(err, PEXEC_EUSAGE,
		                   "--resume needs ordered output: an --unordered run keeps no journal");
	if (job->retry_failed && job->drop_null)
		return pexec__fail(err, PEXEC_EUSAGE,
		                   "--retry-failed cannot work with --drop-null: the output does not "
		                   "hold every item in its place");
	if (job->retry_failed && !job->resume)
		return pexec__fail(err, PEXEC_EUSAGE, "--retry-failed goes with --resume");
	if (job->output_format != PEXEC_FORMAT_JSON && job->output_format != PEXEC_FORMAT_NDJSON)
		return pexec__fail(err, PEXEC_EUSAGE, "the output format must be json or ndjson");
	return PEXEC_OK;
}

/* The plugin, the input files, and the --errors file. */
static pexec_code open_job(struct job_ctx *j, pexec_error *err)
{
	const pexec_job *job = j->job;
	pexec_code rc = pexec_plugin_load(job->plugin, job->plugin_dir, &j->plugin, err);

	if (rc)
		return rc;
	j->in_open = 1;
	rc = pexec__inputs_open(&j->in, job->input, job->inputs, job->ninputs,
	                        job->input_format, err);
	if (rc)
		return rc;
	if (job->errors) {
		j->errors_fd = open(job->errors, O_WRONLY | O_CREAT | O_CLOEXEC |
		                    (job->resume ? O_APPEND : O_TRUNC), 0666);
		if (j->errors_fd < 0)
			return pexec__fail(err, PEXEC_ESYS, "cannot create '%s': %s", job->errors,
			                   strerror(errno));
	}
	return PEXEC_OK;
}

/* The output: through the journal and the partial file (an output file and
 * an input file, in order), or straight. */
static pexec_code open_output(struct job_ctx *j, pexec_error *err)
{
	const pexec_job *job = j->job;
	struct stat st;
	pexec_code rc;

	/* Before anything of FILE's is touched: no other run is writing it.  (A
	 * FIFO or a device is written in place, and not locked.) */
	if (job->output && (stat(job->output, &st) != 0 || S_ISREG(st.st_mode)) &&
	    (rc = pexec__lock_take(&j->lock, job->output, err)))
		return rc;
	/* The journal counts a prefix of the input as done, which only ordered
	 * output writes. */
	j->journaling = job->output && !j->in.stdin_used && !job->opts.unordered &&
	                !job->opts.reduce;
	if (j->journaling) {
		if (stat(job->output, &st) == 0 && !S_ISREG(st.st_mode))
			j->journaling = 0; /* a FIFO or a device: written in place */
	}
	if (j->journaling) {
		if (asprintf(&j->journal_path, "%s.pexec-journal", job->output) < 0 ||
		    asprintf(&j->partial_path, "%s.pexec-partial", job->output) < 0) {
			j->journal_path = j->partial_path = NULL;
			return pexec__fail(err, PEXEC_ESYS, "out of memory");
		}
		return open_journaled_output(j, j->plugin, err);
	}
	if (job->resume)
		return pexec__fail(err, PEXEC_EUSAGE, "--resume needs -o FILE, a regular file");
	/* A reducing run writes one value, on a line of its own. */
	rc = pexec__writer_open(&j->out, job->output, job->output_fd ? job->output_fd : 1,
	                        job->opts.reduce ? PEXEC_FORMAT_NDJSON : job->output_format,
	                        job->drop_null && !job->opts.reduce, err);
	if (!rc)
		j->out_open = 1;
	return rc;
}

/* --resume of a run that completed: nothing to do, or its failed items. */
static pexec_code resume_complete(struct job_ctx *j, pexec_error *err)
{
	if (j->job->retry_failed)
		return retry_failed(j, err);
	if (j->journal.nfailed)
		return pexec__fail(err, PEXEC_EITEM,
		                   "nothing to resume: the run is complete, with %zu failed "
		                   "item%s (--retry-failed runs %s again)", j->journal.nfailed,
		                   j->journal.nfailed == 1 ? "" : "s",
		                   j->journal.nfailed == 1 ? "it" : "them");
	return PEXEC_OK;
}

/* The engine's options for this job: how results come back, and progress. */
static void configure_run(struct job_ctx *j, pexec_opts *opts)
{
	const pexec_job *job = j->job;

	*opts = job->opts;
	if (j->journaling)
		opts->result_input = 1;
	opts->item_times = job->on_result != NULL;
	/* Item by item only where something looks at each result. */
	if (!job->on_result) {
		opts->batch_sink = job_batch;
		opts->batch_ctx = j;
	}
	if (job->on_progress) {
		opts->on_tick = job_tick;
		opts->tick_ctx = j;
		opts->tick_ms = job->progress_ms;
	}
	/* A resumed run's skipped items are behind it. */
	pexec__marks_start(&j->marks, j->in_open ? pexec__inputs_offset(&j->in) : 0);
}

/* A resumed run that reached the end, with failed items, under
 * --retry-failed: now those, again, over the input read anew. */
static pexec_code retry_after_resume(struct job_ctx *j, pexec_error *err)
{
	pexec_code rc;

	pexec__journal_release(&j->journal);
	rc = pexec__journal_read(&j->journal, j->journal_path, err);
	if (rc)
		return rc;
	rc = pexec__inputs_rewind(&j->in, err);
	return rc ? rc : retry_failed(j, err);
}

/* After the engine: the output completed, kept for --resume, or dropped. */
static pexec_code finish_job(struct job_ctx *j, pexec_code rc, pexec_error *err)
{
	pexec_error werr;
	pexec_code wrc;

	if (j->journaling) {
		rc = finish_journaled(j, rc, err);
		if ((rc == PEXEC_OK || rc == PEXEC_EITEM) && j->job->retry_failed && j->failures)
			rc = retry_after_resume(j, err);
		return rc;
	}
	if (rc != PEXEC_OK && rc != PEXEC_EITEM) {
		pexec__writer_abort(&j->out);
		j->out_open = 0;
		return rc;
	}
	wrc = pexec__writer_finish(&j->out, &werr);
	j->out_open = 0;
	if (wrc) {
		*err = werr;
		rc = wrc;
	}
	return rc;
}

/* The last progress call, and everything the job holds let go. */
static void release_job(struct job_ctx *j)
{
	const pexec_job *job = j->job;

	if (job->on_progress) {
		pexec_progress pr = progress_now(j, j->stats, 1);
		job->on_progress(job->on_progress_ctx, &pr);
	}
	if (j->out_open)
		pexec__writer_abort(&j->out);
	if (j->in_open)
		pexec__inputs_release(&j->in);
	if (j->errors_fd >= 0)
		close(j->errors_fd);
	pexec__lock_drop(&j->lock);
	if (j->spanning)
		pexec__span_src_release(&j->src);
	pexec__buf_release(&j->record);
	pexec__journal_release(&j->journal);
	pexec__landing_release(&j->landing);
	free(j->journal_path);
	free(j->partial_path);
	pexec_plugin_free(j->plugin);
}

pexec_code pexec_job_run(const pexec_job *job, pexec_stats *stats, pexec_error *err)
{
	pexec_stats local;
	struct job_ctx j = {
		.job = job, .errors_fd = -1, .lock = { .fd = -1, .writers_fd = -1 },
		.run = job->engine ? job->engine : local_run, .run_ctx = job->engine_ctx,
		.stats = stats ? stats : &local,
	};
	pexec_opts opts;
	pexec_code rc;

	memset(j.stats, 0, sizeof(*j.stats));
	j.t0 = pexec__now_ns();
	pexec__journal_init(&j.journal);
	pexec__buf_init(&j.record);
	rc = check_job(job, err);
	if (!rc)
		rc = open_job(&j, err);
	if (!rc)
		rc = open_output(&j, err);
	if (!rc && j.journaling && j.journal.complete) {
		rc = resume_complete(&j, err);
	} else if (!rc) {
		configure_run(&j, &opts);
		if (spans_apply(&j, &opts))
			rc = run_spans(&j, &opts, err);
		else
			rc = j.run(j.run_ctx, j.plugin, &opts, job_next, &j, job_sink, &j, j.stats, err);
		rc = finish_job(&j, rc, err);
	}
	release_job(&j);
	return rc;
}
