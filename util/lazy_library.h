// A shared library opened when the code that needs it first runs, not by the
// dynamic loader before main. `hearth --version` must not pay for libcurl,
// libgit2, ICU or libcrypto (about forty libraries with theirs); a command
// that sends a model request, checks out a repository, reads a skill or
// hashes a file opens the one it needs, once.
//
// Each such library is linked with its headers only; the files in util/lazy/
// define the library's functions that Hearth calls, each forwarding to the
// real one found here on first call. Code that can fail cleanly calls
// `open()` first (a Status naming the library and what needs it); a forwarder
// whose library or symbol is missing writes the same message to stderr and
// ends the process, which is what the dynamic loader did before main.
#pragma once

#include <mutex>
#include <string>

#include "util/status.h"

namespace hearth {

class LazyLibrary {
 public:
  /// `soname`: what dlopen is given (a soname, never a path, so the system's
  /// search order applies); `needed_for`: what a user was doing, for errors.
  LazyLibrary(const char* soname, const char* needed_for) : soname_(soname), needed_for_(needed_for) {}
  LazyLibrary(const LazyLibrary&) = delete;
  LazyLibrary& operator=(const LazyLibrary&) = delete;

  /// Opens the library (RTLD_NOW | RTLD_LOCAL) on the first call; later calls
  /// return the first outcome. Thread-safe. The handle is never closed.
  Status open();

  /// The address of `symbol` in the library (opened if need be), or an error
  /// naming the library and the symbol.
  Result<void*> symbol(const char* symbol);

  /// For the forwarders: as symbol(), but a failure is written to stderr and
  /// the process exits with status 127. Never returns null.
  void* require(const char* symbol) noexcept;

  const char* soname() const { return soname_; }

  /// Tests only: open `soname` instead, as a system missing the library
  /// would. REQUIRES: before the first open().
  void use_soname_for_test(const char* soname) { soname_ = soname; }

 private:
  const char* soname_;
  const char* needed_for_;
  std::once_flag once_;
  void* handle_ = nullptr;
  std::string open_error_;
};

}  // namespace hearth
