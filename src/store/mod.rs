//! Where the login is kept between jobs, behind one interface: [`Store`]. The stages call the
//! interface and never know which store is in use.
//!
//! - [`secret`]: a repository, environment or organization secret, sealed with its public key
//!   (input `token` or a GitHub App writes it);
//! - [`artifact`]: an encrypted workflow artifact of this repository (only the job's own
//!   tokens);
//! - [`rescue`]: the secret, with the artifact taking a rotation the secret could not.
//!
//! A store owns its reads and writes of GitHub and says what they found; it answers a save
//! with a typed result ([`Saved`], [`NotSaved`]), and the stages say what that means for the
//! job. It must not start Codex, touch CODEX_HOME, or print a token (every login it reads is
//! masked first). Adding a store is one module behind [`Store`] and one arm in [`open`].

pub mod access;
pub mod artifact;
pub mod rescue;
pub mod secret;

use async_trait::async_trait;

use crate::auth_file::AuthFile;
use jiff::Timestamp;

use crate::config::{ActionConfig, StoreConfig};
use crate::github::SecretTarget;

/// The login the main stage restores, and what the store holds.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The newest usable login: Codex starts from it (unless a newer file is on disk).
    pub login: AuthFile,
    /// The fingerprint of the tokens the store holds now: a login that differs is saved. It
    /// is the login's own, unless the store must be written again whatever Codex does (a
    /// rotation rescued elsewhere that the secret does not hold yet).
    pub baseline: String,
    /// Whether another job stored a newer login after this one received its copy.
    pub freshness: Freshness,
}

/// Whether the loaded login is the one the store holds now, as far as the store can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Nothing says otherwise (or the store cannot tell: an artifact is read when loaded).
    Current,
    /// The store was written at `written`, after this run was queued at `queued`: another job
    /// stored a newer login, and the copy this job received is most likely spent.
    WrittenAfterQueued {
        /// When the store was last written.
        written: Timestamp,
        /// When this run was queued.
        queued: Timestamp,
    },
    /// The check was not made: `request` answered `status` (a permission the credential
    /// lacks).
    NotChecked {
        /// The request that was refused.
        request: String,
        /// GitHub's answer.
        status: u16,
    },
    /// Reading when this run was queued failed: why.
    Unknown(String),
}

impl From<AuthFile> for Loaded {
    fn from(login: AuthFile) -> Self {
        let baseline = login.fingerprint();
        Self {
            login,
            baseline,
            freshness: Freshness::Current,
        }
    }
}

/// Why a store has no login to load. The stages word it (`stage/wording/`): these are the
/// facts, each with what the store found.
#[derive(Debug)]
pub enum NotLoaded {
    /// Nothing stored, and no seed given (input `auth-json` is empty).
    Nothing,
    /// The seed (input `auth-json`) is not a usable login, and nothing stored replaces it: why.
    InvalidSeed(String),
    /// What is stored is not a usable login (it does not open, or is no login): why.
    Unusable(String),
    /// The store could not be read (GitHub or its storage failed, or a permission is
    /// missing): why. A re-run may work.
    Unreadable(String),
    /// A save could never succeed here, found before anything was restored.
    CannotSave(CannotSave),
}

impl std::fmt::Display for NotLoaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Nothing => f.write_str("nothing stored, and input `auth-json` is empty"),
            Self::InvalidSeed(why) | Self::Unusable(why) | Self::Unreadable(why) => {
                f.write_str(why)
            }
            Self::CannotSave(cannot) => write!(f, "{cannot}"),
        }
    }
}

/// Where a store keeps the login: what the stages' messages name (and where a fresh login goes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A repository, environment or organization secret.
    Secret(SecretTarget),
    /// An encrypted workflow artifact of this repository.
    Artifact {
        /// The artifact's name.
        name: String,
    },
    /// Nowhere: input `auth-json` is an access-only copy, which a keeper job publishes and
    /// this job only reads ([`access`]).
    AccessCopy,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret(target) => write!(f, "the {target}"),
            Self::Artifact { name } => write!(f, "artifact {name}"),
            Self::AccessCopy => write!(f, "the keeper's access-only copy (input `auth-json`)"),
        }
    }
}

/// What a successful save did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// Where the login went.
    pub place: Place,
    /// The artifact's id, when it went to an artifact.
    pub artifact_id: Option<u64>,
    /// The keeper's access-only copy (input `access-secret-name`), written after the login.
    pub copy: Option<CopyWrite>,
}

