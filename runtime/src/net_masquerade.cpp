// A CNI network's masquerade done by pod, for lists that say "podMasquerade": true
// (pod0 does): one rule for the whole network, as docker has for docker0,
//   iptables -t nat -A POSTROUTING -s SUBNET ! -o BRIDGE -m comment --comment "pod network NAME" -j MASQUERADE
// checked at each pod's start and added when missing (a reboot or a firewall reload
// drops it). The bridge plugin's own ipMasq makes a chain per pod instead: eight
// iptables runs on ADD and five on DEL, most of a bridge pod's start and end here.
// The rule stays with the network, as the bridge device does.
#include <arpa/inet.h>

#include <charconv>

#include "pod/runtime/net.hpp"

namespace pod::runtime::detail {

namespace {

// "10.77.0.0/24": an IPv4 address and a prefix length.
bool ipv4_subnet(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return false;
  std::string addr(s.substr(0, slash));
  in_addr a{};
  unsigned len = 0;
  auto p = s.substr(slash + 1);
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), len);
  return ::inet_pton(AF_INET, addr.c_str(), &a) == 1 && ec == std::errc() && end == p.data() + p.size() &&
         !p.empty() && len <= 32;
}

std::vector<std::string> rule(const std::string& network, const std::string& bridge, const std::string& subnet) {
  return {"-s", subnet, "!", "-o", bridge, "-m", "comment", "--comment", "pod network " + network, "-j", "MASQUERADE"};
}

sys::Result<Output> iptables(const std::string& program, const char* op, const std::vector<std::string>& r) {
  std::vector<std::string> argv = {program, "-w", "-t", "nat", op, "POSTROUTING"};
  argv.insert(argv.end(), r.begin(), r.end());
  return run_with_input(argv, "", {kToolPath});
}

}  // namespace

sys::Result<void> ensure_masquerade(const std::string& network, const std::string& bridge,
                                    const std::vector<std::string>& subnets) {
  auto bad = [&](std::string_view why) {
    return sys::make_error(EINVAL, "CNI config list '{}' asks pod to masquerade, but {}", network, why);
  };
  if (bridge.empty() || bridge.size() > 15 || bridge.find_first_of("/ \t\n") != std::string::npos)
    return bad(fmt::format("its bridge name '{}' is not an interface name", bridge));
  if (subnets.empty()) return bad("its bridge plugin names no IPv4 subnet");
  std::string program = POD_TRY(find_tool("iptables", "iptables"));
  for (const auto& s : subnets) {
    if (!ipv4_subnet(s)) return bad(fmt::format("'{}' is not an IPv4 subnet", s));
    auto r = rule(network, bridge, s);
    Output check = POD_TRY(iptables(program, "-C", r));
    if (check.code == 0) continue;
    Output add = POD_TRY(iptables(program, "-A", r));
    if (add.code != 0)
      return sys::make_error(EIO, "masquerading {} (network '{}') with iptables: {}", s, network, add.err + add.out);
  }
  return {};
}

}  // namespace pod::runtime::detail
