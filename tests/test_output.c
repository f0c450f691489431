/*
 * test_output.c - the pexec command end to end, continued from test_cli.c
 * (suite `output`): where the
 * output goes and how a run ends early.  -o FILE is written on success only
 * and never left partial, a FIFO is written into; a closed reader stops the
 * run, a killed pexec takes its workers along, and running out of file
 * descriptors is a system error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "helpers.h"

TestSuite(output, .init = scratch_make, .fini = scratch_remove, .timeout = 300);

#define FACT_INPUTS PEXEC_SRC_DIR "/examples/factorial/inputs.json"

/* ---- -o FILE ---- */

Test(output, output_file_written_on_success)
{
	const char *out = scratch_path(0, "out.json");
	struct proc ref, r;
	char *data, *list;
	size_t len;

	run(&ref, NULL, "-p", "factorial", FACT_INPUTS, NULL);
	expect_exit(&ref, 0);
	run(&r, NULL, "-p", "factorial", "-o", out, FACT_INPUTS, NULL);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.out, "", "stdout is not for results with -o");
	data = read_file(out, &len);
	cr_assert_not_null(data, "%s was not written", out);
	expect_same_bytes("-o", data, len, ref.out, ref.out_len);
	free(data);
	/* No temporary file remains. */
	list = scratch_listing();
	cr_expect_str_eq(list, "out.json\n");
	free(list);

	/* A second run replaces it. */
	proc_release(&r);
	run(&r, "[5]", "-p", "factorial", "--output", out, "--serial", NULL);
	expect_exit(&r, 0);
	data = read_file(out, &len);
	cr_expect_str_eq(data, "[\n120\n]\n");
	free(data);
	proc_release(&r);
	proc_release(&ref);
}

Test(output, output_file_not_created_by_a_failed_run)
{
	const char *out = scratch_path(0, "out.json");
	static const struct {
		const char *in;
		int status;
		const char *extra;
	} runs[] = {
		{ "[1, 2", 2, NULL },                    /* malformed input */
		{ "[1, 2] x", 2, "--serial" },
		{ "[3, -1, 4]", 1, "--fail-fast" },      /* stopped */
	};

	for (size_t i = 0; i < COUNT(runs); i++) {
		const char *args[MAX_ARGS + 1] = { "-p", "factorial", "-o", out, runs[i].extra };
		struct proc_spec s = { .args = args, .in = runs[i].in, .in_len = strlen(runs[i].in) };
		struct proc r;
		char *list;

		run_spec(&s, &r);
		expect_exit(&r, runs[i].status);
		cr_expect_neq(access(out, F_OK), 0, "%s: %s exists after a failed run", r.cmd, out);
		list = scratch_listing();
		cr_expect_str_eq(list, "", "%s: left in the directory: %s", r.cmd, list);
		free(list);
		proc_release(&r);
	}
	/* A crashed plugin is not a failed run: the file is complete. */
	{
		struct proc r;
		char *data;
		size_t len;

		run(&r, "[\"a\", \"crash\"]", "-p", FIX("faulty"), "-j", "1", "--chunksize", "1",
		    "-o", out, NULL);
		expect_exit(&r, 1);
		data = read_file(out, &len);
		cr_expect_str_eq(data, "[\n\"a\",\nnull\n]\n");
		free(data);
		proc_release(&r);
	}
}

Test(output, output_file_left_untouched_by_a_failed_run)
{
	const char *out = scratch_path(0, "out.json");
	static const char old[] = "[\"old\"]\n";
	static const char *const ins[] = { "[1, 2,]", "[3, -1, 4]", "{}" };

	write_file(out, old, sizeof(old) - 1);
	for (size_t i = 0; i < COUNT(ins); i++) {
		struct proc r;
		char *data, *list;
		size_t len;

		run(&r, ins[i], "-p", "factorial", "--fail-fast", "-o", out, NULL);
		cr_assert_not(r.hung);
		cr_expect(WIFEXITED(r.status) && WEXITSTATUS(r.status) != 0, "%s", r.cmd);
		data = read_file(out, &len);
		cr_expect_str_eq(data, old, "%s changed %s", r.cmd, out);
		free(data);
		list = scratch_listing();
		cr_expect_str_eq(list, "out.json\n", "%s: left in the directory: %s", r.cmd, list);
		free(list);
		proc_release(&r);
	}
	/* Nor by a plugin that does not load or init. */
	{
		struct proc r;
		char *data;
		size_t len;

		run(&r, "[1]", "-p", FIX("init_fail"), "-o", out, NULL);
		expect_exit(&r, 2);
		proc_release(&r);
		run(&r, "[1]", "-p", FIX("bad_abi"), "-o", out, NULL);
		expect_exit(&r, 2);
		data = read_file(out, &len);
		cr_expect_str_eq(data, old);
		free(data);
		proc_release(&r);
	}
}

