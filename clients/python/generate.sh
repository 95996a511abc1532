#!/usr/bin/env bash
# Generates the Python messages and gRPC stubs from proto/ into clients/python/rebeca/ (not
# committed): Debian's protoc (protobuf-compiler) and grpc_python_plugin (protobuf-compiler-grpc),
# matching Debian's python3-protobuf and python3-grpcio (packages/devstack/bin/setup.sh installs them).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
protos="$(cd "$here/../../proto" && pwd)"
rm -rf "$here/rebeca"
mkdir -p "$here/rebeca"
cd "$protos"
mapfile -t files < <(find rebeca -name '*.proto' | sort)
protoc -I "$protos" --python_out="$here" --pyi_out="$here" \
  --grpc_python_out="$here" --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" "${files[@]}"
