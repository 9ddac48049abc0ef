// pod image import | list | inspect | export | rm | gc | verify
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "context.hpp"
#include "pod/cas/export.hpp"
#include "pod/cas/import.hpp"
#include "pod/cas/maintain.hpp"
#include "pod/sys/fs.hpp"
#include "pod/sys/progress.hpp"

namespace pod::cmd {

using json = nlohmann::json;
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
    auto v = parse_size(a.max_layer_bytes);
    if (!v) return fail(v.error());
    lim.max_layer_bytes = *v;
  }
  if (!a.max_json_bytes.empty()) {
    auto v = parse_size(a.max_json_bytes);
    if (!v) return fail(v.error());
    lim.max_json_bytes = *v;
  }
  if (a.max_entries) lim.max_entries = a.max_entries;
  if (a.max_depth) lim.max_depth = static_cast<std::uint32_t>(std::min<std::uint64_t>(a.max_depth, UINT32_MAX));
  if (a.max_members) lim.max_members = a.max_members;
  opts.warn = warn;
  opts.ingest.warn = warn;

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

std::uint64_t image_size(const cas::StoredImage& img) {
  std::uint64_t n = img.ref.manifest.size + img.manifest.config.size;
  for (auto& l : img.manifest.layers) n += l.size;
  return n;
}