/* -o into a FIFO (or a device) writes into it; only a regular file, or a
 * name that does not exist yet, is replaced through a temporary file. */
/* pexec writes -o FILE through a temporary file beside it; when that cannot
 * be made, the message names FILE and where the temporary would go, not a
 * temporary name that never existed. */
Test(output, output_that_cannot_be_created_names_the_file)
{
	const char *in = scratch_path(0, "in.json"), *plain = scratch_path(1, "plain");
	char missing[300], under_file[300], want[700];
	struct proc r;

	write_file(in, "[1, 2]", 6);
	write_file(plain, "x", 1);
	snprintf(missing, sizeof(missing), "%s/no-such-dir/out.json", scratch);
	snprintf(under_file, sizeof(under_file), "%s/out.json", plain);
	for (int i = 0; i < 4; i++) {
		const char *out = i % 2 ? under_file : missing;

		/* From standard input: a temporary file; from a file: the
		 * partial file that --resume continues. */
		if (i < 2)
			run(&r, "[1, 2]", "-p", "identity", "-o", out, NULL);
		else
			run(&r, NULL, "-p", "identity", "-o", out, in, NULL);
		expect_exit(&r, 3);
		snprintf(want, sizeof(want), "pexec: cannot create output '%s': ", out);
		cr_expect(!strncmp(r.err, want, strlen(want)), "%s: %s", r.cmd, r.err);
		cr_expect(strstr(r.err, i < 2 ? "cannot create a temporary file in '"
		                              : "cannot open its partial file '"), "%s: %s", r.cmd,
		          r.err);
		if (i < 2)
			cr_expect_null(strstr(r.err, ".pexec-"),
			               "%s: a temporary name that never existed: %s", r.cmd, r.err);
		cr_expect_eq(line_count(r.err), 1, "%s: %s", r.cmd, r.err);
		cr_expect_str_eq(r.out, "", "%s", r.cmd);
		proc_release(&r);
	}
}

Test(output, output_to_a_fifo_writes_into_it)
{
	const char *fifo = scratch_path(0, "fifo");
	char buf[64] = { 0 };
	struct stat st;
	struct proc r;
	ssize_t n;
	int fd;

	cr_assert_eq(mkfifo(fifo, 0600), 0);
	/* A reader, so that a writer's open() would not block. */
	fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	run(&r, "[5]", "-p", "factorial", "-o", fifo, NULL);
	expect_exit(&r, 0);
	cr_expect_eq(stat(fifo, &st), 0);
	cr_expect(S_ISFIFO(st.st_mode), "%s was replaced by a regular file", fifo);
	n = read(fd, buf, sizeof(buf) - 1);
	cr_expect_eq(n, 8, "read %zd bytes from the FIFO", n);
	cr_expect_str_eq(buf, "[\n120\n]\n");
	close(fd);
	proc_release(&r);
}

/* ---- ending early ---- */

Test(output, closed_reader_ends_the_run)
{
	/* An input that never ends: only the closed output can stop pexec. */
	static const char *const modes[][3] = {
		{ "-j", "2", NULL },
		{ "--unordered", NULL, NULL },
		{ "--serial", NULL, NULL },
	};

	for (size_t m = 0; m < COUNT(modes); m++) {
		const char *args[MAX_ARGS + 1] = { "-p", "factorial" };
		struct proc_spec s = { .args = args, .in = "[", .in_len = 1,
		                       .endless = "100, 7, ", .out_max = 10 };
		char how[128];
		size_t n = 2;
		struct proc r;

		for (size_t k = 0; modes[m][k]; k++)
			args[n++] = modes[m][k];
		run_spec(&s, &r);
		cr_assert_not(r.hung, "%s: did not stop when its reader closed; stderr: %s", r.cmd,
		              r.err);
		cr_expect((WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGPIPE) ||
		          (WIFEXITED(r.status) && WEXITSTATUS(r.status) != 0),
		          "%s: %s", r.cmd, describe(r.status, how, sizeof(how)));
		/* In order, the first result is 100!. */
		if (strcmp(modes[m][0], "--unordered"))
			cr_expect(strncmp(r.out, "[\n93326215", 10) == 0, "%s: %.10s", r.cmd, r.out);
		else
			cr_expect(strncmp(r.out, "[\n", 2) == 0, "%s: %.10s", r.cmd, r.out);
		cr_expect_eq(r.strays, 0, "%s: %d processes left behind", r.cmd, r.strays);
		proc_release(&r);
	}
}

