// The registry client: GETs of /v2/ paths with the auth dance (basic, or bearer tokens
// cached per scope and renewed on 401) and one clear error per bad status.
#include "pod/cas/registry.hpp"

#include <cctype>

#include <nlohmann/json.hpp>

#include "pod/cas/oci.hpp"
#include "registry_http.hpp"

namespace pod::cas {

using detail::HttpResult;
using json = nlohmann::json;
using sys::make_error;

namespace {

constexpr std::size_t kTokenLimit = 1 << 20;

std::string base64_encode(std::string_view in) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string url_escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out.push_back(static_cast<char>(c));
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

// The registry's own words for a failure: {"errors":[{"code":…,"message":…}]}.
std::pair<std::string, std::string> registry_error(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("errors") || !j["errors"].is_array() || j["errors"].empty())
    return {};
  auto& e = j["errors"][0];
  if (!e.is_object()) return {};
  return {e.value("code", ""), e.value("message", "")};
}

BodySink discard_up_to(std::size_t limit) {
  return [limit, seen = std::size_t{0}](const char*, std::size_t n) mutable -> Result<void> {
    seen += n;
    if (seen > limit) return make_error(EFBIG, "response larger than {} bytes", limit);
    return {};
  };
}

}  // namespace

Registry::Connection::Connection(std::unique_ptr<HttpSession> s) : session_(std::move(s)) {}
Registry::Connection::Connection(Connection&&) noexcept = default;
Registry::Connection::~Connection() = default;
Registry::~Registry() = default;

Result<Registry::Connection> Registry::connection() const {
  return Connection(POD_TRY(HttpSession::create(opts_.tls, &cancelled_)));
}

Result<std::unique_ptr<Registry>> Registry::connect(const RegistryRef& ref, RegistryOptions opts) {
  if (ref.plain_http && opts.tls.verify)
    return make_error(EINVAL, "http://{}: a plain-HTTP registry needs --tls-verify=false", ref.host);
  std::unique_ptr<Registry> reg(new Registry(ref, std::move(opts)));
  reg->scheme_ = ref.plain_http ? "http" : "https";
  Connection c = POD_TRY(reg->connection());
  auto ping = [&]() -> Result<HttpResult> {
    return c.session_->get(reg->base_url() + "/v2/", {}, discard_up_to(1 << 20));
  };
  auto r = ping();
  if (!r && reg->scheme_ == "https" && !reg->opts_.tls.verify && r.error().code == EPROTO) {
    // --tls-verify=false: a registry that speaks no TLS at all is reached over plain HTTP.
    reg->scheme_ = "http";
    auto plain = ping();
    if (!plain) return sys::Unexpected(std::move(r).error());
    if (reg->opts_.warn) reg->opts_.warn(fmt::format("{} does not speak TLS: using plain HTTP", ref.host));
    r = std::move(plain);
  }
  if (!r) return sys::Unexpected(std::move(r).error());
  if (r->status != 200 && r->status != 401)
    return make_error(EPROTO, "{}: GET /v2/ answered HTTP {}: not an OCI distribution registry", ref.host, r->status);
  return reg;
}

std::string Registry::auth_header() {
  std::lock_guard lock(auth_mutex_);
  if (use_basic_ && opts_.credentials)
    return "Authorization: Basic " + base64_encode(opts_.credentials->username + ":" + opts_.credentials->password);
  if (auto it = tokens_.find(pull_scope()); it != tokens_.end()) return "Authorization: Bearer " + it->second;
  return {};
}

