// What every command shares: global flags, the store, and how to report.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pod/cas/import.hpp"
#include "pod/cas/store.hpp"
#include "pod/sys/error.hpp"

namespace pod::cmd {

struct Globals {
  std::string root;  // --root
  bool debug = false;
  bool quiet = false;
  std::vector<char*> argv;  // as main got it, for handing a command to pod-image
};

Globals& globals();

// Prints "pod: warning: ..." unless --quiet.
void warn(const std::string& text);
// Prints a note on stderr unless --quiet.
void note(const std::string& text);

// Opens the store, for ordinary users inside the store's user namespace (entered
// once per process). The basis says how files in the store are owned.
struct OpenStore {
  cas::Store store;
  cas::OwnershipBasis basis;
};
[[nodiscard]] sys::Result<OpenStore> open_store(sys::FileLock::Mode mode);

// Enters the store's user namespace (ordinary users; nothing for root), once.
[[nodiscard]] sys::Result<cas::OwnershipBasis> enter_store_namespace();

// Before pod starts a pod or enters one: re-executes from a sealed copy of itself when the
// pod's ids could write our executable (sys/sealed_exe.hpp): when the file is writable by
// ids other than host root, or `pod_root_is_host_root`. Returns when nothing is needed.
[[nodiscard]] sys::Result<void> seal_exe_if_exposed(bool pod_root_is_host_root);

}  // namespace pod::cmd
