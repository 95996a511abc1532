#!/usr/bin/env bash
# Runs every benchmark; each prints its baseline, its figure and the ratio, then a RESULT line.
# Usage: bench/run.sh [name ...]   (names: prior-throughput create-job-latency hop-latency batch-intake fairness batch-e2e decoder-batching erasure)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || bash packages/devstack/bin/setup.sh
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
benches=("$@")
[ "${#benches[@]}" -gt 0 ] || benches=(prior-throughput create-job-latency hop-latency batch-intake fairness batch-e2e decoder-batching)
for b in "${benches[@]}"; do
  echo "==> bench/$b.ts"
  (cd bench && pnpm exec tsx --conditions=source "$b.ts")
done
