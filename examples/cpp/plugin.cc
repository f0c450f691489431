/*
 * plugin.cc - accesslog, a pexec plugin in C++: each item is one line of a
 * web server's access log in the Common Log Format, and becomes an object of
 * its fields,
 *
 *   "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /a.gif HTTP/1.0\" 200 2326"
 *   -> {"host":"127.0.0.1","ident":null,"user":"frank","time":"10/Oct/2000:13:55:36 -0700",
 *       "method":"GET","path":"/a.gif","protocol":"HTTP/1.0","status":200,"bytes":2326}
 *
 * or, with --config '{"fields": ["status", "path"]}', of the fields named, in
 * that order.
 *
 * What it shows a C++ author:
 *  - The descriptor at the end is written exactly as in C (C++20 designated
 *    initializers, members in declaration order); the header gives it C
 *    linkage, so it is exported.
 *  - The hooks are written the C++ way: a line that does not parse, or a
 *    number too big for 64 bits, throws.  No exception may reach pexec,
 *    which is C: every hook is noexcept and runs its body through guarded(),
 *    which catches everything and turns it into the item's error (or init's).
 *  - Per-worker state is a C++ object (a compiled std::regex and the chosen
 *    fields) made with new in init and deleted in fini; results are C++
 *    objects that free_value deletes.  Items arrive as cJSON strings (no
 *    deserialize hook); results are written by serialize.
 */
#include <charconv>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <cjson/cJSON.h>

#include "pexec_plugin.h"

