# syntax=docker/dockerfile:1
#
# One image for every bangfu service: `bangfu serve <service>` picks the service, so Compose and
# the Helm chart run this image with a different command per container.
#
#   docker build -t bangfu:local .
#   docker run --read-only --cap-drop ALL --security-opt no-new-privileges:true \
#     --env-file … bangfu:local serve identity
#
# Build: the official Rust image. The cargo registry and the target folder are BuildKit cache
# mounts, so a rebuild after a source change recompiles the workspace but not its dependencies.
# protoc comes vendored with a build dependency and SQLite is bundled: no apt packages needed.
FROM rust:1.95-bookworm AS build
# The commit bangfu_build_info and the ready line name, as the context carries no .git:
#   docker build --build-arg BANGFU_GIT_COMMIT="$(git rev-parse --short=12 HEAD)" .
# Without it they say "unknown".
ARG BANGFU_GIT_COMMIT=""
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p bangfu \
    && install -D -m 0755 target/release/bangfu /out/usr/local/bin/bangfu
# Mount points for state, owned by the runtime user. A Docker named volume mounted on one of
# them starts with this owner and mode, so `bangfu keys init` (uid 65532) can write its keys
# there: keys/ holds data-keys.json, keys/public the trusted public keys, keys/<service> and
# keys/operator one signing key each.
RUN install -d -m 0750 /out/etc/bangfu/keys \
    && install -d -m 0755 /out/etc/bangfu/keys/public /out/etc/bangfu/tls \
    && install -d -m 0700 /out/etc/bangfu/keys/operator \
        /out/etc/bangfu/keys/identity /out/etc/bangfu/keys/jobs /out/etc/bangfu/keys/welfare_post \
        /out/etc/bangfu/keys/work_relief /out/etc/bangfu/keys/subsidy /out/etc/bangfu/keys/exchange /out/etc/bangfu/keys/reports

# Run: distroless (glibc and CA certificates, no shell, no package manager) as uid/gid 65532.
# Nothing is written to the image's filesystem: run it read-only; keys, TLS files and CAs come
# from mounted volumes, everything else from the environment.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/usr/local/bin/bangfu /usr/local/bin/bangfu
COPY --from=build --chown=65532:65532 /out/etc/bangfu /etc/bangfu
USER 65532:65532
ENV BANGFU_LISTEN=0.0.0.0:50051 \
    BANGFU_HEALTH_LISTEN=0.0.0.0:8081 \
    BANGFU_LOG_FORMAT=json
# 50051: gRPC (TLS when BANGFU_TLS_CERT/BANGFU_TLS_KEY are set); 8081: plaintext grpc.health.v1
# for container health checks and kubelet gRPC probes, and GET /metrics for Prometheus.
EXPOSE 50051 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/bangfu", "health", "--addr", "http://127.0.0.1:8081"]
ENTRYPOINT ["/usr/local/bin/bangfu"]
CMD ["serve", "identity"]
