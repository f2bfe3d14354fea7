#define PCRE2_CODE_UNIT_WIDTH 8
#include "proxy/policy.h"

#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "util/wildcard.h"

namespace hearth::proxy {

namespace {

std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  if (!path.empty() && path[0] == '/') path.remove_prefix(1);
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    out.push_back(path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

// `*` inside a segment: any run of characters; a segment that is `*` alone
// is not empty.
bool segment_match(std::string_view pat, std::string_view seg, bool fold) {
  if (pat == "*") return !seg.empty();
  WildcardOptions o;
  o.fold_ascii_case = fold;
  return wildcard_match(pat, seg, o);
}

std::string join_methods(const std::vector<std::string>& methods) {
  if (methods.empty()) return "any method";
  std::string out;
  for (auto& m : methods) out += (out.empty() ? "" : ", ") + m;
  return out;
}

bool method_matches(const Rule& r, std::string_view method) {
  return r.methods.empty() || std::find(r.methods.begin(), r.methods.end(), method) != r.methods.end();
}

std::string describe(const Rule& r) { return r.label + (r.text.empty() ? "" : " " + r.text); }

}  // namespace

bool glob_match(std::string_view pattern, std::string_view path, bool fold_case) {
  auto pat = segments(pattern);
  auto seg = segments(path);
  // can[i][j]: pat[i..] matches seg[j..]. Filled from the end; O(|pat|·|seg|).
  size_t P = pat.size(), S = seg.size();
  std::vector<char> can((P + 1) * (S + 1), 0);
  auto at = [&](size_t i, size_t j) -> char& { return can[i * (S + 1) + j]; };
  at(P, S) = 1;
  for (size_t i = P; i-- > 0;) {
    for (size_t j = S + 1; j-- > 0;) {
      if (pat[i] == "**") at(i, j) = at(i + 1, j) || (j < S && at(i, j + 1));
      else at(i, j) = j < S && segment_match(pat[i], seg[j], fold_case) && at(i + 1, j + 1);
    }
  }
  return at(0, 0) != 0;
}

std::string glob_problem(std::string_view pattern) {
  if (pattern.empty() || pattern[0] != '/') return "a path glob starts with '/'";
  for (char c : pattern) {
    if (c == '?' || c == '#') return "a path glob has no query or fragment ('?', '#'); it matches the path only";
    if (c == '\\') return "a path glob has no backslashes";
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return "a path glob has no control characters";
  }
  auto segs = segments(pattern);
  for (size_t i = 0; i < segs.size(); ++i) {
    auto s = segs[i];
    if (s.find("**") != std::string_view::npos && s != "**")
      return "'**' stands for whole segments only (as in /issues/**), not part of one ('" + std::string(s) + "')";
    if (s == "." || s == "..") return "a path glob has no '.' or '..' segments";
    if (s.empty() && i + 1 < segs.size()) return "a path glob has no empty segments ('//')";
  }
  return "";
}

// ---- BodyPattern ----

struct BodyPattern::Code {
  pcre2_code* code = nullptr;
  pcre2_match_context* context = nullptr;
  ~Code() {
    pcre2_match_context_free(context);
    pcre2_code_free(code);
  }
};

Result<BodyPattern> BodyPattern::compile(const std::string& pattern) {
  int err = 0;
  PCRE2_SIZE err_at = 0;
  auto code = std::make_shared<Code>();
  code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), 0, &err, &err_at, nullptr);
  if (!code->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return Error{"the body pattern is not a valid regular expression (at offset " + std::to_string(err_at) +
                 "): " + reinterpret_cast<char*>(msg)};
  }
  pcre2_jit_compile(code->code, PCRE2_JIT_COMPLETE);  // optional speed-up
  code->context = pcre2_match_context_create(nullptr);
  pcre2_set_match_limit(code->context, 1000000);
  pcre2_set_depth_limit(code->context, 10000);
  BodyPattern p;
  p.code_ = std::move(code);
  p.text_ = pattern;
  return p;
}

BodyPattern::Match BodyPattern::search(std::string_view body) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(body.data()), body.size(), 0, 0, md,
                       code_->context);
  pcre2_match_data_free(md);
  if (rc >= 0) return Match::yes;
  if (rc == PCRE2_ERROR_NOMATCH) return Match::no;
  return Match::too_complex;
}

// ---- sizes and rates ----

Result<uint64_t> parse_byte_size(std::string_view text) {
  std::string t(text);
  size_t i = 0;
  uint64_t n = 0;
  for (; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i) {
    if (n > (uint64_t(1) << 40)) return Error{"the size '" + t + "' is too large"};
    n = n * 10 + static_cast<uint64_t>(t[i] - '0');
  }
  if (i == 0) return Error{"a size is a whole number of bytes with an optional unit (like 16KiB or 1M), not '" + t + "'"};
  while (i < t.size() && t[i] == ' ') ++i;
  std::string unit = t.substr(i);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static const std::pair<const char*, int> kUnits[] = {{"", 0},    {"B", 0},    {"K", 10},   {"KB", 10},
                                                       {"KIB", 10}, {"M", 20},  {"MB", 20},  {"MIB", 20},
                                                       {"G", 30},  {"GB", 30},  {"GIB", 30}};
  for (auto& [name, shift] : kUnits)
    if (unit == name) return n << shift;
  return Error{"the size '" + t + "' has an unknown unit (use B, KiB, MiB or GiB)"};
}

