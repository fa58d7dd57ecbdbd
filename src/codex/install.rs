//! The Codex input `codex-version` names, fetched from the npm registry before any login is
//! restored. Without it, the `codex` on PATH runs (in the image, the pinned version, checked
//! against its integrity hash when the image was built).
//!
//! A named version is the platform package of `@openai/codex` for this machine (a version of
//! the package itself, `0.171.0-linux-x64`), found through the registry's document for that
//! version. Its tarball is checked against the document's `integrity` (sha512) before a byte
//! of it is unpacked, and the bytes unpacked are the ones hashed (the same open file). Only
//! the platform's `vendor/<target>` tree is unpacked: regular files and directories, no links,
//! no path leaving it, modes 0755 or 0644, at most [`MAX_UNPACKED_BYTES`], less the parts the
//! CLI never loads (as the Dockerfile trims them). The copy is kept under the cache root
//! (`<root>/codex-auth-codex/<version>/<platform>`) for the job's later steps, with a marker
//! naming what was verified, written last.
//!
//! A later step reuses the copy only while every directory on the way from the cache root and
//! every file in it belongs to this process's user and no one else can write it. In the
//! container this process is root and Codex never is: a Codex in an earlier step can write
//! the cache root (RUNNER_TEMP), so it can move this action's directory aside and put its own
//! (or a link) in its place, but it cannot write into what root made; what is not root's is
//! replaced and fetched again. The check holds between steps, not against a process running at
//! the same time (none does in the container: every process Codex left is ended after it).
//! On the host Codex runs as the same user as the action: there the cache is as safe as the
//! runner's own tool cache, and a directory of another user is refused, not removed.
//!
//! The registry is the one `npm_config_registry` names, else the one the image was built
//! from, else npm's own setting (asked with an environment of its own). No credential is
//! sent. A tarball address on another host than the registry's is not followed (the
//! package's standard path on the registry is used instead); a redirect the registry answers
//! with is (a mirror may keep tarballs in blob storage): the integrity comes from the
//! registry's document either way.

use std::io::{self, Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha512};

use crate::config::CodexSource;
use crate::failure::Failure;
use crate::github::http::{HttpError, Plain};

/// The npm package.
const PACKAGE: &str = "@openai/codex";

/// The package's name in a registry path.
const PACKAGE_PATH: &str = "@openai%2fcodex";

/// The cache root's directory for fetched copies: a name of its own, apart from the host
/// face's `codex-auth/<version>` in the tool cache.
const CACHE_DIR: &str = "codex-auth-codex";

/// The marker a verified copy carries, written last.
const MARKER: &str = ".codex-auth-verified.json";

/// How long a version document may take.
const DOCUMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the tarball (about 170 MB) may take: 20 minutes is about 150 kB/s.
const TARBALL_TIMEOUT: Duration = Duration::from_secs(1200);

/// The largest tarball accepted.
const MAX_TARBALL_BYTES: u64 = 1024 * 1024 * 1024;

/// The most the unpacked files may hold (the CLI's tree is about 330 MB).
const MAX_UNPACKED_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// The largest version document accepted.
const MAX_DOCUMENT_BYTES: u64 = 1024 * 1024;

/// Tries per registry request (a timeout, a transport failure, a 5xx or a 429 is tried again).
const ATTEMPTS: u32 = 3;

/// Redirects followed per request.
const MAX_REDIRECTS: u32 = 5;

/// What the CLI never loads, left out of the unpacked copy as the Dockerfile leaves it out
/// of the image: the voice runtime and the code-mode host.
pub const TRIMMED: &[&str] = &["codex-resources/voice", "bin/codex-code-mode-host"];

/// A platform Codex publishes a native package for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    /// The package's suffix (`linux-x64`).
    pub npm: &'static str,
    /// The directory under `vendor/` (`x86_64-unknown-linux-musl`).
    pub target: &'static str,
    /// The binary's name.
    pub binary: &'static str,
}

impl Platform {
    /// This machine's.
    pub fn current() -> Option<Self> {
        Self::of(std::env::consts::OS, std::env::consts::ARCH)
    }

    /// The platform of an OS and architecture (Rust's names), as the package's own launcher
    /// (`codex-cli/bin/codex.js` of `@openai/codex`) maps Node.js's.
    pub fn of(os: &str, arch: &str) -> Option<Self> {
        let (npm, target) = match (os, arch) {
            ("linux", "x86_64") => ("linux-x64", "x86_64-unknown-linux-musl"),
            ("linux", "aarch64") => ("linux-arm64", "aarch64-unknown-linux-musl"),
            ("macos", "x86_64") => ("darwin-x64", "x86_64-apple-darwin"),
            ("macos", "aarch64") => ("darwin-arm64", "aarch64-apple-darwin"),
            ("windows", "x86_64") => ("win32-x64", "x86_64-pc-windows-msvc"),
            ("windows", "aarch64") => ("win32-arm64", "aarch64-pc-windows-msvc"),
            _ => return None,
        };
        let binary = if os == "windows" {
            "codex.exe"
        } else {
            "codex"
        };
        Some(Self {
            npm,
            target,
            binary,
        })
    }
}

