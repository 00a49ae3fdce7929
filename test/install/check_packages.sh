#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check_packages: qocnet's Debian packages as an operator gets them.
#   1. cpack builds the six packages from a build configured with the prefix
#      /usr; each one's control fields (name, architecture, dependencies
#      between the packages and on Debian's libraries) and contents are
#      checked, and qocnetd's configuration is a conffile;
#   2. `apt-get install ./*.deb` installs them on this machine;
#   3. the installed programs answer --version from the installed library,
#      the installed unit verifies, the man pages and the Python package are
#      found where Debian looks for them;
#   4. the installed qocnetd starts in a network namespace of this test's own
#      with the installed configuration, answers the installed qocnetctl and
#      stops cleanly on SIGTERM;
#   5. the installed PyAV example (python3-qocnet) registers with that
#      qocnetd from a process namespace and reports the share of a real
#      H.264 stream's frames it decoded;
#   6. examples/consumer and examples/cpp_process build out of the tree
#      against the installed libqocnet-dev, and the consumer replicates a
#      stream between namespaces (check_install.sh --installed /usr);
#   7. `apt-get purge` removes every file again, the conffile too.
# Root (it installs packages; SKIPPED without). It refuses to run when any of
# the packages is installed already: it would replace and then purge them.
#   test/install/check_packages.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$(realpath "$1") build=$(realpath "$2")
pkgs=(libqocnet0 libqocnet-dev qocnetd qocnet-sensor qocnetctl python3-qocnet)
say() { echo "check_packages: $*"; }
die() { printf 'check_packages: FAILED: %b\n' "$*" >&2; exit 1; }

if [ "$(id -u)" != 0 ]; then
  say "SKIPPED: installing packages needs root"
  exit 77
fi
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
[ "$prefix" = /usr ] || die "the packages carry their installed paths: configure $build with" \
  "-DCMAKE_INSTALL_PREFIX=/usr (it has $prefix), as scripts/test does"
for p in "${pkgs[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    die "$p is installed on this machine already; this test installs and purges its own packages:" \
        "remove it first (apt-get purge ${pkgs[*]})"
  fi
done

