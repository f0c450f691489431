/*
 * test_cpus.c - how many workers pexec starts: the CPU topology reader
 * (cpus.c) over made-up sysfs trees, and -j's forms end to end (N, N%, +N,
 * -N, cores), counted through --summary's workers_started against what
 * libpexec says of this process's CPUs (the test and the pexec it runs share
 * one affinity mask).
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "cpus.h"
#include "helpers.h"
#include "pexec.h"

TestSuite(cpus, .init = scratch_make, .fini = scratch_remove, .timeout = 120);

/* ---- the topology reader ---- */

static void mkdirs(const char *path)
{
	char buf[512];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(buf, 0777);
		*p = '/';
	}
	cr_assert(mkdir(buf, 0777) == 0 || errno == EEXIST, "mkdir %s: %s", buf, strerror(errno));
}

/* Writes ROOT/cpuN/topology/FILE holding `text`. */
static void topology(const char *root, int cpu, const char *file, const char *text)
{
	char dir[512], path[600];

	snprintf(dir, sizeof(dir), "%s/cpu%d/topology", root, cpu);
	mkdirs(dir);
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	write_file(path, text, strlen(text));
}

static cpu_set_t cpus_of(const int *list, size_t n)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	for (size_t i = 0; i < n; i++)
		CPU_SET(list[i], &set);
	return set;
}

Test(cpus, hyperthreads_of_one_core_count_once)
{
	const char *root = scratch_path(0, "sys");
	/* 8 CPUs, 4 cores: CPU i and i + 4 share a core, as Linux numbers them. */
	static const char *const siblings[] = { "0,4", "1,5", "2,6", "3,7" };
	static const int all[] = { 0, 1, 2, 3, 4, 5, 6, 7 }, pair[] = { 1, 5 },
	                 halves[] = { 0, 1, 2, 3 }, mixed[] = { 0, 4, 6 };
	cpu_set_t set;

	for (int cpu = 0; cpu < 8; cpu++)
		topology(root, cpu, "core_cpus_list", siblings[cpu % 4]);
	set = cpus_of(all, COUNT(all));
	cr_expect_eq(pexec__cpu_cores_at(root, &set), 4);
	set = cpus_of(pair, COUNT(pair));
	cr_expect_eq(pexec__cpu_cores_at(root, &set), 1);
	set = cpus_of(halves, COUNT(halves));
	cr_expect_eq(pexec__cpu_cores_at(root, &set), 4);
	set = cpus_of(mixed, COUNT(mixed));
	cr_expect_eq(pexec__cpu_cores_at(root, &set), 2);
}

Test(cpus, ranges_and_older_kernels_read_too)
{
	const char *root = scratch_path(0, "sys");
	static const int all[] = { 0, 1, 2, 3 };
	cpu_set_t set = cpus_of(all, COUNT(all));

	/* Siblings as a range; before Linux 5.7 only thread_siblings_list. */
	topology(root, 0, "thread_siblings_list", "0-1\n");
	topology(root, 1, "thread_siblings_list", "0-1\n");
	topology(root, 2, "thread_siblings_list", "2-3\n");
	topology(root, 3, "core_cpus_list", "2-3\n");
	cr_expect_eq(pexec__cpu_cores_at(root, &set), 2);
}

Test(cpus, unreadable_topology_gives_0)
{
	const char *root = scratch_path(0, "sys");
	static const int two[] = { 0, 1 };
	cpu_set_t set = cpus_of(two, COUNT(two));

	cr_expect_eq(pexec__cpu_cores_at(scratch_path(1, "no-such-dir"), &set), 0);
	topology(root, 0, "core_cpus_list", "0\n");
	cr_expect_eq(pexec__cpu_cores_at(root, &set), 0, "cpu1 has no topology");
	topology(root, 1, "core_cpus_list", "garbage\n");
	cr_expect_eq(pexec__cpu_cores_at(root, &set), 0, "cpu1's list is not a list");
	topology(root, 1, "core_cpus_list", "1\n");
	cr_expect_eq(pexec__cpu_cores_at(root, &set), 2);
}

Test(cpus, this_machine_has_cores)
{
	unsigned cores = pexec_cpu_cores();

	/* Where sysfs is there to read, every CPU sits on some core. */
	if (cores == 0) {
		cr_log_warn("this machine's CPU topology cannot be read");
		return;
	}
	cr_expect_leq(cores, pexec_cpu_count());
	cr_expect_geq(cores, 1);
}

/* ---- -j end to end ---- */

/* The workers a run with `jobs` started (its --summary), or -1 when it
 * failed; `err` (may be NULL) gets its stderr. */
