// parse_output_file against the GitHub runner's own cases (transcribed in
// github-actions/workflow-command-cases.json) and Hearth's additions.
#include "engine/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/cases.h"
#include "tests/support/testdata.h"
#include "util/safe_open.h"

using hearth::engine::kMaxOutputFileBytes;
using hearth::engine::kOutputFileName;
using hearth::engine::parse_output_file;
using Outputs = std::map<std::string, std::string>;

namespace {

nlohmann::json load_cases() {
  auto path = hearth::testing::testdata_dir() / "github-actions" / "workflow-command-cases.json";
  std::ifstream in(path, std::ios::binary);
  BOOST_TEST_REQUIRE(in.good(), "cannot read " << path);
  return nlohmann::json::parse(in);
}

Outputs to_outputs(const nlohmann::json& object) {
  Outputs out;
  for (auto& [k, v] : object.items()) out[k] = v.get<std::string>();
  return out;
}

// The error of a result for a failure message, or "" if it is ok.
template <class T>
std::string why(const hearth::Result<T>& r) {
  return r ? "" : r.message();
}

// The error message of parsing `text`, or "" if it parsed.
std::string error_of(std::string_view text) {
  return why(parse_output_file(text));
}

// Checks error_of() of each case's text.
void expect_errors(std::initializer_list<hearth::testing::Case> cases) {
  hearth::testing::expect_each([](const std::string& text) { return error_of(text); }, cases);
}

}  // namespace

namespace std {  // lets BOOST_TEST print maps in failure messages
inline ostream& operator<<(ostream& os, const Outputs& m) {
  os << "{";
  for (auto& [k, v] : m) os << " " << nlohmann::json(k).dump() << ": " << nlohmann::json(v).dump();
  return os << " }";
}
}  // namespace std

BOOST_AUTO_TEST_SUITE(output_file)

// actions/runner SetOutputFileCommandL0 / SetEnvFileCommandL0: GITHUB_OUTPUT
// and GITHUB_ENV share one reader, so every parse_env_file case applies.
BOOST_AUTO_TEST_CASE(parses_like_the_github_runner) {
  const auto cases = load_cases().at("parse_env_file");
  BOOST_TEST_REQUIRE(cases.size() > 0u);
  for (const auto& c : cases) {
    const std::string id = c.at("id");
    const std::string content = c.at("content");
    BOOST_TEST_CONTEXT("case " << id) {
      auto parsed = parse_output_file(content);
      if (c.contains("expect")) {
        BOOST_TEST_REQUIRE(parsed.ok(), why(parsed));
        BOOST_TEST(*parsed == to_outputs(c.at("expect")));
      } else {
        // The runner says "Matching delimiter not found" or "EOF marker
        // missing new line"; both are a heredoc whose delimiter never comes.
        BOOST_TEST_REQUIRE(!parsed.ok());
        BOOST_TEST(parsed.message().find("line 1:") == 0u, parsed.message());
        BOOST_TEST(parsed.message().find("delimiter") != std::string::npos, parsed.message());
      }
    }
  }
}

// The runner's tests write their files with a UTF-8 byte order mark.
BOOST_AUTO_TEST_CASE(runner_cases_with_a_byte_order_mark) {
  const auto all = load_cases();
  for (const auto& c : all.at("parse_env_file")) {
    if (!c.contains("expect")) continue;
    auto parsed = parse_output_file("\xEF\xBB\xBF" + c.at("content").get<std::string>());
    BOOST_TEST_REQUIRE(parsed.ok(), c.at("id") << ": " << why(parsed));
    BOOST_TEST(*parsed == to_outputs(c.at("expect")), c.at("id"));
  }
}

// actions/toolkit emit_file_command: what core.setOutput/exportVariable/saveState
// append. The toolkit's names have a space ("my out"), which the runner accepts
// but Hearth refuses (keys are read back as steps.<id>.outputs.<key>); with the
// space replaced the same text parses to the value the toolkit wrote.
// Skipped here: add_path (GITHUB_PATH is a list of lines, not key/value) and the
// delimiter-collision cases (errors raised by the writer, not the reader).
BOOST_AUTO_TEST_CASE(reads_what_the_toolkit_writes) {
  size_t checked = 0;
  const auto all = load_cases();
  for (const auto& c : all.at("emit_file_command")) {
    if (!c.contains("expect_append") || !c.contains("name")) continue;
    const std::string text = c.at("expect_append");
    const std::string name = c.at("name");
    const auto& v = c.at("value");
    const std::string value = v.is_string() ? v.get<std::string>() : v.dump();
    BOOST_TEST_CONTEXT("case " << c.at("id")) {
      std::string err = error_of(text);
      BOOST_TEST(err == "line 1: key '" + name + "' may only hold letters, digits, '_' and '-'");

      std::string renamed = text;
      renamed.replace(0, name.size(), "my_out");
      auto parsed = parse_output_file(renamed);
      BOOST_TEST_REQUIRE(parsed.ok(), why(parsed));
      BOOST_TEST(*parsed == (Outputs{{"my_out", value}}));
    }
    ++checked;
  }
  BOOST_TEST(checked == 5u);
}

