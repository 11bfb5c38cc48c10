#include "admin/control_api.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>

using namespace gh;

namespace {
struct Fixture : ::testing::Test {
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() / ("gh-admin-" + random_suffix());
    std::filesystem::create_directories(dir);
    cfg.secret = "sekret";
    cfg.app_path = dir.string();
    holder.set(proxy::build_snapshot(cfg.app_path, false, 1, nullptr));
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  static std::string random_suffix() {
    return std::to_string(::getpid()) + "-" + std::to_string(counter++);
  }
  admin::AdminResult call(std::string_view method, std::string_view path,
                          std::string_view body = "", std::string_view secret = "sekret",
                          std::string_view query = "") {
    admin::AdminRequest r;
    r.method = method;
    r.path = path;
    r.query = query;
    r.body = body;
    r.authorization = secret;
    r.has_authorization = true;
    return api.handle(r);
  }
  static inline int counter = 0;
  std::filesystem::path dir;
  config::GatewayConfig cfg;
  proxy::SnapshotHolder holder;
  admin::ControlApi api{
      cfg, holder, admin::GatewayState{[] { return false; }, [] { return true; }, nullptr, ""}};
};
}  // namespace

TEST_F(Fixture, RefusesWrongSecret) {
  auto r = call("GET", "/tyk/apis", "", "wrong");
  EXPECT_EQ(r.response.status, 403);
  EXPECT_EQ(
      r.response.body,
      R"({"status":"error","message":"Attempted administrative access with invalid or missing key!"})");
}

TEST_F(Fixture, AddThenReloadThenGet) {
  auto r = call(
      "POST", "/tyk/apis",
      R"({"api_id":"a1","active":true,"use_keyless":true,"proxy":{"listen_path":"/a","target_url":"http://h"}})");
  ASSERT_EQ(r.response.status, 200) << r.response.body;
  EXPECT_EQ(r.response.body, R"({"key":"a1","status":"ok","action":"added"})");
  EXPECT_TRUE(std::filesystem::exists(dir / "a1.json"));
  EXPECT_EQ(call("GET", "/tyk/apis/a1").response.status, 404);  // served after a reload
  holder.set(proxy::build_snapshot(cfg.app_path, false, 2, nullptr));
  EXPECT_EQ(call("GET", "/tyk/apis/a1").response.status, 200);
  auto m = call("PUT", "/tyk/apis/a1",
                R"({"api_id":"other","proxy":{"listen_path":"/a","target_url":"http://h"}})");
  EXPECT_EQ(m.response.status, 400);
  EXPECT_NE(m.response.body.find("Request APIID does not match"), std::string::npos);
  EXPECT_EQ(call("DELETE", "/tyk/apis/a1").response.body,
            R"({"key":"a1","status":"ok","action":"deleted"})");
  EXPECT_FALSE(std::filesystem::exists(dir / "a1.json"));
}

TEST_F(Fixture, GeneratesIdAndRefusesMalformed) {
  auto r = call("POST", "/tyk/apis", R"({"proxy":{"listen_path":"/g","target_url":"http://h"}})");
  ASSERT_EQ(r.response.status, 200);
  auto v = boost::json::parse(r.response.body);
  EXPECT_EQ(v.at("key").as_string().size(), 32u);
  EXPECT_EQ(call("POST", "/tyk/apis", "{oops").response.body,
            R"({"status":"error","message":"Request malformed"})");
  EXPECT_EQ(call("PATCH", "/tyk/apis").response.status, 405);
}

TEST_F(Fixture, ReloadModes) {
  EXPECT_EQ(call("GET", "/tyk/reload").reload, admin::ReloadMode::kQueue);
  EXPECT_EQ(call("GET", "/tyk/reload", "", "sekret", "block=true").reload,
            admin::ReloadMode::kBlock);
  EXPECT_EQ(call("GET", "/tyk/reload/group").response.body, R"({"status":"ok","message":""})");
  EXPECT_EQ(call("POST", "/tyk/reload").response.status, 405);
}

TEST_F(Fixture, HealthNeedsNoSecret) {
  admin::AdminRequest r;
  r.method = "GET";
  r.path = "/hello";
  EXPECT_EQ(api.handle(r).response.status, 200);
  r.path = "/ready";
  EXPECT_EQ(api.handle(r).response.status, 200);
  EXPECT_TRUE(api.owns("/tyk/apis"));
  EXPECT_FALSE(api.owns("/tykx"));
}
