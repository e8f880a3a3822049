# Encore's job image. Node 24 runs the TypeScript sources directly (type stripping): nothing is compiled
# except the native addons, which need a toolchain only in the build stage.
#   docker build -t encore .        (docker-compose.yml builds it as the `encore` service)

FROM node:24-bookworm-slim AS build
# node-rdkafka compiles librdkafka from source. zlib and zstd headers let it decompress records that
# producers compressed with gzip or zstd (lz4 and snappy are built in); their runtime libraries are part
# of the slim base image already.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ zlib1g-dev libzstd-dev \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# node-gyp builds against the headers that ship with this Node instead of downloading them.
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json ./
# `npm install`, not `npm ci`: some registries serve only a few of the per-platform optional packages
# (biome's), and `npm ci` rejects a lockfile that lacks the others; the lockfile still pins versions.
# ONNXRUNTIME_NODE_INSTALL=skip: onnxruntime-node ships its CPU binaries in the package; its postinstall
# would fetch CUDA parts.
RUN ONNXRUNTIME_NODE_INSTALL=skip npm install --omit=dev --no-audit --no-fund --loglevel=error

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only to the job's user: the job writes only to Kafka and ClickHouse.
COPY --from=build /app/node_modules ./node_modules
COPY package.json ./
COPY cli ./cli
COPY core ./core
COPY clients ./clients
COPY schemas ./schemas
COPY sinks ./sinks
COPY topology ./topology
COPY simulator ./simulator
COPY udfs ./udfs
COPY ingest ./ingest
COPY stack ./stack
USER node
CMD ["node", "cli/encore.ts", "run"]
