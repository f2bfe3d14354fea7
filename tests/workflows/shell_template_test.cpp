// rewrite_shell_interpolations, checked by running the rewritten scripts with
// real bash: hostile values must come out verbatim, as one word, and never run.
#include "workflows/shell_template.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "tests/support/cases.h"
#include "tests/support/files.h"

using hearth::workflows::rewrite_shell_interpolations;
using hearth::testing::TempDir;
namespace fs = std::filesystem;

namespace {

using Spans = std::vector<std::pair<size_t, size_t>>;

// The [`${{`, past `}}`) ranges of a script, as the loader finds them.
Spans spans_of(const std::string& script) {
  Spans spans;
  for (size_t b = script.find("${{"); b != std::string::npos; b = script.find("${{", b + 3)) {
    size_t e = script.find("}}", b + 3);
    BOOST_TEST_REQUIRE(e != std::string::npos);
    spans.emplace_back(b, e + 2);
    b = e;
  }
  return spans;
}

std::string rewrite(const std::string& script) {
  auto r = rewrite_shell_interpolations(script, spans_of(script));
  BOOST_TEST_REQUIRE(r.ok(), "rewriting failed: " << (r ? "" : r.message()) << "\nscript:\n" << script);
  return r->text;
}

// The error of rewriting `script`, or "" if it was accepted.
std::string error_of(const std::string& script) {
  auto r = rewrite_shell_interpolations(script, spans_of(script));
  return r ? "" : r.message();
}

// Check rewrite() and error_of() of each case's script (the error's start,
// for expect_errors_starting).
using Cases = std::initializer_list<hearth::testing::Case>;
void expect_rewrites(Cases cases) { hearth::testing::expect_each(rewrite, cases); }
void expect_errors(Cases cases) { hearth::testing::expect_each(error_of, cases); }
void expect_errors_starting(Cases cases) { hearth::testing::expect_each_prefix(error_of, cases); }

struct BashRun {
  std::string out;
  std::string err;
  int status = -1;
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `bash --noprofile --norc -c script` with HEARTH_EXPR_n = values[n-1]
// as its only variables besides PATH; stderr goes to a file in `dir`.
BashRun run_bash(const std::string& script, const std::vector<std::string>& values, const fs::path& dir) {
  std::vector<std::string> env = {"PATH=/usr/bin:/bin"};
  for (size_t i = 0; i < values.size(); ++i) env.push_back("HEARTH_EXPR_" + std::to_string(i + 1) + "=" + values[i]);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string a0 = "bash", a1 = "--noprofile", a2 = "--norc", a3 = "-c", a4 = script;
  char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data(), a4.data(), nullptr};

