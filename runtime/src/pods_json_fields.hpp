// Typed reads of JSON fields that name the field when it is missing or malformed
// ("field 'apps[0].argv' is not a list of strings"), so a damaged record is reported,
// never thrown on.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pod/sys/error.hpp"

namespace pod::runtime::fields {

using json = nlohmann::json;

inline std::string join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

inline sys::Unexpected bad(const std::string& field, std::string_view why) {
  return sys::make_error(EINVAL, "field '{}' {}", field, why);
}

// The member, or nullptr when absent (and then an error if required).
inline sys::Result<const json*> member(const json& o, std::string_view key, const std::string& path, bool required) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) {
    if (required) return bad(join(path, key), "is missing");
    return nullptr;
  }
  return &*it;
}

inline sys::Result<void> read(const json& o, std::string_view key, const std::string& path, std::string& out,
                              bool required = false) {
  const json* j = POD_TRY(member(o, key, path, required));
  if (!j) return {};
  if (!j->is_string()) return bad(join(path, key), "is not a string");
  out = j->get<std::string>();
  return {};
}

inline sys::Result<void> read(const json& o, std::string_view key, const std::string& path, bool& out,
                              bool required = false) {
  const json* j = POD_TRY(member(o, key, path, required));
  if (!j) return {};
  if (!j->is_boolean()) return bad(join(path, key), "is not true or false");
  out = j->get<bool>();
  return {};
}

// An integer in [lo, hi].
template <class T>
sys::Result<void> read_int(const json& o, std::string_view key, const std::string& path, T& out, std::int64_t lo,
                           std::uint64_t hi, bool required = false) {
  const json* j = POD_TRY(member(o, key, path, required));
  if (!j) return {};
  bool ok = false;
  if (j->is_number_unsigned()) {
    std::uint64_t v = j->get<std::uint64_t>();
    ok = v <= hi && (lo <= 0 || v >= static_cast<std::uint64_t>(lo));
    if (ok) out = static_cast<T>(j->get<std::uint64_t>());
  } else if (j->is_number_integer()) {
    std::int64_t v = j->get<std::int64_t>();
    ok = v >= lo && (v < 0 || static_cast<std::uint64_t>(v) <= hi);
    if (ok) out = static_cast<T>(v);
  }
  if (!ok) return bad(join(path, key), fmt::format("is not an integer from {} to {}", lo, hi));
  return {};
}

inline sys::Result<void> read(const json& o, std::string_view key, const std::string& path,
                              std::vector<std::string>& out, bool required = false) {
  const json* j = POD_TRY(member(o, key, path, required));
  if (!j) return {};
  if (!j->is_array()) return bad(join(path, key), "is not a list of strings");
  out.clear();
  for (std::size_t i = 0; i < j->size(); ++i) {
    if (!(*j)[i].is_string()) return bad(fmt::format("{}[{}]", join(path, key), i), "is not a string");
    out.push_back((*j)[i].get<std::string>());
  }
  return {};
}

// An array member, each element handed to `each(element, "path[i]")`.
template <class F>
sys::Result<void> each(const json& o, std::string_view key, const std::string& path, bool required, F&& f) {
  const json* j = POD_TRY(member(o, key, path, required));
  if (!j) return {};
  if (!j->is_array()) return bad(join(path, key), "is not a list");
  for (std::size_t i = 0; i < j->size(); ++i) POD_TRY(f((*j)[i], fmt::format("{}[{}]", join(path, key), i)));
  return {};
}

}  // namespace pod::runtime::fields
