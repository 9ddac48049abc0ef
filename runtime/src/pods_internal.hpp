// Shared by pods_*.cpp: the layout of STORE/pods and how a pod's state is read.
#pragma once

#include <string>
#include <vector>

#include "pod/runtime/pods.hpp"

namespace pod::runtime::detail {

constexpr const char* kPodsDir = "pods";
constexpr const char* kRecord = "pod.json";
constexpr const char* kStatus = "status.json";
constexpr const char* kLock = "lock";
constexpr const char* kGarbagePrefix = ".garbage-";
constexpr const char* kStagingPrefix = ".new-";
constexpr std::size_t kRecordLimit = 1 << 20;
constexpr long kAbandonedAfter = 60;  // seconds: a prepared pod older than this, unlocked, is abandoned

// Whether someone holds the lock of pod directory `pod` (a try on a new open file
// description, released at once). A missing lock file is free.
[[nodiscard]] sys::Result<bool> lock_held(sys::FdRef pod);

// The lock of `pod`, taken exclusively without waiting; EWOULDBLOCK while held.
[[nodiscard]] sys::Result<sys::Fd> take_lock(sys::FdRef pod);

// Seconds since `pod`/`name` was last modified.
[[nodiscard]] sys::Result<long> age_of(sys::FdRef pod, const char* name);

// One directory of STORE/pods, read: a PodInfo, or why it could not be read.
struct Scanned {
  std::string dir;      // its name under pods/
  PodInfo info;         // record.uuid at least (from the name), when damaged
  std::string damaged;  // empty when the record is good
};

// Every pod directory (not garbage, not staging); empty when STORE/pods does not exist.
[[nodiscard]] sys::Result<std::vector<Scanned>> scan_pods(sys::FdRef store);

// Reads one pod directory `name` below `pods`.
[[nodiscard]] Scanned read_pod(sys::FdRef pods, const std::string& name);

}  // namespace pod::runtime::detail
