// The presets a workflow can grant by name instead of writing patterns.
// docs/commands.md lists each with exactly what it allows; keep them equal.
#include "commands/policy.h"

namespace hearth::commands {

namespace {

const std::vector<std::string> kGhRead = {
    "issue view *", "issue list", "issue list *", "issue status",
    "pr view", "pr view *", "pr list", "pr list *", "pr diff", "pr diff *", "pr checks", "pr checks *", "pr status",
    "label list", "label list *",
    "repo view", "repo view *",
    "release list", "release list *", "release view *",
    "run list", "run list *", "run view *",
    "search issues *", "search prs *",
};
const std::vector<std::string> kGhDeny = {"* --hostname *", "* --hostname=*", "* --web", "* -w"};

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<Preset> make_presets() {
  return {
      {"gh:read-only", "gh",
       "read issues, pull requests (view, diff, checks), labels, releases, workflow runs and the repository",
       kGhRead, kGhDeny},
      {"gh:issues", "gh",
       "gh:read-only, plus comment on an issue (body from stdin or --body) and add or remove its labels",
       concat(kGhRead, {"issue comment ?* --body-file -", "issue comment ?* --body ?*", "issue comment ?* -F -",
                        "issue comment ?* -b ?*", "issue edit ?* --add-label ?*", "issue edit ?* --remove-label ?*"}),
       kGhDeny},
      {"npm:read-only", "npm",
       "view packages, list installed ones, audit (not fix), read package.json fields; never run scripts",
       {"view *", "info *", "ls", "ls *", "list", "list *", "outdated", "outdated *", "audit", "audit *",
        "pkg get", "pkg get *"},
       {"audit fix", "audit fix *", "audit * fix", "audit * fix *", "* --registry *", "* --registry=*",
        "* --userconfig *", "* --userconfig=*"}},
      {"git:push", "git",
       "push the workspace's current branch to origin, without force, deletion, tags or other refs",
       {"push origin {branch}", "push origin HEAD", "push origin HEAD:{branch}", "push origin HEAD:refs/heads/{branch}",
        "push -u origin {branch}", "push -u origin HEAD", "push --set-upstream origin {branch}",
        "push --set-upstream origin HEAD"},
       {"* --force*", "* -f", "* --delete", "* -d", "* --mirror", "* --all", "* --tags", "* +*", "* :*"}},
  };
}

}  // namespace

const std::vector<Preset>& all_presets() {
  static const std::vector<Preset> presets = make_presets();
  return presets;
}

const Preset* find_preset(std::string_view name) {
  for (auto& p : all_presets())
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace hearth::commands
