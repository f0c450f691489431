/*
 * loader.c - finds a plugin, dlopen()s it and checks its descriptor.
 *
 * The checks run in the order that keeps them safe: the ABI version and the
 * descriptor size are read before any other field, since a plugin built for
 * another ABI may lay the rest out differently.  The descriptor is copied into
 * a zeroed struct of our own size, so a plugin built with an older (shorter)
 * descriptor reads as having none of the hooks added since.
 */
#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pexec.h"
#include "util.h"

struct pexec_loaded_plugin {
	void *handle;
	char *path;
	pexec_descriptor desc;
	/* Nested pexec_plugin_setup() calls not yet ended: this process's
	 * bookkeeping, not part of the plugin callers see (hence kept through
	 * a const pointer). */
	int setup_depth;
};

/* The first ABI 1 descriptor: everything up to and including free_value. */
#define DESCRIPTOR_V1_SIZE \
	(offsetof(pexec_descriptor, free_value) + sizeof(((pexec_descriptor *)0)->free_value))

static int is_path(const char *spec)
{
	size_t n = strlen(spec);

	return strchr(spec, '/') || (n > 3 && strcmp(spec + n - 3, ".so") == 0);
}

static int file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Looks `name` up in each directory of a colon-separated list, as NAME.so
 * and then as libNAME.so (what cargo and most build systems call a shared
 * library): a directory earlier in the list wins, and within one directory
 * NAME.so does.  Returns a malloc'd path or NULL. */
static char *search_dirs(const char *dirs, const char *name)
{
	static const char *const prefixes[] = { "", "lib" };
	const char *p = dirs;

	while (p && *p) {
		const char *end = strchr(p, ':');
		size_t dlen = end ? (size_t)(end - p) : strlen(p);

		for (size_t i = 0; dlen > 0 && i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
			char *path;

			if (asprintf(&path, "%.*s/%s%s.so", (int)dlen, p, prefixes[i], name) < 0)
				continue;
			if (file_exists(path))
				return path;
			free(path);
		}
		p = end ? end + 1 : NULL;
	}
	return NULL;
}

#ifndef PEXEC_PLUGIN_DIR
#define PEXEC_PLUGIN_DIR "/usr/local/lib/pexec/plugins"
#endif

const char *pexec_plugin_dir(void)
{
	return PEXEC_PLUGIN_DIR;
}

/* The per-user directory: $XDG_DATA_HOME/pexec/plugins, or with no
 * (absolute) XDG_DATA_HOME, $HOME/.local/share/pexec/plugins, as the XDG
 * base directory specification has it.  NULL with neither, or out of memory. */
static char *user_dir(void)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	char *dir;

	if (xdg && xdg[0] == '/')
		return asprintf(&dir, "%s/pexec/plugins", xdg) < 0 ? NULL : dir;
	if (home && home[0] == '/')
		return asprintf(&dir, "%s/.local/share/pexec/plugins", home) < 0 ? NULL : dir;
	return NULL;
}

char *pexec_plugin_search_path(const char *fallback_dir)
{
	const char *env = getenv("PEXEC_PLUGIN_PATH");
	const char *last = fallback_dir ? fallback_dir : PEXEC_PLUGIN_DIR;
	char *user = user_dir(), *path;
	int n;

	n = asprintf(&path, "%s%s%s%s%s", env && *env ? env : "", env && *env ? ":" : "",
	             user ? user : "", user ? ":" : "", last);
	free(user);
	return n < 0 ? NULL : path;
}

static pexec_code resolve(const char *spec, const char *fallback_dir, char **out,
                          pexec_error *err)
{
	char *dirs, *path;

	if (!*spec)
		return pexec__fail(err, PEXEC_ELOAD, "cannot load plugin: empty name");
	if (is_path(spec)) {
		if (!file_exists(spec)) {
			struct stat st;
			if (stat(spec, &st) == 0)
				return pexec__fail(err, PEXEC_ELOAD,
				                   "cannot load '%s': not a regular file", spec);
			return pexec__fail(err, PEXEC_ELOAD, "cannot load '%s': %s", spec,
			                   strerror(errno));
		}
		/* dlopen() searches the library path for names without '/'. */
		if (strchr(spec, '/'))
			path = strdup(spec);
		else if (asprintf(&path, "./%s", spec) < 0)
			path = NULL;
		if (!path)
			return pexec__fail(err, PEXEC_ESYS, "cannot load '%s': out of memory", spec);
		*out = path;
		return PEXEC_OK;
	}
	if (!(dirs = pexec_plugin_search_path(fallback_dir)))
		return pexec__fail(err, PEXEC_ESYS, "cannot load '%s': out of memory", spec);
	path = search_dirs(dirs, spec);
	if (!path) {
		const char *env = getenv("PEXEC_PLUGIN_PATH");

		pexec__fail(err, PEXEC_ELOAD,
		            "cannot load plugin '%s': no %s.so or lib%s.so on the plugin search "
		            "path %s (PEXEC_PLUGIN_PATH %s%s)",
		            spec, spec, spec, dirs, env && *env ? "is " : "", env && *env ? env : "unset");
		free(dirs);
		return PEXEC_ELOAD;
	}
	free(dirs);
	*out = path;
	return PEXEC_OK;
}

