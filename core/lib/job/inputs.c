/*
 * inputs.c - a job's input files, read in turn as one stream (inputs.h).
 *
 * `pexec -p P a.json b.json c.json` runs the items of a, then b, then c,
 * into one output, as if they were one array: item indexes run on across
 * the files.  Each file is a whole input of the job's format on its own
 * (one top-level array each, for JSON), split by a splitter of its own, so
 * a malformed file is named in the message with the position inside it.
 *
 * All the files are looked at first (stat, and for regular files whether
 * they can be read), so that a missing one stops the run before any work;
 * only one is open at a time, so a long list of files costs no more
 * descriptors than one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "inputs.h"
#include "util.h"

static int is_stdin(const char *path)
{
	return !path || !strcmp(path, "-");
}

/* Looks at one file before the run. */
static pexec_code look_at(struct pexec__input_file *f, int first, pexec_error *err)
{
	struct stat st;

	if (is_stdin(f->path))
		return PEXEC_OK;
	if (stat(f->path, &st))
		return pexec__fail(err, PEXEC_ESYS, "cannot open input '%s': %s", f->path,
		                   strerror(errno));
	if (S_ISDIR(st.st_mode))
		return pexec__fail(err, PEXEC_ESYS, "cannot read input '%s': is a directory",
		                   f->path);
	/* The first is opened at once, which says the same. */
	if (!first && S_ISREG(st.st_mode) && access(f->path, R_OK))
		return pexec__fail(err, PEXEC_ESYS, "cannot open input '%s': %s", f->path,
		                   strerror(errno));
	if (S_ISREG(st.st_mode)) {
		f->regular = 1;
		f->size = (uint64_t)st.st_size;
		f->mtime = st.st_mtim;
	}
	return PEXEC_OK;
}

/* Opens file `at` and its splitter. */
static pexec_code open_file(struct pexec__inputs *in, size_t at, pexec_error *err)
{
	const struct pexec__input_file *f = &in->files[at];

	in->at = at;
	if (is_stdin(f->path)) {
		in->fd = 0;
	} else {
		in->fd = open(f->path, O_RDONLY | O_CLOEXEC);
		if (in->fd < 0)
			return pexec__fail(err, PEXEC_ESYS, "cannot open input '%s': %s", f->path,
			                   strerror(errno));
	}
	in->split = pexec__split_fd(in->fd, f->name, in->format);
	if (!in->split)
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	return PEXEC_OK;
}

static void close_file(struct pexec__inputs *in)
{
	pexec__split_free(in->split);
	in->split = NULL;
	if (in->fd > 0)
		close(in->fd);
	in->fd = -1;
}

pexec_code pexec__inputs_open(struct pexec__inputs *in, const char *path,
                              const char *const *paths, size_t n, pexec_format format,
                              pexec_error *err)
{
	pexec_code rc = PEXEC_OK;

	memset(in, 0, sizeof(*in));
	in->fd = -1;
	in->format = format;
	in->n = n ? n : 1;
	in->files = calloc(in->n, sizeof(*in->files));
	if (!in->files)
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	for (size_t i = 0; i < in->n && !rc; i++) {
		struct pexec__input_file *f = &in->files[i];

		f->path = n ? paths[i] : path;
		f->name = is_stdin(f->path) ? "<stdin>" : f->path;
		if (is_stdin(f->path) && in->stdin_used)
			rc = pexec__fail(err, PEXEC_EUSAGE,
			                 "standard input ('-') can be one of the inputs only once");
		in->stdin_used |= is_stdin(f->path);
		if (!rc)
			rc = look_at(f, i == 0, err);
	}
	return rc ? rc : open_file(in, 0, err);
}

int pexec__inputs_next(struct pexec__inputs *in, const char **data, size_t *len,
                       pexec_error *err)
{
	if (in->code) {
		if (err)
			*err = in->err;
		return in->code;
	}
	for (;;) {
		int rc = pexec__split_next(in->split, data, len, err);

		if (rc != 0 || in->at + 1 == in->n)
			return rc;
		/* This file is done: on to the next. */
		in->before += pexec__split_offset(in->split);
		close_file(in);
		rc = open_file(in, in->at + 1, &in->err);
		if (rc) {
			in->code = -rc;
			if (err)
				*err = in->err;
			return in->code;
		}
	}
}

uint64_t pexec__inputs_offset(const struct pexec__inputs *in)
{
	return in->before + (in->split ? pexec__split_offset(in->split) : 0);
}

uint64_t pexec__inputs_total(const struct pexec__inputs *in)
{
	uint64_t total = 0;

	for (size_t i = 0; i < in->n; i++) {
		if (!in->files[i].regular)
			return 0;
		total += in->files[i].size;
	}
	return total;
}

pexec_code pexec__inputs_rewind(struct pexec__inputs *in, pexec_error *err)
{
	const char *name = in->files[0].name;

	if (in->at == 0 && in->fd >= 0) {
		/* Still on the first: read it again from its start. */
		pexec__split_free(in->split);
		in->split = NULL;
		if (lseek(in->fd, 0, SEEK_SET) < 0 ||
		    !(in->split = pexec__split_fd(in->fd, name, in->format)))
			return pexec__fail(err, PEXEC_ESYS, "cannot read '%s' again", name);
		return PEXEC_OK;
	}
	close_file(in);
	in->before = 0;
	if (!in->files[0].regular || open_file(in, 0, err))
		return pexec__fail(err, PEXEC_ESYS, "cannot read '%s' again", name);
	return PEXEC_OK;
}

void pexec__inputs_release(struct pexec__inputs *in)
{
	close_file(in);
	free(in->files);
	in->files = NULL;
}
