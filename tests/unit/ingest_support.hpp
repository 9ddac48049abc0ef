// Shared by the ingest tests: fixtures built once per run by tests/fixtures/
// make-ingest-fixtures.sh, fresh staging directories, and checks of what was staged.
#pragma once

#include <dirent.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "pod/cas/ingest.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cas::test {

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a shell command; its stdout, and its exit status in *status.
inline std::string run(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  if (status) *status = st;
  return out;
}

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pod-ingest-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// The fixtures, made by the tools people use; built on first use.
inline const std::string& fixtures() {
  static TempDir dir;
  static bool built = false;
  if (!built) {
    int st = 0;
    std::string log = run("bash " + shell_quote(std::string(POD_FIXTURES_DIR) + "/make-ingest-fixtures.sh") + " " +
                              shell_quote(dir.path + "/fx") + " 2>&1",
                          &st);
    INFO(log);
    REQUIRE(st == 0);
    built = true;
  }
  static std::string fx = dir.path + "/fx";
  return fx;
}

struct Staging {
  TempDir dir;
  sys::Fd fd;
  Staging() {
    auto r = sys::open_dir(FdRef::cwd(), dir.path);
    REQUIRE(r.has_value());
    fd = std::move(*r);
  }
  [[nodiscard]] std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (auto& e : std::filesystem::directory_iterator(dir.path)) out.push_back(e.path().filename().string());
    return out;
  }
  [[nodiscard]] std::string path_of(const Digest& d) const { return dir.path + "/" + d.hex; }
  [[nodiscard]] bool has(const Digest& d) const { return std::filesystem::exists(path_of(d)); }
  [[nodiscard]] std::string read(const Digest& d) const {
    auto r = sys::read_file(fd, d.hex, 64u << 20);
    REQUIRE(r.has_value());
    return *r;
  }
};

inline Result<IngestedImage> ingest_path(const std::string& path, const Staging& s, IngestOptions opts = {}) {
  return ingest(FdRef::cwd(), path, s.fd, opts);
}

inline std::string sha256_file(const std::string& path) {
  std::string line = run("sha256sum " + shell_quote(path));
  return line.substr(0, 64);
}

// Staging holds only files named by a digest that their content hashes to: no
// temporary or half-written file.
inline void check_staging_clean(const Staging& s) {
  for (auto& n : s.names()) {
    INFO("staged file ", n);
    CHECK(Digest::valid_hex(n));
    if (Digest::valid_hex(n)) CHECK(sha256_file(s.dir.path + "/" + n) == n);
  }
}

struct Checked {
  Manifest manifest;
  ImageConfig config;
  std::string config_text;
};

// What the import pipeline relies on: manifest, config and layers staged and verified,
// the layer count equal to the config's diff_ids.
inline Checked check_image(const Staging& s, const IngestedImage& img) {
  check_staging_clean(s);
  REQUIRE(s.has(img.manifest.digest));
  std::string mtext = s.read(img.manifest.digest);
  CHECK(mtext.size() == img.manifest.size);
  auto m = parse_manifest(mtext);
  REQUIRE_MESSAGE(m.has_value(), m.error().message);
  REQUIRE(s.has(m->config.digest));
  std::string ctext = s.read(m->config.digest);
  CHECK(ctext.size() == m->config.size);
  auto c = parse_config(ctext);
  REQUIRE_MESSAGE(c.has_value(), c.error().message);
  CHECK(c->diff_ids.size() == m->layers.size());
  for (auto& l : m->layers) {
    REQUIRE(s.has(l.digest));
    CHECK(std::filesystem::file_size(s.path_of(l.digest)) == l.size);
  }
  return {*m, *c, ctext};
}

// `tar -tv` of a staged layer, numeric owners.
inline std::string list_layer(const Staging& s, const Descriptor& layer) {
  int st = 0;
  std::string out = run("tar --numeric-owner -tvf " + shell_quote(s.path_of(layer.digest)) + " 2>&1", &st);
  INFO(out);
  CHECK(st == 0);
  return out;
}

inline bool has_line(const std::string& listing, const std::string& a, const std::string& b) {
  std::size_t pos = 0;
  while (pos < listing.size()) {
    std::size_t e = listing.find('\n', pos);
    if (e == std::string::npos) e = listing.size();
    std::string line = listing.substr(pos, e - pos);
    if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) return true;
    pos = e + 1;
  }
  return false;
}

// The files of the test rootfs, with owners and modes as made.
inline void check_rootfs_listing(const std::string& l, const std::string& prefix = "") {
  INFO(l);
  CHECK(has_line(l, "rwxr-xr-x 0/0", prefix + "bin/busybox"));
  CHECK((has_line(l, "bin/ash link to", prefix + "bin/busybox") || has_line(l, "bin/busybox link to", prefix + "bin/ash")));
  CHECK(has_line(l, "lrwxrwxrwx 0/0", prefix + "bin/sh -> busybox"));
  CHECK(has_line(l, "-rw------- 1000/1000", prefix + "home/alice/notes"));
  CHECK(has_line(l, "drwx------ 1000/1000", prefix + "home/alice"));
  CHECK(has_line(l, "-rw-r----- 123/456", prefix + "srv/data"));
  CHECK(has_line(l, "-rwsr-xr-x 0/0", prefix + "usr/bin/su"));
  CHECK(has_line(l, "0/0", prefix + "etc/passwd"));
}

}  // namespace pod::cas::test
