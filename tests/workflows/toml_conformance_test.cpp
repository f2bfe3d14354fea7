// parse_toml against toml-test's TOML 1.0.0 cases (toml-test/tests/files-toml-1.0.0):
// every valid document parses to the expected tagged JSON, every invalid one is
// refused with "<name>:line:col: message". Upstream toml++ bugs that our wrapper
// cannot reasonably fix are listed in kKnownFailures, each with its reason.
#include "workflows/toml_document.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/testdata.h"

using hearth::workflows::parse_toml;
using hearth::workflows::TomlJson;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// Cases toml++ 3.3.0 gets wrong and parse_toml does not work around, with why.
// The test fails if a listed case starts passing, so the list stays honest.
const std::map<std::string, std::string> kKnownFailures = {
};

fs::path suite_dir() { return hearth::testing::testdata_dir() / "toml-test" / "tests"; }

// The file's exact bytes: some cases hold control bytes or invalid UTF-8.
std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> case_list() {
  std::istringstream list(read_bytes(suite_dir() / "files-toml-1.0.0"));
  std::vector<std::string> cases;
  for (std::string line; std::getline(list, line);)
    if (line.ends_with(".toml")) cases.push_back(line);
  return cases;
}

// --- Semantic comparison of tagged values -------------------------------------
// toml-test leaves the textual form of floats and datetimes to the decoder
// ("3.0e14" vs "3e+14", ".6" vs ".600", "t" vs "T", "Z" vs "+00:00").

bool same_float(const std::string& a, const std::string& b) {
  auto value = [](const std::string& s) {
    if (s == "nan" || s == "+nan" || s == "-nan") return std::nan("");
    return std::stod(s);  // reads "inf", "-inf", exponents
  };
  double x = value(a), y = value(b);
  if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y);
  return x == y && std::signbit(x) == std::signbit(y);
}

// "1987-07-05 17:45:56.6z" -> "1987-07-05T17:45:56.6Z": separator and case,
// fraction without trailing zeros, "+00:00"/"-00:00" as "Z".
std::string normal_datetime(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (s.size() > 10 && s[4] == '-' && (s[10] == ' ' || s[10] == 'T')) s[10] = 'T';
  static const std::regex fraction(R"(\.(\d*?)0*(?=$|[Z+-]))");
  s = std::regex_replace(s, fraction, ".$1");
  static const std::regex empty_fraction(R"(\.(?=$|[Z+-]))");
  s = std::regex_replace(s, empty_fraction, "");
  static const std::regex utc(R"([+-]00:00$)");
  return std::regex_replace(s, utc, "Z");
}

bool is_tagged(const json& j) {
  return j.is_object() && j.size() == 2 && j.contains("type") && j.contains("value") && j["type"].is_string() &&
         j["value"].is_string();
}

bool same_scalar(const json& want, const json& got) {
  if (!is_tagged(got) || want["type"] != got["type"]) return false;
  const std::string type = want["type"], w = want["value"], g = got["value"];
  if (type == "float") return same_float(w, g);
  if (type.starts_with("datetime") || type.ends_with("-local")) return normal_datetime(w) == normal_datetime(g);
  return w == g;
}

bool same_document(const json& want, const json& got) {
  if (is_tagged(want)) return same_scalar(want, got);
  if (want.type() != got.type() || want.size() != got.size()) return false;
  if (want.is_array()) {
    for (size_t i = 0; i < want.size(); ++i)
      if (!same_document(want[i], got[i])) return false;
    return true;
  }
  for (auto& [k, v] : want.items())
    if (!got.contains(k) || !same_document(v, got[k])) return false;
  return true;
}

// --- Running one case ---------------------------------------------------------

struct Outcome {
  bool passed;
  std::string detail;  // why it failed
};

Outcome run_valid(const std::string& name) {
  auto toml_path = suite_dir() / name;
  auto json_path = fs::path(toml_path).replace_extension(".json");
  json want = json::parse(read_bytes(json_path));
  auto got = parse_toml(read_bytes(toml_path), name, TomlJson::tagged);
  if (!got) return {false, "refused: " + got.message()};
  if (!same_document(want, *got)) return {false, "parsed to " + got->dump() + ", expected " + want.dump()};
  return {true, ""};
}