// Not used: parse_stdout_command and add_mask (`::cmd::` lines on stdout),
// inputs (INPUT_<NAME> variables) and env_file_blocklist (NODE_OPTIONS is
// refused from GITHUB_ENV only; outputs have no such list).

BOOST_AUTO_TEST_CASE(crlf_line_endings_are_not_part_of_values) {
  auto parsed = parse_output_file("a=1\r\nb<<EOF\r\nx\r\n\r\ny\r\nEOF\r\n\r\nc=\r\n");
  BOOST_TEST_REQUIRE(parsed.ok(), why(parsed));
  BOOST_TEST(*parsed == (Outputs{{"a", "1"}, {"b", "x\n\ny"}, {"c", ""}}));
}

BOOST_AUTO_TEST_CASE(a_lone_carriage_return_is_kept) {
  auto parsed = parse_output_file("a=1\rb=2\n");
  BOOST_TEST_REQUIRE(parsed.ok(), why(parsed));
  BOOST_TEST(*parsed == (Outputs{{"a", "1\rb=2"}}));
}

BOOST_AUTO_TEST_CASE(empty_value) {
  auto parsed = parse_output_file("k=\n");
  BOOST_TEST_REQUIRE(parsed.ok(), why(parsed));
  BOOST_TEST(*parsed == (Outputs{{"k", ""}}));
}

BOOST_AUTO_TEST_CASE(value_keeps_equals_signs_and_heredoc_markers) {
  auto parsed = parse_output_file("url=https://x/?a=b&c=d\nshift=1<<2\n");
  BOOST_TEST_REQUIRE(parsed.ok(), why(parsed));
  BOOST_TEST(*parsed == (Outputs{{"url", "https://x/?a=b&c=d"}, {"shift", "1<<2"}}));
}

BOOST_AUTO_TEST_CASE(later_key_overrides_earlier) {
  auto parsed = parse_output_file("k=1\nother=x\nk<<E\ntwo\nlines\nE\nk=3\n");
  BOOST_TEST_REQUIRE(parsed.ok(), why(parsed));
  BOOST_TEST(*parsed == (Outputs{{"k", "3"}, {"other", "x"}}));
}

BOOST_AUTO_TEST_CASE(heredoc_value_may_hold_key_value_lines) {
  auto parsed = parse_output_file("json<<EOF\n{\"a\": 1}\nk=v\nEOF\n");
  BOOST_TEST_REQUIRE(parsed.ok(), why(parsed));
  BOOST_TEST(*parsed == (Outputs{{"json", "{\"a\": 1}\nk=v"}}));
}

BOOST_AUTO_TEST_CASE(missing_delimiter_names_the_line_it_started_on) {
  BOOST_TEST(error_of("a=1\n\nbody<<END\nx\nEN\n END\n") ==
             "line 3: the value of 'body' never ends: no line equal to its delimiter 'END' follows");
  BOOST_TEST(error_of("body<<END\nx") ==
             "line 1: the value of 'body' never ends: no line equal to its delimiter 'END' follows");
}

BOOST_AUTO_TEST_CASE(errors_name_the_line) {
  expect_errors({
      {"a=1\njust text\n", "line 2: expected key=value or key<<DELIMITER, found 'just text'"},
      {"a=1\n\n\n=v\n", "line 4: empty key"},
      {"<<EOF\nx\nEOF\n", "line 1: empty key"},
      {"a=1\r\nk<<\r\n", "line 2: empty delimiter after 'k<<'"},
      {"a.b=1\n", "line 1: key 'a.b' may only hold letters, digits, '_' and '-'"},
      {"x=1\n key=1\n", "line 2: key ' key' may only hold letters, digits, '_' and '-'"},
      {"   \n", "line 1: expected key=value or key<<DELIMITER, found '   '"},
  });
}

BOOST_AUTO_TEST_CASE(long_lines_are_cut_short_in_messages) {
  std::string err = error_of(std::string(500, 'x'));
  BOOST_TEST(err == "line 1: expected key=value or key<<DELIMITER, found '" + std::string(60, 'x') + "...'");
}

