/*
 * test_tools.c - `pexec info` and `pexec check`, as a plugin author uses
 * them: the manifest, samples run through the hooks, and a plugin that
 * crashes (at load or in a hook) taking only the throwaway process down.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "helpers.h"

#define FIX(name) PEXEC_TEST_BUILD "/tests/plugins/" name ".so"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* How a crash shows: SIGSEGV; or, in the sanitizer build, where the
 * sanitizer catches the fault first, SIGABRT (CI's abort_on_error) or an
 * exit that leaves the step unfinished. */
static int says_crashed(const char *out)
{
	if (strstr(out, "crashed (SIGSEGV)"))
		return 1;
	return SANITIZED && (strstr(out, "crashed (SIGABRT)") ||
	                     strstr(out, "the plugin ended the process"));
}

TestSuite(tools, .init = scratch_make, .fini = scratch_remove);

Test(tools, info_prints_the_manifest)
{
	struct proc r;
	cJSON *m, *hooks;

	run(&r, NULL, "info", "wordcount", NULL);
	expect_exit(&r, 0);
	m = cJSON_Parse(r.out);
	cr_assert_not_null(m, "not JSON: %s", r.out);
	cr_expect_str_eq(cJSON_GetObjectItem(m, "name")->valuestring, "wordcount");
	cr_expect_eq(cJSON_GetObjectItem(m, "abi")->valueint, 1);
	hooks = cJSON_GetObjectItem(m, "hooks");
	cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(hooks, "map")));
	cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(hooks, "reduce")));
	cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(hooks, "serialize")));
	cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "input"), "schema")
	                         ->child->valuestring,
	                 "string");
	cJSON_Delete(m);
	proc_release(&r);
}

Test(tools, info_of_a_plugin_that_does_not_load)
{
	struct proc r;

	run(&r, NULL, "info", FIX("bad_abi"), NULL);
	expect_exit(&r, 2);
	cr_expect_not_null(strstr(r.out, "built for plugin ABI 99"), "%s", r.out);
	proc_release(&r);
	run(&r, NULL, "info", FIX("crash_at_load"), NULL);
	expect_exit(&r, 2);
	cr_expect(says_crashed(r.out), "%s", r.out);
	proc_release(&r);
}

Test(tools, check_runs_samples_and_names_what_failed)
{
	const char *samples = scratch_path(0, "samples.json");
	struct proc r;

	write_file(samples, "[5, -1, 20]", 11);
	run(&r, NULL, "check", "factorial", samples, NULL);
	expect_exit(&r, 1);
	cr_expect_not_null(strstr(r.out, "ok    sample 0: 5 -> 120"), "%s", r.out);
	cr_expect_not_null(strstr(r.out, "FAIL  sample 1: deserialize failed: factorial: n must"),
	                   "%s", r.out);
	cr_expect_not_null(strstr(r.out, "ok    sample 2: 20 -> 2432902008176640000"), "%s",
	                   r.out);
	cr_expect_not_null(strstr(r.out, "4 of 5 checks passed"), "%s", r.out);
	proc_release(&r);
	write_file(samples, "[1, {\"a\": [2]}]", 15);
	run(&r, NULL, "check", "sleep", samples, NULL);
	expect_exit(&r, 1); /* {"a":[2]} is no number of seconds */
	proc_release(&r);
	run(&r, NULL, "check", "identity", samples, NULL);
	expect_exit(&r, 0);
	proc_release(&r);
}

Test(tools, check_survives_a_plugin_that_crashes)
{
	const char *samples = scratch_path(0, "samples.json");
	static const char crash[] = "[1, {\"fault\":\"segv\",\"stage\":\"map\"}, 3]";
	struct proc r;

	write_file(samples, crash, strlen(crash));
	run(&r, NULL, "check", FIX("faults"), samples, NULL);
	expect_exit(&r, 1);
	cr_expect_not_null(strstr(r.out, "ok    sample 0"), "%s", r.out);
	cr_expect(says_crashed(r.out), "%s", r.out);
	cr_expect_not_null(strstr(r.out, "stage\":\"map\"}"), "the crash names its sample: %s",
	                   r.out);
	proc_release(&r);
	run(&r, NULL, "check", FIX("crash_at_load"), NULL);
	expect_exit(&r, 1);
	cr_expect_not_null(strstr(r.out, "load"), "%s", r.out);
	cr_expect(says_crashed(r.out), "%s", r.out);
	proc_release(&r);
}

Test(tools, check_reads_results_back_where_it_can)
{
	const char *samples = scratch_path(0, "samples.json");
	struct proc r;

	write_file(samples, "[\"/dev/null\"]", 13);
	run(&r, NULL, "check", "wordcount", samples, NULL);
	expect_exit(&r, 0);
	cr_expect_not_null(strstr(r.out, "reads back and writes the same"), "%s", r.out);
	proc_release(&r);
}

