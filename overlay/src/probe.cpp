// run_probes(): each probe tries the real thing in a forked child, so the caller's
// namespaces, mounts and credentials stay as they were. The child sends back one
// Probe through a pipe and exits. Callers are single-threaded (the pod command).
#include "pod/overlay/probe.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>

#include "pod/overlay/fs_context.hpp"
#include "pod/idmap/mount.hpp"
#include "pod/idmap/namespace.hpp"
#include "pod/overlay/compose.hpp"
#include "pod/sys/fs.hpp"

namespace pod::overlay {

using sys::Fd;
using sys::FdRef;

namespace {

// The probe's directories, made by the caller before any child runs. A child opens
// them by path after entering its namespaces: overlayfs clones each layer's mount
// privately, which only works for mounts of the caller's own mount namespace.
struct Scratch {
  Fd base, l1, l2, u1, w1, u2, w2;
};
constexpr const char* kDirs[] = {"l1", "l2", "u1", "w1", "u2", "w2"};

sys::Result<Scratch> open_scratch(const std::string& path) {
  Scratch s;
  s.base = POD_TRY(sys::open_dir(FdRef::cwd(), path));
  Fd* fds[] = {&s.l1, &s.l2, &s.u1, &s.w1, &s.u2, &s.w2};
  for (std::size_t i = 0; i < std::size(kDirs); ++i) *fds[i] = POD_TRY(sys::open_dir(s.base, kDirs[i]));
  return s;
}

Probe fail(const sys::Error& e, std::string_view meaning = {}) {
  std::string d = e.what();
  if (!meaning.empty()) d = std::string(meaning) + " (" + d + ")";
  return {false, d};
}

// Runs `fn` in a child and returns its Probe; a crashed child is a failed probe.
Probe in_child(const std::function<Probe()>& fn) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return {false, fmt::format("pipe: {}", std::strerror(errno))};
  Fd rd(p[0]), wr(p[1]);
  pid_t pid = ::fork();
  if (pid < 0) return {false, fmt::format("fork: {}", std::strerror(errno))};
  if (pid == 0) {
    rd.reset();
    Probe r = fn();
    std::string msg = (r.ok ? "1" : "0") + r.detail;
    (void)sys::write_all(wr, msg);
    ::_exit(0);
  }
  wr.reset();
  auto msg = sys::read_fd(rd, 1 << 16);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!msg || msg->empty()) {
    if (WIFSIGNALED(st)) return {false, fmt::format("the probe died of signal {}", WTERMSIG(st))};
    return {false, "the probe ended without a result"};
  }
  return {(*msg)[0] == '1', msg->substr(1)};
}

// Writes one /proc/self file (uid_map and friends).
sys::Result<void> write_self(const char* file, const std::string& text) {
  Fd f = POD_TRY(sys::open_at(FdRef::cwd(), fmt::format("/proc/self/{}", file), O_WRONLY));
  return sys::write_all(f, text);
}

// For an ordinary user: a user namespace mapping only the caller's own ids, and a
// mount namespace owned by it, as `unshare -r -m` makes. Root stays where it is.
sys::Result<void> enter_self_userns(bool even_root = false) {
  if (::geteuid() == 0 && !even_root) return {};
  uid_t uid = ::geteuid();
  gid_t gid = ::getegid();
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return sys::sys_error("unshare(CLONE_NEWUSER|CLONE_NEWNS)");
  POD_TRY(write_self("setgroups", "deny"));
  POD_TRY(write_self("uid_map", fmt::format("0 {} 1\n", uid)));
  POD_TRY(write_self("gid_map", fmt::format("0 {} 1\n", gid)));
  return {};
}

std::string fs_name(FdRef dir) {
  struct statfs s {};
  if (::fstatfs(dir.get(), &s) != 0) return "the store's filesystem";
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0xEF53: return "ext4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs";
    case 0x794C7630: return "overlayfs";
    case 0x6969: return "nfs";
    case 0x65735546: return "fuse";
    case 0x2FC12FC1: return "zfs";
    default: return fmt::format("filesystem type {:#x}", static_cast<unsigned long>(s.f_type));
  }
}