BOOST_AUTO_TEST_CASE(keys_may_hold_dashes_digits_and_underscores) {
  auto parsed = parse_output_file("pr-number_2=17\n");
  BOOST_TEST_REQUIRE(parsed.ok(), why(parsed));
  BOOST_TEST(*parsed == (Outputs{{"pr-number_2", "17"}}));
}

BOOST_AUTO_TEST_CASE(size_limit) {
  std::string at_limit = "k=" + std::string(kMaxOutputFileBytes - 2, 'v');
  BOOST_TEST(parse_output_file(at_limit).ok());
  BOOST_TEST(error_of(at_limit + "v") ==
             "output file is " + std::to_string(kMaxOutputFileBytes + 1) + " bytes; the limit is " +
                 std::to_string(kMaxOutputFileBytes));
}

// How the engine reads the file back (util/safe_open.h): from the attempt's
// directory, a regular file of its own only, never through a link.
struct AttemptDir {
  std::filesystem::path path;
  hearth::UniqueFd fd;
  AttemptDir() {
    char tmpl[] = "/tmp/hearth-attempt-XXXXXX";
    path = mkdtemp(tmpl);
    fd.reset(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  ~AttemptDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  void write(const std::string& name, const std::string& text) const { std::ofstream(path / name) << text; }
  hearth::Result<std::optional<std::string>> read(const std::string& name, size_t max = kMaxOutputFileBytes) const {
    return hearth::read_regular_beneath(fd.get(), name, max);
  }
};

BOOST_AUTO_TEST_CASE(the_file_is_read_as_a_regular_file_of_its_own) {
  AttemptDir dir;
  BOOST_TEST(dir.read(kOutputFileName).ok());
  BOOST_TEST(!dir.read(kOutputFileName)->has_value());  // none written: no outputs
  dir.write(kOutputFileName, "a=1\n");
  auto text = dir.read(kOutputFileName);
  BOOST_TEST_REQUIRE(text.ok(), why(text));
  BOOST_TEST(**text == "a=1\n");
}

BOOST_AUTO_TEST_CASE(links_fifos_directories_and_hard_links_are_refused_by_name) {
  AttemptDir dir;
  dir.write("real", "secret=1\n");
  std::filesystem::create_symlink("/proc/self/environ", dir.path / "environ");
  std::filesystem::create_symlink(dir.path / "real", dir.path / "inside");
  BOOST_TEST(::mkfifo((dir.path / "fifo").c_str(), 0600) == 0);
  std::filesystem::create_directory(dir.path / "dir");
  std::filesystem::create_hard_link(dir.path / "real", dir.path / "hard");
  BOOST_TEST(why(dir.read("environ")) == "'environ' is a symlink; it is not followed");
  BOOST_TEST(why(dir.read("inside")) == "'inside' is a symlink; it is not followed");
  BOOST_TEST(why(dir.read("fifo")) == "'fifo' is a FIFO, not a regular file");
  BOOST_TEST(why(dir.read("dir")) == "'dir' is a directory, not a regular file");
  BOOST_TEST(why(dir.read("hard")) == "'hard' has 2 hard links; only a file of its own is read");
  BOOST_TEST(why(dir.read("../etc/passwd")) == "'../etc/passwd' leads outside its directory");
  BOOST_TEST(why(dir.read("/etc/passwd")) == "'/etc/passwd' leads outside its directory");
}

BOOST_AUTO_TEST_CASE(a_file_past_the_cap_is_refused_with_the_limit) {
  AttemptDir dir;
  dir.write("big", std::string(11, 'x'));
  BOOST_TEST(why(dir.read("big", 10)) == "'big' is larger than the 10 bytes allowed");
  BOOST_TEST(dir.read("big", 11).ok());
}

BOOST_AUTO_TEST_CASE(removing_the_directory_never_follows_what_the_step_left) {
  AttemptDir outside;
  outside.write("keep", "x");
  AttemptDir dir;
  std::filesystem::create_directories(dir.path / "sub" / "deeper");
  dir.write("sub/deeper/f", "y");
  std::filesystem::create_directory_symlink(outside.path, dir.path / "sub" / "link");
  BOOST_TEST(hearth::remove_tree(dir.path.string()).ok());
  BOOST_TEST(!std::filesystem::exists(dir.path));
  BOOST_TEST(std::filesystem::exists(outside.path / "keep"));
}

BOOST_AUTO_TEST_SUITE_END()
