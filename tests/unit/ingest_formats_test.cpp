// Each format, as the tools people use make it, ingested into a staging directory.
#include "ingest_support.hpp"

#include <nlohmann/json.hpp>

namespace pod::cas::test {

TEST_CASE("parse_format and format_name round-trip") {
  for (auto f : {Format::automatic, Format::oci, Format::oci_archive, Format::docker_archive, Format::aci,
                 Format::rootfs}) {
    auto r = parse_format(format_name(f));
    REQUIRE(r.has_value());
    CHECK(*r == f);
  }
  auto bad = parse_format("tarball");
  REQUIRE(!bad.has_value());
  CHECK(bad.error().message.find("unknown image format 'tarball'") != std::string::npos);
}

TEST_CASE("OCI layout directory made by umoci") {
  Staging s;
  auto img = ingest_path(fixtures() + "/oci", s);
  REQUIRE_MESSAGE(img.has_value(), img.error().what());
  CHECK(img->format == Format::oci);
  CHECK(img->source_name == "latest");
  auto c = check_image(s, *img);
  REQUIRE(c.manifest.layers.size() == 1);
  CHECK(c.manifest.layers[0].media_type == media::kOciLayerGzip);
  check_rootfs_listing(list_layer(s, c.manifest.layers[0]));
  // Blobs are copies of the layout's, byte for byte.
  CHECK(sha256_file(fixtures() + "/oci/blobs/sha256/" + c.manifest.layers[0].digest.hex) ==
        c.manifest.layers[0].digest.hex);
}

TEST_CASE("OCI layout: blobs the store holds are not staged") {
  Staging s, store;
  auto first = ingest_path(fixtures() + "/oci", store);
  REQUIRE(first.has_value());
  auto m = parse_manifest(store.read(first->manifest.digest));
  REQUIRE(m.has_value());
  IngestOptions opts;
  opts.open_stored = [&](const Digest& d) -> std::optional<Fd> {
    if (d != m->layers[0].digest) return std::nullopt;
    auto fd = sys::open_at(store.fd, d.hex, O_RDONLY);
    return fd ? std::optional<Fd>(std::move(*fd)) : std::nullopt;
  };
  auto img = ingest_path(fixtures() + "/oci", s, opts);
  REQUIRE_MESSAGE(img.has_value(), img.error().what());
  CHECK(s.has(img->manifest.digest));
  CHECK(s.has(m->config.digest));
  CHECK(!s.has(m->layers[0].digest));
  check_staging_clean(s);
}

TEST_CASE("OCI layout with two names: chosen by source_ref") {
  Staging s;
  IngestOptions opts;
  opts.source_ref = "other";
  auto img = ingest_path(fixtures() + "/oci-two", s, opts);
  REQUIRE_MESSAGE(img.has_value(), img.error().what());
  CHECK(img->source_name == "other");
  check_image(s, *img);

  Staging s2;
  opts.source_ref = "busybox:other";  // the tag part matches ref.name
  auto img2 = ingest_path(fixtures() + "/oci-two", s2, opts);
  REQUIRE_MESSAGE(img2.has_value(), img2.error().what());
  CHECK(img2->source_name == "other");
}

TEST_CASE("oci-archive made by skopeo") {
  Staging s;
  auto img = ingest_path(fixtures() + "/oci.tar", s);
  REQUIRE_MESSAGE(img.has_value(), img.error().what());
  CHECK(img->format == Format::oci_archive);
  CHECK(img->source_name == "latest");
  auto c = check_image(s, *img);
  REQUIRE(c.manifest.layers.size() == 1);
  check_rootfs_listing(list_layer(s, c.manifest.layers[0]));
  CHECK(s.names().size() == 3);  // manifest, config, layer
}

TEST_CASE("docker-archive made by skopeo") {
  for (std::string ref : {"", "busybox", "busybox:latest", "docker.io/library/busybox:latest"}) {
    CAPTURE(ref);
    Staging s;
    IngestOptions opts;
    opts.source_ref = ref;
    auto img = ingest_path(fixtures() + "/docker.tar", s, opts);
    REQUIRE_MESSAGE(img.has_value(), img.error().what());
    CHECK(img->format == Format::docker_archive);
    CHECK(img->source_name == "docker.io/library/busybox:latest");
    CHECK(img->manifest.media_type == media::kOciManifest);
    auto c = check_image(s, *img);
    CHECK(c.manifest.media_type == media::kOciManifest);
    CHECK(c.manifest.config.media_type == media::kOciConfig);
    REQUIRE(c.manifest.layers.size() == 1);
    CHECK(c.manifest.layers[0].media_type == media::kOciLayer);
    CHECK(c.manifest.layers[0].digest == c.config.diff_ids[0]);
    check_rootfs_listing(list_layer(s, c.manifest.layers[0]));
    // Only what the manifest names: no VERSION, json or repositories members.
    CHECK(s.names().size() == 3);
  }
}

TEST_CASE("docker-archive: old symlinked layer.tar, Docker 25+ blobs") {
  Staging s;
  auto img = ingest_path(fixtures() + "/docker-legacy.tar", s);
  REQUIRE_MESSAGE(img.has_value(), img.error().what());
  auto c = check_image(s, *img);
  REQUIRE(c.manifest.layers.size() == 1);
  check_rootfs_listing(list_layer(s, c.manifest.layers[0]));

  // Both an OCI layout and manifest.json: auto-detection prefers OCI...
  Staging s2;
  auto oci = ingest_path(fixtures() + "/docker25.tar", s2);
  REQUIRE_MESSAGE(oci.has_value(), oci.error().what());
  CHECK(oci->format == Format::oci_archive);
  check_image(s2, *oci);
  // ...and manifest.json still reads, its blobs/sha256/ members checked by name.
  Staging s3;
  IngestOptions opts;
  opts.format = Format::docker_archive;
  auto dock = ingest_path(fixtures() + "/docker25.tar", s3, opts);
  REQUIRE_MESSAGE(dock.has_value(), dock.error().what());
  CHECK(dock->format == Format::docker_archive);
  CHECK(dock->source_name == "busybox:25");
  auto c3 = check_image(s3, *dock);
  REQUIRE(c3.manifest.layers.size() == 1);
  CHECK(c3.manifest.layers[0].media_type == media::kOciLayerGzip);  // by its magic bytes
  check_rootfs_listing(list_layer(s3, c3.manifest.layers[0]));
}

TEST_CASE("docker-archive written beside an OCI layout is read as OCI") {
  TempDir d;
  std::string tar = d.path + "/both.tar";
  int st = 0;
  // Docker 25+ writes index.json, oci-layout and manifest.json together.
  run("cd " + shell_quote(d.path) + " && mkdir x && tar -xf " + shell_quote(fixtures() + "/oci.tar") +
          " -C x && tar -xf " + shell_quote(fixtures() + "/docker.tar") + " -C x manifest.json && tar -cf " +
          shell_quote(tar) + " -C x .",
      &st);
  REQUIRE(st == 0);
  Staging s;
  auto img = ingest_path(tar, s);
  REQUIRE_MESSAGE(img.has_value(), img.error().what());
  CHECK(img->format == Format::oci_archive);
  check_image(s, *img);
}

TEST_CASE("ACI made by actool, in every compression") {
  for (std::string name : {"busybox.aci", "busybox-plain.aci", "busybox.aci.bz2", "busybox.aci.xz",
                           "busybox.aci.zst"}) {
    CAPTURE(name);
    Staging s;
    auto img = ingest_path(fixtures() + "/" + name, s);
    REQUIRE_MESSAGE(img.has_value(), img.error().what());
    CHECK(img->format == Format::aci);
    CHECK(img->source_name == "example.com/busybox:1.36");
    auto c = check_image(s, *img);
    REQUIRE(c.manifest.layers.size() == 1);
    CHECK(c.manifest.layers[0].media_type == media::kOciLayer);
    CHECK(c.manifest.layers[0].digest == c.config.diff_ids[0]);
    CHECK(c.config.architecture == "amd64");
    CHECK(c.config.os == "linux");
    auto l = list_layer(s, c.manifest.layers[0]);
    check_rootfs_listing(l);
    CHECK(l.find("rootfs") == std::string::npos);
    CHECK(l.find("manifest") == std::string::npos);
    auto j = nlohmann::json::parse(c.config_text);
    CHECK(j["config"]["Entrypoint"] == nlohmann::json::array({"/bin/sh", "-c", "echo hi"}));
    CHECK(j["config"]["Env"] == nlohmann::json::array({"PATH=/bin"}));
    CHECK(j["config"]["WorkingDir"] == "/srv");
    CHECK(j["config"]["User"] == "0:0");
    CHECK(j["config"]["Labels"]["version"] == "1.36");
    CHECK(j["config"]["Labels"]["authors"] == "pod tests");
  }
}

TEST_CASE("ACI layer keeps xattrs, devices and hard links, and drops what is outside rootfs/") {
  Staging s;
  std::vector<std::string> warnings;
  IngestOptions opts;
  opts.warn = [&](const std::string& w) { warnings.push_back(w); };
  auto img = ingest_path(fixtures() + "/aci-crafted.aci", s, opts);
  REQUIRE_MESSAGE(img.has_value(), img.error().what());
  CHECK(img->format == Format::aci);
  auto c = check_image(s, *img);
  std::string layer = s.path_of(c.manifest.layers[0].digest);
  std::string got = run("python3 -c \"import tarfile,sys\n"
                        "for m in tarfile.open(sys.argv[1]):\n"
                        "  print(m.name, m.type.decode() if m.type else '0', m.linkname, m.devmajor, m.devminor, "
                        "m.pax_headers.get('SCHILY.xattr.user.pod', '-'))\" " +
                        shell_quote(layer));
  CHECK(got ==
        ". 5  0 0 -\n"  // python shows "./" as "."
        "dev 5  0 0 -\n"
        "dev/null 3  1 3 -\n"
        "data 0  0 0 kept\n"
        "again 1 data 0 0 -\n");
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("dropped 1 member(s) outside rootfs/") != std::string::npos);
}

