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
//! every file in it belongs to this process's user and no one else can write it, and the copy
//! is still the files the marker lists, each of the size, mode and SHA-256 it was unpacked
//! with (nothing added, nothing missing): the owner alone does not vouch for the content, nor
//! the marker's word. In the container this process is root and Codex never is: a Codex in an
//! earlier step can write the cache root (RUNNER_TEMP), so it can move this action's directory
//! aside and put its own (or a link) in its place, but it cannot write into what root made;
//! what is not root's, or not as verified, is replaced and fetched again. The check holds
//! between steps, not against a process running at the same time (none does in the container:
//! every process Codex left is ended after it). On the host Codex runs as the same user as the
//! action: there the cache is as safe as the runner's own tool cache; a copy of this user's
//! that is not as verified is replaced, and a directory of another user is refused, not
//! removed.
//!
//! The registry is the one `npm_config_registry` names, else the one the image was built
//! from, else npm's own setting (asked with an environment of its own). No credential is
//! sent. A tarball address on another host than the registry's is not followed (the
//! package's standard path on the registry is used instead); a redirect the registry answers
//! with is (a mirror may keep tarballs in blob storage): the integrity comes from the
//! registry's document either way.
//!
//! [`cache`] keeps the copies and decides whether one may be reused, [`registry`] fetches and
//! checks a package, [`unpack`] unpacks a checked one.

mod cache;
#[cfg(test)]
mod fixture;
mod registry;
mod unpack;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::CodexSource;
use crate::failure::Failure;
use crate::net::Transport;
use cache::{cached, cannot_keep, may_replace, ours, own_the_way, remove, sweep, Cache};
use registry::{document, fetch, registry};

/// The npm package.
const PACKAGE: &str = "@openai/codex";

/// The cache root's directory for fetched copies: a name of its own, apart from the host
/// face's `codex-auth/<version>` in the tool cache.
const CACHE_DIR: &str = "codex-auth-codex";

/// The marker a verified copy carries, written last.
const MARKER: &str = ".codex-auth-verified.json";

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
    /// A copy fetched and verified by an earlier step (or, in a tool cache, an earlier job),
    /// its files hashed again now.
    Cached {
        /// The version.
        version: String,
        /// How long checking its files took.
        checked: Duration,
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
            Origin::Cached { version, checked } => format!(
                "Codex {version}, fetched and verified by an earlier step ({}), its files' \
                 SHA-256 checked again in {:.1} s",
                self.program.display(),
                checked.as_secs_f64()
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

/// The package a copy was unpacked from, as checked: the first part of its marker (and all of
/// the marker an earlier codex-auth wrote).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Package {
    package: String,
    version: String,
    platform: String,
    integrity: String,
}

/// What a verified copy's marker records: the package, and what of it was kept, so that a
/// later step runs the copy only while it is still those files (see [`cache::cached`]).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Marker {
    #[serde(flatten)]
    package: Package,
    /// Every file of the copy but the marker, by its path in the copy (`bin/codex`, `/`
    /// between names on every OS).
    files: BTreeMap<String, Kept>,
    /// Every directory of the copy but the copy's own, by its path in the copy.
    directories: BTreeSet<String>,
}

/// A file as it was unpacked.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Kept {
    /// Its size.
    bytes: u64,
    /// The mode it was given (0o755 or 0o644; checked on Unix only).
    mode: u32,
    /// The SHA-256 of its content, in hex.
    sha256: String,
}

