/*
 * new.c - `pexec new NAME [--lang c|c++]`: writes a plugin skeleton that
 * builds with one command and runs at once.
 *
 * NAME/NAME.c (or, in C++, NAME/NAME.cc) is an identity map over cJSON
 * values with every optional hook written out but disabled; the C++ one
 * shows the boundary every C++ hook needs (noexcept, exceptions caught and
 * reported as the item's error).  NAME/Makefile includes plugin.mk from pexec's SDK
 * (so the flags a plugin needs stay in one place), and NAME/input.json gives
 * it something to run on.  The SDK is looked for beside this binary first
 * (BINDIR/../share/pexec/sdk: an installed pexec, wherever it was moved or
 * staged), then at PEXEC_SDK_DIR, compiled in (the checkout's sdk/ for
 * build/pexec).
 *
 * It never overwrites: NAME must not exist, and each file is created with
 * O_EXCL.  If writing fails half way, what was written is removed again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "new.h"

#ifndef PEXEC_SDK_DIR
#define PEXEC_SDK_DIR "/usr/local/share/pexec/sdk"
#endif

/* Long enough for any real plugin name, short enough for every file name
 * made from it. */
#define NAME_MAX_LEN 64

/* The skeletons.  @NAME@ becomes the plugin's name, @SDK@ the SDK directory
 * (escaped for make), @FLAGS@ the make variable of the language's flags. */
