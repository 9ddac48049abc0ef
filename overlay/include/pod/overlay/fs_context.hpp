// A filesystem context of the new mount API (fsopen) whose failures carry the
// kernel's own explanation, read back from the context's message log.
#pragma once

#include <string>
#include <string_view>

#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::overlay {

class FsContext {
 public:
  [[nodiscard]] static sys::Result<FsContext> open(const char* fs_type);

  [[nodiscard]] sys::Result<void> set_fd(const char* key, sys::FdRef fd);
  [[nodiscard]] sys::Result<void> set_string(const char* key, const std::string& value);
  [[nodiscard]] sys::Result<void> set_flag(const char* key);
  [[nodiscard]] sys::Result<void> create();
  // fsmount with MOUNT_ATTR_* `attrs`: the detached mount.
  [[nodiscard]] sys::Result<sys::Fd> mount(unsigned attrs);

  // The kernel's messages so far ("overlay: ..."), joined by "; ", and drained.
  [[nodiscard]] std::string drain_log();

 private:
  explicit FsContext(sys::Fd fd) : fd_(std::move(fd)) {}
  // An error for the failed call `what`, with errno and the kernel's messages.
  [[nodiscard]] sys::Error failure(int code, std::string what);
  const char* type_ = "";
  sys::Fd fd_;
};

}  // namespace pod::overlay
