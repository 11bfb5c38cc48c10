#include "policy/policy.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "policy/access.h"

namespace json = boost::json;
using gh::policy::apply_policies;
using gh::policy::PolicySet;

namespace {

PolicySet set_of(std::initializer_list<const char*> docs) {
  PolicySet s;
  for (const char* d : docs) {
    auto p = gh::policy::parse_policy(json::parse(d));
    EXPECT_TRUE(p) << p.error();
    auto id = p->id;
    s.by_id.emplace(id, std::make_shared<const gh::policy::Policy>(std::move(p.value())));
  }
  return s;
}

json::object session(const char* s) { return json::parse(s).as_object(); }

const json::object& right(const json::object& s, const char* api) {
  return s.at("access_rights").as_object().at(api).as_object();
}
double lim(const json::object& s, const char* api, const char* f) {
  return right(s, api).at("limit").as_object().at(f).to_number<double>();
}
std::string scope(const json::object& s, const char* api) {
  const auto& r = right(s, api);
  auto it = r.find("allowance_scope");
  return it == r.end() ? "" : std::string(it->value().as_string());
}

}  // namespace

TEST(ApplyPolicies, OnePolicyReplacesTheKeysRightsAndSetsItsLimits) {
  auto pols = set_of({R"({"id":"p1","org_id":"o","rate":10,"per":60,"quota_max":100,
      "quota_renewal_rate":3600,"access_rights":{"a":{"api_id":"a","versions":["Default"]}},
      "tags":["t1"],"meta_data":{"m":"p"}})"});
  auto r = apply_policies(session(R"({"org_id":"o","apply_policies":["p1"],"rate":1000,"per":1,
      "access_rights":{"other":{"api_id":"other"}},"tags":["own"],"meta_data":{"m":"k","k":1}})"),
                          pols);
  ASSERT_TRUE(r) << r.error();
  const auto& s = r.value();
  EXPECT_EQ(s.at("access_rights").as_object().size(), 1u);
  EXPECT_EQ(lim(s, "a", "rate"), 10);
  EXPECT_EQ(lim(s, "a", "per"), 60);
  EXPECT_EQ(lim(s, "a", "quota_max"), 100);
  EXPECT_EQ(scope(s, "a"), "");  // one ACL policy: key-level counters
  EXPECT_EQ(s.at("rate").to_number<double>(), 10);
  EXPECT_EQ(s.at("meta_data").as_object().at("m"), "p");
  EXPECT_EQ(s.at("meta_data").as_object().at("k"), 1);
  EXPECT_EQ(s.at("tags").as_array().size(), 2u);
}

TEST(ApplyPolicies, SeveralAclPoliciesGiveEachApiItsOwnCounters) {
  auto pols = set_of({R"({"id":"pa","org_id":"o","rate":5,"per":1,"quota_max":-1,
                          "access_rights":{"a":{}}})",
                      R"({"id":"pb","org_id":"o","rate":50,"per":1,"quota_max":10,
                          "access_rights":{"b":{}}})"});
  auto r = apply_policies(session(R"({"org_id":"o","apply_policies":["pa","pb"]})"), pols);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(scope(*r, "a"), "pa");
  EXPECT_EQ(scope(*r, "b"), "pb");
  EXPECT_EQ(lim(*r, "a", "rate"), 5);
  EXPECT_EQ(lim(*r, "b", "rate"), 50);
  EXPECT_EQ(lim(*r, "b", "quota_max"), 10);
}

TEST(ApplyPolicies, LargerQuotaAndMoreGenerousRateWin) {
  auto pols = set_of({R"({"id":"p1","org_id":"o","rate":100,"per":60,"quota_max":50,
                          "quota_renewal_rate":60,"access_rights":{"a":{}}})",
                      R"({"id":"p2","org_id":"o","rate":10,"per":1,"quota_max":20,
                          "quota_renewal_rate":3600,"access_rights":{"a":{}}})",
                      R"({"id":"p3","org_id":"o","rate":1,"per":1,"quota_max":-1,
                          "access_rights":{"a":{}}})"});
  auto r = apply_policies(session(R"({"org_id":"o","apply_policies":["p1","p2"]})"), pols);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(lim(*r, "a", "rate"), 10);  // 10/s admits more than 100/min
  EXPECT_EQ(lim(*r, "a", "per"), 1);
  EXPECT_EQ(lim(*r, "a", "quota_max"), 50);
  EXPECT_EQ(lim(*r, "a", "quota_renewal_rate"), 3600);
  auto r3 = apply_policies(session(R"({"org_id":"o","apply_policies":["p1","p3"]})"), pols);
  ASSERT_TRUE(r3);
  EXPECT_EQ(lim(*r3, "a", "quota_max"), -1);  // unlimited beats any number
}

