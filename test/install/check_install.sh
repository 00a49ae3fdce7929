#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check_install: qocnet as an application developer gets it. Installs the
# build into a temporary prefix, builds examples/consumer out of the tree
# against it twice (find_package(qocnet) and pkg-config), and, as root, runs
# each build in an edge namespace where it replicates a real H.264 stream
# from a sensor namespace to two process namespaces: every datagram the
# kernel counted delivered to a process arrived there, and the installed
# libqocnet loaded the compiler module installed beside it. Then builds
# examples/cpp_process against the installed qocnet::client
# (find_package(qocnet COMPONENTS client)): it must compile against the
# prefix's headers, link the installed libqocnet and, run without a
# qocnetd, name the socket it tried.
#
#   test/install/check_install.sh SOURCE_DIR BUILD_DIR
#   test/install/check_install.sh SOURCE_DIR --installed PREFIX
# The second form installs nothing: it checks the qocnet installed at PREFIX
# (e.g. /usr, from the Debian packages: test/install/check_packages.sh).
# Exit 77 (SKIPPED) without root, after the build steps.
set -euo pipefail
src=$(realpath "$1")
installed=
if [ "${2:-}" = --installed ]; then
  installed=$(realpath "$3")
else
  build=$(realpath "$2")
fi
py=/usr/bin/python3
work=$(mktemp -d /tmp/qocnet-install-check.XXXXXX)
tag=qi$$
cleanup() {
  for ns in s e a b; do ip netns del "$tag$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
say() { echo "check_install: $*"; }
die() { echo "check_install: FAILED: $*" >&2; exit 1; }

if [ -n "$installed" ]; then
  prefix=$installed
  say "the qocnet installed at $prefix"
  pc=$(pkg-config --path qocnet) || die "pkg-config finds no qocnet.pc (is libqocnet-dev installed?)"
  case "$pc" in "$prefix"/*) ;; *) die "pkg-config finds $pc, not one under $prefix" ;; esac
else
  # DESTDIR as well as --prefix: a few files install to absolute paths (the
  # configuration in the full sysconfdir, /etc for the prefix /usr).
  say "DESTDIR=$work/root cmake --install $build --prefix $work/prefix"
  DESTDIR=$work/root cmake --install "$build" --prefix "$work/prefix" >"$work/install.log" \
    || { cat "$work/install.log"; die "install"; }
  prefix=$work/root$work/prefix
  pc=$(find "$prefix" -name qocnet.pc -path '*/pkgconfig/*' | head -1)
  [ -n "$pc" ] || die "qocnet.pc is not installed under $prefix"
fi
pcdir=$(dirname "$pc")
# qocnet.pc is relocatable (its prefix is \${pcfiledir}/..): ask pkg-config.
libdir=$(realpath "$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=libdir qocnet)")
[ "$libdir" = "$(realpath "$pcdir/..")" ] || die "qocnet.pc's libdir $libdir is not where it lies ($pcdir/..)"
for f in include/qocnet/edge.hpp include/qocnet/version.hpp; do
  [ -f "$prefix/$f" ] || die "$f is not installed"
done
soname=$(objdump -p "$libdir/libqocnet.so" | awk '/SONAME/ { print $2 }')
[ "$soname" = libqocnet.so.0 ] || die "libqocnet.so's SONAME is '$soname', not libqocnet.so.0"
[ -f "$libdir/qocnet/libqocnet-bcc.so" ] || die "the compiler module is not at $libdir/qocnet/libqocnet-bcc.so"
for b in qocnetd qocnetctl qocnet-sensor; do
  [ -x "$prefix/bin/$b" ] || die "$b is not installed in $prefix/bin"
done

say "build examples/consumer with find_package(qocnet)"
cmake -S "$src/examples/consumer" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/consumer-cmake.log" 2>&1 \
  || { cat "$work/consumer-cmake.log"; die "configure the consumer"; }
cmake --build "$work/cmake-build" >>"$work/consumer-cmake.log" 2>&1 \
  || { cat "$work/consumer-cmake.log"; die "build the consumer with CMake"; }
say "build examples/consumer with pkg-config"
mkdir -p "$work/pc-build"
flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs qocnet)
c++ -std=c++20 -O1 "$src/examples/consumer/main.cpp" $flags -Wl,-rpath,"$libdir" -o "$work/pc-build/qocnet-consumer" \
  || die "build the consumer with pkg-config (flags: $flags)"

for bin in "$work/cmake-build/qocnet-consumer" "$work/pc-build/qocnet-consumer"; do
  lib=$(ldd "$bin" | awk '/libqocnet\.so/ { print $3 }')
  [ "$(realpath "$lib")" = "$(realpath "$libdir/libqocnet.so.0")" ] || die "$bin links $lib, not the installed library"
  "$bin" --version | grep -q "running libqocnet" || die "$bin --version"
done

# The C++ process SDK: qocnet::client (and qocnet::grpc) from the installed
# package, examples/cpp_process built against it out of the tree.
for f in include/qocnet_client/process.hpp include/qocnet_client/channel.hpp include/qocnet/v1/qoc.pb.h \
         include/qocnet/v1/qoc.grpc.pb.h; do
  [ -f "$prefix/$f" ] || die "$f is not installed"
done
say "build examples/cpp_process with find_package(qocnet COMPONENTS client)"
cmake -S "$src/examples/cpp_process" -B "$work/process-build" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g0" \
      >"$work/process-cmake.log" 2>&1 || { cat "$work/process-cmake.log"; die "configure examples/cpp_process"; }
cmake --build "$work/process-build" -j2 >>"$work/process-cmake.log" 2>&1 \
  || { cat "$work/process-cmake.log"; die "build examples/cpp_process against the installed qocnet::client"; }
flags=$(cat "$work/process-build/CMakeFiles/qocnet-cpp-process.dir/flags.make")
# (The prefix /usr's include directory is the compiler's own: no -I names it.)
if [ "$prefix" != /usr ]; then
  case "$flags" in *"$prefix/include"*) ;; *) die "examples/cpp_process was not compiled against $prefix/include: $flags" ;; esac
fi
case "$flags" in *"$src/"*) die "examples/cpp_process was compiled against the source tree: $flags" ;; esac
bin=$work/process-build/qocnet-cpp-process
lib=$(ldd "$bin" | awk '/libqocnet\.so/ { print $3 }')
[ "$(realpath "$lib")" = "$(realpath "$libdir/libqocnet.so.0")" ] || die "$bin links $lib, not the installed library"
# It runs: without qocnetd it names the socket it tried and what must run.
if "$bin" --address "unix:$work/none.sock" --stream "10.0.0.1:40000->:47123" --seconds 1 >"$work/process.out" 2>&1; then
  die "examples/cpp_process ran without a qocnetd"
fi
grep -q "$work/none.sock does not exist" "$work/process.out" && grep -q "qocnetd must be running" "$work/process.out" \
  || { cat "$work/process.out"; die "examples/cpp_process did not say that qocnetd's socket is missing"; }
# A component the package does not have is refused, naming it.
mkdir -p "$work/nosuch"
cat >"$work/nosuch/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.25)
project(nosuch LANGUAGES CXX)
find_package(qocnet 0.1 REQUIRED COMPONENTS nosuch)
CMAKE
if cmake -S "$work/nosuch" -B "$work/nosuch/build" -DCMAKE_PREFIX_PATH="$prefix" >"$work/nosuch.log" 2>&1; then
  die "find_package(qocnet COMPONENTS nosuch) succeeded"
fi
grep -q "no component 'nosuch'" "$work/nosuch.log" || { cat "$work/nosuch.log"; die "the unknown component is not named"; }

if [ "$(id -u)" != 0 ]; then
  say "SKIPPED: running the consumer needs root (BPF programs, network namespaces); the builds passed"
  exit 77
fi

# sensor s0 --- e0 [edge] e1 --- pa (process a), e2 --- pb (process b)
for ns in s e a b; do ip netns add "$tag$ns"; done
ip link add s0 netns "$tag"s type veth peer e0 netns "$tag"e
ip link add pa netns "$tag"a type veth peer e1 netns "$tag"e
ip link add pb netns "$tag"b type veth peer e2 netns "$tag"e
ip -n "$tag"s addr add 10.89.0.1/24 dev s0
ip -n "$tag"e addr add 10.89.0.2/24 dev e0
ip -n "$tag"e addr add 10.89.1.1/24 dev e1
ip -n "$tag"e addr add 10.89.2.1/24 dev e2
ip -n "$tag"a addr add 10.89.1.2/24 dev pa
ip -n "$tag"b addr add 10.89.2.2/24 dev pb
for ns in s e a b; do
  ip -n "$tag$ns" link set lo up
  ip netns exec "$tag$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
done
ip -n "$tag"s link set s0 up; ip -n "$tag"a link set pa up; ip -n "$tag"b link set pb up
for i in e0 e1 e2; do ip -n "$tag"e link set "$i" up; done
ip -n "$tag"a route add default via 10.89.1.1
ip -n "$tag"b route add default via 10.89.2.1
mac_a=$(ip -n "$tag"a -o link show pa | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
mac_b=$(ip -n "$tag"b -o link show pb | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')

ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=320x240:rate=25 -t 3 -c:v libx264 \
       -preset veryfast -g 25 -bf 2 -x264-params b-pyramid=none -f mpegts "$work/clip.ts"

receive() {  # receive NS IP OUT: count datagrams until 3 s of silence after the first
  ip netns exec "$1" "$py" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind((sys.argv[1], 5000))
open(sys.argv[2] + ".ready", "w").close()
n = 0
s.settimeout(20)
try:
    while True:
        s.recv(2048)
        n += 1
        s.settimeout(3)
except socket.timeout:
    pass
open(sys.argv[2], "w").write(str(n))
' "$2" "$3"
}

run_consumer() {  # run_consumer BIN NAME
  local bin=$1 name=$2 out=$work/$2
  rm -f "$out".*
  receive "$tag"a 10.89.1.2 "$out.a" & local ra=$!
  receive "$tag"b 10.89.2.2 "$out.b" & local rb=$!
  nsenter --net=/run/netns/"$tag"e "$bin" --port e0 --stream "10.89.0.1:40000->:5000" \
    --process "a,e1,$mac_a,10.89.1.2,5000,keep" --process "b,e2,$mac_b,10.89.2.2,5000,frame_aware(0.3)" \
    --seconds 8 --ready "$out.ready" >"$out.stats" 2>"$out.err" & local rc=$!
  for _ in $(seq 200); do
    [ -e "$out.ready" ] && [ -e "$out.a.ready" ] && [ -e "$out.b.ready" ] && break
    kill -0 $rc 2>/dev/null || { cat "$out.err"; die "$name: the consumer ended before it was ready"; }
    sleep 0.1
  done
  [ -e "$out.ready" ] || die "$name: the consumer was not ready in 20 s"
  grep -q "$libdir/qocnet/libqocnet-bcc.so" /proc/$rc/maps \
    || die "$name: the running libqocnet did not load the compiler module installed beside it ($libdir/qocnet)"
  sent=$(ip netns exec "$tag"s "$py" -c '
import socket, sys, time
data = open(sys.argv[1], "rb").read()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.89.0.1", 40000))
n = 0
for i in range(0, len(data) - 1315, 1316):
    s.sendto(data[i:i + 1316], ("10.89.0.2", 5000))
    n += 1
    time.sleep(0.001)
print(n)
' "$work/clip.ts")
  wait $rc || { cat "$out.err"; die "$name: the consumer failed"; }
  wait $ra $rb
  got_a=$(cat "$out.a") got_b=$(cat "$out.b")
  read -r _ _ del_a _ drop_a _ _ < <(grep '^a ' "$out.stats")
  read -r _ _ del_b _ drop_b _ _ < <(grep '^b ' "$out.stats")
  say "$name: sent $sent; a (keep) delivered $del_a, received $got_a; b (frame_aware(0.3)) delivered $del_b," \
      "dropped $drop_b, received $got_b"
  [ "$del_a" = "$sent" ] && [ "$got_a" = "$sent" ] || die "$name: process a (keep) did not get every datagram"
  [ "$got_b" = "$del_b" ] || die "$name: process b received $got_b, the kernel delivered $del_b"
  [ $((del_b + drop_b)) = "$sent" ] || die "$name: process b's delivered + dropped is not what was sent"
  [ "$drop_b" -gt 0 ] || die "$name: frame_aware(0.3) dropped nothing"
}

run_consumer "$work/cmake-build/qocnet-consumer" find_package
run_consumer "$work/pc-build/qocnet-consumer" pkg-config
say "passed"
