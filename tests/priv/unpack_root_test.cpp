// unpack_layer as root: exact owners, setuid bits and file capabilities after chown,
// device nodes, overlayfs whiteouts and opaque directories.
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <cstring>

#include "../unit/unpack_support.hpp"

namespace pod::cas::test {
namespace {

// A VFS_CAP_REVISION_2 security.capability value granting cap_net_bind_service (effective).
std::string cap_net_bind_service() {
  vfs_cap_data cap{};
  cap.magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE;
  cap.data[0].permitted = 1u << CAP_NET_BIND_SERVICE;
  return std::string(reinterpret_cast<const char*>(&cap), XATTR_CAPS_SZ_2);
}

TEST_SUITE("needs:root") {
  TEST_CASE("unpack as root: exact owners, setuid kept after chown, capabilities kept") {
    Scratch s;
    auto d = dir("home/user", 02750);
    d.uid = 1234, d.gid = 5678;
    auto f = file("home/user/file", "data", 0640);
    f.uid = 1234, f.gid = 5678;
    auto su = file("usr/bin/su", "elf", 04755);
    su.uid = 1234, su.gid = 5678;
    auto sg = file("usr/bin/wall", "elf", 02755);
    sg.uid = 0, sg.gid = 5678;
    auto ping = file("usr/bin/ping", "elf", 0755);
    ping.uid = 1234, ping.gid = 5678;
    ping.xattrs = {{"security.capability", cap_net_bind_service()}};
    auto l = symlink("home/user/link", "file");
    l.uid = 1234, l.gid = 5678;
    UnpackOptions o;  // Ownership::exact, trusted overlay xattrs
    auto r = unpack(s, make_tar({d, f, su, sg, ping, l}, Filter::gzip), o);
    REQUIRE_MESSAGE(r.has_value(), r.error().what());
    struct stat st;
    for (const char* p : {"home/user", "home/user/file", "usr/bin/su", "usr/bin/ping", "home/user/link"}) {
      CAPTURE(p);
      REQUIRE(::lstat(s.at(p).c_str(), &st) == 0);
      CHECK(st.st_uid == 1234);
      CHECK(st.st_gid == 5678);
    }
    REQUIRE(::stat(s.at("home/user").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 02750);
    REQUIRE(::stat(s.at("usr/bin/su").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 04755);
    REQUIRE(::stat(s.at("usr/bin/wall").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 02755);
    CHECK(st.st_gid == 5678);
    CHECK(xattr_of(s.at("usr/bin/ping"), "security.capability") == cap_net_bind_service());
    CHECK(xattr_of(s.at("usr/bin/ping"), kRootlessXattr) == "<none>");
    CHECK(r->uids == std::set<std::uint32_t>{0, 1234, ::geteuid()});
    CHECK(verify(s).empty());
    // verify_tree reads owners as stored.
    REQUIRE(::lchown(s.at("home/user/file").c_str(), 1, 1) == 0);
    CHECK(verify(s) == std::vector<std::string>{"home/user/file: owner changed (1234:5678 -> 1:1)"});
  }

  TEST_CASE("unpack as root: device nodes, fifos") {
    Scratch s;
    auto null = device("dev/null", 'c', 0666, 1, 3);
    auto loop = device("dev/loop0", 'b', 0660, 7, 0);
    loop.gid = 6;
    auto fifo = make_ent("run/initctl", 'p', 0600);
    UnpackOptions o;
    std::vector<std::string> warnings;
    o.warn = [&](const std::string& w) { warnings.push_back(w); };
    auto r = unpack(s, make_tar({null, loop, fifo}), o);
    REQUIRE_MESSAGE(r.has_value(), r.error().what());
    CHECK(r->skipped_devices == 0);
    CHECK(warnings.empty());
    struct stat st;
    REQUIRE(::lstat(s.at("dev/null").c_str(), &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
    CHECK(st.st_rdev == makedev(1, 3));
    CHECK((st.st_mode & 07777) == 0666);
    REQUIRE(::lstat(s.at("dev/loop0").c_str(), &st) == 0);
    CHECK(S_ISBLK(st.st_mode));
    CHECK(st.st_rdev == makedev(7, 0));
    CHECK(st.st_gid == 6);
    REQUIRE(::lstat(s.at("run/initctl").c_str(), &st) == 0);
    CHECK(S_ISFIFO(st.st_mode));
    CHECK(verify(s).empty());
  }

  TEST_CASE("unpack as root: whiteouts and opaque directories") {
    for (auto which : {OverlayXattrs::trusted, OverlayXattrs::user}) {
      const char* key = which == OverlayXattrs::trusted ? "trusted.overlay.opaque" : "user.overlay.opaque";
      CAPTURE(key);
      Scratch s;
      UnpackOptions o;
      o.overlay_xattrs = which;
      auto r = unpack(s, make_tar({dir("etc"), file("etc/.wh.passwd", ""), dir("var/cache"),
                                   file("var/cache/.wh..wh..opq", ""), file("var/cache/new", "n"), file(".wh.top", "")}),
                      o);
      REQUIRE_MESSAGE(r.has_value(), r.error().what());
      struct stat st;
      for (const char* p : {"etc/passwd", "top"}) {
        CAPTURE(p);
        REQUIRE(::lstat(s.at(p).c_str(), &st) == 0);
        CHECK(S_ISCHR(st.st_mode));
        CHECK(st.st_rdev == makedev(0, 0));
      }
      CHECK(!fs::exists(s.at("etc/.wh.passwd")));
      CHECK(!fs::exists(s.at("var/cache/.wh..wh..opq")));
      CHECK(xattr_of(s.at("var/cache"), key) == "y");
      CHECK(xattr_of(s.at("etc"), key) == "<none>");
      CHECK(verify(s).empty());
      REQUIRE(::lremovexattr(s.at("var/cache").c_str(), key) == 0);
      CHECK(verify(s) == std::vector<std::string>{std::string("var/cache: opaque marker ") + key + " missing"});
    }
  }
}

}  // namespace
}  // namespace pod::cas::test
