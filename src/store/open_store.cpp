#include "store/open_store.h"

#include "store/embedded_store.h"
#include "store/redis_store.h"

namespace gh::store {

std::unique_ptr<Store> open_store(const config::GatewayConfig& cfg) {
  if (cfg.gatehouse.store_type == "redis") return std::make_unique<RedisStore>(cfg);
  if (cfg.gatehouse.store_type != "embedded")
    throw config::ConfigError(cfg.file +
                              ": field \"gatehouse.store.type\": expected \"embedded\" "
                              "or \"redis\"");
  try {
    return std::make_unique<EmbeddedStore>(cfg.gatehouse.store_path);
  } catch (const std::exception& e) {
    throw config::ConfigError(cfg.file + ": field \"gatehouse.store.path\": " + e.what());
  }
}

}  // namespace gh::store
