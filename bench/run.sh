#!/usr/bin/env bash
# Runs every benchmark; each prints its baseline, its figure and the ratio, then a RESULT line.
# Usage: bench/run.sh [name ...]   (names: prior-throughput prior-throughput-loading create-job-latency hop-latency batch-intake fairness batch-e2e decoder-batching retention-sweep deadline-overhead model-rollout erasure)
set -euo pipefail
cd "$(dirname "$0")/.."
# The same Node as the README's commands (24 LTS; installed when the machine's is older).
source packages/devstack/bin/use-node24.sh
[ -d node_modules ] || bash packages/devstack/bin/setup.sh
benches=("$@")
[ "${#benches[@]}" -gt 0 ] || benches=(prior-throughput create-job-latency hop-latency batch-intake fairness batch-e2e decoder-batching model-rollout)
for b in "${benches[@]}"; do
  echo "==> bench/$b.ts"
  (cd bench && pnpm exec tsx --conditions=source "$b.ts")
done
