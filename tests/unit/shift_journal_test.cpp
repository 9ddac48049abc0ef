// The shift journal: its text, how a run starts from it, and the intent log.
#include <doctest/doctest.h>

#include "pod/shift/journal.hpp"

using namespace pod::shift;

TEST_CASE("the journal round-trips and rejects what it does not know") {
  Journal j{"0:100000:65536", "0:200000:65536", Unmapped::overflow, Journal::State::running, 12, 7};
  auto back = journal_from_text(journal_to_text(j));
  REQUIRE(back);
  CHECK(back->from == j.from);
  CHECK(back->to == j.to);
  CHECK(back->unmapped == Unmapped::overflow);
  CHECK(back->state == Journal::State::running);
  CHECK(back->inodes == 12);
  CHECK_FALSE(journal_from_text("{"));
  CHECK_FALSE(journal_from_text(R"({"version": 2, "from": "", "to": "", "unmapped": "error", "state": "done"})"));
  CHECK_FALSE(journal_from_text(R"({"version": 1, "from": "", "to": "", "unmapped": "wrap", "state": "done"})"));
}

TEST_CASE("how a run starts from the journal found") {
  CHECK(plan_start(std::nullopt, "A", "B") == Start::fresh);
  Journal running{"A", "B", Unmapped::error, Journal::State::running, 0, 0};
  CHECK(plan_start(running, "A", "B") == Start::resume);
  Journal done = running;
  done.state = Journal::State::done;
  CHECK(plan_start(done, "A", "B") == Start::redo);
  // Another shift still pending: finish it first.
  auto other = plan_start(running, "A", "C");
  REQUIRE_FALSE(other);
  CHECK(other.error().message == "an interrupted remap from A to B is pending: run it again with those maps first");
  // A finished shift to B, then a new one from B: fresh. From elsewhere: refused.
  CHECK(plan_start(done, "B", "C") == Start::fresh);
  CHECK_FALSE(plan_start(done, "X", "C"));
}

TEST_CASE("the intent log: latest line wins, a torn last line is ignored") {
  std::string text = intent_line({5, 10}, Intent{04755, ""}) + intent_line({5, 11}, Intent{0755, std::string("\x01\x00\xff", 3)}) +
                     intent_line({5, 10}, Intent{02755, ""}) + "5 12 4755 -";  // torn
  auto m = parse_intents(text);
  REQUIRE(m.size() == 2);
  CHECK(m.at({5, 10}).mode == 02755);
  CHECK(m.at({5, 11}).capability == std::string("\x01\x00\xff", 3));
  CHECK(m.count({5, 12}) == 0);
  CHECK(parse_intents("x y z -\n5 13 zz -\n5 14 755 abc\n").empty());
}
