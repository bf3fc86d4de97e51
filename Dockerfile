# syntax=docker/dockerfile:1
#
# The rmmscale image: the package as published (or its `npm pack` tarball), installed on
# node:20-slim and run as the unprivileged `node` user (uid 1000). The Kubernetes manifests of
# `rmmscale k8s render` run it; docs/k8s.md has the whole flow.
#
#   npm pack                                          # rmmscale-VERSION.tgz, from this checkout
#   docker build -t rmmscale:0.1.0 .                  # installs the one rmmscale-*.tgz in the context
#   docker build --build-arg RMMSCALE_PACKAGE=rmmscale@0.1.0 -t rmmscale:0.1.0 .   # from the npm registry
#
# Open files: the swarm sizes its tunnel workers from the soft open-file limit (90% of it, less 64,
# per worker; docs/swarm.md), and a node process cannot raise its own. Give the container a high
# limit (`docker run --ulimit nofile=1048576:1048576`); the rendered shard pods raise their soft
# limit to the hard one before they start (`ulimit -n`), so a cluster's runtime default of a high
# hard limit is enough there.

ARG NODE_IMAGE=node:20-slim

FROM ${NODE_IMAGE} AS install
# Empty: the one rmmscale-*.tgz in the build context. Else a package spec npm understands.
ARG RMMSCALE_PACKAGE=""
# better-sqlite3 takes a prebuilt binary when one matches, and builds from source with these otherwise.
# Its install script is the only one allowed to run (npm 11 asks; npm 10 runs it anyway and ignores
# the flag); the package's own `prepare` never runs from a tarball: dist/ is in it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY . /tmp/context/
RUN set -eu; cd /tmp/context; \
    pkg="${RMMSCALE_PACKAGE}"; \
    if [ -z "$pkg" ]; then \
      n=$(ls rmmscale-*.tgz 2>/dev/null | wc -l); \
      if [ "$n" -ne 1 ]; then echo "expected one rmmscale-*.tgz in the build context (run npm pack), found $n; or pass --build-arg RMMSCALE_PACKAGE=rmmscale@VERSION" >&2; exit 1; fi; \
      pkg="/tmp/context/$(ls rmmscale-*.tgz)"; \
    fi; \
    npm install --global --omit=dev --allow-scripts=better-sqlite3 --prefix /opt/rmmscale "$pkg"; \
    npm cache clean --force

FROM ${NODE_IMAGE}
COPY --from=install /opt/rmmscale /opt/rmmscale
ENV PATH=/opt/rmmscale/bin:$PATH \
    NODE_ENV=production
# Where shard pods write their results (a mounted volume on Kubernetes).
RUN mkdir -p /results && chown node:node /results
USER node
WORKDIR /home/node
ENTRYPOINT ["rmmscale"]
CMD ["--help"]
