#include "pod/sys/error.hpp"

#include <string.h>

namespace pod::sys {

std::string errno_name(int code) {
  const char* name = ::strerrorname_np(code);
  return name ? std::string(name) : fmt::format("errno {}", code);
}

std::string Error::what() const {
  if (code == 0) return message;
  return fmt::format("{} ({})", message, errno_name(code));
}

}  // namespace pod::sys
