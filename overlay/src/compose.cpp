// compose(): an overlay built with fsopen/fsconfig/fsmount, left detached. Layers go in
// as fds where the kernel takes them (6.13), else as /proc/self/fd paths through
// "lowerdir+" (6.8), else in the legacy "lowerdir=" string.
#include "pod/overlay/compose.hpp"

#include <sys/mount.h>
#include <unistd.h>

#include <sys/stat.h>

#include <atomic>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pod/sys/fs.hpp"
#include "pod/sys/mountinfo.hpp"

#include "pod/overlay/fs_context.hpp"

namespace pod::overlay {

using sys::Fd;
using sys::FdRef;
using sys::Result;

namespace {

std::atomic<LayerSpec> forced{LayerSpec::automatic};

// fsconfig takes string values of at most 255 bytes (strndup_user(value, 256)).
constexpr std::size_t kMaxFsconfigString = 255;

std::string proc_path(FdRef fd) { return fmt::format("/proc/self/fd/{}", fd.get()); }

// Adds one directory under `key` ("lowerdir+", "upperdir", "workdir") as `spec` says.
Result<void> set_dir(FsContext& fs, const char* key, FdRef dir, LayerSpec spec) {
  if (spec == LayerSpec::fd) return fs.set_fd(key, dir);
  return fs.set_string(key, proc_path(dir));
}

// The first spec, in fallback order, that the kernel takes for the top layer.
Result<LayerSpec> add_top_layer(FsContext& fs, FdRef top) {
  LayerSpec want = forced.load();
  if (want == LayerSpec::legacy) return LayerSpec::legacy;
  if (want != LayerSpec::automatic) {
    POD_TRY(set_dir(fs, "lowerdir+", top, want));
    return want;
  }
  auto r = set_dir(fs, "lowerdir+", top, LayerSpec::fd);
  if (r) return LayerSpec::fd;
  // Before Linux 6.5 overlayfs has only the mount-option interface: fds are refused
  // (EOPNOTSUPP), and any string, "lowerdir+" too, is taken now and refused only at
  // create. So straight to the legacy option there.
  if (r.error().code == EOPNOTSUPP) return LayerSpec::legacy;
  if (r.error().code != EINVAL) return sys::Unexpected(std::move(r).error());
  r = set_dir(fs, "lowerdir+", top, LayerSpec::proc_path);
  if (r) return LayerSpec::proc_path;
  if (r.error().code != EINVAL) return sys::Unexpected(std::move(r).error());
  return LayerSpec::legacy;  // no "lowerdir+" before Linux 6.8
}

// lowers: top layer first.
Result<LayerSpec> add_lowers(FsContext& fs, const std::vector<FdRef>& lowers) {
  LayerSpec spec = POD_TRY_CTX(add_top_layer(fs, lowers[0]), "adding the top layer");
  if (spec != LayerSpec::legacy) {
    for (std::size_t i = 1; i < lowers.size(); ++i)
      POD_TRY_CTX(set_dir(fs, "lowerdir+", lowers[i], spec), "adding layer {} of {} (from the top)", i + 1,
                  lowers.size());
    return spec;
  }
  std::string value;
  for (FdRef l : lowers) value += (value.empty() ? "" : ":") + proc_path(l);
  if (value.size() > kMaxFsconfigString)
    return sys::make_error(E2BIG,
                           "too many layers for the legacy lowerdir option ({} layers, {} bytes > {}); "
                           "this kernel lacks \"lowerdir+\" (Linux 6.8)",
                           lowers.size(), value.size(), kMaxFsconfigString);
  POD_TRY_CTX(fs.set_string("lowerdir", value), "adding {} layers as \"lowerdir=\"", lowers.size());
  return spec;
}

std::optional<std::uint64_t> mount_id(int fd) {
  struct statx stx {};
  if (::statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) != 0) return std::nullopt;
  if (!(stx.stx_mask & STATX_MNT_ID)) return std::nullopt;
  return stx.stx_mnt_id;
}

std::set<std::uint64_t> own_mount_ids() {
  std::set<std::uint64_t> ids;
  auto mounts = sys::read_mountinfo();
  if (!mounts) return ids;
  for (const auto& m : *mounts) ids.insert(m.id);
  return ids;
}

// overlayfs clones each layer's mount, which it refuses (EINVAL) for a mount of another
// mount namespace: a directory opened before unshare(CLONE_NEWNS). Such a directory is
// reopened by its path in ours, when that leads to the same inode. Detached mounts
// (idmapped layers) are in no namespace and stay as they are. Invalid Fd: keep `fd`.
Fd reopen_here(FdRef fd, const std::set<std::uint64_t>& ours) {
  auto id = mount_id(fd.get());
  if (!id || ours.contains(*id)) return {};
  char buf[4096];
  ssize_t n = ::readlink(proc_path(fd).c_str(), buf, sizeof buf - 1);
  if (n <= 0 || buf[0] != '/') return {};
  buf[n] = 0;
  Fd again(::open(buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  struct stat a {}, b {};
  if (!again || ::fstat(fd.get(), &a) != 0 || ::fstat(again.get(), &b) != 0) return {};
  auto again_id = mount_id(again.get());
  if (a.st_dev != b.st_dev || a.st_ino != b.st_ino || !again_id || !ours.contains(*again_id)) return {};
  return again;
}

// The fds to give overlayfs: `refs` with those of another mount namespace replaced.
std::vector<FdRef> in_own_namespace(std::vector<FdRef> refs, std::vector<Fd>& keep) {
  auto ours = own_mount_ids();
  if (ours.empty()) return refs;
  for (FdRef& r : refs)
    if (Fd again = reopen_here(r, ours)) {
      r = FdRef(again);
      keep.push_back(std::move(again));
    }
  return refs;
}

// A read-only bind of one directory (overlayfs wants two lowers when it has no upper).
Result<Fd> read_only_bind(FdRef dir) {
  Fd m(::open_tree(dir.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH));
  if (!m) return sys::sys_error("open_tree: cloning the only layer");
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV;
  if (::mount_setattr(m.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0)
    return sys::sys_error("mount_setattr: making the only layer read-only");
  return m;
}

}  // namespace

void force_layer_spec(LayerSpec spec) { forced.store(spec); }

Result<Fd> compose(std::span<const FdRef> lowers, FdRef upper, FdRef work, const ComposeOptions& options) {
  if (lowers.empty()) return sys::make_error(EINVAL, "composing a root filesystem: no layers");
  std::vector<Fd> reopened;
  if (options.read_only && lowers.size() == 1) return read_only_bind(in_own_namespace({lowers[0]}, reopened)[0]);
  std::vector<FdRef> top_first(lowers.rbegin(), lowers.rend());
  if (!options.read_only) {
    top_first.push_back(upper);
    top_first.push_back(work);
  }
  top_first = in_own_namespace(std::move(top_first), reopened);
  if (!options.read_only) {
    work = top_first.back();
    top_first.pop_back();
    upper = top_first.back();
    top_first.pop_back();
  }
  FsContext fs = POD_TRY_CTX(FsContext::open("overlay"), "composing a root filesystem");
  LayerSpec spec = POD_TRY_CTX(add_lowers(fs, top_first), "composing a root filesystem of {} layers",
                               lowers.size());
  if (!options.read_only) {
    LayerSpec dirs = spec == LayerSpec::fd ? LayerSpec::fd : LayerSpec::proc_path;
    POD_TRY_CTX(set_dir(fs, "upperdir", upper, dirs), "composing a root filesystem: the upper directory");
    POD_TRY_CTX(set_dir(fs, "workdir", work, dirs), "composing a root filesystem: the work directory");
  }
  if (options.userxattr) POD_TRY_CTX(fs.set_flag("userxattr"), "composing a root filesystem");
  if (options.metacopy) POD_TRY_CTX(fs.set_string("metacopy", "on"), "composing a root filesystem");
  if (options.volatile_upper && !options.read_only)
    if (auto v = fs.set_flag("volatile"); !v && v.error().code != EINVAL)  // EINVAL: before Linux 5.10
      return sys::Unexpected(std::move(v.error()).context("composing a root filesystem"));
  POD_TRY_CTX(fs.create(), "composing a root filesystem of {} layers", lowers.size());
  // nodev: the pod gets its own /dev. Not nosuid: setuid files of the image work as
  // they would in the image, for ids of the pod's user namespace.
  unsigned attrs = MOUNT_ATTR_NODEV | (options.read_only ? MOUNT_ATTR_RDONLY : 0u);
  return POD_TRY_CTX(fs.mount(attrs), "composing a root filesystem");
}

}  // namespace pod::overlay