TEST(ApplyPolicies, PartitionsTakeEachPartFromItsPolicy) {
  auto pols = set_of({R"({"id":"acl","org_id":"o","rate":1,"per":1,"quota_max":1,
                          "partitions":{"acl":true},"access_rights":{"a":{"allowed_urls":
                          [{"url":"/x","methods":["GET"]}]}}})",
                      R"({"id":"quota","org_id":"o","quota_max":500,"quota_renewal_rate":60,
                          "partitions":{"quota":true},"access_rights":{"a":{}}})",
                      R"({"id":"rate","org_id":"o","rate":7,"per":2,
                          "partitions":{"rate_limit":true},"access_rights":{"a":{}}})"});
  auto r =
      apply_policies(session(R"({"org_id":"o","apply_policies":["acl","quota","rate"]})"), pols);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(lim(*r, "a", "quota_max"), 500);
  EXPECT_EQ(lim(*r, "a", "rate"), 7);
  EXPECT_EQ(lim(*r, "a", "per"), 2);
  EXPECT_EQ(right(*r, "a").at("allowed_urls").as_array().size(), 1u);
  // Quota or rate partitions alone grant nothing.
  auto none = apply_policies(session(R"({"org_id":"o","apply_policies":["quota","rate"]})"), pols);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error(), "key has no valid policies to be applied");
}

TEST(ApplyPolicies, AllowedUrlsAreUnitedByUrlWithTheirMethods) {
  auto pols = set_of({R"({"id":"p1","org_id":"o","access_rights":{"a":{"allowed_urls":[
                          {"url":"/users","methods":["GET"]}]}}})",
                      R"({"id":"p2","org_id":"o","access_rights":{"a":{"allowed_urls":[
                          {"url":"/users","methods":["POST","GET"]},
                          {"url":"/orders","methods":["GET"]}]}}})"});
  auto r = apply_policies(session(R"({"org_id":"o","apply_policies":["p1","p2"]})"), pols);
  ASSERT_TRUE(r) << r.error();
  const auto& urls = right(*r, "a").at("allowed_urls").as_array();
  ASSERT_EQ(urls.size(), 2u);
  EXPECT_EQ(urls[0].as_object().at("url"), "/users");
  EXPECT_EQ(urls[0].as_object().at("methods").as_array().size(), 2u);
  EXPECT_EQ(urls[1].as_object().at("url"), "/orders");
}

TEST(ApplyPolicies, PerApiLimitsAndScopes) {
  auto pols = set_of({R"({"id":"pp","org_id":"o","rate":3,"per":1,"quota_max":30,
      "partitions":{"per_api":true},"access_rights":{
        "a":{"limit":{"rate":100,"per":1,"quota_max":-1}},
        "b":{}}})"});
  auto r = apply_policies(session(R"({"org_id":"o","apply_policies":["pp"]})"), pols);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(scope(*r, "a"), "a");
  EXPECT_EQ(lim(*r, "a", "rate"), 100);
  EXPECT_EQ(scope(*r, "b"), "pp");
  EXPECT_EQ(lim(*r, "b", "rate"), 3);
  EXPECT_EQ(lim(*r, "b", "quota_max"), 30);
}

TEST(ApplyPolicies, RefusalsCarryTyksReasons) {
  auto pols = set_of({R"({"id":"pp","org_id":"o","partitions":{"per_api":true},
                          "access_rights":{"a":{}}})",
                      R"({"id":"part","org_id":"o","partitions":{"quota":true,"acl":true},
                          "access_rights":{"b":{}}})",
                      R"({"id":"bad","org_id":"o","partitions":{"per_api":true,"acl":true},
                          "access_rights":{"b":{}}})",
                      R"({"id":"other-org","org_id":"x","access_rights":{"b":{}}})",
                      R"({"id":"ok","org_id":"o","access_rights":{"c":{}}})"});
  auto mixed = apply_policies(session(R"({"org_id":"o","apply_policies":["pp","part"]})"), pols);
  ASSERT_FALSE(mixed);
  EXPECT_EQ(mixed.error(),
            "cannot apply multiple policies when some have per_api set and some are partitioned");
  auto both = apply_policies(session(R"({"org_id":"o","apply_policies":["bad"]})"), pols);
  ASSERT_FALSE(both);
  EXPECT_EQ(both.error(), "cannot apply policy bad which has per_api and any of partitions set");
  auto org = apply_policies(session(R"({"org_id":"o","apply_policies":["other-org"]})"), pols);
  ASSERT_FALSE(org);
  EXPECT_EQ(org.error(), "attempting to apply policy from different organisation to key, skipping");
  auto api_org = apply_policies(session(R"({"org_id":"","apply_policies":["ok"]})"), pols, "x");
  ASSERT_FALSE(api_org);
  auto missing = apply_policies(session(R"({"org_id":"o","apply_policies":["nope"]})"), pols);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error(), "policy not found: \"nope\"");
  // With several policies a missing one is skipped.
  auto skip = apply_policies(session(R"({"org_id":"o","apply_policies":["nope","ok"]})"), pols);
  ASSERT_TRUE(skip) << skip.error();
  EXPECT_TRUE(skip->at("access_rights").as_object().contains("c"));
}

