#include "http/client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <set>

namespace hearth::http {

struct HttpClient::Transfer {
  TransferId id = 0;
  HttpClient* owner = nullptr;
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  ClientRequest request;  // the body must outlive the transfer (CURLOPT_POSTFIELDS)
  HttpHandlers handlers;
  HttpHeaders headers;
  int status = 0;
  bool headers_delivered = false;
  bool cancelled = false;
  bool added = false;
  int start_error = 0;  // curl_multi_add_handle failed with this

  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);
    if (header_list) curl_slist_free_all(header_list);
  }

  void deliver_headers() {
    if (headers_delivered) return;
    headers_delivered = true;
    long code = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
    status = static_cast<int>(code);
    if (handlers.on_headers) handlers.on_headers(status, headers);
  }
};

struct HttpClient::Socket {
  uv_poll_t poll{};
  HttpClient* owner = nullptr;
  curl_socket_t fd = CURL_SOCKET_BAD;
};

namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t on_write(char* data, size_t size, size_t n, void* userp) noexcept {
  auto* t = static_cast<HttpClient::Transfer*>(userp);
  auto gone = [t] { return t->cancelled || t->owner->closing(); };
  if (gone()) return 0;  // aborts the transfer
  t->deliver_headers();
  if (gone()) return 0;
  if (t->handlers.on_body) t->handlers.on_body(std::string_view(data, size * n));
  return gone() ? 0 : size * n;
}

size_t on_header(char* data, size_t size, size_t n, void* userp) noexcept {
  auto* t = static_cast<HttpClient::Transfer*>(userp);
  std::string_view line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    t->headers.clear();  // an interim response (100 Continue) came first
  } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    t->headers.emplace(std::move(name), std::string(value));
  }
  return size * n;
}

}  // namespace

HttpClient* HttpClient::create(uv_loop_t* loop) { return new HttpClient(loop); }

HttpClient::HttpClient(uv_loop_t* loop) : loop_(loop) {
  global_init();
  multi_ = curl_multi_init();
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &HttpClient::on_socket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &HttpClient::on_timer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  open_handles_ = 1;
}

HttpClient::~HttpClient() = default;

TransferId HttpClient::start(ClientRequest request, HttpHandlers handlers) {
  auto t = std::make_unique<Transfer>();
  t->id = next_id_++;
  t->owner = this;
  t->request = std::move(request);
  t->handlers = std::move(handlers);
  CURL* e = curl_easy_init();
  t->easy = e;
  curl_easy_setopt(e, CURLOPT_URL, t->request.url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PRIVATE, reinterpret_cast<char*>(static_cast<uintptr_t>(t->id)));
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  if (t->request.method == "POST") {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->request.body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->request.body.size()));
  } else if (t->request.method != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->request.method.c_str());
  }
  for (const auto& [name, value] : t->request.headers) {
    t->header_list = curl_slist_append(t->header_list, (name + ": " + value).c_str());
  }
  t->header_list = curl_slist_append(t->header_list, "Expect:");  // no 100-continue round trip
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->header_list);
  if (t->request.configure) t->request.configure(e);

  Transfer* raw = t.get();
  transfers_.emplace(raw->id, std::move(t));
  if (depth_ > 0) {
    pending_.push_back(raw);  // libcurl forbids adding from inside its callbacks
  } else {
    flush_pending();
    pending_.push_back(raw);
    flush_pending();
  }
  return raw->id;
}

void HttpClient::flush_pending() {
  auto pending = std::move(pending_);
  pending_.clear();
  for (Transfer* t : pending) {
    if (t->cancelled) continue;
    CURLMcode rc = curl_multi_add_handle(multi_, t->easy);
    if (rc == CURLM_OK) {
      t->added = true;
    } else {
      // Reported on the next timer tick, never from inside start().
      t->start_error = static_cast<int>(CURLE_FAILED_INIT);
      uv_timer_start(&timer_, &HttpClient::on_timeout, 0, 0);
    }
  }
}

bool HttpClient::cancel(TransferId id) {
  auto it = transfers_.find(id);
  if (it == transfers_.end() || it->second->cancelled) return false;
  it->second->cancelled = true;
  if (depth_ == 0) remove(it->second.get());
  // Otherwise libcurl is calling us: the transfer's write callback refuses
  // further data, and action() removes it when libcurl returns.
  return true;
}

void HttpClient::remove(Transfer* t) {
  if (t->added) curl_multi_remove_handle(multi_, t->easy);
  pending_.erase(std::remove(pending_.begin(), pending_.end(), t), pending_.end());
  transfers_.erase(t->id);
}

void HttpClient::action(int fd, int events) {
  int running = 0;
  ++depth_;
  curl_multi_socket_action(multi_, fd, events, &running);
  --depth_;
  if (closing_) {
    if (depth_ == 0) teardown();
    return;
  }
  std::vector<Transfer*> cancelled;
  for (auto& [id, t] : transfers_) {
    if (t->cancelled) cancelled.push_back(t.get());
  }
  for (Transfer* t : cancelled) remove(t);
  drain_messages();
  if (!closing_) flush_pending();
}

