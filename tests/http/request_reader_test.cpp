// http::RequestReader on byte streams as clients send them: pipelined
// requests handed over one at a time, the caps on head and body, token
// field names, upgrades, hooks that refuse, input that ends mid-request.
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "http/request_reader.h"

using hearth::http::ReaderLimits;
using hearth::http::Refusal;
using hearth::http::Request;
using hearth::http::RequestReader;
using Next = RequestReader::Next;

namespace {

struct Recorder : RequestReader::Hooks {
  int begun = 0, continues = 0;
  std::string body_seen;
  int refuse_head = 0;  // non-zero: on_head refuses with this status
  void on_request_begin() override { ++begun; }
  Refusal on_head(Request&) override { return {refuse_head, refuse_head ? "refused at the head" : ""}; }
  void on_continue() override { ++continues; }
  Refusal on_body(std::string_view chunk) override {
    body_seen.append(chunk);
    return {};
  }
};

struct Reading {
  Recorder hooks;
  RequestReader reader;
  explicit Reading(ReaderLimits limits = {}) : reader(limits, hooks) {}
  Next feed(const std::string& bytes) {
    reader.append(bytes.data(), bytes.size());
    return reader.next();
  }
};

ReaderLimits small() {
  ReaderLimits l;
  l.max_header_bytes = 128;
  l.max_body_bytes = 16;
  return l;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(request_reader)

BOOST_AUTO_TEST_CASE(pipelined_requests_are_handed_over_one_at_a_time) {
  Reading r;
  std::string two = "POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                    "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  BOOST_TEST((r.feed(two) == Next::request));
  BOOST_TEST(r.reader.request().method == "POST");
  BOOST_TEST(r.reader.request().target == "/a?x=1");
  BOOST_TEST(r.reader.request().body == "abc");
  BOOST_TEST(r.reader.keep_alive());
  BOOST_TEST(r.reader.pending_bytes() > 0u, "the second request waits for the first's answer");
  BOOST_TEST((r.reader.next() == Next::request));
  BOOST_TEST(r.reader.request().method == "GET");
  BOOST_TEST(r.reader.request().target == "/b");
  BOOST_TEST((r.reader.next() == Next::more));
  BOOST_TEST(r.hooks.begun == 2);
}

BOOST_AUTO_TEST_CASE(a_request_split_anywhere_reads_the_same) {
  std::string whole = "POST /p HTTP/1.1\r\nX-One: 1\r\nX-One: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
  for (size_t cut = 1; cut < whole.size(); ++cut) {
    Reading r;
    Next first = r.feed(whole.substr(0, cut));
    Next second = first == Next::request ? first : r.feed(whole.substr(cut));
    BOOST_TEST((second == Next::request), "cut at " << cut);
    BOOST_TEST(r.reader.request().body == "abcde");
    BOOST_TEST(r.hooks.body_seen == "abcde");
    BOOST_TEST(r.reader.request().headers.size() == 3u, "repeats are kept as sent");
  }
}

BOOST_AUTO_TEST_CASE(a_head_beyond_the_cap_is_refused_with_431) {
  Reading r(small());
  BOOST_TEST((r.feed("GET / HTTP/1.1\r\nX-Big: " + std::string(200, 'a') + "\r\n\r\n") == Next::failed));
  BOOST_TEST(r.reader.error_status() == 431);
  BOOST_TEST(r.reader.error_message() == "the request line and headers exceed 128 bytes");
}

BOOST_AUTO_TEST_CASE(a_body_announced_beyond_the_cap_is_refused_before_it_is_read) {
  Reading r(small());
  BOOST_TEST((r.feed("POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n") == Next::failed));
  BOOST_TEST(r.reader.error_status() == 413);
  BOOST_TEST(r.hooks.body_seen.empty());
  Reading chunked(small());
  BOOST_TEST((chunked.feed("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n" + std::string(17, 'x')) ==
              Next::failed));
  BOOST_TEST(chunked.reader.error_status() == 413);
}

BOOST_AUTO_TEST_CASE(a_field_name_with_a_space_is_refused_only_when_tokens_are_asked_for) {
  std::string req = "GET / HTTP/1.1\r\nAuthorization : x\r\n\r\n";
  ReaderLimits strict;
  strict.token_field_names = true;
  Reading s(strict);
  BOOST_TEST((s.feed(req) == Next::failed));
  BOOST_TEST(s.reader.error_status() == 400);
  BOOST_TEST(s.reader.error_message().find("'Authorization' is followed by a space") != std::string::npos,
             s.reader.error_message());
  Reading lax;
  BOOST_TEST((lax.feed(req) == Next::request));
}

BOOST_AUTO_TEST_CASE(a_refusal_at_the_head_stops_before_the_body_and_no_continue_is_sent) {
  Reading r;
  r.hooks.refuse_head = 401;
  BOOST_TEST((r.feed("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc") == Next::failed));
  BOOST_TEST(r.reader.error_status() == 401);
  BOOST_TEST(r.hooks.body_seen.empty());
  BOOST_TEST(r.hooks.continues == 0);
  Reading ok;
  BOOST_TEST((ok.feed("POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc") == Next::request));
  BOOST_TEST(ok.hooks.continues == 1);
}

BOOST_AUTO_TEST_CASE(connect_hands_over_what_follows_its_head) {
  Reading r;
  BOOST_TEST((r.feed("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01") == Next::upgrade));
  BOOST_TEST(r.reader.request().method == "CONNECT");
  BOOST_TEST(!r.reader.keep_alive());
  BOOST_TEST(r.reader.take_rest() == "\x16\x03\x01");
}

BOOST_AUTO_TEST_CASE(input_that_ends_inside_a_request_is_cut_short_and_between_requests_is_not) {
  Reading r;
  BOOST_TEST((r.feed("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab") == Next::more));
  BOOST_TEST(r.reader.cut_short());
  Reading done;
  BOOST_TEST((done.feed("GET / HTTP/1.1\r\n\r\n") == Next::request));
  BOOST_TEST((done.reader.next() == Next::more));
  BOOST_TEST(!done.reader.cut_short());
}

BOOST_AUTO_TEST_CASE(garbage_is_a_malformed_request) {
  Reading r;
  BOOST_TEST((r.feed("\x01\x02 not http\r\n\r\n") == Next::failed));
  BOOST_TEST(r.reader.error_status() == 400);
  BOOST_TEST(r.reader.error_message().rfind("malformed request: ", 0) == 0u, r.reader.error_message());
}

BOOST_AUTO_TEST_SUITE_END()
