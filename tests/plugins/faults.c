/*
 * faults.c - a fixture plugin that misbehaves on request, for the fault
 * matrix tests.
 *
 * An item {"fault": F, "stage": S} triggers fault F in hook S (deserialize,
 * map or serialize); a config of the same shape triggers it in init.  Other
 * items: a number n maps to 2n; {"size": N} maps to a JSON string whose text
 * is exactly N bytes (N = 0 makes serialize write nothing); {"pid": true}
 * maps to the worker's pid.  Faults:
 *
 *   error    an error return with a message      exit     _exit(code, default 7)
 *   segv     a write through a null pointer       abort    abort()
 *   loop     an endless loop                      memory   allocate until it fails
 *   sigkill  SIGKILL to itself (as the OOM killer would)
 *   garbage  bytes written to stdout, then carries on
 *   close    closes every descriptor above 2, then carries on
 *
 * reduce (for --reduce) adds numbers; anything else fails it, and a
 * {"fault": F, "stage": "reduce"} result triggers F there.
 */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pexec_plugin.h"

struct value {
	cJSON *json;
	long size;  /* {"size": N}: N; else -1 */
};

/* Carries out `fault` (if it is meant for `stage`); returns -1 for an error
 * return, 0 to carry on. */
static int trigger(const cJSON *spec, const char *stage, pexec_error *err)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(spec, "fault");
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(spec, "stage");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(spec, "code");
	const char *fault;

	if (!cJSON_IsString(f) || !cJSON_IsString(s) || strcmp(s->valuestring, stage))
		return 0;
	fault = f->valuestring;
	if (!strcmp(fault, "error")) {
		pexec_error_set(err, "faults: asked to fail in %s", stage);
		return -1;
	} else if (!strcmp(fault, "exit")) {
		_exit(cJSON_IsNumber(code) ? code->valueint : 7);
	} else if (!strcmp(fault, "segv")) {
		volatile int *volatile p = NULL;
		*p = 1;
	} else if (!strcmp(fault, "abort")) {
		abort();
	} else if (!strcmp(fault, "loop")) {
		for (volatile unsigned long i = 0;; i++)
			;
	} else if (!strcmp(fault, "memory")) {
		/* Touch every page, as a runaway plugin would; a null from malloc
		 * is dereferenced, as a careless one would. */
		for (;;) {
			char *volatile block = malloc(16 << 20);
			memset(block, 1, 16 << 20);
		}
	} else if (!strcmp(fault, "sigkill")) {
		raise(SIGKILL);
	} else if (!strcmp(fault, "garbage")) {
		static const char junk[] = "]]} not json {{[\n";
		if (write(1, junk, sizeof(junk) - 1) < 0)
			return 0;
	} else if (!strcmp(fault, "close")) {
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	}
	return 0;
}

static int faults_init(const cJSON *config, void **state, pexec_error *err)
{
	*state = NULL;
	return config ? trigger(config, "init", err) : 0;
}

static void value_free(void *state, void *v)
{
	struct value *val = v;

	(void)state;
	cJSON_Delete(val->json);
	free(val);
}

static int faults_deserialize(void *state, const char *data, size_t len, void **out,
                              pexec_error *err)
{
	struct value *v = calloc(1, sizeof(*v));
	const cJSON *size;

	(void)state;
	if (!v || !(v->json = cJSON_ParseWithLength(data, len))) {
		free(v);
		pexec_error_set(err, "faults: cannot parse the item");
		return -1;
	}
	size = cJSON_GetObjectItemCaseSensitive(v->json, "size");
	v->size = cJSON_IsNumber(size) ? (long)size->valuedouble : -1;
	*out = v;
	if (trigger(v->json, "deserialize", err)) {
		value_free(NULL, v);
		*out = NULL;
		return -1;
	}
	return 0;
}

static int faults_map(void *state, void *input, void **output, pexec_error *err)
{
	struct value *in = input;

	(void)state;
	if (trigger(in->json, "map", err))
		return -1;
	if (cJSON_IsNumber(in->json))
		cJSON_SetNumberValue(in->json, in->json->valuedouble * 2);
	else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(in->json, "pid"))) {
		cJSON_Delete(in->json);
		in->json = cJSON_CreateNumber((double)getpid());
	}
	*output = in;
	return 0;
}

static int faults_serialize(void *state, const void *value, pexec_buf *out, pexec_error *err)
{
	const struct value *v = value;
	char *text;
	int rc;

	(void)state;
	if (trigger(v->json, "serialize", err))
		return -1;
	if (v->size >= 0) {
		/* A string whose JSON text is exactly `size` bytes. */
		if (v->size == 0)
			return 0;
		if (v->size < 2 || pexec_buf_reserve(out, (size_t)v->size)) {
			pexec_error_set(err, "faults: cannot make %ld bytes", v->size);
			return -1;
		}
		out->data[out->len] = '"';
		memset(out->data + out->len + 1, 'x', (size_t)v->size - 2);
		out->data[out->len + (size_t)v->size - 1] = '"';
		out->len += (size_t)v->size;
		return 0;
	}
	text = cJSON_PrintUnformatted(v->json);
	rc = text ? pexec_buf_puts(out, text) : -1;
	free(text);
	if (rc)
		pexec_error_set(err, "faults: cannot print the result");
	return rc;
}

static int faults_reduce(void *state, void *a, void *b, void **out, pexec_error *err)
{
	struct value *x = a, *y = b;

	(void)state;
	if (y && trigger(y->json, "reduce", err))
		return -1;
	if (!x || !y || !cJSON_IsNumber(x->json) || !cJSON_IsNumber(y->json)) {
		pexec_error_set(err, "faults: reduce adds numbers only");
		return -1;
	}
	cJSON_SetNumberValue(x->json, x->json->valuedouble + y->json->valuedouble);
	*out = x;
	return 0;
}

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "faults",
	.version = "1.0.0",
	.description = "fails, crashes, hangs or leaks on request (test fixture)",
	.init = faults_init,
	.deserialize = faults_deserialize,
	.map = faults_map,
	.serialize = faults_serialize,
	.free_value = value_free,
	.reduce = faults_reduce,
	.reduce_initial = "0",
};
