// rkt's ACI: a tar (any compression) of `manifest` and `rootfs/`. The rootfs becomes one
// uncompressed layer written here; the ACI manifest becomes an OCI image config.
#include <algorithm>
#include <cctype>

#include "ingest_internal.hpp"

namespace pod::cas::detail {

using sys::make_error;

namespace {

struct WriterFree {
  void operator()(struct archive* a) const { archive_write_free(a); }
};

// archive_write's output: the staging blob, hashed as it is written.
struct Sink {
  BlobWriter* blob;
  std::optional<sys::Error> error;
};

la_ssize_t sink_write(struct archive* a, void* client, const void* buf, size_t n) {
  auto* s = static_cast<Sink*>(client);
  if (auto r = s->blob->write(buf, n); !r) {
    s->error = r.error();
    archive_set_error(a, r.error().code ? r.error().code : EIO, "%s", r.error().message.c_str());
    return -1;
  }
  return static_cast<la_ssize_t>(n);
}

Result<std::vector<std::pair<std::string, std::string>>> name_values(const json& j, const char* key,
                                                                      std::string_view what) {
  std::vector<std::pair<std::string, std::string>> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return make_error(EINVAL, "{}: '{}' is not an array", what, key);
  for (auto& v : *it) {
    if (!v.is_object()) return make_error(EINVAL, "{}: an entry of '{}' is not an object", what, key);
    auto n = v.find("name");
    auto val = v.find("value");
    if (n == v.end() || !n->is_string() || val == v.end() || !val->is_string())
      return make_error(EINVAL, "{}: an entry of '{}' lacks a string name or value", what, key);
    out.emplace_back(n->get<std::string>(), val->get<std::string>());
  }
  return out;
}

Result<std::string> opt_string(const json& j, const char* key, std::string_view what) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) return make_error(EINVAL, "{}: '{}' is not a string", what, key);
  return it->get<std::string>();
}

// ACI arch labels (appc spec, "os" and "arch" labels) to OCI's names.
std::pair<std::string, std::string> oci_arch(std::string_view aci) {
  if (aci == "i386") return {"386", ""};
  if (aci == "aarch64") return {"arm64", ""};
  if (aci == "armv7l" || aci == "armv7b") return {"arm", "v7"};
  if (aci == "armv6l") return {"arm", "v6"};
  return {std::string(aci), ""};
}

// Where the app's isolators go (the same name as runtime::kAciIsolatorsLabel, which
// cas cannot see).
constexpr std::string_view kIsolatorsLabel = "io.pod.aci.isolators";

struct AciImage {
  json config;              // OCI image config, without rootfs
  std::string source_name;  // "" when the ACI name is no valid image name
};

