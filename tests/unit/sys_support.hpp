// Shared by the sys/ tests: a fresh temporary directory, and small file helpers that
// build fixtures with plain syscalls (the code under test is not used to make them).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include <doctest/doctest.h>

#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"
#include "pod/sys/fs.hpp"

namespace pod::sys::test {

namespace fs = std::filesystem;

// A directory under $TMPDIR, removed (whatever the modes inside) at the end of a test.
struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "pod-sys-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = fs::canonical(tmpl).string();
  }
  ~TempDir() {
    // Modes may have been set to 000 by a test: restore what remove_all needs.
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) ::chmod(it->path().c_str(), 0700);
    }
    ::chmod(path.c_str(), 0700);
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] std::string operator/(const std::string& rel) const { return path + "/" + rel; }
};

inline void put_file(const std::string& path, const std::string& content, mode_t mode = 0644) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  REQUIRE_MESSAGE(fd >= 0, "create " << path << ": " << errno_name(errno));
  REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
  ::close(fd);
}

inline void put_dir(const std::string& path, mode_t mode = 0755) {
  REQUIRE_MESSAGE(::mkdir(path.c_str(), mode) == 0, "mkdir " << path << ": " << errno_name(errno));
}

inline void put_link(const std::string& target, const std::string& path) {
  REQUIRE_MESSAGE(::symlink(target.c_str(), path.c_str()) == 0, "symlink " << path << ": " << errno_name(errno));
}

inline std::string slurp(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE_MESSAGE(fd.valid(), "open " << path << ": " << errno_name(errno));
  auto r = read_fd(fd, 1 << 20);
  REQUIRE(r);
  return *r;
}

inline bool lexists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Names in a directory, without "." and "..".
inline std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> out;
  for (auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

inline Fd open_path(const std::string& path, int flags = O_RDONLY | O_DIRECTORY) {
  Fd fd(::open(path.c_str(), flags | O_CLOEXEC));
  REQUIRE_MESSAGE(fd.valid(), "open " << path << ": " << errno_name(errno));
  return fd;
}

}  // namespace pod::sys::test