TEST_CASE("rootfs tarballs in every compression") {
  struct Case {
    const char* file;
    std::string_view media;
  };
  for (auto [file, mt] : {Case{"rootfs-plain.tar", media::kOciLayer}, Case{"rootfs.tar.gz", media::kOciLayerGzip},
                          Case{"rootfs.tar.zst", media::kOciLayerZstd}, Case{"rootfs.tar.bz2", media::kOciLayer},
                          Case{"rootfs.tar.xz", media::kOciLayer}}) {
    CAPTURE(file);
    Staging s;
    std::vector<std::string> warnings;
    IngestOptions opts;
    opts.warn = [&](const std::string& w) { warnings.push_back(w); };
    auto img = ingest_path(fixtures() + "/" + file, s, opts);
    REQUIRE_MESSAGE(img.has_value(), img.error().what());
    CHECK(img->format == Format::rootfs);
    CHECK(img->source_name.empty());
    auto c = check_image(s, *img);
    REQUIRE(c.manifest.layers.size() == 1);
    CHECK(c.manifest.layers[0].media_type == mt);
    // The diff_id is the uncompressed tar's digest, whatever the compression.
    CHECK(c.config.diff_ids[0].hex == sha256_file(fixtures() + "/rootfs-plain.tar"));
    CHECK(c.config.os == "linux");
    CHECK(c.config.architecture == Platform::host().architecture);
    CHECK(!c.config.created.empty());
    if (mt != media::kOciLayer || std::string_view(file) == "rootfs-plain.tar")
      CHECK(c.manifest.layers[0].digest.hex == sha256_file(fixtures() + "/" + file));  // stored as is
    else
      CHECK(warnings.size() == 1);
    check_rootfs_listing(list_layer(s, c.manifest.layers[0]), "./");
  }
}

TEST_CASE("explicit formats") {
  Staging s;
  IngestOptions opts;
  opts.format = Format::docker_archive;
  auto img = ingest_path(fixtures() + "/docker.tar", s, opts);
  REQUIRE_MESSAGE(img.has_value(), img.error().what());
  CHECK(img->format == Format::docker_archive);
  // A docker archive taken as a rootfs is only a tarball: that is what the user asked.
  Staging s2;
  opts.format = Format::rootfs;
  auto r = ingest_path(fixtures() + "/rootfs.tar.gz", s2, opts);
  REQUIRE_MESSAGE(r.has_value(), r.error().what());
  CHECK(r->format == Format::rootfs);
}

}  // namespace pod::cas::test
