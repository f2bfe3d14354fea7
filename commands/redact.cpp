#include "commands/redact.h"

#include <openssl/evp.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "http/url.h"

namespace hearth::commands {

namespace {

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// The base64 characters that depend only on `value` when it sits at byte
// offset `k` (0..2) of a larger encoded blob: drop the characters that
// share bits with whatever precedes or follows it.
std::string base64_core(const std::string& value, size_t k) {
  std::string padded(k, '\0');
  padded += value;
  std::string enc = base64(padded);
  size_t first = (8 * k + 5) / 6;
  size_t last = (8 * (k + value.size())) / 6;  // exclusive
  if (last <= first) return {};
  return enc.substr(first, last - first);
}

std::string hex(const std::string& value, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : value) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// `encoded` with a line feed after every `columns` characters, as base64
// tools print it (coreutils: 76, openssl: 64), the last line ended too.
std::string wrapped(const std::string& encoded, size_t columns) {
  std::string out;
  for (size_t i = 0; i < encoded.size(); i += columns) out += encoded.substr(i, columns) + "\n";
  return out;
}

bool line_break(char c) { return c == '\n' || c == '\r'; }

}  // namespace

std::vector<std::string> encoded_forms(const std::string& value) {
  std::vector<std::string> forms;
  auto add = [&](std::string f) {
    if (f.size() >= kMinSecretLength || forms.empty())
      if (std::find(forms.begin(), forms.end(), f) == forms.end()) forms.push_back(std::move(f));
  };
  add(value);
  add(base64(value));  // whole, with its padding: nothing of it is left beside the mask
  for (size_t k = 0; k < 3; ++k) {
    std::string core = base64_core(value, k);
    add(core);
    std::replace(core.begin(), core.end(), '+', '-');
    std::replace(core.begin(), core.end(), '/', '_');
    add(core);
  }
  // base64 of base64, as `base64 | base64` or `openssl base64 | base64`
  // print it, inside a larger blob or not.
  std::string inner = base64(value);
  for (const std::string& in : {inner, wrapped(inner, 64), wrapped(inner, 76)})
    for (size_t k = 0; k < 3; ++k) add(base64_core(in, k));
  add(hex(value, false));
  add(hex(value, true));
  add(http::percent_encode(value, true));
  add(http::percent_encode(value, false));
  std::string json = nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  add(json.substr(1, json.size() - 2));
  std::string ascii = nlohmann::json(value).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  add(ascii.substr(1, ascii.size() - 2));
  return forms;
}

Status SecretSet::add(const std::string& name, const std::string& value) {
  if (value.size() < kMinSecretLength)
    return Error{"secret " + name + " is shorter than " + std::to_string(kMinSecretLength) +
                 " characters: it cannot be hidden from output without hiding ordinary text, so it is refused"};
  for (auto& f : encoded_forms(value))
    if (std::find(patterns_.begin(), patterns_.end(), f) == patterns_.end()) patterns_.push_back(f);
  std::stable_sort(patterns_.begin(), patterns_.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
  index();
  return {};
}

void SecretSet::index() {
  for (auto& v : by_first_) v.clear();
  for (uint32_t i = 0; i < patterns_.size(); ++i)
    by_first_[static_cast<unsigned char>(patterns_[i][0])].push_back(i);
}

// A pattern matches when its characters appear in order with at most one
// line break (LF, CR or CR LF) between two of them.
size_t SecretSet::match_at(std::string_view text, size_t i) const {
  for (uint32_t p : by_first_[static_cast<unsigned char>(text[i])]) {
    const std::string& pat = patterns_[p];
    size_t t = i, k = 0;
    while (k < pat.size() && t < text.size()) {
      if (text[t] == pat[k]) {
        ++t, ++k;
        continue;
      }
      if (k == 0 || line_break(pat[k]) || !line_break(text[t])) break;
      size_t skip = text.compare(t, 2, "\r\n") == 0 ? 2 : 1;
      if (line_break(text[t - 1])) break;  // one break between two characters, no more
      t += skip;
      if (t < text.size() && line_break(text[t])) break;
    }
    if (k == pat.size()) return t - i;
  }
  return 0;
}

std::string SecretSet::redact(std::string_view text) const {
  if (patterns_.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (size_t n = match_at(text, i)) {
      out += kMask;
      i += n;
    } else {
      out += text[i++];
    }
  }
  return out;
}

std::string StreamRedactor::push(std::string_view chunk) {
  pending_.append(chunk);
  size_t hold = secrets_->empty() ? 0 : secrets_->reach() - 1;
  return drain(hold);
}

std::string StreamRedactor::flush() { return drain(0); }

// Emits what can no longer be the start of a secret: every byte before
// pending_.size() - keep, plus any secret that starts there in full.
std::string StreamRedactor::drain(size_t keep) {
  if (pending_.size() <= keep) return {};
  size_t limit = pending_.size() - keep;
  std::string out;
  size_t i = 0;
  while (i < limit) {
    size_t n = secrets_->empty() ? 0 : secrets_->match_at(pending_, i);
    if (n) {
      out += kMask;
      i += n;
    } else {
      out += pending_[i++];
    }
  }
  pending_.erase(0, i);
  return out;
}


std::array<std::string, 2> StreamPairRedactor::push(int stream, std::string_view chunk) {
  Pending& p = pending_[stream];
  p.bytes.append(chunk);
  for (size_t i = 0; i < chunk.size(); ++i) p.seq.push_back(next_seq_++);
  p.mark.resize(p.bytes.size(), 0);
  if (secrets_->empty()) return {drain(0, 0), drain(1, 0)};
  mark_across();
  size_t hold = secrets_->reach() - 1;
  return {drain(0, hold), drain(1, hold)};
}

std::array<std::string, 2> StreamPairRedactor::end(int stream) {
  ended_[stream] = true;
  if (!secrets_->empty()) mark_across();
  size_t hold = ended_[0] && ended_[1] ? 0 : (secrets_->empty() ? 0 : secrets_->reach() - 1);
  return {drain(0, hold), drain(1, hold)};
}

// Both streams' held-back bytes in three orders: as they arrived, and each
// stream's before the other's (bytes written to both pipes before the engine
// woke up are read in whichever order the kernel reports them). A match in
// any of them that takes bytes from both streams marks them. (A match within
// one stream is left to drain, which finds it in that stream alone.)
void StreamPairRedactor::mark_across() {
  Pending &a = pending_[0], &b = pending_[1];
  if (a.bytes.empty() || b.bytes.empty()) return;
  using Origin = std::vector<std::pair<int, size_t>>;  // stream, index
  Origin arrived, a_then_b, b_then_a;
  for (size_t i = 0, j = 0; i < a.bytes.size() || j < b.bytes.size();) {
    bool take_a = j == b.bytes.size() || (i < a.bytes.size() && a.seq[i] < b.seq[j]);
    arrived.emplace_back(take_a ? 0 : 1, take_a ? i++ : j++);
  }
  for (int first : {0, 1}) {
    Origin& o = first == 0 ? a_then_b : b_then_a;
    for (int s : {first, 1 - first})
      for (size_t i = 0; i < pending_[s].bytes.size(); ++i) o.emplace_back(s, i);
  }
  for (const Origin* from : {&arrived, &a_then_b, &b_then_a}) {
    std::string text;
    text.reserve(from->size());
    for (auto& [s, i] : *from) text += pending_[s].bytes[i];
    for (size_t i = 0; i < text.size();) {
      size_t n = secrets_->match_at(text, i);
      if (n == 0) {
        ++i;
        continue;
      }
      bool both = false;
      for (size_t k = i; k < i + n && !both; ++k) both = (*from)[k].first != (*from)[i].first;
      if (both) {
        uint32_t id = next_mark_++;
        for (size_t k = i; k < i + n; ++k) pending_[(*from)[k].first].mark[(*from)[k].second] = id;
      }
      i += n;
    }
  }
}

std::string StreamPairRedactor::drain(int stream, size_t keep) {
  Pending& p = pending_[stream];
  if (p.bytes.size() <= keep) return {};
  size_t limit = p.bytes.size() - keep;
  std::string out;
  size_t i = 0;
  while (i < limit) {
    if (uint32_t id = p.mark[i]) {
      out += kMask;
      while (i < p.bytes.size() && p.mark[i] == id) ++i;
    } else if (size_t n = secrets_->empty() ? 0 : secrets_->match_at(p.bytes, i)) {
      out += kMask;
      i += n;
    } else {
      out += p.bytes[i++];
    }
  }
  p.bytes.erase(0, i);
  p.seq.erase(p.seq.begin(), p.seq.begin() + static_cast<ptrdiff_t>(i));
  p.mark.erase(p.mark.begin(), p.mark.begin() + static_cast<ptrdiff_t>(i));
  return out;
}

}  // namespace hearth::commands
