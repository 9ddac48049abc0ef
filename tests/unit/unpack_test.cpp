// unpack_layer without privileges: what it makes, what it refuses, its limits.
#include <sys/stat.h>
#include <sys/xattr.h>

#include "unpack_support.hpp"

namespace pod::cas::test {
namespace {

void expect_error(const Result<TreeSummary>& r, int code, const std::string& text) {
  REQUIRE_MESSAGE(!r.has_value(), "unpacking succeeded; expected: " << text);
  CHECK_MESSAGE(r.error().code == code, r.error().what());
  CHECK_MESSAGE(r.error().message.find(text) != std::string::npos, r.error().what() << " lacks: " << text);
}

std::string random_bytes(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  unsigned x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

bool exists(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

TEST_CASE("unpack: files, directories, links, modes, times, census and diff_id") {
  Scratch s;
  auto ents = std::vector<Ent>{
      dir("./"),
      dir("./etc/", 0750),
      file("./etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0640),
      file("usr/bin/tool", "#!/bin/sh\n", 04755),
      symlink("bin", "usr/bin"),
      symlink("etc/abs", "/etc/shadow"),
      hardlink("usr/bin/tool2", "usr/bin/tool"),
      make_ent("pipe", 'p', 0600),
  };
  ents[2].uid = 1234;
  ents[2].gid = 5678;
  std::string gz = make_tar(ents, Filter::gzip);
  auto r = unpack(s, gz);
  REQUIRE_MESSAGE(r.has_value(), r.error().what());
  spit(s.path + "/layer.gz", gz);
  REQUIRE(run("gzip -dc " + s.path + "/layer.gz > " + s.path + "/layer.tar") == 0);
  CHECK(r->diff_id == sha256_of(slurp(s.path + "/layer.tar")));
  CHECK(r->entries == ents.size());
  CHECK(r->bytes == 26 + 10);
  CHECK(r->uids.count(1234) == 1);
  CHECK(r->gids.count(5678) == 1);
  CHECK(r->uids.count(::geteuid()) == 1);

  CHECK(slurp(s.at("etc/passwd")) == "root:x:0:0::/root:/bin/sh\n");
  struct stat st;
  REQUIRE(::lstat(s.at("etc").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0750);
  CHECK(st.st_mtim.tv_sec == 1'700'000'000);  // set after its children were made
  REQUIRE(::lstat(s.at("usr/bin/tool").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 04755);
  CHECK(st.st_mtim.tv_sec == 1'700'000'000);
  CHECK(st.st_nlink == 2);
  struct stat st2;
  REQUIRE(::lstat(s.at("usr/bin/tool2").c_str(), &st2) == 0);
  CHECK(st2.st_ino == st.st_ino);
  REQUIRE(::lstat(s.at("usr").c_str(), &st) == 0);  // made for usr/bin/tool, no entry of its own
  CHECK(S_ISDIR(st.st_mode));
  CHECK((st.st_mode & 07777) == 0755);
  CHECK(fs::read_symlink(s.at("bin")) == "usr/bin");
  CHECK(fs::read_symlink(s.at("etc/abs")) == "/etc/shadow");  // stored, never followed
  REQUIRE(::lstat(s.at("pipe").c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
  CHECK(verify(s).empty());
}

TEST_CASE("unpack: gzip, zstd, bzip2, xz and plain streams are detected") {
  Scratch src;
  std::string tar = make_tar({dir("d"), file("d/a", std::string(300000, 'a') + "end")});
  spit(src.path + "/layer.tar", tar);
  for (std::string tool : {"cat -", "gzip -c", "zstd -q -c", "bzip2 -c", "xz -c"}) {
    CAPTURE(tool);
    // Compressed by the tools that make layers, not by libarchive.
    REQUIRE(run(tool + " < " + src.path + "/layer.tar > " + src.path + "/layer.out") == 0);
    Scratch s;
    auto r = unpack(s, slurp(src.path + "/layer.out"));
    REQUIRE_MESSAGE(r.has_value(), r.error().what());
    CHECK(r->diff_id == sha256_of(tar));
    CHECK(slurp(s.at("d/a")).size() == 300003);
  }
}

TEST_CASE("unpack: refused names") {
  struct Case {
    std::string name;
    std::string why;
  };
  for (auto& c : std::vector<Case>{{"/etc/passwd", "the name is absolute"},
                                   {"../etc/passwd", "the name has a '..' component, which leaves the root"},
                                   {"a/../../etc/passwd", "the name has a '..' component"},
                                   {"a/..", "the name has a '..' component"},
                                   {"a//b", "the name has an empty component"},
                                   {"a/./b", "the name has a '.' component"}}) {
    CAPTURE(c.name);
    Scratch s;
    auto r = unpack(s, make_tar({file(c.name, "x")}));
    expect_error(r, EINVAL, "entry '" + c.name + "': " + c.why);
  }
}

TEST_CASE("unpack: a parent that passes through a symlink is refused") {
  Scratch s;
  std::string outside = s.path + "/outside";
  REQUIRE(::mkdir(outside.c_str(), 0755) == 0);
  SUBCASE("to a directory outside") {
    auto r = unpack(s, make_tar({symlink("etc", outside), file("etc/passwd", "pwned")}));
    expect_error(r, EXDEV, "entry 'etc/passwd': its parent 'etc' passes through a symlink");
  }
  SUBCASE("a symlink named like a directory of the root") {
    auto r = unpack(s, make_tar({symlink("etc", "/etc"), file("etc/passwd", "pwned")}));
    expect_error(r, EXDEV, "entry 'etc/passwd': its parent 'etc' passes through a symlink");
  }
  SUBCASE("the same with the resolve fallback (kernels without openat2)") {
    sys::force_resolve_fallback(true);
    auto r = unpack(s, make_tar({symlink("etc", outside), file("etc/passwd", "pwned")}));
    auto r2 = unpack(s, make_tar({symlink("out", outside), hardlink("l", "out/secret")}));
    sys::force_resolve_fallback(false);
    expect_error(r, EXDEV, "entry 'etc/passwd': its parent 'etc' passes through a symlink");
    expect_error(r2, EXDEV, "entry 'l': hard link target 'out/secret' passes through a symlink");
  }
  SUBCASE("relative, inside the root") {
    auto r = unpack(s, make_tar({dir("real"), symlink("etc", "real"), file("etc/passwd", "pwned")}));
    expect_error(r, EXDEV, "entry 'etc/passwd': its parent 'etc' passes through a symlink");
    CHECK(!exists(s.at("real/passwd")));
  }
  SUBCASE("deeper") {
    auto r = unpack(s, make_tar({dir("a"), symlink("a/b", "../../outside"), file("a/b/c/d", "pwned")}));
    expect_error(r, EXDEV, "passes through a symlink");
  }
  CHECK(!exists(outside + "/passwd"));
  CHECK(!exists(outside + "/c"));
}

TEST_CASE("unpack: hard links reach only regular files of this layer") {
  Scratch s;
  std::string outside = s.path + "/outside";
  REQUIRE(::mkdir(outside.c_str(), 0755) == 0);
  spit(outside + "/secret", "secret");
  SUBCASE("outside through a symlink") {
    auto r = unpack(s, make_tar({symlink("out", outside), hardlink("l", "out/secret")}));
    expect_error(r, EXDEV, "entry 'l': hard link target 'out/secret' passes through a symlink");
  }
  SUBCASE("outside by ..") {
    auto r = unpack(s, make_tar({hardlink("l", "../outside/secret")}));
    expect_error(r, EINVAL, "entry 'l': hard link target '../outside/secret': the name has a '..' component");
  }
  SUBCASE("absolute") {
    auto r = unpack(s, make_tar({hardlink("l", outside + "/secret")}));
    expect_error(r, EINVAL, "the name is absolute");
  }
  SUBCASE("to a symlink") {
    auto r = unpack(s, make_tar({symlink("sl", outside + "/secret"), hardlink("l", "sl")}));
    expect_error(r, EINVAL, "entry 'l': hard link target 'sl' is not a regular file");
  }
  SUBCASE("to a directory") {
    auto r = unpack(s, make_tar({dir("d"), hardlink("l", "d")}));
    expect_error(r, EINVAL, "entry 'l': hard link target 'd' is not a regular file");
  }
  SUBCASE("to a file not (yet) in the layer") {
    auto r = unpack(s, make_tar({hardlink("l", "later"), file("later", "x")}));
    expect_error(r, EINVAL, "entry 'l': hard link target 'later' is not a file of this layer");
  }
  CHECK(!exists(s.at("l")));
  struct stat st;
  REQUIRE(::stat((outside + "/secret").c_str(), &st) == 0);
  CHECK(st.st_nlink == 1);
}

TEST_CASE("unpack: sparse files keep their holes") {
  Scratch s;
  std::string src = s.path + "/src";
  REQUIRE(::mkdir(src.c_str(), 0755) == 0);
  // 64 MiB with 4 KiB of data at 1 MiB and at 40 MiB, and a trailing hole.
  {
    sys::Fd f(::open((src + "/sparse").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    REQUIRE(f.valid());
    std::string a(4096, 'a'), b(4096, 'b');
    REQUIRE(::pwrite(f.get(), a.data(), a.size(), 1 << 20) == 4096);
    REQUIRE(::pwrite(f.get(), b.data(), b.size(), 40 << 20) == 4096);
    REQUIRE(::ftruncate(f.get(), 64 << 20) == 0);
  }
  // GNU tar writes the sparse map (what images made by tar --sparse carry).
  REQUIRE(run("tar --sparse --format=posix -C " + src + " -cf " + s.path + "/sparse.tar sparse") == 0);
  auto r = unpack(s, slurp(s.path + "/sparse.tar"));
  REQUIRE_MESSAGE(r.has_value(), r.error().what());
  struct stat st;
  REQUIRE(::stat(s.at("sparse").c_str(), &st) == 0);
  CHECK(st.st_size == (64 << 20));
  CHECK(st.st_blocks * 512 <= 1 << 20);  // far less than 64 MiB allocated
  CHECK(r->bytes <= 64 << 10);
  std::string content = slurp(s.at("sparse"));
  CHECK(content == slurp(src + "/sparse"));
  CHECK(verify(s).empty());
}

TEST_CASE("unpack: a later entry of the same name replaces the earlier one") {
  Scratch s;
  auto d2 = dir("d", 0700);
  d2.mtime = 1'600'000'000;
  auto r = unpack(s, make_tar({
                         file("f", "first"),
                         file("f", "second", 0600),
                         dir("d"),
                         file("d/keep", "kept"),
                         d2,  // a directory over a directory keeps it
                         dir("gone"),
                         file("gone/x", "x"),
                         file("gone", "now a file"),  // a file over a directory removes the tree
                         symlink("l", "a"),
                         symlink("l", "b"),
                         file("x", "x"),
                         dir("x"),
                         file("x/y", "y"),
                     }));
  REQUIRE_MESSAGE(r.has_value(), r.error().what());
  CHECK(slurp(s.at("f")) == "second");
  CHECK(slurp(s.at("d/keep")) == "kept");
  struct stat st;
  REQUIRE(::lstat(s.at("d").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  CHECK(st.st_mtim.tv_sec == 1'600'000'000);
  CHECK(slurp(s.at("gone")) == "now a file");
  CHECK(fs::read_symlink(s.at("l")) == "b");
  CHECK(slurp(s.at("x/y")) == "y");
  CHECK(verify(s).empty());
}

TEST_CASE("unpack: diff_id mismatch") {
  Scratch s;
  UnpackOptions o = rootless();
  o.expected_diff_id = Digest{std::string(64, '0')};
  std::string tar = make_tar({file("a", "a")});
  auto r = unpack(s, tar, o);
  expect_error(r, EINVAL,
               "layer content does not match diff_id sha256:" + std::string(64, '0') + " (got " +
                   sha256_of(tar).str() + ")");
  Scratch s2;
  o.expected_diff_id = sha256_of(tar);
  auto ok = unpack(s2, tar, o);
  CHECK_MESSAGE(ok.has_value(), (ok ? "" : ok.error().what()));
}

TEST_CASE("unpack: the diff_id covers the whole stream, trailing padding too") {
  Scratch s1, s2;
  std::string tar = make_tar({file("a", "a")});
  std::string padded = tar + std::string(8192, '\0');
  auto r1 = unpack(s1, tar);
  auto r2 = unpack(s2, padded);
  REQUIRE(r1.has_value());
  REQUIRE(r2.has_value());
  CHECK(r2->diff_id == sha256_of(padded));
  CHECK(r1->diff_id != r2->diff_id);
}

TEST_CASE("unpack: limits") {
  Scratch s;
  UnpackOptions o = rootless();
  SUBCASE("max_layer_bytes, counted decompressed, stopping at the limit") {
    o.limits.max_layer_bytes = 1 << 20;
    auto r = unpack(s, make_tar({file("small", "x"), file("big", std::string(8 << 20, 'z'))}, Filter::gzip), o);
    expect_error(r, EFBIG, "the layer unpacks to more than 1048576 bytes (raise the limit with --max-layer-bytes)");
    CHECK(r.error().message.find("entry 'big'") != std::string::npos);
    struct stat st;
    if (::stat(s.at("big").c_str(), &st) == 0) CHECK(st.st_size <= (1 << 20));
  }
  SUBCASE("max_entries") {
    o.limits.max_entries = 3;
    auto r = unpack(s, make_tar({file("a", ""), file("b", ""), file("c", ""), file("d", ""), file("e", "")}), o);
    expect_error(r, EFBIG, "entry 'd': the layer has more than 3 entries (raise the limit with --max-entries)");
    CHECK(!exists(s.at("d")));
  }
  SUBCASE("max_depth") {
    o.limits.max_depth = 3;
    auto ok = unpack(s, make_tar({file("a/b/c", "")}), o);
    CHECK(ok.has_value());
    Scratch s2;
    auto r = unpack(s2, make_tar({file("a/b/c/d", "")}), o);
    expect_error(r, EINVAL, "entry 'a/b/c/d': the name is 4 components deep, more than the limit of 3 (raise it with --max-depth)");
  }
}

TEST_CASE("unpack: broken streams") {
  Scratch s;
  std::string big = random_bytes(4 << 20, 7);
  SUBCASE("truncated gzip") {
    std::string gz = make_tar({file("first", "1"), file("big", big)}, Filter::gzip);
    auto r = unpack(s, gz.substr(0, gz.size() / 2));
    expect_error(r, EINVAL, "entry 'big': decompressing the layer: truncated gzip input");
  }
  SUBCASE("corrupt zstd") {
    std::string text;
    for (long i = 0; text.size() < (4u << 20); ++i) text += "line " + std::to_string(i * 7919 % 100003) + "\n";
    spit(s.path + "/layer.tar", make_tar({file("first", "1"), file("big", text)}));
    REQUIRE(run("zstd -q -c < " + s.path + "/layer.tar > " + s.path + "/layer.zst") == 0);
    std::string zst = slurp(s.path + "/layer.zst");
    for (std::size_t i = zst.size() / 2; i < zst.size() / 2 + 64; ++i) zst[i] = static_cast<char>(zst[i] ^ 0x5a);
    auto r = unpack(s, zst);
    REQUIRE(!r.has_value());
    CHECK_MESSAGE(r.error().message.find("decompressing the layer: Zstd decompression failed") != std::string::npos,
                  r.error().what());
  }
  SUBCASE("truncated tar") {
    std::string tar = make_tar({file("first", "1"), file("big", big)});
    auto r = unpack(s, tar.substr(0, 3 << 20));
    expect_error(r, EINVAL, "entry 'big': Truncated tar archive");
  }
  SUBCASE("not a tar") {
    auto r = unpack(s, random_bytes(10000, 3));
    REQUIRE(!r.has_value());
  }
}

TEST_CASE("unpack: rootless owners go to user.rootlesscontainers, as umoci writes them") {
  // umoci: proto.Marshal(Resource{Uid: 1234, Gid: 5678}), 0 written as NoopID (2^32-1).
  CHECK(rootless_xattr_value(1234, 5678) == std::string("\x08\xd2\x09\x10\xae\x2c", 6));
  CHECK(rootless_xattr_value(0, 5) == std::string("\x08\xff\xff\xff\xff\x0f\x10\x05", 8));
  CHECK(rootless_xattr_value(7, 0) == std::string("\x08\x07\x10\xff\xff\xff\xff\x0f", 8));
  CHECK(!rootless_xattr_value(0, 0).has_value());

  Scratch s;
  auto f = file("owned", "x");
  f.uid = 1234, f.gid = 5678;
  auto d = dir("dir");
  d.uid = 1234, d.gid = 5678;
  auto rootf = file("rootfile", "x");
  rootf.uid = 0, rootf.gid = 0;
  auto l = symlink("link", "owned");
  l.uid = 1234, l.gid = 5678;
  auto r = unpack(s, make_tar({f, d, rootf, l}));
  REQUIRE_MESSAGE(r.has_value(), r.error().what());
  CHECK(xattr_of(s.at("owned"), kRootlessXattr) == std::string("\x08\xd2\x09\x10\xae\x2c", 6));
  CHECK(xattr_of(s.at("dir"), kRootlessXattr) == std::string("\x08\xd2\x09\x10\xae\x2c", 6));
  CHECK(xattr_of(s.at("rootfile"), kRootlessXattr) == "<none>");
  CHECK(xattr_of(s.at("link"), kRootlessXattr) == "<none>");
  struct stat st;
  REQUIRE(::lstat(s.at("owned").c_str(), &st) == 0);
  CHECK(st.st_uid == ::geteuid());  // never chowned
  CHECK(verify(s).empty());
}

TEST_CASE("unpack: exact owners need no privilege when they are our own") {
  Scratch s;
  UnpackOptions o;  // Ownership::exact; the entries name the current uid and gid
  auto r = unpack(s, make_tar({dir("d", 0700), file("d/f", "x", 02750), symlink("d/l", "f")}), o);
  REQUIRE_MESSAGE(r.has_value(), r.error().what());
  struct stat st;
  REQUIRE(::lstat(s.at("d/f").c_str(), &st) == 0);
  CHECK(st.st_uid == ::geteuid());
  CHECK((st.st_mode & 07777) == 02750);
  CHECK(xattr_of(s.at("d/f"), kRootlessXattr) == "<none>");
  CHECK(verify(s).empty());
}

TEST_CASE("unpack: xattrs from the image; overlay ones are refused with a warning") {
  Scratch s;
  std::vector<std::string> warnings;
  UnpackOptions o = rootless();
  o.warn = [&](const std::string& w) { warnings.push_back(w); };
  auto d = dir("d");
  d.xattrs = {{"user.overlay.opaque", "y"}, {"trusted.overlay.opaque", "y"}, {"user.note", "kept"}};
  auto f = file("f", "x");
  f.xattrs = {{"user.mime_type", "text/plain"}};
  auto r = unpack(s, make_tar({d, f}), o);
  REQUIRE_MESSAGE(r.has_value(), r.error().what());
  CHECK(xattr_of(s.at("d"), "user.note") == "kept");
  CHECK(xattr_of(s.at("d"), "user.overlay.opaque") == "<none>");
  CHECK(xattr_of(s.at("f"), "user.mime_type") == "text/plain");
  int overlay_warnings = 0;
  for (auto& w : warnings)
    if (w.find("entry 'd': ignoring xattr '") != std::string::npos && w.find("overlay.opaque") != std::string::npos)
      ++overlay_warnings;
  CHECK(overlay_warnings >= 2);  // libarchive's pax writer stores xattrs twice
  CHECK(warnings.size() == static_cast<std::size_t>(overlay_warnings));
}

TEST_CASE("unpack: the '.' entry applies to the root; other AUFS metadata is ignored") {
  Scratch s;
  auto r = unpack(s, make_tar({dir(".", 0711), file(".wh..wh.plnk", ""), dir(".wh..wh.orph/"), file("a", "a")}));
  REQUIRE_MESSAGE(r.has_value(), r.error().what());
  struct stat st;
  REQUIRE(::stat(s.root().c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0711);
  CHECK(!exists(s.at(".wh..wh.plnk")));
  CHECK(!exists(s.at(".wh..wh.orph")));
  CHECK(!exists(s.at("plnk")));
  CHECK(verify(s).empty());
  Scratch s2;
  auto bad = unpack(s2, make_tar({file(".", "")}));
  expect_error(bad, EINVAL, "entry '.': the root of the layer is not a directory");
}

TEST_CASE("unpack: names that are not UTF-8 survive in the file list") {
  Scratch s;
  std::string name = "caf\xe9";
  auto r = unpack(s, make_tar({file(name, "latin1"), symlink("l", name)}, Filter::none, Format::gnu));
  REQUIRE_MESSAGE(r.has_value(), r.error().what());
  CHECK(slurp(s.at(name)) == "latin1");
  CHECK(verify(s).empty());
}

}  // namespace
}  // namespace pod::cas::test
