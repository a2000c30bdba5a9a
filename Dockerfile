# repro itself, for CI systems without node. It audits --image targets through the engine of
# the host: mount its socket (-v /var/run/docker.sock:/var/run/docker.sock). That socket is
# root on the host — whoever can run this container can start any container there — so only
# do it on CI runners you would trust with root anyway. Remote engines need no socket: pass
# DOCKER_HOST (ssh://… or tcp:// with TLS) instead.
#
# Build it with scripts/build-image.sh: it stages the built tool and its production
# node_modules, so the build needs no network. The base is made offline from Debian packages
# (trixie + nodejs + docker client) by fixtures/images/build.sh.
ARG BASE=repro-base:trixie-node
FROM ${BASE}
LABEL org.opencontainers.image.title="repro" \
      org.opencontainers.image.description="Audit the reproducibility of ML training environments"
WORKDIR /opt/repro
COPY . /opt/repro/
ENV NODE_ENV=production
ENTRYPOINT ["node", "/opt/repro/bin/run.js"]
CMD ["--help"]
