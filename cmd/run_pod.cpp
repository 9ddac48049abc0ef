#include "run_pod.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "context.hpp"
#include "commands.hpp"
#include "pod/cas/import.hpp"
#include "pod/idmap/census.hpp"
#include "pod/runtime/image_config.hpp"
#include "pod/runtime/pods.hpp"
#include "pod/runtime/spawn.hpp"
#include "pod/sys/fs.hpp"
#include "run_cgroup.hpp"
#include "run_isolators.hpp"
#include "run_net.hpp"
#include "run_setup.hpp"
#include "volume_shift.hpp"

namespace pod::cmd {

namespace {

// Gives back what a failed start took: the lease, the pod directory, its cgroups.
struct Undo {
  std::string store_path, lease;
  sys::Fd pods_parent;  // our own copy: it outlives the caller's
  std::string pod_dir_name;
  std::vector<std::string> cgroups;
  std::string disk_mount;  // --disk-space on a disk of the pod's own: unmounted first
  bool armed = true;
  ~Undo() {
    if (!armed) return;
    if (!cgroups.empty()) (void)runtime::remove_cgroups(cgroups, pod_dir_name);
    if (!disk_mount.empty()) (void)::umount2(disk_mount.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
    if (pods_parent) (void)sys::remove_tree(pods_parent, pod_dir_name);
    if (!lease.empty()) (void)release_lease(store_path, lease);
  }
};

// Waits for the pod, passing SIGINT, SIGTERM and SIGHUP on to its init.
sys::Result<sys::ExitStatus> wait_forwarding(runtime::RunningPod& pod) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, s);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return sys::sys_error("sigprocmask");
  sys::Fd sfd(::signalfd(-1, &set, SFD_CLOEXEC));
  if (!sfd) return sys::sys_error("signalfd");
  for (;;) {
    pollfd fds[2] = {{pod.pidfd().get(), POLLIN, 0}, {sfd.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return sys::sys_error("poll");
    }
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si{};
      if (::read(sfd.get(), &si, sizeof si) == sizeof si) (void)pod.signal(static_cast<int>(si.ssi_signo));
    }
    if (fds[0].revents & POLLIN) return pod.wait();
  }
}

// The pod's root is host root: root's `--userns host`, or a map of root's own that maps
// host uid 0 (ordinary users cannot map it).
bool pod_root_is_host_root(const RunArgs& a) {
  if (::geteuid() != 0) return false;
  if (a.userns == "host") return true;
  auto m = idmap::parse_map_spec(a.userns);
  if (!m) return false;
  for (const auto& e : m->uids.extents)
    if (e.outer == 0) return true;
  return false;
}

}  // namespace

