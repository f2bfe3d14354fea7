// Every class of workflow error gets "file:line:col: message" and nothing runs.
#include <boost/test/unit_test.hpp>

#include "ci/webhook.h"
#include "workflows/loader.h"
#include "workflows/triggers.h"

using hearth::workflows::load_workflow_text;

namespace {

// Loads `text` as "wf.toml" and returns its errors joined by newlines.
std::string errors_of(const std::string& text) {
  auto r = load_workflow_text(text, "wf.toml");
  std::string all;
  for (auto& e : r.errors) all += e + "\n";
  return all;
}

// Asserts exactly one error, at `line`:`col`, containing `needle`.
void expect_error(const std::string& text, int line, int col, const std::string& needle) {
  auto r = load_workflow_text(text, "wf.toml");
  BOOST_TEST_CONTEXT(text) {
    BOOST_REQUIRE_MESSAGE(r.errors.size() >= 1, "no error reported");
    std::string prefix = "wf.toml:" + std::to_string(line) + ":" + std::to_string(col) + ": ";
    BOOST_TEST(r.errors[0].rfind(prefix, 0) == 0, r.errors[0] << " does not start with " << prefix);
    BOOST_TEST(r.errors[0].find(needle) != std::string::npos, r.errors[0] << " lacks '" << needle << "'");
    BOOST_TEST(!r.workflow.has_value());
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(loader)

// A run's snapshot is addressed by the SHA-256 of the workflow's text, the
// digest `sha256sum` prints for the file, whichever libcrypto code the
// build links for it (its static archive's, or the shared library's): the
// long texts cross many blocks and are checked against the shared
// library's EVP digest (ci::sha256_hex).
BOOST_AUTO_TEST_CASE(a_snapshot_is_addressed_by_the_sha256_of_its_text) {
  auto r = load_workflow_text("[[steps]]\nid = \"a\"\nrun = \"true\"\n", "wf.toml");
  BOOST_REQUIRE(r.workflow.has_value());
  BOOST_TEST(r.workflow->hash == "sha256:9db96036f8f773eee5c74987794f6d6cbf766e8944adc99d55317637146a1faf");
  for (size_t size : {0, 55, 56, 63, 64, 65, 1000, 100000}) {
    std::string text = "# " + std::string(size, static_cast<char>('a' + size % 26)) + "\n[[steps]]\nid = \"a\"\nrun = \"true\"\n";
    auto loaded = load_workflow_text(text, "wf.toml");
    BOOST_REQUIRE(loaded.workflow.has_value());
    BOOST_TEST(loaded.workflow->hash == "sha256:" + hearth::ci::sha256_hex(text), "a comment of " << size << " bytes");
  }
}

BOOST_AUTO_TEST_CASE(a_valid_workflow_loads_with_every_key) {
  auto r = load_workflow_text(R"(
name = "ci"
description = "build and test"
[on]
github = ["push", "pull_request.opened"]
[inputs]
ref = { type = "string", default = "main" }
count = { type = "integer", required = true }
[env]
A = "1"
B = 2
[[steps]]
id = "build"
name = "Build it"
run = "make"
timeout = "5m"
env = { CC = "gcc" }
[[steps]]
id = "test"
needs = "build"
if = "${{ steps.build.outputs.ok == 'yes' }}"
run = "make test ${{ inputs.ref }}"
working-directory = "sub"
continue-on-error = true
timeout = 90
)", "ci.toml");
  BOOST_REQUIRE_MESSAGE(r.ok(), (r.errors.empty() ? "" : r.errors[0]));
  const auto& wf = *r.workflow;
  BOOST_TEST(wf.name == "ci");
  BOOST_TEST(wf.hash.rfind("sha256:", 0) == 0);
  BOOST_TEST(wf.hash.size() == 7u + 64u);
  BOOST_TEST(wf.on_github.size() == 2u);
  BOOST_TEST(wf.inputs["required"] == nlohmann::json::array({"count"}));
  BOOST_TEST(!wf.inputs["properties"]["count"].contains("required"));
  BOOST_TEST(wf.env.size() == 2u);
  BOOST_REQUIRE(wf.steps.size() == 2u);
  BOOST_TEST(wf.steps[0].name == "Build it");
  BOOST_TEST(wf.steps[0].timeout->count() == 300000);
  BOOST_TEST(wf.steps[1].needs == std::vector<std::string>{"build"});
  BOOST_TEST(wf.steps[1].timeout->count() == 90000);
  BOOST_TEST(wf.steps[1].continue_on_error);
  BOOST_TEST(wf.steps[1].if_expr.has_value());
  BOOST_TEST(wf.steps[1].run.find("${{") == std::string::npos);  // interpolations became variables
  BOOST_TEST(wf.steps[1].run_slots.size() == 1u);
}

BOOST_AUTO_TEST_CASE(the_name_defaults_to_the_file_stem) {
  auto r = load_workflow_text("[[steps]]\nid = \"a\"\nrun = \"true\"\n", "/x/.hearth/workflows/nightly.toml");
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r.workflow->name == "nightly");
}

BOOST_AUTO_TEST_CASE(toml_syntax_errors_name_line_and_column) {
  // An unterminated string: the newline is where the string breaks.
  expect_error("name = \"x\"\n[[steps]]\nid = \"a\nrun = \"true\"\n", 3, 8, "parsing string");
  expect_error("[[steps]]\nid = \"a\"\nrun = \"true\"\nrun = \"again\"\n", 4, 7, "cannot redefine existing string 'run'");
}

BOOST_AUTO_TEST_CASE(unknown_keys_are_rejected_with_a_suggestion) {
  expect_error("nmae = \"x\"\n[[steps]]\nid = \"a\"\nrun = \"true\"\n", 1, 1, "did you mean 'name'?");
  expect_error("[[steps]]\nid = \"a\"\nrun = \"true\"\nneeds = []\ntimout = \"1s\"\n", 5, 1,
               "unknown key 'timout' in step 'a' (did you mean 'timeout'?)");
  expect_error("[on]\ngithb = [\"push\"]\n[[steps]]\nid = \"a\"\nrun = \"true\"\n", 2, 1, "did you mean 'github'?");
}

BOOST_AUTO_TEST_CASE(wrong_types_say_what_was_expected) {
  expect_error("name = 3\n[[steps]]\nid = \"a\"\nrun = \"true\"\n", 1, 8, "'name' in the workflow must be a string, not an integer");
  expect_error("[[steps]]\nid = \"a\"\nrun = [\"true\"]\n", 3, 7, "'run' of step 'a' must be a string, not an array");
  expect_error("[[steps]]\nid = \"a\"\nrun = \"x\"\ncontinue-on-error = \"yes\"\n", 4, 21, "must be true or false");
  expect_error("[[steps]]\nid = \"a\"\nrun = \"x\"\nneeds = [1]\n", 4, 10, "must hold only strings");
  expect_error("steps = 3\n", 1, 9, "'steps' must be an array of tables");
  expect_error("[inputs]\nx = \"string\"\n[[steps]]\nid = \"a\"\nrun = \"x\"\n", 2, 5, "input 'x' must be a table");
}

BOOST_AUTO_TEST_CASE(missing_required_parts) {
  expect_error("name = \"x\"\n", 1, 1, "the workflow has no steps");
  expect_error("[[steps]]\nrun = \"true\"\n", 1, 1, "step 1 has no 'id'");
  expect_error("[[steps]]\nid = \"a\"\n", 1, 1, "step 'a' has no 'run' script");
}

BOOST_AUTO_TEST_CASE(duplicate_and_malformed_ids) {
  expect_error("[[steps]]\nid = \"a\"\nrun = \"x\"\n[[steps]]\nid = \"a\"\nrun = \"y\"\n", 5, 6,
               "duplicate step id 'a' (first defined on line 2)");
  expect_error("[[steps]]\nid = \"has space\"\nrun = \"x\"\n", 2, 6, "must start with a letter");
  expect_error("[[steps]]\nid = \"9lives\"\nrun = \"x\"\n", 2, 6, "must start with a letter");
}

BOOST_AUTO_TEST_CASE(unknown_and_cyclic_needs) {
  expect_error("[[steps]]\nid = \"triage\"\nrun = \"x\"\n[[steps]]\nid = \"label\"\nneeds = [\"triagee\"]\nrun = \"y\"\n",
               4, 1, "step 'label' needs unknown step 'triagee' (did you mean 'triage'?)");
  expect_error("[[steps]]\nid = \"a\"\nneeds = [\"a\"]\nrun = \"x\"\n", 1, 1, "step 'a' needs itself");
  auto cycle = errors_of(
      "[[steps]]\nid = \"a\"\nneeds = [\"c\"]\nrun = \"x\"\n"
      "[[steps]]\nid = \"b\"\nneeds = [\"a\"]\nrun = \"x\"\n"
      "[[steps]]\nid = \"c\"\nneeds = [\"b\"]\nrun = \"x\"\n");
  BOOST_TEST(cycle.find("cycle in 'needs': a -> c -> b -> a") != std::string::npos, cycle);
}

BOOST_AUTO_TEST_CASE(bad_expressions_are_caught_at_load) {
  expect_error("[[steps]]\nid = \"a\"\nrun = \"echo ${{ inputs.x == }}\"\n", 3, 7, "bad expression in 'run' of step 'a'");
  expect_error("[[steps]]\nid = \"a\"\nrun = \"echo ${{ inputs.x\"\n", 3, 7, "bad expression");
  expect_error("[[steps]]\nid = \"a\"\nif = \"nosuchfn()\"\nrun = \"x\"\n", 3, 6, "bad expression in 'if'");
  expect_error("[[steps]]\nid = \"a\"\nif = \"${{ true }} && ${{ false }}\"\nrun = \"x\"\n", 3, 6, "mixes ${{ }}");
  expect_error("[[steps]]\nid = \"a\"\nrun = \"echo ${{ secrets.TOKEN }}\"\n", 3, 7, "unknown context 'secrets'");
  expect_error("[[steps]]\nid = \"a\"\nrun = \"echo ${{ input.x }}\"\n", 3, 7, "did you mean 'inputs'?");
}

BOOST_AUTO_TEST_CASE(reading_a_step_requires_needing_it) {
  expect_error(
      "[[steps]]\nid = \"a\"\nrun = \"x\"\n[[steps]]\nid = \"b\"\nrun = \"echo ${{ steps.a.outputs.v }}\"\n", 6, 7,
      "reads steps.a but step 'b' does not need 'a'");
  expect_error("[[steps]]\nid = \"a\"\nrun = \"echo ${{ steps.zz.outputs.v }}\"\n", 3, 7, "unknown step 'zz'");
  // Transitive needs are enough.
  auto ok = load_workflow_text(
      "[[steps]]\nid = \"a\"\nrun = \"x\"\n[[steps]]\nid = \"b\"\nneeds = [\"a\"]\nrun = \"x\"\n"
      "[[steps]]\nid = \"c\"\nneeds = [\"b\"]\nrun = \"echo ${{ steps.a.outputs.v }}\"\n",
      "wf.toml");
  BOOST_TEST(ok.ok());
}

BOOST_AUTO_TEST_CASE(bad_durations) {
  expect_error("[[steps]]\nid = \"a\"\nrun = \"x\"\ntimeout = \"5 minutes\"\n", 4, 11, "invalid duration");
  expect_error("[[steps]]\nid = \"a\"\nrun = \"x\"\ntimeout = \"10x\"\n", 4, 11, "unknown unit 'x'");
  expect_error("[[steps]]\nid = \"a\"\nrun = \"x\"\ntimeout = -1\n", 4, 11, "must be positive");
}

BOOST_AUTO_TEST_CASE(interpolation_into_a_quoted_heredoc_is_refused) {
  expect_error("[[steps]]\nid = \"a\"\nrun = '''\ncat <<'EOF'\n${{ inputs.x }}\nEOF\n'''\n", 5, 1, "heredoc");
}

BOOST_AUTO_TEST_CASE(all_errors_are_reported_in_file_order) {
  auto r = load_workflow_text(
      "nmae = \"x\"\n[[steps]]\nid = \"a\"\nrun = \"x\"\ntimout = \"1s\"\n[[steps]]\nid = \"a\"\nrun = \"y\"\n", "wf.toml");
  BOOST_REQUIRE(r.errors.size() == 3u);
  BOOST_TEST(r.errors[0].rfind("wf.toml:1:", 0) == 0);
  BOOST_TEST(r.errors[1].rfind("wf.toml:5:", 0) == 0);
  BOOST_TEST(r.errors[2].rfind("wf.toml:7:", 0) == 0);
}

BOOST_AUTO_TEST_CASE(hostile_bytes_never_crash_the_loader) {
  std::string junk;
  unsigned seed = 12345;
  for (int round = 0; round < 300; ++round) {
    junk.clear();
    for (int i = 0; i < 200; ++i) {
      seed = seed * 1103515245u + 12345u;
      const char alphabet[] = "[]{}=\"'\n\\$ ab.#,\x01\xff";
      junk += alphabet[(seed >> 16) % (sizeof alphabet - 1)];
    }
    auto r = load_workflow_text(junk, "junk.toml");
    BOOST_TEST(!r.ok());
    BOOST_TEST(!r.errors.empty());
  }
}

BOOST_AUTO_TEST_CASE(github_triggers_are_checked_and_matched) {
  expect_error("[on]\ngithub = [\"push\", \"Issues.Opened\"]\n[[steps]]\nid = \"a\"\nrun = \"true\"\n", 2, 19,
               "'Issues.Opened' in [on] github is not a GitHub event");
  auto r = load_workflow_text("[on]\ngithub = [\"issues.opened\", \"push\"]\n[[steps]]\nid = \"a\"\nrun = \"true\"\n",
                              "wf.toml");
  BOOST_REQUIRE(r.workflow);
  using hearth::workflows::starts_on;
  BOOST_TEST(starts_on(*r.workflow, "issues", "opened"));
  BOOST_TEST(!starts_on(*r.workflow, "issues", "closed"));
  BOOST_TEST(starts_on(*r.workflow, "push", ""));
  BOOST_TEST(!starts_on(*r.workflow, "pull_request", "opened"));
  BOOST_TEST(!starts_on(*r.workflow, "issues_comment", "opened"));
}

BOOST_AUTO_TEST_CASE(a_key_value_append_of_an_interpolation_to_hearth_output_is_warned_about_on_its_line) {
  // Each spelling of the append is caught; another variable, an overwrite, a
  // line without ${{ }} and the delimiter form are not.
  auto r = load_workflow_text(R"(
[inputs]
x = { type = "string" }
[[steps]]
id = "a"
run = '''
echo "a=${{ inputs.x }}" >> "$HEARTH_OUTPUT"
echo "b=${{ inputs.x }}" >>$HEARTH_OUTPUT
echo "c=${{ inputs.x }}" >>  ${HEARTH_OUTPUT} 2>&1
echo "d=${{ inputs.x }}" >> "$HEARTH_OUTPUTS"
echo "e=${{ inputs.x }}" > "$HEARTH_OUTPUT"
echo plain >> "$HEARTH_OUTPUT"
{ echo "f<<$d"; echo "${{ inputs.x }}"; echo "$d"; } >> "$HEARTH_OUTPUT"
'''
)",
                              "wf.toml");
  BOOST_REQUIRE(r.workflow);
  std::string all;
  for (auto& w : r.warnings) all += w + "\n";
  BOOST_TEST(r.warnings.size() == 3u, all);
  for (int line : {7, 8, 9})
    BOOST_TEST(all.find("wf.toml:" + std::to_string(line) + ":") != std::string::npos, all);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(loader_sandbox)

BOOST_AUTO_TEST_CASE(the_sandbox_table_is_read_with_its_defaults) {
  auto r = load_workflow_text("[[steps]]\nid = \"a\"\nrun = \"true\"\n", "wf.toml");
  BOOST_REQUIRE(r.workflow.has_value());
  BOOST_TEST(r.workflow->sandbox.kind == "namespace");
  BOOST_TEST(r.workflow->sandbox.workspace == "repo");
  BOOST_TEST(r.workflow->sandbox.network == "none");
  auto s = load_workflow_text(
      "[sandbox]\nkind = \"local\"\nworkspace = \"empty\"\nnetwork = \"host\"\nmemory = \"512M\"\npids = 64\ncpus = 1.5\n"
      "[[steps]]\nid = \"a\"\nrun = \"true\"\n",
      "wf.toml");
  BOOST_REQUIRE(s.workflow.has_value());
  BOOST_TEST(s.workflow->sandbox.kind == "local");
  BOOST_TEST(s.workflow->sandbox.workspace == "empty");
  BOOST_TEST(s.workflow->sandbox.network == "host");
  BOOST_TEST(*s.workflow->sandbox.memory_bytes == 512ull << 20);
  BOOST_TEST(*s.workflow->sandbox.pids == 64u);
  BOOST_TEST(*s.workflow->sandbox.cpus == 1.5);
}

BOOST_AUTO_TEST_CASE(bad_sandbox_values_name_the_place) {
  expect_error("[sandbox]\nkind = \"docker\"\n[[steps]]\nid = \"a\"\nrun = \"true\"\n", 2, 8, "must be one of 'namespace', 'local'");
  expect_error("[sandbox]\nnetwork = \"all\"\n[[steps]]\nid = \"a\"\nrun = \"true\"\n", 2, 11, "not 'all'");
  expect_error("[sandbox]\nmemory = \"lots\"\n[[steps]]\nid = \"a\"\nrun = \"true\"\n", 2, 10, "must start with a number");
  expect_error("[sandbox]\npids = 0\n[[steps]]\nid = \"a\"\nrun = \"true\"\n", 2, 8, "at least 1");
  expect_error("[sandbox]\nnetwrok = \"host\"\n[[steps]]\nid = \"a\"\nrun = \"true\"\n", 2, 1, "did you mean");
}

BOOST_AUTO_TEST_CASE(a_checkout_takes_a_ref_and_only_a_checkout_does) {
  auto r = load_workflow_text("[sandbox]\nworkspace = \"checkout\"\nref = \"v1.2\"\n[[steps]]\nid = \"a\"\nrun = \"true\"\n", "wf.toml");
  BOOST_REQUIRE(r.workflow.has_value());
  BOOST_TEST(r.workflow->sandbox.workspace == "checkout");
  BOOST_TEST(r.workflow->sandbox.ref == "v1.2");
  expect_error("[sandbox]\nworkspace = \"empty\"\nref = \"main\"\n[[steps]]\nid = \"a\"\nrun = \"true\"\n", 3, 7,
               "applies to workspace = \"checkout\" only");
  expect_error("[sandbox]\nworkspace = \"checkout\"\nref = \"--upload-pack=x\"\n[[steps]]\nid = \"a\"\nrun = \"true\"\n", 3, 7,
               "must name a branch, tag or commit");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(loader_commands)

const char* kStep = "[[steps]]\nid = \"a\"\nrun = \"true\"\n";

BOOST_AUTO_TEST_CASE(a_command_and_its_grant_are_read) {
  auto r = load_workflow_text(std::string("[commands.gh]\nsecrets = [\"GH_TOKEN\"]\nenv = { GH_REPO = \"o/r\" }\n"
                                          "preset = \"gh:read-only\"\nallow = [\"label list\"]\ntimeout = \"5s\"\n") +
                                  "[[steps]]\nid = \"a\"\nrun = \"gh label list\"\ncommands = [\"gh\"]\n",
                              "wf.toml");
  BOOST_REQUIRE(r.workflow.has_value());
  auto& gh = r.workflow->commands.at("gh");
  BOOST_TEST(gh.exec == "gh");
  BOOST_TEST(gh.secrets == std::vector<std::string>{"GH_TOKEN"});
  BOOST_TEST(gh.presets == std::vector<std::string>{"gh:read-only"});
  BOOST_TEST(gh.timeout.count() == 5000);
  BOOST_TEST(r.workflow->steps[0].commands == std::vector<std::string>{"gh"});
}

BOOST_AUTO_TEST_CASE(bad_commands_and_grants_name_the_place) {
  expect_error(std::string("[commands.gh]\nsecrets = [\"GH_TOKEN\"]\n") + kStep, 1, 1, "allows nothing");
  expect_error(std::string("[commands.gh]\nallow = [\"issue \\\"view\"]\n") + kStep, 1, 1, "[commands.gh]");
  expect_error(std::string("[commands.gh]\npreset = \"gh:everything\"\n") + kStep, 1, 1, "gh:everything");
  expect_error(std::string("[commands.npm]\npreset = \"gh:read-only\"\n") + kStep, 1, 1, "is for 'gh', not 'npm'");
  expect_error(std::string("[commands.gh]\nallow = [\"x\"]\nsecrets = [\"T\"]\nenv = { T = \"v\" }\n") + kStep, 4, 13,
               "both a secret and in 'env'");
  expect_error(std::string("[commands.gh]\nallow = [\"x\"]\ntimeout = \"soon\"\n") + kStep, 3, 11, "'timeout' of [commands.gh]");
  expect_error("[commands.gh]\nallow = [\"x\"]\n[[steps]]\nid = \"a\"\nrun = \"true\"\ncommands = [\"hg\"]\n", 6, 12,
               "which no [commands.hg] table declares (did you mean 'gh'?)");
}

BOOST_AUTO_TEST_SUITE_END()
