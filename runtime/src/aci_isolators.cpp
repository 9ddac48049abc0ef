// An ACI app's isolators (appc spec, ace.md "Isolators"), checked as rkt checked them.
#include <seccomp.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "pod/runtime/aci_isolators.hpp"
#include "pod/runtime/spec.hpp"

namespace pod::runtime {

namespace {

using nlohmann::json;

constexpr std::string_view kMemory = "resource/memory", kCpu = "resource/cpu",
                           kCapsRetain = "os/linux/capabilities-retain-set",
                           kCapsRemove = "os/linux/capabilities-remove-set",
                           kNoNewPrivs = "os/linux/no-new-privileges", kOom = "os/linux/oom-score-adj",
                           kSeccompRetain = "os/linux/seccomp-retain-set",
                           kSeccompRemove = "os/linux/seccomp-remove-set";
constexpr std::string_view kKnown[] = {kMemory,      kCpu, kCapsRetain,    kCapsRemove,
                                       kNoNewPrivs, kOom, kSeccompRetain, kSeccompRemove};
constexpr std::string_view kGroups =
    "@appc.io/all, @appc.io/empty, @rkt/default-blacklist, @rkt/default-whitelist, @docker/default-blacklist, "
    "@docker/default-whitelist";

sys::Unexpected bad(std::string_view isolator, std::string_view why) {
  return sys::make_error(EINVAL, "isolator '{}': {}", isolator, why);
}

// A resource isolator's limit ({"limit": "1G", "request": "500M"}): the request is only
// a scheduling hint to rkt's orchestrators, and pod has none.
template <class T, class Parse>
sys::Result<std::optional<T>> resource_limit(std::string_view name, const json& v, Parse parse,
                                             std::vector<std::string>& notes) {
  if (!v.is_object()) return bad(name, "the value is not an object with a \"limit\"");
  auto text = [&](const char* key) -> sys::Result<std::optional<std::string>> {
    auto it = v.find(key);
    if (it == v.end() || it->is_null()) return std::nullopt;
    if (it->is_string()) return it->get<std::string>();
    if (it->is_number_unsigned()) return std::to_string(it->get<std::uint64_t>());
    return bad(name, fmt::format("the {} is not a quantity string", key));
  };
  auto limit = POD_TRY(text("limit"));
  auto request = POD_TRY(text("request"));
  if (!limit && !request) return bad(name, "neither a \"limit\" nor a \"request\"");
  if (request) notes.push_back(fmt::format("isolator '{}': the request '{}' is ignored (pod applies limits)", name, *request));
  if (!limit) return std::nullopt;
  auto parsed = parse(*limit);
  if (!parsed) return bad(name, fmt::format("limit '{}': {}", *limit, parsed.error().message));
  return std::optional<T>(*parsed);
}

sys::Result<std::vector<std::string>> name_set(std::string_view name, const json& v) {
  if (!v.is_object()) return bad(name, "the value is not an object with a \"set\"");
  auto it = v.find("set");
  if (it == v.end() || !it->is_array() || it->empty()) return bad(name, "\"set\" is not a non-empty array");
  std::vector<std::string> out;
  for (const auto& e : *it) {
    if (!e.is_string() || e.get_ref<const std::string&>().empty())
      return bad(name, fmt::format("the set entry {} is not a name", e.dump()));
    out.push_back(e.get<std::string>());
  }
  return out;
}

sys::Result<std::vector<int>> cap_set(std::string_view name, const json& v) {
  std::vector<int> caps;
  for (const auto& c : POD_TRY(name_set(name, v))) {
    auto cap = parse_cap(c);
    if (!cap) return bad(name, cap.error().message);
    caps.push_back(*cap);
  }
  return caps;
}

// "ENOSYS" -> ENOSYS, by the C library's own names.
std::optional<int> errno_number(std::string_view name) {
  for (int e = 1; e < 4096; ++e)
    if (sys::errno_name(e) == name) return e;
  return std::nullopt;
}

sys::Result<AciSeccomp> seccomp_set(std::string_view name, const json& v) {
  AciSeccomp s;
  s.retain = name == kSeccompRetain;
  s.entries = POD_TRY(name_set(name, v));
  if (auto e = v.find("errno"); e != v.end() && !e->is_null()) {
    if (!e->is_string()) return bad(name, "\"errno\" is not a string");
    auto n = errno_number(e->get<std::string>());
    if (!n) return bad(name, fmt::format("errno '{}' is not an errno name (EPERM, ENOSYS, ... as in errno(3))",
                                         e->get<std::string>()));
    s.errno_ret = *n;
  }
  bool all = false, only_empty = true;
  for (const auto& entry : s.entries) {
    if (entry == "@appc.io/all") {
      all = true;
      only_empty = false;
    } else if (entry == "@appc.io/empty") {
      continue;  // adds nothing
    } else if (entry.starts_with("@")) {
      auto group = seccomp_group(entry);
      if (!group) return bad(name, fmt::format("unknown seccomp group '{}' (pod knows {})", entry, kGroups));
      s.syscalls.insert(s.syscalls.end(), group->begin(), group->end());
      only_empty = false;
    } else {
      if (::seccomp_syscall_resolve_name(entry.c_str()) == __NR_SCMP_ERROR)
        return bad(name, fmt::format("unknown system call '{}'", entry));
      s.syscalls.push_back(entry);
      only_empty = false;
    }
  }
  std::sort(s.syscalls.begin(), s.syscalls.end());
  s.syscalls.erase(std::unique(s.syscalls.begin(), s.syscalls.end()), s.syscalls.end());
  if (s.retain) {
    // As rkt: retaining everything is no filter.
    if (all) s.unconfined = true;
    else if (only_empty) return bad(name, "retains no system call: the app could not even be executed");
  } else {
    if (all) return bad(name, "removes every system call (@appc.io/all): the app could not even be executed");
    // As rkt: removing nothing opts in to the runtime's default filter.
    if (only_empty) s.default_profile = true;
  }
  return s;
}

}  // namespace

sys::Result<ParsedIsolators> parse_aci_isolators(std::string_view json_array) {
  json doc = json::parse(json_array, nullptr, false);
  if (doc.is_discarded() || !doc.is_array()) return sys::make_error(EINVAL, "isolators: not a JSON array");
  ParsedIsolators out;
  AciIsolators& iso = out.isolators;
  json known = json::array();
  std::set<std::string> seen;
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const json& entry = doc[i];
    auto n = entry.is_object() ? entry.find("name") : entry.end();
    if (!entry.is_object() || n == entry.end() || !n->is_string())
      return sys::make_error(EINVAL, "isolators[{}]: not an object with a string \"name\"", i);
    std::string name = n->get<std::string>();
    if (std::find(std::begin(kKnown), std::end(kKnown), name) == std::end(kKnown)) {
      out.unknown.push_back(name);
      continue;
    }
    bool caps = name == kCapsRetain || name == kCapsRemove;
    if (!seen.insert(name).second && !caps) return bad(name, "given twice");
    auto v = entry.find("value");
    if (v == entry.end()) return bad(name, "no \"value\"");
    if (name == kMemory) {
      iso.memory = POD_TRY(resource_limit<std::uint64_t>(name, *v, parse_byte_quantity, out.notes));
    } else if (name == kCpu) {
      iso.cpu_millis = POD_TRY(resource_limit<std::uint32_t>(name, *v, parse_cpu_quantity, out.notes));
    } else if (caps) {
      auto& set = name == kCapsRetain ? iso.caps_retain : iso.caps_remove;
      if (!set) set.emplace();
      for (int c : POD_TRY(cap_set(name, *v)))
        if (std::find(set->begin(), set->end(), c) == set->end()) set->push_back(c);
    } else if (name == kNoNewPrivs) {
      if (!v->is_boolean()) return bad(name, fmt::format("the value {} is not true or false", v->dump()));
      iso.no_new_privs = v->get<bool>();
    } else if (name == kOom) {
      if (!v->is_number_integer()) return bad(name, fmt::format("the value {} is not an integer", v->dump()));
      auto adj = v->get<std::int64_t>();
      if (adj < -1000 || adj > 1000) return bad(name, fmt::format("{} is not in -1000..1000", adj));
      iso.oom_score_adj = static_cast<int>(adj);
    } else {
      iso.seccomp = POD_TRY(seccomp_set(name, *v));
    }
    known.push_back(entry);
  }
  // appc allows one of each pair: "exactly these" and "all but these" cannot both hold.
  if (seen.contains(std::string(kCapsRetain)) && seen.contains(std::string(kCapsRemove)))
    return bad(kCapsRemove, fmt::format("cannot be given with {} (appc allows one of them)", kCapsRetain));
  if (seen.contains(std::string(kSeccompRetain)) && seen.contains(std::string(kSeccompRemove)))
    return bad(kSeccompRemove, fmt::format("cannot be given with {} (appc allows one of them)", kSeccompRetain));
  if (!known.empty()) out.known = known.dump();
  return out;
}

}  // namespace pod::runtime
