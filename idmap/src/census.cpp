#include "pod/idmap/census.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <functional>

#include "pod/sys/fs.hpp"

namespace pod::idmap {

using sys::Fd;
using sys::make_error;
using sys::sys_error;

namespace {

constexpr int kMaxDepth = 4096;

// Called per inode with its path and stat; returning true stops the walk.
using Visit = std::function<bool(const std::string&, const struct stat&)>;

std::string join(const std::string& dir, const char* name) {
  return dir == "." ? std::string(name) : dir + "/" + name;
}

// Walks the open directory `fd` (already visited itself), depth first. Returns true when
// the visitor stopped the walk.
Result<bool> walk_dir(Fd fd, const std::string& path, int depth, const Visit& visit) {
  if (depth > kMaxDepth) return make_error(ELOOP, "'{}' is more than {} directories deep", path, kMaxDepth);
  DIR* d = ::fdopendir(fd.get());
  if (!d) return sys_error("fdopendir '{}'", path);
  (void)fd.release();  // the DIR owns it now
  struct Closer {
    DIR* d;
    ~Closer() { ::closedir(d); }
  } closer{d};
  int dfd = ::dirfd(d);
  while (true) {
    errno = 0;
    struct dirent* e = ::readdir(d);
    if (!e) {
      if (errno) return sys_error("reading directory '{}'", path);
      return false;
    }
    if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0))) continue;
    std::string child = join(path, e->d_name);
    struct stat st {};
    if (::fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // removed while we looked
      return sys_error("stat '{}'", child);
    }
    if (visit(child, st)) return true;
    if (!S_ISDIR(st.st_mode)) continue;
    int sub = ::openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
      if (errno == ENOENT) continue;
      return sys_error("open '{}'", child);
    }
    if (POD_TRY(walk_dir(Fd(sub), child, depth + 1, visit))) return true;
  }
}

Result<bool> walk(sys::FdRef dir, std::string_view path, const Visit& visit) {
  int fd = ::openat(dir.get(), std::string(path).c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return sys_error("open '{}'", path);
  Fd top(fd);
  struct stat st {};
  if (::fstat(top.get(), &st) != 0) return sys_error("stat '{}'", path);
  if (visit(".", st)) return true;
  return walk_dir(std::move(top), ".", 0, visit);
}

RangeSet keys(const std::map<std::uint32_t, std::string>& m) {
  RangeSet s;
  for (auto& [id, _] : m) s.add(id, std::uint64_t{id} + 1);
  return s;
}

}  // namespace

RangeSet Census::uid_set() const { return keys(uids); }
RangeSet Census::gid_set() const { return keys(gids); }

Result<Census> census(sys::FdRef dir, std::string_view path) {
  Census c;
  auto r = walk(dir, path, [&](const std::string& p, const struct stat& st) {
    ++c.inodes;
    c.uids.try_emplace(static_cast<std::uint32_t>(st.st_uid), p);
    c.gids.try_emplace(static_cast<std::uint32_t>(st.st_gid), p);
    return false;
  });
  if (!r) return sys::Unexpected(std::move(r.error()).context("census of '{}'", path));
  return c;
}

Result<std::optional<std::string>> find_owned_by(sys::FdRef dir, std::string_view path, const RangeSet& uids,
                                                 const RangeSet& gids) {
  std::optional<std::string> found;
  auto r = walk(dir, path, [&](const std::string& p, const struct stat& st) {
    if (uids.contains(st.st_uid) || gids.contains(st.st_gid)) found = p;
    return found.has_value();
  });
  if (!r) return sys::Unexpected(std::move(r.error()).context("looking for files in '{}'", path));
  return found;
}

}  // namespace pod::idmap
