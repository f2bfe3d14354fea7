// The agent's file tools, used as a hostile agent would: symlinks planted to
// leave the workspace, `..` and absolute paths, a directory swapped for a
// symlink while the tools run, huge and binary files, bad UTF-8, FIFOs.
// Every escape probe looks for a marker that exists only outside the
// workspace, so a probe that silently did nothing cannot pass by accident.
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "agent/agents_md.h"
#include "agent/bash.h"
#include "agent/tools.h"

namespace fs = std::filesystem;
using hearth::agent::FileTools;
using hearth::agent::ToolLimits;
using hearth::agent::ToolResult;
using hearth::agent::WorkspaceOptions;
using nlohmann::json;

namespace {

const char* const kMarker = "OUTSIDE-SECRET-7f3a";

// <tmp>/ws is the workspace; <tmp>/secret.txt and <tmp>/outdir/secret.txt hold the marker.
struct Sandbox {
  fs::path top, ws;
  std::optional<FileTools> tools;
  explicit Sandbox(ToolLimits limits = {}, WorkspaceOptions options = {}) {
    std::string t = (fs::temp_directory_path() / "hearth-tools-XXXXXX").string();
    top = mkdtemp(t.data());
    ws = top / "ws";
    fs::create_directories(ws);
    fs::create_directories(top / "outdir");
    std::ofstream(top / "secret.txt") << kMarker << "\n";
    std::ofstream(top / "outdir" / "secret.txt") << kMarker << "\n";
    auto r = FileTools::open(ws.string(), limits, options);
    BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.message()));
    tools.emplace(std::move(*r));
  }
  ~Sandbox() {
    std::error_code ec;
    fs::remove_all(top, ec);
  }
  void put(const fs::path& rel, const std::string& text) const {
    fs::create_directories((ws / rel).parent_path());
    std::ofstream(ws / rel, std::ios::binary) << text;
  }
  std::string get(const fs::path& rel) const {
    std::ifstream in(ws / rel, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  ToolResult call(const std::string& name, const json& args) const {
    ToolResult r = tools->call(name, args);
    // Whatever happened, the text must be sendable to the model as JSON.
    BOOST_CHECK_NO_THROW((void)json(r.text).dump());
    return r;
  }
  bool outside_intact() const {
    std::ifstream in(top / "secret.txt");
    std::string s;
    std::getline(in, s);
    return s == kMarker && !fs::exists(top / "pwned") && !fs::exists(top / "outdir" / "pwned");
  }
};

bool has(const ToolResult& r, const std::string& needle) { return r.text.find(needle) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(agent_tools)

BOOST_AUTO_TEST_CASE(read_numbers_lines_and_says_how_to_continue) {
  Sandbox s;
  std::string text;
  for (int i = 1; i <= 5000; ++i) text += "line " + std::to_string(i) + "\n";
  s.put("src/big.txt", text);
  ToolResult r = s.call("read", {{"path", "src/big.txt"}});
  BOOST_TEST(!r.is_error);
  BOOST_TEST(r.text.rfind("     1\tline 1\n     2\tline 2\n", 0) == 0);
  BOOST_TEST(has(r, "  2000\tline 2000\n"));
  BOOST_TEST(!has(r, "line 2001"));
  BOOST_TEST(has(r, "[truncated: showed lines 1-2000 of 5000; call read with offset=2001 to continue]"));
  ToolResult range = s.call("read", {{"path", "/workspace/src/big.txt"}, {"offset", 4999}, {"limit", 10}});
  BOOST_TEST(range.text == "  4999\tline 4999\n  5000\tline 5000\n");
  ToolResult past = s.call("read", {{"path", "src/big.txt"}, {"offset", 6000}});
  BOOST_TEST(past.is_error);
  BOOST_TEST(has(past, "past the end"));
  BOOST_TEST(has(s.call("read", {{"path", "nope.txt"}}), "'nope.txt' does not exist in the workspace"));
}

BOOST_AUTO_TEST_CASE(invalid_arguments_name_the_field) {
  Sandbox s;
  s.put("a.txt", "x\n");
  auto err = [&](const std::string& tool, const json& args, const std::string& needle) {
    ToolResult r = s.call(tool, args);
    BOOST_TEST(r.is_error, tool << args.dump());
    BOOST_TEST(has(r, needle), r.text << " lacks " << needle);
  };
  err("read", json::object(), "read: field 'path' is required");
  err("read", {{"path", 7}}, "field 'path' must be a string, not number");
  err("read", {{"path", "a.txt"}, {"offset", 0}}, "field 'offset' must be between 1");
  err("read", {{"path", "a.txt"}, {"offset", "3"}}, "field 'offset' must be an integer");
  err("read", {{"path", "a.txt"}, {"lines", 3}}, "unknown field 'lines'");
  err("read", json::array({"a.txt"}), "arguments must be a JSON object");
  err("write", {{"path", "b.txt"}}, "field 'content' is required");
  err("edit", {{"path", "a.txt"}, {"old_string", "x"}, {"new_string", "y"}, {"replace_all", "yes"}},
      "field 'replace_all' must be true or false");
  err("grep", {{"pattern", "("}}, "field 'pattern' is not a valid regular expression");
  err("grep", {{"pattern", "x"}, {"max_results", 100000}}, "field 'max_results' must be between 1 and 2000");
  err("glob", {{"pattern", ""}}, "field 'pattern' is empty");
  err("frobnicate", json::object(), "unknown tool 'frobnicate'");
}

BOOST_AUTO_TEST_CASE(schemas_and_argument_checks_agree) {
  // Every schema is a closed object whose required fields exist; leaving any
  // required field out is refused with that field's name.
  Sandbox s;
  std::vector<std::string> names;
  for (const auto& d : FileTools::definitions()) {
    names.push_back(d.name);
    BOOST_TEST(!d.description.empty());
    BOOST_TEST(d.input_schema["type"] == "object");
    BOOST_TEST(d.input_schema["additionalProperties"] == false);
    json full = json::object();
    for (const auto& req : d.input_schema["required"]) {
      BOOST_TEST(d.input_schema["properties"].contains(req.get<std::string>()));
      full[req.get<std::string>()] = "x";
    }
    for (const auto& req : d.input_schema["required"]) {
      json missing = full;
      missing.erase(req.get<std::string>());
      ToolResult r = s.call(d.name, missing);
      BOOST_TEST(r.is_error);
      BOOST_TEST(has(r, "field '" + req.get<std::string>() + "' is required"), r.text);
    }
    BOOST_TEST(FileTools::has(d.name));
  }
  BOOST_TEST(names == (std::vector<std::string>{"read", "write", "edit", "glob", "grep"}), boost::test_tools::per_element());
  BOOST_TEST(hearth::agent::bash_definition().input_schema["required"] == json::array({"command"}));
}

BOOST_AUTO_TEST_CASE(write_creates_parents_and_edit_replaces_exact_strings) {
  Sandbox s;
  ToolResult w = s.call("write", {{"path", "deep/er/file.c"}, {"content", "int a = 1;\nint b = 1;\nint a2 = 1;\n"}});
  BOOST_TEST(!w.is_error, w.text);
  BOOST_TEST(w.text == "wrote 34 bytes to deep/er/file.c");
  BOOST_TEST(s.get("deep/er/file.c") == "int a = 1;\nint b = 1;\nint a2 = 1;\n");

  ToolResult amb = s.call("edit", {{"path", "deep/er/file.c"}, {"old_string", " = 1;"}, {"new_string", " = 2;"}});
  BOOST_TEST(amb.is_error);
  BOOST_TEST(has(amb, "matches 3 times"), amb.text);
  BOOST_TEST(s.get("deep/er/file.c") == "int a = 1;\nint b = 1;\nint a2 = 1;\n");  // untouched

  ToolResult none = s.call("edit", {{"path", "deep/er/file.c"}, {"old_string", "int c"}, {"new_string", "int d"}});
  BOOST_TEST(none.is_error);
  BOOST_TEST(has(none, "(0 matches)"));

  ToolResult one = s.call("edit", {{"path", "deep/er/file.c"}, {"old_string", "int b = 1;"}, {"new_string", "int b = 9;"}});
  BOOST_TEST(!one.is_error);
  BOOST_TEST(one.text == "replaced 1 occurrence in deep/er/file.c");
  ToolResult all = s.call("edit", {{"path", "deep/er/file.c"}, {"old_string", " = 1;"}, {"new_string", " = 0;"},
                                   {"replace_all", true}});
  BOOST_TEST(all.text == "replaced 2 occurrences in deep/er/file.c");
  BOOST_TEST(s.get("deep/er/file.c") == "int a = 0;\nint b = 9;\nint a2 = 0;\n");

  BOOST_TEST(has(s.call("edit", {{"path", "deep/er/file.c"}, {"old_string", ""}, {"new_string", "x"}}), "'old_string' is empty"));
  BOOST_TEST(has(s.call("write", {{"path", "deep"}, {"content", "x"}}), "'deep' is a directory"));
}

BOOST_AUTO_TEST_CASE(a_skill_folder_inside_the_hidden_state_directory_is_readable_by_its_mount_only) {
  WorkspaceOptions options;
  options.hidden = {".hearth"};
  Sandbox box({}, options);
  box.put(".hearth/state.db", "runs");
  box.put(".hearth/skills/triage/SKILL.md", "---\nname: triage\n---\nUse labels.md.\n");
  box.put(".hearth/skills/triage/labels.md", "bug: something broke\n");
  BOOST_REQUIRE(box.tools->add_read_only((box.ws / ".hearth/skills/triage").string(), "/run/hearth-skills/triage").ok());

  auto r = box.call("read", {{"path", "/run/hearth-skills/triage/labels.md"}});
  BOOST_TEST(!r.is_error, r.text);
  BOOST_TEST(has(r, "bug: something broke"), r.text);
  auto g = box.call("glob", {{"pattern", "*.md"}, {"path", "/run/hearth-skills/triage"}});
  BOOST_TEST(has(g, "labels.md"), g.text);
  auto gr = box.call("grep", {{"pattern", "broke"}, {"path", "/run/hearth-skills/triage"}});
  BOOST_TEST(has(gr, "labels.md"), gr.text);
  // Read-only, and no way from there to the state next to it.
  auto w = box.call("write", {{"path", "/run/hearth-skills/triage/labels.md"}, {"content", "x"}});
  BOOST_TEST(w.is_error);
  BOOST_TEST(has(w, "read-only"), w.text);
  BOOST_TEST(box.get(".hearth/skills/triage/labels.md") == "bug: something broke\n");
  auto up = box.call("read", {{"path", "/run/hearth-skills/triage/../../state.db"}});
  BOOST_TEST(up.is_error, up.text);
  BOOST_TEST(!has(up, "runs"));
  // The hidden directory itself stays hidden by its workspace path.
  BOOST_TEST(box.call("read", {{"path", ".hearth/skills/triage/labels.md"}}).is_error);
}

BOOST_AUTO_TEST_CASE(dotdot_and_absolute_paths_cannot_leave) {
  Sandbox s;
  for (const char* p : {"../secret.txt", "a/../../secret.txt", "./../outdir/secret.txt", "/etc/passwd",
                        "/proc/self/root/etc/passwd", "/workspace/../secret.txt", "/workspacex/a"}) {
    ToolResult r = s.call("read", {{"path", p}});
    BOOST_TEST(r.is_error, p);
    BOOST_TEST(!has(r, kMarker), p);
    BOOST_TEST(!has(r, "root:x:0"), p);
    BOOST_TEST((has(r, "outside the workspace")), p << ": " << r.text);
    BOOST_TEST(s.call("write", {{"path", std::string(p)}, {"content", "pwned"}}).is_error, p);
  }
  BOOST_TEST(s.call("write", {{"path", "../pwned"}, {"content", "x"}}).is_error);
  BOOST_TEST(s.call("glob", {{"pattern", "*"}, {"path", ".."}}).is_error);
  BOOST_TEST(s.call("glob", {{"pattern", "../*"}}).is_error);
  BOOST_TEST(s.call("grep", {{"pattern", "SECRET"}, {"path", "/tmp"}}).is_error);
  // `..` that stays inside is fine.
  s.put("a/x.txt", "inside\n");
  BOOST_TEST(s.call("read", {{"path", "a/../a/x.txt"}}).text == "     1\tinside\n");
  BOOST_TEST(s.outside_intact());
}

BOOST_AUTO_TEST_CASE(planted_symlinks_resolve_inside_the_workspace_only) {
  Sandbox s;
  fs::create_symlink("/etc/passwd", s.ws / "passwd");
  fs::create_symlink(s.top / "secret.txt", s.ws / "abs_secret");
  fs::create_symlink("../secret.txt", s.ws / "rel_secret");
  fs::create_symlink("..", s.ws / "up");
  fs::create_symlink("/", s.ws / "slash");
  fs::create_symlink(s.top / "outdir", s.ws / "outdir_link");
  fs::create_symlink("/proc/self/root", s.ws / "procroot");
  for (const char* p : {"passwd", "abs_secret", "rel_secret", "up/secret.txt", "up/up/etc/passwd",
                        "slash/etc/passwd", "outdir_link/secret.txt", "procroot/etc/passwd",
                        "procroot" /* dir */}) {
    ToolResult r = s.call("read", {{"path", p}});
    BOOST_TEST(r.is_error, p << ": " << r.text);
    BOOST_TEST(!has(r, kMarker), p);
    BOOST_TEST(!has(r, "root:x:0"), p);
  }
  // Writing and editing through them creates nothing outside and changes nothing outside.
  for (const char* p : {"abs_secret", "rel_secret", "up/pwned", "outdir_link/pwned", "slash" /* dir */}) {
    s.call("write", {{"path", p}, {"content", "pwned"}});
    s.call("edit", {{"path", p}, {"old_string", "OUTSIDE"}, {"new_string", "pwned"}});
  }
  BOOST_TEST(s.outside_intact());
  // A link pointing at "/" reads as the workspace root, as in a chroot (the
  // fallback walk, where openat2 is missing, refuses every symlink instead).
  const bool chroot_like = s.tools->workspace().uses_openat2();
  s.put("in.txt", "inside\n");
  if (chroot_like) BOOST_TEST(s.call("read", {{"path", "slash/in.txt"}}).text == "     1\tinside\n");
  // Walks never follow symlinks.
  ToolResult g = s.call("grep", {{"pattern", "SECRET|root:x"}});
  BOOST_TEST(!has(g, kMarker));
  BOOST_TEST(has(g, "no matches"));
  // The relative link ../secret.txt was written as <root>/secret.txt: inside, as in a chroot.
  if (chroot_like) {
    BOOST_TEST(s.call("glob", {{"pattern", "**/secret.txt"}}).text == "secret.txt\n");
    BOOST_TEST(s.get("secret.txt") == "pwned");
  }
}

BOOST_AUTO_TEST_CASE(magic_links_are_refused_even_when_the_root_holds_them) {
  // A workspace whose root is /proc/self: "root" inside it is a magic link
  // to the real /. RESOLVE_NO_MAGICLINKS must refuse to go through it.
  auto t = FileTools::open("/proc/self");
  BOOST_REQUIRE(t.ok());
  // (Without openat2 the fallback walk refuses the link as a symlink: the same outcome.)
  for (const char* p : {"root/etc/passwd", "cwd/meson.build", "root"}) {
    ToolResult r = t->call("read", {{"path", p}});
    BOOST_TEST(r.is_error, p);
    BOOST_TEST(!has(r, "root:x:0"), p);
  }
}

BOOST_AUTO_TEST_CASE(a_directory_swapped_for_a_symlink_never_leaks) {
  // One thread flips ws/sub between a real directory and a symlink to the
  // outside directory, as fast as it can, while the tools read, grep and write.
  Sandbox s;
  s.put("sub/secret.txt", "inside copy\n");
  std::atomic<bool> stop{false};
  fs::create_directory_symlink(s.top / "outdir", s.ws / "other");
  std::thread flipper([&] {
    // RENAME_EXCHANGE swaps the two names atomically: "sub" is the real
    // directory and the symlink out in turn.
    while (!stop) renameat2(AT_FDCWD, (s.ws / "sub").c_str(), AT_FDCWD, (s.ws / "other").c_str(), RENAME_EXCHANGE);
  });
  int inside = 0;
  for (int i = 0; i < 3000; ++i) {
    ToolResult r = s.call("read", {{"path", "sub/secret.txt"}});
    BOOST_REQUIRE(!has(r, kMarker));
    inside += has(r, "inside copy");
    if (i % 10 == 0) {
      BOOST_REQUIRE(!has(s.call("grep", {{"pattern", "SECRET"}}), kMarker));
      s.call("write", {{"path", "sub/pwned"}, {"content", "x"}});
    }
  }
  stop = true;
  flipper.join();
  BOOST_TEST(inside > 0);  // the race was live: the real directory was seen too
  BOOST_TEST(s.outside_intact());
}

BOOST_AUTO_TEST_CASE(huge_binary_and_bad_utf8_files) {
  ToolLimits limits;
  limits.grep_file_max_bytes = 1u << 20;
  Sandbox s(limits);
  {
    std::ofstream big(s.ws / "huge.log");
    std::string line(99, 'x');
    for (int i = 0; i < 300000; ++i) big << line << "\n";  // 30 MB
  }
  ToolResult r = s.call("read", {{"path", "huge.log"}});
  BOOST_TEST(!r.is_error);
  BOOST_TEST(r.text.size() <= limits.read_max_bytes + 200);
  BOOST_TEST(has(r, "of 300000; call read with offset=2001"));
  s.put("one_line.min.js", std::string(5u << 20, 'y'));
  ToolResult wide = s.call("read", {{"path", "one_line.min.js"}});
  BOOST_TEST(wide.text.size() < 3000u);
  BOOST_TEST(has(wide, "[... line cut: "));
  ToolResult g = s.call("grep", {{"pattern", "x{99}"}});
  BOOST_TEST(has(g, "files larger than 1048576 bytes skipped"));

  s.put("blob.bin", std::string("ELF\0\0\1\2", 7) + "SECRET");
  ToolResult b = s.call("read", {{"path", "blob.bin"}});
  BOOST_TEST(b.is_error);
  BOOST_TEST(has(b, "binary file (13 bytes)"));
  BOOST_TEST(has(s.call("grep", {{"pattern", "SECRET"}}), "1 binary files skipped"));
  // A sparse 8 GiB file is recognised from its first bytes, not read whole.
  {
    std::ofstream(s.ws / "disk.img");
    fs::resize_file(s.ws / "disk.img", std::uintmax_t{8} << 30);
  }
  BOOST_TEST(has(s.call("read", {{"path", "disk.img"}}), "binary file (8589934592 bytes)"));

  s.put("latin1.txt", "caf\xE9 au lait\nna\xEFve\n");
  ToolResult l = s.call("read", {{"path", "latin1.txt"}});
  BOOST_TEST(!l.is_error);
  BOOST_TEST(has(l, "caf\xEF\xBF\xBD au lait"));
  BOOST_TEST(has(l, "not valid UTF-8"));
  ToolResult e = s.call("edit", {{"path", "latin1.txt"}, {"old_string", "au lait"}, {"new_string", "noir"}});
  BOOST_TEST(!e.is_error, e.text);
  BOOST_TEST(s.get("latin1.txt") == "caf\xE9 noir\nna\xEFve\n");  // other bytes kept as they were
  ToolResult gl = s.call("grep", {{"pattern", "na"}, {"path", "latin1.txt"}});
  BOOST_TEST(has(gl, "latin1.txt:2: na\xEF\xBF\xBDve"), gl.text);
}

BOOST_AUTO_TEST_CASE(fifos_and_hard_links_are_refused) {
  Sandbox s;
  BOOST_REQUIRE(mkfifo((s.ws / "pipe").c_str(), 0644) == 0);
  ToolResult r = s.call("read", {{"path", "pipe"}});  // must not block
  BOOST_TEST(r.is_error);
  BOOST_TEST(has(r, "not a regular file"));
  BOOST_TEST(s.call("write", {{"path", "pipe"}, {"content", "x"}}).is_error);
  s.put("a.txt", "a\n");
  fs::create_hard_link(s.ws / "a.txt", s.ws / "b.txt");
  ToolResult w = s.call("write", {{"path", "b.txt"}, {"content", "changed"}});
  BOOST_TEST(w.is_error);
  BOOST_TEST(has(w, "has 2 hard links"));
  BOOST_TEST(s.get("a.txt") == "a\n");
  BOOST_TEST(has(s.call("grep", {{"pattern", "a"}}), "a.txt:1: a"));  // grep does not hang on the FIFO
}

BOOST_AUTO_TEST_CASE(glob_matches_double_star_sorted_and_skips_git) {
  Sandbox s;
  for (const char* f : {"src/main.cpp", "src/util/str.cpp", "src/util/str.h", "top.cpp", ".git/objects/x.cpp",
                        "docs/a.md"})
    s.put(f, "int x;\n");
  BOOST_TEST(s.call("glob", {{"pattern", "**/*.cpp"}}).text == "src/main.cpp\nsrc/util/str.cpp\ntop.cpp\n");
  BOOST_TEST(s.call("glob", {{"pattern", "*.cpp"}}).text == "top.cpp\n");
  BOOST_TEST(s.call("glob", {{"pattern", "src/**"}}).text == "src/main.cpp\nsrc/util/str.cpp\nsrc/util/str.h\n");
  BOOST_TEST(s.call("glob", {{"pattern", "*.[ch]*"}, {"path", "src/util"}}).text == "src/util/str.cpp\nsrc/util/str.h\n");
  BOOST_TEST(has(s.call("glob", {{"pattern", "*.rs"}}), "no files match '*.rs'"));
  ToolLimits few;
  few.glob_max_results = 2;
  Sandbox t(few);
  for (int i = 0; i < 5; ++i) t.put("f" + std::to_string(i), "");
  BOOST_TEST(t.call("glob", {{"pattern", "f*"}}).text == "f0\nf1\n[truncated: 3 more files match; narrow the pattern]\n");
}

BOOST_AUTO_TEST_CASE(grep_finds_lines_with_filters_and_caps) {
  Sandbox s;
  s.put("src/a.cpp", "int main() {\n  return Foo();\n}\n");
  s.put("src/b.h", "struct foo;\n");
  s.put("README.md", "foo bar\n");
  BOOST_TEST(s.call("grep", {{"pattern", "foo"}}).text == "README.md:1: foo bar\nsrc/b.h:1: struct foo;\n");
  BOOST_TEST(s.call("grep", {{"pattern", "foo"}, {"case_insensitive", true}, {"glob", "*.cpp"}}).text ==
             "src/a.cpp:2:   return Foo();\n");
  BOOST_TEST(s.call("grep", {{"pattern", "\\bfoo\\b"}, {"path", "src/b.h"}}).text == "src/b.h:1: struct foo;\n");
  BOOST_TEST(s.call("grep", {{"pattern", "o"}, {"glob", "src/**/*.h"}}).text == "src/b.h:1: struct foo;\n");
  std::string many;
  for (int i = 0; i < 50; ++i) many += "hit\n";
  s.put("many.txt", many);
  ToolResult capped = s.call("grep", {{"pattern", "hit"}, {"max_results", 3}});
  BOOST_TEST(has(capped, "many.txt:3: hit\n[truncated: stopped at 3 matching lines"));
  // A catastrophic pattern stops at the match limit instead of hanging.
  s.put("evil.txt", std::string(5000, 'a') + "!\n");
  ToolResult evil = s.call("grep", {{"pattern", "(a|aa)+$"}, {"path", "evil.txt"}});
  BOOST_TEST(!has(evil, "evil.txt:1"));
}

BOOST_AUTO_TEST_CASE(the_fallback_walk_refuses_every_symlink) {
  WorkspaceOptions walk;
  walk.force_walk = true;
  Sandbox s({}, walk);
  BOOST_REQUIRE(!s.tools->workspace().uses_openat2());
  s.put("dir/in.txt", "inside\n");
  fs::create_symlink(s.top / "secret.txt", s.ws / "abs_secret");
  fs::create_symlink("..", s.ws / "up");
  fs::create_symlink("dir", s.ws / "dirlink");
  for (const char* p : {"abs_secret", "up/secret.txt", "dirlink/in.txt", "../secret.txt"}) {
    ToolResult r = s.call("read", {{"path", p}});
    BOOST_TEST(r.is_error, p);
    BOOST_TEST(!has(r, kMarker), p);
  }
  BOOST_TEST(has(s.call("read", {{"path", "up/secret.txt"}}), "symlink"));
  BOOST_TEST(s.call("read", {{"path", "dir/in.txt"}}).text == "     1\tinside\n");
  BOOST_TEST(!s.call("write", {{"path", "new/deep/f.txt"}, {"content", "x"}}).is_error);
  BOOST_TEST(s.call("write", {{"path", "up/pwned"}, {"content", "x"}}).is_error);
  BOOST_TEST(s.outside_intact());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(agents_md)

BOOST_AUTO_TEST_CASE(agents_md_is_read_from_the_workspace_only) {
  using hearth::agent::load_agents_md;
  Sandbox s;
  auto none = load_agents_md(s.tools->workspace());
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(!none->has_value());
  // A planted link to a file outside must not put that file in the prompt.
  fs::create_symlink(s.top / "secret.txt", s.ws / "AGENTS.md");
  auto planted = load_agents_md(s.tools->workspace());
  BOOST_REQUIRE(planted.ok());
  BOOST_TEST(!planted->has_value());
  fs::remove(s.ws / "AGENTS.md");
  s.put("AGENTS.md", "# Guide\nRun `make test`.\n");
  auto ok = load_agents_md(s.tools->workspace());
  BOOST_REQUIRE(ok.ok());
  BOOST_TEST(ok->value() == "# Guide\nRun `make test`.\n");
  s.put("AGENTS.md", std::string(100000, 'g'));
  auto big = load_agents_md(s.tools->workspace());
  BOOST_TEST(big->value().size() < 66000u);
  BOOST_TEST(big->value().find("[AGENTS.md truncated at 65536 bytes]") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