static pexec_code check(const char *path, const pexec_descriptor *d, pexec_error *err)
{
	if (d->abi_version != PEXEC_ABI_VERSION)
		return pexec__fail(err, PEXEC_ELOAD,
		                   "cannot load '%s': built for plugin ABI %u, this pexec runs ABI %u",
		                   path, d->abi_version, PEXEC_ABI_VERSION);
	if (d->struct_size < DESCRIPTOR_V1_SIZE)
		return pexec__fail(err, PEXEC_ELOAD,
		                   "cannot load '%s': descriptor is %u bytes, ABI %u needs at least %zu",
		                   path, d->struct_size, PEXEC_ABI_VERSION, DESCRIPTOR_V1_SIZE);
	if (!d->name || !*d->name)
		return pexec__fail(err, PEXEC_ELOAD, "cannot load '%s': descriptor has no name", path);
	if (!d->map)
		return pexec__fail(err, PEXEC_ELOAD, "cannot load '%s': required hook 'map' missing",
		                   path);
	return PEXEC_OK;
}

pexec_code pexec_plugin_load(const char *spec, const char *fallback_dir,
                             pexec_loaded_plugin **out, pexec_error *err)
{
	pexec_loaded_plugin *p = NULL;
	const pexec_descriptor *d;
	char *path = NULL;
	void *handle = NULL;
	pexec_code rc;
	size_t n;

	*out = NULL;
	rc = resolve(spec, fallback_dir, &path, err);
	if (rc)
		goto out;
	{
		/* dlopen() says "not loadable" for any failure; a system limit
		 * (no descriptors left, no memory) is not the plugin's fault. */
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			rc = pexec__fail(err, errno == EACCES || errno == ENOENT ? PEXEC_ELOAD
			                                                       : PEXEC_ESYS,
			                 "cannot load '%s': %s", path, strerror(errno));
			goto out;
		}
		close(fd);
	}
	dlerror();
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!handle) {
		const char *why = dlerror();
		rc = pexec__fail(err, PEXEC_ELOAD, "cannot load '%s': not a loadable shared object (%s)",
		                 path, why ? why : "unknown dlopen error");
		goto out;
	}
	dlerror();
	d = dlsym(handle, PEXEC_PLUGIN_SYMBOL);
	if (!d) {
		rc = pexec__fail(err, PEXEC_ELOAD,
		                 "cannot load '%s': not a pexec plugin (no symbol %s)", path,
		                 PEXEC_PLUGIN_SYMBOL);
		goto out;
	}
	rc = check(path, d, err);
	if (rc)
		goto out;
	p = calloc(1, sizeof(*p));
	if (!p) {
		rc = pexec__fail(err, PEXEC_ESYS, "cannot load '%s': out of memory", path);
		goto out;
	}
	n = d->struct_size < sizeof(p->desc) ? d->struct_size : sizeof(p->desc);
	memcpy(&p->desc, d, n);
	p->handle = handle;
	p->path = path;
	*out = p;
	return PEXEC_OK;
out:
	if (handle)
		dlclose(handle);
	free(path);
	return rc;
}

const pexec_descriptor *pexec_plugin_descriptor(const pexec_loaded_plugin *plugin)
{
	return &plugin->desc;
}

const char *pexec_plugin_path(const pexec_loaded_plugin *plugin)
{
	return plugin->path;
}

void pexec_plugin_free(pexec_loaded_plugin *plugin)
{
	if (!plugin)
		return;
	dlclose(plugin->handle);
	free(plugin->path);
	free(plugin);
}

pexec_code pexec_plugin_setup(const pexec_loaded_plugin *plugin, const char *config,
                               pexec_error *err)
{
	pexec_loaded_plugin *p = (pexec_loaded_plugin *)plugin;
	const pexec_descriptor *d = &p->desc;
	cJSON *tree = NULL;
	pexec_error why;
	int rc;

	if (p->setup_depth++ > 0 || !d->setup)
		return PEXEC_OK;
	if (config && !(tree = cJSON_Parse(config))) {
		p->setup_depth--;
		return pexec__fail(err, PEXEC_EUSAGE, "--config is not valid JSON");
	}
	why.msg[0] = '\0';
	rc = d->setup(tree, &why);
	cJSON_Delete(tree);
	if (rc) {
		p->setup_depth--;
		return pexec__fail(err, PEXEC_EINIT, "plugin '%s' setup failed: %s", d->name,
		                   why.msg[0] ? why.msg : "(no message)");
	}
	return PEXEC_OK;
}

void pexec_plugin_teardown(const pexec_loaded_plugin *plugin)
{
	pexec_loaded_plugin *p = (pexec_loaded_plugin *)plugin;

	if (p->setup_depth > 0 && --p->setup_depth == 0 && p->desc.teardown)
		p->desc.teardown();
}
