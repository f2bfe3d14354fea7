// The broker and the shim, end to end: the real hearth-shim linked under a
// command's name, talking over a real Unix socket to a broker on a real
// loop, which runs real programs. What the caller gets back never holds a
// secret, and nothing it starts outlives it.
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "commands/broker.h"
#include "commands/protocol.h"
#include "tests/support/files.h"
#include "tests/support/loop.h"

using namespace hearth::commands;
using namespace hearth::testing;

namespace {

const std::string kSecret = "s3cr3t-T0KEN-value-4242";

struct Call {
  std::string out, err;
  int64_t status = -1;
};

struct Fixture : LoopFixture {
  TempDir tmp;
  fs::path dir = tmp.path;
  fs::path workspace, bin;
  Broker* broker = nullptr;
  std::vector<Invocation> started, finished;
  std::string shim_cwd, shim_workspace;  // where the shim runs and what it takes as /workspace (default: workspace)
  std::function<void(std::function<void(const hearth::Status&)>)> when_recorded;  // set before start()

  Fixture() {
    workspace = dir / "ws";
    bin = dir / "bin";
    fs::create_directories(workspace);
    fs::create_directories(bin);
  }
  ~Fixture() {
    if (broker) broker->close(nullptr);
  }

  GrantedCommand command(const std::string& name, const std::string& exec, std::vector<std::string> allow,
                         std::vector<std::string> deny = {}) {
    auto p = make_policy(name, allow, deny, {}, "test");
    BOOST_REQUIRE(p.ok());
    fs::create_symlink(getenv("HEARTH_SHIM"), bin / name);
    return GrantedCommand{name, exec, *p, {"SECRET=" + kSecret, "PATH=/usr/bin:/bin"},
                          std::chrono::milliseconds(10000), {}};
  }

  void start(std::vector<GrantedCommand> commands, std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    for (auto& c : commands) c.timeout = timeout;
    auto secrets = std::make_shared<SecretSet>();
    BOOST_REQUIRE(secrets->add("SECRET", kSecret).ok());
    BrokerOptions o;
    o.socket_path = (dir / "commands.sock").string();
    o.workspace = workspace.string();
    o.commands = std::move(commands);
    o.secrets = secrets;
    o.kill_grace = std::chrono::milliseconds(500);
    o.on_started = [this](const Invocation& i) {
      started.push_back(i);
      return hearth::Status{};
    };
    o.on_finished = [this](const Invocation& i) { finished.push_back(i); };
    o.when_recorded = when_recorded;
    auto b = Broker::start(&loop, std::move(o));
    BOOST_REQUIRE_MESSAGE(b.ok(), (b.ok() ? "" : b.message()));
    broker = *b;
  }

