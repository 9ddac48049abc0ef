// unpack_layer in a user namespace (how the rootless store unpacks): whiteouts can be
// made there (Linux 5.8+), real device nodes cannot and are skipped with a warning.
#include <sched.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include "../unit/unpack_support.hpp"

namespace pod::cas::test {
namespace {

bool write_proc(const char* path, const std::string& text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

// Runs in the child, inside the new user namespace: "ok" or what went wrong.
std::string unpack_in_userns(const Scratch& s, int blob) {
  UnpackOptions o;  // exact owners: in the namespace, 0 is the user who ran the test
  o.overlay_xattrs = OverlayXattrs::user;
  std::vector<std::string> warnings;
  o.warn = [&](const std::string& w) { warnings.push_back(w); };
  sys::Fd root = s.root_fd();
  sys::Fd list = s.list_fd(O_WRONLY | O_CREAT | O_TRUNC);
  auto r = unpack_layer(sys::FdRef::from_raw(blob), root, list, o);
  if (!r) return "unpack failed: " + r.error().what();
  if (r->skipped_devices != 1) return "skipped_devices is " + std::to_string(r->skipped_devices);
  if (warnings.size() != 1 || warnings[0].find("entry 'dev/null': skipping device node") == std::string::npos)
    return "warnings: " + (warnings.empty() ? std::string("none") : warnings[0]);
  struct stat st;
  if (::lstat(s.at("dev/null").c_str(), &st) == 0) return "dev/null was made";
  if (::lstat(s.at("etc/passwd").c_str(), &st) != 0 || !S_ISCHR(st.st_mode) || st.st_rdev != makedev(0, 0))
    return "etc/passwd is not a whiteout";
  if (xattr_of(s.at("d"), "user.overlay.opaque") != "y") return "d is not opaque";
  if (::lstat(s.at("f").c_str(), &st) != 0 || st.st_uid != 0) return "f is not owned by 0";
  sys::Fd rlist = s.list_fd();
  auto v = verify_tree(root, rlist);
  if (!v) return "verify failed: " + v.error().what();
  if (!v->empty()) return "verify: " + (*v)[0];
  return "ok";
}

TEST_SUITE("needs:userns") {
  TEST_CASE("unpack in a user namespace: whiteouts made, device nodes skipped with a warning") {
    Scratch s;
    // Owners 0:0: the one id the namespace maps.
    std::vector<Ent> ents{device("dev/null", 'c', 0666, 1, 3), dir("etc"), file("etc/.wh.passwd", ""),
                          dir("d"), file("d/.wh..wh..opq", ""), file("f", "f")};
    for (auto& e : ents) e.uid = 0, e.gid = 0;
    sys::Fd blob = memfd_of(make_tar(ents));
    int pipefd[2];
    REQUIRE(::pipe2(pipefd, O_CLOEXEC) == 0);
    uid_t uid = ::geteuid();
    gid_t gid = ::getegid();
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(pipefd[0]);
      std::string result;
      if (::unshare(CLONE_NEWUSER) != 0)
        result = "unshare failed";
      else if (!write_proc("/proc/self/setgroups", "deny") ||
               !write_proc("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1") ||
               !write_proc("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1"))
        result = "writing the id maps failed";
      else
        result = unpack_in_userns(s, blob.get());
      (void)!::write(pipefd[1], result.data(), result.size());
      ::_exit(0);
    }
    ::close(pipefd[1]);
    std::string result;
    char buf[512];
    for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) result.append(buf, static_cast<std::size_t>(n));
    ::close(pipefd[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(result == "ok");
  }
}

}  // namespace
}  // namespace pod::cas::test
