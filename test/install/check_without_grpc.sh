#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check_without_grpc: libqocnet is a library of its own. Configures the tree
# with -DQOCNET_WITH_GRPC=OFF while CMake is forbidden to find gRPC or
# Protobuf, builds libqocnet and its compiler module (unoptimised: this
# checks that it builds, not how fast it runs), installs them into a
# temporary prefix and builds examples/consumer against that with
# pkg-config: nothing of it names gRPC or protobuf; find_package(qocnet
# COMPONENTS client) is refused, saying why. No root needed.
#   test/install/check_without_grpc.sh SOURCE_DIR
set -euo pipefail
src=$(realpath "$1")
work=$(mktemp -d /tmp/qocnet-library-only.XXXXXX)
trap 'rm -rf "$work"' EXIT
say() { echo "check_without_grpc: $*"; }
die() { printf 'check_without_grpc: FAILED: %b\n' "$*" >&2; exit 1; }

say "configure with -DQOCNET_WITH_GRPC=OFF, gRPC and Protobuf unfindable"
cmake -S "$src" -B "$work/build" -DQOCNET_WITH_GRPC=OFF -DCMAKE_DISABLE_FIND_PACKAGE_gRPC=ON \
      -DCMAKE_DISABLE_FIND_PACKAGE_Protobuf=ON -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS=-O0 \
      -DQOCNET_BUILD_TESTS=OFF -DQOCNET_BUILD_EXAMPLES=OFF -DQOCNET_BUILD_BENCH=OFF \
      >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; die "configure"; }
found=$(grep -Ei '^(gRPC|Protobuf)[A-Za-z_]*_DIR:PATH=/' "$work/build/CMakeCache.txt" || true)
[ -z "$found" ] || die "the configuration found gRPC or Protobuf:\n$found"

say "build libqocnet and its compiler module"
cmake --build "$work/build" -j"$(nproc)" --target qocnet >"$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log"; die "build"; }
# The compiler's dependency files list every header each source included.
headers='/(grpc|grpcpp|grpc\+\+)/|/google/protobuf/|\.pb\.h'
deps=$(find "$work/build/lib/CMakeFiles/qocnet.dir" -name '*.d')
[ -n "$deps" ] || die "no dependency files under $work/build/lib/CMakeFiles/qocnet.dir to check"
if grep -lE "$headers" $deps >/dev/null; then
  die "a libqocnet source includes a gRPC or protobuf header:\n$(grep -hoE "[^ ]*($headers)[^ ]*" $deps | sort -u | head -5)"
fi

say "install into a temporary prefix"
cmake --install "$work/build" --prefix "$work/prefix" >"$work/install.log" 2>&1 \
  || { cat "$work/install.log"; die "install"; }
[ ! -e "$work/prefix/bin/qocnetd" ] || die "qocnetd was installed by a build without gRPC"
lib=$(find "$work/prefix" -name 'libqocnet.so.0' | head -1)
[ -n "$lib" ] || die "libqocnet.so.0 is not installed"
needed=$(objdump -p "$lib" | awk '/NEEDED/ { print $2 }')
if printf '%s\n' "$needed" | grep -Eq 'grpc|protobuf'; then die "libqocnet needs gRPC:\n$needed"; fi

say "build examples/consumer against it with pkg-config"
pcdir=$(dirname "$(find "$work/prefix" -name qocnet.pc | head -1)")
flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs qocnet)
c++ -std=c++20 -O0 "$src/examples/consumer/main.cpp" $flags -Wl,-rpath,"$(dirname "$lib")" -o "$work/consumer" \
  || die "build the consumer (flags: $flags)"
"$work/consumer" --version | grep -q "running libqocnet" || die "the consumer's --version"

say "find_package(qocnet COMPONENTS client) says this qocnet has no gRPC components"
mkdir -p "$work/client"
cat >"$work/client/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(client LANGUAGES CXX)
find_package(qocnet 0.1 REQUIRED COMPONENTS client)
CMAKE
if cmake -S "$work/client" -B "$work/client/build" -DCMAKE_PREFIX_PATH="$work/prefix" >"$work/client.log" 2>&1; then
  die "find_package(qocnet COMPONENTS client) succeeded against a qocnet without gRPC"
fi
grep -q "built without gRPC" "$work/client.log" || { cat "$work/client.log"; die "the refusal does not say why"; }
say "ok"
