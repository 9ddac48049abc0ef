// pod image import | export (and fetch, registered here): the commands that read and
// write archives. They are built only into pod-image, so that libarchive's writers
// and libcurl are not loaded by every pod command; `pod` hands these to pod-image.
#include <cstdio>

#include "commands.hpp"
#include "context.hpp"
#include "pod/cas/export.hpp"
#include "pod/cas/import.hpp"
#include "pod/runtime/aci_isolators.hpp"
#include "pod/runtime/cgroup.hpp"
#include "pod/sys/fs.hpp"
#include "pod/sys/progress.hpp"

namespace pod::cmd {

using sys::FileLock;

namespace {

struct ImportArgs {
  std::string path, name, format = "auto", platform, source_ref;
  std::string max_layer_bytes, max_json_bytes;
  std::uint64_t max_entries = 0, max_depth = 0, max_members = 0;
};

int run_import(const ImportArgs& a) {
  cas::ImportOptions opts;
  auto fail = [&](sys::Error e) { return report(std::move(e).context("importing '{}'", a.path)); };
  // Every flag is checked before the store is touched.
  if (!a.name.empty()) {
    auto n = cas::ImageName::parse(a.name);
    if (!n) return fail(n.error());
    opts.name = *n;
  }
  auto fmt_ = cas::parse_format(a.format);
  if (!fmt_) return fail(fmt_.error());
  opts.ingest.format = *fmt_;
  if (!a.platform.empty()) {
    auto p = cas::Platform::parse(a.platform);
    if (!p) return fail(p.error());
    opts.ingest.platform = *p;
  }
  opts.ingest.source_ref = a.source_ref;
  auto& lim = opts.ingest.limits;
  if (!a.max_layer_bytes.empty()) {
    auto v = runtime::parse_size("--max-layer-bytes", a.max_layer_bytes);
    if (!v) return fail(v.error());
    lim.max_layer_bytes = *v;
  }
  if (!a.max_json_bytes.empty()) {
    auto v = runtime::parse_size("--max-json-bytes", a.max_json_bytes);
    if (!v) return fail(v.error());
    lim.max_json_bytes = *v;
  }
  if (a.max_entries) lim.max_entries = a.max_entries;
  if (a.max_depth) lim.max_depth = static_cast<std::uint32_t>(std::min<std::uint64_t>(a.max_depth, UINT32_MAX));
  if (a.max_members) lim.max_members = a.max_members;
  opts.warn = warn;
  opts.ingest.warn = warn;
  opts.ingest.aci_isolators = [&a](std::string_view text) -> sys::Result<std::string> {
    auto parsed = POD_TRY(runtime::parse_aci_isolators(text));
    for (const auto& n : parsed.unknown)
      warn(fmt::format("importing '{}': isolator '{}' is not known to pod: ignored", a.path, n));
    for (const auto& n : parsed.notes) note(fmt::format("importing '{}': {}", a.path, n));
    return parsed.known;
  };

  auto os = open_store(FileLock::Mode::shared);
  if (!os) return fail(os.error());
  opts.basis = os->basis;
  auto r = cas::import_image(os->store, sys::FdRef::cwd(), a.path, opts);
  if (!r) return fail(r.error());
  std::string what = r->name ? r->name->str() : "an unnamed image";
  note(fmt::format("{} {} ({})", r->changed ? "imported" : "already present:", what, cas::format_name(r->format)));
  std::printf("%s\n", r->manifest.digest.str().c_str());
  return 0;
}

int run_export(const std::string& image, const std::string& file, const std::string& format) {
  auto f = cas::parse_export_format(format);
  if (!f) return report(f.error());
  auto slash = file.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : file.substr(0, slash));
  std::string base = slash == std::string::npos ? file : file.substr(slash + 1);
  if (base.empty()) return report(sys::Error{EINVAL, fmt::format("'{}' names no file", file)});
  auto os = open_store(FileLock::Mode::shared);
  if (!os) return report(os.error());
  auto ref = os->store.resolve(image);
  if (!ref) return report(ref.error());
  auto dirfd = sys::open_dir(sys::FdRef::cwd(), dir);
  if (!dirfd) return report(dirfd.error());
  if (auto r = cas::export_image(os->store, *ref, *dirfd, base, *f); !r) return report(r.error());
  note(fmt::format("exported {} to {}", ref->name ? ref->name->str() : ref->manifest.digest.str(), file));
  return 0;
}

}  // namespace

void add_image_archive_commands(CLI::App& image) {
  static ImportArgs ia;
  auto* imp = image.add_subcommand("import", "import an image archive or directory; prints its digest");
  imp->add_option("PATH", ia.path, "OCI layout (dir or tar), docker-archive, ACI, or rootfs tar")->required();
  imp->add_option("--name", ia.name, "NAME[:TAG] for the image (default: the name the archive gives)");
  imp->add_option("--format", ia.format, "auto, oci, oci-archive, docker-archive, aci, rootfs")
      ->capture_default_str();
  imp->add_option("--platform", ia.platform, "OS/ARCH[/VARIANT] from a multi-platform image (default: this machine's)");
  imp->add_option("--source-ref", ia.source_ref, "which image of an archive holding several (ref name or tag)");
  imp->add_option("--max-layer-bytes", ia.max_layer_bytes, "most unpacked bytes of one layer (default 32G)");
  imp->add_option("--max-entries", ia.max_entries, "most entries in one layer (default 1000000)");
  imp->add_option("--max-depth", ia.max_depth, "deepest path in a layer, in components (default 128)");
  imp->add_option("--max-json-bytes", ia.max_json_bytes, "largest manifest, index or config (default 4M)");
  imp->add_option("--max-members", ia.max_members, "most members of an image archive (default 100000)");
  imp->callback([] { chosen_action() = [] { return run_import(ia); }; });

  static std::string export_image, export_file, export_format = "oci-archive";
  auto* exp = image.add_subcommand("export", "write an image as an archive, owners as the image says");
  exp->add_option("IMAGE", export_image)->required();
  exp->add_option("FILE", export_file)->required();
  exp->add_option("--format", export_format, "oci-archive or docker-archive")->capture_default_str();
  exp->callback([] { chosen_action() = [] { return run_export(export_image, export_file, export_format); }; });

  add_fetch_command(image);
}

}  // namespace pod::cmd
