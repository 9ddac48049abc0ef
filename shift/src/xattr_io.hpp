// Extended attributes of a walked inode: through its fd for directories, through
// /proc/self/fd/N for O_PATH fds (f*xattr and the *xattrat calls of 6.13 refuse those).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "pod/sys/error.hpp"
#include "walk.hpp"

namespace pod::shift::detail {

struct XattrNames {
  bool capability = false, acl_access = false, acl_default = false;
  [[nodiscard]] bool any() const { return capability || acl_access || acl_default; }
};

// Which of the attributes the engine cares about the inode has. Symlinks have none of
// them (and a symlink's /proc path would reach it, not the target, but is not needed).
[[nodiscard]] sys::Result<XattrNames> list_xattrs(const Node& n);
[[nodiscard]] sys::Result<std::optional<std::string>> get_xattr(const Node& n, const char* name);
[[nodiscard]] sys::Result<void> set_xattr(const Node& n, const char* name, std::string_view value);

}  // namespace pod::shift::detail
