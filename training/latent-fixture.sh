#!/usr/bin/env bash
# Regenerate the committed tiny latent-diffusion decoder fixture (random weights, real I/O signatures)
# and its scheduler/decode reference values. Seconds on one core; deterministic for a given torch build.
set -euo pipefail
cd "$(dirname "$0")"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONHASHSEED=0
OUT=${OUT:-../packages/inference/test-fixtures/latent-tiny}
/usr/bin/python3 -m rebeca_train latent-fixture --out-dir "$OUT"
/usr/bin/python3 -m unittest tests.test_latent
du -sh "$OUT"
# The benchmarks' model: the same architecture with a 32×32 latent (128×128 images), so that a decode
# costs what it would relative to the worker's per-job work; no reference decodes (large images).
/usr/bin/python3 -m rebeca_train latent-fixture --out-dir ../bench/models/latent-bench --latent-size 32 --no-decode-parity
du -sh ../bench/models/latent-bench
