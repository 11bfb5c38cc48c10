// Building gateway-generated responses (errors, control API replies).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gh::http {

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool close = false;  // send Connection: close and close afterwards
};

const char* reason_phrase(int status);

// {"error": "<message>"} as Tyk writes API-path errors.
Response error_response(int status, std::string_view message);
// {"status":"error","message":"..."} as Tyk's control API writes errors.
Response status_response(int status, std::string_view status_word, std::string_view message);

// Serialises a whole response (head and body) into `out`.
void serialize(const Response& r, bool head_only, std::string& out);

}  // namespace gh::http
