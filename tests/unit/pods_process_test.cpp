// A pod's processes from outside: pidfds checked against pid reuse, and stop_pod on
// real processes (one that ends on SIGTERM, one that must be killed).
#include <doctest/doctest.h>
#include <time.h>

#include "pods_support.hpp"

namespace pod::runtime::test {

namespace {

const std::string kUuid = "0f8fad5b-d9cb-469f-a165-70867728950e";

double now_s() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// A started pod whose init is `init` (a LockHolder in `dir`).
PodInfo running_pod(pid_t init) {
  PodInfo p;
  p.record = sample_record(kUuid, "web");
  p.record.pid = init;
  auto st = process_start_time(init);
  REQUIRE_MESSAGE(st, st.error().what());
  p.record.start_time = *st;
  p.state = PodState::running;
  p.locked = true;
  return p;
}

}  // namespace

TEST_CASE("open_pid checks the start time against pid reuse") {
  auto st = process_start_time(::getpid());
  REQUIRE_MESSAGE(st, st.error().what());
  CHECK(*st > 0);
  auto fd = open_pid(::getpid(), *st);
  REQUIRE_MESSAGE(fd, fd.error().what());
  CHECK(fd->valid());

  auto other = open_pid(::getpid(), *st + 1);
  REQUIRE(!other);
  CHECK(other.error().code == ESRCH);

  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) _exit(0);
  REQUIRE(::waitpid(child, nullptr, 0) == child);
  auto gone = open_pid(child, *st);
  REQUIRE(!gone);
  CHECK(gone.error().code == ESRCH);
}

TEST_CASE("stop_pod ends an init that obeys SIGTERM") {
  TempDir store;
  std::string dir = make_pod_dir(store, sample_record(kUuid, "web"));
  LockHolder init(dir);
  PodInfo p = running_pod(init.pid);
  double t0 = now_s();
  auto r = stop_pod(p, 10);
  REQUIRE_MESSAGE(r, r.error().what());
  CHECK(now_s() - t0 < 5);
  int st = init.reap();
  CHECK(WIFSIGNALED(st));
  CHECK(WTERMSIG(st) == SIGTERM);
  // Stopping a pod that has ended is not an error.
  CHECK(stop_pod(p, 1));
}

TEST_CASE("stop_pod kills an init that ignores SIGTERM after the timeout") {
  TempDir store;
  std::string dir = make_pod_dir(store, sample_record(kUuid, "web"));
  LockHolder init(dir, /*ignore_term=*/true);
  PodInfo p = running_pod(init.pid);
  double t0 = now_s();
  auto r = stop_pod(p, 0.5);
  REQUIRE_MESSAGE(r, r.error().what());
  double took = now_s() - t0;
  CHECK(took >= 0.5);
  CHECK(took < 10);
  int st = init.reap();
  CHECK(WIFSIGNALED(st));
  CHECK(WTERMSIG(st) == SIGKILL);
  // Its lock is free now: the pod reads as exited.
  PodRecord rec = sample_record(kUuid, "web");
  rec.pid = p.record.pid;
  sys::test::put_file(dir + "/pod.json", record_to_json(rec));
  auto found = find_pod(open_store(store), "web");
  REQUIRE(found);
  CHECK(found->state == PodState::exited);
}

TEST_CASE("stop_pod refuses a pod that never started") {
  PodInfo p;
  p.record = sample_record(kUuid, "web");
  auto r = stop_pod(p, 1);
  REQUIRE(!r);
  CHECK(r.error().message.find("has not started") != std::string::npos);
}

TEST_CASE("open_app: by start time, or by being a child of the live init") {
  PodRecord pod = sample_record(kUuid, "web");
  pod.pid = ::getpid();
  pod.start_time = *process_start_time(::getpid());
  TempDir store;
  std::string dir = make_pod_dir(store, pod);
  LockHolder app(dir);  // a child of this process, which plays the init

  AppRecord a = pod.apps[0];
  a.pid = app.pid;
  a.start_time = 0;
  auto fd = open_app(pod, a);
  REQUIRE_MESSAGE(fd, fd.error().what());

  a.start_time = *process_start_time(app.pid);
  CHECK(open_app(pod, a));
  a.start_time += 1;
  CHECK_FALSE(open_app(pod, a));

  // Not a child of the init: refused.
  a.start_time = 0;
  a.pid = ::getppid();
  auto other = open_app(pod, a);
  REQUIRE(!other);
  CHECK(other.error().code == ESRCH);
  // The init gone (wrong start time): refused.
  a.pid = app.pid;
  pod.start_time += 1;
  CHECK_FALSE(open_app(pod, a));
}

}  // namespace pod::runtime::test
