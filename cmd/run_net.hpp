// pod run's network: the mode chosen from the flags and the machine, the pod's
// resolv.conf and hosts for it, and the hook that sets it up and records it.
#pragma once

#include <nlohmann/json.hpp>

#include "pod/runtime/net.hpp"
#include "pod/runtime/pods.hpp"
#include "run_pod.hpp"

namespace pod::cmd {

// Fills plan.net, plan.net_request and plan.net_note. `real`: a run, not --plan (then
// host ports, /dev/net/tun and the CNI config list are checked, pod0 written if missing).
[[nodiscard]] sys::Result<void> plan_network(const RunArgs& a, bool rootless, bool real, Plan& plan);

// Host ports that running pods of the store forward already (a bridge pod's port is an
// iptables rule, no socket: binding it does not find it taken).
[[nodiscard]] sys::Result<void> check_ports_in_pods(sys::FdRef store, const Plan& plan);

// A pod that stays in our user namespace (a user's `--userns keep`) on slirp: its
// network namespace made and the helper launched now, before the pod's other
// preparations, which its start then overlaps. Else nullopt.
[[nodiscard]] sys::Result<std::optional<runtime::EarlySlirp>> begin_early_network(const Plan& plan);

// The network of one pod run: set up by the spec's hook, recorded in pod.json through
// the PodDir, torn down when the run fails or (foreground) when the pod has ended.
class PodNetwork {
 public:
  // `early`: the slirp helper launched before the pod (begin_early_network), or null.
  PodNetwork(const Plan& plan, runtime::PodRecord& record, runtime::PodDir& pd, runtime::EarlySlirp* early);
  PodNetwork(const PodNetwork&) = delete;
  PodNetwork& operator=(const PodNetwork&) = delete;
  ~PodNetwork();
  // The spec's mode, /etc/resolv.conf and the hook.
  [[nodiscard]] sys::Result<void> apply(runtime::PodSpec& spec);
  // After start: a detached pod keeps its network until stop, rm or gc.
  void keep() { armed_ = false; }
  // The pod has ended: undo the network, record it. A helper without port forwards is
  // killed, not waited for: nothing of the host waits on its end.
  [[nodiscard]] sys::Result<void> finish();

 private:
  sys::Result<void> persist(const runtime::NetRecord& n);
  const Plan& plan_;
  runtime::PodRecord& record_;
  runtime::PodDir& pd_;
  runtime::NetRequest request_;
  runtime::EarlySlirp* early_;
  bool armed_ = true;
};

// --plan: "bridge: network pod0 (/etc/pod/net.d/pod0.conflist), ports 127.0.0.1:8080:80/tcp, rate 1000000bit";
// host mode warns that the pod can reach the host's abstract unix sockets.
[[nodiscard]] std::string describe_network(const Plan& plan);
[[nodiscard]] nlohmann::json network_json(const Plan& plan);

// `pod stop`: the pod has ended; its network goes now rather than at rm or gc.
[[nodiscard]] sys::Result<void> release_network(runtime::PodRecord record);

}  // namespace pod::cmd