int run_list(bool as_json) {
  auto os = open_store(FileLock::Mode::shared);
  if (!os) return report(os.error());
  auto refs = os->store.refs();
  if (!refs) return report(refs.error());
  json out = json::array();
  for (auto& ref : *refs) {
    auto img = cas::load_image(os->store, ref);
    if (!img) return report(std::move(img.error()).context("image {}", ref.manifest.digest.str()));
    out.push_back({{"name", ref.name ? json(ref.name->str()) : json(nullptr)},
                   {"digest", ref.manifest.digest.str()},
                   {"size", image_size(*img)},
                   {"created", img->config.created}});
  }
  if (as_json) {
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("%-32s %-19s %10s  %s\n", "NAME", "DIGEST", "SIZE", "CREATED");
  for (auto& e : out) {
    std::string name = e["name"].is_null() ? "<none>" : e["name"].get<std::string>();
    std::string digest = e["digest"].get<std::string>().substr(0, 19);
    std::printf("%-32s %-19s %10s  %s\n", name.c_str(), digest.c_str(),
                sys::human_bytes(e["size"].get<std::uint64_t>()).c_str(), e["created"].get<std::string>().c_str());
  }
  return 0;
}

int run_inspect(const std::string& image, bool as_json) {
  auto os = open_store(FileLock::Mode::shared);
  if (!os) return report(os.error());
  auto ref = os->store.resolve(image);
  if (!ref) return report(ref.error());
  auto img = cas::load_image(os->store, *ref);
  if (!img) return report(img.error());
  json config = json::parse(img->config_json, nullptr, false);
  json layers = json::array();
  for (std::size_t i = 0; i < img->manifest.layers.size(); ++i) {
    auto& l = img->manifest.layers[i];
    json layer = {{"digest", l.digest.str()}, {"mediaType", l.media_type}, {"size", l.size},
                  {"diff_id", img->config.diff_ids.at(i).str()}};
    if (auto rec = cas::read_tree_record(os->store, l.digest)) {
      layer["entries"] = rec->entries;
      layer["census"] = {{"uids", rec->uids}, {"gids", rec->gids}};
    }
    layers.push_back(layer);
  }
  json out = {{"name", ref->name ? json(ref->name->str()) : json(nullptr)},
              {"digest", ref->manifest.digest.str()},
              {"mediaType", ref->manifest.media_type},
              {"config", config},
              {"layers", layers}};
  if (as_json) {
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  auto field = [&](const char* k) -> std::string {
    if (!config.contains("config") || !config["config"].contains(k)) return "";
    return config["config"][k].dump();
  };
  std::printf("Name:       %s\n", ref->name ? ref->name->str().c_str() : "<none>");
  std::printf("Digest:     %s\n", ref->manifest.digest.str().c_str());
  std::printf("Created:    %s\n", img->config.created.c_str());
  std::printf("Platform:   %s/%s\n", img->config.os.c_str(), img->config.architecture.c_str());
  for (const char* k : {"Entrypoint", "Cmd", "Env", "WorkingDir", "User"})
    if (auto v = field(k); !v.empty()) std::printf("%-11s %s\n", (std::string(k) + ":").c_str(), v.c_str());
  std::printf("Layers:\n");
  for (auto& l : layers) {
    std::string census;
    if (l.contains("census"))
      census = fmt::format("{} entries, uids {}, gids {}", l["entries"].get<std::uint64_t>(),
                           l["census"]["uids"].dump(), l["census"]["gids"].dump());
    std::printf("  %s  %10s  %s\n", l["digest"].get<std::string>().c_str(),
                sys::human_bytes(l["size"].get<std::uint64_t>()).c_str(), census.c_str());
  }
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

int print_gc(const cas::GcResult& g) {
  note(fmt::format("removed {} blobs and {} trees, freed {}", g.blobs_removed, g.trees_removed,
                   sys::human_bytes(g.bytes_freed)));
  return 0;
}

int run_rm(const std::vector<std::string>& images) {
  auto os = open_store(FileLock::Mode::exclusive);
  if (!os) return report(os.error());
  int rc = 0;
  for (auto& image : images) {
    auto removed = os->store.remove_refs(image);
    if (!removed) {
      rc = report(removed.error());
      continue;
    }
    for (auto& r : *removed)
      std::printf("removed %s %s\n", r.name ? r.name->str().c_str() : "<none>", r.manifest.digest.str().c_str());
  }
  auto g = cas::gc(os->store);
  if (!g) return report(std::move(g.error()).context("freeing space"));
  print_gc(*g);
  return rc;
}

int run_gc() {
  auto os = open_store(FileLock::Mode::exclusive);
  if (!os) return report(os.error());
  auto g = cas::gc(os->store);
  if (!g) return report(g.error());
  return print_gc(*g);
}

int run_verify(const std::string& image) {
  auto os = open_store(FileLock::Mode::shared);
  if (!os) return report(os.error());
  auto problems = cas::verify(os->store, image);
  if (!problems) return report(problems.error());
  for (auto& p : *problems) std::printf("%s\n", p.c_str());
  if (!problems->empty()) {
    std::fprintf(stderr, "pod: verify: %zu problem%s found\n", problems->size(), problems->size() == 1 ? "" : "s");
    return 1;
  }
  note(image.empty() ? "the store is intact" : fmt::format("{} is intact", image));
  return 0;
}

}  // namespace

void add_image_commands(CLI::App& app) {
  auto* image = app.add_subcommand("image", "images in the store");
  image->require_subcommand(1);

  static ImportArgs ia;
  auto* imp = image->add_subcommand("import", "import an image archive or directory; prints its digest");
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

  static bool list_json = false;
  auto* list = image->add_subcommand("list", "list images: name, digest, size, created");
  list->alias("ls");
  list->add_flag("--json", list_json, "one JSON document");
  list->callback([] { chosen_action() = [] { return run_list(list_json); }; });

  static std::string inspect_image;
  static bool inspect_json = false;
  auto* insp = image->add_subcommand("inspect", "config, layers, and the ids each layer's files use");
  insp->add_option("IMAGE", inspect_image, "name[:tag], digest or unique digest prefix")->required();
  insp->add_flag("--json", inspect_json, "one JSON document");
  insp->callback([] { chosen_action() = [] { return run_inspect(inspect_image, inspect_json); }; });

  static std::string export_image, export_file, export_format = "oci-archive";
  auto* exp = image->add_subcommand("export", "write an image as an archive, owners as the image says");
  exp->add_option("IMAGE", export_image)->required();
  exp->add_option("FILE", export_file)->required();
  exp->add_option("--format", export_format, "oci-archive or docker-archive")->capture_default_str();
  exp->callback([] { chosen_action() = [] { return run_export(export_image, export_file, export_format); }; });

  static std::vector<std::string> rm_images;
  auto* rm = image->add_subcommand("rm", "remove images, then what nothing else references");
  rm->add_option("IMAGE", rm_images)->required();
  rm->callback([] { chosen_action() = [] { return run_rm(rm_images); }; });

  auto* gc = image->add_subcommand("gc", "remove blobs and trees no image references");
  gc->callback([] { chosen_action() = [] { return run_gc(); }; });

  static std::string verify_image;
  auto* ver = image->add_subcommand("verify", "re-hash blobs and check trees; exit 1 naming what is damaged");
  ver->add_option("IMAGE", verify_image);
  ver->callback([] { chosen_action() = [] { return run_verify(verify_image); }; });

  add_fetch_command(*image);
}

}  // namespace pod::cmd
