// One libcurl easy handle doing GETs: headers collected per response, bodies of
// successful responses streamed to a sink, redirects followed (bounded, http/https).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pod/cas/registry.hpp"

namespace pod::cas::detail {

struct HttpResult {
  long status = 0;
  std::string content_type;  // lowercase, without parameters
  std::string docker_digest;
  std::vector<std::string> www_authenticate;
  std::string error_body;   // the body of a non-2xx response (first 64 KiB)
  std::uint64_t bytes = 0;  // body bytes the sink took
};

inline constexpr long kMaxRedirects = 10;

}  // namespace pod::cas::detail

namespace pod::cas {

class HttpSession {
 public:
  // `cancel`, when set, stops a transfer at its next callback.
  [[nodiscard]] static Result<std::unique_ptr<HttpSession>> create(const TlsOptions& tls,
                                                                   const std::atomic<bool>* cancel);
  ~HttpSession();
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  // A GET of url with extra header lines. A sink error aborts the transfer and is
  // returned as it is; transport failures get a message naming the host and reason.
  [[nodiscard]] Result<detail::HttpResult> get(const std::string& url, const std::vector<std::string>& headers,
                                               const BodySink& sink);

 private:
  HttpSession() = default;
  void* curl_ = nullptr;  // CURL*, kept out of the header
  const std::atomic<bool>* cancel_ = nullptr;
};

}  // namespace pod::cas
