// pod run's use of the images' isolators (cmd/run_isolators.cpp): what applies when no
// flag is given, what a flag overrides, the pod's limits as the sum of its apps', and
// where --plan says each setting came from.
#include <doctest/doctest.h>
#include <linux/capability.h>

#include "run_isolators.hpp"
#include "run_pod.hpp"
#include "run_setup.hpp"

using namespace pod;
using namespace pod::cmd;

namespace {

runtime::AciIsolators full() {
  auto r = runtime::parse_aci_isolators(R"([
    {"name": "resource/memory", "value": {"limit": "64Mi"}},
    {"name": "resource/cpu", "value": {"limit": "500m"}},
    {"name": "os/linux/capabilities-retain-set", "value": {"set": ["CAP_NET_BIND_SERVICE"]}},
    {"name": "os/linux/no-new-privileges", "value": true},
    {"name": "os/linux/oom-score-adj", "value": 500},
    {"name": "os/linux/seccomp-remove-set", "value": {"set": ["uname"], "errno": "ENOSYS"}}])");
  REQUIRE(r.has_value());
  return r->isolators;
}

// A pod of apps named a, b, ... from images with these isolators, as the flags alone made it.
struct Pod {
  RunArgs args;
  std::vector<std::string> warnings;
  std::vector<ImageLayers> images;
  Plan plan;
  explicit Pod(std::vector<std::optional<runtime::AciIsolators>> isolators) {
    for (std::size_t i = 0; i < isolators.size(); ++i) {
      ImageLayers img;
      img.image = std::string(1, static_cast<char>('a' + i));
      img.app.isolators = isolators[i];
      PlannedApp app;
      app.image = img.image;
      app.app.name = img.image;
      images.push_back(std::move(img));
      plan.apps.push_back(std::move(app));
    }
  }
  void flags_then_apply() {
    auto sec = security_from_flags(args);
    REQUIRE(sec.has_value());
    for (auto& a : plan.apps) a.app.security = *sec;
    if (!args.memory.empty()) plan.limits.memory = runtime::parse_size("--memory", args.memory).value();
    if (!args.cpus.empty()) plan.limits.cpu_millis = runtime::parse_cpus("--cpus", args.cpus).value();
    auto r = apply_isolators(args, images, plan, [&](const std::string& w) { warnings.push_back(w); });
    REQUIRE_MESSAGE(r.has_value(), r.error().message);
  }
  const IsolatorSource* source(std::string_view setting, std::string_view app = "") const {
    for (const auto& s : plan.isolators)
      if (s.setting == setting && s.app == app) return &s;
    return nullptr;
  }
};

}  // namespace

TEST_CASE("an image's isolators apply when no flag is given") {
  Pod p({full()});
  p.flags_then_apply();
  const auto& sec = p.plan.apps[0].app.security;
  CHECK(p.plan.limits.memory == 64ull << 20);
  CHECK(p.plan.limits.cpu_millis == 500u);
  CHECK(sec.caps == std::vector<int>{CAP_NET_BIND_SERVICE});
  CHECK(sec.no_new_privs);
  CHECK(sec.oom_score_adj == 500);
  CHECK(sec.seccomp == runtime::Security::Seccomp::file);
  CHECK(sec.seccomp_file.find("\"errnoRet\":38") != std::string::npos);  // ENOSYS
  struct Want {
    const char *setting, *app, *from;
  };
  for (auto [setting, app, from] : {Want{"memory", "", "resource/memory"}, Want{"cpus", "", "resource/cpu"},
                                    Want{"caps", "a", "os/linux/capabilities-retain-set"},
                                    Want{"no_new_privileges", "a", "os/linux/no-new-privileges"},
                                    Want{"seccomp", "a", "os/linux/seccomp-remove-set"},
                                    Want{"oom_score_adj", "a", "os/linux/oom-score-adj"}}) {
    CAPTURE(setting);
    auto* s = p.source(setting, app);
    REQUIRE(s != nullptr);
    CHECK(s->source == "image");
    CHECK(s->from == from);
  }
  CHECK(p.source("memory")->value == 64ull << 20);
  CHECK(p.source("memory")->apps == std::vector<std::string>{"a"});
  CHECK(p.source("seccomp", "a")->text == "seccomp remove-set uname, refused calls fail with ENOSYS");
  CHECK(p.plan.isolator_notes.empty());
  auto j = isolators_json(p.plan);
  CHECK(j["settings"].size() == 6);
  CHECK(j["settings"][0]["source"] == "image");
}

