#!/usr/bin/env bash
# The nightly model from feedback (docs/operations.md#model-rollout): new interactions in S3 →
# add-users + refit-users on the current version (prior frozen) → a candidate gated on held-out
# likes → published to the registry only if the gate passes; otherwise nothing is published and
# the reasons are printed. Exit 0 either way (a failed gate is a verdict, not an error); 2 for bad
# input, 1 for anything else.
#
# Environment: INTERACTIONS_URI (s3://bucket/key.csv|.jsonl or a path), BASE_MODEL_DIR (the current
# version), ITEMS and ITEM_IDS (the catalogue embeddings and ids), CANDIDATE_VERSION; for publishing
# S3_BUCKET, S3_ENDPOINT, S3_REGION, REDIS_URL, QUEUE_PREFIX, REGISTRY_PREFIX and AWS credentials.
# CANDIDATE_DATE_SUFFIX=true appends the UTC date (nightly → nightly-20261202). FEEDBACK_ARGS adds options to `rebeca_train feedback` (e.g. "--steps 100 --perms 200" in CI).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${INTERACTIONS_URI:?set INTERACTIONS_URI}" "${BASE_MODEL_DIR:?set BASE_MODEL_DIR}" "${ITEMS:?set ITEMS}" "${ITEM_IDS:?set ITEM_IDS}"
: "${CANDIDATE_VERSION:?set CANDIDATE_VERSION}"
[ "${CANDIDATE_DATE_SUFFIX:-false}" = true ] && CANDIDATE_VERSION="$CANDIDATE_VERSION-$(date -u +%Y%m%d)"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
PY=${PYTHON:-/usr/bin/python3}
CLI=${REBECA_CLI:-$here/../packages/cli/dist/main.js}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# shellcheck disable=SC2086
(cd "$here" && "$PY" -m rebeca_train feedback --model-dir "$BASE_MODEL_DIR" --items "$ITEMS" --item-ids "$ITEM_IDS" \
  --interactions "$INTERACTIONS_URI" --out-dir "$out/$CANDIDATE_VERSION" --version "$CANDIDATE_VERSION" ${FEEDBACK_ARGS:-})
gate="$out/$CANDIDATE_VERSION/gate.json"
if "$PY" -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["passed"] else 1)' "$gate"; then
  rm "$gate" # the report is not part of the model; its figures are in the manifest's training.feedback
  node "$CLI" models publish "$out/$CANDIDATE_VERSION"
  echo "published $CANDIDATE_VERSION"
else
  "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); print("nothing published: " + "; ".join(r["reasons"]))' "$gate"
fi
