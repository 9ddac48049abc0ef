// pod run: resolve the images, decide the maps and the rootfs engine, record the pod,
// start it, and wait for it (or detach).
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>

#include "commands.hpp"
#include "context.hpp"
#include "pod/runtime/pods.hpp"
#include "pod/runtime/spawn.hpp"
#include "run_pod.hpp"

namespace pod::cmd {

namespace {

// IMAGE [-- CMD ARG...] [--- IMAGE [-- CMD ARG...]]...
sys::Result<std::vector<AppRequest>> split_apps(const std::vector<std::string>& words) {
  std::vector<AppRequest> apps;
  std::size_t i = 0;
  while (i < words.size()) {
    if (words[i] == "--" || words[i] == "---")
      return sys::make_error(EINVAL, "expected an image before '{}'", words[i]);
    if (words[i].starts_with("-"))
      return sys::make_error(EINVAL, "option '{}' after the image: options go before IMAGE", words[i]);
    AppRequest app{words[i++], std::nullopt};
    if (i < words.size() && words[i] == "--") {
      std::vector<std::string> cmd;
      for (++i; i < words.size() && words[i] != "---"; ++i) cmd.push_back(words[i]);
      if (cmd.empty()) return sys::make_error(EINVAL, "no command after '--' for image '{}'", app.image);
      app.cmd = std::move(cmd);
    }
    if (i < words.size()) {
      if (words[i] != "---")
        return sys::make_error(EINVAL, "unexpected '{}' after image '{}': a command goes after '--'", words[i],
                               app.image);
      if (++i == words.size()) return sys::make_error(EINVAL, "no image after '---'");
    }
    apps.push_back(std::move(app));
  }
  if (apps.empty()) return sys::make_error(EINVAL, "no image given");
  return apps;
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  auto* run = app.add_subcommand("run", "run a pod: IMAGE [-- CMD ARG...] [--- IMAGE [-- CMD ARG...]]...");
  run->prefix_command();  // everything from IMAGE on is the pod's, not ours
  run->add_option("--name", args->name, "pod name ([a-z0-9][a-z0-9-]{0,62}; default: image name and uuid)");
  run->add_option("--hostname", args->hostname, "host name inside the pod (default: the pod name)");
  run->add_option("--env", args->env, "K=V, overriding the image's")->allow_extra_args(false);
  run->add_option("--workdir", args->workdir, "working directory inside the pod");
  run->add_option("--user", args->user, "UID[:GID] or NAME[:GROUP] from the image's /etc/passwd");
  run->add_option("--userns", args->userns, "keep|auto[:size=N]|pick|host|MAP (default: keep for users, auto for root)");
  run->add_option("--shift", args->shift, "auto|chown|idmap|none: how layer owners reach the pod's range")
      ->check(CLI::IsMember({"auto", "chown", "idmap", "none"}));
  run->add_option("--volume", args->volumes, "SRC:DST[:ro]")->allow_extra_args(false);
  run->add_option("--cap-retain", args->cap_retain, "CAP,...: the only capabilities kept")->delimiter(',');
  run->add_option("--cap-remove", args->cap_remove, "CAP,...: removed from the default set")->delimiter(',');
  run->add_option("--seccomp", args->seccomp, "default|unconfined|FILE (an OCI seccomp JSON object)");
  run->add_flag("--no-new-privileges", args->no_new_privs, "setuid binaries and file capabilities give nothing");
  run->add_option("--memory", args->memory, "BYTES: memory limit (512M, 1G); no swap beyond it");
  run->add_option("--cpus", args->cpus, "N: cpu time limit in cpus (0.5, 1.5)");
  run->add_option("--pids", args->pids, "N: most processes and threads at once");
  run->add_option("--io-read-bps", args->io_read_bps, "DEV:RATE: read bytes per second from a block device (/dev/sda:10M)")
      ->allow_extra_args(false);
  run->add_option("--io-write-bps", args->io_write_bps, "DEV:RATE: write bytes per second")->allow_extra_args(false);
  run->add_option("--io-read-iops", args->io_read_iops, "DEV:N: read operations per second")->allow_extra_args(false);
  run->add_option("--io-write-iops", args->io_write_iops, "DEV:N: write operations per second")->allow_extra_args(false);
  run->add_option("--disk-space", args->disk_space,
                  "SIZE: most bytes the pod's writable layer may hold (project quota, or a disk of its own)");
  run->add_option("--cpuset-cpus", args->cpuset_cpus, "LIST: the cpus the pod may run on (0-1,3)");
  run->add_option("--net", args->net,
                  "none|host|slirp|bridge|NAME (a CNI config list in /etc/pod/net.d; default: bridge for root, "
                  "slirp for users)");
  run->add_option("--port", args->ports, "[ADDR:]HOST:POD[/tcp|udp]: a host port forwarded to the pod")
      ->allow_extra_args(false);
  run->add_option("--net-rate", args->net_rate, "RATE[:BURST] (tc units: 1mbit, 500kbit; burst 32kb)");
  run->add_flag("--private-time", args->private_time, "a time namespace of its own");
  run->add_flag("-d,--detach", args->detach, "start and print the uuid; output goes to the pod's log");
  run->add_flag("-t,--tty", args->tty, "a pty of the pod's own for the app");
  run->add_flag("--rm", args->remove, "remove the pod when it exits");
  run->add_flag("--plan", args->plan, "print what would be done, change nothing");
  run->add_flag("--json", args->json, "with --plan: one JSON document");
  run->callback([run, args] {
    chosen_action() = [run, args] {
      auto apps = split_apps(run->remaining());
      if (!apps) {
        report(apps.error());
        return 125;
      }
      args->apps = std::move(*apps);
      return run_pod(*args);
    };
  });
}

}  // namespace pod::cmd
