// SHA-256 content digests, "sha256:<64 lowercase hex>".
#pragma once

#include <compare>
#include <memory>
#include <string>
#include <string_view>

#include "pod/sys/error.hpp"

namespace pod::cas {

using sys::Result;

struct Digest {
  std::string hex;  // 64 lowercase hex digits

  [[nodiscard]] std::string str() const { return "sha256:" + hex; }
  [[nodiscard]] std::string short_str() const { return "sha256:" + hex.substr(0, 12); }
  // Accepts only "sha256:" and 64 lowercase hex digits; anything else is EINVAL.
  [[nodiscard]] static Result<Digest> parse(std::string_view text);
  [[nodiscard]] static bool valid_hex(std::string_view hex);
  auto operator<=>(const Digest&) const = default;
};

// Streaming SHA-256 (OpenSSL EVP).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(const void* data, std::size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  [[nodiscard]] Digest finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

[[nodiscard]] Digest sha256_of(std::string_view data);

}  // namespace pod::cas
