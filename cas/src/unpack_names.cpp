// Entry names, and how the file list spells them.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "unpack_internal.hpp"

namespace pod::cas {
namespace detail {

using sys::make_error;

Result<std::string> normalise(std::string_view raw, std::uint32_t max_depth) {
  std::string_view n = raw;
  if (n.empty()) return make_error(EINVAL, "the name is empty");
  if (n.front() == '/') return make_error(EINVAL, "the name is absolute");
  if (n.starts_with("./")) n.remove_prefix(2);
  while (!n.empty() && n.back() == '/') n.remove_suffix(1);
  if (n.empty() || n == ".") return std::string();
  std::uint32_t depth = 0;
  std::size_t i = 0;
  while (i <= n.size()) {
    std::size_t j = std::min(n.find('/', i), n.size());
    std::string_view c = n.substr(i, j - i);
    if (c.empty()) return make_error(EINVAL, "the name has an empty component");
    if (c == "..") return make_error(EINVAL, "the name has a '..' component, which leaves the root");
    if (c == ".") return make_error(EINVAL, "the name has a '.' component inside it");
    ++depth;
    i = j + 1;
  }
  if (depth > max_depth)
    return make_error(EINVAL, "the name is {} components deep, more than the limit of {} (raise it with --max-depth)",
                      depth, max_depth);
  return std::string(n);
}

std::uint32_t depth_of(std::string_view path) {
  return path.empty() ? 0 : static_cast<std::uint32_t>(std::count(path.begin(), path.end(), '/') + 1);
}

std::pair<std::string_view, std::string_view> split_parent(std::string_view path) {
  auto slash = path.rfind('/');
  if (slash == std::string_view::npos) return {std::string_view(), path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

std::string join(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string s;
  s.reserve(dir.size() + 1 + name.size());
  s.append(dir).append("/").append(name);
  return s;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) n = 2, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4) n = 3, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else return false;
    if (s.size() - i <= n) return false;
    auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return false;
    for (std::size_t k = 2; k <= n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += n + 1;
  }
  return true;
}

std::string to_hex(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view s) {
  if (s.size() % 2) return std::nullopt;
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < s.size(); i += 2) {
    int hi = val(s[i]), lo = val(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

}  // namespace detail

}  // namespace pod::cas
