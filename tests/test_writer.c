/*
 * test_writer.c - the output writer (core/lib/job/output.h) on its own: the
 * bytes of a JSON array and of NDJSON for no, one and many results,
 * --drop-null, results bigger than the writer's buffer (256 KiB, output.c),
 * the batch path, what an aborted run leaves on a descriptor and in a
 * directory, a file that appears only at finish, a partial file continued
 * after a resume, a closed reader, and pexec__json_quote, which writes the
 * strings of --errors records.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"
#include "job/output.h"
#include "util.h"

TestSuite(writer, .init = scratch_make, .fini = scratch_remove);

#define WRITER_BUF ((size_t)256 << 10)

static void expect_ok(pexec_code rc, const pexec_error *err, const char *what)
{
	cr_assert_eq(rc, PEXEC_OK, "%s: %s", what, err->msg);
}

enum how { ONE_BY_ONE, BATCH };

/* Puts `n` results into `w`, one by one or as one batch. */
static void put_all(struct pexec__writer *w, const char *const *texts, size_t n, enum how how)
{
	pexec_error err;

	if (how == BATCH) {
		struct iovec *v = calloc(n + 1, sizeof(*v));
		cr_assert_not_null(v);
		for (size_t i = 0; i < n; i++)
			v[i] = (struct iovec){ (void *)texts[i], strlen(texts[i]) };
		expect_ok(pexec__writer_put_batch(w, v, (uint32_t)n, &err), &err, "put_batch");
		free(v);
		return;
	}
	for (size_t i = 0; i < n; i++)
		expect_ok(pexec__writer_put(w, texts[i], strlen(texts[i]), &err), &err, "put");
}

/* What a writer on a descriptor (a scratch file) writes for `texts`, up to
 * finish (or, with `abort_it`, abort).  Malloc'd, NUL-terminated. */
static char *output_of(pexec_format format, int drop_null, const char *const *texts, size_t n,
                       enum how how, int abort_it, size_t *len)
{
	const char *path = scratch_path(3, "fd-output");
	struct pexec__writer w;
	pexec_error err;
	char *data;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	expect_ok(pexec__writer_open(&w, NULL, fd, format, drop_null, &err), &err, "open");
	put_all(&w, texts, n, how);
	if (abort_it)
		pexec__writer_abort(&w);
	else
		expect_ok(pexec__writer_finish(&w, &err), &err, "finish");
	/* The descriptor is the caller's: still open. */
	cr_expect_eq(fcntl(fd, F_GETFD) >= 0, 1, "the writer closed the caller's descriptor");
	close(fd);
	data = read_file(path, len);
	cr_assert_not_null(data);
	return data;
}

static void expect_output(pexec_format format, int drop_null, const char *const *texts,
                          size_t n, const char *want)
{
	for (int how = ONE_BY_ONE; how <= BATCH; how++) {
		size_t len;
		char *got = output_of(format, drop_null, texts, n, (enum how)how, 0, &len);
		char what[128];

		snprintf(what, sizeof(what), "%s of %zu results%s%s",
		         format == PEXEC_FORMAT_JSON ? "JSON" : "NDJSON", n,
		         drop_null ? ", --drop-null" : "", how == BATCH ? ", as a batch" : "");
		expect_same_bytes(what, got, len, want, strlen(want));
		free(got);
	}
}

/* ---- the bytes ---- */

Test(writer, json_array_byte_for_byte)
{
	static const char *const one[] = { "1" }, *const many[] = { "1", "\"two\"", "{\"a\":[3]}" };

	expect_output(PEXEC_FORMAT_JSON, 0, NULL, 0, "[]\n");
	expect_output(PEXEC_FORMAT_JSON, 0, one, 1, "[\n1\n]\n");
	expect_output(PEXEC_FORMAT_JSON, 0, many, 3, "[\n1,\n\"two\",\n{\"a\":[3]}\n]\n");
}

Test(writer, ndjson_byte_for_byte)
{
	static const char *const one[] = { "1" }, *const many[] = { "1", "\"two\"", "{\"a\":[3]}" };

	expect_output(PEXEC_FORMAT_NDJSON, 0, NULL, 0, "");
	expect_output(PEXEC_FORMAT_NDJSON, 0, one, 1, "1\n");
	expect_output(PEXEC_FORMAT_NDJSON, 0, many, 3, "1\n\"two\"\n{\"a\":[3]}\n");
}

