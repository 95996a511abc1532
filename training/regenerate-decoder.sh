#!/usr/bin/env bash
# The latent-diffusion decoder of the demo (docs/latent-export.md, "A trained decoder"):
#   classifier ‖ VAE (two processes, one thread each), then the UNet + IP-Adapter projection conditioned on
#   the prior version's encoder, export-latent, the realism evaluation against the autoencoder decoder,
#   and pair-version: $OUT/demo-v2 = $OUT/demo-v1's prior (linked) + this decoder.
# Fixed step counts (seeded); each stage logs its CPU seconds. Full run: ≈ 40 CPU-minutes of training on
# 2 cores. SMOKE=1: a few steps of each stage on a data subset, into a temporary directory (CI).
set -euo pipefail
cd "$(dirname "$0")"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONHASHSEED=0
PY=/usr/bin/python3
OUT=${OUT:-../models}
WORK=${WORK:-work}
PRIOR=${PRIOR:-demo-v1}
VERSION=${VERSION:-demo-v2}
SCHEDULER=${SCHEDULER:-ddim} STEPS=${STEPS:-20} GUIDANCE=${GUIDANCE:-3}
mkdir -p "$WORK"
if [ "${SMOKE:-0}" = 1 ]; then
  W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
  SUB="--train-images 512"; VAE_STEPS=3; UNET_STEPS=3; BATCH="--batch 16"; CLS_EPOCHS=0
  OUT=$W/models; mkdir -p "$OUT"; cp -r "../models/$PRIOR" "$OUT/$PRIOR"
else
  W=$WORK/decoder; mkdir -p "$W"
  SUB=""; VAE_STEPS=${VAE_STEPS:-800}; UNET_STEPS=${UNET_STEPS:-2400}; BATCH=""; CLS_EPOCHS=3
fi
P=$OUT/$PRIOR
start=$(date +%s)

# the realism classifier trains beside the VAE (one core each)
if [ "$CLS_EPOCHS" -gt 0 ]; then
  $PY -m rebeca_train train-classifier --out "$W/classifier.pt" --epochs "$CLS_EPOCHS" > "$W/classifier.log" 2>&1 &
  cls=$!
fi
$PY -m rebeca_train train-vae --out "$W/vae.pt" --steps "$VAE_STEPS" $BATCH $SUB
$PY -m rebeca_train train-latent-unet --vae "$W/vae.pt" --encoder "$P/decoder/encoder.onnx" --out "$W/latent.pt" \
  --steps "$UNET_STEPS" $BATCH $SUB
$PY -m rebeca_train export-latent --weights "$W/latent.pt" --out-dir "$W/latent" \
  --scheduler "$SCHEDULER" --steps "$STEPS" --guidance "$GUIDANCE"
if [ "$CLS_EPOCHS" -gt 0 ]; then
  wait $cls || { cat "$W/classifier.log" >&2; exit 1; }
  tail -n 1 "$W/classifier.log"
  $PY -m rebeca_train evaluate-decoders --weights "$W/latent.pt" --ae-decoder-dir "$P/decoder" --prior-dir "$P" \
    --world "$P/world" --classifier "$W/classifier.pt" --out "$OUT/decoder-evaluation.json" \
    --scheduler "$SCHEDULER" --steps "$STEPS" --guidance "$GUIDANCE" ${SWEEP:+--sweep "$SWEEP"}
fi
# publish: the new version is built aside, then renamed in (its prior files are links into $P)
rm -rf "$OUT/$VERSION.new"
$PY -m rebeca_train pair-version --prior-dir "$P" --decoder-dir "$W/latent" --out-dir "$OUT/$VERSION.new" --version "$VERSION"
rm -rf "$OUT/$VERSION.old"
if [ -e "$OUT/$VERSION" ]; then mv "$OUT/$VERSION" "$OUT/$VERSION.old"; fi
mv "$OUT/$VERSION.new" "$OUT/$VERSION"
rm -rf "$OUT/$VERSION.old"
$PY -m rebeca_train validate "$OUT/$VERSION" --parity
echo "regenerate-decoder.sh done in $(( $(date +%s) - start ))s"
