// Capability names and the default set (libcap for the name table).
#include <sys/capability.h>

#include <algorithm>
#include <cctype>
#include <string>

#include "pod/runtime/spec.hpp"

namespace pod::runtime {

std::vector<int> default_caps() {
  return {CAP_AUDIT_WRITE, CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID,
          CAP_KILL,        CAP_MKNOD,  CAP_NET_BIND_SERVICE, CAP_NET_RAW, CAP_SETFCAP,
          CAP_SETGID,      CAP_SETPCAP, CAP_SETUID,      CAP_SYS_CHROOT};
}

sys::Result<int> parse_cap(std::string_view name) {
  std::string lower;
  for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!lower.starts_with("cap_")) lower = "cap_" + lower;
  cap_value_t v = 0;
  bool digits = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  // cap_from_name also takes numbers; a capability is named here, never numbered.
  if (digits || ::cap_from_name(lower.c_str(), &v) != 0)
    return sys::make_error(EINVAL, "unknown capability '{}' (names as in capabilities(7), e.g. CAP_NET_ADMIN)", name);
  return static_cast<int>(v);
}

std::string cap_name(int cap) {
  char* text = ::cap_to_name(static_cast<cap_value_t>(cap));
  if (!text) return fmt::format("CAP_{}", cap);
  std::string out = text;
  ::cap_free(text);
  for (auto& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!out.starts_with("CAP_")) out = "CAP_" + out;
  return out;
}

}  // namespace pod::runtime
