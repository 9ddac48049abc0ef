#include "run_net.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "context.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cmd {

namespace {

using runtime::NetMode;

bool cni_installed() { return ::access(fmt::format("{}/bridge", runtime::cni_plugin_dir()).c_str(), X_OK) == 0; }

// The mode asked for, or the default: bridge for root, slirp for users, each when
// installed, else none with a note saying what to install.
sys::Result<void> choose_mode(const RunArgs& a, bool rootless, Plan& plan) {
  runtime::NetRequest& req = plan.net_request;
  auto helper = runtime::find_slirp_helper();
  if (helper) req.helper = *helper;
  std::string asked = a.net;
  if (asked.empty()) {
    if (!rootless && cni_installed()) asked = "bridge";
    else if (rootless && helper && runtime::check_tun()) asked = "slirp";
    else if (rootless && helper) {
      asked = "none";
      plan.net_note = "/dev/net/tun is not usable by this user (see `pod doctor`): loopback only";
      plan.net_note_on_run = false;  // the machine's choice, not a missing package: --plan and doctor say it
    } else {
      asked = "none";
      plan.net_note = rootless ? "no network helper installed (Debian package passt or slirp4netns): loopback only"
                               : "CNI plugins not installed (Debian package containernetworking-plugins): "
                                 "loopback only";
    }
  }
  if (asked == "none") req.mode = NetMode::none;
  else if (asked == "host") req.mode = NetMode::host;
  else if (asked == "slirp") {
    if (!rootless)
      return sys::make_error(EINVAL, "--net slirp is for ordinary users; root's pods use --net bridge");
    if (!helper)
      return sys::make_error(ENOENT, "--net slirp needs pasta (Debian package passt) or slirp4netns "
                                     "(Debian package slirp4netns)");
    req.mode = NetMode::slirp;
  } else {
    POD_TRY_CTX(runtime::check_name(asked, "network name"), "--net");
    if (rootless)
      return sys::make_error(EPERM, "--net {}: CNI networks need root (they add veth pairs and firewall rules "
                                    "on the host); ordinary users have --net slirp",
                             asked);
    if (!cni_installed())
      return sys::make_error(ENOENT, "--net {} needs the CNI plugins in {} (Debian package containernetworking-plugins)",
                             asked, runtime::cni_plugin_dir());
    req.mode = NetMode::bridge;
    req.network = asked == "bridge" ? std::string(runtime::kDefaultNetwork) : asked;
  }
  plan.net = runtime::net_mode_name(req.mode);
  return {};
}

}  // namespace

sys::Result<void> plan_network(const RunArgs& a, bool rootless, bool real, Plan& plan) {
  POD_TRY(choose_mode(a, rootless, plan));
  runtime::NetRequest& req = plan.net_request;
  req.uuid = plan.uuid;
  bool own = req.mode == NetMode::slirp || req.mode == NetMode::bridge;
  if (!a.ports.empty() && !own)
    return sys::make_error(EINVAL, "--port needs --net slirp or a bridge network (with --net {} there is {})", plan.net,
                           req.mode == NetMode::host ? "nothing to forward: the pod uses the host's ports"
                                                     : "no network to forward to");
  for (const auto& p : a.ports) req.ports.push_back(POD_TRY(runtime::parse_port(p)));
  if (!a.net_rate.empty()) {
    if (!own) return sys::make_error(EINVAL, "--net-rate needs --net slirp or a bridge network, not {}", plan.net);
    req.rate = POD_TRY(runtime::parse_rate(a.net_rate));
  }
  if (!real) return {};
  for (std::size_t i = 0; i < req.ports.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j)
      if (req.ports[j].host_port == req.ports[i].host_port && req.ports[j].proto == req.ports[i].proto)
        return sys::make_error(EINVAL, "--port: host port {}/{} is given twice", req.ports[i].host_port,
                               req.ports[i].proto);
    POD_TRY(runtime::check_port_free(req.ports[i]));
  }
  if (req.mode == NetMode::slirp) POD_TRY(runtime::check_tun());
  if (req.mode == NetMode::bridge) req.cni_config = POD_TRY(runtime::load_network_config(req.network));
  return {};
}

sys::Result<std::optional<runtime::EarlySlirp>> begin_early_network(const Plan& plan) {
  if (plan.net_request.mode != NetMode::slirp || !plan.maps.rootless || plan.maps.new_userns) return std::nullopt;
  return POD_TRY(runtime::EarlySlirp::begin(plan.net_request));
}

PodNetwork::PodNetwork(const Plan& plan, runtime::PodRecord& record, runtime::PodDir& pd, runtime::EarlySlirp* early)
    : plan_(plan), record_(record), pd_(pd), request_(plan.net_request), early_(early) {}

PodNetwork::~PodNetwork() {
  if (!armed_ || !record_.net.active) return;
  if (auto r = runtime::teardown_network(record_.net); !r) warn(r.error().what());
  (void)persist(record_.net);
}

sys::Result<void> PodNetwork::persist(const runtime::NetRecord& n) {
  record_.net = n;
  return pd_.write_record(record_);
}