static long workers_for(const char *jobs, const char *quiet, char **err)
{
	const char *summary = scratch_path(2, "summary.json");
	struct proc r;
	long n = -1;

	run(&r, "[1, 2]", "-p", "identity", "-j", jobs, "--summary", summary, quiet, NULL);
	if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) {
		char *text = read_file(summary, &(size_t){ 0 });
		cJSON *s = cJSON_Parse(text);
		n = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(s, "workers_started"));
		cJSON_Delete(s);
		free(text);
		cr_expect_str_eq(r.out, "[\n1,\n2\n]\n", "-j %s", jobs);
	}
	if (err)
		*err = strdup(r.err);
	proc_release(&r);
	return n;
}

static long at_least_1(long n)
{
	return n < 1 ? 1 : n;
}

Test(cpus, jobs_take_counts_shares_and_offsets_of_the_cpus)
{
	const long cpus = (long)pexec_cpu_count();
	const struct {
		const char *jobs;
		long want;
	} cases[] = {
		{ "3", 3 },
		{ "100%", cpus },
		{ "50%", at_least_1(cpus / 2) },
		{ "200%", 2 * cpus },
		{ "1%", 1 },
		{ "+1", cpus + 1 },
		{ "+0", cpus },
		{ "-1", at_least_1(cpus - 1) },
		{ "-4096", 1 },
	};

	for (size_t i = 0; i < COUNT(cases); i++) {
		char *err;
		long got = workers_for(cases[i].jobs, NULL, &err);

		cr_expect_eq(got, cases[i].want, "-j %s: %ld workers, want %ld (%ld CPUs): %s",
		             cases[i].jobs, got, cases[i].want, cpus, err);
		cr_expect_str_eq(err, "", "-j %s", cases[i].jobs);
		free(err);
	}
}

Test(cpus, jobs_cores_is_one_worker_per_physical_core)
{
	unsigned cores = pexec_cpu_cores();
	char *err;
	long got = workers_for("cores", NULL, &err);

	if (cores == 0) {
		cr_expect_eq(got, (long)pexec_cpu_count(), "%s", err);
		cr_expect_not_null(strstr(err, "cannot read the CPU topology"), "%s", err);
	} else {
		cr_expect_eq(got, (long)cores, "%s", err);
		cr_expect_str_eq(err, "");
	}
	free(err);
}

/* Where this test may hide sysfs's CPU directory (root, in a mount
 * namespace of its own), -j cores says so and uses the CPU count. */
Test(cpus, jobs_cores_without_a_topology_says_so)
{
	const char *summary = scratch_path(2, "summary.json");
	char cmd[2048], *out;
	int status;
	FILE *p;

	snprintf(cmd, sizeof(cmd),
	         "unshare -m sh -c 'mount -t tmpfs none /sys/devices/system/cpu || exit 99; "
	         "echo [1] | %s -p identity -j cores --summary %s >/dev/null' 2>&1",
	         PEXEC, summary);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	out = calloc(1, 4096);
	cr_assert_not_null(out);
	if (fread(out, 1, 4095, p) == 0)
		out[0] = '\0';
	status = pclose(p);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		cr_log_warn("cannot hide /sys/devices/system/cpu here (unshare -m): skipped: %s", out);
		free(out);
		return;
	}
	cr_expect_not_null(strstr(out, "pexec: -j cores: cannot read the CPU topology"), "%s", out);
	cr_expect_eq(line_count(out), 1, "%s", out);
	free(out);
	out = read_file(summary, &(size_t){ 0 });
	cr_assert_not_null(out);
	{
		char want[64];
		snprintf(want, sizeof(want), "\"workers_started\":%u,", pexec_cpu_count());
		cr_expect_not_null(strstr(out, want), "want %s: %s", want, out);
	}
	free(out);
}

Test(cpus, jobs_that_make_no_sense_exit_2)
{
	static const char *const bad[] = { "0", "x", "0%", "%", "50%%", "+", "-", "+x", "1.5",
		                           "cores2", "", "4097", "+99999", "-1%" };

	for (size_t i = 0; i < COUNT(bad); i++) {
		char *err;
		long got = workers_for(bad[i], NULL, &err);
		char want[64];

		cr_expect_eq(got, -1, "-j '%s' ran", bad[i]);
		snprintf(want, sizeof(want), "pexec: invalid --jobs '%s': expected", bad[i]);
		cr_expect_not_null(strstr(err, want), "-j '%s': %s", bad[i], err);
		cr_expect_eq(line_count(err), 1, "%s", err);
		free(err);
	}
	/* A form that is valid, but makes too many workers. */
	{
		char *err, arg[32];
		snprintf(arg, sizeof(arg), "+%u", 4097 - pexec_cpu_count());
		cr_expect_eq(workers_for(arg, NULL, &err), -1);
		cr_expect_not_null(strstr(err, "more than 4096"), "%s", err);
		free(err);
	}
}