static const char c_source_template[] =
	"/*\n"
	" * @NAME@.c - a pexec plugin, written by `pexec new @NAME@`.\n"
	" *\n"
	" *   make                                     builds @NAME@.so\n"
	" *   pexec --plugin ./@NAME@.so input.json     runs it over input.json\n"
	" *\n"
	" * pexec loads this file once, forks its workers, and in each worker calls\n"
	" * map once per item of the input.  As written, map returns every item\n"
	" * unchanged: put your work in @NAME@_map.  Every other hook is optional;\n"
	" * they are written out below, disabled.  The contract, and who owns each\n"
	" * value, is the comment at the top of pexec_plugin.h; the SDK's GUIDE.md\n"
	" * (or `man 7 pexec-plugin`) walks through it.\n"
	" */\n"
	"#include <stdlib.h>\n"
	"\n"
	"#include <cjson/cJSON.h>\n"
	"\n"
	"#include \"pexec_plugin.h\"\n"
	"\n"
	"/*\n"
	" * Required: one item in, one result out.  Without a deserialize hook,\n"
	" * `input` is the item as a cJSON tree; it is pexec's, lent for this call\n"
	" * only: never free it or keep a pointer to it.  Set *output to a new\n"
	" * cJSON tree (pexec frees it), to `input` itself (pass-through: pexec\n"
	" * frees it once), or to NULL for JSON null.  To fail the item, set a\n"
	" * message and return non-zero; never print to stdout or exit.\n"
	" */\n"
	"static int @NAME@_map(void *state, void *input, void **output, pexec_error *err)\n"
	"{\n"
	"\tcJSON *item = input;\n"
	"\n"
	"\t(void)state;\n"
	"\t(void)err;\n"
	"\t/* For example, to double numbers:\n"
	"\t *\n"
	"\t *\tif (!cJSON_IsNumber(item)) {\n"
	"\t *\t\tpexec_error_set(err, \"@NAME@: expected a number\");\n"
	"\t *\t\treturn -1;\n"
	"\t *\t}\n"
	"\t *\t*output = cJSON_CreateNumber(2 * cJSON_GetNumberValue(item));\n"
	"\t *\tif (!*output) {\n"
	"\t *\t\tpexec_error_set(err, \"@NAME@: out of memory\");\n"
	"\t *\t\treturn -1;\n"
	"\t *\t}\n"
	"\t *\treturn 0;\n"
	"\t */\n"
	"\t*output = item;\n"
	"\treturn 0;\n"
	"}\n"
	"\n"
	"/*\n"
	" * Optional hooks.  To use one, delete the `#if 0` line and its `#endif`,\n"
	" * and name the hook in the descriptor at the end of this file.\n"
	" */\n"
	"#if 0\n"
	"/* Per-worker state.  init runs once in each worker before any item:\n"
	" * `config` is the --config JSON (NULL without one), pexec's and valid\n"
	" * during init only, so copy what you need.  *state reaches every hook. */\n"
	"static int @NAME@_init(const cJSON *config, void **state, pexec_error *err)\n"
	"{\n"
	"\t(void)config;\n"
	"\t(void)err;\n"
	"\t*state = NULL;\n"
	"\treturn 0;\n"
	"}\n"
	"\n"
	"/* Frees what init made, when a worker finishes normally (not after a\n"
	" * crash or an early stop: never rely on it for anything that must happen). */\n"
	"static void @NAME@_fini(void *state)\n"
	"{\n"
	"\t(void)state;\n"
	"}\n"
	"#endif\n"
	"\n"
	"#if 0\n"
	"/* Your own value type, in place of pexec's cJSON trees: use these three\n"
	" * together.  As written they still use cJSON, so map stays correct. */\n"
	"\n"
	"/* One item's JSON text to an input value.  `data` (NUL-terminated) is\n"
	" * pexec's and stays valid until the item's result is serialized, so a\n"
	" * value may point into it. */\n"
	"static int @NAME@_deserialize(void *state, const char *data, size_t len,\n"
	"\tvoid **value, pexec_error *err)\n"
	"{\n"
	"\t(void)state;\n"
	"\t*value = cJSON_ParseWithLength(data, len);\n"
	"\tif (!*value) {\n"
	"\t\tpexec_error_set(err, \"@NAME@: cannot parse the item\");\n"
	"\t\treturn -1;\n"
	"\t}\n"
	"\treturn 0;\n"
	"}\n"
	"\n"
	"/* Appends one output value's JSON text (exactly one JSON value) to `out`,\n"
	" * pexec's buffer, through the pexec_buf_* helpers only.  (A NULL output\n"
	" * never gets here: pexec writes null itself.) */\n"
	"static int @NAME@_serialize(void *state, const void *value, pexec_buf *out,\n"
	"\tpexec_error *err)\n"
	"{\n"
	"\tchar *text = cJSON_PrintUnformatted(value);\n"
	"\tint rc = text ? pexec_buf_puts(out, text) : -1;\n"
	"\n"
	"\t(void)state;\n"
	"\tfree(text);\n"
	"\tif (rc)\n"
	"\t\tpexec_error_set(err, \"@NAME@: out of memory\");\n"
	"\treturn rc;\n"
	"}\n"
	"\n"
	"/* Frees a value that deserialize or map made; pexec calls it once per\n"
	" * value (once for a pass-through). */\n"
	"static void @NAME@_free_value(void *state, void *value)\n"
	"{\n"
	"\t(void)state;\n"
	"\tcJSON_Delete(value);\n"
	"}\n"
	"#endif\n"
	"\n"
	"/* The one symbol pexec looks for.  PEXEC_DESCRIPTOR_HEADER records the ABI\n"
	" * this file was built for; members left out are NULL. */\n"
	"PEXEC_PLUGIN = {\n"
	"\tPEXEC_DESCRIPTOR_HEADER,\n"
	"\t.name = \"@NAME@\",\n"
	"\t.version = \"0.1.0\",\n"
	"\t.description = \"returns each item unchanged (a new plugin: edit @NAME@_map)\",\n"
	"\t.map = @NAME@_map,\n"
	"\t/* .init = @NAME@_init, */\n"
	"\t/* .fini = @NAME@_fini, */\n"
	"\t/* .deserialize = @NAME@_deserialize, */\n"
	"\t/* .serialize = @NAME@_serialize, */\n"
	"\t/* .free_value = @NAME@_free_value, */\n"
	"};\n";

/* In C++20 designated initializers must follow the header's order, so the
 * descriptor names its hooks in that order, not map first as in C. */
