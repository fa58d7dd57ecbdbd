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
const RESEED: &str = "To reseed: on a trusted machine run `codex login`, store the file as a \
                      secret (`codex-auth seed`), and pass it as input `auth-json`: a seed newer \
                      than the newest artifact wins.";

/// Main stage: the login to restore, newest first — the newest usable artifact, or input
/// `auth-json` when there is none yet or the seed is newer. Fails before Codex runs when the
/// post stage could not upload, or when no login can be had.
pub async fn prepare(config: &ActionConfig, store: &ArtifactStore) -> anyhow::Result<AuthFile> {
    let workflow = &config.workflow;
    let seed = match &config.auth_json {
        Some(input) => Some(restore::decode_seed(config, input)?),
        None => None,
    };
    workflow.mask(&store.github_token);
    workflow.mask(&store.key.to_base64());
    if let Some(token) = &store.runtime_token {
        workflow.mask(token);
    }
    context::check_event(&config.run).map_err(|e| Failure::new("Unsafe event", e.to_string()))?;
    let repository = config.repository.as_deref().unwrap_or_default();
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
            Err(failure) if seed.is_some() => {
                workflow.warning(
                    "Artifact not usable",
                    &format!("{} Using input `auth-json` instead.", failure.message),
                );
                None
            }
            Err(failure) => return Err(failure.into()),
        },
    };
    let login = match (stored, seed) {
        (Some((artifact, login)), seed) => {
            let seed_is_newer = seed
                .as_ref()
                .is_some_and(|seed| seed.last_refresh() > login.last_refresh());
            match seed {
                Some(seed) if seed_is_newer => {
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

/// Downloads, unzips, decrypts and validates an artifact; masks its tokens.
async fn open(
    config: &ActionConfig,
    store: &ArtifactStore,
    artifacts: &Artifacts,
    artifact: &Artifact,
) -> Result<AuthFile, Failure> {
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
        Failure::new(
            "Artifact not usable",
            format!("{what} cannot be restored: {cause}"),
        )
    };
    let zip = artifacts
        .download(artifact)
        .await
        .map_err(|e| unusable(e.to_string()))?;
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
    let results = Results::new(url, token, Plain::new(config.retry.attempt_timeout)?)?;
    let compact: Secret = file.to_compact_json()?;
    let binding = Binding {
        repository_id: store.repository_id,
        artifact_name: &store.name,
    };
    let sealed = crypt::seal(&store.key, &binding, &compact);
    let zip = archive::zip(&sealed);
    let expires_at = store
        .retention_days
        .map(|days| Timestamp::now() + SignedDuration::from_hours(24 * i64::from(days)));
    let id = results.upload(&store.name, &zip, expires_at).await?;
    Ok(id)
}
