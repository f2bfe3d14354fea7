// What the options every subcommand shares resolve to.
#include <filesystem>

#include "cli.h"

namespace fs = std::filesystem;

namespace hearth::cli {

std::string resolve_repo(const Globals& g) {
  std::error_code ec;
  if (!g.repo.empty()) return fs::absolute(g.repo, ec).lexically_normal().string();
  fs::path cwd = fs::current_path(ec);
  for (fs::path p = cwd; !p.empty(); p = p.parent_path()) {
    if (fs::is_directory(p / ".hearth", ec) || fs::exists(p / ".git", ec)) return p.string();
    if (p == p.parent_path()) break;
  }
  return cwd.string();
}

std::string resolve_state(const Globals& g, const std::string& repo) {
  if (!g.store.empty()) return g.store;
  if (!g.state.empty()) return fs::absolute(g.state).string();
  return (fs::path(repo) / ".hearth" / "state.db").string();
}

std::string shell_quote(const std::string& word) {
  bool plain = !word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                       "0123456789@%+=:,./_-") == std::string::npos;
  if (plain) return word;
  std::string out = "'";
  for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string show_command(const Globals& g) {
  std::string cmd = "hearth";
  if (!g.repo.empty()) cmd += " --repo " + shell_quote(resolve_repo(g));
  // The URL may hold a password: named by its variable, never spelt out.
  if (!g.store.empty()) cmd += " --store \"$HEARTH_STORE\"";
  else if (!g.state.empty()) cmd += " --state " + shell_quote(resolve_state(g, resolve_repo(g)));
  return cmd + " show";
}

}  // namespace hearth::cli
