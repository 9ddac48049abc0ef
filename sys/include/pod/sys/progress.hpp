// A one-line progress bar on stderr, drawn only when stderr is a terminal.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace pod::sys {

// "512 B", "1.5 MiB": sizes as people read them.
[[nodiscard]] std::string human_bytes(std::uint64_t n);

class Progress {
 public:
  // total 0: unknown, shows a running count instead of a bar.
  Progress(std::string label, std::uint64_t total);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(std::uint64_t n) { set(done_ + n); }
  void set(std::uint64_t done);

  // Globally off (--quiet), whatever stderr is.
  static void disable();

 private:
  void draw(bool final);
  std::string label_;
  std::uint64_t total_;
  std::uint64_t done_ = 0;
  bool active_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace pod::sys
