// Pods started for real: a busybox root filesystem made here, owned by the pod's root
// (host uid 1000000 for root's pods, the user for a user's pod), and apps checked from
// inside the way a user would check them: id, hostname, ps, /proc, exit codes.
// start() mounts nothing in the caller's mount namespace (the pod's mounts are made in
// the apps' own namespaces, the caller only makes detached clones), so these run in
// the test process itself, except the user test, which forks to become a user.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "pod/runtime/spawn.hpp"
#include "pod/sys/fs.hpp"

using namespace pod::runtime;
using pod::sys::Fd;
using pod::sys::FdRef;

namespace {

constexpr std::uint32_t kBase = 1000000;

void write_text(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}

struct Fixture {
  std::string base, root;
  Fd pod_dir, rootfs_dir;

  Fixture(uid_t owner, gid_t group) {
    namespace fs = std::filesystem;
    char tmpl[] = "/tmp/pod-rt-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    base = tmpl;
    REQUIRE(::chmod(base.c_str(), 0755) == 0);
    root = base + "/root";
    for (const char* d : {"", "/bin", "/etc", "/tmp"}) fs::create_directories(root + d);
    REQUIRE(::chmod((root + "/tmp").c_str(), 01777) == 0);
    fs::copy_file("/bin/busybox", root + "/bin/busybox");
    for (const char* a : {"sh", "id", "cat", "ls", "hostname", "sleep", "true", "false", "kill", "ps", "echo", "grep",
                          "tr", "wc", "stat", "touch", "unshare", "test", "readlink", "head"})
      fs::create_symlink("busybox", root + "/bin/" + a);
    write_text(root + "/etc/passwd", "root:x:0:0:root:/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n", 0644);
    write_text(root + "/etc/group", "root:x:0:\nwheel:x:10:app\napp:x:1000:\n", 0644);
    write_text(root + "/notexec", "#!/bin/sh\necho hi\n", 0644);
    REQUIRE(::lchown(root.c_str(), owner, group) == 0);
    for (auto& e : fs::recursive_directory_iterator(root)) REQUIRE(::lchown(e.path().c_str(), owner, group) == 0);
    std::string pod = base + "/pod";
    REQUIRE(::mkdir(pod.c_str(), 0700) == 0);
    REQUIRE(::mkdir((pod + "/rootfs").c_str(), 0755) == 0);
    if (owner != ::getuid()) REQUIRE(::chown(pod.c_str(), owner, group) == 0);
    pod_dir = Fd(::open(pod.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    rootfs_dir = Fd(::open((pod + "/rootfs").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    REQUIRE(pod_dir.valid());
    REQUIRE(rootfs_dir.valid());
  }
  ~Fixture() {
    Fd tmp(::open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC));
    CHECK(pod::sys::remove_tree(tmp, base.substr(5)));
  }

  [[nodiscard]] PodSpec spec(std::vector<std::string> argv) const {
    PodSpec s;
    s.uuid = "00000000-0000-4000-8000-000000000001";
    s.name = "t";
    s.hostname = "podhost";
    App app;
    app.name = "main";
    app.argv = std::move(argv);
    app.env = {"PATH=/bin", "HOME=/"};
    app.security.caps = default_caps();
    s.apps.push_back(std::move(app));
    s.uids = {{{0, kBase, 65536}}};
    s.gids = {{{0, kBase, 65536}}};
    s.pod_dir = pod_dir;
    s.rootfs_dir = rootfs_dir;
    return s;
  }
  [[nodiscard]] PrepareMounts prepare() const {
    return [this](FdRef) -> pod::sys::Result<std::vector<AppMounts>> {
      std::vector<AppMounts> v(1);
      v[0].rootfs = Fd(::open_tree(AT_FDCWD, root.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
      return v;
    };
  }
};

struct Ran {
  std::optional<pod::sys::Error> error;  // start() failed
  pod::sys::ExitStatus status;
  std::string out;  // stdout and stderr
  std::vector<pid_t> apps;
};

Ran run(PodSpec spec, const PrepareMounts& prepare) {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  Fd r(p[0]), w(p[1]);
  spec.stdout_fd = spec.stderr_fd = w.get();
  Ran ran;
  auto pod = start(spec, prepare);
  w.reset();
  if (!pod) {
    ran.error = pod.error();
    return ran;
  }
  ran.apps = pod->app_pids();
  char buf[4096];
  ssize_t n;
  while ((n = ::read(r.get(), buf, sizeof buf)) > 0) ran.out.append(buf, static_cast<std::size_t>(n));
  auto st = pod->wait();
  REQUIRE(st);
  ran.status = *st;
  return ran;
}

Ran run_sh(const Fixture& f, const std::string& script) { return run(f.spec({"sh", "-c", script}), f.prepare()); }

std::string cap_mask(const std::vector<int>& caps) {
  unsigned long long m = 0;
  for (int c : caps) m |= 1ull << c;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx", m);
  return buf;
}

}  // namespace

TEST_SUITE("needs:root") {
  TEST_CASE("a pod runs its app as root of its own user namespace, with its host name, under an init") {
    Fixture f(kBase, kBase);
    auto r = run_sh(f, "id -u; id -g; hostname; echo $$; tr '\\0' ' ' < /proc/1/cmdline; echo; "
                       "cat /proc/self/uid_map");
    REQUIRE_MESSAGE(!r.error, r.error->what());
    CHECK(r.status.success());
    std::istringstream in(r.out);
    std::string uid, gid, host, self, init_cmd, map;
    std::getline(in, uid);
    std::getline(in, gid);
    std::getline(in, host);
    std::getline(in, self);
    std::getline(in, init_cmd);
    std::getline(in, map);
    CHECK(uid == "0");
    CHECK(gid == "0");
    CHECK(host == "podhost");
    CHECK(self != "1");  // the init is PID 1, not the app
    CHECK(init_cmd.find("sh -c") == std::string::npos);
    CHECK(map.find(std::to_string(kBase)) != std::string::npos);
    REQUIRE(r.apps.size() == 1);
    CHECK(r.apps[0] > 0);
    // The init wrote how the pod ended.
    auto status = pod::sys::read_file(f.pod_dir, "status.json", 4096);
    REQUIRE(status);
    CHECK(*status == "{\"exit\": 0, \"apps\": [{\"name\": \"main\", \"exit\": 0, \"signal\": 0}]}\n");
  }

  TEST_CASE("an app runs with the uid, gid and groups it names, and the capabilities it keeps") {
    Fixture f(kBase, kBase);
    PodSpec s = f.spec({"sh", "-c", "id -u; id -g; id -G; grep CapEff /proc/self/status; grep CapBnd /proc/self/status"});
    s.apps[0].uid = 1000;
    s.apps[0].gid = 1000;
    s.apps[0].groups = {10};
    auto r = run(s, f.prepare());
    REQUIRE_MESSAGE(!r.error, r.error->what());
    std::string mask = cap_mask(default_caps());
    CHECK(r.out == "1000\n1000\n1000 10\nCapEff:\t" + mask + "\nCapBnd:\t" + mask + "\n");
    // Root gets its bounding set back at exec: the same set.
    auto root = run_sh(f, "grep CapEff /proc/self/status");
    CHECK(root.out == "CapEff:\t" + mask + "\n");
  }

  TEST_CASE("exit codes pass through; what cannot be executed is a clear error") {
    Fixture f(kBase, kBase);
    CHECK(run_sh(f, "exit 0").status.code == 0);
    auto three = run_sh(f, "exit 3");
    CHECK(three.status.code == 3);
    CHECK(pod::sys::read_file(f.pod_dir, "status.json", 4096).value_or("").starts_with("{\"exit\": 3,"));
    auto killed = run_sh(f, "kill -9 $$");
    CHECK(killed.status.code == 137);
    CHECK(exit_code_of(killed.status) == 137);
    CHECK(pod::sys::read_file(f.pod_dir, "status.json", 4096).value_or("").find("\"signal\": 9") != std::string::npos);

    auto missing = run(f.spec({"nope"}), f.prepare());
    REQUIRE(missing.error);
    CHECK(missing.error->code == ENOENT);
    CHECK(missing.error->message == "starting the pod: app 'main': executable 'nope' not found in PATH (/bin)");
    auto notexec = run(f.spec({"/notexec"}), f.prepare());
    REQUIRE(notexec.error);
    CHECK(notexec.error->code == EACCES);
    CHECK(notexec.error->message.find("'/notexec' is not executable") != std::string::npos);
  }

  TEST_CASE("/proc is masked and read-only where it shows the host; /dev is minimal") {
    Fixture f(kBase, kBase);
    // Masked files read as /dev/null, masked directories are empty read-only tmpfs; only
    // what this kernel has is masked, so the checks follow the host's /proc.
    const bool keys = pod::sys::exists_at(FdRef::cwd(), "/proc/keys");
    const bool acpi = pod::sys::exists_at(FdRef::cwd(), "/proc/acpi");
    auto r = run_sh(f, "echo x > /proc/sys/kernel/hostname && echo wrote; hostname; "
                       "test -e /proc/keys && { stat -c %F /proc/keys; wc -c < /proc/keys; }; "
                       "test -e /proc/acpi && { stat -f -c %T /proc/acpi; ls -A /proc/acpi | wc -l; "
                       "touch /proc/acpi/x 2>/dev/null && echo wrote-acpi; }; "
                       "ls /dev | tr '\\n' ' '; echo; echo hi > /dev/null && echo null-ok");
    REQUIRE_MESSAGE(!r.error, r.error->what());
    CHECK_MESSAGE(r.out.find("wrote") == std::string::npos, r.out);
    CHECK(r.out.find("Read-only file system") != std::string::npos);
    CHECK(r.out.find("podhost\n") != std::string::npos);
    if (keys) CHECK_MESSAGE(r.out.find("character special file\n0\n") != std::string::npos, r.out);
    if (acpi) CHECK_MESSAGE(r.out.find("tmpfs\n0\n") != std::string::npos, r.out);
    CHECK(r.out.find("fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero") !=
          std::string::npos);
    CHECK(r.out.find("null-ok") != std::string::npos);
  }

  TEST_CASE("the init reaps orphans, and the caller's descriptors do not reach the app") {
    Fixture f(kBase, kBase);
    int leak = ::open("/etc/hostname", O_RDONLY);  // no O_CLOEXEC on purpose
    REQUIRE(leak >= 0);
    auto r = run_sh(f, "(sleep 0 &); sleep 1; z=0; for s in /proc/[0-9]*/stat; do read p c st rest < $s; "
                       "[ \"$st\" = Z ] && z=$((z+1)); done; echo zombies=$z; ls /proc/self/fd | tr '\\n' ' '");
    ::close(leak);
    REQUIRE_MESSAGE(!r.error, r.error->what());
    CHECK(r.out == "zombies=0\n0 1 2 3 ");
  }

  TEST_CASE("seccomp denies unshare by default and allows it unconfined") {
    Fixture f(kBase, kBase);
    auto denied = run_sh(f, "unshare -U true");
    CHECK(denied.status.code != 0);
    CHECK(denied.out.find("Operation not permitted") != std::string::npos);
    PodSpec s = f.spec({"unshare", "-U", "true"});
    s.apps[0].security.seccomp = Security::Seccomp::unconfined;
    auto allowed = run(s, f.prepare());
    REQUIRE_MESSAGE(!allowed.error, allowed.error->what());
    CHECK_MESSAGE(allowed.status.code == 0, allowed.out);
  }

  TEST_CASE("the host's pod binary is out of reach: /proc/1 of the init cannot be read or written") {
    Fixture f(kBase, kBase);
    auto r = run_sh(f, "cat /proc/1/exe > /dev/null && echo read-exe; echo x > /proc/1/exe && echo wrote-exe; "
                       "ls /proc/1/root/ > /dev/null && echo saw-root; ls /proc/1/fd > /dev/null && echo saw-fds; "
                       "echo done");
    REQUIRE_MESSAGE(!r.error, r.error->what());
    CHECK(r.out.find("read-exe") == std::string::npos);
    CHECK(r.out.find("wrote-exe") == std::string::npos);
    CHECK(r.out.find("saw-root") == std::string::npos);
    CHECK(r.out.find("saw-fds") == std::string::npos);
    CHECK(r.out.find("done") != std::string::npos);
  }

  TEST_CASE("volumes are attached inside the root, read-only when asked; /etc files are the pod's") {
    Fixture f(kBase, kBase);
    std::string vol = f.base + "/vol";
    REQUIRE(::mkdir(vol.c_str(), 0755) == 0);
    write_text(vol + "/f", "from the host\n", 0644);
    PodSpec s = f.spec({"sh", "-c", "cat /data/f; touch /data/x 2>/dev/null && echo wrote; cat /etc/hosts /etc/hostname"});
    s.etc_hosts = "127.0.0.1 localhost podhost\n";
    auto prepare = [&](FdRef) -> pod::sys::Result<std::vector<AppMounts>> {
      std::vector<AppMounts> v(1);
      v[0].rootfs = Fd(::open_tree(AT_FDCWD, f.root.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
      Volume volume;
      volume.source = Fd(::open_tree(AT_FDCWD, vol.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
      volume.target = "/data";
      volume.read_only = true;
      v[0].volumes.push_back(std::move(volume));
      return v;
    };
    auto r = run(s, prepare);
    REQUIRE_MESSAGE(!r.error, r.error->what());
    CHECK(r.out == "from the host\n127.0.0.1 localhost podhost\npodhost\n");
    CHECK_FALSE(pod::sys::exists_at(FdRef::cwd(), vol + "/x"));
    // The mount point was made inside the root, owned by the pod's root.
    struct stat st {};
    REQUIRE(::stat((f.root + "/data").c_str(), &st) == 0);
    CHECK(st.st_uid == kBase);
  }

  TEST_CASE("enter joins a running pod's namespaces and runs as its app") {
    Fixture f(kBase, kBase);
    PodSpec s = f.spec({"sleep", "30"});
    auto pod = start(s, f.prepare());
    REQUIRE_MESSAGE(pod, pod.error().what());
    REQUIRE(pod->app_pids().size() == 1);
    Fd app_fd(static_cast<int>(::syscall(SYS_pidfd_open, pod->app_pids()[0], 0)));
    REQUIRE(app_fd.valid());
    App probe = s.apps[0];
    probe.argv = {"sh", "-c", "test \"$(hostname)\" = podhost && test $(id -u) = 0 && test -x /bin/busybox && "
                              "! test -e /tmp/pod-rt-never && ps | grep -q 'sleep 30'"};
    auto st = enter(app_fd, probe, false);
    REQUIRE_MESSAGE(st, st.error().what());
    CHECK(st->code == 0);
    probe.argv = {"sh", "-c", "exit 7"};
    CHECK(enter(app_fd, probe, false).value_or(pod::sys::ExitStatus{}).code == 7);
    probe.argv = {"nope"};
    auto missing = enter(app_fd, probe, false);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message == "entering the pod: app 'main': executable 'nope' not found in PATH (/bin)");
    // The init forwards SIGTERM to the app.
    REQUIRE(pod->signal(SIGTERM));
    auto end = pod->wait();
    REQUIRE(end);
    CHECK(end->code == 128 + SIGTERM);
  }
}

TEST_SUITE("needs:userns") {
  TEST_CASE("an ordinary user's pod runs in the user's own namespace (new_userns=false)") {
    Fixture f(65534, 65534);
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::alarm(60);
      if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
          ::setresuid(65534, 65534, 65534) != 0)
        ::_exit(10);
      ::prctl(PR_SET_DUMPABLE, 1);
      if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) ::_exit(11);
      auto w = [](const char* file, const char* text) {
        return pod::sys::write_all(Fd(::open(file, O_WRONLY | O_CLOEXEC)), text).has_value();
      };
      if (!w("/proc/self/uid_map", "0 65534 1\n") || !w("/proc/self/setgroups", "deny") ||
          !w("/proc/self/gid_map", "0 65534 1\n"))
        ::_exit(12);
      if (::mount("", "/", nullptr, MS_SLAVE | MS_REC, nullptr) != 0) ::_exit(13);
      PodSpec s = f.spec({"sh", "-c", "id -u; hostname; test -c /dev/null && echo dev-ok; cat /proc/self/uid_map"});
      s.new_userns = false;
      s.uids = s.gids = {};
      auto r = run(s, f.prepare());
      if (r.error) {
        std::fprintf(stderr, "start: %s\n", r.error->what().c_str());
        ::_exit(14);
      }
      if (r.out.rfind("0\npodhost\ndev-ok\n", 0) != 0 || r.out.find("65534") == std::string::npos) {
        std::fprintf(stderr, "output: %s\n", r.out.c_str());
        ::_exit(15);
      }
      ::_exit(r.status.code == 0 ? 0 : 16);
    }
    int st = 0;
    REQUIRE(::waitpid(pid, &st, 0) == pid);
    CHECK(WIFEXITED(st));
    CHECK(WEXITSTATUS(st) == 0);
  }
}
