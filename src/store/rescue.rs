//! The secret store with a rescue behind it (`store: secret` with input `artifact-key`): when
//! writing the secret fails after Codex rotated the login (a permission revoked mid-job,
//! GitHub down past every retry), the login goes to the artifact store's encrypted artifact,
//! written with the job's own runtime token. The next run restores whichever of the secret
//! and the artifact is newer, and writes the secret again.
//!
//! It is two stores composed, the secret first; the stages see one store. A new sign-in opens
//! the secret store alone ([`super::open`]): it is never rescued.

use async_trait::async_trait;

use super::artifact::{ArtifactStore, Newest};
use super::secret::SecretStore;
use super::{CannotSave, Loaded, NotLoaded, NotSaved, Place, Saved, Store};
use crate::auth_file::AuthFile;
use crate::config::{ActionConfig, ArtifactSettings};

/// `GITHUB_STATE` name of the fingerprint of a login rescued by the main stage: the post
/// stage does not upload the same login again.
pub(crate) const RESCUED: &str = "rescued";

/// The secret store, rescued by the artifact store.
pub struct RescuedSecretStore<'a> {
    config: &'a ActionConfig,
    secret: SecretStore<'a>,
    artifact: ArtifactStore<'a>,
    /// The fingerprint of the login this stage rescued.
    rescued: Option<String>,
}

impl<'a> RescuedSecretStore<'a> {
    /// The store, starting from `seed` when one is given to load.
    pub fn open(
        config: &'a ActionConfig,
        settings: &'a ArtifactSettings,
        seed: Option<Result<AuthFile, String>>,
    ) -> Self {
        Self {
            config,
            secret: SecretStore::open(config, seed),
            artifact: ArtifactStore::rescue(config, settings),
            rescued: None,
        }
    }
}

#[async_trait(?Send)]
impl Store for RescuedSecretStore<'_> {
    fn place(&self) -> Place {
        self.secret.place()
    }

    /// The secret's login, unless the rescue artifact holds a newer login of the same
    /// account ([`Account::admits`](crate::auth_file::Account::admits): by the tokens' claims):
    /// then that one, with the secret's fingerprint as the baseline, so that the secret is
    /// written again whether or not Codex refreshes.
    async fn load(&mut self) -> Result<Loaded, NotLoaded> {
        let loaded = self.secret.load().await?;
        let workflow = &self.config.workflow;
        let name = self.artifact.name().to_owned();
        let seed = &loaded.login;
        match self.artifact.newest().await {
            Ok(Newest::Found(artifact, login))
                if seed.account().admits(&login.account())
                    && login.last_refresh() > seed.last_refresh() =>
            {
                workflow.info(&format!(
                    "Restoring the login rescued in artifact {name} (id {}, refreshed {}): it is \
                     newer than the one in {} (refreshed {}), whose write failed in an earlier \
                     job. The secret is written again after Codex.",
                    artifact.id,
                    login.last_refresh(),
                    self.secret.place(),
                    seed.last_refresh()
                ));
                return Ok(Loaded {
                    baseline: seed.fingerprint(),
                    login: *login,
                    freshness: loaded.freshness,
                });
            }
            Ok(Newest::Found(..) | Newest::None) => {}
            Ok(Newest::Unusable(_, why)) => workflow.warning(
                "Rescue artifact not usable",
                &format!("{why} Using the secret."),
            ),
            Err(error) => workflow.warning(
                "Rescue artifact not checked",
                &format!(
                    "{error} Using the secret: a login rescued by an earlier job would be \
                     missed here. Give the job `permissions: actions: read` (input \
                     `github-token` lists the artifacts)."
                ),
            ),
        }
        Ok(loaded)
    }

    async fn prove_can_save(&mut self) -> Result<(), CannotSave> {
        self.secret.prove_can_save().await?;
        if let Err(error) = self.artifact.ready_to_upload() {
            self.config.workflow.warning(
                "Rescue not available",
                &format!(
                    "{error}: if writing the secret fails after Codex rotated the login, this \
                     job cannot keep it as an artifact instead."
                ),
            );
        }
        Ok(())
    }

    async fn close(&mut self) {
        self.secret.close().await;
    }

    async fn save(&mut self, file: &AuthFile) -> Result<Saved, NotSaved> {
        let cause = match self.secret.save(file).await {
            Err(NotSaved::Failed(cause)) => cause,
            other => return other,
        };
        let artifact = self.artifact.name().to_owned();
        let fingerprint = file.fingerprint();
        let already = self.rescued.as_ref().or(self.config.state.get(RESCUED));
        if already == Some(&fingerprint) {
            return Err(NotSaved::Rescued {
                cause,
                artifact,
                id: None,
            });
        }
        match self.artifact.upload_login(file).await {
            Ok(id) => {
                if let Err(error) = self.config.workflow.save_state(RESCUED, &fingerprint) {
                    self.config.workflow.warning(
                        "Write not recorded",
                        &format!(
                            "the rescue succeeded, but GITHUB_STATE could not record it \
                             ({error}); the post stage may upload the same login again."
                        ),
                    );
                }
                self.rescued = Some(fingerprint);
                Err(NotSaved::Rescued {
                    cause,
                    artifact,
                    id: Some(id),
                })
            }
            Err(error) => Err(NotSaved::RescueFailed {
                cause,
                artifact,
                error: format!("{error:#}"),
            }),
        }
    }
}
