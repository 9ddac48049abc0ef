#include "registry_http.hpp"

#include "curl_api.hpp"

#include <curl/curl.h>
#include <dirent.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <mutex>
#include <optional>

#include "pod/sys/fs.hpp"

namespace pod::cas {

using detail::HttpResult;
using sys::make_error;

namespace {

// Loaded by HttpSession::create before any other use.
const CurlApi& curl() { return **curl_api(); }

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

struct Transfer {
  CURL* curl;
  const BodySink* sink;
  HttpResult* res;
  std::optional<sys::Error> sink_error;
  const std::atomic<bool>* cancel;
};

size_t on_body(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  size_t len = size * n;
  long code = 0;
  curl().easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  if (code < 200 || code >= 300) {
    // Error bodies are kept for their message, never handed on as content.
    if (t->res->error_body.size() < (64u << 10)) t->res->error_body.append(p, std::min<size_t>(len, 64u << 10));
    return len;
  }
  if (t->cancel && t->cancel->load()) {
    t->sink_error = sys::Error{ECANCELED, "cancelled"};
    return 0;
  }
  if (auto r = (*t->sink)(p, len); !r) {
    t->sink_error = std::move(r.error());
    return 0;  // not len: libcurl stops the transfer here, with CURLE_WRITE_ERROR
  }
  t->res->bytes += len;
  return len;
}

size_t on_header(char* p, size_t size, size_t n, void* ud) {
  auto* t = static_cast<Transfer*>(ud);
  std::string_view line = trim(std::string_view(p, size * n));
  if (line.starts_with("HTTP/")) {
    // A new response (after a redirect or a 100): forget the previous one's headers.
    t->res->content_type.clear();
    t->res->docker_digest.clear();
    t->res->www_authenticate.clear();
    return size * n;
  }
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name = lower(trim(line.substr(0, colon)));
  std::string_view value = trim(line.substr(colon + 1));
  if (name == "content-type") {
    auto semi = value.find(';');
    t->res->content_type = lower(trim(value.substr(0, semi)));
  } else if (name == "docker-content-digest") {
    t->res->docker_digest = std::string(value);
  } else if (name == "www-authenticate") {
    t->res->www_authenticate.emplace_back(value);
  }
  return size * n;
}

int on_progress(void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(ud);
  return t->cancel && t->cancel->load() ? 1 : 0;
}

std::string host_of(const std::string& url) {
  auto start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  auto end = url.find('/', start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

sys::Error transport_error(CURLcode rc, const char* errbuf, const std::string& url) {
  std::string why = errbuf && *errbuf ? errbuf : curl().easy_strerror(rc);
  std::string host = host_of(url);
  // TLS 1.3 servers refuse a client certificate after the handshake: at the first read.
  if ((rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR) && why.find("SSL") != std::string::npos)
    return {EPROTO, fmt::format("TLS with {} failed: {}", host, why)};
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
      return {ECONNREFUSED, fmt::format("cannot connect to {}: {} (is the registry listening?)", host, why)};
    case CURLE_COULDNT_RESOLVE_HOST:
      return {EHOSTUNREACH, fmt::format("cannot resolve {}: {}", host, why)};
    case CURLE_OPERATION_TIMEDOUT:
      return {ETIMEDOUT, fmt::format("{}: timed out: {}", host, why)};
    case CURLE_TOO_MANY_REDIRECTS:
      return {ELOOP, fmt::format("GET {}: redirect loop or more than {} redirects", url, detail::kMaxRedirects)};
    case CURLE_UNSUPPORTED_PROTOCOL:
      return {EPROTO, fmt::format("GET {}: redirected to a scheme other than http or https: {}", url, why)};
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_USE_SSL_FAILED:
      return {EPROTO, fmt::format("TLS with {} failed: {}", host, why)};
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
      return {EIO, fmt::format("{}: the connection dropped: {}", host, why)};
    default:
      return {EIO, fmt::format("GET {}: {}", url, why)};
  }
}

// The containers tools' cert-dir: every *.crt is a CA; X.cert with X.key a client pair.
struct CertDir {
  std::string cas;  // concatenated PEM
  std::string client_cert, client_key;
};

Result<CertDir> read_cert_dir(const std::string& path) {
  CertDir out;
  sys::Fd dir = POD_TRY_CTX(sys::open_dir(sys::FdRef::cwd(), path), "--cert-dir");
  int fd = ::dup(dir.get());
  if (fd < 0) return sys::sys_error("dup");
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return sys::sys_error("reading --cert-dir '{}'", path);
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (auto& n : names) {
    if (n.ends_with(".crt")) {
      out.cas += POD_TRY_CTX(sys::read_file(dir, n, 1 << 20), "--cert-dir '{}'", path);
      out.cas += "\n";
    } else if (n.ends_with(".cert") && out.client_cert.empty()) {
      std::string key = n.substr(0, n.size() - 5) + ".key";
      if (!sys::exists_at(dir, key))
        return make_error(ENOENT, "--cert-dir '{}': client certificate {} has no key {}", path, n, key);
      out.client_cert = path + "/" + n;
      out.client_key = path + "/" + key;
    }
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<HttpSession>> HttpSession::create(const TlsOptions& tls, const std::atomic<bool>* cancel) {
  POD_TRY(curl_api());
  static std::once_flag once;
  static CURLcode init_rc = CURLE_OK;
  std::call_once(once, [] { init_rc = curl().global_init(CURL_GLOBAL_DEFAULT); });
  if (init_rc != CURLE_OK) return make_error(EIO, "libcurl: {}", curl().easy_strerror(init_rc));
  std::unique_ptr<HttpSession> s(new HttpSession());
  CURL* c = curl().easy_init();
  if (!c) return make_error(ENOMEM, "curl_easy_init failed");
  s->curl_ = c;
  s->cancel_ = cancel;
  curl().easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl().easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl().easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl().easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl().easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl().easy_setopt(c, CURLOPT_MAXREDIRS, detail::kMaxRedirects);
  curl().easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled transfer (under 1 byte/s for a minute) fails instead of hanging.
  curl().easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl().easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl().easy_setopt(c, CURLOPT_USERAGENT, "pod/0.1");
  curl().easy_setopt(c, CURLOPT_SSL_VERIFYPEER, tls.verify ? 1L : 0L);
  curl().easy_setopt(c, CURLOPT_SSL_VERIFYHOST, tls.verify ? 2L : 0L);
  if (!tls.cert_dir.empty()) {
    CertDir cd = POD_TRY(read_cert_dir(tls.cert_dir));
    if (!cd.cas.empty()) {
      struct curl_blob blob {
        cd.cas.data(), cd.cas.size(), CURL_BLOB_COPY
      };
      curl().easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
      // The blob replaces the CA file; the system's CAs stay through the hashed dir.
      curl().easy_setopt(c, CURLOPT_CAPATH, "/etc/ssl/certs");
    }
    if (!cd.client_cert.empty()) {
      curl().easy_setopt(c, CURLOPT_SSLCERT, cd.client_cert.c_str());
      curl().easy_setopt(c, CURLOPT_SSLKEY, cd.client_key.c_str());
    }
  }
  return s;
}

HttpSession::~HttpSession() {
  if (curl_) curl().easy_cleanup(static_cast<CURL*>(curl_));
}

Result<HttpResult> HttpSession::get(const std::string& url, const std::vector<std::string>& headers,
                                    const BodySink& sink) {
  CURL* c = static_cast<CURL*>(curl_);
  HttpResult res;
  Transfer t{c, &sink, &res, std::nullopt, cancel_};
  std::array<char, CURL_ERROR_SIZE> errbuf{};
  struct curl_slist* list = nullptr;
  for (auto& h : headers) list = curl().slist_append(list, h.c_str());
  curl().easy_setopt(c, CURLOPT_URL, url.c_str());
  curl().easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl().easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl().easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf.data());
  curl().easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl().easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl().easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl().easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl().easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl().easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl().easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  CURLcode rc = curl().easy_perform(c);
  curl().easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  curl().easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  curl().slist_free_all(list);
  if (t.sink_error) return sys::Unexpected(std::move(*t.sink_error));
  if (rc == CURLE_ABORTED_BY_CALLBACK) return make_error(ECANCELED, "cancelled");
  if (rc != CURLE_OK) return sys::Unexpected(transport_error(rc, errbuf.data(), url));
  curl().easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res.status);
  return res;
}

}  // namespace pod::cas