sys::Result<int> run_pod_impl(const RunArgs& a) {
  if (!a.plan) POD_TRY(seal_exe_if_exposed(pod_root_is_host_root(a)));
  Plan plan;
  plan.uuid = runtime::new_uuid();
  plan.name = a.name.empty() ? default_pod_name(a.apps[0].image, plan.uuid) : a.name;
  POD_TRY(runtime::check_name(plan.name, "pod name"));
  plan.hostname = a.hostname.empty() ? plan.name : a.hostname;
  POD_TRY(runtime::check_name(plan.hostname, "host name"));
  plan.private_time = a.private_time;
  plan.volumes = a.volumes;
  runtime::Security security = POD_TRY(security_from_flags(a));
  plan.limits = POD_TRY(limits_from_flags(a));
  std::vector<VolumeArg> volumes = POD_TRY(parse_volumes(a.volumes));

  std::string store_path = globals().root;
  if (store_path.empty()) store_path = POD_TRY(cas::default_store_path());
  // Root's store needs no namespace: its images are read first, so that a plain
  // `--userns auto` can cover every id they use. A user's store is opened inside the
  // store's user namespace, which is entered after the maps are decided.
  std::optional<OpenStore> opened;
  std::vector<ImageLayers> images;
  auto load_images = [&]() -> sys::Result<void> {
    opened.emplace(POD_TRY(open_store(sys::FileLock::Mode::shared)));
    for (const auto& req : a.apps) images.push_back(POD_TRY(load_layers(opened->store, req.image)));
    return {};
  };
  std::optional<ImageIds> ids;
  if (caller_is_root()) {
    POD_TRY(load_images());
    ids = image_ids_of(images);
  }
  plan.maps = POD_TRY(decide_maps(a.userns, store_path, plan.name, plan.uuid, a.plan, ids ? &*ids : nullptr));
  Undo undo;  // from here on, a failure gives the lease back
  undo.store_path = store_path;
  if (plan.maps.lease && !a.plan) undo.lease = plan.maps.lease->name;
  POD_TRY(plan_network(a, plan.maps.rootless, !a.plan, plan));
  plan.net_request.claim_dir = store_path + "/pods";  // a slirp helper's claim, for gc after a kill

  // Users: the store's user namespace, then a mount namespace of our own for the
  // overlay; the store is opened after both (overlayfs refuses directories opened in
  // another mount namespace).
  if (plan.maps.rootless) {
    globals().root = store_path;  // resolved as ourselves: inside, we are uid 0
    POD_TRY(enter_store_namespace());
    if (::unshare(CLONE_NEWNS) != 0)
      return sys::sys_error("a mount namespace of our own (overlay mounts inside the store's namespace)");
  }
  std::optional<runtime::EarlySlirp> early_net;
  if (!a.plan) early_net = POD_TRY(begin_early_network(plan));
  if (!opened) POD_TRY(load_images());
  OpenStore& st = *opened;
  if (!a.plan) POD_TRY(check_ports_in_pods(st.store.dir(), plan));
  for (const auto& img : images) POD_TRY(check_census(img, plan.maps));

  bool maps_equal = plan.maps.policy == "keep" || plan.maps.policy == "host";
  std::optional<overlay::Probes> probes;
  if (!plan.maps.rootless && !maps_equal && a.shift != "none")
    probes = POD_TRY(overlay::cached_probes(st.store.dir(), st.store.tmp_dir()));
  plan.engine = POD_TRY(runtime::choose_engine(a.shift, maps_equal, !plan.maps.rootless, probes ? &*probes : nullptr));

  for (std::size_t i = 0; i < a.apps.size(); ++i) {
    auto& img = images[i];
    runtime::AppOverrides over{a.apps[i].cmd, a.env, std::nullopt, std::nullopt};
    if (!a.workdir.empty()) over.workdir = a.workdir;
    if (!a.user.empty()) over.user = a.user;
    runtime::App app = POD_TRY_CTX(runtime::resolve_app(img.app, over, POD_TRY(read_id_files(img))), "image '{}'",
                                   a.apps[i].image);
    app.name = POD_TRY(app_name(a.apps[i].image, i, plan.apps));
    app.security = security;
    if (a.tty) app.env.emplace_back("TERM=" + std::string(std::getenv("TERM") ? std::getenv("TERM") : "xterm"));
    plan.apps.push_back({a.apps[i].image, img.manifest_digest, img.layer_digests(), std::move(app)});
  }
  POD_TRY(apply_isolators(a, images, plan, warn));

  if (!plan.limits.empty())
    plan.cgroup = POD_TRY_CTX(runtime::place_cgroups(plan.limits, plan.uuid, plan.maps.rootless), "the pod's cgroup");
  if (!a.disk_space.empty()) {
    std::uint64_t bytes = POD_TRY(runtime::parse_size("--disk-space", a.disk_space));
    if (bytes < (1u << 20)) return sys::make_error(EINVAL, "--disk-space '{}': the least is 1M", a.disk_space);
    plan.disk = Plan::Disk{bytes, POD_TRY(runtime::choose_disk(st.store.dir(), !plan.maps.rootless))};
  }
  if (a.plan) {
    print_plan(plan, a.json);
    return 0;
  }

  // The record first (a killed `pod run` leaves a prepared pod that gc removes), then
  // the layers for the pod's map, then the pod.
  runtime::PodRecord rec = record_for(plan);
  // The cgroups to be are in the record before they are made: gc finds them after a kill.
  if (plan.cgroup) rec.cgroups = plan.cgroup->dirs;
  sys::Fd pods = POD_TRY(made_dir(st.store.dir(), "pods", 0700));
  const std::string recorded = runtime::record_to_json(rec);
  auto pd = std::make_optional(POD_TRY(runtime::PodDir::create(st.store.dir(), rec)));
  if (!plan.maps.rootless) {
    // The apps attach their root below STORE/pods/<uuid> as the pod's root, a leased
    // host id: it must be able to pass (not list) the directories on the way.
    for (sys::FdRef d : {st.store.dir(), sys::FdRef(pods), pd->dir()})
      if (::fchmod(d.get(), 0711) != 0) return sys::sys_error("letting the pod's ids pass the store directories");
  }
  undo.pods_parent = sys::Fd(::fcntl(pods.get(), F_DUPFD_CLOEXEC, 3));
  undo.pod_dir_name = plan.uuid;

  if (plan.disk && plan.disk->how.kind != runtime::DiskKind::project)
    undo.disk_mount = POD_TRY(sys::fd_path(pd->dir())) + "/disk";
  PodFiles files = POD_TRY(make_pod_files(pd->dir(), plan));
  RootfsSources sources = POD_TRY(prepare_sources(st.store, images, plan, rec.shift_keys));
  std::vector<VolumeSource> vol_sources = POD_TRY(open_volumes(volumes));
  for (const auto& v : vol_sources) {
    if (v.arg.chown) {
      POD_TRY_CTX(refuse_if_in_use(st.store.dir(), v.resolved), "volume '{}'", v.arg.source);
      POD_TRY_CTX(chown_volume(v, plan.maps.view), "volume '{}' (chown)", v.arg.source);
    }
    if (v.arg.acl) POD_TRY_CTX(grant_volume(v, plan), "volume '{}' (acl)", v.arg.source);
  }
  for (const auto& v : vol_sources) rec.volume_sources.push_back(v.resolved);
  std::optional<runtime::PodCgroups> cgroups;
  if (plan.cgroup) {
    cgroups = POD_TRY_CTX(runtime::create_cgroups(*plan.cgroup, plan.limits), "the pod's cgroup");
    undo.cgroups = cgroups->dirs;
  }
  // Again only if the steps above added to it (shifted trees taken, volumes).
  if (runtime::record_to_json(rec) != recorded) POD_TRY(pd->write_record(rec));

  runtime::PodSpec spec = pod_spec(plan, files, *pd);
  if (cgroups) {
    spec.limits = [&]() -> sys::Result<void> {
      POD_TRY_CTX(runtime::write_limits(*cgroups, plan.limits), "the pod's cgroup");
      return {};
    };
    spec.cgroup_v2_fd = cgroups->v2_dir.get();
    if (cgroups->version == runtime::CgroupVersion::v1) {
      for (auto& t : cgroups->v1_tasks) spec.cgroup_v1_tasks.push_back(t.get());
      for (auto& h : cgroups->v1) spec.cgroup_v1_mounts.push_back(h.controllers);
    }
  }
  PodNetwork net(plan, rec, *pd, early_net ? &*early_net : nullptr);
  POD_TRY(net.apply(spec));
  if (!plan.net_note.empty() && plan.net_note_on_run) note(plan.net_note);
  sys::Fd log;
  if (a.detach) {
    log = POD_TRY(sys::open_at(pd->dir(), "log", O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600));
    sys::Fd devnull = POD_TRY(sys::open_at(sys::FdRef::cwd(), "/dev/null", O_RDONLY));
    spec.stdin_fd = devnull.release();
    spec.stdout_fd = log.get();
    spec.stderr_fd = log.get();
    spec.die_with_caller = false;
  }
  spec.tty = a.tty;
  std::vector<std::string> fallbacks;
  auto prepare = [&](sys::FdRef userns) -> sys::Result<std::vector<runtime::AppMounts>> {
    return mount_apps(sources, files, vol_sources, plan, userns, fallbacks);
  };
  runtime::RunningPod pod = POD_TRY(runtime::start(spec, prepare));
  undo.armed = false;
  for (const auto& f : fallbacks) warn(f);

  rec.pid = pod.pid();
  rec.start_time = pod.start_time();
  for (std::size_t i = 0; i < rec.apps.size() && i < pod.app_pids().size(); ++i) {
    rec.apps[i].pid = pod.app_pids()[i];
    if (auto t = runtime::process_start_time(rec.apps[i].pid)) rec.apps[i].start_time = *t;
  }
  if (auto w = pd->write_record(rec); !w) warn(w.error().what());

  if (a.detach) {
    net.keep();
    std::printf("%s\n", plan.uuid.c_str());
    return 0;
  }
  sys::ExitStatus status;
  if (a.tty) status = POD_TRY(relay_tty(pod));
  else status = POD_TRY(wait_forwarding(pod));
  int code = runtime::exit_code_of(status);
  if (auto r = net.finish(); !r) warn(r.error().what());
  pd.reset();  // our hold on the pod's lock: it has ended
  if (a.remove) {
    auto info = runtime::find_pod_by_uuid(st.store.dir(), plan.uuid);
    if (info) {
      if (auto r = runtime::remove_pod(st.store.dir(), *info, releasers(st.store, store_path)); !r)
        warn(fmt::format("--rm: {}", r.error().what()));
    }
  }
  return code;
}

int run_pod(const RunArgs& args) {
  auto r = run_pod_impl(args);
  if (r) return *r;
  report(r.error());
  // An app that could not be executed: 127 not found, 126 not executable (as shells do).
  if (r.error().message.find("executable") != std::string::npos) {
    if (r.error().code == ENOENT) return 127;
    if (r.error().code == EACCES || r.error().code == ENOEXEC) return 126;
  }
  return 125;
}

}  // namespace pod::cmd
