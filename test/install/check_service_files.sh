#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# check_service_files: what a machine gets to run qocnet as a service.
# Installs the build with DESTDIR into a temporary root (beside a copy of
# the host's systemd units, for the targets the units name), then:
#   - systemd-analyze verify finds nothing to say about qocnetd.service or
#     qocnet-sensor@.service (as written and as an instance);
#   - systemd-tmpfiles makes the tmpfiles.d entry's directories, modes right;
#   - every installed program answers --version: its version, the running
#     libqocnet's (with git describe) and libbcc's;
#   - each installed man page renders with no warning;
#   - qocnetctl's installed bash completion completes.
# No root needed.
#   test/install/check_service_files.sh BUILD_DIR
set -euo pipefail
build=$(realpath "$1")
root=$(mktemp -d /tmp/qocnet-service-check.XXXXXX)
trap 'rm -rf "$root"' EXIT
say() { echo "check_service_files: $*"; }
die() { printf 'check_service_files: FAILED: %b\n' "$*" >&2; exit 1; }

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
[ -n "$prefix" ] || die "no CMAKE_INSTALL_PREFIX in $build/CMakeCache.txt"
say "DESTDIR=$root cmake --install $build (prefix $prefix)"
DESTDIR=$root cmake --install "$build" >"$root/install.log" || { cat "$root/install.log"; die "install"; }
mkdir -p "$root/usr/lib/systemd"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"

units=$prefix/lib/systemd/system
for u in qocnetd.service qocnet-sensor@.service; do
  [ -f "$root$units/$u" ] || die "$units/$u is not installed"
done
say "systemd-analyze verify"
out=$(cd "$root" && systemd-analyze verify --man=no --root="$root" "$root$units/qocnetd.service" \
        "$root$units/qocnet-sensor@.service" qocnet-sensor@eth0.service 2>&1) \
  || die "systemd-analyze verify failed:\n$out"
[ -z "$out" ] || die "systemd-analyze verify has something to say:\n$out"
grep -q '^Type=notify$' "$root$units/qocnetd.service" || die "qocnetd.service is not Type=notify"
grep -q "^ExecStart=$prefix/bin/qocnetd " "$root$units/qocnetd.service" || die "qocnetd.service does not start $prefix/bin/qocnetd"

say "systemd-tmpfiles --create"
conf=$root$prefix/lib/tmpfiles.d/qocnet.conf
[ -f "$conf" ] || die "tmpfiles.d/qocnet.conf is not installed"
out=$(systemd-tmpfiles --create --root="$root" "$conf" 2>&1) || die "systemd-tmpfiles failed:\n$out"
[ -z "$out" ] || die "systemd-tmpfiles has something to say:\n$out"
for want in "/run/qocnet 755" "/run/qocnet/process 755" "/run/qocnet/state 700" "/run/qocnet/locks 700" \
            "/run/qocnet-sensor 755"; do
  set -- $want
  [ -d "$root$1" ] || die "systemd-tmpfiles did not make $1"
  [ "$(stat -c %a "$root$1")" = "$2" ] || die "$1 has mode $(stat -c %a "$root$1"), not $2"
done
# The configuration is installed where the unit reads it (for the prefix
# /usr that is /etc/qocnet, not /usr/etc/qocnet).
config=$(sed -n 's/^ExecStart=.* --config \([^ ]*\).*/\1/p' "$root$units/qocnetd.service")
[ -n "$config" ] || die "qocnetd.service's ExecStart names no --config"
[ -f "$root$config" ] || die "qocnetd.service reads $config, which is not installed" \
  "(installed: $(cd "$root" && find . -name qocnetd.yaml | sed 's/^\.//' | paste -sd ' '))"
[ "$prefix" != /usr ] || [ "$config" = /etc/qocnet/qocnetd.yaml ] \
  || die "with the prefix /usr, qocnetd.service reads $config, not /etc/qocnet/qocnetd.yaml"

say "--version of every installed program"
for b in qocnetd qocnetctl qocnet-sensor; do
  v=$("$root$prefix/bin/$b" --version) || die "$b --version failed"
  printf '%s\n' "$v" | head -1 | grep -Eq "^$b [0-9]+\.[0-9]+\.[0-9]+$" || die "$b --version says:\n$v"
  printf '%s\n' "$v" | grep -Eq "^libqocnet [0-9.]+ \(git .+\), libbcc [0-9]+\.[0-9]+" || die "$b --version says:\n$v"
done

say "man pages"
for b in qocnetd qocnetctl qocnet-sensor; do
  page=$root$prefix/share/man/man8/$b.8
  [ -f "$page" ] || die "the man page $b(8) is not installed"
  out=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) || die "man $page failed:\n$out"
  [ -z "$out" ] || die "man $page warns:\n$out"
  MANWIDTH=80 man -l "$page" 2>/dev/null | grep -q -- "--version" || die "$b(8) does not list --version"
done
say "bash completion"
comp=$root$prefix/share/bash-completion/completions/qocnetctl
[ -f "$comp" ] || die "qocnetctl's bash completion is not installed"
out=$(bash -c "source '$comp'; COMP_WORDS=(qocnetctl sensor a); COMP_CWORD=2; _qocnetctl; echo \${COMPREPLY[*]}" 2>&1)
[ "$out" = add ] || die "the installed completion of 'qocnetctl sensor a' is '$out', not 'add'"
say "ok"