TEST(ApplyPolicies, InactivePolicyMakesTheKeyInactiveAndAKeyOffStaysOff) {
  auto pols = set_of({R"({"id":"off","org_id":"o","is_inactive":true,"access_rights":{"a":{}}})",
                      R"({"id":"on","org_id":"o","is_inactive":false,"access_rights":{"a":{}}})"});
  auto r = apply_policies(session(R"({"org_id":"o","apply_policies":["off"]})"), pols);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->at("is_inactive").as_bool());
  auto k =
      apply_policies(session(R"({"org_id":"o","is_inactive":true,"apply_policies":["on"]})"), pols);
  ASSERT_TRUE(k);
  EXPECT_TRUE(k->at("is_inactive").as_bool());
}

TEST(ApplyPolicies, KeyWithoutPoliciesScopesItsOwnPerApiLimits) {
  PolicySet none;
  auto r = apply_policies(session(R"({"org_id":"o","rate":1,"per":1,"access_rights":{
      "a":{"limit":{"rate":9,"per":1}},"b":{}}})"),
                          none);
  ASSERT_TRUE(r);
  EXPECT_EQ(scope(*r, "a"), "a");
  EXPECT_EQ(scope(*r, "b"), "");
  auto access = gh::policy::build_access(*r, false);
  ASSERT_TRUE(access) << access.error();
  EXPECT_EQ(access->api("a")->limit.rate, 9);
  EXPECT_EQ(access->api("a")->scope, "a");
  EXPECT_EQ(access->api("b")->limit.rate, 1);  // the session's own limit
  EXPECT_EQ(access->api("c"), nullptr);
}

TEST(Policy, IdsAndParsing) {
  EXPECT_TRUE(gh::policy::valid_policy_id("gold-tier_1.v2~x"));
  EXPECT_FALSE(gh::policy::valid_policy_id("../etc"));
  EXPECT_FALSE(gh::policy::valid_policy_id("a/b"));
  EXPECT_FALSE(gh::policy::valid_policy_id(".."));
  EXPECT_FALSE(gh::policy::valid_policy_id(""));
  EXPECT_FALSE(gh::policy::parse_policy(json::parse(R"({"id":"x","rate":"10"})")));
  EXPECT_FALSE(gh::policy::parse_policy(json::parse(R"({"id":"x","access_rights":[]})")));
  EXPECT_FALSE(gh::policy::parse_policy(
      json::parse(R"({"id":"x","access_rights":{"a":{"allowed_urls":[{"url":1}]}}})")));
}

TEST(ApplyPolicies, CertificateBindingsOfKeyAndPoliciesAreUnited) {
  auto pols = set_of({R"({"id":"p1","org_id":"o","access_rights":{"a":{"api_id":"a"}},
      "mtls_static_certificate_bindings":["oB","oC"]})",
                      R"({"id":"p2","org_id":"o","access_rights":{"b":{"api_id":"b"}},
      "mtls_static_certificate_bindings":["oC","oD"]})"});
  auto r = apply_policies(session(R"({"org_id":"o","apply_policies":["p1","p2"],
      "mtls_static_certificate_bindings":["oA","oB"]})"),
                          pols);
  ASSERT_TRUE(r) << r.error();
  const auto& b = r->at("mtls_static_certificate_bindings").as_array();
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[0], "oA");
  EXPECT_EQ(b[1], "oB");
  EXPECT_EQ(b[2], "oC");
  EXPECT_EQ(b[3], "oD");
  // A policy whose bindings are not strings is refused when it is loaded.
  auto bad = gh::policy::parse_policy(
      json::parse(R"({"id":"p3","mtls_static_certificate_bindings":"oA"})"));
  EXPECT_FALSE(bad);
}