/* --must-fail: each of its samples passes when a hook refuses it, fails when
 * it succeeds; a crash never passes. */
Test(tools, check_must_fail_samples)
{
	const char *good = scratch_path(0, "good.json"), *bad = scratch_path(1, "bad.json");
	static const char crash[] = "[{\"fault\":\"error\",\"stage\":\"map\"}, "
	                            "{\"fault\":\"segv\",\"stage\":\"map\"}]";
	struct proc r;

	write_file(good, "[5]", 3);
	write_file(bad, "[-1, \"x\"]", 9);
	run(&r, NULL, "check", "factorial", good, "--must-fail", bad, NULL);
	expect_exit(&r, 0);
	cr_expect_not_null(strstr(r.out, "ok    sample 0: 5 -> 120"), "%s", r.out);
	cr_expect_not_null(strstr(r.out, "ok    must-fail sample 0: -1 fails in deserialize: "
	                                 "factorial: n must"), "%s", r.out);
	cr_expect_not_null(strstr(r.out, "ok    must-fail sample 1: \"x\" fails in deserialize"),
	                   "%s", r.out);
	cr_expect_not_null(strstr(r.out, "5 of 5 checks passed"), "%s", r.out);
	proc_release(&r);

	/* Only must-fail samples, one of which succeeds. */
	write_file(bad, "[-1, 3]", 7);
	run(&r, NULL, "check", "factorial", "--must-fail", bad, NULL);
	expect_exit(&r, 1);
	cr_expect_not_null(strstr(r.out, "FAIL  must-fail sample 1: 3 -> 6, but it must fail"),
	                   "%s", r.out);
	cr_expect_not_null(strstr(r.out, "3 of 4 checks passed"), "%s", r.out);
	proc_release(&r);

	write_file(bad, crash, strlen(crash));
	run(&r, NULL, "check", FIX("faults"), "--must-fail", bad, NULL);
	expect_exit(&r, 1);
	cr_expect_not_null(strstr(r.out, "ok    must-fail sample 0: "), "%s", r.out);
	cr_expect(says_crashed(r.out), "%s", r.out);
	cr_expect_not_null(strstr(r.out, "FAIL  must-fail sample 1: "), "%s", r.out);
	proc_release(&r);

	/* NDJSON samples, and an empty file. */
	write_file(bad, "-1\n-2\n", 6);
	run(&r, NULL, "check", "factorial", "--input-format", "ndjson", "--must-fail", bad, NULL);
	expect_exit(&r, 0);
	cr_expect_not_null(strstr(r.out, "ok    must-fail sample 1: -2 fails"), "%s", r.out);
	proc_release(&r);
	write_file(bad, "[]", 2);
	run(&r, NULL, "check", "factorial", "--must-fail", bad, NULL);
	expect_exit(&r, 1);
	cr_expect_not_null(strstr(r.out, "FAIL  read must-fail samples"), "%s", r.out);
	cr_expect_not_null(strstr(r.out, "no items"), "%s", r.out);
	proc_release(&r);
}

Test(tools, check_usage_says_what_is_wrong)
{
	static const struct {
		const char *args[5];
		int status;
		const char *out, *err;
	} cases[] = {
		{ { "check", "--help" }, 0, "--must-fail FILE", "" },
		{ { "check", "factorial", "--must-fail" }, 2, "",
		  "pexec check: option '--must-fail' needs a value" },
		{ { "check", "factorial", "--config" }, 2, "", "option '--config' needs a value" },
		{ { "check", "factorial", "--input-format", "xml" }, 2, "",
		  "invalid --input-format 'xml'" },
		{ { "check", "factorial", "--bogus" }, 2, "", "unknown option '--bogus'" },
		{ { "check" }, 2, "", "usage: pexec check PLUGIN" },
		{ { "info", "--help" }, 0, "usage: pexec info PLUGIN", "" },
	};
	struct proc r;

	for (size_t i = 0; i < COUNT(cases); i++) {
		const char *const *a = cases[i].args;

		run(&r, NULL, a[0], a[1], a[2], a[3], a[4], NULL);
		expect_exit(&r, cases[i].status);
		cr_expect_not_null(strstr(r.out, cases[i].out), "%s: stdout: %s", r.cmd, r.out);
		cr_expect_not_null(strstr(r.err, cases[i].err), "%s: stderr: %s", r.cmd, r.err);
		proc_release(&r);
	}
	/* pexec --help names check's options too. */
	run(&r, NULL, "--help", NULL);
	for (size_t i = 0; i < 3; i++) {
		static const char *const opts[] = { "--must-fail FILE", "--config JSON",
			                            "--input-format FMT" };
		cr_expect_geq(count_of(r.out, opts[i]), i == 0 ? 1 : 2, "%s: %s", opts[i], r.out);
	}
	proc_release(&r);
}
