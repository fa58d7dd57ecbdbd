//! Fetching a package: the registry's address, its document of the platform package, and the
//! tarball, checked against the document's integrity before it is unpacked.

use std::io::{self, Seek as _, Write as _};
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha512};

use super::cache::cannot_keep;
use super::unpack::unpack;
use super::{Package, Platform, PACKAGE};
use crate::config::CodexSource;
use crate::failure::Failure;
use crate::net::retry::{backoff, rate_limit_wait, Attempt, Exhausted, Wait};
use crate::net::{shown, HttpError, Plain, RetryPolicy, Streamed, Transport};

/// The package's name in a registry path.
const PACKAGE_PATH: &str = "@openai%2fcodex";

/// How long a version document may take.
const DOCUMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the tarball (about 170 MB) may take: 20 minutes is about 150 kB/s.
const TARBALL_TIMEOUT: Duration = Duration::from_secs(1200);

/// How long the tarball's download may send nothing before it is tried again.
const TARBALL_QUIET: Duration = Duration::from_secs(60);

/// The largest tarball accepted.
const MAX_TARBALL_BYTES: u64 = 1024 * 1024 * 1024;

/// The largest version document accepted.
const MAX_DOCUMENT_BYTES: u64 = 1024 * 1024;

/// Tries per registry request (a timeout, a transport failure, a 5xx or a 429 is tried again).
const ATTEMPTS: u32 = 3;

/// Redirects followed per request.
const MAX_REDIRECTS: u32 = 5;

/// The registry's base URL, without a trailing `/`.
pub(super) async fn registry(source: &CodexSource) -> Result<String, Failure> {
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
    match crate::net::allowed(&registry) {
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

/// What the registry's document of the platform package says.
#[derive(Debug, Deserialize)]
pub(super) struct Document {
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

/// How registry requests are tried again: [`ATTEMPTS`] tries, backing off from a second, and
/// a `retry-after` of at most a minute honoured. Each try is bounded by the client's own
/// timeout, so the policy adds no deadline of its own.
const RETRY: RetryPolicy = RetryPolicy {
    attempts: ATTEMPTS,
    backoff: Duration::from_secs(1),
    max_wait: Duration::from_secs(60),
    attempt_timeout: Duration::MAX,
    deadline: Duration::MAX,
};

/// GETs a registry URL into `sink`, following the registry's redirects and trying again after
/// a timeout, a transport failure, a 429 or a 5xx ([`RETRY`]). Answers the final status, the
/// body's size, and an error answer's body.
async fn get(
    client: &Plain,
    url: &str,
    accept: &str,
    limit: u64,
    sink: &mut dyn Sink,
) -> Result<(http::StatusCode, u64, Vec<u8>), Failure> {
    // Tries run one after another; each holds the sink for its length.
    let sink = tokio::sync::Mutex::new(sink);
    let attempt = || async {
        let mut sink = sink.lock().await;
        let answer = match follow(client, url, accept, limit, &mut **sink).await {
            Ok(answer) => answer,
            Err(attempt) => return attempt,
        };
        let status = answer.status;
        if status == http::StatusCode::TOO_MANY_REQUESTS {
            // The wait the registry names (`retry-after`, or `x-ratelimit-reset`); GitHub's
            // own minimum for an unnamed one is not the registry's rule.
            let wait = match rate_limit_wait(status, &answer.headers, "") {
                Some(told @ Wait::Told(_)) => told,
                _ => Wait::Backoff {
                    at_least: Duration::ZERO,
                },
            };
            let why = format!("the registry answered {status}");
            return Attempt::Retry { wait, why };
        }
        if status.is_server_error() {
            return backoff(format!("the registry answered {status}"));
        }
        Attempt::Done((status, answer.bytes, answer.error_body))
    };
    RETRY
        .run(&format!("GET {}", shown(url)), attempt, |exhausted| {
            registry_failure(match exhausted {
                Exhausted::WaitTooLong { wait } => format!(
                    "GET {}: the registry asked to wait {} s before trying again, longer than \
                     the {} s the action waits.",
                    shown(url),
                    wait.as_secs(),
                    RETRY.max_wait.as_secs()
                ),
                Exhausted::GaveUp { last, .. } => format!(
                    "GET {} failed {ATTEMPTS} times; the last time: {last}.",
                    shown(url)
                ),
            })
        })
        .await
}

/// One try of [`get`]: the request and the registry's redirects. A failure worth another try
/// is [`Attempt::Retry`], one that is not [`Attempt::Fail`].
async fn follow(
    client: &Plain,
    url: &str,
    accept: &str,
    limit: u64,
    sink: &mut dyn Sink,
) -> Result<Streamed, Attempt<(http::StatusCode, u64, Vec<u8>), String, Failure>> {
    let mut at = url.to_owned();
    let mut redirects = 0;
    loop {
        sink.reset().map_err(|e| {
            Attempt::Fail(registry_failure(format!(
                "cannot start the download again: {e}."
            )))
        })?;
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
                let next = answer
                    .headers
                    .get(http::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| resolve(&at, l));
                let Some(next) = next else {
                    return Ok(answer);
                };
                at = next;
                redirects += 1;
            }
            Ok(answer) => return Ok(answer),
            Err(HttpError::Sink(e)) => {
                return Err(Attempt::Fail(Failure::new(
                    "Cannot keep the Codex package",
                    format!("The download of {} cannot be written: {e}.", shown(url)),
                )
                .before_codex()
                .fix("Check that the runner's temporary directory (RUNNER_TEMP) or tool cache has about 1 GB free.")));
            }
            Err(e @ (HttpError::Url(_) | HttpError::TooLarge(_))) => {
                return Err(Attempt::Fail(registry_failure(format!(
                    "GET {}: {e}.",
                    shown(&at)
                ))));
            }
            Err(e) => return Err(backoff(e.to_string())),
        }
    }
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
pub(super) async fn document(
    transport: &Transport,
    registry: &str,
    version: &str,
    platform: &Platform,
) -> Result<Document, Failure> {
    let client = Plain::new(transport, DOCUMENT_TIMEOUT);
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
            crate::net::message(&body, "error")
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
pub(super) async fn fetch(
    transport: &Transport,
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
    let client = Plain::new(transport, TARBALL_TIMEOUT).quiet_after(TARBALL_QUIET);
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
            crate::net::message(&error_body, "error")
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
    let checked = Package {
        package: PACKAGE.to_owned(),
        version: version.to_owned(),
        platform: platform.npm.to_owned(),
        integrity: integrity.to_owned(),
    };
    let (platform, dest) = (*platform, dir.to_owned());
    tokio::task::spawn_blocking(move || {
        let unpacked = unpack(file, &platform, &dest, checked);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn linux() -> Platform {
        Platform::of("linux", "x86_64").unwrap_or_else(|| unreachable!())
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
    fn a_redirect_is_resolved_against_the_registry_only_when_absolute() {
        assert_eq!(
            resolve("https://npm.example/a/b", "/blob/c"),
            Some("https://npm.example/blob/c".to_owned())
        );
        assert_eq!(resolve("https://npm.example/a", "relative"), None);
    }
}
