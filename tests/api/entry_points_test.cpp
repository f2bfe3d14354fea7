// The `hearth` command's entry points in the public API (server.h,
// sandbox.h), used the way an embedding program would: include/ only, a
// real store, a real listening socket, a real child process.
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <hearth/hearth.h>
#include <hearth/sandbox.h>
#include <hearth/server.h>

namespace fs = std::filesystem;

namespace {

// Boost evaluates a check's message even when the check passes.
template <class R>
std::string why(const R& r) {
  return r.ok() ? std::string() : r.message();
}

struct Loop {
  fs::path dir;
  uv_loop_t loop{};
  std::unique_ptr<hearth::Engine> engine;
  Loop() {
    char tmpl[] = "/tmp/hearth-entry-XXXXXX";
    dir = mkdtemp(tmpl);
    uv_loop_init(&loop);
    auto e = hearth::Engine::open(&loop, {.state_path = (dir / "state.db").string(), .repo = dir.string()});
    BOOST_REQUIRE_MESSAGE(e.ok(), why(e));
    engine = std::move(*e);
  }
  ~Loop() {
    engine.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    BOOST_TEST(uv_loop_close(&loop) == 0, "a handle outlived the server or the engine");
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

// One GET over a blocking socket (the server closes after it); the status line.
std::string http_get(const std::string& address, const std::string& path) {
  auto colon = address.rfind(':');
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    close(fd);
    return "";
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out.substr(0, out.find("\r\n"));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(entry_points)

BOOST_AUTO_TEST_CASE(the_webhook_server_refuses_to_start_without_a_secret) {
  Loop l;
  hearth::Server server(*l.engine, {.port = 0});
  auto s = server.start();
  BOOST_TEST(!s.ok());
  BOOST_TEST(why(s).find("webhook_secret") != std::string::npos);
  BOOST_TEST(server.address().empty());
  bool done = false;
  server.shutdown([&](bool) { done = true; });
  uv_run(&l.loop, UV_RUN_DEFAULT);
  BOOST_TEST(done);
}

BOOST_AUTO_TEST_CASE(the_webhook_server_answers_on_the_hosts_loop_and_shuts_down) {
  Loop l;
  hearth::Server server(*l.engine, {.port = 0, .webhook_secret = "s3cret", .api_token = "tok"});
  auto s = server.start();
  BOOST_REQUIRE_MESSAGE(s.ok(), why(s));
  std::string address = server.address();
  BOOST_TEST(address.rfind("127.0.0.1:", 0) == 0);
  // The client runs on a thread of its own; the server answers on this loop.
  std::string health, runs;
  uv_thread_t client;
  struct Ask {
    std::string address, *health, *runs;
    hearth::Server* server;
    uv_async_t done;
  } ask{address, &health, &runs, &server, {}};
  uv_async_init(&l.loop, &ask.done, [](uv_async_t* a) noexcept {
    static_cast<Ask*>(a->data)->server->shutdown(nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
  });
  ask.done.data = &ask;
  uv_thread_create(&client, [](void* p) {
    auto* a = static_cast<Ask*>(p);
    *a->health = http_get(a->address, "/healthz");
    *a->runs = http_get(a->address, "/runs");  // no token
    uv_async_send(&a->done);
  }, &ask);
  uv_run(&l.loop, UV_RUN_DEFAULT);
  uv_thread_join(&client);
  BOOST_TEST(health == "HTTP/1.1 200 OK");
  BOOST_TEST(runs.find(" 401 ") != std::string::npos, runs);
  BOOST_TEST(!server.failed());
}

BOOST_AUTO_TEST_CASE(one_command_runs_in_the_local_backend_with_only_the_given_environment) {
  setenv("HEARTH_ENTRY_POINTS_LEAK", "visible", 1);
  std::string out;
  auto exit = hearth::run_sandboxed({.argv = {"/bin/sh", "-c", "echo \"$GREETING ${HEARTH_ENTRY_POINTS_LEAK:-unset}\"; exit 7"},
                                     .env = {"GREETING=hello"},
                                     .local = true},
                                    [&](std::string_view chunk) { out += chunk; });
  unsetenv("HEARTH_ENTRY_POINTS_LEAK");
  BOOST_REQUIRE_MESSAGE(exit.ok(), why(exit));
  BOOST_TEST(out == "hello unset\n");
  BOOST_TEST(exit->exit_status == 7);
  BOOST_TEST(!exit->timed_out);
}

BOOST_AUTO_TEST_CASE(a_command_past_its_timeout_is_killed_and_said_so) {
  auto exit = hearth::run_sandboxed({.argv = {"/bin/sleep", "30"}, .timeout = std::chrono::milliseconds(200), .local = true},
                                    [](std::string_view) {});
  BOOST_REQUIRE_MESSAGE(exit.ok(), why(exit));
  BOOST_TEST(exit->timed_out);
}

BOOST_AUTO_TEST_CASE(sizes_and_durations_parse_as_a_workflow_writes_them) {
  BOOST_TEST(*hearth::parse_size("512M") == 512ull << 20);
  BOOST_TEST(!hearth::parse_size("12 parsecs").ok());
  BOOST_TEST(hearth::parse_duration("1h30m")->count() == 90 * 60 * 1000);
  BOOST_TEST(!hearth::parse_duration("soon").ok());
}

BOOST_AUTO_TEST_SUITE_END()
