# syntax=docker/dockerfile:1
#
# One image for all five services. The command picks the service:
#   docker run ... authplat node apps/token/src/main.ts
# Services are TypeScript run directly by Node 24's type stripping: there is no build step, so
# the image is the runtime dependencies plus the sources. The npm `node` devDependency that
# pins Node 24 locally is not needed here: the base image is Node 24.

ARG NODE_IMAGE=node:24-bookworm-slim

# --- manifests: only the files `npm ci` reads, so the dependency layer below stays cached
# while sources change. (A plain `COPY apps/*/package.json` would flatten the paths.)
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
# Every workspace's package.json (apps, libs, tools, e2e, bench, ...): npm ci needs them all.
RUN mkdir /manifests \
 && cp package-lock.json .npmrc /manifests/ \
 && find . -name package.json -not -path '*/node_modules/*' \
      -exec cp --parents '{}' /manifests/ ';'

# --- deps: runtime dependencies only. --omit=dev drops the `node` binary package, TypeScript,
# vitest, nx, buf and the linters. --ignore-scripts: no runtime dependency needs an install
# script today (all are pure JavaScript); revisit if a WebAssembly or N-API package needs one.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY --from=manifests /manifests/ ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# --- runtime
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Root-owned and not writable by the service user: the code cannot be changed at run time.
# The deps stage's tree includes the workspace manifests and any nested node_modules npm made.
COPY --from=deps /app/ ./
COPY apps/ ./apps/
COPY libs/ ./libs/
# tools/ carries the health probe (container health checks) and the dev PKI CLI (compose).
COPY tools/ ./tools/
# Mount point for the dev PKI volume in docker-compose.yml. A named volume starts with the
# ownership of the image directory it is mounted on, so the one-shot `pki` container (running as
# uid 1000) can write there and the services (also uid 1000) can read the 0600 keys.
RUN install -d -o 1000 -g 1000 -m 0700 /pki
# Numeric, so Kubernetes can verify runAsNonRoot (uid 1000 is the base image's `node` user).
USER 1000:1000
# No default service: a container started without a command says so and exits.
CMD ["node", "-e", "console.error('usage: node apps/<auth-edge|token|session-identity|iam-policy|mfa>/src/main.ts'); process.exit(64)"]