  // Runs `name args...` through the shim, as a step inside the workspace would.
  Call call(const std::string& name, std::vector<std::string> args, const std::string& input = "",
            std::function<void(int pid)> while_running = nullptr) {
    Call c;
    struct Ctx {
      Call* call;
      uv_pipe_t in, out, err;
      uv_process_t proc;
      std::string input;
      int open = 0;
    } ctx{&c, {}, {}, {}, {}, input, 0};
    static auto closed = [](uv_handle_t* h) noexcept { --static_cast<Ctx*>(h->data)->open; };
    for (auto* p : {&ctx.in, &ctx.out, &ctx.err}) {
      uv_pipe_init(&loop, p, 0);
      p->data = &ctx;
    }
    std::string path = (bin / name).string();
    std::vector<std::string> argv_s{path};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string e1 = "HEARTH_COMMAND_SOCKET=" + (dir / "commands.sock").string();
    std::string e2 = "HEARTH_WORKSPACE=" + (shim_workspace.empty() ? workspace.string() : shim_workspace);
    char* env[] = {e1.data(), e2.data(), nullptr};
    uv_stdio_container_t stdio[3];
    stdio[0].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_READABLE_PIPE);
    stdio[0].data.stream = reinterpret_cast<uv_stream_t*>(&ctx.in);
    stdio[1].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    stdio[1].data.stream = reinterpret_cast<uv_stream_t*>(&ctx.out);
    stdio[2].flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
    stdio[2].data.stream = reinterpret_cast<uv_stream_t*>(&ctx.err);
    uv_process_options_t o{};
    o.file = path.c_str();
    o.args = argv.data();
    o.env = env;
    std::string cwd = shim_cwd.empty() ? workspace.string() : shim_cwd;
    o.cwd = cwd.c_str();
    o.stdio_count = 3;
    o.stdio = stdio;
    ctx.proc.data = &ctx;
    o.exit_cb = [](uv_process_t* p, int64_t status, int sig) noexcept {
      auto* x = static_cast<Ctx*>(p->data);
      x->call->status = sig ? 128 + sig : status;
      uv_close(reinterpret_cast<uv_handle_t*>(p), closed);
    };
    int rc = uv_spawn(&loop, &ctx.proc, &o);
    BOOST_REQUIRE(rc == 0);
    auto alloc = [](uv_handle_t*, size_t, uv_buf_t* b) noexcept {
      static char buf[65536];
      *b = uv_buf_init(buf, sizeof buf);
    };
    auto on_read = [](uv_stream_t* s, ssize_t n, const uv_buf_t* b) noexcept {
      auto* x = static_cast<Ctx*>(s->data);
      if (n < 0) {
        uv_close(reinterpret_cast<uv_handle_t*>(s), closed);
        return;
      }
      (s == reinterpret_cast<uv_stream_t*>(&x->out) ? x->call->out : x->call->err).append(b->base, static_cast<size_t>(n));
    };
    uv_read_start(reinterpret_cast<uv_stream_t*>(&ctx.out), alloc, on_read);
    uv_read_start(reinterpret_cast<uv_stream_t*>(&ctx.err), alloc, on_read);
    auto* w = new uv_write_t;
    uv_buf_t b = uv_buf_init(ctx.input.data(), static_cast<unsigned>(ctx.input.size()));
    uv_write(w, reinterpret_cast<uv_stream_t*>(&ctx.in), &b, 1, [](uv_write_t* r, int) noexcept {
      auto* x = static_cast<Ctx*>(r->handle->data);
      uv_close(reinterpret_cast<uv_handle_t*>(&x->in), closed);
      delete r;
    });
    ctx.open = 4;
    if (while_running) while_running(ctx.proc.pid);
    // The broker's server keeps the loop alive: turn it until the shim's handles are closed.
    while (ctx.open > 0) uv_run(&loop, UV_RUN_ONCE);
    return c;
  }
};

bool alive(int pid) { return ::kill(pid, 0) == 0; }

}  // namespace

BOOST_AUTO_TEST_SUITE(broker)

BOOST_AUTO_TEST_CASE(a_granted_call_runs_the_real_program_with_only_its_environment_and_hides_the_secret) {
  Fixture f;
  setenv("HEARTH_ENGINE_ONLY", "engine-side-value", 1);
  f.start({f.command("env", "/usr/bin/env", {""})});
  Call c = f.call("env", {});
  unsetenv("HEARTH_ENGINE_ONLY");
  BOOST_TEST(c.status == 0);
  BOOST_TEST(c.out.find("SECRET=***\n") != std::string::npos, c.out);
  BOOST_TEST(c.out.find("PATH=/usr/bin:/bin") != std::string::npos, c.out);
  BOOST_TEST(c.out.find(kSecret) == std::string::npos);
  BOOST_TEST(c.out.find("HEARTH_ENGINE_ONLY") == std::string::npos, "the engine's environment leaked");
  BOOST_REQUIRE(f.finished.size() == 1u);
  BOOST_TEST(f.finished[0].exit_code == 0);
  BOOST_TEST(f.finished[0].output_tail.find(kSecret) == std::string::npos);
  BOOST_TEST(f.finished[0].output_sha256.size() == 64u);
}

BOOST_AUTO_TEST_CASE(encoded_and_split_forms_of_the_secret_are_hidden_too) {
  Fixture f;
  f.start({f.command("sh", "/bin/sh", {"-c ?*"})});
  Call c = f.call("sh", {"-c", "printf %s \"$SECRET\"; printf 'user:%s' \"$SECRET\" | base64 -w0; echo; "
                               "printf %s \"$SECRET\" | head -c 9; sleep 0.05; printf %s \"$SECRET\" | tail -c +10; "
                               "printf %s \"$SECRET\" >&2"});
  BOOST_TEST(c.status == 0);
  BOOST_TEST(c.out.find("s3cr3t") == std::string::npos, c.out);
  BOOST_TEST(c.out.find("***") != std::string::npos, c.out);
  BOOST_TEST(c.err == "***");
}

