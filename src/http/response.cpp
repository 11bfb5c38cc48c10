#include "http/response.h"

#include "core/log.h"

namespace gh::http {

const char* reason_phrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

Response error_response(int status, std::string_view message) {
  Response r;
  r.status = status;
  r.body = "{\n    \"error\": \"";
  log::json_escape(r.body, message);
  r.body += "\"\n}";
  return r;
}

Response status_response(int status, std::string_view status_word, std::string_view message) {
  Response r;
  r.status = status;
  r.body = "{\"status\":\"";
  log::json_escape(r.body, status_word);
  r.body += "\",\"message\":\"";
  log::json_escape(r.body, message);
  r.body += "\"}";
  return r;
}

void serialize(const Response& r, bool head_only, std::string& out) {
  out += "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  out += reason_phrase(r.status);
  out += "\r\n";
  if (!r.content_type.empty()) {
    out += "Content-Type: ";
    out += r.content_type;
    out += "\r\n";
  }
  for (const auto& [k, v] : r.headers) {
    out += k;
    out += ": ";
    out += v;
    out += "\r\n";
  }
  out += "Content-Length: ";
  out += std::to_string(r.body.size());
  out += "\r\n";
  if (r.close) out += "Connection: close\r\n";
  out += "\r\n";
  if (!head_only) out += r.body;
}

}  // namespace gh::http
