#include "curl_api.hpp"

#include <dlfcn.h>

#include <mutex>

namespace pod::cas {

namespace {

template <class F>
bool load(void* lib, const char* name, F& out) {
  out = reinterpret_cast<F>(::dlsym(lib, name));
  return out != nullptr;
}

}  // namespace

sys::Result<const CurlApi*> curl_api() {
  static std::once_flag once;
  static CurlApi api{};
  static std::string failure;
  std::call_once(once, [] {
    void* lib = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = ::dlerror();
      failure = why ? why : "dlopen failed";
      return;
    }
    bool ok = load(lib, "curl_global_init", api.global_init) && load(lib, "curl_easy_init", api.easy_init) &&
              load(lib, "curl_easy_setopt", api.easy_setopt) && load(lib, "curl_easy_perform", api.easy_perform) &&
              load(lib, "curl_easy_getinfo", api.easy_getinfo) && load(lib, "curl_easy_cleanup", api.easy_cleanup) &&
              load(lib, "curl_easy_strerror", api.easy_strerror) &&
              load(lib, "curl_slist_append", api.slist_append) &&
              load(lib, "curl_slist_free_all", api.slist_free_all);
    if (!ok) failure = "a libcurl function is missing";
  });
  if (!failure.empty())
    return sys::make_error(ENOPKG, "cannot load libcurl.so.4 ({}): install Debian's libcurl4", failure);
  return &api;
}

}  // namespace pod::cas
