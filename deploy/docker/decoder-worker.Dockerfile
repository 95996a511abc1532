# syntax=docker/dockerfile:1.7
# @rebeca/decoder-worker for the GPU pool: onnxruntime-node with its CUDA execution provider
# installed at build time, on a CUDA 12 + cuDNN 9 runtime (what onnxruntime 1.2x/1.30 GPU builds need).
# Build from the repository root:
#   docker build -f deploy/docker/decoder-worker.Dockerfile -t rebeca/decoder-worker .
ARG NODE_IMAGE=node:24-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# --- build
FROM ${NODE_IMAGE} AS build
ENV ONNXRUNTIME_NODE_INSTALL=skip CI=true
RUN npm install -g pnpm@12
WORKDIR /src
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json ./
RUN pnpm fetch
COPY . .
RUN pnpm install --frozen-lockfile --offline \
 && pnpm run build \
 && pnpm --filter @rebeca/decoder-worker deploy --prod /out \
 && rm -rf /out/src /out/tsconfig*.json
# The workspace skips onnxruntime-node's postinstall (allowBuilds: false); run it here for CUDA 12:
# it downloads libonnxruntime_providers_{cuda,shared,tensorrt}.so into the package's bin folder.
# (ONNXRUNTIME_NODE_INSTALL=cuda12; the older ONNXRUNTIME_NODE_INSTALL_CUDA=v12 is deprecated.)
# onnxruntime-node is a dependency of @rebeca/inference, so it sits in pnpm's virtual store only.
RUN cd /out/node_modules/.pnpm/onnxruntime-node@*/node_modules/onnxruntime-node \
 && ONNXRUNTIME_NODE_INSTALL=cuda12 node script/install \
 && test -f bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so

# --- node binary for the CUDA image
FROM ${NODE_IMAGE} AS node

# --- runtime: CUDA + cuDNN libraries, Node 24 copied in, the deployed service.
FROM ${CUDA_IMAGE} AS runtime
COPY --from=node /usr/local/bin/node /usr/local/bin/node
ENV NODE_ENV=production HOME=/tmp \
    MODELS_DIR=/app/models HTTP_PORT=9090 \
    ORT_PROVIDERS=cuda,cpu REQUIRE_GPU=true \
    NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
WORKDIR /app
COPY --from=build /out /app
COPY --from=build /src/models /app/models
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 9090
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--enable-source-maps", "dist/main.js"]
