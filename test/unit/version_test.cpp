// SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>
#include <string>

#include "qocnet/version.hpp"

TEST_CASE("the running library's version is the headers' and the project's", "[unit][version]") {
  const auto& v = qocnet::version();
  CHECK(std::string(v.version) == QOCNET_VERSION_STRING);
  CHECK(std::string(v.version) ==
        std::to_string(v.major) + "." + std::to_string(v.minor) + "." + std::to_string(v.patch));
  CHECK(QOCNET_VERSION_NUMBER == v.major * 10000 + v.minor * 100 + v.patch);
  CHECK_FALSE(std::string(v.describe).empty());
}
