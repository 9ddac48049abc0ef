// What this kernel and this store's filesystem allow, tried for real (in throwaway
// child processes, never in the caller) once per boot and cached.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::overlay {

struct Probe {
  bool ok = false;
  std::string detail;  // why not (errno text and what it means here), or what worked
};

struct Probes {
  std::string boot_id;                // /proc/sys/kernel/random/boot_id
  Probe userns;                       // unshare(CLONE_NEWUSER)
  Probe overlay_in_userns;            // an overlay mounted inside a user namespace
  Probe idmapped_store;               // an idmapped mount of a directory on the store's filesystem
  Probe overlay_over_idmapped;        // an overlay whose lower layer is an idmapped mount
  Probe lowerdir_plus;                // the "lowerdir+" option (Linux 6.8+)
  Probe metacopy_lowers;              // a metadata-only lower file over its data (metacopy=on)
};

// The probes by name ("userns", "overlay_in_userns", ...), in declaration order.
[[nodiscard]] std::vector<std::pair<std::string, const Probe*>> probe_list(const Probes& p);

// The cache file's JSON: {"boot_id": "...", "probes": {"userns": {"ok": true, "detail": "..."}, ...}}.
[[nodiscard]] std::string probes_json(const Probes& p);
// Parses probes_json's output; EINVAL naming what is wrong for anything else.
[[nodiscard]] sys::Result<Probes> parse_probes_json(std::string_view text);

// Runs the probes in `scratch` (an empty directory on the store's filesystem, e.g. under
// STORE/tmp). Never fails as a whole: a probe that cannot run is reported as not ok.
[[nodiscard]] Probes run_probes(sys::FdRef scratch);

// The cached probes in `cache_dir`/probes.json when their boot id is this boot's,
// else runs them in a scratch directory made under `scratch_parent` and caches them.
[[nodiscard]] sys::Result<Probes> cached_probes(sys::FdRef cache_dir, sys::FdRef scratch_parent);

}  // namespace pod::overlay
