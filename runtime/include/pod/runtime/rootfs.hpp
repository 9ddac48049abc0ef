// A pod's root filesystem from layer trees, by one of the engines that bring the
// image's owners into the pod's id range: none (as stored), chown (the shifted-tree
// cache), idmap (idmapped mounts of each layer).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pod/idmap/ranges.hpp"
#include "pod/overlay/probe.hpp"
#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::runtime {

enum class Engine { none, chown, idmap };
[[nodiscard]] const char* engine_name(Engine e);

struct EngineChoice {
  Engine engine = Engine::none;
  std::string reason;  // one line: why this engine
  // chown: the cache holds metadata-only copies, each stacked above its layer (root,
  // where the metacopy_lowers probe passed); else full copies.
  bool metacopy = false;
};

// `requested`: "auto", "none", "chown" or "idmap". `maps_equal`: the pod sees the
// store's own mapping (nothing to shift). `probes` may be null when not run (then
// idmap counts as unavailable for auto). An explicit idmap the probes refuse is an
// error naming the probe.
[[nodiscard]] sys::Result<EngineChoice> choose_engine(std::string_view requested, bool maps_equal, bool root,
                                                      const overlay::Probes* probes);

struct Layer {
  sys::Fd root;        // the layer's files, as stored (trees/<hex>/root)
  std::string digest;  // "sha256:..."
};

// Ids as the caller sees them on disk: image id -> the id a file of the store has
// (`stored`), and image id -> the id the pod's files must have (`pod`).
struct RootfsMaps {
  idmap::MapSpec stored;
  idmap::MapSpec pod;
};

// Lower layers for the pod, bottom first. chown: shifted copies from the cache in
// `shift_dir` (STORE/shifted), referenced by `pod_uuid`, their keys appended to `keys`
// (metacopy: each copy right above its layer); none: the trees themselves. idmap layers
// are made later, once the pod's user namespace exists (idmap_lowers).
[[nodiscard]] sys::Result<std::vector<sys::Fd>> prepare_lowers(std::vector<Layer>& layers, const EngineChoice& engine,
                                                               const RootfsMaps& maps, sys::FdRef shift_dir,
                                                               std::string_view pod_uuid,
                                                               std::vector<std::string>& keys);

// Detached idmapped mounts of each layer for the pod's user namespace.
[[nodiscard]] sys::Result<std::vector<sys::Fd>> idmap_lowers(const std::vector<Layer>& layers, sys::FdRef userns);

// The overlay of `lowers` under upper/work; where overlayfs is refused, a flattened copy
// in `copy_dir` (a warning for the caller is set in `fallback`), except for metacopy
// layers, which mean nothing outside an overlay.
[[nodiscard]] sys::Result<sys::Fd> compose_rootfs(const std::vector<sys::Fd>& lowers, sys::FdRef upper,
                                                  sys::FdRef work, bool userxattr, bool metacopy,
                                                  sys::FdRef copy_dir, std::optional<std::string>& fallback);

}  // namespace pod::runtime
