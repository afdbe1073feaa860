# Slipway's container images.
#
#   docker build -t slipway .                                the default image (last stage)
#   docker build --target all-in-one -t slipway:all-in-one .
#
# The default image is a static `slipway` on an empty base, run as user
# 65532, for the split roles (webhook and api, worker) of Compose and
# Kubernetes next to their own NATS and BuildKit. `all-in-one` adds
# buildkitd, runc and the CNI plugins for `slipway serve` in one container.
#
# Only Docker Hub images: Slipway builds itself through a Docker Hub
# mirror (e2e/selfbuild_test.go). No `# syntax=` line either: BuildKit's
# built-in Dockerfile frontend is used, so a build pulls no frontend image.

# The repository has no LICENSE file yet, so the licenses labels say
# NOASSERTION (SPDX's "not stated") until it has one.

# What a build stamps into `slipway version` and the labels. Slipway passes
# SOURCE_COMMIT and DOCKER_TAG (the first tag the rule pushes) to a
# Dockerfile that declares them; `docker build` without --build-arg gives
# "dev" and an unknown commit.
ARG SOURCE_COMMIT=""
ARG DOCKER_TAG=""
ARG VERSION=${DOCKER_TAG:-dev}

FROM golang:1.26 AS build
WORKDIR /src
# The files of the runtime image that an empty base lacks: users, a
# temporary directory and the data directory owned by the slipway user.
RUN mkdir -p /rootfs/etc /rootfs/tmp /rootfs/var/lib/slipway \
    && printf 'root:x:0:0:root:/root:/sbin/nologin\nslipway:x:65532:65532:slipway:/var/lib/slipway:/sbin/nologin\n' > /rootfs/etc/passwd \
    && printf 'root:x:0:\nslipway:x:65532:\n' > /rootfs/etc/group \
    && chmod 1777 /rootfs/tmp \
    && chown 65532:65532 /rootfs/var/lib/slipway
# No `go mod download` step: it would fetch every tool module in go.mod
# (buildkitd, staticcheck, ...); the build fetches what it imports, into
# the cache mount.
COPY . .
ARG SOURCE_COMMIT
ARG VERSION
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${SOURCE_COMMIT}" \
    -o /out/slipway ./cmd/slipway

# buildkitd, runc and the CNI plugins at the versions go.mod pins (its tool
# lines), built by the same commands as the Makefile's `tools` target.
FROM golang:1.26 AS tools
RUN apt-get update \
    && apt-get install -y --no-install-recommends libseccomp-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -tags seccomp -o /out/runc github.com/opencontainers/runc \
    && go build -o /out/buildkitd github.com/moby/buildkit/cmd/buildkitd \
    && mkdir -p /out/cni \
    && go build -o /out/cni/ github.com/containernetworking/plugins/plugins/main/bridge \
    github.com/containernetworking/plugins/plugins/main/loopback \
    github.com/containernetworking/plugins/plugins/ipam/host-local \
    github.com/containernetworking/plugins/plugins/meta/firewall

# `slipway serve` with everything in one container: NATS, the registry,
# the API and webhooks, workers and a supervised buildkitd. It runs as root
# and needs `docker run --privileged`: BuildKit mounts and runs containers,
# and every RUN step gets a network namespace on a bridge fenced with
# iptables. The Debian release is golang:1.26's (trixie), whose glibc the
# cgo-built runc and buildkitd were linked against.
FROM debian:trixie-slim AS all-in-one
ARG SOURCE_COMMIT
ARG VERSION
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git iptables libseccomp2 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=tools /out/buildkitd /out/runc /usr/local/bin/
COPY --from=tools /out/cni/ /usr/local/lib/slipway/cni/
COPY --from=build /out/slipway /usr/local/bin/slipway
# The registry listens on every address so that `-p 5000:5000` reaches it;
# it still wants a token (SLIPWAY_REGISTRY_AUTH=token).
ENV SLIPWAY_DATA_DIR=/var/lib/slipway \
    SLIPWAY_CNI_DIR=/usr/local/lib/slipway/cni \
    SLIPWAY_REGISTRY_ADDR=:5000
VOLUME /var/lib/slipway
EXPOSE 8080 5000
LABEL org.opencontainers.image.title="Slipway (all-in-one)" \
      org.opencontainers.image.description="Self-hosted container image builds on every git push: slipway serve with BuildKit, runc and the CNI plugins" \
      org.opencontainers.image.source="https://github.com/slipway-build/slipway" \
      org.opencontainers.image.licenses="NOASSERTION" \
      org.opencontainers.image.revision="${SOURCE_COMMIT}" \
      org.opencontainers.image.version="${VERSION}"
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD ["/usr/local/bin/slipway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/slipway"]
CMD ["serve"]

# The default image, last so that a build without --target makes it.
FROM scratch AS slipway
ARG SOURCE_COMMIT
ARG VERSION
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /rootfs/ /
COPY --from=build /out/slipway /usr/local/bin/slipway
ENV SLIPWAY_DATA_DIR=/var/lib/slipway
VOLUME /var/lib/slipway
USER 65532:65532
EXPOSE 8080
LABEL org.opencontainers.image.title="Slipway" \
      org.opencontainers.image.description="Self-hosted container image builds on every git push" \
      org.opencontainers.image.source="https://github.com/slipway-build/slipway" \
      org.opencontainers.image.licenses="NOASSERTION" \
      org.opencontainers.image.revision="${SOURCE_COMMIT}" \
      org.opencontainers.image.version="${VERSION}"
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s CMD ["/usr/local/bin/slipway", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/slipway"]
# No role by default: every role needs something this image lacks (webhook,
# api and worker a NATS URL, serve a BuildKit: SLIPWAY_BUILDKIT_ADDR, since
# an embedded buildkitd needs root). Compose and Kubernetes name the role
# (`command: [worker]`); `docker run slipway` prints the commands, and
# `docker run -e SLIPWAY_BUILDKIT_ADDR=tcp://buildkitd:1234 slipway serve`
# runs everything but BuildKit.
CMD ["help"]
