/*
 * journal.h - the resume journal kept beside an output file.
 *
 * A run with `-o FILE` writes its results, in order, to FILE.pexec-partial,
 * and keeps FILE.pexec-journal: NDJSON lines saying what the run is (plugin,
 * config, formats, input) and how far it durably got.  The durability rule:
 * at most every second, and at the end, pexec first makes the partial output
 * durable (fdatasync), then appends a checkpoint line (items done, results
 * written, bytes of output, a hash of the items' input bytes) and makes the
 * journal durable.  A failed item's line is appended before the checkpoint
 * that covers it.  A resumed run trusts the last whole checkpoint only: it cuts
 * the partial output back to that checkpoint's length and computes everything
 * after it again, so a crash at any moment loses at most a second of work and
 * writes nothing twice.
 */
#ifndef PEXEC_JOURNAL_H
#define PEXEC_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "pexec.h"
#include "util.h"

struct pexec__journal {
	int fd;
	char *path;
	pexec_buf out;        /* lines not yet written */
	/* What a journal read back says: */
	char *header;         /* its first line */
	int complete;         /* the run finished and FILE was written */
	uint64_t items;       /* the last checkpoint: items done */
	uint64_t written;     /* results in the output (fewer with --drop-null) */
	uint64_t bytes;       /* bytes of output */
	uint64_t hash;        /* the items' pexec__item_hash, summed */
	uint64_t *failed;     /* failed items before `items`, in order */
	size_t nfailed;
	size_t valid_len;     /* bytes of whole lines read (a torn end is cut) */
};


void pexec__journal_init(struct pexec__journal *j);
/* Reads the journal at `path`.  Returns PEXEC_OK, or PEXEC_EUSAGE with a
 * message when there is none or it cannot be used. */
pexec_code pexec__journal_read(struct pexec__journal *j, const char *path, pexec_error *err);
/* Starts a journal at `path` with `header` as its first line (truncating), or,
 * with `append`, continues the one that was read. */
pexec_code pexec__journal_open(struct pexec__journal *j, const char *path, const char *header,
                               int append, pexec_error *err);
int pexec__journal_failed(struct pexec__journal *j, uint64_t index);
pexec_code pexec__journal_checkpoint(struct pexec__journal *j, uint64_t items, uint64_t written,
                                     uint64_t bytes, uint64_t hash, pexec_error *err);
pexec_code pexec__journal_complete(struct pexec__journal *j, uint64_t items, pexec_error *err);
void pexec__journal_release(struct pexec__journal *j);

#endif
