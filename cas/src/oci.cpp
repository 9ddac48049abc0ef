#include "pod/cas/oci.hpp"

#include <sys/utsname.h>

#include <nlohmann/json.hpp>

namespace pod::cas {

using json = nlohmann::json;
using sys::make_error;

namespace media {
bool is_index(std::string_view m) { return m == kOciIndex || m == kDockerList; }
bool is_manifest(std::string_view m) { return m == kOciManifest || m == kDockerManifest; }
bool is_config(std::string_view m) { return m == kOciConfig || m == kDockerConfig; }
bool is_layer(std::string_view m) {
  return m == kOciLayer || m == kOciLayerGzip || m == kOciLayerZstd || m == kOciLayerNondist ||
         m == kOciLayerNondistGzip || m == kDockerLayer || m == kDockerLayerForeign;
}
}  // namespace media

std::string Platform::str() const {
  return variant.empty() ? os + "/" + architecture : os + "/" + architecture + "/" + variant;
}

Result<Platform> Platform::parse(std::string_view text) {
  Platform p;
  auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0)
    return make_error(EINVAL, "platform '{}' is not OS/ARCH[/VARIANT]", text);
  p.os = std::string(text.substr(0, slash));
  std::string_view rest = text.substr(slash + 1);
  auto slash2 = rest.find('/');
  p.architecture = std::string(rest.substr(0, slash2));
  if (slash2 != std::string_view::npos) p.variant = std::string(rest.substr(slash2 + 1));
  if (p.architecture.empty()) return make_error(EINVAL, "platform '{}' has no architecture", text);
  return p;
}

Platform Platform::host() {
  struct utsname u {};
  ::uname(&u);
  std::string_view m = u.machine;
  Platform p{"linux", std::string(m), ""};
  if (m == "x86_64") p.architecture = "amd64";
  else if (m == "aarch64") p.architecture = "arm64";
  else if (m == "i686" || m == "i386") p.architecture = "386";
  else if (m.starts_with("armv7")) p.architecture = "arm", p.variant = "v7";
  return p;
}

bool Platform::matches(const Platform& wanted) const {
  if (os != wanted.os || architecture != wanted.architecture) return false;
  return wanted.variant.empty() || variant.empty() || variant == wanted.variant;
}

namespace {

Result<json> parse_json(std::string_view text, std::string_view what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(EINVAL, "{} is not valid JSON", what);
  if (!j.is_object()) return make_error(EINVAL, "{} is not a JSON object", what);
  return j;
}

Result<std::string> get_string(const json& j, const char* key, std::string_view what, bool required = true) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) return make_error(EINVAL, "{} has no '{}'", what, key);
    return std::string();
  }
  if (!it->is_string()) return make_error(EINVAL, "{}: '{}' is not a string", what, key);
  return it->get<std::string>();
}

Result<Descriptor> descriptor_from(const json& j, std::string_view what) {
  if (!j.is_object()) return make_error(EINVAL, "{} is not an object", what);
  Descriptor d;
  d.media_type = POD_TRY(get_string(j, "mediaType", what));
  std::string digest = POD_TRY(get_string(j, "digest", what));
  d.digest = POD_TRY_CTX(Digest::parse(digest), "{}", what);
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_unsigned())
    return make_error(EINVAL, "{}: 'size' is missing or not a non-negative integer", what);
  d.size = size->get<std::uint64_t>();
  if (auto a = j.find("annotations"); a != j.end()) {
    if (!a->is_object()) return make_error(EINVAL, "{}: 'annotations' is not an object", what);
    for (auto& [k, v] : a->items()) {
      if (!v.is_string()) return make_error(EINVAL, "{}: annotation '{}' is not a string", what, k);
      d.annotations[k] = v.get<std::string>();
    }
  }
  if (auto p = j.find("platform"); p != j.end()) {
    if (!p->is_object()) return make_error(EINVAL, "{}: 'platform' is not an object", what);
    Platform pl;
    pl.os = POD_TRY(get_string(*p, "os", what));
    pl.architecture = POD_TRY(get_string(*p, "architecture", what));
    pl.variant = POD_TRY(get_string(*p, "variant", what, false));
    d.platform = pl;
  }
  return d;
}

