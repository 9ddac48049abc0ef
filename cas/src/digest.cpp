#include "pod/cas/digest.hpp"

#include <openssl/evp.h>

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
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Impl() { EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, std::size_t n) { EVP_DigestUpdate(impl_->ctx, data, n); }

Digest Sha256::finish() {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, md, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  Digest d;
  d.hex.reserve(64);
  for (unsigned i = 0; i < len; ++i) {
    d.hex.push_back(kHex[md[i] >> 4]);
    d.hex.push_back(kHex[md[i] & 15]);
  }
  EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
  return d;
}

Digest sha256_of(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

}  // namespace pod::cas
