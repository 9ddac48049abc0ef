// Owned and borrowed file descriptors.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <utility>

namespace pod::sys {

// A move-only owner of a file descriptor; closes it on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~Fd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// A borrowed descriptor for parameters, as string_view is to string.
// AT_FDCWD is a valid FdRef (paths relative to the working directory).
class FdRef {
 public:
  FdRef(const Fd& fd) noexcept : fd_(fd.get()) {}  // NOLINT: implicit by design
  static FdRef from_raw(int fd) noexcept { return FdRef(fd); }
  static FdRef cwd() noexcept { return FdRef(AT_FDCWD); }
  [[nodiscard]] int get() const noexcept { return fd_; }

 private:
  explicit FdRef(int fd) noexcept : fd_(fd) {}
  int fd_;
};

// Closes every descriptor not in keep[0..n) (negative entries ignored; the array is
// sorted in place). No allocation: for a child after fork or clone.
void close_all_except(int* keep, std::size_t n) noexcept;

}  // namespace pod::sys
