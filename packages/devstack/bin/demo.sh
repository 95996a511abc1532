#!/usr/bin/env bash
# The main job: installs what is missing, starts Redis, S3 and the services locally, generates
# personalized images for the demo users and prints where the gallery is.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source packages/devstack/bin/use-node24.sh
bash packages/devstack/bin/setup.sh
exec node packages/devstack/dist/demo.js "$@"
