// The job summary's Mermaid blocks (ci/actions_mermaid.cpp), read back by a
// strict grammar (mermaid_check.h): every step a node, every `needs` an
// edge, colours by status, a Gantt task per step that ran, and step names
// written by an attacker (quotes, brackets, fences, HTML, directives, Gantt
// keywords, broken UTF-8) kept inside their label.
#include <string>

#include <boost/test/unit_test.hpp>

#include "ci/actions_mermaid.h"
#include "ci/actions_summary.h"
#include "tests/ci/mermaid_check.h"

namespace ci = hearth::ci;
namespace mermaid = hearth::testing::mermaid;
using hearth::RunStatus;
using hearth::engine::StepRecord;

namespace {

// `status` as the store holds it (a word it does not know reads as failed).
StepRecord step(const std::string& id, const std::string& status, std::optional<int64_t> start = std::nullopt,
                std::optional<int64_t> end = std::nullopt) {
  StepRecord s;
  s.id = id;
  s.status = hearth::engine::step_status_from(status);
  s.started_at = start;
  s.finished_at = end;
  return s;
}

const std::string kHostile =
    "x\"]:::succeeded\n  evil[\"<img src=x onerror=alert(1)>\n```\n# Heading [link](https://evil.example) "
    "%%{init: {\"securityLevel\": \"loose\"}}%% `code` a|b;c:d #35; \xff\xfe end";

// The job summary of `r` as Markdown (into `md`) and as read back: it must
// read without errors and hold one flowchart.
mermaid::Diagrams read_summary(const ci::RunReport& r, std::string& md) {
  md = ci::render_summary({r});
  auto d = mermaid::read(md);
  BOOST_TEST(d.errors.empty(), md);
  BOOST_REQUIRE_EQUAL(d.flowcharts.size(), 1u);
  return d;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(actions_mermaid)

BOOST_AUTO_TEST_CASE(every_step_is_a_node_every_need_an_edge_coloured_by_status) {
  ci::RunReport r;
  r.run.id = "r1";
  r.run.workflow = "build";
  r.run.status = RunStatus::failed;
  r.steps = {step("fetch", "succeeded", 1000, 1800), step("build", "failed", 1800, 5200),
             step("lint", "succeeded", 1800, 1800), step("publish", "skipped"), step("odd", "pending")};
  r.shapes = {{"fetch", {"Fetch sources", {}}},
              {"build", {"", {"fetch"}}},
              {"lint", {"", {"fetch"}}},
              {"publish", {"", {"build", "lint", "gone"}}}};
  std::string md;
  auto d = read_summary(r, md);
  auto& f = d.flowcharts[0];
  BOOST_TEST(f.label.size() == 5u);
  BOOST_TEST(f.label["s0"] == "Fetch sources - succeeded");
  BOOST_TEST(f.label["s1"] == "build - failed");
  BOOST_TEST(f.label["s4"] == "odd - pending");
  BOOST_TEST(f.cls["s0"] == "succeeded");
  BOOST_TEST(f.cls["s1"] == "failed");
  BOOST_TEST(f.cls["s3"] == "skipped");
  BOOST_TEST(f.cls["s4"] == "pending");
  std::set<std::pair<std::string, std::string>> edges = {{"s0", "s1"}, {"s0", "s2"}, {"s1", "s3"}, {"s2", "s3"}};
  BOOST_TEST((f.edges == edges));  // the need on a step that is not in the run is left out
  // Gantt: the three steps that ran, tagged by status, in Unix ms; a zero-length one drawn 1 ms long.
  BOOST_REQUIRE_EQUAL(d.gantts.size(), 1u);
  auto& g = d.gantts[0];
  BOOST_REQUIRE_EQUAL(g.size(), 3u);
  BOOST_TEST(g[0].name == "1. Fetch sources");
  BOOST_TEST(g[0].tag == "done");
  BOOST_TEST(g[0].start == 1000);
  BOOST_TEST(g[0].end == 1800);
  BOOST_TEST(g[1].tag == "crit");
  BOOST_TEST(g[1].end == 5200);
  BOOST_TEST(g[2].end == 1801);
}

BOOST_AUTO_TEST_CASE(hostile_step_names_stay_inside_their_labels) {
  std::vector<StepRecord> steps = {step("a", "succeeded", 10, 20), step("b", "running", 20)};
  std::map<std::string, ci::StepShape> shapes = {{"a", {kHostile, {}}}, {"b", {"Section evil: title x", {"a"}}}};
  ci::RunReport r;
  r.run.status = RunStatus::running;
  r.steps = steps;
  r.shapes = shapes;
  std::string md;
  auto d = read_summary(r, md);
  auto& f = d.flowcharts[0];
  BOOST_TEST(f.label.size() == 2u);
  // The label reads back as written (broken UTF-8 as U+FFFD), and nothing else became a node or an edge.
  std::string expected = kHostile;
  expected.replace(expected.find("\xff\xfe"), 2, "\xef\xbf\xbd\xef\xbf\xbd");
  BOOST_TEST(f.label["s0"] == expected + " - succeeded");
  BOOST_TEST(f.edges.size() == 1u);
  // No raw character of the name that means something to Markdown, HTML or Mermaid.
  for (const char* raw : {"<img", "```\n#", "%%{", "](https", "evil[", "`code`"})
    BOOST_TEST(md.find(raw) == std::string::npos, "raw " << raw << " in " << md);
  // Gantt keywords at the start of a name stay a task's text.
  BOOST_REQUIRE_EQUAL(d.gantts.size(), 1u);
  BOOST_REQUIRE_EQUAL(d.gantts[0].size(), 2u);
  BOOST_TEST(d.gantts[0][1].name == "2. Section evil_ title x");
  BOOST_TEST(d.gantts[0][1].tag == "active");
}

BOOST_AUTO_TEST_CASE(labels_encode_everything_but_the_safe_characters) {
  BOOST_TEST(ci::mermaid_label("a-b_c.d 9") == "a-b_c.d 9");
  BOOST_TEST(ci::mermaid_label("\"<é>") == "#34;#60;#233;#62;");
  BOOST_TEST(ci::mermaid_label("🔥") == "#128293;");
  BOOST_TEST(ci::mermaid_label("\xc0\xaf") == "#65533;#65533;");  // overlong '/'
  BOOST_TEST(ci::mermaid_label("\xed\xa0\x80") == "#65533;#65533;#65533;");  // a surrogate
}

BOOST_AUTO_TEST_CASE(no_gantt_when_no_step_ran) {
  BOOST_TEST(ci::mermaid_gantt({step("a", "skipped")}, {}) == "");
  auto d = mermaid::read(ci::mermaid_flowchart({step("a", "skipped")}, {}));
  BOOST_TEST(d.errors.empty());
  BOOST_TEST(d.flowcharts.at(0).label["s0"] == "a - skipped");
}

BOOST_AUTO_TEST_SUITE_END()
