#include "http/request_reader.h"

#include <strings.h>

#include <cstdio>

#include "http/token.h"

namespace hearth::http {

namespace {

// Why a piece of a header field name is not one (a sentence naming the first
// bad byte and the name so far, which is all token characters), or "".
std::string field_name_problem(std::string_view so_far, std::string_view piece) {
  for (size_t i = 0; i < piece.size(); ++i) {
    auto c = static_cast<unsigned char>(piece[i]);
    if (is_tchar(c)) continue;
    std::string name = (std::string(so_far) + std::string(piece.substr(0, i))).substr(0, 64);
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", c);
    std::string what = c == ' ' ? "a space" : c == '\t' ? "a tab" : std::string("the byte ") + byte;
    return "the header field name '" + name + "' is followed by " + what +
           ", which a field name may not hold (RFC 9112 §5.1: no whitespace before ':'; RFC 9110 §5.6.2: a token)";
  }
  return "";
}

bool expects_continue(const Request& r) {
  for (const auto& [name, value] : r.headers)
    if (strcasecmp(name.c_str(), "expect") == 0 && strcasecmp(value.c_str(), "100-continue") == 0) return true;
  return false;
}

std::string body_too_large(size_t max) { return "the request body exceeds " + std::to_string(max) + " bytes"; }

}  // namespace

RequestReader::RequestReader(ReaderLimits limits, Hooks& hooks) : limits_(limits), hooks_(hooks) {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
}

const http_parser_settings& RequestReader::settings() {
  static const http_parser_settings s = [] {
    http_parser_settings v;
    http_parser_settings_init(&v);
    v.on_message_begin = &RequestReader::on_message_begin;
    v.on_url = &RequestReader::on_url;
    v.on_header_field = &RequestReader::on_header_field;
    v.on_header_value = &RequestReader::on_header_value;
    v.on_headers_complete = &RequestReader::on_headers_complete;
    v.on_body = &RequestReader::on_body;
    v.on_message_complete = &RequestReader::on_message_complete;
    return v;
  }();
  return s;
}

RequestReader::Next RequestReader::next() {
  if (error_status_ != 0) return Next::failed;
  if (pending_.empty()) return Next::more;
  size_t used = http_parser_execute(&parser_, &settings(), pending_.data(), pending_.size());
  auto err = HTTP_PARSER_ERRNO(&parser_);
  if (err == HPE_PAUSED) {
    pending_.erase(0, used);
    http_parser_pause(&parser_, 0);
    return Next::request;
  }
  if (err != HPE_OK) {
    pending_.clear();
    if (error_status_ == 0) fail(400, std::string("malformed request: ") + http_errno_description(err));
    return Next::failed;
  }
  if (parser_.upgrade) {
    // What follows the head is another protocol: the owner takes it.
    pending_.erase(0, used);
    return Next::upgrade;
  }
  pending_.clear();
  return Next::more;
}

bool RequestReader::cut_short() {
  if (error_status_ != 0) return false;
  http_parser_execute(&parser_, &settings(), nullptr, 0);
  return in_request_ || HTTP_PARSER_ERRNO(&parser_) != HPE_OK;
}

int RequestReader::fail(int status, std::string message) {
  error_status_ = status;
  error_message_ = std::move(message);
  return -1;
}

bool RequestReader::count_header_bytes(size_t n) {
  header_bytes_ += n;
  if (header_bytes_ <= limits_.max_header_bytes) return true;
  fail(431, "the request line and headers exceed " + std::to_string(limits_.max_header_bytes) + " bytes");
  return false;
}

void RequestReader::finish_header() {
  if (field_.empty()) return;
  request_.headers.emplace_back(std::exchange(field_, {}), std::exchange(value_, {}));
}

int RequestReader::on_message_begin(http_parser* p) noexcept {
  auto& r = of(p);
  r.in_request_ = true;
  r.head_done_ = false;
  r.request_ = Request{};
  r.header_bytes_ = 0;
  r.field_.clear();
  r.value_.clear();
  r.in_value_ = false;
  r.hooks_.on_request_begin();
  return 0;
}

int RequestReader::on_url(http_parser* p, const char* at, size_t len) noexcept {
  auto& r = of(p);
  if (!r.count_header_bytes(len)) return -1;
  r.request_.target.append(at, len);
  return 0;
}

int RequestReader::on_header_field(http_parser* p, const char* at, size_t len) noexcept {
  auto& r = of(p);
  if (!r.count_header_bytes(len + 4)) return -1;  // ": " and CRLF
  if (r.in_value_) r.finish_header();
  r.in_value_ = false;
  if (r.limits_.token_field_names) {
    if (auto why = field_name_problem(r.field_, {at, len}); !why.empty()) return r.fail(400, std::move(why));
  }
  r.field_.append(at, len);
  return 0;
}

int RequestReader::on_header_value(http_parser* p, const char* at, size_t len) noexcept {
  auto& r = of(p);
  if (!r.count_header_bytes(len)) return -1;
  r.in_value_ = true;
  r.value_.append(at, len);
  return 0;
}

int RequestReader::on_headers_complete(http_parser* p) noexcept {
  auto& r = of(p);
  r.finish_header();
  r.request_.method = http_method_str(static_cast<http_method>(p->method));
  r.request_.http10 = p->http_major == 1 && p->http_minor == 0;
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > r.limits_.max_body_bytes)
    return r.fail(413, body_too_large(r.limits_.max_body_bytes));
  if (Refusal no = r.hooks_.on_head(r.request_); no.status != 0) return r.refuse(std::move(no));
  r.head_done_ = true;
  if (expects_continue(r.request_)) r.hooks_.on_continue();
  return 0;
}

int RequestReader::on_body(http_parser* p, const char* at, size_t len) noexcept {
  auto& r = of(p);
  if (r.request_.body.size() + len > r.limits_.max_body_bytes) return r.fail(413, body_too_large(r.limits_.max_body_bytes));
  if (Refusal no = r.hooks_.on_body(std::string_view(at, len)); no.status != 0) return r.refuse(std::move(no));
  r.request_.body.append(at, len);
  return 0;
}

int RequestReader::on_message_complete(http_parser* p) noexcept {
  auto& r = of(p);
  r.in_request_ = false;
  r.keep_alive_ = http_should_keep_alive(p) != 0 && !p->upgrade;
  // One request at a time: the next is parsed after this one's answer. An
  // upgrade ends parsing on its own; what follows is not HTTP.
  if (!p->upgrade) http_parser_pause(p, 1);
  return 0;
}

}  // namespace hearth::http