sys::Result<void> PodNetwork::apply(runtime::PodSpec& spec) {
  spec.net = request_.mode;
  record_.net.mode = runtime::net_mode_name(request_.mode);
  if (request_.mode == NetMode::none || request_.mode == NetMode::host) return {};
  if (std::string resolv = runtime::resolv_conf_for(request_); !resolv.empty()) spec.etc_resolv_conf = resolv;
  else if (auto host = sys::read_file(sys::FdRef::cwd(), "/etc/resolv.conf", 1 << 20)) spec.etc_resolv_conf = *host;
  // Root's pods: the namespace bound in the pod directory, for CNI DEL after the pod and
  // for `nsenter --net=`. Users' pods live in a mount namespace of `pod run` that ends
  // with it: their namespace is known by /proc/PID/ns/net only.
  if (!plan_.maps.rootless) request_.netns_bind = POD_TRY(sys::fd_path(pd_.dir())) + "/ns/net";
  if (early_) spec.netns_fd = early_->netns();
  spec.network = [this](pid_t init, int netns_fd) -> sys::Result<void> {
    runtime::NetRecord n = record_.net;
    // (recorded by setup_network as it went, its last step included)
    POD_TRY(runtime::setup_network(request_, init, netns_fd, n,
                                   [this](const runtime::NetRecord& r) { return persist(r); }, early_));
    if (n.address.empty()) return {};
    // The pod's own address for its host name (the file is bound into the apps already:
    // rewritten in place, not replaced).
    std::string hosts = fmt::format("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{}\t{}\n",
                                    n.address, plan_.hostname);
    sys::Fd f = POD_TRY(sys::open_at(pd_.dir(), "etc/hosts", O_WRONLY | O_TRUNC | O_NOFOLLOW));
    if (::write(f.get(), hosts.data(), hosts.size()) != static_cast<ssize_t>(hosts.size()))
      return sys::sys_error("writing the pod's /etc/hosts");
    return {};
  };
  return {};
}

sys::Result<void> PodNetwork::finish() {
  armed_ = false;
  if (!record_.net.active) return {};
  auto r = runtime::teardown_network(record_.net, runtime::HelperWait::when_ports, runtime::PodEnded::yes);
  POD_TRY(persist(record_.net));
  return r;
}

std::string describe_network(const Plan& plan) {
  const runtime::NetRequest& req = plan.net_request;
  std::string s;
  switch (req.mode) {
    case NetMode::none: s = "none (loopback only)"; break;
    case NetMode::host:
      s = "host (WARNING: the pod shares the host's network namespace and can reach the host's abstract unix "
          "sockets)";
      break;
    case NetMode::slirp:
      s = fmt::format("slirp by {} (user-mode networking, DNS through the helper)", runtime::helper_name(req.helper));
      break;
    case NetMode::bridge:
      s = fmt::format("bridge: CNI network {} ({}/{}.conflist)", req.network, runtime::net_config_dir(), req.network);
      break;
  }
  for (const auto& p : req.ports) s += fmt::format("\n           port {} (host {}:{} -> pod {})", p.str(), p.host_addr,
                                                   p.host_port, p.pod_port);
  if (req.rate)
    s += fmt::format("\n           rate {} bit/s, burst {} bytes ({})", req.rate->bits_per_second,
                     req.rate->burst_bytes, req.mode == NetMode::bridge ? "CNI bandwidth plugin" : "tc tbf on eth0");
  if (!plan.net_note.empty()) s += "\n           note: " + plan.net_note;
  return s;
}

nlohmann::json network_json(const Plan& plan) {
  const runtime::NetRequest& req = plan.net_request;
  nlohmann::json ports = nlohmann::json::array();
  for (const auto& p : req.ports) ports.push_back(p.str());
  return {{"mode", plan.net},
          {"network", req.network.empty() ? nlohmann::json() : nlohmann::json(req.network)},
          {"helper", req.mode == NetMode::slirp ? nlohmann::json(runtime::helper_name(req.helper)) : nlohmann::json()},
          {"ports", ports},
          {"rate", req.rate ? nlohmann::json(req.rate->str()) : nlohmann::json()},
          {"host_abstract_sockets_reachable", req.mode == NetMode::host},
          {"note", plan.net_note.empty() ? nlohmann::json() : nlohmann::json(plan.net_note)}};
}

sys::Result<void> check_ports_in_pods(sys::FdRef store, const Plan& plan) {
  const auto& want = plan.net_request.ports;
  if (want.empty()) return {};
  for (const auto& pod : POD_TRY(runtime::list_pods(store, nullptr))) {
    if (pod.state != runtime::PodState::running || !pod.record.net.active) continue;
    for (const auto& text : pod.record.net.ports) {
      auto theirs = runtime::parse_port(text);
      if (!theirs) continue;
      for (const auto& p : want) {
        bool same_addr = p.host_addr == theirs->host_addr || p.host_addr == "0.0.0.0" || theirs->host_addr == "0.0.0.0";
        if (p.host_port == theirs->host_port && p.proto == theirs->proto && same_addr)
          return sys::make_error(EADDRINUSE, "host port {}/{} on {} is already in use by pod {}", p.host_port, p.proto,
                                 p.host_addr, pod.record.name);
      }
    }
  }
  return {};
}

sys::Result<void> release_network(runtime::PodRecord record) {
  return runtime::teardown_network(record.net, runtime::HelperWait::always, runtime::PodEnded::yes);
}

}  // namespace pod::cmd
