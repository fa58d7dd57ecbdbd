//! The secret store with a rescue behind it (`store: secret` with input `artifact-key`): when
//! writing the secret fails after Codex rotated the login (a permission revoked mid-job,
//! GitHub down past every retry), the login goes to the artifact store's encrypted artifact,
//! written with the job's own runtime token. The next run restores whichever of the secret
//! and the artifact is newer, and writes the secret again.
//!
//! It is two stores composed, the secret first; the stages see one store.

use async_trait::async_trait;

use super::artifact::{ArtifactStore, Newest};
use super::secret::SecretStore;
use super::{Loaded, NotSaved, Place, Saved, Stage, Store};
use crate::auth_file::AuthFile;
use crate::config::{ActionConfig, ArtifactSettings};
use crate::github::Client;

/// `GITHUB_STATE` name of the fingerprint of a login rescued by the main stage: the post
/// stage does not upload the same login again.
pub(crate) const RESCUED: &str = "rescued";

/// The secret store, rescued by the artifact store.
pub struct RescuedSecretStore<'a> {
    config: &'a ActionConfig,
    stage: Stage,
    secret: SecretStore<'a>,
    artifact: ArtifactStore<'a>,
    /// The fingerprint of the login this stage rescued.
    rescued: Option<String>,
}

impl<'a> RescuedSecretStore<'a> {
    /// The store of one stage.
    pub fn open(
        config: &'a ActionConfig,
        settings: &'a ArtifactSettings,
        stage: Stage,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            config,
            stage,
            secret: SecretStore::open(config, stage)?,
            artifact: ArtifactStore::rescue(config, settings),
            rescued: None,
        })
    }
}

#[async_trait(?Send)]
impl Store for RescuedSecretStore<'_> {
    fn place(&self) -> Place {
        self.secret.place()
    }

    async fn github(&mut self) -> anyhow::Result<&Client> {
        self.secret.github().await
    }

    /// The secret's login, unless the rescue artifact holds a newer login of the same
    /// account ([`Account::admits`](crate::auth_file::Account::admits): by the tokens' claims):
    /// then that one, with the secret's fingerprint as the baseline, so that the secret is
    /// written again whether or not Codex refreshes.
    async fn load(&mut self) -> anyhow::Result<Loaded> {
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
                });
            }
            Ok(Newest::Found(..) | Newest::None) => {}
            Ok(Newest::Unusable(_, failure)) => workflow.warning(
                "Rescue artifact not usable",
                &format!("{} Using the secret.", failure.message()),
            ),
            Err(error) => workflow.warning(
                "Rescue artifact not checked",
                &format!(
                    "{error:#} Using the secret: a login rescued by an earlier job would be \
                     missed here. Give the job `permissions: actions: read` (input \
                     `github-token` lists the artifacts)."
                ),
            ),
        }
        Ok(loaded)
    }

    async fn preflight(&mut self) -> anyhow::Result<()> {
        self.secret.preflight().await
    }

    async fn check_current(&mut self) -> anyhow::Result<()> {
        self.secret.check_current().await
    }

    async fn prove_can_save(&mut self) -> anyhow::Result<()> {
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

    async fn finish(&mut self) {
        self.secret.finish().await;
    }

    async fn close(&mut self) {
        self.secret.close().await;
    }

    async fn save(&mut self, file: &AuthFile) -> Result<Saved, NotSaved> {
        let cause = match self.secret.save(file).await {
            Err(NotSaved::Failed(cause)) => cause,
            other => return other,
        };
        // A new sign-in is never rescued: the next run restores a rescue only over the secret
        // it was rescued from (it stops at a missing secret, and refuses a login of another
        // account), and nothing is lost by not keeping it: the sign-in happened in an empty
        // CODEX_HOME, so the stored login, if any, still works.
        if self.stage == Stage::SignIn {
            return Err(NotSaved::Failed(cause));
        }
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