Test(output, killed_pexec_takes_its_workers_along)
{
	/* Workers busy for an hour each, on an input that never ends. */
	const char *args[] = { "-p", "sleep", "-j", "3", "--chunksize", "1", NULL };
	struct proc_spec s = { .args = args, .in = "[", .in_len = 1, .endless = "3600, ",
	                       .kill_with_workers = 1 };
	struct proc r;

	run_spec(&s, &r);
	cr_assert_not(r.hung, "%s: its output never closed", r.cmd);
	cr_expect(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL);
	/* Its orphans came to us, and died without our help. */
	cr_expect_gt(r.strays, 0, "no worker was orphaned: the test proves nothing");
	cr_expect_eq(r.survivors, 0, "%d workers outlived pexec", r.survivors);
	proc_release(&r);
}

/* Out of file descriptors is a system error (exit 3), said as such, not a
 * plugin that cannot load; whether it strikes at the plugin (dlopen) or at
 * the workers' pipes depends on the limit. */
Test(output, out_of_descriptors_is_a_system_error)
{
	static const rlim_t limits[] = { 6, 9 };
	char bin[512], input[512], err_path[256];

#if defined(__SANITIZE_ADDRESS__)
	/* AddressSanitizer's runtime needs descriptors of its own at start-up. */
	cr_skip_test("not under AddressSanitizer");
#endif
	snprintf(bin, sizeof(bin), "%s/pexec", PEXEC_TEST_BUILD);
	snprintf(input, sizeof(input), "%s/examples/factorial/inputs.json", PEXEC_SRC_DIR);
	snprintf(err_path, sizeof(err_path), "%s/tests/fd-limit.err", PEXEC_TEST_BUILD);
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		size_t len;
		char *err;
		int status;
		pid_t pid = fork();

		cr_assert_geq(pid, 0);
		if (pid == 0) {
			struct rlimit rl;
			int out = open("/dev/null", O_WRONLY), errfd;

			errfd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (out < 0 || errfd < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0)
				_exit(120);
			close_range(3, ~0u, 0);
			getrlimit(RLIMIT_NOFILE, &rl);
			rl.rlim_cur = limits[i];
			if (setrlimit(RLIMIT_NOFILE, &rl))
				_exit(121);
			execl(bin, bin, "-p", "factorial", "-j", "4", input, (char *)NULL);
			_exit(122);
		}
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFEXITED(status), "limit %d: ended by a signal", (int)limits[i]);
		cr_expect_eq(WEXITSTATUS(status), 3, "limit %d: exit %d", (int)limits[i],
		             WEXITSTATUS(status));
		err = read_file(err_path, &len);
		cr_expect(err && strstr(err, "Too many open files") && line_count(err) == 1,
		          "limit %d: stderr %s", (int)limits[i], err ? err : "(none)");
		free(err);
	}
	unlink(err_path);
}

/* ---- workers writing the output file themselves ---- */

/* Where the output is a regular file (stdout redirected, or -o FILE, which
 * journals), the workers write their chunks into it at offsets the parent
 * gives.  Whatever the chunks hold, the file must be what a pipe gets: here
 * every 7th item fails, and items 1000-1399 all do, so that with
 * --drop-null whole chunks have no output at all. */
Test(output, workers_writing_the_file_give_what_a_pipe_gets)
{
	static const char *const modes[][3] = {
		{ "--drop-null", NULL }, { NULL }, { "--output-format", "ndjson", NULL },
		{ "--drop-null", "--output-format", "ndjson" },
	};
	const char *in = scratch_path(0, "in.json");
	FILE *f = fopen(in, "w");

	cr_assert_not_null(f);
	fputs("[", f);
	for (int i = 0; i < 3000; i++)
		fprintf(f, "%s%s", i ? "," : "", i % 7 == 6 || (i >= 1000 && i < 1400) ? "\"bad\"" : "0");
	fputs("]", f);
	cr_assert_eq(fclose(f), 0);

	for (size_t m = 0; m < COUNT(modes); m++) {
		const char *args[12] = { "-p", "sleep", "-j", "2", "-q" };
		size_t n = 5, len;
		struct proc_spec spec = { .args = args };
		struct proc piped, to_file, to_o;
		char *got;

		for (size_t k = 0; k < 3 && modes[m][k]; k++)
			args[n++] = modes[m][k];
		args[n++] = in;
		run_spec(&spec, &piped);
		expect_exit(&piped, 1);
		spec.stdout_path = scratch_path(1, "stdout.json");
		run_spec(&spec, &to_file);
		expect_exit(&to_file, 1);
		got = read_file(scratch_path(1, "stdout.json"), &len);
		expect_same_bytes(to_file.cmd, got, len, piped.out, piped.out_len);
		free(got);

		spec.stdout_path = NULL;
		args[n++] = "-o";
		args[n++] = scratch_path(2, "out.json");
		run_spec(&spec, &to_o);
		expect_exit(&to_o, 1);
		got = read_file(scratch_path(2, "out.json"), &len);
		expect_same_bytes(to_o.cmd, got, len, piped.out, piped.out_len);
		free(got);
		proc_release(&piped);
		proc_release(&to_file);
		proc_release(&to_o);
	}
}
