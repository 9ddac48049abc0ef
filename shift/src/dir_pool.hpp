// Directories of a tree shared among worker threads. A worker meeting a subdirectory
// hands it over only when another worker is idle (offer); otherwise it descends itself,
// which costs no lock and no wakeup and keeps few directories (and their fds) queued.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "pod/sys/error.hpp"

namespace pod::shift::detail {

template <class Item>
class DirPool {
 public:
  using Work = std::function<sys::Result<void>(Item)>;
  static constexpr std::size_t kQueueLimit = 64;

  explicit DirPool(Work work) : work_(std::move(work)) {}

  // Gives `it` to an idle worker: true. False (it is left as it was): do it yourself.
  bool offer(Item& it) {
    if (idle_.load(std::memory_order_relaxed) == 0) return false;
    std::lock_guard l(mu_);
    if (queue_.size() >= kQueueLimit) return false;
    queue_.push_back(std::move(it));
    cv_.notify_one();
    return true;
  }

  // Set once any worker failed: the others stop at their next entry.
  [[nodiscard]] bool stopped() const { return stop_.load(std::memory_order_relaxed); }

  // Runs work(top) and everything it offers on `threads` workers; calls tick about
  // every 100 ms while they run. The first error of any worker.
  sys::Result<void> run(Item top, unsigned threads, const std::function<void()>& tick = {}) {
    // The top is queued before any worker starts, so none finds the run over early.
    queue_.push_back(std::move(top));
    {
      std::vector<std::jthread> pool;
      for (unsigned i = 0; i < std::max(1u, threads); ++i) pool.emplace_back([this] { worker(); });
      std::unique_lock l(mu_);
      while (!(stop_.load() || (queue_.empty() && active_ == 0))) {
        cv_.wait_for(l, std::chrono::milliseconds(100));
        l.unlock();
        if (tick) tick();
        l.lock();
      }
    }
    if (error_) return sys::Unexpected(std::move(*error_));
    return {};
  }

 private:
  void worker() {
    for (;;) {
      Item it;
      {
        std::unique_lock l(mu_);
        ++idle_;
        cv_.wait(l, [&] { return !queue_.empty() || active_ == 0 || stop_.load(); });
        --idle_;
        if (stop_ || (queue_.empty() && active_ == 0)) {
          cv_.notify_all();
          return;
        }
        it = std::move(queue_.back());  // LIFO: depth first, the queue stays short
        queue_.pop_back();
        ++active_;
      }
      auto r = work_(std::move(it));
      std::lock_guard l(mu_);
      if (!r && !error_) error_ = std::move(r).error(), stop_.store(true);
      --active_;
      cv_.notify_all();
    }
  }

  Work work_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> queue_;
  std::optional<sys::Error> error_;
  int active_ = 0;                 // workers inside work(); the run ends when 0 with an empty queue
  std::atomic<bool> stop_{false};  // read per entry without the lock
  std::atomic<int> idle_{0};       // workers waiting for a directory
};

}  // namespace pod::shift::detail
