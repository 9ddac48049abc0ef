// The OCI distribution API v2: references, credentials, challenges, and a client that
// gets manifests and blobs from one repository (libcurl, HTTP/1.1 and HTTPS).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pod/cas/digest.hpp"
#include "pod/cas/limits.hpp"

namespace pod::cas {

// docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX], or http://… for a plain-HTTP registry.
struct RegistryRef {
  std::string host;        // "registry.example:5000", as written
  std::string repository;  // "library/busybox"
  std::string tag;         // empty when by digest
  std::optional<Digest> digest;
  bool plain_http = false;  // written as http://

  // Where the API is: HOST, but registry-1.docker.io for docker.io.
  [[nodiscard]] std::string endpoint() const { return host == "docker.io" ? "registry-1.docker.io" : host; }
  // "TAG" or "sha256:…": what /v2/REPO/manifests/ takes.
  [[nodiscard]] std::string reference() const { return digest ? digest->str() : tag; }
  // "HOST/REPO:TAG" or "HOST/REPO@sha256:…".
  [[nodiscard]] std::string str() const;
};

// A reference without a scheme ("busybox:latest") is refused naming the form to use.
[[nodiscard]] Result<RegistryRef> parse_registry_ref(std::string_view text);

struct Credentials {
  std::string username, password;
};

// The entry for `host` in a containers-auth.json / Docker config.json text:
// {"auths": {"HOST": {"auth": base64("user:password")}}}. Keys may carry a scheme
// and a path ("https://host/v1/"). nullopt: no entry for host.
[[nodiscard]] Result<std::optional<Credentials>> credentials_from_auth_json(std::string_view text,
                                                                            std::string_view host);

// `authfile` when given (it must be readable), else the first default location that
// names host: $XDG_RUNTIME_DIR/containers/auth.json, then ~/.docker/config.json.
[[nodiscard]] Result<std::optional<Credentials>> find_credentials(const std::string& authfile, std::string_view host);

// One WWW-Authenticate challenge: `Bearer realm="…",service="…",scope="…"`.
struct Challenge {
  std::string scheme;                         // lowercase: "bearer", "basic"
  std::map<std::string, std::string> params;  // keys lowercase
};
[[nodiscard]] Result<Challenge> parse_challenge(std::string_view header_value);

struct TlsOptions {
  bool verify = true;    // false: unverified TLS, and plain HTTP allowed
  std::string cert_dir;  // *.crt: extra CAs; client.cert + client.key: client certificate
};

struct RegistryOptions {
  TlsOptions tls;
  std::optional<Credentials> credentials;
  Warn warn;
};

// Receives a response body as it arrives; an error aborts the transfer at once.
using BodySink = std::function<Result<void>(const char* data, std::size_t n)>;

struct Response {
  long status = 0;
  std::string content_type;   // without parameters
  std::string docker_digest;  // Docker-Content-Digest, may be empty
  std::uint64_t bytes = 0;    // body bytes handed to the sink
};

class HttpSession;

// One repository of one registry; shared by the download threads (thread-safe). Each
// thread brings its own Connection.
class Registry {
 public:
  // Reaches GET /v2/ (https first; with tls.verify false also plain http) and says
  // clearly when the registry is not there or TLS fails.
  [[nodiscard]] static Result<std::unique_ptr<Registry>> connect(const RegistryRef& ref, RegistryOptions opts);
  ~Registry();

  // A connection for one thread (a libcurl handle, reused for keep-alive).
  class Connection {
   public:
    Connection(Connection&&) noexcept;
    ~Connection();

   private:
    friend class Registry;
    explicit Connection(std::unique_ptr<HttpSession> s);
    std::unique_ptr<HttpSession> session_;
  };
  [[nodiscard]] Result<Connection> connection() const;

  // GET /v2/REPO/manifests/REFERENCE with the Accept headers for OCI and Docker
  // schema 2 manifests and indexes. The body goes to the sink only for a 200.
  [[nodiscard]] Result<Response> get_manifest(Connection& c, std::string_view reference, const BodySink& sink);
  // GET /v2/REPO/blobs/DIGEST, redirects followed.
  [[nodiscard]] Result<Response> get_blob(Connection& c, const Digest& d, const BodySink& sink);

  // Set: transfers in progress stop with ECANCELED.
  void cancel() { cancelled_ = true; }
  [[nodiscard]] const RegistryRef& ref() const { return ref_; }
  [[nodiscard]] std::string base_url() const { return scheme_ + "://" + ref_.endpoint(); }

 private:
  Registry(RegistryRef ref, RegistryOptions opts) : ref_(std::move(ref)), opts_(std::move(opts)) {}
  [[nodiscard]] Result<Response> get(Connection& c, const std::string& path, std::string_view what,
                                     const std::vector<std::string>& accept, const BodySink& sink);
  [[nodiscard]] Result<void> authenticate(HttpSession& s, const std::vector<std::string>& challenges,
                                          const std::string& sent);
  [[nodiscard]] std::string auth_header();
  [[nodiscard]] std::string pull_scope() const { return "repository:" + ref_.repository + ":pull"; }

  RegistryRef ref_;
  RegistryOptions opts_;
  std::string scheme_ = "https";
  std::atomic<bool> cancelled_{false};
  std::mutex auth_mutex_;
  bool use_basic_ = false;
  std::map<std::string, std::string> tokens_;  // scope → bearer token
};

}  // namespace pod::cas
