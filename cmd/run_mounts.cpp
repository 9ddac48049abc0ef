// The pod's files and mounts: upper and work directories, shifted or idmapped layers,
// the overlay, volumes, and the spec handed to the runtime.
#include <fcntl.h>
#include <linux/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <optional>
#include <span>

#include <fmt/format.h>

#include "context.hpp"
#include "pod/idmap/mount.hpp"
#include "pod/shift/cache.hpp"
#include "pod/sys/fs.hpp"
#include "run_setup.hpp"

namespace pod::cmd {

namespace {

std::string now_rfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

sys::Result<sys::Fd> clone_tree(sys::FdRef dir) {
  int fd = static_cast<int>(
      ::syscall(SYS_open_tree, dir.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE));
  if (fd < 0) return sys::sys_error("open_tree");
  return sys::Fd(fd);
}

bool whiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == 0; }

bool opaque(int dir) {
  char v = 0;
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"})
    if (::fgetxattr(dir, name, &v, 1) == 1 && v == 'y') return true;
  return false;
}

// The image's /etc as overlayfs shows it: the top layer's, unless a layer above hides
// it. Its attributes and whether etc/NAME is in the merged view.
struct MergedEtc {
  struct stat st {};
  std::vector<bool> present;
};
std::optional<MergedEtc> merged_etc(const std::vector<sys::Fd>& lowers, std::span<const char* const> names) {
  std::optional<MergedEtc> etc;
  std::vector<bool> decided(names.size());
  for (auto l = lowers.rbegin(); l != lowers.rend(); ++l) {
    struct stat st {};
    if (::fstatat(l->get(), "etc", &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISDIR(st.st_mode)) break;  // a whiteout, file or symlink hides all below
    auto dir = sys::open_at(*l, "etc", O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!dir) break;
    if (!etc) etc = MergedEtc{st, std::vector<bool>(names.size())};
    for (std::size_t k = 0; k < names.size(); ++k) {
      struct stat f {};
      if (decided[k] || ::fstatat(dir->get(), names[k], &f, AT_SYMLINK_NOFOLLOW) != 0) continue;
      decided[k] = true;
      etc->present[k] = !whiteout(f);
    }
    if (opaque(dir->get())) break;
  }
  return etc;
}

// --shift none under a map of the pod's own: the image's /etc keeps an owner outside the
// pod's map, so the pod's root cannot make the mount points of /etc/hostname, hosts and
// resolv.conf the image lacks. Made here in the upper directory instead, under an etc/
// with the image's owner and mode, as overlayfs's copy-up would make it.
// (resolv.conf only with a network: --net none mounts none, and the image's stays.)
sys::Result<void> make_etc_mount_points(const std::vector<sys::Fd>& lowers, sys::FdRef upper, uid_t uid, gid_t gid,
                                        bool resolv_conf) {
  static constexpr const char* kAll[] = {"hostname", "hosts", "resolv.conf"};
  std::span<const char* const> kNames(kAll, resolv_conf ? 3 : 2);
  auto etc = merged_etc(lowers, kNames);
  if (!etc || std::find(etc->present.begin(), etc->present.end(), false) == etc->present.end()) return {};
  sys::Fd dir = POD_TRY_CTX(made_dir(upper, "etc", etc->st.st_mode & 07777), "the upper directory's etc/");
  if (::fchown(dir.get(), etc->st.st_uid, etc->st.st_gid) != 0 || ::fchmod(dir.get(), etc->st.st_mode & 07777) != 0)
    return sys::sys_error("giving the upper directory's etc/ the image's owner and mode");
  for (std::size_t k = 0; k < kNames.size(); ++k) {
    if (etc->present[k]) continue;
    auto f = sys::open_at(dir, kNames[k], O_WRONLY | O_CREAT | O_NOFOLLOW, 0644);
    if (!f || ::fchown(f->get(), uid, gid) != 0)
      return sys::sys_error("making the mount point /etc/{} in the upper directory", kNames[k]);
  }
  return {};
}

}  // namespace

std::uint32_t view_of(const idmap::IdMap& m, std::uint32_t inner) {
  for (const auto& e : m.extents)
    if (inner >= e.inner && inner - e.inner < e.count) return e.outer + (inner - e.inner);
  return 65534;
}

sys::Result<sys::Fd> made_dir(sys::FdRef dir, std::string_view name, mode_t mode) {
  POD_TRY(sys::ensure_dir(dir, name, mode));
  return sys::open_dir(dir, name);
}

runtime::PodRecord record_for(const Plan& plan) {
  runtime::PodRecord r;
  r.uuid = plan.uuid;
  r.name = plan.name;
  r.hostname = plan.hostname;
  r.created = now_rfc3339();
  for (const auto& a : plan.apps) {
    runtime::AppRecord ar;
    ar.app = a.app;
    ar.image = a.image;
    ar.image_digest = a.image_digest;
    r.apps.push_back(std::move(ar));
  }
  r.uids = plan.maps.host.uids;
  r.gids = plan.maps.host.gids;
  r.userns = plan.maps.policy;
  r.lease = plan.maps.lease ? plan.maps.lease->name : "";
  r.shift = runtime::engine_name(plan.engine.engine);
  r.rootless = plan.maps.rootless;
  return r;
}

std::string app_dir_suffix(const Plan& plan, std::size_t app) {
  return app == 0 ? std::string() : "-" + plan.apps[app].app.name;
}

sys::Result<PodFiles> make_pod_files(sys::FdRef pod_dir, const Plan& plan) {
  PodFiles f;
  // The merged root directory takes its owner from the upper one: the pod's root.
  std::uint32_t uid = view_of(plan.maps.view.uids, 0), gid = view_of(plan.maps.view.gids, 0);
  // --disk-space on a filesystem of the pod's own: the writable layers live on it.
  using runtime::DiskKind;
  sys::Fd disk;
  sys::FdRef base = pod_dir;
  if (plan.disk && plan.disk->how.kind != DiskKind::project) {
    disk = POD_TRY_CTX(runtime::mount_pod_disk(pod_dir, plan.disk->how.kind, plan.disk->bytes, uid, gid),
                       "--disk-space");
    base = disk;
  }
  for (std::size_t i = 0; i < plan.apps.size(); ++i) {
    std::string suffix = app_dir_suffix(plan, i);
    AppFiles a;
    a.upper = POD_TRY(made_dir(base, "upper" + suffix, 0755));
    a.work = POD_TRY(made_dir(base, "work" + suffix, 0700));
    a.copy = POD_TRY(made_dir(base, "copy" + suffix, 0755));
    for (sys::FdRef d : {sys::FdRef(a.upper), sys::FdRef(a.copy)})
      if (::fchownat(d.get(), "", uid, gid, AT_EMPTY_PATH) != 0)
        return sys::sys_error("giving the pod's upper directory to its root ({}:{})", uid, gid);
    f.apps.push_back(std::move(a));
  }
  if (plan.disk && plan.disk->how.kind == DiskKind::project) {
    std::vector<sys::FdRef> dirs;
    for (const auto& a : f.apps) dirs.insert(dirs.end(), {a.upper, a.work, a.copy});
    POD_TRY_CTX(runtime::limit_by_project(dirs, plan.disk->bytes, plan.uuid), "--disk-space");
  }
  f.rootfs = POD_TRY(made_dir(pod_dir, "rootfs", 0755));
  return f;
}

sys::Result<RootfsSources> prepare_sources(const cas::Store& store, std::vector<ImageLayers>& images, const Plan& plan,
                                           std::vector<std::string>& shift_keys) {
  RootfsSources s;
  sys::Fd shifted;
  if (plan.engine.engine == runtime::Engine::chown) shifted = POD_TRY(made_dir(store.dir(), "shifted", 0700));
  // Files in the store carry the image's ids as the store keeps them; the pod's files
  // must carry them as the pod's map says, over the same inner ranges.
  runtime::RootfsMaps maps;
  maps.stored = {inner_identity(plan.maps.view.uids), inner_identity(plan.maps.view.gids)};
  maps.pod = plan.maps.view;
  for (auto& img : images) {
    s.lowers.push_back(POD_TRY(runtime::prepare_lowers(img.layers, plan.engine, maps, shifted, plan.uuid,
                                                       shift_keys)));
    std::vector<runtime::Layer> layers;
    for (const auto& l : img.layers)
      layers.push_back({POD_TRY(sys::open_at(l.root, ".", O_RDONLY | O_DIRECTORY)), l.digest});
    s.layers.push_back(std::move(layers));
  }
  return s;
}

sys::Result<std::vector<VolumeSource>> open_volumes(const std::vector<VolumeArg>& volumes) {
  std::vector<VolumeSource> out;
  for (const auto& v : volumes) {
    auto fd = sys::open_at(sys::FdRef::cwd(), v.source, O_PATH);
    if (!fd) return std::unexpected(std::move(fd.error()).context("volume source '{}'", v.source));
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) return sys::sys_error("volume source '{}'", v.source);
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
      return sys::make_error(EINVAL, "volume source '{}' is neither a directory nor a regular file", v.source);
    std::string resolved = POD_TRY_CTX(sys::fd_path(*fd), "volume source '{}'", v.source);
    out.push_back({v, std::move(*fd), S_ISDIR(st.st_mode), std::move(resolved)});
  }
  return out;
}

