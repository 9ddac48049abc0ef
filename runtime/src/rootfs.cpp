#include "pod/runtime/rootfs.hpp"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fmt/format.h>

#include "pod/idmap/mount.hpp"
#include "pod/overlay/compose.hpp"
#include "pod/shift/cache.hpp"
#include "pod/sys/fs.hpp"

namespace pod::runtime {

const char* engine_name(Engine e) {
  switch (e) {
    case Engine::none: return "none";
    case Engine::chown: return "chown";
    case Engine::idmap: return "idmap";
  }
  return "?";
}

sys::Result<EngineChoice> choose_engine(std::string_view requested, bool maps_equal, bool root,
                                        const overlay::Probes* probes) {
  bool idmap_ok = root && probes && probes->idmapped_store.ok && probes->overlay_over_idmapped.ok;
  std::string idmap_why = !root ? "idmapped mounts of the store need privilege over its filesystem (root)"
                          : !probes ? "the probes did not run"
                          : !probes->idmapped_store.ok ? "idmapped mounts: " + probes->idmapped_store.detail
                          : !probes->overlay_over_idmapped.ok
                              ? "overlay over idmapped layers: " + probes->overlay_over_idmapped.detail
                              : "";
  if (requested == "none")
    return EngineChoice{Engine::none, maps_equal ? "the pod uses the store's own mapping"
                                                 : "asked for: files keep the store's owners (ids outside the "
                                                   "pod's map show as nobody)"};
  // A shifted copy need not hold the data: overlayfs reads it from the layer below.
  bool metacopy = root && probes && probes->metacopy_lowers.ok;
  const char* copies = metacopy ? "metadata-only shifted copies above the layers (overlay metacopy)" : "shifted copies";
  if (requested == "chown")
    return EngineChoice{Engine::chown, fmt::format("asked for: {} from the shifted-tree cache", copies), metacopy};
  if (requested == "idmap") {
    if (!idmap_ok) return sys::make_error(ENOTSUP, "--shift idmap is not possible here: {}", idmap_why);
    return EngineChoice{Engine::idmap, "asked for: idmapped mounts of each layer"};
  }
  if (requested != "auto")
    return sys::make_error(EINVAL, "--shift '{}' is not one of auto, none, chown, idmap", requested);
  if (maps_equal) return EngineChoice{Engine::none, "the pod's map is the store's: nothing to shift"};
  if (idmap_ok) return EngineChoice{Engine::idmap, "idmapped mounts work on the store's filesystem: no copy"};
  return EngineChoice{Engine::chown, fmt::format("idmap is not possible ({}): {}", idmap_why, copies), metacopy};
}

sys::Result<std::vector<sys::Fd>> prepare_lowers(std::vector<Layer>& layers, const EngineChoice& engine,
                                                 const RootfsMaps& maps, sys::FdRef shift_dir,
                                                 std::string_view pod_uuid, std::vector<std::string>& keys) {
  std::vector<sys::Fd> out;
  if (engine.engine == Engine::idmap) return out;
  shift::ShiftCache cache(shift_dir);
  for (auto& layer : layers) {
    if (engine.engine == Engine::none || engine.metacopy)
      out.push_back(POD_TRY(sys::open_at(layer.root, ".", O_RDONLY | O_DIRECTORY)));
    if (engine.engine == Engine::none) continue;
    auto data = engine.metacopy ? shift::CopyData::metacopy : shift::CopyData::full;
    auto entry = POD_TRY_CTX(cache.acquire(layer.root, layer.digest, maps.stored, maps.pod, pod_uuid, data),
                             "shifting layer {}", layer.digest);
    keys.push_back(entry.key);
    out.push_back(std::move(entry.root));
  }
  return out;
}

sys::Result<std::vector<sys::Fd>> idmap_lowers(const std::vector<Layer>& layers, sys::FdRef userns) {
  std::vector<sys::Fd> out;
  for (const auto& layer : layers)
    out.push_back(POD_TRY_CTX(idmap::idmapped_mount(layer.root, userns), "idmapped mount of layer {}", layer.digest));
  return out;
}

sys::Result<sys::Fd> compose_rootfs(const std::vector<sys::Fd>& lowers, sys::FdRef upper, sys::FdRef work,
                                    bool userxattr, bool metacopy, sys::FdRef copy_dir,
                                    std::optional<std::string>& fallback) {
  std::vector<sys::FdRef> refs(lowers.begin(), lowers.end());
  // volatile: a pod is never restarted, so its writable layer need not survive a crash
  // (CRI-O mounts every container so); data meant to outlive the pod belongs in a volume.
  overlay::ComposeOptions opts{.userxattr = userxattr, .metacopy = metacopy, .volatile_upper = true};
  auto mounted = overlay::compose(refs, upper, work, opts);
  if (mounted) return std::move(*mounted);
  if (metacopy || (mounted.error().code != EPERM && mounted.error().code != EINVAL && mounted.error().code != ENODEV))
    return std::unexpected(mounted.error());
  fallback = fmt::format("overlayfs was refused ({}): the pod gets a copy of its layers", mounted.error().what());
  POD_TRY(overlay::flatten(refs, copy_dir, opts));
  int fd = static_cast<int>(::syscall(SYS_open_tree, copy_dir.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH));
  if (fd < 0) return sys::sys_error("open_tree of the copied root filesystem");
  return sys::Fd(fd);
}

}  // namespace pod::runtime
