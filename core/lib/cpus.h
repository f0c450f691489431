/*
 * cpus.h - the CPU topology reader behind pexec_cpu_cores() (cpus.c), with
 * the sysfs directory as a parameter so that tests can give it a made-up
 * machine.
 */
#ifndef PEXEC_CPUS_H
#define PEXEC_CPUS_H

#include <sched.h>

/* The physical cores the CPUs of `set` belong to, read from
 * ROOT/cpuN/topology/core_cpus_list (thread_siblings_list before Linux
 * 5.7); 0 when one of them cannot be read. */
unsigned pexec__cpu_cores_at(const char *root, const cpu_set_t *set);

#endif
