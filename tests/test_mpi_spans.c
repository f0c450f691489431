/*
 * test_mpi_spans.c - what pexec-mpi's runs by spans add to test_mpi.c's
 * comparisons: the ranks write their spans' results into -o FILE
 * themselves (rank 0's PEXEC_MPI_STATS line says what it took in), and
 * malformed input, which different ranks find in different spans, stops
 * the run as it stops pexec.
 *
 * As in test_mpi.c, every test runs mpirun -np 3 pexec-mpi and the built
 * pexec side by side, and is skipped where Open MPI is missing.  Nothing
 * measures time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"
#include "mpi_run.h"

TestSuite(mpi_spans, .init = scratch_make, .fini = scratch_remove, .timeout = 120);

/* ---- -o FILE, written by the ranks ---- */

/* The result bytes rank 0 took in, from the line PEXEC_MPI_STATS=1 makes
 * it print ("... bytes out N in M"), or -1 without one. */
static long long stats_bytes_in(const char *err)
{
	const char *line = strstr(err, "pexec-mpi: stats:");
	const char *in = line ? strstr(line, " in ") : NULL;

	return in ? strtoll(in + 4, NULL, 10) : -1;
}

/* With -o FILE on a file every rank opens by its path, each rank writes
 * its spans' results there itself: rank 0 takes in span headers, not the
 * results, which it does take in when the output is its stdout. */
Test(mpi_spans, ranks_write_their_results_into_the_output_file_themselves)
{
	char *json = random_integers(20000, 0);
	const char *in = scratch_path(0, "in.json"), *ref = scratch_path(1, "ref.json");
	const char *out = scratch_path(2, "out.json");
	struct proc local, to_file, to_stdout;
	long long size, in_file, in_stdout;

	need_mpi();
	write_file(in, json, strlen(json));
	run_local(&local, ARGS("-p", "factorial", "-j", "1", "-o", ref, in), NULL);
	expect_exit(&local, 0);
	setenv("PEXEC_MPI_STATS", "1", 1);
	run_mpi(&to_file, ARGS("-p", "factorial", "-j", "1", "-o", out, in), NULL);
	expect_mpi_exit(&to_file, 0);
	expect_same_file(to_file.cmd, out, ref);
	run_mpi(&to_stdout, ARGS("-p", "factorial", "-j", "1", in), NULL);
	expect_mpi_exit(&to_stdout, 0);
	size = file_size(ref);
	in_file = stats_bytes_in(to_file.err);
	in_stdout = stats_bytes_in(to_stdout.err);
	cr_expect(in_file >= 0 && in_stdout >= 0, "no stats line: %s\n%s", to_file.err,
	          to_stdout.err);
	cr_expect(in_file * 20 < size, "%s: rank 0 took in %lld bytes of a %lld-byte output",
	          to_file.cmd, in_file, size);
	cr_expect(in_stdout >= size - 4, "%s: rank 0 took in %lld bytes of a %lld-byte output",
	          to_stdout.cmd, in_stdout, size);
	proc_release(&local);
	proc_release(&to_file);
	proc_release(&to_stdout);
	free(json);
}

/* ---- malformed input ---- */

/* `n` integers as a JSON array or NDJSON, but for two items that do not
 * parse, at `at[0]` and `at[1]`: the run's error is the first. */
static char *malformed_integers(size_t n, int ndjson, const size_t at[2])
{
	char *text = NULL, num[24];
	size_t len = 0;

	append(&text, &len, "[", !ndjson);
	for (size_t i = 0; i < n; i++) {
		const char *item = i == at[0] ? "[1," : i == at[1] ? "{\"a\":}" : NULL;
		int k = snprintf(num, sizeof(num), "%zu", i % 97 + 1);

		if (i && !ndjson)
			append(&text, &len, ", ", 2);
		append(&text, &len, item ? item : num, item ? strlen(item) : (size_t)k);
		if (ndjson)
			append(&text, &len, "\n", 1);
	}
	append(&text, &len, "]\n", ndjson ? 0 : 2);
	return text;
}

/* The message of `err` that starts with `prefix` ("pexec: "), without it
 * (malloc'd), or NULL. */
static char *message_after(const char *err, const char *prefix)
{
	const char *at = strstr(err, prefix), *nl;

	if (!at)
		return NULL;
	at += strlen(prefix);
	nl = strchr(at, '\n');
	return strndup(at, nl ? (size_t)(nl - at) : strlen(at));
}

/* The input is cut into spans that different ranks check: the error that
 * stops the run is still the first in input order, with pexec's message
 * and exit status 2, and -o FILE is never made (nor anything beside it). */
Test(mpi_spans, malformed_input_stops_with_pexec_s_message_and_no_output)
{
	static const size_t at[2] = { 1700, 2600 };

	need_mpi();
	for (int ndjson = 0; ndjson < 2; ndjson++) {
		char *text = malformed_integers(3000, ndjson, at);
		const char *in = scratch_path(0, ndjson ? "in.ndjson" : "in.json");
		const char *fmt = ndjson ? "ndjson" : "json", *out = scratch_path(1, "out.json");

		write_file(in, text, strlen(text));
		for (int unordered = 0; unordered < 2; unordered++) {
			for (int to_file = 0; to_file < 2; to_file++) {
				struct args a = { 0 };
				struct proc local, mpi;
				char *want, *got, *err, *listing;

				args_add(&a, ARGS("-p", "factorial", "-j", "2", "--input-format", fmt));
				if (unordered)
					args_add(&a, ARGS("--unordered"));
				if (to_file)
					args_add(&a, ARGS("-o", out));
				args_add(&a, ARGS(in));
				run_local(&local, a.v, NULL);
				expect_exit(&local, 2);
				run_mpi(&mpi, a.v, NULL);
				expect_mpi_exit(&mpi, 2);
				want = message_after(local.err, "pexec: ");
				err = without_banners(mpi.err);
				got = message_after(err, "pexec-mpi: ");
				cr_assert(want && strstr(want, "malformed input"), "%s: %s", local.cmd,
				          local.err);
				cr_expect(got && !strcmp(got, want), "%s: says \"%s\", want \"%s\"", mpi.cmd,
				          got ? got : "(nothing)", want);
				cr_expect_eq(count_of(err, want), 1, "%s: the message comes %zu times: %s",
				             mpi.cmd, count_of(err, want), mpi.err);
				listing = scratch_listing();
				cr_expect_str_eq(listing, ndjson ? "in.ndjson\n" : "in.json\n",
				                 "%s: the directory holds:\n%s", mpi.cmd, listing);
				free(listing);
				free(want);
				free(got);
				free(err);
				proc_release(&local);
				proc_release(&mpi);
			}
		}
		unlink(in);
		free(text);
	}
}
