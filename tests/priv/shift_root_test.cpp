// The shift engine as root on a real tree: the fixture (setuid/setgid, file
// capabilities v2 and v3, access and default ACLs, hard links across directories,
// symlinks out of the tree, fifos, device nodes, ids at the edges of extents), every
// inode checked afterwards; a racing RENAME_EXCHANGE; resume after a kill between chown
// and restore; ids outside the source map; another filesystem mounted inside.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>

#include "pod/shift/engine.hpp"
#include "pod/shift/xattrs.hpp"

namespace fs = std::filesystem;
using namespace pod::shift;

namespace {

// Source: inner 0-999 at 100000, inner 1000-65535 at 300000. Target: 0-65535 at 200000.
constexpr const char* kFrom = "0:100000:1000,1000:300000:64536";
constexpr const char* kTo = "0:200000:65536";

pod::idmap::MapSpec spec(const char* t) {
  auto s = pod::idmap::parse_map_spec(t);
  REQUIRE(s);
  return *s;
}

struct Scratch {
  std::string path;
  Scratch() {
    std::string tmpl = (fs::temp_directory_path() / "pod-shift-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
    REQUIRE(::mkdir(tree().c_str(), 0755) == 0);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  [[nodiscard]] std::string tree() const { return path + "/tree"; }
  [[nodiscard]] std::string at(const std::string& rel) const { return tree() + "/" + rel; }
  [[nodiscard]] pod::sys::Fd dir_fd(const std::string& p) const {
    return pod::sys::Fd(::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
};

void own(const std::string& p, uid_t u, gid_t g) { REQUIRE(::lchown(p.c_str(), u, g) == 0); }
void mkfile(const std::string& p, mode_t mode, uid_t u, gid_t g) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, "x", 1) == 1);
  ::close(fd);
  own(p, u, g);
  REQUIRE(::chmod(p.c_str(), mode) == 0);  // after chown, which would clear setuid
}
void mkdir_owned(const std::string& p, mode_t mode, uid_t u, gid_t g) {
  REQUIRE(::mkdir(p.c_str(), 0700) == 0);
  own(p, u, g);
  REQUIRE(::chmod(p.c_str(), mode) == 0);
}
int sh(const std::string& cmd) { return std::system(cmd.c_str()); }

std::string cap_bytes(std::uint32_t rev, std::uint32_t root) {
  vfs_ns_cap_data c{};
  c.magic_etc = rev | VFS_CAP_FLAGS_EFFECTIVE;
  c.data[0].permitted = 1u << CAP_NET_RAW;
  c.rootid = root;
  return std::string(reinterpret_cast<const char*>(&c), rev == VFS_CAP_REVISION_3 ? XATTR_CAPS_SZ_3 : XATTR_CAPS_SZ_2);
}
void set_cap(const std::string& p, const std::string& v) {
  REQUIRE(::setxattr(p.c_str(), kCapXattr, v.data(), v.size(), 0) == 0);
}
std::string get_x(const std::string& p, const char* name) {
  char buf[512];
  ssize_t n = ::lgetxattr(p.c_str(), name, buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, static_cast<std::size_t>(n));
}
std::vector<std::uint32_t> acl_ids(const std::string& p, const char* name) {
  std::vector<std::uint32_t> ids;
  for_each_acl_id(get_x(p, name), [&](bool, std::uint32_t id) { ids.push_back(id); });
  return ids;
}

struct Want {
  uid_t uid;
  gid_t gid;
  mode_t mode;  // 07777 bits; ignored for symlinks
};

// The fixture; returns the expected owner and mode of every inode after the shift.
std::map<std::string, Want> make_fixture(const Scratch& s) {
  const std::string t = s.tree();
  own(t, 100000, 100000);
  std::map<std::string, Want> w;
  w["."] = {200000, 200000, 0755};
  mkdir_owned(s.at("bin"), 0755, 100000, 100000), w["bin"] = {200000, 200000, 0755};
  mkfile(s.at("bin/su"), 04755, 100000, 100000), w["bin/su"] = {200000, 200000, 04755};
  mkfile(s.at("bin/wall"), 02755, 100000, 100005), w["bin/wall"] = {200000, 200005, 02755};
  mkfile(s.at("bin/both"), 06750, 300000, 100999), w["bin/both"] = {201000, 200999, 06750};
  mkfile(s.at("bin/ping"), 0755, 100000, 100000), w["bin/ping"] = {200000, 200000, 0755};
  set_cap(s.at("bin/ping"), cap_bytes(VFS_CAP_REVISION_2, 0));
  mkfile(s.at("bin/ping3"), 04755, 100000, 100000), w["bin/ping3"] = {200000, 200000, 04755};
  set_cap(s.at("bin/ping3"), cap_bytes(VFS_CAP_REVISION_3, 100000));
  // Ids at the edges of each source extent.
  mkdir_owned(s.at("edges"), 0750, 100999, 300000), w["edges"] = {200999, 201000, 0750};
  mkfile(s.at("edges/last"), 0640, 364535, 364535), w["edges/last"] = {265535, 265535, 0640};
  mkfile(s.at("edges/first2"), 0600, 300000, 100000), w["edges/first2"] = {201000, 200000, 0600};
  // ACLs made by setfacl: access on a file, default and access on a directory.
  mkfile(s.at("acl-file"), 0640, 100000, 100000), w["acl-file"] = {200000, 200000, 0660};
  REQUIRE(sh("setfacl -m u:100033:rw,g:300044:r " + s.at("acl-file")) == 0);
  mkdir_owned(s.at("acl-dir"), 02770, 300001, 300001), w["acl-dir"] = {201001, 201001, 02770};
  REQUIRE(sh("setfacl -m u:100007:rwx -d -m u:364535:rx,g:100999:rwx " + s.at("acl-dir")) == 0);
  // Hard links across directories, one of them setuid.
  mkdir_owned(s.at("a"), 0755, 100000, 100000), w["a"] = {200000, 200000, 0755};
  mkdir_owned(s.at("b"), 0755, 100000, 100000), w["b"] = {200000, 200000, 0755};
  mkdir_owned(s.at("b/deep"), 0755, 100000, 100000), w["b/deep"] = {200000, 200000, 0755};
  mkfile(s.at("a/h"), 04711, 300100, 300100), w["a/h"] = {201100, 201100, 04711};
  REQUIRE(::link(s.at("a/h").c_str(), s.at("b/deep/h2").c_str()) == 0);
  w["b/deep/h2"] = w["a/h"];
  REQUIRE(::link(s.at("a/h").c_str(), s.at("h3").c_str()) == 0);
  w["h3"] = w["a/h"];
  // Symlinks out of the tree: owned themselves, never followed.
  REQUIRE(::symlink("/etc", s.at("to-etc").c_str()) == 0);
  own(s.at("to-etc"), 100001, 100001), w["to-etc"] = {200001, 200001, 0};
  REQUIRE(::symlink("../../..", s.at("b/deep/up").c_str()) == 0);
  own(s.at("b/deep/up"), 300002, 300002), w["b/deep/up"] = {201002, 201002, 0};
  // A fifo, a device node and a socket, with an access ACL on the fifo.
  REQUIRE(::mkfifo(s.at("fifo").c_str(), 0620) == 0);
  own(s.at("fifo"), 100002, 100003), w["fifo"] = {200002, 200003, 0620};
  REQUIRE(::chmod(s.at("fifo").c_str(), 0620) == 0);  // mkfifo and mknod take the umask
  REQUIRE(sh("setfacl -m u:100004:r " + s.at("fifo")) == 0);
  w["fifo"].mode = 0660;  // the ACL mask shows in the group bits
  REQUIRE(::mknod(s.at("null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
  own(s.at("null"), 100000, 100000), w["null"] = {200000, 200000, 0666};
  REQUIRE(::chmod(s.at("null").c_str(), 0666) == 0);
  int sk = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", s.at("sock").c_str());
  REQUIRE(::bind(sk, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  ::close(sk);
  own(s.at("sock"), 100010, 100010), w["sock"] = {200010, 200010, 0};
  return w;
}

void check_tree(const Scratch& s, const std::map<std::string, Want>& want) {
  std::size_t seen = 1;
  for (auto it = fs::recursive_directory_iterator(s.tree()); it != fs::recursive_directory_iterator(); ++it) ++seen;
  CHECK(seen == want.size());
  for (auto& [rel, w] : want) {
    struct stat st;
    REQUIRE_MESSAGE(::lstat(s.at(rel).c_str(), &st) == 0, rel);
    CHECK_MESSAGE(st.st_uid == w.uid, rel);
    CHECK_MESSAGE(st.st_gid == w.gid, rel);
    if (!S_ISLNK(st.st_mode) && !S_ISSOCK(st.st_mode)) CHECK_MESSAGE((st.st_mode & 07777) == w.mode, rel);
  }
}

pod::shift::Summary run(const Scratch& s, const char* from, const char* to, Options o = {}) {
  auto top = s.dir_fd(s.tree());
  auto parent = s.dir_fd(s.path);
  JournalFiles j(parent, ".tree.pod-shift");
  auto r = shift_tree(top, j, spec(from), spec(to), o);
  REQUIRE_MESSAGE(r, (r ? "" : r.error().what()));
  return *r;
}

}  // namespace

TEST_SUITE("needs:root") {
  TEST_CASE("shift: every inode of the fixture, modes, capabilities, ACLs, links") {
    Scratch s;
    auto want = make_fixture(s);
    struct stat etc_before;
    REQUIRE(::stat("/etc", &etc_before) == 0);
    Options dry;
    dry.dry_run = true;
    auto d = run(s, kFrom, kTo, dry);
    CHECK(d.changed == want.size() - 2);  // the two extra hard links count once
    CHECK(d.links == 2);
    struct stat su;
    REQUIRE(::stat(s.at("bin/su").c_str(), &su) == 0);
    CHECK(su.st_uid == 100000);  // the dry run changed nothing
    CHECK_FALSE(fs::exists(s.path + "/.tree.pod-shift"));

    auto sum = run(s, kFrom, kTo);
    CHECK(sum.inodes == want.size());
    CHECK(sum.changed == want.size() - 2);
    check_tree(s, want);
    // Capabilities: v2 became v3 rooted at the target's root; v3 shifted.
    CHECK(capability_rootid(get_x(s.at("bin/ping"), kCapXattr)) == 200000u);
    CHECK(get_x(s.at("bin/ping"), kCapXattr).substr(4, 16) == cap_bytes(VFS_CAP_REVISION_2, 0).substr(4, 16));
    CHECK(capability_rootid(get_x(s.at("bin/ping3"), kCapXattr)) == 200000u);
    CHECK(acl_ids(s.at("acl-file"), kAclAccess) == std::vector<std::uint32_t>{200033, 201044});
    CHECK(acl_ids(s.at("acl-dir"), kAclAccess) == std::vector<std::uint32_t>{200007});
    CHECK(acl_ids(s.at("acl-dir"), kAclDefault) == std::vector<std::uint32_t>{265535, 200999});
    CHECK(acl_ids(s.at("fifo"), kAclAccess) == std::vector<std::uint32_t>{200004});
    struct stat etc_after;
    REQUIRE(::stat("/etc", &etc_after) == 0);
    CHECK(etc_after.st_uid == etc_before.st_uid);
    CHECK(etc_after.st_gid == etc_before.st_gid);
    // Verify finds nothing; a second run (journal done) changes nothing.
    auto top = s.dir_fd(s.tree());
    auto v = verify_tree(top, spec(kTo), false, {});
    REQUIRE(v);
    CHECK(v->problem_count == 0);
    CHECK(v->done == want.size() - 2);
    auto again = run(s, kFrom, kTo);
    CHECK(again.changed == 0);
    CHECK(again.done == want.size() - 2);
    check_tree(s, want);
    // Verify against the source map lists what lies outside it.
    auto bad = verify_tree(top, spec(kFrom), false, {});
    REQUIRE(bad);
    CHECK(bad->problem_count == want.size() - 2);  // one line per inode: owners, ACL ids, capability root
    CHECK(bad->done == 0);
    CHECK(bad->problems.size() == kMaxProblems);
  }

  TEST_CASE("shift: ids outside the source map are listed, then overflow finishes") {
    Scratch s;
    own(s.tree(), 100000, 100000);
    mkfile(s.at("ok"), 0644, 100001, 100001);
    mkfile(s.at("outside"), 0644, 364536, 100000);  // one past the last extent
    mkfile(s.at("acl"), 0644, 100000, 100000);
    REQUIRE(sh("setfacl -m u:5:r " + s.at("acl")) == 0);
    auto top = s.dir_fd(s.tree());
    auto parent = s.dir_fd(s.path);
    JournalFiles j(parent, ".tree.pod-shift");
    auto r = shift_tree(top, j, spec(kFrom), spec(kTo), {});
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("2 inodes were left as they were:") == 0);
    CHECK(r.error().message.find("outside: uid 364536 is outside the source map") != std::string::npos);
    CHECK(r.error().message.find("acl: system.posix_acl_access: ACL entry user:5") != std::string::npos);
    struct stat st;
    REQUIRE(::stat(s.at("ok").c_str(), &st) == 0);
    CHECK(st.st_uid == 200001);
    auto jr = j.read();
    REQUIRE(jr);
    REQUIRE(*jr);
    CHECK((*jr)->state == Journal::State::running);
    // Another map while this one is pending: refused.
    auto other = shift_tree(top, j, spec(kFrom), spec("0:500000:65536"), {});
    REQUIRE_FALSE(other);
    CHECK(other.error().code == EBUSY);
    Options o;
    o.unmapped = Unmapped::overflow;
    auto sum = run(s, kFrom, kTo, o);
    CHECK(sum.done == 2);  // the top and "ok", done by the first run
    CHECK(sum.overflowed == 1);  // owners sent to the overflow id; the ACL entry is checked below
    REQUIRE(::stat(s.at("outside").c_str(), &st) == 0);
    CHECK(st.st_uid == kOverflowId);
    CHECK(st.st_gid == 200000);
    CHECK(acl_ids(s.at("acl"), kAclAccess) == std::vector<std::uint32_t>{kOverflowId});
    auto v = verify_tree(top, spec(kTo), true, {});
    REQUIRE(v);
    CHECK(v->problem_count == 0);
  }

  TEST_CASE("shift: killed between chown and restore, a rerun puts setuid bits and capability back") {
    Scratch s;
    own(s.tree(), 100000, 100000);
    mkfile(s.at("su"), 04755, 100000, 100000);
    mkfile(s.at("ping"), 0755, 100000, 100000);
    set_cap(s.at("ping"), cap_bytes(VFS_CAP_REVISION_2, 0));
    // What a run killed right after its chowns leaves: journal running, intents
    // written, owners in the target, setuid bit and capability cleared by chown.
    auto parent = s.dir_fd(s.path);
    JournalFiles j(parent, ".tree.pod-shift");
    Journal jr{canonical_text(spec(kFrom)), canonical_text(spec(kTo)), Unmapped::error, Journal::State::running, 0, 0};
    REQUIRE(j.write(jr));
    struct stat a, b;
    REQUIRE(::stat(s.at("su").c_str(), &a) == 0);
    REQUIRE(::stat(s.at("ping").c_str(), &b) == 0);
    std::string lines = intent_line({a.st_dev, a.st_ino}, Intent{04755, ""}) +
                        intent_line({b.st_dev, b.st_ino}, Intent{0755, cap_bytes(VFS_CAP_REVISION_2, 0)});
    {
      auto fd = j.open_intents();
      REQUIRE(fd);
      REQUIRE(::write(fd->get(), lines.data(), lines.size()) == static_cast<ssize_t>(lines.size()));
    }
    own(s.at("su"), 200000, 200000);
    own(s.at("ping"), 200000, 200000);
    REQUIRE(::stat(s.at("su").c_str(), &a) == 0);
    CHECK((a.st_mode & 07777) == 0755);
    CHECK(get_x(s.at("ping"), kCapXattr).empty());
    auto sum = run(s, kFrom, kTo);
    CHECK(sum.changed == 1);  // only the top
    REQUIRE(::stat(s.at("su").c_str(), &a) == 0);
    CHECK((a.st_mode & 07777) == 04755);
    CHECK(capability_rootid(get_x(s.at("ping"), kCapXattr)) == 200000u);
    CHECK_FALSE(fs::exists(s.path + "/.tree.pod-shift.intents"));
  }

  TEST_CASE("shift: a RENAME_EXCHANGE of a directory with a symlink to a victim never reaches the victim") {
    for (int round = 0; round < 4; ++round) {
      Scratch s;
      own(s.tree(), 100000, 100000);
      // The victim, outside the tree, owned by source ids: following the symlink would shift it.
      std::string victim = s.path + "/victim";
      mkdir_owned(victim, 0755, 100000, 100000);
      for (int i = 0; i < 20; ++i) mkfile(victim + "/v" + std::to_string(i), 0644, 100000 + static_cast<uid_t>(i), 100000);
      // Many pairs among many files: readdir reads a batch of entries, and the type it
      // reported is stale by the time an entry is opened if a swap came in between.
      constexpr int kPairs = 30;
      for (int p = 0; p < kPairs; ++p) {
        std::string n = std::to_string(p);
        mkdir_owned(s.at("sw" + n), 0755, 100000, 100000);
        mkfile(s.at("sw" + n + "/f"), 0644, 100000, 100000);
        REQUIRE(::symlink(victim.c_str(), s.at("sl" + n).c_str()) == 0);
      }
      for (int i = 0; i < 600; ++i) mkfile(s.at("f" + std::to_string(i)), 0644, 100000, 100000);
      std::map<std::string, std::pair<uid_t, gid_t>> before;
      for (auto& e : fs::recursive_directory_iterator(victim)) {
        struct stat st;
        REQUIRE(::lstat(e.path().c_str(), &st) == 0);
        before[e.path()] = {st.st_uid, st.st_gid};
      }
      std::atomic<bool> stop{false};
      std::atomic<int> swaps{0};
      auto t = s.dir_fd(s.tree());
      std::thread racer([&] {
        while (!stop)
          for (int p = 0; p < kPairs; ++p) {
            std::string a = "sw" + std::to_string(p), b = "sl" + std::to_string(p);
            if (::renameat2(t.get(), a.c_str(), t.get(), b.c_str(), RENAME_EXCHANGE) == 0) ++swaps;
          }
      });
      auto top = s.dir_fd(s.tree());
      auto parent = s.dir_fd(s.path);
      JournalFiles j(parent, ".tree.pod-shift");
      auto r = shift_tree(top, j, spec(kFrom), spec(kTo), {});
      stop = true;
      racer.join();
      CHECK(swaps > 0);
      (void)r;  // it may finish or report the race; either way the victim is untouched
      struct stat vs;
      REQUIRE(::stat(victim.c_str(), &vs) == 0);
      CHECK(vs.st_uid == 100000);
      for (auto& [p, ids] : before) {
        struct stat st;
        REQUIRE(::lstat(p.c_str(), &st) == 0);
        CHECK_MESSAGE(st.st_uid == ids.first, p);
        CHECK_MESSAGE(st.st_gid == ids.second, p);
      }
    }
  }

  TEST_CASE("shift: another filesystem mounted inside is not entered") {
    Scratch s;
    own(s.tree(), 100000, 100000);
    mkdir_owned(s.at("mnt"), 0755, 100000, 100000);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // A child with its own mount namespace: the tmpfs never shows outside it.
      if (::unshare(CLONE_NEWNS) < 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0 ||
          ::mount("tmpfs", s.at("mnt").c_str(), "tmpfs", 0, "mode=0755,uid=100000,gid=100000") < 0)
        ::_exit(2);
      int fd = ::open(s.at("mnt/inner").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      if (fd < 0 || ::fchown(fd, 100000, 100000) < 0) ::_exit(3);
      ::close(fd);
      int top = ::open(s.tree().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      int parent = ::open(s.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      JournalFiles j(pod::sys::FdRef::from_raw(parent), ".tree.pod-shift");
      auto r = shift_tree(pod::sys::FdRef::from_raw(top), j, spec(kFrom), spec(kTo), {});
      if (!r || r->other_fs != 1 || r->changed != 1) ::_exit(4);
      struct stat st;
      if (::stat(s.at("mnt/inner").c_str(), &st) < 0 || st.st_uid != 100000) ::_exit(5);
      if (::stat(s.at("mnt").c_str(), &st) < 0 || st.st_uid != 100000) ::_exit(6);
      ::_exit(0);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
}
