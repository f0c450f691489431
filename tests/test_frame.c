/*
 * test_frame.c - the parent/worker protocol (core/lib/frame.h): what is encoded
 * decodes to the same items and records, and what is malformed - truncated
 * entries, lengths past the end, a missing NUL, bad status or stage bytes,
 * unknown frame types, oversize payloads - is refused without reading a byte
 * past the payload.
 *
 * To prove the last point without relying on a sanitizer, every payload the
 * decoder walks is copied to end exactly at a PROT_NONE page: a read past it
 * is a SIGSEGV, which Criterion reports as a crashed test.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "frame.h"
#include "util.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- bytes that end at a guard page ---- */

struct guarded {
	char *map;
	size_t map_len;
	const char *data;   /* the copy; data + len is the first unreadable byte */
	size_t len;
};

static void guard(struct guarded *g, const void *data, size_t len)
{
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	const size_t body = (len + page - 1) / page * page;

	g->map_len = body + page;
	g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
	              0);
	cr_assert_neq(g->map, MAP_FAILED);
	cr_assert_eq(mprotect(g->map + body, page, PROT_NONE), 0);
	g->data = g->map + body - len;
	if (len)
		memcpy(g->map + body - len, data, len);
	g->len = len;
}

static void unguard(struct guarded *g)
{
	munmap(g->map, g->map_len);
	memset(g, 0, sizeof(*g));
}

static struct pexec__frame_cursor cursor_of(const struct guarded *g)
{
	return (struct pexec__frame_cursor){ .p = g->data, .end = g->data + g->len };
}

/* Walks a CHUNK payload to its end; returns the items found, or -1 if it is
 * refused.  Every step stays inside the payload. */
static int walk_items(const char *data, size_t len)
{
	struct guarded g;
	struct pexec__frame_cursor c;
	const char *item;
	size_t item_len;
	int n = 0, rc;

	guard(&g, data, len);
	c = cursor_of(&g);
	while ((rc = pexec__frame_next_item(&c, &item, &item_len)) == 1) {
		cr_assert(item >= g.data && item + item_len < g.data + g.len,
		          "item outside the payload");
		cr_assert_eq(item[item_len], '\0');
		cr_assert(c.p > item && c.p <= g.data + g.len);
		n++;
	}
	/* At the end (or after an error) the cursor says so again. */
	if (rc == 0)
		cr_assert_eq(pexec__frame_next_item(&c, &item, &item_len), 0);
	unguard(&g);
	return rc < 0 ? -1 : n;
}

/* The same for a RESULTS payload. */
static int walk_records(const char *data, size_t len)
{
	struct guarded g;
	struct pexec__frame_cursor c;
	const char *rec;
	size_t rec_len;
	pexec_stage stage;
	int n = 0, ok, rc;

	guard(&g, data, len);
	c = cursor_of(&g);
	while ((rc = pexec__frame_next_record(&c, &rec, &rec_len, &ok, &stage)) == 1) {
		cr_assert(rec >= g.data && rec + rec_len <= g.data + g.len,
		          "record outside the payload");
		cr_assert(ok >= 0 && ok < PEXEC_STATUS_COUNT, "status byte %d", ok);
		cr_assert_lt(stage, PEXEC_STAGE_COUNT);
		n++;
	}
	if (rc == 0)
		cr_assert_eq(pexec__frame_next_record(&c, &rec, &rec_len, &ok, &stage), 0);
	unguard(&g);
	return rc < 0 ? -1 : n;
}

/* ---- encoding ---- */

static const struct {
	const char *data;
	size_t len;
} items[] = {
	{ "1", 1 },
	{ "", 0 },
	{ "\"abc\"", 5 },
	{ "{\"a\": [1, 2]}", 13 },
	{ "\"nul\0inside\"", 12 },
};

/* A CHUNK frame of the items above. */
static void make_chunk(pexec_buf *b, uint64_t first)
{
	pexec__buf_init(b);
	cr_assert_eq(pexec__frame_begin(b, PEXEC_FRAME_CHUNK, first), 0);
	for (size_t i = 0; i < COUNT(items); i++)
		cr_assert_eq(pexec__frame_put_item(b, items[i].data, items[i].len), 0);
	pexec__frame_end(b, 0, (uint32_t)COUNT(items));
}

