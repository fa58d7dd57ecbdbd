// The host face of codex-auth: fetches the release binary for this runner, checks it against
// the SHA-256 the release commit pins (checksums.json, beside this file), keeps it in the
// runner's tool cache, and runs `codex-auth action main|post` on the host with the step's own
// inputs. No npm dependencies: only Node.js's own modules.
//
// Only `mode: restore` runs here. On the host, Codex would run as the runner's own user, and
// any process of that user can read the environment of this Node.js process (Linux:
// /proc/<pid>/environ; macOS: the process arguments and environment), which holds input
// `token`. In `mode: restore` Codex runs only in the job's later steps, after this process
// and the main stage have exited.

"use strict";

const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const https = require("node:https");
const net = require("node:net");
const path = require("node:path");
const tls = require("node:tls");
const { spawnSync } = require("node:child_process");

/** The Rust target of a Node.js platform and architecture, and the binary's file name. */
const TARGETS = {
  "linux/x64": "x86_64-unknown-linux-musl",
  "linux/arm64": "aarch64-unknown-linux-musl",
  "darwin/x64": "x86_64-apple-darwin",
  "darwin/arm64": "aarch64-apple-darwin",
  "win32/x64": "x86_64-pc-windows-msvc",
};

/** The modes the host face runs. */
const HOST_MODES = ["restore"];

/** A failure the person must act on: shown as an error annotation, then the step fails. */
class Failure extends Error {
  constructor(title, message) {
    super(message);
    this.title = title;
  }
}

function escapeData(text) {
  return String(text).replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
}

function escapeProperty(text) {
  return escapeData(text).replace(/:/g, "%3A").replace(/,/g, "%2C");
}

/** An annotation, titled like the binary's own (`codex-auth: …`). */
function annotate(kind, title, message) {
  process.stdout.write(`::${kind} title=${escapeProperty(`codex-auth: ${title}`)}::${escapeData(message)}\n`);
}

/** Appends `name=value` to a runner file command (GITHUB_STATE, GITHUB_ENV). */
function fileCommand(variable, name, value) {
  const file = process.env[variable];
  if (!file) {
    throw new Failure("Not on a runner", `${variable} is not set; the runner sets it for every step`);
  }
  fs.appendFileSync(file, `${name}=${value}\n`);
}

/** An input as the runner passes it (`INPUT_<NAME>`, hyphens kept), trimmed; "" when not given. */
function input(name) {
  return (process.env[`INPUT_${name.toUpperCase()}`] || "").trim();
}

/** The release target for this process's platform, or a Failure naming what there is. */
function target(checksums, platform = process.platform, arch = process.arch) {
  const key = `${platform}/${arch}`;
  const name = TARGETS[key];
  const asset = name && checksums.assets[name];
  if (!asset) {
    const offered = Object.keys(checksums.assets)
      .map((t) => Object.keys(TARGETS).find((k) => TARGETS[k] === t) || t)
      .join(", ");
    throw new Failure(
      "No binary for this runner",
      `codex-auth ${checksums.version} publishes no binary for ${key} ` +
        `(runner ${process.env.RUNNER_OS || "?"}/${process.env.RUNNER_ARCH || "?"}); ` +
        `it has binaries for: ${offered || "none"}. Use a runner of one of those, or the ` +
        "container action (uses: <owner>/codex-auth@<version>) on a Linux runner.",
    );
  }
  return { target: name, ...asset };
}

/** checksums.json beside this file: the release's version and each binary's SHA-256. */
function readChecksums(dir = __dirname) {
  const file = path.join(dir, "checksums.json");
  const checksums = JSON.parse(fs.readFileSync(file, "utf8"));
  if (!checksums.version || !checksums.assets || Object.keys(checksums.assets).length === 0) {
    throw new Failure(
      "Not a release",
      "this commit of codex-auth pins no release binaries (host/checksums.json is empty): use " +
        "the host face from a release tag (uses: <owner>/codex-auth/host@v1), whose commit pins " +
        "them (RELEASING.md).",
    );
  }
  return checksums;
}