/// The Codex a stage runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codex {
    /// What to start: `codex` (found on PATH) or the fetched binary's path.
    pub program: PathBuf,
    /// Where it came from.
    pub origin: Origin,
}

/// Where the Codex a stage runs came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The `codex` on PATH.
    Path,
    /// A copy fetched and verified by an earlier step (or, in a tool cache, an earlier job).
    Cached {
        /// The version.
        version: String,
    },
    /// Fetched from the registry and verified now.
    Fetched {
        /// The version.
        version: String,
        /// The tarball's size.
        bytes: u64,
        /// How long the fetch, the check and the unpacking took.
        took: Duration,
        /// A copy (or a directory on its way) that was there but not as verified, and why:
        /// it was replaced.
        replaced: Option<String>,
    },
}

impl Codex {
    /// The `codex` on PATH.
    pub fn on_path() -> Self {
        Self {
            program: PathBuf::from("codex"),
            origin: Origin::Path,
        }
    }

    /// The directory of a fetched binary: what restore mode puts on PATH for later steps.
    pub fn bin_dir(&self) -> Option<&Path> {
        match self.origin {
            Origin::Path => None,
            _ => self.program.parent(),
        }
    }

    /// Where this Codex came from, for the log.
    pub fn describe(&self) -> String {
        match &self.origin {
            Origin::Path => "the codex on PATH".to_owned(),
            Origin::Cached { version } => format!(
                "Codex {version}, fetched and verified by an earlier step ({})",
                self.program.display()
            ),
            Origin::Fetched {
                version,
                bytes,
                took,
                ..
            } => format!(
                "Codex {version}, fetched from the npm registry, checked against its sha512 \
                 integrity and unpacked in {:.1} s ({:.0} MB)",
                took.as_secs_f64(),
                *bytes as f64 / 1e6
            ),
        }
    }
}

/// What a verified copy's marker records.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Marker {
    package: String,
    version: String,
    platform: String,
    integrity: String,
}

/// What `program --version` prints, first line (`codex-cli 0.171.0`); `None` when it does not
/// run (not found on PATH, say) or prints something else. Run with Codex's environment, and as
/// Codex's user when this process is root. Only a line that names a version is answered: it
/// goes to the log, where a stray control character could pass for a workflow command.
pub async fn version_line(
    program: &Path,
    environment: &[(std::ffi::OsString, std::ffi::OsString)],
    run_as: Option<(u32, u32)>,
) -> Option<String> {
    let mut command = tokio::process::Command::new(program);
    command
        .arg("--version")
        .env_clear()
        .envs(environment.iter().cloned())
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    #[cfg(unix)]
    if let Some((uid, gid)) = run_as {
        command.uid(uid).gid(gid);
    }
    #[cfg(not(unix))]
    let _ = run_as;
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .ok()?
        .ok()?;
    let first = output.stdout.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(first).ok()?.trim();
    (output.status.success() && reported_version(line).is_some()).then(|| line.to_owned())
}

/// The version a `codex --version` line names (`codex-cli 0.171.0`): letters, digits and
/// `.+-` only.
pub fn reported_version(line: &str) -> Option<&str> {
    let version = line.trim().strip_prefix("codex-cli ")?.trim();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-');
    (!version.is_empty() && version.len() <= 64 && version.chars().all(plain)).then_some(version)
}

/// The named version: the cached copy while it is still as verified, else fetched.
pub async fn named(source: &CodexSource, version: &str) -> Result<Codex, Failure> {
    let platform = Platform::current().ok_or_else(|| {
        Failure::new(
            "No Codex for this runner",
            format!(
                "@openai/codex publishes no native package for {}/{}.",
                std::env::consts::OS,
                std::env::consts::ARCH
            ),
        )
        .before_codex()
        .fix("Run on Linux, macOS or Windows, on x86_64 or arm64.")
    })?;
    let dir = copy_dir(&source.cache_root, version, &platform);
    let program = dir.join("bin").join(platform.binary);
    let way = own_the_way(&source.cache_root, &[CACHE_DIR, version])
        .map_err(|e| cannot_keep(&dir, &e))?;
    let replaced = match cached(&dir, version, &platform) {
        Cache::Verified => {
            return Ok(Codex {
                program,
                origin: Origin::Cached {
                    version: version.to_owned(),
                },
            })
        }
        Cache::Missing => way,
        Cache::Changed(why) => {
            // Its parent is this user's now: what is there is removed, then fetched again.
            if !may_replace() {
                return Err(cannot_keep(&dir, &format!("{why}; remove it by hand")));
            }
            remove(&dir).map_err(|e| cannot_keep(&dir, &e.to_string()))?;
            Some(way.unwrap_or(why))
        }
    };
    let started = Instant::now();
    let registry = registry(source).await?;
    let document = document(&registry, version, &platform).await?;
    let bytes = fetch(&registry, &document, version, &platform, &dir).await?;
    Ok(Codex {
        program,
        origin: Origin::Fetched {
            version: version.to_owned(),
            bytes,
            took: started.elapsed(),
            replaced,
        },
    })
}

