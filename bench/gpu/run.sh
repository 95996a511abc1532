#!/usr/bin/env bash
# Latent decoder images/s on GPU vs CPU and across batch sizes (< 10 minutes: the bench model, then the trained demo-v2 decoder). See bench/gpu/README.md.
# Usage: bash bench/gpu/run.sh        (from any directory; run it from a built checkout)
set -uo pipefail
cd "$(dirname "$0")/../.."
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
echo "==> machine"
echo "cores: $(nproc)  node: $(node --version 2>/dev/null || echo missing)"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
else
  echo "nvidia-smi: not found (no NVIDIA driver visible); only CPU figures will be produced"
fi

echo "==> dependencies"
if [ ! -d node_modules ]; then
  # onnxruntime-node's postinstall downloads optional GPU binaries from NuGet; skip it here and
  # fetch the CUDA part explicitly below (where the network allows), so an offline install works.
  ONNXRUNTIME_NODE_INSTALL=skip pnpm install --frozen-lockfile || { echo "pnpm install failed (offline? carry node_modules)"; exit 1; }
fi
[ -f packages/inference/dist/index.js ] || pnpm run build

ORT_DIR=$(node -e 'console.log(require("path").dirname(require.resolve("onnxruntime-node/package.json", {paths:[require("path").resolve("packages/inference")]})))')
BIN="$ORT_DIR/bin/napi-v6/linux/x64"
echo "onnxruntime-node: $ORT_DIR"
if command -v nvidia-smi >/dev/null 2>&1 && [ ! -f "$BIN/libonnxruntime_providers_cuda.so" ]; then
  if [ "${BENCH_GPU_FETCH:-1}" = 1 ]; then
    echo "CUDA provider libraries are missing; trying onnxruntime-node's installer (cuda12, 60 s limit; needs network)"
    (cd "$ORT_DIR" && ONNXRUNTIME_NODE_INSTALL=cuda12 timeout 60 node script/install.js) \
      || echo "could not fetch the CUDA provider (offline?): the cuda row will say NOT usable"
  fi
fi
ls "$BIN" | sed 's/^/  bin: /'
command -v ldconfig >/dev/null && { ldconfig -p | grep -q libvulkan.so.1 && echo "libvulkan.so.1: present (webgpu can use Vulkan)" || echo "libvulkan.so.1: absent (webgpu will not be usable)"; }

echo "==> benchmark"
(cd bench && timeout 240 pnpm exec tsx --conditions=source gpu/latent-gpu.ts)
echo "==> benchmark: the trained Fashion-MNIST decoder (models/demo-v2, its manifest's scheduler and steps)"
(cd bench && BENCH_GPU_MODEL="$PWD/../models/demo-v2/decoder/manifest.json" BENCH_GPU_STEPS=0 \
  timeout 240 pnpm exec tsx --conditions=source gpu/latent-gpu.ts)