work=$(mktemp -d /tmp/qocnet-packages.XXXXXX)
chmod 755 "$work"
tag=qp$$
ns=${tag}e
installed=0 daemon= sender= example_pid=
cleanup() {
  for p in $daemon $sender $example_pid; do kill -9 "$p" 2>/dev/null || true; done
  for n in "$ns" "$tag"s "$tag"a; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "/sys/fs/bpf/$ns"
  if [ $installed = 1 ]; then
    apt-get purge -y "${pkgs[@]}" >/dev/null 2>&1 || echo "check_packages: could not purge ${pkgs[*]}" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

say "cpack -G DEB in $build"
(cd "$build" && cpack -G DEB -B "$work/out") >"$work/cpack.log" 2>&1 || { cat "$work/cpack.log"; die "cpack"; }
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
[ -n "$version" ] || die "no CMAKE_PROJECT_VERSION in $build/CMakeCache.txt"
arch=$(dpkg --print-architecture)

deb_of() { # deb_of PACKAGE: the one .deb cpack made of it
  local f
  f=$(find "$work/out" -maxdepth 1 -name "$1_*.deb")
  [ -n "$f" ] && [ "$(printf '%s\n' "$f" | wc -l)" = 1 ] || die "cpack made no single $1_*.deb (it made: $(ls "$work/out"))"
  printf '%s\n' "$f"
}
field() { dpkg-deb -f "$(deb_of "$1")" "$2"; }
has_file() { # has_file PACKAGE PATH
  dpkg-deb -c "$(deb_of "$1")" | awk '{ print $6 }' | sed 's,^\./,/,' | grep -qx "$2" \
    || die "$1 does not ship $2; it ships:\n$(dpkg-deb -c "$(deb_of "$1")" | awk '{ print $6 }')"
}
depends_on() { # depends_on PACKAGE REGEX: its Depends has an entry matching it
  local d
  d=$(field "$1" Depends)
  printf '%s\n' "$d" | tr ',' '\n' | sed 's/^ *//' | grep -Eqx "$2" || die "$1's Depends ($d) has no '$2'"
}

say "control fields and contents"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
libdir=/usr/lib/$multiarch
for p in "${pkgs[@]}"; do
  [ "$(field "$p" Package)" = "$p" ] || die "$(deb_of "$p") is package '$(field "$p" Package)', not $p"
  [ "$(field "$p" Version)" = "$version" ] || die "$p has version $(field "$p" Version), not $version"
  want=$arch
  [ "$p" = python3-qocnet ] && want=all
  [ "$(field "$p" Architecture)" = "$want" ] || die "$p is for architecture $(field "$p" Architecture), not $want"
  has_file "$p" "/usr/share/doc/$p/copyright"
done
has_file libqocnet0 "$libdir/libqocnet.so.$version"
has_file libqocnet0 "$libdir/qocnet/libqocnet-bcc.so"
depends_on libqocnet0 'libbpf1( .*)?'
depends_on libqocnet0 'libbpfcc( .*)?'
for p in libqocnet-dev qocnetd qocnet-sensor qocnetctl; do
  depends_on "$p" "libqocnet0 \(= $version\)"
done
has_file libqocnet-dev /usr/include/qocnet/edge.hpp
has_file libqocnet-dev /usr/include/qocnet/version.hpp
has_file libqocnet-dev "$libdir/cmake/qocnet/qocnetConfig.cmake"
has_file libqocnet-dev "$libdir/pkgconfig/qocnet.pc"
has_file qocnetd /usr/bin/qocnetd
has_file qocnetd /usr/lib/systemd/system/qocnetd.service
has_file qocnetd /usr/lib/tmpfiles.d/qocnet.conf
has_file qocnetd /etc/qocnet/qocnetd.yaml
has_file qocnetd /usr/share/man/man8/qocnetd.8
depends_on qocnetd 'libgrpc\+\+1[.0-9]*( .*)?'
dpkg-deb -I "$(deb_of qocnetd)" conffiles | grep -qx /etc/qocnet/qocnetd.yaml \
  || die "qocnetd does not mark /etc/qocnet/qocnetd.yaml as a conffile"
has_file qocnet-sensor /usr/bin/qocnet-sensor
has_file qocnet-sensor /usr/lib/systemd/system/qocnet-sensor@.service
has_file qocnetctl /usr/bin/qocnetctl
has_file qocnetctl /usr/share/bash-completion/completions/qocnetctl
has_file python3-qocnet /usr/lib/python3/dist-packages/qocnet/__init__.py
has_file python3-qocnet /usr/lib/python3/dist-packages/qocnet/v1/qoc_pb2.py
depends_on python3-qocnet 'python3-grpcio'
depends_on python3-qocnet 'python3-protobuf'

say "apt-get install ./*.deb"
installed=1
(cd "$work/out" && apt-get install -y --no-install-recommends ./*.deb) >"$work/apt.log" 2>&1 \
  || { tail -n 30 "$work/apt.log"; die "apt-get install ./*.deb"; }
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" | grep -q "install ok installed" || die "$p is not installed after apt-get"
done

say "the installed programs"
for b in qocnetd qocnetctl qocnet-sensor; do
  v=$("/usr/bin/$b" --version) || die "/usr/bin/$b --version failed"
  printf '%s\n' "$v" | head -1 | grep -qx "$b $version" || die "/usr/bin/$b --version says:\n$v"
  lib=$(ldd "/usr/bin/$b" | awk '/libqocnet\.so/ { print $3 }')
  [ "$(realpath "$lib")" = "$libdir/libqocnet.so.$version" ] || die "/usr/bin/$b uses $lib, not the installed library"
  man -w "$b" >/dev/null 2>&1 || die "man finds no page for $b"
done
out=$(systemd-analyze verify --man=no /usr/lib/systemd/system/qocnetd.service 2>&1) \
  || die "systemd-analyze verify of the installed qocnetd.service:\n$out"
[ -z "$out" ] || die "systemd-analyze verify of the installed qocnetd.service has something to say:\n$out"
[ -d /run/qocnet/process ] || die "qocnetd's postinst did not make /run/qocnet/process (systemd-tmpfiles)"
pyfile=$(cd / && /usr/bin/python3 -c 'import qocnet, qocnet.v1.qoc_pb2 as m; print(m.__file__)') \
  || die "/usr/bin/python3 cannot import the installed qocnet"
case "$pyfile" in
  /usr/lib/python3/dist-packages/qocnet/*) ;;
  *) die "/usr/bin/python3 imported qocnet from $pyfile, not from python3-qocnet" ;;
esac

say "the installed qocnetd in namespace $ns"
ip netns add "$ns"
ip -n "$ns" link set lo up
nsenter --net=/run/netns/"$ns" /usr/bin/qocnetd --config /etc/qocnet/qocnetd.yaml \
  --listen "unix:$work/qocnet.sock" --process-listen "unix:$work/process.sock" \
  --pin-dir "/sys/fs/bpf/$ns" --state-file "$work/state" >"$work/qocnetd.log" 2>&1 &
daemon=$!
ready=0
for _ in $(seq 180); do
  if out=$(/usr/bin/qocnetctl --address "unix:$work/qocnet.sock" version 2>&1) && grep -q "qocnetd $version" <<<"$out"; then
    ready=1 && break
  fi
  kill -0 $daemon 2>/dev/null || { cat "$work/qocnetd.log"; die "the installed qocnetd exited before it served"; }
  sleep 1
done
[ $ready = 1 ] || { cat "$work/qocnetd.log"; die "the installed qocnetd did not answer qocnetctl version in 180 s: $out"; }
say "qocnetctl version: $(tr '\n' ' ' <<<"$out")"
kill -TERM $daemon
rc=0
wait $daemon || rc=$?
daemon=
[ $rc = 0 ] || { cat "$work/qocnetd.log"; die "the installed qocnetd exited with $rc on SIGTERM"; }

# The installed Python SDK's PyAV example as a computation process, against
# the installed qocnetd, on a real H.264 stream:
#   sensor s0 --- e0 [edge] e1 --- pa (the process)
say "the installed PyAV example against the installed qocnetd"
for n in s a; do ip netns add "$tag$n"; done
ip link add s0 netns "$tag"s type veth peer e0 netns "$ns"
ip link add pa netns "$tag"a type veth peer e1 netns "$ns"
ip -n "$tag"s addr add 10.91.0.1/24 dev s0
ip -n "$ns" addr add 10.91.0.2/24 dev e0
ip -n "$ns" addr add 10.91.1.1/24 dev e1
ip -n "$tag"a addr add 10.91.1.2/24 dev pa
for n in "$tag"s "$ns" "$tag"a; do
  ip -n "$n" link set lo up
  ip netns exec "$n" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
done
ip -n "$tag"s link set s0 up; ip -n "$tag"a link set pa up
ip -n "$ns" link set e0 up; ip -n "$ns" link set e1 up
ip -n "$tag"a route add default via 10.91.1.1
cat >"$work/qocnetd.yaml" <<YAML
ports: [e0]
tenants:
  - {name: root, uid: 0, streams: ["10.91.0.1:40000->:5000"]}
YAML
nsenter --net=/run/netns/"$ns" /usr/bin/qocnetd --config "$work/qocnetd.yaml" \
  --listen "unix:$work/qocnet.sock" --process-listen "unix:$work/process.sock" \
  --pin-dir "/sys/fs/bpf/$ns" --state-file "$work/state2" >"$work/qocnetd2.log" 2>&1 &
daemon=$!
ctl() { /usr/bin/qocnetctl --address "unix:$work/qocnet.sock" "$@"; }
for _ in $(seq 180); do
  ctl status >/dev/null 2>&1 && break
  kill -0 $daemon 2>/dev/null || { cat "$work/qocnetd2.log"; die "the installed qocnetd exited before it served"; }
  sleep 1
done
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=320x240:rate=25 -t 20 -c:v libx264 \
       -preset ultrafast -b:v 1M -bf 0 -g 25 -f mpegts "$work/clip.ts"
# The sensor sends the clip at its own pace, over and over, until killed.
ip netns exec "$tag"s /usr/bin/python3 -c '
import socket, sys, time
data = open(sys.argv[1], "rb").read()
grams = [data[i:i + 1316] for i in range(0, len(data) - 1315, 1316)]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.91.0.1", 40000))
each = 20.0 / len(grams)
t = time.monotonic()
while True:
    for g in grams:
        s.sendto(g, ("10.91.0.2", 5000))
        t += each
        time.sleep(max(0.0, t - time.monotonic()))
' "$work/clip.ts" &
sender=$!
example=/usr/share/doc/python3-qocnet/examples/pyav_qoc.py
[ -f "$example" ] || die "python3-qocnet does not ship $example"
nsenter --net=/run/netns/"$tag"a /usr/bin/python3 "$example" --address "unix:$work/process.sock" \
  --name pyav --udp-port 6000 --stream "10.91.0.1:40000->:5000" --window 2 >"$work/example.log" 2>&1 &
example_pid=$!
measured=
for _ in $(seq 90); do
  measured=$(ctl -o json watch --count 1 2>/dev/null | /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    for s in json.loads(line).get("streams", []):
        # requirements: by process, in the order of targets
        for t, r in zip(s.get("targets", []), s.get("requirements", [])):
            if t.get("process") == "pyav" and "measured" in r:
                print(r["measured"])
') || true
  [ -n "$measured" ] && break
  kill -0 $example_pid 2>/dev/null || break
  sleep 1
done
kill $sender 2>/dev/null || true
logs() { echo "--- qocnetd:"; cat "$work/qocnetd2.log"; echo "--- the example:"; cat "$work/example.log"; }
[ -n "$measured" ] || { logs; die "no measured QoC from the installed PyAV example reached qocnetd in 90 s"; }
awk -v q="$measured" 'BEGIN { exit !(q > 0.5 && q <= 1.0) }' \
  || { logs; die "the PyAV example measured QoC $measured with nothing dropped (expected > 0.5, <= 1)"; }
say "the installed PyAV example reported a measured QoC of $measured to the installed qocnetd"
kill -TERM $example_pid
wait $example_pid || { logs; die "the PyAV example did not end cleanly on SIGTERM"; }
kill -TERM $daemon
rc=0
wait $daemon || rc=$?
daemon=
[ $rc = 0 ] || { logs; die "the installed qocnetd exited with $rc on SIGTERM"; }

# An application developer's view of the installed libqocnet-dev: the
# out-of-tree consumer (find_package and pkg-config) replicating a stream
# between namespaces, and examples/cpp_process against qocnet::client.
say "test/install/check_install.sh --installed /usr"
"$src/test/install/check_install.sh" "$src" --installed /usr 2>&1 | sed 's/^/  /'
[ "${PIPESTATUS[0]}" = 0 ] || die "the out-of-tree applications against the installed packages (above)"

say "apt-get purge"
apt-get purge -y "${pkgs[@]}" >"$work/purge.log" 2>&1 || { tail -n 30 "$work/purge.log"; die "apt-get purge"; }
installed=0
for f in /usr/bin/qocnetd /usr/bin/qocnetctl /usr/bin/qocnet-sensor "$libdir/libqocnet.so.0" \
         /usr/include/qocnet /etc/qocnet/qocnetd.yaml /usr/lib/python3/dist-packages/qocnet; do
  [ ! -e "$f" ] || die "$f is still there after apt-get purge"
done
say "ok: $(cd "$work/out" && ls ./*.deb | sed 's,^\./,,' | paste -sd ' ')"