Test(writer, drop_null_leaves_null_results_out)
{
	static const char *const some[] = { "null", "1", "null", "2", "null" };
	static const char *const nulls[] = { "null", "null" };

	expect_output(PEXEC_FORMAT_JSON, 1, some, COUNT(some), "[\n1,\n2\n]\n");
	expect_output(PEXEC_FORMAT_NDJSON, 1, some, COUNT(some), "1\n2\n");
	expect_output(PEXEC_FORMAT_JSON, 1, nulls, COUNT(nulls), "[]\n");
	expect_output(PEXEC_FORMAT_NDJSON, 1, nulls, COUNT(nulls), "");
	/* Without it, a null is a result like any other. */
	expect_output(PEXEC_FORMAT_JSON, 0, nulls, COUNT(nulls), "[\nnull,\nnull\n]\n");
}

Test(writer, ndjson_turns_a_raw_line_break_into_a_space)
{
	static const char *const broken[] = { "{\"a\":\n1,\r\n\"b\":[2,\n3]}", "4" };

	expect_output(PEXEC_FORMAT_NDJSON, 0, broken, COUNT(broken),
	              "{\"a\": 1,  \"b\":[2, 3]}\n4\n");
	/* A JSON array takes the text as it is. */
	expect_output(PEXEC_FORMAT_JSON, 0, broken, COUNT(broken),
	              "[\n{\"a\":\n1,\r\n\"b\":[2,\n3]},\n4\n]\n");
}

/* A JSON string whose text is exactly `len` bytes. */
static char *string_of(size_t len, char fill)
{
	char *s = malloc(len + 1);

	cr_assert_not_null(s);
	memset(s, fill, len);
	s[0] = s[len - 1] = '"';
	s[len] = '\0';
	return s;
}

Test(writer, results_bigger_than_the_buffer_keep_their_place)
{
	static const size_t sizes[] = {
		WRITER_BUF - 3, WRITER_BUF - 2, WRITER_BUF - 1, WRITER_BUF, WRITER_BUF + 1,
		4 * WRITER_BUF + 7,
	};

	for (size_t k = 0; k < COUNT(sizes); k++) {
		char *big = string_of(sizes[k], 'x'), *big2 = string_of(sizes[k] / 2 + 3, 'y');
		const char *const texts[] = { "1", big, "2", big2, big, "3" };
		char *json = NULL, *nd = NULL;
		size_t jlen = 0, ndlen = 0;

		append(&json, &jlen, "[\n", 2);
		for (size_t i = 0; i < COUNT(texts); i++) {
			append(&json, &jlen, texts[i], strlen(texts[i]));
			append(&json, &jlen, i + 1 < COUNT(texts) ? ",\n" : "\n]\n",
			       i + 1 < COUNT(texts) ? 2 : 3);
			append(&nd, &ndlen, texts[i], strlen(texts[i]));
			append(&nd, &ndlen, "\n", 1);
		}
		expect_output(PEXEC_FORMAT_JSON, 0, texts, COUNT(texts), json);
		expect_output(PEXEC_FORMAT_NDJSON, 0, texts, COUNT(texts), nd);
		free(json);
		free(nd);
		free(big);
		free(big2);
	}
}

Test(writer, abort_on_a_descriptor_leaves_no_complete_array)
{
	static const char *const texts[] = { "1", "2", "3" };
	size_t len;
	char *got;

	got = output_of(PEXEC_FORMAT_JSON, 0, texts, COUNT(texts), ONE_BY_ONE, 1, &len);
	/* What was complete goes out, without the closing bracket. */
	cr_expect_str_eq(got, "[\n1,\n2,\n3");
	cr_expect_not(parses(got), "an aborted run's output parses as a whole result");
	free(got);
	got = output_of(PEXEC_FORMAT_JSON, 0, NULL, 0, ONE_BY_ONE, 1, &len);
	cr_expect_str_eq(got, "", "an aborted run of no results wrote \"%s\"", got);
	free(got);
	/* NDJSON: the complete lines. */
	got = output_of(PEXEC_FORMAT_NDJSON, 0, texts, COUNT(texts), ONE_BY_ONE, 1, &len);
	cr_expect_str_eq(got, "1\n2\n3\n");
	free(got);
}

/* ---- a file that appears at finish ---- */

