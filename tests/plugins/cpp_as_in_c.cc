/*
 * cpp_as_in_c.cc - a fixture: a C++ plugin whose descriptor is written
 * exactly as a C plugin's is (PEXEC_PLUGIN = { PEXEC_DESCRIPTOR_HEADER,
 * .name = ..., ... }), leaving members out before, between and after the
 * ones it names.  test_cpp.c builds it with sdk/plugin.mk (g++ -std=c++20
 * -Wall -Wextra -Werror, and more) and runs it: it must be exported, load and
 * run, and build without a warning from the header.
 *
 * Items are numbers; each result is its square, or the square plus "add"
 * from --config.  Anything else fails the item through an exception, caught
 * at the boundary.
 */
#include <stdexcept>
#include <string>

#include <cjson/cJSON.h>

#include "pexec_plugin.h"

namespace {

struct State {
	double add = 0;
};

template <typename Body>
int guarded(pexec_error *err, Body &&body) noexcept
{
	try {
		body();
		return 0;
	} catch (const std::exception &e) {
		pexec_error_set(err, "cpp_as_in_c: %s", e.what());
	} catch (...) {
		pexec_error_set(err, "cpp_as_in_c: unknown exception");
	}
	return -1;
}

std::string kind_of(const cJSON *item)
{
	if (cJSON_IsString(item))
		return "a string";
	if (cJSON_IsArray(item))
		return "an array";
	if (cJSON_IsObject(item))
		return "an object";
	return "something else";
}

int square_init(const cJSON *config, void **state, pexec_error *err) noexcept
{
	return guarded(err, [&] {
		const cJSON *add = cJSON_GetObjectItemCaseSensitive(config, "add");
		State *st = new State;

		if (add && !cJSON_IsNumber(add)) {
			delete st;
			throw std::invalid_argument("config \"add\" must be a number");
		}
		st->add = add ? cJSON_GetNumberValue(add) : 0;
		*state = st;
	});
}

void square_fini(void *state) noexcept
{
	delete static_cast<State *>(state);
}

int square_map(void *state, void *input, void **output, pexec_error *err) noexcept
{
	return guarded(err, [&] {
		const State *st = static_cast<const State *>(state);
		const cJSON *item = static_cast<const cJSON *>(input);

		if (!cJSON_IsNumber(item))
			throw std::invalid_argument("expected a number, got " + kind_of(item));
		double x = cJSON_GetNumberValue(item);
		*output = cJSON_CreateNumber(x * x + st->add);
		if (!*output)
			throw std::bad_alloc();
	});
}

} // namespace

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "cpp_as_in_c",
	.version = "1.0.0",
	.description = "fixture: the square of each number, a C++ descriptor written as in C",
	.init = square_init,
	.fini = square_fini,
	.map = square_map,
	.input_description = "a number",
	.output_description = "its square",
};
