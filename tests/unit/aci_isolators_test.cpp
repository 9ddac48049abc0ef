// rkt's ACI isolators: quantities, each isolator, malformed values with the exact
// messages an import prints, and the seccomp filters they become.
#include <doctest/doctest.h>
#include <linux/capability.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "pod/runtime/aci_isolators.hpp"
#include "pod/runtime/image_config.hpp"
#include "security.hpp"

using namespace pod::runtime;

namespace {

bool has(const std::vector<std::string>& v, std::string_view s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string error_of(std::string_view isolators) {
  auto r = parse_aci_isolators(isolators);
  REQUIRE_FALSE(r.has_value());
  return r.error().message;
}

}  // namespace

TEST_CASE("byte quantities are Kubernetes', decimal and binary") {
  struct Case {
    const char* text;
    std::uint64_t bytes;
  };
  for (auto c : {Case{"1G", 1000000000}, Case{"1Gi", 1ull << 30}, Case{"500M", 500000000}, Case{"128Mi", 128ull << 20},
                 Case{"4096", 4096}, Case{"129e6", 129000000}, Case{"128974848000m", 128974848},
                 Case{"1.5Gi", 1610612736}, Case{"0.5k", 500}, Case{"1E", 1000000000000000000},
                 Case{"+64Mi", 64ull << 20}, Case{"1500m", 2}}) {
    CAPTURE(c.text);
    auto r = parse_byte_quantity(c.text);
    REQUIRE_MESSAGE(r.has_value(), r.error().message);
    CHECK(*r == c.bytes);
  }
  const std::string not_q =
      "not a quantity (a number with an optional suffix: 500M = 500*10^6, 128Mi = 128*2^20, 500m = 0.5)";
  for (const char* bad : {"12X", "", "G", "1K", "1.5.2", "1Gb", "1e", "ten", "1 G"}) {
    CAPTURE(bad);
    auto r = parse_byte_quantity(bad);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().message == not_q);
  }
  CHECK(parse_byte_quantity("-1G").error().message == "must be more than 0");
  CHECK(parse_byte_quantity("0").error().message == "must be more than 0");
  CHECK(parse_byte_quantity("10Ei").error().message == "too large");
}

TEST_CASE("cpu quantities are thousandths of a cpu") {
  CHECK(parse_cpu_quantity("500m").value() == 500);
  CHECK(parse_cpu_quantity("1").value() == 1000);
  CHECK(parse_cpu_quantity("1.5").value() == 1500);
  CHECK(parse_cpu_quantity("0.1").value() == 100);
  CHECK(parse_cpu_quantity("2500m").value() == 2500);
  CHECK(parse_cpu_quantity("1u").value() == 1);  // rounded up, as Kubernetes does
  CHECK(parse_cpu_quantity("5000").error().message == "more than 4096 cpus");
  CHECK(parse_cpu_quantity("0m").error().message == "must be more than 0");
  CHECK_FALSE(parse_cpu_quantity("half"));
}

TEST_CASE("every isolator pod knows, read as rkt read it") {
  auto r = parse_aci_isolators(R"([
    {"name": "resource/memory", "value": {"limit": "64Mi", "request": "32Mi"}},
    {"name": "resource/cpu", "value": {"limit": "500m"}},
    {"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_NET_BIND_SERVICE", "kill"]}},
    {"name": "os/linux/no-new-privileges", "value": true},
    {"name": "os/linux/oom-score-adj", "value": 500},
    {"name": "os/linux/seccomp-remove-set", "value": {"set": ["uname", "@rkt/default-blacklist"], "errno": "ENOSYS"}},
    {"name": "os/linux/selinux-context", "value": {"user": "u", "role": "r", "type": "t", "level": "s0"}}])");
  REQUIRE_MESSAGE(r.has_value(), r.error().message);
  const AciIsolators& i = r->isolators;
  CHECK(i.memory == 64ull << 20);
  CHECK(i.cpu_millis == 500u);
  REQUIRE(i.caps_retain);
  CHECK(*i.caps_retain == std::vector<int>{CAP_NET_BIND_SERVICE, CAP_KILL});
  CHECK_FALSE(i.caps_remove);
  CHECK(i.no_new_privs == true);
  CHECK(i.oom_score_adj == 500);
  REQUIRE(i.seccomp);
  CHECK_FALSE(i.seccomp->retain);
  CHECK(i.seccomp->errno_ret == ENOSYS);
  CHECK(i.seccomp->entries == std::vector<std::string>{"uname", "@rkt/default-blacklist"});
  CHECK(has(i.seccomp->syscalls, "uname"));
  CHECK(has(i.seccomp->syscalls, "mount"));    // from the group
  CHECK(has(i.seccomp->syscalls, "fsopen"));   // the group's call added since 2016
  CHECK_FALSE(has(i.seccomp->syscalls, "read"));
  // The unknown one is named and not kept; the request is noted.
  CHECK(r->unknown == std::vector<std::string>{"os/linux/selinux-context"});
  CHECK(r->notes == std::vector<std::string>{
                        "isolator 'resource/memory': the request '32Mi' is ignored (pod applies limits)"});
  auto kept = nlohmann::json::parse(r->known);
  CHECK(kept.size() == 6);
  CHECK(kept.dump().find("selinux") == std::string::npos);
}

