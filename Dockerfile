# codex-auth: the action's image. Debian slim with git, bash, CA certificates, the Codex CLI
# pinned and verified, and the codex-auth binary.

ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG NODE_IMAGE=node:22-bookworm-slim
ARG BASE_IMAGE=debian:bookworm-slim

# Build codex-auth.
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked \
    && install -m 0755 target/release/codex-auth /codex-auth

# Fetch the Codex CLI's native package and check it against the registry's integrity hash,
# pinned here so that a changed tarball fails the build.
FROM ${NODE_IMAGE} AS codex
ARG CODEX_VERSION=0.171.0
ARG CODEX_INTEGRITY=sha512-l66NZkQgdk2C3pbcfULDz42yEUB581MVA6I+Y43Wp4OIqEy73HCdmZ0GTjeAHY2ycuH4N00d9VsLrwT1jxshTw==
WORKDIR /codex
RUN npm pack --silent "@openai/codex@${CODEX_VERSION}-linux-x64" \
    && tarball="openai-codex-${CODEX_VERSION}-linux-x64.tgz" \
    && actual="sha512-$(node -e 'process.stdout.write(require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$tarball")" \
    && if [ "$actual" != "$CODEX_INTEGRITY" ]; then echo "integrity mismatch: $actual" >&2; exit 1; fi \
    && tar -xzf "$tarball" \
    && mv package/vendor/x86_64-unknown-linux-musl /opt-codex

FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends bash ca-certificates git \
    && rm -rf /var/lib/apt/lists/* \
    # The checkout belongs to the runner's user, not to root: let git read it.
    && git config --system --add safe.directory '*'
COPY --from=codex /opt-codex /opt/codex
COPY --from=build /codex-auth /usr/local/bin/codex-auth
RUN ln -s /opt/codex/bin/codex /usr/local/bin/codex \
    && ln -s codex-auth /usr/local/bin/codex-auth-main \
    && ln -s codex-auth /usr/local/bin/codex-auth-post \
    && codex-auth --version \
    && codex --version
ENTRYPOINT ["/usr/local/bin/codex-auth-main"]
