# syntax=docker/dockerfile:1
# The Tern image: tern-broker and tern-operator in one small image without a shell, running as
# a numeric non-root user. The operator starts broker pods from this same image, so one tag
# pins both. Build from the repository root:
#
#   docker build -t ghcr.io/tern-mqtt/tern:0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# scripts/check-dockerfile.sh lints this file and runs the builder stage's commands on the
# host, so a broken build step fails the project's tests, not a release.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src

# Dependency layer. Only the manifests and empty stand-in sources, so the layer (every
# third-party crate compiled) is reused until Cargo.toml or Cargo.lock change. The tests
# crate is a workspace member: its manifest must be present, its sources are not built.
COPY Cargo.toml Cargo.lock ./
COPY broker/Cargo.toml broker/
COPY operator/Cargo.toml operator/
COPY tests/Cargo.toml tests/
RUN mkdir -p broker/src operator/src \
 && echo 'fn main() {}' > broker/src/main.rs \
 && echo 'fn main() {}' > operator/src/main.rs \
 && touch broker/src/lib.rs operator/src/lib.rs \
 && cargo build --release --locked -p tern-broker -p tern-operator --bin tern-broker --bin tern-operator \
 && rm -rf broker/src operator/src

# Tern itself. Touching the crate roots makes cargo rebuild Tern's own crates over the
# stand-ins, whatever timestamps the build context carried.
COPY broker/ broker/
COPY operator/ operator/
RUN touch broker/src/lib.rs broker/src/main.rs operator/src/lib.rs operator/src/main.rs \
 && cargo build --release --locked -p tern-broker -p tern-operator --bin tern-broker --bin tern-operator

# Runtime: glibc and CA certificates only (distroless "cc"); no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="tern" \
      org.opencontainers.image.description="Tern: an MQTT 3.1.1/5.0 broker for Kubernetes and its operator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/tern-mqtt/tern" \
      org.opencontainers.image.url="https://github.com/tern-mqtt/tern" \
      org.opencontainers.image.documentation="https://github.com/tern-mqtt/tern#readme"
COPY --from=builder /src/target/release/tern-broker /src/target/release/tern-operator /usr/local/bin/
# 65532 is distroless's "nonroot"; numeric so that runAsNonRoot can verify it.
USER 65532:65532
# MQTT, MQTT over TLS, WebSocket, broker metrics; the operator serves its metrics on 8080.
EXPOSE 1883 8883 8083 9090 8080
ENTRYPOINT ["/usr/local/bin/tern-broker"]