TEST_CASE("isolators: the special cases of rkt's sets") {
  auto remove = parse_aci_isolators(R"([{"name": "os/linux/capabilities-remove-set", "value": {"set": ["CAP_MKNOD"]}},
                                        {"name": "os/linux/capabilities-remove-set", "value": {"set": ["CAP_KILL"]}}])");
  REQUIRE_MESSAGE(remove.has_value(), remove.error().message);
  CHECK(*remove->isolators.caps_remove == std::vector<int>{CAP_MKNOD, CAP_KILL});  // sets add up, as in rkt
  auto all = parse_aci_isolators(R"([{"name": "os/linux/seccomp-retain-set", "value": {"set": ["@appc.io/all", "read"]}}])");
  REQUIRE(all.has_value());
  CHECK(all->isolators.seccomp->unconfined);
  auto empty = parse_aci_isolators(R"([{"name": "os/linux/seccomp-remove-set", "value": {"set": ["@appc.io/empty"]}}])");
  REQUIRE(empty.has_value());
  CHECK(empty->isolators.seccomp->default_profile);
  CHECK_FALSE(empty->isolators.seccomp->errno_ret);
  auto request_only = parse_aci_isolators(R"([{"name": "resource/cpu", "value": {"request": "1"}}])");
  REQUIRE(request_only.has_value());
  CHECK_FALSE(request_only->isolators.cpu_millis);
  auto none = parse_aci_isolators("[]");
  REQUIRE(none.has_value());
  CHECK(none->known.empty());
}

TEST_CASE("malformed isolators are refused naming the isolator and the reason") {
  CHECK(error_of(R"([{"name": "resource/memory", "value": {"limit": "12X"}}])") ==
        "isolator 'resource/memory': limit '12X': not a quantity (a number with an optional suffix: 500M = 500*10^6, "
        "128Mi = 128*2^20, 500m = 0.5)");
  CHECK(error_of(R"([{"name": "resource/memory", "value": {"limit": "0"}}])") ==
        "isolator 'resource/memory': limit '0': must be more than 0");
  CHECK(error_of(R"([{"name": "resource/cpu", "value": "1"}])") ==
        "isolator 'resource/cpu': the value is not an object with a \"limit\"");
  CHECK(error_of(R"([{"name": "resource/cpu", "value": {"limit": 1.5}}])") ==
        "isolator 'resource/cpu': the limit is not a quantity string");
  CHECK(error_of(R"([{"name": "resource/cpu", "value": {}}])") ==
        "isolator 'resource/cpu': neither a \"limit\" nor a \"request\"");
  CHECK(error_of(R"([{"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_FLY"]}}])") ==
        "isolator 'os/linux/capabilities-retain-set': unknown capability 'CAP_FLY' (names as in capabilities(7), "
        "e.g. CAP_NET_ADMIN)");
  CHECK(error_of(R"([{"name": "os/linux/capabilities-remove-set", "value": {"set": []}}])") ==
        "isolator 'os/linux/capabilities-remove-set': \"set\" is not a non-empty array");
  CHECK(error_of(R"([{"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_KILL"]}},
                     {"name": "os/linux/capabilities-remove-set", "value": {"set": ["CAP_KILL"]}}])") ==
        "isolator 'os/linux/capabilities-remove-set': cannot be given with os/linux/capabilities-retain-set (appc "
        "allows one of them)");
  CHECK(error_of(R"([{"name": "os/linux/no-new-privileges", "value": "yes"}])") ==
        "isolator 'os/linux/no-new-privileges': the value \"yes\" is not true or false");
  CHECK(error_of(R"([{"name": "os/linux/oom-score-adj", "value": 2000}])") ==
        "isolator 'os/linux/oom-score-adj': 2000 is not in -1000..1000");
  CHECK(error_of(R"([{"name": "os/linux/oom-score-adj", "value": "5"}])") ==
        "isolator 'os/linux/oom-score-adj': the value \"5\" is not an integer");
  CHECK(error_of(R"([{"name": "os/linux/oom-score-adj", "value": 5}, {"name": "os/linux/oom-score-adj", "value": 6}])") ==
        "isolator 'os/linux/oom-score-adj': given twice");
  CHECK(error_of(R"([{"name": "os/linux/oom-score-adj"}])") == "isolator 'os/linux/oom-score-adj': no \"value\"");
  CHECK(error_of(R"([{"name": "os/linux/seccomp-remove-set", "value": {"set": ["@systemd/mount"]}}])") ==
        "isolator 'os/linux/seccomp-remove-set': unknown seccomp group '@systemd/mount' (pod knows @appc.io/all, "
        "@appc.io/empty, @rkt/default-blacklist, @rkt/default-whitelist, @docker/default-blacklist, "
        "@docker/default-whitelist)");
  CHECK(error_of(R"([{"name": "os/linux/seccomp-retain-set", "value": {"set": ["frobnicate"]}}])") ==
        "isolator 'os/linux/seccomp-retain-set': unknown system call 'frobnicate'");
  CHECK(error_of(R"([{"name": "os/linux/seccomp-remove-set", "value": {"set": ["uname"], "errno": "EFOO"}}])") ==
        "isolator 'os/linux/seccomp-remove-set': errno 'EFOO' is not an errno name (EPERM, ENOSYS, ... as in "
        "errno(3))");
  CHECK(error_of(R"([{"name": "os/linux/seccomp-remove-set", "value": {"set": ["@appc.io/all"]}}])") ==
        "isolator 'os/linux/seccomp-remove-set': removes every system call (@appc.io/all): the app could not even "
        "be executed");
  CHECK(error_of(R"([{"name": "os/linux/seccomp-retain-set", "value": {"set": ["@appc.io/empty"]}}])") ==
        "isolator 'os/linux/seccomp-retain-set': retains no system call: the app could not even be executed");
  CHECK(error_of(R"([{"name": "os/linux/seccomp-retain-set", "value": {"set": ["read"]}},
                     {"name": "os/linux/seccomp-remove-set", "value": {"set": ["read"]}}])") ==
        "isolator 'os/linux/seccomp-remove-set': cannot be given with os/linux/seccomp-retain-set (appc allows one "
        "of them)");
  CHECK(error_of(R"({"name": "resource/cpu"})") == "isolators: not a JSON array");
  CHECK(error_of(R"([{"value": 1}])") == "isolators[0]: not an object with a string \"name\"");
}

