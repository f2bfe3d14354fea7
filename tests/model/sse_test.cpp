// The SSE decoder against the framing cases of the official SDK test suites
// (tests/data/model-streams/sse-decoder-cases.json), fed as the
// recorded chunks, whole, and one byte at a time.
#include <fstream>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "model/sse.h"
#include "tests/support/testdata.h"

using hearth::model::sse::Event;
using hearth::model::sse::LineDecoder;
using hearth::model::sse::Parser;
using nlohmann::json;

namespace {

json cases() {
  std::ifstream in(hearth::testing::testdata_dir() / "model-streams" / "sse-decoder-cases.json");
  return json::parse(in);
}

std::string unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

json decode(const std::vector<std::string>& chunks) {
  Parser p;
  json out = json::array();
  for (const auto& c : chunks) {
    BOOST_REQUIRE(p.feed(c, [&](const Event& e) {
      out.push_back({{"event", e.event ? json(*e.event) : json(nullptr)}, {"data", e.data}});
    }));
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sse)

BOOST_AUTO_TEST_CASE(sdk_event_cases_chunked_whole_and_bytewise) {
  int n = 0;
  const json all = cases();
  for (const auto& c : all["sse_events"]) {
    std::vector<std::string> chunks;
    std::string whole;
    for (const auto& h : c["chunks_hex"]) {
      chunks.push_back(unhex(h));
      whole += chunks.back();
    }
    std::vector<std::string> bytes;
    for (char ch : whole) bytes.emplace_back(1, ch);
    BOOST_TEST_CONTEXT("case " << c["id"]) {
      BOOST_TEST(decode(chunks) == c["expect_events"]);
      BOOST_TEST(decode({whole}) == c["expect_events"]);
      BOOST_TEST(decode(bytes) == c["expect_events"]);
    }
    ++n;
  }
  BOOST_TEST(n == 10);
}

BOOST_AUTO_TEST_CASE(error_event_case_is_dispatched_with_its_payload) {
  const json all = cases();
  int n = 0;
  for (const auto& c : all["error_events"]) {
    if (!c.contains("chunks_hex")) continue;
    std::vector<std::string> chunks;
    for (const auto& h : c["chunks_hex"]) chunks.push_back(unhex(h));
    json events = decode(chunks);
    BOOST_REQUIRE(events.size() == 1u);
    BOOST_TEST(events[0]["event"] == "error");
    json data = json::parse(events[0]["data"].get<std::string>());
    BOOST_TEST(data["error"]["type"] == c["expect"]["error_type"]);
    BOOST_TEST(data["error"]["message"].get<std::string>().find(c["expect"]["message_contains"].get<std::string>()) !=
               std::string::npos);
    ++n;
  }
  BOOST_TEST(n == 1);
}

BOOST_AUTO_TEST_CASE(line_decoder_cases) {
  auto all = cases();
  for (const auto& c : all["line_decoder"]) {
    LineDecoder d;
    json lines = json::array();
    auto sink = [&](std::string_view l) { lines.push_back(std::string(l)); };
    for (const auto& chunk : c["chunks"]) BOOST_REQUIRE(d.feed(chunk.get<std::string>(), sink));
    if (c["flush"]) d.flush(sink);
    BOOST_TEST_CONTEXT("case " << c["id"]) { BOOST_TEST(lines == c["expect_lines"]); }
  }
  for (const auto& c : all["line_decoder_bytes"]) {
    LineDecoder d;
    size_t i = 0;
    json seen = json::array();
    for (const auto& h : c["chunks_hex"]) {
      json lines = json::array();
      BOOST_REQUIRE(d.feed(unhex(h), [&](std::string_view l) { lines.push_back(std::string(l)); }));
      seen.push_back(lines);
      ++i;
    }
    BOOST_TEST(seen == c["expect_lines_after_each_chunk"]);
  }
}

BOOST_AUTO_TEST_CASE(comments_ids_retry_and_bom) {
  Parser p;
  std::vector<Event> got;
  auto sink = [&](const Event& e) { got.push_back(e); };
  BOOST_REQUIRE(p.feed("\xEF\xBB", sink));
  BOOST_REQUIRE(p.feed("\xBF: keep-alive\r\nid: 7\r\nretry: 1500\r\ndata:x\r\n\r\n", sink));
  BOOST_REQUIRE(got.size() == 1u);
  BOOST_TEST(got[0].data == "x");
  BOOST_TEST(got[0].id == "7");
  BOOST_TEST(!got[0].event.has_value());
  BOOST_TEST(*p.retry_ms() == 1500);
  BOOST_TEST(!p.pending());
}

BOOST_AUTO_TEST_CASE(an_unterminated_final_event_is_not_dispatched) {
  Parser p;
  std::vector<Event> got;
  BOOST_REQUIRE(p.feed("event: message_stop\ndata: {}\n", [&](const Event& e) { got.push_back(e); }));
  BOOST_TEST(got.empty());
  BOOST_TEST(p.pending());  // the caller can tell the stream was cut
}

BOOST_AUTO_TEST_CASE(an_endless_line_is_refused) {
  Parser p;
  std::string chunk(1 << 20, 'x');
  bool ok = true;
  for (int i = 0; i < 17 && ok; ++i) ok = p.feed(chunk, [](const Event&) {});
  BOOST_TEST(!ok);
}

BOOST_AUTO_TEST_SUITE_END()
