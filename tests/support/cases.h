// Table-driven checks: a list of inputs and what the function under test must
// give for each, checked one by one. A failure names the input it was about.
#pragma once

#include <functional>
#include <initializer_list>
#include <string>

#include <boost/test/unit_test.hpp>

namespace hearth::testing {

/// An input and what the function under test must give for it.
struct Case {
  std::string input, want;
};

/// Checks `f(input) == want` for each case, in order.
inline void expect_each(const std::function<std::string(const std::string&)>& f, std::initializer_list<Case> cases) {
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT("input: " << c.input) { BOOST_TEST(f(c.input) == c.want); }
  }
}

/// Checks that `f(input)` starts with `want` for each case, in order.
inline void expect_each_prefix(const std::function<std::string(const std::string&)>& f,
                               std::initializer_list<Case> cases) {
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT("input: " << c.input) {
      std::string got = f(c.input);
      BOOST_TEST(got.starts_with(c.want), got);
    }
  }
}

/// Checks that `text` holds each of `parts`, in order.
inline void expect_all_in(const std::string& text, std::initializer_list<std::string> parts) {
  for (const auto& part : parts) BOOST_TEST(text.find(part) != std::string::npos, text);
}

}  // namespace hearth::testing