runtime::PodSpec pod_spec(const Plan& plan, const PodFiles& files, const runtime::PodDir& pd) {
  runtime::PodSpec spec;
  spec.uuid = plan.uuid;
  spec.name = plan.name;
  spec.hostname = plan.hostname;
  for (const auto& a : plan.apps) spec.apps.push_back(a.app);
  spec.new_userns = plan.maps.new_userns;
  spec.uids = plan.maps.view.uids;
  spec.gids = plan.maps.view.gids;
  spec.private_time = plan.private_time;
  spec.net = plan.net_request.mode;
  spec.etc_hosts = fmt::format("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n",
                               plan.hostname);
  if (spec.net == runtime::NetMode::host) {
    if (auto r = sys::read_file(sys::FdRef::cwd(), "/etc/resolv.conf", 1 << 20)) spec.etc_resolv_conf = *r;
  }
  spec.pod_dir = pd.dir();
  spec.lock_fd = pd.lock_fd().get();
  spec.rootfs_dir = files.rootfs;
  return spec;
}

sys::Result<std::vector<runtime::AppMounts>> mount_apps(RootfsSources& sources, const PodFiles& files,
                                                        const std::vector<VolumeSource>& volumes, const Plan& plan,
                                                        sys::FdRef userns, std::vector<std::string>& notes) {
  std::vector<runtime::AppMounts> out;
  for (std::size_t i = 0; i < plan.apps.size(); ++i) {
    std::vector<sys::Fd> idmapped;
    const std::vector<sys::Fd>* lowers = &sources.lowers[i];
    if (plan.engine.engine == runtime::Engine::idmap) {
      idmapped = POD_TRY(runtime::idmap_lowers(sources.layers[i], userns));
      lowers = &idmapped;
    }
    std::optional<std::string> fallback;
    runtime::AppMounts m;
    const AppFiles& own = files.apps[i];
    if (plan.engine.engine == runtime::Engine::none && plan.maps.new_userns)
      POD_TRY(make_etc_mount_points(*lowers, own.upper, view_of(plan.maps.view.uids, 0), view_of(plan.maps.view.gids, 0),
                                    plan.net_request.mode != runtime::NetMode::none));
    m.rootfs = POD_TRY(runtime::compose_rootfs(*lowers, own.upper, own.work, plan.maps.rootless,
                                                   plan.engine.metacopy, own.copy, fallback));
    if (fallback) notes.push_back(*fallback);
    for (const auto& v : volumes) {
      sys::Fd src = v.arg.idmap ? POD_TRY_CTX(idmap::idmapped_mount(v.dir, userns), "volume '{}'", v.arg.source)
                                : POD_TRY_CTX(clone_tree(v.dir), "volume '{}'", v.arg.source);
      m.volumes.push_back({std::move(src), v.arg.target, v.arg.read_only, v.directory});
    }
    out.push_back(std::move(m));
  }
  return out;
}

runtime::Releasers releasers(const cas::Store& store, const std::string& store_path) {
  runtime::Releasers r;
  r.release_lease = [store_path](const runtime::PodRecord& rec) -> sys::Result<void> {
    if (rec.lease.empty()) return {};
    auto res = release_lease(store_path, rec.lease);
    if (!res && res.error().code == ENOENT) return {};  // released already
    return res;
  };
  sys::FdRef dir = store.dir();
  r.release_shifted = [dir](const runtime::PodRecord& rec) -> sys::Result<void> {
    if (rec.shift_keys.empty()) return {};
    sys::Fd shifted = POD_TRY(sys::open_at(dir, "shifted", O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    shift::ShiftCache cache(shifted);
    for (const auto& key : rec.shift_keys) POD_TRY(cache.release(key, rec.uuid));
    return {};
  };
  return r;
}

}  // namespace pod::cmd
