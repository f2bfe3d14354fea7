// API proxies from inside the real namespace sandbox: the host's `curl`
// (visible through the sandbox's /usr) reaches the proxies at the ports the
// step is told about, while every other way out fails. Probes exit 66 when
// an escape WORKED, so a probe that does not run cannot pass.
#include <boost/test/unit_test.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <thread>

#include "sandbox/sandbox.h"
#include "tests/support/hearth_process.h"
#include "tests/proxy/fixture.h"

using namespace hearth::testing;
using namespace hearth::sandbox;

namespace {

Sandbox& box() { return namespace_box(); }

ExecSpec spec_for(const std::string& script, const ProxyFixture& f) {
  Isolation iso;
  iso.network = Network::proxies;
  iso.forwards = f.server->forwards();
  ExecSpec spec = bash_spec(script, iso, std::chrono::seconds(60));
  for (auto& e : f.server->environment()) spec.env.push_back(e);
  return spec;
}

// Runs `spec` on the proxy's loop (which the proxy keeps alive) until it exits.
Exited run(ProxyFixture& f, const ExecSpec& spec) {
  Exited o;
  auto p = box().spawn(&f.loop, spec, filling(o));
  BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.message()));
  run_loop_until(&f.loop, [&] { return o.exits > 0; }, std::chrono::seconds(90));
  BOOST_TEST_MESSAGE(o.output);
  return o;
}

