# syntax=docker/dockerfile:1
# usage-batch: build on a supported LTS, ship production dependencies only, run as a non-root user.
# The image needs API tokens (a Secret in Kubernetes): with HOST=0.0.0.0 and no token the server
# refuses to start (SPEC §7), unless AUTH_DISABLED=true is set deliberately.
# scripts/check-production-install.mjs reproduces the runtime stage without Docker (npm run check:production-install),
# on this image's Node major (it installs that Node from the npm registry when it runs on another).
# Node 24 is the Active LTS line (Node 20 reached end of life in April 2026); CI tests on 24 too.
# Pinning by digest (node:24-bookworm-slim@sha256:…) makes builds reproducible: take the digest from
# `docker buildx imagetools inspect node:24-bookworm-slim` and renew it with each Node patch release.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build
# better-sqlite3 13 is a Node-API addon whose prebuilt binaries ship inside its npm package
# (linux x64/arm64, glibc and musl): nothing compiles, so the image needs no compilers.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 SQLITE_PATH=/data/usage.db
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY drizzle ./drizzle
# Application files stay root-owned and read-only for the service; only /data is its own.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080
# No curl in slim images: Node's own fetch (global since Node 18) does the probe.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/src/server.js"]
