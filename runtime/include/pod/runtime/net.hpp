// The pod's network: what cmd/ decided (NetRequest), set up once the pod's network
// namespace exists and before its init goes on, and what must be undone later
// (NetRecord, kept in pod.json so that gc can undo it after `pod` was killed).
//   none    the pod's own namespace with loopback only (the init brings lo up)
//   host    the host's namespace
//   slirp   user-mode networking by pasta (passt) or slirp4netns, for ordinary users
//   bridge  CNI plugins (bridge + host-local, portmap, bandwidth) from a config list
//           NAME.conflist in net_config_dir(); `pod0` is written there when missing
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pod/runtime/spec.hpp"
#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::runtime {

[[nodiscard]] const char* net_mode_name(NetMode m);

// --port [ADDR:]HOST:POD[/tcp|udp]; ADDR defaults to 127.0.0.1.
struct PortForward {
  std::string host_addr = "127.0.0.1";
  std::uint16_t host_port = 0, pod_port = 0;
  std::string proto = "tcp";
  [[nodiscard]] std::string str() const;  // "127.0.0.1:8080:80/tcp"
};
[[nodiscard]] sys::Result<PortForward> parse_port(std::string_view spec);
// Binds the host address and port once: "host port 8080/tcp on 127.0.0.1 is already in use".
[[nodiscard]] sys::Result<void> check_port_free(const PortForward& p);

// --net-rate RATE[:BURST], tc units: "1mbit", "500kbit", "2gbit", "100000bit"; BURST in
// bytes ("32kb", "1mb", "4096"); the burst defaults to a tenth of a second at the rate.
struct NetRate {
  std::uint64_t bits_per_second = 0;
  std::uint64_t burst_bytes = 0;
  [[nodiscard]] std::string str() const;  // "1000000bit:12500b"
};
[[nodiscard]] sys::Result<NetRate> parse_rate(std::string_view spec);

// The user-mode helper: pasta preferred, else slirp4netns; nullopt when neither is in
// PATH (then an ordinary user's default is none).
enum class SlirpHelper { pasta, slirp4netns };
[[nodiscard]] std::optional<SlirpHelper> find_slirp_helper();
[[nodiscard]] const char* helper_name(SlirpHelper h);
// /dev/net/tun opens read-write for the caller, or the error says how to allow it.
[[nodiscard]] sys::Result<void> check_tun();

// Root's CNI config lists: /etc/pod/net.d/NAME.conflist.
[[nodiscard]] const char* net_config_dir();
inline constexpr std::string_view kDefaultNetwork = "pod0";
// The config list NAME, as text: pod0 is written when missing; other names must exist.
[[nodiscard]] sys::Result<std::string> load_network_config(const std::string& name);
// Where the CNI plugins are: /usr/lib/cni (containernetworking-plugins).
[[nodiscard]] const char* cni_plugin_dir();

struct NetRequest {
  NetMode mode = NetMode::none;
  std::string network;     // bridge: the config list's name
  std::string cni_config;  // bridge: the config list (load_network_config)
  SlirpHelper helper = SlirpHelper::pasta;
  std::vector<PortForward> ports;
  std::optional<NetRate> rate;
  std::string uuid;        // the CNI container id
  std::string netns_bind;  // root: the file to bind the namespace on (STORE/pods/<uuid>/ns/net)
  // slirp: the store's pods directory, where the helper's pid is claimed
  // (.helper-<uuid>, locked while pod run lives) until the pod record names it: gc stops
  // a helper whose `pod run` died before that. Required for slirp.
  std::string claim_dir;
};

// What was set up, recorded in pod.json.
struct NetRecord {
  std::string mode = "none";     // none|host|slirp|bridge
  std::string network;           // bridge: the config list's name
  std::string cni_config;        // bridge: the list as used, for DEL
  std::string cni_result;        // bridge: the final ADD result (prevResult of DEL)
  std::string container_id, ifname;
  std::string netns;             // a bind mount (root) or /proc/PID/ns/net (rootless)
  bool netns_bound = false;      // netns is a bind mount of ours, unmounted on teardown
  std::string helper;            // slirp: pasta|slirp4netns
  pid_t helper_pid = 0;
  std::uint64_t helper_start_time = 0;
  pid_t forwarder_pid = 0;       // slirp4netns: pod's own TCP port forwarder
  std::uint64_t forwarder_start_time = 0;
  std::string address;           // the pod's IPv4 address, when known
  std::vector<std::string> ports;  // PortForward::str()
  std::string rate;              // NetRate::str(), empty for none
  bool active = false;           // set up and not yet torn down
};

// Sets up the network of the pod whose init is `init_pid` (its namespaces made, maps
// written); `netns_fd` is its network namespace. `rec` is filled as steps succeed and
// `persist` is called before each step that leaves something behind, so a killed `pod`
// leaves a record gc can undo. On failure what was done is undone before returning.
namespace detail {
struct HelperLaunch;
}