TEST_CASE("seccomp sets become OCI profiles the runtime loads") {
  AciSeccomp remove;
  remove.syscalls = {"uname", "getpid"};
  remove.errno_ret = ENOSYS;
  auto text = aci_seccomp_profile(remove, false);
  REQUIRE(text.has_value());
  auto j = nlohmann::json::parse(*text);
  CHECK(j["defaultAction"] == "SCMP_ACT_ALLOW");
  CHECK(j["syscalls"][0]["action"] == "SCMP_ACT_ERRNO");
  CHECK(j["syscalls"][0]["errnoRet"] == ENOSYS);
  auto prog = detail::seccomp_from_oci(*text);
  REQUIRE_MESSAGE(prog.has_value(), prog.error().message);
  CHECK_FALSE(prog->empty());

  // Without an errno, rkt's default: SIGSYS for the app.
  AciSeccomp retain;
  retain.retain = true;
  retain.syscalls = *seccomp_group("@rkt/default-whitelist");
  j = nlohmann::json::parse(aci_seccomp_profile(retain, false).value());
  CHECK(j["defaultAction"] == "SCMP_ACT_KILL_PROCESS");
  CHECK_FALSE(j.contains("defaultErrnoRet"));
  CHECK(detail::seccomp_from_oci(j.dump()).has_value());

  // What exec and pod need are kept by a retain-set.
  AciSeccomp tiny;
  tiny.retain = true;
  tiny.syscalls = {"write"};
  auto names = [](const std::string& t) {
    return nlohmann::json::parse(t)["syscalls"][0]["names"].get<std::vector<std::string>>();
  };
  auto late = names(aci_seccomp_profile(tiny, false).value());
  CHECK(has(late, "execve"));
  CHECK(has(late, "exit_group"));
  CHECK_FALSE(has(late, "setresuid"));
  auto early = names(aci_seccomp_profile(tiny, true).value());
  CHECK(has(early, "setresuid"));
  CHECK(has(early, "capset"));

  // A remove-set cannot take away what pod calls after an early filter.
  AciSeccomp hurts;
  hurts.syscalls = {"setresuid"};
  CHECK(aci_seccomp_profile(hurts, false).has_value());
  auto refused = aci_seccomp_profile(hurts, true);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message ==
        "the seccomp remove-set removes 'setresuid', which pod calls after loading the filter while no_new_privs is "
        "off; give --no-new-privileges");

  CHECK_FALSE(seccomp_group("@systemd/mount"));
  CHECK(seccomp_group("@docker/default-blacklist") == seccomp_group("@rkt/default-blacklist"));
}

TEST_CASE("an image config carries isolators in its label") {
  auto app = parse_image_app(R"({"config": {"Entrypoint": ["/bin/sh"], "Labels": {"io.pod.aci.isolators":
      "[{\"name\": \"os/linux/oom-score-adj\", \"value\": -100}]"}}})");
  REQUIRE_MESSAGE(app.has_value(), app.error().message);
  REQUIRE(app->isolators);
  CHECK(app->isolators->oom_score_adj == -100);
  CHECK_FALSE(parse_image_app(R"({"config": {"Labels": {"other": "x"}}})").value().isolators);
  auto bad = parse_image_app(
      R"({"config": {"Labels": {"io.pod.aci.isolators": "[{\"name\": \"resource/memory\", \"value\": {\"limit\": \"lots\"}}]"}}})");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message.starts_with(
      "image config: label 'io.pod.aci.isolators': isolator 'resource/memory': limit 'lots': not a quantity"));
}
