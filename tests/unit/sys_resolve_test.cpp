// sys::open_in: every case runs twice, with openat2 and with the component walk that
// stands in for it where the kernel lacks openat2; both must give the same answers.
#include <sys/stat.h>

#include <string>
#include <vector>

#include "sys_support.hpp"

using namespace pod::sys;
using namespace pod::sys::test;

namespace {

// Switches the walk on for the scope, and back off whatever happens.
struct Method {
  explicit Method(bool walk) { force_resolve_fallback(walk); }
  ~Method() { force_resolve_fallback(false); }
  Method(const Method&) = delete;
  Method& operator=(const Method&) = delete;
};

// base/outside holds what an escape would reach; base/root is the root. The root has
// decoys where a clamped escape lands, so "clamped" is told apart from "not found".
struct Tree {
  TempDir base;
  std::string root_path = base / "root";
  Fd root;

  Tree() {
    put_dir(base / "outside");
    put_file(base / "outside/secret", "outside");
    put_dir(root_path);
    put_file(root_path + "/file", "file");
    put_dir(root_path + "/dir");
    put_file(root_path + "/dir/file", "dir/file");
    put_dir(root_path + "/dir/sub");
    put_file(root_path + "/dir/sub/deep", "deep");
    // Decoys: root/outside for relative escapes, root/<base>/outside for absolute ones.
    put_dir(root_path + "/outside");
    put_file(root_path + "/outside/secret", "decoy");
    std::error_code ec;
    fs::create_directories(root_path + base.path + "/outside", ec);
    REQUIRE(!ec);
    put_file(root_path + base.path + "/outside/secret", "decoy-abs");

    put_link(base / "outside", root_path + "/abs_out");
    put_link("../outside", root_path + "/rel_out");
    put_link("../../../../../../../../outside", root_path + "/deep_rel_out");
    put_link("../../outside", root_path + "/dir/up_out");
    put_link("/dir", root_path + "/abs_dir");
    put_link("chain2", root_path + "/chain1");
    put_link("chain3", root_path + "/chain2");
    put_link("dir", root_path + "/chain3");
    put_link("dir/up_out", root_path + "/chain_out");
    put_link("loop2", root_path + "/loop1");
    put_link("loop1", root_path + "/loop2");
    put_link("self", root_path + "/self");
    put_link("dir/file", root_path + "/lnk_file");
    put_link("/dir/file", root_path + "/lnk_abs_file");
    put_link("dir", root_path + "/lnk_dir");
    put_link("../outside/created_rel", root_path + "/dangle_rel");
    put_link(base / "outside/created_abs", root_path + "/dangle_abs");
    root = open_path(root_path, O_PATH | O_DIRECTORY);
  }
};

// What a case expects: the content read, or an errno.
struct Want {
  int err = 0;
  std::string content;
};
Want ok(std::string c) { return {0, std::move(c)}; }
Want err(int e) { return {e, {}}; }

struct Case {
  std::string path;
  int flags;
  Want in_root, beneath, no_symlinks;
};

const Want& want_for(const Case& c, Resolve how) {
  switch (how) {
    case Resolve::in_root: return c.in_root;
    case Resolve::beneath: return c.beneath;
    case Resolve::beneath_no_symlinks: break;
  }
  return c.no_symlinks;
}

const char* name_of(Resolve how) {
  switch (how) {
    case Resolve::in_root: return "in_root";
    case Resolve::beneath: return "beneath";
    case Resolve::beneath_no_symlinks: break;
  }
  return "beneath_no_symlinks";
}

std::vector<Case> read_cases() {
  const int R = O_RDONLY;
  return {
      // Plain paths, and ".." that stays inside.
      {"file", R, ok("file"), ok("file"), ok("file")},
      {"dir/sub/deep", R, ok("deep"), ok("deep"), ok("deep")},
      {"dir/sub/../../file", R, ok("file"), ok("file"), ok("file")},
      {"./dir//file", R, ok("dir/file"), ok("dir/file"), ok("dir/file")},
      // ".." at the root.
      {"../outside/secret", R, ok("decoy"), err(EXDEV), err(EXDEV)},
      {"../../../../outside/secret", R, ok("decoy"), err(EXDEV), err(EXDEV)},
      {"dir/../../outside/secret", R, ok("decoy"), err(EXDEV), err(EXDEV)},
      // An absolute path restarts at the root, or is refused.
      {"/outside/secret", R, ok("decoy"), err(EXDEV), err(EXDEV)},
      // Symlink escapes by absolute and relative targets.
      {"abs_out/secret", R, ok("decoy-abs"), err(EXDEV), err(ELOOP)},
      {"rel_out/secret", R, ok("decoy"), err(EXDEV), err(ELOOP)},
      {"deep_rel_out/secret", R, ok("decoy"), err(EXDEV), err(ELOOP)},
      {"dir/up_out/secret", R, ok("decoy"), err(EXDEV), err(ELOOP)},
      {"abs_dir/file", R, ok("dir/file"), err(EXDEV), err(ELOOP)},
      {"lnk_abs_file", R, ok("dir/file"), err(EXDEV), err(ELOOP)},
      // Chains of symlinks, inside and out.
      {"chain1/file", R, ok("dir/file"), ok("dir/file"), err(ELOOP)},
      {"chain1/sub/deep", R, ok("deep"), ok("deep"), err(ELOOP)},
      {"chain_out/secret", R, ok("decoy"), err(EXDEV), err(ELOOP)},
      // Loops.
      {"loop1/x", R, err(ELOOP), err(ELOOP), err(ELOOP)},
      {"loop1", R, err(ELOOP), err(ELOOP), err(ELOOP)},
      {"self", R, err(ELOOP), err(ELOOP), err(ELOOP)},
      {"self/x", R, err(ELOOP), err(ELOOP), err(ELOOP)},
      // A symlink as the last component, with and without O_NOFOLLOW.
      {"lnk_file", R, ok("dir/file"), ok("dir/file"), err(ELOOP)},
      {"lnk_file", R | O_NOFOLLOW, err(ELOOP), err(ELOOP), err(ELOOP)},
      {"lnk_dir/file", R, ok("dir/file"), ok("dir/file"), err(ELOOP)},
      // A file where a directory is expected.
      {"file/x", R, err(ENOTDIR), err(ENOTDIR), err(ENOTDIR)},
      {"dir/file/x", R, err(ENOTDIR), err(ENOTDIR), err(ENOTDIR)},
      {"file", R | O_DIRECTORY, err(ENOTDIR), err(ENOTDIR), err(ENOTDIR)},
      {"file/", R, err(ENOTDIR), err(ENOTDIR), err(ENOTDIR)},
      {"lnk_file", R | O_DIRECTORY, err(ENOTDIR), err(ENOTDIR), err(ELOOP)},
      {"lnk_file/", R, err(ENOTDIR), err(ENOTDIR), err(ELOOP)},
      {"lnk_file/x", R, err(ENOTDIR), err(ENOTDIR), err(ELOOP)},
      // Missing names.
      {"nothing", R, err(ENOENT), err(ENOENT), err(ENOENT)},
      {"nothing/x", R, err(ENOENT), err(ENOENT), err(ENOENT)},
  };
}

void check_reads(Resolve how) {
  Tree t;
  for (const Case& c : read_cases()) {
    const Want& want = want_for(c, how);
    auto r = open_in(t.root, c.path, c.flags, how);
    INFO(std::string(name_of(how)), " '", c.path, "' flags ", c.flags);
    if (want.err) {
      REQUIRE_MESSAGE(!r, "opened, but want ", errno_name(want.err));
      CHECK_MESSAGE(r.error().code == want.err, "got ", r.error().what(), ", want ", errno_name(want.err));
    } else {
      REQUIRE_MESSAGE(r, "failed: ", r.error().what());
      auto content = read_fd(*r, 4096);
      REQUIRE(content);
      CHECK(*content == want.content);
    }
  }
  // Nothing outside was touched by any of it.
  CHECK(names_in(t.base / "outside") == std::set<std::string>{"secret"});
}

// Runs body once with openat2 and once with the walk.
#define BOTH_METHODS                  \
  bool walk_ = false;                 \
  SUBCASE("openat2") { walk_ = false; } \
  SUBCASE("walk") { walk_ = true; }   \
  Method method_(walk_)

ino_t inode_of(FdRef fd) {
  auto st = stat_fd(fd);
  REQUIRE(st);
  return st->st_ino;
}

}  // namespace

