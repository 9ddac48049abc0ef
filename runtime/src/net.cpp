// The pod's network: the mode's steps in order, and their undoing. The namespace is
// the init's (/proc/PID/ns/net); root's pods get it bound at STORE/pods/<uuid>/ns/net
// so that it outlives the init for CNI DEL and can be joined by `nsenter --net=`.
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include "net_helper.hpp"
#include "pod/runtime/net.hpp"
#include "pod/sys/fs.hpp"

namespace pod::runtime {

namespace {

// bridge + host-local (leases under /run: a reboot forgets them with the pods),
// portmap for --port, bandwidth for --net-rate. pod masquerades the subnet with one
// rule for the network (net_masquerade.cpp) rather than the bridge plugin's per pod.
constexpr const char* kDefaultConfig = R"({
  "cniVersion": "1.0.0",
  "name": "pod0",
  "podMasquerade": true,
  "plugins": [
    {
      "type": "bridge",
      "bridge": "pod0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.77.0.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "/run/pod/cni/networks"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "bandwidth", "capabilities": {"bandwidth": true}}
  ]
}
)";

sys::Result<void> bind_netns(int netns_fd, const std::string& target) {
  sys::Fd f(::open(target.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0444));
  if (!f) return sys::sys_error("creating '{}'", target);
  std::string src = fmt::format("/proc/self/fd/{}", netns_fd);
  if (::mount(src.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0)
    return sys::sys_error("binding the pod's network namespace on '{}'", target);
  return {};
}

}  // namespace

const char* net_config_dir() { return "/etc/pod/net.d"; }
const char* cni_plugin_dir() { return "/usr/lib/cni"; }

sys::Result<std::string> load_network_config(const std::string& name) {
  POD_TRY(check_name(name, "network name"));
  std::string file = name + ".conflist";
  std::string path = fmt::format("{}/{}", net_config_dir(), file);
  if (name == kDefaultNetwork && ::access(path.c_str(), F_OK) != 0) {
    POD_TRY(sys::ensure_dir(sys::FdRef::cwd(), "/etc/pod", 0755));
    POD_TRY(sys::ensure_dir(sys::FdRef::cwd(), net_config_dir(), 0755));
    sys::Fd dir = POD_TRY(sys::open_dir(sys::FdRef::cwd(), net_config_dir()));
    POD_TRY_CTX(sys::write_file_atomic(dir, file, kDefaultConfig, 0644), "writing the default network '{}'", path);
  }
  auto text = sys::read_file(sys::FdRef::cwd(), path, 1 << 20);
  if (!text && text.error().code == ENOENT)
    return sys::make_error(ENOENT, "no network '{}': {} does not exist", name, path);
  if (!text) return sys::Unexpected(std::move(text.error()).context("network '{}'", name));
  return std::move(*text);
}

sys::Result<void> setup_network(const NetRequest& req, pid_t init_pid, int netns_fd, NetRecord& rec,
                                const PersistNet& persist, EarlySlirp* early) {
  rec.mode = net_mode_name(req.mode);
  rec.ports.clear();
  for (const auto& p : req.ports) rec.ports.push_back(p.str());
  rec.rate = req.rate ? req.rate->str() : "";
  if (req.mode == NetMode::none || req.mode == NetMode::host) return {};
  rec.network = req.network;
  rec.container_id = req.uuid;
  rec.ifname = "eth0";
  rec.netns = fmt::format("/proc/{}/ns/net", init_pid);
  auto run = [&]() -> sys::Result<void> {
    if (!req.netns_bind.empty()) {
      rec.netns = req.netns_bind;
      rec.netns_bound = true;
      rec.active = true;
      POD_TRY(persist(rec));
      POD_TRY(bind_netns(netns_fd, req.netns_bind));
    }
    if (req.mode == NetMode::bridge) return detail::cni_add(req, rec, persist);
    return detail::slirp_start(req, netns_fd, rec, persist, early ? early->take_launch() : nullptr);
  };
  auto r = run();
  if (!r) {
    (void)teardown_network(rec);
    (void)persist(rec);
    return sys::Unexpected(std::move(r.error()).context("setting up the pod's network ({})", rec.mode));
  }
  return {};
}

sys::Result<void> teardown_network(NetRecord& rec, HelperWait wait, PodEnded ended) {
  if (!rec.active) return {};
  std::optional<sys::Error> first;
  auto keep = [&](sys::Result<void> r) {
    if (!r && !first) first = std::move(r).error();
  };
  auto unbind = [&]() -> sys::Result<void> {
    if (rec.netns_bound && ::umount2(rec.netns.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0 && errno != EINVAL &&
        errno != ENOENT)
      return sys::sys_error("unmounting '{}'", rec.netns);
    return {};
  };
  bool release_first = ended == PodEnded::yes && !detail::cni_del_needs_netns(rec);
  if (release_first) keep(unbind());
  keep(detail::cni_del(rec));
  if (release_first) keep(detail::await_host_links_gone(rec));
  keep(detail::slirp_stop(rec, wait));
  if (!release_first) keep(unbind());
  if (first) return sys::Unexpected(std::move(*first).context("tearing down the pod's network ({})", rec.mode));
  rec.active = false;
  return {};
}

namespace detail {

sys::Result<sys::Fd> inheritable_netns(int netns_fd) {
  sys::Fd fd(::fcntl(netns_fd, F_DUPFD, 10));
  if (!fd) return sys::sys_error("passing the pod's network namespace on");
  return fd;
}

sys::Result<void> tc_limit(int netns_fd, const std::string& ifname, const NetRate& rate) {
  sys::Fd ns = POD_TRY(inheritable_netns(netns_fd));  // nsenter opens it by /proc/self/fd
  Output o = POD_TRY(run_with_input({"nsenter", fmt::format("--net=/proc/self/fd/{}", ns.get()), "tc", "qdisc",
                                     "replace", "dev", ifname, "root",
                                     "tbf", "rate", fmt::format("{}bit", rate.bits_per_second), "burst",
                                     std::to_string(rate.burst_bytes), "latency", "100ms"},
                                    "", {kToolPath}));
  if (o.code != 0)
    return sys::make_error(EIO, "limiting {} to {} bit/s with tc: {}", ifname, rate.bits_per_second, o.err + o.out);
  return {};
}

}  // namespace detail

}  // namespace pod::runtime