function sha256(file) {
  return crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

// Proxies and trust: the rules of the binary's own client (they mirror src/net/proxy.rs and
// src/net/trust.rs), so the download goes where the binary's requests go. A URL goes through
// the proxy its scheme's variable names (lower case first, blank is unset), unless no_proxy
// (else NO_PROXY) matches its host: a name matches itself and its subdomains (a leading "." or
// "*." alike), "*" every host, an IP address or CIDR range the addresses in it, each entry
// with ":port" that port only. A loopback destination never goes through the proxy.
const PROXY_VARIABLES = {
  "https:": ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"],
  "http:": ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"],
};

/** The first of `names` set and not blank in `env`: `{ variable, value }` (trimmed). */
const firstSet = (env, names) => names.map((variable) => ({ variable, value: (env[variable] || "").trim() })).find((v) => v.value);

/** A URL's host without IPv6 brackets, and the port it goes to. */
const bare = (url) => url.hostname.replace(/^\[|\]$/g, "");
const portOf = (url) => Number(url.port) || (url.protocol === "https:" ? 443 : 80);

/** A proxy variable's URL, checked: `{ url, shown, headers }` (`shown` without credentials). */
function parseProxy({ variable, value }) {
  let url;
  try {
    // curl and the runner take a proxy without a scheme as http://.
    url = new URL(value.includes("://") ? value : `http://${value}`);
  } catch {
    // Not the value in the message: it may hold a password.
    const fix = "set it to http://HOST:PORT (credentials as http://USER:PASSWORD@HOST:PORT, percent-encoded), or unset it";
    throw new Failure("Proxy variable not usable", `${variable} is not a proxy URL: ${fix}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    const scheme = url.protocol.slice(0, -1);
    throw new Failure(
      "Proxy variable not usable",
      `${variable} names a ${scheme} proxy (${scheme}://${url.host}); codex-auth speaks to HTTP proxies only ` +
        "(http:// or https://): set it to the company's HTTP proxy",
    );
  }
  const headers = {};
  if (url.username || url.password) {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    headers["proxy-authorization"] = `Basic ${Buffer.from(credentials).toString("base64")}`;
  }
  return { url, shown: `${url.protocol}//${url.hostname}:${portOf(url)} (${variable})`, headers };
}

/** Whether the no_proxy `entry` matches `host` (lower case, no brackets) at `port`. */
function bypasses(variable, entry, host, port) {
  // [v6] or [v6]:port; otherwise one colon is host:port, more a bare IPv6 address or range.
  const bracketed = /^\[(.*)\](?::(.*))?$/.exec(entry);
  const [name, number] = bracketed ? bracketed.slice(1) : entry.split(":").length === 2 ? entry.split(":") : [entry];
  if ((entry.startsWith("[") && !bracketed) || (number !== undefined && !(/^\d+$/.test(number) && Number(number) <= 65535))) {
    const fix = "write entries as HOST, .DOMAIN, HOST:PORT, an IP address or CIDR range, or *, separated by commas";
    throw new Failure("NO_PROXY entry not usable", `${variable} holds "${entry}", whose port is not a number: ${fix}`);
  }
  const rule = name.toLowerCase().replace(/^\*\./, ".");
  if (number !== undefined && Number(number) !== port) {
    return false;
  }
  if (rule === "*") {
    return true;
  }
  if (net.isIP(host)) {
    // An address or CIDR range; a name never matches an address.
    const [address, bits] = rule.split("/");
    const family = `ipv${net.isIP(address)}`;
    const range = new net.BlockList();
    try {
      range.addSubnet(address, Number(bits || (family === "ipv4" ? 32 : 128)), family);
    } catch {
      return false;
    }
    return `ipv${net.isIP(host)}` === family && range.check(host, family);
  }
  const domain = rule.replace(/^\./, "");
  return host === domain || host.endsWith(`.${domain}`);
}

/** The proxy `url` (a URL) goes through, from `env`'s variables, or undefined to go directly. */
function proxyFor(url, env = process.env) {
  const named = firstSet(env, PROXY_VARIABLES[url.protocol] || []);
  const proxy = named && parseProxy(named);
  const host = bare(url).toLowerCase();
  const loopback = host === "localhost" || host.endsWith(".localhost") || (net.isIPv4(host) && host.startsWith("127.")) || ["::1", "::", "0.0.0.0"].includes(host);
  const noProxy = firstSet(env, ["no_proxy", "NO_PROXY"]);
  const entries = noProxy ? noProxy.value.split(",").map((e) => e.trim()).filter(Boolean) : [];
  // Every entry is checked, as the binary checks them all.
  const bypassed = entries.map((entry) => bypasses(noProxy.variable, entry, host, portOf(url)));
  return proxy && !loopback && !bypassed.includes(true) ? proxy : undefined;
}

/**
 * The CAs to trust when SSL_CERT_FILE or SSL_CERT_DIR (`:`-separated directories of PEM files)
 * is set: Node.js's built-in roots, theirs, and NODE_EXTRA_CA_CERTS's (Node.js reads that one
 * itself, but a `ca` list replaces its store). Undefined otherwise: Node.js's own trust.
 */
function trust(env = process.env) {
  const [file, extra, dirs] = ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "SSL_CERT_DIR"].map((name) => firstSet(env, [name]));
  if (!file && !dirs) {
    return undefined;
  }
  const pems = (name) => fs.readFileSync(name, "utf8").match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) || [];
  const ca = [...tls.rootCertificates];
  for (const { variable, value } of [file, extra].filter(Boolean)) {
    let why = "which holds no -----BEGIN CERTIFICATE----- block";
    const found = [];
    try {
      found.push(...pems(value));
    } catch (error) {
      why = `which cannot be read (${error.code || error.message})`;
    }
    if (found.length === 0) {
      const fix = "point it at the PEM file of the CA to trust (the company's proxy or GitHub Enterprise Server CA), readable by the runner's user, or unset it";
      throw new Failure("CA file not readable", `${variable} names ${value}, ${why}: ${fix}`);
    }
    ca.push(...found);
  }
  for (const dir of (dirs ? dirs.value.split(path.delimiter) : []).filter(Boolean)) {
    let names;
    try {
      names = fs.readdirSync(dir);
    } catch (error) {
      const fix = "point it at a directory of PEM certificates readable by the runner's user, or unset it";
      throw new Failure("CA directory not readable", `SSL_CERT_DIR names ${dir}, which cannot be read (${error.code || error.message}): ${fix}`);
    }
    for (const name of names) {
      try {
        ca.push(...pems(path.join(dir, name)));
      } catch {
        // A subdirectory or an unreadable file: skipped, as OpenSSL skips it.
      }
    }
  }
  return ca;
}