/// Where a version's copy is kept.
fn copy_dir(cache_root: &Path, version: &str, platform: &Platform) -> PathBuf {
    cache_root.join(CACHE_DIR).join(version).join(platform.npm)
}

/// Removes the copies fetched into the job's temporary directory, when this process is root
/// and root owns the way there (the container's post stage: the runner, which empties the
/// directory after the job, cannot remove what root made). Anything else is left as it is.
pub fn remove_fetched(cache_root: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let dir = cache_root.join(CACHE_DIR);
        let root_owned = std::fs::symlink_metadata(&dir)
            .is_ok_and(|meta| meta.is_dir() && meta.uid() == 0 && meta.mode() & 0o022 == 0);
        if rustix::process::geteuid().is_root() && root_owned {
            // remove_dir_all follows no link inside.
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    #[cfg(not(unix))]
    let _ = cache_root;
}

/// What the cache holds for a version.
#[derive(Debug, PartialEq, Eq)]
enum Cache {
    Missing,
    Verified,
    /// There, but not as it was verified: why.
    Changed(String),
}

fn cached(dir: &Path, version: &str, platform: &Platform) -> Cache {
    if std::fs::symlink_metadata(dir).is_err() {
        return Cache::Missing;
    }
    if let Err(why) = owned_by_us(dir) {
        return Cache::Changed(why);
    }
    let marker = std::fs::read(dir.join(MARKER))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Marker>(&bytes).ok());
    match marker {
        Some(m) if m.package == PACKAGE && m.version == version && m.platform == platform.npm => {
            if dir.join("bin").join(platform.binary).is_file() {
                Cache::Verified
            } else {
                Cache::Changed("its binary is missing".to_owned())
            }
        }
        Some(_) => Cache::Changed("its marker names another version".to_owned()),
        None => Cache::Changed("it has no marker of a verified copy".to_owned()),
    }
}

/// Whether what is not this user's may be replaced: only as root (the container), where it
/// can only be what Codex's user put there. On the host it may be another user's, whose
/// files are not this action's to remove.
fn may_replace() -> bool {
    #[cfg(unix)]
    return rustix::process::geteuid().is_root();
    #[cfg(not(unix))]
    false
}

/// Makes each directory from `root` down through `below` a real directory of this process's
/// user that no one else can write, replacing (as root) whatever else is there; answers what
/// was replaced. What lies under them is then this user's alone to change.
fn own_the_way(root: &Path, below: &[&str]) -> Result<Option<String>, String> {
    let mut path = root.to_owned();
    let mut replaced = None;
    for part in below {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) => {
                if let Err(why) = ours(&path, &meta) {
                    if !may_replace() {
                        return Err(format!("{why}; remove it by hand"));
                    }
                    remove(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    make_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    replaced.get_or_insert(why);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(path.parent().unwrap_or(&path))
                    .and_then(|()| make_dir(&path))
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Ok(replaced)
}

fn make_dir(path: &Path) -> io::Result<()> {
    std::fs::create_dir(path)?;
    set_mode(path, 0o755)
}

/// Every entry under `dir` (itself included) is [`ours`].
fn owned_by_us(dir: &Path) -> Result<(), String> {
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
        ours(&path, &meta)?;
        if meta.is_dir() {
            let entries = std::fs::read_dir(&path)
                .map_err(|e| format!("{} cannot be listed: {e}", path.display()))?;
            for entry in entries {
                pending.push(
                    entry
                        .map_err(|e| format!("{} cannot be listed: {e}", path.display()))?
                        .path(),
                );
            }
        }
    }
    Ok(())
}

/// A directory or a regular file (not a link) of this process's user that no one else can
/// write; on Windows, which has no such owner check here, only the kind.
fn ours(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    if !meta.is_dir() && !meta.is_file() {
        return Err(format!(
            "{} is not a directory or a regular file",
            path.display()
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(format!("{} belongs to uid {}", path.display(), meta.uid()));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!("others can write {}", path.display()));
        }
    }
    Ok(())
}

fn remove(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        // remove_dir_all follows no link inside.
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        _ => std::fs::remove_file(path),
    }
}

fn cannot_keep(dir: &Path, why: &str) -> Failure {
    Failure::new(
        "Cannot keep the Codex package",
        format!("The Codex package cannot be kept in {}: {why}.", dir.display()),
    )
    .before_codex()
    .fix("Check that the runner's temporary directory (RUNNER_TEMP) or tool cache is writable and has about 1 GB free.")
}

/// The registry's base URL, without a trailing `/`.
async fn registry(source: &CodexSource) -> Result<String, Failure> {
    let registry = match &source.registry {
        Some(registry) => registry.clone(),
        None => npm_registry().await.ok_or_else(|| {
            Failure::new(
                "No npm registry",
                "A Codex version other than the one on PATH is fetched from the npm registry, \
                 and none is configured here: npm_config_registry is not set and `npm config \
                 get registry` gave no answer.",
            )
            .before_codex()
            .fix("Set `npm_config_registry` in the step's `env:` to the registry's URL, or install npm.")
        })?,
    };
    let registry = registry.trim_end_matches('/').to_owned();
    match crate::github::http::allowed(&registry) {
        true => Ok(registry),
        false => Err(not_a_registry(&registry)),
    }
}

fn not_a_registry(registry: &str) -> Failure {
    Failure::new(
        "No npm registry",
        format!(
            "The npm registry \"{}\" (npm_config_registry, else the image's) is not an https:// \
             URL; Codex is fetched over https only.",
            shown(registry)
        ),
    )
    .before_codex()
    .fix("Set `npm_config_registry` in the step's `env:` to the registry's https:// URL.")
}

/// `npm config get registry`, outside the image: in a directory of its own, with no more of
/// the environment than npm needs to find its settings (never the action's inputs).
async fn npm_registry() -> Option<String> {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let keep = ["PATH", "HOME", "USERPROFILE", "APPDATA", "SystemRoot"];
    let scratch = std::env::temp_dir();
    let mut command = tokio::process::Command::new(npm);
    command
        .args(["config", "get", "registry"])
        .env_clear()
        .envs(std::env::vars_os().filter(|(name, _)| {
            let name = name.to_string_lossy();
            keep.iter().any(|k| name.eq_ignore_ascii_case(k))
                || name.to_ascii_lowercase().starts_with("npm_config_")
        }))
        .current_dir(scratch)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .ok()?
        .ok()?;
    let registry = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !registry.is_empty()).then_some(registry)
}

