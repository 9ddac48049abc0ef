// sys/ file helpers: atomic writes, bounded reads, removal by walking fds, temp dirs.
#include <sys/stat.h>

#include <string>

#include "sys_support.hpp"

using namespace pod::sys;
using namespace pod::sys::test;

TEST_CASE("write_file_atomic replaces the content, applies the mode, leaves no temp file") {
  TempDir d;
  Fd dir = open_path(d.path);
  ::umask(022);

  REQUIRE(write_file_atomic(dir, "conf", "first\n", 0600));
  CHECK(slurp(d / "conf") == "first\n");
  struct stat st;
  REQUIRE(::lstat((d / "conf").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);

  const ino_t first_inode = st.st_ino;
  // Replaced, not rewritten in place: a new inode, the new mode (even one the umask
  // would have cut), and only the one name in the directory.
  REQUIRE(write_file_atomic(dir, "conf", "second, longer content\n", 0664));
  CHECK(slurp(d / "conf") == "second, longer content\n");
  REQUIRE(::lstat((d / "conf").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0664);
  CHECK(st.st_ino != first_inode);
  CHECK(names_in(d.path) == std::set<std::string>{"conf"});

  // Empty content is a valid file.
  REQUIRE(write_file_atomic(dir, "empty", ""));
  CHECK(slurp(d / "empty").empty());
  CHECK(names_in(d.path) == std::set<std::string>{"conf", "empty"});
}

TEST_CASE("write_file_atomic replaces a symlink rather than writing through it") {
  TempDir d;
  put_dir(d / "store");
  put_dir(d / "outside");
  put_file(d / "outside/target", "untouched");
  put_link(d / "outside/target", d / "store/ref");
  Fd dir = open_path(d / "store");
  REQUIRE(write_file_atomic(dir, "ref", "new"));
  CHECK(slurp(d / "outside/target") == "untouched");
  struct stat st;
  REQUIRE(::lstat((d / "store/ref").c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  CHECK(slurp(d / "store/ref") == "new");
  CHECK(names_in(d / "store") == std::set<std::string>{"ref"});
}

TEST_CASE("write_file_atomic fails cleanly where it cannot rename") {
  TempDir d;
  put_dir(d / "adir");
  put_file(d / "adir/keep", "x");
  Fd dir = open_path(d.path);
  // rename(file, non-empty dir) fails: the error names the file, no temp file is left.
  auto r = write_file_atomic(dir, "adir", "data");
  REQUIRE(!r);
  CHECK(r.error().message.find("writing 'adir'") != std::string::npos);
  CHECK(names_in(d.path) == std::set<std::string>{"adir"});
}

TEST_CASE("read_file: the limit is EFBIG, exactly the limit is fine") {
  TempDir d;
  Fd dir = open_path(d.path);
  const std::string big(200000, 'z');  // several read chunks
  put_file(d / "big", big);

  auto exact = read_file(dir, "big", big.size());
  REQUIRE_MESSAGE(exact, exact.error().what());
  CHECK(*exact == big);

  auto over = read_file(dir, "big", big.size() - 1);
  REQUIRE(!over);
  CHECK(over.error().code == EFBIG);
  CHECK(over.error().message.find("reading 'big'") != std::string::npos);

  auto small = read_file(dir, "big", 10);
  REQUIRE(!small);
  CHECK(small.error().code == EFBIG);

  put_file(d / "empty", "");
  auto empty = read_file(dir, "empty", 0);
  REQUIRE(empty);
  CHECK(empty->empty());

  auto missing = read_file(dir, "missing", 10);
  REQUIRE(!missing);
  CHECK(missing.error().code == ENOENT);

  // A symlink is not followed.
  put_link("big", d / "link");
  auto link = read_file(dir, "link", big.size());
  REQUIRE(!link);
  CHECK(link.error().code == ELOOP);
}

TEST_CASE("remove_tree: nested directories, unreadable directories, symlinks not followed") {
  TempDir d;
  put_dir(d / "outside");
  put_dir(d / "outside/sub");
  put_file(d / "outside/keep", "keep");
  put_file(d / "outside/sub/keep2", "keep2");

  put_dir(d / "tree");
  std::string p = d / "tree";
  for (int i = 0; i < 20; ++i) {
    p += "/n" + std::to_string(i);
    put_dir(p);
    put_file(p + "/f", "data");
  }
  put_dir(d / "tree/locked");
  put_dir(d / "tree/locked/inner");
  put_file(d / "tree/locked/inner/f", "x");
  put_file(d / "tree/locked/f", "x");
  REQUIRE(::chmod((d / "tree/locked/inner").c_str(), 0) == 0);
  REQUIRE(::chmod((d / "tree/locked").c_str(), 0) == 0);
  // Read-only directories, as images have (0555 /proc, /sys): their entries must go too.
  put_dir(d / "tree/ro_dir");
  put_dir(d / "tree/ro_dir/sub");
  put_file(d / "tree/ro_dir/sub/f", "x");
  put_file(d / "tree/ro_dir/f", "x");
  REQUIRE(::chmod((d / "tree/ro_dir/sub").c_str(), 0555) == 0);
  REQUIRE(::chmod((d / "tree/ro_dir").c_str(), 0555) == 0);
  put_link(d / "outside", d / "tree/to_outside");
  put_link("../outside", d / "tree/rel_outside");
  put_link(d / "outside/keep", d / "tree/to_file");
  put_link("dangling", d / "tree/dangling");
  put_file(d / "tree/ro", "x", 0);

  Fd dir = open_path(d.path);
  auto r = remove_tree(dir, "tree");
  REQUIRE_MESSAGE(r, r.error().what());
  CHECK(!lexists(d / "tree"));
  CHECK(slurp(d / "outside/keep") == "keep");
  CHECK(slurp(d / "outside/sub/keep2") == "keep2");
  CHECK(names_in(d / "outside") == std::set<std::string>{"keep", "sub"});

  // A missing name is success; a file or a symlink is unlinked (not its target).
  CHECK(remove_tree(dir, "tree"));
  put_link(d / "outside", d / "dirlink");
  REQUIRE(remove_tree(dir, "dirlink"));
  CHECK(!lexists(d / "dirlink"));
  CHECK(names_in(d / "outside") == std::set<std::string>{"keep", "sub"});
  put_file(d / "plain", "x");
  REQUIRE(remove_tree(dir, "plain"));
  CHECK(!lexists(d / "plain"));
  CHECK(names_in(d.path) == std::set<std::string>{"outside"});

  // The top directory itself unreadable, or read-only.
  for (mode_t top : {0000, 0555}) {
    CAPTURE(top);
    put_dir(d / "top");
    put_dir(d / "top/sub");
    put_file(d / "top/sub/f", "x");
    REQUIRE(::chmod((d / "top").c_str(), top) == 0);
    auto t = remove_tree(dir, "top");
    REQUIRE_MESSAGE(t, t.error().what());
    CHECK(!lexists(d / "top"));
  }
}

TEST_CASE("make_temp_dir makes fresh directories with the prefix and mode") {
  TempDir d;
  Fd dir = open_path(d.path);
  ::umask(022);
  auto a = make_temp_dir(dir, "stage-");
  auto b = make_temp_dir(dir, "stage-", 0755);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a != *b);
  CHECK(a->starts_with("stage-"));
  CHECK(a->size() > std::string("stage-").size());
  struct stat st;
  REQUIRE(::lstat((d / *a).c_str(), &st) == 0);
  CHECK(S_ISDIR(st.st_mode));
  CHECK((st.st_mode & 07777) == 0700);
  REQUIRE(::lstat((d / *b).c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0755);
  CHECK(names_in(d.path) == std::set<std::string>{*a, *b});

  Fd missing_parent(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto bad = make_temp_dir(missing_parent, "no/such/dir-");
  REQUIRE(!bad);
  CHECK(bad.error().code == ENOENT);
}

TEST_CASE("ensure_dir: EEXIST of a directory is success, of a file is ENOTDIR") {
  TempDir d;
  Fd dir = open_path(d.path);
  REQUIRE(ensure_dir(dir, "a", 0755));
  REQUIRE(ensure_dir(dir, "a", 0755));
  put_file(d / "f", "");
  auto r = ensure_dir(dir, "f", 0755);
  REQUIRE(!r);
  CHECK(r.error().code == ENOTDIR);
  put_link("a", d / "l");
  auto l = ensure_dir(dir, "l", 0755);
  REQUIRE(!l);
  CHECK(l.error().code == ENOTDIR);
}
