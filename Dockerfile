# syntax=docker/dockerfile:1
#
# su, the ao Scheduler Unit: one multi-stage file for every architecture.
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t ao-su .
#   docker run -d -p 9000:9000 -v ao-su-data:/data --stop-timeout 30 ao-su
#
# Configuration comes from the environment (docker run -e / --env-file); no .env is baked in.
# The store and, unless SU_WALLET_PATH says otherwise, the wallet live in the /data volume;
# a bind-mounted host directory must be writable by uid 10001.
# su drains for up to SU_SHUTDOWN_SECS (10) twice on SIGTERM, so give it a stop timeout of 30
# seconds; acknowledged writes are already synced, so a SIGKILL never loses one.

FROM rust:1-bookworm AS builder

# rocksdb-sys generates its bindings with libclang and compiles RocksDB's C++ sources.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev clang \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# The target directory is a cache mount, so the binary is copied out in the same step.
# Each architecture keeps its own target cache.
ARG TARGETARCH
RUN --mount=type=cache,id=ao-su-cargo-registry-${TARGETARCH},target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=ao-su-target-${TARGETARCH},target=/src/target,sharing=locked \
    cargo build --release --locked --bin su \
 && install -D -m 0755 -s target/release/su /out/su

FROM debian:bookworm-slim AS runtime

# libstdc++6 is RocksDB's C++ runtime; ca-certificates serves outbound TLS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libstdc++6 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 su \
 && useradd --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin su \
 && install -d -o 10001 -g 10001 -m 0700 /data

# Its own prefix: the image's /bin/su stays the system's switch-user command.
COPY --from=builder /out/su /opt/ao-su/bin/su

ENV SU_DATA_DIR=/data
WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 9000
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/ao-su/bin/su"]
CMD ["serve"]
