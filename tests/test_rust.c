/*
 * test_rust.c - examples/rust (collatz), a plugin in Rust, as a user runs
 * it: built by cargo into the build directory (make rust), loaded by path
 * and by bare name (cargo names it libcollatz.so), whole outputs against
 * examples/rust/expected.json, a panic caught at the boundary and reported
 * as that item's failure (exit 1, null slot, every other item intact),
 * `pexec check`, and a descriptor that mirrors pexec_plugin.h.
 *
 * Where cargo is not installed, make test does not build the crate, and
 * every test here is skipped, saying why, so that make test passes without
 * Rust.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"
#include "pexec.h"

#define RUST_DIR PEXEC_TEST_BUILD "/cargo/release"
#define RUST_SO RUST_DIR "/libcollatz.so"
#define EXAMPLE_DIR PEXEC_SRC_DIR "/examples/rust"

/* The failures of examples/rust/inputs.json, but for where in lib.rs the
 * panic is (a line number that any edit moves). */
#define FAILURE_4 "pexec: item 4 failed in deserialize: collatz: expected a positive integer, " \
                  "got \"seven\""
#define FAILURE_5 "pexec: item 5 failed in map: collatz: panicked: attempt to multiply with " \
                  "overflow (at src/lib.rs:"
#define FAILURE_7 "pexec: item 7 failed in deserialize: collatz: 18446744073709551616 does not " \
                  "fit in 64 bits"

static void need_rust(void)
{
	if (access(RUST_SO, R_OK) != 0)
		cr_skip_test("%s is not built (make test builds examples/rust only where cargo "
		             "is installed): the Rust example not tested", RUST_SO);
}

TestSuite(rust, .init = scratch_make, .fini = scratch_remove, .timeout = 120);

/* The failure lines of one run of inputs.json, and nothing else on stderr:
 * the panic was not printed by Rust's own panic hook. */
static void expect_failures(const struct proc *r)
{
	char *line;

	cr_expect_eq(line_count(r->err), 3, "%s: stderr: %s", r->cmd, r->err);
	line = failure_line(r->err, 4);
	cr_expect(line && !strcmp(line, FAILURE_4), "%s: %s", r->cmd, r->err);
	free(line);
	line = failure_line(r->err, 5);
	cr_expect(line && !strncmp(line, FAILURE_5, strlen(FAILURE_5)) &&
	                  line[strlen(line) - 1] == ')',
	          "%s: %s", r->cmd, r->err);
	free(line);
	line = failure_line(r->err, 7);
	cr_expect(line && !strcmp(line, FAILURE_7), "%s: %s", r->cmd, r->err);
	free(line);
}

Test(rust, example_runs_end_to_end)
{
	static const char *const modes[] = { "-j2", "-j1", "--serial" };
	size_t want_len;
	char *want;
	struct proc r;

	need_rust();
	want = read_file(EXAMPLE_DIR "/expected.json", &want_len);
	cr_assert_not_null(want);
	for (size_t i = 0; i < COUNT(modes); i++) {
		run(&r, NULL, "--plugin", RUST_SO, modes[i], EXAMPLE_DIR "/inputs.json", NULL);
		expect_exit(&r, 1);
		expect_same_bytes(r.cmd, r.out, r.out_len, want, want_len);
		expect_failures(&r);
		proc_release(&r);
	}
	free(want);
}

/* A panic fails its own item only, wherever it falls in a chunk, and the
 * worker it happened in goes on (a caught panic is no crash). */
Test(rust, panic_fails_only_its_item_and_the_worker_goes_on)
{
	static const char in[] = "[3, 9223372036854775807, 6, 9223372036854775807, 7]";
	struct proc r;

	need_rust();
	run(&r, in, "--plugin", RUST_SO, "-j1", "--chunksize", "5", NULL);
	expect_exit(&r, 1);
	cr_expect_str_eq(r.out,
	                 "[\n{\"n\":3,\"steps\":7,\"peak\":16},\nnull,\n"
	                 "{\"n\":6,\"steps\":8,\"peak\":16},\nnull,\n"
	                 "{\"n\":7,\"steps\":16,\"peak\":52}\n]\n",
	                 "stderr: %s", r.err);
	cr_expect_eq(count_of(r.err, "failed in map: collatz: panicked: attempt to multiply "
	                             "with overflow"), 2, "%s", r.err);
	cr_expect(!strstr(r.err, "killed") && !strstr(r.err, "worker"),
	          "a caught panic took a worker down: %s", r.err);
	proc_release(&r);
}

