#include "pod/idmap/subid.hpp"

#include <fmt/format.h>

namespace pod::idmap {
namespace {

// Decimal only, as shadow's getulong with base 10 would accept; no sign, no hex.
bool parse_u32(std::string_view s, std::uint64_t max, std::uint64_t& out) {
  if (s.empty() || s.size() > 10) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v > max) return false;
  out = v;
  return true;
}

}  // namespace

std::vector<SubidEntry> parse_subid(std::string_view text, std::string_view file_name, const Warn& warn) {
  std::vector<SubidEntry> out;
  int line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    auto bad = [&](std::string_view why) {
      if (warn) warn(fmt::format("{}:{}: {}; line ignored", file_name, line_no, why));
    };
    auto c1 = line.find(':');
    auto c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos || line.find(':', c2 + 1) != std::string_view::npos) {
      bad("not OWNER:START:COUNT");
      continue;
    }
    std::string_view owner = line.substr(0, c1);
    std::uint64_t start = 0, count = 0;
    if (owner.empty()) { bad("no owner"); continue; }
    if (!parse_u32(line.substr(c1 + 1, c2 - c1 - 1), UINT32_MAX, start)) {
      bad("start is not a decimal number below 2^32");
      continue;
    }
    if (!parse_u32(line.substr(c2 + 1), UINT32_MAX, count)) {
      bad("count is not a decimal number below 2^32");
      continue;
    }
    if (count == 0) { bad("count is 0"); continue; }
    if (start + count > (std::uint64_t{1} << 32)) { bad("range ends past 2^32"); continue; }
    out.push_back({std::string(owner), {static_cast<std::uint32_t>(start), static_cast<std::uint32_t>(count)}, line_no});
  }
  return out;
}

std::vector<IdRange> ranges_for(const std::vector<SubidEntry>& entries, std::string_view user_name, uid_t uid) {
  std::vector<IdRange> out;
  std::string uid_text = std::to_string(uid);
  for (auto& e : entries)
    if (e.owner == user_name || e.owner == uid_text) out.push_back(e.range);
  return out;
}

}  // namespace pod::idmap
