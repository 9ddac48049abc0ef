// libcurl, loaded on first use. Linking it pulls in some 30 libraries (TLS, LDAP,
// Kerberos, SSH...) whose loading costs every pod command about 8 ms, pod run included;
// only `pod image fetch` needs it. systemd loads its optional libraries the same way.
#pragma once

#include <curl/curl.h>

#include "pod/sys/error.hpp"

namespace pod::cas {

struct CurlApi {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
};

// The loaded library (once per process), or why it cannot be used.
[[nodiscard]] sys::Result<const CurlApi*> curl_api();

}  // namespace pod::cas
