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
const path = require("node:path");
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

/** GET `url` into `dest`, following redirects (a release asset redirects to storage). */
function download(url, dest, redirects = 5, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    const client = url.startsWith("https:") ? https : url.startsWith("http:") ? http : null;
    if (!client) {
      reject(new Error(`not an http(s) URL: ${url}`));
      return;
    }
    const request = client.get(url, { headers: { "user-agent": "codex-auth-host" } }, (response) => {
      const status = response.statusCode || 0;
      if (status >= 300 && status < 400 && response.headers.location) {
        response.resume();
        if (redirects === 0) {
          reject(new Error(`too many redirects for ${url}`));
          return;
        }
        const next = new URL(response.headers.location, url).toString();
        download(next, dest, redirects - 1, timeoutMs).then(resolve, reject);
        return;
      }
      if (status !== 200) {
        response.resume();
        reject(new Error(`GET ${url} answered ${status}`));
        return;
      }
      const out = fs.createWriteStream(dest, { mode: 0o700 });
      response.pipe(out);
      out.on("finish", () => out.close(() => resolve()));
      out.on("error", reject);
      response.on("error", reject);
    });
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`no answer within ${timeoutMs / 1000} s from ${url}`)));
    request.on("error", reject);
  });
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
      await download(url, partial);
      last = undefined;
      break;
    } catch (error) {
      last = error;
      fs.rmSync(partial, { force: true });
      if (attempt < 3) {
        console.log(`${error.message}; retrying (attempt ${attempt + 1}/3)`);
        await new Promise((r) => setTimeout(r, 1000 * attempt));
      }
    }
  }
  if (last) {
    throw new Failure("Cannot download codex-auth", `${last.message}. Re-run the job; check that the release v${checksums.version} of ${repository} has the asset ${asset.name}.`);
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

module.exports = { TARGETS, HOST_MODES, Failure, target, readChecksums, sha256, download, install, runStage, main, post, entry };
