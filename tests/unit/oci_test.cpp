#include <doctest/doctest.h>

#include "pod/cas/digest.hpp"
#include "pod/cas/oci.hpp"

using namespace pod::cas;

namespace {
const std::string kHexA(64, 'a');
const std::string kHexB(64, 'b');

std::string manifest_text(const std::string& layer_type = "application/vnd.oci.image.layer.v1.tar+gzip") {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:)" + kHexA +
         R"(","size":12},
    "layers":[{"mediaType":")" + layer_type + R"(","digest":"sha256:)" + kHexB + R"(","size":34}]})";
}
}  // namespace

TEST_CASE("digests: sha256 of known text, strict parsing") {
  CHECK(sha256_of("abc").str() == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_of("").hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;
  h.update("a");
  h.update("bc");
  CHECK(h.finish() == sha256_of("abc"));
  CHECK(Digest::parse("sha256:" + kHexA).has_value());
  auto upper = Digest::parse("sha256:" + std::string(64, 'A'));
  REQUIRE(!upper);
  CHECK(upper.error().message.find("is not a digest") != std::string::npos);
  auto algo = Digest::parse("sha512:" + kHexA);
  REQUIRE(!algo);
  CHECK(algo.error().message == "unsupported digest algorithm 'sha512'");
  CHECK(!Digest::parse("sha256:" + kHexA.substr(1)));
  CHECK(!Digest::parse("sha256:../../etc/passwd"));
}

TEST_CASE("manifests parse, and each malformation is named") {
  auto m = parse_manifest(manifest_text());
  REQUIRE(m);
  CHECK(m->config.size == 12);
  REQUIRE(m->layers.size() == 1);
  CHECK(m->layers[0].digest.hex == kHexB);

  auto unknown = parse_manifest(manifest_text("application/x-evil"));
  REQUIRE(!unknown);
  CHECK(unknown.error().message == "manifest layer 0: unknown media type 'application/x-evil'");

  auto bad_json = parse_manifest("{\"schemaVersion\":2,");
  REQUIRE(!bad_json);
  CHECK(bad_json.error().message == "manifest is not valid JSON");

  auto not_object = parse_manifest("[1,2]");
  REQUIRE(!not_object);
  CHECK(not_object.error().message == "manifest is not a JSON object");

  std::string neg = manifest_text();
  neg.replace(neg.find("\"size\":34"), 9, "\"size\":-1");
  auto negative = parse_manifest(neg);
  REQUIRE(!negative);
  CHECK(negative.error().message.find("'size' is missing or not a non-negative integer") != std::string::npos);

  auto v1 = parse_manifest(R"({"schemaVersion":1})");
  REQUIRE(!v1);
  CHECK(v1.error().message == "manifest: 'schemaVersion' is not 2");
}

TEST_CASE("indexes and configs") {
  auto idx = parse_index(R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "digest":"sha256:)" + kHexA + R"(","size":5,"platform":{"os":"linux","architecture":"arm64","variant":"v8"},
    "annotations":{"org.opencontainers.image.ref.name":"latest"}}]})");
  REQUIRE(idx);
  REQUIRE(idx->manifests.size() == 1);
  CHECK(idx->manifests[0].platform->str() == "linux/arm64/v8");
  CHECK(idx->manifests[0].annotations.at(std::string(kRefNameAnnotation)) == "latest");
  CHECK(!parse_index(R"({"schemaVersion":2,"manifests":{}})"));

  auto cfg = parse_config(R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:)" +
                          kHexA + R"("]}})");
  REQUIRE(cfg);
  CHECK(cfg->diff_ids.size() == 1);
  auto no_rootfs = parse_config(R"({"os":"linux"})");
  REQUIRE(!no_rootfs);
  CHECK(no_rootfs.error().message == "image config has no 'rootfs'");
}

TEST_CASE("manifest JSON round trip keeps the digests") {
  auto m = parse_manifest(manifest_text());
  REQUIRE(m);
  auto again = parse_manifest(manifest_json(*m));
  REQUIRE(again);
  CHECK(again->layers[0].digest == m->layers[0].digest);
  CHECK(again->config.digest == m->config.digest);
}

TEST_CASE("image names") {
  auto n = ImageName::parse("busybox");
  REQUIRE(n);
  CHECK(n->str() == "busybox:latest");
  CHECK(ImageName::parse("library/debian:bookworm-slim")->str() == "library/debian:bookworm-slim");
  auto sep = ImageName::parse("a.b-c/e__f.g_h-i:1.0");
  REQUIRE(sep);
  CHECK(sep->tag == "1.0");
  CHECK(ImageName::parse("localhost:5000/team/app:v2")->name == "localhost:5000/team/app");
  CHECK(ImageName::parse("Registry.Example.com/app")->str() == "Registry.Example.com/app:latest");
  CHECK(!ImageName::parse("localhost:50x/app"));
  CHECK(!ImageName::parse("Busybox"));
  CHECK(!ImageName::parse("../x"));
  CHECK(!ImageName::parse("a//b"));
  CHECK(!ImageName::parse("x:"));
  CHECK(!ImageName::parse("x:-bad"));
  CHECK(!ImageName::parse(""));
  auto bad = ImageName::parse("a b");
  REQUIRE(!bad);
  CHECK(bad.error().message.find("must be lowercase letters and digits") != std::string::npos);
}

TEST_CASE("platforms") {
  auto p = Platform::parse("linux/arm64/v8");
  REQUIRE(p);
  CHECK(p->architecture == "arm64");
  CHECK(p->variant == "v8");
  CHECK(!Platform::parse("linux"));
  CHECK(Platform{"linux", "arm64", "v8"}.matches(Platform{"linux", "arm64", ""}));
  CHECK(!Platform{"linux", "amd64", ""}.matches(Platform{"linux", "arm64", ""}));
  CHECK(Platform::host().os == "linux");
}