TEST_CASE("open_in in_root: escapes are clamped to the root") {
  BOTH_METHODS;
  check_reads(Resolve::in_root);
}

TEST_CASE("open_in beneath: leaving the root is EXDEV") {
  BOTH_METHODS;
  check_reads(Resolve::beneath);
}

TEST_CASE("open_in beneath_no_symlinks: any symlink is ELOOP") {
  BOTH_METHODS;
  check_reads(Resolve::beneath_no_symlinks);
}

TEST_CASE("open_in: '..', '.' and '' at the root") {
  BOTH_METHODS;
  Tree t;
  const ino_t root_ino = inode_of(t.root);
  for (const char* p : {"", ".", "./", "dir/..", "dir/sub/../.."}) {
    for (Resolve how : {Resolve::in_root, Resolve::beneath, Resolve::beneath_no_symlinks}) {
      INFO(std::string(name_of(how)), " '", std::string(p), "'");
      auto r = open_in(t.root, p, O_RDONLY | O_DIRECTORY, how);
      REQUIRE_MESSAGE(r, r.error().what());
      CHECK(inode_of(*r) == root_ino);
    }
  }
  for (const char* p : {"..", "../..", "dir/../..", "/", "/.."}) {
    INFO("'", std::string(p), "'");
    auto in = open_in(t.root, p, O_RDONLY | O_DIRECTORY, Resolve::in_root);
    REQUIRE_MESSAGE(in, in.error().what());
    CHECK(inode_of(*in) == root_ino);
    for (Resolve how : {Resolve::beneath, Resolve::beneath_no_symlinks}) {
      auto r = open_in(t.root, p, O_RDONLY | O_DIRECTORY, how);
      REQUIRE(!r);
      CHECK(r.error().code == EXDEV);
    }
  }
  // A symlink that resolves to the root's parent lands on the root itself.
  auto up = open_in(t.root, "rel_out/..", O_RDONLY | O_DIRECTORY, Resolve::in_root);
  REQUIRE_MESSAGE(up, up.error().what());
  CHECK(inode_of(*up) == root_ino);
}

