// toml++ behind parse_toml(). Every toml++ exception is caught in this file.
#include "workflows/toml_document.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>

#include "workflows/tomlpp.h"

namespace hearth::workflows {
namespace {

std::string two_digits(int v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02d", v);
  return buf;
}

// RFC 3339 full-date: "1979-05-27".
std::string format_date(const toml::date& d) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", int{d.year}, int{d.month}, int{d.day});
  return buf;
}

// RFC 3339 partial-time: "07:32:00", with a fraction only when there is one,
// in millisecond, microsecond or nanosecond steps (".600", ".000123").
std::string format_time(const toml::time& t) {
  std::string s = two_digits(t.hour) + ":" + two_digits(t.minute) + ":" + two_digits(t.second);
  if (t.nanosecond == 0) return s;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%09u", static_cast<unsigned>(t.nanosecond));
  std::string fraction = buf;
  while (fraction.size() > 3 && fraction.ends_with("000")) fraction.resize(fraction.size() - 3);
  return s + "." + fraction;
}

// "Z" for UTC, else "+hh:mm" / "-hh:mm".
std::string format_offset(const toml::time_offset& o) {
  if (o.minutes == 0) return "Z";
  int m = o.minutes < 0 ? -o.minutes : o.minutes;
  return std::string(o.minutes < 0 ? "-" : "+") + two_digits(m / 60) + ":" + two_digits(m % 60);
}

std::string format_date_time(const toml::date_time& dt) {
  std::string s = format_date(dt.date) + "T" + format_time(dt.time);
  if (dt.offset) s += format_offset(*dt.offset);
  return s;
}

// Shortest text that reads back as the same double; "inf", "-inf", "nan".
std::string format_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;  // 32 bytes always hold the shortest form of a double
  return std::string(buf, end);
}

nlohmann::json tagged(const char* type, std::string value) {
  return {{"type", type}, {"value", std::move(value)}};
}

// A scalar in toml-test's tagged encoding.
nlohmann::json tagged_scalar(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return tagged("string", n.as_string()->get());
    case toml::node_type::integer: return tagged("integer", std::to_string(n.as_integer()->get()));
    case toml::node_type::floating_point: return tagged("float", format_float(n.as_floating_point()->get()));
    case toml::node_type::boolean: return tagged("bool", n.as_boolean()->get() ? "true" : "false");
    case toml::node_type::date: return tagged("date-local", format_date(n.as_date()->get()));
    case toml::node_type::time: return tagged("time-local", format_time(n.as_time()->get()));
    case toml::node_type::date_time: {
      const auto& dt = n.as_date_time()->get();
      return tagged(dt.offset ? "datetime" : "datetime-local", format_date_time(dt));
    }
    default: return nullptr;  // tables and arrays never reach here
  }
}

// A scalar as plain JSON. Non-finite floats stay doubles in the json value
// (nlohmann::json writes them as null when dumped).
nlohmann::json plain_scalar(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return n.as_string()->get();
    case toml::node_type::integer: return n.as_integer()->get();
    case toml::node_type::floating_point: return n.as_floating_point()->get();
    case toml::node_type::boolean: return n.as_boolean()->get();
    default: return tagged_scalar(n).at("value");  // dates and times as their RFC 3339 text
  }
}

// Recursion is bounded: toml++ refuses nesting deeper than TOML_MAX_NESTED_VALUES.
nlohmann::json to_json(const toml::node& n, TomlJson encoding) {
  if (auto* t = n.as_table()) {
    auto obj = nlohmann::json::object();
    for (const auto& [k, v] : *t) obj[std::string(k.str())] = to_json(v, encoding);
    return obj;
  }
  if (auto* a = n.as_array()) {
    auto arr = nlohmann::json::array();
    for (const auto& v : *a) arr.push_back(to_json(v, encoding));
    return arr;
  }
  return encoding == TomlJson::tagged ? tagged_scalar(n) : plain_scalar(n);
}

std::string at(const std::string& source_name, size_t line, size_t column, std::string_view message) {
  return source_name + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + std::string(message);
}

}  // namespace

Result<nlohmann::json> parse_toml(std::string_view text, const std::string& source_name, TomlJson encoding) {
  try {
    toml::table doc = toml::parse(text, source_name);
    return to_json(doc, encoding);
  } catch (const toml::parse_error& e) {
    return Error{at(source_name, e.source().begin.line, e.source().begin.column, e.description())};
  } catch (const std::exception& e) {
    return Error{at(source_name, 1, 1, std::string("cannot parse: ") + e.what())};
  }
}

}  // namespace hearth::workflows
