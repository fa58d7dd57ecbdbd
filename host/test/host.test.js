// The host face against a local release server on 127.0.0.1 (node's own test runner:
// `node --test host/test/`): download, checksum, tool cache, and every refusal. How the server
// differs from GitHub's releases: plain HTTP, one redirect hop to a storage path on the same
// server (GitHub redirects to another host), no rate limits.
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");
const { test } = require("node:test");

const host = require("../lib.js");

const VERSION = "9.8.7";
const REPOSITORY = "octo/codex-auth";
const TARGET = host.TARGETS[`${process.platform}/${process.arch}`];
const NAME = `codex-auth-${VERSION}-${TARGET}`;

/** A release server: GET /{repo}/releases/download/v{version}/{name} → 302 → /storage/{name}. */
async function server(assets) {
  const requests = [];
  const srv = http.createServer((req, res) => {
    requests.push(req.url);
    const prefix = `/${REPOSITORY}/releases/download/v${VERSION}/`;
    if (req.url.startsWith(prefix)) {
      res.writeHead(302, { location: `/storage/${req.url.slice(prefix.length)}?sig=x` });
      res.end();
      return;
    }
    const name = req.url.startsWith("/storage/") && req.url.slice("/storage/".length).split("?")[0];
    if (name && assets[name]) {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.end(assets[name]);
      return;
    }
    res.writeHead(404);
    res.end("Not Found");
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${srv.address().port}`, requests, close: () => srv.close() };
}

function env(url, toolCache) {
  return { GITHUB_SERVER_URL: url, GITHUB_ACTION_REPOSITORY: REPOSITORY, RUNNER_TOOL_CACHE: toolCache };
}

function checksums(sha256) {
  return { version: VERSION, assets: { [TARGET]: { name: NAME, sha256 } } };
}

function sha(bytes) {
  return crypto.createHash("sha256").update(bytes).digest("hex");
}

function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), "codex-auth-host-"));
}

test("downloads the binary, checks it, caches it, and uses the cache next time", async () => {
  const binary = Buffer.from("#!/bin/sh\necho codex-auth\n");
  const srv = await server({ [NAME]: binary });
  const cache = tempDir();
  try {
    const installed = await host.install(checksums(sha(binary)), env(srv.url, cache));
    assert.equal(installed, path.join(cache, "codex-auth", VERSION, TARGET, NAME));
    assert.deepEqual(fs.readFileSync(installed), binary);
    assert.equal(fs.statSync(installed).mode & 0o111, 0o111, "executable");
    assert.ok(fs.existsSync(path.join(cache, "codex-auth", VERSION, `${TARGET}.complete`)));
    assert.equal(srv.requests.length, 2, "the release URL, then its redirect");
    await host.install(checksums(sha(binary)), env(srv.url, cache));
    assert.equal(srv.requests.length, 2, "the second install comes from the cache");
  } finally {
    srv.close();
  }
});

test("a tampered asset is refused and never cached", async () => {
  const srv = await server({ [NAME]: Buffer.from("evil") });
  const cache = tempDir();
  try {
    await assert.rejects(host.install(checksums(sha(Buffer.from("good"))), env(srv.url, cache)), (error) => {
      assert.equal(error.title, "Checksum mismatch");
      assert.match(error.message, new RegExp(`has SHA-256 ${sha(Buffer.from("evil"))}, but this release pins`));
      assert.match(error.message, /refusing to run it/);
      return true;
    });
    const dir = path.join(cache, "codex-auth", VERSION, TARGET);
    assert.deepEqual(fs.readdirSync(dir), [], "nothing is left in the cache");
    assert.ok(!fs.existsSync(`${dir}.complete`));
  } finally {
    srv.close();
  }
});

test("a cached binary that changed is fetched again", async () => {
  const binary = Buffer.from("the real one");
  const srv = await server({ [NAME]: binary });
  const cache = tempDir();
  try {
    const installed = await host.install(checksums(sha(binary)), env(srv.url, cache));
    fs.writeFileSync(installed, "swapped in the cache");
    const again = await host.install(checksums(sha(binary)), env(srv.url, cache));
    assert.deepEqual(fs.readFileSync(again), binary);
    assert.equal(srv.requests.length, 4);
  } finally {
    srv.close();
  }
});

test("a missing asset fails with what to check", async () => {
  const srv = await server({});
  const cache = tempDir();
  try {
    await assert.rejects(host.install(checksums(sha(Buffer.from("x"))), env(srv.url, cache)), (error) => {
      assert.equal(error.title, "Cannot download codex-auth");
      assert.match(error.message, /answered 404/);
      assert.match(error.message, new RegExp(`has the asset ${NAME}`));
      return true;
    });
  } finally {
    srv.close();
  }
});

test("a platform the release has no binary for is refused, naming those it has", () => {
  assert.throws(() => host.target(checksums("0".repeat(64)), "freebsd", "x64"), (error) => {
    assert.equal(error.title, "No binary for this runner");
    assert.match(error.message, /publishes no binary for freebsd\/x64/);
    assert.match(error.message, new RegExp(`binaries for: ${process.platform}/${process.arch}`));
    return true;
  });
});

test("a commit that pins no release is refused", () => {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, "checksums.json"), JSON.stringify({ version: null, assets: {} }));
  assert.throws(() => host.readChecksums(dir), (error) => error.title === "Not a release");
  // The checked-in file on main is such a commit.
  assert.throws(() => host.readChecksums(path.join(__dirname, "..")), (error) => error.title === "Not a release");
});

test("modes other than restore are refused before anything is downloaded", async () => {
  const saved = { ...process.env };
  try {
    process.env.INPUT_MODE = "exec";
    await assert.rejects(host.main(), (error) => {
      assert.equal(error.title, "Mode not available on the host");
      assert.match(error.message, /`mode: exec` is not available in the host face/);
      assert.match(error.message, /mode: restore/);
      return true;
    });
  } finally {
    process.env = saved;
  }
});

test("an empty mode is the host face's restore, and the binary is told so", async () => {
  const saved = { ...process.env };
  try {
    process.env.INPUT_MODE = "";
    // Not refused for its mode: it goes on to the checksums, which main's commit lacks.
    await assert.rejects(host.main(), (error) => error.title === "Not a release");
  } finally {
    process.env = saved;
  }
  // Whatever the step passed, the binary runs the mode this face checked.
  const dir = tempDir();
  const fake = path.join(dir, "codex-auth");
  const seen = path.join(dir, "seen");
  fs.writeFileSync(fake, `#!/bin/sh\nprintf '%s %s %s' "$1" "$2" "$INPUT_MODE" > "${seen}"\n`, { mode: 0o755 });
  const code = host.runStage(fake, "main", { ...process.env, INPUT_MODE: "", RUNNER_TEMP: dir });
  assert.equal(code, 0);
  assert.equal(fs.readFileSync(seen, "utf8"), "action main restore");
});
