// Against the /proc/self/exe attack (CVE-2019-5736): an image whose entrypoint is
// "#!/proc/self/exe" makes the kernel run the pod binary itself inside the pod, where the
// pod's processes can open it through /proc/PID/exe and, once it exits, write it, if
// their ids may write the file. There pod first re-executes itself from a sealed memfd
// copy, as runc does: /proc/self/exe is then a copy nothing can write or resize.
#pragma once

#include "pod/sys/error.hpp"

namespace pod::sys {

// /proc/self/exe is such a sealed copy already.
[[nodiscard]] bool running_sealed();

// Whether ids other than host root could write /proc/self/exe's file: not owned by root,
// or group- or world-writable, on a filesystem mounted read-write.
[[nodiscard]] bool exe_writable_by_others();

// Re-executes this process from a sealed memfd copy of /proc/self/exe, same argv and
// environment. Returns only on failure.
[[nodiscard]] Result<void> reexec_sealed(char* const* argv);

}  // namespace pod::sys
