// Child processes owned through a pidfd.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pod/sys/error.hpp"
#include "pod/sys/fd.hpp"

namespace pod::sys {

struct SpawnOptions {
  int stdin_fd = -1;   // -1: inherit
  int stdout_fd = -1;
  int stderr_fd = -1;
  std::optional<std::vector<std::string>> env;  // nullopt: inherit
};

// How a child ended: exit code, or the signal that killed it.
struct ExitStatus {
  int code = 0;
  int signal = 0;
  [[nodiscard]] bool success() const { return signal == 0 && code == 0; }
  [[nodiscard]] std::string describe() const;
};

// The first executable `name` in `dirs`, colon-separated as PATH is, or nullopt.
[[nodiscard]] std::optional<std::string> find_program(std::string_view name, std::string_view dirs);
// Whether PATH (or /usr/local/bin:/usr/bin:/bin without one) holds an executable `name`.
[[nodiscard]] bool in_path(std::string_view name);

// Owns pid and pidfd. The destructor kills (SIGKILL) and reaps a child not yet waited.
class Child {
 public:
  // Starts argv[0] (searched in PATH). A program that cannot be executed is an error
  // here, reported through a close-on-exec pipe, not an exit code 127 later.
  [[nodiscard]] static Result<Child> spawn(const std::vector<std::string>& argv,
                                           const SpawnOptions& opts = {});
  Child(Child&&) noexcept;
  Child& operator=(Child&&) noexcept;
  ~Child();

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] FdRef pidfd() const { return pidfd_; }
  [[nodiscard]] Result<ExitStatus> wait();
  [[nodiscard]] Result<void> kill(int sig);

 private:
  Child(pid_t pid, Fd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  pid_t pid_ = -1;
  Fd pidfd_;
};

// Runs argv to completion; an error unless it exits 0. Output is not captured.
[[nodiscard]] Result<void> run_program(const std::vector<std::string>& argv,
                                       const SpawnOptions& opts = {});

}  // namespace pod::sys