Outcome run_invalid(const std::string& name) {
  auto got = parse_toml(read_bytes(suite_dir() / name), name, TomlJson::tagged);
  if (got) return {false, "accepted, parsed to " + got->dump()};
  static const std::regex located(R"(^.+:\d+:\d+: .+)");
  if (!got.message().starts_with(name + ":") || !std::regex_search(got.message(), located))
    return {false, "refused without a position: " + got.message()};
  return {true, ""};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(toml_conformance)

BOOST_AUTO_TEST_CASE(toml_test_1_0_0) {
  std::map<std::string, int> passed, known;
  std::set<std::string> seen;
  for (const auto& name : case_list()) {
    const bool valid = name.starts_with("valid/");
    BOOST_TEST_REQUIRE((valid || name.starts_with("invalid/")), "unexpected entry " << name);
    Outcome o = valid ? run_valid(name) : run_invalid(name);
    const std::string kind = valid ? "valid" : "invalid";
    auto listed = kKnownFailures.find(name);
    if (listed != kKnownFailures.end()) {
      seen.insert(name);
      BOOST_TEST(!o.passed, name << " passes now: remove it from kKnownFailures");
      ++known[kind];
    } else {
      BOOST_TEST(o.passed, name << ": " << o.detail);
      passed[kind] += o.passed ? 1 : 0;
    }
  }
  for (const auto& [name, why] : kKnownFailures)
    BOOST_TEST(seen.count(name) == 1u, name << " is listed in kKnownFailures but not in files-toml-1.0.0");
  BOOST_TEST(passed["valid"] + known["valid"] == 210);  // the list's size at the vendored commit
  BOOST_TEST(passed["invalid"] + known["invalid"] == 499);
  BOOST_TEST_MESSAGE("toml-test 1.0.0: valid " << passed["valid"] << " passed, " << known["valid"]
                                               << " known failures; invalid " << passed["invalid"] << " refused, "
                                               << known["invalid"] << " known failures");
}

// Every prefix of every valid case (the shapes an editor saves mid-typing):
// parse_toml either parses it or refuses it with a position; it never throws
// or crashes.
BOOST_AUTO_TEST_CASE(truncated_documents_are_refused_with_a_position) {
  size_t refused = 0, parsed = 0;
  static const std::regex located(R"(^cut:\d+:\d+: .+)");
  for (const auto& name : case_list()) {
    if (!name.starts_with("valid/")) continue;
    const std::string text = read_bytes(suite_dir() / name);
    for (size_t n = 0; n < text.size() && n < 2048; ++n) {
      auto got = parse_toml(std::string_view(text).substr(0, n), "cut", TomlJson::tagged);
      if (got) {
        ++parsed;
        continue;
      }
      ++refused;
      BOOST_TEST(std::regex_search(got.message(), located), name << " cut at " << n << ": " << got.message());
    }
  }
  BOOST_TEST_MESSAGE("prefixes of valid cases: " << parsed << " parsed, " << refused << " refused");
}

// The comparison above must be able to fail, and must accept only the
// textual differences toml-test allows.
BOOST_AUTO_TEST_CASE(semantic_comparison) {
  auto f = [](const char* v) { return json{{"type", "float"}, {"value", v}}; };
  auto dt = [](const char* v) { return json{{"type", "datetime"}, {"value", v}}; };
  BOOST_TEST(same_document(f("3.0e14"), f("3e+14")));
  BOOST_TEST(same_document(f("nan"), f("nan")));
  BOOST_TEST(!same_document(f("-0"), f("0")));
  BOOST_TEST(!same_document(f("inf"), f("-inf")));
  BOOST_TEST(!same_document(f("0.1"), f("0.10000000000000002")));
  BOOST_TEST(same_document(dt("1987-07-05 17:45:56.6z"), dt("1987-07-05T17:45:56.600Z")));
  BOOST_TEST(same_document(dt("1987-07-05T17:45:56+00:00"), dt("1987-07-05T17:45:56Z")));
  BOOST_TEST(!same_document(dt("1987-07-05T17:45:56.6Z"), dt("1987-07-05T17:45:56.06Z")));
  BOOST_TEST(!same_document(dt("1987-07-05T17:45:56+01:00"), dt("1987-07-05T17:45:56Z")));
  json s = {{"type", "string"}, {"value", "1"}};
  json i = {{"type", "integer"}, {"value", "1"}};
  BOOST_TEST(!same_document(s, i));
  BOOST_TEST(!same_document(json{{"a", s}}, json{{"a", s}, {"b", s}}));
  BOOST_TEST(!same_document(json{{"a", json::array({s})}}, json{{"a", json::array({i})}}));
  BOOST_TEST(!same_document(json{{"a", s}}, json{{"b", s}}));
}

BOOST_AUTO_TEST_CASE(plain_encoding) {
  auto got = parse_toml(R"(
    name = "triage"
    retries = 3
    ratio = 0.5
    on = true
    when = 1979-05-27T07:32:00.5-07:00
    day = 1979-05-27
    [[steps]]
    id = "a"
  )",
                        "w.toml");
  BOOST_TEST_REQUIRE(got.ok());
  json want = {{"name", "triage"},
               {"retries", 3},
               {"ratio", 0.5},
               {"on", true},
               {"when", "1979-05-27T07:32:00.500-07:00"},
               {"day", "1979-05-27"},
               {"steps", json::array({{{"id", "a"}}})}};
  BOOST_TEST(*got == want, got->dump());
}

// Code points toml++ 3.3.0's Unicode tables skip (U+3001, U+3042, U+FE50)
// where its parser asks whether they are whitespace: right after a
// line-ending backslash, and after a backslash that is no escape. The first
// is valid TOML and keeps its text; the second is refused with the place.
BOOST_AUTO_TEST_CASE(code_points_after_a_backslash_are_not_whitespace) {
  for (std::string text : {"\u3001", "\u3042", "\ufe50"}) {
    auto got = parse_toml("s = \"\"\"a \\\n  " + text + "b\"\"\"\n", "w.toml");
    BOOST_TEST_REQUIRE(got.ok(), (got.ok() ? "" : got.message()));
    BOOST_TEST((*got)["s"] == "a " + text + "b", got->dump());
    auto bad = parse_toml("s = \"\"\"a \\" + text + "\"\"\"\n", "w.toml");
    BOOST_TEST_REQUIRE(!bad.ok());
    BOOST_TEST(bad.message().find("w.toml:1:") != std::string::npos, bad.message());
  }
}

BOOST_AUTO_TEST_CASE(errors_name_source_line_and_column) {
  auto got = parse_toml("a = 1\nb = [1,\n  2,,]\n", "workflow.toml");
  BOOST_TEST_REQUIRE(!got.ok());
  BOOST_TEST(got.message().starts_with("workflow.toml:3:5: "), got.message());
  auto dup = parse_toml("a = 1\na = 2\n", "w.toml");
  BOOST_TEST_REQUIRE(!dup.ok());
  BOOST_TEST(dup.message().starts_with("w.toml:2:"), dup.message());
  BOOST_TEST(dup.message().find("redefine") != std::string::npos, dup.message());
}

BOOST_AUTO_TEST_SUITE_END()
