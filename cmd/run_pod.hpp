// pod run, after parsing: the steps from images to a started pod.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pod/runtime/cgroup.hpp"
#include "pod/runtime/disk.hpp"
#include "pod/runtime/net.hpp"
#include "pod/runtime/rootfs.hpp"
#include "pod/runtime/spec.hpp"
#include "run_isolators.hpp"
#include "run_maps.hpp"

namespace pod::cmd {

struct AppRequest {
  std::string image;
  std::optional<std::vector<std::string>> cmd;
};

struct RunArgs {
  std::vector<AppRequest> apps;
  std::string name, hostname, workdir, user, userns, shift = "auto", net, net_rate;
  std::string seccomp;  // as given ("": not given, the default profile unless an image's isolator says otherwise)
  std::vector<std::string> env, volumes, cap_retain, cap_remove, ports;
  // Limits as given (run_cgroup.hpp reads them).
  std::string memory, cpus, pids, cpuset_cpus;
  std::string disk_space;  // --disk-space SIZE: the writable layer's limit
  std::vector<std::string> io_read_bps, io_write_bps, io_read_iops, io_write_iops;
  bool no_new_privs = false, private_time = false, detach = false, tty = false, remove = false, plan = false,
       json = false;
};

// Runs the pod; returns pod run's exit status (the app's, or 125 when pod failed).
int run_pod(const RunArgs& args);

// What --plan prints, and what a real run records.
struct PlannedApp {
  std::string image, image_digest;
  std::vector<std::string> layers;  // digests, bottom first
  runtime::App app;
};
struct Plan {
  std::string uuid, name, hostname;
  PodMaps maps;
  runtime::EngineChoice engine;
  std::vector<PlannedApp> apps;
  std::vector<std::string> volumes;  // SRC:DST[:ro] as given
  std::string net;          // the mode's name: none|host|slirp|bridge
  runtime::NetRequest net_request;  // what the network hook sets up
  std::string net_note;     // why the mode was chosen when not asked for
  bool net_note_on_run = true;  // also printed by a run (else by --plan only)
  bool private_time = false;
  runtime::Limits limits;
  std::optional<runtime::CgroupPlace> cgroup;  // none without limits
  std::vector<IsolatorSource> isolators;       // settings from images' ACI isolators or flags
  std::vector<std::string> isolator_notes;
  struct Disk {
    std::uint64_t bytes = 0;
    runtime::DiskChoice how;
  };
  std::optional<Disk> disk;  // --disk-space
};
void print_plan(const Plan& plan, bool json);
// The suffix of an app's upper, work and copy directories in pods/<uuid>/: "" for the
// first app, "-<app name>" for the others.
[[nodiscard]] std::string app_dir_suffix(const Plan& plan, std::size_t app);

}  // namespace pod::cmd
