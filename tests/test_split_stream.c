/*
 * test_split_stream.c - the splitter streams: items across block boundaries
 * from a file and from a pipe, huge items, a million items in order; and
 * the contract around the scan (items pointing into the caller's memory, a
 * sticky error, read errors, freeing NULL).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "split/split.h"
#include "split_run.h"
#include "util.h"

TestSuite(split_stream);

#define JSON PEXEC_FORMAT_JSON
#define NDJSON PEXEC_FORMAT_NDJSON

/* ---- streaming ---- */

/* A growable string for building inputs. */
typedef struct text {
	char *data;
	size_t len, cap;
} text;

static void put(text *t, const char *data, size_t len)
{
	if (t->cap - t->len < len) {
		while (t->cap - t->len < len)
			t->cap = t->cap ? 2 * t->cap : 4096;
		t->data = realloc(t->data, t->cap);
		cr_assert_not_null(t->data);
	}
	memcpy(t->data + t->len, data, len);
	t->len += len;
}

static void puts_(text *t, const char *s)
{
	put(t, s, strlen(s));
}

static uint32_t rnd(uint64_t *state)
{
	*state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(*state >> 33);
}

/* Appends a value of about `size` bytes whose kind depends on `kind`. */
static void gen_value(text *t, uint64_t *seed, size_t size, unsigned kind)
{
	static const char *const pieces[] = {
		"abc", "\\n", "\\\"", "\\u00e9", "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80",
		" ", "\\\\", "xyz0123",
	};
	char num[32];

	switch (kind % 4) {
	case 0: /* a string */
		puts_(t, "\"");
		for (size_t n = 0; n < size;) {
			const char *p = pieces[rnd(seed) % 10];
			puts_(t, p);
			n += strlen(p);
		}
		puts_(t, "\"");
		break;
	case 1: /* a number */
		snprintf(num, sizeof(num), "%s%u.%ue-%u", rnd(seed) % 2 ? "-" : "",
		         rnd(seed), rnd(seed), rnd(seed) % 300);
		puts_(t, num);
		break;
	case 2: /* an array of numbers */
		puts_(t, "[");
		for (size_t n = 0; n < size; n += 12) {
			snprintf(num, sizeof(num), "%s%u", n ? ", " : "", rnd(seed));
			puts_(t, num);
		}
		puts_(t, "]");
		break;
	default: /* an object */
		puts_(t, "{\"k\": [true, false, null], \"s\": ");
		gen_value(t, seed, size, 0);
		puts_(t, ", \"n\": {\"a\": ");
		gen_value(t, seed, 0, 1);
		puts_(t, "}}");
		break;
	}
}

/* Items whose sizes straddle many 256 KiB boundaries, and two of a few MiB. */
typedef struct corpus {
	text in;
	size_t n;
	size_t *start, *len;
} corpus;

static void make_corpus(corpus *c, pexec_format format)
{
	uint64_t seed = 42;
	const size_t block = 256 << 10;
	size_t straddles = 0;

	memset(c, 0, sizeof(*c));
	c->start = calloc(20000, sizeof(size_t));
	c->len = calloc(20000, sizeof(size_t));
	if (format == JSON)
		puts_(&c->in, "[\n");
	for (size_t i = 0; i < 5000; i++) {
		size_t size = rnd(&seed) % 3000;

		if (i == 1000)
			size = 5u << 20;
		else if (i == 3000)
			size = 3u << 20;
		if (i > 0)
			puts_(&c->in, format == JSON ? (i % 7 ? "," : ",\n  ") : (i % 5 ? "\n" : "\r\n\n"));
		c->start[i] = c->in.len;
		gen_value(&c->in, &seed, size, rnd(&seed));
		c->len[i] = c->in.len - c->start[i];
		if (c->start[i] / block != (c->start[i] + c->len[i] - 1) / block)
			straddles++;
		c->n++;
	}
	puts_(&c->in, format == JSON ? "\n]\n" : "\n");
	/* The corpus must test what it is for. */
	cr_assert_gt(straddles, 20, "only %zu items straddle a block boundary", straddles);
}

static void corpus_release(corpus *c)
{
	free(c->in.data);
	free(c->start);
	free(c->len);
}

static void check_corpus(const corpus *c, const outcome *o)
{
	cr_assert_eq(o->rc, 0, "%s", o->err.msg);
	cr_assert_eq(o->n, c->n);
	for (size_t i = 0; i < c->n; i++) {
		cr_assert_eq(o->lens[i], c->len[i], "item %zu", i);
		cr_assert(memcmp(o->items[i], c->in.data + c->start[i], c->len[i]) == 0,
		          "item %zu differs", i);
	}
	cr_assert_eq(o->offset, c->in.len);
}

