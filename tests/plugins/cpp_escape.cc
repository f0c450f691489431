/*
 * cpp_escape.cc - a fixture: a C++ hook that breaks the rule and lets an
 * exception out.  Its map is noexcept, as GUIDE.md asks, so the exception
 * stops at the hook (std::terminate, which aborts) instead of unwinding
 * into pexec: only the worker dies, and pexec fails that one item as it
 * fails any crash.  test_cpp.c builds and runs it.
 *
 * Items pass through unchanged, but for the string "throw".
 */
#include <cstring>
#include <stdexcept>

#include <cjson/cJSON.h>

#include "pexec_plugin.h"

namespace {

int escape_map(void *state, void *input, void **output, pexec_error *err) noexcept
{
	const cJSON *item = static_cast<const cJSON *>(input);

	(void)state;
	(void)err;
	if (cJSON_IsString(item) && !std::strcmp(item->valuestring, "throw"))
		throw std::runtime_error("escaped");  /* g++ warns: that is the point */
	*output = input;
	return 0;
}

} // namespace

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "cpp_escape",
	.version = "1.0.0",
	.description = "fixture: a noexcept map that throws on \"throw\"",
	.map = escape_map,
};
