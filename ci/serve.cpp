// `hearth serve`: construction, routing, authentication, shutdown.
#include "ci/serve.h"

#include <iostream>

#include "ci/serve_responses.h"
#include "ci/serve_streams.h"
#include "ci/webhook.h"

namespace hearth::ci {

Server::Server(uv_loop_t* loop, engine::Store& store, engine::Engine& engine, ServeOptions options)
    : loop_(loop), store_(store), engine_(engine), opts_(std::move(options)), workflows_(opts_.repo) {
  uv_check_init(loop_, &check_);
  uv_idle_init(loop_, &idle_);
  uv_timer_init(loop_, &grace_);
  uv_timer_init(loop_, &poll_);
  uv_timer_init(loop_, &renew_);
  for (auto* h : own_handles()) h->data = this;
  open_handles_ = static_cast<int>(own_handles().size());
  shared_ = store_.shared();
  uv_check_start(&check_, &Server::on_check);
  uv_unref(reinterpret_cast<uv_handle_t*>(&check_));
  streams_ = std::make_unique<EventStreams>(loop_, store_, opts_.keepalive);
  engine_.add_observer(streams_.get());
}

Server::~Server() { store_.forget(this); }

Status Server::start() {
  if (!opts_.accept && !opts_.work) return Error{"hearth serve: a server must accept deliveries, run them, or both"};
  if (!shared_ && !(opts_.accept && opts_.work))
    return Error{"hearth serve: --accept and --work split the work between servers sharing one database: they need "
                 "--store postgres://... (" + store_.path() + " is this machine's alone)"};
  workflows_.refresh(true);
  auto deliveries = DeliveryQueue::open(store_);
  if (!deliveries) return deliveries.status();
  deliveries_ = std::move(*deliveries);
  // The queue is the database's on a shared store: claimed by the workers,
  // not recovered here.
  if (!shared_)
    if (auto s = recover(); !s.ok()) return s;
  std::string location = shared_ && !opts_.store_location.empty() ? opts_.store_location : store_.path();
  auto writer = IntakeWriter::start(loop_, location,
                                    [this](uint64_t ticket, const Status& stored, std::vector<Verdict>& verdicts) {
                                      written(ticket, stored, verdicts);
                                    });
  if (!writer) return writer.status();
  writer_ = *writer;
  if (shared_) {
    if (opts_.work)
      if (auto s = start_worker(); !s.ok()) return s;
    if (!opts_.accept) return {};
  }
  auto http = http::HttpServer::listen(
      loop_, opts_.host, opts_.port, opts_.limits,
      [this](http::HttpRequest&& req, http::Responder r) { handle(std::move(req), std::move(r)); },
      [this](const http::HttpRequest& head) { return check_head(head); });
  if (!http) {
    if (writer_) std::exchange(writer_, nullptr)->close(nullptr);
    return http.error();
  }
  http_ = *http;
  pump();
  return {};
}

std::string Server::address() const { return http_ ? http_->address() : ""; }

void Server::handle(http::HttpRequest&& req, http::Responder r) {
  const std::string& path = req.path;
  if (path == "/hooks/github") {
    if (req.method != "POST") return r.send(error_response(405, "use POST"));
    if (stopping_) return r.send(error_response(503, "shutting down; deliver again later"));
    return accept_delivery(std::move(req), std::move(r));
  }
  if (path == "/healthz") {
    if (store_failed_ || stopping_) return r.send(json_response(503, {{"status", "unavailable"}}));
    return r.send(json_response(200, {{"status", "ok"}}));
  }
  if (path == "/runs" || path.rfind("/runs/", 0) == 0) {
    if (req.method != "GET") return r.send(error_response(405, "use GET"));
    if (!authorized(req, r)) return;
    if (path == "/runs") return list_runs(req, std::move(r));
    std::string rest = path.substr(6);
    constexpr std::string_view events = "/events";
    if (rest.size() > events.size() && rest.compare(rest.size() - events.size(), events.size(), events) == 0)
      return stream_events(rest.substr(0, rest.size() - events.size()), req, std::move(r));
    if (rest.empty() || rest.find('/') != std::string::npos) return r.send(error_response(404, "no such endpoint"));
    return show_run(rest, std::move(r));
  }
  r.send(error_response(404, "no such endpoint: " + path));
}

http::HeadDecision Server::check_head(const http::HttpRequest& head) {
  if (head.path != "/hooks/github" || head.method != "POST") return {};
  // Unsigned: refused before a byte of the body is read or held.
  if (head.header("x-hub-signature-256").empty()) {
    std::cerr << "hearth serve: refused a delivery from " << head.peer << ": no X-Hub-Signature-256 header\n";
    return {401, "missing X-Hub-Signature-256 header (configure a secret on the webhook)", nullptr};
  }
  return {0, "", std::make_shared<HmacTap>(opts_.webhook_secret)};
}

bool Server::authorized(const http::HttpRequest& req, http::Responder& r) {
  if (opts_.api_token.empty()) {
    r.send(error_response(403, "the read endpoints are off: start hearth serve with HEARTH_API_TOKEN set"));
    return false;
  }
  const std::string& given = req.header("authorization");
  constexpr std::string_view bearer = "Bearer ";
  bool ok = given.size() > bearer.size() && given.compare(0, bearer.size(), bearer) == 0 &&
            constant_time_equal(std::string_view(given).substr(bearer.size()), opts_.api_token);
  if (ok) return true;
  auto resp = error_response(401, "missing or wrong bearer token");
  resp.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"hearth\"");
  r.send(std::move(resp));
  return false;
}

