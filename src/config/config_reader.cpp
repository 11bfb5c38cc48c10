#include "config/config_reader.h"

#include <boost/json.hpp>
#include <cstdlib>

#include "core/util.h"

namespace gh::config {

namespace json = boost::json;

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

std::string env_name_for(std::string_view path) {
  std::string out = "TYK_GW_";
  for (char c : path) {
    if (c == '.') {
      out += '_';
    } else if (c != '_') {
      out += static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
    }
  }
  return out;
}

ConfigReader::ConfigReader(const json::value& root, std::string file, EnvLookup env)
    : root_(root), file_(std::move(file)), env_(std::move(env)) {}

void ConfigReader::fail(std::string_view path, std::string_view why) const {
  throw ConfigError(file_ + ": field \"" + std::string(path) + "\": " + std::string(why));
}

void ConfigReader::fail_env(std::string_view path, std::string_view why) const {
  throw ConfigError("environment variable " + env_name_for(path) + " (field \"" +
                    std::string(path) + "\" of " + file_ + "): " + std::string(why));
}

std::optional<std::string> ConfigReader::env_for(std::string_view path) const {
  if (!env_) return std::nullopt;
  return env_(env_name_for(path));
}

const json::value* ConfigReader::get_raw(std::string_view path) const {
  const json::value* cur = &root_;
  for (auto seg : split(path, '.')) {
    const auto* obj = cur->if_object();
    if (!obj) return nullptr;
    auto it = obj->find(seg);
    if (it == obj->end()) return nullptr;
    cur = &it->value();
  }
  if (cur->is_null()) return nullptr;
  return cur;
}

namespace {
std::string kind_of(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

std::optional<bool> parse_go_bool(std::string_view s) {
  if (s == "1" || s == "t" || s == "T" || s == "true" || s == "TRUE" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "false" || s == "FALSE" || s == "False")
    return false;
  return std::nullopt;
}

std::optional<int64_t> parse_int(std::string_view s) {
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  auto v = parse_u64(s);
  if (!v) return std::nullopt;
  return neg ? -static_cast<int64_t>(*v) : static_cast<int64_t>(*v);
}
}  // namespace

std::optional<bool> ConfigReader::get_bool(std::string_view path) const {
  if (auto e = env_for(path)) {
    auto b = parse_go_bool(*e);
    if (!b) fail_env(path, "expected a boolean (true/false), got \"" + *e + "\"");
    return b;
  }
  const auto* v = get_raw(path);
  if (!v) return std::nullopt;
  if (!v->is_bool()) fail(path, "expected a boolean, got " + kind_of(*v));
  return v->as_bool();
}

std::optional<int64_t> ConfigReader::get_int(std::string_view path) const {
  if (auto e = env_for(path)) {
    auto i = parse_int(*e);
    if (!i) fail_env(path, "expected an integer, got \"" + *e + "\"");
    return i;
  }
  const auto* v = get_raw(path);
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) {
    if (v->as_uint64() > static_cast<uint64_t>(INT64_MAX)) fail(path, "integer out of range");
    return static_cast<int64_t>(v->as_uint64());
  }
  if (v->is_double()) {
    double d = v->as_double();
    if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
    fail(path, "expected an integer, got a fractional number");
  }
  fail(path, "expected an integer, got " + kind_of(*v));
}

std::optional<double> ConfigReader::get_number(std::string_view path) const {
  if (auto e = env_for(path)) {
    char* end = nullptr;
    double d = std::strtod(e->c_str(), &end);
    if (e->empty() || *end != '\0') fail_env(path, "expected a number, got \"" + *e + "\"");
    return d;
  }
  const auto* v = get_raw(path);
  if (!v) return std::nullopt;
  if (v->is_number()) return v->to_number<double>();
  fail(path, "expected a number, got " + kind_of(*v));
}

std::optional<std::string> ConfigReader::get_string(std::string_view path) const {
  if (auto e = env_for(path)) return e;
  const auto* v = get_raw(path);
  if (!v) return std::nullopt;
  if (!v->is_string()) fail(path, "expected a string, got " + kind_of(*v));
  return std::string(v->as_string());
}

std::optional<std::vector<std::string>> ConfigReader::get_string_list(std::string_view path) const {
  if (auto e = env_for(path)) {
    std::vector<std::string> out;
    if (e->empty()) return out;
    for (auto part : split(*e, ',')) out.emplace_back(trim(part));
    return out;
  }
  const auto* v = get_raw(path);
  if (!v) return std::nullopt;
  if (!v->is_array()) fail(path, "expected an array of strings, got " + kind_of(*v));
  std::vector<std::string> out;
  for (const auto& item : v->as_array()) {
    if (!item.is_string()) fail(path, "expected an array of strings, found " + kind_of(item));
    out.emplace_back(item.as_string());
  }
  return out;
}

std::optional<std::map<std::string, std::string>> ConfigReader::get_string_map(
    std::string_view path) const {
  if (auto e = env_for(path)) {
    std::map<std::string, std::string> out;
    if (e->empty()) return out;
    for (auto part : split(*e, ',')) {
      auto colon = part.find(':');
      if (colon == std::string_view::npos) fail_env(path, "expected k:v pairs separated by ','");
      out.emplace(std::string(trim(part.substr(0, colon))),
                  std::string(trim(part.substr(colon + 1))));
    }
    return out;
  }
  const auto* v = get_raw(path);
  if (!v) return std::nullopt;
  if (!v->is_object()) fail(path, "expected an object of strings, got " + kind_of(*v));
  std::map<std::string, std::string> out;
  for (const auto& kv : v->as_object()) {
    if (!kv.value().is_string())
      fail(std::string(path) + "." + std::string(kv.key()),
           "expected a string, got " + kind_of(kv.value()));
    out.emplace(std::string(kv.key()), std::string(kv.value().as_string()));
  }
  return out;
}

}  // namespace gh::config
