#include "xattr_io.hpp"

#include <sys/xattr.h>

#include <cstring>
#include <vector>

#include "pod/shift/xattrs.hpp"

namespace pod::shift::detail {

namespace {

bool is_dir_fd(const Node& n) { return S_ISDIR(n.st.st_mode); }

ssize_t do_list(const Node& n, char* buf, std::size_t size) {
  if (is_dir_fd(n)) return ::flistxattr(n.fd, buf, size);
  // listxattrat (6.13) refuses O_PATH fds for an empty path (EBADF), as f*xattr do.
  return ::listxattr(ProcPath(n.fd).c_str(), buf, size);
}

ssize_t do_get(const Node& n, const char* name, void* buf, std::size_t size) {
  if (is_dir_fd(n)) return ::fgetxattr(n.fd, name, buf, size);
  return ::getxattr(ProcPath(n.fd).c_str(), name, buf, size);
}

}  // namespace

sys::Result<XattrNames> list_xattrs(const Node& n) {
  XattrNames out;
  if (S_ISLNK(n.st.st_mode)) return out;
  std::vector<char> buf(1024);
  ssize_t len;
  for (;;) {
    len = do_list(n, buf.data(), buf.size());
    if (len >= 0) break;
    if (errno == ENOTSUP) return out;
    if (errno != ERANGE) return sys::sys_error("listing the xattrs of '{}'", n.path());
    ssize_t need = do_list(n, nullptr, 0);
    if (need < 0) return sys::sys_error("listing the xattrs of '{}'", n.path());
    buf.resize(static_cast<std::size_t>(need) + 256);
  }
  for (std::size_t off = 0; off < static_cast<std::size_t>(len);) {
    const char* name = buf.data() + off;
    std::size_t l = ::strnlen(name, static_cast<std::size_t>(len) - off);
    if (std::strcmp(name, kCapXattr) == 0) out.capability = true;
    else if (std::strcmp(name, kAclAccess) == 0) out.acl_access = true;
    else if (std::strcmp(name, kAclDefault) == 0) out.acl_default = true;
    off += l + 1;
  }
  return out;
}

sys::Result<std::optional<std::string>> get_xattr(const Node& n, const char* name) {
  std::string v(256, '\0');
  for (;;) {
    ssize_t len = do_get(n, name, v.data(), v.size());
    if (len >= 0) {
      v.resize(static_cast<std::size_t>(len));
      return std::optional<std::string>(std::move(v));
    }
    if (errno == ENODATA || errno == ENOTSUP) return std::optional<std::string>{};
    if (errno != ERANGE) return sys::sys_error("reading {} of '{}'", name, n.path());
    ssize_t need = do_get(n, name, nullptr, 0);
    if (need < 0) return sys::sys_error("reading {} of '{}'", name, n.path());
    v.resize(static_cast<std::size_t>(need));
  }
}

sys::Result<void> set_xattr(const Node& n, const char* name, std::string_view value) {
  int rc = is_dir_fd(n) ? ::fsetxattr(n.fd, name, value.data(), value.size(), 0)
                        : ::setxattr(ProcPath(n.fd).c_str(), name, value.data(), value.size(), 0);
  if (rc < 0) return sys::sys_error("writing {} of '{}'", name, n.path());
  return {};
}

}  // namespace pod::shift::detail
