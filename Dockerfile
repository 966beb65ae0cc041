# ephor-scanner container image: the esbuild bundle + the Trivy CLI on a small Node 22 LTS base.
#   docker build -t ghcr.io/ephor-scanner/ephor-scanner:0.1.0 .
# Multi-arch (linux/amd64, linux/arm64): docker buildx build --platform linux/amd64,linux/arm64 ...
#
# Pins: Trivy by version AND digest. 0.69.3 is the last 0.69 release published before the
# March 2026 supply-chain incident (0.69.4-0.69.6 images were compromised); never move to those.
# The digest below is the one public Dockerfiles (including the Go ephor-scanner) pin for
# aquasec/trivy:0.69.3; it was NOT re-checked against the registry here (no Docker engine and no
# registry access on the build machines). Verify before a release with:
#   docker buildx imagetools inspect aquasec/trivy:0.69.3
# The Node base is pinned by exact version; add its digest at release time the same way.
ARG NODE_IMAGE=node:22.22.0-alpine3.23
ARG TRIVY_IMAGE=aquasec/trivy:0.69.3@sha256:7228e304ae0f610a1fad937baa463598cadac0c2ac4027cc68f3a8b997115689

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

# --- 2. trivy: only its static binary is used -----------------------------------------------------
FROM ${TRIVY_IMAGE} AS trivy

# --- 3. runtime -----------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="ephor-scanner" \
      org.opencontainers.image.description="Kubernetes vulnerability scanning with Trivy, delivered to the Ephor API" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="AGPL-3.0-only"
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
USER 10001:10001
WORKDIR /tmp
# No arguments = one scan run configured by environment variables.
# Exit codes: 0 delivered, 1 something not delivered, 2 configuration error.
ENTRYPOINT ["node", "/app/ephor-scanner.mjs"]
