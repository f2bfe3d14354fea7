// Reading HTTP/1.1 requests from a byte stream, for a server. Parsing is
// http_parser's (libhttp-parser); this class adds what every server of ours
// needs around it and nothing that touches a socket or the loop:
//
//   - a cap on the request line and headers together (431) and on the body
//     after de-chunking (413, at once when Content-Length announces more);
//   - optionally, refusal of a header field name that is not a token
//     (http_parser, not built strict, lets "Authorization " through);
//   - one request at a time: the parser pauses at each request's end, and
//     pipelined bytes wait in the reader until the owner asks for the next;
//   - hooks at a request's first byte (deadlines), at the end of its head
//     (a look before any body byte is read or held) and at each body chunk
//     (budgets, a MAC computed as the bytes stream).
//
// The owner (a connection) feeds what it reads with append(), then calls
// next() until it returns `more` or it has a request to answer; after the
// answer it calls next() again for a pipelined one.
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::http {

struct ReaderLimits {
  /// Request line and headers together (names, values, ": " and CRLF).
  size_t max_header_bytes = 16 * 1024;
  /// Body after de-chunking.
  size_t max_body_bytes = 25 * 1024 * 1024;
  /// Refuse (400) a header field name holding anything but token
  /// characters (RFC 9110 §5.6.2), such as a space before the colon.
  bool token_field_names = false;
};

/// One request as the client sent it.
struct Request {
  std::string method;  // "GET", "POST", ...; set once the head is complete
  std::string target;  // the request target, as sent (path and query)
  std::vector<std::pair<std::string, std::string>> headers;  // as sent, in order
  std::string body;    // de-chunked
  bool http10 = false;
};

/// Why a hook refuses a request: `status` non-zero is answered with
/// `message` and the connection closes.
struct Refusal {
  int status = 0;
  std::string message;
};

class RequestReader {
 public:
  /// What the owner does at each point of a request. Called from inside
  /// next(), on the owner's thread.
  class Hooks {
   public:
    virtual ~Hooks() = default;
    /// The first byte of a request arrived (arm its deadlines).
    virtual void on_request_begin() {}
    /// The head is complete and within the limits; no body byte was read.
    /// `request` may be changed (its body is still empty).
    virtual Refusal on_head(Request& request) { (void)request; return {}; }
    /// The client waits for "100 Continue" before sending its body (after
    /// on_head accepted it): write it.
    virtual void on_continue() {}
    /// Body bytes as they arrive, within the body cap, before they are kept.
    virtual Refusal on_body(std::string_view chunk) { (void)chunk; return {}; }
  };

  enum class Next {
    more,     // every byte fed is parsed; no request is complete
    request,  // request() is complete; next() again after answering it
    upgrade,  // request() is an upgrade (CONNECT): take_rest() is what followed its head
    failed,   // error_status() and error_message() say why; the reader is done
  };

  /// `hooks` must outlive the reader.
  RequestReader(ReaderLimits limits, Hooks& hooks);
  RequestReader(const RequestReader&) = delete;
  RequestReader& operator=(const RequestReader&) = delete;

  /// Bytes received, parsed by the next next().
  void append(const char* data, size_t n) { pending_.append(data, n); }
  /// Parses pending bytes until a request is complete, an upgrade, an
  /// error, or the bytes run out.
  Next next();
  /// The end of the input: whether a request was left cut short.
  bool cut_short();

  /// The request being read or last read; valid until next() starts reading
  /// the following one.
  Request& request() { return request_; }
  /// Whether the connection may carry another request after this one.
  bool keep_alive() const { return keep_alive_; }
  /// Between a request's first byte and its end.
  bool in_request() const { return in_request_; }
  /// Whether the current request's head is complete.
  bool head_done() const { return head_done_; }

  size_t pending_bytes() const { return pending_.size(); }
  /// The client sends far ahead of our answers: stop reading from it.
  bool far_ahead() const { return pending_.size() > limits_.max_header_bytes + 65536; }
  /// What followed an upgrade's head (and clears it).
  std::string take_rest() { return std::exchange(pending_, {}); }
  void drop_pending() { pending_.clear(); }

  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }

 private:
  static const http_parser_settings& settings();
  static RequestReader& of(http_parser* p) { return *static_cast<RequestReader*>(p->data); }
  static int on_message_begin(http_parser* p) noexcept;
  static int on_url(http_parser* p, const char* at, size_t len) noexcept;
  static int on_header_field(http_parser* p, const char* at, size_t len) noexcept;
  static int on_header_value(http_parser* p, const char* at, size_t len) noexcept;
  static int on_headers_complete(http_parser* p) noexcept;
  static int on_body(http_parser* p, const char* at, size_t len) noexcept;
  static int on_message_complete(http_parser* p) noexcept;

  bool count_header_bytes(size_t n);
  int fail(int status, std::string message);
  int refuse(Refusal r) { return fail(r.status, std::move(r.message)); }
  void finish_header();

  ReaderLimits limits_;
  Hooks& hooks_;
  http_parser parser_{};
  std::string pending_;  // received, not yet parsed
  Request request_;
  std::string field_, value_;
  bool in_value_ = false;
  size_t header_bytes_ = 0;
  bool in_request_ = false, head_done_ = false, keep_alive_ = true;
  int error_status_ = 0;
  std::string error_message_;
};

}  // namespace hearth::http
