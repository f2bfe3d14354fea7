// Secrets never come out in any form a program would print them in, however
// the output is chunked.
#include <boost/test/unit_test.hpp>

#include <openssl/evp.h>

#include <algorithm>
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

std::string hex(const std::string& s, const char* digits) {
  std::string out;
  for (unsigned char c : s) out += std::string{digits[c >> 4], digits[c & 15]};
  return out;
}

// `text` with a line break after every `columns` characters.
std::string wrap(const std::string& text, size_t columns, const std::string& eol = "\n") {
  std::string out;
  for (size_t i = 0; i < text.size(); i += columns) out += text.substr(i, columns) + eol;
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
  BOOST_TEST(out.size() >= 100 - (set->reach() - 1));
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

BOOST_AUTO_TEST_CASE(hex_double_base64_and_wrapped_base64_are_hidden) {
  // A fine-grained token: long enough that its base64 wraps at 64 and 76 columns.
  std::string v = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab";
  auto set = secrets({v});
  std::string inner = b64(v);
  std::vector<std::pair<std::string, std::string>> leaks = {
      {"hex", hex(v, "0123456789abcdef")},
      {"HEX", hex(v, "0123456789ABCDEF")},
      {"xxd -p", wrap(hex(v, "0123456789abcdef"), 60)},
      {"base64 | base64", b64(inner)},
      {"base64 -w0 | base64 -w0 inside a blob", b64("prefix:" + inner + ":suffix")},
      {"base64 | base64 (inner wrapped at 76)", b64(wrap(inner, 76))},
      {"openssl base64 | base64", b64(wrap(inner, 64))},
      {"base64 at 76 columns", wrap(inner, 76)},
      {"openssl base64 at 64 columns", wrap(inner, 64)},
      {"CR LF wrapped", wrap(inner, 76, "\r\n")},
      {"wrapped inside a blob", wrap(b64("user:" + v), 76)},
  };
  for (auto& [how, leak] : leaks) {
    std::string out = set->redact("before " + leak + " after");
    BOOST_TEST(out.find("***") != std::string::npos, how << ": " << out);
    BOOST_TEST(out.find(leak) == std::string::npos, how << ": " << out);
    // Nothing of the secret's encodings is left around the mask.
    BOOST_TEST(out.size() < 40u, how << ": " << out);
  }
  // Line breaks are skipped inside a form only: text around stays as it was.
  BOOST_TEST(set->redact("a\nb\r\nc") == "a\nb\r\nc");
}

BOOST_AUTO_TEST_CASE(one_list_of_forms_value_first) {
  std::string v = "p@ss word/\"x\"";
  auto forms = encoded_forms(v);
  BOOST_REQUIRE(!forms.empty());
  BOOST_TEST(forms.front() == v);
  for (auto& f : {b64(v), hex(v, "0123456789abcdef"), hex(v, "0123456789ABCDEF")})
    BOOST_TEST((std::find(forms.begin(), forms.end(), f) != forms.end()), f);
  auto set = secrets({v});
  for (auto& leak : {b64(b64(v)), b64(b64(v) + "\n"), b64("k=" + b64(v))}) {
    std::string out = set->redact("x " + leak + " y");
    BOOST_TEST(out.find(leak.substr(0, 20)) == std::string::npos, out);
  }
}

BOOST_AUTO_TEST_CASE(a_secret_split_between_stdout_and_stderr_is_hidden_in_both) {
  auto set = secrets({kToken});
  std::string half1 = kToken.substr(0, 20), half2 = kToken.substr(20);
  for (int first : {0, 1}) {
    StreamPairRedactor r(set);
    std::string out[2];
    auto take = [&](std::array<std::string, 2> got) {
      out[0] += got[0];
      out[1] += got[1];
    };
    take(r.push(first, "head " + half1));
    take(r.push(1 - first, half2 + " tail\n"));
    take(r.end(0));
    take(r.end(1));
    BOOST_TEST(out[first] == "head ***", out[first]);
    BOOST_TEST(out[1 - first] == "*** tail\n", out[1 - first]);
  }
  // Written in order, read the other way round: both pipes were ready when
  // the engine woke, and it read stderr first.
  StreamPairRedactor r(set);
  auto late = r.push(1, half2 + "\n");
  auto early = r.push(0, half1);
  BOOST_TEST(late[0] + late[1] + early[0] + early[1] == "");  // all held back: shorter than a match can reach
  // stdout ended first: its part waits for stderr's end, which completes the secret.
  auto at_end = r.end(0);
  BOOST_TEST(at_end[0] + at_end[1] == "");
  at_end = r.end(1);
  BOOST_TEST(at_end[0] == "***");
  BOOST_TEST(at_end[1] == "***\n");
}

BOOST_AUTO_TEST_CASE(the_pair_keeps_the_streams_apart_and_still_redacts_each) {
  // `gh api ... | jq`: stdout must stay stdout, byte for byte, while stderr talks.
  auto set = secrets({kToken});
  std::string json = R"({"items":[1,2,3],"next":null})";
  StreamPairRedactor r(set);
  std::string out[2];
  std::mt19937 rng(11);
  std::string rest_out = json + "\n" + kToken + "\n", rest_err = "progress 1\nprogress 2\n" + kToken + "\n";
  while (!rest_out.empty() || !rest_err.empty()) {
    int s = rest_err.empty() || (!rest_out.empty() && rng() % 2) ? 0 : 1;
    std::string& rest = s == 0 ? rest_out : rest_err;
    size_t n = std::min<size_t>(rest.size(), 1 + rng() % 7);
    auto got = r.push(s, rest.substr(0, n));
    rest.erase(0, n);
    out[0] += got[0];
    out[1] += got[1];
  }
  for (int s : {0, 1}) {
    auto got = r.end(s);
    out[0] += got[0];
    out[1] += got[1];
  }
  BOOST_TEST(out[0] == json + "\n***\n");
  BOOST_TEST(out[1] == "progress 1\nprogress 2\n***\n");
}

BOOST_AUTO_TEST_SUITE_END()