/* cargo builds libcollatz.so; --plugin collatz finds it. */
Test(rust, bare_name_finds_cargos_libNAME_so)
{
	struct proc r;
	char *out;

	need_rust();
	cr_assert_eq(setenv("PEXEC_PLUGIN_PATH", RUST_DIR, 1), 0);
	run(&r, "[27]", "--plugin", "collatz", NULL);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.out, "[\n{\"n\":27,\"steps\":111,\"peak\":9232}\n]\n", "stderr: %s",
	                 r.err);
	proc_release(&r);
	run(&r, NULL, "info", "collatz", NULL);
	expect_exit(&r, 0);
	cr_expect(strstr(r.out, "\"path\":\t\"" RUST_SO "\""), "%s", r.out);
	proc_release(&r);

	out = shell_ok("nm", "nm -D --defined-only '%s' | awk '{ print $2, $3 }'", RUST_SO);
	cr_expect_str_eq(out, "D pexec_plugin\n", "a cdylib exports its #[no_mangle] only");
	free(out);
}

Test(rust, example_passes_pexec_check)
{
	struct proc r;

	need_rust();
	run(&r, NULL, "check", RUST_SO, EXAMPLE_DIR "/samples.json", NULL);
	expect_exit(&r, 0);
	cr_expect(strstr(r.out, "ok    loads: collatz 1.0.0, plugin ABI 1"), "%s", r.out);
	cr_expect(strstr(r.out, "ok    sample 0: 27 -> {\"n\":27,\"steps\":111,\"peak\":9232}\n"),
	          "%s", r.out);
	cr_expect(strstr(r.out, "ok    fini\n") && !strstr(r.out, "FAIL"), "%s", r.out);
	proc_release(&r);
	run(&r, NULL, "check", RUST_SO, EXAMPLE_DIR "/inputs.json", NULL);
	expect_exit(&r, 1);
	cr_expect(strstr(r.out, "FAIL  sample 5: map failed: collatz: panicked: attempt to "
	                        "multiply with overflow (at src/lib.rs:"),
	          "%s", r.out);
	proc_release(&r);
}

Test(rust, init_errors_stop_the_run)
{
	struct proc r;

	need_rust();
	run(&r, "[1]", "--plugin", RUST_SO, "--config", "{}", NULL);
	expect_exit(&r, 2);
	cr_expect_str_eq(r.out, "");
	cr_expect_str_eq(r.err, "pexec: plugin 'collatz' init failed: collatz: takes no --config\n");
	proc_release(&r);
}

/* The hand-written mirror (examples/rust/src/pexec.rs) lays the descriptor
 * out as the header does, through reduce_initial: its struct_size says so,
 * and every member lands where pexec reads it.  Members the header appends
 * later leave this true (the mirror is then an older, shorter descriptor). */
Test(rust, descriptor_mirrors_the_header)
{
	const size_t mirrored = offsetof(pexec_descriptor, reduce_initial) + sizeof(const char *);
	pexec_loaded *p = NULL;
	pexec_error err = { { 0 } };
	const pexec_descriptor *d;

	need_rust();
	cr_assert_eq(pexec_plugin_load(RUST_SO, NULL, &p, &err), PEXEC_OK, "%s", err.msg);
	d = pexec_plugin_descriptor(p);
	cr_expect_eq(d->abi_version, PEXEC_ABI_VERSION);
	cr_expect_eq(d->struct_size, mirrored, "struct_size %u, the header to reduce_initial %zu",
	             d->struct_size, mirrored);
	cr_expect_str_eq(d->name, "collatz");
	cr_expect_str_eq(d->version, "1.0.0");
	cr_expect(d->description && strstr(d->description, "Collatz"));
	cr_expect(d->init && d->fini && d->deserialize && d->map && d->serialize && d->free_value);
	cr_expect_null(d->config_schema);
	cr_expect(d->input_description && strstr(d->input_description, "positive integer"));
	cr_expect(d->input_schema && strstr(d->input_schema, "\"integer\""));
	cr_expect(d->output_description && strstr(d->output_description, "steps"));
	cr_expect(d->output_schema && strstr(d->output_schema, "\"peak\""));
	cr_expect_null(d->reduce);
	cr_expect_null(d->reduce_initial);
	pexec_plugin_free(p);
}

/* make rust keeps cargo's output in the build directory. */
Test(rust, cargo_builds_outside_the_source_tree)
{
	need_rust();
	cr_expect_neq(access(EXAMPLE_DIR "/target", F_OK), 0,
	              "cargo wrote %s/target: CARGO_TARGET_DIR was not set", EXAMPLE_DIR);
}
