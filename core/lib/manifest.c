/*
 * manifest.c - a loaded plugin described as JSON (what `pexec info` prints,
 * in the shape plugin.schema.json gives).
 */
#include <cjson/cJSON.h>

#include "pexec.h"

/* Adds a declaration given as JSON text; text that does not parse is
 * shown as a string, so that `pexec check` can point at it. */
static void add_json(cJSON *obj, const char *key, const char *text)
{
	cJSON *v;

	if (!text)
		return;
	v = cJSON_Parse(text);
	cJSON_AddItemToObject(obj, key, v ? v : cJSON_CreateString(text));
}

static void add_declaration(cJSON *m, const char *key, const char *description,
                            const char *schema)
{
	cJSON *d;

	if (!description && !schema)
		return;
	d = cJSON_AddObjectToObject(m, key);
	if (!d)
		return;
	cJSON_AddStringToObject(d, "description", description ? description : "");
	add_json(d, "schema", schema);
}

char *pexec_plugin_manifest(const pexec_loaded_plugin *plugin)
{
	const pexec_descriptor *d = pexec_plugin_descriptor(plugin);
	cJSON *m = cJSON_CreateObject(), *hooks;
	char *text = NULL;

	if (!m)
		return NULL;
	cJSON_AddStringToObject(m, "name", d->name);
	cJSON_AddStringToObject(m, "version", d->version ? d->version : "");
	cJSON_AddNumberToObject(m, "abi", d->abi_version);
	cJSON_AddStringToObject(m, "description", d->description ? d->description : "");
	cJSON_AddStringToObject(m, "path", pexec_plugin_path(plugin));
	hooks = cJSON_AddObjectToObject(m, "hooks");
	if (hooks) {
		cJSON_AddBoolToObject(hooks, "init", d->init != NULL);
		cJSON_AddBoolToObject(hooks, "fini", d->fini != NULL);
		cJSON_AddBoolToObject(hooks, "deserialize", d->deserialize != NULL);
		cJSON_AddBoolToObject(hooks, "map", d->map != NULL);
		cJSON_AddBoolToObject(hooks, "serialize", d->serialize != NULL);
		cJSON_AddBoolToObject(hooks, "free_value", d->free_value != NULL);
		cJSON_AddBoolToObject(hooks, "reduce", d->reduce != NULL);
		cJSON_AddBoolToObject(hooks, "setup", d->setup != NULL);
		cJSON_AddBoolToObject(hooks, "teardown", d->teardown != NULL);
	}
	add_json(m, "config", d->config_schema);
	add_declaration(m, "input", d->input_description, d->input_schema);
	add_declaration(m, "output", d->output_description, d->output_schema);
	text = cJSON_Print(m);
	cJSON_Delete(m);
	return text;
}
