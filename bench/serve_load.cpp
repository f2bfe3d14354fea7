// An open-loop load for bench/serve_bench: signed deliveries POSTed at a
// fixed rate, as GitHub sends them (it does not wait for one answer before
// the next delivery), each answer's latency counted from the moment its
// request was due, not from when a connection was free to send it.
//
// wrk is a closed loop: its connections send as fast as the server answers,
// so the server is always saturated and every stall also stops the load
// (the requests that would have waited are never sent, and never counted).
// This is the measure of "p99 at N deliveries/s"; wrk's is the measure of
// the most the server takes.
//
//   serve_load PORT REQUESTS.tsv RATE SECONDS [CONNECTIONS]
//
// REQUESTS.tsv is serve_bench_gen.py's: "<id>\t<signature>\t<body>" a line.
// Prints one line: BENCH-OPEN sent=… answered=… accepted=… rate=… p50_ms=…
// p90_ms=… p99_ms=… p999_ms=… max_ms=… late=… (late: requests that found
// every connection busy when due).
#include <http_parser.h>
#include <uv.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <string>
#include <vector>

namespace {

struct Load;

struct Conn {
  uv_tcp_t tcp{};
  Load* load = nullptr;
  http_parser parser{};  // the answers (HTTP_RESPONSE); data points here
  bool busy = false;
  bool connected = false;
  uint64_t due_ns = 0;  // the request in flight: when it was due
  uv_write_t write_req{};
};

struct Load {
  uv_loop_t* loop = nullptr;
  std::vector<std::string> requests;
  std::vector<Conn*> conns;
  std::deque<std::pair<size_t, uint64_t>> backlog;  // due, no connection free: (request, due)
  size_t next = 0;     // the next request to fall due
  size_t total = 0;    // requests to send in all
  uint64_t start_ns = 0;
  uint64_t interval_ns = 0;
  size_t answered = 0, accepted = 0, late = 0, failed = 0;
  std::vector<uint64_t> latencies_ns;
  uv_timer_t timer{};
};

uint64_t now_ns() { return uv_hrtime(); }

void send(Conn* c, size_t k, uint64_t due) {
  c->busy = true;
  c->due_ns = due;
  const std::string& r = c->load->requests[k % c->load->requests.size()];
  uv_buf_t buf = uv_buf_init(const_cast<char*>(r.data()), static_cast<unsigned>(r.size()));
  if (uv_write(&c->write_req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1, [](uv_write_t*, int status) {
        if (status < 0) std::fprintf(stderr, "serve_load: write: %s\n", uv_strerror(status));
      }) != 0)
    ++c->load->failed;
}

Conn* free_conn(Load* l) {
  for (Conn* c : l->conns)
    if (c->connected && !c->busy) return c;
  return nullptr;
}

bool finished(Load* l) { return l->answered + l->failed >= l->total; }

void answered(Conn* c, int status);

// Each whole answer the server sends: its status.
const http_parser_settings& answer_settings() {
  static const http_parser_settings settings = [] {
    http_parser_settings v;
    http_parser_settings_init(&v);
    v.on_message_complete = [](http_parser* p) {
      answered(static_cast<Conn*>(p->data), static_cast<int>(p->status_code));
      return 0;
    };
    return v;
  }();
  return settings;
}

void answered(Conn* c, int status) {
  Load* l = c->load;
  if (!c->busy) return;  // nothing was asked
  l->latencies_ns.push_back(now_ns() - c->due_ns);
  ++l->answered;
  if (status == 202) ++l->accepted;
  c->busy = false;
  if (!l->backlog.empty()) {
    auto [k, due] = l->backlog.front();
    l->backlog.pop_front();
    send(c, k, due);
  }
}

void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(s->data);
  Load* l = c->load;
  const char* broken = nullptr;  // why the connection is given up
  if (n < 0) broken = uv_strerror(static_cast<int>(n));
  else if (http_parser_execute(&c->parser, &answer_settings(), buf->base, static_cast<size_t>(n)) != static_cast<size_t>(n))
    broken = http_errno_description(HTTP_PARSER_ERRNO(&c->parser));
  if (broken) {
    std::fprintf(stderr, "serve_load: a connection ended: %s\n", broken);
    if (c->busy) ++l->failed;
    c->busy = false;
    c->connected = false;
    uv_read_stop(s);
  }
  delete[] buf->base;
  if (finished(l)) uv_stop(l->loop);
}

