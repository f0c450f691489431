/*
 * job.c - pexec_job_run(): a whole run as the pexec command does it.  Loads
 * the plugin, opens the input and the output, and wires the splitter (source)
 * and the writer (sink) to pexec_run().
 *
 * With an output file the run keeps a resume journal (journal.h) and writes
 * through FILE.pexec-partial, so that an interrupted run can be continued with
 * `resume`, and a finished run's failed items recomputed with `retry_failed`
 * (resume.c).
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

/* The longest excerpt of a failed item's input in an --errors record. */
#define EXCERPT_MAX 200
#define CHECKPOINT_NS 1000000000ull

int pexec__job_next(void *ctx, const char **data, size_t *len, pexec_error *err)
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
pexec_code pexec__job_checkpoint(struct job_ctx *j, pexec_error *err)
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

int pexec__job_sink(void *ctx, const pexec_result *res, pexec_error *err)
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
			rc = pexec__job_checkpoint(j, err);
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
			rc = pexec__job_checkpoint(j, err);
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
			rc = pexec__job_checkpoint(j, err);
	}
	return rc ? -(int)rc : 0;
}

/* ---- the pool over spans (pool.h): the parent's work per chunk ---- */

static int span_next(void *ctx, uint32_t want, pexec_span *span, pexec_error *err)
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
			rc = pexec__job_checkpoint(j, err);
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
		rc = pexec__job_checkpoint(j, err);
	return rc ? -(int)rc : 0;
}

/* Whether this run can go by spans: nothing that needs each item in the
 * parent (a job log, --fail-fast, --reduce, --serial, a second pass, an
 * engine of the caller's that takes items only), one input in JSON or
 * NDJSON, from its start. */
static int spans_apply(const struct job_ctx *j, const pexec_opts *opts)
{
	const pexec_job *job = j->job;

	return (!job->engine || job->span_engine) && !opts->serial && !opts->reduce &&
	       !opts->fail_fast && !job->on_result && !j->only && j->base == 0 && j->in_open &&
	       j->in.n == 1 &&
	       (job->input_format == PEXEC_FORMAT_JSON || job->input_format == PEXEC_FORMAT_NDJSON);
}

/* A stopped run's output cut back to the prefix of chunks that landed: a
 * chunk placed after one that never got to the file (its writer was gone)
 * would lie past a hole, and the file is to hold what the journal counts.
 * (A resumed run cuts it there too; this only keeps the two in step.) */
static void cut_to_landed(struct job_ctx *j)
{
	struct stat st;

	if (fstat(j->out.fd, &st) || (uint64_t)st.st_size <= j->landing.sums.bytes)
		return;
	if (ftruncate(j->out.fd, (off_t)j->landing.sums.bytes))
		return; /* left as it is: the resumed run cuts it */
}

/* The run by spans: the workers split, run and lay out; the input file,
 * where it is one, is theirs to read. */
static pexec_code run_spans(struct job_ctx *j, const pexec_opts *opts, pexec_error *err)
{
	const struct pexec__input_file *f = &j->in.files[0];
	pexec_spans sp = {
		.next = span_next, .put = span_put, .failed = span_failed, .flush = pexec__job_sink,
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
		sp.out_path = j->out.unnamed ? NULL : j->out.tmp_path;
		sp.keep_path = j->lock.writers_fd >= 0 ? j->lock.path : NULL;
		if (j->journaling) {
			pexec__landing_init(&j->landing, (struct pexec__landing_sums){
				j->done, j->hash, j->out.count, j->out.bytes });
			j->landing_on = 1;
			sp.landed = span_landed;
		}
	}
	j->spanning = 1;
	if (j->job->span_engine)
		rc = j->job->span_engine(j->job->engine_ctx, j->plugin, opts, &sp, j->stats, err);
	else
		rc = pexec_run_spans(j->plugin, opts, &sp, j->stats, err);
	if (rc != PEXEC_OK && rc != PEXEC_EITEM && j->landing_on)
		cut_to_landed(j);
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
		return pexec__job_open_journaled(j, j->plugin, err);
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
		return pexec__job_retry_failed(j, err);
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
	return rc ? rc : pexec__job_retry_failed(j, err);
}

/* After the engine: the output completed, kept for --resume, or dropped. */
static pexec_code finish_job(struct job_ctx *j, pexec_code rc, pexec_error *err)
{
	pexec_error werr;
	pexec_code wrc;

	if (j->journaling) {
		rc = pexec__job_finish_journaled(j, rc, err);
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
			rc = j.run(j.run_ctx, j.plugin, &opts, pexec__job_next, &j, pexec__job_sink,
			           &j, j.stats, err);
		rc = finish_job(&j, rc, err);
	}
	release_job(&j);
	return rc;
}
