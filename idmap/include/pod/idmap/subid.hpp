// /etc/subuid and /etc/subgid, parsed as shadow parses them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <functional>
#include "pod/sys/error.hpp"

namespace pod::idmap {

using sys::Result;

struct IdRange {
  std::uint32_t start = 0;
  std::uint32_t count = 0;
};

struct SubidEntry {
  std::string owner;  // a user name or a numeric uid, as written
  IdRange range;
  int line = 0;
};

using Warn = std::function<void(const std::string&)>;

// Parses the text of a subid file. Comments and blank lines are ignored; a malformed
// line (missing fields, a number that is negative, hex or too large, count 0, a range
// past 2^32) is skipped with a warning naming `file_name` and the line.
[[nodiscard]] std::vector<SubidEntry> parse_subid(std::string_view text, std::string_view file_name,
                                                  const Warn& warn);

// The ranges given to the user, by name or by numeric uid, in file order.
[[nodiscard]] std::vector<IdRange> ranges_for(const std::vector<SubidEntry>& entries,
                                              std::string_view user_name, uid_t uid);

}  // namespace pod::idmap
