#include "pod/overlay/fs_context.hpp"

#include <sys/mount.h>
#include <unistd.h>

namespace pod::overlay {

using sys::Fd;
using sys::Result;

Result<FsContext> FsContext::open(const char* fs_type) {
  Fd fd(::fsopen(fs_type, FSOPEN_CLOEXEC));
  if (!fd) {
    if (errno == ENODEV) return sys::sys_error("fsopen: this kernel has no {} filesystem", fs_type);
    if (errno == EPERM)
      return sys::sys_error("fsopen {}: mounting needs CAP_SYS_ADMIN over the mount namespace", fs_type);
    return sys::sys_error("fsopen {}", fs_type);
  }
  FsContext c(std::move(fd));
  c.type_ = fs_type;
  return c;
}

std::string FsContext::drain_log() {
  std::string out;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n <= 0) break;  // ENODATA: no more messages
    std::string_view m(buf, static_cast<std::size_t>(n));
    while (!m.empty() && m.back() == '\n') m.remove_suffix(1);
    // "e overlay: msg" (error), "w ..." (warning), "i ..." (info)
    if (m.size() > 2 && m[1] == ' ') m.remove_prefix(2);
    if (!out.empty()) out += "; ";
    out += m;
  }
  return out;
}

sys::Error FsContext::failure(int code, std::string what) {
  std::string log = drain_log();
  if (!log.empty()) what += ": " + log;
  return sys::Error{code, std::move(what)};
}

Result<void> FsContext::set_fd(const char* key, sys::FdRef fd) {
  if (::fsconfig(fd_.get(), FSCONFIG_SET_FD, key, nullptr, fd.get()) != 0)
    return sys::Unexpected(failure(errno, fmt::format("fsconfig {} (fd)", key)));
  return {};
}

Result<void> FsContext::set_string(const char* key, const std::string& value) {
  if (::fsconfig(fd_.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) != 0)
    return sys::Unexpected(failure(errno, fmt::format("fsconfig {}={}", key, value)));
  return {};
}

Result<void> FsContext::set_flag(const char* key) {
  if (::fsconfig(fd_.get(), FSCONFIG_SET_FLAG, key, nullptr, 0) != 0)
    return sys::Unexpected(failure(errno, fmt::format("fsconfig {}", key)));
  return {};
}

Result<void> FsContext::create() {
  if (::fsconfig(fd_.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
    return sys::Unexpected(failure(errno, fmt::format("creating the {} mount", type_)));
  return {};
}

Result<Fd> FsContext::mount(unsigned attrs) {
  Fd m(::fsmount(fd_.get(), FSMOUNT_CLOEXEC, attrs));
  if (!m) return sys::Unexpected(failure(errno, fmt::format("fsmount {}", type_)));
  return m;
}

}  // namespace pod::overlay