/** What a 407 from the proxy asks for. */
const WANTS_CREDENTIALS = " (the proxy wants valid credentials in its URL: http://USER:PASSWORD@HOST:PORT, percent-encoded)";

/** A socket to `url` through a CONNECT tunnel of `proxy`. */
function tunnel(proxy, url, ca, timeoutMs) {
  return new Promise((resolve, reject) => {
    const authority = `${url.hostname}:${portOf(url)}`;
    const headers = { host: authority, ...proxy.headers };
    const options = { host: bare(proxy.url), port: portOf(proxy.url), method: "CONNECT", path: authority, headers, agent: false, ca };
    const request = (proxy.url.protocol === "https:" ? https : http).request(options);
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`no answer to CONNECT within ${timeoutMs / 1000} s`)));
    request.on("connect", (response, socket) => {
      if (response.statusCode !== 200) {
        socket.destroy();
        reject(new Error(`proxy answered ${response.statusCode} to CONNECT${response.statusCode === 407 ? WANTS_CREDENTIALS : ""}`));
        return;
      }
      socket.setTimeout(0);
      resolve(socket);
    });
    request.on("error", reject);
    request.end();
  });
}

/** GETs `url` (a URL) once: resolves with a redirect's Location, or undefined once the body is in `dest`. */
async function getOnce(url, dest, { env, ca, timeoutMs }) {
  const proxy = proxyFor(url, env);
  // No query in messages: a storage URL's holds a signature.
  const what = `GET ${url.protocol}//${url.host}${url.pathname}${proxy ? ` through the proxy ${proxy.shown}` : ""}`;
  // The proxy goes with the error, for install's advice.
  const problem = (text) => Object.assign(new Error(`${what} ${text}`), { proxy: proxy && proxy.shown });
  const headers = { "user-agent": "codex-auth-host" };
  const options = { protocol: url.protocol, host: bare(url), port: portOf(url), path: `${url.pathname}${url.search}`, headers, ca };
  if (proxy && url.protocol === "http:") {
    // The absolute form: the proxy is asked for the whole URL.
    const target = { protocol: proxy.url.protocol, host: bare(proxy.url), port: portOf(proxy.url), path: `${url.origin}${options.path}` };
    Object.assign(options, target, { agent: false, headers: { ...headers, host: url.host, ...proxy.headers } });
  } else if (proxy) {
    const socket = await tunnel(proxy, url, ca, timeoutMs).catch((error) => {
      throw problem(`failed: ${error.message}`);
    });
    const host = bare(url);
    const secure = tls.connect({ socket, host, servername: net.isIP(host) ? undefined : host, ca });
    options.createConnection = () => secure;
  }
  return new Promise((resolve, reject) => {
    const fail = (error) => reject(problem(`failed: ${error.message}`));
    const request = (options.protocol === "https:" ? https : http).get(options, (response) => {
      const status = response.statusCode || 0;
      response.on("error", fail);
      if (status >= 300 && status < 400 && response.headers.location) {
        response.resume();
        resolve(response.headers.location);
      } else if (status !== 200) {
        response.resume();
        reject(problem(`answered ${status}${proxy && status === 407 ? WANTS_CREDENTIALS : ""}`));
      } else {
        const out = fs.createWriteStream(dest, { mode: 0o700 });
        response.pipe(out);
        out.on("finish", () => out.close(() => resolve(undefined)));
        out.on("error", fail);
      }
    });
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    request.on("error", fail);
  });
}