Result<Rate> parse_rate(std::string_view text) {
  std::string t(text);
  auto slash = t.find('/');
  auto bad = [&] { return Error{"a rate is N/sec, N/min or N/hour with N at least 1 (like \"60/min\"), not '" + t + "'"}; };
  if (slash == std::string::npos || slash == 0) return bad();
  uint64_t n = 0;
  for (size_t i = 0; i < slash; ++i) {
    if (t[i] < '0' || t[i] > '9' || n > 1000000000) return bad();
    n = n * 10 + static_cast<uint64_t>(t[i] - '0');
  }
  std::string unit = t.substr(slash + 1);
  std::chrono::milliseconds per{0};
  if (unit == "s" || unit == "sec" || unit == "second") per = std::chrono::seconds(1);
  else if (unit == "m" || unit == "min" || unit == "minute") per = std::chrono::minutes(1);
  else if (unit == "h" || unit == "hour") per = std::chrono::hours(1);
  if (n == 0 || per.count() == 0) return bad();
  return Rate{n, per, t};
}

TokenBucket::TokenBucket(const Rate& rate, uint64_t now_ms)
    : capacity_(static_cast<double>(rate.count)),
      per_ms_(static_cast<double>(rate.per.count()) / static_cast<double>(rate.count)),
      tokens_(capacity_),
      last_ms_(now_ms) {}

void TokenBucket::refill(uint64_t now_ms) {
  if (now_ms <= last_ms_) return;
  tokens_ = std::min(capacity_, tokens_ + static_cast<double>(now_ms - last_ms_) / per_ms_);
  last_ms_ = now_ms;
}

bool TokenBucket::ready(uint64_t now_ms) {
  refill(now_ms);
  return tokens_ >= 1.0;
}

uint64_t TokenBucket::retry_after_s(uint64_t now_ms) {
  refill(now_ms);
  double wait_ms = tokens_ >= 1.0 ? 0.0 : (1.0 - tokens_) * per_ms_;
  return std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(wait_ms / 1000.0)));
}

// ---- the decision ----

Verdict decide(const std::vector<Rule>& allow, const std::vector<Rule>& deny, std::string_view method,
               std::string_view path, std::string_view body) {
  return decide(allow, deny, method, RequestPath{std::string(path), {}, false}, body);
}

Verdict decide(const std::vector<Rule>& allow, const std::vector<Rule>& deny, std::string_view method,
               const RequestPath& rp, std::string_view body) {
  const std::string& path = rp.path;
  std::string what = std::string(method) + " " + path;
  auto deny_matches = [&](const Rule& r) {
    if (glob_match(r.path, path, rp.fold_case)) return true;
    return std::any_of(rp.readings.begin(), rp.readings.end(),
                       [&](const std::string& p) { return glob_match(r.path, p, rp.fold_case); });
  };
  for (const Rule& r : deny) {
    if (!method_matches(r, method) || !deny_matches(r)) continue;
    if (r.body && r.body->search(body) == BodyPattern::Match::no) continue;
    return {false, &r, -1, what + " is refused by " + describe(r)};
  }
  const Rule* near = nullptr;
  std::string near_reason;
  for (size_t i = 0; i < allow.size(); ++i) {
    const Rule& r = allow[i];
    if (!method_matches(r, method) || !glob_match(r.path, path, rp.fold_case)) continue;
    if (r.body_max && body.size() > *r.body_max) {
      if (!near) {
        near = &r;
        near_reason = what + " has a body of " + std::to_string(body.size()) + " bytes; " + describe(r) +
                      " allows at most " + std::to_string(*r.body_max);
      }
      continue;
    }
    if (r.body && r.body->search(body) != BodyPattern::Match::yes) {
      if (!near) {
        near = &r;
        near_reason = what + " has a body that does not match the body pattern of " + describe(r);
      }
      continue;
    }
    return {true, &r, static_cast<int>(i), what + " is allowed by " + describe(r)};
  }
  if (near) return {false, near, -1, near_reason};
  std::string allowed;
  for (const Rule& r : allow) allowed += (allowed.empty() ? "" : "; ") + join_methods(r.methods) + " on " + r.path;
  return {false, nullptr, -1,
          what + " matches no allow rule" + (allowed.empty() ? std::string(" (this proxy allows nothing)")
                                                             : " (this proxy allows: " + allowed + ")")};
}

std::vector<Rule> preset_rules(std::string_view preset) {
  if (preset == "read-only") return {Rule{{"GET", "HEAD"}, "/**", {}, {}, {}, "policy read-only", "", {}}};
  if (preset == "any") return {Rule{{}, "/**", {}, {}, {}, "policy any", "", {}}};
  return {};
}

}  // namespace hearth::proxy
