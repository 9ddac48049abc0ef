#include <fmt/format.h>

#include "pod/runtime/spec.hpp"

namespace pod::runtime {

sys::Result<void> check_name(std::string_view name, std::string_view what) {
  auto bad = [&](std::string_view why) {
    return sys::make_error(EINVAL, "{} '{}' is not allowed: {} (names are [a-z0-9][a-z0-9-]{{0,62}})", what, name,
                           why);
  };
  if (name.empty()) return bad("it is empty");
  if (name.size() > 63) return bad("it is longer than 63 characters");
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_alnum(name[0])) return bad("it must start with a lowercase letter or a digit");
  for (char c : name)
    if (!lower_alnum(c) && c != '-') return bad(fmt::format("'{}' is not a lowercase letter, digit or '-'", c));
  return {};
}

}  // namespace pod::runtime
