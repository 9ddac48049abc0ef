// Errors as values: every fallible function returns Result<T>.
#pragma once

#include <cerrno>
#include <expected>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace pod::sys {

// code is an errno value (0 when the failure is not a system call's).
struct Error {
  int code = 0;
  std::string message;

  // Prefixes what was being done: "unpacking layer X: open 'etc': ...".
  template <class... A>
  [[nodiscard]] Error context(fmt::format_string<A...> f, A&&... a) && {
    message = fmt::format(f, std::forward<A>(a)...) + ": " + message;
    return std::move(*this);
  }
  // The full text shown to users: message and, with a code, its errno name.
  [[nodiscard]] std::string what() const;
};

template <class T>
using Result = std::expected<T, Error>;

using Unexpected = std::unexpected<Error>;

// An error from errno; call right after the failing call.
template <class... A>
[[nodiscard]] Unexpected sys_error(fmt::format_string<A...> f, A&&... a) {
  int code = errno;
  return Unexpected(Error{code, fmt::format(f, std::forward<A>(a)...)});
}

// An error with an explicit code (0: not a system error).
template <class... A>
[[nodiscard]] Unexpected make_error(int code, fmt::format_string<A...> f, A&&... a) {
  return Unexpected(Error{code, fmt::format(f, std::forward<A>(a)...)});
}

// Symbolic errno name, "EINVAL"; "errno N" when unknown.
[[nodiscard]] std::string errno_name(int code);

}  // namespace pod::sys

#define POD_CAT_(a, b) a##b
#define POD_CAT(a, b) POD_CAT_(a, b)

// POD_TRY(expr): the value of a Result, or return its error from the enclosing function.
#define POD_TRY(...) POD_TRY_IMPL_(POD_CAT(pod_try_r_, __COUNTER__), __VA_ARGS__)
#define POD_TRY_IMPL_(r, ...)                                 \
  ({                                                          \
    auto r = (__VA_ARGS__);                                   \
    if (!r) [[unlikely]]                                      \
      return ::pod::sys::Unexpected(std::move(r).error());    \
    std::move(r).value();                                     \
  })

// POD_TRY_CTX(expr, "doing {}", x): as POD_TRY, adding context to the error.
#define POD_TRY_CTX(expr, ...) POD_TRY_CTX_IMPL_(POD_CAT(pod_try_r_, __COUNTER__), expr, __VA_ARGS__)
#define POD_TRY_CTX_IMPL_(r, expr, ...)                                             \
  ({                                                                                \
    auto r = (expr);                                                                \
    if (!r) [[unlikely]]                                                            \
      return ::pod::sys::Unexpected(std::move(r).error().context(__VA_ARGS__));     \
    std::move(r).value();                                                           \
  })
