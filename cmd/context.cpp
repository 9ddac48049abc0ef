#include "context.hpp"

#include <unistd.h>

#include <cstdio>

#include "pod/idmap/userns.hpp"
#include "pod/idmap/userns_keeper.hpp"
#include "pod/sys/sealed_exe.hpp"

namespace pod::cmd {

Globals& globals() {
  static Globals g;
  return g;
}

void warn(const std::string& text) {
  if (!globals().quiet) std::fprintf(stderr, "pod: warning: %s\n", text.c_str());
}

void note(const std::string& text) {
  if (!globals().quiet) std::fprintf(stderr, "%s\n", text.c_str());
}

// How long the store's user namespace outlives the last command that used it.
constexpr std::chrono::seconds kKeepUserNamespace{300};

// Ordinary users: every store command runs inside the store's user namespace, so the
// files of the image keep their owners (as subordinate ids) and remain ours to remove.
// Its keeper process spares the next commands the setuid map helpers.
sys::Result<cas::OwnershipBasis> enter_store_namespace() {
  static std::optional<cas::OwnershipBasis> entered;
  if (entered) return *entered;
  cas::OwnershipBasis basis;
  if (::geteuid() == 0 && ::getuid() == 0) {
    basis.description = "host";
    entered = basis;
    return basis;
  }
  idmap::StoreMapping m = POD_TRY(idmap::store_mapping_for_caller(warn));
  std::string keeper = idmap::keeper_pidfile();
  if (!POD_TRY_CTX(idmap::join_kept_namespace(keeper, m), "joining the store's user namespace")) {
    POD_TRY_CTX(idmap::enter_user_namespace(m), "entering the store's user namespace");
    if (m.subordinate) idmap::start_keeper(keeper, kKeepUserNamespace);
  }
  basis.overlay_xattrs = cas::OverlayXattrs::user;
  if (m.subordinate) {
    basis.ownership = cas::Ownership::exact;
    basis.description = m.describe();
  } else {
    basis.ownership = cas::Ownership::rootless_xattr;
    basis.description = fmt::format("single uid {} gid {}", m.uids.extents[0].outer, m.gids.extents[0].outer);
    static bool warned = false;
    if (!warned)
      warn(fmt::format("uid {} has no subordinate ids in /etc/subuid and /etc/subgid: files keep your "
                       "own id, their owners in the image are kept in the user.rootlesscontainers "
                       "xattr (add a range with usermod --add-subuids/--add-subgids)",
                       m.uids.extents[0].outer));
    warned = true;
  }
  entered = basis;
  return basis;
}

sys::Result<OpenStore> open_store(sys::FileLock::Mode mode) {
  // Resolve the path before entering the namespace: HOME and uid lookups are the host's.
  std::string path = globals().root;
  if (path.empty()) path = POD_TRY(cas::default_store_path());
  cas::OwnershipBasis basis = POD_TRY(enter_store_namespace());
  cas::Store store = POD_TRY(cas::Store::open(path, mode));
  return OpenStore{std::move(store), std::move(basis)};
}

sys::Result<void> seal_exe_if_exposed(bool pod_root_is_host_root) {
  if (sys::running_sealed() || !(pod_root_is_host_root || sys::exe_writable_by_others())) return {};
  std::vector<char*> argv = globals().argv;
  argv.push_back(nullptr);
  return sys::reexec_sealed(argv.data());
}

}  // namespace pod::cmd
