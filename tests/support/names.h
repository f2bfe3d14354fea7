// Names every suite uses, brought in with `using namespace hearth::testing`.
#pragma once

#include <chrono>
#include <filesystem>

#include <nlohmann/json.hpp>

namespace hearth::testing {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

}  // namespace hearth::testing