static const char cxx_source_template[] =
	"/*\n"
	" * @NAME@.cc - a pexec plugin in C++, written by `pexec new @NAME@ --lang c++`.\n"
	" *\n"
	" *   make                                     builds @NAME@.so\n"
	" *   pexec --plugin ./@NAME@.so input.json     runs it over input.json\n"
	" *\n"
	" * pexec loads this file once, forks its workers, and in each worker calls\n"
	" * map once per item of the input.  As written, map returns every item\n"
	" * unchanged: put your work in @NAME@_map.  Every other hook is optional;\n"
	" * they are written out below, disabled.  The contract, and who owns each\n"
	" * value, is the comment at the top of pexec_plugin.h; the SDK's GUIDE.md\n"
	" * (or `man 7 pexec-plugin`) walks through it, C++ included.\n"
	" *\n"
	" * pexec is C: no exception may leave a hook.  Each hook is noexcept and\n"
	" * runs its body through guarded(), which turns whatever it throws into the\n"
	" * item's error.\n"
	" */\n"
	"#include <exception>\n"
	"#include <new>\n"
	"#include <stdexcept>\n"
	"\n"
	"#include <cjson/cJSON.h>\n"
	"\n"
	"#include \"pexec_plugin.h\"\n"
	"\n"
	"namespace {\n"
	"\n"
	"/* The boundary: runs `body`, and reports what it throws as the hook's\n"
	" * error (pexec fails that item and goes on). */\n"
	"template <typename Body>\n"
	"int guarded(pexec_error *err, Body &&body) noexcept\n"
	"{\n"
	"\ttry {\n"
	"\t\tbody();\n"
	"\t\treturn 0;\n"
	"\t} catch (const std::bad_alloc &) {\n"
	"\t\tpexec_error_set(err, \"@NAME@: out of memory\");\n"
	"\t} catch (const std::exception &e) {\n"
	"\t\tpexec_error_set(err, \"@NAME@: %s\", e.what());\n"
	"\t} catch (...) {\n"
	"\t\tpexec_error_set(err, \"@NAME@: unknown exception\");\n"
	"\t}\n"
	"\treturn -1;\n"
	"}\n"
	"\n"
	"/*\n"
	" * Required: one item in, one result out.  Without a deserialize hook,\n"
	" * `input` is the item as a cJSON tree; it is pexec's, lent for this call\n"
	" * only: never free it or keep a pointer to it.  Set *output to a new\n"
	" * cJSON tree (pexec frees it), to `input` itself (pass-through: pexec\n"
	" * frees it once), or to nullptr for JSON null.  To fail the item, throw\n"
	" * (or set a message and return non-zero); never print to stdout or exit.\n"
	" */\n"
	"int @NAME@_map(void *state, void *input, void **output, pexec_error *err) noexcept\n"
	"{\n"
	"\treturn guarded(err, [&] {\n"
	"\t\tcJSON *item = static_cast<cJSON *>(input);\n"
	"\n"
	"\t\t(void)state;\n"
	"\t\t/* For example, to double numbers:\n"
	"\t\t *\n"
	"\t\t *\tif (!cJSON_IsNumber(item))\n"
	"\t\t *\t\tthrow std::invalid_argument(\"expected a number\");\n"
	"\t\t *\t*output = cJSON_CreateNumber(2 * cJSON_GetNumberValue(item));\n"
	"\t\t *\tif (!*output)\n"
	"\t\t *\t\tthrow std::bad_alloc();\n"
	"\t\t *\treturn;\n"
	"\t\t */\n"
	"\t\t*output = item;\n"
	"\t});\n"
	"}\n"
	"\n"
	"/*\n"
	" * Optional hooks.  To use one, delete the `#if 0` line and its `#endif`,\n"
	" * and name the hook in the descriptor at the end of this file.\n"
	" */\n"
	"#if 0\n"
	"/* Per-worker state, here a C++ object.  init runs once in each worker\n"
	" * before any item: `config` is the --config JSON (nullptr without one),\n"
	" * pexec's and valid during init only, so copy what you need.  *state\n"
	" * reaches every hook. */\n"
	"struct @NAME@_state {\n"
	"\t/* what each worker keeps: a cache, a compiled pattern, ... */\n"
	"};\n"
	"\n"
	"int @NAME@_init(const cJSON *config, void **state, pexec_error *err) noexcept\n"
	"{\n"
	"\treturn guarded(err, [&] {\n"
	"\t\t(void)config;\n"
	"\t\t*state = new @NAME@_state;\n"
	"\t});\n"
	"}\n"
	"\n"
	"/* Frees what init made, when a worker finishes normally (not after a\n"
	" * crash or an early stop: never rely on it for anything that must happen). */\n"
	"void @NAME@_fini(void *state) noexcept\n"
	"{\n"
	"\tdelete static_cast<@NAME@_state *>(state);\n"
	"}\n"
	"#endif\n"
	"\n"
	"#if 0\n"
	"/* Your own value type, in place of pexec's cJSON trees: use these three\n"
	" * together.  As written they still use cJSON, so map stays correct. */\n"
	"\n"
	"/* One item's JSON text to an input value.  `data` (NUL-terminated) is\n"
	" * pexec's and stays valid until the item's result is serialized, so a\n"
	" * value may point into it. */\n"
	"int @NAME@_deserialize(void *state, const char *data, size_t len, void **value,\n"
	"\tpexec_error *err) noexcept\n"
	"{\n"
	"\treturn guarded(err, [&] {\n"
	"\t\t(void)state;\n"
	"\t\t*value = cJSON_ParseWithLength(data, len);\n"
	"\t\tif (!*value)\n"
	"\t\t\tthrow std::invalid_argument(\"cannot parse the item\");\n"
	"\t});\n"
	"}\n"
	"\n"
	"/* Appends one output value's JSON text (exactly one JSON value) to `out`,\n"
	" * pexec's buffer, through the pexec_buf_* helpers only.  (A null output\n"
	" * never gets here: pexec writes null itself.) */\n"
	"int @NAME@_serialize(void *state, const void *value, pexec_buf *out,\n"
	"\tpexec_error *err) noexcept\n"
	"{\n"
	"\treturn guarded(err, [&] {\n"
	"\t\tchar *text = cJSON_PrintUnformatted(static_cast<const cJSON *>(value));\n"
	"\t\tint rc = text ? pexec_buf_puts(out, text) : -1;\n"
	"\n"
	"\t\t(void)state;\n"
	"\t\tcJSON_free(text);\n"
	"\t\tif (rc)\n"
	"\t\t\tthrow std::bad_alloc();\n"
	"\t});\n"
	"}\n"
	"\n"
	"/* Frees a value that deserialize or map made; pexec calls it once per\n"
	" * value (once for a pass-through). */\n"
	"void @NAME@_free_value(void *state, void *value) noexcept\n"
	"{\n"
	"\t(void)state;\n"
	"\tcJSON_Delete(static_cast<cJSON *>(value));\n"
	"}\n"
	"#endif\n"
	"\n"
	"} // namespace\n"
	"\n"
	"/* The one symbol pexec looks for, written as in C: C++20 designated\n"
	" * initializers, which must name members in the header's order (for C++17,\n"
	" * see GUIDE.md).  PEXEC_DESCRIPTOR_HEADER records the ABI this file was\n"
	" * built for; members left out are null. */\n"
	"PEXEC_PLUGIN = {\n"
	"\tPEXEC_DESCRIPTOR_HEADER,\n"
	"\t.name = \"@NAME@\",\n"
	"\t.version = \"0.1.0\",\n"
	"\t.description = \"returns each item unchanged (a new plugin: edit @NAME@_map)\",\n"
	"\t/* .init = @NAME@_init, */\n"
	"\t/* .fini = @NAME@_fini, */\n"
	"\t/* .deserialize = @NAME@_deserialize, */\n"
	"\t.map = @NAME@_map,\n"
	"\t/* .serialize = @NAME@_serialize, */\n"
	"\t/* .free_value = @NAME@_free_value, */\n"
	"};\n";

