# codex-auth: the action's image. Debian slim with git, bash, CA certificates, the Codex CLI
# pinned and verified, and the codex-auth binary.
#
# Builds for linux/amd64 and linux/arm64 (`docker buildx build --platform
# linux/amd64,linux/arm64`, see .github/workflows/release.yml). The stages that only compile or
# unpack run on the build machine's platform ($BUILDPLATFORM): codex-auth is cross-compiled and
# the Codex package of the target's platform ($TARGETARCH) is unpacked there; only the last
# stage runs on the target's platform (under QEMU when it is not the build machine's).
#
# Build arguments let CI build this same file without a container registry (see
# tests/container/build): BASE_IMAGE names a local base image, CODEX_AUTH_SOURCE=prebuilt
# takes a codex-auth built on the host, CODEX_PACKAGE_SOURCE=local takes the Codex package
# from the build context. The package's integrity hash is checked either way.
#
# TARGETARCH is declared without a default in each stage: a default would replace the value
# the builder sets for each platform. The stages fall back to amd64 when it is unset (a
# builder without platform arguments).

ARG BASE_IMAGE=debian:bookworm-slim
ARG RUST_IMAGE=rust:1.95-slim-bookworm
ARG NODE_IMAGE=node:22-bookworm-slim
ARG CODEX_AUTH_SOURCE=build
ARG CODEX_PACKAGE_SOURCE=fetch