/**
 * GET `url` into `dest`, following redirects (a release asset redirects to storage), each hop
 * through the proxy `env`'s variables choose for it, or directly, trusting what `trust` finds.
 * A proxy or CA variable that cannot be used is a Failure.
 */
async function download(url, dest, { env = process.env, redirects = 5, timeoutMs = 60000 } = {}) {
  const ca = trust(env);
  let next = new URL(url);
  for (let left = redirects; ; left--) {
    if (!PROXY_VARIABLES[next.protocol]) {
      throw new Error(`not an http(s) URL: ${next.protocol}//${next.host}${next.pathname}`);
    }
    const location = await getOnce(next, dest, { env, ca, timeoutMs });
    if (location === undefined) {
      return;
    }
    if (left === 0) {
      throw new Error(`too many redirects for ${url}`);
    }
    next = new URL(location, next);
  }
}

/** Where the release's binary goes in the tool cache, as @actions/tool-cache lays it out. */
function cachePath(checksums, asset, toolCache = process.env.RUNNER_TOOL_CACHE) {
  if (!toolCache) {
    throw new Failure("Not on a runner", "RUNNER_TOOL_CACHE is not set; the runner sets it for every step");
  }
  return path.join(toolCache, "codex-auth", checksums.version, asset.target);
}

/**
 * The binary for this runner: from the tool cache, or downloaded, and in either case checked
 * against the SHA-256 the release commit pins before it may run.
 */
