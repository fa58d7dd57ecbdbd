// The host face against a local release server on 127.0.0.1 (node's own test runner:
// `node --test host/test/`): download, checksum, tool cache, proxies, and every refusal. How
// the server differs from GitHub's releases: plain HTTP (HTTPS with a self-signed certificate
// openssl makes, behind the test proxy), one redirect hop to a storage path on the same server
// unless a test says otherwise (GitHub redirects to another host), no rate limits. How the
// test proxy differs from a company's: it resolves only the names it is given, to 127.0.0.1.
"use strict";

const assert = require("node:assert/strict");
const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const https = require("node:https");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const { execFileSync } = require("node:child_process");
const { test } = require("node:test");

const host = require("../lib.js");

const VERSION = "9.8.7";
const REPOSITORY = "octo/codex-auth";
const TARGET = host.TARGETS[`${process.platform}/${process.arch}`];
const NAME = `codex-auth-${VERSION}-${TARGET}`;

/**
 * A release server: GET /{repo}/releases/download/v{version}/{name} → 302 → `storage(name)`
 * (by default /storage/{name}?sig=x on the same server), which serves the asset. Over HTTPS
 * with `tls` (a key and certificate).
 */
async function server(assets, { tls, storage = (name) => `/storage/${name}?sig=x` } = {}) {
  const requests = [];
  const handler = (req, res) => {
    requests.push(req.url);
    const prefix = `/${REPOSITORY}/releases/download/v${VERSION}/`;
    if (req.url.startsWith(prefix)) {
      res.writeHead(302, { location: storage(req.url.slice(prefix.length)) });
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
  };
  const srv = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const scheme = tls ? "https" : "http";
  return { url: `${scheme}://127.0.0.1:${srv.address().port}`, port: srv.address().port, requests, close: () => srv.close() };
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

// Proxies: the rules (the same as src/net/proxy.rs's tests), then downloads through a proxy.

/** The proxy `url` goes through with `env`, as shown (no credentials), or null for direct. */
function via(env, url) {
  const proxy = host.proxyFor(new URL(url), env);
  return proxy ? proxy.shown : null;
}

test("https and http take their own proxy variable, lower case first", () => {
  const env = { https_proxy: "http://lower:3128", HTTPS_PROXY: "http://upper:3128", HTTP_PROXY: "plain.corp:8080" };
  assert.equal(via(env, "https://api.github.com/x"), "http://lower:3128 (https_proxy)");
  assert.equal(via(env, "http://ghes.corp/api/v3"), "http://plain.corp:8080 (HTTP_PROXY)");
  assert.equal(via({ HTTPS_PROXY: "http://upper:3128" }, "https://api.github.com"), "http://upper:3128 (HTTPS_PROXY)");
  assert.equal(via({ HTTPS_PROXY: "http://upper:3128" }, "http://ghes.corp"), null);
  assert.equal(via({ ALL_PROXY: "http://all:1" }, "http://ghes.corp"), "http://all:1 (ALL_PROXY)");
  assert.equal(via({ https_proxy: " ", HTTPS_PROXY: "http://upper:1" }, "https://a.example"), "http://upper:1 (HTTPS_PROXY)", "blank is unset");
  assert.equal(via({}, "https://api.github.com"), null);
});

test("NO_PROXY follows curl, with ports; loopback never goes through a proxy", () => {
  const env = {
    HTTPS_PROXY: "http://proxy:3128",
    HTTP_PROXY: "http://proxy:3128",
    no_proxy: "corp.example, .internal,ghes.other:8443, 10.0.0.0/8,[fd00::1]:443",
    NO_PROXY: "*",
  };
  const direct = (url) => via(env, url) === null;
  assert.ok(direct("https://corp.example/x"));
  assert.ok(direct("https://api.corp.example/x"));
  assert.ok(!direct("https://notcorp.example/x"));
  assert.ok(direct("https://ghes.internal/x"));
  assert.ok(direct("https://ghes.other:8443/x"));
  assert.ok(!direct("https://ghes.other/x"), "the entry is for port 8443 only");
  assert.ok(direct("https://10.1.2.3/x"));
  assert.ok(!direct("https://11.1.2.3/x"));
  assert.ok(direct("https://[fd00::1]/x"));
  assert.ok(!direct("http://[fd00::1]/x"), "port 80 is not 443");
  for (const loopback of ["https://127.0.0.1:9/x", "https://127.1.2.3/x", "https://localhost/x", "https://api.localhost/x", "https://[::1]/x"]) {
    assert.ok(direct(loopback), loopback);
  }
  assert.equal(via({ HTTPS_PROXY: "http://p:1", NO_PROXY: "*" }, "https://api.github.com"), null);
  assert.equal(via({ HTTPS_PROXY: "http://p:1", NO_PROXY: "*.github.com" }, "https://api.github.com"), null);
  assert.notEqual(via({ HTTPS_PROXY: "http://p:1", NO_PROXY: "*.github.com" }, "https://github.com.evil"), null);
  assert.throws(
    () => via({ HTTPS_PROXY: "http://p:1", NO_PROXY: "ghes:https" }, "https://a.example"),
    (error) => error.title === "NO_PROXY entry not usable" && /NO_PROXY holds "ghes:https"/.test(error.message),
  );
});

test("proxy credentials are sent as Proxy-Authorization and never shown", () => {
  const proxy = host.proxyFor(new URL("https://api.github.com/"), { HTTPS_PROXY: "http://me:p%40ss@proxy.corp:3128" });
  assert.equal(proxy.headers["proxy-authorization"], `Basic ${Buffer.from("me:p@ss").toString("base64")}`);
  assert.equal(proxy.shown, "http://proxy.corp:3128 (HTTPS_PROXY)");
  for (const value of ["socks5://me:secret@proxy:1080", "http://me:secret@[oops"]) {
    assert.throws(
      () => via({ HTTPS_PROXY: value }, "https://a.example"),
      (error) => error.title === "Proxy variable not usable" && error.message.startsWith("HTTPS_PROXY ") && !error.message.includes("secret"),
    );
  }
});

const PROXIED = "releases.proxied.test";
let made;

/** A self-signed certificate (openssl) for PROXIED and 127.0.0.1: `{ key, cert, file }`. */
function certificate() {
  if (!made) {
    const dir = tempDir();
    const [key, cert] = [path.join(dir, "key.pem"), path.join(dir, "cert.pem")];
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", `/CN=${PROXIED}`,
        "-addext", `subjectAltName=DNS:${PROXIED},IP:127.0.0.1`, "-keyout", key, "-out", cert],
      { stdio: "ignore" },
    );
    made = { key: fs.readFileSync(key), cert: fs.readFileSync(cert), file: cert };
  }
  return made;
}

