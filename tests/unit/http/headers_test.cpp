#include "http/headers.h"

#include <gtest/gtest.h>

using namespace gh::http;

TEST(Headers, HopByHop) {
  for (auto n : {"Connection", "keep-alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
                 "Proxy-Connection", "Proxy-Authorization"})
    EXPECT_TRUE(is_hop_by_hop(n)) << n;
  EXPECT_FALSE(is_hop_by_hop("X-Forwarded-For"));
  EXPECT_FALSE(is_hop_by_hop("Authorization"));
}

TEST(Headers, ConnectionListedAreDropped) {
  std::vector<Header> hs{{"Connection", "close, X-Secret"}, {"X-Secret", "1"}, {"X-Kept", "2"}};
  auto listed = connection_listed(hs);
  EXPECT_TRUE(drop_when_forwarding("x-secret", listed));
  EXPECT_TRUE(drop_when_forwarding("Content-Length", listed));
  EXPECT_FALSE(drop_when_forwarding("X-Kept", listed));
}
