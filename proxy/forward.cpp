// One request on an API proxy's socket: policy, rate, then libcurl to the
// upstream (http/'s HttpClient on the same loop), and the answer
// streamed back chunked, redacted.
#include <curl/curl.h>
#include <strings.h>

#include <algorithm>
#include <cctype>

#include "proxy/connection.h"

namespace hearth::proxy {

namespace {

// Hop-by-hop and framing headers: each leg has its own, set by the proxy
// (Accept-Encoding too: libcurl asks for what it can decode, so redaction
// sees plain bytes).
const std::vector<std::string> kRequestDropped = {"host",    "connection",        "keep-alive", "proxy-connection",
                                                  "proxy-authorization", "te", "trailer",   "transfer-encoding",
                                                  "upgrade", "content-length",    "expect",     "accept-encoding"};
const std::vector<std::string> kResponseDropped = {"connection", "keep-alive",        "proxy-connection",
                                                   "te",         "trailer",           "transfer-encoding",
                                                   "upgrade",    "content-length",    "content-encoding"};

// Headers that ask the upstream to act as if the request had another method
// (Rails, Google APIs, many frameworks): the policy must allow that method too.
const std::vector<std::string> kMethodOverrides = {"x-http-method-override", "x-http-method", "x-method-override"};

bool is_method_char(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '-' || c == '_'; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Whether two header names reach a CGI-style upstream (Rack, WSGI, PHP: both
// become HTTP_X_API_KEY) as the same header: case and '-'/'_' ignored.
bool same_header(std::string_view a, std::string_view b) {
  auto fold = [](char c) { return c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (fold(a[i]) != fold(b[i])) return false;
  return true;
}

bool listed(const std::vector<std::string>& names, std::string_view name) {
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return iequals(n, name); });
}

// Header names the client declared hop-by-hop in its Connection header.
std::vector<std::string> connection_tokens(const std::vector<std::pair<std::string, std::string>>& headers) {
  std::vector<std::string> out;
  for (auto& [name, value] : headers) {
    if (!iequals(name, "connection")) continue;
    size_t start = 0;
    while (start <= value.size()) {
      size_t comma = value.find(',', start);
      std::string token = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      token.erase(0, token.find_first_not_of(" \t"));
      token.erase(token.find_last_not_of(" \t") + 1);
      if (!token.empty()) out.push_back(token);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

// Marks the connection as inside an HttpClient handler for its duration:
// libcurl forbids removing a transfer from inside its callbacks.
struct InCallback {
  explicit InCallback(bool& f) : flag(f), was(f) { flag = true; }
  ~InCallback() { flag = was; }
  bool& flag;
  bool was;
};

}  // namespace

void Conn::forward() {
  const StepProxy& sp = server_.opts().proxies[static_cast<size_t>(proxy_)];
  const std::string& name = sp.def.name;
  head_sent_ = false;
  http_parser_url u;
  http_parser_url_init(&u);
  const std::string& url = req().target;
  if (http_parser_parse_url(url.data(), url.size(), 0, &u) != 0 || (u.field_set & (1 << UF_SCHEMA)) ||
      !(u.field_set & (1 << UF_PATH)))
    return refuse(400, "bad-request", "",
                  problem("bad request", name,
                          "the request target must be a path (GET /repos/o/r HTTP/1.1): send requests to "
                          "$" + env_name(name) + " directly, not through another proxy"));
  std::string raw = url.substr(u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
  std::string query = (u.field_set & (1 << UF_QUERY)) ? url.substr(u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len) : "";
  auto path = normalize_path(raw, sp.def.paths);
  if (!path) return refuse(400, "bad-request", "", problem("bad request", name, path.message()));
  ev_.path = server_.redact(path->path);

  Verdict v = decide(sp.def.allow, sp.def.deny, req().method, *path, req().body);
  if (v.allowed && !check_overrides(sp, *path, v)) return;
  if (!v.allowed) {
    auto body = problem("forbidden by the proxy's policy", name, v.reason);
    if (v.rule && v.rule->at.line > 0) body["rule_at"] = std::to_string(v.rule->at.line) + ":" + std::to_string(v.rule->at.column);
    // Nothing matched: name the preset when it is all the proxy allows.
    bool preset_only = !sp.def.preset.empty() && std::all_of(sp.def.allow.begin(), sp.def.allow.end(), [](const Rule& r) {
      return r.label.rfind("policy ", 0) == 0;
    });
    std::string rule = v.rule ? v.rule->label : preset_only ? "policy " + sp.def.preset : "no allow rule";
    return refuse(403, "denied", rule, std::move(body));
  }

  // The budget: requests forwarded in this step attempt. Past it nothing
  // more is sent, whatever the rates would allow.
  ProxyState& st = server_.state(proxy_);
  if (sp.def.max_requests && st.forwarded >= *sp.def.max_requests) {
    std::string label = "max-requests " + std::to_string(*sp.def.max_requests);
    auto body = problem("request budget exhausted", name,
                        "this step has made the " + std::to_string(*sp.def.max_requests) +
                            " requests the proxy allows per attempt (max-requests)");
    body["max_requests"] = *sp.def.max_requests;
    return refuse(403, "over-budget", label, std::move(body));
  }

  // Both buckets must hold a token; neither is drawn from otherwise.
  uint64_t now = uv_now(server_.loop());
  struct Limit {
    TokenBucket* bucket;
    std::string label;
  } limits[2] = {
      {st.bucket ? &*st.bucket : nullptr, sp.def.rate ? "rate " + sp.def.rate->text : ""},
      {st.rule_buckets[static_cast<size_t>(v.allow_index)] ? &*st.rule_buckets[static_cast<size_t>(v.allow_index)] : nullptr,
       v.rule->rate ? v.rule->label + " rate " + v.rule->rate->text : ""},
  };
  for (auto& l : limits) {
    if (!l.bucket || l.bucket->ready(now)) continue;
    uint64_t retry = l.bucket->retry_after_s(now);
    auto body = problem("rate limit exceeded", name, "over " + l.label + " for this step; retry after " + std::to_string(retry) + " s");
    body["retry_after"] = retry;
    return refuse(429, "rate-limited", l.label, std::move(body), {{"Retry-After", std::to_string(retry)}});
  }
  for (auto& l : limits)
    if (l.bucket) l.bucket->take();
  ++st.forwarded;
  ev_.rule = v.rule->label;
  start_transfer(sp, sp.def.upstream + path->path + (query.empty() ? "" : "?" + query), v.allow_index);
}

bool Conn::check_overrides(const StepProxy& sp, const RequestPath& path, Verdict& v) {
  for (auto& header : req().headers) {
    const std::string& n = header.first;  // named, not bound: lambdas capture it (clang 14)
    const std::string& value = header.second;
    if (!std::any_of(kMethodOverrides.begin(), kMethodOverrides.end(), [&](auto& o) { return same_header(o, n); }))
      continue;
    std::string method = value;
    method.erase(0, method.find_first_not_of(" \t"));
    method.erase(method.find_last_not_of(" \t") + 1);
    if (method.empty() || method.size() > 32 || !std::all_of(method.begin(), method.end(), is_method_char)) {
      refuse(400, "bad-request", "",
             problem("bad request", sp.def.name, "the " + n + " header does not hold an HTTP method"));
      return false;
    }
    for (auto& ch : method) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    Verdict o = decide(sp.def.allow, sp.def.deny, method, path, req().body);
    if (o.allowed) continue;
    o.reason = n + ": " + method + " asks the upstream to treat this " + req().method + " as " + method + "; " + o.reason;
    v = std::move(o);
    return true;  // refused below, by the verdict of the overridden method
  }
  return true;
}

void Conn::start_transfer(const StepProxy& sp, const std::string& url, int) {
  http::ClientRequest r;
  r.method = req().method;
  r.url = url;
  auto hop = connection_tokens(req().headers);
  bool has_content_type = false;
  for (auto& header : req().headers) {
    const std::string& n = header.first;  // named, not bound: lambdas capture it (clang 14)
    const std::string& v = header.second;
    if (listed(kRequestDropped, n) || listed(hop, n)) continue;
    if (std::any_of(sp.headers.begin(), sp.headers.end(), [&](auto& h) { return same_header(h.first, n); })) continue;
    has_content_type = has_content_type || iequals(n, "content-type");
    r.headers.emplace_back(n, v);
  }
  for (auto& h : sp.headers) r.headers.push_back(h);
  upstream_body_ = std::move(req().body);
  const std::string& m = ev_.method;
  bool send_body = !upstream_body_.empty() || m == "POST" || m == "PUT" || m == "PATCH";
  // libcurl would add a form Content-Type to a body that has none.
  if (send_body && !has_content_type) r.headers.emplace_back("Content-Type", "");
  ev_.request_bytes = upstream_body_.size();
  const ProxyServerOptions& o = server_.opts();
  // Runs inside start(); the connection is alive.
  r.configure = [this, send_body, &o](void* e) {
    CURL* easy = static_cast<CURL*>(e);
    easy_ = easy;
    if (ev_.method == "HEAD") curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    if (send_body) {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, upstream_body_.data());
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(upstream_body_.size()));
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, ev_.method.c_str());
    }
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");  // decoded here, so redaction sees plain bytes
    curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);       // the path is already normalized and checked
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.limits.connect_timeout.count()));
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!o.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, o.ca_file.c_str());
  };
  // The connection cancels the transfer before it is freed (close_now or
  // maybe_delete), so no handler runs on a freed connection.
  http::HttpHandlers h;
  h.on_headers = [this](int status, const http::HttpHeaders& headers) {
    InCallback in(in_upstream_cb_);
    if (!closing_) on_upstream_headers(status, headers);
  };
  h.on_body = [this](std::string_view bytes) {
    InCallback in(in_upstream_cb_);
    if (!closing_) on_upstream_body(bytes);
  };
  h.on_done = [this](http::HttpResult result) {
    InCallback in(in_upstream_cb_);
    transfer_.reset();
    easy_ = nullptr;
    paused_ = false;
    if (!closing_) on_upstream_done(result);
  };
  transfer_ = server_.http()->start(std::move(r), std::move(h));
}

