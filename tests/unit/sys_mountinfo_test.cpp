// sys::parse_mountinfo on lines as the kernel writes them (mountinfo(5)).
#include "pod/sys/mountinfo.hpp"

#include "sys_support.hpp"

using namespace pod::sys;

TEST_CASE("mountinfo: fields, optional fields, escapes, and lines that do not parse") {
  const char* text =
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
      "35 22 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 master:3 - cgroup cgroup rw,memory\n"
      "41 22 0:44 /dir /mnt/with\\040space\\134back rw - tmpfs none rw,size=4k\n"
      "garbage line\n"
      "50 22 0:45 / /short rw - overlay\n"
      "x 22 0:46 / /bad-id rw - tmpfs none rw\n"
      "60 41 0:47 / /last rw - proc proc rw";
  auto m = parse_mountinfo(text);
  REQUIRE(m.size() == 4);
  CHECK(m[0].id == 22);
  CHECK(m[0].parent == 1);
  CHECK(m[0].mount_point == "/");
  CHECK(m[0].fstype == "ext4");
  CHECK(m[0].source == "/dev/sda1");
  CHECK(m[1].mount_point == "/sys/fs/cgroup/memory");
  CHECK(m[1].fstype == "cgroup");
  CHECK(m[1].super_options == "rw,memory");
  CHECK(m[2].root == "/dir");
  CHECK(m[2].mount_point == "/mnt/with space\\back");
  CHECK(m[2].super_options == "rw,size=4k");
  CHECK(m[3].id == 60);  // no newline at the end
  CHECK(m[3].fstype == "proc");
}

TEST_CASE("mountinfo: this process's own, with / in it") {
  auto m = read_mountinfo();
  REQUIRE(m);
  bool root = false;
  for (const auto& e : *m) root = root || e.mount_point == "/";
  CHECK(root);
}
