// The path of a request as an API proxy's rules see it. Pure: no I/O.
//
// Rules are matched on a normalized path, and that same path is what is sent
// upstream, so the proxy and the upstream cannot read one request two ways.
// Where a byte sequence has several plausible readings (an escaped slash, a
// `;` path parameter) it is refused unless the proxy opts in; with the opt-in,
// deny rules are matched against every reading. docs/proxies.md, "Paths".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace hearth::proxy {

/// How one proxy reads paths: the `[proxies.NAME]` keys of the same names.
struct PathOptions {
  /// `case-insensitive-paths`: globs match letters regardless of case, as
  /// the upstream does (GitHub's owner and repository names, many servers'
  /// routes). Default true for every upstream: a deny rule then holds
  /// against `/ADMIN`, at the price of an allow rule covering paths that
  /// differ only in case.
  bool case_insensitive = true;
  /// `allow-encoded-slash`: `%2F` is kept (as one character of a segment)
  /// instead of refused; for APIs that name things with slashes in one
  /// segment (GitLab's `/projects/group%2Fname`).
  bool allow_encoded_slash = false;
  /// `allow-path-params`: `;` (and `%3B`) is kept instead of refused; for
  /// APIs that use matrix parameters (`/items;v=2`).
  bool allow_path_params = false;
};

/// A request path, normalized.
struct RequestPath {
  /// What is matched by allow rules, sent upstream and shown in events:
  /// percent-escapes of unreserved characters (ALPHA DIGIT - . _ ~) decoded,
  /// every other escape in upper-case hex, other bytes that may not appear
  /// raw in a path escaped.
  std::string path;
  /// Other ways an upstream may read `path` under the opt-ins: with `%2F` as
  /// '/', with each segment's `;parameters` removed, or both. Deny rules
  /// match `path` or any of these. Each is free of dot and empty segments.
  std::vector<std::string> readings;
  /// Globs are matched ignoring ASCII case (PathOptions::case_insensitive).
  bool fold_case = false;
};

/// Normalizes the path of a request target (origin-form, without the
/// query). Refused, with the reason (for a 400): a target that is not a
/// path ("http://…", "*"); a malformed escape; a '.' or '..' segment, however
/// encoded and in any reading; an empty segment ("//") other than a final
/// slash; a backslash, raw or `%5C`; a control character, raw or escaped
/// (`%00`); and, unless `options` allow them, `%2F` and path parameters.
Result<RequestPath> normalize_path(std::string_view raw, const PathOptions& options = {});

}  // namespace hearth::proxy