Test(writer, a_file_appears_only_at_finish)
{
	static const char *const texts[] = { "1", "2" };
	const char *path = scratch_path(0, "out.json");
	struct pexec__writer w;
	pexec_error err;
	size_t len;
	char *list, *data;

	expect_ok(pexec__writer_open(&w, path, -1, PEXEC_FORMAT_JSON, 0, &err), &err, "open");
	put_all(&w, texts, COUNT(texts), ONE_BY_ONE);
	expect_ok(pexec__writer_flush(&w, &err), &err, "flush");
	cr_expect_eq(w.bytes, strlen("[\n1,\n2"), "flush wrote %llu bytes",
	             (unsigned long long)w.bytes);
	cr_expect_not(exists(path), "the output exists before finish");
	/* Nothing, or (where the filesystem has no O_TMPFILE) a temporary
	 * beside it. */
	list = scratch_listing();
	cr_expect(!*list || (strncmp(list, "out.json.pexec-", 15) == 0 && line_count(list) == 1),
	          "before finish the directory holds: %s", list);
	free(list);
	expect_ok(pexec__writer_finish(&w, &err), &err, "finish");
	data = read_file(path, &len);
	cr_assert_not_null(data, "no output after finish");
	cr_expect_str_eq(data, "[\n1,\n2\n]\n");
	free(data);
	list = scratch_listing();
	cr_expect_str_eq(list, "out.json\n");
	free(list);
}

Test(writer, an_existing_file_is_replaced_only_at_finish)
{
	static const char *const texts[] = { "7" };
	const char *path = scratch_path(0, "out.json");
	struct pexec__writer w;
	pexec_error err;
	size_t len;
	char *data;

	write_file(path, "old\n", 4);
	expect_ok(pexec__writer_open(&w, path, -1, PEXEC_FORMAT_NDJSON, 0, &err), &err, "open");
	put_all(&w, texts, COUNT(texts), ONE_BY_ONE);
	expect_ok(pexec__writer_flush(&w, &err), &err, "flush");
	data = read_file(path, &len);
	cr_expect_str_eq(data, "old\n", "the old output changed before finish");
	free(data);
	expect_ok(pexec__writer_finish(&w, &err), &err, "finish");
	data = read_file(path, &len);
	cr_expect_str_eq(data, "7\n");
	free(data);
}

Test(writer, abort_of_a_file_leaves_nothing_behind)
{
	static const char *const texts[] = { "1", "2" };
	const char *path = scratch_path(0, "out.json");
	struct pexec__writer w;
	pexec_error err;
	size_t len;
	char *list, *data;

	expect_ok(pexec__writer_open(&w, path, -1, PEXEC_FORMAT_JSON, 0, &err), &err, "open");
	put_all(&w, texts, COUNT(texts), ONE_BY_ONE);
	expect_ok(pexec__writer_flush(&w, &err), &err, "flush");
	pexec__writer_abort(&w);
	list = scratch_listing();
	cr_expect_str_eq(list, "", "an aborted run left: %s", list);
	free(list);

	/* Nor does it touch an output that was there. */
	write_file(path, "old\n", 4);
	expect_ok(pexec__writer_open(&w, path, -1, PEXEC_FORMAT_JSON, 0, &err), &err, "open");
	put_all(&w, texts, COUNT(texts), ONE_BY_ONE);
	pexec__writer_abort(&w);
	list = scratch_listing();
	cr_expect_str_eq(list, "out.json\n");
	free(list);
	data = read_file(path, &len);
	cr_expect_str_eq(data, "old\n");
	free(data);
}

/* ---- partial files and resume ---- */

Test(writer, sync_makes_bytes_and_count_a_durable_prefix)
{
	static const char *const texts[] = { "10", "20", "30" };
	const char *path = scratch_path(0, "out.json"), *partial = scratch_path(1, "out.partial");
	struct pexec__writer w;
	pexec_error err;

	expect_ok(pexec__writer_open_partial(&w, path, partial, 0, 0, 0, PEXEC_FORMAT_JSON, 0,
	                                     &err), &err, "open_partial");
	put_all(&w, texts, COUNT(texts), ONE_BY_ONE);
	expect_ok(pexec__writer_sync(&w, &err), &err, "sync");
	cr_expect_eq(w.count, 3);
	cr_expect_eq(w.bytes, strlen("[\n10,\n20,\n30"));
	cr_expect_eq(file_size(partial), (long long)w.bytes, "the partial file holds %lld bytes, "
	             "the writer says %llu", file_size(partial), (unsigned long long)w.bytes);
	cr_expect_not(exists(path));
	pexec__writer_keep(&w);
	cr_expect_eq(file_size(partial), (long long)strlen("[\n10,\n20,\n30"));
	cr_expect_not(exists(path), "keep wrote the final output");
}

/* An interrupted run's partial file, continued as --resume continues it:
 * cut back to what the last sync covered, then the rest. */
