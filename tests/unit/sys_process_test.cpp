// sys/ processes and errors: FileLock across processes, Child, Error.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <string>
#include <thread>

#include "pod/sys/child.hpp"
#include "pod/sys/lock.hpp"
#include "sys_support.hpp"

using namespace pod::sys;
using namespace pod::sys::test;

namespace {

// A process holding a lock on dir/name until told to let go.
struct LockHolder {
  pid_t pid = -1;
  int go_fd = -1;

  LockHolder(const std::string& dir, const char* name, FileLock::Mode mode) {
    int ready[2], go[2];
    REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(ready[0]);
      ::close(go[1]);
      Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      auto lock = FileLock::acquire(d, name, mode);
      char c = lock ? 'y' : 'n';
      (void)!::write(ready[1], &c, 1);
      (void)!::read(go[0], &c, 1);  // until the parent closes its end
      ::_exit(lock ? 0 : 1);
    }
    ::close(ready[1]);
    ::close(go[0]);
    go_fd = go[1];
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    ::close(ready[0]);
    REQUIRE(c == 'y');
  }
  ~LockHolder() { release(); }
  void release() {
    if (pid < 0) return;
    ::close(go_fd);
    int st = 0;
    ::waitpid(pid, &st, 0);
    pid = -1;
  }
};

}  // namespace

TEST_CASE("FileLock: shared locks coexist; exclusive without waiting fails while one is held") {
  TempDir d;
  Fd dir = open_path(d.path);

  // In this process, two shared locks through two opens.
  auto s1 = FileLock::acquire(dir, "lock", FileLock::Mode::shared, false);
  REQUIRE_MESSAGE(s1, s1.error().what());
  auto s2 = FileLock::acquire(dir, "lock", FileLock::Mode::shared, false);
  REQUIRE_MESSAGE(s2, s2.error().what());
  CHECK(s2->mode() == FileLock::Mode::shared);
  {
    // Exclusive is refused while this process's own shared locks exist.
    auto ex = FileLock::acquire(dir, "lock", FileLock::Mode::exclusive, false);
    REQUIRE(!ex);
    CHECK(ex.error().code == EWOULDBLOCK);
  }
  s1 = Unexpected(Error{});
  s2 = Unexpected(Error{});

  {
    LockHolder other(d.path, "lock", FileLock::Mode::shared);
    // Another shared lock beside the other process's one.
    auto shared = FileLock::acquire(dir, "lock", FileLock::Mode::shared, false);
    REQUIRE_MESSAGE(shared, shared.error().what());
    shared = Unexpected(Error{});
    auto ex = FileLock::acquire(dir, "lock", FileLock::Mode::exclusive, false);
    REQUIRE(!ex);
    CHECK(ex.error().code == EWOULDBLOCK);
    CHECK(ex.error().message.find("locking 'lock'") != std::string::npos);
    other.release();
    // Gone with the process: now exclusive is granted at once.
    auto ex2 = FileLock::acquire(dir, "lock", FileLock::Mode::exclusive, false);
    REQUIRE_MESSAGE(ex2, ex2.error().what());
    CHECK(ex2->mode() == FileLock::Mode::exclusive);
  }

  {
    // An exclusive lock in another process keeps out a shared one.
    LockHolder other(d.path, "lock", FileLock::Mode::exclusive);
    auto sh = FileLock::acquire(dir, "lock", FileLock::Mode::shared, false);
    REQUIRE(!sh);
    CHECK(sh.error().code == EWOULDBLOCK);
  }

  // change(): shared to exclusive and back.
  auto lk = FileLock::acquire(dir, "lock", FileLock::Mode::shared);
  REQUIRE(lk);
  REQUIRE(lk->change(FileLock::Mode::exclusive, false));
  CHECK(lk->mode() == FileLock::Mode::exclusive);
  REQUIRE(lk->change(FileLock::Mode::shared, false));
  CHECK(lk->mode() == FileLock::Mode::shared);
}

TEST_CASE("FileLock does not follow a symlink") {
  TempDir d;
  put_file(d / "target", "");
  put_link(d / "target", d / "lock");
  Fd dir = open_path(d.path);
  auto r = FileLock::acquire(dir, "lock", FileLock::Mode::shared);
  REQUIRE(!r);
  CHECK(r.error().code == ELOOP);
}

TEST_CASE("Child: exit codes and signals") {
  auto ok = Child::spawn({"true"});
  REQUIRE_MESSAGE(ok, ok.error().what());
  auto st = ok->wait();
  REQUIRE(st);
  CHECK(st->success());
  CHECK(st->describe() == "exit status 0");

  auto three = Child::spawn({"sh", "-c", "exit 3"});
  REQUIRE(three);
  st = three->wait();
  REQUIRE(st);
  CHECK(st->code == 3);
  CHECK(st->signal == 0);
  CHECK(!st->success());
  CHECK(st->describe() == "exit status 3");

  auto killed = Child::spawn({"sh", "-c", "kill -TERM $$; sleep 5"});
  REQUIRE(killed);
  st = killed->wait();
  REQUIRE(st);
  CHECK(st->signal == SIGTERM);
  CHECK(!st->success());
  CHECK(st->describe() == "killed by signal 15 (TERM)");

  // Waiting twice is an error, not a hang.
  auto twice = killed->wait();
  REQUIRE(!twice);
  CHECK(twice.error().code == ECHILD);

  // kill() through the pidfd.
  auto sleeper = Child::spawn({"sleep", "100"});
  REQUIRE(sleeper);
  REQUIRE(sleeper->kill(SIGKILL));
  st = sleeper->wait();
  REQUIRE(st);
  CHECK(st->signal == SIGKILL);
}

