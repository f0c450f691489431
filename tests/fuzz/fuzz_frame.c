/*
 * fuzz_frame.c - libFuzzer harness for the frame decoder (frame.h).
 *
 * The input is a frame as a worker or the parent would read it: a 24-byte
 * header, then the payload.  The header goes through
 * pexec__frame_parse_header; the payload (the rest of the input, or as much
 * of it as the header's length says) is walked as CHUNK items and as RESULTS
 * records whatever the header's type, since the decoder must hold against a
 * torn or hostile frame.  Checked:
 *  - a refused header has a "protocol error" message; an accepted one has a
 *    known type and a length within PEXEC_FRAME_MAX;
 *  - every item and record returned lies within the payload, the cursor only
 *    moves forward and stays inside it, an item is followed by its NUL, a
 *    record's flags are in range;
 *  - what was decoded encodes back (pexec__frame_put_item,
 *    pexec__frame_record_begin/end) to exactly the bytes it came from, the
 *    padding of record headers aside.
 *
 * Built by `make fuzz` (see the Makefile).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "util.h"

#define CHECK(cond) do { \
		if (!(cond)) { \
			fprintf(stderr, "fuzz_frame: %s:%d: check failed: %s\n", \
			        __FILE__, __LINE__, #cond); \
			abort(); \
		} \
	} while (0)

static int within(const char *p, size_t len, const char *lo, const char *hi)
{
	return p >= lo && p <= hi && len <= (size_t)(hi - p);
}

static void walk_items(const char *payload, size_t plen)
{
	struct pexec__frame_cursor c = { payload, payload + plen };
	const char *item, *prev = payload;
	size_t len, count = 0;
	pexec_buf enc;
	int r;

	pexec__buf_init(&enc);
	while ((r = pexec__frame_next_item(&c, &item, &len)) == 1) {
		CHECK(within(item, len, payload, payload + plen));
		CHECK(item + len < payload + plen && item[len] == '\0');
		CHECK(c.p > prev && c.p <= payload + plen && c.end == payload + plen);
		CHECK(c.p == item + len + 1);
		prev = c.p;
		CHECK(pexec__frame_put_item(&enc, item, len) == 0);
		CHECK(++count <= plen / PEXEC_ITEM_OVERHEAD);
	}
	CHECK(r == 0 || r == -1);
	CHECK(r != 0 || c.p == c.end);
	/* The items decoded re-encode to the bytes they were decoded from. */
	CHECK(enc.len == (size_t)(c.p - payload));
	CHECK(enc.len == 0 || memcmp(enc.data, payload, enc.len) == 0);
	/* A decoder that failed says so again. */
	if (r < 0)
		CHECK(pexec__frame_next_item(&c, &item, &len) == -1);
	pexec__buf_release(&enc);
}

static void walk_records(const char *payload, size_t plen)
{
	struct pexec__frame_cursor c = { payload, payload + plen };
	const char *data, *prev = payload;
	size_t len, count = 0;
	pexec_buf enc;
	pexec_stage stage;
	int ok, r;

	pexec__buf_init(&enc);
	while ((r = pexec__frame_next_record(&c, &data, &len, &ok, &stage)) == 1) {
		size_t at;

		CHECK(within(data, len, payload, payload + plen));
		CHECK(data - payload >= (ptrdiff_t)PEXEC_RECORD_HEADER);
		CHECK(c.p > prev && c.p <= payload + plen && c.end == payload + plen);
		CHECK(c.p == data + len);
		CHECK(ok >= 0 && ok < PEXEC_STATUS_COUNT); /* a record status byte */
		CHECK(stage >= PEXEC_STAGE_NONE && stage < PEXEC_STAGE_COUNT);
		prev = c.p;
		at = pexec__frame_record_begin(&enc);
		CHECK(at != (size_t)-1);
		CHECK(pexec_buf_append(&enc, data, len) == 0);
		pexec__frame_record_end(&enc, at, ok, stage);
		/* The two padding bytes are not checked by the decoder. */
		memcpy(enc.data + at + 6, payload + at + 6, 2);
		CHECK(++count <= plen / PEXEC_RECORD_HEADER);
	}
	CHECK(r == 0 || r == -1);
	CHECK(r != 0 || c.p == c.end);
	CHECK(enc.len == (size_t)(c.p - payload));
	CHECK(enc.len == 0 || memcmp(enc.data, payload, enc.len) == 0);
	if (r < 0)
		CHECK(pexec__frame_next_record(&c, &data, &len, &ok, &stage) == -1);
	pexec__buf_release(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pexec__frame_header h;
	pexec_error err = { "" };
	size_t plen;
	char *payload;

	if (size < PEXEC_FRAME_HEADER_SIZE)
		return 0;
	plen = size - PEXEC_FRAME_HEADER_SIZE;
	if (pexec__frame_parse_header((const char *)data, &h, &err) == 0) {
		int empty = h.type == PEXEC_FRAME_READY || h.type == PEXEC_FRAME_RESULTS_SHM ||
		            h.type == PEXEC_FRAME_WRITTEN;

		CHECK(empty || h.type == PEXEC_FRAME_CHUNK || h.type == PEXEC_FRAME_RESULTS ||
		      h.type == PEXEC_FRAME_INITFAIL || h.type == PEXEC_FRAME_SPAN ||
		      h.type == PEXEC_FRAME_SPAN_RESULTS || h.type == PEXEC_FRAME_WRITE);
		CHECK(!empty || h.payload_len == 0);
		CHECK(h.payload_len <= PEXEC_FRAME_MAX);
		/* A reader takes payload_len bytes; fewer arrived if torn. */
		if (h.payload_len < plen)
			plen = (size_t)h.payload_len;
	} else {
		CHECK(strncmp(err.msg, "protocol error: ", 16) == 0);
	}
	/* A copy of exactly the payload, so ASan sees any read past it. */
	payload = malloc(plen ? plen : 1);
	CHECK(payload != NULL);
	memcpy(payload, data + PEXEC_FRAME_HEADER_SIZE, plen);
	walk_items(payload, plen);
	walk_records(payload, plen);
	free(payload);
	return 0;
}