Result<AciImage> convert_manifest(std::string_view text, const IngestOptions& opts) {
  constexpr std::string_view what = "ACI manifest";
  json m = POD_TRY(parse_object(text, what));
  std::string kind = POD_TRY(opt_string(m, "acKind", what));
  if (kind != "ImageManifest") return make_error(EINVAL, "{}: acKind is '{}', not 'ImageManifest'", what, kind);
  std::string version = POD_TRY(opt_string(m, "acVersion", what));
  if (version.empty()) return make_error(EINVAL, "{} has no 'acVersion'", what);
  std::string name = POD_TRY(opt_string(m, "name", what));
  if (name.empty()) return make_error(EINVAL, "{} has no 'name'", what);
  auto labels = POD_TRY(name_values(m, "labels", what));
  auto annotations = POD_TRY(name_values(m, "annotations", what));

  std::string os = "linux", arch = opts.platform.architecture, variant, tag = "latest";
  json oci_labels = json::object();
  for (auto& [k, v] : annotations) oci_labels[k] = v;
  for (auto& [k, v] : labels) {
    oci_labels[k] = v;
    if (k == "os") os = v;
    else if (k == "arch") std::tie(arch, variant) = oci_arch(v);
    else if (k == "version") tag = v;
  }
  if (oci_labels.contains(std::string(kIsolatorsLabel)))
    return make_error(EINVAL, "{}: label or annotation '{}' is pod's own (the app's isolators go there)", what,
                      kIsolatorsLabel);
  json cfg = {{"architecture", arch}, {"os", os}};
  if (!variant.empty()) cfg["variant"] = variant;
  json c = json::object();
  if (auto app = m.find("app"); app != m.end() && !app->is_null()) {
    constexpr std::string_view awhat = "ACI manifest app";
    if (!app->is_object()) return make_error(EINVAL, "{} is not an object", awhat);
    if (auto ex = app->find("exec"); ex != app->end() && !ex->is_null()) {
      if (!ex->is_array() || !std::all_of(ex->begin(), ex->end(), [](auto& s) { return s.is_string(); }))
        return make_error(EINVAL, "{}: 'exec' is not an array of strings", awhat);
      c["Entrypoint"] = *ex;
    }
    std::string user = POD_TRY(opt_string(*app, "user", awhat));
    std::string group = POD_TRY(opt_string(*app, "group", awhat));
    if (!user.empty()) c["User"] = group.empty() ? user : user + ":" + group;
    std::string wd = POD_TRY(opt_string(*app, "workingDirectory", awhat));
    if (!wd.empty()) c["WorkingDir"] = wd;
    auto env = POD_TRY(name_values(*app, "environment", awhat));
    if (!env.empty()) {
      c["Env"] = json::array();
      for (auto& [k, v] : env) c["Env"].push_back(k + "=" + v);
    }
    if (auto iso = app->find("isolators"); iso != app->end() && !iso->is_null()) {
      if (!iso->is_array()) return make_error(EINVAL, "{}: 'isolators' is not an array", awhat);
      std::string kept = opts.aci_isolators ? POD_TRY_CTX(opts.aci_isolators(iso->dump()), "ACI '{}'", name)
                                            : iso->dump();
      // Labels are strings: OCI tools keep the array as it is.
      if (!kept.empty()) oci_labels[std::string(kIsolatorsLabel)] = kept;
    }
  }
  if (!oci_labels.empty()) c["Labels"] = oci_labels;
  cfg["config"] = c;
  cfg["history"] = json::array({{{"created_by", "pod image import (ACI " + name + ")"}}});

  AciImage out{cfg, ""};
  // AC names allow what image names do not ('~', upper case); versions may hold '+'.
  std::string lower = name;
  for (char& ch : lower) {
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '/' && ch != '-') ch = '-';
  }
  for (char& ch : tag)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-') ch = '_';
  if (auto n = ImageName::parse(lower + ":" + tag)) out.source_name = n->str();
  else if (opts.warn)
    opts.warn(fmt::format("ACI name '{}:{}' is not a valid image name; give one with --name", name, tag));
  return out;
}

// Copies the current entry's data to the writer, counting toward the layer limit.
Result<void> copy_data(struct archive* in, struct archive* out, std::uint64_t& total, std::uint64_t limit) {
  std::array<char, 1 << 16> buf;
  for (;;) {
    la_ssize_t n = archive_read_data(in, buf.data(), buf.size());
    if (n < 0) return make_error(EINVAL, "truncated or corrupt archive: {}", archive_message(in));
    if (n == 0) return {};
    total += static_cast<std::uint64_t>(n);
    if (total > limit) return make_error(EFBIG, "rootfs is larger than the limit of {} bytes", limit);
    if (archive_write_data(out, buf.data(), static_cast<std::size_t>(n)) != n)
      return make_error(EIO, "writing the layer: {}", archive_message(out));
  }
}

}  // namespace

