// verify_tree: the tree below a root against the file list unpack_layer wrote.
// Walks by descriptors, never following a symlink nor crossing into another mount.
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "pod/sys/fs.hpp"
#include "unpack_internal.hpp"

namespace pod::cas {
namespace {

using json = nlohmann::json;
using sys::Fd;
using sys::make_error;
using sys::Resolve;
using sys::sys_error;
using sys::Unexpected;

struct Rec {
  char type = 0;  // f d l h c b p w
  std::uint32_t mode = 0;
  std::int64_t uid = -1, gid = -1;
  std::uint64_t size = 0, rdev = 0;
  std::string hash, link;
  bool seen = false;
};

const char* type_name(char t) {
  switch (t) {
    case 'f': case 'h': return "regular file";
    case 'd': return "directory";
    case 'l': return "symlink";
    case 'c': case 'w': return "character device";
    case 'b': return "block device";
    case 'p': return "fifo";
    default: return "unknown";
  }
}

char type_of(mode_t m) {
  if (S_ISREG(m)) return 'f';
  if (S_ISDIR(m)) return 'd';
  if (S_ISLNK(m)) return 'l';
  if (S_ISCHR(m)) return 'c';
  if (S_ISBLK(m)) return 'b';
  if (S_ISFIFO(m)) return 'p';
  return 's';
}

std::optional<std::string> get_bytes(const json& j, const char* key) {
  if (auto it = j.find(key); it != j.end() && it->is_string()) return it->get<std::string>();
  if (auto it = j.find(std::string(key) + "x"); it != j.end() && it->is_string())
    return detail::from_hex(it->get<std::string>());
  return std::nullopt;
}

// The records, the last one of a path winning; a non-directory over a path drops what
// was below it, as unpacking removed it.
class Records {
 public:
  Result<void> add(const std::string& line, std::size_t lineno) {
    json j = json::parse(line, nullptr, false);
    auto bad = [&] { return make_error(EINVAL, "file list line {} is damaged", lineno); };
    if (j.is_discarded() || !j.is_object()) return bad();
    auto path = get_bytes(j, "p");
    std::string t = j.value("t", "");
    if (!path || t.size() != 1) return bad();
    if (t == "o") {
      opaque_[*path] = j.value("x", "");
      return {};
    }
    Rec r;
    r.type = t[0];
    r.mode = j.value("m", 0u);
    if (j.contains("u")) r.uid = j.value("u", std::int64_t{-1});
    if (j.contains("g")) r.gid = j.value("g", std::int64_t{-1});
    r.size = j.value("s", std::uint64_t{0});
    r.rdev = j.value("r", std::uint64_t{0});
    r.hash = j.value("h", "");
    if (auto l = get_bytes(j, "l")) r.link = *l;
    auto it = recs_.find(*path);
    if (!(r.type == 'd' && it != recs_.end() && it->second.type == 'd')) drop_below(*path);
    recs_[*path] = std::move(r);
    return {};
  }

  std::map<std::string, Rec>& recs() { return recs_; }
  std::map<std::string, std::string>& opaque() { return opaque_; }

 private:
  void drop_below(const std::string& path) {
    if (path == ".") return;
    std::string prefix = path + "/";
    for (auto* m : {&recs_}) {
      auto it = m->lower_bound(prefix);
      while (it != m->end() && it->first.starts_with(prefix)) it = m->erase(it);
    }
    auto it = opaque_.lower_bound(path);
    while (it != opaque_.end() && (it->first == path || it->first.starts_with(prefix))) it = opaque_.erase(it);
  }
  std::map<std::string, Rec> recs_;
  std::map<std::string, std::string> opaque_;
};

Result<std::uint64_t> hash_file(int dir, const std::string& name) {
  Fd f(::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
  if (!f) return sys_error("open '{}'", name);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> st(XXH3_createState(), &XXH3_freeState);
  XXH3_64bits_reset(st.get());
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(f.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("read '{}'", name);
    if (n == 0) break;
    XXH3_64bits_update(st.get(), buf.data(), static_cast<std::size_t>(n));
  }
  return XXH3_64bits_digest(st.get());
}

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};

class Verifier {
 public:
  Verifier(FdRef root, Records& recs) : root_(root), recs_(recs) {}

  Result<void> walk(int dir, const std::string& prefix, dev_t dev) {
    int dup = ::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dup < 0) return sys_error("open '{}'", prefix.empty() ? "." : prefix);
    std::unique_ptr<DIR, DirCloser> d(::fdopendir(dup));
    if (!d) {
      ::close(dup);
      return sys_error("opendir '{}'", prefix);
    }
    while (dirent* de = ::readdir(d.get())) {
      std::string name = de->d_name;
      if (name == "." || name == "..") continue;
      std::string path = prefix.empty() ? name : prefix + "/" + name;
      struct stat st;
      if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return sys_error("stat '{}'", path);
      auto it = recs_.recs().find(path);
      if (it == recs_.recs().end()) {
        out.push_back(path + ": not in the layer");
        continue;
      }
      it->second.seen = true;
      bool same_type = POD_TRY(compare(path, it->second, st, dir, name));
      if (same_type && S_ISDIR(st.st_mode) && st.st_dev == dev) {
        Fd sub(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub) return sys_error("open '{}'", path);
        POD_TRY(walk(sub.get(), path, dev));
      }
    }
    return {};
  }

