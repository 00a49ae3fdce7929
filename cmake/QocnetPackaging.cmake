# SPDX-License-Identifier: Apache-2.0
# Debian packages made by CPack from the install rules' components
# (docs/PACKAGES.md):
#   libqocnet0      libqocnet.so.0 and the compiler module it loads
#   libqocnet-dev   headers, qocnet/version.hpp, the CMake package, qocnet.pc
#   qocnetd         the edge daemon, its unit, tmpfiles.d entry and conffile
#   qocnet-sensor   the sensor agent and its unit template
#   qocnetctl       the operator's CLI, its man page and bash completion
#   python3-qocnet  the Python package `qocnet` (Architecture: all)
# Build them from a build configured with -DCMAKE_INSTALL_PREFIX=/usr (the
# programs and units carry their installed paths):
#   cd build && cpack -G DEB -B packages      (build/packages/*.deb)
# Dependencies on Debian's libraries come from dpkg-shlibdeps; those between
# the packages are exact versions, since they are built together.

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME qocnet)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "qocnet")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "qocnet maintainers <maintainers@qocnet.invalid>")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)

set(CPACK_DEB_COMPONENT_INSTALL ON)
# xz on every core: the programs carry line tables (-g1), tens of MiB.
set(CPACK_THREADS 0)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://qocnet.invalid/")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# libqocnet.so.0 is in this build, not yet in any installed package:
# dpkg-shlibdeps finds it here, and the packages that need it name
# libqocnet0 themselves.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${PROJECT_BINARY_DIR}/lib)

set(_exact "(= ${PROJECT_VERSION})")
set(CPACK_COMPONENTS_ALL libqocnet0 libqocnet-dev qocnetd qocnet-sensor qocnetctl python3-qocnet)