Test(frame, chunk_round_trips)
{
	struct pexec__frame_header h;
	struct pexec__frame_cursor c;
	pexec_error err;
	pexec_buf b;
	const char *data;
	size_t len, want_payload = 0;
	struct guarded g;

	make_chunk(&b, 12345);
	for (size_t i = 0; i < COUNT(items); i++)
		want_payload += items[i].len + PEXEC_ITEM_OVERHEAD;
	cr_assert_eq(b.len, PEXEC_FRAME_HEADER_SIZE + want_payload);
	guard(&g, b.data, PEXEC_FRAME_HEADER_SIZE);
	cr_assert_eq(pexec__frame_parse_header(g.data, &h, &err), 0);
	unguard(&g);
	cr_expect_eq(h.type, PEXEC_FRAME_CHUNK);
	cr_expect_eq(h.count, COUNT(items));
	cr_expect_eq(h.payload_len, want_payload);
	cr_expect_eq(h.aux, 12345);

	guard(&g, b.data + PEXEC_FRAME_HEADER_SIZE, want_payload);
	c = cursor_of(&g);
	for (size_t i = 0; i < COUNT(items); i++) {
		cr_assert_eq(pexec__frame_next_item(&c, &data, &len), 1, "item %zu", i);
		cr_expect_eq(len, items[i].len, "item %zu", i);
		cr_expect(memcmp(data, items[i].data, len) == 0, "item %zu", i);
		cr_expect_eq(data[len], '\0', "item %zu is not followed by NUL", i);
	}
	cr_expect_eq(pexec__frame_next_item(&c, &data, &len), 0);
	cr_expect_eq(pexec__frame_next_item(&c, &data, &len), 0);
	unguard(&g);
	pexec__buf_release(&b);
}