void Conn::on_upstream_headers(int status, const http::HttpHeaders& headers) {
  if (status == 0) return;  // no status line arrived: on_upstream_done answers 502
  head_sent_ = true;
  ev_.status = status;
  ev_.decision = "allowed";
  bool head = ev_.method == "HEAD";
  body_allowed_ = !head && status >= 200 && status != 204 && status != 304;
  if (req().http10) keep_alive_ = false;
  chunked_ = body_allowed_ && !req().http10;
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + http_status_str(static_cast<http_status>(status)) + "\r\n";
  for (auto& [n, v] : headers) {
    bool keep = !listed(kResponseDropped, n) || (head && n == "content-length");
    if (keep) out += server_.redact(n) + ": " + server_.redact(v) + "\r\n";
  }
  if (chunked_) out += "Transfer-Encoding: chunked\r\n";
  out += keep_alive_ && !eof_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  redactor_.emplace(server_.opts().secrets);
  write(std::move(out));
}

void Conn::on_upstream_body(std::string_view bytes) {
  if (!body_allowed_ || !redactor_) return;
  write_body(redactor_->push(bytes));
  // A sandbox that reads slowly pauses the upstream instead of filling memory.
  if (!paused_ && easy_ && uv_stream_get_write_queue_size(client()) > server_.opts().limits.max_backlog) {
    paused_ = true;
    curl_easy_pause(static_cast<CURL*>(easy_), CURLPAUSE_RECV);
  }
}

