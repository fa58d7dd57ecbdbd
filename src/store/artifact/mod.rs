//! The artifact store: the refreshed login kept as an encrypted workflow artifact of this
//! repository, so that the loop needs no token that can write secrets.
//!
//! The main stage restores the newest login the artifacts hold (or bootstraps from input
//! `auth-json`) after checking that an upload will be possible; a save seals the login
//! ([`crate::seal::artifact`], bound to the repository id and the artifact name), zips it
//! ([`archive`]) and uploads it as an artifact of this run ([`crate::github::results`]).
//! Artifacts are found and downloaded through the REST API ([`crate::github::artifacts`]).
//!
//! Which artifact is restored: anyone who can run a workflow can upload an artifact of this
//! name, and could re-upload an older sealed one (downloaded from an earlier run), whose
//! refresh token was already spent: restoring it would make Codex present a used refresh
//! token, which may revoke the whole login. So the newest upload does not win by its date:
//! - only runs of the repository's default branch count (`workflow_run.head_branch`, the
//!   default branch from the event payload's `repository.default_branch`, else the API): its
//!   workflows change only by a push there;
//! - of those, the newest [`MAX_OPENED`] uploads are opened (downloaded, decrypted,
//!   validated), newest first, and the one whose login has the newest `last_refresh` wins.
//!   That date is authenticated: only a holder of the artifact key can seal a login. One that
//!   does not open is skipped with a warning.
//! - Requests: a login is sealed when it was refreshed, so an upload older than the best
//!   login's `last_refresh` (less an hour of clock skew) cannot hold a newer one, and the
//!   search stops there. Normally the newest upload holds the newest login and one artifact is
//!   downloaded (the list, the 302, the blob), as before; an older login uploaded later costs
//!   two requests per artifact opened, at most [`MAX_OPENED`].

pub mod archive;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use super::{CannotSave, Loaded, NotLoaded, NotSaved, Place, Saved, Store};
use crate::auth_file::AuthFile;
use crate::config::{ActionConfig, ArtifactSettings};
use crate::failure::sentence;
use crate::github::artifacts::{Artifact, Artifacts, RestError};
use crate::github::results::{BackendIds, Results, ResultsError};
use crate::github::Client;
use crate::net::Plain;
use crate::redacted::Redacted;
use crate::seal::artifact::{self as crypt, Binding};
use crate::workflow::Workflow;

/// How many of the newest uploads (of the default branch's runs) are opened at most to find the
/// newest login: enough to step over a few re-uploaded old logins or broken artifacts, few
/// enough to bound the requests (two per artifact).
pub const MAX_OPENED: usize = 4;

/// The clock skew allowed between the runner that sealed a login and GitHub's upload date
/// (the same hour [`AuthFile`] allows a `last_refresh` in the future).
const SKEW: SignedDuration = SignedDuration::from_hours(1);

/// The artifact store of one job stage.
pub struct ArtifactStore<'a> {
    config: &'a ActionConfig,
    settings: &'a ArtifactSettings,
    /// Main stage: input `auth-json`, decoded (or why it is no login); a bad seed only matters
    /// when there is no artifact to restore instead.
    seed: Option<Result<AuthFile, String>>,
    /// The REST client (input `github-token`), made once and shared by every call.
    client: std::cell::OnceCell<Client>,
}

impl<'a> ArtifactStore<'a> {
    /// The store, with the seed the main stage was given (input `auth-json`), if any.
    pub fn open(
        config: &'a ActionConfig,
        settings: &'a ArtifactSettings,
        seed: Option<Result<AuthFile, String>>,
    ) -> Self {
        Self {
            seed,
            ..Self::rescue(config, settings)
        }
    }

    /// The store as the rescue of the secret store: no seed of its own, its tokens masked.
    pub fn rescue(config: &'a ActionConfig, settings: &'a ArtifactSettings) -> Self {
        mask_inputs(&config.workflow, settings);
        Self {
            config,
            settings,
            seed: None,
            client: std::cell::OnceCell::new(),
        }
    }

