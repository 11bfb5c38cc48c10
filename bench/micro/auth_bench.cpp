// Micro-benchmarks of the per-request key-check work (no I/O): token extraction, storage-id
// derivation (base64 + hash) and the request-head parse it rides on.
//   cmake --preset release -DGATEHOUSE_MICROBENCH=ON && cmake --build --preset release
//   taskset -c 1 build/release/auth_bench
#include <benchmark/benchmark.h>

#include "auth/token.h"
#include "auth/token_source.h"
#include "http/http1_parser.h"

namespace {
const std::string kToken = gh::auth::generate_token("default", "", "murmur64");
const std::string kRequest =
    "GET /keyed/ HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: wrk\r\n"
    "Accept: */*\r\nAuthorization: " +
    kToken + "\r\n\r\n";

void BM_ParseHead(benchmark::State& st) {
  gh::http::ParseLimits limits;
  for (auto _ : st) {
    gh::http::RequestHead h;
    benchmark::DoNotOptimize(gh::http::parse_request_head(kRequest, limits, h));
  }
}
BENCHMARK(BM_ParseHead);

void BM_FindToken(benchmark::State& st) {
  gh::http::RequestHead h;
  gh::http::parse_request_head(kRequest, {}, h);
  gh::apidef::TokenSource src;
  for (auto _ : st) benchmark::DoNotOptimize(gh::auth::find_token(h, src));
}
BENCHMARK(BM_FindToken);

void BM_LookupIds(benchmark::State& st) {
  gh::auth::KeyHashing hashing;
  for (auto _ : st)
    benchmark::DoNotOptimize(gh::auth::lookup_ids(kToken, "default", "murmur64", hashing));
}
BENCHMARK(BM_LookupIds);
}  // namespace

BENCHMARK_MAIN();
