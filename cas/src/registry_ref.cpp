// Registry references, auth files and WWW-Authenticate challenges: text only, no I/O
// but reading the auth file.
#include <cctype>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "pod/cas/oci.hpp"
#include "pod/cas/registry.hpp"
#include "pod/sys/fs.hpp"

namespace pod::cas {

using json = nlohmann::json;
using sys::make_error;

namespace {

constexpr std::string_view kForm = "docker://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]";

bool valid_host(std::string_view h) {
  if (h.empty()) return false;
  std::string_view name = h, port;
  if (h.front() == '[') {  // [IPv6]:port
    auto close = h.find(']');
    if (close == std::string_view::npos) return false;
    name = h.substr(1, close - 1);
    std::string_view rest = h.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || rest.size() == 1)) return false;
    if (!rest.empty()) port = rest.substr(1);
    for (char c : name)
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
  } else {
    auto colon = h.find(':');
    if (colon != std::string_view::npos) {
      name = h.substr(0, colon);
      port = h.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (name.empty()) return false;
    for (char c : name)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') return false;
  }
  if (port.size() > 5) return false;
  for (char c : port)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

Result<std::string> base64_decode(std::string_view in) {
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    int v = b64_value(c);
    if (v < 0) return make_error(EINVAL, "not base64");
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buf >> bits) & 0xff));
    }
  }
  return out;
}

// "https://host:5000/v1/" → "host:5000"; how Docker wrote keys for a long time.
std::string normalize_key(std::string_view k) {
  if (auto p = k.find("://"); p != std::string_view::npos) k.remove_prefix(p + 3);
  if (auto p = k.find('/'); p != std::string_view::npos) k = k.substr(0, p);
  return std::string(k);
}

}  // namespace

std::string RegistryRef::str() const {
  std::string s = host + "/" + repository;
  return digest ? s + "@" + digest->str() : s + ":" + tag;
}

Result<RegistryRef> parse_registry_ref(std::string_view text) {
  RegistryRef r;
  std::string_view rest = text;
  if (rest.starts_with("docker://")) {
    rest.remove_prefix(9);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
    r.plain_http = true;
  } else if (auto p = rest.find(':'); p != std::string_view::npos && rest.substr(p).starts_with("://")) {
    return make_error(EINVAL, "'{}': pod image fetch takes {} (for a local file use pod image import)", text, kForm);
  } else {
    return make_error(EINVAL, "'{}' names no registry: write {} (e.g. docker://docker.io/library/busybox:latest)", text,
                      kForm);
  }
  auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0)
    return make_error(EINVAL, "'{}' has no HOST/REPO: write {}", text, kForm);
  std::string_view host = rest.substr(0, slash);
  if (!valid_host(host)) return make_error(EINVAL, "'{}': '{}' is not a registry HOST[:PORT]", text, host);
  r.host = std::string(host);
  std::string_view repo = rest.substr(slash + 1);
  if (auto at = repo.find('@'); at != std::string_view::npos) {
    r.digest = POD_TRY_CTX(Digest::parse(repo.substr(at + 1)), "'{}'", text);
    repo = repo.substr(0, at);
  }
  auto last_slash = repo.rfind('/');
  auto colon = repo.rfind(':');
  if (colon != std::string_view::npos && (last_slash == std::string_view::npos || colon > last_slash)) {
    if (r.digest) return make_error(EINVAL, "'{}': give a tag or a digest, not both", text);
    r.tag = std::string(repo.substr(colon + 1));
    repo = repo.substr(0, colon);
  } else if (!r.digest) {
    r.tag = "latest";
  }
  if (repo.empty()) return make_error(EINVAL, "'{}' has no repository: write {}", text, kForm);
  // Docker Hub: one name for its hosts, and "library/" for official images.
  if (r.host == "docker.io" || r.host == "index.docker.io" || r.host == "registry-1.docker.io") {
    r.host = "docker.io";
    if (repo.find('/') == std::string_view::npos) r.repository = "library/";
  }
  r.repository += std::string(repo);
  // The name rules: "x" stands in for the host so no component is taken for a domain.
  auto check = ImageName::parse("x/" + r.repository + (r.tag.empty() ? "" : ":" + r.tag));
  if (!check) return make_error(EINVAL, "'{}': repository '{}' or tag '{}' is not valid", text, r.repository, r.tag);
  return r;
}