void Conn::write_body(std::string_view bytes) {
  if (bytes.empty()) return;
  ev_.response_bytes += bytes.size();
  if (!chunked_) return write(std::string(bytes));
  char size[24];
  int n = std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
  std::string chunk;
  chunk.reserve(static_cast<size_t>(n) + bytes.size() + 2);
  chunk.append(size, static_cast<size_t>(n)).append(bytes).append("\r\n");
  write(std::move(chunk));
}

void Conn::on_written() {
  if (!paused_ || !easy_ || closing_) return;
  if (uv_stream_get_write_queue_size(client()) > server_.opts().limits.max_backlog / 4) return;
  paused_ = false;
  // May deliver held-back data at once, through on_upstream_body.
  InCallback in(in_upstream_cb_);
  curl_easy_pause(static_cast<CURL*>(easy_), CURLPAUSE_CONT);
}

void Conn::on_upstream_done(const http::HttpResult& r) {
  if (!r.ok()) {
    if (!head_sent_)
      return refuse(502, "upstream-error", ev_.rule,
                    problem("bad gateway", ev_.proxy, "the upstream could not be reached: " + server_.redact(r.error)));
    // The head is out: the only way to say "incomplete" is to end the
    // connection before the last chunk.
    ev_.decision = "upstream-error";
    emit();
    return close_now();
  }
  if (body_allowed_ && redactor_) write_body(redactor_->flush());
  if (chunked_) write("0\r\n\r\n");
  redactor_.reset();
  head_sent_ = false;
  finish_request();
}

}  // namespace hearth::proxy
