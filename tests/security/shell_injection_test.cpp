// Interpolation attacks from the payload's side. The payload below makes bash
// print X42Y wherever it evaluates the value as arithmetic or code (bash runs
// the $( ) inside a subscript of a value it evaluates). Each attack is written
// into a real workflow file and goes through the loader; the allowed forms run
// through the real engine with real bash.
#include <boost/test/unit_test.hpp>

#include "tests/engine/fixture.h"
#include "tests/support/hearth_process.h"
#include "tests/support/workflow_toml.h"

using hearth::RunStatus;
using namespace hearth::testing;

namespace {

const std::string kPayload = "a[$(echo X$((6*7))Y 1>&2)]";
const std::string kMarker = "X42Y";

// A workflow whose step runs `line` after one harmless line, written so that
// `line` is line 7 of the file and starts at column 1.
std::string workflow_with(const std::string& line) {
  return "[inputs]\n"
         "x = { type = \"string\" }\n"
         "[[steps]]\n"
         "id = \"s\"\n"
         "run = '''\n"
         "s=abcdef; a=(1 2 3)\n" +
         line + "\n'''\n";
}

// The errors of loading `toml` from a real file at `path`.
std::vector<std::string> load_errors(const std::filesystem::path& path, const std::string& toml) {
  hearth::testing::write_file(path, toml);
  return hearth::workflows::load_workflow_file(path.string()).errors;
}

struct Refused {
  std::string line;     // as written in `run`
  std::string context;  // what the error must name
};

// Every context where bash evaluates a value, one line each.
const std::vector<Refused> kRefused = {
    {"[[ 1 -eq ${{ inputs.x }} ]]", "[[ ... -eq ... ]]"},
    {"[[ -n y && \"${{ inputs.x }}\" -gt 0 ]]", "[[ ... -gt ... ]]"},
    {"if [[ $(echo ${{ inputs.x }}) -le 1 ]]; then :; fi", "[[ ... -le ... ]]"},
    {"[ ${{ inputs.x }} -lt 3 ]", "[ ... -lt ..."},
    {"test 1 -ne \"${{ inputs.x }}\"", "test ... -ne ..."},
    {"(( n = ${{ inputs.x }} ))", "(( ))"},
    {"for (( i = 0; i < ${{ inputs.x }}; i++ )); do :; done", "(( ))"},
    {"echo $(( ${{ inputs.x }} + 1 ))", "$(( ))"},
    {"echo $[ ${{ inputs.x }} ]", "$[ ]"},
    {"let \"n = ${{ inputs.x }}\"", "'let'"},
    {"declare -i n=${{ inputs.x }}", "'declare -i'"},
    {"f() { local -i n=\"${{ inputs.x }}\"; }", "'local -i'"},
    {"typeset -ia n=\"${{ inputs.x }}\"", "'typeset -ia'"},
    {"readonly -i n=${{ inputs.x }}", "'readonly -i'"},
    {"declare -n ref=${{ inputs.x }}", "nameref"},
    {"a[${{ inputs.x }}]=1", "array subscript a[...]"},
    {"a[\"${{ inputs.x }}\"]+=1", "array subscript a[...]"},
    {"echo \"${a[${{ inputs.x }}]}\"", "array subscript ${a[...]}"},
    {"echo \"${s:${{ inputs.x }}}\"", "substring offset"},
    {"echo \"${s:1:${{ inputs.x }}}\"", "substring offset"},
    {"echo \"${@:${{ inputs.x }}}\"", "substring offset"},
    {"printf -v \"${{ inputs.x }}\" %s 1", "'printf -v'"},
    {"eval \"echo ${{ inputs.x }}\"", "'eval'"},
    {"eval \"$(echo ${{ inputs.x }})\"", "'eval'"},
    {"bash -c \"echo ${{ inputs.x }}\"", "'bash -c'"},
    {"sh -ec ${{ inputs.x }}", "'sh -c'"},
    {"/bin/bash -o pipefail -c \"${{ inputs.x }}\"", "'/bin/bash -c'"},
    {"trap \"echo ${{ inputs.x }}\" EXIT", "'trap'"},
    {"source \"${{ inputs.x }}\"", "'source'"},
    {". ${{ inputs.x }}", "'.'"},
    {"mapfile -C \"${{ inputs.x }}\" lines < /dev/null", "'mapfile -C'"},
};

// The run of `toml` with the hostile payload, or nullopt if it does not load.
std::optional<RunResult> run_if_loaded(const std::string& toml) {
  TempRepo repo(toml);
  if (!hearth::workflows::load_workflow_file((repo.root() / "workflow.toml").string()).errors.empty())
    return std::nullopt;
  return repo.run({{"x", kPayload}});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(shell_injection_security)

BOOST_AUTO_TEST_CASE(every_evaluating_context_is_refused_at_load_with_file_line_and_column) {
  TempDir dir;
  for (const Refused& r : kRefused) {
    auto path = dir.path / "attack.toml";
    auto errors = load_errors(path, workflow_with(r.line));
    size_t column = r.line.find("${{") + 1;
    std::string place = path.string() + ":7:" + std::to_string(column) + ": in 'run' of step 's': interpolation in ";
    BOOST_TEST_REQUIRE(errors.size() == 1u, r.line << ": " << errors.size() << " errors");
    BOOST_TEST(errors[0].starts_with(place), r.line << "\n  got: " << errors[0] << "\n  want: " << place);
    BOOST_TEST(errors[0].find(r.context) != std::string::npos, r.line << ": " << errors[0]);
    // The safe alternative is named.
    bool advice = errors[0].find("type = \"integer\"") != std::string::npos ||
                  errors[0].find("pass the value as data") != std::string::npos;
    BOOST_TEST(advice, r.line << ": " << errors[0]);
  }
}

// One attack per family, run with the payload: refused, so nothing runs; the
// quoted form next to it runs and prints the payload as text.
BOOST_AUTO_TEST_CASE(refused_forms_never_run_and_quoted_forms_print_the_payload_verbatim) {
  struct Family {
    std::string attack, allowed;
  };
  const std::vector<Family> families = {
      {"[[ 1 -eq ${{ inputs.x }} ]] || true", "[[ \"${{ inputs.x }}\" == 1 ]] || echo \"${{ inputs.x }}\""},
      {"let n=${{ inputs.x }} || true", "n=\"${{ inputs.x }}\"; echo \"$n\""},
      {"declare -i n=${{ inputs.x }}", "declare n=\"${{ inputs.x }}\"; echo \"$n\""},
      {"a[${{ inputs.x }}]=1", "a[0]=\"${{ inputs.x }}\"; echo \"${a[0]}\""},
      {"echo \"${s:${{ inputs.x }}}\"", "t=\"${{ inputs.x }}\"; echo \"${t:0}\""},
      {"printf -v ${{ inputs.x }} %s 1", "printf -v v '%s' \"${{ inputs.x }}\"; echo \"$v\""},
      {"eval \"echo ${{ inputs.x }}\"", "set -- \"${{ inputs.x }}\"; eval 'echo \"$1\"'"},
      {"bash -c \"echo ${{ inputs.x }}\"", "bash -c 'echo \"$1\"' _ \"${{ inputs.x }}\""},
      {"sh -c \"echo ${{ inputs.x }}\"", "sh -c 'echo \"$1\"' _ \"${{ inputs.x }}\""},
      {"trap \"echo ${{ inputs.x }}\" EXIT", "v=\"${{ inputs.x }}\"; trap 'echo \"$v\"' EXIT"},
  };
  for (const Family& f : families) {
    auto attacked = run_if_loaded(workflow_with(f.attack));
    if (attacked) {
      std::string out = attacked->output("s");
      BOOST_TEST(out.find(kMarker) == std::string::npos, f.attack << " ran the payload: " << out);
      BOOST_ERROR(f.attack << " loaded");
    }
    auto allowed = run_if_loaded(workflow_with(f.allowed));
    BOOST_TEST_REQUIRE(allowed.has_value(), f.allowed << " was refused");
    std::string out = allowed->output("s");
    BOOST_TEST(allowed->outcome.status == RunStatus::succeeded, f.allowed << ": " << out);
    BOOST_TEST(out.find(kMarker) == std::string::npos, f.allowed << ": " << out);
    BOOST_TEST(out.find(kPayload + "\n") != std::string::npos, f.allowed << ": " << out);
  }
}

BOOST_AUTO_TEST_CASE(an_integer_input_is_allowed_everywhere_and_checked_before_the_run) {
  TempRepo repo(R"TOML(
[inputs]
n = { type = "integer" }
[[steps]]
id = "s"
run = '''
[[ 1 -eq ${{ inputs.n }} ]] && echo "eq"
a[${{ inputs['n'] }}]=x; echo "sub ${a[1]}"
echo "sum $(( ${{ inputs.n }} + 1 ))"
let m=${{ inputs.n }}; echo "let $m"
'''
)TOML");
  RunResult r = repo.run({{"n", 1}});
  BOOST_TEST(r.outcome.status == RunStatus::succeeded, r.output("s"));
  BOOST_TEST(r.output("s") == "eq\nsub x\nsum 2\nlet 1\n");
  for (const nlohmann::json& bad : {nlohmann::json(kPayload), nlohmann::json("1"), nlohmann::json(1.5),
                                    nlohmann::json(1.0), nlohmann::json(1e300)}) {
    std::string err = repo.start_error({{"n", bad}});
    BOOST_TEST(err.find("input 'n'") != std::string::npos, bad.dump() << ": " << err);
  }
  // Only exactly inputs.<name> of an integer input is exempt: any other
  // expression may be a string.
  TempDir dir;
  auto errors = load_errors(dir.path / "w.toml", R"TOML([inputs]
n = { type = "integer" }
s = { type = "string", pattern = "^[0-9]+$" }
[[steps]]
id = "s"
run = "echo $(( ${{ inputs.s }} )) $(( ${{ format('{0}', inputs.n) }} ))"
)TOML");
  BOOST_TEST_REQUIRE(errors.size() == 1u);
  BOOST_TEST(errors[0].find(":6:17: in 'run' of step 's': interpolation in an arithmetic expansion") !=
                 std::string::npos,
             errors[0]);
}

BOOST_AUTO_TEST_CASE(validate_warns_where_a_value_is_written_to_the_output_file_as_key_value) {
  TempDir dir;
  auto path = dir.path / "out.toml";
  hearth::testing::write_file(path, R"TOML([inputs]
x = { type = "string" }
[[steps]]
id = "forged"
run = '''
echo "title=${{ inputs.x }}" >> "$HEARTH_OUTPUT"
'''
[[steps]]
id = "delimited"
run = '''
d="EOF_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
{ echo "title<<$d"; echo "${{ inputs.x }}"; echo "$d"; } >> "$HEARTH_OUTPUT"
'''
)TOML");
  hearth::testing::HearthProcess validate({{"validate", path.string()}, {}, dir.path});
  auto v = validate.finish();
  BOOST_TEST(v.exit_code == 0, v.err);
  BOOST_TEST(v.err.find(path.string() + ":6:1: warning: 'run' of step 'forged' writes a ${{ }} value to "
                                        "$HEARTH_OUTPUT as key=value") != std::string::npos,
             v.err);
  BOOST_TEST(v.err.find("key<<$d") != std::string::npos, v.err);
  BOOST_TEST(v.err.find("'delimited'") == std::string::npos, v.err);

  // Why: a newline in the value forges an output; the delimited form keeps it
  // one value, even when the value holds a likely delimiter line.
  TempRepo repo(hearth::testing::read_file(path));
  RunResult forged = repo.run({{"x", "hello\nadmin=true"}});
  BOOST_TEST(forged.step("forged").outputs == (nlohmann::json{{"title", "hello"}, {"admin", "true"}}));
  BOOST_TEST(forged.step("delimited").outputs == (nlohmann::json{{"title", "hello\nadmin=true"}}));
  RunResult r = repo.run({{"x", "hello\nEOF\nrole=root"}});
  BOOST_TEST(r.step("delimited").outputs == (nlohmann::json{{"title", "hello\nEOF\nrole=root"}}));
}

BOOST_AUTO_TEST_CASE(a_working_directory_from_an_input_stays_in_the_workspace_and_names_no_host_path) {
  TempRepo repo(workflow_toml(
      {
          {.id = "plant", .run = "ln -sfn / escape; ln -sfn /etc escape-etc; mkdir -p real/sub"},
          {.id = "s", .needs = {"plant"}, .run = "pwd; ls", .more = R"(working-directory = "${{ inputs.dir }}")"},
      },
      sandbox_head("local") + "[inputs]\ndir = { type = \"string\" }\n"));
  auto ok = repo.run({{"dir", "real/./sub/.."}});
  BOOST_TEST(ok.outcome.status == RunStatus::succeeded, ok.step("s").reason);
  BOOST_TEST(ok.output("s").find("sub") != std::string::npos, ok.output("s"));
  for (std::string dir : {"../../etc", "/", "/etc", "escape", "escape-etc", "real/../../..", "escape/etc"}) {
    RunResult r = repo.run({{"dir", dir}});
    const auto& s = r.step("s");
    BOOST_TEST(s.status == StepStatus::failed, dir << ": ran in " << r.output("s"));
    BOOST_TEST(r.output("s").find("passwd") == std::string::npos, dir << ": listed the host's /etc");
    BOOST_TEST(s.reason.find(repo.root().string()) == std::string::npos, dir << ": " << s.reason);
    BOOST_TEST(s.reason.find("/tmp") == std::string::npos, dir << ": " << s.reason);
    BOOST_TEST(s.reason.find(dir) != std::string::npos, dir << ": " << s.reason);
  }
}

BOOST_AUTO_TEST_SUITE_END()
