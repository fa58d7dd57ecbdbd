//! Which Codex runs: the `codex` on PATH (in the image, the pinned version, checked against
//! its integrity hash when the image was built), or the exact version input `codex-version`
//! names, fetched from the npm registry before any login is restored.
//!
//! A named version is the platform package of `@openai/codex` for this machine (a version of
//! the package itself, `0.171.0-linux-x64`), found through the registry's document for that
//! version. Its tarball is checked against the document's `integrity` (sha512) before a byte
//! of it is unpacked, and only the platform's `vendor/<target>` tree is unpacked (regular
//! files and directories, no links), less the parts Codex's CLI never loads (as the
//! Dockerfile trims them). The copy is kept under the cache root
//! (`<root>/codex-auth/codex/<version>/<platform>`) for the job's later steps, with a marker
//! naming what was verified; a later step reuses it only when every file in it still belongs
//! to this process's user and no one else can write it. In the container this process is
//! root and Codex never is, so a Codex that ran in an earlier step cannot have changed a
//! copy it reuses (it can move the directory aside, which the owner check catches, but not
//! write into it). On the host Codex runs as the same user as the action: there the cache
//! is as safe as the runner's own tool cache.
//!
//! The registry is the one `npm_config_registry` names, else the one the image was built
//! from, else npm's own setting; a tarball address on another host is not followed (the
//! package's standard path on the configured registry is used instead), so a registry
//! mirror keeps every byte on the mirror.

use std::io::{self, Write as _};
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

/// The marker a verified copy carries, written last.
const MARKER: &str = ".codex-auth-verified.json";

/// How long the registry may take for the whole download (a tarball is about 170 MB).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// The largest tarball accepted.
const MAX_TARBALL_BYTES: u64 = 1024 * 1024 * 1024;

/// The largest version document accepted.
const MAX_DOCUMENT_BYTES: u64 = 1024 * 1024;

/// Tries per registry request (a timeout, a 5xx or a 429 is tried again).
const ATTEMPTS: u32 = 3;

