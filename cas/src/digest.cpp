#include "pod/cas/digest.hpp"

// SHA256_* rather than EVP: the same assembly, without EVP's provider machinery, so a
// statically linked libcrypto adds only the hash to pod (EVP pulled in megabytes and
// thousands of relocations into every start). Deprecated in OpenSSL 3, not removed.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

namespace pod::cas {

bool Digest::valid_hex(std::string_view hex) {
  if (hex.size() != 64) return false;
  for (char c : hex)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Result<Digest> Digest::parse(std::string_view text) {
  constexpr std::string_view kPrefix = "sha256:";
  if (!text.starts_with(kPrefix)) {
    auto colon = text.find(':');
    if (colon != std::string_view::npos)
      return sys::make_error(EINVAL, "unsupported digest algorithm '{}'", text.substr(0, colon));
    return sys::make_error(EINVAL, "'{}' is not a digest (sha256:<64 hex digits>)", text);
  }
  std::string_view hex = text.substr(kPrefix.size());
  if (!valid_hex(hex))
    return sys::make_error(EINVAL, "'{}' is not a digest (sha256:<64 hex digits>)", text);
  return Digest{std::string(hex)};
}

struct Sha256::Impl {
  SHA256_CTX ctx;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) { SHA256_Init(&impl_->ctx); }
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, std::size_t n) { SHA256_Update(&impl_->ctx, data, n); }

Digest Sha256::finish() {
  unsigned char md[SHA256_DIGEST_LENGTH];
  const unsigned len = SHA256_DIGEST_LENGTH;
  SHA256_Final(md, &impl_->ctx);
  static constexpr char kHex[] = "0123456789abcdef";
  Digest d;
  d.hex.reserve(64);
  for (unsigned i = 0; i < len; ++i) {
    d.hex.push_back(kHex[md[i] >> 4]);
    d.hex.push_back(kHex[md[i] & 15]);
  }
  SHA256_Init(&impl_->ctx);
  return d;
}

Digest sha256_of(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

}  // namespace pod::cas
