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
use crate::config::{ActionConfig, StoreConfig};
use crate::failure::Failure;
use crate::github::{Client, SecretTarget};
use crate::secret::Secret;
use crate::workflow::Workflow;

/// Which stage of the action opened the store: the main stage loads a login and may check it
/// is current, the post stage only saves and cleans up, a sign-in saves a login no file on
/// the runner came from (and is never rescued).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Restore, Codex, the first save.
    Main,
    /// At the end of the job, on every outcome.
    Post,
    /// `mode: login`'s main stage, saving a new sign-in that no file on the runner keeps: a
    /// failed save loses the sign-in, never a rotation, and the stored login is unchanged.
    SignIn,
}

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

/// Where a store keeps the login: what the stages' messages name, and where a fresh login goes
/// ([`Place::reseed_hint`]).
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

impl Place {
    /// How to put a fresh login here.
    pub fn reseed_hint(&self) -> String {
        use crate::github::Scope;
        match self {
            Place::Secret(target) => {
                let (seed, gh) = match &target.scope {
                    Scope::Repository { repository } => (
                        format!("--repo {repository}"),
                        format!("--repo {repository}"),
                    ),
                    Scope::Environment {
                        repository,
                        environment,
                    } => (
                        format!("--repo {repository} --environment \"{environment}\""),
                        format!("--repo {repository} --env \"{environment}\""),
                    ),
                    Scope::Organization { organization } => (
                        format!("--org {organization}"),
                        format!("--org {organization}"),
                    ),
                };
                format!(
                    "To reseed from the browser: run the sign-in workflow (`mode: login`, \
                 docs/examples/login.yml in codex-auth) from the Actions tab and approve the \
                 sign-in it shows. Or, on a trusted machine, run `codex login`, then \
                 `codex-auth seed {seed} --secret {name}` (or store the file as one line with \
                 `jq -c . ~/.codex/auth.json | gh secret set {name} {gh}`).",
                    name = target.name
                )
            }
            Place::AccessCopy => "Run the keeper workflow (the job with input \
                 `access-secret-name`, docs/examples/keeper.yml in codex-auth) from the Actions \
                 tab: it refreshes the login and publishes a fresh copy."
                .to_owned(),
            Place::Artifact { .. } => "To reseed from the browser: run the sign-in workflow \
             (`mode: login` with `store: artifact`, docs/examples/login.yml in codex-auth) from \
             the Actions tab and approve the sign-in it shows. Or, on a trusted machine, run \
             `codex login`, store the file as a secret (`codex-auth seed`), and pass it as input \
             `auth-json`: a seed newer than the newest artifact wins."
                .to_owned(),
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

/// Where the login is kept between jobs: storage only. It reads, checks and writes, and
/// answers with typed results; what those mean for the job, and what the user should do, the
/// stages say.
///
/// The main stage calls, in order: [`Store::github`] (for the repository check),
/// [`Store::preflight`], then [`Store::load`] (not when signing in anew),
/// [`Store::check_current`] when Codex starts from the loaded login,
/// [`Store::prove_can_save`] when Codex may rotate the login during the job, then
/// [`Store::save`] if Codex changed the tokens. The post stage calls [`Store::finish`] first,
/// then [`Store::save`] if the tokens changed since. Every stage ends with
/// [`Store::close`]. Nothing a store needs in the post stage comes from `GITHUB_STATE`
/// unchecked: a process of the job can append to it.
#[async_trait(?Send)]
pub trait Store {
    /// Where the store keeps the login.
    fn place(&self) -> Place;

    /// The GitHub client the store reads with, connected on first use; the main stage checks
    /// the repository's visibility with it.
    async fn github(&mut self) -> anyhow::Result<&Client>;

    /// Main stage, first: the reads and checks that tell whether a save can work at all (the
    /// target's public key, the runtime token); fails before Codex runs when it cannot.
    async fn preflight(&mut self) -> anyhow::Result<()>;

    /// Main stage, after [`Store::preflight`]: the newest usable login the store holds (or
    /// the seed in input `auth-json`), validated and masked. Fails, before Codex runs, when
    /// no login can be had.
    async fn load(&mut self) -> anyhow::Result<Loaded>;

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

    /// Saves `file`; the file stays on disk whatever happens.
    async fn save(&mut self, file: &AuthFile) -> Result<Saved, NotSaved>;

    /// Every stage, last, on every way out: gives back what the stage holds (an App's
    /// installation token is revoked). Failures are warnings.
    async fn close(&mut self) {}
}

/// The store the configuration names. In the main stage, the seed in input `auth-json` is
/// decoded and its tokens masked here, before anything else is printed.
pub fn open(config: &ActionConfig, stage: Stage) -> anyhow::Result<Box<dyn Store + '_>> {
    // The post stage has decided by then (from the verified handoff) whether the job ran on a
    // copy; it opens the store only to save a full login.
    if stage != Stage::Post && access::given(config) {
        return Ok(Box::new(access::AccessCopyStore::open(config, stage)?));
    }
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

/// Decodes input `auth-json` and masks its tokens before anything else is printed. `place`
/// is where a fresh login would go, for the error.
pub(crate) fn decode_seed(
    workflow: &Workflow,
    input: &Secret,
    place: &Place,
) -> anyhow::Result<AuthFile> {
    let seed = AuthFile::decode(input.expose()).map_err(|error| {
        Failure::new(
            "Invalid auth-json",
            format!("input `auth-json` is not a usable Codex ChatGPT login: {error}."),
        )
        .before_codex()
        .fix(place.reseed_hint())
    })?;
    workflow.mask_login(&seed)?;
    if !input.expose().contains('\n') {
        workflow.mask(input);
    }
    Ok(seed)
}