  // Reports differences of one entry; false when the type differs (nothing more to say).
  Result<bool> compare(const std::string& path, const Rec& r, const struct stat& st, int dir, const std::string& name) {
    char want = r.type == 'h' ? 'f' : r.type == 'w' ? 'c' : r.type;
    char got = type_of(st.st_mode);
    if (want != got) {
      out.push_back(fmt::format("{}: type changed (was a {}, now a {})", path, type_name(want), type_name(got)));
      return false;
    }
    if (r.type == 'h') {
      auto target = sys::open_in(root_, r.link, O_PATH | O_NOFOLLOW, Resolve::beneath_no_symlinks);
      struct stat ts;
      if (!target || ::fstat(target->get(), &ts) != 0 || ts.st_ino != st.st_ino || ts.st_dev != st.st_dev)
        out.push_back(fmt::format("{}: no longer a hard link to '{}'", path, r.link));
      return true;
    }
    if (r.type == 'w') {
      if (st.st_rdev != makedev(0, 0)) out.push_back(fmt::format("{}: whiteout changed", path));
      return true;
    }
    if (r.type != 'l' && (st.st_mode & 07777) != r.mode)
      out.push_back(fmt::format("{}: mode changed ({:04o} -> {:04o})", path, r.mode, st.st_mode & 07777));
    if ((r.uid >= 0 && st.st_uid != r.uid) || (r.gid >= 0 && st.st_gid != r.gid))
      out.push_back(fmt::format("{}: owner changed ({}:{} -> {}:{})", path, r.uid, r.gid, st.st_uid, st.st_gid));
    switch (r.type) {
      case 'f': {
        if (static_cast<std::uint64_t>(st.st_size) != r.size) {
          out.push_back(fmt::format("{}: size changed ({} -> {} bytes)", path, r.size, st.st_size));
          break;
        }
        std::uint64_t h = POD_TRY(hash_file(dir, name));
        char hex[17];
        std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
        if (r.hash != hex) out.push_back(fmt::format("{}: content changed", path));
        break;
      }
      case 'l': {
        std::string buf(static_cast<std::size_t>(std::max<off_t>(st.st_size, 0)) + 1, '\0');
        ssize_t n = ::readlinkat(dir, name.c_str(), buf.data(), buf.size());
        if (n < 0) return sys_error("readlink '{}'", path);
        buf.resize(static_cast<std::size_t>(n));
        if (buf != r.link) out.push_back(fmt::format("{}: symlink target changed ('{}' -> '{}')", path, r.link, buf));
        break;
      }
      case 'c':
      case 'b':
        if (st.st_rdev != r.rdev) out.push_back(fmt::format("{}: device number changed", path));
        break;
      default: break;
    }
    return true;
  }

  std::vector<std::string> out;

 private:
  FdRef root_;
  Records& recs_;
};

}  // namespace

Result<std::vector<std::string>> verify_tree(FdRef root, FdRef file_list) {
  Records recs;
  {
    std::string pending;
    std::vector<char> buf(1 << 16);
    off_t off = 0;
    std::size_t lineno = 0;
    for (;;) {
      ssize_t n = ::pread(file_list.get(), buf.data(), buf.size(), off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return sys_error("reading the file list");
      if (n == 0) break;
      off += n;
      pending.append(buf.data(), static_cast<std::size_t>(n));
      std::size_t start = 0;
      for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
        POD_TRY(recs.add(pending.substr(start, nl - start), ++lineno));
      pending.erase(0, start);
    }
    if (!pending.empty()) return make_error(EINVAL, "file list line {} is cut short", lineno + 1);
  }

  Verifier v(root, recs);
  struct stat rst;
  if (::fstat(root.get(), &rst) != 0) return sys_error("stat the root");
  if (auto it = recs.recs().find("."); it != recs.recs().end()) {
    it->second.seen = true;
    POD_TRY(v.compare(".", it->second, rst, root.get(), "."));
  }
  POD_TRY(v.walk(root.get(), "", rst.st_dev));
  for (auto& [path, r] : recs.recs())
    if (!r.seen) v.out.push_back(path + ": missing");
  for (auto& [dir, key] : recs.opaque()) {
    auto fd = sys::open_in(root, dir, O_RDONLY | O_DIRECTORY, Resolve::beneath_no_symlinks);
    char c = 0;
    if (!fd || ::fgetxattr(fd->get(), key.c_str(), &c, 1) != 1 || c != 'y')
      v.out.push_back(fmt::format("{}: opaque marker {} missing", dir, key));
  }
  std::sort(v.out.begin(), v.out.end());
  return std::move(v.out);
}

}  // namespace pod::cas
