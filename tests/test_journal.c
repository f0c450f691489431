/*
 * test_journal.c - the resume journal (core/lib/job/journal.h) on its own:
 * what is written reads back as the last whole checkpoint, a torn last line
 * (a crash in the middle of a write) is ignored wherever the cut falls, the
 * failed items a checkpoint covers are listed, a complete run says so, what
 * is not a journal is refused with a message, and a journal that was read
 * can be continued.  Also pexec__hash, which tells a resumed run whether its
 * input's first items are the same bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"
#include "job/journal.h"

TestSuite(journal, .init = scratch_make, .fini = scratch_remove);

#define HEADER "{\"pexec_journal\":1,\"plugin\":{\"name\":\"factorial\"},\"config\":null}"
#define BIG_HASH 0xfedcba9876543210ull

static void expect_ok(pexec_code rc, const pexec_error *err, const char *what)
{
	cr_assert_eq(rc, PEXEC_OK, "%s: %s", what, err->msg);
}

/* Writes a journal: the header, then failed item 3 and a checkpoint of 5
 * items, then failed item 7 and a checkpoint of 10. */
static void write_two_checkpoints(const char *path)
{
	struct pexec__journal j;
	pexec_error err;

	pexec__journal_init(&j);
	expect_ok(pexec__journal_open(&j, path, HEADER, 0, &err), &err, "open");
	cr_assert_eq(pexec__journal_failed(&j, 3), 0);
	expect_ok(pexec__journal_checkpoint(&j, 5, 4, 100, 0xabc, &err), &err, "checkpoint");
	cr_assert_eq(pexec__journal_failed(&j, 7), 0);
	expect_ok(pexec__journal_checkpoint(&j, 10, 8, 200, BIG_HASH, &err), &err, "checkpoint");
	pexec__journal_release(&j);
}

static const char two_checkpoints[] =
	HEADER "\n"
	"{\"failed\":3}\n"
	"{\"checkpoint\":{\"items\":5,\"written\":4,\"bytes\":100,\"hash\":\"0000000000000abc\"}}\n"
	"{\"failed\":7}\n"
	"{\"checkpoint\":{\"items\":10,\"written\":8,\"bytes\":200,"
	"\"hash\":\"fedcba9876543210\"}}\n";

static void expect_failed(const struct pexec__journal *j, const uint64_t *want, size_t n)
{
	cr_assert_eq(j->nfailed, n, "%zu failed items listed, want %zu", j->nfailed, n);
	for (size_t i = 0; i < n; i++)
		cr_expect_eq(j->failed[i], want[i], "failed item %zu is %llu, want %llu", i,
		             (unsigned long long)j->failed[i], (unsigned long long)want[i]);
}

Test(journal, lines_are_written_as_documented)
{
	const char *path = scratch_path(0, "out.pexec-journal");
	size_t len;
	char *text;

	write_two_checkpoints(path);
	text = read_file(path, &len);
	cr_assert_not_null(text);
	expect_same_bytes("journal", text, len, two_checkpoints, sizeof(two_checkpoints) - 1);
	free(text);
}

Test(journal, reads_back_the_last_whole_checkpoint)
{
	static const uint64_t failed[] = { 3, 7 };
	const char *path = scratch_path(0, "out.pexec-journal");
	struct pexec__journal j;
	pexec_error err;

	write_two_checkpoints(path);
	pexec__journal_init(&j);
	expect_ok(pexec__journal_read(&j, path, &err), &err, "read");
	cr_expect_str_eq(j.header, HEADER);
	cr_expect_eq(j.items, 10);
	cr_expect_eq(j.written, 8);
	cr_expect_eq(j.bytes, 200);
	cr_expect_eq(j.hash, BIG_HASH, "hash %016llx", (unsigned long long)j.hash);
	cr_expect_not(j.complete);
	expect_failed(&j, failed, COUNT(failed));
	cr_expect_eq(j.valid_len, sizeof(two_checkpoints) - 1);
	pexec__journal_release(&j);
}

Test(journal, a_torn_last_line_is_ignored_wherever_it_is_cut)
{
	static const uint64_t failed[] = { 3 };
	const char *path = scratch_path(0, "out.pexec-journal");
	const size_t whole = sizeof(two_checkpoints) - 1;
	/* Where the last line begins. */
	const size_t last = (size_t)(strstr(two_checkpoints, "{\"checkpoint\":{\"items\":10") -
	                             two_checkpoints);

	for (size_t cut = last; cut < whole; cut++) {
		struct pexec__journal j;
		pexec_error err;

		write_two_checkpoints(path);
		cr_assert_eq(truncate(path, (off_t)cut), 0, "truncate: %s", strerror(errno));
		pexec__journal_init(&j);
		cr_assert_eq(pexec__journal_read(&j, path, &err), PEXEC_OK, "cut at %zu: %s", cut,
		             err.msg);
		cr_expect_eq(j.items, 5, "cut at %zu: checkpoint of %llu items", cut,
		             (unsigned long long)j.items);
		cr_expect_eq(j.written, 4);
		cr_expect_eq(j.bytes, 100);
		cr_expect_eq(j.hash, 0xabc);
		/* Item 7 failed after the checkpoint that is left: it is run again. */
		expect_failed(&j, failed, COUNT(failed));
		cr_expect_eq(j.valid_len, last, "cut at %zu: %zu bytes of whole lines", cut,
		             j.valid_len);
		pexec__journal_release(&j);
	}
}

