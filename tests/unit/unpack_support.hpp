// Shared by the unpack tests: tar streams built with libarchive's writer (or GNU tar
// and python3's tarfile where they say it better), a scratch directory, and a call of
// unpack_layer on a blob held in a memfd.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "pod/cas/unpack.hpp"
#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cas::test {

namespace fs = std::filesystem;

// One tar entry. type: f d l h c b p. uid/gid -1: the current ids.
struct Ent {
  std::string name;
  char type = 'f';
  std::string data;
  std::string link;  // symlink or hard link target
  mode_t mode = 0644;
  long uid = -1, gid = -1;
  std::vector<std::pair<std::string, std::string>> xattrs;
  unsigned rmajor = 0, rminor = 0;
  long mtime = 1'700'000'000;
};

inline Ent make_ent(std::string name, char type, mode_t mode) {
  Ent e;
  e.name = std::move(name);
  e.type = type;
  e.mode = mode;
  return e;
}
inline Ent file(std::string name, std::string data, mode_t mode = 0644) {
  Ent e = make_ent(std::move(name), 'f', mode);
  e.data = std::move(data);
  return e;
}
inline Ent dir(std::string name, mode_t mode = 0755) { return make_ent(std::move(name), 'd', mode); }
inline Ent symlink(std::string name, std::string target) {
  Ent e = make_ent(std::move(name), 'l', 0777);
  e.link = std::move(target);
  return e;
}
inline Ent hardlink(std::string name, std::string target) {
  Ent e = make_ent(std::move(name), 'h', 0644);
  e.link = std::move(target);
  return e;
}
inline Ent device(std::string name, char type, mode_t mode, unsigned major, unsigned minor) {
  Ent e = make_ent(std::move(name), type, mode);
  e.rmajor = major;
  e.rminor = minor;
  return e;
}

enum class Filter { none, gzip, zstd };
enum class Format { pax, gnu };  // gnu: names are bytes, not UTF-8

// A tar stream of the entries, compressed as asked.
inline std::string make_tar(const std::vector<Ent>& ents, Filter filter = Filter::none, Format format = Format::pax) {
  std::string out;
  archive* a = archive_write_new();
  REQUIRE(a);
  if (format == Format::pax)
    REQUIRE(archive_write_set_format_pax_restricted(a) == ARCHIVE_OK);
  else
    REQUIRE(archive_write_set_format_gnutar(a) == ARCHIVE_OK);
  if (filter == Filter::gzip) REQUIRE(archive_write_add_filter_gzip(a) == ARCHIVE_OK);
  if (filter == Filter::zstd) REQUIRE(archive_write_add_filter_zstd(a) == ARCHIVE_OK);
  // No zero padding after the compressed stream (zstd readers take it for a frame).
  if (filter != Filter::none) REQUIRE(archive_write_set_bytes_in_last_block(a, 1) == ARCHIVE_OK);
  auto writer = [](archive*, void* ud, const void* buf, size_t n) -> la_ssize_t {
    static_cast<std::string*>(ud)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  };
  REQUIRE(archive_write_open(a, &out, nullptr, writer, nullptr) == ARCHIVE_OK);
  for (const auto& e : ents) {
    archive_entry* en = archive_entry_new();
    archive_entry_set_pathname(en, e.name.c_str());
    archive_entry_set_uid(en, e.uid < 0 ? ::geteuid() : static_cast<la_int64_t>(e.uid));
    archive_entry_set_gid(en, e.gid < 0 ? ::getegid() : static_cast<la_int64_t>(e.gid));
    archive_entry_set_mtime(en, e.mtime, 0);
    for (auto& [k, v] : e.xattrs) archive_entry_xattr_add_entry(en, k.c_str(), v.data(), v.size());
    switch (e.type) {
      case 'f': archive_entry_set_filetype(en, AE_IFREG); archive_entry_set_size(en, static_cast<la_int64_t>(e.data.size())); break;
      case 'd': archive_entry_set_filetype(en, AE_IFDIR); break;
      case 'l': archive_entry_set_filetype(en, AE_IFLNK); archive_entry_set_symlink(en, e.link.c_str()); break;
      case 'h': archive_entry_set_filetype(en, AE_IFREG); archive_entry_set_hardlink(en, e.link.c_str()); break;
      case 'c': archive_entry_set_filetype(en, AE_IFCHR); break;
      case 'b': archive_entry_set_filetype(en, AE_IFBLK); break;
      case 'p': archive_entry_set_filetype(en, AE_IFIFO); break;
      default: FAIL("bad type");
    }
    archive_entry_set_perm(en, e.mode);
    if (e.type == 'c' || e.type == 'b') {
      archive_entry_set_rdevmajor(en, e.rmajor);
      archive_entry_set_rdevminor(en, e.rminor);
    }
    REQUIRE(archive_write_header(a, en) == ARCHIVE_OK);
    if (e.type == 'f' && !e.data.empty())
      REQUIRE(archive_write_data(a, e.data.data(), e.data.size()) == static_cast<la_ssize_t>(e.data.size()));
    archive_entry_free(en);
  }
  REQUIRE(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
  return out;
}

// A directory under $TMPDIR, removed whatever the modes inside.
struct Scratch {
  std::string path;
  Scratch() {
    std::string tmpl = (fs::temp_directory_path() / "pod-unpack-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
    REQUIRE(::mkdir((path + "/root").c_str(), 0755) == 0);
  }
  ~Scratch() {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
    fs::remove_all(path, ec);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  [[nodiscard]] std::string root() const { return path + "/root"; }
  [[nodiscard]] std::string at(const std::string& rel) const { return path + "/root/" + rel; }
  [[nodiscard]] sys::Fd root_fd() const { return sys::Fd(::open(root().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); }
  [[nodiscard]] sys::Fd list_fd(int flags = O_RDONLY) const {
    return sys::Fd(::open((path + "/files.jsonl").c_str(), flags | O_CLOEXEC, 0600));
  }
};

inline sys::Fd memfd_of(const std::string& blob) {
  sys::Fd fd(::memfd_create("layer", MFD_CLOEXEC));
  REQUIRE(fd.valid());
  REQUIRE(::write(fd.get(), blob.data(), blob.size()) == static_cast<ssize_t>(blob.size()));
  return fd;
}

inline UnpackOptions rootless() {
  UnpackOptions o;
  o.ownership = Ownership::rootless_xattr;
  o.overlay_xattrs = OverlayXattrs::user;
  return o;
}

inline Result<TreeSummary> unpack(const Scratch& s, const std::string& blob, const UnpackOptions& opts = rootless()) {
  sys::Fd b = memfd_of(blob);
  sys::Fd root = s.root_fd();
  sys::Fd list = s.list_fd(O_WRONLY | O_CREAT | O_TRUNC);
  REQUIRE(root.valid());
  REQUIRE(list.valid());
  return unpack_layer(b, root, list, opts);
}

inline std::vector<std::string> verify(const Scratch& s) {
  sys::Fd root = s.root_fd();
  sys::Fd list = s.list_fd();
  auto r = verify_tree(root, list);
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().what()));
  return *r;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

inline std::string xattr_of(const std::string& path, const char* name) {
  char buf[256];
  ssize_t n = ::lgetxattr(path.c_str(), name, buf, sizeof buf);
  return n < 0 ? std::string("<none>") : std::string(buf, static_cast<std::size_t>(n));
}

inline int run(const std::string& cmd) { return std::system(cmd.c_str()); }

}  // namespace pod::cas::test
