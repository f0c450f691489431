/*
 * job.c - pexec_job_run(): a whole run as the pexec command does it.  Loads
 * the plugin, opens the input and the output, and wires the splitter (source)
 * and the writer (sink) to pexec_run().
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "output.h"
#include "split.h"
#include "util.h"

struct job_ctx {
	const pexec_job *job;
	pexec__splitter *split;
	struct pexec__writer out;
	int errors_fd;       /* --errors FILE, or -1 */
	pexec_buf record;
};

/* The longest excerpt of a failed item's input in an --errors record. */
#define EXCERPT_MAX 200

static int job_next(void *ctx, const char **data, size_t *len, pexec_error *err)
{
	return pexec__split_next(((struct job_ctx *)ctx)->split, data, len, err);
}

/* {"index":N,"stage":"map","reason":"...","attempts":N,"input":"..."} */
static pexec_code write_error_record(struct job_ctx *j, const pexec_result *r, pexec_error *err)
{
	pexec_buf *b = &j->record;

	b->len = 0;
	if (pexec_buf_printf(b, "{\"index\":%llu,\"stage\":\"%s\",\"reason\":",
	                     (unsigned long long)r->index, pexec_stage_str(r->stage)) ||
	    pexec__json_quote(b, r->message ? r->message : "", r->message ? strlen(r->message) : 0,
	                      SIZE_MAX) ||
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

static int job_sink(void *ctx, const pexec_result *r, pexec_error *err)
{
	struct job_ctx *j = ctx;
	pexec_code rc;

	if (!r)
		rc = pexec__writer_flush(&j->out, err);
	else if (r->ok)
		rc = pexec__writer_put(&j->out, r->data, r->len, err);
	else {
		if (j->job->on_failure)
			j->job->on_failure(j->job->on_failure_ctx, r);
		rc = j->errors_fd >= 0 ? write_error_record(j, r, err) : PEXEC_OK;
		if (!rc)
			rc = pexec__writer_put(&j->out, "null", 4, err);
	}
	return rc ? -(int)rc : 0;
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

static pexec_code open_input(const char *path, int *fd, pexec_error *err)
{
	struct stat st;

	if (!path || !strcmp(path, "-")) {
		*fd = 0;
		return PEXEC_OK;
	}
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return pexec__fail(err, PEXEC_EINPUT, "cannot open input '%s': %s", path,
		                   strerror(errno));
	if (fstat(*fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(*fd);
		*fd = -1;
		return pexec__fail(err, PEXEC_EINPUT, "cannot read input '%s': is a directory", path);
	}
	return PEXEC_OK;
}

pexec_code pexec_job_run(const pexec_job *job, pexec_stats *stats, pexec_error *err)
{
	struct job_ctx j = { .job = job, .errors_fd = -1 };
	pexec_loaded *plugin = NULL;
	const char *name = job->input && strcmp(job->input, "-") ? job->input : "<stdin>";
	int in_fd = -1, out_open = 0;
	pexec_code rc;

	rc = check_config(job->opts.config, err);
	if (rc)
		goto out;
	rc = pexec_plugin_load(job->plugin, job->plugin_dir, &plugin, err);
	if (rc)
		goto out;
	rc = open_input(job->input, &in_fd, err);
	if (rc)
		goto out;
	pexec__buf_init(&j.record);
	if (job->errors) {
		j.errors_fd = open(job->errors, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (j.errors_fd < 0) {
			rc = pexec__fail(err, PEXEC_ESYS, "cannot create '%s': %s", job->errors,
			                 strerror(errno));
			goto out;
		}
	}
	j.split = pexec__split_fd(in_fd, name, job->input_format);
	if (!j.split) {
		rc = pexec__fail(err, PEXEC_ESYS, "out of memory");
		goto out;
	}
	rc = pexec__writer_open(&j.out, job->output, job->output_fd ? job->output_fd : 1,
	                        job->output_format, job->drop_null, err);
	if (rc)
		goto out;
	out_open = 1;

	rc = pexec_run(plugin, &job->opts, job_next, &j, job_sink, &j, stats, err);
	if (rc == PEXEC_OK || rc == PEXEC_EITEM) {
		pexec_error werr;
		pexec_code wrc = pexec__writer_finish(&j.out, &werr);
		if (wrc) {
			*err = werr;
			rc = wrc;
		}
	} else {
		pexec__writer_abort(&j.out);
	}
	out_open = 0;
out:
	if (out_open)
		pexec__writer_abort(&j.out);
	pexec__split_free(j.split);
	if (in_fd > 0)
		close(in_fd);
	if (j.errors_fd >= 0)
		close(j.errors_fd);
	pexec__buf_release(&j.record);
	pexec_plugin_free(plugin);
	return rc;
}