    /// The store's REST client, made on first use.
    fn client(&self) -> anyhow::Result<&Client> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let config = self.config;
        let client = Client::new(
            &config.transport,
            &config.api_url,
            &self.settings.github_token,
            config.retry,
        )?
        .credential("input `github-token`");
        Ok(self.client.get_or_init(|| client))
    }

    fn binding(&self) -> Binding<'a> {
        Binding {
            repository_id: self.settings.repository_id,
            artifact_name: &self.settings.name,
        }
    }

    /// Whether an upload can be made: the runner passed the results service's URL and a
    /// runtime token that names this job.
    pub(super) fn ready_to_upload(&self) -> Result<(), ResultsError> {
        match (&self.settings.results_url, &self.settings.runtime_token) {
            (Some(_), Some(token)) => BackendIds::from_runtime_token(token).map(|_| ()),
            _ => Err(ResultsError::RuntimeToken),
        }
    }

    /// The artifact of this name holding the newest login (see the module's doc), opened.
    /// Fails when the artifacts cannot be listed or a candidate cannot be downloaded.
    pub(super) async fn newest(&self) -> Result<Newest, NotLoaded> {
        let config = self.config;
        let settings = self.settings;
        let repository = config.repository.as_deref().ok_or_else(|| {
            NotLoaded::Unreadable(
                "GITHUB_REPOSITORY is not set; the runner sets it to owner/name, which the \
                 artifact store lists artifacts of."
                    .to_owned(),
            )
        })?;
        let client = self
            .client()
            .map_err(|e| NotLoaded::Unreadable(format!("{e:#}")))?;
        let artifacts = Artifacts::new(client, repository);
        let cannot_read = |error: RestError| NotLoaded::Unreadable(sentence(&error.to_string()));
        let branch = match config
            .run
            .payload
            .as_ref()
            .and_then(|p| p.pointer("/repository/default_branch"))
            .and_then(serde_json::Value::as_str)
        {
            Some(branch) => branch.to_owned(),
            None => artifacts.default_branch().await.map_err(cannot_read)?,
        };
        let candidates = artifacts
            .candidates(&settings.name, settings.repository_id, &branch)
            .await
            .map_err(cannot_read)?;
        let mut best: Option<(Artifact, AuthFile)> = None;
        let mut skipped: Vec<(Artifact, String)> = Vec::new();
        for artifact in candidates.into_iter().take(MAX_OPENED) {
            if let (Some((_, login)), Some(created)) = (&best, artifact.created_at) {
                // Sealed at or before its upload: it cannot hold a newer login.
                if created + SKEW < login.last_refresh() {
                    break;
                }
            }
            match self.open_artifact(&artifacts, &artifact).await {
                Ok(login) => {
                    let newer = best
                        .as_ref()
                        .is_none_or(|(_, b)| login.last_refresh() > b.last_refresh());
                    if newer {
                        if let Some((uploaded_later, older)) = &best {
                            self.config.workflow.warning(
                                "Older login uploaded later",
                                &format!(
                                    "artifact {} holds a login refreshed at {}, older than the \
                                     one in artifact {} ({}), which was uploaded before it: a \
                                     re-upload of an old login, or two jobs that overlapped. \
                                     The newer login is restored; give the workflows that use \
                                     the login one `concurrency:` group.",
                                    uploaded_later.id,
                                    older.last_refresh(),
                                    artifact.id,
                                    login.last_refresh()
                                ),
                            );
                        }
                        best = Some((artifact, login));
                    }
                }
                Err(Unusable::Unreachable(why)) => return Err(NotLoaded::Unreadable(why)),
                Err(Unusable::Content(why)) => skipped.push((artifact, why)),
            }
        }
        let Some((artifact, login)) = best else {
            // None opens: the newest one's reason is the one to act on.
            return Ok(match skipped.into_iter().next() {
                Some((artifact, why)) => Newest::Unusable(artifact, why),
                None => Newest::None,
            });
        };
        for (_, why) in skipped {
            self.config.workflow.warning(
                "Artifact skipped",
                &format!("{why} Restoring artifact {} instead.", artifact.id),
            );
        }
        Ok(Newest::Found(artifact, Box::new(login)))
    }

    /// Saves the login as an artifact of this run; returns the artifact's id.
    pub(super) async fn upload_login(&self, file: &AuthFile) -> anyhow::Result<u64> {
        let id = self.upload(file).await?;
        self.config.workflow.info(&format!(
            "Uploaded the refreshed login as artifact {} (id {id}), sealed for this repository.",
            self.settings.name
        ));
        Ok(id)
    }

    /// The artifact's name.
    pub(super) fn name(&self) -> &str {
        &self.settings.name
    }

    /// Downloads, unzips, decrypts and validates an artifact; masks its tokens.
    async fn open_artifact(
        &self,
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
            Unusable::Content(sentence(&format!("{what} cannot be restored: {cause}")))
        };
        let zip = artifacts
            .download(artifact, archive::MAX_ZIP_BYTES)
            .await
            .map_err(|e| Unusable::Unreachable(sentence(&e.to_string())))?;
        let sealed = archive::unzip(&zip).map_err(|e| unusable(e.to_string()))?;
        // A rejection says itself what a changed key or a copied artifact needs.
        let plain = crypt::open(&self.settings.key, &self.binding(), &sealed)
            .map_err(|e| unusable(e.to_string()))?;
        let login = AuthFile::decode(plain.expose())
            .map_err(|e| unusable(format!("it decrypts, but is not a usable login: {e}")))?;
        self.config
            .workflow
            .mask_login(&login)
            .map_err(|e| unusable(e.to_string()))?;
        Ok(login)
    }

    /// Input `retention-days`, lowered to the repository's maximum with a warning, as the
    /// official client does.
    fn retention(&self) -> Option<u32> {
        match (
            self.settings.retention_days,
            self.settings.max_retention_days,
        ) {
            (Some(days), Some(max)) if days > max => {
                self.config.workflow.warning(
                    "Retention lowered",
                    &format!(
                        "input `retention-days` is {days}, more than this repository allows \
                         ({max}): the artifact is kept {max} days. Run keep-fresh more often \
                         than that."
                    ),
                );
                Some(max)
            }
            (days, _) => days,
        }
    }

    /// Seals the login for this repository and artifact name, zips it and uploads it as an
    /// artifact of this run; returns the artifact's id.
    async fn upload(&self, file: &AuthFile) -> anyhow::Result<u64> {
        let settings = self.settings;
        let config = self.config;
        let token = settings
            .runtime_token
            .clone()
            .ok_or(ResultsError::RuntimeToken)?;
        let url = settings
            .results_url
            .as_deref()
            .ok_or(ResultsError::RuntimeToken)?;
        config.workflow.mask(&token);
        let results = Results::new(
            url,
            token,
            Plain::new(&config.transport, config.retry.attempt_timeout),
            config.retry,
        )?;
        let compact: Redacted = file.to_compact_json()?;
        let sealed = crypt::seal(&settings.key, &self.binding(), &compact);
        let zip = archive::zip(&sealed);
        let expires_at = self
            .retention()
            .map(|days| Timestamp::now() + SignedDuration::from_hours(24 * i64::from(days)));
        Ok(results.upload(&settings.name, &zip, expires_at).await?)
    }
}

