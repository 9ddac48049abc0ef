// Advisory file locks (flock) held for the lifetime of the object.
#pragma once

#include <string_view>

#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::sys {

class FileLock {
 public:
  enum class Mode { shared, exclusive };

  // Opens (creating) dir/name and locks it; waits unless `wait` is false, in which
  // case a held lock is EWOULDBLOCK.
  [[nodiscard]] static Result<FileLock> acquire(FdRef dir, std::string_view name, Mode mode,
                                                bool wait = true);
  // Changes the mode in place (not atomic: flock drops and retakes).
  [[nodiscard]] Result<void> change(Mode mode, bool wait = true);
  [[nodiscard]] Mode mode() const { return mode_; }

 private:
  FileLock(Fd fd, Mode mode) : fd_(std::move(fd)), mode_(mode) {}
  Fd fd_;
  Mode mode_;
};

}  // namespace pod::sys