Test(split_stream, streams_items_across_block_boundaries_from_a_file, .timeout = 60)
{
	for (int f = 0; f < 2; f++) {
		corpus c;
		outcome o;

		make_corpus(&c, f ? NDJSON : JSON);
		split_file(c.in.data, c.in.len, f ? NDJSON : JSON, &o);
		check_corpus(&c, &o);
		outcome_release(&o);
		corpus_release(&c);
	}
}

Test(split_stream, streams_items_across_block_boundaries_from_a_pipe, .timeout = 60)
{
	corpus c;
	outcome o;
	int fds[2];

	make_corpus(&c, JSON);
	cr_assert_eq(pipe(fds), 0);
	/* Odd write sizes make the reads end at odd places. */
	split_fed(fds, c.in.data, c.in.len, 4093, JSON, &o);
	check_corpus(&c, &o);
	outcome_release(&o);
	corpus_release(&c);
}

Test(split_stream, returns_a_million_items_in_order, .timeout = 60)
{
	text t = { 0 };
	char num[24];
	const char *data;
	size_t len, i = 0;
	pexec_error err;
	pexec__splitter *s;
	int fd, rc;

	puts_(&t, "[");
	for (i = 0; i < 1000000; i++) {
		snprintf(num, sizeof(num), i ? ",%zu" : "%zu", i * 7919);
		puts_(&t, num);
	}
	puts_(&t, "]");
	fd = temp_file(t.data, t.len);
	s = pexec__split_fd(fd, "t", JSON);
	cr_assert_not_null(s);
	for (i = 0; (rc = pexec__split_next(s, &data, &len, &err)) == 1; i++) {
		snprintf(num, sizeof(num), "%zu", i * 7919);
		if (len != strlen(num) || memcmp(data, num, len) != 0)
			cr_assert_fail("item %zu is '%.*s', want '%s'", i, (int)len, data, num);
	}
	cr_assert_eq(rc, 0, "%s", err.msg);
	cr_assert_eq(i, 1000000);
	cr_assert_eq(pexec__split_offset(s), t.len);
	/* The end is sticky. */
	cr_assert_eq(pexec__split_next(s, &data, &len, &err), 0);
	pexec__split_free(s);
	close(fd);
	free(t.data);
}

/* ---- the contract around the scan ---- */

Test(split_stream, memory_items_point_into_the_callers_bytes)
{
	static const char in[] = "[ 10, \"x\" ]";
	const char *data;
	size_t len;
	pexec_error err;
	pexec__splitter *s = pexec__split_mem(in, sizeof(in) - 1, "t", JSON);

	cr_assert_eq(pexec__split_next(s, &data, &len, &err), 1);
	cr_assert_eq(data, in + 2);
	cr_assert_eq(len, 2);
	cr_assert_eq(pexec__split_offset(s), 5); /* the comma too */
	cr_assert_eq(pexec__split_next(s, &data, &len, &err), 1);
	cr_assert_eq(data, in + 6);
	cr_assert_eq(len, 3);
	cr_assert_eq(pexec__split_next(s, &data, &len, &err), 0);
	cr_assert_eq(pexec__split_offset(s), sizeof(in) - 1);
	pexec__split_free(s);
}

Test(split_stream, repeats_the_error_on_later_calls)
{
	static const char in[] = "[1,2,]";
	const char *data;
	size_t len;
	pexec_error err, again;
	pexec__splitter *s = pexec__split_mem(in, sizeof(in) - 1, "t", JSON);

	cr_assert_eq(pexec__split_next(s, &data, &len, &err), 1);
	cr_assert_eq(pexec__split_next(s, &data, &len, &err), 1);
	cr_assert_eq(pexec__split_next(s, &data, &len, &err), -PEXEC_EINPUT);
	for (int i = 0; i < 3; i++) {
		memset(&again, 0, sizeof(again));
		cr_assert_eq(pexec__split_next(s, &data, &len, &again), -PEXEC_EINPUT);
		cr_assert_str_eq(again.msg, err.msg);
	}
	cr_assert_str_eq(err.msg, "malformed input 't' at line 1, column 6, byte 5: "
	                 "trailing comma before ']'");
	pexec__split_free(s);
}

Test(split_stream, reports_read_errors)
{
	const char *data;
	size_t len;
	pexec_error err, again;
	int fd = open("/", O_RDONLY | O_DIRECTORY);
	pexec__splitter *s;
	char want[PEXEC_ERROR_MAX];

	cr_assert_geq(fd, 0);
	s = pexec__split_fd(fd, "/", JSON);
	cr_assert_eq(pexec__split_next(s, &data, &len, &err), -PEXEC_ESYS);
	snprintf(want, sizeof(want), "cannot read '/': %s", strerror(EISDIR));
	cr_assert_str_eq(err.msg, want);
	cr_assert_eq(pexec__split_next(s, &data, &len, &again), -PEXEC_ESYS);
	cr_assert_str_eq(again.msg, want);
	pexec__split_free(s);
	close(fd);
}

Test(split_stream, free_accepts_null)
{
	pexec__split_free(NULL);
}
