#include "pod/shift/engine.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "pod/shift/xattrs.hpp"
#include "pod/sys/progress.hpp"
#include "walk.hpp"
#include "xattr_io.hpp"

namespace pod::shift {

using detail::Node;

namespace {

// State shared by the walk's threads.
struct Run {
  const Shift* shift = nullptr;
  Options opt;
  bool resuming = false;
  std::map<InodeKey, Intent> intents;  // from an interrupted run; read-only while walking
  int intent_fd = -1;

  std::mutex mu;                // guards seen and problems
  std::set<InodeKey> seen;      // hard-linked inodes already handled: few, even in big trees
  Summary sum;
  std::atomic<std::uint64_t> changed{0}, done{0}, links{0}, overflowed{0};

  void problem(const Node& n, std::string what) {
    std::lock_guard l(mu);
    ++sum.problem_count;
    if (sum.problems.size() < kMaxProblems) sum.problems.push_back({n.path(), std::move(what)});
  }
  bool first_visit(const Node& n) {
    if (S_ISDIR(n.st.st_mode) || n.st.st_nlink < 2) return true;
    std::lock_guard l(mu);
    return seen.insert({n.st.st_dev, n.st.st_ino}).second;
  }
};

// Capabilities and setuid bits are what chown clears (security_inode_killpriv and
// ATTR_KILL_SUID/SGID); directories keep theirs.
bool chown_clears_mode(const struct stat& st) {
  return !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode) && (st.st_mode & (S_ISUID | S_ISGID));
}

sys::Result<void> chmod_node(const Node& n, mode_t mode) {
  if (::fchmodat(AT_FDCWD, detail::ProcPath(n.fd).c_str(), mode, 0) < 0)
    return sys::sys_error("restoring mode {:o} of '{}'", mode, n.path());
  return {};
}

// An inode already owned by the target map: finish what a killed run left undone.
sys::Result<void> finish_intent(Run& r, const Node& n) {
  auto it = r.intents.find({n.st.st_dev, n.st.st_ino});
  if (it == r.intents.end() || r.opt.dry_run) return {};
  const Intent& want = it->second;
  if ((n.st.st_mode & 07777) != (want.mode & 07777)) POD_TRY(chmod_node(n, want.mode & 07777));
  if (!want.capability.empty()) {
    auto now = POD_TRY(detail::get_xattr(n, kCapXattr));
    if (!now) {
      Rewrite c = rewrite_capability(want.capability, *r.shift, true, r.opt.unmapped);
      POD_TRY(detail::set_xattr(n, kCapXattr, c.status == Rewrite::Status::changed ? c.value : want.capability));
    }
  }
  return {};
}

// Resolves one id; false (and the reason added to `why`) when it stays unmapped.
bool resolve(Run& r, const KindShift& k, std::uint32_t id, const char* kind, std::uint32_t& out, std::string& why) {
  auto a = k.map(id, r.resuming);
  switch (a.verdict) {
    case KindShift::Verdict::shift: out = a.id; return true;
    case KindShift::Verdict::done: out = id; return true;
    case KindShift::Verdict::unmapped: break;
  }
  if (r.opt.unmapped == Unmapped::overflow) {
    out = kOverflowId;
    r.overflowed.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  why += fmt::format("{}{} {} is outside the source map", why.empty() ? "" : "; ", kind, id);
  return false;
}

// Reads and rewrites one ACL or capability; nullopt when it must stop the inode.
std::optional<Rewrite> rewrite_attr(Run& r, const Node& n, const char* name, bool is_cap, std::string& old) {
  auto v = detail::get_xattr(n, name);
  if (!v) {
    r.problem(n, v.error().what());
    return std::nullopt;
  }
  if (!*v) return Rewrite{};
  old = **v;
  Rewrite w = is_cap ? rewrite_capability(old, *r.shift, r.resuming, r.opt.unmapped)
                     : rewrite_acl(old, *r.shift, r.resuming, r.opt.unmapped);
  if (w.status == Rewrite::Status::unmapped || w.status == Rewrite::Status::invalid) {
    r.problem(n, fmt::format("{}: {}", name, w.problem));
    return std::nullopt;
  }
  return w;
}

sys::Result<void> shift_node(Run& r, const Node& n) {
  if (!r.first_visit(n)) {
    r.links.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  std::uint32_t uid = n.st.st_uid, gid = n.st.st_gid;
  std::string why;
  if (!resolve(r, r.shift->uids, n.st.st_uid, "uid", uid, why) | !resolve(r, r.shift->gids, n.st.st_gid, "gid", gid, why)) {
    r.problem(n, std::move(why));
    return {};
  }
  if (uid == n.st.st_uid && gid == n.st.st_gid) {
    r.done.fetch_add(1, std::memory_order_relaxed);
    if (!r.intents.empty()) POD_TRY(finish_intent(r, n));
    return {};
  }
  // Everything is read and rewritten before anything changes, so an inode with a bad
  // attribute is left whole. ACLs go first: chown keeps them, and rewriting them is
  // idempotent on a rerun (their ids are then in the target map).
  detail::XattrNames x = POD_TRY(detail::list_xattrs(n));
  std::string old_access, old_default, old_cap;
  Rewrite access, deflt, cap;
  if (x.acl_access) {
    auto w = rewrite_attr(r, n, kAclAccess, false, old_access);
    if (!w) return {};
    access = std::move(*w);
  }
  if (x.acl_default) {
    auto w = rewrite_attr(r, n, kAclDefault, false, old_default);
    if (!w) return {};
    deflt = std::move(*w);
  }
  if (x.capability) {
    auto w = rewrite_attr(r, n, kCapXattr, true, old_cap);
    if (!w) return {};
    cap = std::move(*w);
  }
  r.changed.fetch_add(1, std::memory_order_relaxed);
  if (r.opt.dry_run) return {};
  if (access.status == Rewrite::Status::changed) POD_TRY(detail::set_xattr(n, kAclAccess, access.value));
  if (deflt.status == Rewrite::Status::changed) POD_TRY(detail::set_xattr(n, kAclDefault, deflt.value));
  bool keep_mode = chown_clears_mode(n.st);
  if (keep_mode || !old_cap.empty()) {
    // Written before the chown: a run killed right after it restores these.
    std::string line = intent_line({n.st.st_dev, n.st.st_ino}, Intent{n.st.st_mode & 07777, old_cap});
    if (::write(r.intent_fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      return sys::sys_error("writing the intent log");
  }
  if (::fchownat(n.fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
    return sys::sys_error("chown '{}' to {}:{}", n.path(), uid, gid);
  if (keep_mode) POD_TRY(chmod_node(n, n.st.st_mode & 07777));
  if (!old_cap.empty())
    POD_TRY(detail::set_xattr(n, kCapXattr, cap.status == Rewrite::Status::changed ? cap.value : old_cap));
  return {};
}

struct Ticker {
  std::optional<sys::Progress> progress;
  std::chrono::steady_clock::time_point last_journal = std::chrono::steady_clock::now();
};

}  // namespace

sys::Error problems_error(const Summary& s, std::string_view what) {
  std::string list;
  for (auto& p : s.problems) list += fmt::format("\n  {}: {}", p.path, p.what);
  if (s.problem_count > s.problems.size()) list += fmt::format("\n  ... and {} more", s.problem_count - s.problems.size());
  return sys::Error{0, fmt::format("{} inode{} {}:{}", s.problem_count, s.problem_count == 1 ? "" : "s", what, list)};
}

Result<Summary> shift_tree(sys::FdRef top, const JournalFiles& journal, const idmap::MapSpec& from,
                           const idmap::MapSpec& to, const Options& opt) {
  auto t0 = std::chrono::steady_clock::now();
  Shift s = POD_TRY(make_shift(from, to));
  Journal j{canonical_text(from), canonical_text(to), opt.unmapped, Journal::State::running, 0, 0};
  auto found = POD_TRY(journal.read());
  Start start = POD_TRY(plan_start(found, j.from, j.to));
  Run r;
  r.shift = &s;
  r.opt = opt;
  r.resuming = start != Start::fresh;
  if (r.resuming) r.intents = POD_TRY(journal.read_intents());
  sys::Fd intents;
  if (!opt.dry_run) {
    POD_TRY(journal.write(j));
    intents = POD_TRY_CTX(journal.open_intents(), "opening the intent log of '{}'", journal.name());
    r.intent_fd = intents.get();
  }
  detail::WalkCounts counts;
  Ticker t;
  if (opt.progress) t.progress.emplace(opt.dry_run ? "counting (inodes)" : "shifting (inodes)", 0);
  auto tick = [&] {
    if (t.progress) t.progress->set(counts.inodes.load());
    auto now = std::chrono::steady_clock::now();
    if (!opt.dry_run && now - t.last_journal > std::chrono::seconds(1)) {
      t.last_journal = now;
      Journal p = j;
      p.inodes = counts.inodes.load(), p.changed = r.changed.load();
      // Progress in the journal is informative: a failed write here is retried next tick.
      (void)journal.write(p);
    }
  };
  unsigned threads = opt.threads ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  auto walked = detail::walk(top, threads, [&r](const Node& n) { return shift_node(r, n); }, counts, tick);
  Summary sum = std::move(r.sum);
  sum.inodes = counts.inodes, sum.other_fs = counts.other_fs, sum.changed = r.changed, sum.done = r.done;
  sum.links = r.links, sum.overflowed = r.overflowed;
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!walked) return sys::Unexpected(std::move(walked).error());
  if (opt.dry_run) return sum;
  if (sum.problem_count) return sys::Unexpected(problems_error(sum, "were left as they were"));
  j.state = Journal::State::done;
  j.inodes = sum.inodes, j.changed = sum.changed;
  POD_TRY(journal.write(j));
  POD_TRY(journal.remove_intents());
  return sum;
}

namespace {

// Adds to `why` (one line per inode) when id is outside the target map.
bool check_id(const KindShift& k, std::uint32_t id, const char* what, bool allow_overflow, std::string& why) {
  if (k.in_target(id) || (allow_overflow && id == kOverflowId)) return true;
  why += fmt::format("{}{} {} is outside the target map", why.empty() ? "" : "; ", what, id);
  return false;
}

sys::Result<void> verify_node(Run& r, const Node& n, bool allow_overflow) {
  if (!r.first_visit(n)) return {};
  std::string why;
  check_id(r.shift->uids, n.st.st_uid, "uid", allow_overflow, why);
  check_id(r.shift->gids, n.st.st_gid, "gid", allow_overflow, why);
  detail::XattrNames x = POD_TRY(detail::list_xattrs(n));
  for (const char* acl : {kAclAccess, kAclDefault}) {
    if ((acl == kAclAccess && !x.acl_access) || (acl == kAclDefault && !x.acl_default)) continue;
    auto v = POD_TRY(detail::get_xattr(n, acl));
    if (!v) continue;
    bool valid = for_each_acl_id(*v, [&](bool user, std::uint32_t id) {
      check_id(user ? r.shift->uids : r.shift->gids, id, user ? "ACL user" : "ACL group", allow_overflow, why);
    });
    if (!valid) why += fmt::format("{}{} is malformed", why.empty() ? "" : "; ", acl);
  }
  if (x.capability) {
    auto v = POD_TRY(detail::get_xattr(n, kCapXattr));
    if (v) {
      if (auto root = capability_rootid(*v)) check_id(r.shift->uids, *root, "capability root uid", false, why);
      else why += fmt::format("{}capability is not v3 (valid in every user namespace)", why.empty() ? "" : "; ");
    }
  }
  if (why.empty()) r.done.fetch_add(1, std::memory_order_relaxed);
  else r.problem(n, std::move(why));
  return {};
}

}  // namespace

Result<Summary> verify_tree(sys::FdRef top, const idmap::MapSpec& to, bool allow_overflow, const Options& opt) {
  auto t0 = std::chrono::steady_clock::now();
  // Only the target side matters: a shift from `to` to itself has no source ids.
  Shift s{KindShift::make({}, to.uids), KindShift::make({}, to.gids), std::nullopt, outer_of(to.uids, 0)};
  Run r;
  r.shift = &s;
  r.opt = opt;
  detail::WalkCounts counts;
  std::optional<sys::Progress> progress;
  if (opt.progress) progress.emplace("verifying (inodes)", 0);
  auto tick = [&] {
    if (progress) progress->set(counts.inodes.load());
  };
  unsigned threads = opt.threads ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  POD_TRY(detail::walk(top, threads, [&](const Node& n) { return verify_node(r, n, allow_overflow); }, counts, tick));
  Summary sum = std::move(r.sum);
  sum.inodes = counts.inodes, sum.other_fs = counts.other_fs, sum.done = r.done;
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum;
}

}  // namespace pod::shift
