// check_delivery's JSON scan, as the server calls it (the body handed over,
// scanned up to its terminating NUL 16 bytes at a time) and as a caller with
// only a view of the body does: the same verdict for every body, including
// a string that is cut short at the very end, raw control characters, and
// quotes and escapes at every offset of a 16-byte block.
#include "ci/webhook.h"

#include <boost/test/unit_test.hpp>

#include <map>
#include <optional>
#include <string>

using hearth::ci::check_delivery;
using hearth::ci::hmac_sha256_hex;
using hearth::ci::Rejection;
using hearth::ci::sha256_hex;

namespace {

const char* kSecret = "webhook-secret-for-tests";

struct Verdict {
  bool accepted = false;
  std::string why;     // the rejection's message
  std::string action;  // the accepted delivery's
};

std::map<std::string, std::string> headers_for(const std::string& body) {
  return {{"x-github-event", "issues"},
          {"x-github-delivery", "d-1"},
          {"x-hub-signature-256", "sha256=" + hmac_sha256_hex(kSecret, body)}};
}

Verdict as_viewed(const std::string& body) {
  Rejection why;
  auto d = check_delivery(kSecret, headers_for(body), std::string_view(body), why);
  return d ? Verdict{true, "", d->action} : Verdict{false, why.message, ""};
}

Verdict as_served(const std::string& body) {
  Rejection why;
  std::string mac = hmac_sha256_hex(kSecret, body);
  auto d = check_delivery(kSecret, headers_for(body), std::string(body), why, &mac, /*digest=*/false);
  if (!d) return Verdict{false, why.message, ""};
  BOOST_TEST(d->json == body, "the delivery's JSON is not the body as received");
  BOOST_TEST(d->digest.empty(), "the digest was computed on the loop's path");
  return Verdict{true, "", d->action};
}

void same_verdict(const std::string& body, bool accepted) {
  Verdict viewed = as_viewed(body), served = as_served(body);
  BOOST_TEST(viewed.accepted == accepted, body << ": " << viewed.why);
  BOOST_TEST(served.accepted == accepted, body << ": " << served.why);
  BOOST_TEST(served.why == viewed.why, body);
  BOOST_TEST(served.action == viewed.action, body);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(webhook)

BOOST_AUTO_TEST_CASE(a_string_cut_short_at_the_end_of_the_body_is_refused) {
  for (size_t pad = 0; pad < 40; ++pad) {
    std::string text(pad, 'x');
    same_verdict(R"({"action":")" + text, false);
    same_verdict(R"({"action":")" + text + "\\", false);
    same_verdict(R"({"action":")" + text + "\"", false);
    same_verdict(R"({"action":")" + text + "\"}", true);
  }
}

BOOST_AUTO_TEST_CASE(quotes_escapes_and_control_characters_at_every_offset_are_read_alike) {
  for (size_t at = 0; at < 40; ++at) {
    std::string before(at, 'a');
    same_verdict(R"({"action":")" + before + R"(\"q\\e\u00e9","n":1})", true);
    same_verdict(R"({"action":")" + before + "\t" + R"("})", false);  // a raw tab inside a string
    same_verdict(R"({"action":")" + before + "\x1f" + R"("})", false);
    same_verdict(R"({"action":")" + before + "\xc3\xa9" + R"("})", true);  // é, UTF-8
    same_verdict(R"({"action":")" + before + "\xc3" + R"("})", false);     // a lone lead byte
  }
  Verdict v = as_served(R"({"action":"opened","x":{"action":"no"}})");
  BOOST_TEST(v.action == "opened");
}

BOOST_AUTO_TEST_CASE(a_form_encoded_body_keeps_its_digest_of_the_body_as_sent) {
  std::string body = "payload=%7B%22action%22%3A%22opened%22%7D";
  auto headers = headers_for(body);
  headers["content-type"] = "application/x-www-form-urlencoded";
  Rejection why;
  std::string mac = hmac_sha256_hex(kSecret, body);
  auto d = check_delivery(kSecret, headers, std::string(body), why, &mac, /*digest=*/false);
  BOOST_REQUIRE_MESSAGE(d.has_value(), why.message);
  BOOST_TEST(d->json == R"({"action":"opened"})");
  BOOST_TEST(d->digest == sha256_hex(body), "the replay digest of a form body must be of the body, not its JSON");
}

BOOST_AUTO_TEST_SUITE_END()
