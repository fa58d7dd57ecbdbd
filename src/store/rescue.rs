//! The secret store with a rescue behind it (`store: secret` with input `artifact-key`): when
//! writing the secret fails after Codex rotated the login (a permission revoked mid-job,
//! GitHub down past every retry), the login goes to the artifact store's encrypted artifact,
//! written with the job's own runtime token. The next run restores whichever of the secret
//! and the artifact is newer, and writes the secret again.
//!
//! It is two stores composed, the secret first; the stages see one store.

use async_trait::async_trait;

use super::artifact::{ArtifactStore, Newest};
use super::secret::{NotSaved, SecretStore};
use super::{Loaded, Saved, Stage, Store, SIGN_IN_NOT_SAVED};
use crate::auth_file::AuthFile;
use crate::config::{ActionConfig, ArtifactSettings};
use crate::failure::Failure;
use crate::github::Client;

/// `GITHUB_STATE` name of the fingerprint of a login rescued by the main stage: the post
/// stage does not upload the same login again.
const RESCUED: &str = "rescued";

/// The secret store, rescued by the artifact store.
pub struct RescuedSecretStore<'a> {
    config: &'a ActionConfig,
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
            secret: SecretStore::open(config, stage)?,
            artifact: ArtifactStore::rescue(config, settings),
            rescued: None,
        })
    }
}

#[async_trait(?Send)]
impl Store for RescuedSecretStore<'_> {
    fn describe(&self) -> String {
        self.secret.describe()
    }

    fn reseed_hint(&self) -> String {
        self.secret.reseed_hint()
    }

    async fn github(&mut self) -> anyhow::Result<&Client> {
        self.secret.github().await
    }

    /// The secret's login, unless the rescue artifact holds a newer login of the same
    /// account: then that one, with the secret's fingerprint as the baseline, so that the
    /// secret is written again whether or not Codex refreshes.
    async fn load(&mut self) -> anyhow::Result<Loaded> {
        let loaded = self.secret.load().await?;
        let workflow = &self.config.workflow;
        let name = self.artifact.name().to_owned();
        let seed = &loaded.login;
        match self.artifact.newest().await {
            Ok(Newest::Found(artifact, login))
                if login.account_id() == seed.account_id()
                    && login.last_refresh() > seed.last_refresh() =>
            {
                workflow.info(&format!(
                    "Restoring the login rescued in artifact {name} (id {}, refreshed {}): it is \
                     newer than the one in {} (refreshed {}), whose write failed in an earlier \
                     job. The secret is written again after Codex.",
                    artifact.id,
                    login.last_refresh(),
                    self.secret.describe(),
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
                &format!("{} Using the secret.", failure.message),
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

    async fn save(&mut self, file: &AuthFile, stage: Stage) -> Result<Saved, Failure> {
        let cause = match self.secret.write(file, stage).await {
            Ok(saved) => return Ok(saved),
            Err(NotSaved::Connecting(cause) | NotSaved::Writing(cause)) => cause,
        };
        if stage == Stage::SignIn {
            // A new sign-in is never rescued: the next run restores a rescue only over the
            // secret it was rescued from (it stops at a missing secret, and refuses a login of
            // another account), and nothing is lost by not keeping it: the sign-in happened in
            // an empty CODEX_HOME, so the stored login, if any, still works.
            return Err(Failure::new(
                "New login not saved",
                format!(
                    "writing the new login to {} failed: {cause}. A new sign-in is not kept as a \
                     rescue artifact (the next run would not restore it in place of a missing \
                     secret or one of another account). {SIGN_IN_NOT_SAVED}",
                    self.secret.describe()
                ),
            ));
        }
        let what = format!(
            "writing the login in {} to {} failed: {cause}",
            self.secret.auth_path().display(),
            self.secret.describe()
        );
        let name = self.artifact.name().to_owned();
        let fingerprint = file.fingerprint();
        let already = self.rescued.as_ref().or(self.config.state.get(RESCUED));
        if already == Some(&fingerprint) {
            return Err(Failure::new(
                "Refreshed login rescued",
                format!(
                    "{what} The same login is already rescued in artifact {name} (uploaded by \
                     the main stage): the next run restores it from there and writes the secret \
                     again. Fix the cause before then."
                ),
            ));
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
                Err(Failure::new(
                    "Refreshed login rescued",
                    format!(
                        "{what} The login was rescued instead: uploaded as artifact {name} (id \
                         {id}), encrypted for this repository. The next run restores it from \
                         there (it is newer than the secret) and writes the secret again; fix \
                         the cause before then.{}",
                        match stage {
                            Stage::Main => " The post stage also tries the secret again.",
                            Stage::Post | Stage::SignIn => "",
                        }
                    ),
                ))
            }
            Err(error) => Err(Failure::new(
                "Refreshed login not saved",
                format!(
                    "{what} Rescuing it as artifact {name} failed too: {error:#}. The file is \
                     still there. If Codex rotated the login in this job, the stored copies no \
                     longer work: fix the cause, then reseed. {}",
                    self.secret.reseed_hint()
                ),
            )),
        }
    }
}