// A Unix socket server on the host that answers "got:" + all it read, once
// the client has finished writing. Serves one connection.
struct EchoServer {
  int fd = -1;
  std::thread thread;
  /// Answers `connections` connections, one after another.
  explicit EchoServer(const std::string& path, int connections = 1) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    BOOST_REQUIRE(::listen(fd, 4) == 0);
    thread = std::thread([s = fd, connections] {
      for (int i = 0; i < connections; ++i) {
        pollfd p{s, POLLIN, 0};
        if (::poll(&p, 1, 20000) != 1) return;
        int c = ::accept(s, nullptr, nullptr);
        std::string got;
        char buf[4096];
        for (ssize_t n; (n = ::read(c, buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
        std::string reply = "got:" + got;
        (void)::write(c, reply.data(), reply.size());
        ::close(c);
      }
    });
  }
  ~EchoServer() {
    thread.join();
    ::close(fd);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(proxy_sandbox)

BOOST_AUTO_TEST_CASE(curl_in_the_sandbox_reaches_the_proxy_and_never_sees_the_credential) {
  Upstream up;
  ProxyFixture f;
  f.start(kGithub, up.url());
  auto o = run(f, spec_for(R"(
    echo "url=$HEARTH_PROXY_GITHUB"
    curl -sS --max-time 20 "$HEARTH_PROXY_GITHUB/repos/o/r" || exit 3
    echo
    curl -sS --max-time 20 -o /dev/null -w 'post=%{http_code}\n' -X POST -d x "$HEARTH_PROXY_GITHUB/repos/o/r/issues"
    env | grep -c ghp_ ; true
  )",
                           f));
  BOOST_TEST(o.exit.exit_status == 0);
  BOOST_TEST(o.output.find("url=http://127.0.0.1:3129\n") != std::string::npos);
  BOOST_TEST(o.output.find("\"authorization\":\"Bearer ***\"") != std::string::npos);
  BOOST_TEST(o.output.find("post=403") != std::string::npos);
  BOOST_TEST(o.output.find(kToken) == std::string::npos);
  BOOST_TEST(o.output.find("\n0\n") != std::string::npos);  // no token in the environment either
  BOOST_REQUIRE(up.received().size() == 1u);
  BOOST_TEST(up.received()[0]["authorization"] == "Bearer " + kToken);
  BOOST_REQUIRE(f.events.size() == 2u);
  BOOST_TEST(f.events[0].status == 200);
  BOOST_TEST(f.events[1].status == 403);
}

BOOST_AUTO_TEST_CASE(direct_connections_to_the_host_or_anywhere_else_fail) {
  Upstream up;
  ProxyFixture f;
  f.start(kGithub, up.url());
  std::string port = std::to_string(up.port());
  auto o = run(f, spec_for("curl -sS --noproxy '*' --max-time 5 http://127.0.0.1:" + port + "/ && exit 66\n"
                           "curl -sS --noproxy '*' --max-time 5 http://10.1.2.3/ && exit 66\n"
                           "curl -sS --noproxy '*' --max-time 5 'http://[::1]:" + port + "/' && exit 66\n"
                           "test -e " + f.sock("github") + " && exit 66\n"
                           "ls " + f.dir.str() + " 2>&1\n"
                           "exit 0",
                           f));
  BOOST_TEST(o.exit.exit_status != kWorked, o.output);
  BOOST_TEST(o.exit.exit_status == 0, o.output);
  BOOST_TEST(o.output.find("Failed to connect to 127.0.0.1 port " + port) != std::string::npos);
  BOOST_TEST(o.output.find("Failed to connect to 10.1.2.3 port 80") != std::string::npos);
  BOOST_TEST(o.output.find("No such file or directory") != std::string::npos);  // the socket dir is not there
  BOOST_TEST(up.requests() == 0);
}

BOOST_AUTO_TEST_CASE(the_command_cannot_take_over_a_forwarded_port) {
  Upstream up;
  ProxyFixture f;
  f.start(kGithub, up.url());
  auto o = run(f, spec_for("perl -MIO::Socket::INET -e '"
                           "IO::Socket::INET->new(LocalAddr => \"127.0.0.1:3129\", Listen => 1, ReuseAddr => 1) and exit 66;"
                           "print \"bind: $!\\n\"; exit 1'",
                           f));
  BOOST_TEST(o.exit.exit_status != kWorked, o.output);
  BOOST_TEST(o.output.find("bind: Address already in use") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(https_proxy_tunnels_only_to_listed_egress_pairs) {
  TempDir certs;
  TestCa ca = TestCa::make(certs.path);
  Upstream listed(&ca, "127.0.0.2");
  Upstream unlisted(&ca, "127.0.0.2");
  ProxyFixture f;
  f.start(std::string(kGithub) + "[sandbox]\nnetwork = \"proxies\"\negress = [\"127.0.0.2:" +
              std::to_string(listed.port()) + "\"]\n",
          listed.url());
  auto spec = spec_for("curl -sS --max-time 20 --cacert /ca/ca.pem https://127.0.0.2:" + std::to_string(listed.port()) +
                           "/through || exit 3\necho\n"
                           "curl -sS --max-time 20 --cacert /ca/ca.pem https://127.0.0.2:" +
                           std::to_string(unlisted.port()) + "/blocked && exit 66\n"
                           "curl -sS --noproxy '*' --max-time 5 --cacert /ca/ca.pem https://127.0.0.2:" +
                           std::to_string(listed.port()) + "/direct && exit 66\n"
                           "exit 0",
                       f);
  spec.isolation.binds.push_back({certs.str(), "/ca", false});
  auto o = run(f, spec);
  BOOST_TEST(o.exit.exit_status == 0, o.output);
  BOOST_TEST(o.output.find("\"path\":\"/through\"") != std::string::npos);
  BOOST_TEST(o.output.find("CONNECT tunnel failed, response 403") != std::string::npos);
  BOOST_TEST(listed.requests() == 1);
  BOOST_TEST(unlisted.requests() == 0);
  f.stop();  // a tunnel's event comes when it ends
  BOOST_REQUIRE(f.events.size() == 2u);
  auto allowed = f.events[0].decision == "allowed" ? f.events[0] : f.events[1];
  auto denied = f.events[0].decision == "allowed" ? f.events[1] : f.events[0];
  BOOST_TEST(allowed.method == "CONNECT");
  BOOST_TEST(allowed.path == "127.0.0.2:" + std::to_string(listed.port()));
  BOOST_TEST(allowed.response_bytes > 0u);
  BOOST_TEST(denied.decision == "denied");
  BOOST_TEST(denied.rule == "egress");
  BOOST_TEST(denied.status == 403);
}

BOOST_AUTO_TEST_CASE(a_forward_relays_bytes_both_ways_including_the_end_of_input) {
  TempDir dir;
  std::string path = (dir.path / "echo.sock").string();
  EchoServer echo(path);
  uv_loop_t loop;
  uv_loop_init(&loop);
  ExecSpec spec;
  spec.argv = {"perl", "-MIO::Socket::INET", "-e",
               "$s = IO::Socket::INET->new('127.0.0.1:4000') or die \"connect: $!\\n\"; print $s 'hello';"
               "$s->shutdown(1); local $/; print <$s>;"};
  spec.env = {"PATH=/usr/bin:/bin"};
  spec.cwd = kWorkspaceInside;
  spec.isolation.network = Network::proxies;
  spec.isolation.forwards = {{4000, path}};
  spec.timeout = std::chrono::seconds(30);
  std::string out;
  int exits = 0;
  auto p = box().spawn(&loop, spec, {[&](std::string_view c) { out.append(c); }, [&](const ExitInfo& e) {
                                       ++exits;
                                       BOOST_TEST(e.exit_status == 0);
                                     }});
  BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.message()));
  uv_run(&loop, UV_RUN_DEFAULT);  // ends once the command and its forward are gone
  BOOST_TEST(exits == 1);
  BOOST_TEST(out == "got:hello");
  BOOST_TEST(uv_loop_close(&loop) == 0);
}

BOOST_AUTO_TEST_CASE(every_command_of_a_session_reaches_its_forwards) {
  TempDir dir;
  std::string path = (dir.path / "echo.sock").string();
  EchoServer echo(path, 2);
  uv_loop_t loop;
  uv_loop_init(&loop);
  ExecSpec base;
  base.isolation.network = Network::proxies;
  base.isolation.forwards = {{4000, path}};
  auto session = box().open_session(&loop, base);
  BOOST_REQUIRE_MESSAGE(session.ok(), (session.ok() ? "" : session.message()));
  std::string out;
  for (std::string word : {"one", "two"}) {
    ExecSpec cmd;
    cmd.argv = {"perl", "-MIO::Socket::INET", "-e",
                "$s = IO::Socket::INET->new('127.0.0.1:4000') or die \"connect: $!\\n\"; print $s '" + word +
                    "'; $s->shutdown(1); local $/; print <$s>, \"\\n\";"};
    cmd.env = {"PATH=/usr/bin:/bin"};
    cmd.timeout = std::chrono::seconds(30);
    bool ended = false;
    auto p = (*session)->exec(cmd, {[&](std::string_view c) { out.append(c); }, [&](const ExitInfo& e) {
                                      ended = true;
                                      BOOST_TEST(e.exit_status == 0);
                                    }});
    BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.message()));
    while (!ended) uv_run(&loop, UV_RUN_ONCE);
  }
  BOOST_TEST(out == "got:one\ngot:two\n");
  session->reset();  // closes: the helper, then the forward
  uv_run(&loop, UV_RUN_DEFAULT);
  BOOST_TEST(uv_loop_close(&loop) == 0);
}

BOOST_AUTO_TEST_CASE(hearth_sandbox_run_forwards_a_port_to_a_unix_socket) {
  TempDir dir;
  std::string path = (dir.path / "echo.sock").string();
  EchoServer echo(path);
  HearthProcess p({{"sandbox", "run", "--forward", "4000=" + path, "--env", "X=1", "--", "perl", "-MIO::Socket::INET",
                    "-e",
                    "$s = IO::Socket::INET->new('127.0.0.1:4000') or die \"connect: $!\\n\"; print $s \"x=$ENV{X}\";"
                    "$s->shutdown(1); local $/; print <$s>;"},
                   {},
                   dir.path});
  auto o = p.finish();
  BOOST_TEST(o.exit_code == 0, o.err);
  BOOST_TEST(o.out == "got:x=1");
  HearthProcess bad({{"sandbox", "run", "--forward", "4000", "--", "true"}, {}, dir.path});
  auto b = bad.finish();
  BOOST_TEST(b.exit_code == 2);
  BOOST_TEST(b.err.find("--forward 4000: expected PORT=SOCKET") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(forwards_need_the_proxies_network_and_the_namespace_backend) {
  Upstream up;
  ProxyFixture f;
  f.start(kGithub, up.url());
  auto spec = spec_for("true", f);
  spec.isolation.network = Network::none;
  auto p = box().spawn(&f.loop, spec, {});
  BOOST_REQUIRE(!p.ok());
  BOOST_TEST(p.message().find("need network = proxies") != std::string::npos);
  spec.isolation.network = Network::proxies;
  spec.isolation.forwards.push_back(spec.isolation.forwards[0]);
  auto twice = box().spawn(&f.loop, spec, {});
  BOOST_REQUIRE(!twice.ok());
  BOOST_TEST(twice.message().find("is forwarded twice") != std::string::npos);
  auto local = make_local_sandbox()->spawn(&f.loop, spec_for("true", f), {});
  BOOST_REQUIRE(!local.ok());
  BOOST_TEST(local.message().find("cannot forward loopback ports") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
