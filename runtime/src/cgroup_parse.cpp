// The values of pod run's limit flags, and how limits read back.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <charconv>
#include <cstring>
#include <limits>

#include "pod/runtime/cgroup.hpp"

namespace pod::runtime {

namespace {

sys::Unexpected bad(std::string_view flag, std::string_view value, std::string_view why) {
  return sys::make_error(EINVAL, "{} '{}': {}", flag, value, why);
}

// Digits only, no sign, no overflow.
std::optional<std::uint64_t> digits(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string size_text(std::uint64_t v) {
  const char* units[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (u < 4 && v >= 1024 && v % 1024 == 0) {
    v /= 1024;
    ++u;
  }
  return fmt::format("{}{}", v, units[u]);
}

std::string cpus_text(std::uint32_t millis) {
  if (millis % 1000 == 0) return std::to_string(millis / 1000);
  std::string frac = fmt::format("{:03}", millis % 1000);
  while (frac.back() == '0') frac.pop_back();
  return fmt::format("{}.{}", millis / 1000, frac);
}

}  // namespace

sys::Result<std::uint64_t> parse_size(std::string_view flag, std::string_view value) {
  constexpr std::string_view kWhy = "not a size (a number with an optional K, M, G or T suffix: 512M, 1.5G)";
  std::string_view s = value;
  if (s.ends_with("iB") || s.ends_with("ib")) s.remove_suffix(2);
  else if (s.ends_with('B') || s.ends_with('b')) s.remove_suffix(1);
  std::uint64_t mult = 1;
  if (!s.empty()) {
    switch (s.back()) {
      case 'k': case 'K': mult = 1ULL << 10; break;
      case 'm': case 'M': mult = 1ULL << 20; break;
      case 'g': case 'G': mult = 1ULL << 30; break;
      case 't': case 'T': mult = 1ULL << 40; break;
      default: break;
    }
    if (mult != 1) s.remove_suffix(1);
  }
  auto dot = s.find('.');
  auto whole = digits(s.substr(0, dot));
  if (!whole) return bad(flag, value, kWhy);
  std::uint64_t frac_num = 0, frac_den = 1;
  if (dot != std::string_view::npos) {
    std::string_view f = s.substr(dot + 1);
    if (f.empty() || f.size() > 6 || !digits(f) || mult == 1) return bad(flag, value, kWhy);
    frac_num = *digits(f);
    for (std::size_t i = 0; i < f.size(); ++i) frac_den *= 10;
  }
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();  // what the kernel's files take
  if (*whole > static_cast<std::uint64_t>(kMax) / mult) return bad(flag, value, "too large");
  std::uint64_t bytes = *whole * mult + frac_num * mult / frac_den;
  if (bytes == 0) return bad(flag, value, "must be more than 0");
  return bytes;
}

sys::Result<std::uint32_t> parse_cpus(std::string_view flag, std::string_view value) {
  constexpr std::string_view kWhy = "not a number of cpus (1, 0.5, 1.5: at most three decimals)";
  auto dot = value.find('.');
  auto whole = digits(value.substr(0, dot));
  if (!whole) return bad(flag, value, kWhy);
  std::uint64_t millis = 0;
  if (dot != std::string_view::npos) {
    std::string_view f = value.substr(dot + 1);
    if (f.empty() || f.size() > 3 || !digits(f)) return bad(flag, value, kWhy);
    millis = *digits(f);
    for (std::size_t i = f.size(); i < 3; ++i) millis *= 10;
  }
  if (*whole > 4096) return bad(flag, value, "more than 4096 cpus");
  millis += *whole * 1000;
  if (millis == 0) return bad(flag, value, "must be more than 0");
  return static_cast<std::uint32_t>(millis);
}

sys::Result<std::uint64_t> parse_count(std::string_view flag, std::string_view value) {
  auto v = digits(value);
  if (!v) return bad(flag, value, "not a whole number");
  if (*v == 0) return bad(flag, value, "must be more than 0");
  if (*v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return bad(flag, value, "too large");
  return *v;
}

sys::Result<DeviceValue> parse_device_value(std::string_view flag, std::string_view value, bool size) {
  auto colon = value.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return bad(flag, value, size ? "expected DEV:RATE (/dev/sda:10M)" : "expected DEV:N (/dev/sda:100)");
  DeviceValue d{std::string(value.substr(0, colon)), 0};
  if (!d.device.starts_with('/')) return bad(flag, value, "the device is not an absolute path (/dev/sda)");
  std::string_view v = value.substr(colon + 1);
  auto n = size ? parse_size(flag, v) : parse_count(flag, v);
  // The reason alone, without the "FLAG 'RATE': " the parser put before it.
  if (!n) return bad(flag, value, n.error().message.substr(fmt::format("{} '{}': ", flag, v).size()));
  d.value = *n;
  return d;
}

sys::Result<DeviceLimit> parse_device_limit(std::string_view flag, std::string_view value, bool size) {
  DeviceValue d = POD_TRY(parse_device_value(flag, value, size));
  struct stat st {};
  if (::stat(d.device.c_str(), &st) != 0) {
    int e = errno;
    return sys::make_error(e, "{} '{}': device '{}': {}", flag, value, d.device, std::strerror(e));
  }
  if (!S_ISBLK(st.st_mode)) return bad(flag, value, fmt::format("'{}' is not a block device", d.device));
  return DeviceLimit{d.device, ::major(st.st_rdev), ::minor(st.st_rdev), d.value};
}

sys::Result<std::string> parse_cpu_list(std::string_view flag, std::string_view value) {
  constexpr std::string_view kWhy = "not a cpu list (0-2,4: numbers and ascending ranges, comma separated)";
  if (value.empty()) return bad(flag, value, kWhy);
  std::string_view rest = value;
  while (true) {
    auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    auto dash = item.find('-');
    auto lo = digits(item.substr(0, dash));
    if (!lo || *lo > 8192) return bad(flag, value, kWhy);
    if (dash != std::string_view::npos) {
      auto hi = digits(item.substr(dash + 1));
      if (!hi || *hi < *lo || *hi > 8192) return bad(flag, value, kWhy);
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return std::string(value);
}

bool Limits::empty() const {
  return !memory && !cpu_millis && !pids && read_bps.empty() && write_bps.empty() && read_iops.empty() &&
         write_iops.empty() && cpuset_cpus.empty();
}

std::vector<std::string> Limits::controllers() const {
  std::vector<std::string> c;
  if (memory) c.emplace_back("memory");
  if (cpu_millis) c.emplace_back("cpu");
  if (pids) c.emplace_back("pids");
  if (!read_bps.empty() || !write_bps.empty() || !read_iops.empty() || !write_iops.empty()) c.emplace_back("io");
  if (!cpuset_cpus.empty()) c.emplace_back("cpuset");
  return c;
}

std::string Limits::describe() const {
  std::vector<std::string> parts;
  if (memory) parts.push_back("memory " + size_text(*memory));
  if (cpu_millis) parts.push_back("cpus " + cpus_text(*cpu_millis));
  if (pids) parts.push_back(fmt::format("pids {}", *pids));
  auto io = [&](const std::vector<DeviceLimit>& v, const char* what, bool size) {
    for (auto& d : v)
      parts.push_back(fmt::format("io {} {}/s on {} ({}:{})", what, size ? size_text(d.value) : std::to_string(d.value),
                                  d.device, d.major, d.minor));
  };
  io(read_bps, "read", true);
  io(write_bps, "write", true);
  io(read_iops, "read ops", false);
  io(write_iops, "write ops", false);
  if (!cpuset_cpus.empty()) parts.push_back("cpuset " + cpuset_cpus);
  std::string out;
  for (auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

}  // namespace pod::runtime