void Server::shutdown(std::function<void(bool)> done) {
  if (done) on_stopped_ = std::move(done);
  if (stopping_) return;
  stopping_ = true;
  uv_timer_stop(&poll_);  // no new claims; renew_ runs on while runs finish
  if (shared_) give_back_queued();
  if (http_) http_->stop_accepting();
  streams_->end_all();
  if (!active_.empty()) {
    std::cerr << "hearth serve: stopping; " << active_.size() << " run(s) get "
              << opts_.shutdown_grace.count() << " ms to finish\n";
    uv_timer_start(&grace_, [](uv_timer_t* t) noexcept {
      auto* self = static_cast<Server*>(t->data);
      self->cancelled_ = true;
      self->engine_.cancel_all("hearth serve is shutting down");
    }, static_cast<uint64_t>(opts_.shutdown_grace.count()), 0);
  }
  maybe_finish_shutdown();
}

void Server::maybe_finish_shutdown() {
  if (!stopping_ || closed_ || !active_.empty() || !batch_.empty() || !written_.empty() || awaiting_durable_ > 0 ||
      claiming_ > 0 || (writer_ && writer_->jobs_in_flight() > 0))
    return;
  if (!state_writes_.empty()) {
    flush();
    // The state writes' commit calls this again once durable (and a
    // failure may have closed everything already).
    if (closed_ || awaiting_durable_ > 0) return;
  }
  closed_ = true;
  if (commits_ > 0 && writer_ && writer_->commits() > 0) {
    int64_t n = writer_->commits();
    const auto &waited = writer_->waited(), &held = writer_->held();
    std::cerr << "hearth serve: " << accepted_ << " deliveries stored in " << n << " group commits (" << commits_
              << " groups gathered by the loop";
    if (!shared_)  // SQLite's one write lock; a shared store's sessions do not queue for one
      std::cerr << "; the write lock waited for " << waited.total_us / n << " us on average, " << waited.max_us
                << " at most, held " << held.total_us / n << " us on average, " << held.max_us << " at most";
    std::cerr << ")\n";
  }
  // Handles of ours, the streams' timer and the intake's writer;
  // `on_stopped_` after the last.
  open_handles_ = static_cast<int>(own_handles().size()) + (writer_ ? 2 : 1);
  auto one_closed = [](Server* self) {
    if (--self->open_handles_ == 0 && self->on_stopped_) std::exchange(self->on_stopped_, nullptr)(!self->store_failed_);
  };
  auto close_own = [this, one_closed] {
    for (auto* h : own_handles())
      uv_close(h, [](uv_handle_t* handle) noexcept {
        auto* self = static_cast<Server*>(handle->data);
        if (--self->open_handles_ == 0 && self->on_stopped_)
          std::exchange(self->on_stopped_, nullptr)(!self->store_failed_);
      });
    streams_->close([this, one_closed] { one_closed(this); });
    if (writer_) std::exchange(writer_, nullptr)->close([this, one_closed] { one_closed(this); });
  };
  if (!http_) return close_own();
  auto* http = std::exchange(http_, nullptr);
  http->close(close_own);
}

}  // namespace hearth::ci
