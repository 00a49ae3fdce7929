// SPDX-License-Identifier: Apache-2.0
// qocnet's one error model: every fallible call of the public API returns a
// Result<T>, which holds either a value or an Error that names the cause and
// the fix. Codes follow gRPC's status codes so the service layer maps them 1:1.
#pragma once

#include <cassert>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace qocnet {

enum class Errc {
  invalid_argument,     // the caller passed something malformed
  not_found,            // an interface, port, pair or object does not exist
  already_exists,       // e.g. a port attached twice
  failed_precondition,  // the system is not in a state that allows the call
  permission_denied,    // missing root / capabilities
  resource_exhausted,   // a map or table is full
  unavailable,          // a kernel facility is missing (headers, bpffs, ...)
  internal,             // a kernel or library call failed unexpectedly
};

// Stable lower-case name of a code ("invalid_argument", ...).
const char* to_string(Errc code) noexcept;

struct Error {
  Errc code = Errc::internal;
  std::string message;  // what went wrong, naming the object involved
  std::string fix;      // what the user can do about it (may be empty)
  int sys_errno = 0;    // errno of the failing system call, 0 if none
  std::string detail;   // multi-line context: compiler diagnostics, verifier log

  // "<code>: <message> (errno N: text)\n  fix: <fix>\n<detail>"
  std::string to_string() const;

  // Prepends context to the message: "attach port e0: " + message.
  Error& context(const std::string& what);
};

Error make_error(Errc code, std::string message, std::string fix = {}, int sys_errno = 0);

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const& { assert(!ok()); return std::get<1>(v_); }
  Error&& error() && { assert(!ok()); return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const& { assert(!ok_); return err_; }
  Error&& error() && { assert(!ok_); return std::move(err_); }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace qocnet

// Evaluates a Result-returning expression and returns its error from the
// enclosing function (which must return a Result) when it failed.
#define QOCNET_TRY(expr)                                  \
  do {                                                    \
    auto qocnet_try_result_ = (expr);                     \
    if (!qocnet_try_result_.ok())                         \
      return std::move(qocnet_try_result_).error();       \
  } while (0)

// Declares `var` from a Result-returning expression, or returns its error.
#define QOCNET_ASSIGN(var, expr)                          \
  auto var##_result_ = (expr);                            \
  if (!var##_result_.ok())                                \
    return std::move(var##_result_).error();              \
  auto var = std::move(var##_result_).value()
