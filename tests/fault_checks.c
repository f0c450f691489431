/*
 * fault_checks.c - fault-test inputs and checks (fault_checks.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include "fault_checks.h"

void build_input(size_t n, const unsigned char *odd, const char *odd_item, const char *slot,
                 char **in, char **want)
{
	size_t in_len = 0, want_len = 0;
	char num[32];

	*in = *want = NULL;
	append(in, &in_len, "[", 1);
	append(want, &want_len, "[\n", 2);
	for (size_t i = 0; i < n; i++) {
		const char *sep = i + 1 < n ? ",\n" : "\n";
		int k;

		if (i)
			append(in, &in_len, ", ", 2);
		if (odd[i]) {
			append(in, &in_len, odd_item, strlen(odd_item));
			append(want, &want_len, slot, strlen(slot));
		} else {
			k = snprintf(num, sizeof(num), "%zu", i);
			append(in, &in_len, num, (size_t)k);
			k = snprintf(num, sizeof(num), "%zu", 2 * i);
			append(want, &want_len, num, (size_t)k);
		}
		append(want, &want_len, sep, strlen(sep));
	}
	append(in, &in_len, "]", 1);
	append(want, &want_len, "]\n", 2);
}

void input_with(size_t n, size_t at, const char *odd_item, const char *slot, char **in,
                char **want)
{
	unsigned char *odd = calloc(n, 1);

	cr_assert_not_null(odd);
	odd[at] = 1;
	build_input(n, odd, odd_item, slot, in, want);
	free(odd);
}

int contains_any(const char *text, const char *const *alts)
{
	for (size_t i = 0; alts[i]; i++)
		if (strstr(text, alts[i]))
			return 1;
	return 0;
}

int equals_any(const char *text, const char *const *alts)
{
	for (size_t i = 0; alts[i]; i++)
		if (!strcmp(text, alts[i]))
			return 1;
	return 0;
}


void expect_failure_line(const struct proc *r, const struct failure *f)
{
	char *line = failure_line(r->err, f->index);
	const char *stage;
	int stage_ok = 0;

	cr_expect_not_null(line, "%s: stderr does not report item %zu: %s", r->cmd, f->index,
	                   r->err);
	if (!line)
		return;
	stage = line + strlen("pexec: item  failed in ") + (size_t)snprintf(NULL, 0, "%zu", f->index);
	for (size_t i = 0; f->stages[i]; i++) {
		size_t n = strlen(f->stages[i]);
		if (!strncmp(stage, f->stages[i], n) && !strncmp(stage + n, ": ", 2))
			stage_ok = 1;
	}
	cr_expect(stage_ok, "%s: wrong stage (want %s%s%s): %s", r->cmd, f->stages[0],
	          f->stages[1] ? " or " : "", f->stages[1] ? f->stages[1] : "", line);
	cr_expect(contains_any(line, f->reasons), "%s: reason is not \"%s\"...: %s", r->cmd,
	          f->reasons[0], line);
	free(line);
}

void expect_error_records(const char *cmd, const char *path, const struct failure *fs,
                          size_t n)
{
	size_t len, lines;
	char *data = read_file(path, &len), *save = NULL;
	unsigned char *seen = calloc(n + 1, 1);
	size_t strangers = 0;   /* records of items not in `fs` */

	cr_assert_not_null(data, "%s: --errors file %s was not written", cmd, path);
	lines = line_count(data);
	cr_expect_eq(lines, n, "%s: %zu records in --errors, want %zu: %.400s", cmd, lines, n,
	             data);
	cr_expect(len == 0 || data[len - 1] == '\n', "%s: --errors does not end a line", cmd);
	for (char *l = strtok_r(data, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		cJSON *rec = cJSON_Parse(l);
		const cJSON *idx = cJSON_GetObjectItemCaseSensitive(rec, "index");
		const cJSON *stage = cJSON_GetObjectItemCaseSensitive(rec, "stage");
		const cJSON *reason = cJSON_GetObjectItemCaseSensitive(rec, "reason");
		const cJSON *att = cJSON_GetObjectItemCaseSensitive(rec, "attempts");
		const cJSON *input = cJSON_GetObjectItemCaseSensitive(rec, "input");
		const struct failure *f = NULL;
		size_t k;

		cr_expect(cJSON_IsObject(rec), "%s: --errors record is not a JSON object: %s", cmd, l);
		cr_expect(cJSON_IsNumber(idx) && cJSON_IsString(stage) && cJSON_IsString(reason) &&
		          cJSON_IsNumber(att) && cJSON_IsString(input),
		          "%s: --errors record lacks a field: %s", cmd, l);
		if (!cJSON_IsNumber(idx) || !cJSON_IsString(stage) || !cJSON_IsString(reason) ||
		    !cJSON_IsNumber(att) || !cJSON_IsString(input)) {
			cJSON_Delete(rec);
			continue;
		}
		for (k = 0; k < n; k++)
			if ((double)fs[k].index == idx->valuedouble) {
				f = &fs[k];
				break;
			}
		if (!f && ++strangers <= 3)
			cr_expect_fail("%s: --errors names an item that did not fail: %s", cmd, l);
		if (f) {
			cr_expect_not(seen[k], "%s: item %zu recorded twice in --errors", cmd, f->index);
			seen[k] = 1;
			cr_expect(equals_any(stage->valuestring, f->stages), "%s: stage: %s", cmd, l);
			cr_expect(contains_any(reason->valuestring, f->reasons), "%s: reason: %s", cmd,
			          l);
			cr_expect_eq(att->valuedouble, (double)f->attempts, "%s: attempts: %s", cmd, l);
			if (f->input)
				cr_expect_str_eq(input->valuestring, f->input, "%s: input: %s", cmd, l);
		}
		cJSON_Delete(rec);
	}
	cr_expect_eq(strangers, 0, "%s: %zu records of items that did not fail", cmd, strangers);
	for (size_t k = 0; k < n; k++)
		cr_expect(seen[k], "%s: item %zu has no --errors record", cmd, fs[k].index);
	free(seen);
	free(data);
}
