// SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>

#include <cerrno>
#include <set>

#include "qocnet/error.hpp"

using namespace qocnet;

namespace {
Result<int> half(int x) {
  if (x % 2) return make_error(Errc::invalid_argument, "x is odd", "pass an even number");
  return x / 2;
}
Result<int> quarter(int x) {
  QOCNET_ASSIGN(h, half(x));
  QOCNET_ASSIGN(q, half(h));
  return q;
}
Status check_even(int x) {
  QOCNET_TRY(half(x));
  return {};
}
}  // namespace

TEST_CASE("an error names the code, the cause, errno and the fix", "[unit][error]") {
  Error e = make_error(Errc::not_found, "interface 'x0' does not exist", "check `ip link`", ENODEV);
  e.detail = "line one\nline two\n";
  const std::string s = e.to_string();
  CHECK(s.rfind("not_found: interface 'x0' does not exist (errno 19: No such device)", 0) == 0);
  CHECK(s.find("\n  fix: check `ip link`") != std::string::npos);
  CHECK(s.find("line one\nline two") != std::string::npos);
  CHECK(s.back() != '\n');
}

TEST_CASE("errno given negative (kernel style) is stored positive", "[unit][error]") {
  CHECK(make_error(Errc::internal, "x", {}, -EPERM).sys_errno == EPERM);
}

TEST_CASE("an error without errno or fix prints only its message", "[unit][error]") {
  CHECK(make_error(Errc::internal, "boom").to_string() == "internal: boom");
}

TEST_CASE("context prefixes the message", "[unit][error]") {
  Error e = make_error(Errc::internal, "boom");
  e.context("attach port e0");
  CHECK(e.message == "attach port e0: boom");
}

TEST_CASE("every code has a distinct name", "[unit][error]") {
  std::set<std::string> names;
  for (Errc c : {Errc::invalid_argument, Errc::not_found, Errc::already_exists,
                 Errc::failed_precondition, Errc::permission_denied, Errc::resource_exhausted,
                 Errc::unavailable, Errc::internal})
    names.insert(to_string(c));
  CHECK(names.size() == 8);
  CHECK(names.count("failed_precondition") == 1);
}

TEST_CASE("QOCNET_ASSIGN and QOCNET_TRY pass values on and errors out", "[unit][error]") {
  auto ok = quarter(12);
  REQUIRE(ok.ok());
  CHECK(*ok == 3);
  auto bad = quarter(6);  // 6 -> 3 -> odd
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Errc::invalid_argument);
  CHECK(bad.error().fix == "pass an even number");
  CHECK(check_even(4).ok());
  CHECK_FALSE(check_even(5).ok());
}