/// The write of the access-only copy that follows a stored login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyWrite {
    /// The copy's secret.
    pub target: SecretTarget,
    /// Whether it was written; why not. The full login is stored either way.
    pub written: Result<(), String>,
}

/// Why a save did not store the login where the store keeps it. The file stays on disk either
/// way; the stages say what that means for the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSaved {
    /// Nothing was stored: why.
    Failed(String),
    /// The write failed (`cause`), and the login was rescued as artifact `artifact` instead,
    /// which the next run restores: uploaded now (`id`), or already by the main stage (`None`).
    Rescued {
        /// Why the write failed.
        cause: String,
        /// The rescue artifact's name.
        artifact: String,
        /// The uploaded artifact's id; `None` when the main stage had rescued the same login.
        id: Option<u64>,
    },
    /// The write failed (`cause`), and rescuing it as artifact `artifact` failed too (`error`).
    RescueFailed {
        /// Why the write failed.
        cause: String,
        /// The rescue artifact's name.
        artifact: String,
        /// Why the rescue failed.
        error: String,
    },
}

/// Where the login is kept between jobs: storage only. It reads, proves and writes, and
/// answers with typed results; what those mean for the job, and what the user should do, the
/// stages say. A store is opened for one stage and told nothing about it: what it is given
/// (a seed to load from, or none) is all it knows.
///
/// The order is the stages': [`Store::load`] (main stage, unless it signs in anew), then
/// [`Store::prove_can_save`] when Codex may rotate the login (or a sign-in will store one),
/// then [`Store::save`] whenever the tokens changed, in either stage; [`Store::close`] last,
/// on every way out. Nothing a store needs in the post stage comes from `GITHUB_STATE`
/// unchecked: a process of the job can append to it.
#[async_trait(?Send)]
pub trait Store {
    /// Where the store keeps the login.
    fn place(&self) -> Place;

    /// The newest usable login the store holds (or the seed, when newer), validated and
    /// masked, with what the store knows of it; or why there is none. Reads what a save will
    /// need (a secret's public key) and fails when a save could never work, before anything
    /// is restored.
    async fn load(&mut self) -> Result<Loaded, NotLoaded>;

    /// Proves that a save would succeed, with no effect on the stored login, or says what is
    /// missing. Anything it creates on the way is removed, here or by [`Store::close`] of a
    /// later stage.
    async fn prove_can_save(&mut self) -> Result<(), CannotSave>;

    /// Saves `file`; the file stays on disk whatever happens.
    async fn save(&mut self, file: &AuthFile) -> Result<Saved, NotSaved>;

    /// Last, on every way out: gives back what the stage holds (an App's installation token
    /// is revoked) and removes what an earlier stage's proof could not (a probe secret whose
    /// deletion failed, a cancelled job). Failures are warnings.
    async fn close(&mut self);
}

/// Why a save cannot be proven to work.
#[derive(Debug, thiserror::Error)]
pub enum CannotSave {
    /// What the proof found missing (a permission, a scope, the runtime token), or the
    /// refusal GitHub answered.
    #[error("{0}")]
    Refused(String),
    /// No client could be made with the credentials: their own failure, worded where they
    /// are read (an App's key, its installation).
    #[error("{0:#}")]
    Credentials(anyhow::Error),
}

/// The store the configuration names, for a stage that starts from `seed` (the main stage:
/// input `auth-json`, decoded and masked by the stage) or from nothing (the post stage, a
/// sign-in). `rescue`: a failed secret write may go to the rescue artifact (not for a new
/// sign-in, whose loss is only the sign-in's).
pub fn open(
    config: &ActionConfig,
    seed: Option<Result<AuthFile, String>>,
    rescue: bool,
) -> Box<dyn Store + '_> {
    match &config.store {
        StoreConfig::Secret {
            rescue: Some(settings),
        } if rescue => Box::new(rescue::RescuedSecretStore::open(config, settings, seed)),
        StoreConfig::Secret { rescue: settings } => {
            // Not rescued, but the rescue's key and tokens are the job's all the same: masked.
            if let Some(settings) = settings {
                artifact::mask_inputs(&config.workflow, settings);
            }
            Box::new(secret::SecretStore::open(config, seed))
        }
        StoreConfig::Artifact(settings) => {
            Box::new(artifact::ArtifactStore::open(config, settings, seed))
        }
    }
}