Result<void> Registry::authenticate(HttpSession& s, const std::vector<std::string>& challenges,
                                    const std::string& sent) {
  std::optional<Challenge> bearer, basic;
  for (auto& text : challenges) {
    auto c = parse_challenge(text);
    if (!c) continue;
    if (c->scheme == "bearer" && !bearer) bearer = *c;
    if (c->scheme == "basic" && !basic) basic = *c;
  }
  std::lock_guard lock(auth_mutex_);
  const std::string scope = pull_scope();
  auto refused = [&](std::string_view why) {
    return make_error(EACCES, "{}: {} for scope {} (401 Unauthorized){}", ref_.host, why, scope,
                      opts_.credentials ? "" : "; give credentials with --authfile");
  };
  if (bearer) {
    // Another thread may have renewed the token since this request was sent.
    if (auto it = tokens_.find(scope); it != tokens_.end() && "Authorization: Bearer " + it->second != sent) return {};
    auto realm = bearer->params.find("realm");
    if (realm == bearer->params.end() ||
        !(realm->second.starts_with("https://") || realm->second.starts_with("http://")))
      return make_error(EPROTO, "{}: bearer challenge without an http(s) realm", ref_.host);
    // The scope asked is always this repository's pull: the challenge may name another.
    std::string url = realm->second + (realm->second.find('?') == std::string::npos ? "?" : "&");
    if (auto svc = bearer->params.find("service"); svc != bearer->params.end())
      url += "service=" + url_escape(svc->second) + "&";
    url += "scope=" + url_escape(scope);
    std::vector<std::string> headers;
    if (opts_.credentials)
      headers.push_back("Authorization: Basic " +
                        base64_encode(opts_.credentials->username + ":" + opts_.credentials->password));
    std::string body;
    HttpResult r = POD_TRY_CTX(s.get(url, headers,
                                     [&](const char* p, std::size_t n) -> Result<void> {
                                       if (body.size() + n > kTokenLimit)
                                         return make_error(EFBIG, "token response larger than {} bytes", kTokenLimit);
                                       body.append(p, n);
                                       return {};
                                     }),
                               "asking {} for a token", realm->second);
    if (r.status == 401 || r.status == 403)
      return make_error(EACCES, "{}: the token server {} refused scope {} (HTTP {}){}", ref_.host, realm->second, scope,
                        r.status, opts_.credentials ? "" : "; give credentials with --authfile");
    if (r.status != 200)
      return make_error(EPROTO, "{}: the token server {} answered HTTP {}", ref_.host, realm->second, r.status);
    json j = json::parse(body, nullptr, false);
    std::string token;
    if (j.is_object()) {
      if (j.contains("token") && j["token"].is_string())
        token = j["token"];
      else if (j.contains("access_token") && j["access_token"].is_string())
        token = j["access_token"];
    }
    if (token.empty()) return make_error(EPROTO, "{}: the token server {} sent no token", ref_.host, realm->second);
    // A token just issued and refused again means the scope is not ours.
    if (sent == "Authorization: Bearer " + token) return refused("the registry refused a fresh token");
    tokens_[scope] = token;
    return {};
  }
  if (basic) {
    if (!opts_.credentials) return refused("authentication required");
    if (sent.starts_with("Authorization: Basic"))
      return refused(fmt::format("the credentials of '{}' were refused", opts_.credentials->username));
    use_basic_ = true;
    return {};
  }
  return refused("no challenge pod understands");
}

Result<Response> Registry::get(Connection& c, const std::string& path, std::string_view what,
                               const std::vector<std::string>& accept, const BodySink& sink) {
  std::string url = base_url() + path;
  for (int attempt = 0;; ++attempt) {
    std::vector<std::string> headers = accept;
    std::string sent = auth_header();
    if (!sent.empty()) headers.push_back(sent);
    HttpResult r = POD_TRY(c.session_->get(url, headers, sink));
    if (r.status >= 200 && r.status < 300) return Response{r.status, r.content_type, r.docker_digest, r.bytes};
    if (r.status == 401 && attempt < 2) {
      POD_TRY(authenticate(*c.session_, r.www_authenticate, sent));
      continue;
    }
    auto [code, message] = registry_error(r.error_body);
    std::string detail = code.empty() ? "" : " " + code;
    switch (r.status) {
      case 401:
        return make_error(EACCES, "{}: authentication failed for scope {} (401 Unauthorized{})", ref_.host,
                          pull_scope(), detail);
      case 403:
        return make_error(EACCES, "{}: access denied to scope {} (403 Forbidden{})", ref_.host, pull_scope(), detail);
      case 404:
        if (code == "NAME_UNKNOWN")
          return make_error(ENOENT, "{}: repository '{}' not found (404 NAME_UNKNOWN)", ref_.host, ref_.repository);
        return make_error(ENOENT, "{}: {} not found (404{})", ref_.host, what, detail);
      default:
        return make_error(EIO, "{}: GET {} answered HTTP {}{}{}", ref_.host, path, r.status, detail,
                          message.empty() ? "" : ": " + message);
    }
  }
}

Result<Response> Registry::get_manifest(Connection& c, std::string_view reference, const BodySink& sink) {
  std::string what = reference.starts_with("sha256:")
                         ? fmt::format("manifest {} in repository '{}'", reference, ref_.repository)
                         : fmt::format("tag '{}' in repository '{}'", reference, ref_.repository);
  std::vector<std::string> accept{fmt::format("Accept: {}, {}, {}, {}", media::kOciManifest, media::kOciIndex,
                                              media::kDockerManifest, media::kDockerList)};
  return get(c, fmt::format("/v2/{}/manifests/{}", ref_.repository, reference), what, accept, sink);
}

Result<Response> Registry::get_blob(Connection& c, const Digest& d, const BodySink& sink) {
  return get(c, fmt::format("/v2/{}/blobs/{}", ref_.repository, d.str()),
             fmt::format("blob {} in repository '{}'", d.str(), ref_.repository), {}, sink);
}

}  // namespace pod::cas
