// Loading Tyk Classic and Tyk OAS API definitions into ApiSpec, with Tyk's validation messages.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "apidef/api_spec.h"
#include "core/result.h"

namespace gh::apidef {

// True when the document is a Tyk OAS API (an OpenAPI document with x-tyk-api-gateway).
bool is_oas_document(const boost::json::value& doc);

// Builds an ApiSpec. The error text is the Tyk "reason" (what follows "Reason: ").
Result<ApiSpec> load_classic(const boost::json::value& doc);
Result<ApiSpec> load_oas(const boost::json::value& doc);
Result<ApiSpec> load_any(const boost::json::value& doc);

// "Validation of API Definition failed. Reason: <r>."
std::string validation_message(std::string_view reason);

// An API id is a single safe path component (it names the file in app_path).
bool valid_api_id(std::string_view id);

// Normalises a listen path: leading '/', no trailing '/', "" for the root.
std::string normalise_listen_path(std::string_view p);

struct LoadedApi {
  std::string file;
  ApiSpec spec;
};
struct DirectoryLoad {
  std::vector<LoadedApi> apis;
  std::vector<std::string> problems;  // one line per skipped file, for the log
};
// Reads every *.json file of `dir`. Broken or invalid files are reported and skipped.
DirectoryLoad load_directory(const std::string& dir);

}  // namespace gh::apidef
