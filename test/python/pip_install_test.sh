#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# clients/python installs with pip, offline, into a venv that sees Debian's
# python3-grpcio and python3-protobuf (--system-site-packages), and the
# installed qocnet is the one imported from outside the source tree.
# A copy of clients/python is installed, so the build leaves nothing behind
# in the source tree.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
python=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! "$python" -m venv --system-site-packages "$tmp/venv" >"$tmp/venv.log" 2>&1; then
  cat "$tmp/venv.log" >&2
  echo "cannot make a venv: apt-get install python3-venv" >&2
  exit 1
fi
cp -r "$repo/clients/python" "$tmp/src"
rm -rf "$tmp/src/build" "$tmp/src"/*.egg-info
"$tmp/venv/bin/python" -m pip install --quiet --no-build-isolation --no-index "$tmp/src"
rm -rf "$tmp/src"  # what runs now is the installed copy only
cd "$tmp"
"$tmp/venv/bin/python" - "$tmp/venv" <<'PY'
import pathlib
import sys

import qocnet
import qocnet.aio
from qocnet.v1 import control_pb2_grpc, qoc_pb2, types_pb2

venv = pathlib.Path(sys.argv[1]).resolve()
assert qocnet.__version__ == "0.1.0", qocnet.__version__
for module in (qocnet, qoc_pb2, qocnet.aio):
    where = pathlib.Path(module.__file__).resolve()
    assert venv in where.parents, f"{module.__name__} from {where}, not from the venv {venv}"
root = pathlib.Path(qocnet.__file__).parent
assert (root / "py.typed").is_file(), "py.typed is not installed"
assert (root / "v1" / "qoc_pb2.pyi").is_file(), "the .pyi stubs are not installed"
from importlib.metadata import requires, version
assert version("qocnet") == "0.1.0"
assert {r.split()[0] for r in requires("qocnet")} == {"grpcio", "protobuf"}, requires("qocnet")
request = qocnet.register_request("detector", ["10.0.0.1:40000->:5000"], required=0.9, udp_port=6000)
assert request.udp_port == 6000 and isinstance(request, qoc_pb2.RegisterProcessRequest)
print(f"qocnet {qocnet.__version__} installed in {venv}: {pathlib.Path(qoc_pb2.__file__)}")
PY
