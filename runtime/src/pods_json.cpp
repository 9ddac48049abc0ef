// pod.json and status.json. Maps are stored as [{"inner", "outer", "count"}], caps by
// name ("CAP_CHOWN") and rlimits by name ("RLIMIT_NOFILE"), so the files read well and
// survive a renumbering. Reading refuses anything malformed, naming the field.
#include <sys/capability.h>
#include <sys/resource.h>

#include <array>
#include <cctype>
#include <nlohmann/json.hpp>

#include "pod/idmap/ranges.hpp"
#include "pod/runtime/pods.hpp"
#include "net_json.hpp"
#include "pods_json_fields.hpp"

namespace pod::runtime {

using json = nlohmann::json;
using namespace fields;

namespace {

constexpr int kVersion = 1;

struct RlimitName {
  int resource;
  const char* name;
};
constexpr std::array<RlimitName, 16> kRlimits{{
    {RLIMIT_AS, "RLIMIT_AS"},           {RLIMIT_CORE, "RLIMIT_CORE"},     {RLIMIT_CPU, "RLIMIT_CPU"},
    {RLIMIT_DATA, "RLIMIT_DATA"},       {RLIMIT_FSIZE, "RLIMIT_FSIZE"},   {RLIMIT_LOCKS, "RLIMIT_LOCKS"},
    {RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"}, {RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"}, {RLIMIT_NICE, "RLIMIT_NICE"},
    {RLIMIT_NOFILE, "RLIMIT_NOFILE"},   {RLIMIT_NPROC, "RLIMIT_NPROC"},   {RLIMIT_RSS, "RLIMIT_RSS"},
    {RLIMIT_RTPRIO, "RLIMIT_RTPRIO"},   {RLIMIT_RTTIME, "RLIMIT_RTTIME"}, {RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"},
    {RLIMIT_STACK, "RLIMIT_STACK"},
}};

std::string rlimit_name(int resource) {
  for (auto& r : kRlimits)
    if (r.resource == resource) return r.name;
  return std::to_string(resource);
}

// Through libcap, as the kernel's names: "CAP_CHOWN". Kept here rather than borrowed from
// the isolators so the record format depends on nothing that changes with them.
std::string cap_to_text(int cap) {
  char* n = ::cap_to_name(static_cast<cap_value_t>(cap));
  std::string out = n ? n : std::to_string(cap);
  if (n) ::cap_free(n);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

sys::Result<int> cap_from_text(const std::string& name) {
  std::string low;
  for (char c : name) low += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  cap_value_t v = 0;
  if (!low.starts_with("cap_") || ::cap_from_name(low.c_str(), &v) != 0)
    return sys::make_error(EINVAL, "'{}' is not a capability name", name);
  return static_cast<int>(v);
}

const char* seccomp_name(Security::Seccomp s) {
  switch (s) {
    case Security::Seccomp::default_profile: return "default";
    case Security::Seccomp::unconfined: return "unconfined";
    case Security::Seccomp::file: return "file";
  }
  return "default";
}

json map_to_json(const idmap::IdMap& m) {
  json a = json::array();
  for (auto& e : m.extents) a.push_back({{"inner", e.inner}, {"outer", e.outer}, {"count", e.count}});
  return a;
}

json security_to_json(const Security& s) {
  json caps = json::array();
  for (int c : s.caps) caps.push_back(cap_to_text(c));
  json rl = json::array();
  for (auto& r : s.rlimits) rl.push_back({{"resource", rlimit_name(r.resource)}, {"soft", r.soft}, {"hard", r.hard}});
  return {{"caps", caps},
          {"no_new_privs", s.no_new_privs},
          {"seccomp", seccomp_name(s.seccomp)},
          {"seccomp_file", s.seccomp_file},
          {"rlimits", rl},
          {"oom_score_adj", s.oom_score_adj ? json(*s.oom_score_adj) : json(nullptr)}};
}

json app_to_json(const AppRecord& a) {
  return {{"name", a.app.name},
          {"image", a.image},
          {"image_digest", a.image_digest},
          {"pid", a.pid},
          {"start_time", a.start_time},
          {"argv", a.app.argv},
          {"env", a.app.env},
          {"workdir", a.app.workdir},
          {"uid", a.app.uid},
          {"gid", a.app.gid},
          {"groups", a.app.groups},
          {"security", security_to_json(a.app.security)}};
}

sys::Result<idmap::IdMap> map_from_json(const json& o, std::string_view key, idmap::IdKind kind) {
  idmap::IdMap m;
  POD_TRY(each(o, key, "", true, [&](const json& e, const std::string& path) -> sys::Result<void> {
    if (!e.is_object()) return bad(path, "is not an object {inner, outer, count}");
    idmap::Extent x;
    POD_TRY(read_int(e, "inner", path, x.inner, 0, idmap::kIdLimit, true));
    POD_TRY(read_int(e, "outer", path, x.outer, 0, idmap::kIdLimit, true));
    POD_TRY(read_int(e, "count", path, x.count, 1, idmap::kIdLimit, true));
    m.extents.push_back(x);
    return {};
  }));
  if (!m.extents.empty())
    if (auto r = idmap::check_map_shape(m, kind); !r) return bad(std::string(key), r.error().message);
  return m;
}

sys::Result<Security> security_from_json(const json& o, const std::string& path) {
  Security s;
  if (!o.is_object()) return bad(path, "is not an object");
  s.caps.clear();
  POD_TRY(each(o, "caps", path, true, [&](const json& e, const std::string& p) -> sys::Result<void> {
    if (!e.is_string()) return bad(p, "is not a capability name");
    auto c = cap_from_text(e.get<std::string>());
    if (!c) return bad(p, c.error().message);
    s.caps.push_back(*c);
    return {};
  }));
  POD_TRY(read(o, "no_new_privs", path, s.no_new_privs));
  std::string sc = "default";
  POD_TRY(read(o, "seccomp", path, sc));
  if (sc == "default") s.seccomp = Security::Seccomp::default_profile;
  else if (sc == "unconfined") s.seccomp = Security::Seccomp::unconfined;
  else if (sc == "file") s.seccomp = Security::Seccomp::file;
  else return bad(join(path, "seccomp"), fmt::format("is '{}', not default, unconfined or file", sc));
  POD_TRY(read(o, "seccomp_file", path, s.seccomp_file));
  if (s.seccomp == Security::Seccomp::file && s.seccomp_file.empty())
    return bad(join(path, "seccomp_file"), "is empty while seccomp is 'file'");
  POD_TRY(each(o, "rlimits", path, false, [&](const json& e, const std::string& p) -> sys::Result<void> {
    if (!e.is_object()) return bad(p, "is not an object {resource, soft, hard}");
    std::string name;
    POD_TRY(read(e, "resource", p, name, true));
    Rlimit r;
    r.resource = -1;
    for (auto& k : kRlimits)
      if (name == k.name) r.resource = k.resource;
    if (r.resource < 0) return bad(join(p, "resource"), fmt::format("'{}' is not an RLIMIT_ name", name));
    POD_TRY(read_int(e, "soft", p, r.soft, 0, UINT64_MAX, true));
    POD_TRY(read_int(e, "hard", p, r.hard, 0, UINT64_MAX, true));
    s.rlimits.push_back(r);
    return {};
  }));
  int oom = 0;
  const json* j = POD_TRY(member(o, "oom_score_adj", path, false));
  if (j) {
    POD_TRY(read_int(o, "oom_score_adj", path, oom, -1000, 1000));
    s.oom_score_adj = oom;
  }
  return s;
}

sys::Result<AppRecord> app_from_json(const json& o, const std::string& path) {
  AppRecord a;
  if (!o.is_object()) return bad(path, "is not an object");
  POD_TRY(read(o, "name", path, a.app.name, true));
  if (auto r = check_name(a.app.name, "app name"); !r) return bad(join(path, "name"), r.error().message);
  POD_TRY(read(o, "image", path, a.image));
  POD_TRY(read(o, "image_digest", path, a.image_digest));
  POD_TRY(read_int(o, "pid", path, a.pid, 0, INT32_MAX));
  POD_TRY(read_int(o, "start_time", path, a.start_time, 0, UINT64_MAX));
  POD_TRY(read(o, "argv", path, a.app.argv, true));
  if (a.app.argv.empty()) return bad(join(path, "argv"), "is empty");
  POD_TRY(read(o, "env", path, a.app.env));
  POD_TRY(read(o, "workdir", path, a.app.workdir));
  if (a.app.workdir.empty() || a.app.workdir.front() != '/')
    return bad(join(path, "workdir"), "is not an absolute path");
  POD_TRY(read_int(o, "uid", path, a.app.uid, 0, idmap::kIdLimit - 1));
  POD_TRY(read_int(o, "gid", path, a.app.gid, 0, idmap::kIdLimit - 1));
  POD_TRY(each(o, "groups", path, false, [&](const json& e, const std::string& p) -> sys::Result<void> {
    if (!e.is_number_unsigned() || e.get<std::uint64_t>() >= idmap::kIdLimit) return bad(p, "is not a group id");
    a.app.groups.push_back(e.get<std::uint32_t>());
    return {};
  }));
  const json* sec = POD_TRY(member(o, "security", path, true));
  a.app.security = POD_TRY(security_from_json(*sec, join(path, "security")));
  return a;
}

}  // namespace

std::string record_to_json(const PodRecord& r) {
  json apps = json::array();
  for (auto& a : r.apps) apps.push_back(app_to_json(a));
  json j{{"version", kVersion},
         {"uuid", r.uuid},
         {"name", r.name},
         {"hostname", r.hostname},
         {"created", r.created},
         {"apps", apps},
         {"uid_map", map_to_json(r.uids)},
         {"gid_map", map_to_json(r.gids)},
         {"userns", r.userns},
         {"lease", r.lease},
         {"shift", r.shift},
         {"shift_keys", r.shift_keys},
         {"rootless", r.rootless},
         {"cgroups", r.cgroups},
         {"volume_sources", r.volume_sources},
         {"pid", r.pid},
         {"start_time", r.start_time},
         {"net", detail::net_to_json(r.net)}};
  return j.dump(2) + "\n";
}

sys::Result<PodRecord> record_from_json(std::string_view text) {
  auto fail = [](sys::Error e) { return sys::Unexpected(std::move(e).context("pod record")); };
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail({EINVAL, "not a JSON object"});
  auto parse = [&]() -> sys::Result<PodRecord> {
    PodRecord r;
    int version = 0;
    POD_TRY(read_int(j, "version", "", version, 0, INT32_MAX, true));
    if (version != kVersion) return bad("version", fmt::format("is {}, this pod reads {}", version, kVersion));
    POD_TRY(read(j, "uuid", "", r.uuid, true));
    if (!is_uuid(r.uuid)) return bad("uuid", fmt::format("'{}' is not a uuid", r.uuid));
    POD_TRY(read(j, "name", "", r.name, true));
    if (auto c = check_name(r.name, "pod name"); !c) return bad("name", c.error().message);
    POD_TRY(read(j, "hostname", "", r.hostname));
    POD_TRY(read(j, "created", "", r.created));
    POD_TRY(each(j, "apps", "", true, [&](const json& e, const std::string& p) -> sys::Result<void> {
      r.apps.push_back(POD_TRY(app_from_json(e, p)));
      return {};
    }));
    if (r.apps.empty()) return bad("apps", "is empty");
    r.uids = POD_TRY(map_from_json(j, "uid_map", idmap::IdKind::uid));
    r.gids = POD_TRY(map_from_json(j, "gid_map", idmap::IdKind::gid));
    POD_TRY(read(j, "userns", "", r.userns));
    POD_TRY(read(j, "lease", "", r.lease));
    POD_TRY(read(j, "shift", "", r.shift));
    POD_TRY(read(j, "shift_keys", "", r.shift_keys));
    for (std::size_t i = 0; i < r.shift_keys.size(); ++i)
      if (r.shift_keys[i].empty() || r.shift_keys[i].find_first_of("/.") != std::string::npos)
        return bad(fmt::format("shift_keys[{}]", i), "is not a cache key");
    POD_TRY(read(j, "rootless", "", r.rootless));
    POD_TRY(read(j, "cgroups", "", r.cgroups));
    for (std::size_t i = 0; i < r.cgroups.size(); ++i)
      if (!r.cgroups[i].starts_with("/sys/fs/cgroup/")) return bad(fmt::format("cgroups[{}]", i), "is not below /sys/fs/cgroup");
    POD_TRY(read(j, "volume_sources", "", r.volume_sources));
    for (std::size_t i = 0; i < r.volume_sources.size(); ++i)
      if (!r.volume_sources[i].starts_with('/')) return bad(fmt::format("volume_sources[{}]", i), "is not an absolute path");
    POD_TRY(read_int(j, "pid", "", r.pid, 0, INT32_MAX));
    POD_TRY(read_int(j, "start_time", "", r.start_time, 0, UINT64_MAX));
    if (const json* n = POD_TRY(member(j, "net", "", false))) r.net = POD_TRY(detail::net_from_json(*n));
    return r;
  };
  auto r = parse();
  if (!r) return fail(std::move(r.error()));
  return r;
}

std::string exit_to_json(const PodExitRecord& e) {
  json apps = json::array();
  for (auto& a : e.apps) apps.push_back({{"name", a.name}, {"exit", a.status.code}, {"signal", a.status.signal}});
  return json{{"exit", e.exit}, {"apps", apps}}.dump() + "\n";
}

sys::Result<PodExitRecord> exit_from_json(std::string_view text) {
  auto fail = [](sys::Error e) { return sys::Unexpected(std::move(e).context("pod exit status")); };
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail({EINVAL, "not a JSON object"});
  auto parse = [&]() -> sys::Result<PodExitRecord> {
    PodExitRecord e;
    POD_TRY(read_int(j, "exit", "", e.exit, 0, 255, true));
    POD_TRY(each(j, "apps", "", true, [&](const json& a, const std::string& p) -> sys::Result<void> {
      if (!a.is_object()) return bad(p, "is not an object {name, exit, signal}");
      AppExit x;
      POD_TRY(read(a, "name", p, x.name, true));
      POD_TRY(read_int(a, "exit", p, x.status.code, 0, 255, true));
      POD_TRY(read_int(a, "signal", p, x.status.signal, 0, 64));
      e.apps.push_back(std::move(x));
      return {};
    }));
    return e;
  };
  auto r = parse();
  if (!r) return fail(std::move(r.error()));
  return r;
}

}  // namespace pod::runtime
