#include "net_json.hpp"

#include "pods_json_fields.hpp"

namespace pod::runtime::detail {

using namespace fields;

json net_to_json(const NetRecord& n) {
  return {{"mode", n.mode},
          {"network", n.network},
          {"cni_config", n.cni_config},
          {"cni_result", n.cni_result},
          {"container_id", n.container_id},
          {"ifname", n.ifname},
          {"netns", n.netns},
          {"netns_bound", n.netns_bound},
          {"helper", n.helper},
          {"helper_pid", n.helper_pid},
          {"helper_start_time", n.helper_start_time},
          {"forwarder_pid", n.forwarder_pid},
          {"forwarder_start_time", n.forwarder_start_time},
          {"address", n.address},
          {"ports", n.ports},
          {"rate", n.rate},
          {"active", n.active}};
}

sys::Result<NetRecord> net_from_json(const json& o) {
  NetRecord n;
  const std::string path = "net";
  if (!o.is_object()) return bad(path, "is not an object");
  POD_TRY(read(o, "mode", path, n.mode));
  if (n.mode != "none" && n.mode != "host" && n.mode != "slirp" && n.mode != "bridge")
    return bad(join(path, "mode"), fmt::format("is '{}', not none, host, slirp or bridge", n.mode));
  POD_TRY(read(o, "network", path, n.network));
  POD_TRY(read(o, "cni_config", path, n.cni_config));
  POD_TRY(read(o, "cni_result", path, n.cni_result));
  POD_TRY(read(o, "container_id", path, n.container_id));
  POD_TRY(read(o, "ifname", path, n.ifname));
  POD_TRY(read(o, "netns", path, n.netns));
  POD_TRY(read(o, "netns_bound", path, n.netns_bound));
  if (n.netns_bound && !n.netns.starts_with('/')) return bad(join(path, "netns"), "is not an absolute path");
  POD_TRY(read(o, "helper", path, n.helper));
  if (!n.helper.empty() && n.helper != "pasta" && n.helper != "slirp4netns")
    return bad(join(path, "helper"), fmt::format("is '{}', not pasta or slirp4netns", n.helper));
  POD_TRY(read_int(o, "helper_pid", path, n.helper_pid, 0, INT32_MAX));
  POD_TRY(read_int(o, "helper_start_time", path, n.helper_start_time, 0, UINT64_MAX));
  POD_TRY(read_int(o, "forwarder_pid", path, n.forwarder_pid, 0, INT32_MAX));
  POD_TRY(read_int(o, "forwarder_start_time", path, n.forwarder_start_time, 0, UINT64_MAX));
  POD_TRY(read(o, "address", path, n.address));
  POD_TRY(read(o, "ports", path, n.ports));
  POD_TRY(read(o, "rate", path, n.rate));
  POD_TRY(read(o, "active", path, n.active));
  return n;
}

}  // namespace pod::runtime::detail
