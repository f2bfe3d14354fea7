// Files in the workspace that the engine reads for a step: a skill's SKILL.md
// (.agents/skills is in the workspace, which a step writes) and the replay
// cassette a workflow names. An earlier step replaces them with a link to a
// host file or to the engine's own /proc/self/environ; the engine must refuse
// them, naming the file, and read nothing through the link.
#include <boost/test/unit_test.hpp>

#include "tests/engine/fixture.h"

namespace {

using namespace hearth::testing;

// A step that plants `plant`, then an agent step (`agent` is its skill or
// prompt line) under the cassette `cassette`.
std::string workflow(const std::string& cassette, const std::string& plant, const std::string& agent) {
  return "[model]\nname = \"replay:" + cassette + "\"\n\n[[steps]]\nid = \"plant\"\nrun = '''\n" + plant +
         "\n'''\n\n[[steps]]\nid = \"use\"\nneeds = [\"plant\"]\n" + agent + "\n";
}

// The step that used the planted file failed with a reason that names `file`
// and says it is a symlink, and nothing of `target`'s content is anywhere
// the engine keeps or reports.
void expect_refused(const TempRepo& repo, const RunResult& r, const std::string& file, const std::string& target) {
  BOOST_TEST(r.outcome.status == RunStatus::failed);
  BOOST_TEST(r.step("plant").status == StepStatus::succeeded);
  const std::string& reason = r.step("use").reason;
  BOOST_TEST(has(reason, file), reason);
  BOOST_TEST(has(reason, "symlink"), reason);
  // The first line of the target: what a read would have carried along.
  std::string head = read_file(target);
  head = head.substr(0, std::min(head.find_first_of(std::string("\n\0", 2)), size_t{24}));
  BOOST_REQUIRE(head.size() >= 4);
  BOOST_TEST(!has(reason, head), reason);
  repo.expect_secret_absent(r, head);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(workspace_reads_security)

BOOST_AUTO_TEST_CASE(a_skill_file_linked_to_a_host_file_is_refused_naming_it) {
  TempRepo repo(workflow("tape.jsonl", "mkdir -p .agents/skills/leak && ln -sf /etc/shadow .agents/skills/leak/SKILL.md",
                         "skill = \"leak\""));
  auto r = repo.run();
  expect_refused(repo, r, ".agents/skills/leak/SKILL.md", "/etc/shadow");
}

BOOST_AUTO_TEST_CASE(a_skill_file_linked_to_the_engines_environment_is_refused_naming_it) {
  TempRepo repo(workflow("tape.jsonl",
                         "mkdir -p .agents/skills/leak && ln -sf /proc/self/environ .agents/skills/leak/skill.md",
                         "skill = \"leak\""));
  auto r = repo.run();
  expect_refused(repo, r, ".agents/skills/leak/skill.md", "/proc/self/environ");
}

BOOST_AUTO_TEST_CASE(a_cassette_linked_to_the_engines_environment_is_refused_naming_it) {
  TempRepo repo(workflow("tapes/run.jsonl", "mkdir -p tapes && ln -sf /proc/self/environ tapes/run.jsonl",
                         "prompt = \"say hello\""));
  auto r = repo.run();
  expect_refused(repo, r, "tapes/run.jsonl", "/proc/self/environ");
}

BOOST_AUTO_TEST_CASE(a_cassette_under_a_linked_folder_is_refused_naming_it) {
  TempRepo repo(workflow("tapes/shadow", "ln -sfn /etc tapes", "prompt = \"say hello\""));
  auto r = repo.run();
  expect_refused(repo, r, "tapes/shadow", "/etc/shadow");
}

BOOST_AUTO_TEST_SUITE_END()