# codex-auth, compiled here for the target's platform...
FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS build
ARG TARGETARCH
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# ring compiles C: each target gets its C compiler and linker by name (on the build machine's
# own platform these names are the native gcc).
ENV CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER=x86_64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CC_x86_64_unknown_linux_gnu=x86_64-linux-gnu-gcc \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
# The Rust target of the image's platform; a cross toolchain only when it is not the build
# machine's.
# hadolint ignore=DL3008
RUN case "${TARGETARCH:-amd64}" in \
      amd64) target=x86_64-unknown-linux-gnu gcc=gcc-x86-64-linux-gnu libc=libc6-dev-amd64-cross ;; \
      arm64) target=aarch64-unknown-linux-gnu gcc=gcc-aarch64-linux-gnu libc=libc6-dev-arm64-cross ;; \
      *) echo "Unsupported TARGETARCH ${TARGETARCH}: build for linux/amd64 or linux/arm64" >&2; exit 1 ;; \
    esac \
    && echo "$target" > /rust-target \
    && if [ "$target" != "$(rustc -vV | sed -n 's/^host: //p')" ]; then \
         apt-get update \
         && apt-get install -y --no-install-recommends "$gcc" "$libc" \
         && rm -rf /var/lib/apt/lists/* \
         && rustup target add "$target"; \
       fi
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Statically linked (glibc's crt-static): the post stage runs as root with the write token,
# after steps that may have added LD_PRELOAD or LD_LIBRARY_PATH to GITHUB_ENV, and a static
# binary loads no shared object at all. `--target` keeps the flag off build scripts and
# proc-macros, which must stay dynamic.
RUN target=$(cat /rust-target) \
    && RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" \
    && install -D -m 0755 "target/$target/release/codex-auth" /out/codex-auth

# ... or built beforehand (prebuilt/codex-auth in the build context).
FROM ${BASE_IMAGE} AS prebuilt
COPY prebuilt/codex-auth /out/codex-auth

# The Codex CLI's native package of the target's platform from the npm registry, and the
# registry's address (where input `codex-version` fetches another version at run time, unless
# the workflow sets npm_config_registry)...
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS fetch
ARG TARGETARCH
ARG CODEX_VERSION=0.171.0
WORKDIR /out
RUN case "${TARGETARCH:-amd64}" in \
      amd64) platform=linux-x64 ;; \
      arm64) platform=linux-arm64 ;; \
      *) echo "Unsupported TARGETARCH ${TARGETARCH}: build for linux/amd64 or linux/arm64" >&2; exit 1 ;; \
    esac \
    && npm pack --silent "@openai/codex@${CODEX_VERSION}-${platform}" \
    && npm config get registry > npm-registry

# ... or downloaded beforehand (codex/*.tgz and codex/npm-registry in the build context).
FROM ${BASE_IMAGE} AS local
COPY codex/ /out/

FROM ${CODEX_AUTH_SOURCE} AS codex-auth
FROM ${CODEX_PACKAGE_SOURCE} AS codex-package

# Check the package against the registry's integrity hash, pinned here for each platform so
# that a changed tarball fails the build (`npm view @openai/codex@VERSION-linux-x64
# dist.integrity`, and -linux-arm64), then unpack the binary and the files it expects beside it,
# less the parts codex exec, the app-server refresh and the device-code login never load (the
# end-to-end tests, tool calls and patches included, pass without them): the voice runtime
# (~50 MB) and the code-mode host (~67 MB). Every job pulls the image.
FROM --platform=$BUILDPLATFORM ${BASE_IMAGE} AS codex
ARG TARGETARCH
ARG CODEX_VERSION=0.171.0
ARG CODEX_INTEGRITY_AMD64=sha512-l66NZkQgdk2C3pbcfULDz42yEUB581MVA6I+Y43Wp4OIqEy73HCdmZ0GTjeAHY2ycuH4N00d9VsLrwT1jxshTw==
ARG CODEX_INTEGRITY_ARM64=sha512-9z17t4bbUJ9UCIb49O4PoA+ki+45q3rd8nZ8PeH6sYnlKkBld/Xpo/OS3h3Ti954+foshX4o7k5TCU8N7zzqQA==
COPY --from=codex-package /out/ /packages/
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN case "${TARGETARCH:-amd64}" in \
      amd64) platform=linux-x64 vendor=x86_64-unknown-linux-musl integrity=$CODEX_INTEGRITY_AMD64 ;; \
      arm64) platform=linux-arm64 vendor=aarch64-unknown-linux-musl integrity=$CODEX_INTEGRITY_ARM64 ;; \
      *) echo "Unsupported TARGETARCH ${TARGETARCH}: build for linux/amd64 or linux/arm64" >&2; exit 1 ;; \
    esac \
    && tarball="/packages/openai-codex-${CODEX_VERSION}-${platform}.tgz" \
    && actual="sha512-$(sha512sum "$tarball" | cut -c1-128 | tr 'a-f' 'A-F' | basenc --base16 -d | base64 -w0)" \
    && if [ "$actual" != "$integrity" ]; then echo "Codex package integrity mismatch for $platform: $actual" >&2; exit 1; fi \
    && mkdir /unpacked \
    && tar -xzf "$tarball" -C /unpacked \
    && mv "/unpacked/package/vendor/$vendor" /opt-codex \
    && rm -rf /opt-codex/codex-resources/voice /opt-codex/bin/codex-code-mode-host \
    && registry=$(tr -d '[:space:]' < /packages/npm-registry) \
    && case "$registry" in https://*) ;; *) echo "npm registry is not https: $registry" >&2; exit 1 ;; esac \
    && mkdir /share && printf '%s\n' "$registry" > /share/npm-registry

FROM ${BASE_IMAGE}
ARG TARGETARCH
# git, bash and CA certificates, less what no job's task runs, kept out with dpkg's own filter
# (dpkg(1) --path-exclude, the one the slim base uses for documentation): the packages are
# installed and dpkg lists every file; only the filtered ones are never written, so their bytes
# are in no layer. The filter is removed after this install: a later install writes whole
# packages. Filtered out:
# - Perl's module library and libperl (~47 MB), which Debian's git depends on for scripts a
#   job never runs (send-email and svn are other packages; `add -i` is built in). perl-base's
#   /usr/bin/perl and its core modules stay, so `perl -pi -e` one-liners work; modules such as
#   Data::Dumper or JSON::PP do not (`apt-get install --reinstall perl perl-modules-5.36
#   libperl5.36`, as root, brings them back).
# - git's programs for serving repositories (git-daemon, git-http-backend, git-shell, gitweb),
#   for mailing patches to IMAP (git-imap-send), for pushing over WebDAV (git-http-push), and
#   scalar, which registers big repositories for background maintenance (~18 MB). A job's git
#   is a client: every local command and the HTTPS transport (clone, fetch, push) are kept.
# The rest of git's files stay as Debian ships them. The base's own files (gconv modules,
# coreutils, apt, dpkg) are its layer's: removing them here would add whiteouts, not take bytes
# out of the image. A task could not use apt anyway: Codex's commands run unprivileged, as the
# workspace's owner.
# apt's downloaded packages and caches are removed in the same layer (official slim images do
# this through their docker-clean apt configuration; this works on any base).
# hadolint ignore=DL3008
RUN case "${TARGETARCH:-amd64}" in \
      amd64) multiarch=x86_64-linux-gnu ;; \
      arm64) multiarch=aarch64-linux-gnu ;; \
      *) echo "Unsupported TARGETARCH ${TARGETARCH}: build for linux/amd64 or linux/arm64" >&2; exit 1 ;; \
    esac \
    && printf 'path-exclude %s\n' \
      '/usr/share/perl/*' "/usr/lib/$multiarch/perl/*" "/usr/lib/$multiarch/libperl.so*" \
      /usr/lib/git-core/git-daemon /usr/lib/git-core/git-http-backend \
      /usr/lib/git-core/git-shell /usr/bin/git-shell '/usr/share/gitweb/*' \
      /usr/lib/git-core/git-imap-send /usr/lib/git-core/git-http-push \
      /usr/lib/git-core/scalar /usr/bin/scalar \
      > /etc/dpkg/dpkg.cfg.d/codex-auth-image \
    && apt-get update \
    && apt-get install -y --no-install-recommends bash ca-certificates git \
    && rm /etc/dpkg/dpkg.cfg.d/codex-auth-image \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    # The checkout belongs to the runner's user, not to root: let git read it.
    && git config --system --add safe.directory '*'
COPY --from=codex /opt-codex /opt/codex
COPY --from=codex /share/ /usr/local/share/codex-auth/
COPY --from=codex-auth /out/codex-auth /usr/local/bin/codex-auth
# Smoke test. A binary built for the build machine would still run here (natively, or under
# QEMU), so the ELF header's machine field (x86-64 0x3e, AArch64 0xb7; little-endian) is checked
# against the image's platform as well.
RUN ln -s /opt/codex/bin/codex /usr/local/bin/codex \
    && ln -s codex-auth /usr/local/bin/codex-auth-main \
    && ln -s codex-auth /usr/local/bin/codex-auth-post \
    && case "${TARGETARCH:-amd64}" in amd64) machine=" 3e 00" ;; arm64) machine=" b7 00" ;; esac \
    && for binary in /opt/codex/bin/codex /usr/local/bin/codex-auth; do \
         [ "$(od -An -tx1 -j18 -N2 "$binary")" = "$machine" ] \
           || { echo "$binary is not built for ${TARGETARCH:-amd64}" >&2; exit 1; }; \
       done \
    && { ldd /usr/local/bin/codex-auth > /tmp/ldd.txt 2>&1 || true; } \
    && { grep -Eq 'not a dynamic executable|statically linked' /tmp/ldd.txt \
         || { echo "codex-auth is not statically linked:" >&2; cat /tmp/ldd.txt >&2; exit 1; }; } \
    && rm /tmp/ldd.txt \
    && codex-auth --version \
    && codex --version
ENTRYPOINT ["/usr/local/bin/codex-auth-main"]
