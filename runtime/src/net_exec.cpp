// Running the network's programs (CNI plugins, tc, ip) with input and captured output.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "pod/runtime/net.hpp"
#include "pod/sys/child.hpp"

namespace pod::runtime::detail {

namespace {

sys::Result<std::pair<sys::Fd, sys::Fd>> make_pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return sys::sys_error("pipe");
  return std::pair{sys::Fd(p[0]), sys::Fd(p[1])};
}

}  // namespace

sys::Result<std::string> find_tool(std::string_view name, std::string_view package) {
  if (auto path = sys::find_program(name, std::string_view(kToolPath).substr(5))) return *path;  // after "PATH="
  return sys::make_error(ENOENT, "{} is not installed (Debian package {})", name, package);
}

sys::Result<Output> run_with_input(const std::vector<std::string>& argv, const std::string& input,
                                   const std::vector<std::string>& env) {
  auto [in_r, in_w] = POD_TRY(make_pipe());
  auto [out_r, out_w] = POD_TRY(make_pipe());
  auto [err_r, err_w] = POD_TRY(make_pipe());
  sys::SpawnOptions opts;
  opts.stdin_fd = in_r.get();
  opts.stdout_fd = out_w.get();
  opts.stderr_fd = err_w.get();
  if (!env.empty()) opts.env = env;
  sys::Child child = POD_TRY_CTX(sys::Child::spawn(argv, opts), "running {}", argv[0]);
  in_r.reset();
  out_w.reset();
  err_w.reset();
  // Input, output and errors together: a plugin may answer before reading all of it.
  Output o;
  std::size_t written = 0;
  if (input.empty()) in_w.reset();
  char buf[8192];
  while (out_r || err_r) {
    pollfd fds[3] = {{out_r ? out_r.get() : -1, POLLIN, 0}, {err_r ? err_r.get() : -1, POLLIN, 0},
                     {in_w ? in_w.get() : -1, POLLOUT, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return sys::sys_error("poll");
    }
    if (fds[2].revents & (POLLOUT | POLLERR | POLLHUP)) {
      ssize_t n = ::write(in_w.get(), input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if (n < 0 || written == input.size()) in_w.reset();
    }
    for (int k = 0; k < 2; ++k) {
      if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      sys::Fd& fd = k == 0 ? out_r : err_r;
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n > 0) (k == 0 ? o.out : o.err).append(buf, static_cast<std::size_t>(n));
      else if (n == 0 || errno != EINTR) fd.reset();
    }
  }
  sys::ExitStatus st = POD_TRY(child.wait());
  o.code = st.signal ? 128 + st.signal : st.code;
  return o;
}

}  // namespace pod::runtime::detail