  int fds[2];
  BOOST_TEST_REQUIRE(pipe(fds) == 0);
  const std::string err_path = (dir / "stderr").string();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addclose(&fa, fds[1]);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, "/bin/bash", &fa, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  BashRun run;
  if (rc == 0) {
    char buf[4096];
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) run.out.append(buf, static_cast<size_t>(n));
    int status = 0;
    waitpid(pid, &status, 0);
    run.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  close(fds[0]);
  BOOST_TEST_REQUIRE(rc == 0, "posix_spawn /bin/bash failed");
  run.err = read_file(err_path);
  return run;
}

// Values that try to run `touch <marker>` from every context, or to be split,
// globbed or expanded a second time.
std::vector<std::string> hostile_values(const std::string& marker) {
  const std::string t = "touch " + marker;
  return {
      "\"; " + t + "; \"",
      "'; " + t + "; '",
      "'\"; " + t + "; \"'",
      "$(" + t + ")",
      "`" + t + "`",
      "\n" + t + "\n",
      "a;" + t,
      "a && " + t + " || " + t,
      "x' \"$(" + t + ")\" '",
      "}\"; " + t + "; echo \"${",
      "'\"${HOME}\"'$(" + t + ")",
      "EOF\n" + t + "\nEOF",
      "\tEOF\n" + t,
      "$'\\n'; " + t,
      "\\",
      "\\\"; " + t + "; \\\"",
      ")\"; " + t + "; (\"",
      "`\"; " + t + "; \"`",
      "  spaced   words * ? [a] ~ ",
      "$HOME ${HOME} $((1+1)) !! %s",
      "x[$(" + t + ")]",
      "-n",
      "",
      "multi\nline\n\n",
      "# not a comment",
      "${{ x }}",
      "caf\xC3\xA9 \xE2\x9C\x93",
  };
}

// A script with one or more `${{ v }}` and the output bash must print for a value.
struct Context {
  const char* name;
  std::string script;
  std::function<std::string(const std::string&)> expect;
};

std::vector<Context> contexts() {
  auto wrap = [](std::string before, std::string after) {
    return [=](const std::string& v) { return before + v + after; };
  };
  return {
      {"bare", "printf '[%s]' ${{ v }}", wrap("[", "]")},
      {"part of a word", "printf '[%s]' --label=${{ v }}", wrap("[--label=", "]")},
      {"assignment", "x=${{ v }}; printf '[%s]' \"$x\"", wrap("[", "]")},
      {"double quotes", "printf '[%s]' \"a ${{ v }} b\"", wrap("[a ", " b]")},
      {"escaped quotes", "printf '[%s]' \"q\\\"${{ v }}\\\"q\" \\\"", wrap("[q\"", "\"q][\"]")},
      {"apostrophe in double quotes", "printf '[%s]' \"it's ${{ v }}\"", wrap("[it's ", "]")},
      {"single quotes", "printf '[%s]' 'a ${{ v }} b'", wrap("[a ", " b]")},
      {"$'...'", "printf '[%s]' $'it\\'s\\t${{ v }}\\tb'", wrap("[it's\t", "\tb]")},
      {"$(...) in double quotes", "printf '[%s]' \"$(printf '%s.' ${{ v }})\"", wrap("[", ".]")},
      {"nested $( \"$( )\" )", "printf '[%s]' \"$(printf '%s' \"$(printf '%s.' x${{ v }})\")\"", wrap("[x", ".]")},
      {"paren in quotes inside $( )", "printf '[%s]' \"$(printf '%s.' \")\" ${{ v }})\"", wrap("[).", ".]")},
      {"case inside $( )", "printf '[%s]' \"$(case a in a) printf '%s.' ${{ v }};; esac)\"", wrap("[", ".]")},
      {"backticks", "x=`printf '%s.' ${{ v }}`; printf '[%s]' \"$x\"", wrap("[", ".]")},
      {"backticks in double quotes", "printf '[%s]' \"`printf '%s.' \\\"${{ v }}\\\"`\"", wrap("[", ".]")},
      {"nested backticks", "x=`y=\\`printf '%s.' ${{ v }}\\`; printf '%s' \"$y\"`; printf '[%s]' \"$x\"",
       wrap("[", ".]")},
      {"${x:-...}", "printf '[%s]' ${unset:-${{ v }}} \"${unset:-${{ v }}}\"",
       [](const std::string& v) { return "[" + v + "][" + v + "]"; }},
      {"heredoc", "cat <<EOF\n<${{ v }}>\n'${{ v }}' \"${{ v }}\"\nEOF\n",
       [](const std::string& v) { return "<" + v + ">\n'" + v + "' \"" + v + "\"\n"; }},
      {"${x:-...} in a heredoc", "cat <<EOF\n[${u:-${{ v }}}]\nEOF\n", wrap("[", "]\n")},
      {"heredoc <<-", "cat <<-EOF\n\t<${{ v }}>\n\tEOF\n", wrap("<", ">\n")},
      {"$( ) in a heredoc", "cat <<EOF\n$(printf '%s.' ${{ v }})\nEOF\n", wrap("", ".\n")},
      {"two heredocs on a line", "cat <<A; cat <<-'B'\n${{ v }}\nA\n\t'$HOME'\n\tB\n", wrap("", "\n'$HOME'\n")},
      {"here-string", "cat <<<${{ v }}", wrap("", "\n")},
      {"comment", "# it's ${{ v }}\nprintf '[%s]' \"${{ v }}\" # ${{ v }} \"", wrap("[", "]")},
      {"several", "printf '[%s]' \"${{ v }}\"'${{ v }}'${{ v }}",
       [](const std::string& v) { return "[" + v + v + v + "]"; }},
      {"a script using much of bash",
       "set -eu\n"
       "# Triage ${{ v }} (it's a comment)\n"
       "if [[ \"${{ v }}\" == \"${{ v }}\" ]]; then :; fi\n"
       "label=${{ v }}\n"
       "case \"$label\" in\n  (*) kind=any ;;\nesac\n"
       "n=$(( 2 + 3 ))\n"
       "arr=(a b)\n"
       "msg=$(\n  # a ) in a comment\n  printf '%s|' \"$label\" \"${#arr[@]}\" \"$n\" \"$kind\"\n)\n"
       "cat <<'JSON' | cat\n{\"raw\": \"$label\"}\nJSON\n"
       "cat <<EOF\n${msg}\nEOF\n",
       [](const std::string& v) { return "{\"raw\": \"$label\"}\n" + v + "|2|5|any|\n"; }},
  };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(shell_template)

BOOST_AUTO_TEST_CASE(header_examples) {
  expect_rewrites({
      {"echo ${{ x }}", "echo \"${HEARTH_EXPR_1}\""},
      {"echo \"a ${{ x }}\"", "echo \"a ${HEARTH_EXPR_1}\""},
      {"echo 'a ${{ x }}'", "echo 'a '\"${HEARTH_EXPR_1}\"''"},
      {"cat <<EOF\n${{ x }}\nEOF\n", "cat <<EOF\n${HEARTH_EXPR_1}\nEOF\n"},
      {"echo $(echo ${{ x }})", "echo $(echo \"${HEARTH_EXPR_1}\")"},
      {"echo \"`echo ${{ x }}`\"", "echo \"`echo \"${HEARTH_EXPR_1}\"`\""},
      {"echo $'a ${{ x }}'", "echo $'a '\"${HEARTH_EXPR_1}\"$''"},
  });
}

BOOST_AUTO_TEST_CASE(slots_are_numbered_in_order) {
  std::string script = "a ${{ one }} \"${{ two }}\" '${{ three }}'";
  auto r = rewrite_shell_interpolations(script, spans_of(script));
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST_REQUIRE(r->slots.size() == 3u);
  BOOST_TEST(r->slots[0].offset == 2u);
  BOOST_TEST(r->slots[0].variable == "HEARTH_EXPR_1");
  BOOST_TEST(r->slots[1].offset == script.find("${{ two"));
  BOOST_TEST(r->slots[1].variable == "HEARTH_EXPR_2");
  BOOST_TEST(r->slots[2].offset == script.find("${{ three"));
  BOOST_TEST(r->slots[2].variable == "HEARTH_EXPR_3");
  BOOST_TEST(r->text == "a \"${HEARTH_EXPR_1}\" \"${HEARTH_EXPR_2}\" ''\"${HEARTH_EXPR_3}\"''");
}

BOOST_AUTO_TEST_CASE(a_script_without_interpolations_is_unchanged) {
  std::string script = "echo 'it''s' \"$HOME\" <<EOF\n$(date)\nEOF\n";
  auto r = rewrite_shell_interpolations(script, {});
  BOOST_TEST_REQUIRE(r.ok());
  BOOST_TEST(r->text == script);
  BOOST_TEST(r->slots.empty());
}

// The core promise: for every context and every hostile value, bash prints the
// value verbatim and runs nothing from it.
BOOST_AUTO_TEST_CASE(hostile_values_stay_data_in_every_context) {
  TempDir tmp;
  const fs::path marker = tmp.path / "pwned";
  size_t runs = 0;
  for (const auto& ctx : contexts()) {
    const std::string script = rewrite(ctx.script);
    const size_t slots = spans_of(ctx.script).size();
    for (const auto& value : hostile_values(marker.string())) {
      BOOST_TEST_CONTEXT(ctx.name << " with value [" << value << "]\nrewritten script:\n" << script) {
        auto run = run_bash(script, std::vector<std::string>(slots, value), tmp.path);
        BOOST_TEST(run.status == 0, run.err);
        BOOST_TEST(run.out == ctx.expect(value));
        BOOST_TEST(!fs::exists(marker), "the value ran as code");
        fs::remove(marker);
        ++runs;
      }
    }
  }
  BOOST_TEST_MESSAGE("shell_template: " << runs << " bash runs with hostile values");
}

// With a value that means the same as code and as data, the rewritten script
// does what GitHub's textual substitution would: the rewriting keeps meaning.
BOOST_AUTO_TEST_CASE(plain_values_behave_like_textual_substitution) {
  TempDir tmp;
  for (const auto& ctx : contexts()) {
    std::string textual = ctx.script;
    auto spans = spans_of(textual);
    for (auto it = spans.rbegin(); it != spans.rend(); ++it) textual.replace(it->first, it->second - it->first, "plain");
    auto want = run_bash(textual, {}, tmp.path);
    auto got = run_bash(rewrite(ctx.script), std::vector<std::string>(spans.size(), "plain"), tmp.path);
    BOOST_TEST(want.status == 0, ctx.name << ": " << want.err);
    BOOST_TEST(got.out == want.out, ctx.name);
    BOOST_TEST(got.out == ctx.expect("plain"), ctx.name);
  }
}

BOOST_AUTO_TEST_CASE(quotes_that_do_not_open_a_context) {
  // Each ${{ x }} below is in bare context, whatever quote characters precede it.
  for (std::string script : {
           "echo \"it's\" ${{ x }}",
           "echo \"a\\\"b\" ${{ x }} \"c\"",
           "echo \\' ${{ x }}",
           "echo \\\" ${{ x }}",
           "# it's a comment\necho ${{ x }}",
           "echo $# ${{ x }}",
           "echo ${#x} ${{ x }}",
           "echo ${x:-'}'} ${{ x }}",
           "echo \"${x:-\"}\"}\" ${{ x }}",
           "echo $'\\'' ${{ x }}",
           "cat <<'E'\n'\nE\necho ${{ x }}",
           "cat <<E\n\"\nE\necho ${{ x }}",
           "echo $(( 1 + (2) )) ${{ x }}",
           "echo $( (echo a) ) ${{ x }}",
           "echo `echo \\`echo a\\`` ${{ x }}",
       }) {
    std::string text = rewrite(script);
    std::string bare = "\"${HEARTH_EXPR_1}\"";
    BOOST_TEST(text.find(bare) != std::string::npos, "not bare in:\n" << script << "\n->\n" << text);
  }
  // `#` inside a word starts no comment: the ' after it opens a quote.
  BOOST_TEST(rewrite("echo a#b'c ${{ x }}'") == "echo a#b'c '\"${HEARTH_EXPR_1}\"''");
}

BOOST_AUTO_TEST_CASE(quoted_heredoc_is_an_error_with_line_and_column) {
  std::string err = error_of("echo start\ncat <<'EOF'\nhello ${{ x }}\nEOF\n");
  BOOST_TEST(err.starts_with("line 3, column 7: interpolation inside the quoted heredoc started on line 2 (<<'EOF')"),
             err);
  for (std::string op : {"<<\"EOF\"", "<<\\EOF", "<<E\"O\"F", "<<-'EOF'", "<< 'EOF'"}) {
    std::string e = error_of("cat " + op + "\n\t${{ x }}\n\tEOF\nEOF\n");
    BOOST_TEST(e.starts_with("line 2, column 2: interpolation inside the quoted heredoc started on line 1"),
               op << ": " << e);
  }
  // The second of two heredocs on a line is quoted.
  std::string two = error_of("cat <<A <<'B'\n${{ x }}\nA\n${{ y }}\nB\n");
  BOOST_TEST(two.starts_with("line 4, column 1: interpolation inside the quoted heredoc started on line 1"), two);
}

BOOST_AUTO_TEST_CASE(interpolation_in_a_heredoc_delimiter_is_an_error) {
  BOOST_TEST(error_of("cat <<${{ x }}\nbody\n") ==
             "line 1, column 7: interpolation in a heredoc delimiter: the delimiter must be literal text");
  BOOST_TEST(error_of("cat <<'E${{ x }}'\nbody\n").starts_with("line 1, column 9: interpolation in a heredoc delimiter"));
}

BOOST_AUTO_TEST_CASE(heredoc_bodies_end_at_their_own_delimiter) {
  // "EOF " and " EOF" are body lines; the body ends at "EOF" only.
  BOOST_TEST(rewrite("cat <<EOF\nEOF \n EOF\n${{ x }}\nEOF\necho ${{ y }}\n") ==
             "cat <<EOF\nEOF \n EOF\n${HEARTH_EXPR_1}\nEOF\necho \"${HEARTH_EXPR_2}\"\n");
  // A heredoc inside $( ) starts after the newline inside it.
  BOOST_TEST(rewrite("x=$(cat <<EOF\n'${{ x }}'\nEOF\n)\necho '${{ y }}'") ==
             "x=$(cat <<EOF\n'${HEARTH_EXPR_1}'\nEOF\n)\necho ''\"${HEARTH_EXPR_2}\"''");
  // The body starts after the line ends, even when a quoted string spans lines.
  BOOST_TEST(rewrite("cat <<EOF; echo \"a\nb\" ${{ x }}\n${{ y }}\nEOF\n") ==
             "cat <<EOF; echo \"a\nb\" \"${HEARTH_EXPR_1}\"\n${HEARTH_EXPR_2}\nEOF\n");
  BOOST_TEST(error_of("cat <<EOF\n${{ x }}\n") ==
             "line 1, column 5: the heredoc <<EOF never ends: no line reads exactly 'EOF'");
  BOOST_TEST(error_of("x=$(cat <<EOF)\n").starts_with("line 1, column 9: heredoc <<EOF has no body"));
}

BOOST_AUTO_TEST_CASE(arithmetic_contexts_are_refused) {
  for (std::string script : {
           "echo $(( ${{ x }} + 1 ))",
           "(( n = ${{ x }} ))",
           "for ((i = 0; i < ${{ x }}; i++)); do :; done",
           "echo $[ ${{ x }} ]",
           "echo ${arr[${{ x }}]}",
           "echo $(( $(echo ${{ x }}) ))",
           "echo $(( `echo ${{ x }}` ))",
       }) {
    std::string err = error_of(script);
    BOOST_TEST(err.find("bash evaluates the value there as an arithmetic expression") != std::string::npos,
               script << ": " << err);
  }
  // Why: bash evaluates an index in the value itself.
  TempDir tmp;
  auto run = run_bash("echo $(( HEARTH_EXPR_1 ))", {"a[$(touch " + (tmp.path / "ran").string() + ")]"}, tmp.path);
  BOOST_TEST(run.status == 0, run.err);
  BOOST_TEST(fs::exists(tmp.path / "ran"));
}

BOOST_AUTO_TEST_CASE(commands_that_evaluate_an_argument_are_refused_at_the_interpolation) {
  BOOST_TEST(error_of("x=1\n  let n=${{ x }}").starts_with("line 2, column 9: interpolation in 'let'"));
  BOOST_TEST(error_of("[[ $(cat <<EOF\n${{ x }}\nEOF\n) -eq 1 ]]").starts_with("line 2, column 1: interpolation in an "
                                                                               "arithmetic comparison [[ ... -eq"));
  BOOST_TEST(error_of("echo `eval ${{ x }}`").starts_with("line 1, column 12: interpolation in an argument of 'eval'"));
  BOOST_TEST(error_of("eval \"`echo ${{ x }}`\"").starts_with("line 1, column 13: interpolation in an argument of 'eval'"));
  BOOST_TEST(error_of("FOO=1 command eval ${{ x }}").find("'eval'") != std::string::npos);
  BOOST_TEST(error_of("! [[ ${{ x }} -ge 2 ]]").find("-ge") != std::string::npos);
  BOOST_TEST(error_of("[[ -v a[${{ x }}] ]]").find("array subscript a[...]") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(plain_uses_of_a_value_next_to_those_commands_are_not_refused) {
  for (std::string script : {
           "echo \"let ${{ x }}\"",
           "echo eval ${{ x }} -eq 1",
           "git commit -m \"${{ x }}\"",
           "[[ \"${{ x }}\" == a* ]] && [[ -n ${{ x }} ]]",
           "[ -n \"${{ x }}\" ] || test \"${{ x }}\" = y",
           "a[0]=\"${{ x }}\"; a+=(\"${{ x }}\")",
           "declare -a v=(\"${{ x }}\"); export V=${{ x }}; f() { local v=${{ x }}; }",
           "bash -c 'echo \"$1\"' _ ${{ x }}; sh -c 'echo \"$@\"' sh \"${{ x }}\"",
           "trap 'echo done' EXIT; echo ${{ x }}",
           "printf '%s %d\\n' \"${{ x }}\" 1; printf -v out '%s' \"${{ x }}\"",
           "echo ${s:-${{ x }}} \"${s:+${{ x }}}\" ${s:=${{ x }}} ${s#${{ x }}}",
           "if [[ ${{ x }} == y ]]; then let n=1; fi",
           "case ${{ x }} in a) let n=1;; esac",
           "echo ${{ x }} # let ${{ x }}",
           "source ./lib.sh ${{ x }}; . lib.sh \"${{ x }}\"",
           "eval 'echo \"$1\"'; echo \"${{ x }}\"",
       }) {
    BOOST_TEST(error_of(script) == "", script);
  }
}

BOOST_AUTO_TEST_CASE(integer_values_are_allowed_in_every_context) {
  std::string script = "echo $(( ${{ n }} + 1 )) ${a[${{ n }}]}; let m=${{ n }}; eval ${{ x }}";
  auto spans = spans_of(script);
  BOOST_TEST(rewrite_shell_interpolations(script, spans, {true, true, true, false}).message().find("'eval'") !=
             std::string::npos);
  BOOST_TEST(rewrite_shell_interpolations(script, spans, {true, true, true, true}).ok());
}

BOOST_AUTO_TEST_CASE(characters_that_would_combine_with_the_reference) {
  expect_errors_starting({
      {"echo \\${{ x }}", "line 1, column 6: a backslash right before ${{"},
      {"echo \"\\${{ x }}\"", "line 1, column 7: a backslash right before ${{"},
      {"echo `echo \\${{ x }}`", "line 1, column 12: a backslash right before ${{"},
      {"cat <<E\n\\${{ x }}\nE\n", "line 2, column 1: a backslash right before ${{"},
      {"echo $${{ x }}", "line 1, column 6: a '$' right before ${{"},
      {"echo \"$${{ x }}\"", "line 1, column 7: a '$' right before ${{"},
  });
  // Inside single quotes neither is special.
  TempDir tmp;
  auto run = run_bash(rewrite("printf '%s' '\\${{ x }}$${{ x }}'"), {"v", "w"}, tmp.path);
  BOOST_TEST(run.out == "\\v$w");
}

BOOST_AUTO_TEST_CASE(unterminated_constructs_are_errors) {
  expect_errors({
      {"echo \"${{ x }}", "line 1, column 6: unterminated double quote"},
      {"echo ok\necho '${{ x }}", "line 2, column 6: unterminated single quote"},
      {"echo $(echo ${{ x }}", "line 1, column 6: unterminated $( or ("},
      {"echo `echo ${{ x }}", "line 1, column 6: unterminated backtick"},
      {"echo ${x:-${{ x }}", "line 1, column 6: unterminated ${"},
      {"echo $'${{ x }}", "line 1, column 6: unterminated $'"},
      {"cat <<EOF\n$(echo ${{ x }}\nEOF\n)\n", "line 2, column 1: unterminated $( or ("},
  });
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_refused_not_a_crash) {
  std::string script;
  for (int i = 0; i < 5000; ++i) script += "$(";
  script += "${{ x }}";
  for (int i = 0; i < 5000; ++i) script += ")";
  BOOST_TEST(error_of(script).find("nesting deeper than") != std::string::npos);
  std::string mixed = "echo ";
  for (int i = 0; i < 200; ++i) mixed += "\"$(${x:-";
  BOOST_TEST(error_of(mixed + "${{ x }}").find("nesting deeper than") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(malformed_spans_are_reported_as_bugs) {
  std::string script = "echo ${{ a }} ${{ b }}";
  auto r1 = rewrite_shell_interpolations(script, {{14, 22}, {5, 13}});
  BOOST_TEST_REQUIRE(!r1.ok());
  BOOST_TEST(r1.message().starts_with("bug: interpolation 2"));
  auto r2 = rewrite_shell_interpolations(script, {{4, 13}});
  BOOST_TEST_REQUIRE(!r2.ok());
  BOOST_TEST(r2.message().starts_with("bug: interpolation 1"));
  auto r3 = rewrite_shell_interpolations(script, {{5, 40}});
  BOOST_TEST(!r3.ok());
}

BOOST_AUTO_TEST_SUITE_END()
