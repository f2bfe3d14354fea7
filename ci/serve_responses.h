// Private to serve*.cpp: JSON answers.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "http/server.h"

namespace hearth::ci {

inline http::HttpResponse json_response(int status, const nlohmann::json& body) {
  return http::HttpResponse{status,
                      {{"Content-Type", "application/json"}},
                      body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"};
}

/// {"error": message}
inline http::HttpResponse error_response(int status, const std::string& message) {
  return json_response(status, {{"error", message}});
}

}  // namespace hearth::ci