Result<IngestedImage> ingest_aci(FdRef file, const IngestOptions& opts, FdRef staging) {
  ArchiveReader in = POD_TRY(open_tar(file));
  BlobWriter blob = POD_TRY(BlobWriter::create(staging));
  Sink sink{&blob, std::nullopt};
  std::unique_ptr<struct archive, WriterFree> out(archive_write_new());
  if (!out) return make_error(ENOMEM, "archive_write_new");
  // pax_restricted: ustar headers, pax extensions only where needed (long names, xattrs).
  if (archive_write_set_format_pax_restricted(out.get()) != ARCHIVE_OK ||
      archive_write_add_filter_none(out.get()) != ARCHIVE_OK ||
      archive_write_open(out.get(), &sink, nullptr, sink_write, nullptr) != ARCHIVE_OK)
    return make_error(EIO, "starting the layer: {}", archive_message(out.get()));

  std::optional<std::string> manifest;
  std::uint64_t entries = 0, total = 0, dropped = 0;
  struct archive_entry* e = nullptr;
  while (POD_TRY(next_member(in.get(), &e))) {
    std::string name = member_name(archive_entry_pathname(e));
    if (name == "manifest" && archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e)) {
      manifest = POD_TRY_CTX(read_member(in.get(), opts.limits.max_json_bytes), "member 'manifest'");
      continue;
    }
    if (name != "rootfs" && !name.starts_with("rootfs/")) {
      ++dropped;
      POD_TRY_CTX(skip_member(in.get()), "member '{}'", name);
      continue;
    }
    if (++entries > opts.limits.max_entries)
      return make_error(EINVAL, "rootfs has too many entries (more than {})", opts.limits.max_entries);
    if (name == "rootfs" && archive_entry_filetype(e) != AE_IFDIR)
      return make_error(EINVAL, "member 'rootfs' is not a directory");
    std::string out_name = name == "rootfs" ? "./" : name.substr(7);
    if (archive_entry_filetype(e) == AE_IFDIR && out_name != "./") out_name += "/";
    if (const char* h = archive_entry_hardlink(e)) {
      std::string target = member_name(h);
      if (!target.starts_with("rootfs/"))
        return make_error(EINVAL, "member '{}': hard link to '{}', outside rootfs/", name, target);
      archive_entry_copy_hardlink(e, target.substr(7).c_str());
      archive_entry_set_size(e, 0);
    }
    archive_entry_copy_pathname(e, out_name.c_str());
    // Reproducible layers: no access or change times; holes come back as zeros.
    archive_entry_unset_atime(e);
    archive_entry_unset_ctime(e);
    archive_entry_unset_birthtime(e);
    archive_entry_sparse_clear(e);
    if (archive_write_header(out.get(), e) < ARCHIVE_WARN) {
      if (sink.error) return sys::Unexpected(std::move(*sink.error).context("member '{}'", name));
      return make_error(EINVAL, "member '{}': {}", name, archive_message(out.get()));
    }
    if (archive_entry_size(e) > 0) {
      auto r = copy_data(in.get(), out.get(), total, opts.limits.max_layer_bytes);
      if (!r) {
        if (sink.error) return sys::Unexpected(std::move(*sink.error).context("member '{}'", name));
        return sys::Unexpected(std::move(r).error().context("member '{}'", name));
      }
    }
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK) {
    if (sink.error) return sys::Unexpected(std::move(*sink.error).context("finishing the layer"));
    return make_error(EIO, "finishing the layer: {}", archive_message(out.get()));
  }
  if (!manifest) return make_error(EINVAL, "not an ACI: no 'manifest' member");
  if (entries == 0) return make_error(EINVAL, "not an ACI: no 'rootfs/' entries");
  if (dropped > 0 && opts.warn)
    opts.warn(fmt::format("ACI: dropped {} member(s) outside rootfs/ other than 'manifest'", dropped));

  // The manifest is checked before the layer gets a name in staging.
  AciImage img = POD_TRY(convert_manifest(*manifest, opts));
  StagedBlob layer = POD_TRY_CTX(blob.commit(), "staging the layer");
  img.config["rootfs"] = {{"type", "layers"}, {"diff_ids", json::array({layer.digest.str()})}};
  Descriptor ld{std::string(media::kOciLayer), layer.digest, layer.size, {}, {}};
  Descriptor man = POD_TRY(stage_image(staging, img.config.dump(), {ld}));
  return IngestedImage{Format::aci, man, img.source_name};
}

}  // namespace pod::cas::detail