/// Masks what the artifact store's inputs hold: `github-token`, every spelling of the
/// artifact key, the runtime token.
pub fn mask_inputs(workflow: &Workflow, settings: &ArtifactSettings) {
    workflow.mask(&settings.github_token);
    for spelling in settings.key.spellings() {
        workflow.mask(&spelling);
    }
    if let Some(token) = &settings.runtime_token {
        workflow.mask(token);
    }
}

/// The newest artifact of a name.
pub(super) enum Newest {
    /// There is none (or all expired).
    None,
    /// It holds a usable login.
    Found(Artifact, Box<AuthFile>),
    /// It was downloaded, but is not a login sealed with this key for this repository: why.
    Unusable(Artifact, String),
}

/// Why an artifact could not be restored.
enum Unusable {
    /// It could not be downloaded: GitHub or blob storage failed; a re-run may work.
    Unreachable(String),
    /// It was downloaded, but is not a login sealed with this key for this repository.
    Content(String),
}

#[async_trait(?Send)]
impl Store for ArtifactStore<'_> {
    fn place(&self) -> Place {
        Place::Artifact {
            name: self.settings.name.clone(),
        }
    }

    /// The login to restore, newest first: the newest usable artifact, or input `auth-json`
    /// when there is none yet or the seed is newer. Fails before Codex runs when no upload
    /// could be made, or when no login can be had.
    async fn load(&mut self) -> Result<Loaded, NotLoaded> {
        self.prove_can_save().await.map_err(NotLoaded::CannotSave)?;
        let workflow = &self.config.workflow;
        let seed = self.seed.take();
        let stored = match self.newest().await? {
            Newest::None => None,
            Newest::Found(artifact, login) => Some((artifact, *login)),
            Newest::Unusable(artifact, why) => {
                // Only a seed put there after the artifact was written (a reseed, a new key)
                // may replace it: an older seed's refresh token was rotated away long ago.
                let reseeded = matches!(
                    (&seed, artifact.created_at),
                    (Some(Ok(seed)), Some(created)) if seed.last_refresh() > created
                );
                if !reseeded {
                    return Err(NotLoaded::Unusable(why));
                }
                workflow.warning(
                    "Artifact not usable",
                    &format!("{why} Using input `auth-json`, which is newer than the artifact."),
                );
                None
            }
        };
        let login = match (stored, seed) {
            (Some((artifact, login)), seed) => {
                let seed = match seed {
                    Some(Err(error)) => {
                        workflow.warning(
                            "Invalid auth-json ignored",
                            &format!(
                                "input `auth-json` is not a usable Codex ChatGPT login: {error}. \
                                 Restoring the artifact instead."
                            ),
                        );
                        None
                    }
                    Some(Ok(seed)) => Some(seed),
                    None => None,
                };
                match seed {
                    Some(seed) if seed.last_refresh() > login.last_refresh() => {
                        workflow.info(&format!(
                            "Input auth-json (refreshed {}) is newer than artifact {} ({}): \
                             using it.",
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
                let seed = seed.map_err(NotLoaded::InvalidSeed)?;
                workflow.info(&format!(
                    "No usable artifact named {} yet: starting from input auth-json.",
                    self.settings.name
                ));
                seed
            }
            (None, None) => return Err(NotLoaded::Nothing),
        };
        Ok(login.into())
    }

    /// An upload needs the runtime token: without it, nothing could be kept.
    async fn prove_can_save(&mut self) -> Result<(), CannotSave> {
        self.ready_to_upload()
            .map_err(|error| CannotSave::Refused(error.to_string()))
    }

    async fn save(&mut self, file: &AuthFile) -> Result<Saved, NotSaved> {
        match self.upload_login(file).await {
            Ok(id) => Ok(Saved {
                place: self.place(),
                artifact_id: Some(id),
                copy: None,
            }),
            Err(error) => Err(NotSaved::Failed(format!("{error:#}"))),
        }
    }

    async fn close(&mut self) {}
}
