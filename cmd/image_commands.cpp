// pod image list | inspect | rm | gc | verify (import, export and fetch: image_archive_commands.cpp)
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "context.hpp"
#include "pod/cas/import.hpp"
#include "pod/cas/maintain.hpp"
#include "pod/sys/fs.hpp"
#include "pod/sys/progress.hpp"

namespace pod::cmd {

using json = nlohmann::json;
using sys::FileLock;

namespace {

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

  add_image_archive_commands(*image);
}

}  // namespace pod::cmd