static void expect_resume_continues(pexec_format format)
{
	static const char *const first[] = { "1", "\"two\"", "3", "4" }, *const rest[] = { "3", "4",
	                                                                                  "5" };
	static const char *const all[] = { "1", "\"two\"", "3", "4", "5" };
	const char *path = scratch_path(0, "out"), *partial = scratch_path(1, "out.partial");
	struct pexec__writer w;
	pexec_error err;
	uint64_t bytes, count;
	size_t len, want_len;
	char *got, *want;

	expect_ok(pexec__writer_open_partial(&w, path, partial, 0, 0, 0, format, 0, &err), &err,
	          "open_partial");
	put_all(&w, first, 2, ONE_BY_ONE);
	expect_ok(pexec__writer_sync(&w, &err), &err, "sync");
	bytes = w.bytes;
	count = w.count;
	/* Results written after the sync, that no checkpoint covers. */
	put_all(&w, first + 2, 2, ONE_BY_ONE);
	pexec__writer_keep(&w);
	cr_assert_gt(file_size(partial), (long long)bytes);

	expect_ok(pexec__writer_open_partial(&w, path, partial, 1, bytes, count, format, 0, &err),
	          &err, "open_partial to resume");
	cr_expect_eq(file_size(partial), (long long)bytes, "not cut back to the last sync");
	put_all(&w, rest, COUNT(rest), ONE_BY_ONE);
	expect_ok(pexec__writer_finish(&w, &err), &err, "finish");
	cr_expect_not(exists(partial), "the partial file is still there after finish");
	got = read_file(path, &len);
	cr_assert_not_null(got);
	want = output_of(format, 0, all, COUNT(all), ONE_BY_ONE, 0, &want_len);
	expect_same_bytes("resumed output", got, len, want, want_len);
	free(got);
	free(want);
}

Test(writer, open_partial_with_resume_cuts_back_and_continues)
{
	expect_resume_continues(PEXEC_FORMAT_JSON);
	expect_resume_continues(PEXEC_FORMAT_NDJSON);
}

Test(writer, open_partial_anew_truncates)
{
	static const char *const texts[] = { "1" };
	const char *path = scratch_path(0, "out"), *partial = scratch_path(1, "out.partial");
	struct pexec__writer w;
	pexec_error err;
	size_t len;
	char *got;

	write_file(partial, "left from before, longer than the output\n", 42);
	expect_ok(pexec__writer_open_partial(&w, path, partial, 0, 0, 0, PEXEC_FORMAT_JSON, 0,
	                                     &err), &err, "open_partial");
	put_all(&w, texts, 1, ONE_BY_ONE);
	expect_ok(pexec__writer_finish(&w, &err), &err, "finish");
	got = read_file(path, &len);
	cr_expect_str_eq(got, "[\n1\n]\n");
	free(got);
}

/* ---- write errors ---- */

Test(writer, a_reader_that_went_away_gives_epipe)
{
	static const char *const texts[] = { "1", "2" };
	struct pexec__writer w;
	pexec_error err;
	sigset_t pipe_sig;
	int fds[2];

	sigemptyset(&pipe_sig);
	sigaddset(&pipe_sig, SIGPIPE);
	cr_assert_eq(sigprocmask(SIG_BLOCK, &pipe_sig, NULL), 0);
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	close(fds[0]);
	expect_ok(pexec__writer_open(&w, NULL, fds[1], PEXEC_FORMAT_JSON, 0, &err), &err, "open");
	put_all(&w, texts, COUNT(texts), ONE_BY_ONE);
	cr_expect_eq(pexec__writer_flush(&w, &err), PEXEC_EPIPE);
	cr_expect_str_eq(err.msg, "cannot write '<stdout>': output closed by its reader");
	cr_expect_eq(pexec__writer_finish(&w, &err), PEXEC_EPIPE);
	close(fds[1]);
}

Test(writer, a_full_device_is_a_system_error)
{
	static const char *const texts[] = { "1" };
	struct pexec__writer w;
	pexec_error err;
	int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);

	cr_assert_geq(fd, 0, "/dev/full: %s", strerror(errno));
	expect_ok(pexec__writer_open(&w, NULL, fd, PEXEC_FORMAT_NDJSON, 0, &err), &err, "open");
	put_all(&w, texts, 1, ONE_BY_ONE);
	cr_expect_eq(pexec__writer_finish(&w, &err), PEXEC_ESYS);
	cr_expect_str_eq(err.msg, "cannot write '<stdout>': No space left on device");
	close(fd);
}