void HttpClient::drain_messages() {
  int left = 0;
  while (!closing_) {
    CURLMsg* msg = curl_multi_info_read(multi_, &left);
    if (!msg) break;
    if (msg->msg != CURLMSG_DONE) continue;
    char* priv = nullptr;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
    auto it = transfers_.find(static_cast<TransferId>(reinterpret_cast<uintptr_t>(priv)));
    if (it == transfers_.end()) continue;  // cancelled from an earlier on_done
    CURLcode code = msg->data.result;
    std::unique_ptr<Transfer> t = std::move(it->second);
    transfers_.erase(it);
    curl_multi_remove_handle(multi_, t->easy);
    t->added = false;
    if (t->cancelled) continue;
    t->deliver_headers();  // a body-less response still reports its status
    HttpResult result;
    result.curl_code = static_cast<int>(code);
    result.status = t->status;
    if (code != CURLE_OK) result.error = curl_easy_strerror(code);
    if (t->handlers.on_done) t->handlers.on_done(std::move(result));
  }
  // Transfers libcurl refused to add fail here, outside start().
  std::vector<Transfer*> failed;
  for (auto& [id, t] : transfers_) {
    if (t->start_error && !t->cancelled) failed.push_back(t.get());
  }
  for (Transfer* raw : failed) {
    if (closing_) return;
    auto it = transfers_.find(raw->id);
    if (it == transfers_.end()) continue;
    std::unique_ptr<Transfer> t = std::move(it->second);
    transfers_.erase(it);
    HttpResult result{t->start_error, "libcurl refused the transfer", 0};
    if (t->handlers.on_done) t->handlers.on_done(std::move(result));
  }
}

void HttpClient::close_socket(Socket* s) {
  s->owner->sockets_.erase(s);
  uv_poll_stop(&s->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&s->poll), [](uv_handle_t* h) {
    auto* sock = static_cast<Socket*>(h->data);
    HttpClient* owner = sock->owner;
    delete sock;
    --owner->open_handles_;
    owner->maybe_delete();
  });
}

int HttpClient::on_socket(void*, int fd, int what, void* userp, void* socketp) noexcept {
  auto* self = static_cast<HttpClient*>(userp);
  auto* s = static_cast<Socket*>(socketp);
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      close_socket(s);
      if (!self->closing_) curl_multi_assign(self->multi_, fd, nullptr);
    }
    return 0;
  }
  if (!s) {
    s = new Socket;
    s->owner = self;
    s->fd = fd;
    s->poll.data = s;
    if (uv_poll_init_socket(self->loop_, &s->poll, fd) != 0) {
      delete s;
      return -1;
    }
    ++self->open_handles_;
    self->sockets_.insert(s);
    curl_multi_assign(self->multi_, fd, s);
  }
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, &HttpClient::on_poll);
  return 0;
}

void HttpClient::on_poll(uv_poll_t* p, int status, int events) noexcept {
  auto* s = static_cast<Socket*>(p->data);
  int flags = 0;
  if (status < 0) {
    flags = CURL_CSELECT_ERR;
  } else {
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  s->owner->action(static_cast<int>(s->fd), flags);
}

int HttpClient::on_timer(void*, long timeout_ms, void* userp) noexcept {
  auto* self = static_cast<HttpClient*>(userp);
  if (self->closing_) return 0;
  if (timeout_ms < 0) {
    uv_timer_stop(&self->timer_);
  } else {
    uv_timer_start(&self->timer_, &HttpClient::on_timeout, static_cast<uint64_t>(timeout_ms), 0);
  }
  return 0;
}

void HttpClient::on_timeout(uv_timer_t* t) noexcept {
  static_cast<HttpClient*>(t->data)->action(CURL_SOCKET_TIMEOUT, 0);
}

void HttpClient::close() {
  if (closing_) return;
  closing_ = true;
  if (depth_ == 0) teardown();
  // Otherwise libcurl is calling us: action() tears down when it returns.
}

void HttpClient::teardown() {
  for (auto& [id, t] : transfers_) {
    if (t->added) curl_multi_remove_handle(multi_, t->easy);
    t->added = false;
  }
  transfers_.clear();
  pending_.clear();
  for (Socket* s : sockets_) uv_poll_stop(&s->poll);
  curl_multi_cleanup(multi_);  // closes pooled connections
  multi_ = nullptr;
  while (!sockets_.empty()) close_socket(*sockets_.begin());
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
    auto* self = static_cast<HttpClient*>(h->data);
    --self->open_handles_;
    self->maybe_delete();
  });
}

void HttpClient::maybe_delete() {
  if (closing_ && open_handles_ == 0) delete this;
}

}  // namespace hearth::http
