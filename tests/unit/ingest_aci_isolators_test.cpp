// ACI import keeps the app's isolators in the config label io.pod.aci.isolators, after
// the check pod gives it (runtime::parse_aci_isolators); a bad one stages nothing.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "ingest_support.hpp"
#include "pod/runtime/aci_isolators.hpp"

using namespace pod::cas;
using namespace pod::cas::test;

namespace {

// An ACI of one file, made with tar, whose app has these isolators (a JSON array) and
// these extra manifest labels.
std::string make_aci(const TempDir& dir, const std::string& isolators, const std::string& labels = "[]") {
  std::filesystem::create_directories(dir.path + "/aci/rootfs/bin");
  std::ofstream(dir.path + "/aci/rootfs/bin/app") << "#!/bin/sh\n";
  std::ofstream(dir.path + "/aci/manifest")
      << R"({"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "example.com/iso", "labels": )" << labels
      << R"(, "app": {"exec": ["/bin/app"], "user": "0", "group": "0", "isolators": )" << isolators << "}}";
  int st = 0;
  std::string out = run("tar -C " + shell_quote(dir.path + "/aci") + " -czf " + shell_quote(dir.path + "/x.aci") +
                            " manifest rootfs 2>&1",
                        &st);
  INFO(out);
  REQUIRE(st == 0);
  return dir.path + "/x.aci";
}

IngestOptions checked() {
  IngestOptions opts;
  opts.format = Format::aci;
  opts.aci_isolators = [](std::string_view text) -> Result<std::string> {
    auto parsed = POD_TRY(pod::runtime::parse_aci_isolators(text));
    return parsed.known;
  };
  return opts;
}

}  // namespace

TEST_CASE("ACI isolators: the known ones are kept in a label, as given") {
  TempDir d;
  std::string aci = make_aci(d, R"([{"name": "resource/memory", "value": {"limit": "64Mi"}},
                                    {"name": "example.com/own-isolator", "value": 1}])");
  Staging s;
  auto img = ingest_path(aci, s, checked());
  REQUIRE_MESSAGE(img.has_value(), img.error().what());
  auto c = check_image(s, *img);
  auto j = nlohmann::json::parse(c.config_text);
  const auto& label = j["config"]["Labels"]["io.pod.aci.isolators"];
  REQUIRE(label.is_string());
  CHECK(nlohmann::json::parse(label.get<std::string>()) ==
        nlohmann::json::parse(R"([{"name": "resource/memory", "value": {"limit": "64Mi"}}])"));
  CHECK(j["config"]["Entrypoint"] == nlohmann::json::array({"/bin/app"}));
}

TEST_CASE("ACI isolators: only unknown ones leave no label; without a check they are kept as they are") {
  TempDir d;
  std::string aci = make_aci(d, R"([{"name": "example.com/own-isolator", "value": 1}])");
  Staging s;
  auto img = ingest_path(aci, s, checked());
  REQUIRE_MESSAGE(img.has_value(), img.error().what());
  auto j = nlohmann::json::parse(check_image(s, *img).config_text);
  CHECK_FALSE(j["config"].contains("Labels"));
  Staging raw;
  IngestOptions plain;
  plain.format = Format::aci;
  auto unchecked = ingest_path(aci, raw, plain);
  REQUIRE(unchecked.has_value());
  j = nlohmann::json::parse(check_image(raw, *unchecked).config_text);
  CHECK(j["config"]["Labels"]["io.pod.aci.isolators"] == R"([{"name":"example.com/own-isolator","value":1}])");
}

TEST_CASE("ACI isolators: a malformed one refuses the image and stages nothing") {
  TempDir d;
  std::string aci = make_aci(d, R"([{"name": "resource/memory", "value": {"limit": "12X"}}])");
  Staging s;
  auto img = ingest_path(aci, s, checked());
  REQUIRE_FALSE(img.has_value());
  CHECK(img.error().message == "aci '" + aci +
                                   "': ACI 'example.com/iso': isolator 'resource/memory': limit '12X': not a quantity (a number with an optional "
        "suffix: 500M = 500*10^6, 128Mi = 128*2^20, 500m = 0.5)");
  CHECK(s.names().empty());
}

TEST_CASE("ACI isolators: the label is pod's own, a manifest cannot set it") {
  TempDir d;
  std::string aci = make_aci(d, "[]", R"([{"name": "io.pod.aci.isolators", "value": "[]"}])");
  Staging s;
  auto img = ingest_path(aci, s, checked());
  REQUIRE_FALSE(img.has_value());
  CHECK(img.error().message == "aci '" + aci +
                                   "': ACI manifest: label or annotation 'io.pod.aci.isolators' is pod's own (the app's isolators go there)");
  TempDir d2;
  std::string aci2 = make_aci(d2, R"({"name": "resource/cpu"})");
  auto not_array = ingest_path(aci2, s, checked());
  REQUIRE_FALSE(not_array.has_value());
  CHECK(not_array.error().message == "aci '" + aci2 + "': ACI manifest app: 'isolators' is not an array");
  CHECK(s.names().empty());
}
