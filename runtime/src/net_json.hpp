// NetRecord in pod.json: the "net" object.
#pragma once

#include <nlohmann/json.hpp>

#include "pod/runtime/net.hpp"

namespace pod::runtime::detail {

[[nodiscard]] nlohmann::json net_to_json(const NetRecord& n);
// `o` is the record's "net" member; a record without one (older pods) has mode none.
[[nodiscard]] sys::Result<NetRecord> net_from_json(const nlohmann::json& o);

}  // namespace pod::runtime::detail
