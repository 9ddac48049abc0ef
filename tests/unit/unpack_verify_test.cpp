// verify_tree: what it finds in a tree changed after unpacking, and that it finds
// nothing in one left alone.
#include "unpack_support.hpp"

namespace pod::cas::test {
namespace {

std::vector<Ent> sample() {
  return {dir("etc"), file("etc/passwd", "root:x:0:0\n"), file("etc/group", "root:x:0:\n"),
          dir("usr/bin"), file("usr/bin/x", std::string(100000, 'x'), 0755), symlink("usr/bin/y", "x"),
          hardlink("usr/bin/z", "usr/bin/x")};
}

TEST_CASE("verify_tree: nothing to say about an untouched tree") {
  Scratch s;
  REQUIRE(unpack(s, make_tar(sample(), Filter::gzip)).has_value());
  CHECK(verify(s).empty());
}

TEST_CASE("verify_tree: finds what changed") {
  Scratch s;
  REQUIRE(unpack(s, make_tar(sample())).has_value());
  SUBCASE("a changed byte") {
    sys::Fd f(::open(s.at("usr/bin/x").c_str(), O_WRONLY | O_CLOEXEC));
    REQUIRE(::pwrite(f.get(), "y", 1, 50000) == 1);
    CHECK(verify(s) == std::vector<std::string>{"usr/bin/x: content changed"});
  }
  SUBCASE("a chmod") {
    REQUIRE(::chmod(s.at("etc/passwd").c_str(), 0666) == 0);
    CHECK(verify(s) == std::vector<std::string>{"etc/passwd: mode changed (0644 -> 0666)"});
  }
  SUBCASE("a removed file") {
    REQUIRE(::unlink(s.at("etc/group").c_str()) == 0);
    CHECK(verify(s) == std::vector<std::string>{"etc/group: missing"});
  }
  SUBCASE("an added file") {
    spit(s.at("etc/new"), "new");
    CHECK(verify(s) == std::vector<std::string>{"etc/new: not in the layer"});
  }
  SUBCASE("a different size") {
    spit(s.at("etc/passwd"), "root:x:0:0\nevil:x:0:0\n");
    CHECK(verify(s) == std::vector<std::string>{"etc/passwd: size changed (11 -> 22 bytes)"});
  }
  SUBCASE("a symlink retargeted") {
    REQUIRE(::unlink(s.at("usr/bin/y").c_str()) == 0);
    REQUIRE(::symlink("/etc/shadow", s.at("usr/bin/y").c_str()) == 0);
    CHECK(verify(s) == std::vector<std::string>{"usr/bin/y: symlink target changed ('x' -> '/etc/shadow')"});
  }
  SUBCASE("a file turned into a directory") {
    REQUIRE(::unlink(s.at("etc/group").c_str()) == 0);
    REQUIRE(::mkdir(s.at("etc/group").c_str(), 0755) == 0);
    CHECK(verify(s) == std::vector<std::string>{"etc/group: type changed (was a regular file, now a directory)"});
  }
  SUBCASE("a hard link broken") {
    REQUIRE(::unlink(s.at("usr/bin/z").c_str()) == 0);
    spit(s.at("usr/bin/z"), std::string(100000, 'x'));
    REQUIRE(::chmod(s.at("usr/bin/z").c_str(), 0755) == 0);
    CHECK(verify(s) == std::vector<std::string>{"usr/bin/z: no longer a hard link to 'usr/bin/x'"});
  }
  SUBCASE("a symlink planted where a directory was is not followed") {
    std::string outside = s.path + "/outside";
    REQUIRE(::mkdir(outside.c_str(), 0755) == 0);
    spit(outside + "/passwd", "root:x:0:0\n");
    REQUIRE(::rename(s.at("etc").c_str(), (s.path + "/etc-moved").c_str()) == 0);
    REQUIRE(::symlink(outside.c_str(), s.at("etc").c_str()) == 0);
    auto diffs = verify(s);
    CHECK(diffs == std::vector<std::string>{"etc/group: missing", "etc/passwd: missing",
                                            "etc: type changed (was a directory, now a symlink)"});
  }
}

TEST_CASE("verify_tree: a damaged file list is an error") {
  Scratch s;
  REQUIRE(unpack(s, make_tar(sample())).has_value());
  {
    sys::Fd list = s.list_fd(O_WRONLY | O_APPEND);
    REQUIRE(::write(list.get(), "{not json\n", 10) == 10);
  }
  sys::Fd root = s.root_fd();
  sys::Fd list = s.list_fd();
  auto r = verify_tree(root, list);
  REQUIRE(!r.has_value());
  CHECK(r.error().message.find("file list line 9 is damaged") != std::string::npos);
}

}  // namespace
}  // namespace pod::cas::test