void on_tick(uv_timer_t* t) {
  auto* l = static_cast<Load*>(t->data);
  uint64_t now = now_ns();
  // Every connection gone, or three times the load's length and 10 s more:
  // what is still unanswered counts as failed.
  bool any = std::any_of(l->conns.begin(), l->conns.end(), [](Conn* c) { return c->connected; });
  if (!any || now - l->start_ns > 3 * l->total * l->interval_ns + 10'000'000'000ull) {
    l->failed = l->total - l->answered;
    uv_stop(l->loop);
    return;
  }
  while (l->next < l->total && l->start_ns + l->next * l->interval_ns <= now) {
    uint64_t due = l->start_ns + l->next * l->interval_ns;
    if (Conn* c = free_conn(l)) {
      send(c, l->next, due);
    } else {
      ++l->late;
      l->backlog.emplace_back(l->next, due);
    }
    ++l->next;
  }
  if (finished(l)) uv_stop(l->loop);
}

double percentile(std::vector<uint64_t>& v, double p) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return static_cast<double>(v[i]) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: serve_load PORT REQUESTS.tsv RATE SECONDS [CONNECTIONS]\n");
    return 2;
  }
  int port = std::atoi(argv[1]);
  double rate = std::atof(argv[3]);
  double seconds = std::atof(argv[4]);
  int connections = argc > 5 ? std::atoi(argv[5]) : 64;
  Load l;
  l.loop = uv_default_loop();
  std::ifstream in(argv[2]);
  for (std::string line; std::getline(in, line);) {
    size_t a = line.find('\t'), b = line.find('\t', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string body = line.substr(b + 1);
    l.requests.push_back("POST /hooks/github HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         "X-GitHub-Event: push\r\nX-GitHub-Delivery: " + line.substr(0, a) +
                         "\r\nX-Hub-Signature-256: " + line.substr(a + 1, b - a - 1) +
                         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  }
  l.total = static_cast<size_t>(rate * seconds);
  if (l.requests.size() < l.total) {
    std::fprintf(stderr, "serve_load: %zu requests in %s, %zu needed (repeats would be refused as replays)\n",
                 l.requests.size(), argv[2], l.total);
    return 2;
  }
  l.interval_ns = static_cast<uint64_t>(1e9 / rate);
  l.latencies_ns.reserve(l.total);
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", port, &addr);
  int pending = connections;
  for (int i = 0; i < connections; ++i) {
    auto* c = new Conn;
    c->load = &l;
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    uv_tcp_init(l.loop, &c->tcp);
    uv_tcp_nodelay(&c->tcp, 1);
    c->tcp.data = c;
    l.conns.push_back(c);
    auto* req = new uv_connect_t;
    req->data = &pending;
    uv_tcp_connect(req, &c->tcp, reinterpret_cast<sockaddr*>(&addr), [](uv_connect_t* r, int status) {
      auto* c = static_cast<Conn*>(r->handle->data);
      if (status == 0) {
        c->connected = true;
        uv_read_start(
            r->handle, [](uv_handle_t*, size_t size, uv_buf_t* b) { *b = uv_buf_init(new char[size], static_cast<unsigned>(size)); },
            on_read);
      } else {
        std::fprintf(stderr, "serve_load: connect: %s\n", uv_strerror(status));
      }
      if (--*static_cast<int*>(r->data) == 0) uv_stop(r->handle->loop);
      delete r;
    });
  }
  uv_run(l.loop, UV_RUN_DEFAULT);  // until every connection is made
  l.start_ns = now_ns();
  uv_timer_init(l.loop, &l.timer);
  l.timer.data = &l;
  uv_timer_start(&l.timer, on_tick, 0, 1);
  uv_run(l.loop, UV_RUN_DEFAULT);
  double took = static_cast<double>(now_ns() - l.start_ns) / 1e9;
  std::printf("BENCH-OPEN offered_per_s=%.0f connections=%d sent=%zu answered=%zu accepted=%zu failed=%zu "
              "seconds=%.2f answered_per_s=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f late=%zu\n",
              rate, connections, l.next, l.answered, l.accepted, l.failed, took,
              static_cast<double>(l.answered) / took, percentile(l.latencies_ns, 50), percentile(l.latencies_ns, 90),
              percentile(l.latencies_ns, 99), percentile(l.latencies_ns, 99.9), percentile(l.latencies_ns, 100),
              l.late);
  return 0;
}