json descriptor_to(const Descriptor& d) {
  json j = {{"mediaType", d.media_type}, {"digest", d.digest.str()}, {"size", d.size}};
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  if (d.platform) {
    j["platform"] = {{"os", d.platform->os}, {"architecture", d.platform->architecture}};
    if (!d.platform->variant.empty()) j["platform"]["variant"] = d.platform->variant;
  }
  return j;
}

}  // namespace

Result<Descriptor> parse_descriptor(std::string_view text) {
  json j = POD_TRY(parse_json(text, "descriptor"));
  return descriptor_from(j, "descriptor");
}

Result<Manifest> parse_manifest(std::string_view text) {
  json j = POD_TRY(parse_json(text, "manifest"));
  Manifest m;
  auto schema = j.find("schemaVersion");
  if (schema == j.end() || !schema->is_number_integer() || schema->get<int>() != 2)
    return make_error(EINVAL, "manifest: 'schemaVersion' is not 2");
  m.media_type = POD_TRY(get_string(j, "mediaType", "manifest", false));
  if (m.media_type.empty()) m.media_type = std::string(media::kOciManifest);
  if (!media::is_manifest(m.media_type))
    return make_error(EINVAL, "manifest: unknown media type '{}'", m.media_type);
  auto cfg = j.find("config");
  if (cfg == j.end()) return make_error(EINVAL, "manifest has no 'config'");
  m.config = POD_TRY(descriptor_from(*cfg, "manifest config"));
  if (!media::is_config(m.config.media_type))
    return make_error(EINVAL, "manifest config: unknown media type '{}'", m.config.media_type);
  auto layers = j.find("layers");
  if (layers == j.end() || !layers->is_array()) return make_error(EINVAL, "manifest: 'layers' is not an array");
  for (std::size_t i = 0; i < layers->size(); ++i) {
    auto what = fmt::format("manifest layer {}", i);
    Descriptor d = POD_TRY(descriptor_from((*layers)[i], what));
    if (!media::is_layer(d.media_type))
      return make_error(EINVAL, "{}: unknown media type '{}'", what, d.media_type);
    m.layers.push_back(std::move(d));
  }
  return m;
}

Result<Index> parse_index(std::string_view text) {
  json j = POD_TRY(parse_json(text, "index"));
  auto schema = j.find("schemaVersion");
  if (schema == j.end() || !schema->is_number_integer() || schema->get<int>() != 2)
    return make_error(EINVAL, "index: 'schemaVersion' is not 2");
  std::string mt = POD_TRY(get_string(j, "mediaType", "index", false));
  if (!mt.empty() && !media::is_index(mt)) return make_error(EINVAL, "index: unknown media type '{}'", mt);
  auto list = j.find("manifests");
  if (list == j.end() || !list->is_array()) return make_error(EINVAL, "index: 'manifests' is not an array");
  Index idx;
  for (std::size_t i = 0; i < list->size(); ++i)
    idx.manifests.push_back(POD_TRY(descriptor_from((*list)[i], fmt::format("index entry {}", i))));
  return idx;
}