TEST_CASE("Child: environment and descriptors") {
  TempDir d;
  Fd out(::open((d / "out").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  REQUIRE(out.valid());
  SpawnOptions opts;
  opts.stdout_fd = out.get();
  opts.env = std::vector<std::string>{"GREETING=hi", "PATH=/usr/bin:/bin"};
  auto c = Child::spawn({"sh", "-c", "echo \"$GREETING\""}, opts);
  REQUIRE_MESSAGE(c, c.error().what());
  auto st = c->wait();
  REQUIRE(st);
  CHECK(st->success());
  CHECK(slurp(d / "out") == "hi\n");
}

TEST_CASE("Child: a missing program is an error at spawn") {
  auto r = Child::spawn({"/nonexistent/pod-no-such-program"});
  REQUIRE(!r);
  CHECK(r.error().code == ENOENT);
  CHECK(r.error().message.find("/nonexistent/pod-no-such-program") != std::string::npos);

  auto in_path = Child::spawn({"pod-no-such-program-in-path"});
  REQUIRE(!in_path);
  // ENOENT, or EACCES when some directory of PATH cannot be searched (execvp's rule).
  CHECK((in_path.error().code == ENOENT || in_path.error().code == EACCES));

  TempDir d;
  put_file(d / "noexec", "#!/bin/sh\n", 0644);
  auto noexec = Child::spawn({d / "noexec"});
  REQUIRE(!noexec);
  CHECK(noexec.error().code == EACCES);

  auto none = Child::spawn({});
  REQUIRE(!none);
  CHECK(none.error().code == EINVAL);

  auto run_missing = run_program({"/nonexistent/pod-no-such-program"});
  REQUIRE(!run_missing);
  CHECK(run_missing.error().code == ENOENT);
  auto run_false = run_program({"false"});
  REQUIRE(!run_false);
  CHECK(run_false.error().what() == "'false' failed: exit status 1");
  CHECK(run_program({"true"}));
}

TEST_CASE("Child: the destructor kills and reaps a running child") {
  pid_t pid = -1;
  {
    auto c = Child::spawn({"sleep", "100"});
    REQUIRE(c);
    pid = c->pid();
    REQUIRE(pid > 0);
    CHECK(::kill(pid, 0) == 0);
  }
  // Killed and reaped: no such process (not even a zombie).
  errno = 0;
  CHECK(::kill(pid, 0) == -1);
  CHECK(errno == ESRCH);

  // Moving hands over ownership; the moved-to child is the one killed.
  pid_t moved_pid = -1;
  {
    auto a = Child::spawn({"sleep", "100"});
    REQUIRE(a);
    Child b = std::move(*a);
    moved_pid = b.pid();
    CHECK(a->pid() == -1);
  }
  errno = 0;
  CHECK(::kill(moved_pid, 0) == -1);
  CHECK(errno == ESRCH);

  // Move-assigning over a running child kills the old one.
  auto first = Child::spawn({"sleep", "100"});
  auto second = Child::spawn({"sleep", "100"});
  REQUIRE(first);
  REQUIRE(second);
  pid_t old_pid = first->pid();
  *first = std::move(*second);
  errno = 0;
  CHECK(::kill(old_pid, 0) == -1);
  CHECK(errno == ESRCH);
}

TEST_CASE("Error: what() and context") {
  Error plain{0, "a plain failure"};
  CHECK(plain.what() == "a plain failure");
  Error sys{ENOENT, "open 'x'"};
  CHECK(sys.what() == "open 'x' (ENOENT)");
  Error ctx = Error{EXDEV, "entry '../etc/passwd' leaves the root"}.context("layer {}", "sha256:ab");
  CHECK(ctx.code == EXDEV);
  CHECK(ctx.what() == "layer sha256:ab: entry '../etc/passwd' leaves the root (EXDEV)");
  Error twice = Error{0, "inner"}.context("middle").context("outer {}", 1);
  CHECK(twice.what() == "outer 1: middle: inner");
  CHECK(errno_name(EINVAL) == "EINVAL");
  CHECK(errno_name(99999) == "errno 99999");

  errno = EACCES;
  auto e = sys_error("mkdir '{}'", "d");
  CHECK(e.error().code == EACCES);
  CHECK(e.error().what() == "mkdir 'd' (EACCES)");
  auto m = make_error(0, "bad {} of {}", "size", 3);
  CHECK(m.error().code == 0);
  CHECK(m.error().what() == "bad size of 3");
}

namespace {
Result<int> half(int x) {
  if (x % 2) return make_error(EINVAL, "{} is odd", x);
  return x / 2;
}
Result<int> quarter(int x) {
  int h = POD_TRY(half(x));
  return POD_TRY_CTX(half(h), "halving {}", h);
}
}  // namespace

TEST_CASE("POD_TRY and POD_TRY_CTX pass values and errors") {
  auto q = quarter(8);
  REQUIRE(q);
  CHECK(*q == 2);
  auto first = quarter(3);
  REQUIRE(!first);
  CHECK(first.error().what() == "3 is odd (EINVAL)");
  auto second = quarter(6);
  REQUIRE(!second);
  CHECK(second.error().what() == "halving 3: 3 is odd (EINVAL)");
}