/// A path in a copy as its marker names it: normal components only, each UTF-8, joined with
/// `/`; `None` for any other.
fn marker_path(path: &Path) -> Option<String> {
    let names = path
        .components()
        .map(|c| match c {
            std::path::Component::Normal(name) => name.to_str(),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    (!names.is_empty()).then(|| names.join("/"))
}

/// What `program --version` prints, first line (`codex-cli 0.171.0`); `None` when it does not
/// run (not found on PATH, say) or prints something else. Run with Codex's environment, and as
/// Codex's user when this process is root. Only a line that names a version is answered: it
/// goes to the log, where a stray control character could pass for a workflow command.
async fn version_line(
    program: &Path,
    environment: &[(OsString, OsString)],
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
fn reported_version(line: &str) -> Option<&str> {
    let version = line.trim().strip_prefix("codex-cli ")?.trim();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-');
    (!version.is_empty() && version.len() <= 64 && version.chars().all(plain)).then_some(version)
}

/// Sets a file's or directory's mode (cache and unpack both do; nothing off Unix).
#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Sets a file's or directory's mode (cache and unpack both do; nothing off Unix).
#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// The named version: the cached copy while it is still as verified, else fetched.
pub async fn named(
    source: &CodexSource,
    transport: &Transport,
    version: &str,
) -> Result<Codex, Failure> {
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
    sweep(dir.parent().unwrap_or(&dir));
    // Hashing the copy reads about 330 MB: off the runtime, so a cancellation is not held up.
    let checking = Instant::now();
    let cache = tokio::task::spawn_blocking({
        let (dir, version) = (dir.clone(), version.to_owned());
        move || cached(&dir, &version, &platform)
    })
    .await
    .map_err(|e| cannot_keep(&dir, &e.to_string()))?;
    // The way there is this user's now: a copy not as verified is removed (when it may be) and
    // fetched again.
    let replaced = match cache {
        Cache::Verified => {
            return Ok(Codex {
                program,
                origin: Origin::Cached {
                    version: version.to_owned(),
                    checked: checking.elapsed(),
                },
            })
        }
        Cache::Missing => way,
        // Not a change: the copy an earlier release kept, which listed nothing to check.
        Cache::Earlier => {
            remove(&dir).map_err(|e| cannot_keep(&dir, &e.to_string()))?;
            way
        }
        // All of it this user's: this action's to replace, on the host as in the container.
        Cache::Changed(why) => {
            remove(&dir).map_err(|e| cannot_keep(&dir, &e.to_string()))?;
            Some(way.unwrap_or(why))
        }
        Cache::NotOurs(why) => {
            if !may_replace() {
                return Err(cannot_keep(&dir, &format!("{why}; remove it by hand")));
            }
            remove(&dir).map_err(|e| cannot_keep(&dir, &e.to_string()))?;
            Some(way.unwrap_or(why))
        }
    };
    let started = Instant::now();
    let registry = registry(source).await?;
    let document = document(transport, &registry, version, &platform).await?;
    let bytes = fetch(transport, &registry, &document, version, &platform, &dir).await?;
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

/// The Codex a stage runs when `codex-version` names one, as [`settle`] found it: it ran and
/// said its version. What the stage tells of it: its `--version` line, where it came from (the
/// `codex` on PATH, a copy reused, or fetched now: [`Codex::describe`]), the copy a fetch
/// replaced and why ([`Origin::Fetched`]), another version than the one named
/// ([`Settled::reports_another_version`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// What runs, and where it came from.
    pub codex: Codex,
    /// The version `codex-version` names.
    pub named: String,
    /// The first line of its `--version` (`codex-cli 0.171.0`): a version line only
    /// ([`version_line`]).
    pub version_line: String,
}

impl Settled {
    /// Whether it reports another version than the one named: the package the registry
    /// publishes under that version (its integrity checked) holds another binary. Never the
    /// `codex` on PATH, which is used only when it reports the version named.
    pub fn reports_another_version(&self) -> bool {
        reported_version(&self.version_line) != Some(self.named.as_str())
    }
}

/// Why the Codex `codex-version` names cannot run ([`settle`]): the job stops before any
/// login is restored. The stage words the first and the last; a fetch's failure comes worded
/// from the fetch.
#[derive(Debug, thiserror::Error)]
pub enum NotSettled {
    /// The job was cancelled while `version` was being fetched: the fetch was stopped.
    #[error("the job was cancelled while Codex {version} was being fetched")]
    Cancelled {
        /// The version named.
        version: String,
    },
    /// The version could not be reused, or fetched and verified ([`named`]): no package for
    /// this runner, the registry, the integrity, the cache.
    #[error(transparent)]
    Fetch(Failure),
    /// The copy passed its checks, but its `--version` did not run or named no version.
    #[error("{} passed its checks, but its `--version` did not run", .0.describe())]
    DoesNotRun(Codex),
}

/// The verdict on the Codex input `codex-version` names ([`CodexSource::version`]), settled
/// before any login is restored: `None` when none is named (the `codex` on PATH runs, unasked).
/// Else the `codex` on PATH when it reports that version, unless `for_later_steps` (restore
/// mode: the copy is for the job's host steps, so the `codex` on PATH, in the container the
/// image's, never stands in for it); else the copy [`named`] reuses or fetches, which must
/// then run: its own `--version` is asked. `environment` and `run_as` are Codex's
/// ([`super::environment`], [`super::codex_user`]), so the version is asked as Codex will
/// run. What the stage tells the user of the verdict, the stage words.
///
/// A fetch can take minutes: `cancelled` (the job's cancellation) stops it rather than wait
/// for the runner's kill. The download is dropped with it (an unpack already under way
/// finishes first).
pub async fn settle(
    source: &CodexSource,
    transport: &Transport,
    environment: &[(OsString, OsString)],
    run_as: Option<(u32, u32)>,
    for_later_steps: bool,
    cancelled: impl Future,
) -> Result<Option<Settled>, NotSettled> {
    let Some(named) = &source.version else {
        return Ok(None);
    };
    let settled = |codex, version_line| {
        Ok(Some(Settled {
            codex,
            named: named.clone(),
            version_line,
        }))
    };
    if !for_later_steps {
        let on_path = version_line(Path::new("codex"), environment, run_as).await;
        if let Some(line) = on_path.filter(|l| reported_version(l) == Some(named.as_str())) {
            return settled(Codex::on_path(), line);
        }
    }
    let codex = tokio::select! {
        codex = self::named(source, transport, named) => codex.map_err(NotSettled::Fetch)?,
        _ = cancelled => return Err(NotSettled::Cancelled { version: named.clone() }),
    };
    match version_line(&codex.program, environment, run_as).await {
        Some(line) => settled(codex, line),
        None => Err(NotSettled::DoesNotRun(codex)),
    }
}

/// Where a version's copy is kept.
fn copy_dir(cache_root: &Path, version: &str, platform: &Platform) -> PathBuf {
    cache_root.join(CACHE_DIR).join(version).join(platform.npm)
}

/// Removes the copies fetched into the job's temporary directory, when this process is root
/// and root owns the way there (the container's post stage: the runner, which empties the
/// directory after the job, cannot remove what root made). Anything else is left as it is.
pub fn remove_fetched(cache_root: &Path) {
    let dir = cache_root.join(CACHE_DIR);
    let root_owned = may_replace()
        && std::fs::symlink_metadata(&dir)
            .is_ok_and(|meta| meta.is_dir() && ours(&dir, &meta).is_ok());
    if root_owned {
        let _ = remove(&dir);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use base64::Engine as _;
    use pretty_assertions::assert_eq;
    use sha2::{Digest as _, Sha256, Sha512};

    use super::fixture::{tarball_bytes, Entry};
    use super::*;

    /// A registry on loopback that serves one version of this platform's package.
    struct Registry {
        url: String,
        /// How many times its tarball was downloaded.
        downloads: Arc<AtomicUsize>,
    }

    impl Registry {
        async fn serving(version: &str, platform: &Platform, tarball: Vec<u8>) -> Self {
            let package = format!("{version}-{}", platform.npm);
            let integrity = format!(
                "sha512-{}",
                base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&tarball))
            );
            let document = serde_json::json!({
                "name": PACKAGE,
                "version": package,
                "dist": {"integrity": integrity},
            })
            .to_string();
            let paths = Arc::new((
                format!("/@openai%2fcodex/{package}"),
                format!("/@openai/codex/-/codex-{package}.tgz"),
            ));
            let (tarball, downloads) = (Arc::new(tarball), Arc::new(AtomicUsize::new(0)));
            let counted = downloads.clone();
            let router = axum::Router::new().fallback(move |uri: http::Uri| {
                let (paths, document, tarball, counted) = (
                    paths.clone(),
                    document.clone(),
                    tarball.clone(),
                    counted.clone(),
                );
                async move {
                    if uri.path() == paths.0 {
                        (http::StatusCode::OK, document.into_bytes())
                    } else if uri.path() == paths.1 {
                        counted.fetch_add(1, Ordering::SeqCst);
                        (http::StatusCode::OK, tarball.to_vec())
                    } else {
                        (http::StatusCode::NOT_FOUND, Vec::new())
                    }
                }
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let url = format!(
                "http://{}",
                listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
            );
            tokio::spawn(async move { axum::serve(listener, router).await });
            Self { url, downloads }
        }

        fn downloads(&self) -> usize {
            self.downloads.load(Ordering::SeqCst)
        }
    }

    /// A file of a test package: its path in the copy, its mode, its content.
    type File = (String, u32, Vec<u8>);

    /// This platform's package: a binary, a helper beside it, a file and an empty directory.
    /// Answers the tarball and its files.
    fn package_of(platform: &Platform) -> (Vec<u8>, Vec<File>) {
        package_with(platform, b"#!/bin/sh\necho codex-cli 1.2.3\n")
    }

    /// [`package_of`], its binary `binary`.
    fn package_with(platform: &Platform, binary: &[u8]) -> (Vec<u8>, Vec<File>) {
        let files = vec![
            (format!("bin/{}", platform.binary), 0o755, binary.to_vec()),
            ("codex-path/rg".to_owned(), 0o755, b"#!/bin/sh\n".to_vec()),
            ("codex-package.json".to_owned(), 0o644, b"{}".to_vec()),
        ];
        let at = |name: &str| format!("package/vendor/{}/{name}", platform.target);
        let paths: Vec<_> = files.iter().map(|(name, ..)| at(name)).collect();
        let empty = at("codex-resources/");
        let mut entries: Vec<Entry> = files
            .iter()
            .zip(&paths)
            .map(|((_, mode, content), path)| {
                (
                    path.as_str(),
                    tar::EntryType::Regular,
                    *mode,
                    content.as_slice(),
                )
            })
            .collect();
        entries.push((&empty, tar::EntryType::Directory, 0o755, b""));
        (tarball_bytes(&entries), files)
    }

    fn source(registry: &Registry, cache_root: &Path) -> CodexSource {
        CodexSource {
            version: Some("1.2.3".to_owned()),
            registry: Some(registry.url.clone()),
            cache_root: cache_root.to_owned(),
            cache_is_temp: true,
        }
    }

    fn this_platform() -> Platform {
        Platform::current().unwrap_or_else(|| panic!("no Codex package for this platform"))
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn an_intact_copy_is_reused_and_its_marker_lists_every_file() {
        let platform = this_platform();
        let (tarball, files) = package_of(&platform);
        let registry = Registry::serving("1.2.3", &platform, tarball).await;
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let source = source(&registry, root.path());

        let fetched = named(&source, &Transport::direct().unwrap(), "1.2.3")
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(
            matches!(fetched.origin, Origin::Fetched { replaced: None, .. }),
            "{fetched:?}"
        );
        // Each file as it was unpacked, hashed here on its own.
        let dir = copy_dir(root.path(), "1.2.3", &platform);
        let marker: Marker = std::fs::read(dir.join(MARKER))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_else(|| panic!("no marker"));
        let expected: BTreeMap<_, _> = files
            .iter()
            .map(|(name, mode, content)| {
                let kept = Kept {
                    bytes: content.len() as u64,
                    mode: *mode,
                    sha256: hex::encode(Sha256::digest(content)),
                };
                (name.clone(), kept)
            })
            .collect();
        assert_eq!(marker.files, expected);
        let directories = ["bin", "codex-path", "codex-resources"];
        assert_eq!(
            marker.directories,
            directories.iter().map(|d| (*d).to_owned()).collect()
        );

        // The next step: the same files, so the copy is run as it is.
        let reused = named(&source, &Transport::direct().unwrap(), "1.2.3")
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(
            matches!(&reused.origin, Origin::Cached { version, .. } if version == "1.2.3"),
            "{reused:?}"
        );
        assert_eq!(reused.program, fetched.program);
        assert_eq!(registry.downloads(), 1);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_binary_changed_by_one_byte_is_refused_and_fetched_again() {
        use std::io::{Seek as _, Write as _};
        use std::os::unix::fs::MetadataExt as _;
        let platform = this_platform();
        let (tarball, files) = package_of(&platform);
        let registry = Registry::serving("1.2.3", &platform, tarball).await;
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let source = source(&registry, root.path());
        let fetched = named(&source, &Transport::direct().unwrap(), "1.2.3")
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));

        // One byte of the binary, changed in place: the same size, owner and mode, and the
        // marker untouched, as only its owner (root, in the container) could change it.
        let binary = &fetched.program;
        let before = std::fs::metadata(binary).unwrap_or_else(|e| panic!("{e}"));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(binary)
            .unwrap_or_else(|e| panic!("{e}"));
        file.seek(std::io::SeekFrom::Start(10))
            .and_then(|_| file.write_all(b"X"))
            .unwrap_or_else(|e| panic!("{e}"));
        drop(file);
        let after = std::fs::metadata(binary).unwrap_or_else(|e| panic!("{e}"));
        let same = |m: &std::fs::Metadata| (m.len(), m.uid(), m.mode());
        assert_eq!(same(&after), same(&before));

        let again = named(&source, &Transport::direct().unwrap(), "1.2.3")
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        let Origin::Fetched {
            replaced: Some(why),
            ..
        } = &again.origin
        else {
            panic!("the changed copy was not fetched again: {again:?}")
        };
        let said = format!(
            "{}/bin/{} has the SHA-256 ",
            copy_dir(root.path(), "1.2.3", &platform).display(),
            platform.binary
        );
        assert!(why.starts_with(&said), "{why}");
        assert_eq!(registry.downloads(), 2);
        assert_eq!(
            std::fs::read(binary).unwrap_or_default(),
            files[0].2,
            "the binary is the verified one again"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_copy_an_earlier_release_kept_is_fetched_again_without_a_warning() {
        let platform = this_platform();
        let (tarball, _) = package_of(&platform);
        let registry = Registry::serving("1.2.3", &platform, tarball).await;
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let source = source(&registry, root.path());
        named(&source, &Transport::direct().unwrap(), "1.2.3")
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        // The marker as codex-auth wrote it before it listed the files.
        let dir = copy_dir(root.path(), "1.2.3", &platform);
        let marker: Marker = std::fs::read(dir.join(MARKER))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_else(|| panic!("no marker"));
        std::fs::write(
            dir.join(MARKER),
            serde_json::to_vec(&marker.package).unwrap_or_default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));

        let again = named(&source, &Transport::direct().unwrap(), "1.2.3")
            .await
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(
            matches!(again.origin, Origin::Fetched { replaced: None, .. }),
            "{again:?}"
        );
        assert_eq!(registry.downloads(), 2);
    }

    /// Codex's environment in these tests: a PATH of `dir` alone, where [`codex_on_path`]
    /// puts a `codex`.
    fn path_of(dir: &Path) -> Vec<(OsString, OsString)> {
        vec![("PATH".into(), dir.as_os_str().to_owned())]
    }

    /// A `codex` in `dir` that says `line` when asked its version.
    #[cfg(unix)]
    fn codex_on_path(dir: &Path, line: &str) {
        let codex = dir.join("codex");
        std::fs::write(&codex, format!("#!/bin/sh\necho {line}\n"))
            .and_then(|()| set_mode(&codex, 0o755))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Settles `source` with Codex's environment `environment`, never cancelled.
    async fn settle_now(
        source: &CodexSource,
        environment: &[(OsString, OsString)],
        for_later_steps: bool,
    ) -> Result<Option<Settled>, NotSettled> {
        let transport = Transport::direct().unwrap_or_else(|e| panic!("{e}"));
        let never = std::future::pending::<()>();
        settle(
            source,
            &transport,
            environment,
            None,
            for_later_steps,
            never,
        )
        .await
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_codex_on_path_stands_in_only_for_this_job_and_only_when_it_reports_the_version() {
        let platform = this_platform();
        let registry = Registry::serving("1.2.3", &platform, package_of(&platform).0).await;
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let bin = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let source = source(&registry, root.path());
        let environment = path_of(bin.path());
        codex_on_path(bin.path(), "codex-cli 1.2.3");

        let settled = settle_now(&source, &environment, false).await;
        assert_eq!(
            settled.unwrap_or_else(|e| panic!("{e:?}")),
            Some(Settled {
                codex: Codex::on_path(),
                named: "1.2.3".to_owned(),
                version_line: "codex-cli 1.2.3".to_owned(),
            })
        );
        assert_eq!(registry.downloads(), 0);

        // Restore mode: the later steps do not see this PATH, so the version is fetched.
        let fetched = settle_now(&source, &environment, true)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
            .unwrap_or_else(|| panic!("nothing settled"));
        assert!(
            matches!(fetched.codex.origin, Origin::Fetched { .. }),
            "{fetched:?}"
        );
        assert_eq!(
            fetched.codex.program,
            copy_dir(root.path(), "1.2.3", &platform)
                .join("bin")
                .join(platform.binary)
        );
        assert!(!fetched.reports_another_version(), "{fetched:?}");
        assert_eq!(registry.downloads(), 1);

        // Another version on PATH: the copy runs.
        codex_on_path(bin.path(), "codex-cli 1.2.4");
        let reused = settle_now(&source, &environment, false)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
            .unwrap_or_else(|| panic!("nothing settled"));
        assert!(
            matches!(reused.codex.origin, Origin::Cached { .. }),
            "{reused:?}"
        );

        // None named: nothing is asked.
        let unnamed = CodexSource {
            version: None,
            ..source
        };
        let none = settle_now(&unnamed, &environment, false).await;
        assert!(matches!(none, Ok(None)), "{none:?}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_fetched_codex_whose_version_does_not_run_is_not_settled() {
        let platform = this_platform();
        let (tarball, _) = package_with(&platform, b"#!/bin/sh\nexit 1\n");
        let registry = Registry::serving("1.2.3", &platform, tarball).await;
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let bin = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));

        let settled =
            settle_now(&source(&registry, root.path()), &path_of(bin.path()), false).await;
        let Err(NotSettled::DoesNotRun(codex)) = settled else {
            panic!("a Codex that does not run was settled: {settled:?}")
        };
        assert!(matches!(codex.origin, Origin::Fetched { .. }), "{codex:?}");
        assert_eq!(registry.downloads(), 1);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_fetched_codex_that_reports_another_version_is_settled_and_says_so() {
        let platform = this_platform();
        let (tarball, _) = package_with(&platform, b"#!/bin/sh\necho codex-cli 9.9.9\n");
        let registry = Registry::serving("1.2.3", &platform, tarball).await;
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let bin = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));

        let settled = settle_now(&source(&registry, root.path()), &path_of(bin.path()), false)
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
            .unwrap_or_else(|| panic!("nothing settled"));
        assert_eq!(settled.version_line, "codex-cli 9.9.9");
        assert!(settled.reports_another_version(), "{settled:?}");
    }

    #[tokio::test]
    async fn a_cancelled_job_stops_the_fetch() {
        // A registry that takes every connection and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let url = format!(
            "http://{}",
            listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
        );
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((connection, _)) = listener.accept().await {
                held.push(connection);
            }
        });
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let bin = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let source = CodexSource {
            version: Some("1.2.3".to_owned()),
            registry: Some(url),
            cache_root: root.path().to_owned(),
            cache_is_temp: true,
        };
        let transport = Transport::direct().unwrap_or_else(|e| panic!("{e}"));
        let environment = path_of(bin.path());

        let cancelled = tokio::time::sleep(Duration::from_millis(200));
        let settling = settle(&source, &transport, &environment, None, false, cancelled);
        let settled = tokio::time::timeout(Duration::from_secs(20), settling)
            .await
            .unwrap_or_else(|_| panic!("the fetch went on after the job was cancelled"));
        assert!(
            matches!(&settled, Err(NotSettled::Cancelled { version }) if version == "1.2.3"),
            "{settled:?}"
        );
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
}
