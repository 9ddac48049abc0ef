// The probes' cache format: a round trip, and damaged files refused with the field named.
#include <doctest/doctest.h>

#include "pod/overlay/probe.hpp"

using namespace pod::overlay;

TEST_CASE("probes JSON: round trip") {
  Probes p;
  p.boot_id = "1234-abcd";
  p.userns = {true, "unshare works"};
  p.idmapped_store = {false, "not privileged over the filesystem of the store"};
  p.lowerdir_plus = {true, "fds"};
  p.metacopy_lowers = {true, "reads through"};
  auto q = parse_probes_json(probes_json(p));
  REQUIRE(q.has_value());
  CHECK(q->boot_id == "1234-abcd");
  CHECK(q->userns.ok);
  CHECK(q->userns.detail == "unshare works");
  CHECK_FALSE(q->idmapped_store.ok);
  CHECK(q->idmapped_store.detail == "not privileged over the filesystem of the store");
  CHECK_FALSE(q->overlay_in_userns.ok);
  CHECK(q->lowerdir_plus.ok);
  CHECK(q->metacopy_lowers.detail == "reads through");
  auto names = probe_list(*q);
  REQUIRE(names.size() == 6);
  CHECK(names[0].first == "userns");
  CHECK(names[3].first == "overlay_over_idmapped");
  CHECK(names[5].first == "metacopy_lowers");
}

TEST_CASE("probes JSON: damaged input is refused, naming what is wrong") {
  CHECK(parse_probes_json("").error().message == "probes: not a JSON object");
  CHECK(parse_probes_json("{\"boot_id\": 3}").error().message == "probes: \"boot_id\" is not a string");
  CHECK(parse_probes_json("{\"boot_id\": \"x\", \"probes\": []}").error().message ==
        "probes: \"probes\" is not an object");
  Probes p;
  std::string text = probes_json(p);
  auto pos = text.find("\"ok\": false");
  REQUIRE(pos != std::string::npos);
  text.replace(pos, 11, "\"ok\": \"no\"");
  auto r = parse_probes_json(text);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().message.find(".ok\" is not a boolean") != std::string::npos);
  CHECK(parse_probes_json("{\"boot_id\": \"x\", \"probes\": {}}").error().message ==
        "probes: \"userns\" is missing");
  CHECK(parse_probes_json(text.substr(0, text.size() / 2)).error().code == EINVAL);
}
