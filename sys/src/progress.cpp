#include "pod/sys/progress.hpp"

#include <unistd.h>

#include <atomic>

#include <fmt/format.h>

namespace pod::sys {
namespace {
std::atomic<bool> g_disabled{false};

}  // namespace

std::string human_bytes(std::uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  return u == 0 ? fmt::format("{} B", n) : fmt::format("{:.1f} {}", v, units[u]);
}

void Progress::disable() { g_disabled = true; }

Progress::Progress(std::string label, std::uint64_t total)
    : label_(std::move(label)), total_(total), active_(!g_disabled && ::isatty(2)) {}

Progress::~Progress() {
  if (active_ && last_ != std::chrono::steady_clock::time_point{}) draw(true);
}

void Progress::set(std::uint64_t done) {
  done_ = done;
  if (!active_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  draw(false);
}

void Progress::draw(bool final) {
  std::string line;
  if (total_ > 0) {
    constexpr int kWidth = 30;
    auto filled = static_cast<int>(kWidth * std::min<std::uint64_t>(done_, total_) / total_);
    line = fmt::format("\r{:<24.24} [{:=<{}}{:<{}}] {} / {}", label_, "", filled, "",
                       kWidth - filled, human_bytes(done_), human_bytes(total_));
  } else {
    line = fmt::format("\r{:<24.24} {}", label_, human_bytes(done_));
  }
  if (final) line += "\n";
  (void)!::write(2, line.data(), line.size());
}

}  // namespace pod::sys
