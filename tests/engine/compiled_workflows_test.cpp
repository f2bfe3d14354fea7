// A run's workflow kept compiled in the state database: written at the
// start, read by resume; a damaged, old or foreign entry is never run: the
// resume loads the snapshot's text instead and writes the entry again.
#include <sqlite3.h>

#include <boost/test/unit_test.hpp>

#include "tests/engine/fixture.h"
#include "tests/support/workflow_toml.h"
#include "workflows/compiled_form.h"

using hearth::RunStatus;
using namespace hearth::testing;

namespace {

const std::vector<StepToml> kSteps = {
    {.id = "a", .run = "echo a >> log"},
    {.id = "b", .needs = {"a"}, .run = "bash ./check.sh && echo b >> log"},
    {.id = "c", .needs = {"b"}, .run = "echo c >> log"},
};

// Runs one statement on the state database with plain SQLite; `text`, when
// given, is bound to ?1. Returns the first column of the rows.
std::vector<std::string> sql(const std::string& db_path, const std::string& statement,
                             const std::optional<std::string>& text = std::nullopt) {
  sqlite3* db = nullptr;
  BOOST_REQUIRE(sqlite3_open(db_path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  BOOST_REQUIRE_MESSAGE(sqlite3_prepare_v2(db, statement.c_str(), -1, &st, nullptr) == SQLITE_OK, sqlite3_errmsg(db));
  if (text) sqlite3_bind_text(st, 1, text->data(), static_cast<int>(text->size()), SQLITE_TRANSIENT);
  std::vector<std::string> rows;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    rows.emplace_back(p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(st, 0))) : "");
  }
  BOOST_TEST(rc == SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

// The stored form of the repository's workflow reads back as that workflow.
void expect_entry_reads_back(TempRepo& repo, const std::string& hash = "") {
  auto wf = repo.load();
  auto forms = hash.empty() ? sql(repo.state_path(), "SELECT form FROM compiled_workflows")
                            : sql(repo.state_path(), "SELECT form FROM compiled_workflows WHERE hash = ?1", hash);
  BOOST_REQUIRE(forms.size() == 1u);
  auto back = hearth::workflows::decode_compiled(forms[0], wf.text, wf.path);
  BOOST_REQUIRE(back.has_value());
  BOOST_REQUIRE(back->steps.size() == wf.steps.size());
  for (size_t i = 0; i < wf.steps.size(); ++i) BOOST_TEST(back->steps[i].run == wf.steps[i].run);
}

// A failed run; `damage` changes the stored entry; the fix; the resume.
RunResult fail_damage_resume(TempRepo& repo, const std::function<void(const std::string& db)>& damage) {
  repo.write("check.sh", "exit 7\n");
  RunResult first = repo.run();
  BOOST_REQUIRE(first.outcome.status == RunStatus::failed);
  damage(repo.state_path());
  repo.write("check.sh", "true\n");
  return repo.resume(first.outcome.run_id);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(compiled_workflows)

BOOST_AUTO_TEST_CASE(a_run_stores_its_workflow_compiled_and_resume_uses_it) {
  TempRepo repo(workflow_toml(kSteps));
  RunResult r = fail_damage_resume(repo, [](const std::string&) {});
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  BOOST_TEST(repo.read("log") == "a\nb\nc\n");
  expect_entry_reads_back(repo);
}

BOOST_AUTO_TEST_CASE(a_damaged_entry_is_never_run_the_text_is_loaded_and_the_entry_rewritten) {
  // The same step ids, but b writes something else: its compiled form is a
  // complete, valid form, for another text.
  auto other = workflow_toml({kSteps[0], {.id = "b", .needs = {"a"}, .run = "echo WRONG >> log"}, kSteps[2]});
  // Its form as written for the repository's workflow file.
  auto other_form = [&](const std::string& db) {
    auto path = std::filesystem::path(db).parent_path().parent_path() / "workflow.toml";
    auto loaded = hearth::workflows::load_workflow_text(other, path.string());
    BOOST_REQUIRE(loaded.ok());
    return hearth::workflows::encode_compiled(*loaded.workflow).value();
  };
  std::string next = "hearth-workflow " + std::to_string(hearth::workflows::kCompiledFormVersion + 1) + "\n";
  std::string now = "hearth-workflow " + std::to_string(hearth::workflows::kCompiledFormVersion) + "\n";

  const std::vector<std::pair<std::string, std::function<void(const std::string&)>>> damages = {
      {"cut short", [](const std::string& db) { sql(db, "UPDATE compiled_workflows SET form = substr(form, 1, length(form) / 2)"); }},
      {"cut at its end", [](const std::string& db) { sql(db, "UPDATE compiled_workflows SET form = substr(form, 1, length(form) - 1)"); }},
      {"another format version",
       [&](const std::string& db) {
         sql(db, "UPDATE compiled_workflows SET form = replace(form, '" + now.substr(0, now.size() - 1) + "', '" +
                     next.substr(0, next.size() - 1) + "')");
       }},
      {"not a form", [](const std::string& db) { sql(db, "UPDATE compiled_workflows SET form = 'garbage;7:'"); }},
      {"another workflow's form",
       [&](const std::string& db) {
         sql(db, "UPDATE compiled_workflows SET form = ?1", other_form(db));
       }},
      {"deleted", [](const std::string& db) { sql(db, "DELETE FROM compiled_workflows"); }},
  };
  for (auto& [what, damage] : damages) {
    BOOST_TEST_CONTEXT(what) {
      TempRepo repo(workflow_toml(kSteps));
      RunResult r = fail_damage_resume(repo, damage);
      BOOST_TEST(r.outcome.status == RunStatus::succeeded);
      BOOST_TEST(repo.read("log") == "a\nb\nc\n");  // the snapshot's steps, a once
      expect_entry_reads_back(repo);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_workflow_reading_its_result_schema_from_a_file_is_loaded_from_its_text) {
  // The loader reads the schema file at each load; no compiled form is kept.
  TempRepo repo(workflow_toml(kSteps) + "\n[[steps]]\nid = \"ask\"\nneeds = [\"c\"]\nif = \"false\"\n"
                                        "prompt = \"say ok\"\nresult = \"schema.json\"\n");
  repo.write("schema.json", R"({"type": "object"})");
  RunResult r = fail_damage_resume(repo, [](const std::string&) {});
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  BOOST_TEST(repo.read("log") == "a\nb\nc\n");
  BOOST_TEST(sql(repo.state_path(), "SELECT form FROM compiled_workflows").empty());
}

BOOST_AUTO_TEST_CASE(resuming_with_the_current_workflow_stores_its_form_too) {
  TempRepo repo(workflow_toml(kSteps));
  repo.write("check.sh", "exit 7\n");
  RunResult first = repo.run();
  BOOST_REQUIRE(first.outcome.status == RunStatus::failed);
  // The snapshot's entry is damaged: --use-current compares against the
  // snapshot as loaded from its text, never against another workflow.
  sql(repo.state_path(), "UPDATE compiled_workflows SET form = substr(form, 1, 40)");
  auto fixed = kSteps;
  fixed[1].run = "echo b >> log";
  repo.rewrite(workflow_toml(fixed));
  ResumeOptions current;
  current.current = repo.load();
  RunResult r = repo.resume(first.outcome.run_id, current);
  BOOST_TEST(r.outcome.status == RunStatus::succeeded);
  BOOST_TEST(repo.read("log") == "a\nb\nc\n");
  BOOST_TEST(sql(repo.state_path(), "SELECT count(*) FROM compiled_workflows").at(0) == "2");
  expect_entry_reads_back(repo, current.current->hash);
}

BOOST_AUTO_TEST_SUITE_END()
