// rkt's ACI isolators (appc spec, "Isolators" of an app): the limits and the security an
// image asks for. ACI import checks them and stores the known ones in the image config's
// label kAciIsolatorsLabel; pod run applies them, its flags winning (cmd/run_isolators).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pod/sys/error.hpp"

namespace pod::runtime {

// The JSON array of the manifest's known isolators, as a string (OCI labels are strings).
inline constexpr std::string_view kAciIsolatorsLabel = "io.pod.aci.isolators";

// os/linux/seccomp-retain-set or os/linux/seccomp-remove-set.
struct AciSeccomp {
  bool retain = false;                // retain: only `syscalls`; remove: all but `syscalls`
  std::vector<std::string> entries;   // as the image gives them: names and @groups
  std::vector<std::string> syscalls;  // the entries with groups expanded, each known to libseccomp
  std::optional<int> errno_ret;       // what a refused call returns; none: SIGSYS kills the app (rkt's default)
  bool unconfined = false;            // a retain-set with @appc.io/all: no filter at all
  bool default_profile = false;       // a remove-set of @appc.io/empty only: pod's default profile
};

struct AciIsolators {
  std::optional<std::uint64_t> memory;         // resource/memory limit, bytes
  std::optional<std::uint32_t> cpu_millis;     // resource/cpu limit
  std::optional<std::vector<int>> caps_retain;  // os/linux/capabilities-retain-set
  std::optional<std::vector<int>> caps_remove;  // os/linux/capabilities-remove-set
  std::optional<bool> no_new_privs;            // os/linux/no-new-privileges
  std::optional<AciSeccomp> seccomp;
  std::optional<int> oom_score_adj;            // os/linux/oom-score-adj
};

struct ParsedIsolators {
  AciIsolators isolators;
  std::string known;               // the known isolators as given, a JSON array ("" when none): what import stores
  std::vector<std::string> unknown;  // names of isolators pod does not know (ignored, as rkt did)
  std::vector<std::string> notes;    // other parts ignored: "isolator 'resource/cpu': the request '1' is ignored ..."
};

// `json_array`: the manifest's app.isolators. Errors name the isolator and the reason:
// "isolator 'resource/memory': limit '12X': not a quantity (...)". Unknown names are
// ignored with a note, as rkt did; a known one given twice is an error, except the
// capability sets, whose entries add up.
[[nodiscard]] sys::Result<ParsedIsolators> parse_aci_isolators(std::string_view json_array);

// Kubernetes quantities, as appc's resource isolators take them: a decimal number and a
// suffix: k M G T P E (powers of 10), Ki Mi Gi Ti Pi Ei (powers of 2), m (thousandths),
// or an exponent (129e6). Errors give the reason only ("not a quantity (...)").
// In bytes, rounded up: "1G" = 10^9, "1Gi" = 2^30.
[[nodiscard]] sys::Result<std::uint64_t> parse_byte_quantity(std::string_view text);
// In thousandths of a cpu, rounded up: "500m" = 500, "1.5" = 1500.
[[nodiscard]] sys::Result<std::uint32_t> parse_cpu_quantity(std::string_view text);

// The groups a seccomp set may name, expanded to the system calls this libseccomp knows
// (nullopt: no such group; @appc.io/all and @appc.io/empty are not lists and give nullopt).
[[nodiscard]] std::optional<std::vector<std::string>> seccomp_group(std::string_view name);

// The set as an OCI-runtime-spec "seccomp" object (for Security::Seccomp::file).
// `loaded_before_ids`: no_new_privs is off, so the filter is loaded before pod drops
// capabilities and sets the app's ids: a retain-set then also keeps the calls pod makes
// after loading it, and a remove-set that removes one of them is an error.
[[nodiscard]] sys::Result<std::string> aci_seccomp_profile(const AciSeccomp& s, bool loaded_before_ids);

}  // namespace pod::runtime
