// Private to workflows/: the getters that read a parsed toml++ document and
// collect every problem at its place. The loader's tables and the proxies'
// syntax use the same ones, so an unknown key or a wrong type reads the same
// anywhere in a workflow file. Only non-throwing toml++ calls are made here.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "workflows/loader.h"
#include "workflows/tomlpp.h"

namespace hearth::workflows {

Location location_of(const toml::source_region& r);
/// "path:line:col: message", as every error of a file reads.
std::string placed(const std::string& path, Location l, std::string_view message);
/// "a table", "an integer", ...: for "must be X, not Y" errors.
std::string type_name(const toml::node& n);

class TomlReader {
 public:
  void error(Location l, std::string msg) { errors_.push_back({l, std::move(msg)}); }
  void error(const toml::node& n, std::string msg) { error(location_of(n.source()), std::move(msg)); }

  /// An error for each key of `t` not in `allowed`: "unknown key 'x' in
  /// WHERE", with "did you mean" when one is close; `list_known` adds the
  /// whole list ("; known keys: a, b").
  void check_keys(const toml::table& t, const std::vector<std::string>& allowed, const std::string& where,
                  bool list_known = false);
  /// `t[key]` when it has `type`; else an error (unless absent) and null:
  /// "'key' in WHERE must be WHAT, not a string".
  const toml::node* expect(const toml::table& t, const char* key, toml::node_type type, const char* what,
                           const std::string& where);
  std::optional<std::string> get_string(const toml::table& t, const char* key, const std::string& where);
  /// A string or an array of strings, as a list.
  std::vector<std::string> string_list(const toml::node& n, const std::string& what);

  /// The errors so far, in file order (those at one place in the order found).
  std::vector<LoadError> sorted_errors() const;

 protected:
  std::vector<LoadError> errors_;
};

}  // namespace hearth::workflows
