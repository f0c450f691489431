/*
 * frame.h - the parent/worker protocol, encoded and decoded in one place.
 *
 * Every message is a frame: a fixed 24-byte header and a payload.  Both ends
 * run on the same machine from the same binary, so fields are in host byte
 * order.  Payloads:
 *
 *   CHUNK    parent -> worker: `count` items, each [u32 len][len bytes][NUL].
 *            aux is the index of the first item.
 *   RESULTS  worker -> parent: `count` records, each
 *            [u32 len][u8 status][u8 stage][u16 0][len bytes]: the JSON text of
 *            a result (status 1), or an error message (0: a hook's error; the
 *            parent records 2-6 for items whose worker died: see
 *            pexec__record_status).  aux is the worker's busy time in ns.
 *   RESULTS_SHM  worker -> parent: a RESULTS frame of `count` bytes (header
 *            included) lies in the worker's result arena, ending where the
 *            arena's byte count reaches aux.  No payload.
 *   SPAN     parent -> worker: a chunk of the input itself, whole items the
 *            worker splits and checks (struct pexec__span_head, then the
 *            bytes, or none where the worker reads them from the input
 *            file).  `count` items (for the last chunk: at most); aux is
 *            the index of the first.
 *   SPAN_RESULTS worker -> parent: a SPAN's results laid out as they go out
 *            (struct pexec__span_tail, then the output bytes, then a record
 *            per failed item, then an input error's message).  `count`:
 *            items run; aux: the worker's busy time in ns.  It may lie in the
 *            arena like a RESULTS frame.
 *   WRITE    parent -> worker: write a chunk's output to the output file
 *            yourself (struct pexec__write_order).
 *   WRITTEN  worker -> parent: done; aux: the frame's end, count: 0 or the
 *            errno the write failed with.  No payload.  Where the parent has
 *            sent more, it comes just before the next results, in the same
 *            write, not on its own.
 *   READY    worker -> parent: init succeeded.  No payload.
 *   INITFAIL worker -> parent: init failed; the payload is the message.
 *
 * The decoder checks every length against the payload it came in, so a torn
 * or hostile frame is an error, never an out-of-bounds read.
 */
#ifndef PEXEC_FRAME_H
#define PEXEC_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "pexec.h"

enum pexec__frame_type {
	PEXEC_FRAME_CHUNK = 0x70780001u,
	PEXEC_FRAME_RESULTS = 0x70780002u,
	PEXEC_FRAME_READY = 0x70780003u,
	PEXEC_FRAME_INITFAIL = 0x70780004u,
	PEXEC_FRAME_RESULTS_SHM = 0x70780005u,
	PEXEC_FRAME_SPAN = 0x70780006u,
	PEXEC_FRAME_SPAN_RESULTS = 0x70780007u,
	PEXEC_FRAME_WRITE = 0x70780008u,
	PEXEC_FRAME_WRITTEN = 0x70780009u,
};

/* A WRITE's order: the output of the worker's oldest unwritten SPAN_RESULTS
 * frame in its arena (which ends where the arena's count reaches `end`),
 * from byte `skip` of it on, at `offset` of the output file. */
struct pexec__write_order {
	uint64_t end;
	uint64_t offset;
	uint64_t skip;
};

/* A SPAN's description of its chunk of the input. */
struct pexec__span_head {
	uint64_t offset;     /* of its first byte in the input */
	uint64_t len;
	uint64_t line;       /* the line of that byte, and where that line begins */
	uint64_t line_start;
	uint32_t flags;      /* PEXEC_SPAN_* */
	uint32_t pad;
};
#define PEXEC_SPAN_FIRST 1u   /* the input's first chunk (its '[', a BOM) */
#define PEXEC_SPAN_LAST 2u    /* the last: it ends with the input */
#define PEXEC_SPAN_INLINE 4u  /* the bytes follow; else read them from the input */
#define PEXEC_SPAN_HASH 8u    /* sum the items' hashes (the resume journal's) */