static const char makefile_template[] =
	"# Builds the pexec plugin @NAME@ (written by `pexec new @NAME@`).\n"
	"#\n"
	"#   make          @NAME@.so\n"
	"#   make install  into the installed pexec's plugin directory (PEXEC_PLUGINDIR,\n"
	"#                 from pkg-config pexec-plugin; DESTDIR stages)\n"
	"#   make install-user   into ~/.local/share/pexec/plugins, which needs no root\n"
	"#   make uninstall, make clean\n"
	"#\n"
	"# The flags every plugin is built with are pexec's, in plugin.mk in its SDK.\n"
	"# @FLAGS@ (default -O2 -g -Wall -Wextra) can be replaced, and CPPFLAGS,\n"
	"# LDFLAGS and LDLIBS added to, as usual.  To build against another pexec:\n"
	"# make PEXEC_SDK=/path/to/its/sdk\n"
	"PEXEC_SDK ?= @SDK@\n"
	"\n"
	"all: @NAME@.so\n"
	"\n"
	"include $(PEXEC_SDK)/plugin.mk\n"
	"\n"
	"install: @NAME@.so pexec-plugindir\n"
	"\t$(INSTALL) -d '$(DESTDIR)$(PEXEC_PLUGINDIR)'\n"
	"\t$(INSTALL) -m 644 @NAME@.so '$(DESTDIR)$(PEXEC_PLUGINDIR)/'\n"
	"\n"
	"install-user: @NAME@.so\n"
	"\t$(INSTALL) -d '$(PEXEC_USER_PLUGINDIR)'\n"
	"\t$(INSTALL) -m 644 @NAME@.so '$(PEXEC_USER_PLUGINDIR)/'\n"
	"\n"
	"uninstall: pexec-plugindir\n"
	"\trm -f '$(DESTDIR)$(PEXEC_PLUGINDIR)/@NAME@.so' '$(PEXEC_USER_PLUGINDIR)/@NAME@.so'\n"
	"\n"
	"clean:\n"
	"\trm -f @NAME@.so\n"
	"\n"
	".PHONY: all install install-user uninstall clean\n";

