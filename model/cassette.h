// Cassettes: a recorded model session, played back offline.
//
// A cassette is a JSON Lines file (docs/models.md, "Cassettes"): a header
// line {"hearth_cassette": 1, "model": "<spec recorded>"}, then one line per
// completed request, in completion order:
//   {"request": <to_json(Request)>, "response": <to_json(Response)>}
//   {"request": ..., "error": {"kind": "rate_limited", "http_status": 429, "message": "..."}}
// Both are provider-neutral, so a cassette recorded against one provider
// replays for any workflow. Secrets (API keys, values passed as secrets) are
// replaced by "***" before a line is written.
//
// Replay: each request takes the first unused recorded interaction that it
// matches — same model (when the request names one), same tools (names,
// descriptions ignored, input schemas), same last message. When none
// matches, the request fails with ErrorKind::replay_mismatch naming the
// cassette line and what differs from the next unused interaction.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/client.h"

namespace hearth::model {

/// The largest cassette replayed (64 MiB).
inline constexpr size_t kMaxCassetteBytes = size_t{64} << 20;

/// A client that plays `path` back on `loop`. Requests are redacted with
/// `secrets` before matching (the recording was). The file is read with
/// util/safe_open.h: with `root`, `path` is relative and resolved beneath it
/// without any symlink; without, `path`'s last component must not be a
/// symlink. Only a regular file of its own, at most kMaxCassetteBytes.
/// Errors: the file is refused or cannot be read (naming it and why), or a
/// line is malformed (path:line: cause).
Result<std::unique_ptr<Client>> make_replay_client(uv_loop_t* loop, std::string spec, const std::string& path,
                                                   std::vector<std::string> secrets = {}, const std::string& root = "");

/// Wraps a live client so every finished request is appended to `path`
/// (created or truncated now). `secrets` are redacted from what is written.
Result<std::unique_ptr<Client>> make_recording_client(std::unique_ptr<Client> live, const std::string& path,
                                                      std::vector<std::string> secrets);

/// Replaces every occurrence of each secret in every string of `j`
/// (object keys included) by "***". Secrets shorter than 4 bytes are ignored.
void redact(nlohmann::json& j, const std::vector<std::string>& secrets);

/// Why `now` does not fit `recorded` (empty when it does): the rules above.
std::string replay_difference(const nlohmann::json& recorded, const nlohmann::json& now);

}  // namespace hearth::model
