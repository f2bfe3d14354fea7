// The `${{ ... }}` expression language: what is read off a parsed tree (the
// steps, contexts and functions it uses) and the shape of a template. The
// parser is expr_parse.cpp, the evaluator expr_eval.cpp, the tree expr_tree.h.
#include "workflows/expr.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <compare>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <utility>

#include "util/json_limits.h"
#include "workflows/suggest.h"
#include "workflows/expr_tree.h"

namespace hearth::workflows::expr {

namespace {

template <class F>
void visit(const Node& n, const F& f) {
  f(n);
  for (const auto& c : n.children) visit(*c, f);
  for (const auto& a : n.accessors) {
    if (a.index) visit(*a.index, f);
  }
}

void add_unique(std::vector<std::string>& names, const std::string& name) {
  if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
}

}  // namespace

std::vector<std::string> Expression::step_refs() const {
  std::vector<std::string> ids;
  if (!root_) return ids;
  visit(*root_, [&](const Node& n) {
    if (n.kind != Node::Kind::path) return;
    const Node& base = *n.children[0];
    if (base.kind != Node::Kind::context || base.name != "steps") return;
    const Node::Accessor& a = n.accessors[0];
    const json* key = a.kind == Node::Accessor::Kind::member ? &a.key : nullptr;
    if (a.index && a.index->kind == Node::Kind::literal) key = &a.index->value;
    if (key && key->is_string()) add_unique(ids, key->get<std::string>());
  });
  return ids;
}

std::vector<std::pair<std::string, std::string>> Expression::step_properties() const {
  std::vector<std::pair<std::string, std::string>> out;
  if (!root_) return out;
  auto literal_key = [](const Node::Accessor& a) -> const json* {
    if (a.kind == Node::Accessor::Kind::member) return &a.key;
    if (a.index && a.index->kind == Node::Kind::literal) return &a.index->value;
    return nullptr;
  };
  visit(*root_, [&](const Node& n) {
    if (n.kind != Node::Kind::path || n.accessors.size() < 2) return;
    const Node& base = *n.children[0];
    if (base.kind != Node::Kind::context || base.name != "steps") return;
    const json* id = literal_key(n.accessors[0]);
    const json* prop = literal_key(n.accessors[1]);
    if (!id || !prop || !id->is_string() || !prop->is_string()) return;
    std::pair<std::string, std::string> p{id->get<std::string>(), prop->get<std::string>()};
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(std::move(p));
  });
  return out;
}

std::vector<std::string> Expression::context_refs() const {
  std::vector<std::string> names;
  if (!root_) return names;
  visit(*root_, [&](const Node& n) {
    if (n.kind == Node::Kind::context) add_unique(names, n.name);
  });
  return names;
}

bool Expression::uses_status_function() const {
  bool uses = false;
  if (!root_) return uses;
  visit(*root_, [&](const Node& n) {
    if (n.kind != Node::Kind::call) return;
    Function f = n.function;
    uses = uses || f == Function::success || f == Function::failure || f == Function::always ||
           f == Function::cancelled;
  });
  return uses;
}

bool Template::is_literal() const {
  return std::none_of(parts.begin(), parts.end(), [](const Part& p) { return p.expr != nullptr; });
}

bool Template::is_single_expression() const {
  auto blank = [](const std::string& s) { return std::all_of(s.begin(), s.end(), is_space); };
  if (parts.empty() || parts.size() > 2 || !parts[0].expr || !blank(parts[0].literal)) return false;
  return parts.size() == 1 || (!parts[1].expr && blank(parts[1].literal));
}

}  // namespace hearth::workflows::expr