static const char input_template[] =
	"[1, \"two\", {\"three\": 3}, [4, 5], null]\n";

struct lang {
	const char *name;     /* as --lang says it */
	const char *ext;      /* of the source file */
	const char *source;
	const char *flags;    /* @FLAGS@ */
};

static const struct lang langs[] = {
	{ "c", "c", c_source_template, "CFLAGS" },
	{ "c++", "cc", cxx_source_template, "CXXFLAGS" },
};

/* The files, in the order written: the source first (NAME.ext). */
#define FILE_COUNT 3

static const char usage_text[] =
	"usage: pexec new NAME [--lang c|c++]\n"
	"\n"
	"Writes a plugin skeleton in the new directory NAME: NAME.c, or with\n"
	"--lang c++ NAME.cc (a map that returns each item unchanged, the optional\n"
	"hooks written out but disabled), a Makefile that builds NAME.so with\n"
	"pexec's SDK, and input.json.  NAME is a C identifier; an existing NAME is\n"
	"never overwritten.\n";

static int usage_error(void)
{
	fputs("usage: pexec new NAME [--lang c|c++]\n"
	      "Try 'pexec new --help' for more information.\n", stderr);
	return 2;
}

static const struct lang *lang_named(const char *name)
{
	for (size_t i = 0; i < sizeof(langs) / sizeof(langs[0]); i++)
		if (!strcmp(langs[i].name, name))
			return &langs[i];
	return NULL;
}

static int valid_name(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > NAME_MAX_LEN || (name[0] >= '0' && name[0] <= '9'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_'))
			return 0;
	}
	return 1;
}

static int has_sdk(const char *dir)
{
	char path[PATH_MAX];

	return snprintf(path, sizeof(path), "%s/plugin.mk", dir) < (int)sizeof(path) &&
	       access(path, R_OK) == 0;
}

/* The SDK directory for the Makefile, malloc'd (NULL: out of memory).  An
 * installed pexec finds its own SDK beside it even when the prefix it was
 * built for is not where it lives (a DESTDIR staging tree, a moved prefix). */
static char *find_sdk(void)
{
	char exe[PATH_MAX], dir[PATH_MAX + 32], real[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(dir, sizeof(dir), "%s/../share/pexec/sdk", exe);
			if (has_sdk(dir) && realpath(dir, real))
				return strdup(real);
		}
	}
	if (!has_sdk(PEXEC_SDK_DIR))
		fprintf(stderr, "pexec: warning: no plugin.mk in '%s', pexec's SDK; build with "
		        "make PEXEC_SDK=DIR\n", PEXEC_SDK_DIR);
	return strdup(PEXEC_SDK_DIR);
}

/* What the placeholders of a template become. */
struct subst {
	const char *name, *sdk, *flags;
};

/* Writes `text` to `f` with @NAME@, @SDK@ and @FLAGS@ replaced; returns 0
 * or -1. */
static int expand(FILE *f, const char *text, const struct subst *sub)
{
	const char *name = sub->name, *sdk = sub->sdk;
	const char *p = text, *at;

	while ((at = strchr(p, '@'))) {
		fwrite(p, 1, (size_t)(at - p), f);
		if (!strncmp(at, "@NAME@", 6)) {
			fputs(name, f);
			p = at + 6;
		} else if (!strncmp(at, "@SDK@", 5)) {
			/* A make variable's value: '$' and '#' must be escaped. */
			for (const char *s = sdk; *s; s++) {
				if (*s == '$')
					fputc('$', f);
				else if (*s == '#')
					fputc('\\', f);
				fputc(*s, f);
			}
			p = at + 5;
		} else if (!strncmp(at, "@FLAGS@", 7)) {
			fputs(sub->flags, f);
			p = at + 7;
		} else {
			fputc('@', f);
			p = at + 1;
		}
	}
	fputs(p, f);
	return ferror(f) ? -1 : 0;
}

