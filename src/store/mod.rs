//! Where the login is kept between jobs, behind one interface: [`Store`]. The stages call the
//! interface and never know which store is in use.
//!
//! - [`secret`]: a repository, environment or organization secret, sealed with its public key
//!   (input `token` or a GitHub App writes it);
//! - [`artifact`]: an encrypted workflow artifact of this repository (only the job's own
//!   tokens);
//! - [`rescue`]: the secret, with the artifact taking a rotation the secret could not.
//!
//! A store owns its reads and writes of GitHub and the messages about them; it must not start
//! Codex, touch CODEX_HOME, or print a token (every login it reads is masked first). Adding a
//! store is one module behind [`Store`] and one arm in [`open`].

pub mod artifact;
pub mod rescue;
pub mod secret;

use async_trait::async_trait;

use crate::auth_file::AuthFile;
use crate::config::{ActionConfig, StoreConfig};
use crate::failure::Failure;
use crate::github::Client;
use crate::secret::Secret;
use crate::workflow::Workflow;

/// Which stage of the action uses the store: the main stage's failed save leaves a retry to
/// the post stage, the post stage's does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Restore, Codex, the first save.
    Main,
    /// At the end of the job, on every outcome.
    Post,
    /// `mode: login`, saving a new sign-in that no file on the runner keeps: a failed save
    /// loses the sign-in, never a rotation, and the stored login is unchanged.
    SignIn,
}

/// What to do when a new sign-in could not be saved.
pub(crate) const SIGN_IN_NOT_SAVED: &str = "The new login was not stored (and is not kept \
     anywhere else); the stored login, if any, is unchanged. Fix the cause, then run the \
     sign-in again.";

/// The login the main stage restores, and what the store holds.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The newest usable login: Codex starts from it (unless a newer file is on disk).
    pub login: AuthFile,
    /// The fingerprint of the tokens the store holds now: a login that differs is saved. It
    /// is the login's own, unless the store must be written again whatever Codex does (a
    /// rotation rescued elsewhere that the secret does not hold yet).
    pub baseline: String,
}

impl From<AuthFile> for Loaded {
    fn from(login: AuthFile) -> Self {
        let baseline = login.fingerprint();
        Self { login, baseline }
    }
}

/// What a successful save did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Where the login went, for the job summary ("to the repository secret …").
    pub place: String,
}

/// Where the login is kept between jobs.
///
/// The main stage calls, in order: [`Store::github`] (for the repository check),
/// [`Store::load`] (or, signing in anew, [`Store::preflight`]),
/// [`Store::check_current`] when Codex starts from the loaded login,
/// [`Store::prove_can_save`] when Codex may rotate the login during the job, then
/// [`Store::save`] if Codex changed the tokens. The post stage calls [`Store::finish`], then
/// [`Store::save`] if the tokens changed since. Nothing a store needs in the post stage comes
/// from `GITHUB_STATE` unchecked: a process of the job can append to it.
#[async_trait(?Send)]
pub trait Store {
    /// Where a saved login goes, for messages ("the repository secret X of o/r").
    fn describe(&self) -> String;

    /// How to put a fresh login where this store keeps it.
    fn reseed_hint(&self) -> String;

    /// The GitHub client the store reads with, connected on first use; the main stage checks
    /// the repository's visibility with it.
    async fn github(&mut self) -> anyhow::Result<&Client>;

    /// Main stage: the newest usable login the store holds (or the seed in input
    /// `auth-json`), validated and masked. Fails, before Codex runs, when a save could not
    /// work or no login can be had.
    async fn load(&mut self) -> anyhow::Result<Loaded>;

    /// Main stage, when there is no login to load (`mode: login` signs in anew): the reads
    /// [`Store::load`] makes so that a save can work, and its checks.
    async fn preflight(&mut self) -> anyhow::Result<()>;

    /// Main stage, when Codex starts from the loaded login (not from a newer file already on
    /// disk): fails when another job stored a newer login after this one received its copy.
    async fn check_current(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Main stage, before Codex runs, when Codex may rotate the login during the job: proves
    /// that a save would succeed, with no effect on the stored login, or fails with what is
    /// missing. Anything it creates on the way is removed, here or by [`Store::finish`].
    async fn prove_can_save(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Post stage, first: removes what the main stage's checks left behind when it could not
    /// (a probe secret whose deletion failed, a cancelled job). Failures are warnings.
    async fn finish(&mut self) {}

    /// Saves `file`. On failure the message says what happened and how to recover; the file
    /// stays on disk.
    async fn save(&mut self, file: &AuthFile, stage: Stage) -> Result<Saved, Failure>;
}

/// The store the configuration names. In the main stage, the seed in input `auth-json` is
/// decoded and its tokens masked here, before anything else is printed.
pub fn open(config: &ActionConfig, stage: Stage) -> anyhow::Result<Box<dyn Store + '_>> {
    Ok(match &config.store {
        StoreConfig::Secret { rescue: None } => Box::new(secret::SecretStore::open(config, stage)?),
        StoreConfig::Secret {
            rescue: Some(settings),
        } => Box::new(rescue::RescuedSecretStore::open(config, settings, stage)?),
        StoreConfig::Artifact(settings) => {
            Box::new(artifact::ArtifactStore::open(config, settings, stage))
        }
    })
}

/// Decodes input `auth-json` and masks its tokens before anything else is printed. `reseed`
/// is the store's hint, for the error.
pub(crate) fn decode_seed(
    workflow: &Workflow,
    input: &Secret,
    reseed: &str,
) -> anyhow::Result<AuthFile> {
    let seed = AuthFile::decode(input.expose()).map_err(|error| {
        Failure::new(
            "Invalid auth-json",
            format!(
                "input `auth-json` is not a usable Codex ChatGPT login: {error}. Codex was not \
                 run. {reseed}"
            ),
        )
    })?;
    workflow.mask_login(&seed)?;
    if !input.expose().contains('\n') {
        workflow.mask(input);
    }
    Ok(seed)
}