/**
 * A forward proxy on 127.0.0.1 (over TLS with `tls`): CONNECT tunnels and requests in absolute
 * form, to the names in `hosts` (name → port on 127.0.0.1) only, else 502; with `credentials`
 * ("user:password"), 407 unless Proxy-Authorization carries them. `seen` records each request.
 */
async function proxy({ hosts, credentials, tls } = {}) {
  const seen = [];
  const sockets = new Set();
  const refused = (req) => credentials && req.headers["proxy-authorization"] !== `Basic ${Buffer.from(credentials).toString("base64")}`;
  const record = (req) => seen.push({ method: req.method, target: req.url, authorization: req.headers["proxy-authorization"] });
  const handler = (req, res) => {
    record(req);
    if (refused(req)) {
      res.writeHead(407, { "proxy-authenticate": 'Basic realm="proxy"' });
      res.end();
      return;
    }
    const url = new URL(req.url);
    if (!hosts[url.hostname]) {
      res.writeHead(502);
      res.end();
      return;
    }
    const { "proxy-authorization": _, ...headers } = req.headers;
    const upstream = http.get({ host: "127.0.0.1", port: hosts[url.hostname], path: `${url.pathname}${url.search}`, headers }, (answer) => {
      res.writeHead(answer.statusCode, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => res.destroy());
  };
  const srv = tls ? https.createServer(tls, handler) : http.createServer(handler);
  srv.on(tls ? "secureConnection" : "connection", (socket) => sockets.add(socket));
  srv.on("connect", (req, socket) => {
    record(req);
    const answer = (status, extra = "") => socket.end(`HTTP/1.1 ${status}\r\n${extra}content-length: 0\r\n\r\n`);
    if (refused(req)) {
      answer("407 Proxy Authentication Required", 'proxy-authenticate: Basic realm="proxy"\r\n');
      return;
    }
    const port = hosts[req.url.slice(0, req.url.lastIndexOf(":"))];
    if (!port) {
      answer("502 Bad Gateway");
      return;
    }
    const upstream = net.connect(port, "127.0.0.1", () => {
      socket.write("HTTP/1.1 200 Connection established\r\n\r\n");
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const port = srv.address().port;
  return {
    url: (userinfo = "") => `${tls ? "https" : "http"}://${userinfo}127.0.0.1:${port}`,
    shown: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
    seen,
    close: () => {
      srv.close();
      sockets.forEach((socket) => socket.destroy());
    },
  };
}

const RELEASE = `/${REPOSITORY}/releases/download/v${VERSION}/${NAME}`;

test("downloads through a CONNECT tunnel with the proxy's credentials, trusting SSL_CERT_FILE", async () => {
  const binary = Buffer.from("through the tunnel");
  const srv = await server({ [NAME]: binary }, { tls: certificate() });
  const prx = await proxy({ hosts: { [PROXIED]: srv.port }, credentials: "me:p@ss" });
  try {
    const installed = await host.install(checksums(sha(binary)), {
      ...env(`https://${PROXIED}`, tempDir()),
      HTTPS_PROXY: prx.url("me:p%40ss@"),
      SSL_CERT_FILE: certificate().file,
    });
    assert.deepEqual(fs.readFileSync(installed), binary);
    const authorization = `Basic ${Buffer.from("me:p@ss").toString("base64")}`;
    assert.deepEqual(prx.seen, [
      { method: "CONNECT", target: `${PROXIED}:443`, authorization },
      { method: "CONNECT", target: `${PROXIED}:443`, authorization },
    ], "one tunnel for the release URL, one for its redirect");
    assert.deepEqual(srv.requests, [RELEASE, `/storage/${NAME}?sig=x`]);
  } finally {
    prx.close();
    srv.close();
  }
});

test("downloads in absolute form through an http proxy", async () => {
  const binary = Buffer.from("through the proxy");
  const srv = await server({ [NAME]: binary });
  const prx = await proxy({ hosts: { [PROXIED]: srv.port }, credentials: "me:secret" });
  try {
    const installed = await host.install(checksums(sha(binary)), {
      ...env(`http://${PROXIED}`, tempDir()),
      http_proxy: prx.url("me:secret@"),
      HTTP_PROXY: "http://not-this-one:1",
    });
    assert.deepEqual(fs.readFileSync(installed), binary);
    const authorization = `Basic ${Buffer.from("me:secret").toString("base64")}`;
    assert.deepEqual(prx.seen, [
      { method: "GET", target: `http://${PROXIED}${RELEASE}`, authorization },
      { method: "GET", target: `http://${PROXIED}/storage/${NAME}?sig=x`, authorization },
    ]);
  } finally {
    prx.close();
    srv.close();
  }
});

test("each redirect chooses its own route: storage on loopback is reached directly", async () => {
  const binary = Buffer.from("from storage");
  const storage = await server({ [NAME]: binary });
  const srv = await server({}, { tls: certificate(), storage: (name) => `${storage.url}/storage/${name}?sig=x` });
  const prx = await proxy({ hosts: { [PROXIED]: srv.port } });
  try {
    await host.install(checksums(sha(binary)), {
      ...env(`https://${PROXIED}`, tempDir()),
      HTTPS_PROXY: prx.url(),
      HTTP_PROXY: prx.url(),
      SSL_CERT_FILE: certificate().file,
    });
    assert.deepEqual(prx.seen.map((s) => `${s.method} ${s.target}`), [`CONNECT ${PROXIED}:443`]);
    assert.deepEqual(storage.requests, [`/storage/${NAME}?sig=x`]);
  } finally {
    prx.close();
    srv.close();
    storage.close();
  }
});

test("an https:// proxy, trusted through SSL_CERT_DIR", async () => {
  const binary = Buffer.from("tls in tls");
  const srv = await server({ [NAME]: binary }, { tls: certificate() });
  const prx = await proxy({ hosts: { [PROXIED]: srv.port }, tls: certificate() });
  const dir = tempDir();
  fs.copyFileSync(certificate().file, path.join(dir, "company.crt"));
  try {
    const dest = path.join(tempDir(), "binary");
    await host.download(`https://${PROXIED}${RELEASE}`, dest, { env: { HTTPS_PROXY: prx.url(), SSL_CERT_DIR: dir } });
    assert.deepEqual(fs.readFileSync(dest), binary);
    assert.equal(prx.seen.length, 2);
  } finally {
    prx.close();
    srv.close();
  }
});

test("a proxy that wants credentials: the error names the proxy and its variable, never the password", async () => {
  const srv = await server({ [NAME]: Buffer.from("x") }, { tls: certificate() });
  const prx = await proxy({ hosts: { [PROXIED]: srv.port }, credentials: "me:right" });
  const dest = path.join(tempDir(), "binary");
  try {
    for (const userinfo of ["", "me:wrong-secret@"]) {
      await assert.rejects(
        host.download(`https://${PROXIED}${RELEASE}`, dest, { env: { HTTPS_PROXY: prx.url(userinfo), SSL_CERT_FILE: certificate().file } }),
        (error) => {
          assert.match(error.message, new RegExp(`^GET https://${PROXIED}${RELEASE} through the proxy ${prx.shown} \\(HTTPS_PROXY\\) failed: proxy answered 407 to CONNECT`));
          assert.ok(!error.message.includes("wrong-secret"), error.message);
          return true;
        },
      );
      await assert.rejects(
        host.download(`http://${PROXIED}${RELEASE}`, dest, { env: { http_proxy: prx.url(userinfo) } }),
        (error) => {
          assert.match(error.message, new RegExp(`^GET http://${PROXIED}${RELEASE} through the proxy ${prx.shown} \\(http_proxy\\) answered 407`));
          assert.ok(!error.message.includes("wrong-secret"), error.message);
          return true;
        },
      );
    }
  } finally {
    prx.close();
    srv.close();
  }
});

test("a proxy variable that cannot be used fails at once, without retries", async () => {
  const started = Date.now();
  await assert.rejects(
    host.install(checksums(sha(Buffer.from("x"))), { ...env(`https://${PROXIED}`, tempDir()), ALL_PROXY: "socks5://me:secret@proxy:1080" }),
    (error) => {
      assert.equal(error.title, "Proxy variable not usable");
      assert.match(error.message, /^ALL_PROXY names a socks5 proxy \(socks5:\/\/proxy:1080\)/);
      assert.ok(!error.message.includes("secret"), error.message);
      return true;
    },
  );
  assert.ok(Date.now() - started < 1000, "no retry");
});

test("the CA variables: trusted besides Node.js's roots; unreadable, a Failure naming the variable", async () => {
  assert.equal(host.trust({}), undefined, "no variable: Node.js's own trust");
  const ca = host.trust({ SSL_CERT_FILE: certificate().file });
  assert.equal(ca.length, require("node:tls").rootCertificates.length + 1);
  assert.equal(ca.at(-1), certificate().cert.toString().trim());
  assert.throws(() => host.trust({ SSL_CERT_FILE: "/nonexistent/ca.pem" }), (error) => {
    assert.equal(error.title, "CA file not readable");
    assert.match(error.message, /^SSL_CERT_FILE names \/nonexistent\/ca.pem, which cannot be read \(ENOENT\)/);
    return true;
  });
  const empty = path.join(tempDir(), "empty.pem");
  fs.writeFileSync(empty, "not a certificate");
  assert.throws(() => host.trust({ SSL_CERT_DIR: tempDir(), NODE_EXTRA_CA_CERTS: empty }), (error) => {
    assert.equal(error.title, "CA file not readable");
    assert.match(error.message, /^NODE_EXTRA_CA_CERTS names .*, which holds no -----BEGIN CERTIFICATE----- block/);
    return true;
  });
  assert.throws(() => host.trust({ SSL_CERT_DIR: "/nonexistent/certs" }), (error) => error.title === "CA directory not readable");
  // Without the variable the self-signed server is not trusted.
  const srv = await server({ [NAME]: Buffer.from("x") }, { tls: certificate() });
  try {
    await assert.rejects(host.download(`${srv.url}${RELEASE}`, path.join(tempDir(), "binary"), { env: {} }), (error) => {
      assert.match(error.message, new RegExp(`^GET ${srv.url}${RELEASE} failed: self[- ]signed certificate`));
      return true;
    });
    await host.download(`${srv.url}${RELEASE}`, path.join(tempDir(), "binary"), { env: { SSL_CERT_FILE: certificate().file } });
  } finally {
    srv.close();
  }
});