/* Creates `path` (which must not exist) holding the expanded `text`. */
static int write_new(const char *path, const char *text, const struct subst *sub)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	FILE *f;
	int rc;

	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -1;
	}
	rc = expand(f, text, sub);
	if (fclose(f))
		rc = -1;
	if (rc && !errno)
		errno = EIO;
	return rc;
}

/* The arguments: NAME and --lang.  Returns -1 to go on, or the exit
 * status. */
static int new_args(int argc, char **argv, const char **name, const struct lang **lang)
{
	for (int i = 1; i < argc; i++) {
		const char *value = NULL;

		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--lang")) {
			if (i + 1 == argc) {
				fprintf(stderr, "pexec new: option '--lang' needs a language (c or c++)\n");
				return usage_error();
			}
			value = argv[++i];
		} else if (!strncmp(argv[i], "--lang=", 7)) {
			value = argv[i] + 7;
		}
		if (value) {
			*lang = lang_named(value);
			if (!*lang) {
				fprintf(stderr, "pexec new: unknown language '%s' (c or c++)\n", value);
				return usage_error();
			}
			continue;
		}
		if (argv[i][0] == '-' && argv[i][1]) {
			fprintf(stderr, "pexec new: unknown option '%s'\n", argv[i]);
			return usage_error();
		}
		if (*name) {
			fprintf(stderr, "pexec new: unexpected argument '%s' (one NAME)\n", argv[i]);
			return usage_error();
		}
		*name = argv[i];
	}
	if (!*name)
		return usage_error();
	if (!valid_name(*name)) {
		fprintf(stderr, "pexec new: invalid plugin name '%s': expected a C identifier "
		        "(letters, digits and '_', not starting with a digit; at most %d)\n",
		        *name, NAME_MAX_LEN);
		return 2;
	}
	return -1;
}

/* Writes the skeleton's files into NAME/ (which exists); on failure removes
 * what it wrote.  Returns the exit status. */
static int write_skeleton(const char *name, const struct lang *lang, const char *sdk)
{
	char paths[FILE_COUNT][NAME_MAX_LEN * 2 + 16];
	const char *texts[FILE_COUNT] = { lang->source, makefile_template, input_template };
	struct subst sub = { .name = name, .sdk = sdk, .flags = lang->flags };
	size_t written = 0;

	snprintf(paths[0], sizeof(paths[0]), "%s/%s.%s", name, name, lang->ext);
	snprintf(paths[1], sizeof(paths[1]), "%s/Makefile", name);
	snprintf(paths[2], sizeof(paths[2]), "%s/input.json", name);
	for (; written < FILE_COUNT; written++) {
		if (write_new(paths[written], texts[written], &sub)) {
			fprintf(stderr, "pexec new: cannot write '%s': %s\n", paths[written],
			        strerror(errno));
			/* This one may exist, half written. */
			for (written++; written > 0;)
				unlink(paths[--written]);
			return 3;
		}
	}
	printf("pexec new: wrote %s, %s and %s\n"
	       "Build and run it:\n"
	       "  make -C %s\n"
	       "  %s --plugin %s/%s.so %s/input.json\n",
	       paths[0], paths[1], paths[2], name, program_invocation_name, name, name, name);
	return 0;
}

int cli_new(int argc, char **argv)
{
	const struct lang *lang = &langs[0];
	const char *name = NULL;
	char *sdk;
	int status = new_args(argc, argv, &name, &lang);

	if (status >= 0)
		return status;
	if (mkdir(name, 0777)) {
		if (errno == EEXIST) {
			fprintf(stderr, "pexec new: cannot create '%s': it already exists "
			        "(pexec new never overwrites)\n", name);
			return 2;
		}
		fprintf(stderr, "pexec new: cannot create directory '%s': %s\n", name,
		        strerror(errno));
		return 3;
	}
	sdk = find_sdk();
	if (!sdk)
		fprintf(stderr, "pexec new: out of memory\n");
	status = sdk ? write_skeleton(name, lang, sdk) : 3;
	if (status)
		rmdir(name);
	free(sdk);
	return status;
}
