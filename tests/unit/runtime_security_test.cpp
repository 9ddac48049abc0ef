// Capability names, the default set, and seccomp programs from profiles.
#include <doctest/doctest.h>
#include <linux/capability.h>

#include <algorithm>

#include "pod/runtime/spec.hpp"
#include "security.hpp"

using namespace pod::runtime;

TEST_CASE("capability names parse in every spelling and print canonically") {
  for (const char* s : {"CAP_NET_ADMIN", "net_admin", "NET_ADMIN", "cap_net_admin"}) {
    auto c = parse_cap(s);
    REQUIRE(c);
    CHECK(*c == CAP_NET_ADMIN);
  }
  CHECK(cap_name(CAP_SYS_ADMIN) == "CAP_SYS_ADMIN");
  auto bad = parse_cap("net_admn");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == EINVAL);
  CHECK(bad.error().message.find("unknown capability 'net_admn'") != std::string::npos);
  CHECK_FALSE(parse_cap("12"));  // numbers are not names
}

TEST_CASE("the default capability set is rkt's") {
  auto caps = default_caps();
  CHECK(caps.size() == 14);
  for (int c : {CAP_CHOWN, CAP_NET_BIND_SERVICE, CAP_SETUID, CAP_SYS_CHROOT, CAP_AUDIT_WRITE})
    CHECK(std::find(caps.begin(), caps.end(), c) != caps.end());
  for (int c : {CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_PTRACE, CAP_SYS_MODULE})
    CHECK(std::find(caps.begin(), caps.end(), c) == caps.end());
}

TEST_CASE("seccomp: unconfined has no program, the default profile has one") {
  Security s;
  s.seccomp = Security::Seccomp::unconfined;
  auto none = detail::seccomp_program(s);
  REQUIRE(none);
  CHECK(none->empty());
  s.seccomp = Security::Seccomp::default_profile;
  auto def = detail::seccomp_program(s);
  REQUIRE(def);
  CHECK(def->size() > 60);  // one check per denied call at least
}

TEST_CASE("seccomp: OCI profiles are read, and what is not supported is refused clearly") {
  auto ok = detail::seccomp_from_oci(R"({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                   {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]})");
  REQUIRE(ok);
  CHECK_FALSE(ok->empty());
  auto args = detail::seccomp_from_oci(R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
      {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]})");
  REQUIRE_FALSE(args);
  CHECK(args.error().message == "syscalls[0]: rules with args are not supported");
  auto name = detail::seccomp_from_oci(R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["frobnicate"], "action": "SCMP_ACT_ALLOW"}]})");
  REQUIRE_FALSE(name);
  CHECK(name.error().message == "syscalls[0]: unknown system call 'frobnicate'");
  auto act = detail::seccomp_from_oci(R"({"defaultAction": "SCMP_ACT_NOTIFY"})");
  REQUIRE_FALSE(act);
  CHECK(act.error().message.find("action 'SCMP_ACT_NOTIFY' is not supported") != std::string::npos);
  CHECK_FALSE(detail::seccomp_from_oci("[1, 2]"));
  CHECK_FALSE(detail::seccomp_from_oci(R"({"syscalls": []})"));
}

TEST_CASE("security preparation checks its numbers") {
  Security s;
  s.caps = {CAP_CHOWN, CAP_KILL};
  s.oom_score_adj = 500;
  auto p = detail::prepare_security(s);
  REQUIRE(p);
  CHECK(p->caps == ((1ull << CAP_CHOWN) | (1ull << CAP_KILL)));
  CHECK(std::string(p->oom_text, p->oom_len) == "500\n");
  s.oom_score_adj = 2000;
  CHECK_FALSE(detail::prepare_security(s));
  s.oom_score_adj.reset();
  s.caps = {63};
  CHECK_FALSE(detail::prepare_security(s));
}
