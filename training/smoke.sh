#!/usr/bin/env bash
# CI smoke of the whole training path on a data subset (< 3 minutes): both architectures,
# export, parity (prior, decoder, encoder), add-users, refit-users, validate, a tiny evaluate, and the unit tests.
set -euo pipefail
cd "$(dirname "$0")"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONHASHSEED=0
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
start=$(date +%s)
$PY -m unittest discover -s tests
$PY -m rebeca_train world --out-dir "$T/mlp" --items 600 --users 24 --new-users 4 --ae-train 3000
W=$T/mlp/world
$PY -m rebeca_train export-verifier --world "$W" --steps 200
[ -s "$W/verifier.onnx" ] && [ -s "$W/verifier_users.txt" ] || { echo "export-verifier wrote no verifier" >&2; exit 1; }
for arch in mlp rebeca; do
  $PY -m rebeca_train train-prior --arch $arch --items $W/items.npy --item-ids $W/item_ids.txt \
    --interactions $W/ratings.csv --steps 200 --batch 128 --eval-every 100 --out "$T/$arch.pt"
  $PY -m rebeca_train export --checkpoint "$T/$arch.pt" --out-dir "$T/$arch" --version smoke-$arch \
    --decoder-dir "$T/mlp/decoder"
  sha=$(sha256sum "$T/$arch/prior.onnx" | cut -d' ' -f1)
  $PY -m rebeca_train add-users --model-dir "$T/$arch" --items $W/items.npy --item-ids $W/item_ids.txt \
    --interactions $W/ratings_new_users.csv --steps 50
  [ "$sha" = "$(sha256sum "$T/$arch/prior.onnx" | cut -d' ' -f1)" ] || { echo "prior.onnx changed" >&2; exit 1; }
  # the users just added get new likes: their rows are re-fitted in place, parity.json made again
  $PY -m rebeca_train refit-users --model-dir "$T/$arch" --items $W/items.npy --item-ids $W/item_ids.txt \
    --interactions $W/ratings_new_users.csv --steps 30
  [ "$sha" = "$(sha256sum "$T/$arch/prior.onnx" | cut -d' ' -f1)" ] || { echo "prior.onnx changed by refit-users" >&2; exit 1; }
  $PY -m rebeca_train validate "$T/$arch" --parity
done
# the decoder parity file (decoder/parity.json) is present and listed with its sha256 in both versions;
# validate --parity above already recomputed it from decoder.onnx / encoder.onnx weights
for d in "$T/mlp/decoder" "$T/rebeca/decoder"; do
  [ -s "$d/parity.json" ] || { echo "$d/parity.json missing" >&2; exit 1; }
  want=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["files"]["parity"]["sha256"])' "$d/manifest.json")
  [ "$want" = "$(sha256sum "$d/parity.json" | cut -d' ' -f1)" ] || { echo "$d/parity.json sha256 != manifest" >&2; exit 1; }
done
$PY -m rebeca_train validate "$T/rebeca" --parity | grep -q '"decoder_encoder"' || { echo "no decoder parity check" >&2; exit 1; }
$PY -m rebeca_train evaluate --model-dir "$T/mlp" --world "$W" --per-user 2 --perms 50 --verifier-steps 200 --max-users 8 --ddpm-users 3
# validate must refuse a manifest that does not match its files
echo tampered >> "$T/mlp/user_ids.txt"
if $PY -m rebeca_train validate "$T/mlp" 2>"$T/err"; then echo "validate accepted a tampered model" >&2; exit 1; fi
grep -q "sha256 mismatch for 'user_ids'" "$T/err"
echo ' ' >> "$T/rebeca/decoder/parity.json"
if $PY -m rebeca_train validate "$T/rebeca" 2>"$T/err"; then echo "validate accepted a tampered decoder parity" >&2; exit 1; fi
grep -q "sha256 mismatch for 'parity'" "$T/err"
# latent decoder: export from fixture-format weights; the committed fixture's scheduler reference is
# what this code computes, to float64 rounding (libm's last bit differs between CPUs: 6e-17 seen);
# weights of another format stop with exit code 2 and a message
$PY -m rebeca_train latent-fixture --out-dir "$T/latent" --weights "$T/latent.pt"
$PY -m rebeca_train export-latent --weights "$T/latent.pt" --out-dir "$T/latent-ddim" --scheduler ddim --steps 20
$PY -c '
import json, math, sys
def same(a, b):
    if isinstance(a, dict): return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list): return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float) or isinstance(b, float): return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
    return a == b
a, b = (json.load(open(p))["schedulers"] for p in sys.argv[1:])
sys.exit(not same(a, b))' \
  "$T/latent/parity.json" ../packages/inference/test-fixtures/latent-tiny/parity.json \
  || { echo "committed latent fixture's scheduler reference is stale: run training/latent-fixture.sh" >&2; exit 1; }
$PY -c 'import torch, sys; torch.save({"format": "x"}, sys.argv[1])' "$T/bad.pt"
set +e; $PY -m rebeca_train export-latent --weights "$T/bad.pt" --out-dir "$T/bad" 2>"$T/err"; rc=$?; set -e
[ "$rc" = 2 ] && grep -q "not a rebeca.latent-weights/v1 checkpoint" "$T/err" || { echo "export-latent accepted bad weights" >&2; exit 1; }
# the trained latent-diffusion decoder's whole path, a few steps each: VAE, UNet, export, pairing, parity
SMOKE=1 bash regenerate-decoder.sh
echo "smoke.sh OK in $(( $(date +%s) - start ))s"
