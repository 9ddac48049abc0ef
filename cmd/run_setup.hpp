// The pieces of pod run between the flags and runtime::start: images and their layers,
// names, security, volumes, the pod's own files, and the mounts handed to the runtime.
#pragma once

#include <string>
#include <vector>

#include "pod/cas/import.hpp"
#include "pod/cas/store.hpp"
#include "pod/runtime/image_config.hpp"
#include "pod/runtime/pods.hpp"
#include "pod/runtime/rootfs.hpp"
#include "pod/runtime/spawn.hpp"
#include "run_pod.hpp"

namespace pod::cmd {

// "busybox" + uuid -> "busybox-1a2b3c4d": the image's last path component, made a valid name.
[[nodiscard]] std::string default_pod_name(std::string_view image, std::string_view uuid);
// The app's name in the pod: the image's last path component, numbered when repeated.
[[nodiscard]] sys::Result<std::string> app_name(std::string_view image, std::size_t index,
                                                const std::vector<PlannedApp>& before);

[[nodiscard]] sys::Result<runtime::Security> security_from_flags(const RunArgs& a);

struct VolumeArg {
  std::string source, target;
  bool read_only = false, idmap = false, chown = false, acl = false;
};
[[nodiscard]] sys::Result<std::vector<VolumeArg>> parse_volumes(const std::vector<std::string>& specs);

struct ImageLayers {
  std::string image, manifest_digest;
  std::vector<cas::TreeRecord> records;  // bottom first
  std::vector<runtime::Layer> layers;    // the trees' root directories, bottom first
  runtime::ImageApp app;
  [[nodiscard]] std::vector<std::string> layer_digests() const;
};
[[nodiscard]] sys::Result<ImageLayers> load_layers(const cas::Store& store, std::string_view image);
// An image whose files use an id the pod's map lacks: the error names a path and the id.
[[nodiscard]] sys::Result<void> check_census(const ImageLayers& img, const PodMaps& maps);
// Every id the images' layers own files by.
[[nodiscard]] ImageIds image_ids_of(const std::vector<ImageLayers>& images);
// The image's own /etc/passwd and /etc/group, from the top-most layer that has them.
[[nodiscard]] sys::Result<runtime::IdFiles> read_id_files(const ImageLayers& img);

[[nodiscard]] runtime::PodRecord record_for(const Plan& plan);

// `name` below `dir`, made when missing, opened.
[[nodiscard]] sys::Result<sys::Fd> made_dir(sys::FdRef dir, std::string_view name, mode_t mode);

// The id `pod` sees for the pod's id `inner` under `m` (the pod's view map); 65534 when
// `m` does not map it.
[[nodiscard]] std::uint32_t view_of(const idmap::IdMap& m, std::uint32_t inner);

// Directories and files of the pod, below STORE/pods/<uuid>.
// Each app has a writable layer of its own: pods/<uuid>/upper, work and copy for the
// first app, upper-<app>, work-<app> and copy-<app> for the others.
struct AppFiles {
  sys::Fd upper, work, copy;
};
struct PodFiles {
  std::vector<AppFiles> apps;  // in the order of Plan::apps
  sys::Fd rootfs;
};
[[nodiscard]] sys::Result<PodFiles> make_pod_files(sys::FdRef pod_dir, const Plan& plan);

// Lower layers per app, prepared before the pod starts (shifted copies for chown).
struct RootfsSources {
  std::vector<std::vector<runtime::Layer>> layers;  // per app, for idmap
  std::vector<std::vector<sys::Fd>> lowers;         // per app, for none and chown
};
[[nodiscard]] sys::Result<RootfsSources> prepare_sources(const cas::Store& store, std::vector<ImageLayers>& images,
                                                         const Plan& plan, std::vector<std::string>& shift_keys);

struct VolumeSource {
  VolumeArg arg;
  sys::Fd dir;  // O_PATH, opened once: a symlink swapped in later changes nothing
  bool directory = true;
  std::string resolved;  // the host path `dir` is at (pod.json's volume_sources)
};
[[nodiscard]] sys::Result<std::vector<VolumeSource>> open_volumes(const std::vector<VolumeArg>& volumes);

[[nodiscard]] runtime::PodSpec pod_spec(const Plan& plan, const PodFiles& files, const runtime::PodDir& pd);

// runtime::PrepareMounts: each app's root filesystem and volumes, once the pod's user
// namespace exists. Warnings (a copy instead of an overlay) go to `notes`.
[[nodiscard]] sys::Result<std::vector<runtime::AppMounts>> mount_apps(RootfsSources& sources, const PodFiles& files,
                                                                      const std::vector<VolumeSource>& volumes,
                                                                      const Plan& plan, sys::FdRef userns,
                                                                      std::vector<std::string>& notes);

// -t: relays between our terminal and the pod's pty until the pod ends.
[[nodiscard]] sys::Result<sys::ExitStatus> relay_tty(runtime::RunningPod& pod);

// What removing a pod gives back: its lease and its shifted trees.
[[nodiscard]] runtime::Releasers releasers(const cas::Store& store, const std::string& store_path);

}  // namespace pod::cmd