async function install(checksums = readChecksums(), env = process.env) {
  const asset = target(checksums);
  const dir = cachePath(checksums, asset, env.RUNNER_TOOL_CACHE);
  const binary = path.join(dir, asset.name);
  if (fs.existsSync(`${dir}.complete`) && fs.existsSync(binary)) {
    if (sha256(binary) === asset.sha256) {
      return binary;
    }
    // Never trust a cache: a changed binary is fetched again.
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(`${dir}.complete`, { force: true });
  }
  const server = (env.GITHUB_SERVER_URL || "").replace(/\/+$/, "");
  const repository = env.GITHUB_ACTION_REPOSITORY;
  if (!server || !repository) {
    throw new Failure(
      "Not on a runner",
      "GITHUB_SERVER_URL and GITHUB_ACTION_REPOSITORY are not set; the runner sets them for a step that uses an action",
    );
  }
  const url = `${server}/${repository}/releases/download/v${checksums.version}/${asset.name}`;
  fs.mkdirSync(dir, { recursive: true });
  const partial = `${binary}.download`;
  let last;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      await download(url, partial, { env });
      last = undefined;
      break;
    } catch (error) {
      if (error instanceof Failure) {
        // A proxy or CA variable that cannot be used: no retry mends it.
        throw error;
      }
      last = error;
      fs.rmSync(partial, { force: true });
      if (attempt < 3) {
        console.log(`${error.message}; retrying (attempt ${attempt + 1}/3)`);
        await new Promise((r) => setTimeout(r, 1000 * attempt));
      }
    }
  }
  if (last) {
    const proxy = last.proxy ? ` and that the proxy ${last.proxy} lets the runner reach ${server}` : "";
    throw new Failure(
      "Cannot download codex-auth",
      `${last.message}. Re-run the job; check that the release v${checksums.version} of ${repository} has the asset ${asset.name}${proxy}.`,
    );
  }
  const actual = sha256(partial);
  if (actual !== asset.sha256) {
    fs.rmSync(partial, { force: true });
    throw new Failure(
      "Checksum mismatch",
      `the downloaded ${asset.name} has SHA-256 ${actual}, but this release pins ${asset.sha256} ` +
        "(host/checksums.json of the release commit): refusing to run it. Nothing was restored. " +
        "Report it to the action's maintainers; do not work around it.",
    );
  }
  fs.chmodSync(partial, 0o755);
  fs.renameSync(partial, binary);
  fs.writeFileSync(`${dir}.complete`, "");
  console.log(`Installed codex-auth ${checksums.version} (${asset.target}) in the tool cache, SHA-256 ${actual}.`);
  return binary;
}

/** Runs `codex-auth action <stage>` with the step's environment; returns its exit code. */
function runStage(binary, stage, env = process.env) {
  // The mode this face checked, whatever the step passed: an empty input would make the
  // binary run its own default, `exec`.
  const childEnv = { ...env, INPUT_MODE: "restore" };
  // A job-scoped CODEX_HOME, never the runner user's own ~/.codex, unless the workflow set one.
  if (!childEnv.CODEX_HOME && childEnv.RUNNER_TEMP) {
    childEnv.CODEX_HOME = path.join(childEnv.RUNNER_TEMP, "codex-auth", "codex-home");
  }
  const result = spawnSync(binary, ["action", stage], { stdio: "inherit", env: childEnv });
  if (result.error) {
    throw new Failure("Cannot run codex-auth", `${binary}: ${result.error.message}`);
  }
  return result.status === null ? 1 : result.status;
}

/** The main stage: refuse what the host cannot keep safe, install, run. */
async function main() {
  const mode = input("mode") || "restore";
  if (!HOST_MODES.includes(mode)) {
    throw new Failure(
      "Mode not available on the host",
      `\`mode: ${mode}\` is not available in the host face: here Codex would run as the ` +
        "runner's own user while this action's process, which holds input `token` in its " +
        "environment (readable by any process of that user), is alive. Use `mode: restore` " +
        "and run Codex in a later step of the job (the post stage writes back what it " +
        "refreshed), or use the container action on a Linux runner for exec, refresh and login.",
    );
  }
  const binary = await install();
  // Not a secret: the post stage runs the same, checked binary.
  fileCommand("GITHUB_STATE", "codex_auth_binary", binary);
  return runStage(binary, "main");
}

/** The post stage: the binary main installed, checked again, then `action post`. */
async function post() {
  const binary = (process.env.STATE_codex_auth_binary || "").trim();
  if (!binary) {
    console.log("The main stage installed no codex-auth: nothing to write back.");
    return 0;
  }
  const checksums = readChecksums();
  const asset = target(checksums);
  if (!fs.existsSync(binary) || sha256(binary) !== asset.sha256) {
    throw new Failure(
      "Checksum mismatch",
      `${binary} is no longer the binary the release pins (SHA-256 ${asset.sha256}): refusing ` +
        "to run it. The refreshed login, if any, is still in CODEX_HOME.",
    );
  }
  return runStage(binary, "post");
}

/** Runs a stage function and ends the process with its outcome. */
function entry(stage) {
  stage().then(
    (code) => {
      process.exitCode = code;
    },
    (error) => {
      const failure = error instanceof Failure ? error : new Failure("codex-auth failed", error.stack || String(error));
      annotate("error", failure.title, failure.message);
      process.exitCode = 1;
    },
  );
}

module.exports = { TARGETS, HOST_MODES, Failure, target, readChecksums, sha256, proxyFor, trust, download, install, runStage, main, post, entry };