// A user namespace to idmap with: for root a range off the host's ids; for a user
// (inside its own namespace, see enter_self_userns) its namespace's root.
sys::Result<idmap::UserNamespace> idmap_userns(bool host_root) {
  idmap::IdMap m;
  m.extents.push_back(host_root ? idmap::Extent{0, 100000, 65536} : idmap::Extent{0, 0, 1});
  return idmap::UserNamespace::create(m, m);
}

Probe probe_userns() {
  if (::unshare(CLONE_NEWUSER) == 0) return {true, "unshare(CLONE_NEWUSER) works"};
  int err = errno;
  sys::Error e{err, "unshare(CLONE_NEWUSER)"};
  if (err == ENOSPC) return fail(e, "the limit of user namespaces is reached (user.max_user_namespaces)");
  return fail(e, "user namespaces are disabled for this user (sysctl, seccomp or an LSM)");
}

Probe probe_overlay_in_userns(const std::string& path) {
  if (auto r = enter_self_userns(true); !r) return fail(r.error(), "no user namespace");
  auto s = open_scratch(path);
  if (!s) return fail(s.error());
  FdRef lowers[] = {s->l1, s->l2};
  auto m = compose(lowers, s->u1, s->w1, {.userxattr = true});
  if (!m) return fail(m.error(), "overlayfs cannot be mounted in a user namespace (Linux 5.11+, userxattr)");
  return {true, "an overlay with userxattr mounts in a user namespace"};
}

Probe probe_idmapped_store(const std::string& path) {
  bool root = ::geteuid() == 0;
  if (auto r = enter_self_userns(); !r) return fail(r.error(), "no user namespace");
  auto s = open_scratch(path);
  if (!s) return fail(s.error());
  auto ns = idmap_userns(root);
  if (!ns) return fail(ns.error(), "cannot make a user namespace to idmap with");
  auto m = idmap::idmapped_mount(s->base, ns->fd());
  std::string fs = fs_name(s->base);
  if (m) return {true, fmt::format("idmapped mounts work on {}", fs)};
  // The library's message lists every cause of EPERM; here the cause is known.
  if (m.error().code == EPERM)
    return {false, fmt::format("not privileged over the filesystem of the store ({} belongs to the host's user "
                               "namespace; idmapped mounts of it need root) (EPERM)",
                               fs)};
  if (m.error().code == EINVAL) return fail(m.error(), fmt::format("{} has no idmapped mounts", fs));
  return fail(m.error());
}

Probe probe_overlay_over_idmapped(const std::string& path) {
  bool root = ::geteuid() == 0;
  if (auto r = enter_self_userns(); !r) return fail(r.error(), "no user namespace");
  auto s = open_scratch(path);
  if (!s) return fail(s.error());
  auto ns = idmap_userns(root);
  if (!ns) return fail(ns.error(), "cannot make a user namespace to idmap with");
  auto lower = idmap::idmapped_mount(s->l1, ns->fd());
  if (!lower) {
    if (lower.error().code == EPERM)
      return {false, "needs an idmapped mount of the store's filesystem, which needs root over it (EPERM)"};
    return fail(lower.error(), "needs an idmapped mount of the store's filesystem");
  }
  FdRef lowers[] = {s->l2, *lower};
  auto m = compose(lowers, s->u2, s->w2, {.userxattr = !root});
  if (!m) return fail(m.error(), "overlayfs refuses an idmapped lower layer (Linux 5.19+)");
  return {true, "an overlay takes idmapped lower layers"};
}

Probe probe_lowerdir_plus(const std::string& path) {
  if (auto r = enter_self_userns(); !r) return fail(r.error(), "no user namespace");
  auto s = open_scratch(path);
  if (!s) return fail(s.error());
  auto fs = FsContext::open("overlay");
  if (!fs) return fail(fs.error());
  if (fs->set_fd("lowerdir+", s->l1)) return {true, "\"lowerdir+\" takes layer fds (Linux 6.13+)"};
  if (fs->set_string("lowerdir+", fmt::format("/proc/self/fd/{}", s->l1.get())))
    return {true, "\"lowerdir+\" takes layer paths (Linux 6.8+), not fds"};
  return {false, "no \"lowerdir+\" (Linux 6.8+): layers go in one \"lowerdir=\" string of at most 255 bytes"};
}

