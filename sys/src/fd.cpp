#include "pod/sys/fd.hpp"

#include <utility>

namespace pod::sys {

void close_all_except(int* keep, std::size_t n) noexcept {
  for (std::size_t i = 1; i < n; ++i)
    for (std::size_t j = i; j > 0 && keep[j - 1] > keep[j]; --j) std::swap(keep[j - 1], keep[j]);
  unsigned next = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (keep[i] < 0) continue;
    auto k = static_cast<unsigned>(keep[i]);
    if (k > next) ::close_range(next, k - 1, 0);
    next = k + 1;
  }
  ::close_range(next, ~0U, 0);
}

}  // namespace pod::sys
