/*
 * cpp17.cpp - a fixture: the C++17 way to write a descriptor (C++17 has no
 * designated initializers).  A constexpr function fills a copy of
 * PEXEC_DESCRIPTOR_INIT, the header with every hook null, and pexec_plugin
 * is initialized from it: a constant expression, so the descriptor is
 * constant-initialized, with no static constructor.  test_cpp.c builds it
 * with sdk/plugin.mk and -std=c++17 -Wpedantic -Werror (no designated
 * initializer may slip in as an extension), and runs it.
 *
 * Items are numbers; each result is its square.  Hooks may be captureless
 * lambdas, which convert to the hooks' function pointers.
 */
#include <stdexcept>

#include <cjson/cJSON.h>

#include "pexec_plugin.h"

namespace {

int square_map(void *state, void *input, void **output, pexec_error *err) noexcept
{
	(void)state;
	try {
		const cJSON *item = static_cast<const cJSON *>(input);

		if (!cJSON_IsNumber(item))
			throw std::invalid_argument("expected a number");
		double x = cJSON_GetNumberValue(item);
		*output = cJSON_CreateNumber(x * x);
		if (!*output)
			throw std::bad_alloc();
		return 0;
	} catch (const std::exception &e) {
		pexec_error_set(err, "cpp17: %s", e.what());
		return -1;
	}
}

constexpr pexec_descriptor describe()
{
	pexec_descriptor d = PEXEC_DESCRIPTOR_INIT;

	d.name = "cpp17";
	d.version = "1.0.0";
	d.description = "fixture: the square of each number, a C++17 descriptor";
	d.map = square_map;
	d.fini = [](void *) noexcept {};
	d.output_description = "its square";
	return d;
}

} // namespace

PEXEC_PLUGIN = describe();
