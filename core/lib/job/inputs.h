/*
 * inputs.h - a job's input: one or several files (or standard input), read
 * in turn as one stream of items, each file split in the job's format.
 */
#ifndef PEXEC_INPUTS_H
#define PEXEC_INPUTS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "pexec.h"
#include "split/split.h"

struct pexec__input_file {
	const char *path;      /* NULL or "-": standard input */
	const char *name;      /* in messages: the path, or "<stdin>" */
	int regular;           /* a regular file: its size and mtime are known */
	uint64_t size;
	struct timespec mtime;
};

struct pexec__inputs {
	struct pexec__input_file *files;
	size_t n;
	size_t at;             /* the file being read */
	pexec_format format;
	int fd;                /* its descriptor, or -1 */
	pexec__splitter *split;
	uint64_t before;       /* bytes of the files before `at` */
	int stdin_used;        /* one of the inputs is standard input */
	int code;              /* 0, or the error every later call returns */
	pexec_error err;
};

/* Takes the inputs: `n` paths at `paths` (the strings must outlive the
 * inputs), or, with n == 0, the one `path` (NULL or "-": standard input).
 * Every file is looked at before any is read: one that is missing, a
 * directory or unreadable fails here (PEXEC_EINPUT, naming it); standard
 * input may be one of them once.  Opens the first. */
pexec_code pexec__inputs_open(struct pexec__inputs *in, const char *path,
                              const char *const *paths, size_t n, pexec_format format,
                              pexec_error *err);
/* pexec_next_fn's contract over all the files in turn: an item, 0 at the
 * end of the last, or the error of the file it is in (which names it). */
int pexec__inputs_next(struct pexec__inputs *in, const char **data, size_t *len,
                       pexec_error *err);
/* Bytes read so far, of all the files. */
uint64_t pexec__inputs_offset(const struct pexec__inputs *in);
/* The files' total size; 0 when one of them is not a regular file. */
uint64_t pexec__inputs_total(const struct pexec__inputs *in);
/* Back to the first item of the first file (regular files only). */
pexec_code pexec__inputs_rewind(struct pexec__inputs *in, pexec_error *err);
void pexec__inputs_release(struct pexec__inputs *in);

#endif
