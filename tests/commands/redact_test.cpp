// Secrets never come out in any form a program would print them in, however
// the output is chunked.
#include <boost/test/unit_test.hpp>

#include <openssl/evp.h>

#include <random>

#include "commands/redact.h"

using namespace hearth::commands;

namespace {

const std::string kToken = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";

std::string b64(const std::string& s) {
  std::string out(4 * ((s.size() + 2) / 3), '\0');
  out.resize(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(s.data()),
                             static_cast<int>(s.size())));
  return out;
}

std::shared_ptr<SecretSet> secrets(std::initializer_list<std::string> values) {
  auto set = std::make_shared<SecretSet>();
  int i = 0;
  for (auto& v : values) BOOST_REQUIRE(set->add("S" + std::to_string(i++), v).ok());
  return set;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redact)

BOOST_AUTO_TEST_CASE(a_secret_is_hidden_as_is_and_in_its_encodings) {
  auto set = secrets({"p@ss word/with+stuff\"q"});
  std::string v = "p@ss word/with+stuff\"q";
  std::vector<std::string> leaks = {
      v,
      b64(v),
      b64("user:" + v),                    // inside a Basic auth header: another alignment
      b64("ab" + v + "tail"),
      "p%40ss%20word%2Fwith%2Bstuff%22q",  // percent-encoded
      "p%40ss%20word%2fwith%2bstuff%22q",
      R"(p@ss word/with+stuff\"q)",        // JSON-escaped
  };
  for (auto& leak : leaks) {
    std::string out = set->redact("before " + leak + " after");
    BOOST_TEST(out.find("***") != std::string::npos, out);
    BOOST_TEST(out.find(leak) == std::string::npos, out);
  }
  BOOST_TEST(set->redact("Authorization: token " + kToken) == "Authorization: token " + kToken);
}

BOOST_AUTO_TEST_CASE(short_secrets_are_refused_without_printing_them) {
  SecretSet set;
  auto s = set.add("NPM_TOKEN", "abc");
  BOOST_REQUIRE(!s.ok());
  BOOST_TEST(s.message().find("NPM_TOKEN") != std::string::npos);
  BOOST_TEST(s.message().find("abc") == std::string::npos);
  BOOST_TEST(set.empty());
}

BOOST_AUTO_TEST_CASE(a_secret_split_across_chunks_is_still_hidden) {
  auto set = secrets({kToken, "second-secret-value"});
  std::string text = "token=" + kToken + "\nagain:" + kToken + kToken + " and second-secret-value.\n" + b64("x:" + kToken);
  std::string expected = set->redact(text);
  BOOST_TEST(expected.find("ghp_") == std::string::npos);
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    StreamRedactor r(set);
    std::string out;
    for (size_t i = 0; i < text.size();) {
      size_t n = std::uniform_int_distribution<size_t>(1, 9)(rng);
      out += r.push(std::string_view(text).substr(i, n));
      i += n;
    }
    out += r.flush();
    BOOST_TEST(out == expected);
  }
}

BOOST_AUTO_TEST_CASE(the_stream_holds_back_no_more_than_a_secret_could_need) {
  auto set = secrets({"0123456789"});
  StreamRedactor r(set);
  std::string out = r.push(std::string(100, 'a'));
  BOOST_TEST(out.size() >= 100 - (set->longest() - 1));
  out += r.push("012345");
  out += r.push("6789 done");
  out += r.flush();
  BOOST_TEST(out == std::string(100, 'a') + "*** done");
}

BOOST_AUTO_TEST_CASE(binary_output_passes_through_unchanged) {
  auto set = secrets({kToken});
  std::string bin;
  for (int i = 0; i < 4096; ++i) bin += static_cast<char>(i * 7 % 256);
  StreamRedactor r(set);
  std::string out = r.push(bin);
  out += r.flush();
  BOOST_TEST(out == bin);
}

BOOST_AUTO_TEST_SUITE_END()
