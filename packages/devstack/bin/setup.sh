#!/usr/bin/env bash
# Installs what Rebeca needs on a fresh Debian machine and builds the workspace.
# Usage: setup.sh [--with-training] [--with-promtool]
# Idempotent: each step is skipped when its tool is already there.
set -euo pipefail
cd "$(dirname "$0")/../../.."

want_training=0
want_promtool=0
for arg in "$@"; do
  case "$arg" in
    --with-training) want_training=1 ;;
    --with-promtool) want_promtool=1 ;;
  esac
done

apt_packages=()
command -v redis-server >/dev/null || apt_packages+=(redis-server)
# The Redis failover fault test runs three sentinels (test/faults/redis-sentinel.test.ts).
command -v redis-sentinel >/dev/null || apt_packages+=(redis-sentinel)
# kubectl renders deploy/k8s in test/k8s (`kubectl kustomize`). Debian's kubernetes-client ships
# kubectl 1.20 (kustomize v2.0.3); the manifests are written to render on it and on newer ones.
command -v kubectl >/dev/null || apt_packages+=(kubernetes-client)
# The console's browser test drives Debian's Chromium with playwright-core (no browser download).
[ -x /usr/bin/chromium ] || apt_packages+=(chromium)
# The Python client (clients/python): Debian's grpcio and protobuf runtime, protoc and the gRPC
# Python plugin that generate its stubs. The HTTP/JSON walkthrough uses curl and jq; the TLS tests
# make their certificates with openssl.
/usr/bin/python3 -c "import grpc" 2>/dev/null || apt_packages+=(python3-grpcio python3-protobuf)
command -v protoc >/dev/null || apt_packages+=(protobuf-compiler)
command -v grpc_python_plugin >/dev/null || apt_packages+=(protobuf-compiler-grpc)
for tool in curl jq openssl; do command -v "$tool" >/dev/null || apt_packages+=("$tool"); done
if [ "$want_training" = 1 ]; then
  /usr/bin/python3 -c "import torch, onnx, numpy" 2>/dev/null || apt_packages+=(python3-torch python3-onnx python3-numpy)
  [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || apt_packages+=(dataset-fashion-mnist)
fi
if [ "$want_promtool" = 1 ]; then
  command -v promtool >/dev/null || apt_packages+=(prometheus)
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
  echo "==> apt-get install ${apt_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi
# The Debian package starts a system redis-server on 6379; Rebeca's scripts start their own.

if ! command -v pnpm >/dev/null; then
  echo "==> npm install -g pnpm@12"
  # Without its install script pnpm runs through Node; npm blocks the script anyway and warns in five lines.
  npm install -g --ignore-scripts pnpm@12 >/dev/null
fi

echo "==> pnpm install"
# onnxruntime-node's postinstall downloads CUDA files (offline here); its CPU binaries ship in the package.
ONNXRUNTIME_NODE_INSTALL=skip pnpm install --frozen-lockfile --reporter=silent

echo "==> pnpm build"
pnpm run -s build
