#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Regenerates the Python messages and gRPC stubs of package qocnet from
# proto/qocnet/v1 with Debian's protoc and grpc_python_plugin
# (protobuf-compiler, protobuf-compiler-grpc):
#
#   clients/python/generate-stubs.sh            # refreshes clients/python/qocnet/v1
#   clients/python/generate-stubs.sh OUTDIR     # writes OUTDIR/qocnet/v1 instead
#
# The output is checked in; CTest's "client: python stubs ..." test runs this
# into a temporary directory and fails if the checked-in files differ.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$here}
mkdir -p "$out"
out=$(cd "$out" && pwd)  # absolute: protoc runs from proto/
protoc=${PROTOC:-protoc}
plugin=${GRPC_PYTHON_PLUGIN:-$(command -v grpc_python_plugin || true)}
if ! command -v "$protoc" >/dev/null 2>&1; then
  echo "generate-stubs.sh: protoc not found: apt-get install protobuf-compiler" >&2
  exit 1
fi
if [ -z "$plugin" ] || [ ! -x "$plugin" ]; then
  echo "generate-stubs.sh: grpc_python_plugin not found: apt-get install protobuf-compiler-grpc" >&2
  exit 1
fi
mkdir -p "$out/qocnet/v1"
cd "$repo/proto"
"$protoc" --proto_path=. --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  --plugin=protoc-gen-grpc_python="$plugin" qocnet/v1/*.proto
# qocnet's files name their licence (scripts/check-spdx): after the encoding
# line protoc writes first in *_pb2.py, on the first line of the others.
for f in qocnet/v1/*.proto; do
  stem="$out/${f%.proto}"
  sed -i '1a # SPDX-License-Identifier: Apache-2.0' "${stem}_pb2.py"
  sed -i '1i # SPDX-License-Identifier: Apache-2.0' "${stem}_pb2_grpc.py" "${stem}_pb2.pyi"
done
