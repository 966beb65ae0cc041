# ephor-scanner container image: the esbuild bundle + the Trivy CLI on a small Node 22 LTS base.
#   docker build -t ghcr.io/ephor-scanner/ephor-scanner:0.1.0 .
# Multi-arch (linux/amd64, linux/arm64): docker buildx build --platform linux/amd64,linux/arm64 ...
# Releases are built by .github/workflows/release.yml; docs/releasing.md says how each pin below was checked.
#
# Node: exact version AND digest (the multi-arch index of node:22.23.2-alpine3.23).
ARG NODE_IMAGE=node:22.23.2-alpine3.23@sha256:46825fbbd4e996a78b7a2cdc08d75e38a5a505bdab95dcda55605359bf124bc6
# Trivy: the release archive, checked against the SHA-256 that Trivy's own release (goreleaser) published for it.
# 0.69.3 is the last 0.69 release before the March 2026 supply-chain compromise: 0.69.4-0.69.6 were malicious
# (GHSA-69fq-xp46-6x23). Never move to those; a newer version needs its published checksums here.
ARG TRIVY_VERSION=0.69.3
ARG TRIVY_SHA256_AMD64=1816b632dfe529869c740c0913e36bd1629cb7688bd5634f4a858c1d57c88b75
ARG TRIVY_SHA256_ARM64=7e3924a974e912e57b4a99f65ece7931f8079584dae12eb7845024f97087bdfd

# --- 1. bundle: one self-contained ESM file, no node_modules at run time -------------------------
# The bundle is plain JavaScript, so it is built once on the build machine's platform.
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY scripts/build.mjs scripts/build.mjs
COPY src/ src/
RUN npm run build --silent && test -s dist/ephor-scanner.mjs && test -s dist/trivy-launcher.mjs

# --- 2. trivy: the static binary of the target platform, verified before it is unpacked ---------------
# Downloaded on the build platform (no emulation); the checksum, not the transport, is what is trusted.
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS trivy
ARG TARGETARCH
ARG TRIVY_VERSION
ARG TRIVY_SHA256_AMD64
ARG TRIVY_SHA256_ARM64
RUN set -eu; \
    case "$TARGETARCH" in \
      amd64) asset=Linux-64bit; sum=$TRIVY_SHA256_AMD64 ;; \
      arm64) asset=Linux-ARM64; sum=$TRIVY_SHA256_ARM64 ;; \
      *) echo "no pinned Trivy checksum for architecture '$TARGETARCH' (allowed: amd64, arm64)" >&2; exit 1 ;; \
    esac; \
    archive="trivy_${TRIVY_VERSION}_${asset}.tar.gz"; \
    wget -q -O "/tmp/$archive" "https://github.com/aquasecurity/trivy/releases/download/v${TRIVY_VERSION}/$archive"; \
    echo "$sum  /tmp/$archive" | sha256sum -c -; \
    tar -xzf "/tmp/$archive" -C /usr/local/bin trivy; \
    rm "/tmp/$archive"

# --- 3. runtime -----------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
# The scanner needs only node: drop npm, npx, corepack and yarn (less to patch, fewer findings),
# and add the non-root user the chart runs as (uid/gid 10001). Alpine's base already carries the
# CA bundle Trivy uses for registry TLS (/etc/ssl/certs/ca-certificates.crt).
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx \
           /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-* \
 && addgroup -S -g 10001 scanner \
 && adduser -S -D -H -u 10001 -G scanner -h /tmp -s /sbin/nologin scanner
COPY --from=trivy /usr/local/bin/trivy /usr/local/bin/trivy
COPY --from=build /src/dist/ephor-scanner.mjs /src/dist/trivy-launcher.mjs /app/
ENV NODE_ENV=production \
    TRIVY_CACHE_DIR=/tmp/trivy-cache \
    TMPDIR=/tmp
# Labels last: they change with every release and commit, and nothing above depends on them.
ARG VERSION=0.1.0
ARG REVISION=unknown
# image.source links the package on ghcr.io to its repository.
LABEL org.opencontainers.image.title="ephor-scanner" \
      org.opencontainers.image.description="Kubernetes vulnerability scanning with Trivy, delivered to the Ephor API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/ephor-scanner/ephor-scanner" \
      org.opencontainers.image.licenses="AGPL-3.0-only"
USER 10001:10001
WORKDIR /tmp
# No arguments = one scan run configured by environment variables.
# Exit codes: 0 delivered, 1 something not delivered, 2 configuration error.
ENTRYPOINT ["node", "/app/ephor-scanner.mjs"]