/// A URL as it may be shown: without a user or password in it.
fn shown(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// What the registry's document of the platform package says.
#[derive(Debug, Deserialize)]
struct Document {
    name: String,
    version: String,
    dist: Dist,
}

#[derive(Debug, Deserialize)]
struct Dist {
    integrity: Option<String>,
    tarball: Option<String>,
}

fn registry_failure(what: String) -> Failure {
    Failure::new("Cannot fetch Codex", what)
        .before_codex()
        .fix("Re-run the job; if it keeps failing, check the registry (npm_config_registry), or leave `codex-version` empty to run the pinned Codex.")
}

/// Where a download's body goes; a retry starts it over.
trait Sink: Send {
    fn write(&mut self, chunk: &[u8]) -> io::Result<()>;
    fn reset(&mut self) -> io::Result<()>;
}

impl Sink for Vec<u8> {
    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.extend_from_slice(chunk);
        Ok(())
    }
    fn reset(&mut self) -> io::Result<()> {
        self.clear();
        Ok(())
    }
}

/// The tarball: written to a file and hashed as it arrives.
struct Hashed {
    file: std::fs::File,
    hasher: Sha512,
}

impl Sink for Hashed {
    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.hasher.update(chunk);
        self.file.write_all(chunk)
    }
    fn reset(&mut self) -> io::Result<()> {
        self.hasher = Sha512::new();
        self.file.set_len(0)?;
        self.file.rewind()
    }
}

