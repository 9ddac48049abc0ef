// pod volume remap: re-own a user's directory from one id map to another with the
// shift engine, never while a live pod of the store has it as a volume. Root may remap
// any ids; an ordinary user only ids of their own (their uid and subordinate ranges),
// working inside the store's user namespace, where the kernel lets them chown exactly
// those.
#include <unistd.h>

#include <cstdio>

#include "commands.hpp"
#include "context.hpp"
#include "pod/cas/store.hpp"
#include "pod/idmap/namespace.hpp"
#include "pod/shift/engine.hpp"
#include "pod/sys/fs.hpp"
#include "volume_shift.hpp"

namespace pod::cmd {

namespace {

struct RemapArgs {
  std::string dir, from, to, unmapped = "error";
  bool dry_run = false, verify = false;
  unsigned threads = 0;
};

sys::Result<idmap::MapSpec> parse_map(const std::string& flag, const std::string& text) {
  return POD_TRY_CTX(idmap::parse_map_spec(text), "{}", flag);
}

// An ordinary user's maps: every host id theirs, then seen from inside the store's
// user namespace (host uid -> 0, subordinate ids -> 1..N) where the chowns happen.
sys::Result<void> to_user_view(idmap::MapSpec& from, idmap::MapSpec& to) {
  idmap::MapAllowance allow = idmap::allowance_for_caller(warn);
  for (auto* m : {&from, &to}) {
    const char* flag = m == &from ? "--from" : "--to";
    POD_TRY_CTX(idmap::check_map(m->uids, idmap::IdKind::uid, idmap::MapWriter::helper, allow), "{} {}", flag,
                m->uids.str());
    POD_TRY_CTX(idmap::check_map(m->gids, idmap::IdKind::gid, idmap::MapWriter::helper, allow), "{} {}", flag,
                m->gids.str());
  }
  idmap::StoreMapping ns = POD_TRY(idmap::store_mapping_for_caller(warn));
  for (auto* m : {&from, &to}) {
    m->uids = POD_TRY(shift::view_through(m->uids, ns.uids, idmap::IdKind::uid));
    m->gids = POD_TRY(shift::view_through(m->gids, ns.gids, idmap::IdKind::gid));
  }
  POD_TRY(enter_store_namespace());
  return {};
}

// refuse_if_in_use for the store of --root (or the default one); no store has no pods.
sys::Result<void> refuse_if_store_uses(const std::string& dir) {
  std::string path = globals().root;
  if (path.empty()) path = POD_TRY(cas::default_store_path());
  auto store = sys::open_dir(sys::FdRef::cwd(), path);
  if (!store && store.error().code == ENOENT) return {};
  if (!store) return sys::Unexpected(std::move(store.error()).context("the store '{}'", path));
  return refuse_if_in_use(*store, dir);
}

std::string summary_line(const shift::Summary& s, bool dry_run) {
  std::uint64_t skipped = s.done + s.links + s.other_fs;
  std::string detail;
  auto part = [&](std::uint64_t n, const char* what) {
    if (n) detail += fmt::format("{}{} {}", detail.empty() ? "" : ", ", n, what);
  };
  part(s.done, "already in the target map");
  part(s.links, "hard links met again");
  part(s.other_fs, "mount points not entered");
  part(s.overflowed, "ids sent to 65534");
  return fmt::format("{} inodes, {} {}, {} skipped{}, {:.2f} s", s.inodes, s.changed,
                     dry_run ? "would change" : "changed", skipped, detail.empty() ? "" : " (" + detail + ")",
                     s.seconds);
}

sys::Result<int> remap(const RemapArgs& a) {
  idmap::MapSpec from = POD_TRY(parse_map("--from", a.from));
  idmap::MapSpec to = POD_TRY(parse_map("--to", a.to));
  // Overlapping maps are refused in host terms, before anything else.
  if (!a.verify) POD_TRY(shift::make_shift(from, to));
  std::string path = a.dir;
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  auto slash = path.rfind('/');
  std::string parent_path = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty() || base == "." || base == "..")
    return sys::make_error(EINVAL, "name the directory itself, not '{}'", a.dir);
  // Opened before entering a namespace: these are the user's host paths.
  sys::Fd parent = POD_TRY(sys::open_dir(sys::FdRef::cwd(), parent_path));
  sys::Fd top = POD_TRY(sys::open_at(parent, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  if (!a.verify && !a.dry_run) POD_TRY(refuse_if_store_uses(POD_TRY(sys::fd_path(top))));
  if (::geteuid() != 0) POD_TRY(to_user_view(from, to));

  shift::Options o;
  o.unmapped = a.unmapped == "overflow" ? shift::Unmapped::overflow : shift::Unmapped::error;
  o.progress = !globals().quiet;
  o.dry_run = a.dry_run;
  o.threads = a.threads;
  if (a.verify) {
    shift::Summary s = POD_TRY(shift::verify_tree(top, to, o.unmapped == shift::Unmapped::overflow, o));
    if (s.problem_count) return sys::Unexpected(shift::problems_error(s, "lie outside the target map"));
    std::printf("%s: %lu inodes, all in the target map\n", a.dir.c_str(), static_cast<unsigned long>(s.inodes));
    return 0;
  }
  shift::JournalFiles journal(parent, "." + base + ".pod-remap");
  shift::Summary s = POD_TRY(shift::shift_tree(top, journal, from, to, o));
  std::printf("%s: %s\n", a.dir.c_str(), summary_line(s, a.dry_run).c_str());
  if (a.dry_run && s.problem_count) {
    sys::Error e = shift::problems_error(s, "have ids outside the source map");
    std::printf("%s\n", e.message.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

void add_volume_commands(CLI::App& app) {
  auto* vol = app.add_subcommand("volume", "directories shared with pods");
  vol->require_subcommand(1);
  static RemapArgs ra;
  auto* rm = vol->add_subcommand("remap", "re-own a directory tree from one id map to another; resumable: run it "
                                          "again after an interruption");
  rm->add_option("DIR", ra.dir, "the directory")->required();
  rm->add_option("--from", ra.from, "the map the tree is owned under, [u:|g:]CONTAINER:HOST:COUNT[,...]")->required();
  rm->add_option("--to", ra.to, "the map to re-own it under")->required();
  rm->add_flag("--dry-run", ra.dry_run, "count what would change; change nothing");
  rm->add_flag("--verify", ra.verify, "change nothing; list every inode that lies outside the --to map");
  rm->add_option("--unmapped", ra.unmapped, "ids outside --from: error (list them) or overflow (to 65534)")
      ->check(CLI::IsMember({"error", "overflow"}))
      ->capture_default_str();
  rm->add_option("--threads", ra.threads, "directories walked at once (default: one per core)");
  rm->callback([] {
    chosen_action() = [] {
      auto r = remap(ra);
      if (!r) return report(std::move(r.error()).context("remapping '{}'", ra.dir));
      return *r;
    };
  });
}

}  // namespace pod::cmd
