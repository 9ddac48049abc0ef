// An app from an image's config (OCI and Docker configs; ACI apps are stored in the
// same shape at import) and the user's overrides: argv, env, workdir, ids.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pod/runtime/aci_isolators.hpp"
#include "pod/runtime/spec.hpp"

namespace pod::runtime {

// The "config" object of an image config blob; every field optional.
struct ImageApp {
  std::vector<std::string> entrypoint, cmd, env;
  std::string workdir, user;
  std::optional<AciIsolators> isolators;  // from the label kAciIsolatorsLabel (ACI imports)
};
[[nodiscard]] sys::Result<ImageApp> parse_image_app(std::string_view config_json);

struct AppOverrides {
  std::optional<std::vector<std::string>> cmd;  // after "--": replaces Cmd, keeps Entrypoint
  std::vector<std::string> env;                 // K=V, replacing the image's K
  std::optional<std::string> workdir;
  std::optional<std::string> user;              // UID[:GID] or NAME[:GROUP]
};

// The image's /etc/passwd and /etc/group as text (empty when the image has none).
struct IdFiles {
  std::string passwd, group;
};

// argv = Entrypoint + (override or Cmd); env = image env, then overrides, PATH and HOME
// added when missing; user by name through the image's own passwd and group files
// (never the host's); supplementary groups from the group file. An empty command or an
// unknown user name is an error that says what to give.
[[nodiscard]] sys::Result<App> resolve_app(const ImageApp& image, const AppOverrides& over, const IdFiles& ids);

}  // namespace pod::runtime
