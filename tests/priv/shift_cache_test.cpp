// The shifted-tree cache as root: a copy that keeps hard links, holes and xattrs, the
// layer left untouched, reuse by a second pod, rebuild of a damaged entry, references
// and gc.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "pod/shift/cache.hpp"
#include "pod/shift/xattrs.hpp"

namespace fs = std::filesystem;
using namespace pod::shift;

namespace {

pod::idmap::MapSpec spec(const char* t) {
  auto s = pod::idmap::parse_map_spec(t);
  REQUIRE(s);
  return *s;
}
pod::sys::Fd dir_fd(const std::string& p) { return pod::sys::Fd(::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); }
struct stat lst(const std::string& p) {
  struct stat st {};
  REQUIRE_MESSAGE(::lstat(p.c_str(), &st) == 0, p);
  return st;
}

struct Scratch {
  std::string path;
  Scratch() {
    std::string tmpl = (fs::temp_directory_path() / "pod-shift-cache-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// A layer as the store keeps it for root: image ids as they are (map 0:0:65536).
void make_layer(const std::string& l) {
  REQUIRE(::mkdir(l.c_str(), 0755) == 0);
  REQUIRE(::mkdir((l + "/bin").c_str(), 0755) == 0);
  REQUIRE(std::system(("printf data >" + l + "/bin/su && chown 0:0 " + l + "/bin/su && chmod 4755 " + l + "/bin/su").c_str()) == 0);
  REQUIRE(std::system(("printf x >" + l + "/bin/ping && setcap cap_net_raw+ep " + l + "/bin/ping").c_str()) == 0);
  REQUIRE(::link((l + "/bin/su").c_str(), (l + "/su-link").c_str()) == 0);
  // Sparse: 64 MiB with 4 KiB of data in the middle.
  int fd = ::open((l + "/sparse").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, "x", 1, 32 << 20) == 1);
  REQUIRE(::ftruncate(fd, 64 << 20) == 0);
  ::close(fd);
  REQUIRE(::setxattr((l + "/sparse").c_str(), "user.note", "kept", 4, 0) == 0);
  REQUIRE(::symlink("/etc/passwd", (l + "/pw").c_str()) == 0);
  REQUIRE(::mkfifo((l + "/fifo").c_str(), 0600) == 0);
  REQUIRE(::lchown((l + "/fifo").c_str(), 1000, 1000) == 0);
  REQUIRE(std::system(("setfacl -m u:33:r " + l + "/sparse").c_str()) == 0);
}

}  // namespace

TEST_SUITE("needs:root") {
  TEST_CASE("shift cache: copy, shift once, share, rebuild when damaged, gc by references") {
    Scratch s;
    std::string layer = s.path + "/layer", cache = s.path + "/shifted";
    make_layer(layer);
    REQUIRE(::mkdir(cache.c_str(), 0700) == 0);
    auto lfd = dir_fd(layer);
    auto cfd = dir_fd(cache);
    ShiftCache c(cfd);
    auto source = spec("0:0:65536"), target = spec("0:300000:65536");
    auto a = c.acquire(lfd, "sha256:aaaa", source, target, "pod-a");
    REQUIRE_MESSAGE(a, (a ? "" : a.error().what()));
    CHECK(a->built);
    CHECK(a->key == cache_key("sha256:aaaa", source, target));
    std::string root = cache + "/" + a->key + "/root";
    // Shifted owners; setuid and capability kept; links, holes, xattrs, ACL ids kept.
    CHECK(lst(root + "/bin/su").st_uid == 300000);
    CHECK((lst(root + "/bin/su").st_mode & 07777) == 04755);
    CHECK(lst(root + "/bin/su").st_ino == lst(root + "/su-link").st_ino);
    CHECK(lst(root + "/fifo").st_uid == 301000);
    CHECK(S_ISFIFO(lst(root + "/fifo").st_mode));
    CHECK(lst(root + "/pw").st_uid == 300000);
    CHECK(lst(root + "/sparse").st_size == 64 << 20);
    CHECK(lst(root + "/sparse").st_blocks < 1024);  // a reflink or the data extent only
    char v[16];
    CHECK(::getxattr((root + "/sparse").c_str(), "user.note", v, sizeof v) == 4);
    char cap[64];
    ssize_t cl = ::getxattr((root + "/bin/ping").c_str(), kCapXattr, cap, sizeof cap);
    REQUIRE(cl > 0);
    CHECK(capability_rootid(std::string(cap, static_cast<std::size_t>(cl))) == 300000u);
    std::vector<std::uint32_t> ids;
    char acl[128];
    ssize_t al = ::getxattr((root + "/sparse").c_str(), kAclAccess, acl, sizeof acl);
    REQUIRE(al > 0);
    for_each_acl_id(std::string_view(acl, static_cast<std::size_t>(al)), [&](bool, std::uint32_t id) { ids.push_back(id); });
    CHECK(ids == std::vector<std::uint32_t>{300033});
    // The layer is untouched.
    CHECK(lst(layer + "/bin/su").st_uid == 0);
    CHECK(lst(layer + "/fifo").st_uid == 1000);
    // A second pod with the same map reuses the entry.
    auto b = c.acquire(lfd, "sha256:aaaa", source, target, "pod-b");
    REQUIRE(b);
    CHECK_FALSE(b->built);
    CHECK(b->key == a->key);
    // Another map is another entry.
    auto other = c.acquire(lfd, "sha256:aaaa", source, spec("0:400000:65536"), "pod-c");
    REQUIRE(other);
    CHECK(other->key != a->key);
    CHECK(lst(cache + "/" + other->key + "/root/bin/su").st_uid == 400000);
    // A damaged journal: rebuilt, not trusted.
    REQUIRE(std::system(("sed -i 's/\"done\"/\"running\"/' " + cache + "/" + a->key + "/.root.pod-shift").c_str()) == 0);
    auto again = c.acquire(lfd, "sha256:aaaa", source, target, "pod-b");
    REQUIRE(again);
    CHECK(again->built);
    CHECK(lst(cache + "/" + a->key + "/root/bin/su").st_uid == 300000);
    // gc keeps what a pod references.
    REQUIRE(c.release(other->key, "pod-c"));
    auto gone = c.gc();
    REQUIRE(gone);
    CHECK(*gone == std::vector<std::string>{other->key});
    CHECK(fs::exists(cache + "/" + a->key));
    REQUIRE(c.release(a->key, "pod-a"));
    CHECK(c.gc()->empty());
    REQUIRE(c.release(a->key, "pod-b"));
    CHECK(*c.gc() == std::vector<std::string>{a->key});
    CHECK_FALSE(fs::exists(cache + "/" + a->key));
    auto refs = c.refs();
    REQUIRE(refs);
    CHECK(refs->empty());
  }
}
