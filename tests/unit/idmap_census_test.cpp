#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "pod/idmap/census.hpp"
#include "pod/sys/fs.hpp"

using namespace pod::idmap;
using pod::sys::Fd;

TEST_CASE("census walks by fds, does not follow symlinks, names a path per id") {
  Fd tmp = *pod::sys::open_dir(pod::sys::FdRef::cwd(), "/tmp");
  auto name = pod::sys::make_temp_dir(tmp, "pod-census-unit-");
  REQUIRE(name);
  Fd top = *pod::sys::open_dir(tmp, *name);
  REQUIRE(mkdirat(top.get(), "a", 0755) == 0);
  REQUIRE(mkdirat(top.get(), "a/b", 0755) == 0);
  Fd f(openat(top.get(), "a/b/f", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  REQUIRE(f.valid());
  // A link to / : followed, the census would see the whole host.
  REQUIRE(symlinkat("/", top.get(), "a/root") == 0);
  REQUIRE(symlinkat("/etc", top.get(), "etc") == 0);

  auto c = census(tmp, *name);
  REQUIRE(c);
  CHECK(c->inodes == 6);  // ., a, a/b, a/b/f, a/root, etc
  REQUIRE(c->uids.size() == 1);
  CHECK(c->uids.begin()->first == geteuid());
  CHECK(c->uids.begin()->second == ".");
  CHECK(c->uid_set().str() == std::to_string(geteuid()));

  auto none = find_owned_by(tmp, *name, RangeSet{{geteuid() + 1u, 10}}, RangeSet{{getegid() + 1u, 10}});
  REQUIRE(none);
  CHECK_FALSE(*none);
  auto hit = find_owned_by(tmp, *name, RangeSet{}, RangeSet{{getegid(), 1}});
  REQUIRE(hit);
  CHECK(*hit == ".");
  // A symlink as the top is refused, not followed.
  CHECK(census(top, "etc").error().code == ENOTDIR);
  CHECK(census(top, "missing").error().message == "census of 'missing': open 'missing'");
  REQUIRE(pod::sys::remove_tree(tmp, *name));
}
