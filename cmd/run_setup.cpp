#include "run_setup.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include "context.hpp"
#include "pod/idmap/census.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cmd {

namespace {

// The last path component of an image reference, without tag or digest, as a name.
std::string image_basename(std::string_view image) {
  if (auto at = image.find('@'); at != std::string_view::npos) image = image.substr(0, at);
  if (auto slash = image.rfind('/'); slash != std::string_view::npos) image = image.substr(slash + 1);
  if (auto colon = image.find(':'); colon != std::string_view::npos) image = image.substr(0, colon);
  std::string out;
  for (char c : image) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (ok) out += c;
    else if (!out.empty() && out.back() != '-') out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.size() > 40) out.resize(40);
  return out.empty() || image.starts_with("sha256") ? "pod" : out;
}

}  // namespace

std::string default_pod_name(std::string_view image, std::string_view uuid) {
  return image_basename(image) + "-" + std::string(uuid.substr(0, 8));
}

sys::Result<std::string> app_name(std::string_view image, std::size_t index, const std::vector<PlannedApp>& before) {
  std::string name = image_basename(image);
  for (const auto& p : before)
    if (p.app.name == name) return fmt::format("{}-{}", name, index + 1);
  return name;
}

sys::Result<runtime::Security> security_from_flags(const RunArgs& a) {
  runtime::Security s;
  if (!a.cap_retain.empty()) {
    for (const auto& c : a.cap_retain) s.caps.push_back(POD_TRY_CTX(runtime::parse_cap(c), "--cap-retain"));
  } else {
    s.caps = runtime::default_caps();
  }
  for (const auto& c : a.cap_remove) {
    int cap = POD_TRY_CTX(runtime::parse_cap(c), "--cap-remove");
    std::erase(s.caps, cap);
  }
  s.no_new_privs = a.no_new_privs;
  if (a.seccomp.empty() || a.seccomp == "default") {
    s.seccomp = runtime::Security::Seccomp::default_profile;
  } else if (a.seccomp == "unconfined") {
    s.seccomp = runtime::Security::Seccomp::unconfined;
  } else {
    s.seccomp = runtime::Security::Seccomp::file;
    // The profile itself, not its path: the app and `pod enter` load it from the record.
    auto text = sys::read_file(sys::FdRef::cwd(), a.seccomp, 1 << 20);
    if (!text)
      return sys::Unexpected(
          std::move(text).error().context("--seccomp '{}': not default, unconfined or a readable file", a.seccomp));
    s.seccomp_file = std::move(*text);
  }
  return s;
}