// A slirp network begun before its pod, for a pod that stays in the caller's user
// namespace (an ordinary user's `--userns keep`, the default): the network namespace
// is made at once and the helper launched in it, so that the helper's own start (pasta:
// ~25 ms here, mostly page faults of its buffers) runs while pod prepares the rest.
// The pod's init is cloned into netns() (PodSpec::netns_fd), and setup_network finishes
// what was begun. Destroyed unused, it stops the helper.
class EarlySlirp {
 public:
  [[nodiscard]] static sys::Result<EarlySlirp> begin(const NetRequest& req);
  EarlySlirp(EarlySlirp&&) noexcept;
  EarlySlirp& operator=(EarlySlirp&&) noexcept;
  ~EarlySlirp();
  [[nodiscard]] int netns() const { return netns_.get(); }
  // The launched helper, for setup_network to finish (once).
  [[nodiscard]] std::unique_ptr<detail::HelperLaunch> take_launch();

 private:
  EarlySlirp();
  sys::Fd netns_;
  std::unique_ptr<detail::HelperLaunch> launch_;
};

using PersistNet = std::function<sys::Result<void>(const NetRecord&)>;
// `early`: the slirp helper was launched before the pod (its namespace is netns_fd).
[[nodiscard]] sys::Result<void> setup_network(const NetRequest& req, pid_t init_pid, int netns_fd, NetRecord& rec,
                                              const PersistNet& persist, EarlySlirp* early = nullptr);
// Undoes what setup_network did (CNI DEL in reverse order, the helper stopped, the
// bind mount detached). Safe to repeat; clears rec.active. The helper is killed and
// waited for until it has ended (its host ports free); with `when_ports`, only when it
// forwards ports (a pod that ran in the foreground: nothing waits on its end then).
// With `PodEnded::yes` (no process of the pod is left), a CNI list whose plugins do not
// need the namespace for DEL has it released first: the kernel then removes the pod's
// veth in the background while DEL runs (deleting it in DEL waits on RCU, ~20 ms here).
enum class HelperWait { always, when_ports };
enum class PodEnded { no, yes };
[[nodiscard]] sys::Result<void> teardown_network(NetRecord& rec, HelperWait wait = HelperWait::always,
                                                 PodEnded ended = PodEnded::no);

// The pod's /etc/resolv.conf for the mode ("" leaves the default).
[[nodiscard]] std::string resolv_conf_for(const NetRequest& req);

namespace detail {
// CNI: runs the config list's plugins (ADD in order, DEL in reverse).
[[nodiscard]] sys::Result<void> cni_add(const NetRequest& req, NetRecord& rec, const PersistNet& persist);
[[nodiscard]] sys::Result<void> cni_del(NetRecord& rec);
// Whether some plugin of the list as used needs the pod's namespace for DEL (also true
// when there is no list to read: the usual order is kept then).
[[nodiscard]] bool cni_del_needs_netns(const NetRecord& rec);
// Waits until the host's side of the pod's interfaces (a veth) is gone with its
// namespace; one still there after half a second is deleted.
[[nodiscard]] sys::Result<void> await_host_links_gone(const NetRecord& rec);
// The user-mode helper for the namespace `netns_fd`: `launched` finished, or one
// launched now.
[[nodiscard]] sys::Result<void> slirp_start(const NetRequest& req, int netns_fd, NetRecord& rec,
                                            const PersistNet& persist, std::unique_ptr<HelperLaunch> launched);
[[nodiscard]] sys::Result<void> slirp_stop(NetRecord& rec, HelperWait wait);
// The namespace without close-on-exec, for a helper to inherit (fd 10 or above: clear
// of stdio and of slirp4netns's ready fd 3).
[[nodiscard]] sys::Result<sys::Fd> inheritable_netns(int netns_fd);
// tc tbf on `ifname` inside the namespace `netns_fd` (slirp; the CNI bandwidth plugin on bridge).
[[nodiscard]] sys::Result<void> tc_limit(int netns_fd, const std::string& ifname, const NetRate& rate);
// iptables, ip and tc live in /usr/sbin, which a caller's PATH may lack: the network's
// programs are looked up in, and run with, this PATH.
inline constexpr const char* kToolPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
// The program `name` in kToolPath's directories, or an error naming the Debian package.
[[nodiscard]] sys::Result<std::string> find_tool(std::string_view name, std::string_view package);
// pod's masquerade of a network (config lists with "podMasquerade": true): one nat rule
// per subnet, `-s SUBNET ! -o BRIDGE -j MASQUERADE`, added when missing.
[[nodiscard]] sys::Result<void> ensure_masquerade(const std::string& network, const std::string& bridge,
                                                  const std::vector<std::string>& subnets);
// Runs argv with `input` on stdin and `env`; returns stdout. A non-zero exit is an
// error carrying stdout and stderr.
struct Output {
  int code = 0;
  std::string out, err;
};
[[nodiscard]] sys::Result<Output> run_with_input(const std::vector<std::string>& argv, const std::string& input,
                                                 const std::vector<std::string>& env);
}  // namespace detail

}  // namespace pod::runtime