// A lower layer of one metadata-only file over a layer with its data, read through the
// overlay: what the chown engine's metacopy entries need.
Probe probe_metacopy_lowers(const std::string& path) {
  if (::geteuid() != 0) return {false, "metadata-only layers are marked with trusted.* xattrs, which need root"};
  auto s = open_scratch(path);
  if (!s) return fail(s.error());
  // The data layer and the metadata-only layer above it.
  auto made = [&]() -> sys::Result<std::pair<Fd, Fd>> {
    POD_TRY(sys::ensure_dir(s->base, "md", 0755));
    POD_TRY(sys::ensure_dir(s->base, "mm", 0755));
    Fd file = POD_TRY(sys::open_at(s->base, "md/f", O_WRONLY | O_CREAT | O_EXCL, 0644));
    POD_TRY(sys::write_all(file, "pod"));
    Fd meta = POD_TRY(sys::open_at(s->base, "mm/f", O_WRONLY | O_CREAT | O_EXCL, 0644));
    if (::ftruncate(meta.get(), 3) != 0) return sys::sys_error("ftruncate");
    if (::fsetxattr(meta.get(), "trusted.overlay.metacopy", "", 0, 0) != 0)
      return sys::sys_error("setting trusted.overlay.metacopy");
    return std::pair{POD_TRY(sys::open_dir(s->base, "md")), POD_TRY(sys::open_dir(s->base, "mm"))};
  }();
  if (!made) return fail(made.error(), "cannot make a metadata-only file on the store's filesystem");
  auto& [data, meta] = *made;
  FdRef lowers[] = {data, meta};
  auto m = compose(lowers, s->u1, s->w1, {.read_only = true, .metacopy = true});
  if (!m) return fail(m.error(), "overlayfs refuses metacopy=on (Linux 4.19+)");
  auto text = sys::read_file(*m, "f", 16);
  if (!text) return fail(text.error(), "overlayfs does not find the data of a metadata-only lower file");
  if (*text != "pod") return {false, "overlayfs reads the wrong data for a metadata-only lower file"};
  return {true, "overlayfs reads metadata-only lower files from the layer below (metacopy=on)"};
}

// Makes the scratch directories in `parent`; returns their absolute path.
sys::Result<std::string> make_scratch(FdRef parent, std::string& name) {
  name = POD_TRY(sys::make_temp_dir(parent, "probe-"));
  Fd base = POD_TRY(sys::open_dir(parent, name));
  for (const char* d : kDirs) POD_TRY(sys::ensure_dir(base, d, 0755));
  // A file in each lower: overlayfs checks the layers, not only their names.
  POD_TRY(sys::open_at(base, "l1/a", O_WRONLY | O_CREAT | O_EXCL, 0644));
  POD_TRY(sys::open_at(base, "l2/b", O_WRONLY | O_CREAT | O_EXCL, 0644));
  return POD_TRY_CTX(sys::fd_path(base), "finding the path of the scratch directory");
}

}  // namespace

Probes run_probes(FdRef scratch) {
  Probes p;
  if (auto id = sys::read_file(FdRef::cwd(), "/proc/sys/kernel/random/boot_id", 64)) {
    p.boot_id = *id;
    while (!p.boot_id.empty() && p.boot_id.back() == '\n') p.boot_id.pop_back();
  }
  p.userns = in_child(probe_userns);
  std::string name;
  auto path = make_scratch(scratch, name);
  if (!path) {
    Probe no = fail(std::move(path.error()).context("making the probe's scratch directory"));
    p.overlay_in_userns = p.idmapped_store = p.overlay_over_idmapped = p.lowerdir_plus = p.metacopy_lowers = no;
  } else {
    p.overlay_in_userns = in_child([&] { return probe_overlay_in_userns(*path); });
    p.idmapped_store = in_child([&] { return probe_idmapped_store(*path); });
    p.overlay_over_idmapped = in_child([&] { return probe_overlay_over_idmapped(*path); });
    p.lowerdir_plus = in_child([&] { return probe_lowerdir_plus(*path); });
    p.metacopy_lowers = in_child([&] { return probe_metacopy_lowers(*path); });
  }
  // Overlayfs leaves a mode 000 directory in each work dir: an ordinary user removes
  // the scratch as root of its own user namespace.
  if (!name.empty())
    (void)in_child([&] {
      if (auto r = enter_self_userns(); !r) return fail(r.error());
      auto r = sys::remove_tree(scratch, name);
      return r ? Probe{true, ""} : fail(r.error());
    });
  return p;
}

}  // namespace pod::overlay