Result<ImageConfig> parse_config(std::string_view text) {
  json j = POD_TRY(parse_json(text, "image config"));
  ImageConfig c;
  c.created = POD_TRY(get_string(j, "created", "image config", false));
  c.os = POD_TRY(get_string(j, "os", "image config", false));
  c.architecture = POD_TRY(get_string(j, "architecture", "image config", false));
  auto rootfs = j.find("rootfs");
  if (rootfs == j.end() || !rootfs->is_object()) return make_error(EINVAL, "image config has no 'rootfs'");
  auto ids = rootfs->find("diff_ids");
  if (ids == rootfs->end() || !ids->is_array())
    return make_error(EINVAL, "image config: 'rootfs.diff_ids' is not an array");
  for (auto& v : *ids) {
    if (!v.is_string()) return make_error(EINVAL, "image config: a diff_id is not a string");
    c.diff_ids.push_back(POD_TRY_CTX(Digest::parse(v.get<std::string>()), "image config diff_ids"));
  }
  return c;
}

std::string descriptor_json(const Descriptor& d) { return descriptor_to(d).dump(); }

std::string manifest_json(const Manifest& m) {
  json j = {{"schemaVersion", 2}, {"mediaType", m.media_type}, {"config", descriptor_to(m.config)}};
  j["layers"] = json::array();
  for (auto& l : m.layers) j["layers"].push_back(descriptor_to(l));
  return j.dump();
}

namespace {
bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool valid_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
  for (std::size_t i = 0; i < c.size(); ++i) {
    char ch = c[i];
    if (is_lower_alnum(ch)) continue;
    if (ch == '.' || ch == '-' || ch == '_') {
      // separators: '.', '_', '__', or runs of '-'; never two other separators in a row
      if (ch == '.' && !is_lower_alnum(c[i - 1])) return false;
      continue;
    }
    return false;
  }
  return true;
}

// A registry host, "registry.example.com" or "localhost:5000", as a first component.
bool valid_domain(std::string_view c) {
  auto colon = c.find(':');
  std::string_view host = c.substr(0, colon);
  if (host.empty() || host.front() == '-' || host.back() == '-' || host.front() == '.' || host.back() == '.' ||
      host.find("..") != std::string_view::npos)
    return false;
  for (char ch : host)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-') return false;
  if (colon == std::string_view::npos) return true;
  std::string_view port = c.substr(colon + 1);
  if (port.empty() || port.size() > 5) return false;
  return port.find_first_not_of("0123456789") == std::string_view::npos;
}

bool looks_like_domain(std::string_view c) {
  return c.find('.') != std::string_view::npos || c.find(':') != std::string_view::npos || c == "localhost";
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto ok = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'; };
  if (t.front() == '.' || t.front() == '-') return false;
  for (char c : t)
    if (!ok(c)) return false;
  return true;
}
}  // namespace

Result<ImageName> ImageName::parse(std::string_view text) {
  ImageName n;
  std::string_view name = text;
  auto first_slash = text.find('/');
  std::string_view domain;
  if (first_slash != std::string_view::npos && looks_like_domain(text.substr(0, first_slash))) {
    domain = text.substr(0, first_slash);
    if (!valid_domain(domain)) return make_error(EINVAL, "image name '{}': '{}' is not a registry host[:port]", text, domain);
  }
  auto slash = text.rfind('/');
  auto colon = text.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    n.tag = std::string(text.substr(colon + 1));
    name = text.substr(0, colon);
    if (!valid_tag(n.tag))
      return make_error(EINVAL, "image name '{}': tag '{}' is not [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}", text, n.tag);
  }
  if (name.empty() || name.size() > 255) return make_error(EINVAL, "image name '{}' is empty or too long", text);
  std::size_t i = domain.empty() ? 0 : domain.size() + 1;
  if (i >= name.size() && !domain.empty()) return make_error(EINVAL, "image name '{}' has no repository", text);
  while (i <= name.size()) {
    std::size_t j = name.find('/', i);
    if (j == std::string_view::npos) j = name.size();
    if (!valid_component(name.substr(i, j - i)))
      return make_error(EINVAL,
                        "image name '{}': '{}' must be lowercase letters and digits, "
                        "joined by '.', '_' or '-'",
                        text, name.substr(i, j - i));
    i = j + 1;
  }
  n.name = std::string(name);
  return n;
}

}  // namespace pod::cas
