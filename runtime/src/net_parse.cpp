// The network flags: --port and --net-rate, and the host-port check made before a pod
// starts.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>

#include "pod/runtime/net.hpp"
#include "pod/sys/fd.hpp"

namespace pod::runtime {

namespace {

sys::Result<std::uint16_t> parse_port_number(std::string_view s, std::string_view spec) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v == 0 || v > 65535)
    return sys::make_error(EINVAL, "--port '{}': '{}' is not a port number (1-65535)", spec, s);
  return static_cast<std::uint16_t>(v);
}

// A number with a unit suffix from `units` (suffix, multiplier); a bare number uses `bare`.
struct Unit {
  std::string_view suffix;
  std::uint64_t times;
};
sys::Result<std::uint64_t> parse_amount(std::string_view s, std::initializer_list<Unit> units, std::uint64_t bare,
                                        std::string_view what) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end == s.data() || v == 0)
    return sys::make_error(EINVAL, "--net-rate: {} '{}' is not a positive number with a unit", what, s);
  std::string_view unit(end, static_cast<std::size_t>(s.data() + s.size() - end));
  if (unit.empty()) return v * bare;
  for (const auto& u : units)
    if (unit == u.suffix) return v * u.times;
  return sys::make_error(EINVAL, "--net-rate: {} '{}' has an unknown unit '{}'", what, s, unit);
}

}  // namespace

const char* net_mode_name(NetMode m) {
  switch (m) {
    case NetMode::none: return "none";
    case NetMode::host: return "host";
    case NetMode::slirp: return "slirp";
    case NetMode::bridge: return "bridge";
  }
  return "none";
}

std::string PortForward::str() const { return fmt::format("{}:{}:{}/{}", host_addr, host_port, pod_port, proto); }

sys::Result<PortForward> parse_port(std::string_view spec) {
  PortForward p;
  std::string_view rest = spec;
  if (auto slash = rest.rfind('/'); slash != std::string_view::npos) {
    p.proto = std::string(rest.substr(slash + 1));
    if (p.proto != "tcp" && p.proto != "udp")
      return sys::make_error(EINVAL, "--port '{}': protocol '{}' is not tcp or udp", spec, p.proto);
    rest = rest.substr(0, slash);
  }
  auto last = rest.rfind(':');
  if (last == std::string_view::npos)
    return sys::make_error(EINVAL, "--port '{}' is not [ADDR:]HOST:POD[/tcp|udp]", spec);
  p.pod_port = POD_TRY(parse_port_number(rest.substr(last + 1), spec));
  rest = rest.substr(0, last);
  auto addr_end = rest.rfind(':');
  if (addr_end != std::string_view::npos) {
    p.host_addr = std::string(rest.substr(0, addr_end));
    in_addr a{};
    if (::inet_pton(AF_INET, p.host_addr.c_str(), &a) != 1)
      return sys::make_error(EINVAL, "--port '{}': '{}' is not an IPv4 address", spec, p.host_addr);
    rest = rest.substr(addr_end + 1);
  }
  p.host_port = POD_TRY(parse_port_number(rest, spec));
  return p;
}

sys::Result<void> check_port_free(const PortForward& p) {
  sys::Fd s(::socket(AF_INET, (p.proto == "udp" ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0));
  if (!s) return sys::sys_error("socket");
  // As a server would bind it: connections of an earlier listener in TIME_WAIT do not
  // make the port taken.
  int on = 1;
  if (::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) return sys::sys_error("SO_REUSEADDR");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(p.host_port);
  if (::inet_pton(AF_INET, p.host_addr.c_str(), &a.sin_addr) != 1)
    return sys::make_error(EINVAL, "'{}' is not an IPv4 address", p.host_addr);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (errno == EADDRINUSE)
      return sys::make_error(EADDRINUSE, "host port {}/{} on {} is already in use", p.host_port, p.proto, p.host_addr);
    return sys::sys_error("host port {}/{} on {} cannot be bound", p.host_port, p.proto, p.host_addr);
  }
  return {};
}

std::string NetRate::str() const { return fmt::format("{}bit:{}b", bits_per_second, burst_bytes); }

sys::Result<NetRate> parse_rate(std::string_view spec) {
  NetRate r;
  auto colon = spec.find(':');
  r.bits_per_second = POD_TRY(parse_amount(spec.substr(0, colon),
                                           {{"bit", 1}, {"kbit", 1000}, {"mbit", 1000000}, {"gbit", 1000000000}},
                                           0, "rate"));
  if (r.bits_per_second == 0)
    return sys::make_error(EINVAL, "--net-rate '{}': the rate needs a unit (bit, kbit, mbit, gbit)", spec);
  if (colon != std::string_view::npos) {
    r.burst_bytes = POD_TRY(parse_amount(spec.substr(colon + 1), {{"b", 1}, {"kb", 1024}, {"mb", 1024 * 1024}}, 1,
                                         "burst"));
  } else {
    // A tenth of a second at the rate, at least two full-size frames.
    r.burst_bytes = std::max<std::uint64_t>(r.bits_per_second / 80, 2 * 1514);
  }
  return r;
}

}  // namespace pod::runtime
