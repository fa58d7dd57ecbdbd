//! The artifact store in the action's two stages: the main stage restores the newest
//! artifact (or bootstraps from input `auth-json`) after checking that the post stage will be
//! able to upload; the post stage seals, zips and uploads the refreshed login.

use jiff::{SignedDuration, Timestamp};

use super::archive;
use super::crypt::{self, Binding, OpenError};
use super::http::Plain;
use super::rest::{Artifact, Artifacts};
use super::results::{BackendIds, Results};
use crate::auth_file::AuthFile;
use crate::config::{ActionConfig, ArtifactStore};
use crate::context;
use crate::failure::Failure;
use crate::github::SecretsApi;
use crate::restore;
use crate::secret::Secret;

/// How to reseed the artifact store.
pub const RESEED: &str = "To reseed: on a trusted machine run `codex login`, store the file as a \
                      secret (`codex-auth seed`), and pass it as input `auth-json`: a seed newer \
                      than the newest artifact wins.";

/// Main stage: the login to restore, newest first — the newest usable artifact, or input
/// `auth-json` when there is none yet or the seed is newer. Fails before Codex runs when the
/// post stage could not upload, or when no login can be had.
pub async fn prepare(config: &ActionConfig, store: &ArtifactStore) -> anyhow::Result<AuthFile> {
    let workflow = &config.workflow;
    // A bad seed only matters when there is no artifact to restore instead.
    let seed = config
        .auth_json
        .as_ref()
        .map(|input| restore::decode_seed(config, input));
    workflow.mask(&store.github_token);
    workflow.mask(&store.key.to_base64());
    if let Some(token) = &store.runtime_token {
        workflow.mask(token);
    }
    if config.credentials.is_some() {
        workflow.warning(
            "Inputs ignored",
            "`store: artifact` writes no secret: inputs `token`, `app-id` and `app-private-key` \
             are not used (and need not exist); remove them.",
        );
    }
    context::check_event(&config.run).map_err(|e| Failure::new("Unsafe event", e.to_string()))?;
    let repository = config.repository.as_deref().ok_or_else(|| {
        Failure::new(
            "Cannot read artifacts",
            "GITHUB_REPOSITORY is not set; the runner sets it to owner/name, which the artifact \
             store lists artifacts of",
        )
    })?;
    let api = SecretsApi::new(&config.api_url, &store.github_token, config.retry)?
        .credential("input `github-token`");
    restore::refuse_public_repository(config, &api).await?;

    // The post stage uploads with the job's runtime token: without it, nothing could be kept.
    let ready = match (&store.results_url, &store.runtime_token) {
        (Some(_), Some(token)) => BackendIds::from_runtime_token(token).map(|_| ()),
        _ => Err(super::results::ResultsError::RuntimeToken),
    };
    ready.map_err(|error| {
        Failure::new(
            "Cannot upload artifacts",
            format!(
                "{error}. Codex was not run: a login it refreshed could not be kept. Use \
                 `store: secret` where the runner provides no artifact service."
            ),
        )
    })?;

    let artifacts = Artifacts::new(
        &config.api_url,
        &store.github_token,
        repository,
        config.retry.attempt_timeout,
    )?;
    let newest = artifacts
        .newest(&store.name, store.repository_id)
        .await
        .map_err(|error| {
            Failure::new(
                "Cannot read artifacts",
                format!("{error} Codex was not run."),
            )
        })?;
    let stored = match newest {
        None => None,
        Some(artifact) => match open(config, store, &artifacts, &artifact).await {
            Ok(login) => Some((artifact, login)),
            Err(Unusable::Unreachable(failure)) => return Err(failure.into()),
            Err(Unusable::Content(failure)) => {
                // Only a seed put there after the artifact was written (a reseed, a new key)
                // may replace it: an older seed's refresh token was rotated away long ago.
                let reseeded = matches!(
                    (&seed, artifact.created_at),
                    (Some(Ok(seed)), Some(created)) if seed.last_refresh() > created
                );
                if !reseeded {
                    return Err(failure.into());
                }
                workflow.warning(
                    "Artifact not usable",
                    &format!(
                        "{} Using input `auth-json`, which is newer than the artifact.",
                        failure.message
                    ),
                );
                None
            }
        },
    };
    let login = match (stored, seed) {
        (Some((artifact, login)), seed) => {
            let seed = match seed {
                Some(Err(error)) => {
                    workflow.warning(
                        "Invalid auth-json ignored",
                        &format!("{error:#} Restoring the artifact instead."),
                    );
                    None
                }
                Some(Ok(seed)) => Some(seed),
                None => None,
            };
            match seed {
                Some(seed) if seed.last_refresh() > login.last_refresh() => {
                    workflow.info(&format!(
                        "Input auth-json (refreshed {}) is newer than artifact {} ({}): using it.",
                        seed.last_refresh(),
                        artifact.id,
                        login.last_refresh()
                    ));
                    seed
                }
                _ => {
                    workflow.info(&format!(
                        "Restoring artifact {} ({}, refreshed {}).",
                        artifact.id,
                        artifact.name,
                        login.last_refresh()
                    ));
                    login
                }
            }
        }
        (None, Some(seed)) => {
            let seed = seed?;
            workflow.info(&format!(
                "No usable artifact named {} yet: starting from input auth-json.",
                store.name
            ));
            seed
        }
        (None, None) => {
            return Err(Failure::new(
                "No login to restore",
                format!(
                    "there is no usable artifact named {} in {repository} yet (or it expired), \
                     and input `auth-json` is empty. Codex was not run. {RESEED}",
                    store.name
                ),
            )
            .into())
        }
    };
    Ok(login)
}

