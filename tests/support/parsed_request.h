// One HTTP/1.1 request read with http_parser, for the stand-in servers
// (tests/support/upstream.*, git_http_server.*).
#pragma once

#include <http_parser.h>

#include <cctype>
#include <map>
#include <string>

namespace hearth::testing {

/// A request as http_parser delivers it: set `parser.data` to one and pass
/// request_parser_settings().
struct ParsedRequest {
  std::string method, url, body;
  std::map<std::string, std::string> headers;  // lower-case names
  bool complete = false;

  /// The header's value, or "".
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }

  // The header being read.
  std::string field, value;
  bool in_value = false;
  void flush_header() {
    if (field.empty()) return;
    for (auto& c : field) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    headers[field] = value;
    field.clear();
    value.clear();
  }
};

/// Callbacks that fill the ParsedRequest in `parser.data`. The parser
/// pauses once a request is complete (HPE_PAUSED), so that the bytes of a
/// next request on the connection stay unread until the caller unpauses.
inline const http_parser_settings& request_parser_settings() {
  static const http_parser_settings s = [] {
    http_parser_settings v;
    http_parser_settings_init(&v);
    v.on_url = [](http_parser* p, const char* at, size_t n) {
      static_cast<ParsedRequest*>(p->data)->url.append(at, n);
      return 0;
    };
    v.on_header_field = [](http_parser* p, const char* at, size_t n) {
      auto* r = static_cast<ParsedRequest*>(p->data);
      if (r->in_value) r->flush_header();
      r->in_value = false;
      r->field.append(at, n);
      return 0;
    };
    v.on_header_value = [](http_parser* p, const char* at, size_t n) {
      auto* r = static_cast<ParsedRequest*>(p->data);
      r->in_value = true;
      r->value.append(at, n);
      return 0;
    };
    v.on_headers_complete = [](http_parser* p) {
      auto* r = static_cast<ParsedRequest*>(p->data);
      r->flush_header();
      r->method = http_method_str(static_cast<http_method>(p->method));
      return 0;
    };
    v.on_body = [](http_parser* p, const char* at, size_t n) {
      static_cast<ParsedRequest*>(p->data)->body.append(at, n);
      return 0;
    };
    v.on_message_complete = [](http_parser* p) {
      static_cast<ParsedRequest*>(p->data)->complete = true;
      http_parser_pause(p, 1);
      return 0;
    };
    return v;
  }();
  return s;
}

}  // namespace hearth::testing
