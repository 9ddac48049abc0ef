// pod.json and status.json: round trips, and damaged input refused with the field named.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "pods_support.hpp"

namespace pod::runtime::test {

using json = nlohmann::json;

namespace {

const std::string kUuid = "0f8fad5b-d9cb-469f-a165-70867728950e";

// The error for the sample record changed by `edit`.
std::string error_after(const std::function<void(json&)>& edit) {
  json j = json::parse(record_to_json(sample_record(kUuid, "web")));
  edit(j);
  auto r = record_from_json(j.dump());
  REQUIRE_MESSAGE(!r, "accepted: " << j.dump());
  CHECK(r.error().code == EINVAL);
  return r.error().message;
}

}  // namespace

TEST_CASE("pod.json round trip keeps every field") {
  PodRecord r = sample_record(kUuid, "web");
  AppRecord second = r.apps[0];
  second.app.name = "side";
  second.app.security.caps.clear();
  second.app.security.no_new_privs = false;
  second.app.security.seccomp = Security::Seccomp::file;
  second.app.security.seccomp_file = "/etc/pod/seccomp.json";
  second.app.security.oom_score_adj.reset();
  second.app.security.rlimits = {{RLIMIT_CORE, 0, RLIM_INFINITY}};
  second.pid = 4242;
  second.start_time = 987654321;
  r.apps.push_back(second);
  r.uids.extents = {{0, 100000, 1}, {1, 200000, 65535}};
  r.rootless = true;
  r.pid = 4241;
  r.start_time = 123456789;

  std::string text = record_to_json(r);
  auto back = record_from_json(text);
  REQUIRE_MESSAGE(back, back.error().what());
  CHECK(record_to_json(*back) == text);
  CHECK(back->uuid == kUuid);
  CHECK(back->name == "web");
  CHECK(back->created == "2025-01-02T03:04:05Z");
  CHECK(back->uids.str() == "0:100000:1,1:200000:65535");
  CHECK(back->gids.str() == "0:100000:65536");
  CHECK(back->lease == "pod-web");
  CHECK(back->shift_keys == r.shift_keys);
  CHECK(back->rootless);
  CHECK(back->pid == 4241);
  CHECK(back->start_time == 123456789);
  REQUIRE(back->apps.size() == 2);
  auto& a = back->apps[0];
  CHECK(a.app.argv == std::vector<std::string>{"/bin/sh", "-c", "echo hi"});
  CHECK(a.app.workdir == "/srv");
  CHECK(a.app.groups == std::vector<std::uint32_t>{10, 20});
  CHECK(a.app.security.caps == std::vector<int>{0, 7});
  CHECK(a.app.security.oom_score_adj == 100);
  REQUIRE(a.app.security.rlimits.size() == 1);
  CHECK(a.app.security.rlimits[0].resource == RLIMIT_NOFILE);
  CHECK(a.app.security.rlimits[0].hard == 4096);
  auto& b = back->apps[1];
  CHECK(b.app.security.seccomp == Security::Seccomp::file);
  CHECK(b.app.security.seccomp_file == "/etc/pod/seccomp.json");
  CHECK_FALSE(b.app.security.no_new_privs);
  CHECK_FALSE(b.app.security.oom_score_adj.has_value());
  CHECK(b.app.security.rlimits[0].hard == RLIM_INFINITY);
  CHECK(b.pid == 4242);
  CHECK(b.start_time == 987654321);
}

TEST_CASE("pod.json writes capabilities and rlimits by name") {
  json j = json::parse(record_to_json(sample_record(kUuid, "web")));
  CHECK(j["apps"][0]["security"]["caps"] == json({"CAP_CHOWN", "CAP_SETUID"}));
  CHECK(j["apps"][0]["security"]["rlimits"][0]["resource"] == "RLIMIT_NOFILE");
  CHECK(j["uid_map"] == json::parse(R"([{"inner": 0, "outer": 100000, "count": 65536}])"));
}

TEST_CASE("malformed pod.json is refused naming the field") {
  CHECK(error_after([](json& j) { j.erase("uuid"); }).find("'uuid' is missing") != std::string::npos);
  CHECK(error_after([](json& j) { j["uuid"] = "../../etc"; }).find("'uuid'") != std::string::npos);
  CHECK(error_after([](json& j) { j["name"] = "Bad Name"; }).find("'name'") != std::string::npos);
  CHECK(error_after([](json& j) { j["version"] = 7; }).find("'version'") != std::string::npos);
  CHECK(error_after([](json& j) { j["apps"][0]["argv"] = 5; }).find("'apps[0].argv'") != std::string::npos);
  CHECK(error_after([](json& j) { j["apps"][0]["argv"][1] = 5; }).find("'apps[0].argv[1]'") != std::string::npos);
  CHECK(error_after([](json& j) { j["apps"][0]["argv"] = json::array(); }).find("'apps[0].argv' is empty") !=
        std::string::npos);
  CHECK(error_after([](json& j) { j["apps"] = json::array(); }).find("'apps' is empty") != std::string::npos);
  CHECK(error_after([](json& j) { j["apps"][0]["workdir"] = "srv"; }).find("'apps[0].workdir'") != std::string::npos);
  CHECK(error_after([](json& j) { j["apps"][0]["uid"] = -1; }).find("'apps[0].uid'") != std::string::npos);
  CHECK(error_after([](json& j) { j["apps"][0]["security"]["caps"][0] = "CAP_NOPE"; })
            .find("'apps[0].security.caps[0]'") != std::string::npos);
  CHECK(error_after([](json& j) { j["apps"][0]["security"]["seccomp"] = "maybe"; })
            .find("'apps[0].security.seccomp'") != std::string::npos);
  CHECK(error_after([](json& j) { j["apps"][0]["security"]["rlimits"][0]["resource"] = "RLIMIT_FOO"; })
            .find("'apps[0].security.rlimits[0].resource'") != std::string::npos);
  CHECK(error_after([](json& j) { j["apps"][0]["security"]["oom_score_adj"] = 5000; })
            .find("'apps[0].security.oom_score_adj'") != std::string::npos);
  CHECK(error_after([](json& j) { j["uid_map"][0]["count"] = 0; }).find("'uid_map[0].count'") != std::string::npos);
  CHECK(error_after([](json& j) { j["gid_map"] = "0:1:2"; }).find("'gid_map'") != std::string::npos);
  CHECK(error_after([](json& j) { j["uid_map"].push_back({{"inner", 5}, {"outer", 100005}, {"count", 1}}); })
            .find("'uid_map'") != std::string::npos);  // overlaps the first extent
  CHECK(error_after([](json& j) { j["pid"] = "12"; }).find("'pid'") != std::string::npos);
  CHECK(error_after([](json& j) { j["shift_keys"][0] = "../x"; }).find("'shift_keys[0]'") != std::string::npos);
  CHECK(error_after([](json& j) { j["rootless"] = 1; }).find("'rootless'") != std::string::npos);

  for (std::string bad : {"", "{", "[]", "null", "\"pod\"", "{\"version\": 1}"}) {
    auto r = record_from_json(bad);
    CHECK_MESSAGE(!r, bad);
  }
}

TEST_CASE("status.json has the shape the pod init writes") {
  PodExitRecord e;
  e.exit = 137;
  e.apps = {{"main", {0, 9}}, {"side", {3, 0}}};
  json j = json::parse(exit_to_json(e));
  CHECK(j == json::parse(R"({"exit": 137, "apps": [{"name": "main", "exit": 0, "signal": 9},
                                                     {"name": "side", "exit": 3, "signal": 0}]})"));
  // As the init writes it by hand; signal may be left out.
  auto r = exit_from_json(R"({"exit":3,"apps":[{"name":"main","exit":3,"signal":0},{"name":"b","exit":0}]})");
  REQUIRE_MESSAGE(r, r.error().what());
  CHECK(r->exit == 3);
  REQUIRE(r->apps.size() == 2);
  CHECK(r->apps[0].name == "main");
  CHECK(r->apps[0].status.code == 3);
  CHECK(r->apps[1].status.signal == 0);

  auto bad = exit_from_json(R"({"exit": 300, "apps": []})");
  REQUIRE(!bad);
  CHECK(bad.error().message.find("'exit'") != std::string::npos);
  bad = exit_from_json(R"({"exit": 0, "apps": [{"exit": 1}]})");
  REQUIRE(!bad);
  CHECK(bad.error().message.find("'apps[0].name'") != std::string::npos);
}

TEST_CASE("new_uuid is a random RFC 4122 version 4 uuid") {
  std::regex v4("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string u = new_uuid();
    CHECK_MESSAGE(std::regex_match(u, v4), u);
    CHECK(is_uuid(u));
    seen.insert(u);
  }
  CHECK(seen.size() == 200);
  CHECK_FALSE(is_uuid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
  CHECK_FALSE(is_uuid("0f8fad5b-d9cb-469f-a165-70867728950"));
  CHECK_FALSE(is_uuid("0f8fad5b-d9cb-469f-a165/70867728950e"));
}

}  // namespace pod::runtime::test