TEST_CASE("open_in: a symlink as the last component with O_PATH") {
  BOTH_METHODS;
  Tree t;
  for (Resolve how : {Resolve::in_root, Resolve::beneath, Resolve::beneath_no_symlinks}) {
    INFO(std::string(name_of(how)));
    // O_PATH|O_NOFOLLOW opens the link itself, in every mode.
    auto link = open_in(t.root, "lnk_file", O_PATH | O_NOFOLLOW, how);
    REQUIRE_MESSAGE(link, link.error().what());
    auto st = stat_fd(*link);
    REQUIRE(st);
    CHECK(S_ISLNK(st->st_mode));
    // O_PATH alone follows it, as open(2) does.
    auto target = open_in(t.root, "lnk_file", O_PATH, how);
    if (how == Resolve::beneath_no_symlinks) {
      REQUIRE(!target);
      CHECK(target.error().code == ELOOP);
    } else {
      REQUIRE_MESSAGE(target, target.error().what());
      auto tst = stat_fd(*target);
      REQUIRE(tst);
      CHECK(S_ISREG(tst->st_mode));
    }
    // A symlink to a directory, opened as a directory.
    auto dir = open_in(t.root, "lnk_dir", O_RDONLY | O_DIRECTORY, how);
    if (how == Resolve::beneath_no_symlinks) {
      REQUIRE(!dir);
      CHECK(dir.error().code == ELOOP);
    } else {
      REQUIRE_MESSAGE(dir, dir.error().what());
      auto sub = open_in(*dir, "sub/deep", O_RDONLY, how);
      REQUIRE(sub);
    }
  }
}

