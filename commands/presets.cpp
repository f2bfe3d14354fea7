// The presets a workflow can grant by name instead of writing patterns.
// docs/commands.md lists each with exactly what it allows; keep them equal.
#include "commands/policy.h"

namespace hearth::commands {

namespace {

// The tables are built on first use (all_presets()), not before main: a
// command that grants nothing never pays for them.
std::vector<std::string> gh_read() {
  return {
    "issue view *", "issue list", "issue list *", "issue status",
    "pr view", "pr view *", "pr list", "pr list *", "pr diff", "pr diff *", "pr checks", "pr checks *", "pr status",
    "label list", "label list *",
    "repo view", "repo view *",
    "release list", "release list *", "release view *",
    "run list", "run list *", "run view *",
    "search issues *", "search prs *",
  };
}
// A deny pattern for an argument wherever it stands after the first one:
// `* P` matches only when P is last, so each is also denied before others.
std::vector<std::string> anywhere(std::initializer_list<const char*> patterns) {
  std::vector<std::string> out;
  for (const char* p : patterns) {
    out.push_back(std::string("* ") + p);
    out.push_back(std::string("* ") + p + " *");
  }
  return out;
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// gh sends GH_ENTERPRISE_TOKEN to whichever host a call names: in a URL
// (`issue view https://host/o/r/issues/1`), in --repo/-R as HOST/OWNER/REPO or
// git@HOST:OWNER/REPO, or as `repo view`'s argument. Its --jq can read the
// program's environment (`env.GH_TOKEN | explode` prints a secret in a form
// no redaction recognises). -*R and -*q* also catch short flags in a cluster.
std::vector<std::string> gh_deny() {
  return concat(
    anywhere({"--hostname", "--hostname=*", "--web", "-w", "*://*",
              "--repo */*/*", "--repo *:*", "--repo=*/*/*", "--repo=*:*",
              "-*R */*/*", "-*R *:*", "-*R*/*/*", "-*R*:*", "-*q*"}),
    {"repo view */*/*", "repo view */*/* *", "repo view * */*/*", "repo view * */*/* *",
     "repo view *:*", "repo view *:* *", "repo view * *:*", "repo view * *:* *"});
}

// npm expands ${VAR} in option values from its environment, where the
// secrets are (`--//evil/:_authToken=${NPM_TOKEN}`); the rest are options
// (and the prefixes npm expands to them) that change which registry, proxy,
// certificates or configuration files it uses.
std::vector<std::string> npm_deny() {
  return concat(
    {"audit fix", "audit fix *", "audit * fix", "audit * fix *"},
    anywhere({"*${*", "--reg*", "--userc*", "--globalc*", "--prefi*", "-C", "--prox*", "--ht*", "--stri*",
              "--no-stri*", "--ca", "--ca=*", "--caf*", "--cer*", "--ke*"}));
}

std::vector<Preset> make_presets() {
  const std::vector<std::string> kGhRead = gh_read(), kGhDeny = gh_deny(), kNpmDeny = npm_deny();
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
       kNpmDeny},
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
