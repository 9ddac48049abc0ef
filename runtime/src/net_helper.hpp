// The slirp helper's start in two halves: launched (the process started, nothing
// waited for) and finished (waited until the pod's namespace is configured, then
// recorded). Launched early, the helper's own start runs while pod does other work.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pod/runtime/net.hpp"
#include "pod/sys/child.hpp"

namespace pod::runtime::detail {

// pasta's DNS forwarder, the pod's nameserver.
inline constexpr const char* kPastaDns = "169.254.1.1";

struct HelperLaunch {
  SlirpHelper helper = SlirpHelper::pasta;
  // pasta: its foreground part, which ends once the namespace is configured and the
  // daemon forked; the daemon's pid then is in `pidfile`. Its stdout and stderr: `output`.
  std::optional<sys::Child> pasta;
  sys::Fd output;
  // pasta's pid file, or slirp4netns's pid written by us: the claim
  // STORE/pods/.helper-<uuid>, held (flock) by `claim_lock` until the record names the
  // helper. Removed then, or when the helper is stopped.
  std::string pidfile;
  sys::Fd claim_lock;
  // slirp4netns: the helper itself, ready when it writes to `ready`; the port forwards
  // go through its API socket.
  pid_t slirp4netns = 0;
  sys::Fd ready;
  std::string api;
  // Handed to a NetRecord (which teardown_network stops by) or stopped: nothing left.
  bool handed_over = false;

  HelperLaunch() = default;
  HelperLaunch(const HelperLaunch&) = delete;
  HelperLaunch& operator=(const HelperLaunch&) = delete;
  // Not handed over: the helper is stopped (pasta's foreground part is waited for
  // first, as only then is its daemon known) and its files removed.
  ~HelperLaunch();
};

// Starts the helper for the namespace `netns_fd`; waits for nothing.
[[nodiscard]] sys::Result<std::unique_ptr<HelperLaunch>> launch_helper(const NetRequest& req, int netns_fd);
// Waits until the helper has configured the namespace `netns_fd`, records it in `rec`
// (persisted) and makes the port forwards. On failure the helper is stopped, by `rec` once it
// names it.
[[nodiscard]] sys::Result<void> finish_helper(HelperLaunch& l, const NetRequest& req, int netns_fd, NetRecord& rec,
                                              const PersistNet& persist);

// The pods directory's claims of helpers (NetRequest::claim_dir): .helper-<uuid>.
inline constexpr const char* kHelperClaimPrefix = ".helper-";

// Kills `pid` if it is still the process started at `start_time` (0: not known; a
// recycled pid is someone else's); with `wait`, until it has ended (its ports free).
// Our own child is reaped.
[[nodiscard]] sys::Result<void> stop_process(pid_t pid, std::uint64_t start_time, const std::string& what, bool wait);

// slirp4netns pods' TCP port forwards, by a process of pod's own (net_forward.cpp):
// listening on each host address and port, it is in the pod's network namespace by the
// time this returns. Its pid.
[[nodiscard]] sys::Result<pid_t> start_forwarder(const std::vector<PortForward>& ports, int netns_fd);

}  // namespace pod::runtime::detail