BOOST_AUTO_TEST_CASE(calls_outside_the_grant_are_refused_with_the_grant_that_would_be_needed) {
  Fixture f;
  f.start({f.command("gh", "/bin/echo", {"issue view *"}, {"* --hostname *"})});
  fs::create_symlink(getenv("HEARTH_SHIM"), f.bin / "npm");
  Call denied = f.call("gh", {"auth", "token"});
  BOOST_TEST(denied.status == 126);
  BOOST_TEST(denied.out.empty());
  BOOST_TEST(denied.err.find("'gh auth token' is not granted") != std::string::npos, denied.err);
  BOOST_TEST(denied.err.find("gh issue view *") != std::string::npos, denied.err);
  Call host = f.call("gh", {"issue", "view", "1", "--hostname", "evil"});
  BOOST_TEST(host.status == 126);
  BOOST_TEST(host.err.find("deny pattern \"* --hostname *\"") != std::string::npos, host.err);
  Call other = f.call("npm", {"publish"});
  BOOST_TEST(other.status == 126);
  BOOST_TEST(other.err.find("command 'npm' is not granted to this step (granted: gh)") != std::string::npos, other.err);
  Call ok = f.call("gh", {"issue", "view", "12"});
  BOOST_TEST(ok.status == 0);
  BOOST_TEST(ok.out == "issue view 12\n");
  BOOST_REQUIRE(f.finished.size() == 4u);
  BOOST_TEST(!f.finished[0].allowed);
  BOOST_TEST(f.finished[3].rule == "allow: issue view *");
}

// The engine holds a call until its journal entry is on disk: the program
// must not start before, and what the shim sends meanwhile is not lost.
struct HeldCall {
  uv_timer_t timer{};
  std::function<void(const hearth::Status&)> then;
  hearth::Status answer;
  bool started_early = false;
  int asked = 0;  // calls held
  bool answered = false;
  fs::path marker;
};

void hold_then_answer(Fixture& f, HeldCall& held) {
  f.when_recorded = [&f, &held](std::function<void(const hearth::Status&)> then) {
    ++held.asked;
    held.then = std::move(then);
    uv_timer_init(&f.loop, &held.timer);
    held.timer.data = &held;
    uv_timer_start(&held.timer, [](uv_timer_t* t) noexcept {
      auto* h = static_cast<HeldCall*>(t->data);
      h->started_early = fs::exists(h->marker);
      h->then(h->answer);
      h->answered = true;
      uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
    }, 150, 0);
  };
}