Result<std::optional<Credentials>> credentials_from_auth_json(std::string_view text, std::string_view host) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return make_error(EINVAL, "not a JSON object");
  auto auths = j.find("auths");
  if (auths == j.end()) return std::optional<Credentials>{};
  if (!auths->is_object()) return make_error(EINVAL, "'auths' is not an object");
  std::vector<std::string> hosts{std::string(host)};
  if (host == "docker.io") hosts.insert(hosts.end(), {"index.docker.io", "registry-1.docker.io"});
  for (auto& h : hosts) {
    for (auto& [key, entry] : auths->items()) {
      if (normalize_key(key) != h) continue;
      if (!entry.is_object()) return make_error(EINVAL, "auths entry '{}' is not an object", key);
      auto a = entry.find("auth");
      if (a == entry.end() || !a->is_string()) {
        if (entry.contains("username") && entry["username"].is_string() && entry.contains("password") &&
            entry["password"].is_string())
          return std::optional<Credentials>{Credentials{entry["username"], entry["password"]}};
        continue;  // an entry for a credential helper: not ours to read
      }
      std::string plain = POD_TRY_CTX(base64_decode(a->get<std::string>()), "auths entry '{}'", key);
      auto colon = plain.find(':');
      if (colon == std::string::npos) return make_error(EINVAL, "auths entry '{}': 'auth' is not user:password", key);
      return std::optional<Credentials>{Credentials{plain.substr(0, colon), plain.substr(colon + 1)}};
    }
  }
  return std::optional<Credentials>{};
}

Result<std::optional<Credentials>> find_credentials(const std::string& authfile, std::string_view host) {
  auto from = [&](const std::string& path) -> Result<std::optional<Credentials>> {
    std::string text = POD_TRY_CTX(sys::read_file(sys::FdRef::cwd(), path, 4 << 20), "auth file '{}'", path);
    return POD_TRY_CTX(credentials_from_auth_json(text, host), "auth file '{}'", path);
  };
  if (!authfile.empty()) return from(authfile);
  std::vector<std::string> paths;
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x)
    paths.push_back(std::string(x) + "/containers/auth.json");
  if (const char* h = std::getenv("HOME"); h && *h) paths.push_back(std::string(h) + "/.docker/config.json");
  for (auto& p : paths) {
    if (!sys::exists_at(sys::FdRef::cwd(), p)) continue;
    auto c = POD_TRY(from(p));
    if (c) return c;
  }
  return std::optional<Credentials>{};
}

Result<Challenge> parse_challenge(std::string_view v) {
  Challenge c;
  auto is_space = [](char ch) { return ch == ' ' || ch == '\t'; };
  std::size_t i = 0;
  while (i < v.size() && is_space(v[i])) ++i;
  std::size_t start = i;
  while (i < v.size() && !is_space(v[i])) ++i;
  for (char ch : v.substr(start, i - start))
    c.scheme.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
  if (c.scheme.empty()) return make_error(EINVAL, "WWW-Authenticate '{}' has no scheme", v);
  while (i < v.size()) {
    while (i < v.size() && (is_space(v[i]) || v[i] == ',')) ++i;
    if (i >= v.size()) break;
    std::size_t k = i;
    while (i < v.size() && v[i] != '=' && !is_space(v[i]) && v[i] != ',') ++i;
    std::string key;
    for (char ch : v.substr(k, i - k)) key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
    if (i >= v.size() || v[i] != '=')
      return make_error(EINVAL, "WWW-Authenticate '{}': parameter '{}' has no value", v, key);
    ++i;
    std::string value;
    if (i < v.size() && v[i] == '"') {
      ++i;
      bool closed = false;
      while (i < v.size()) {
        if (v[i] == '\\' && i + 1 < v.size()) {
          value.push_back(v[i + 1]);
          i += 2;
        } else if (v[i] == '"') {
          ++i;
          closed = true;
          break;
        } else {
          value.push_back(v[i++]);
        }
      }
      if (!closed) return make_error(EINVAL, "WWW-Authenticate '{}': unterminated quoted value", v);
    } else {
      while (i < v.size() && v[i] != ',' && !is_space(v[i])) value.push_back(v[i++]);
    }
    c.params[key] = value;
  }
  return c;
}

}  // namespace pod::cas
