// Bad input: each is refused with an error that names what is wrong, and staging keeps
// no half-written file.
#include <sys/stat.h>

#include <fstream>

#include "ingest_internal.hpp"
#include "ingest_support.hpp"

namespace pod::cas::test {

namespace {

std::string error_of(const Result<IngestedImage>& r) {
  REQUIRE_MESSAGE(!r.has_value(), "ingest succeeded");
  return r.error().message;
}

#define CHECK_ERROR(result, text)                                     \
  do {                                                                \
    std::string msg_ = error_of(result);                              \
    INFO("error: ", msg_);                                            \
    CHECK(msg_.find(text) != std::string::npos);                      \
  } while (0)

void write(const std::string& path, std::string_view data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  REQUIRE(f.good());
}

// An OCI layout written by hand, for what no tool will make.
struct Layout {
  TempDir dir;
  Layout(std::string_view version = "1.0.0") {
    std::filesystem::create_directories(dir.path + "/blobs/sha256");
    write(dir.path + "/oci-layout", fmt::format("{{\"imageLayoutVersion\":\"{}\"}}", version));
  }
  Descriptor blob(std::string_view mt, std::string_view data) {
    Digest d = sha256_of(data);
    write(dir.path + "/blobs/sha256/" + d.hex, data);
    return Descriptor{std::string(mt), d, data.size(), {}, {}};
  }
  // A manifest over one (fake) layer; layers are not read by ingest.
  Descriptor image(std::string_view layer_type = media::kOciLayer, std::string_view content = "layer") {
    Descriptor layer = blob(layer_type, content);
    Descriptor cfg = blob(media::kOciConfig, fmt::format(R"({{"architecture":"amd64","os":"linux",)"
                                                         R"("rootfs":{{"type":"layers","diff_ids":["{}"]}}}})",
                                                         layer.digest.str()));
    std::string m = fmt::format(R"({{"schemaVersion":2,"mediaType":"{}","config":{},"layers":[{}]}})",
                                media::kOciManifest, descriptor_json(cfg), descriptor_json(layer));
    return blob(media::kOciManifest, m);
  }
  Descriptor index(const std::vector<Descriptor>& entries) { return blob(media::kOciIndex, index_text(entries)); }
  static std::string index_text(const std::vector<Descriptor>& entries) {
    std::string list;
    for (auto& e : entries) list += (list.empty() ? "" : ",") + descriptor_json(e);
    return fmt::format(R"({{"schemaVersion":2,"mediaType":"{}","manifests":[{}]}})", media::kOciIndex, list);
  }
  void top(const std::vector<Descriptor>& entries) { write(dir.path + "/index.json", index_text(entries)); }
};

Descriptor with_platform(Descriptor d, std::string_view p) {
  d.platform = *Platform::parse(p);
  return d;
}

std::string copy_of(const std::string& src, const TempDir& into) {
  std::string dst = into.path + "/copy";
  std::filesystem::copy(src, dst, std::filesystem::copy_options::recursive);
  return dst;
}

}  // namespace

TEST_CASE("not an image at all") {
  Staging s;
  CHECK_ERROR(ingest_path(fixtures() + "/not-an-image.txt", s),
              "is not an image: neither an OCI layout directory nor a tar archive");
  CHECK_ERROR(ingest_path(fixtures() + "/empty.tar", s), "is an empty archive");
  CHECK(s.names().empty());
  TempDir d;
  CHECK_ERROR(ingest_path(d.path, s), "not an OCI image layout");
  IngestOptions opts;
  opts.format = Format::oci;
  CHECK_ERROR(ingest_path(fixtures() + "/oci.tar", s, opts), "is not a directory");
  CHECK(s.names().empty());
}

TEST_CASE("a pipe: auto-detection needs two reads, a given format one") {
  TempDir d;
  int n = 0;
  // A fresh FIFO per writer: a writer still exiting must not meet the next reader.
  auto feed = [&](const std::string& file) {
    std::string fifo = d.path + "/fifo" + std::to_string(n++);
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    REQUIRE(std::system(("cat " + shell_quote(file) + " > " + shell_quote(fifo) + " 2>/dev/null &").c_str()) == 0);
    return fifo;
  };
  Staging s;
  CHECK_ERROR(ingest_path(feed(fixtures() + "/oci.tar"), s), "cannot be read twice (a pipe?); give its format");
  struct Case {
    const char* file;
    Format format;
  };
  for (auto [file, format] : {Case{"oci.tar", Format::oci_archive}, Case{"docker.tar", Format::docker_archive},
                              Case{"busybox.aci.xz", Format::aci}, Case{"rootfs.tar.zst", Format::rootfs}}) {
    CAPTURE(file);
    Staging p;
    std::string fifo = feed(fixtures() + "/" + file);
    IngestOptions opts;
    opts.format = format;
    auto img = ingest_path(fifo, p, opts);
    REQUIRE_MESSAGE(img.has_value(), img.error().what());
    check_image(p, *img);
  }
}

TEST_CASE("OCI layout: oci-layout version and index.json") {
  Staging s;
  {
    Layout l("2.0.0");
    l.top({l.image()});
    CHECK_ERROR(ingest_path(l.dir.path, s), "unsupported imageLayoutVersion '2.0.0'");
  }
  {
    Layout l;
    l.image();
    write(l.dir.path + "/index.json", "{\"schemaVersion\": 2, \"manifests\": [");
    CHECK_ERROR(ingest_path(l.dir.path, s), "index.json: index is not valid JSON");
  }
  {
    Layout l;
    l.top({l.image()});
    IngestOptions opts;
    opts.limits.max_json_bytes = 64;
    CHECK_ERROR(ingest_path(l.dir.path, s, opts), "larger than the limit of 64 bytes");
    opts.limits.max_json_bytes = 320;  // index.json fits, the manifest does not
    CHECK_ERROR(ingest_path(l.dir.path, s, opts), "more than the limit of 320 for JSON");
  }
  check_staging_clean(s);
  CHECK(s.names().empty());
}

TEST_CASE("OCI layout: unknown media types") {
  Staging s;
  {
    Layout l;
    l.top({l.image("application/x-unknown")});
    CHECK_ERROR(ingest_path(l.dir.path, s), "unknown media type 'application/x-unknown'");
  }
  {
    Layout l;
    Descriptor d = l.image();
    d.media_type = "application/x-foo";
    l.top({d});
    CHECK_ERROR(ingest_path(l.dir.path, s), "unknown media type 'application/x-foo'");
  }
  CHECK(s.names().empty());
}

TEST_CASE("OCI layout: size and digest mismatch, symlinked and special blobs") {
  TempDir t;
  std::string dir = copy_of(fixtures() + "/oci", t);
  Staging probe;
  auto good = ingest_path(dir, probe);
  REQUIRE(good.has_value());
  auto m = parse_manifest(probe.read(good->manifest.digest));
  REQUIRE(m.has_value());
  std::string blob = dir + "/blobs/sha256/" + m->layers[0].digest.hex;
  std::string saved = probe.read(m->layers[0].digest);

  Staging s;
  write(blob, saved + "x");
  CHECK_ERROR(ingest_path(dir, s), "size mismatch");
  std::string flipped = saved;
  flipped[100] = static_cast<char>(flipped[100] ^ 0x55);
  write(blob, flipped);
  CHECK_ERROR(ingest_path(dir, s), "digest mismatch");
  check_staging_clean(s);
  for (auto& n : s.names()) CHECK(n != m->layers[0].digest.hex);

  // A blob that is a symlink out of the layout is never followed.
  std::filesystem::remove(blob);
  write(t.path + "/outside", saved);
  std::filesystem::create_symlink(t.path + "/outside", blob);
  auto r = ingest_path(dir, s);
  REQUIRE(!r.has_value());
  CHECK(r.error().code == ELOOP);
  // A FIFO planted as a blob must not hang the import.
  std::filesystem::remove(blob);
  REQUIRE(::mkfifo(blob.c_str(), 0644) == 0);
  CHECK_ERROR(ingest_path(dir, s), "is not a regular file");
  check_staging_clean(s);
}

TEST_CASE("OCI layout: choosing the image") {
  Staging s;
  CHECK_ERROR(ingest_path(fixtures() + "/oci-two", s),
              "index.json lists several images; choose one by name (available: latest, other)");
  IngestOptions opts;
  opts.source_ref = "nope";
  CHECK_ERROR(ingest_path(fixtures() + "/oci-two", s, opts),
              "index.json has no image named 'nope' (available: latest, other)");
  CHECK(s.names().empty());
}

TEST_CASE("OCI layout: nested indexes resolved by platform") {
  Layout l;
  Descriptor amd = with_platform(l.image(media::kOciLayer, "amd"), "linux/amd64");
  Descriptor arm = with_platform(l.image(media::kOciLayer, "arm"), "linux/arm64/v8");
  Descriptor inner = l.index({arm, amd});
  Descriptor outer = l.index({inner});
  l.top({outer});
  for (auto [p, want] : {std::pair{"linux/amd64", amd}, std::pair{"linux/arm64", arm}}) {
    CAPTURE(p);
    Staging s;
    IngestOptions opts;
    opts.platform = *Platform::parse(p);
    auto img = ingest_path(l.dir.path, s, opts);
    REQUIRE_MESSAGE(img.has_value(), img.error().what());
    CHECK(img->manifest.digest == want.digest);
    check_image(s, *img);
  }
  Staging s;
  IngestOptions opts;
  opts.platform = *Platform::parse("linux/mips");
  CHECK_ERROR(ingest_path(l.dir.path, s, opts), "no image for platform linux/mips (available: linux/arm64/v8, linux/amd64)");
  opts.platform = Platform{"linux", "amd64", ""};
  opts.limits.max_index_depth = 1;
  CHECK_ERROR(ingest_path(l.dir.path, s, opts), "image indexes nested deeper than 1 levels");
  CHECK(s.names().empty());
}

TEST_CASE("index cycle") {
  // Hashes make a real cycle impossible to build; a source that lies makes one.
  Digest self = sha256_of("a");
  Descriptor d{std::string(media::kOciIndex), self, 10, {}, {}};
  detail::BlobSource src;
  src.read_json = [&](const Descriptor&) -> Result<std::string> { return Layout::index_text({d}); };
  src.ensure = [](const Descriptor&, std::string_view) -> Result<void> { return {}; };
  auto r = detail::ingest_layout(Layout::index_text({d}), src, IngestOptions{}, Format::oci);
  CHECK_ERROR(r, "index cycle: index " + self.str() + " contains itself");
}

TEST_CASE("oci-archive: member content, member count") {
  Staging s;
  CHECK_ERROR(ingest_path(fixtures() + "/oci-bad-member.tar", s), "member 'blobs/sha256/");
  CHECK_ERROR(ingest_path(fixtures() + "/oci-bad-member.tar", s), "digest mismatch");
  IngestOptions opts;
  opts.limits.max_members = 3;
  CHECK_ERROR(ingest_path(fixtures() + "/oci.tar", s, opts), "too many members (more than 3)");
  check_staging_clean(s);
}

TEST_CASE("docker-archive: bad manifest.json and archives") {
  Staging s;
  CHECK_ERROR(ingest_path(fixtures() + "/docker-truncated.tar", s), "truncated or corrupt archive");
  IngestOptions forced;
  forced.format = Format::docker_archive;
  CHECK_ERROR(ingest_path(fixtures() + "/docker-truncated.tar", s, forced), "truncated or corrupt archive");
  CHECK_ERROR(ingest_path(fixtures() + "/docker-missing-layer.tar", s),
              "manifest.json names layer 'missing/layer.tar', which is not in the archive");
  CHECK_ERROR(ingest_path(fixtures() + "/docker-dotdot.tar", s),
              "manifest.json: layer '../x' is not a plain member name");
  CHECK_ERROR(ingest_path(fixtures() + "/docker-extra-layer.tar", s), "lists 1 diff_ids but manifest.json names 2 layers");
  IngestOptions opts;
  opts.source_ref = "nope:1";
  CHECK_ERROR(ingest_path(fixtures() + "/docker.tar", s, opts),
              "manifest.json has no image tagged 'nope:1' (available: docker.io/library/busybox:latest)");
  CHECK_ERROR(ingest_path(fixtures() + "/docker-bad-json.tar", s), "manifest.json is not valid JSON");
  IngestOptions small;
  small.limits.max_json_bytes = 100;
  CHECK_ERROR(ingest_path(fixtures() + "/docker.tar", s, small),
              "member 'manifest.json': larger than the limit of 100 bytes");
  forced.format = Format::docker_archive;
  CHECK_ERROR(ingest_path(fixtures() + "/rootfs-plain.tar", s, forced), "no manifest.json member");
  check_staging_clean(s);
}

TEST_CASE("ACI: bad manifests") {
  Staging s;
  IngestOptions opts;
  opts.format = Format::aci;
  CHECK_ERROR(ingest_path(fixtures() + "/aci-no-manifest.aci", s, opts), "not an ACI: no 'manifest' member");
  CHECK_ERROR(ingest_path(fixtures() + "/aci-bad-kind.aci", s),
              "acKind is 'PodManifest', not 'ImageManifest'");
  CHECK_ERROR(ingest_path(fixtures() + "/aci-bad-link.aci", s),
              "member 'rootfs/evil': hard link to 'manifest', outside rootfs/");
  CHECK(s.names().empty());
  // Without its manifest, an ACI is only a tarball.
  auto r = ingest_path(fixtures() + "/aci-no-manifest.aci", s);
  REQUIRE_MESSAGE(r.has_value(), r.error().what());
  CHECK(r->format == Format::rootfs);
}

TEST_CASE("rootfs: damaged gzip tarballs") {
  Staging s;
  for (std::string name : {"rootfs-truncated.tar.gz", "rootfs-corrupt.tar.gz"}) {
    CAPTURE(name);
    CHECK_ERROR(ingest_path(fixtures() + "/" + name, s), "truncated or corrupt archive");
    IngestOptions opts;
    opts.format = Format::rootfs;
    CHECK_ERROR(ingest_path(fixtures() + "/" + name, s, opts), "truncated or corrupt archive");
  }
  CHECK(s.names().empty());
}

}  // namespace pod::cas::test
