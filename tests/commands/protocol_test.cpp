// The shim/broker framing: binary-safe, any chunking, hostile frames refused.
#include <boost/test/unit_test.hpp>

#include <random>

#include "commands/protocol.h"

using namespace hearth::commands;

BOOST_AUTO_TEST_SUITE(command_protocol)

BOOST_AUTO_TEST_CASE(frames_survive_any_chunking_byte_for_byte) {
  std::string binary;
  for (int i = 0; i < 300000; ++i) binary += static_cast<char>(i % 251);
  std::vector<Frame> sent = {{FrameType::request, R"({"argv":["gh","issue","view","1"]})"},
                             {FrameType::stdin_data, binary},
                             {FrameType::stdin_data, std::string("\0\0\xff", 3)},
                             {FrameType::stdin_eof, ""},
                             {FrameType::exit, R"({"code":0})"}};
  std::string wire;
  for (auto& f : sent) wire += encode_frame(f.type, f.payload);
  std::mt19937 rng(1);
  for (int round = 0; round < 20; ++round) {
    FrameReader r;
    std::vector<Frame> got;
    for (size_t i = 0; i < wire.size();) {
      size_t n = std::uniform_int_distribution<size_t>(1, 70000)(rng);
      BOOST_REQUIRE(r.push(std::string_view(wire).substr(i, n)).ok());
      while (auto f = r.next()) got.push_back(std::move(*f));
      i += n;
    }
    BOOST_REQUIRE(got.size() == sent.size());
    for (size_t i = 0; i < got.size(); ++i) {
      BOOST_TEST((got[i].type == sent[i].type));
      BOOST_TEST((got[i].payload == sent[i].payload));
    }
    BOOST_TEST(r.buffered() == 0u);
  }
}

BOOST_AUTO_TEST_CASE(an_oversized_frame_is_refused_before_it_is_buffered) {
  FrameReader r;
  std::string header = {static_cast<char>(FrameType::stdin_data), '\x7f', '\xff', '\xff', '\xff'};
  auto s = r.push(header);
  BOOST_REQUIRE(!s.ok());
  BOOST_TEST(s.message().find("over the limit") != std::string::npos);
  BOOST_TEST(!r.push(encode_frame(FrameType::stdin_eof, "")).ok(), "a failed reader stays failed");
  BOOST_TEST(!r.next().has_value());
}

BOOST_AUTO_TEST_CASE(an_unknown_frame_type_is_refused) {
  FrameReader r;
  auto s = r.push(std::string("\x09\0\0\0\0", 5));
  BOOST_REQUIRE(!s.ok());
  BOOST_TEST(s.message().find("unknown frame type 9") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_truncated_frame_waits_for_the_rest) {
  FrameReader r;
  std::string f = encode_frame(FrameType::stdout_data, "hello");
  BOOST_REQUIRE(r.push(f.substr(0, 7)).ok());
  BOOST_TEST(!r.next().has_value());
  BOOST_TEST(r.buffered() == 7u);
  BOOST_REQUIRE(r.push(f.substr(7)).ok());
  auto got = r.next();
  BOOST_REQUIRE(got.has_value());
  BOOST_TEST(got->payload == "hello");
}

// The broker bounds what it holds for a program not started yet by held().
BOOST_AUTO_TEST_CASE(held_counts_frames_until_they_are_taken) {
  FrameReader r;
  std::string two = encode_frame(FrameType::stdin_data, std::string(1000, 'a')) +
                    encode_frame(FrameType::stdin_data, std::string(500, 'b'));
  BOOST_REQUIRE(r.push(two + encode_frame(FrameType::stdin_data, "partial").substr(0, 6)).ok());
  BOOST_TEST(r.held() == 1506u);
  BOOST_REQUIRE(r.next().has_value());
  BOOST_TEST(r.held() == 506u);
  BOOST_REQUIRE(r.next().has_value());
  BOOST_TEST(r.held() == 6u);
}

BOOST_AUTO_TEST_SUITE_END()
