// SPDX-License-Identifier: Apache-2.0
// Catch2 helpers for qocnet::Result.
#pragma once

#include <catch2/catch.hpp>

#include "qocnet/error.hpp"

namespace qocnet::test {
template <class R>
std::string describe(const R& r) {
  return r.ok() ? std::string("ok") : r.error().to_string();
}
}  // namespace qocnet::test

// Requires a Result to be ok, printing its error otherwise.
#define REQUIRE_OK(expr)                                   \
  do {                                                     \
    const auto& qocnet_r_ = (expr);                        \
    INFO("result: " << ::qocnet::test::describe(qocnet_r_)); \
    REQUIRE(qocnet_r_.ok());                               \
  } while (0)

// Requires a Result to have failed with `code`; binds its error to `err`.
#define REQUIRE_ERROR(err, expr, errc)                                   \
  auto err##_res_ = (expr);                                             \
  INFO("result: " << ::qocnet::test::describe(err##_res_));             \
  REQUIRE_FALSE(err##_res_.ok());                                       \
  const ::qocnet::Error err = err##_res_.error();                       \
  REQUIRE(err.code == (errc))
