// Kubernetes quantities (appc's resource isolators): "128974848", "129e6", "129M",
// "128974848000m" and "123Mi" are all byte counts.
#include <limits>

#include "pod/runtime/aci_isolators.hpp"

namespace pod::runtime {

namespace {

__extension__ typedef unsigned __int128 Wide;

constexpr std::string_view kNotQuantity =
    "not a quantity (a number with an optional suffix: 500M = 500*10^6, 128Mi = 128*2^20, 500m = 0.5)";

bool mul(Wide& v, Wide by) { return !__builtin_mul_overflow(v, by, &v); }

Wide pow10(unsigned n) {
  Wide v = 1;
  while (n--) v *= 10;
  return v;
}

// text * unit, rounded up, at most `max`. A value of 0 is refused: these are limits.
sys::Result<std::uint64_t> scaled(std::string_view text, std::uint64_t unit, std::uint64_t max) {
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  // Digits, an optional fraction; at most 30 digits, so the mantissa fits with room.
  Wide mantissa = 0;
  unsigned digits = 0, frac = 0;
  bool dot = false;
  std::size_t i = 0;
  for (; i < s.size(); ++i) {
    if (s[i] == '.' && !dot) {
      dot = true;
      continue;
    }
    if (s[i] < '0' || s[i] > '9') break;
    if (++digits > 30) return sys::make_error(EINVAL, "{}", kNotQuantity);
    mantissa = mantissa * 10 + static_cast<unsigned>(s[i] - '0');
    if (dot) ++frac;
  }
  if (digits == 0) return sys::make_error(EINVAL, "{}", kNotQuantity);
  std::string_view suffix = s.substr(i);
  Wide num = mantissa, den = pow10(frac);
  bool ok = true;
  if (suffix.size() == 2 && suffix[1] == 'i') {
    constexpr std::string_view kBinary = "KMGTPE";
    auto k = kBinary.find(suffix[0]);
    if (k == std::string_view::npos) return sys::make_error(EINVAL, "{}", kNotQuantity);
    ok = mul(num, Wide{1} << (10 * (k + 1)));
  } else if (suffix.size() > 1 && (suffix[0] == 'e' || suffix[0] == 'E')) {
    std::string_view e = suffix.substr(1);
    bool neg_exp = e[0] == '-';
    if (e[0] == '-' || e[0] == '+') e.remove_prefix(1);
    if (e.empty() || e.size() > 2 || e.find_first_not_of("0123456789") != std::string_view::npos)
      return sys::make_error(EINVAL, "{}", kNotQuantity);
    unsigned n = static_cast<unsigned>(std::stoi(std::string(e)));
    if (n > 30) return sys::make_error(EINVAL, "{}", kNotQuantity);
    ok = neg_exp ? mul(den, pow10(n)) : mul(num, pow10(n));
  } else if (suffix.size() <= 1) {
    constexpr std::string_view kDecimal = "kMGTPE";
    if (suffix == "m") ok = mul(den, 1000);
    else if (suffix == "u") ok = mul(den, pow10(6));
    else if (suffix == "n") ok = mul(den, pow10(9));
    else if (!suffix.empty()) {
      auto k = kDecimal.find(suffix[0]);
      if (k == std::string_view::npos) return sys::make_error(EINVAL, "{}", kNotQuantity);
      ok = mul(num, pow10(3 * static_cast<unsigned>(k + 1)));
    }
  } else {
    return sys::make_error(EINVAL, "{}", kNotQuantity);
  }
  if (!ok || !mul(num, unit)) return sys::make_error(ERANGE, "too large");
  Wide v = num / den + (num % den != 0);
  if (negative && v != 0) return sys::make_error(EINVAL, "must be more than 0");
  if (v == 0) return sys::make_error(EINVAL, "must be more than 0");
  if (v > max) return sys::make_error(ERANGE, "too large");
  return static_cast<std::uint64_t>(v);
}

}  // namespace

sys::Result<std::uint64_t> parse_byte_quantity(std::string_view text) {
  // What the kernel's limit files take.
  return scaled(text, 1, static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
}

sys::Result<std::uint32_t> parse_cpu_quantity(std::string_view text) {
  auto v = scaled(text, 1000, 4096 * 1000);  // as --cpus: at most 4096 cpus
  if (!v && v.error().message == "too large") return sys::make_error(ERANGE, "more than 4096 cpus");
  if (!v) return sys::Unexpected(std::move(v).error());
  return static_cast<std::uint32_t>(*v);
}

}  // namespace pod::runtime