Test(frame, large_item_round_trips)
{
	const size_t n = (1u << 20) + 3;
	char *big = malloc(n);
	struct pexec__frame_cursor c;
	pexec_buf b;
	const char *data;
	size_t len;

	cr_assert_not_null(big);
	for (size_t i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	pexec__buf_init(&b);
	cr_assert_eq(pexec__frame_begin(&b, PEXEC_FRAME_CHUNK, 0), 0);
	cr_assert_eq(pexec__frame_put_item(&b, big, n), 0);
	pexec__frame_end(&b, 0, 1);
	c = (struct pexec__frame_cursor){ b.data + PEXEC_FRAME_HEADER_SIZE, b.data + b.len };
	cr_assert_eq(pexec__frame_next_item(&c, &data, &len), 1);
	cr_expect_eq(len, n);
	cr_expect(memcmp(data, big, n) == 0);
	cr_expect_eq(pexec__frame_next_item(&c, &data, &len), 0);
	pexec__buf_release(&b);
	free(big);
}

Test(frame, put_item_refuses_a_length_the_u32_cannot_hold)
{
	pexec_buf b;
	static const char one[] = "x";

	pexec__buf_init(&b);
	cr_assert_eq(pexec__frame_begin(&b, PEXEC_FRAME_CHUNK, 0), 0);
	/* Refused on the length alone: the bytes are never read. */
	cr_expect_eq(pexec__frame_put_item(&b, one, (size_t)UINT32_MAX), -1);
	cr_expect_eq(pexec__frame_put_item(&b, one, SIZE_MAX), -1);
	cr_expect_eq(b.len, PEXEC_FRAME_HEADER_SIZE, "a refused item left bytes behind");
	pexec__buf_release(&b);
}

static const struct {
	pexec_status status;
	pexec_stage stage;
	const char *text;
} recs[] = {
	{ PEXEC_STATUS_OK, PEXEC_STAGE_NONE, "120" },
	{ PEXEC_STATUS_ERROR, PEXEC_STAGE_MAP, "factorial: n must be a non-negative integer" },
	{ PEXEC_STATUS_OK, PEXEC_STAGE_NONE, "" },
	{ PEXEC_STATUS_ERROR, PEXEC_STAGE_DESERIALIZE, "bad" },
	{ PEXEC_STATUS_ERROR, PEXEC_STAGE_SERIALIZE, "serialize wrote nothing" },
	{ PEXEC_STATUS_CRASHED, PEXEC_STAGE_WORKER, "worker 42 killed by SIGSEGV" },
	{ PEXEC_STATUS_EXITED, PEXEC_STAGE_MAP, "worker 42 exited with status 7" },
	{ PEXEC_STATUS_KILLED, PEXEC_STAGE_MAP, "worker 42 killed by SIGKILL" },
	{ PEXEC_STATUS_TIMEOUT, PEXEC_STAGE_MAP, "worker 42 timed out after 1 s" },
	{ PEXEC_STATUS_LOST, PEXEC_STAGE_WORKER, "worker 42 closed its connection" },
	{ PEXEC_STATUS_ERROR, PEXEC_STAGE_INIT, "init" },
};

static void make_results(pexec_buf *b)
{
	pexec__buf_init(b);
	cr_assert_eq(pexec__frame_begin(b, PEXEC_FRAME_RESULTS, 0), 0);
	for (size_t i = 0; i < COUNT(recs); i++) {
		size_t at = pexec__frame_record_begin(b);

		cr_assert_neq(at, (size_t)-1);
		cr_assert_eq(pexec_buf_append(b, recs[i].text, strlen(recs[i].text)), 0);
		pexec__frame_record_end(b, at, pexec__record_byte(recs[i].status), recs[i].stage);
	}
	pexec__frame_end(b, 0, (uint32_t)COUNT(recs));
	pexec__frame_set_aux(b, 0, 987654321);
}

Test(frame, results_round_trip)
{
	struct pexec__frame_header h;
	struct pexec__frame_cursor c;
	pexec_error err;
	pexec_buf b;
	struct guarded g;

	make_results(&b);
	cr_assert_eq(pexec__frame_parse_header(b.data, &h, &err), 0);
	cr_expect_eq(h.type, PEXEC_FRAME_RESULTS);
	cr_expect_eq(h.count, COUNT(recs));
	cr_expect_eq(h.payload_len, b.len - PEXEC_FRAME_HEADER_SIZE);
	cr_expect_eq(h.aux, 987654321);

	guard(&g, b.data + PEXEC_FRAME_HEADER_SIZE, b.len - PEXEC_FRAME_HEADER_SIZE);
	c = cursor_of(&g);
	for (size_t i = 0; i < COUNT(recs); i++) {
		const char *data;
		size_t len;
		pexec_stage stage;
		int ok;

		cr_assert_eq(pexec__frame_next_record(&c, &data, &len, &ok, &stage), 1, "record %zu",
		             i);
		cr_expect_eq(ok, pexec__record_byte(recs[i].status), "record %zu", i);
		cr_expect_eq(pexec__record_status((uint8_t)ok), recs[i].status, "record %zu", i);
		cr_expect_eq(stage, recs[i].stage, "record %zu", i);
		cr_expect_eq(len, strlen(recs[i].text), "record %zu", i);
		cr_expect(memcmp(data, recs[i].text, len) == 0, "record %zu", i);
	}
	{
		const char *data;
		size_t len;
		pexec_stage stage;
		int ok;
		cr_expect_eq(pexec__frame_next_record(&c, &data, &len, &ok, &stage), 0);
	}
	unguard(&g);
	pexec__buf_release(&b);
}

/* ---- headers ---- */

static int parse(uint32_t type, uint64_t payload_len)
{
	struct pexec__frame_header in = { .type = type, .count = 1, .payload_len = payload_len };
	struct pexec__frame_header out;
	pexec_error err = { { 0 } };
	struct guarded g;
	int rc;

	guard(&g, &in, sizeof(in));
	rc = pexec__frame_parse_header(g.data, &out, &err);
	unguard(&g);
	if (rc)
		cr_expect_neq(err.msg[0], '\0', "refused without a message");
	else
		cr_expect(out.type == type && out.payload_len == payload_len);
	return rc;
}

Test(frame, header_accepts_the_four_types)
{
	cr_expect_eq(parse(PEXEC_FRAME_CHUNK, 100), 0);
	cr_expect_eq(parse(PEXEC_FRAME_RESULTS, 0), 0);
	cr_expect_eq(parse(PEXEC_FRAME_READY, 0), 0);
	cr_expect_eq(parse(PEXEC_FRAME_INITFAIL, 20), 0);
	cr_expect_eq(parse(PEXEC_FRAME_CHUNK, PEXEC_FRAME_MAX), 0);
}

Test(frame, header_rejects_unknown_types)
{
	static const uint32_t bad[] = {
		/* nothing, a near miss of the magic, a byte-swapped CHUNK, all ones */
		0, 1, 0x70780000u, 0x707800ffu, 0x70790001u, 0x01007870u, 0xffffffffu,
	};

	for (size_t i = 0; i < COUNT(bad); i++)
		cr_expect_eq(parse(bad[i], 0), -1, "type 0x%08x", bad[i]);
}

Test(frame, header_rejects_a_ready_frame_with_a_payload)
{
	cr_expect_eq(parse(PEXEC_FRAME_READY, 1), -1);
}

Test(frame, header_rejects_oversize_payloads)
{
	static const uint32_t types[] = { PEXEC_FRAME_CHUNK, PEXEC_FRAME_RESULTS,
		                          PEXEC_FRAME_INITFAIL };

	for (size_t i = 0; i < COUNT(types); i++) {
		cr_expect_eq(parse(types[i], PEXEC_FRAME_MAX + 1), -1);
		cr_expect_eq(parse(types[i], UINT64_MAX), -1);
		cr_expect_eq(parse(types[i], UINT64_MAX - PEXEC_FRAME_HEADER_SIZE + 1), -1);
	}
}

/* ---- malformed payloads ---- */

static size_t put_u32(char *p, uint32_t v)
{
	memcpy(p, &v, 4);
	return 4;
}

Test(frame, empty_payloads_have_no_entries)
{
	cr_expect_eq(walk_items("", 0), 0);
	cr_expect_eq(walk_records("", 0), 0);
}

Test(frame, truncated_item_headers_are_refused)
{
	static const char bytes[4] = { 1, 0, 0, 0 };

	for (size_t n = 1; n <= 4; n++)
		cr_expect_eq(walk_items(bytes, n), -1, "%zu bytes", n);
}

Test(frame, item_lengths_past_the_end_are_refused)
{
	static const uint32_t lens[] = { 6, 7, 100, 1u << 20, UINT32_MAX - 4, UINT32_MAX - 1,
		                         UINT32_MAX };
	char buf[4 + 5 + 1];

	for (size_t i = 0; i < COUNT(lens); i++) {
		/* The length says more than the 5 bytes (and NUL) that follow. */
		size_t n = put_u32(buf, lens[i]);
		memcpy(buf + n, "hello", 6);
		cr_expect_eq(walk_items(buf, sizeof(buf)), -1, "length %u", lens[i]);
	}
	/* One byte short: the NUL is missing at the end. */
	put_u32(buf, 5);
	memcpy(buf + 4, "hello", 5);
	cr_expect_eq(walk_items(buf, 9), -1);
	/* Exactly right. */
	buf[9] = '\0';
	cr_expect_eq(walk_items(buf, 10), 1);
}

Test(frame, items_without_their_nul_are_refused)
{
	char buf[32];
	size_t n = put_u32(buf, 3);

	memcpy(buf + n, "abcX", 4);
	cr_expect_eq(walk_items(buf, n + 4), -1);
	/* An empty item needs its NUL too. */
	n = put_u32(buf, 0);
	buf[n] = 'X';
	cr_expect_eq(walk_items(buf, n + 1), -1);
	/* A good item followed by a bad one: the first is read, then refusal. */
	n = put_u32(buf, 1);
	memcpy(buf + n, "a", 2);
	n += 2;
	n += put_u32(buf + n, 1);
	memcpy(buf + n, "bX", 2);
	cr_expect_eq(walk_items(buf, n + 2), -1);
}

Test(frame, truncated_records_are_refused)
{
	char buf[8];

	put_u32(buf, 0);
	buf[4] = 1;
	buf[5] = 0;
	buf[6] = buf[7] = 0;
	for (size_t n = 1; n < 8; n++)
		cr_expect_eq(walk_records(buf, n), -1, "%zu bytes", n);
	cr_expect_eq(walk_records(buf, 8), 1);
}

Test(frame, record_lengths_past_the_end_are_refused)
{
	static const uint32_t lens[] = { 4, 5, 1000, UINT32_MAX - 8, UINT32_MAX };
	char buf[8 + 3];

	for (size_t i = 0; i < COUNT(lens); i++) {
		put_u32(buf, lens[i]);
		buf[4] = 1;
		buf[5] = 0;
		buf[6] = buf[7] = 0;
		memcpy(buf + 8, "120", 3);
		cr_expect_eq(walk_records(buf, sizeof(buf)), -1, "length %u", lens[i]);
	}
	put_u32(buf, 3);
	cr_expect_eq(walk_records(buf, sizeof(buf)), 1);
}

Test(frame, records_with_bad_status_or_stage_bytes_are_refused)
{
	static const unsigned char statuses[] = { PEXEC_STATUS_COUNT, PEXEC_STATUS_COUNT + 1, 0x80,
		                                  0xff };
	static const unsigned char stages[] = { PEXEC_STAGE_COUNT, 9, 0x80, 0xff };
	char buf[8 + 1];

	for (size_t i = 0; i < COUNT(statuses); i++) {
		put_u32(buf, 1);
		buf[4] = (char)statuses[i];
		buf[5] = 0;
		buf[6] = buf[7] = 0;
		buf[8] = '1';
		cr_expect_eq(walk_records(buf, sizeof(buf)), -1, "status byte %u", statuses[i]);
	}
	for (size_t i = 0; i < COUNT(stages); i++) {
		put_u32(buf, 1);
		buf[4] = 0;
		buf[5] = (char)stages[i];
		cr_expect_eq(walk_records(buf, sizeof(buf)), -1, "stage byte %u", stages[i]);
	}
	/* Every status and every stage that exists is accepted. */
	for (unsigned st = 0; st < PEXEC_STATUS_COUNT; st++) {
		buf[4] = (char)st;
		for (unsigned s = PEXEC_STAGE_NONE; s <= PEXEC_STAGE_WORKER; s++) {
			buf[5] = (char)s;
			cr_expect_eq(walk_records(buf, sizeof(buf)), 1, "status %u, stage %u", st, s);
		}
	}
}

/* The status byte keeps 1 for success and 0 for a hook's error, so that it
 * still reads as an `ok` flag; every status survives the trip. */
Test(frame, status_bytes_round_trip)
{
	cr_expect_eq(pexec__record_byte(PEXEC_STATUS_OK), 1);
	cr_expect_eq(pexec__record_byte(PEXEC_STATUS_ERROR), 0);
	for (unsigned st = 0; st < PEXEC_STATUS_COUNT; st++) {
		uint8_t byte = pexec__record_byte((pexec_status)st);

		cr_expect_lt(byte, PEXEC_STATUS_COUNT, "status %u", st);
		cr_expect_eq(pexec__record_status(byte), (pexec_status)st, "status %u", st);
	}
}

/* Every prefix of a good payload is either a shorter run of whole entries
 * or refused, and never read past. */
Test(frame, every_truncation_of_a_good_payload_is_safe)
{
	pexec_buf chunk, results;
	size_t chunk_payload, results_payload;

	make_chunk(&chunk, 0);
	make_results(&results);
	chunk_payload = chunk.len - PEXEC_FRAME_HEADER_SIZE;
	results_payload = results.len - PEXEC_FRAME_HEADER_SIZE;
	for (size_t n = 0; n <= chunk_payload; n++) {
		int got = walk_items(chunk.data + PEXEC_FRAME_HEADER_SIZE, n);
		cr_expect(got == -1 || (got >= 0 && (size_t)got <= COUNT(items)), "%zu bytes: %d",
		          n, got);
	}
	cr_expect_eq(walk_items(chunk.data + PEXEC_FRAME_HEADER_SIZE, chunk_payload),
	             (int)COUNT(items));
	for (size_t n = 0; n <= results_payload; n++) {
		int got = walk_records(results.data + PEXEC_FRAME_HEADER_SIZE, n);
		cr_expect(got == -1 || (got >= 0 && (size_t)got <= COUNT(recs)), "%zu bytes: %d", n,
		          got);
	}
	cr_expect_eq(walk_records(results.data + PEXEC_FRAME_HEADER_SIZE, results_payload),
	             (int)COUNT(recs));
	pexec__buf_release(&chunk);
	pexec__buf_release(&results);
}

/* Random bytes, and good payloads with random bytes flipped: the decoder
 * ends every walk (1, then 0 or -1) without reading past the end. */
Test(frame, hostile_payloads_never_read_past_the_end)
{
	uint64_t seed = 0x9e3779b97f4a7c15u;
	pexec_buf chunk, results;
	char buf[96];

	make_chunk(&chunk, 0);
	make_results(&results);
	for (int round = 0; round < 4000; round++) {
		size_t len;

		seed = seed * 6364136223846793005u + 1442695040888963407u;
		if (round % 2 == 0) {
			len = (size_t)(seed >> 33) % sizeof(buf);
			for (size_t i = 0; i < len; i++) {
				seed = seed * 6364136223846793005u + 1442695040888963407u;
				/* Small numbers make plausible lengths, ok and stage bytes. */
				buf[i] = (char)((seed >> 60) < 12 ? (seed >> 56) % 4 : seed >> 56);
			}
			walk_items(buf, len);
			walk_records(buf, len);
		} else {
			const pexec_buf *src = round % 4 == 1 ? &chunk : &results;
			size_t plen = src->len - PEXEC_FRAME_HEADER_SIZE;
			char *copy = malloc(plen);

			cr_assert_not_null(copy);
			memcpy(copy, src->data + PEXEC_FRAME_HEADER_SIZE, plen);
			for (int k = 0; k < 3; k++) {
				seed = seed * 6364136223846793005u + 1442695040888963407u;
				copy[(seed >> 33) % plen] = (char)(seed >> 56);
			}
			walk_items(copy, plen);
			walk_records(copy, plen);
			free(copy);
		}
	}
	pexec__buf_release(&chunk);
	pexec__buf_release(&results);
}
