# syntax=docker/dockerfile:1.7
# @rebeca/data-worker. Build from the repository root:
#   docker build -f deploy/docker/data-worker.Dockerfile -t rebeca/data-worker .
ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: install the workspace, compile, then `pnpm deploy` the service with its production
# dependencies only (workspace packages are copied in with their dist/).
FROM ${NODE_IMAGE} AS build
# onnxruntime-node's postinstall would download CUDA files; CPU binaries ship in the package.
ENV ONNXRUNTIME_NODE_INSTALL=skip CI=true
RUN npm install -g pnpm@12
WORKDIR /src
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
RUN pnpm fetch
COPY . .
RUN pnpm install --frozen-lockfile --offline \
 && pnpm run build \
 && pnpm --filter @rebeca/data-worker deploy --prod /out \
 && rm -rf /out/src /out/tsconfig*.json

# --- runtime: Node 24 LTS, the deployed service, nothing else. Files are owned by root and read-only
# for the service user; the pod runs with readOnlyRootFilesystem and an emptyDir on /tmp.
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production HOME=/tmp
WORKDIR /app
COPY --from=build /out /app

ENV HTTP_PORT=9090
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 9090
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--enable-source-maps", "dist/main.js"]
