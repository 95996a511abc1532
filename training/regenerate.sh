#!/usr/bin/env bash
# Regenerate every committed demo artifact under models/. Wall time per stage on a quiet 2-core machine
# (one torch thread per process), as measured on earlier runs (models/README.md); every run prints its
# own per stage ("[regenerate] <stage>: N s"):
#   world ~122 s · train-prior, trained and control in parallel, ~165 s · add-users ~60 s · evaluate ~110 s
#   (442–457 s for the whole prior part in two runs, so export ×2, validate --parity ×2 and export-verifier
#   took seconds each) · x0-error: not timed yet · sampler evaluation (frontier-cli) ~25 min on one core
#   (its 28 DDPM-1000 runs of 800 items dominate) · regenerate-decoder.sh ~20 min (VAE, classifier, UNet).
# About 55 min in all; on a machine shared with other work, 3–5× that.
set -euo pipefail
cd "$(dirname "$0")"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONHASHSEED=0
PY=/usr/bin/python3

need=()
for pkg in python3-torch python3-onnx python3-numpy dataset-fashion-mnist; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${need[@]}"
fi

# Everything is built in a fresh directory under $WORK; the committed models/ stays intact (other
# checkouts' tests read it) until the end, when each finished version directory is moved into $OUT with
# rename(2) (same filesystem: the old version is renamed aside, the new one renamed in, the old one deleted).
OUT=${OUT:-../models}
WORK=${WORK:-work}
mkdir -p "$WORK" "$OUT"
BUILD=$(mktemp -d "$WORK/regen.XXXXXX")
trap 'rm -rf "$BUILD"' EXIT
V=$BUILD/demo-v1
C=$BUILD/demo-v1-control
W=$V/world
start=$(date +%s)
lap_at=$start
# Prints how long the stage just finished took, so every run shows where its time goes.
lap() {
  local now
  now=$(date +%s)
  echo "[regenerate] $1: $((now - lap_at)) s"
  lap_at=$now
}

$PY -m rebeca_train world --out-dir "$V"
lap world
# the trained prior and the shuffled-user control train in parallel (one thread each)
$PY -m rebeca_train train-prior --arch mlp --items $W/items.npy --item-ids $W/item_ids.txt \
  --interactions $W/ratings.csv --out "$WORK/demo-v1.pt" > "$WORK/train-demo-v1.log" 2>&1 &
p1=$!
$PY -m rebeca_train train-prior --arch mlp --shuffle-users --items $W/items.npy --item-ids $W/item_ids.txt \
  --interactions $W/ratings.csv --out "$WORK/demo-v1-control.pt" > "$WORK/train-demo-v1-control.log" 2>&1 &
p2=$!
wait $p1 || { cat "$WORK/train-demo-v1.log" >&2; exit 1; }
wait $p2 || { cat "$WORK/train-demo-v1-control.log" >&2; exit 1; }
tail -n 3 "$WORK/train-demo-v1.log" "$WORK/train-demo-v1-control.log"
lap "train-prior (trained and control, in parallel)"
$PY -m rebeca_train export --checkpoint "$WORK/demo-v1.pt" --out-dir "$V" --version demo-v1
$PY -m rebeca_train export --checkpoint "$WORK/demo-v1-control.pt" --out-dir "$C" --version demo-v1-control \
  --decoder-dir "$V/decoder"
# the control serves the same demo world (evaluation reads models/<version>/world)
ln -s ../demo-v1/world "$C/world"
lap "export (both)"
sha_before=$(sha256sum "$V/prior.onnx" | cut -d' ' -f1)
$PY -m rebeca_train add-users --model-dir "$V" --items $W/items.npy --item-ids $W/item_ids.txt \
  --interactions $W/ratings_new_users.csv
sha_after=$(sha256sum "$V/prior.onnx" | cut -d' ' -f1)
[ "$sha_before" = "$sha_after" ] || { echo "prior.onnx changed during add-users" >&2; exit 1; }
echo "prior.onnx sha256 before/after add-users: $sha_after"
lap add-users
$PY -m rebeca_train validate "$V" --parity
$PY -m rebeca_train validate "$C" --parity
lap "validate --parity (both)"
$PY -m rebeca_train export-verifier --world "$W"
lap export-verifier
$PY -m rebeca_train evaluate --model-dir "$V" --control-dir "$C" --world "$W" --out "$BUILD/evaluation.json"
lap evaluate
# publish: one rename per version directory (plus evaluation.json)
for v in demo-v1 demo-v1-control; do
  rm -rf "$OUT/$v.old"
  if [ -e "$OUT/$v" ]; then mv "$OUT/$v" "$OUT/$v.old"; fi
  mv "$BUILD/$v" "$OUT/$v"
  rm -rf "$OUT/$v.old"
done
mv -f "$BUILD/evaluation.json" "$OUT/evaluation.json"
W_OUT=$OUT/demo-v1/world
# prior stage: the x0 error per t behind docs/evaluation.md's figure, then the sampler frontier
# (TypeScript serving sampler, onnxruntime-node), which writes each manifest's `defaults`
$PY -m rebeca_train x0-error --model-dir "$OUT/demo-v1" --world "$W_OUT" \
  --include-json ../docs/figures/x0-error-demo-v1-before.json --out-json ../docs/figures/x0-error.json \
  --out-svg ../docs/figures/x0-error.svg > "$WORK/x0-error.md"
lap x0-error
[ -f ../packages/eval/dist/frontier-cli.js ] || (cd .. && pnpm run -s build)
# 200 users × 4 items × 2 seed sets (8 items per user); DDPM-1000 dominates (~1 min per point here)
node ../packages/eval/dist/frontier-cli.js --model "$OUT/demo-v1" --control "$OUT/demo-v1-control" \
  --users 200 --items 4 --control-guidance 1,3,7 --out "$OUT/frontier.json" \
  --svg ../docs/figures/frontier-demo-v1.svg --write-defaults > "$WORK/frontier.md"
lap "sampler evaluation (frontier-cli)"
$PY -m rebeca_train validate "$OUT/demo-v1" >/dev/null
$PY -m rebeca_train validate "$OUT/demo-v1-control" >/dev/null
OUT="$OUT" WORK="$WORK" bash regenerate-decoder.sh  # the latent-diffusion decoder for the new encoder; demo-v2(-control)
lap regenerate-decoder.sh
echo "regenerate.sh done in $(( $(date +%s) - start ))s"
