// SPDX-License-Identifier: Apache-2.0
#include "qocnet/version.hpp"

#ifndef QOCNET_GIT_DESCRIBE
#define QOCNET_GIT_DESCRIBE "unknown"
#endif
#ifndef QOCNET_BCC_VERSION
#define QOCNET_BCC_VERSION "unknown"
#endif

namespace qocnet {

const VersionInfo& version() noexcept {
  static const VersionInfo info{QOCNET_VERSION_STRING, QOCNET_GIT_DESCRIBE, QOCNET_VERSION_MAJOR,
                                QOCNET_VERSION_MINOR, QOCNET_VERSION_PATCH, QOCNET_BCC_VERSION};
  return info;
}

}  // namespace qocnet
