# SPDX-License-Identifier: Apache-2.0
"""qocnet's gRPC API, version 1: messages and stubs generated from
proto/qocnet/v1 by clients/python/generate-stubs.sh (do not edit the
*_pb2*.py files; regenerate them)."""
