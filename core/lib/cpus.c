/*
 * cpus.c - how many CPUs this process may actually use, and on how many
 * physical cores they sit.
 *
 * The machine's total is the wrong default inside a container or under
 * taskset: the affinity mask bounds it, and a cgroup CPU quota (cgroup v2
 * cpu.max, v1 cpu.cfs_quota_us) bounds it further, at every level up the
 * hierarchy.
 *
 * Cores come from sysfs: each CPU's topology lists the hardware threads of
 * its core, and the lowest of them names the core, so two hyper-threads of
 * one core count once.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpus.h"
#include "pexec.h"

static unsigned affinity_count(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

/* The lowest CPU of cpu's core (the first number of its sibling list), or
 * -1 when the topology cannot be read. */
static long core_of(const char *root, int cpu)
{
	static const char *const files[] = { "core_cpus_list", "thread_siblings_list" };
	char path[4200];
	long first = -1;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && first < 0; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "%s/cpu%d/topology/%s", root, cpu, files[i]);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fscanf(f, "%ld", &first) != 1 || first < 0 || first >= CPU_SETSIZE)
			first = -1;
		fclose(f);
	}
	return first;
}

unsigned pexec__cpu_cores_at(const char *root, const cpu_set_t *set)
{
	cpu_set_t cores;
	int n = CPU_COUNT(set);

	CPU_ZERO(&cores);
	for (int cpu = 0; cpu < CPU_SETSIZE && n > 0; cpu++) {
		long core;

		if (!CPU_ISSET(cpu, set))
			continue;
		n--;
		core = core_of(root, cpu);
		if (core < 0)
			return 0;
		CPU_SET((int)core, &cores);
	}
	return (unsigned)CPU_COUNT(&cores);
}

/* CPUs allowed by a quota/period pair, rounded up; 0 when unlimited. */
static unsigned quota_cpus(long long quota, long long period)
{
	if (quota <= 0 || period <= 0)
		return 0;
	return (unsigned)((quota + period - 1) / period);
}

static unsigned cgroup2_limit(const char *cg_path)
{
	char path[4096], buf[128];
	unsigned best = 0;

	snprintf(path, sizeof(path), "%s", cg_path);
	for (;;) {
		char file[4200];
		FILE *f;

		snprintf(file, sizeof(file), "/sys/fs/cgroup%s/cpu.max", strcmp(path, "/") ? path : "");
		f = fopen(file, "re");
		if (f) {
			long long quota, period;
			if (fgets(buf, sizeof(buf), f) && strncmp(buf, "max", 3) != 0 &&
			    sscanf(buf, "%lld %lld", &quota, &period) == 2) {
				unsigned n = quota_cpus(quota, period);
				if (n && (!best || n < best))
					best = n;
			}
			fclose(f);
		}
		if (!strcmp(path, "/") || !*path)
			break;
		char *slash = strrchr(path, '/');
		if (slash == path)
			strcpy(path, "/");
		else if (slash)
			*slash = '\0';
		else
			break;
	}
	return best;
}

static long long read_ll(const char *file)
{
	FILE *f = fopen(file, "re");
	long long v = -1;

	if (f) {
		if (fscanf(f, "%lld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static unsigned min_limit(unsigned a, unsigned b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

/* cgroup v1: the cpu controller may be mounted alone or with cpuacct. */
static unsigned cgroup1_limit(const char *cg_path)
{
	static const char *const mounts[] = { "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct" };
	char q[4200], p[4200];

	for (size_t i = 0; i < sizeof(mounts) / sizeof(mounts[0]); i++) {
		snprintf(q, sizeof(q), "%s%s/cpu.cfs_quota_us", mounts[i], cg_path);
		snprintf(p, sizeof(p), "%s%s/cpu.cfs_period_us", mounts[i], cg_path);
		if (access(q, R_OK) == 0)
			return quota_cpus(read_ll(q), read_ll(p));
	}
	return 0;
}

/* The tightest quota found in /proc/self/cgroup's hierarchies; 0: none. */
static unsigned cgroup_limit(void)
{
	FILE *f = fopen("/proc/self/cgroup", "re");
	char line[4096];
	unsigned n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *controllers = strchr(line, ':'), *path;

		line[strcspn(line, "\n")] = '\0';
		if (!controllers || !(path = strchr(controllers + 1, ':')))
			continue;
		*path++ = '\0';
		controllers++;
		if (!*controllers) {
			n = min_limit(n, cgroup2_limit(path));
			continue;
		}
		for (char *tok = strtok(controllers, ","); tok; tok = strtok(NULL, ","))
			if (!strcmp(tok, "cpu"))
				n = min_limit(n, cgroup1_limit(strcmp(path, "/") ? path : ""));
	}
	fclose(f);
	return n;
}

unsigned pexec_cpu_count(void)
{
	unsigned n = affinity_count(), quota = cgroup_limit();

	if (quota && quota < n)
		n = quota;
	return n ? n : 1;
}

unsigned pexec_cpu_cores(void)
{
	cpu_set_t set;
	unsigned n, quota;

	if (sched_getaffinity(0, sizeof(set), &set) != 0 || CPU_COUNT(&set) == 0)
		return 0;
	n = pexec__cpu_cores_at("/sys/devices/system/cpu", &set);
	quota = cgroup_limit();
	if (n && quota && quota < n)
		n = quota;
	return n;
}