namespace {

/* The fields of a line, in the order of the pattern's groups. */
enum Field { HOST, IDENT, USER, TIME, METHOD, PATH, PROTOCOL, STATUS, BYTES, FIELD_COUNT };

const char *const field_names[FIELD_COUNT] = {
	"host", "ident", "user", "time", "method", "path", "protocol", "status", "bytes",
};

/* libstdc++'s regex matcher recurses once per character, so a very long line
 * could overflow the worker's stack: longer lines are refused up front. */
constexpr std::size_t max_line = 8192;

struct State {
	/* host ident user [time] "method path protocol" status bytes */
	std::regex pattern{R"re(^(\S+) (\S+) (\S+) \[([^\]]+)\] )re"
	                   R"re("([A-Z]+) (\S+) ([^"]+)" (\d{3}) (\d+|-)$)re"};
	std::vector<Field> fields;  /* what a result holds, in this order */
};

struct Entry {
	std::string text[FIELD_COUNT];       /* as in the line */
	std::uint64_t status = 0;
	std::optional<std::uint64_t> bytes;  /* none for "-" */
};

/* The boundary between pexec and C++: runs `body`, and reports whatever it
 * throws as the hook's error.  Every hook is noexcept and goes through here,
 * so an exception never unwinds into pexec (were one to escape a noexcept
 * hook anyway, std::terminate would end the worker, and only that item
 * would fail). */
template <typename Body>
int guarded(pexec_error *err, Body &&body) noexcept
{
	try {
		body();
		return 0;
	} catch (const std::bad_alloc &) {
		pexec_error_set(err, "accesslog: out of memory");
	} catch (const std::exception &e) {
		pexec_error_set(err, "accesslog: %s", e.what());
	} catch (...) {
		pexec_error_set(err, "accesslog: unknown exception");
	}
	return -1;
}

Field field_named(std::string_view name)
{
	for (int f = 0; f < FIELD_COUNT; f++)
		if (name == field_names[f])
			return static_cast<Field>(f);
	throw std::invalid_argument("unknown field '" + std::string(name) +
	                            "' (host, ident, user, time, method, path, protocol, "
	                            "status, bytes)");
}

/* The fields --config names, or all of them. */
std::vector<Field> chosen_fields(const cJSON *config)
{
	std::vector<Field> fields;
	std::set<Field> seen;
	const cJSON *list = nullptr, *key;

	if (config && !cJSON_IsObject(config))
		throw std::invalid_argument("config must be an object");
	cJSON_ArrayForEach(key, config) {
		if (std::string_view(key->string) != "fields")
			throw std::invalid_argument("unknown config key '" + std::string(key->string) +
			                            "' (only \"fields\")");
		list = key;
	}
	if (!list) {
		for (int f = 0; f < FIELD_COUNT; f++)
			fields.push_back(static_cast<Field>(f));
		return fields;
	}
	if (!cJSON_IsArray(list) || !cJSON_GetArraySize(list))
		throw std::invalid_argument("config \"fields\" must be a non-empty array of names");
	cJSON_ArrayForEach(key, list) {
		if (!cJSON_IsString(key))
			throw std::invalid_argument("config \"fields\" must hold names (strings)");
		Field f = field_named(key->valuestring);
		if (!seen.insert(f).second)
			throw std::invalid_argument("field '" + std::string(key->valuestring) +
			                            "' named twice");
		fields.push_back(f);
	}
	return fields;
}

std::uint64_t to_u64(const std::string &digits, const char *what)
{
	std::uint64_t n = 0;
	auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);

	if (ec == std::errc::result_out_of_range)
		throw std::out_of_range(std::string(what) + " " + digits + " does not fit in 64 bits");
	if (ec != std::errc() || end != digits.data() + digits.size())
		throw std::invalid_argument(std::string(what) + " '" + digits + "' is not a number");
	return n;
}

/* A short, printable excerpt of a line for a message. */
std::string excerpt(const std::string &line)
{
	return line.size() <= 60 ? line : line.substr(0, 57) + "...";
}

void append_string(std::string &out, const std::string &s)
{
	static const char hex[] = "0123456789abcdef";

	out += '"';
	for (char c : s) {
		auto byte = static_cast<unsigned char>(c);

		if (c == '"' || c == '\\') {
			out += '\\';
			out += c;
		} else if (byte < 0x20) {
			out += "\\u00";
			out += hex[byte >> 4];
			out += hex[byte & 15];
		} else {
			out += c;
		}
	}
	out += '"';
}

/* ---- the hooks ---- */

int accesslog_init(const cJSON *config, void **state, pexec_error *err) noexcept
{
	return guarded(err, [&] {
		State *st = new State;

		try {
			st->fields = chosen_fields(config);
		} catch (...) {
			delete st;
			throw;
		}
		*state = st;
	});
}

void accesslog_fini(void *state) noexcept
{
	delete static_cast<State *>(state);
}

int accesslog_map(void *state, void *input, void **output, pexec_error *err) noexcept
{
	return guarded(err, [&] {
		const State &st = *static_cast<const State *>(state);
		const cJSON *item = static_cast<const cJSON *>(input);

		if (!cJSON_IsString(item))
			throw std::invalid_argument("expected a log line (a string)");
		std::string line = item->valuestring;
		if (line.size() > max_line)
			throw std::length_error("line of " + std::to_string(line.size()) +
			                        " bytes (at most " + std::to_string(max_line) + ")");
		std::smatch m;
		if (!std::regex_match(line, m, st.pattern))
			throw std::invalid_argument("not a Common Log Format line: " + excerpt(line));

		auto entry = std::make_unique<Entry>();
		for (std::size_t f = 0; f < FIELD_COUNT; f++)
			entry->text[f] = m[f + 1].str();
		entry->status = to_u64(entry->text[STATUS], "status");
		if (entry->text[BYTES] != "-")
			entry->bytes = to_u64(entry->text[BYTES], "bytes");
		*output = entry.release();
	});
}

int accesslog_serialize(void *state, const void *value, pexec_buf *out, pexec_error *err) noexcept
{
	return guarded(err, [&] {
		const State &st = *static_cast<const State *>(state);
		const Entry &e = *static_cast<const Entry *>(value);
		std::string json = "{";

		for (Field f : st.fields) {
			if (json.size() > 1)
				json += ',';
			append_string(json, field_names[f]);
			json += ':';
			if (f == STATUS)
				json += std::to_string(e.status);
			else if (f == BYTES)
				json += e.bytes ? std::to_string(*e.bytes) : "null";
			else if ((f == IDENT || f == USER) && e.text[f] == "-")
				json += "null";
			else
				append_string(json, e.text[f]);
		}
		json += '}';
		if (pexec_buf_append(out, json.data(), json.size()))
			throw std::bad_alloc();
	});
}

void accesslog_free_value(void *state, void *value) noexcept
{
	(void)state;
	delete static_cast<Entry *>(value);
}

} // namespace

PEXEC_PLUGIN = {
	PEXEC_DESCRIPTOR_HEADER,
	.name = "accesslog",
	.version = "1.0.0",
	.description = "the fields of Common Log Format lines; config {\"fields\": [names]}",
	.init = accesslog_init,
	.fini = accesslog_fini,
	.map = accesslog_map,
	.serialize = accesslog_serialize,
	.free_value = accesslog_free_value,
	.config_schema = "{\"type\": \"object\", \"additionalProperties\": false, "
	                 "\"properties\": {\"fields\": {\"type\": \"array\", \"minItems\": 1, "
	                 "\"uniqueItems\": true, \"items\": {\"enum\": [\"host\", \"ident\", "
	                 "\"user\", \"time\", \"method\", \"path\", \"protocol\", \"status\", "
	                 "\"bytes\"]}}}}",
	.input_description = "one access log line in the Common Log Format",
	.input_schema = "{\"type\": \"string\"}",
	.output_description = "the line's fields: host, ident, user, time, method, path, "
	                      "protocol, status, bytes (or those --config names)",
	.output_schema = "{\"type\": \"object\"}",
};
