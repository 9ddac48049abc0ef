#include "pod/runtime/image_config.hpp"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>

namespace pod::runtime {

namespace {

using nlohmann::json;

sys::Result<std::vector<std::string>> string_array(const json& obj, const char* key) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return sys::make_error(EINVAL, "image config: '{}' is not an array of strings", key);
  for (const auto& v : *it) {
    if (!v.is_string()) return sys::make_error(EINVAL, "image config: '{}' is not an array of strings", key);
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::optional<std::uint32_t> parse_id(std::string_view s) {
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty() || v == 0xffffffffu) return std::nullopt;
  return v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    auto pos = s.find(sep);
    out.push_back(s.substr(0, pos));
    if (pos == std::string_view::npos) return out;
    s.remove_prefix(pos + 1);
  }
}

// name:x:uid:gid:gecos:home:shell (passwd) or name:x:gid:members (group) lines.
std::optional<std::vector<std::string_view>> find_entry(std::string_view text, std::string_view key, std::size_t id_field,
                                                        std::size_t min_fields) {
  for (auto line : split(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    auto f = split(line, ':');
    if (f.size() < min_fields) continue;
    if (f[0] == key || f[id_field] == key) return f;
  }
  return std::nullopt;
}

void set_env(std::vector<std::string>& env, std::string_view kv) {
  auto key = kv.substr(0, kv.find('=') + 1);
  for (auto& e : env)
    if (std::string_view(e).starts_with(key)) {
      e = kv;
      return;
    }
  env.emplace_back(kv);
}

bool has_env(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& e : env)
    if (e.size() > key.size() && e.starts_with(key) && e[key.size()] == '=') return true;
  return false;
}

}  // namespace

sys::Result<ImageApp> parse_image_app(std::string_view config_json) {
  json doc = json::parse(config_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return sys::make_error(EINVAL, "image config is not a JSON object");
  ImageApp app;
  auto it = doc.find("config");
  if (it == doc.end() || it->is_null()) return app;
  if (!it->is_object()) return sys::make_error(EINVAL, "image config: 'config' is not an object");
  const json& c = *it;
  app.entrypoint = POD_TRY(string_array(c, "Entrypoint"));
  app.cmd = POD_TRY(string_array(c, "Cmd"));
  app.env = POD_TRY(string_array(c, "Env"));
  for (const auto& e : app.env)
    if (e.find('=') == std::string::npos || e.front() == '=')
      return sys::make_error(EINVAL, "image config: Env entry '{}' is not KEY=VALUE", e);
  for (const char* key : {"WorkingDir", "User"}) {
    auto f = c.find(key);
    if (f == c.end() || f->is_null()) continue;
    if (!f->is_string()) return sys::make_error(EINVAL, "image config: '{}' is not a string", key);
    (std::string_view(key) == "User" ? app.user : app.workdir) = f->get<std::string>();
  }
  if (auto labels = c.find("Labels"); labels != c.end() && labels->is_object()) {
    if (auto l = labels->find(std::string(kAciIsolatorsLabel)); l != labels->end()) {
      if (!l->is_string()) return sys::make_error(EINVAL, "image config: label '{}' is not a string", kAciIsolatorsLabel);
      auto parsed = parse_aci_isolators(l->get<std::string>());
      if (!parsed) return sys::Unexpected(std::move(parsed).error().context("image config: label '{}'", kAciIsolatorsLabel));
      app.isolators = std::move(parsed->isolators);
    }
  }
  return app;
}

sys::Result<App> resolve_app(const ImageApp& image, const AppOverrides& over, const IdFiles& ids) {
  App app;
  app.argv = image.entrypoint;
  const auto& cmd = over.cmd ? *over.cmd : image.cmd;
  app.argv.insert(app.argv.end(), cmd.begin(), cmd.end());
  if (app.argv.empty())
    return sys::make_error(EINVAL, "the image has no command (no Entrypoint or Cmd): give one after '--'");
  if (app.argv[0].empty()) return sys::make_error(EINVAL, "the command is an empty string");

  app.env = image.env;
  for (const auto& kv : over.env) {
    if (kv.find('=') == std::string::npos || kv.front() == '=')
      return sys::make_error(EINVAL, "--env '{}' is not KEY=VALUE", kv);
    set_env(app.env, kv);
  }
  app.workdir = over.workdir ? *over.workdir : image.workdir;
  if (app.workdir.empty()) app.workdir = "/";
  if (app.workdir.front() != '/') return sys::make_error(EINVAL, "working directory '{}' is not absolute", app.workdir);

  std::string user = over.user ? *over.user : image.user;
  std::string home = "/";
  if (!user.empty()) {
    auto parts = split(user, ':');
    if (parts.size() > 2 || parts[0].empty()) return sys::make_error(EINVAL, "user '{}' is not USER[:GROUP]", user);
    std::optional<std::uint32_t> gid;
    if (auto id = parse_id(parts[0])) {
      app.uid = *id;
      if (auto pw = find_entry(ids.passwd, parts[0], 2, 7)) {
        gid = parse_id((*pw)[3]);
        home = std::string((*pw)[5]);
      }
    } else {
      auto pw = find_entry(ids.passwd, parts[0], 0, 7);
      if (!pw || (*pw)[0] != parts[0])
        return sys::make_error(ENOENT, "user '{}' is not in the image's /etc/passwd", parts[0]);
      auto uid = parse_id((*pw)[2]);
      if (!uid) return sys::make_error(EINVAL, "the image's /etc/passwd has a bad uid for '{}'", parts[0]);
      app.uid = *uid;
      gid = parse_id((*pw)[3]);
      home = std::string((*pw)[5]);
    }
    if (parts.size() == 2) {
      if (auto id = parse_id(parts[1])) {
        gid = *id;
      } else {
        auto gr = find_entry(ids.group, parts[1], 0, 3);
        if (!gr || (*gr)[0] != parts[1])
          return sys::make_error(ENOENT, "group '{}' is not in the image's /etc/group", parts[1]);
        gid = parse_id((*gr)[2]);
        if (!gid) return sys::make_error(EINVAL, "the image's /etc/group has a bad gid for '{}'", parts[1]);
      }
    }
    app.gid = gid.value_or(app.uid);
    // Supplementary groups: those of the group file that list the user by name.
    if (auto pw = find_entry(ids.passwd, std::to_string(app.uid), 2, 7)) {
      for (auto line : split(ids.group, '\n')) {
        auto f = split(line, ':');
        if (f.size() < 4) continue;
        for (auto member : split(f[3], ','))
          if (member == (*pw)[0])
            if (auto g = parse_id(f[2]); g && *g != app.gid) app.groups.push_back(*g);
      }
    }
  } else if (auto pw = find_entry(ids.passwd, "0", 2, 7)) {
    home = std::string((*pw)[5]);
  }
  if (!has_env(app.env, "PATH")) app.env.emplace_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  if (!has_env(app.env, "HOME")) app.env.push_back("HOME=" + (home.empty() ? std::string("/") : home));
  return app;
}

}  // namespace pod::runtime