/// Why an artifact could not be restored.
enum Unusable {
    /// It could not be downloaded: GitHub or blob storage failed; a re-run may work.
    Unreachable(Failure),
    /// It was downloaded, but is not a login sealed with this key for this repository.
    Content(Failure),
}

/// Downloads, unzips, decrypts and validates an artifact; masks its tokens.
async fn open(
    config: &ActionConfig,
    store: &ArtifactStore,
    artifacts: &Artifacts,
    artifact: &Artifact,
) -> Result<AuthFile, Unusable> {
    let what = format!(
        "artifact {} ({}, run {})",
        artifact.id,
        artifact.name,
        artifact
            .workflow_run
            .as_ref()
            .and_then(|r| r.id)
            .map_or_else(|| "unknown".to_owned(), |id| id.to_string())
    );
    let unusable = |cause: String| {
        Unusable::Content(Failure::new(
            "Artifact not usable",
            format!("{what} cannot be restored: {cause}"),
        ))
    };
    let zip = artifacts.download(artifact).await.map_err(|e| {
        Unusable::Unreachable(Failure::new(
            "Cannot read artifacts",
            format!(
                "{e} Codex was not run. Re-run the job; if it keeps failing, check input \
                 `github-token` and `permissions: actions: read`."
            ),
        ))
    })?;
    let sealed = archive::unzip(&zip).map_err(|e| unusable(e.to_string()))?;
    let binding = Binding {
        repository_id: store.repository_id,
        artifact_name: &store.name,
    };
    let plain = crypt::open(&store.key, &binding, &sealed).map_err(|e| match e {
        OpenError::Rejected => unusable(format!(
            "{e} {RESEED} If input `artifact-key` changed on purpose, pass a fresh `auth-json` \
             once with the new key."
        )),
        other => unusable(other.to_string()),
    })?;
    let login = AuthFile::decode(plain.expose())
        .map_err(|e| unusable(format!("it decrypts, but is not a usable login: {e}")))?;
    restore::mask(&config.workflow, &login).map_err(|e| unusable(e.to_string()))?;
    Ok(login)
}

/// Input `retention-days`, lowered to the repository's maximum with a warning, as the
/// official client does.
fn retention(config: &ActionConfig, store: &ArtifactStore) -> Option<u32> {
    match (store.retention_days, store.max_retention_days) {
        (Some(days), Some(max)) if days > max => {
            config.workflow.warning(
                "Retention lowered",
                &format!(
                    "input `retention-days` is {days}, more than this repository allows \
                     ({max}): the artifact is kept {max} days. Run keep-fresh more often than \
                     that."
                ),
            );
            Some(max)
        }
        (days, _) => days,
    }
}

/// Post stage: seals the login for this repository and artifact name, zips it and uploads it
/// as an artifact of this run; returns the artifact's id.
pub async fn upload(
    config: &ActionConfig,
    store: &ArtifactStore,
    file: &AuthFile,
) -> anyhow::Result<u64> {
    let token = store
        .runtime_token
        .clone()
        .ok_or(super::results::ResultsError::RuntimeToken)?;
    let url = store
        .results_url
        .as_deref()
        .ok_or(super::results::ResultsError::RuntimeToken)?;
    config.workflow.mask(&token);
    let results = Results::new(
        url,
        token,
        Plain::new(config.retry.attempt_timeout)?,
        config.retry,
    )?;
    let compact: Secret = file.to_compact_json()?;
    let binding = Binding {
        repository_id: store.repository_id,
        artifact_name: &store.name,
    };
    let sealed = crypt::seal(&store.key, &binding, &compact);
    let zip = archive::zip(&sealed);
    let expires_at = retention(config, store)
        .map(|days| Timestamp::now() + SignedDuration::from_hours(24 * i64::from(days)));
    let id = results.upload(&store.name, &zip, expires_at).await?;
    Ok(id)
}