BOOST_AUTO_TEST_CASE(a_program_starts_only_once_its_call_is_recorded_and_gets_the_input_sent_meanwhile) {
  Fixture f;
  HeldCall held;
  held.marker = f.workspace / "ran";
  hold_then_answer(f, held);
  f.start({f.command("sh", "/bin/sh", {"-c ?*"})});
  Call c = f.call("sh", {"-c", "touch ran; cat"}, "sent while the call was held\n");
  BOOST_TEST(held.asked == 1, "the broker did not wait for the call's record");
  BOOST_TEST(!held.started_early, "the program ran before its call was recorded");
  BOOST_TEST(c.status == 0);
  BOOST_TEST(c.out == "sent while the call was held\n");
  BOOST_TEST(fs::exists(held.marker));
  BOOST_TEST(f.started.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_shim_killed_while_its_call_is_recorded_never_gets_its_program_started) {
  Fixture f;
  HeldCall held;
  held.marker = f.workspace / "ran";
  hold_then_answer(f, held);
  f.start({f.command("sh", "/bin/sh", {"-c ?*"})});
  Call c = f.call("sh", {"-c", "touch ran; exec sleep 30"}, "", [&](int shim) {
    for (int i = 0; i < 400 && held.asked == 0; ++i) uv_run(&f.loop, UV_RUN_NOWAIT), usleep(5000);
    BOOST_REQUIRE(held.asked == 1);
    ::kill(shim, SIGKILL);
  });
  BOOST_TEST(c.status == 128 + SIGKILL);
  // The record's answer comes after the shim is gone.
  for (int i = 0; i < 200 && (!held.answered || f.broker->active() > 0); ++i) uv_run(&f.loop, UV_RUN_NOWAIT), usleep(5000);
  BOOST_TEST(f.broker->active() == 0u);
  BOOST_REQUIRE(f.finished.size() == 1u);
  BOOST_TEST(f.finished[0].shim_gone, "the journal does not say the shim went away");
  BOOST_TEST(f.finished[0].exit_code == -1, "a program was started for a shim that was gone");
  BOOST_TEST(!fs::exists(held.marker), "a program was started for a shim that was gone");
}

BOOST_AUTO_TEST_CASE(a_call_whose_record_fails_to_reach_the_disk_never_starts) {
  Fixture f;
  HeldCall held;
  held.marker = f.workspace / "ran";
  held.answer = hearth::Error{"disk I/O error"};
  hold_then_answer(f, held);
  f.start({f.command("sh", "/bin/sh", {"-c ?*"})});
  Call c = f.call("sh", {"-c", "touch ran"});
  BOOST_TEST(c.status == 126);
  BOOST_TEST(c.err.find("cannot be recorded: disk I/O error") != std::string::npos, c.err);
  BOOST_TEST(!fs::exists(held.marker), "the program ran though its call was never recorded");
}

BOOST_AUTO_TEST_CASE(stdin_and_large_binary_output_pass_through_unchanged) {
  Fixture f;
  f.start({f.command("cat", "/bin/cat", {""})});
  std::string data;
  std::mt19937 rng(3);
  for (int i = 0; i < 3 * 1024 * 1024; ++i) data += static_cast<char>(rng() & 0xff);
  Call c = f.call("cat", {}, data);
  BOOST_TEST(c.status == 0);
  BOOST_TEST(c.out.size() == data.size());
  BOOST_TEST((c.out == data));
}

BOOST_AUTO_TEST_CASE(path_arguments_stay_inside_the_workspace) {
  Fixture f;
  f.start({f.command("cat", "/bin/cat", {"*"})});
  std::ofstream(f.workspace / "notes.txt") << "inside\n";
  fs::create_symlink("/etc/passwd", f.workspace / "link");
  BOOST_TEST(f.call("cat", {"notes.txt"}).out == "inside\n");
  BOOST_TEST(f.call("cat", {"/workspace/notes.txt"}).out == "inside\n");
  for (std::string bad : {"/etc/passwd", "../outside", "/workspace/../etc/passwd", "link", "/workspace/link"}) {
    Call c = f.call("cat", {bad});
    BOOST_TEST(c.status == 126, bad);
    BOOST_TEST(c.out.find("root:") == std::string::npos, bad);
    BOOST_TEST(c.err.find("workspace") != std::string::npos, c.err);
  }
}

BOOST_AUTO_TEST_CASE(a_configuration_file_of_the_program_in_the_workspace_refuses_the_call) {
  Fixture f;
  GrantedCommand npm = f.command("npm", "/bin/echo", {"*"});
  npm.workspace_config_files = {".npmrc"};
  f.start({npm});
  BOOST_TEST(f.call("npm", {"view", "x"}).out == "view x\n");
  std::ofstream(f.workspace / ".npmrc") << "registry=http://evil.example/\n";
  Call c = f.call("npm", {"view", "x"});
  BOOST_TEST(c.status == 126);
  BOOST_TEST(c.out.empty());  // the program never ran
  BOOST_TEST(c.err.find("would read /workspace/.npmrc") != std::string::npos, c.err);
  BOOST_TEST(c.err.find("[commands.npm] env") != std::string::npos, c.err);
  fs::remove(f.workspace / ".npmrc");
  fs::create_symlink("/nonexistent", f.workspace / ".npmrc");  // a dangling link counts too
  BOOST_TEST(f.call("npm", {"view", "x"}).status == 126);
}

BOOST_AUTO_TEST_CASE(joined_short_options_and_paths_still_to_be_made_are_checked_where_they_lead) {
  Fixture f;
  f.start({f.command("echo", "/bin/echo", {"*"})});
  fs::create_directories(f.dir / "outside");
  fs::create_symlink(f.dir / "outside", f.workspace / "out");  // a link the step planted
  fs::create_directories(f.workspace / "patches");
  BOOST_TEST(f.call("echo", {"-o", "patches/new"}).status == 0);
  BOOST_TEST(f.call("echo", {"-F/workspace/patches"}).out == "-F" + (f.workspace / "patches").string() + "\n");
  for (std::string bad : {"-F/etc/passwd", "-F=/etc/passwd", "-qF../x", "out/new", "-oout/new", "--output=out/new/deeper"}) {
    Call c = f.call("echo", {bad});
    BOOST_TEST(c.status == 126, bad);
    BOOST_TEST(c.err.find("workspace") != std::string::npos, c.err);
  }
}

BOOST_AUTO_TEST_CASE(configuration_files_are_looked_for_from_the_physical_directory) {
  Fixture f;
  GrantedCommand npm = f.command("npm", "/bin/echo", {"*"});
  npm.workspace_config_files = {".npmrc"};
  f.start({npm});
  fs::create_directories(f.workspace / "real" / "sub");
  std::ofstream(f.workspace / "real" / ".npmrc") << "registry=http://evil.example/\n";
  fs::create_symlink("real/sub", f.workspace / "sub");
  // The shim sends the directory relative to HEARTH_WORKSPACE: a step can name "sub".
  f.shim_cwd = (f.workspace / "real" / "sub").string();
  f.shim_workspace = (f.workspace / "real").string();
  Call c = f.call("npm", {"view", "x"});
  BOOST_TEST(c.status == 126);
  BOOST_TEST(c.err.find("would read /workspace/real/.npmrc") != std::string::npos, c.err);
}

BOOST_AUTO_TEST_CASE(the_timeout_kills_the_program_and_its_children) {
  Fixture f;
  f.start({f.command("sh", "/bin/sh", {"-c ?*"})}, std::chrono::milliseconds(300));
  Call c = f.call("sh", {"-c", "sleep 30 & echo $! > child.pid; sleep 30"});
  BOOST_TEST(c.status == 128 + SIGTERM);
  BOOST_REQUIRE(f.finished.size() == 1u);
  BOOST_TEST(f.finished[0].timed_out);
  int child = std::stoi(read_file(f.workspace / "child.pid"));
  for (int i = 0; i < 100 && alive(child); ++i) usleep(20000);
  BOOST_TEST(!alive(child), "the program's child outlived the timeout");
}

BOOST_AUTO_TEST_CASE(a_killed_shim_does_not_leave_the_host_program_running) {
  Fixture f;
  f.start({f.command("sh", "/bin/sh", {"-c ?*"})});
  int program = 0;
  Call c = f.call("sh", {"-c", "echo $$ > prog.pid; exec sleep 30"}, "", [&](int shim) {
    // Wait for the program to start on the host, then kill the shim.
    for (int i = 0; i < 400 && !fs::exists(f.workspace / "prog.pid"); ++i) uv_run(&f.loop, UV_RUN_NOWAIT), usleep(5000);
    for (int i = 0; i < 100 && read_file(f.workspace / "prog.pid").empty(); ++i) usleep(5000);
    program = std::stoi(read_file(f.workspace / "prog.pid"));
    ::kill(shim, SIGKILL);
  });
  BOOST_TEST(c.status == 128 + SIGKILL);
  for (int i = 0; i < 200 && f.broker->active() > 0; ++i) uv_run(&f.loop, UV_RUN_NOWAIT), usleep(5000);
  BOOST_TEST(f.broker->active() == 0u);
  for (int i = 0; i < 100 && alive(program); ++i) usleep(20000);
  BOOST_TEST(!alive(program), "the host program outlived its shim");
  BOOST_REQUIRE(f.finished.size() == 1u);
  BOOST_TEST(f.finished[0].shim_gone);
}

BOOST_AUTO_TEST_CASE(malformed_frames_end_that_connection_only) {
  Fixture f;
  f.start({f.command("echo", "/bin/echo", {"*"})});
  for (std::string junk : {std::string("\x09\0\0\0\0", 5), std::string("\x01\x7f\xff\xff\xff", 5),
                           encode_frame(FrameType::request, "not json"),
                           encode_frame(FrameType::stdin_data, "before any request")}) {
    int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::string path = (f.dir / "commands.sock").string();
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    BOOST_REQUIRE(::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    BOOST_REQUIRE(::write(s, junk.data(), junk.size()) == static_cast<ssize_t>(junk.size()));
    char buf[64];
    ssize_t n = 1;
    for (int i = 0; i < 200 && n != 0; ++i) {
      uv_run(&f.loop, UV_RUN_NOWAIT);
      n = ::recv(s, buf, sizeof buf, MSG_DONTWAIT);
      if (n < 0) usleep(5000);
    }
    BOOST_TEST(n == 0, "the broker kept a connection that sent junk");
    ::close(s);
  }
  Call c = f.call("echo", {"still", "serving"});
  BOOST_TEST(c.out == "still serving\n");
}

BOOST_AUTO_TEST_CASE(a_secret_in_the_arguments_is_redacted_in_the_journal) {
  Fixture f;
  f.start({f.command("echo", "/bin/echo", {"*"})});
  Call c = f.call("echo", {"token=" + kSecret});
  BOOST_TEST(c.out == "token=***\n");
  BOOST_REQUIRE(f.started.size() == 1u);
  BOOST_TEST(f.started[0].argv.at(1) == "token=***");
  BOOST_TEST(f.started[0].sequence == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
