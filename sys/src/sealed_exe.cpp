#include "pod/sys/sealed_exe.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <string>

#include "pod/sys/fd.hpp"

extern char** environ;

namespace pod::sys {

namespace {
constexpr const char* kName = "pod-sealed";
}

bool running_sealed() {
  char buf[64];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n < 0) return false;
  std::string link(buf, static_cast<std::size_t>(n));
  return link.starts_with(std::string("/memfd:") + kName);
}

bool exe_writable_by_others() {
  struct stat st{};
  struct statvfs vfs{};
  if (::stat("/proc/self/exe", &st) != 0 || ::statvfs("/proc/self/exe", &vfs) != 0) return true;
  if (vfs.f_flag & ST_RDONLY) return false;
  return st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
}

Result<void> reexec_sealed(char* const* argv) {
  Fd exe(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  if (!exe) return sys_error("opening /proc/self/exe");
  struct stat st{};
  if (::fstat(exe.get(), &st) != 0) return sys_error("stat of /proc/self/exe");
  Fd mem(::memfd_create(kName, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!mem) return sys_error("memfd_create");
  for (off_t done = 0; done < st.st_size;) {
    ssize_t n = ::sendfile(mem.get(), exe.get(), nullptr, static_cast<std::size_t>(st.st_size - done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return sys_error("copying /proc/self/exe to a memfd");
    done += n;
  }
  if (::fchmod(mem.get(), 0555) != 0) return sys_error("chmod of the memfd copy");
  int seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
#ifdef F_SEAL_EXEC
  seals |= F_SEAL_EXEC;
#endif
  if (::fcntl(mem.get(), F_ADD_SEALS, seals) != 0) return sys_error("sealing the memfd copy");
  ::fexecve(mem.get(), argv, environ);
  return sys_error("executing the sealed copy of pod");
}

}  // namespace pod::sys
