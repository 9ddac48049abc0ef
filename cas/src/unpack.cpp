// unpack_layer: a tar stream (decompressed on another thread, see unpack_stream.cpp)
// made into a tree, every entry created by us through descriptors below the root.
// libarchive only parses; it never sees a path of ours and never writes to disk.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "pod/sys/fs.hpp"
#include "unpack_internal.hpp"

namespace pod::cas {
namespace {

using json = nlohmann::json;
using sys::Error;
using sys::Fd;
using sys::make_error;
using sys::Resolve;
using sys::sys_error;
using sys::Unexpected;

constexpr std::string_view kWhiteout = ".wh.";
constexpr std::string_view kOpaque = ".wh..wh..opq";
constexpr std::string_view kWhiteoutMeta = ".wh..wh.";

using detail::depth_of;
using detail::join;
using detail::normalise;
using detail::split_parent;

// Puts a path or symlink target into a record: a JSON string, or hex when the bytes are
// not UTF-8 (JSON strings cannot carry them).
void put_bytes(json& j, const char* key, std::string_view s) {
  if (detail::valid_utf8(s))
    j[key] = s;
  else
    j[std::string(key) + "x"] = detail::to_hex(s);
}

// The deferred part of a directory: mode and times go last, as children change mtime
// and a mode without owner write would stop us from filling it (rootless).
struct DirFinish {
  std::string path;
  std::uint32_t depth;
  mode_t mode;
  bool has_times;
  timespec times[2];
};

void set_times(archive_entry* e, timespec ts[2], bool& has) {
  has = archive_entry_mtime_is_set(e);
  ts[1] = {archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
  ts[0] = archive_entry_atime_is_set(e) ? timespec{archive_entry_atime(e), archive_entry_atime_nsec(e)} : ts[1];
}

struct Reader {
  detail::Decompressor* dec;
  detail::Block* current = nullptr;
};

la_ssize_t pull(archive* a, void* ud, const void** out) {
  auto* r = static_cast<Reader*>(ud);
  r->dec->release(std::exchange(r->current, nullptr));
  r->current = r->dec->pop();
  if (!r->current) {
    if (auto err = r->dec->error()) {
      archive_set_error(a, err->code, "%s", err->message.c_str());
      return -1;
    }
    return 0;
  }
  *out = r->current->data.get();
  return static_cast<la_ssize_t>(r->current->size);
}

class Unpacker {
 public:
  Unpacker(archive* a, FdRef root, FdRef list, const UnpackOptions& opts, detail::Decompressor& dec)
      : a_(a), root_(root), list_(list), opts_(opts), dec_(dec), xxh_(XXH3_createState()),
        euid_(::geteuid()), egid_(::getegid()) {}
  ~Unpacker() { XXH3_freeState(xxh_); }
  Unpacker(const Unpacker&) = delete;
  Unpacker& operator=(const Unpacker&) = delete;

  Result<void> entry(archive_entry* e);
  Result<void> finish();
  TreeSummary summary;

  // An error of the archive (or of the decompressor behind it, which says more), in
  // or after the entry `name`.
  Error stream_error(std::string_view where = {}, std::string_view name = {}) {
    Error err;
    if (auto d = dec_.error()) {
      err = *d;
    } else {
      int code = archive_errno(a_);
      const char* msg = archive_error_string(a_);
      err = Error{code > 0 ? code : EINVAL, msg ? msg : "unknown error reading the layer"};
    }
    if (name.empty()) return err;
    return std::move(err).context("{} '{}'", where, name);
  }

 private:

  Result<int> parent_dir(std::string_view parent);
  Result<int> make_parents(std::string_view parent);
  Result<void> clear(int dir, const std::string& base);
  Result<void> root_entry(archive_entry* e);
  Result<void> directory(archive_entry* e, int dir, const std::string& base, const std::string& path);
  Result<void> regular(archive_entry* e, int dir, const std::string& base, const std::string& path);
  Result<void> symlink(archive_entry* e, int dir, const std::string& base, const std::string& path);
  Result<void> hardlink(archive_entry* e, int dir, const std::string& base, const std::string& path);
  Result<void> special(archive_entry* e, int dir, const std::string& base, const std::string& path);
  Result<void> whiteout(int dir, std::string_view parent, std::string_view base);
  Result<void> opaque(int dir, std::string_view parent);
  Result<std::uint64_t> write_data(int fd, std::string_view name);
  Result<void> owner_fd(int fd, archive_entry* e);
  Result<void> xattrs(archive_entry* e, int fd, int dir, const std::string& base, std::string_view name);
  Result<void> rootless_owner(int fd, archive_entry* e);
  void defer_dir(archive_entry* e, std::string path);
  Result<void> record(const std::string& path, json j);
  Result<void> flush();
  void warn(const std::string& msg) {
    if (opts_.warn) opts_.warn(msg);
  }
  bool exact() const { return opts_.ownership == Ownership::exact; }
  std::uint32_t stored_uid(archive_entry* e) const {
    return exact() ? static_cast<std::uint32_t>(archive_entry_uid(e)) : euid_;
  }
  std::uint32_t stored_gid(archive_entry* e) const {
    return exact() ? static_cast<std::uint32_t>(archive_entry_gid(e)) : egid_;
  }

  archive* a_;
  FdRef root_;
  FdRef list_;
  const UnpackOptions& opts_;
  detail::Decompressor& dec_;
  XXH3_state_t* xxh_;
  std::uint32_t euid_, egid_;
  std::string out_;                // file list lines not yet written
  std::vector<DirFinish> dirs_;    // the only state that grows with the layer
  std::string cached_parent_;      // the last parent directory opened, kept open:
  Fd cached_fd_;                   // tar order visits one directory's entries together
};

Result<void> Unpacker::record(const std::string& path, json j) {
  put_bytes(j, "p", path.empty() ? std::string_view(".") : std::string_view(path));
  out_ += j.dump();
  out_ += '\n';
  if (out_.size() >= (256u << 10)) return flush();
  return {};
}

Result<void> Unpacker::flush() {
  POD_TRY_CTX(sys::write_all(list_, out_), "writing the file list");
  out_.clear();
  return {};
}

Result<int> Unpacker::parent_dir(std::string_view parent) {
  if (parent.empty()) return root_.get();
  if (cached_fd_ && cached_parent_ == parent) return cached_fd_.get();
  cached_fd_.reset();
  auto fd = sys::open_in(root_, parent, O_RDONLY | O_DIRECTORY, Resolve::beneath_no_symlinks);
  if (!fd) {
    int code = fd.error().code;
    if (code == ENOENT) return make_parents(parent);
    if (code == ELOOP) return make_error(EXDEV, "its parent '{}' passes through a symlink", parent);
    if (code == ENOTDIR) return make_error(ENOTDIR, "its parent '{}' is not a directory", parent);
    if (code == EXDEV) return make_error(EXDEV, "its parent '{}' leaves the root", parent);
    return Unexpected(std::move(fd).error());
  }
  cached_parent_ = parent;
  cached_fd_ = std::move(*fd);
  return cached_fd_.get();
}

// Tar does not promise an entry for every directory: make the missing ones, as tar does.
Result<int> Unpacker::make_parents(std::string_view parent) {
  Fd cur;
  std::size_t i = 0;
  while (i < parent.size()) {
    std::size_t j = std::min(parent.find('/', i), parent.size());
    std::string comp(parent.substr(i, j - i));
    std::string prefix(parent.substr(0, j));
    int at = cur ? cur.get() : root_.get();
    int fd = ::openat(at, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      if (::mkdirat(at, comp.c_str(), 0700) != 0) return sys_error("mkdir '{}'", prefix);
      fd = ::openat(at, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return sys_error("open '{}'", prefix);
      Fd made(fd);
      if (::fchmod(fd, 0755) != 0) return sys_error("chmod '{}'", prefix);
      struct stat st;
      if (::fstat(fd, &st) != 0) return sys_error("stat '{}'", prefix);
      POD_TRY(record(prefix, json{{"t", "d"}, {"m", 0755}, {"u", st.st_uid}, {"g", st.st_gid}}));
      cur = std::move(made);
    } else if (fd < 0) {
      if (errno == ELOOP) return make_error(EXDEV, "its parent '{}' passes through a symlink", prefix);
      if (errno == ENOTDIR) return make_error(ENOTDIR, "its parent '{}' is not a directory", prefix);
      return sys_error("open '{}'", prefix);
    } else {
      cur = Fd(fd);
    }
    i = j + 1;
  }
  cached_parent_ = parent;
  cached_fd_ = std::move(cur);
  return cached_fd_.get();
}

// Makes room for a new entry named base in dir: whatever was there goes.
Result<void> Unpacker::clear(int dir, const std::string& base) {
  struct stat st;
  if (::fstatat(dir, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return sys_error("stat '{}'", base);
  }
  if (S_ISDIR(st.st_mode)) {
    // The cached parent may lie below the directory that goes, unless it is `dir`
    // itself (then it stays valid, and callers go on using `dir`).
    if (cached_fd_.get() != dir) {
      cached_fd_.reset();
      cached_parent_.clear();
    }
    return sys::remove_tree(FdRef::from_raw(dir), base);
  }
  if (::unlinkat(dir, base.c_str(), 0) != 0 && errno != ENOENT) return sys_error("unlink '{}'", base);
  return {};
}

Result<void> Unpacker::owner_fd(int fd, archive_entry* e) {
  if (exact()) {
    if (::fchown(fd, static_cast<uid_t>(archive_entry_uid(e)), static_cast<gid_t>(archive_entry_gid(e))) != 0)
      return sys_error("chown to {}:{}", archive_entry_uid(e), archive_entry_gid(e));
  }
  return {};
}

Result<void> Unpacker::rootless_owner(int fd, archive_entry* e) {
  if (exact()) return {};
  auto value = rootless_xattr_value(static_cast<std::uint32_t>(archive_entry_uid(e)),
                                    static_cast<std::uint32_t>(archive_entry_gid(e)));
  if (value && ::fsetxattr(fd, kRootlessXattr, value->data(), value->size(), 0) != 0)
    return sys_error("setting {}", kRootlessXattr);
  return {};
}

Result<void> Unpacker::xattrs(archive_entry* e, int fd, int dir, const std::string& base, std::string_view name) {
  return detail::apply_xattrs(e, fd, dir, base, name, !exact(), opts_.warn);
}

void Unpacker::defer_dir(archive_entry* e, std::string path) {
  DirFinish d{};
  d.depth = depth_of(path);
  d.path = std::move(path);
  d.mode = archive_entry_perm(e) & 07777;
  set_times(e, d.times, d.has_times);
  dirs_.push_back(std::move(d));
}


Result<void> Unpacker::entry(archive_entry* e) {
  const char* raw = archive_entry_pathname(e);
  if (!raw) return make_error(EINVAL, "entry {} has no name", summary.entries + 1);
  if (++summary.entries > opts_.limits.max_entries)
    return make_error(EFBIG, "entry '{}': the layer has more than {} entries (raise the limit with --max-entries)",
                      raw, opts_.limits.max_entries);
  summary.uids.insert(static_cast<std::uint32_t>(archive_entry_uid(e)));
  summary.gids.insert(static_cast<std::uint32_t>(archive_entry_gid(e)));
  std::string path = POD_TRY_CTX(normalise(raw, opts_.limits.max_depth), "entry '{}'", raw);
  const char* hl = archive_entry_hardlink(e);
  if (path.empty()) {
    if (hl || archive_entry_filetype(e) != AE_IFDIR)
      return make_error(EINVAL, "entry '{}': the root of the layer is not a directory", raw);
    auto r = root_entry(e);
    if (!r) return Unexpected(std::move(r).error().context("entry '{}'", raw));
    return {};
  }
  auto [parent, base_view] = split_parent(path);
  std::string base(base_view);
  int dir = POD_TRY_CTX(parent_dir(parent), "entry '{}'", raw);

  Result<void> r;
  if (base.starts_with(kWhiteout)) {
    if (base == kOpaque)
      r = opaque(dir, parent);
    else if (base.starts_with(kWhiteoutMeta))
      r = {};  // other AUFS metadata: nothing to make
    else
      r = whiteout(dir, parent, std::string_view(base).substr(kWhiteout.size()));
  } else if (hl) {
    r = hardlink(e, dir, base, path);
  } else {
    switch (archive_entry_filetype(e)) {
      case AE_IFDIR: r = directory(e, dir, base, path); break;
      case AE_IFREG: r = regular(e, dir, base, path); break;
      case AE_IFLNK: r = symlink(e, dir, base, path); break;
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO: r = special(e, dir, base, path); break;
      default:
        r = make_error(EINVAL, "unsupported file type {:o}", static_cast<unsigned>(archive_entry_filetype(e)));
    }
  }
  if (!r) return Unexpected(std::move(r).error().context("entry '{}'", raw));
  return {};
}

Result<void> Unpacker::root_entry(archive_entry* e) {
  Fd self(::openat(root_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!self) return sys_error("open the root");
  POD_TRY(owner_fd(self.get(), e));
  POD_TRY(xattrs(e, self.get(), -1, ".", "."));
  POD_TRY(rootless_owner(self.get(), e));
  defer_dir(e, "");
  return record("", json{{"t", "d"}, {"m", archive_entry_perm(e) & 07777}, {"u", stored_uid(e)}, {"g", stored_gid(e)}});
}

Result<void> Unpacker::directory(archive_entry* e, int dir, const std::string& base, const std::string& path) {
  // 0700 until finish(): we must be able to fill it whatever mode the image wants.
  if (::mkdirat(dir, base.c_str(), 0700) != 0) {
    if (errno != EEXIST) return sys_error("mkdir");
    struct stat st;
    if (::fstatat(dir, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return sys_error("stat");
    if (!S_ISDIR(st.st_mode)) {  // a directory over a directory keeps it; anything else goes
      POD_TRY(clear(dir, base));
      if (::mkdirat(dir, base.c_str(), 0700) != 0) return sys_error("mkdir");
    }
  }
  Fd self(::openat(dir, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!self) return sys_error("open");
  POD_TRY(owner_fd(self.get(), e));
  POD_TRY(xattrs(e, self.get(), -1, base, path));
  POD_TRY(rootless_owner(self.get(), e));
  defer_dir(e, path);
  return record(path, json{{"t", "d"}, {"m", archive_entry_perm(e) & 07777}, {"u", stored_uid(e)}, {"g", stored_gid(e)}});
}

Result<std::uint64_t> Unpacker::write_data(int fd, std::string_view name) {
  static const char kZeros[64 << 10] = {};
  auto hash_zeros = [&](std::uint64_t n) {
    while (n > 0) {
      std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(n, sizeof kZeros));
      XXH3_64bits_update(xxh_, kZeros, k);
      n -= k;
    }
  };
  std::uint64_t pos = 0;
  for (;;) {
    const void* buf = nullptr;
    std::size_t n = 0;
    la_int64_t off = 0;
    int r = archive_read_data_block(a_, &buf, &n, &off);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return Unexpected(stream_error());
    auto at = static_cast<std::uint64_t>(off);
    if (off < 0 || at < pos) return make_error(EINVAL, "the data of '{}' goes backwards", name);
    hash_zeros(at - pos);  // a hole: it reads as zeros, and stays a hole
    const char* p = static_cast<const char*>(buf);
    std::size_t left = n;
    while (left > 0) {
      ssize_t w = ::pwrite(fd, p, left, static_cast<off_t>(at + (n - left)));
      if (w < 0) {
        if (errno == EINTR) continue;
        return sys_error("write");
      }
      p += w;
      left -= static_cast<std::size_t>(w);
    }
    XXH3_64bits_update(xxh_, buf, n);
    pos = at + n;
    summary.bytes += n;
  }
  return pos;
}

Result<void> Unpacker::regular(archive_entry* e, int dir, const std::string& base, const std::string& path) {
  int fd = ::openat(dir, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST) {
    POD_TRY(clear(dir, base));
    fd = ::openat(dir, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  }
  if (fd < 0) return sys_error("create");
  Fd f(fd);
  XXH3_64bits_reset(xxh_);
  std::uint64_t end = POD_TRY(write_data(fd, path));
  std::uint64_t size = archive_entry_size_is_set(e) ? static_cast<std::uint64_t>(archive_entry_size(e)) : end;
  if (size < end) size = end;
  // A trailing hole has no data block: the size comes from truncate.
  struct stat st;
  if (::fstat(fd, &st) != 0) return sys_error("stat");
  if (static_cast<std::uint64_t>(st.st_size) != size) {
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return sys_error("truncate");
    static const char kZeros[4096] = {};
    for (std::uint64_t left = size - end; left > 0;) {
      std::size_t k = static_cast<std::size_t>(std::min<std::uint64_t>(left, sizeof kZeros));
      XXH3_64bits_update(xxh_, kZeros, k);
      left -= k;
    }
  }
  // chown first: it clears setuid/setgid bits and file capabilities, chmod and the
  // xattrs put them back.
  POD_TRY(owner_fd(fd, e));
  if (::fchmod(fd, archive_entry_perm(e) & 07777) != 0) return sys_error("chmod");
  POD_TRY(xattrs(e, fd, -1, base, path));
  POD_TRY(rootless_owner(fd, e));
  timespec ts[2];
  bool has_times;
  set_times(e, ts, has_times);
  if (has_times && ::futimens(fd, ts) != 0) return sys_error("set times");
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(XXH3_64bits_digest(xxh_)));
  return record(path, json{{"t", "f"},
                           {"m", archive_entry_perm(e) & 07777},
                           {"u", stored_uid(e)},
                           {"g", stored_gid(e)},
                           {"s", size},
                           {"h", hash}});
}

Result<void> Unpacker::symlink(archive_entry* e, int dir, const std::string& base, const std::string& path) {
  const char* target = archive_entry_symlink(e);
  if (!target) return make_error(EINVAL, "a symlink without a target");
  if (::symlinkat(target, dir, base.c_str()) != 0) {
    if (errno != EEXIST) return sys_error("symlink");
    POD_TRY(clear(dir, base));
    if (::symlinkat(target, dir, base.c_str()) != 0) return sys_error("symlink");
  }
  if (exact() && ::fchownat(dir, base.c_str(), static_cast<uid_t>(archive_entry_uid(e)),
                            static_cast<gid_t>(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW) != 0)
    return sys_error("chown to {}:{}", archive_entry_uid(e), archive_entry_gid(e));
  POD_TRY(xattrs(e, -1, dir, base, path));
  timespec ts[2];
  bool has_times;
  set_times(e, ts, has_times);
  if (has_times && ::utimensat(dir, base.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) return sys_error("set times");
  json j{{"t", "l"}, {"u", stored_uid(e)}, {"g", stored_gid(e)}};
  put_bytes(j, "l", target);
  return record(path, std::move(j));
}

Result<void> Unpacker::hardlink(archive_entry* e, int dir, const std::string& base, const std::string& path) {
  const char* raw = archive_entry_hardlink(e);
  auto target = normalise(raw, opts_.limits.max_depth);
  if (!target) return Unexpected(std::move(target).error().context("hard link target '{}'", raw));
  if (target->empty()) return make_error(EINVAL, "hard link target '{}' is the root", raw);
  if (*target == path) return {};  // a link to itself: already there
  auto [tparent, tbase_view] = split_parent(*target);
  std::string tbase(tbase_view);
  Fd tdir;
  int tfd = root_.get();
  if (!tparent.empty()) {
    auto opened = sys::open_in(root_, tparent, O_PATH | O_DIRECTORY, Resolve::beneath_no_symlinks);
    if (!opened) {
      int code = opened.error().code;
      if (code == ELOOP || code == EXDEV)
        return make_error(EXDEV, "hard link target '{}' passes through a symlink", raw);
      return make_error(EINVAL, "hard link target '{}' is not a file of this layer", raw);
    }
    tdir = std::move(*opened);
    tfd = tdir.get();
  }
  struct stat st;
  if (::fstatat(tfd, tbase.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return make_error(EINVAL, "hard link target '{}' is not a file of this layer", raw);
  if (!S_ISREG(st.st_mode)) return make_error(EINVAL, "hard link target '{}' is not a regular file", raw);
  if (::linkat(tfd, tbase.c_str(), dir, base.c_str(), 0) != 0) {
    if (errno != EEXIST) return sys_error("link to '{}'", raw);
    POD_TRY(clear(dir, base));
    if (::linkat(tfd, tbase.c_str(), dir, base.c_str(), 0) != 0) return sys_error("link to '{}'", raw);
  }
  json j{{"t", "h"}};
  put_bytes(j, "l", *target);
  return record(path, std::move(j));
}

Result<void> Unpacker::special(archive_entry* e, int dir, const std::string& base, const std::string& path) {
  auto type = archive_entry_filetype(e);
  dev_t rdev = type == AE_IFIFO ? 0
                                 : makedev(static_cast<unsigned>(archive_entry_rdevmajor(e)),
                                           static_cast<unsigned>(archive_entry_rdevminor(e)));
  auto make = [&] {
    return type == AE_IFIFO ? ::mkfifoat(dir, base.c_str(), 0600)
                            : ::mknodat(dir, base.c_str(), static_cast<mode_t>(type) | 0600, rdev);
  };
  int rc = make();
  if (rc != 0 && errno == EEXIST) {
    POD_TRY(clear(dir, base));
    rc = make();
  }
  if (rc != 0) {
    if (errno == EPERM && type != AE_IFIFO) {
      warn(fmt::format("entry '{}': skipping device node (not permitted to create it here)", path));
      ++summary.skipped_devices;
      return {};
    }
    return sys_error("{}", type == AE_IFIFO ? "mkfifo" : "mknod");
  }
  if (exact() && ::fchownat(dir, base.c_str(), static_cast<uid_t>(archive_entry_uid(e)),
                            static_cast<gid_t>(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW) != 0)
    return sys_error("chown to {}:{}", archive_entry_uid(e), archive_entry_gid(e));
  // Opening a device to fchmod it could have side effects: the name was made by us
  // just now, in a directory only we write to.
  if (::fchmodat(dir, base.c_str(), archive_entry_perm(e) & 07777, 0) != 0) return sys_error("chmod");
  POD_TRY(xattrs(e, -1, dir, base, path));
  timespec ts[2];
  bool has_times;
  set_times(e, ts, has_times);
  if (has_times && ::utimensat(dir, base.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) return sys_error("set times");
  const char* t = type == AE_IFIFO ? "p" : type == AE_IFCHR ? "c" : "b";
  return record(path, json{{"t", t},
                           {"m", archive_entry_perm(e) & 07777},
                           {"u", stored_uid(e)},
                           {"g", stored_gid(e)},
                           {"r", static_cast<std::uint64_t>(rdev)}});
}

// ".wh.NAME": NAME is hidden from the layers below, an overlayfs whiteout (0:0 char
// device; mknod of it is allowed in user namespaces since Linux 5.8).
Result<void> Unpacker::whiteout(int dir, std::string_view parent, std::string_view name) {
  if (name.empty() || name == "." || name == "..")
    return make_error(EINVAL, "a whiteout of '{}' names nothing", name);
  std::string base(name);
  if (::mknodat(dir, base.c_str(), S_IFCHR, makedev(0, 0)) != 0) {
    if (errno != EEXIST) return sys_error("mknod of the whiteout '{}'", name);
    POD_TRY(clear(dir, base));
    if (::mknodat(dir, base.c_str(), S_IFCHR, makedev(0, 0)) != 0) return sys_error("mknod of the whiteout '{}'", name);
  }
  return record(join(parent, name), json{{"t", "w"}});
}

Result<void> Unpacker::opaque(int dir, std::string_view parent) {
  const char* key = opts_.overlay_xattrs == OverlayXattrs::trusted ? "trusted.overlay.opaque" : "user.overlay.opaque";
  Fd self(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!self) return sys_error("open '{}'", parent);
  if (::fsetxattr(self.get(), key, "y", 1, 0) != 0) return sys_error("setting {} on '{}'", key, parent);
  return record(std::string(parent), json{{"t", "o"}, {"x", key}});
}

Result<void> Unpacker::finish() {
  // Deepest first: a parent's mode may shut us out of its children.
  std::stable_sort(dirs_.begin(), dirs_.end(), [](const DirFinish& a, const DirFinish& b) { return a.depth > b.depth; });
  for (auto& d : dirs_) {
    auto fd = sys::open_in(root_, d.path.empty() ? std::string_view(".") : std::string_view(d.path),
                           O_RDONLY | O_DIRECTORY, Resolve::beneath_no_symlinks);
    if (!fd) {
      int code = fd.error().code;
      if (code == ENOENT || code == ENOTDIR || code == ELOOP) continue;  // replaced by a later entry
      return Unexpected(std::move(fd).error());
    }
    if (::fchmod(fd->get(), d.mode) != 0) return sys_error("chmod '{}'", d.path);
    if (d.has_times && ::futimens(fd->get(), d.times) != 0) return sys_error("set times of '{}'", d.path);
  }
  return flush();
}

}  // namespace

Result<TreeSummary> unpack_layer(FdRef blob, FdRef root, FdRef file_list, const UnpackOptions& opts) {
  detail::Decompressor dec(blob, opts);
  std::unique_ptr<archive, decltype(&archive_read_free)> a(archive_read_new(), &archive_read_free);
  if (!a) return make_error(ENOMEM, "archive_read_new");
  archive_read_support_filter_none(a.get());
  archive_read_support_format_tar(a.get());
  Reader reader{&dec};
  auto give_back = [&] { dec.release(std::exchange(reader.current, nullptr)); };
  Unpacker u(a.get(), root, file_list, opts, dec);
  auto fail = [&](std::string_view name) {
    Error err = u.stream_error("after entry", name);
    give_back();
    return Unexpected(std::move(err));
  };
  if (archive_read_open(a.get(), &reader, nullptr, pull, nullptr) != ARCHIVE_OK) return fail("");
  std::string last;
  for (;;) {
    archive_entry* e = nullptr;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return fail(last);
    if (const char* n = archive_entry_pathname(e)) last = n;
    auto done = u.entry(e);
    if (!done) {
      give_back();
      return Unexpected(std::move(done).error());
    }
  }
  give_back();
  POD_TRY(u.finish());
  TreeSummary s = std::move(u.summary);
  s.diff_id = POD_TRY(dec.finish());
  if (opts.expected_diff_id && *opts.expected_diff_id != s.diff_id)
    return make_error(EINVAL, "layer content does not match diff_id {} (got {})", opts.expected_diff_id->str(),
                      s.diff_id.str());
  return s;
}

}  // namespace pod::cas