TEST_CASE("flags override the image's isolators") {
  Pod p({full()});
  p.args.memory = "32M";
  p.args.cpus = "1";
  p.args.cap_remove = {"CAP_KILL"};
  p.args.seccomp = "unconfined";
  p.args.no_new_privs = true;
  p.flags_then_apply();
  const auto& sec = p.plan.apps[0].app.security;
  CHECK(p.plan.limits.memory == 32ull << 20);
  CHECK(p.plan.limits.cpu_millis == 1000u);
  auto def = runtime::default_caps();
  std::erase(def, CAP_KILL);
  CHECK(sec.caps == def);
  CHECK(sec.seccomp == runtime::Security::Seccomp::unconfined);
  CHECK(sec.oom_score_adj == 500);  // no flag for it: the image's
  auto* mem = p.source("memory");
  REQUIRE(mem != nullptr);
  CHECK(mem->source == "flag");
  CHECK(mem->from == "--memory");
  CHECK(mem->value == 32ull << 20);
  CHECK(mem->overrides == "resource/memory 64M of app a");
  CHECK(p.source("caps", "a")->from == "--cap-remove");
  CHECK(p.source("caps", "a")->overrides == "os/linux/capabilities-retain-set CAP_NET_BIND_SERVICE");
  CHECK(p.source("seccomp", "a")->overrides == "os/linux/seccomp-remove-set uname");
  CHECK(p.source("no_new_privileges", "a")->source == "flag");
  CHECK(p.source("oom_score_adj", "a")->source == "image");
}

TEST_CASE("no isolators and no flags: nothing to say, the defaults stay") {
  Pod p({std::nullopt});
  p.flags_then_apply();
  CHECK(p.plan.isolators.empty());
  CHECK_FALSE(p.plan.limits.memory);
  CHECK(p.plan.apps[0].app.security.caps == runtime::default_caps());
  CHECK(p.plan.apps[0].app.security.seccomp == runtime::Security::Seccomp::default_profile);
  CHECK_FALSE(p.plan.apps[0].app.security.no_new_privs);
}

TEST_CASE("the pod's limits are the sum of its apps', and a partial sum is said so") {
  runtime::AciIsolators small;
  small.memory = 32ull << 20;
  small.cpu_millis = 250;
  Pod both({full(), small});
  both.flags_then_apply();
  CHECK(both.plan.limits.memory == 96ull << 20);
  CHECK(both.plan.limits.cpu_millis == 750u);
  CHECK(both.source("memory")->apps == std::vector<std::string>{"a", "b"});
  CHECK(both.plan.isolator_notes.empty());
  // Each app keeps its own security: b declared none.
  CHECK(both.plan.apps[1].app.security.caps == runtime::default_caps());

  Pod some({small, std::nullopt});
  some.flags_then_apply();
  CHECK(some.plan.limits.memory == 32ull << 20);
  REQUIRE(some.plan.isolator_notes.size() == 2);
  CHECK(some.plan.isolator_notes[0] ==
        "resource/memory: not every app declares a limit (32M of app a); the pod's limit is the sum of those "
        "declared, which the other apps share");
}

TEST_CASE("an early filter (no_new_privs off) may not remove what pod needs after it") {
  auto r = runtime::parse_aci_isolators(
      R"([{"name": "os/linux/seccomp-remove-set", "value": {"set": ["setresuid"]}}])");
  REQUIRE(r.has_value());
  Pod p({r->isolators});
  auto sec = security_from_flags(p.args);
  REQUIRE(sec.has_value());
  p.plan.apps[0].app.security = *sec;
  auto applied = apply_isolators(p.args, p.images, p.plan, [](const std::string&) {});
  REQUIRE_FALSE(applied.has_value());
  CHECK(applied.error().message ==
        "image 'a': isolator os/linux/seccomp-remove-set: the seccomp remove-set removes 'setresuid', which pod "
        "calls after loading the filter while no_new_privs is off; give --no-new-privileges");
}

TEST_CASE("a lower OOM score is not applied in a user namespace, and the run says so") {
  runtime::AciIsolators lower;
  lower.oom_score_adj = -100;
  Pod p({lower});
  p.plan.maps.new_userns = true;
  p.flags_then_apply();
  CHECK_FALSE(p.plan.apps[0].app.security.oom_score_adj);
  CHECK(p.source("oom_score_adj", "a") == nullptr);
  std::string why = "app a: image isolator os/linux/oom-score-adj -100 is not applied: lowering the OOM score needs "
                    "CAP_SYS_RESOURCE on the host, which a pod in a user namespace of its own has not";
  CHECK(p.plan.isolator_notes == std::vector<std::string>{why});
  CHECK(p.warnings == std::vector<std::string>{why});
  Pod planned({lower});
  planned.args.plan = true;  // --plan shows it among the notes only
  planned.flags_then_apply();
  CHECK(planned.warnings.empty());
}
