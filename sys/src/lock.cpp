#include "pod/sys/lock.hpp"

#include <sys/file.h>

#include "pod/sys/fs.hpp"

namespace pod::sys {
namespace {

Result<void> lock_fd(int fd, FileLock::Mode mode, bool wait) {
  int op = (mode == FileLock::Mode::shared ? LOCK_SH : LOCK_EX) | (wait ? 0 : LOCK_NB);
  while (::flock(fd, op) != 0) {
    if (errno == EINTR) continue;
    return sys_error("flock");
  }
  return {};
}

}  // namespace

Result<FileLock> FileLock::acquire(FdRef dir, std::string_view name, Mode mode, bool wait) {
  Fd fd = POD_TRY(open_at(dir, name, O_RDWR | O_CREAT | O_NOFOLLOW, 0644));
  POD_TRY_CTX(lock_fd(fd.get(), mode, wait), "locking '{}'", name);
  return FileLock(std::move(fd), mode);
}

Result<void> FileLock::change(Mode mode, bool wait) {
  POD_TRY(lock_fd(fd_.get(), mode, wait));
  mode_ = mode;
  return {};
}

}  // namespace pod::sys
