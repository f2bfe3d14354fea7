// Errors as values, part of the public API (libhearth) and used everywhere
// inside Hearth. Every path that crosses a libuv callback reports failure
// through Status or Result<T>; exceptions stay inside the one file that wraps
// the library throwing them. Header-only: no symbols, no ABI of its own.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace hearth {

/// A message meant for a user: it names the cause and the place
/// ("workflow.toml:14:9: step 'label' needs unknown step 'triagee'").
struct Error {
  std::string message;
};

/// Success, or an Error. Cheap to copy when ok.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error e) : error_(std::move(e.message)) {}  // NOLINT: implicit on purpose

  static Status ok_status() { return {}; }
  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  /// REQUIRES: !ok()
  const std::string& message() const { return *error_; }
  /// REQUIRES: !ok()
  Error error() const { return Error{*error_}; }

 private:
  std::optional<std::string> error_;
};

/// A value, or the Error that prevented it.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Error e) : v_(std::move(e)) {}      // NOLINT: implicit on purpose

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  /// REQUIRES: ok()
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  /// REQUIRES: !ok()
  const std::string& message() const { return std::get<1>(v_).message; }
  Error error() const { return std::get<1>(v_); }
  Status status() const { return ok() ? Status{} : Status{error()}; }

 private:
  std::variant<T, Error> v_;
};

}  // namespace hearth
