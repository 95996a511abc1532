#!/usr/bin/env bash
# The whole test suite: install, build, lint, unit and integration tests on real Redis, S3 and
# gRPC, and the training smoke. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source packages/devstack/bin/use-node24.sh

bash packages/devstack/bin/setup.sh --with-training --with-promtool

echo "==> lint"
pnpm run -s lint

echo "==> vitest (unit + integration)"
mkdir -p .run
status=0
pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=.run/vitest.json || status=$?

echo "==> training smoke"
training_status=0
bash training/smoke.sh || training_status=$?

# One closing line for CI: vitest's tests plus the training smoke counted as one test.
node -e '
const r = require("./.run/vitest.json");
const smokeOk = process.argv[1] === "0";
// A file that failed outside its tests (a beforeAll that threw) fails no test: its tests are
// skipped. Count each such file as one failure, so the line never reads 0 failed on a red run.
const broken = r.testResults.filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed"));
for (const f of broken) console.log(`failed outside its tests: ${f.name}`);
console.log(`training smoke: ${smokeOk ? "passed" : "FAILED"}; vitest skipped: ${r.numPendingTests}`);
console.log(`${r.numPassedTests + (smokeOk ? 1 : 0)} passed, ${r.numFailedTests + broken.length + (smokeOk ? 0 : 1)} failed`);
' "$training_status"
[ "$status" = 0 ] && [ "$training_status" = 0 ]