set(CPACK_DEBIAN_LIBQOCNET0_PACKAGE_NAME libqocnet0)
set(CPACK_DEBIAN_LIBQOCNET0_PACKAGE_SECTION libs)
# libbcc compiles against the running kernel's headers.
set(CPACK_DEBIAN_LIBQOCNET0_PACKAGE_RECOMMENDS "linux-headers-amd64")
set(CPACK_COMPONENT_LIBQOCNET0_DESCRIPTION
  "qocnet's shared library: content- and computation-aware stream replication with eBPF
libqocnet compiles its BPF programs at run time with libbcc, inspects every
MPEG-TS packet of a camera's stream for the frame class it carries and gives
each computation process the copy its quality of computing needs.")

set(CPACK_DEBIAN_LIBQOCNET-DEV_PACKAGE_NAME libqocnet-dev)
set(CPACK_DEBIAN_LIBQOCNET-DEV_PACKAGE_SECTION libdevel)
set(_dev_depends "libqocnet0 ${_exact}")
if(QOCNET_WITH_GRPC)
  # qocnet::grpc and qocnet::client: their CMake package finds these again.
  string(APPEND _dev_depends ", libgrpc++-dev, libprotobuf-dev, libboost-dev")
endif()
set(CPACK_DEBIAN_LIBQOCNET-DEV_PACKAGE_DEPENDS "${_dev_depends}")
set(CPACK_COMPONENT_LIBQOCNET-DEV_DESCRIPTION
  "qocnet's headers, CMake package and pkg-config file
find_package(qocnet) gives qocnet::qocnet; pkg-config --cflags --libs qocnet
does the same without CMake.")

set(CPACK_DEBIAN_QOCNETD_PACKAGE_NAME qocnetd)
set(CPACK_DEBIAN_QOCNETD_PACKAGE_DEPENDS "libqocnet0 ${_exact}")
set(CPACK_DEBIAN_QOCNETD_PACKAGE_RECOMMENDS "linux-headers-amd64, qocnetctl")
set(CPACK_COMPONENT_QOCNETD_DESCRIPTION
  "qocnet's edge daemon
qocnetd replicates each camera stream in the kernel to the computation
processes that registered for it, dropping the least valuable frames first,
and tells each sensor the most any process still needs.")
set(CPACK_DEBIAN_QOCNETD_PACKAGE_CONTROL_EXTRA
  ${PROJECT_BINARY_DIR}/packaging/qocnetd/conffiles
  ${PROJECT_BINARY_DIR}/packaging/qocnetd/postinst
  ${PROJECT_BINARY_DIR}/packaging/qocnetd/prerm
  ${PROJECT_BINARY_DIR}/packaging/qocnetd/postrm)
set(CPACK_DEBIAN_QOCNETD_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_QOCNET-SENSOR_PACKAGE_NAME qocnet-sensor)
set(CPACK_DEBIAN_QOCNET-SENSOR_PACKAGE_DEPENDS "libqocnet0 ${_exact}")
set(CPACK_DEBIAN_QOCNET-SENSOR_PACKAGE_RECOMMENDS "linux-headers-amd64")
set(CPACK_COMPONENT_QOCNET-SENSOR_DESCRIPTION
  "qocnet's sensor agent
qocnet-sensor runs on a camera's uplink and drops what no process at the
edge still needs before it crosses the wireless link.")
set(CPACK_DEBIAN_QOCNET-SENSOR_PACKAGE_CONTROL_EXTRA
  ${PROJECT_BINARY_DIR}/packaging/qocnet-sensor/postinst
  ${PROJECT_BINARY_DIR}/packaging/qocnet-sensor/postrm)
set(CPACK_DEBIAN_QOCNET-SENSOR_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_QOCNETCTL_PACKAGE_NAME qocnetctl)
set(CPACK_DEBIAN_QOCNETCTL_PACKAGE_DEPENDS "libqocnet0 ${_exact}")
set(CPACK_COMPONENT_QOCNETCTL_DESCRIPTION
  "qocnet's command line for operators
qocnetctl lists and changes what a qocnet edge serves: ports, streams,
processes and their policies, sensors, and the daemon's status.")

set(CPACK_DEBIAN_PYTHON3-QOCNET_PACKAGE_NAME python3-qocnet)
set(CPACK_DEBIAN_PYTHON3-QOCNET_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_PYTHON3-QOCNET_PACKAGE_SECTION python)
set(CPACK_DEBIAN_PYTHON3-QOCNET_PACKAGE_SHLIBDEPS OFF)
set(CPACK_DEBIAN_PYTHON3-QOCNET_PACKAGE_DEPENDS "python3 (>= 3.11), python3-grpcio, python3-protobuf")
set(CPACK_DEBIAN_PYTHON3-QOCNET_PACKAGE_SUGGESTS "python3-av, python3-opencv")
set(CPACK_COMPONENT_PYTHON3-QOCNET_DESCRIPTION
  "qocnet's Python SDK for computation processes
import qocnet: register a process with qocnetd, report the quality of
computing it measures and follow the policy the edge applies to it.")

# Maintainer scripts: systemd learns of the units and tmpfiles.d makes
# /run/qocnet; nothing is enabled or started (qocnetd serves no port until
# its configuration names one: docs/DEPLOY.md). A machine without systemd
# running (a container) skips those steps.
set(_pkg ${PROJECT_BINARY_DIR}/packaging)
file(WRITE ${_pkg}/qocnetd/conffiles "${CMAKE_INSTALL_FULL_SYSCONFDIR}/qocnet/qocnetd.yaml\n")
set(_reload [=[if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null || true; fi
]=])
file(WRITE ${_pkg}/qocnetd/postinst "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n"
  "  if command -v systemd-tmpfiles >/dev/null; then systemd-tmpfiles --create qocnet.conf || true; fi\n"
  "  ${_reload}fi\n")
file(WRITE ${_pkg}/qocnetd/prerm "#!/bin/sh\nset -e\n"
  "if [ -d /run/systemd/system ] && [ \"$1\" = remove ]; then systemctl stop qocnetd.service || true; fi\n")
file(WRITE ${_pkg}/qocnetd/postrm "#!/bin/sh\nset -e\n${_reload}"
  "if [ \"$1\" = purge ]; then rm -rf /run/qocnet; rmdir --ignore-fail-on-non-empty ${CMAKE_INSTALL_FULL_SYSCONFDIR}/qocnet 2>/dev/null || true; fi\n")
file(WRITE ${_pkg}/qocnet-sensor/postinst "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n  ${_reload}fi\n")
file(WRITE ${_pkg}/qocnet-sensor/postrm "#!/bin/sh\nset -e\n${_reload}")
foreach(f qocnetd/postinst qocnetd/prerm qocnetd/postrm qocnet-sensor/postinst qocnet-sensor/postrm)
  file(CHMOD ${_pkg}/${f} PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
       WORLD_READ WORLD_EXECUTE)
endforeach()
file(CHMOD ${_pkg}/qocnetd/conffiles PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# Each package's copyright file (Debian policy 12.5): the LICENSE.
foreach(component IN LISTS CPACK_COMPONENTS_ALL)
  install(FILES ${PROJECT_SOURCE_DIR}/LICENSE DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${component}
          RENAME copyright COMPONENT ${component} EXCLUDE_FROM_ALL)
endforeach()

include(CPack)
