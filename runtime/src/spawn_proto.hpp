// What the caller (P), the pod init (C) and the app processes say to each other over
// the SOCK_SEQPACKET pair, and the setup steps a child reports as {step, errno}.
// Children never allocate: every message is a fixed struct.
#pragma once

#include <linux/limits.h>

#include <cstdint>

namespace pod::runtime::detail {

// A step of the pod's setup, as a child reports its failure. Names in step_name().
enum Step : std::int32_t {
  kStepNone = 0,
  kStepSync,          // talking to the caller
  kStepIds,           // becoming root of the pod's user namespace
  kStepMountNs,       // the app's own mount namespace
  kStepPropagation,   // making mounts slaves
  kStepHostname,
  kStepLoopback,
  kStepFork,
  kStepRootfs,        // attaching the root filesystem
  kStepProc,
  kStepProcMask,
  kStepSys,
  kStepDev,
  kStepDevNodes,
  kStepDevPts,
  kStepDevShm,
  kStepMqueue,
  kStepEtcFiles,
  kStepVolume,
  kStepPivot,
  kStepTty,
  kStepStdio,
  kStepWorkdir,
  kStepRlimits,
  kStepOomScore,
  kStepCapBounding,
  kStepGroups,
  kStepSetgid,
  kStepSetuid,
  kStepCaps,
  kStepAmbient,
  kStepNoNewPrivs,
  kStepSeccomp,
  kStepCloseFds,
  kStepExec,
  kStepNsJoin,
  kStepCgroupNs,      // the pod's cgroup namespace, made once the init is in its cgroup
  kStepCgroupMount,   // /sys/fs/cgroup
  kStepCgroupJoin,    // `pod enter` joining the app's cgroups
  kStepCgroupMove,    // the init moving itself into the pod's cgroup v1 cgroups
  kStepNetJoin,       // the init joining the network namespace made for the pod beforehand
  kStepNetNew,        // the init making the pod's network namespace
  kStepCount
};
[[nodiscard]] const char* step_name(std::int32_t step);

// Message kinds.
enum Kind : std::uint32_t {
  kMsgRootfs = 1,  // P -> C: SCM_RIGHTS the app's root filesystem (a detached mount)
  kMsgVolume,      // P -> C: SCM_RIGHTS a volume source, `path` its target
  kMsgGo,          // P -> C: everything sent, go on
  kMsgPty,         // app 0 -> P: SCM_RIGHTS the pty master
  kMsgStarted,     // C -> P: SCM_CREDENTIALS an app's pid, `app` its index
  kMsgReady,       // C -> P: every app started
  kMsgFailed,      // C -> P: {app, step, err}; app is -1 for the pod itself
  kMsgAppsGo,      // P -> C: the pod's limits and network are set up; the apps may exec
};

struct Msg {
  std::uint32_t kind = 0;
  std::int32_t app = -1;
  std::uint32_t flags = 0;  // kMsgVolume: kVolumeDirectory
  std::int32_t step = 0, err = 0;
  char path[PATH_MAX] = {};
};
inline constexpr std::uint32_t kVolumeDirectory = 1;

// One message, with at most one fd (SCM_RIGHTS) and, from the init, credentials naming
// an app's pid (SCM_CREDENTIALS). No allocation; EINTR retried. Returns false on error.
[[nodiscard]] bool send_msg(int sock, const Msg& m, int fd, const void* ucred) noexcept;
// Returns the byte count (0: the peer is gone, -1: error); *fd gets a passed fd
// (close-on-exec) or -1; *pid the credentials' pid when `pid` is non-null, else 0.
[[nodiscard]] long recv_msg(int sock, Msg* m, int* fd, int* pid) noexcept;

// The exit code a child uses after reporting a setup failure; exec failures use 126/127.
inline constexpr int kSetupFailedExit = 125;

}  // namespace pod::runtime::detail