/* What a SPAN_RESULTS frame holds, after its header. */
struct pexec__span_tail {
	uint64_t out_len;    /* output bytes, as they are to be written */
	uint64_t hash;       /* with PEXEC_SPAN_HASH: pexec__item_hash, summed */
	uint32_t written;    /* results in them (--drop-null writes fewer) */
	uint32_t failures;   /* records after them: [u32 pos][u8 status][u8 stage]
	                      * [u16 0][u32 message length][u32 input length]
	                      * [message][input] */
	uint32_t error_len;  /* an input error's message, after the records */
	uint32_t pad;
};
#define PEXEC_SPAN_FAILURE_HEAD 16u

struct pexec__frame_header {
	uint32_t type;
	uint32_t count;
	uint64_t payload_len;
	uint64_t aux;
};

#define PEXEC_FRAME_HEADER_SIZE ((size_t)sizeof(struct pexec__frame_header))
/* The largest payload either side accepts. */
#define PEXEC_FRAME_MAX ((uint64_t)4 << 30)
/* The largest single result; beyond it the item fails at serialize. */
#define PEXEC_RESULT_MAX ((size_t)1 << 30)

#define PEXEC_ITEM_OVERHEAD 5u   /* u32 length + NUL */

/* In a CHUNK frame's aux (beside the first item's index): fold this chunk's
 * results (--reduce).  The RESULTS frame then has an empty text for each
 * item that succeeded, and after the `count` records one more: the chunk's
 * partial result. */
#define PEXEC_CHUNK_FOLD ((uint64_t)1 << 63)
/* In a CHUNK frame's aux: fold each item's result on its own, from the
 * starting value (a chunk run again item by item after a fault): each
 * successful record's text is that item's partial result.  A reduce hook
 * that crashes thus crashes in a worker, where the item is blamed, and the
 * parent folds only partial results. */
#define PEXEC_CHUNK_FOLD_EACH ((uint64_t)1 << 62)
#define PEXEC_RECORD_HEADER 8u   /* u32 length, status, stage, padding */

/* A record's status byte and the pexec_status it stands for: 1 is success
 * (so that `ok` reads as a flag), 0 a hook's error, the rest alike. */
uint8_t pexec__record_byte(pexec_status status);
pexec_status pexec__record_status(uint8_t byte);

/* Starts a frame of `type` in `buf` (appending its header); returns 0 or -1. */
int pexec__frame_begin(pexec_buf *buf, uint32_t type, uint64_t aux);
/* Fills in count and payload length of the frame begun at offset `start`. */
void pexec__frame_end(pexec_buf *buf, size_t start, uint32_t count);
/* Sets the aux field of the frame begun at offset `start`. */
void pexec__frame_set_aux(pexec_buf *buf, size_t start, uint64_t aux);

/* Appends one CHUNK item. */
int pexec__frame_put_item(pexec_buf *buf, const char *data, size_t len);

/* Reserves a RESULTS record header; returns its offset, or (size_t)-1. */
size_t pexec__frame_record_begin(pexec_buf *buf);
/* Completes the record begun at `at` with what was appended since. */
/* `ok` is a record status byte: 1 for a result, 0 for a hook's error, or
 * pexec__record_byte() of another status. */
void pexec__frame_record_end(pexec_buf *buf, size_t at, int ok, pexec_stage stage);

/* Reads a header from `data` (at least PEXEC_FRAME_HEADER_SIZE bytes) and
 * checks its type and size.  Returns 0, or -1 with `err` filled. */
int pexec__frame_parse_header(const char *data, struct pexec__frame_header *h,
                              pexec_error *err);

/* Walks a CHUNK payload or a RESULTS payload one entry at a time: returns 1
 * with the entry, 0 after the last, -1 if the payload is malformed. */
struct pexec__frame_cursor {
	const char *p;
	const char *end;
};
int pexec__frame_next_item(struct pexec__frame_cursor *c, const char **data, size_t *len);
int pexec__frame_next_record(struct pexec__frame_cursor *c, const char **data, size_t *len,
                             int *ok, pexec_stage *stage);

#endif
