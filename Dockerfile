# codex-auth: the action's image. Debian slim with git, bash, CA certificates, the Codex CLI
# pinned and verified, and the codex-auth binary.
#
# Build arguments let CI build this same file without a container registry (see
# tests/container/build): BASE_IMAGE names a local base image, CODEX_AUTH_SOURCE=prebuilt
# takes a codex-auth built on the host, CODEX_PACKAGE_SOURCE=local takes the Codex package
# from the build context. The package's integrity hash is checked either way.

ARG BASE_IMAGE=debian:bookworm-slim
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG NODE_IMAGE=node:22-bookworm-slim
ARG CODEX_AUTH_SOURCE=build
ARG CODEX_PACKAGE_SOURCE=fetch

# codex-auth, compiled here...
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked \
    && install -D -m 0755 target/release/codex-auth /out/codex-auth

# ... or built beforehand (prebuilt/codex-auth in the build context).
FROM ${BASE_IMAGE} AS prebuilt
COPY prebuilt/codex-auth /out/codex-auth

# The Codex CLI's native package from the npm registry...
FROM ${NODE_IMAGE} AS fetch
ARG CODEX_VERSION=0.171.0
WORKDIR /out
RUN npm pack --silent "@openai/codex@${CODEX_VERSION}-linux-x64"

# ... or downloaded beforehand (codex/*.tgz in the build context).
FROM ${BASE_IMAGE} AS local
COPY codex/ /out/

FROM ${CODEX_AUTH_SOURCE} AS codex-auth
FROM ${CODEX_PACKAGE_SOURCE} AS codex-package

# Check the package against the registry's integrity hash, pinned here so that a changed
# tarball fails the build, then unpack the binary and the files it expects beside it.
FROM ${BASE_IMAGE} AS codex
ARG CODEX_VERSION=0.171.0
ARG CODEX_INTEGRITY=sha512-l66NZkQgdk2C3pbcfULDz42yEUB581MVA6I+Y43Wp4OIqEy73HCdmZ0GTjeAHY2ycuH4N00d9VsLrwT1jxshTw==
COPY --from=codex-package /out/openai-codex-${CODEX_VERSION}-linux-x64.tgz /codex.tgz
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN actual="sha512-$(sha512sum /codex.tgz | cut -c1-128 | tr 'a-f' 'A-F' | basenc --base16 -d | base64 -w0)" \
    && if [ "$actual" != "$CODEX_INTEGRITY" ]; then echo "Codex package integrity mismatch: $actual" >&2; exit 1; fi \
    && mkdir /unpacked \
    && tar -xzf /codex.tgz -C /unpacked \
    && mv /unpacked/package/vendor/x86_64-unknown-linux-musl /opt-codex

FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends bash ca-certificates git \
    && rm -rf /var/lib/apt/lists/* \
    # The checkout belongs to the runner's user, not to root: let git read it.
    && git config --system --add safe.directory '*'
COPY --from=codex /opt-codex /opt/codex
COPY --from=codex-auth /out/codex-auth /usr/local/bin/codex-auth
RUN ln -s /opt/codex/bin/codex /usr/local/bin/codex \
    && ln -s codex-auth /usr/local/bin/codex-auth-main \
    && ln -s codex-auth /usr/local/bin/codex-auth-post \
    && codex-auth --version \
    && codex --version
ENTRYPOINT ["/usr/local/bin/codex-auth-main"]
