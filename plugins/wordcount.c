/*
 * wordcount.c - counts the words of text files; with `pexec --reduce`, of a
 * whole tree of them (the seeds' text parsing across many directories).
 *
 * Each item is the path of a file.  map counts its words into an object
 * {"word": count, ...}, keys in the order words first appear; reduce adds
 * one such object into another.  A word is a run of ASCII letters and
 * digits, or of bytes >= 0x80 (so UTF-8 words stay whole), with ASCII
 * letters lowercased.  Values are cJSON trees (no custom serializer), which
 * is what lets partial counts cross between processes as JSON text.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pexec_plugin.h"

/* An index over an object's members by key: open addressing. */
struct index {
	cJSON **slots;
	size_t cap, used;
};

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

static int index_grow(struct index *ix)
{
	size_t cap = ix->cap ? ix->cap * 2 : 1024;
	cJSON **slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -1;
	for (size_t i = 0; i < ix->cap; i++) {
		cJSON *it = ix->slots[i];
		size_t j;
		if (!it)
			continue;
		for (j = hash(it->string, strlen(it->string)) & (cap - 1); slots[j];
		     j = (j + 1) & (cap - 1))
			;
		slots[j] = it;
	}
	free(ix->slots);
	ix->slots = slots;
	ix->cap = cap;
	return 0;
}

/* The member of `obj` keyed `key` (n bytes), added with count 0 if absent;
 * NULL when out of memory. */
static cJSON *index_get(struct index *ix, cJSON *obj, const char *key, size_t n)
{
	size_t j;

	if ((ix->used + 1) * 10 > ix->cap * 7 && index_grow(ix))
		return NULL;
	for (j = hash(key, n) & (ix->cap - 1); ix->slots[j]; j = (j + 1) & (ix->cap - 1)) {
		const char *s = ix->slots[j]->string;
		if (strncmp(s, key, n) == 0 && s[n] == '\0')
			return ix->slots[j];
	}
	{
		char *name = malloc(n + 1);
		cJSON *num;

		if (!name)
			return NULL;
		memcpy(name, key, n);
		name[n] = '\0';
		num = cJSON_AddNumberToObject(obj, name, 0);
		free(name);
		if (!num)
			return NULL;
		ix->slots[j] = num;
		ix->used++;
		return num;
	}
}

static int index_of(struct index *ix, cJSON *obj)
{
	cJSON *it;

	cJSON_ArrayForEach(it, obj) {
		size_t j;
		if ((ix->used + 1) * 10 > ix->cap * 7 && index_grow(ix))
			return -1;
		for (j = hash(it->string, strlen(it->string)) & (ix->cap - 1); ix->slots[j];
		     j = (j + 1) & (ix->cap - 1))
			;
		ix->slots[j] = it;
		ix->used++;
	}
	return 0;
}

static int is_word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80;
}

static char *read_all(const char *path, size_t *len, pexec_error *err)
{
	FILE *f = fopen(path, "rbe");
	char *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (!f) {
		pexec_error_set(err, "wordcount: cannot open '%s': %s", path, strerror(errno));
		return NULL;
	}
	do {
		if (cap - n < 65536) {
			char *b = realloc(buf, cap ? cap * 2 : 65536);
			if (!b) {
				pexec_error_set(err, "wordcount: '%s': out of memory", path);
				goto fail;
			}
			buf = b;
			cap = cap ? cap * 2 : 65536;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	if (ferror(f)) {
		pexec_error_set(err, "wordcount: cannot read '%s': %s", path, strerror(errno));
		goto fail;
	}
	fclose(f);
	*len = n;
	return buf;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

static int wc_map(void *state, void *input, void **output, pexec_error *err)
{
	const cJSON *path = input;
	struct index ix = { 0 };
	cJSON *counts = NULL;
	char *text;
	size_t len, i = 0;

	(void)state;
	if (!cJSON_IsString(path)) {
		pexec_error_set(err, "wordcount: an item must be a file path (a JSON string)");
		return -1;
	}
	text = read_all(path->valuestring, &len, err);
	if (!text)
		return -1;
	counts = cJSON_CreateObject();
	if (!counts)
		goto nomem;
	while (i < len) {
		size_t start;
		cJSON *c;

		while (i < len && !is_word_byte((unsigned char)text[i]))
			i++;
		start = i;
		while (i < len && is_word_byte((unsigned char)text[i])) {
			if (text[i] >= 'A' && text[i] <= 'Z')
				text[i] = (char)(text[i] - 'A' + 'a');
			i++;
		}
		if (i == start)
			break;
		c = index_get(&ix, counts, text + start, i - start);
		if (!c)
			goto nomem;
		cJSON_SetNumberValue(c, c->valuedouble + 1);
	}
	free(text);
	free(ix.slots);
	*output = counts;
	return 0;
nomem:
	pexec_error_set(err, "wordcount: '%s': out of memory", path->valuestring);
	free(text);
	free(ix.slots);
	cJSON_Delete(counts);
	return -1;
}

/* a += b, key by key; a is the result (pexec frees b). */
static int wc_reduce(void *state, void *a, void *b, void **out, pexec_error *err)
{
	struct index ix = { 0 };
	cJSON *sum = a, *it;

	(void)state;
	if (!cJSON_IsObject(sum) || !cJSON_IsObject((cJSON *)b)) {
		pexec_error_set(err, "wordcount: reduce takes two objects of counts");
		return -1;
	}
	if (index_of(&ix, sum))
		goto nomem;
	cJSON_ArrayForEach(it, (cJSON *)b) {
		cJSON *c;
		if (!cJSON_IsNumber(it)) {
			free(ix.slots);
			pexec_error_set(err, "wordcount: the count of '%s' is not a number", it->string);
			return -1;
		}
		c = index_get(&ix, sum, it->string, strlen(it->string));
		if (!c)
			goto nomem;
		cJSON_SetNumberValue(c, c->valuedouble + it->valuedouble);
	}
	free(ix.slots);
	*out = sum;
	return 0;
nomem:
	free(ix.slots);
	pexec_error_set(err, "wordcount: out of memory");
	return -1;
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "wordcount",
	.version = "1.0.0",
	.description = "counts the words of text files; --reduce adds the counts of all of them",
	.map = wc_map,
	.input_description = "the path of a text file",
	.input_schema = "{\"type\":\"string\"}",
	.output_description = "each word of the file and how often it occurs",
	.output_schema = "{\"type\":\"object\",\"additionalProperties\":"
	                 "{\"type\":\"integer\",\"minimum\":1}}",
	.reduce = wc_reduce,
	.reduce_initial = "{}",
};
