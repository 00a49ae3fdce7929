// SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>
#include <string>

#include <bcc/bcc_version.h>

#include "qocnet/version.hpp"

TEST_CASE("the running library's version is the headers' and the project's", "[unit][version]") {
  const auto& v = qocnet::version();
  CHECK(std::string(v.version) == QOCNET_VERSION_STRING);
  CHECK(std::string(v.version) ==
        std::to_string(v.major) + "." + std::to_string(v.minor) + "." + std::to_string(v.patch));
  CHECK(QOCNET_VERSION_NUMBER == v.major * 10000 + v.minor * 100 + v.patch);
  CHECK_FALSE(std::string(v.describe).empty());
}

TEST_CASE("the version text names the program, the running library and the libbcc it was built against",
          "[unit][version]") {
  const auto& v = qocnet::version();
  CHECK(std::string(v.bcc) == LIBBCC_VERSION);
  const std::string text = qocnet::version_text("qocnetd");
  CHECK(text == std::string("qocnetd ") + QOCNET_VERSION_STRING + "\nlibqocnet " + v.version + " (git " +
                    v.describe + "), libbcc " + LIBBCC_VERSION);
}
