#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The checked-in Python stubs (clients/python/qocnet/v1/*_pb2*) are what
# clients/python/generate-stubs.sh makes from proto/qocnet/v1 today: they
# are regenerated into a temporary directory and compared file by file.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$repo/clients/python/generate-stubs.sh" "$tmp"
status=0
for f in "$tmp"/qocnet/v1/*_pb2*; do
  name=$(basename "$f")
  if ! cmp -s "$f" "$repo/clients/python/qocnet/v1/$name"; then
    echo "stale: clients/python/qocnet/v1/$name differs from what proto/ generates" >&2
    diff -u "$repo/clients/python/qocnet/v1/$name" "$f" 2>&1 | head -20 >&2 || true
    status=1
  fi
done
for f in "$repo"/clients/python/qocnet/v1/*_pb2*; do
  name=$(basename "$f")
  if [ ! -e "$tmp/qocnet/v1/$name" ]; then
    echo "stale: clients/python/qocnet/v1/$name has no .proto any more" >&2
    status=1
  fi
done
if [ "$status" -ne 0 ]; then
  echo "refresh the stubs: clients/python/generate-stubs.sh (then commit clients/python/qocnet/v1)" >&2
  exit 1
fi
echo "clients/python/qocnet/v1: up to date with proto/qocnet/v1"
