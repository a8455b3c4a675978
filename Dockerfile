# syntax=docker/dockerfile:1
# One image with Tern's binaries. Build: docker build -t tern .

FROM rust:1-bookworm AS builder
WORKDIR /src
# Dependency layer: manifests first, so source edits do not rebuild every crate.
COPY Cargo.toml Cargo.lock ./
COPY broker/Cargo.toml broker/Cargo.toml
COPY tests/Cargo.toml tests/Cargo.toml
RUN mkdir -p broker/src tests/src/bin \
 && echo 'fn main() {}' > broker/src/main.rs && touch broker/src/lib.rs \
 && echo 'fn main() {}' > tests/src/bin/tern-bench.rs && touch tests/src/lib.rs \
 && cargo build --release --locked -p tern-broker \
 && rm -rf broker/src tests/src
COPY broker broker
COPY tests tests
RUN touch broker/src/main.rs broker/src/lib.rs \
 && cargo build --release --locked -p tern-broker

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="tern" \
      org.opencontainers.image.description="Tern MQTT broker for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/tern-mqtt/tern"
COPY --from=builder /src/target/release/tern-broker /usr/local/bin/tern-broker
USER 65532:65532
EXPOSE 1883 9090
ENTRYPOINT ["/usr/local/bin/tern-broker"]
