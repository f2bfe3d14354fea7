#include "workflows/toml_reader.h"

#include <algorithm>
#include <tuple>

#include "workflows/suggest.h"

namespace hearth::workflows {

Location location_of(const toml::source_region& r) {
  return {static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
}

std::string placed(const std::string& path, Location l, std::string_view message) {
  return path + ":" + std::to_string(l.line) + ":" + std::to_string(l.column) + ": " + std::string(message);
}

std::string type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    default: return "a date/time";
  }
}

void TomlReader::check_keys(const toml::table& t, const std::vector<std::string>& allowed, const std::string& where,
                            bool list_known) {
  std::string known = list_known ? "; known keys: " + join(allowed) : "";
  for (auto&& [k, v] : t) {
    std::string key(k.str());
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    error(location_of(k.source()), "unknown key '" + key + "' in " + where + did_you_mean(key, allowed) + known);
  }
}

const toml::node* TomlReader::expect(const toml::table& t, const char* key, toml::node_type type, const char* what,
                                     const std::string& where) {
  const toml::node* n = t.get(key);
  if (!n) return nullptr;
  if (n->type() != type) {
    error(*n, "'" + std::string(key) + "' in " + where + " must be " + what + ", not " + type_name(*n));
    return nullptr;
  }
  return n;
}

std::optional<std::string> TomlReader::get_string(const toml::table& t, const char* key, const std::string& where) {
  auto* n = expect(t, key, toml::node_type::string, "a string", where);
  if (!n) return std::nullopt;
  return n->as_string()->get();
}

std::vector<std::string> TomlReader::string_list(const toml::node& n, const std::string& what) {
  std::vector<std::string> out;
  if (auto* s = n.as_string()) return {s->get()};
  auto* a = n.as_array();
  if (!a) {
    error(n, what + " must be a string or an array of strings, not " + type_name(n));
    return out;
  }
  for (auto& el : *a) {
    if (auto* s = el.as_string()) out.push_back(s->get());
    else error(el, what + " must hold only strings, found " + type_name(el));
  }
  return out;
}

std::vector<LoadError> TomlReader::sorted_errors() const {
  std::vector<LoadError> out = errors_;
  std::stable_sort(out.begin(), out.end(), [](const LoadError& a, const LoadError& b) {
    return std::tie(a.at.line, a.at.column) < std::tie(b.at.line, b.at.column);
  });
  return out;
}

}  // namespace hearth::workflows
