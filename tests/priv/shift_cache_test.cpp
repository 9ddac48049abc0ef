// The shifted-tree cache as root: a copy that keeps hard links, holes and xattrs, the
// layer left untouched, reuse by a second pod, rebuild of a damaged entry, references
// and gc; metadata-only copies that overlayfs reads through to the layer.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
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
  REQUIRE(::setxattr((l + "/fifo").c_str(), "trusted.pod-note", "fifo", 4, 0) == 0);
  REQUIRE(std::system(("setfacl -m u:33:r " + l + "/sparse").c_str()) == 0);
}

std::string output_of(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[512];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  ::pclose(p);
  return out;
}

}  // namespace

TEST_SUITE("needs:root") {
  TEST_CASE("shift cache: a metadata-only copy, shifted, that an overlay with metacopy=on reads through") {
    Scratch s;
    std::string layer = s.path + "/layer", cache = s.path + "/shifted";
    make_layer(layer);
    // An opaque directory: the mark must stay on the layer only, or overlayfs would stop
    // at the copy and never reach the data below it.
    REQUIRE(::mkdir((layer + "/opq").c_str(), 0755) == 0);
    REQUIRE(::setxattr((layer + "/opq").c_str(), "trusted.overlay.opaque", "y", 1, 0) == 0);
    REQUIRE(std::system(("printf inside >" + layer + "/opq/f").c_str()) == 0);
    REQUIRE(::mkdir(cache.c_str(), 0700) == 0);
    auto lfd = dir_fd(layer);
    auto cfd = dir_fd(cache);
    ShiftCache c(cfd);
    auto source = spec("0:0:65536"), target = spec("0:300000:65536");
    auto m = c.acquire(lfd, "sha256:aaaa", source, target, "pod-a", CopyData::metacopy);
    REQUIRE_MESSAGE(m, (m ? "" : m.error().what()));
    CHECK(m->key == cache_key("sha256:aaaa", source, target, CopyData::metacopy));
    CHECK(m->key != cache_key("sha256:aaaa", source, target));
    std::string root = cache + "/" + m->key + "/root";
    auto su = lst(root + "/bin/su");
    CHECK(su.st_uid == 300000);
    CHECK((su.st_mode & 07777) == 04755);
    CHECK(su.st_size == 4);
    CHECK(su.st_blocks == 0);  // no data: it stays in the layer
    CHECK(su.st_ino == lst(root + "/su-link").st_ino);
    CHECK(::getxattr((root + "/bin/su").c_str(), "trusted.overlay.metacopy", nullptr, 0) == 0);
    CHECK(lst(root + "/sparse").st_size == 64 << 20);
    // No data extent at all (its blocks, if any, hold its xattrs).
    int sparse = ::open((root + "/sparse").c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(sparse >= 0);
    errno = 0;
    CHECK(::lseek(sparse, 0, SEEK_DATA) == -1);
    CHECK(errno == ENXIO);
    ::close(sparse);
    char cap[64];
    ssize_t cl = ::getxattr((root + "/bin/ping").c_str(), kCapXattr, cap, sizeof cap);
    REQUIRE(cl > 0);
    CHECK(capability_rootid(std::string(cap, static_cast<std::size_t>(cl))) == 300000u);
    CHECK(::getxattr((root + "/opq").c_str(), "trusted.overlay.opaque", nullptr, 0) < 0);
    CHECK(lst(root + "/fifo").st_uid == 301000);
    // Stacked right above its layer, as a pod's overlay has it: shifted owners, the
    // layer's data, the opaque directory's own files.
    std::string mnt = s.path + "/m";
    REQUIRE(::mkdir(mnt.c_str(), 0755) == 0);
    std::string out = output_of("unshare -m sh -c 'mount -t overlay pod-test -o lowerdir=" + root + ":" + layer +
                                ",metacopy=on " + mnt + " && stat -c %u:%a:%s " + mnt + "/bin/su && cat " + mnt +
                                "/bin/su " + mnt + "/opq/f && ls " + mnt + "/opq' 2>&1");
    CHECK(out == "300000:4755:4\ndatainside" "f\n");
    // The layer is untouched.
    CHECK(lst(layer + "/bin/su").st_uid == 0);
    CHECK(::getxattr((layer + "/opq").c_str(), "trusted.overlay.opaque", nullptr, 0) == 1);
  }


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
    char fv[8];
    CHECK(::getxattr((root + "/fifo").c_str(), "trusted.pod-note", fv, sizeof fv) == 4);
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
    // Maps that overlap (an ordinary user's store map and a lease from the same range):
    // a copy reads one tree and writes another, so that is no ambiguity.
    auto near = c.acquire(lfd, "sha256:aaaa", source, spec("0:1:65536"), "pod-d");
    REQUIRE_MESSAGE(near, (near ? "" : near.error().what()));
    CHECK(lst(cache + "/" + near->key + "/root/bin/su").st_uid == 1);
    CHECK(lst(cache + "/" + near->key + "/root/fifo").st_uid == 1001);
    REQUIRE(c.release(near->key, "pod-d"));
    REQUIRE(c.gc() == std::vector<std::string>{near->key});
    // A damaged origin: rebuilt, not trusted.
    REQUIRE(std::system(("sed -i 's/300000/300001/' " + cache + "/" + a->key + "/origin").c_str()) == 0);
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
    // A use is a file refs/<key>.<pod>; a pod name that could leave refs/ is refused.
    auto e = c.acquire(lfd, "sha256:aaaa", source, target, "pod-e");
    REQUIRE(e);
    CHECK(fs::exists(cache + "/refs/" + e->key + ".pod-e"));
    CHECK_FALSE(c.acquire(lfd, "sha256:aaaa", source, target, "../x"));
    // A store from before refs/: its refs.json still counts, and empties as its pods go.
    std::ofstream(cache + "/refs.json") << "{\"" << e->key << "\": [\"old-pod\"]}\n";
    REQUIRE(c.release(e->key, "pod-e"));
    CHECK_FALSE(fs::exists(cache + "/refs/" + e->key + ".pod-e"));
    CHECK(c.gc()->empty());
    auto listed = c.refs();
    REQUIRE(listed);
    REQUIRE(listed->size() == 1);
    CHECK(listed->at(0).second == std::vector<std::string>{"old-pod"});
    REQUIRE(c.release(e->key, "old-pod"));
    CHECK(*c.gc() == std::vector<std::string>{e->key});
    CHECK(c.refs()->empty());
  }
}
