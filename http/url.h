// Percent-encoding (RFC 3986 §2.1) and form decoding
// (application/x-www-form-urlencoded). Pure functions of their input, no
// dependency beyond the standard library (its own small library,
// hearth_http_url, so the workflow loader and the redactor can link it
// without libcurl or libuv).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hearth::http {

/// An unreserved character (ALPHA DIGIT - . _ ~, RFC 3986 §2.3): never
/// needs escaping, and an escape of one means the character itself.
bool unreserved(unsigned char c);

/// The value of a hex digit, or -1.
int hex_value(char c);

/// Appends "%XX" for `c` (upper-case hex digits unless `upper` is false).
void percent_escape(std::string& out, unsigned char c, bool upper = true);

/// `value` with every byte but the unreserved ones escaped.
std::string percent_encode(std::string_view value, bool upper = true);

/// A form field's value decoded ('+' is a space, "%XX" a byte); nullopt
/// when a '%' is not followed by two hex digits.
std::optional<std::string> form_decode(std::string_view value);

}  // namespace hearth::http