/* The message names the user's file first, then where the temporary was to be. */
Test(writer, open_says_what_it_cannot_create)
{
	const char *path = scratch_path(0, "no/such/dir/out.json");
	struct pexec__writer w;
	pexec_error err;
	char want[600];

	cr_expect_eq(pexec__writer_open(&w, path, -1, PEXEC_FORMAT_JSON, 0, &err), PEXEC_ESYS);
	snprintf(want, sizeof(want), "cannot create output '%s': cannot create a temporary file in "
	         "'%.*s': No such file or directory", path, (int)(strlen(path) - strlen("/out.json")),
	         path);
	cr_expect_str_eq(err.msg, want);
}

/* ---- pexec__json_quote ---- */

Test(writer, json_quote_escapes_and_replaces_what_is_not_utf8)
{
	static const struct {
		const char *in;
		size_t len;
		size_t max;
		const char *want;
	} cases[] = {
		{ "abc", 3, SIZE_MAX, "\"abc\"" },
		{ "", 0, SIZE_MAX, "\"\"" },
		{ "a\"b\\c/", 6, SIZE_MAX, "\"a\\\"b\\\\c/\"" },
		{ "\n\t\x01\x1f\x7f", 5, SIZE_MAX, "\"\\u000a\\u0009\\u0001\\u001f\x7f\"" },
		{ "nul\0inside", 10, SIZE_MAX, "\"nul\\u0000inside\"" },
		{ "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, SIZE_MAX,
		  "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"" },      /* é € and an emoji */
		{ "a\xff" "b", 3, SIZE_MAX, "\"a\\ufffdb\"" },
		{ "\xc0\x80", 2, SIZE_MAX, "\"\\ufffd\\ufffd\"" },     /* overlong NUL */
		{ "\xe0\x80\xaf", 3, SIZE_MAX, "\"\\ufffd\\ufffd\\ufffd\"" }, /* overlong '/' */
		{ "\xed\xa0\x80", 3, SIZE_MAX, "\"\\ufffd\\ufffd\\ufffd\"" }, /* a surrogate */
		/* past U+10FFFF */
		{ "\xf4\x90\x80\x80", 4, SIZE_MAX, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
		{ "x\xe2\x82", 3, SIZE_MAX, "\"x\\ufffd\\ufffd\"" },   /* truncated at the end */
		{ "\x80", 1, SIZE_MAX, "\"\\ufffd\"" },                /* a lone continuation */
	};

	for (size_t i = 0; i < COUNT(cases); i++) {
		pexec_buf b;

		pexec__buf_init(&b);
		cr_assert_eq(pexec__json_quote(&b, cases[i].in, cases[i].len, cases[i].max), 0);
		cr_assert_eq(pexec_buf_append(&b, "", 1), 0);
		cr_expect_str_eq(b.data, cases[i].want, "case %zu", i);
		cr_expect(parses(b.data), "case %zu: \"%s\" is not JSON", i, b.data);
		pexec__buf_release(&b);
	}
}

Test(writer, json_quote_cuts_at_a_character_boundary)
{
	static const struct {
		const char *in;
		size_t max;
		const char *want;
	} cases[] = {
		{ "abcdef", 3, "\"abc...\"" },
		{ "abcdef", 6, "\"abcdef\"" },          /* exactly: no cut */
		{ "abcdef", 0, "\"...\"" },
		{ "ab\xe2\x82\xac", 5, "\"ab\xe2\x82\xac\"" },
		{ "ab\xe2\x82\xac", 4, "\"ab...\"" },   /* never half a character */
		{ "ab\xe2\x82\xac", 3, "\"ab...\"" },
		{ "ab\xe2\x82\xac", 2, "\"ab...\"" },
		{ "a\"b", 2, "\"a\\\"...\"" },          /* counts input bytes, not output */
		{ "a\xff\xff", 2, "\"a\\ufffd...\"" },
	};

	for (size_t i = 0; i < COUNT(cases); i++) {
		pexec_buf b;

		pexec__buf_init(&b);
		cr_assert_eq(pexec_buf_puts(&b, "x="), 0);
		cr_assert_eq(pexec__json_quote(&b, cases[i].in, strlen(cases[i].in), cases[i].max),
		             0);
		cr_assert_eq(pexec_buf_append(&b, "", 1), 0);
		cr_expect(strncmp(b.data, "x=", 2) == 0, "case %zu: what was there went", i);
		cr_expect_str_eq(b.data + 2, cases[i].want, "case %zu", i);
		cr_expect(parses(b.data + 2), "case %zu: not JSON", i);
		pexec__buf_release(&b);
	}
}
