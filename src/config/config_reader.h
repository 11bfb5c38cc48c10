// Typed access to a JSON config document with Tyk's environment overrides.
//
// Every getter takes a dotted path ("http_server_options.min_version"). Before looking in the
// document it consults the environment variable Tyk would use for that field: "TYK_GW_" plus
// each path segment with underscores removed, upper-cased, joined by "_"
// (TYK_GW_HTTPSERVEROPTIONS_MINVERSION). A value of the wrong type is a ConfigError naming the
// file and the field (or the variable).
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace gh::config {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Returns the value of an environment variable, or nullopt. Injected for tests.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup process_env();

std::string env_name_for(std::string_view path);

class ConfigReader {
 public:
  ConfigReader(const boost::json::value& root, std::string file, EnvLookup env);

  std::optional<bool> get_bool(std::string_view path) const;
  std::optional<int64_t> get_int(std::string_view path) const;
  std::optional<double> get_number(std::string_view path) const;
  std::optional<std::string> get_string(std::string_view path) const;
  std::optional<std::vector<std::string>> get_string_list(std::string_view path) const;
  // Map of string -> string ("k:v,k2:v2" in the environment).
  std::optional<std::map<std::string, std::string>> get_string_map(std::string_view path) const;
  // Raw JSON (no environment override): objects and arrays of objects.
  const boost::json::value* get_raw(std::string_view path) const;

  [[noreturn]] void fail(std::string_view path, std::string_view why) const;
  const std::string& file() const { return file_; }

 private:
  std::optional<std::string> env_for(std::string_view path) const;
  [[noreturn]] void fail_env(std::string_view path, std::string_view why) const;

  const boost::json::value& root_;
  std::string file_;
  EnvLookup env_;
};

}  // namespace gh::config