Test(journal, a_failed_item_goes_out_with_the_checkpoint_that_covers_it)
{
	const char *path = scratch_path(0, "out.pexec-journal");
	struct pexec__journal j;
	pexec_error err;
	size_t len;
	char *text;

	pexec__journal_init(&j);
	expect_ok(pexec__journal_open(&j, path, HEADER, 0, &err), &err, "open");
	cr_assert_eq(pexec__journal_failed(&j, 3), 0);
	text = read_file(path, &len);
	cr_expect_str_eq(text, HEADER "\n", "a failed line was written before its checkpoint");
	free(text);
	expect_ok(pexec__journal_checkpoint(&j, 5, 5, 10, 1, &err), &err, "checkpoint");
	text = read_file(path, &len);
	cr_expect_str_eq(text, HEADER "\n{\"failed\":3}\n"
	                       "{\"checkpoint\":{\"items\":5,\"written\":5,\"bytes\":10,"
	                       "\"hash\":\"0000000000000001\"}}\n");
	free(text);
	pexec__journal_release(&j);
}

Test(journal, complete_is_read_back)
{
	static const uint64_t failed[] = { 2 };
	const char *path = scratch_path(0, "out.pexec-journal");
	struct pexec__journal j;
	pexec_error err;

	pexec__journal_init(&j);
	expect_ok(pexec__journal_open(&j, path, HEADER, 0, &err), &err, "open");
	cr_assert_eq(pexec__journal_failed(&j, 2), 0);
	expect_ok(pexec__journal_checkpoint(&j, 6, 6, 30, 9, &err), &err, "checkpoint");
	expect_ok(pexec__journal_complete(&j, 6, &err), &err, "complete");
	pexec__journal_release(&j);

	pexec__journal_init(&j);
	expect_ok(pexec__journal_read(&j, path, &err), &err, "read");
	cr_expect(j.complete, "a completed journal reads as incomplete");
	cr_expect_eq(j.items, 6);
	cr_expect_eq(j.bytes, 30);
	expect_failed(&j, failed, COUNT(failed));
	pexec__journal_release(&j);
}

Test(journal, a_checkpoint_it_cannot_read_does_not_count)
{
	const char *path = scratch_path(0, "out.pexec-journal");
	static const char text[] =
		HEADER "\n"
		"{\"checkpoint\":{\"items\":5,\"written\":5,\"bytes\":50,"
		"\"hash\":\"0000000000000002\"}}\n"
		"{\"checkpoint\":{\"items\":\"9\",\"written\":9,\"bytes\":90,\"hash\":\"00\"}}\n"
		"{\"checkpoint\":{\"items\":9,\"written\":9,\"bytes\":90}}\n"
		"{\"checkpoint\":{\"items\":-1,\"written\":9,\"bytes\":90,\"hash\":\"00\"}}\n";
	struct pexec__journal j;
	pexec_error err;

	write_file(path, text, sizeof(text) - 1);
	pexec__journal_init(&j);
	expect_ok(pexec__journal_read(&j, path, &err), &err, "read");
	cr_expect_eq(j.items, 5);
	cr_expect_eq(j.bytes, 50);
	cr_expect_eq(j.hash, 2);
	pexec__journal_release(&j);
}

Test(journal, refuses_what_is_not_a_journal_with_a_message)
{
	static const struct {
		const char *text; /* NULL: no file */
		const char *why;  /* the message after "cannot resume: " and the path */
	} cases[] = {
		{ NULL, "no journal '%s' (No such file or directory)" },
		{ "", "journal '%s' is empty" },
		{ "{\"pexec_journal\":1", "journal '%s' is empty" }, /* a torn header */
		{ "not json\n", "journal '%s' is damaged" },
		{ HEADER "\n{\"checkpoint\":\n", "journal '%s' is damaged" },
		{ "{\"items\":5}\n", "'%s' is not a pexec journal" },
		{ "[1,2]\n", "'%s' is not a pexec journal" },
	};
	const char *path = scratch_path(0, "out.pexec-journal");

	for (size_t i = 0; i < COUNT(cases); i++) {
		struct pexec__journal j;
		pexec_error err = { "" };
		char want[600];

		unlink(path);
		if (cases[i].text)
			write_file(path, cases[i].text, strlen(cases[i].text));
		strcpy(want, "cannot resume: ");
		snprintf(want + strlen(want), sizeof(want) - strlen(want), cases[i].why, path);
		pexec__journal_init(&j);
		cr_expect_eq(pexec__journal_read(&j, path, &err), PEXEC_EUSAGE, "case %zu", i);
		cr_expect_str_eq(err.msg, want, "case %zu", i);
		pexec__journal_release(&j);
	}
}

