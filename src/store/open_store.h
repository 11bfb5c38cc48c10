// The store `gatehouse.store.type` names, opened (throws config::ConfigError naming the field).
#pragma once

#include <memory>

#include "config/gateway_config.h"
#include "store/store.h"

namespace gh::store {

std::unique_ptr<Store> open_store(const config::GatewayConfig& cfg);

}  // namespace gh::store