TEST_CASE("open_in: O_CREAT through in_root lands inside the root") {
  BOTH_METHODS;
  Tree t;
  ::umask(022);
  const int W = O_WRONLY | O_CREAT;
  auto create = [&](const std::string& p, Resolve how, int extra = 0) {
    return open_in(t.root, p, W | extra, how, 0640);
  };

  auto plain = create("dir/new", Resolve::in_root, O_EXCL);
  REQUIRE_MESSAGE(plain, plain.error().what());
  struct stat st;
  REQUIRE(::lstat((t.root_path + "/dir/new").c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  CHECK((st.st_mode & 07777) == 0640);
  // O_EXCL on an existing name.
  auto again = create("dir/new", Resolve::in_root, O_EXCL);
  REQUIRE(!again);
  CHECK(again.error().code == EEXIST);

  // Through an absolute symlink to a directory of the root.
  REQUIRE(create("abs_dir/new2", Resolve::in_root));
  CHECK(lexists(t.root_path + "/dir/new2"));
  // By "..": clamped.
  REQUIRE(create("../outside/created_dd", Resolve::in_root));
  CHECK(lexists(t.root_path + "/outside/created_dd"));
  // A dangling symlink as the last component: its target is made inside the root.
  REQUIRE(create("dangle_rel", Resolve::in_root));
  CHECK(lexists(t.root_path + "/outside/created_rel"));
  REQUIRE(create("dangle_abs", Resolve::in_root));
  CHECK(lexists(t.root_path + t.base.path + "/outside/created_abs"));
  // ... but never with O_EXCL, which refuses the existing link name.
  auto excl = create("dir/up_out", Resolve::in_root, O_EXCL);
  REQUIRE(!excl);
  CHECK(excl.error().code == EEXIST);
  // A trailing slash names a directory: nothing to create.
  for (const char* p : {"newdir/", "dir/"}) {
    INFO("'", std::string(p), "'");
    auto slash = create(p, Resolve::in_root);
    REQUIRE(!slash);
    CHECK(slash.error().code == EISDIR);
  }
  CHECK(!lexists(t.root_path + "/newdir"));
  // A missing parent is not made.
  auto orphan = create("nodir/new", Resolve::in_root);
  REQUIRE(!orphan);
  CHECK(orphan.error().code == ENOENT);

  // beneath refuses the same escapes; beneath_no_symlinks refuses any symlink.
  for (const char* p : {"dangle_rel", "dangle_abs", "../created", "/created", "rel_out/created"}) {
    INFO("'", std::string(p), "'");
    auto b = create(p, Resolve::beneath);
    REQUIRE(!b);
    CHECK(b.error().code == EXDEV);
  }
  auto ns = create("abs_dir/created", Resolve::beneath_no_symlinks);
  REQUIRE(!ns);
  CHECK(ns.error().code == ELOOP);
  REQUIRE(create("dir/made_beneath", Resolve::beneath, O_EXCL));
  CHECK(lexists(t.root_path + "/dir/made_beneath"));

  // Nothing appeared outside, whatever the mode.
  CHECK(names_in(t.base / "outside") == std::set<std::string>{"secret"});
  CHECK(names_in(t.base.path) == std::set<std::string>{"outside", "root"});
}
