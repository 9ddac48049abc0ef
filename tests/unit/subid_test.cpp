#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "pod/idmap/subid.hpp"
#include "pod/idmap/userns.hpp"

using namespace pod::idmap;

TEST_CASE("subid files parse as shadow does, bad lines skipped with file and line") {
  std::vector<std::string> warnings;
  auto warn = [&](const std::string& w) { warnings.push_back(w); };
  auto e = parse_subid(
      "# comment\n"
      "alice:100000:65536\n"
      "\n"
      "1001:200000:65536\n"
      "alice:300000:10\n"
      "bob:-5:10\n"
      "bob:0x100:10\n"
      "bob:5\n"
      "bob:10:0\n"
      "bob:4294967290:10\n"
      "bob:99999999999:1\n"
      "carol:1:2:3\n",
      "/etc/subuid", warn);
  REQUIRE(e.size() == 3);
  CHECK(e[0].owner == "alice");
  CHECK(e[0].range.start == 100000);
  CHECK(e[0].range.count == 65536);
  CHECK(e[1].line == 4);
  REQUIRE(warnings.size() == 7);
  CHECK(warnings[0] == "/etc/subuid:6: start is not a decimal number below 2^32; line ignored");
  CHECK(warnings[1] == "/etc/subuid:7: start is not a decimal number below 2^32; line ignored");
  CHECK(warnings[2] == "/etc/subuid:8: not OWNER:START:COUNT; line ignored");
  CHECK(warnings[3] == "/etc/subuid:9: count is 0; line ignored");
  CHECK(warnings[4] == "/etc/subuid:10: range ends past 2^32; line ignored");
  CHECK(warnings[6] == "/etc/subuid:12: not OWNER:START:COUNT; line ignored");

  auto alice = ranges_for(e, "alice", 1000);
  REQUIRE(alice.size() == 2);
  CHECK(alice[1].start == 300000);
  auto by_uid = ranges_for(e, "dave", 1001);
  REQUIRE(by_uid.size() == 1);
  CHECK(by_uid[0].start == 200000);
}

TEST_CASE("id maps in proc and CLI syntax") {
  IdMap m{{{0, 1000, 1}, {1, 100000, 65536}}};
  CHECK(m.proc_text() == "0 1000 1\n1 100000 65536\n");
  CHECK(m.str() == "0:1000:1,1:100000:65536");
  CHECK(m.size() == 65537);
}