/// What the CLI never loads, left out of the unpacked copy as the Dockerfile leaves it out
/// of the image: the voice runtime and the code-mode host.
const TRIMMED: &[&str] = &["codex-resources/voice", "bin/codex-code-mode-host"];

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
    /// This machine's, as `@openai/codex`'s own launcher picks it.
    pub fn current() -> Option<Self> {
        Self::of(std::env::consts::OS, std::env::consts::ARCH)
    }

    /// The platform of an OS and architecture (Rust's names).
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
    /// A copy this job (or, on a persistent runner, an earlier one) fetched and verified.
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
        /// A copy that was there but not as verified, and why: it was replaced.
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

    /// The log's line on where this Codex came from.
    pub fn describe(&self) -> String {
        match &self.origin {
            Origin::Path => "the codex on PATH".to_owned(),
            Origin::Cached { version } => format!(
                "Codex {version}, the copy this job already fetched and verified ({})",
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

/// The Codex for a stage that runs it here: the one on PATH unless `codex-version` names
/// another; a named version that the `codex` on PATH already is (the image's) is not
/// fetched. `path_version` is what `codex --version` on PATH printed, if it ran.
pub async fn for_this_stage(
    source: &CodexSource,
    path_version: Option<&str>,
) -> Result<Codex, Failure> {
    match &source.version {
        None => Ok(Codex::on_path()),
        Some(version) if path_version == Some(version.as_str()) => Ok(Codex::on_path()),
        Some(version) => named(source, version).await,
    }
}

/// The Codex restore mode hands to the job's later steps: `None` (they use their own) unless
/// `codex-version` names one, which is fetched (or reused) for them: in the container, the
/// `codex` on PATH is the image's, which the host's steps cannot run.
pub async fn for_later_steps(source: &CodexSource) -> Result<Option<Codex>, Failure> {
    match &source.version {
        None => Ok(None),
        Some(version) => named(source, version).await.map(Some),
    }
}

/// What `program --version` prints, first line (`codex-cli 0.171.0`); `None` when it does not
/// run (not found on PATH, say). Run with Codex's environment, and as Codex's user when this
/// process is root.
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
    let line = String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()?
        .trim()
        .to_owned();
    (output.status.success() && !line.is_empty()).then_some(line)
}

/// The version a `codex --version` line names (`codex-cli 0.171.0`).
pub fn reported_version(line: &str) -> Option<&str> {
    line.trim().strip_prefix("codex-cli ").map(str::trim)
}

/// The named version: the cached copy when it is still as verified, else fetched.
async fn named(source: &CodexSource, version: &str) -> Result<Codex, Failure> {
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
    let way = own_the_way(&source.cache_root, &["codex-auth", "codex", version])
        .map_err(|e| cannot_keep(&dir, &e.to_string()))?;
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
            // Fetched again below, after what was there is removed.
            remove(&dir).map_err(|e| {
                cannot_keep(
                    &dir,
                    &format!("it was changed ({why}) and cannot be removed: {e}"),
                )
            })?;
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
    cache_root
        .join("codex-auth")
        .join("codex")
        .join(version)
        .join(platform.npm)
}

/// The directory the post stage removes when the cache is the job's temporary directory.
pub fn cache_dir(cache_root: &Path) -> PathBuf {
    cache_root.join("codex-auth").join("codex")
}

/// Removes the Codex copies fetched into the job's temporary directory, when this process
/// is root and root owns them (the container's post stage: the runner, which empties the
/// directory after the job, cannot remove what root made). Anything else is left as it is.
pub fn remove_fetched(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let root_owned =
            std::fs::symlink_metadata(dir).is_ok_and(|meta| meta.is_dir() && meta.uid() == 0);
        if rustix::process::geteuid().is_root() && root_owned {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
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

/// Makes each directory from `root` down through `below` a real directory of this process's
/// user that no one else can write, replacing whatever else is there (a link, a directory of
/// another user): what lies under them is then this user's alone to change. In the container
/// `root` is RUNNER_TEMP, which Codex's user can write: a Codex could have moved this
/// action's directory aside and put its own, or a link, in its place. Answers what was
/// replaced, if anything.
fn own_the_way(root: &Path, below: &[&str]) -> io::Result<Option<String>> {
    let mut path = root.to_owned();
    let mut replaced = None;
    for part in below {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) => {
                if let Err(why) = ours(&path, &meta) {
                    replaced.get_or_insert(why);
                    remove(&path)?;
                    make_dir(&path)?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => make_dir(&path)?,
            Err(e) => return Err(e),
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

fn remove(dir: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(dir),
        _ => std::fs::remove_file(dir),
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
    Ok(registry.trim_end_matches('/').to_owned())
}

/// `npm config get registry`, outside the image.
async fn npm_registry() -> Option<String> {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(npm)
            .args(["config", "get", "registry"])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    let registry = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && registry.starts_with("https://")).then_some(registry)
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
        .fix("Re-run the job; if it keeps failing, check the registry (npm_config_registry) or leave `codex-version` empty to run the image's pinned Codex.")
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
        io::Seek::rewind(&mut self.file).map(drop)
    }
}

/// GETs a registry URL into `sink`, trying again after a timeout, a transport failure, a 429
/// or a 5xx. Answers the status, the body's size, and an error answer's body.
async fn get(
    client: &Plain,
    url: &str,
    limit: u64,
    sink: &mut dyn Sink,
) -> Result<(http::StatusCode, u64, Vec<u8>), Failure> {
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            sink.reset()
                .map_err(|e| registry_failure(format!("cannot start the download again: {e}.")))?;
        }
        let headers = [
            ("accept", "application/json".to_owned()),
            (
                "user-agent",
                concat!("codex-auth/", env!("CARGO_PKG_VERSION")).to_owned(),
            ),
        ];
        match client
            .download(url, &headers, limit, &mut |chunk| sink.write(chunk))
            .await
        {
            Ok(answer) => {
                let status = answer.status;
                if status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS {
                    last = format!("the registry answered {status}");
                    continue;
                }
                return Ok((status, answer.bytes, answer.error_body));
            }
            Err(e @ (HttpError::Url(_) | HttpError::TooLarge(_))) => {
                return Err(registry_failure(format!("GET {url}: {e}.")));
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(registry_failure(format!(
        "GET {url} failed {ATTEMPTS} times; the last time: {last}."
    )))
}

/// The registry's document of `<version>-<platform>`, checked to be that package.
async fn document(registry: &str, version: &str, platform: &Platform) -> Result<Document, Failure> {
    let client = Plain::new(DOWNLOAD_TIMEOUT)
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
            .fix("Name a version `npm view @openai/codex versions` lists (one without a platform suffix), or leave `codex-version` empty to run the image's pinned Codex."));
    }
    if status != http::StatusCode::OK {
        return Err(registry_failure(format!(
            "GET {url} answered {status}: {}",
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
    let (status, _, error_body) = get(client, url, MAX_DOCUMENT_BYTES, &mut body).await?;
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

/// Downloads the tarball, checks it against the document's integrity, unpacks it into `dir`
/// (through a directory of its own beside it, renamed into place once complete), and
/// returns the tarball's size.
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
    std::fs::create_dir_all(parent).map_err(|e| cannot_keep(parent, &e.to_string()))?;
    let download = tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(parent)
        .map_err(|e| cannot_keep(parent, &e.to_string()))?;
    let client = Plain::new(DOWNLOAD_TIMEOUT)
        .map_err(|e| registry_failure(format!("no HTTPS client: {e}")))?;
    let mut sink = Hashed {
        file: download
            .reopen()
            .map_err(|e| cannot_keep(parent, &e.to_string()))?,
        hasher: Sha512::new(),
    };
    let (status, bytes, error_body) = get(&client, &url, MAX_TARBALL_BYTES, &mut sink).await?;
    if status != http::StatusCode::OK {
        return Err(registry_failure(format!(
            "GET {url} ({package}) answered {status}: {}",
            crate::github::http::message(&error_body, "error")
        )));
    }
    sink.file
        .sync_all()
        .map_err(|e| cannot_keep(parent, &e.to_string()))?;
    let actual: [u8; 64] = sink.hasher.finalize().into();
    if actual != expected {
        let b64 = base64::engine::general_purpose::STANDARD;
        return Err(Failure::new(
            "Codex package does not match its integrity",
            format!(
                "The tarball of {package} ({bytes} bytes from {url}) has the digest \
                 sha512-{}, and the registry's integrity is sha512-{}: it was changed or cut \
                 short on the way. Nothing of it was unpacked or run.",
                b64.encode(actual),
                b64.encode(expected)
            ),
        )
        .before_codex()
        .fix("Re-run the job. If it happens again, the registry (or a proxy in between) serves a changed package: tell whoever runs it, and leave `codex-version` empty to run the image's pinned Codex meanwhile."));
    }
    let tarball = download.path().to_owned();
    let marker = Marker {
        package: PACKAGE.to_owned(),
        version: version.to_owned(),
        platform: platform.npm.to_owned(),
        integrity: integrity.to_owned(),
    };
    let (platform, dest) = (*platform, dir.to_owned());
    tokio::task::spawn_blocking(move || unpack(&tarball, &platform, &dest, &marker))
        .await
        .map_err(|e| cannot_keep(dir, &e.to_string()))?
        .map_err(|e| {
            Failure::new(
                "Cannot unpack the Codex package",
                format!("{package} passed its integrity check but cannot be unpacked into {}: {e}.", dir.display()),
            )
            .before_codex()
            .fix("Check the runner's free disk space (about 1 GB) and re-run the job; or leave `codex-version` empty to run the image's pinned Codex.")
        })?;
    drop(download);
    Ok(bytes)
}

/// The tarball's address: the document's when it is on the configured registry, else the
/// package's standard path there (a registry's document may name the upstream registry).
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
/// directories and regular files only, each path checked to stay inside, modes kept but
/// never writable by others. Written to a directory beside `dest` and renamed into place, with
/// the marker written last, so that a copy cut short is never taken for a verified one.
fn unpack(tarball: &Path, platform: &Platform, dest: &Path, marker: &Marker) -> io::Result<()> {
    let parent = dest.parent().unwrap_or(dest);
    let staging = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(parent)?;
    let prefix = Path::new("package").join("vendor").join(platform.target);
    let binary = Path::new("bin").join(platform.binary);
    let mut archive =
        tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(tarball)?));
    let mut binaries = 0;
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
                "{} is not a regular file or directory (a link or device), which the package never holds",
                path.display()
            )));
        }
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mode = entry.header().mode().unwrap_or(0o644) & 0o755;
        let mut file = std::fs::File::create(&out)?;
        io::copy(&mut entry, &mut file)?;
        file.sync_all()?;
        set_mode(&out, mode)?;
        binaries += usize::from(rest == binary);
    }
    if binaries == 0 {
        return Err(io::Error::other(format!(
            "the package has no {}",
            prefix.join(&binary).display()
        )));
    }
    std::fs::write(staging.path().join(MARKER), serde_json::to_vec(marker)?)?;
    set_modes(staging.path())?;
    remove(dest)?;
    let staged = staging.keep();
    std::fs::rename(&staged, dest).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&staged);
    })
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

/// Directories 0755 (a temporary directory starts as 0700; the host's steps must enter it),
/// and no file writable by others.
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
    fn version_lines() {
        assert_eq!(reported_version("codex-cli 0.171.0\n"), Some("0.171.0"));
        assert_eq!(reported_version("something else"), None);
    }
}