sys::Result<std::vector<VolumeArg>> parse_volumes(const std::vector<std::string>& specs) {
  std::vector<VolumeArg> out;
  for (const auto& spec : specs) {
    auto fail = [&](std::string_view why) { return sys::make_error(EINVAL, "--volume '{}': {}", spec, why); };
    std::vector<std::string> parts;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= spec.size(); ++i)
      if (i == spec.size() || spec[i] == ':') {
        parts.push_back(spec.substr(start, i - start));
        start = i + 1;
      }
    if (parts.size() < 2 || parts.size() > 3) return fail("expected SRC:DST[:OPTS]");
    VolumeArg v{parts[0], parts[1]};
    if (v.source.empty() || v.source[0] != '/') return fail("the source must be an absolute path");
    if (v.target.empty() || v.target[0] != '/') return fail("the target must be an absolute path inside the pod");
    if (parts.size() == 3) {
      std::string_view opts = parts[2];
      while (!opts.empty()) {
        auto comma = opts.find(',');
        std::string_view o = opts.substr(0, comma);
        if (o == "ro") v.read_only = true;
        else if (o == "idmap") v.idmap = true;
        else if (o == "chown") v.chown = true;
        else if (o == "acl") v.acl = true;
        else return fail(fmt::format("unknown option '{}' (ro, idmap, chown, acl)", o));
        opts = comma == std::string_view::npos ? "" : opts.substr(comma + 1);
      }
    }
    if (v.idmap + v.chown + v.acl > 1) return fail("idmap, chown and acl are three ways to the same end: choose one");
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<std::string> ImageLayers::layer_digests() const {
  std::vector<std::string> out;
  for (const auto& l : layers) out.push_back(l.digest);
  return out;
}

sys::Result<ImageLayers> load_layers(const cas::Store& store, std::string_view image) {
  auto ctx = [&](sys::Error e) { return std::move(e).context("image '{}'", image); };
  auto ref = store.resolve(image);
  if (!ref) {
    auto e = std::move(ref.error());
    return std::unexpected(std::move(e).context("image '{}' (import or fetch it first: pod image import|fetch)", image));
  }
  auto stored = cas::load_image(store, *ref);
  if (!stored) return std::unexpected(ctx(stored.error()));
  ImageLayers out;
  out.image = image;
  out.manifest_digest = ref->manifest.digest.str();
  auto app = runtime::parse_image_app(stored->config_json);
  if (!app) return std::unexpected(ctx(app.error()));
  out.app = std::move(*app);
  for (const auto& layer : stored->manifest.layers) {
    auto rec = cas::read_tree_record(store, layer.digest);
    if (!rec) return std::unexpected(ctx(rec.error()));
    auto tree = store.open_tree(layer.digest);
    if (!tree) return std::unexpected(ctx(tree.error()));
    auto root = sys::open_at(*tree, "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!root) return std::unexpected(ctx(root.error()));
    out.records.push_back(std::move(*rec));
    out.layers.push_back({std::move(*root), layer.digest.str()});
  }
  return out;
}

sys::Result<void> check_census(const ImageLayers& img, const PodMaps& maps) {
  idmap::RangeSet inner_uids, inner_gids;
  for (const auto& e : maps.host.uids.extents) inner_uids.add(e.inner, std::uint64_t{e.inner} + e.count);
  for (const auto& e : maps.host.gids.extents) inner_gids.add(e.inner, std::uint64_t{e.inner} + e.count);
  for (std::size_t i = 0; i < img.records.size(); ++i) {
    idmap::RangeSet bad_u, bad_g;
    for (auto u : img.records[i].uids)
      if (!inner_uids.contains(u)) bad_u.add(u, std::uint64_t{u} + 1);
    for (auto g : img.records[i].gids)
      if (!inner_gids.contains(g)) bad_g.add(g, std::uint64_t{g} + 1);
    if (bad_u.empty() && bad_g.empty()) continue;
    std::string path = "?";
    if (auto hit = idmap::find_owned_by(img.layers[i].root, ".", bad_u, bad_g); hit && *hit) path = **hit;
    bool uid = !bad_u.empty();
    return sys::make_error(ERANGE,
                           "image '{}': '/{}' in layer {} is owned by {} {}, outside the pod's {} map ({}); "
                           "give a larger map (--userns auto:size=N) or --userns keep",
                           img.image, path == "." ? "" : path, img.layers[i].digest, uid ? "uid" : "gid",
                           (uid ? bad_u : bad_g).intervals().front().start, uid ? "uid" : "gid",
                           (uid ? inner_uids : inner_gids).str());
  }
  return {};
}

ImageIds image_ids_of(const std::vector<ImageLayers>& images) {
  ImageIds ids;
  for (const auto& img : images)
    for (const auto& rec : img.records) {
      for (auto u : rec.uids) ids.uids.add(u, std::uint64_t{u} + 1);
      for (auto g : rec.gids) ids.gids.add(g, std::uint64_t{g} + 1);
    }
  return ids;
}

sys::Result<runtime::IdFiles> read_id_files(const ImageLayers& img) {
  runtime::IdFiles out;
  for (const char* name : {"etc/passwd", "etc/group"}) {
    std::string& text = std::string_view(name) == "etc/passwd" ? out.passwd : out.group;
    for (auto it = img.layers.rbegin(); it != img.layers.rend(); ++it) {
      auto fd = sys::open_in(it->root, name, O_RDONLY | O_NONBLOCK | O_NOCTTY, sys::Resolve::in_root);
      if (!fd) {
        if (fd.error().code == ENOENT) continue;
        break;  // a whiteout (a 0:0 device: ENXIO) or unreadable: the image has none
      }
      struct stat st {};
      if (::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode)) break;
      text = POD_TRY_CTX(sys::read_fd(*fd, 4 << 20), "reading the image's /{}", name);
      break;
    }
  }
  return out;
}

}  // namespace pod::cmd
