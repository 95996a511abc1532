# syntax=docker/dockerfile:1.7
# The nightly model from feedback (training/nightly.sh, deploy/k8s/base/nightly-feedback.yaml):
# Python + PyTorch for the fit and the gate, Node for `rebeca models publish`. Build from the
# repository root:
#   docker build -f deploy/docker/nightly-feedback.Dockerfile -t rebeca/nightly-feedback .
ARG NODE_IMAGE=node:22-bookworm-slim

# --- build: the workspace compiled, then the CLI `pnpm deploy`ed with its production dependencies.
FROM ${NODE_IMAGE} AS build
ENV ONNXRUNTIME_NODE_INSTALL=skip CI=true
RUN npm install -g pnpm@12
WORKDIR /src
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
RUN pnpm fetch
COPY . .
RUN pnpm install --frozen-lockfile --offline \
 && pnpm run build \
 && pnpm --filter @rebeca/cli deploy --prod /out/cli \
 && rm -rf /out/cli/src /out/cli/tsconfig*.json

# --- runtime: Node 22 and Debian's PyTorch (the same packages the CI and training scripts use).
FROM ${NODE_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-numpy python3-torch python3-onnx \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production HOME=/tmp PYTHON=/usr/bin/python3 REBECA_CLI=/app/cli/dist/main.js \
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY --from=build /out/cli /app/cli
COPY --from=build /src/training /app/training
# The base version the candidates are built from, with the catalogue embeddings of its world.
COPY --from=build /src/models /app/models
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
ENTRYPOINT ["bash", "/app/training/nightly.sh"]
