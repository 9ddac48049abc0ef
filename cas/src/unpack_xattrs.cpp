// Extended attributes: the image's own, and the rootless owner record.
#include <archive.h>
#include <archive_entry.h>
#include <sys/xattr.h>

#include <cstdint>
#include <optional>
#include <string>

#include "unpack_internal.hpp"

namespace pod::cas {
namespace detail {

using sys::sys_error;

Result<void> apply_xattrs(archive_entry* e, int fd, int dir, const std::string& base, std::string_view name,
                         bool rootless, const Warn& warn_fn) {
  auto warn = [&](const std::string& msg) {
    if (warn_fn) warn_fn(msg);
  };
  if (archive_entry_xattr_reset(e) == 0) return {};
  const char* key = nullptr;
  const void* value = nullptr;
  std::size_t size = 0;
  while (archive_entry_xattr_next(e, &key, &value, &size) == ARCHIVE_OK) {
    std::string_view k(key);
    if (k.starts_with("trusted.overlay.") || k.starts_with("user.overlay.")) {
      warn(fmt::format("entry '{}': ignoring xattr '{}' from the image (it would change how overlayfs sees the layer)",
                       name, k));
      continue;
    }
    if (rootless && k == kRootlessXattr) {
      warn(fmt::format("entry '{}': ignoring xattr '{}' from the image (the owner comes from the tar header)", name, k));
      continue;
    }
    int rc;
    if (fd >= 0) {
      rc = ::fsetxattr(fd, key, value, size, 0);
    } else {
      if (k.starts_with("user.")) continue;  // not allowed on symlinks and special files
      std::string p = fmt::format("/proc/self/fd/{}/{}", dir, base);
      rc = ::lsetxattr(p.c_str(), key, value, size, 0);
    }
    if (rc != 0) {
      int err = errno;
      // Not ours to set here (trusted.*, security.* without the capability), or not
      // kept by this filesystem: the layer is still usable without it.
      if ((err == EPERM && !k.starts_with("user.")) || err == EOPNOTSUPP || (fd < 0 && err == EPERM)) {
        warn(fmt::format("entry '{}': cannot set xattr '{}' ({}); skipped", name, k, sys::errno_name(err)));
        continue;
      }
      errno = err;
      return sys_error("setting xattr '{}'", k);
    }
  }
  return {};
}

}  // namespace detail

namespace {

void put_varint(std::string& out, std::uint32_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

}  // namespace

std::optional<std::string> rootless_xattr_value(std::uint32_t uid, std::uint32_t gid) {
  // umoci writes 0 as 0xFFFFFFFF (rootlesscontainers.NoopID, "unchanged") and leaves
  // the xattr out when both are: files default to root inside the container.
  constexpr std::uint32_t kNoop = 0xFFFFFFFFu;
  if (uid == 0 && gid == 0) return std::nullopt;
  std::string out;
  out.push_back(0x08);  // field 1, varint
  put_varint(out, uid == 0 ? kNoop : uid);
  out.push_back(0x10);  // field 2, varint
  put_varint(out, gid == 0 ? kNoop : gid);
  return out;
}

}  // namespace pod::cas