/// GETs a registry URL into `sink`, following the registry's redirects and trying again after
/// a timeout, a transport failure, a 429 or a 5xx. Answers the final status, the body's size,
/// and an error answer's body.
async fn get(
    client: &Plain,
    url: &str,
    accept: &str,
    limit: u64,
    sink: &mut dyn Sink,
) -> Result<(http::StatusCode, u64, Vec<u8>), Failure> {
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
        }
        let mut at = url.to_owned();
        let mut redirects = 0;
        let answer = loop {
            sink.reset()
                .map_err(|e| registry_failure(format!("cannot start the download again: {e}.")))?;
            let headers = [
                ("accept", accept.to_owned()),
                (
                    "user-agent",
                    concat!("codex-auth/", env!("CARGO_PKG_VERSION")).to_owned(),
                ),
            ];
            let answer = client
                .download(&at, &headers, limit, &mut |chunk| sink.write(chunk))
                .await;
            match answer {
                Ok(answer) if answer.status.is_redirection() && redirects < MAX_REDIRECTS => {
                    let Some(next) = answer.location.as_deref().and_then(|l| resolve(&at, l))
                    else {
                        break Ok(answer);
                    };
                    at = next;
                    redirects += 1;
                }
                other => break other,
            }
        };
        match answer {
            Ok(answer) => {
                let status = answer.status;
                if status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS {
                    last = format!("the registry answered {status}");
                    continue;
                }
                return Ok((status, answer.bytes, answer.error_body));
            }
            Err(HttpError::Sink(e)) => {
                return Err(Failure::new(
                    "Cannot keep the Codex package",
                    format!("The download of {} cannot be written: {e}.", shown(url)),
                )
                .before_codex()
                .fix("Check that the runner's temporary directory (RUNNER_TEMP) or tool cache has about 1 GB free."));
            }
            Err(e @ (HttpError::Url(_) | HttpError::TooLarge(_))) => {
                return Err(registry_failure(format!("GET {}: {e}.", shown(&at))));
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(registry_failure(format!(
        "GET {} failed {ATTEMPTS} times; the last time: {last}.",
        shown(url)
    )))
}

/// A redirect's target, absolute.
fn resolve(base: &str, location: &str) -> Option<String> {
    if location.starts_with("https://") || location.starts_with("http://") {
        return Some(location.to_owned());
    }
    let uri: http::Uri = base.parse().ok()?;
    let origin = format!("{}://{}", uri.scheme_str()?, uri.authority()?);
    location
        .starts_with('/')
        .then(|| format!("{origin}{location}"))
}

/// The registry's document of `<version>-<platform>`, checked to be that package.
async fn document(registry: &str, version: &str, platform: &Platform) -> Result<Document, Failure> {
    let client = Plain::new(DOCUMENT_TIMEOUT)
        .map_err(|e| registry_failure(format!("no HTTPS client: {e}")))?;
    let package = format!("{version}-{}", platform.npm);
    let url = format!("{registry}/{PACKAGE_PATH}/{package}");
    let (status, body) = get_json(&client, &url).await?;
    if status == http::StatusCode::NOT_FOUND {
        // Which is missing: the version, or only its package for this platform?
        let (main, _) = get_json(&client, &format!("{registry}/{PACKAGE_PATH}/{version}")).await?;
        let what = if main == http::StatusCode::OK {
            format!(
                "Codex {version} exists, but the registry has no native package of it for \
                 {} ({PACKAGE}@{package}).",
                platform.npm
            )
        } else {
            format!("The registry has no Codex {version} ({PACKAGE}@{version} is not there).")
        };
        return Err(Failure::new("No such Codex version", what)
            .before_codex()
            .fix("Name a version `npm view @openai/codex versions` lists (one without a platform suffix), or leave `codex-version` empty to run the pinned Codex."));
    }
    if matches!(
        status,
        http::StatusCode::UNAUTHORIZED | http::StatusCode::FORBIDDEN
    ) {
        return Err(Failure::new(
            "Cannot fetch Codex",
            format!(
                "The registry refused GET {} ({status}): it wants a credential, and the action \
                 sends none.",
                shown(&url)
            ),
        )
        .before_codex()
        .fix("Point npm_config_registry at a registry (or mirror) that serves @openai/codex without a credential, or leave `codex-version` empty to run the pinned Codex."));
    }
    if status != http::StatusCode::OK {
        return Err(registry_failure(format!(
            "GET {} answered {status}: {}",
            shown(&url),
            crate::github::http::message(&body, "error")
        )));
    }
    let document: Document = serde_json::from_slice(&body).map_err(|e| {
        registry_failure(format!(
            "the registry's answer for {PACKAGE}@{package} is not a package document: {e}."
        ))
    })?;
    if document.name != PACKAGE || document.version != package {
        return Err(registry_failure(format!(
            "asked for {PACKAGE}@{package}, the registry answered with {}@{}.",
            document.name, document.version
        )));
    }
    Ok(document)
}

async fn get_json(client: &Plain, url: &str) -> Result<(http::StatusCode, Vec<u8>), Failure> {
    let mut body = Vec::new();
    let (status, _, error_body) = get(
        client,
        url,
        "application/json",
        MAX_DOCUMENT_BYTES,
        &mut body,
    )
    .await?;
    Ok((
        status,
        if status == http::StatusCode::OK {
            body
        } else {
            error_body
        },
    ))
}

/// The sha512 digest an SRI `integrity` string gives (`sha512-<base64>`, perhaps among
/// others separated by spaces).
fn sha512_of(integrity: &str) -> Option<[u8; 64]> {
    integrity.split_whitespace().find_map(|part| {
        let encoded = part.strip_prefix("sha512-")?;
        let encoded = encoded.split('?').next()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        bytes.try_into().ok()
    })
}

/// Downloads the tarball, checks it against the document's integrity, unpacks the same
/// bytes into `dir` (through a directory of its own beside it, renamed into place once
/// complete), and returns the tarball's size.
async fn fetch(
    registry: &str,
    document: &Document,
    version: &str,
    platform: &Platform,
    dir: &Path,
) -> Result<u64, Failure> {
    let package = format!("{PACKAGE}@{version}-{}", platform.npm);
    let integrity = document.dist.integrity.as_deref().unwrap_or_default();
    let expected = sha512_of(integrity).ok_or_else(|| {
        registry_failure(format!(
            "the registry gives no sha512 integrity for {package} (\"{integrity}\"), so the \
             download could not be checked; nothing was fetched."
        ))
    })?;
    let url = tarball_url(
        registry,
        document.dist.tarball.as_deref(),
        version,
        platform,
    );
    let parent = dir.parent().unwrap_or(dir);
    let download = tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(parent)
        .map_err(|e| cannot_keep(parent, &e.to_string()))?;
    let client = Plain::new(TARBALL_TIMEOUT)
        .map_err(|e| registry_failure(format!("no HTTPS client: {e}")))?;
    let mut sink = Hashed {
        file: download
            .reopen()
            .map_err(|e| cannot_keep(parent, &e.to_string()))?,
        hasher: Sha512::new(),
    };
    let (status, bytes, error_body) =
        get(&client, &url, "*/*", MAX_TARBALL_BYTES, &mut sink).await?;
    if status != http::StatusCode::OK {
        return Err(registry_failure(format!(
            "GET {} ({package}) answered {status}: {}",
            shown(&url),
            crate::github::http::message(&error_body, "error")
        )));
    }
    let actual: [u8; 64] = sink.hasher.finalize().into();
    if actual != expected {
        let b64 = base64::engine::general_purpose::STANDARD;
        return Err(Failure::new(
            "Codex package does not match its integrity",
            format!(
                "The tarball of {package} ({bytes} bytes from {}) has the digest \
                 sha512-{}, and the registry's integrity is sha512-{}: it was changed or cut \
                 short on the way. Nothing of it was unpacked or run.",
                shown(&url),
                b64.encode(actual),
                b64.encode(expected)
            ),
        )
        .before_codex()
        .fix("Re-run the job. If it happens again, the registry (or a proxy in between) serves a changed package: tell whoever runs it, and leave `codex-version` empty to run the pinned Codex meanwhile."));
    }
    // The bytes unpacked are the ones hashed: the same open file, from its start.
    let mut file = sink.file;
    file.rewind()
        .map_err(|e| cannot_keep(parent, &e.to_string()))?;
    let marker = Marker {
        package: PACKAGE.to_owned(),
        version: version.to_owned(),
        platform: platform.npm.to_owned(),
        integrity: integrity.to_owned(),
    };
    let (platform, dest) = (*platform, dir.to_owned());
    tokio::task::spawn_blocking(move || {
        let unpacked = unpack(file, &platform, &dest, &marker);
        drop(download);
        unpacked
    })
    .await
    .map_err(|e| cannot_keep(dir, &e.to_string()))?
    .map_err(|e| {
        Failure::new(
            "Cannot unpack the Codex package",
            format!(
                "{package} passed its integrity check but cannot be unpacked into {}: {e}.",
                dir.display()
            ),
        )
        .before_codex()
        .fix("Check the runner's free disk space (about 1 GB) and re-run the job; or leave `codex-version` empty to run the pinned Codex.")
    })?;
    Ok(bytes)
}

/// The tarball's address: the document's when it is on the configured registry, else the
/// package's standard path there (a mirror's document may name the upstream registry).
fn tarball_url(
    registry: &str,
    tarball: Option<&str>,
    version: &str,
    platform: &Platform,
) -> String {
    let origin = |url: &str| -> Option<String> {
        let uri: http::Uri = url.parse().ok()?;
        Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
    };
    match tarball {
        Some(url) if origin(url).is_some() && origin(url) == origin(registry) => url.to_owned(),
        _ => format!(
            "{registry}/{PACKAGE}/-/codex-{version}-{}.tgz",
            platform.npm
        ),
    }
}

/// Unpacks `package/vendor/<target>/` of a verified tarball into `dest`, less [`TRIMMED`]:
/// directories and regular files only, each path checked to stay inside, files 0755 when
/// the package marks them executable, else 0644, at most [`MAX_UNPACKED_BYTES`] in all.
/// Written to a directory beside `dest` and renamed into place, with the marker written
/// last, so that a copy cut short is never taken for a verified one.
fn unpack(
    tarball: std::fs::File,
    platform: &Platform,
    dest: &Path,
    marker: &Marker,
) -> io::Result<()> {
    let parent = dest.parent().unwrap_or(dest);
    let staging = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(parent)?;
    let prefix = Path::new("package").join("vendor").join(platform.target);
    let binary = Path::new("bin").join(platform.binary);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(tarball)));
    let mut found = false;
    let mut written = 0u64;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let Ok(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        if rest.as_os_str().is_empty() || TRIMMED.iter().any(|t| rest.starts_with(t)) {
            continue;
        }
        if !rest
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            return Err(io::Error::other(format!("unsafe path {}", path.display())));
        }
        let out = staging.path().join(rest);
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&out)?;
            continue;
        }
        if !kind.is_file() {
            return Err(io::Error::other(format!(
                "{} is not a regular file or a directory (a link or a device), which the \
                 package never holds",
                path.display()
            )));
        }
        written += entry.header().size()?;
        if written > MAX_UNPACKED_BYTES {
            return Err(io::Error::other(format!(
                "the package holds more than {MAX_UNPACKED_BYTES} bytes"
            )));
        }
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let executable = entry.header().mode()? & 0o111 != 0;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&out)?;
        io::copy(&mut (&mut entry).take(MAX_UNPACKED_BYTES), &mut file)?;
        file.sync_all()?;
        set_mode(&out, if executable { 0o755 } else { 0o644 })?;
        found |= rest == binary;
    }
    if !found {
        return Err(io::Error::other(format!(
            "the package has no {}",
            prefix.join(&binary).display()
        )));
    }
    let marker_path = staging.path().join(MARKER);
    std::fs::write(&marker_path, serde_json::to_vec(marker)?)?;
    set_mode(&marker_path, 0o644)?;
    set_modes(staging.path())?;
    let staged = staging.keep();
    // Another job on the same machine (a shared tool cache) may have put a verified copy
    // there meanwhile: it is kept, and this one dropped.
    if let Err(e) = std::fs::rename(&staged, dest) {
        let _ = std::fs::remove_dir_all(&staged);
        let version = &marker.version;
        if cached(dest, version, platform) != Cache::Verified {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// Directories 0755 (a temporary directory starts as 0700; the host's steps must enter it).
fn set_modes(dir: &Path) -> io::Result<()> {
    set_mode(dir, 0o755)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            set_modes(&entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux() -> Platform {
        Platform::of("linux", "x86_64").unwrap_or_else(|| unreachable!())
    }

    #[test]
    fn platforms_follow_codex_launcher() {
        let p = |os, arch| Platform::of(os, arch).map(|p| (p.npm, p.target, p.binary));
        assert_eq!(
            p("linux", "x86_64"),
            Some(("linux-x64", "x86_64-unknown-linux-musl", "codex"))
        );
        assert_eq!(
            p("macos", "aarch64"),
            Some(("darwin-arm64", "aarch64-apple-darwin", "codex"))
        );
        assert_eq!(
            p("windows", "x86_64"),
            Some(("win32-x64", "x86_64-pc-windows-msvc", "codex.exe"))
        );
        assert_eq!(p("freebsd", "x86_64"), None);
    }

    #[test]
    fn integrity_is_sha512_sri() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let digest = [7u8; 64];
        let sri = format!("sha1-AAAA sha512-{}", b64.encode(digest));
        assert_eq!(sha512_of(&sri), Some(digest));
        assert_eq!(sha512_of("sha1-AAAA"), None);
        assert_eq!(sha512_of("sha512-short"), None);
    }

    #[test]
    fn tarball_stays_on_the_configured_registry() {
        let registry = "https://mirror.example/npm";
        assert_eq!(
            tarball_url(
                registry,
                Some("https://mirror.example/npm/x.tgz"),
                "1.2.3",
                &linux()
            ),
            "https://mirror.example/npm/x.tgz"
        );
        assert_eq!(
            tarball_url(
                registry,
                Some("https://elsewhere.example/x.tgz"),
                "1.2.3",
                &linux()
            ),
            "https://mirror.example/npm/@openai/codex/-/codex-1.2.3-linux-x64.tgz"
        );
        assert_eq!(
            tarball_url(registry, None, "1.2.3", &linux()),
            "https://mirror.example/npm/@openai/codex/-/codex-1.2.3-linux-x64.tgz"
        );
    }

    #[test]
    fn only_a_version_line_is_taken() {
        assert_eq!(reported_version("codex-cli 0.171.0\n"), Some("0.171.0"));
        assert_eq!(
            reported_version("codex-cli 0.162.0-alpha.15"),
            Some("0.162.0-alpha.15")
        );
        assert_eq!(reported_version("something else"), None);
        assert_eq!(reported_version("codex-cli 1.0\r::add-mask::x"), None);
        assert_eq!(reported_version("codex-cli "), None);
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(
            shown("https://user:secret@npm.example/path/x"),
            "https://npm.example/path/x"
        );
        assert_eq!(shown("https://npm.example"), "https://npm.example");
        assert_eq!(
            resolve("https://npm.example/a/b", "/blob/c"),
            Some("https://npm.example/blob/c".to_owned())
        );
        assert_eq!(resolve("https://npm.example/a", "relative"), None);
    }

    /// An entry of a test tarball: path, kind, mode, content.
    type Entry<'a> = (&'a str, tar::EntryType, u32, &'a [u8]);

    /// A tarball with these entries.
    fn tarball(entries: &[Entry]) -> std::fs::File {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, kind, mode, content) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_mode(*mode);
            header.set_size(content.len() as u64);
            if kind.is_symlink() || kind.is_hard_link() {
                header.set_size(0);
                header
                    .set_link_name("/etc/passwd")
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            // Written raw: the builder's own path checks would refuse the hostile names.
            let name = path.as_bytes();
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            header.set_cksum();
            let body: &[u8] = if kind.is_file() { content } else { &[] };
            builder
                .append(&header, body)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let bytes = builder
            .into_inner()
            .and_then(|gz| gz.finish())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut file = tempfile::tempfile().unwrap_or_else(|e| panic!("{e}"));
        file.write_all(&bytes).unwrap_or_else(|e| panic!("{e}"));
        file.rewind().unwrap_or_else(|e| panic!("{e}"));
        file
    }

    fn marker() -> Marker {
        Marker {
            package: PACKAGE.to_owned(),
            version: "1.2.3".to_owned(),
            platform: "linux-x64".to_owned(),
            integrity: "sha512-x".to_owned(),
        }
    }

    const BIN: &str = "package/vendor/x86_64-unknown-linux-musl/bin/codex";

    #[cfg(unix)]
    #[test]
    fn the_platform_tree_is_unpacked_trimmed_with_plain_modes() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dest = root.path().join("linux-x64");
        let file = tarball(&[
            (
                "package/package.json",
                tar::EntryType::Regular,
                0o644,
                b"{}",
            ),
            (BIN, tar::EntryType::Regular, 0o4777, b"#!/bin/sh\n"),
            (
                "package/vendor/x86_64-unknown-linux-musl/codex-resources/voice/lib.so",
                tar::EntryType::Regular,
                0o755,
                b"x",
            ),
            (
                "package/vendor/x86_64-unknown-linux-musl/codex-package.json",
                tar::EntryType::Regular,
                0o666,
                b"{}",
            ),
            (
                "package/vendor/aarch64-unknown-linux-musl/bin/codex",
                tar::EntryType::Regular,
                0o755,
                b"other",
            ),
        ]);
        unpack(file, &linux(), &dest, &marker()).unwrap_or_else(|e| panic!("{e}"));
        let mode = |p: &str| {
            std::fs::metadata(dest.join(p))
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0)
        };
        assert_eq!(mode("bin/codex"), 0o755, "no setuid, no write for others");
        assert_eq!(mode("codex-package.json"), 0o644);
        assert_eq!(mode(MARKER), 0o644);
        assert!(!dest.join("codex-resources/voice").exists());
        assert!(!dest.join("package.json").exists());
        assert_eq!(cached(&dest, "1.2.3", &linux()), Cache::Verified);
    }

    #[cfg(unix)]
    #[test]
    fn links_escapes_and_a_missing_binary_are_refused() {
        let cases: [(&str, Vec<Entry>); 4] = [
            (
                "not a regular file",
                vec![
                    (BIN, tar::EntryType::Regular, 0o755, b"x"),
                    (
                        "package/vendor/x86_64-unknown-linux-musl/bin/sh",
                        tar::EntryType::Symlink,
                        0o777,
                        b"",
                    ),
                ],
            ),
            (
                "not a regular file",
                vec![
                    (
                        "package/vendor/x86_64-unknown-linux-musl/bin/passwd",
                        tar::EntryType::Link,
                        0o644,
                        b"",
                    ),
                    (BIN, tar::EntryType::Regular, 0o755, b"x"),
                ],
            ),
            (
                "unsafe path",
                vec![
                    (BIN, tar::EntryType::Regular, 0o755, b"x"),
                    (
                        "package/vendor/x86_64-unknown-linux-musl/../../../escaped",
                        tar::EntryType::Regular,
                        0o644,
                        b"x",
                    ),
                ],
            ),
            (
                "the package has no",
                vec![(
                    "package/vendor/x86_64-unknown-linux-musl/bin/other",
                    tar::EntryType::Regular,
                    0o755,
                    b"x",
                )],
            ),
        ];
        for (says, entries) in cases {
            let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let dest = root.path().join("linux-x64");
            let refused = unpack(tarball(&entries), &linux(), &dest, &marker())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(refused.contains(says), "{says}: {refused}");
            assert!(!dest.exists(), "{says}: nothing put in place");
            assert!(!root.path().join("escaped").exists());
            let left: Vec<_> = std::fs::read_dir(root.path())
                .map(|d| d.filter_map(Result::ok).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{says}: the staging directory is removed");
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_way_to_the_cache_is_made_this_users_own() {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let elsewhere = root.path().join("elsewhere");
        std::fs::create_dir_all(elsewhere.join("kept")).unwrap_or_else(|e| panic!("{e}"));
        // What a Codex could leave: a link in place of the cache's directory.
        std::os::unix::fs::symlink(&elsewhere, root.path().join(CACHE_DIR))
            .unwrap_or_else(|e| panic!("{e}"));
        let answer = own_the_way(root.path(), &[CACHE_DIR, "1.2.3"]);
        if may_replace() {
            let replaced = answer.unwrap_or_else(|e| panic!("{e}"));
            assert!(replaced.is_some_and(|why| why.contains("not a directory")));
            let meta = std::fs::symlink_metadata(root.path().join(CACHE_DIR))
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(meta.is_dir(), "the link was replaced by a directory");
            assert!(root.path().join(CACHE_DIR).join("1.2.3").is_dir());
            assert!(
                elsewhere.join("kept").is_dir(),
                "the link's target is untouched"
            );
            // Another pass finds everything in order.
            assert_eq!(own_the_way(root.path(), &[CACHE_DIR, "1.2.3"]), Ok(None));
        } else {
            assert!(answer.is_err_and(|e| e.contains("remove it by hand")));
            assert!(elsewhere.join("kept").is_dir());
        }
    }

    #[test]
    fn the_trim_is_the_dockerfiles() {
        let dockerfile =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"))
                .unwrap_or_default();
        for trimmed in TRIMMED {
            assert!(
                dockerfile.contains(&format!("/opt-codex/{trimmed}")),
                "the Dockerfile does not trim {trimmed}"
            );
        }
    }
}