Test(journal, append_continues_the_journal_that_was_read)
{
	const char *path = scratch_path(0, "out.pexec-journal");
	const size_t whole = sizeof(two_checkpoints) - 1;
	struct pexec__journal j;
	pexec_error err;
	char want[1024];
	size_t len;
	char *text;

	/* Torn in the middle of its last line, as a crash leaves it. */
	write_two_checkpoints(path);
	cr_assert_eq(truncate(path, (off_t)(whole - 20)), 0);
	pexec__journal_init(&j);
	expect_ok(pexec__journal_read(&j, path, &err), &err, "read");
	expect_ok(pexec__journal_open(&j, path, "{\"ignored\":1}", 1, &err), &err, "open");
	cr_assert_eq(pexec__journal_failed(&j, 8), 0);
	expect_ok(pexec__journal_checkpoint(&j, 12, 11, 300, 0x77, &err), &err, "checkpoint");
	pexec__journal_release(&j);

	/* The torn bytes are gone, the header kept, the new lines after. */
	snprintf(want, sizeof(want), "%.*s{\"failed\":8}\n{\"checkpoint\":{\"items\":12,"
	         "\"written\":11,\"bytes\":300,\"hash\":\"0000000000000077\"}}\n",
	         (int)(strstr(two_checkpoints, "{\"checkpoint\":{\"items\":10") - two_checkpoints),
	         two_checkpoints);
	text = read_file(path, &len);
	cr_assert_not_null(text);
	expect_same_bytes("continued journal", text, len, want, strlen(want));
	free(text);

	pexec__journal_init(&j);
	expect_ok(pexec__journal_read(&j, path, &err), &err, "read again");
	cr_expect_str_eq(j.header, HEADER);
	cr_expect_eq(j.items, 12);
	cr_expect_eq(j.nfailed, 3, "failed items 3, 7 and 8 are not all listed");
	pexec__journal_release(&j);
}

Test(journal, open_anew_replaces_an_old_journal)
{
	const char *path = scratch_path(0, "out.pexec-journal");
	struct pexec__journal j;
	pexec_error err;
	size_t len;
	char *text;

	write_two_checkpoints(path);
	pexec__journal_init(&j);
	expect_ok(pexec__journal_open(&j, path, "{\"pexec_journal\":1}", 0, &err), &err, "open");
	pexec__journal_release(&j);
	text = read_file(path, &len);
	cr_expect_str_eq(text, "{\"pexec_journal\":1}\n");
	free(text);
}

Test(journal, open_says_what_it_cannot_create)
{
	const char *path = scratch_path(0, "no/such/dir/out.pexec-journal");
	struct pexec__journal j;
	pexec_error err;
	char want[600];

	pexec__journal_init(&j);
	cr_expect_eq(pexec__journal_open(&j, path, HEADER, 0, &err), PEXEC_ESYS);
	snprintf(want, sizeof(want), "cannot create '%s': No such file or directory", path);
	cr_expect_str_eq(err.msg, want);
	pexec__journal_release(&j);
}

/* ---- pexec__hash ---- */

/* The hash of a list of items, chained as a job chains them. */
static uint64_t chain(const char *const *items, size_t n)
{
	uint64_t h = 0;

	for (size_t i = 0; i < n; i++)
		h = pexec__hash(h, items[i], strlen(items[i]));
	return h;
}

Test(journal, hash_tells_items_apart)
{
	static const char *const ab_c[] = { "ab", "c" }, *const a_bc[] = { "a", "bc" };
	static const char *const c_ab[] = { "c", "ab" };
	static const char long1[] = "0123456789abcdefghij", long2[] = "0123456789abcdefghiJ";
	static const char long3[] = "x123456789abcdefghij";

	cr_expect_eq(pexec__hash(0, "abc", 3), pexec__hash(0, "abc", 3), "not deterministic");
	cr_expect_eq(chain(ab_c, 2), chain(ab_c, 2));
	cr_expect_neq(pexec__hash(0, "abc", 3), pexec__hash(0, "abd", 3));
	cr_expect_neq(pexec__hash(0, "a", 1), pexec__hash(0, "a\0", 2), "length is not hashed");
	cr_expect_neq(pexec__hash(0, "", 0), pexec__hash(0, "\0", 1));
	cr_expect_neq(chain(ab_c, 2), chain(a_bc, 2), "item boundaries are not hashed");
	cr_expect_neq(chain(ab_c, 2), chain(c_ab, 2), "item order is not hashed");
	/* Past the first 8-byte word, in the tail, and in the first word. */
	cr_expect_neq(pexec__hash(0, long1, 20), pexec__hash(0, long2, 20));
	cr_expect_neq(pexec__hash(0, long1, 20), pexec__hash(0, long3, 20));
	cr_expect_neq(pexec__hash(0, long1, 16), pexec__hash(0, long1, 17));
	/* The seed matters: a chain is not its last item's hash. */
	cr_expect_neq(pexec__hash(1, "abc", 3), pexec__hash(0, "abc", 3));
}
