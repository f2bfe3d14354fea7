// libcurl, opened on the first HTTP request Hearth makes (model clients, proxy
// upstreams), with the thirty-odd libraries it brings (TLS, Kerberos, LDAP,
// SSH, HTTP/2). The functions Hearth calls, forwarded; see util/lazy_library.h.
#include "util/lazy/curl.h"

#include <curl/curl.h>

#include <cstdarg>

#include "util/lazy/forward.h"

namespace hearth::lazy {

HEARTH_LAZY_SONAME const char kSoname[] = "libcurl.so.4";

LazyLibrary& curl_library() {
  static LazyLibrary library(kSoname, "an HTTP request (model steps, API proxies)");
  return library;
}

}  // namespace hearth::lazy

using hearth::lazy::curl_library;

HEARTH_LAZY_FORWARD(curl_library(), CURLcode, curl_global_init, (long flags), (flags))
HEARTH_LAZY_FORWARD(curl_library(), CURL*, curl_easy_init, (void), ())
HEARTH_LAZY_FORWARD(curl_library(), void, curl_easy_cleanup, (CURL * h), (h))
HEARTH_LAZY_FORWARD(curl_library(), CURLcode, curl_easy_pause, (CURL * h, int mask), (h, mask))
HEARTH_LAZY_FORWARD(curl_library(), const char*, curl_easy_strerror, (CURLcode code), (code))
HEARTH_LAZY_FORWARD(curl_library(), time_t, curl_getdate, (const char* p, const time_t* unused), (p, unused))
HEARTH_LAZY_FORWARD(curl_library(), CURLM*, curl_multi_init, (void), ())
HEARTH_LAZY_FORWARD(curl_library(), CURLMcode, curl_multi_cleanup, (CURLM * m), (m))
HEARTH_LAZY_FORWARD(curl_library(), CURLMcode, curl_multi_add_handle, (CURLM * m, CURL* h), (m, h))
HEARTH_LAZY_FORWARD(curl_library(), CURLMcode, curl_multi_remove_handle, (CURLM * m, CURL* h), (m, h))
HEARTH_LAZY_FORWARD(curl_library(), CURLMcode, curl_multi_assign, (CURLM * m, curl_socket_t s, void* p), (m, s, p))
HEARTH_LAZY_FORWARD(curl_library(), CURLMsg*, curl_multi_info_read, (CURLM * m, int* left), (m, left))
HEARTH_LAZY_FORWARD(curl_library(), CURLMcode, curl_multi_socket_action, (CURLM * m, curl_socket_t s, int mask, int* running),
                    (m, s, mask, running))
HEARTH_LAZY_FORWARD(curl_library(), struct curl_slist*, curl_slist_append, (struct curl_slist * list, const char* s),
                    (list, s))
HEARTH_LAZY_FORWARD(curl_library(), void, curl_slist_free_all, (struct curl_slist * list), (list))

// The three variadic calls take exactly one argument after the option, of the
// type the option's number range gives (as curl itself reads it): long below
// 10000, an object pointer below 20000, a function pointer below 30000, a
// curl_off_t below 40000, a pointer (blob) above.
namespace {

// One instantiation per (handle, option) type pair, so one per curl function:
// `name` is looked up on the instantiation's first call.
template <class Code, class Handle, class Option>
Code forward_option(const char* name, Handle* h, Option option, va_list ap) {
  using Fn = Code (*)(Handle*, Option, ...);
  static const Fn real = reinterpret_cast<Fn>(curl_library().require(name));
  int range = static_cast<int>(option);
  if (range < CURLOPTTYPE_OBJECTPOINT) return real(h, option, va_arg(ap, long));
  if (range < CURLOPTTYPE_FUNCTIONPOINT) return real(h, option, va_arg(ap, void*));
  if (range < CURLOPTTYPE_OFF_T) return real(h, option, va_arg(ap, void (*)()));
  if (range < CURLOPTTYPE_BLOB) return real(h, option, va_arg(ap, curl_off_t));
  return real(h, option, va_arg(ap, void*));
}

}  // namespace

extern "C" CURLcode(curl_easy_setopt)(CURL* h, CURLoption option, ...) {
  va_list ap;
  va_start(ap, option);
  CURLcode rc = forward_option<CURLcode>("curl_easy_setopt", h, option, ap);
  va_end(ap);
  return rc;
}

extern "C" CURLMcode(curl_multi_setopt)(CURLM* m, CURLMoption option, ...) {
  va_list ap;
  va_start(ap, option);
  CURLMcode rc = forward_option<CURLMcode>("curl_multi_setopt", m, option, ap);
  va_end(ap);
  return rc;
}

// Every CURLINFO takes a pointer to where the answer goes.
extern "C" CURLcode(curl_easy_getinfo)(CURL* h, CURLINFO info, ...) {
  using Fn = CURLcode (*)(CURL*, CURLINFO, ...);
  static const Fn real = reinterpret_cast<Fn>(curl_library().require("curl_easy_getinfo"));
  va_list ap;
  va_start(ap, info);
  void* out = va_arg(ap, void*);
  va_end(ap);
  return real(h, info, out);
}
