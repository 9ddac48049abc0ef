// CNI, as the specification says: each plugin of the config list run with CNI_COMMAND,
// CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME and CNI_PATH in its environment and its
// configuration (name, cniVersion, prevResult, runtimeConfig) on stdin; ADD in the
// list's order chaining each result into the next, DEL in reverse with the ADD result.
#include <linux/magic.h>
#include <net/if.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <thread>

#include <nlohmann/json.hpp>

#include "pod/runtime/net.hpp"

namespace pod::runtime::detail {

namespace {

using json = nlohmann::json;

struct ConfigList {
  std::string name, version;
  std::vector<json> plugins;
  bool pod_masquerade = false;  // "podMasquerade": pod masquerades the bridges' subnets
};

sys::Result<ConfigList> parse_list(const std::string& text, const std::string& network) {
  json j = json::parse(text, nullptr, false);
  auto bad = [&](std::string_view why) { return sys::make_error(EINVAL, "CNI config list '{}': {}", network, why); };
  if (j.is_discarded() || !j.is_object()) return bad("is not a JSON object");
  ConfigList l;
  if (!j.contains("name") || !j["name"].is_string()) return bad("has no \"name\"");
  if (!j.contains("cniVersion") || !j["cniVersion"].is_string()) return bad("has no \"cniVersion\"");
  if (!j.contains("plugins") || !j["plugins"].is_array() || j["plugins"].empty()) return bad("has no \"plugins\"");
  l.name = j["name"].get<std::string>();
  l.version = j["cniVersion"].get<std::string>();
  if (j.contains("podMasquerade")) {
    if (!j["podMasquerade"].is_boolean()) return bad("\"podMasquerade\" is not true or false");
    l.pod_masquerade = j["podMasquerade"].get<bool>();
  }
  for (auto& p : j["plugins"]) {
    if (!p.is_object() || !p.contains("type") || !p["type"].is_string()) return bad("a plugin has no \"type\"");
    std::string type = p["type"].get<std::string>();
    if (type.empty() || type.find('/') != std::string::npos || type.starts_with('.'))
      return bad(fmt::format("plugin type '{}' is not a plain name", type));
    l.plugins.push_back(p);
  }
  return l;
}

// runtimeConfig for the capabilities a plugin declares.
json runtime_config(const json& plugin, const NetRecord& rec) {
  json rc = json::object();
  if (!plugin.contains("capabilities") || !plugin["capabilities"].is_object()) return rc;
  const json& caps = plugin["capabilities"];
  if (caps.value("portMappings", false) && !rec.ports.empty()) {
    json pm = json::array();
    for (const auto& s : rec.ports) {
      auto p = parse_port(s);
      if (!p) continue;
      pm.push_back({{"hostPort", p->host_port}, {"containerPort", p->pod_port}, {"protocol", p->proto},
                    {"hostIP", p->host_addr}});
    }
    rc["portMappings"] = pm;
  }
  if (caps.value("bandwidth", false) && !rec.rate.empty()) {
    auto r = parse_rate(rec.rate);
    if (r) {
      std::uint64_t burst_bits = r->burst_bytes * 8;
      rc["bandwidth"] = {{"ingressRate", r->bits_per_second}, {"ingressBurst", burst_bits},
                         {"egressRate", r->bits_per_second}, {"egressBurst", burst_bits}};
    }
  }
  return rc;
}

// portmap with no --port and bandwidth with no --net-rate (nor rates of its own) pass
// the previous result on unchanged, at the price of a process for ADD and one for DEL:
// such a plugin is left out of the list as used, and DEL follows that list.
bool idle_plugin(const json& plugin, const NetRecord& rec) {
  std::string type = plugin["type"].get<std::string>();
  if (type == "portmap") return rec.ports.empty();
  if (type == "bandwidth")
    return rec.rate.empty() && !plugin.contains("ingressRate") && !plugin.contains("egressRate");
  return false;
}

// The IPv4 subnets of a bridge plugin's host-local or static IPAM ("ranges" or the
// older "subnet"), for pod's masquerade.
std::vector<std::string> bridge_subnets(const json& plugin) {
  std::vector<std::string> out;
  if (!plugin.contains("ipam") || !plugin["ipam"].is_object()) return out;
  const json& ipam = plugin["ipam"];
  auto take = [&](const json& o) {
    if (o.is_object() && o.contains("subnet") && o["subnet"].is_string()) {
      std::string sn = o["subnet"].get<std::string>();
      if (sn.find(':') == std::string::npos) out.push_back(sn);  // IPv6 ranges: not masqueraded
    }
  };
  take(ipam);
  if (ipam.contains("ranges") && ipam["ranges"].is_array())
    for (const auto& set : ipam["ranges"])
      if (set.is_array())
        for (const auto& r : set) take(r);
  return out;
}

std::string bridge_name(const json& plugin) { return plugin.value("bridge", std::string("cni0")); }

sys::Result<void> masquerade(const ConfigList& l) {
  if (!l.pod_masquerade) return {};
  for (const auto& p : l.plugins)
    if (p["type"] == "bridge") POD_TRY(ensure_masquerade(l.name, bridge_name(p), bridge_subnets(p)));
  return {};
}

// A plugin whose DEL needs the pod's namespace: all but those known to undo their host
// side by the container id or prevResult. The bridge plugin finds the addresses to stop
// masquerading (ipMasq) and its MAC spoof check's rules through the pod's interface,
// and skips both without the namespace.
bool del_needs_netns(const json& plugin) {
  std::string type = plugin["type"].get<std::string>();
  if (type == "portmap" || type == "bandwidth") return false;
  if (type != "bridge" || plugin.value("ipMasq", false) || plugin.value("macspoofchk", false)) return true;
  std::string ipam = plugin.contains("ipam") && plugin["ipam"].is_object() ? plugin["ipam"].value("type", "") : "";
  return !(ipam.empty() || ipam == "host-local" || ipam == "static");
}

std::string list_json(const ConfigList& l) {
  return json{{"cniVersion", l.version}, {"name", l.name}, {"plugins", l.plugins}}.dump(2);
}

sys::Result<std::string> plugin_path(const std::string& type) {
  std::string path = fmt::format("{}/{}", cni_plugin_dir(), type);
  if (::access(path.c_str(), X_OK) != 0)
    return sys::make_error(ENOENT, "CNI plugin '{}' is not installed in {} (Debian package containernetworking-plugins)",
                           type, cni_plugin_dir());
  return path;
}

// The plugin's error result ({"code", "msg", "details"}) or its output as text.
std::string plugin_error(const Output& o) {
  json j = json::parse(o.out, nullptr, false);
  if (j.is_object() && j.contains("msg") && j["msg"].is_string()) {
    std::string m = j["msg"].get<std::string>();
    if (j.contains("details") && j["details"].is_string() && !j["details"].get<std::string>().empty())
      m += ": " + j["details"].get<std::string>();
    return m;
  }
  std::string text = o.out + o.err;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.empty() ? fmt::format("exit status {}", o.code) : text;
}

sys::Result<json> invoke(const std::string& command, const ConfigList& l, const json& plugin,
                         const json* prev, const NetRecord& rec, const std::string& netns) {
  std::string type = plugin["type"].get<std::string>();
  std::string path = POD_TRY(plugin_path(type));
  json conf = plugin;
  conf["name"] = l.name;
  conf["cniVersion"] = l.version;
  if (prev) conf["prevResult"] = *prev;
  json rc = runtime_config(plugin, rec);
  if (!rc.empty()) conf["runtimeConfig"] = rc;
  std::vector<std::string> env = {kToolPath,
                                  "CNI_COMMAND=" + command,
                                  "CNI_CONTAINERID=" + rec.container_id,
                                  "CNI_NETNS=" + netns,
                                  "CNI_IFNAME=" + rec.ifname,
                                  fmt::format("CNI_PATH={}", cni_plugin_dir())};
  Output o = POD_TRY(run_with_input({path}, conf.dump(), env));
  if (o.code != 0)
    return sys::make_error(EIO, "CNI plugin '{}' ({} on network '{}'): {}", type, command, l.name, plugin_error(o));
  if (command != "ADD") return json();
  json result = json::parse(o.out, nullptr, false);
  if (result.is_discarded() || !result.is_object())
    return sys::make_error(EPROTO, "CNI plugin '{}' answered ADD with no JSON result", type);
  return result;
}

std::string first_ipv4(const json& result) {
  if (!result.contains("ips") || !result["ips"].is_array()) return "";
  for (const auto& ip : result["ips"]) {
    std::string a = ip.value("address", "");
    if (a.find('.') != std::string::npos) return a.substr(0, a.find('/'));
  }
  return "";
}

}  // namespace

sys::Result<void> cni_add(const NetRequest& req, NetRecord& rec, const PersistNet& persist) {
  ConfigList l = POD_TRY(parse_list(req.cni_config, req.network));
  for (const auto& p : l.plugins) POD_TRY(plugin_path(p["type"].get<std::string>()));
  std::erase_if(l.plugins, [&](const json& p) { return idle_plugin(p, rec); });
  if (l.plugins.empty()) return sys::make_error(EINVAL, "CNI config list '{}' has no plugin that sets up a network", l.name);
  rec.cni_config = list_json(l);
  rec.active = true;  // from here a DEL is owed, even if ADD fails half-way
  POD_TRY(persist(rec));
  // pod's masquerade (an iptables check, ~3 ms) beside the plugins: both are done
  // before any app runs, so the pod's first packets out are masqueraded.
  sys::Result<void> masq;
  std::thread masq_thread([&] { masq = masquerade(l); });
  json prev;
  auto add = [&]() -> sys::Result<void> {
    bool have_prev = false;
    for (const auto& p : l.plugins) {
      prev = POD_TRY(invoke("ADD", l, p, have_prev ? &prev : nullptr, rec, rec.netns));
      have_prev = true;
    }
    return {};
  };
  auto added = add();
  masq_thread.join();
  if (!added || !masq) {
    (void)cni_del(rec);
    return sys::Unexpected(std::move(!added ? added : masq).error());
  }
  rec.cni_result = prev.dump();
  rec.address = first_ipv4(prev);
  return persist(rec);
}

sys::Result<void> cni_del(NetRecord& rec) {
  if (rec.cni_config.empty()) return {};
  ConfigList l = POD_TRY(parse_list(rec.cni_config, rec.network));
  json prev = rec.cni_result.empty() ? json() : json::parse(rec.cni_result, nullptr, false);
  const json* prevp = prev.is_object() ? &prev : nullptr;
  // The namespace may be gone (a rootless pod's /proc path): DEL then goes without it.
  // (A bind mount already undone leaves a plain file, which is no namespace either.)
  struct statfs fs {};
  std::string netns = (!rec.netns.empty() && ::statfs(rec.netns.c_str(), &fs) == 0 && fs.f_type == NSFS_MAGIC)
                          ? rec.netns
                          : "";
  std::optional<sys::Error> first;
  for (auto it = l.plugins.rbegin(); it != l.plugins.rend(); ++it) {
    auto r = invoke("DEL", l, *it, prevp, rec, netns);
    if (!r && !first) first = std::move(r).error();
  }
  if (first) return sys::Unexpected(std::move(*first));
  return {};
}

bool cni_del_needs_netns(const NetRecord& rec) {
  auto l = parse_list(rec.cni_config, rec.network);
  return !l || std::any_of(l->plugins.begin(), l->plugins.end(), del_needs_netns);
}

sys::Result<void> await_host_links_gone(const NetRecord& rec) {
  json result = rec.cni_result.empty() ? json() : json::parse(rec.cni_result, nullptr, false);
  auto l = parse_list(rec.cni_config, rec.network);
  if (!result.is_object() || !result.contains("interfaces") || !result["interfaces"].is_array() || !l) return {};
  // The host's side: the result's interfaces outside the pod, but not the bridges.
  std::vector<std::string> links;
  for (const auto& i : result["interfaces"]) {
    if (!i.is_object() || i.contains("sandbox") || !i.contains("name") || !i["name"].is_string()) continue;
    std::string name = i["name"].get<std::string>();
    bool bridge = std::any_of(l->plugins.begin(), l->plugins.end(),
                              [&](const json& p) { return p["type"] == "bridge" && bridge_name(p) == name; });
    if (!bridge && !name.empty()) links.push_back(name);
  }
  auto present = [](const std::string& n) { return ::if_nametoindex(n.c_str()) != 0; };
  constexpr int kPolls = 500;  // 1 ms apart: the kernel takes ~10 ms here
  for (int i = 0; i < kPolls && std::any_of(links.begin(), links.end(), present); ++i) {
    timespec ts{0, 1000 * 1000};
    ::nanosleep(&ts, nullptr);
  }
  // Still there: something else holds the pod's namespace (an `nsenter` of the user's).
  // The link goes now, as DEL would have taken it, so its address is not in use twice.
  for (const auto& n : links) {
    if (!present(n)) continue;
    std::string ip = POD_TRY(find_tool("ip", "iproute2"));
    Output o = POD_TRY(run_with_input({ip, "link", "delete", n}, "", {kToolPath}));
    if (o.code != 0 && present(n))
      return sys::make_error(EIO, "removing the pod's host interface {}: {}", n, o.err + o.out);
  }
  return {};
}

}  // namespace pod::runtime::detail
