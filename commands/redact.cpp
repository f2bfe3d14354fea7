#include "commands/redact.h"

#include <openssl/evp.h>

#include <algorithm>

#include <nlohmann/json.hpp>

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

std::string percent_encode(const std::string& value, bool upper) {
  static const char* hex_upper = "0123456789ABCDEF";
  static const char* hex_lower = "0123456789abcdef";
  const char* hex = upper ? hex_upper : hex_lower;
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> encoded_forms(const std::string& value) {
  std::vector<std::string> forms{value};
  for (size_t k = 0; k < 3; ++k) {
    std::string core = base64_core(value, k);
    if (core.size() < kMinSecretLength) continue;
    forms.push_back(core);
    std::string url = core;
    std::replace(url.begin(), url.end(), '+', '-');
    std::replace(url.begin(), url.end(), '/', '_');
    forms.push_back(url);
  }
  forms.push_back(percent_encode(value, true));
  forms.push_back(percent_encode(value, false));
  std::string json = nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  forms.push_back(json.substr(1, json.size() - 2));
  std::string ascii = nlohmann::json(value).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  forms.push_back(ascii.substr(1, ascii.size() - 2));
  std::sort(forms.begin(), forms.end());
  forms.erase(std::unique(forms.begin(), forms.end()), forms.end());
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

size_t SecretSet::match_at(std::string_view text, size_t i) const {
  for (uint32_t p : by_first_[static_cast<unsigned char>(text[i])]) {
    const std::string& pat = patterns_[p];
    if (text.size() - i >= pat.size() && text.compare(i, pat.size(), pat) == 0) return pat.size();
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
  size_t hold = secrets_->empty() ? 0 : secrets_->longest() - 1;
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

}  // namespace hearth::commands
