// Where the tests find shared test data and the built binary.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace hearth::testing {

/// tests/data (public suites kept with their sources), as given by meson in HEARTH_TESTDATA.
inline std::filesystem::path testdata_dir() {
  const char* d = std::getenv("HEARTH_TESTDATA");
  if (!d) throw std::runtime_error("HEARTH_TESTDATA is not set; run the tests through meson test");
  return d;
}

/// The built `hearth` binary, as given by meson in HEARTH_BIN.
inline std::filesystem::path hearth_bin() {
  const char* d = std::getenv("HEARTH_BIN");
  if (!d) throw std::runtime_error("HEARTH_BIN is not set; run the tests through meson test");
  return d;
}

}  // namespace hearth::testing
