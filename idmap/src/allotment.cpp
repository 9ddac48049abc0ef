#include "pod/idmap/allotment.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pod/sys/fs.hpp"

namespace pod::idmap {

using json = nlohmann::json;
using sys::make_error;

namespace {

constexpr std::size_t kFileLimit = 4 << 20;
constexpr std::uint64_t kDefaultBlock = 65536;
// systemd-nspawn's pick range: devpts parses gid= as signed, so stay below 2^31, and
// leave room at both ends for other allocators.
constexpr std::uint64_t kDefaultPoolStart = 0x80000;
constexpr std::uint64_t kDefaultPoolEnd = 0x70000000;

std::vector<SubidEntry> read_subid(const char* file, const Warn& warn) {
  auto text = sys::read_file(sys::FdRef::cwd(), file, kFileLimit);
  if (!text) return {};
  return parse_subid(*text, file, warn);
}

bool owned_by(const SubidEntry& e, std::string_view user, std::string_view uid_text) {
  return e.owner == user || e.owner == uid_text;
}

// The uid a subid owner names, so a numeric owner and a name of the same user match.
std::string owner_uid(const HostIds& host, const std::string& owner) {
  for (auto& [uid, name] : host.users)
    if (name == owner) return std::to_string(uid);
  return owner;
}

Result<RangeSet> ranges_from_json(const json& j, const char* key) {
  RangeSet out;
  if (!j.is_array()) return make_error(EINVAL, "pool.json: '{}' is not a list of {{\"host\", \"count\"}}", key);
  for (auto& r : j) {
    if (!r.is_object() || !r.contains("host") || !r.contains("count") || !r["host"].is_number_unsigned() ||
        !r["count"].is_number_unsigned())
      return make_error(EINVAL, "pool.json: an entry of '{}' is not {{\"host\": N, \"count\": N}}", key);
    std::uint64_t host = r["host"].get<std::uint64_t>(), count = r["count"].get<std::uint64_t>();
    if (count == 0 || host > kIdLimit || count > kIdLimit || host + count > kIdLimit)
      return make_error(EINVAL, "pool.json: '{}' range {}+{} is empty or ends past {}", key, host, count, kIdLimit - 1);
    out.add(host, host + count);
  }
  return out;
}

Result<void> pool_from_config(Allotment& a, const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(EINVAL, "pool.json is not a JSON object");
  if (!j.contains("uids")) return make_error(EINVAL, "pool.json has no 'uids'");
  a.uids = POD_TRY(ranges_from_json(j["uids"], "uids"));
  a.gids = j.contains("gids") ? POD_TRY(ranges_from_json(j["gids"], "gids")) : a.uids;
  a.block = kDefaultBlock;
  if (j.contains("block")) {
    if (!j["block"].is_number_unsigned() || j["block"].get<std::uint64_t>() == 0 ||
        j["block"].get<std::uint64_t>() > (1ULL << 31))
      return make_error(EINVAL, "pool.json: 'block' is not a number from 1 to 2^31");
    a.block = j["block"].get<std::uint64_t>();
  }
  a.source = "pool.json";
  return {};
}

}  // namespace

HostIds read_host_ids(const Warn& warn) {
  HostIds h;
  h.subuid = read_subid("/etc/subuid", warn);
  h.subgid = read_subid("/etc/subgid", warn);
  ::setpwent();
  while (struct passwd* pw = ::getpwent()) h.users.emplace_back(pw->pw_uid, pw->pw_name);
  ::endpwent();
  ::setgrent();
  while (struct group* gr = ::getgrent()) h.groups.emplace_back(gr->gr_gid, gr->gr_name);
  ::endgrent();
  return h;
}

Result<Allotment> root_allotment(const HostIds& host, const std::optional<std::string>& config,
                                 std::string_view pool_user) {
  Allotment a;
  std::string pool_uid = owner_uid(host, std::string(pool_user));
  bool from_user = false;
  if (config) {
    POD_TRY(pool_from_config(a, *config));
  } else {
    RangeSet u, g;
    for (auto& e : host.subuid)
      if (owned_by(e, pool_user, pool_uid)) u.add(e.range);
    for (auto& e : host.subgid)
      if (owned_by(e, pool_user, pool_uid)) g.add(e.range);
    if (!u.empty() && !g.empty()) {
      a.uids = std::move(u);
      a.gids = std::move(g);
      a.block = kDefaultBlock;
      a.source = fmt::format("the subordinate ids of '{}'", pool_user);
      from_user = true;
    } else {
      a.uids.add(kDefaultPoolStart, kDefaultPoolEnd);
      a.gids = a.uids;
      a.block = kDefaultBlock;
      a.source = "the default pool";
    }
  }
  auto reserve_subids = [&](const std::vector<SubidEntry>& entries, IdKind kind, const char* file) {
    for (auto& e : entries) {
      if (from_user && owned_by(e, pool_user, pool_uid)) continue;
      a.reserved.push_back({kind, e.range,
                            fmt::format("is in the subordinate range of '{}' in {}", e.owner, file)});
    }
  };
  reserve_subids(host.subuid, IdKind::uid, "/etc/subuid");
  reserve_subids(host.subgid, IdKind::gid, "/etc/subgid");
  for (auto& [uid, name] : host.users)
    a.reserved.push_back({IdKind::uid, {static_cast<std::uint32_t>(uid), 1}, fmt::format("belongs to user '{}'", name)});
  for (auto& [gid, name] : host.groups)
    a.reserved.push_back({IdKind::gid, {static_cast<std::uint32_t>(gid), 1}, fmt::format("belongs to group '{}'", name)});
  return a;
}

Result<Allotment> user_allotment(const HostIds& host, std::string_view user, uid_t uid) {
  Allotment a;
  std::string uid_text = std::to_string(uid);
  for (auto& e : host.subuid)
    if (owned_by(e, user, uid_text)) a.uids.add(e.range);
  for (auto& e : host.subgid)
    if (owned_by(e, user, uid_text)) a.gids.add(e.range);
  if (a.uids.empty() || a.gids.empty())
    return make_error(ENOENT, "user '{}' has no subordinate {} (ask root for a range: usermod --add-subuids "
                      "100000-165535 --add-subgids 100000-165535 {})",
                      user, a.uids.empty() ? "uids in /etc/subuid" : "gids in /etc/subgid", user);
  a.block = 1;
  a.source = fmt::format("the subordinate ids of '{}'", user);
  return a;
}

Result<Allotment> caller_allotment(sys::FdRef ledger_dir, const Warn& warn) {
  HostIds host = read_host_ids(warn);
  uid_t uid = ::geteuid();
  if (uid == 0) {
    std::optional<std::string> config;
    auto text = sys::read_file(ledger_dir, "pool.json", kFileLimit);
    if (text) config = std::move(*text);
    else if (text.error().code != ENOENT) return sys::Unexpected(std::move(text.error()));
    return root_allotment(host, config);
  }
  std::string name = std::to_string(uid);
  for (auto& [id, n] : host.users)
    if (id == uid) {
      name = n;
      break;
    }
  return user_allotment(host, name, uid);
}

std::optional<std::string> reserved_conflict(const Allotment& a, IdKind kind, IdRange r) {
  std::optional<std::uint64_t> best;
  const Reservation* hit = nullptr;
  for (auto& res : a.reserved) {
    if (res.kind != kind) continue;
    std::uint64_t s = std::max<std::uint64_t>(r.start, res.range.start);
    if (s < std::min(range_end(r), range_end(res.range)) && (!best || s < *best)) {
      best = s;
      hit = &res;
    }
  }
  if (!hit) return std::nullopt;
  return fmt::format("{} {} on the host {}", kind_name(kind), *best, hit->why);
}

}  // namespace pod::idmap
