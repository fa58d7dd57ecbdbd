//! A task job's store when input `auth-json` is an access-only copy (README, "Many jobs, one
//! login"): the keeper job refreshes the login and publishes the copy; a task job
//! only reads it. It needs no write token, proves nothing and writes nothing: Codex cannot
//! refresh a copy, so there is never a rotation to keep.
//!
//! What it checks instead, before Codex runs: that the copy outlives the job (its access
//! token's `exp` against input `job-timeout-minutes`), and that the job is not a keeper or a
//! sign-in given a copy by mistake.

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

use super::{decode_seed, Loaded, NotSaved, Place, Saved, Stage, Store};
use crate::auth_file::{relative, AuthFile, Kind};
use crate::config::{ActionConfig, Mode, StoreConfig};
use crate::failure::Failure;
use crate::github::Client;

/// Less than this left on a copy's access token draws a warning: the keeper is late.
pub const WARN_BEFORE_EXPIRY: SignedDuration = SignedDuration::from_hours(24);

/// Whether input `auth-json` is an access-only copy (an input, not `GITHUB_STATE`: a step of
/// the job cannot change it between the stages).
pub fn given(config: &ActionConfig) -> bool {
    config
        .auth_json
        .as_ref()
        .and_then(|input| AuthFile::decode(input.expose()).ok())
        .is_some_and(|login| login.kind() == Kind::AccessOnly)
}

/// The store of a task job that runs on an access-only copy.
pub struct AccessCopyStore<'a> {
    config: &'a ActionConfig,
    stage: Stage,
    /// Input `auth-json`, decoded and masked.
    copy: AuthFile,
    client: Option<Client>,
}

impl<'a> AccessCopyStore<'a> {
    /// The store; refuses the jobs a copy cannot serve. Masks the copy's tokens first.
    pub fn open(config: &'a ActionConfig, stage: Stage) -> anyhow::Result<Self> {
        let workflow = &config.workflow;
        let input = config
            .auth_json
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("input `auth-json` is empty"))?;
        let copy = decode_seed(workflow, input, &Place::AccessCopy)?;
        let refused = |what: &str, fix: &str| -> anyhow::Error {
            Failure::new("Access-only copy not usable here", what)
                .before_codex()
                .fix(fix)
                .into()
        };
        if stage == Stage::SignIn {
            return Err(refused(
                "input `auth-json` is an access-only copy, and `mode: login` signs in anew and \
                 stores a full login: it takes no `auth-json`.",
                "Remove `auth-json` from the sign-in workflow.",
            ));
        }
        if config.mode == Mode::Refresh {
            return Err(refused(
                "input `auth-json` is an access-only copy (no refresh token), and `mode: \
                 refresh` keeps a login fresh by refreshing it: a copy cannot be refreshed.",
                "Give the keeper the full login (the secret named by `secret-name`, e.g. \
                 `auth-json: ${{ secrets.CODEX_AUTH_JSON }}`); only task jobs take the copy.",
            ));
        }
        if let Some(access) = &config.access_target {
            return Err(refused(
                &format!(
                    "input `access-secret-name` ({}) makes this job the keeper, which publishes \
                     copies of the full login, but input `auth-json` is itself an access-only \
                     copy.",
                    access.name
                ),
                "Give the keeper the full login in `auth-json`, or remove \
                 `access-secret-name` from task jobs.",
            ));
        }
        let unused: Vec<&str> = [
            (config.credentials.is_some(), "`token` / `app-id`"),
            (
                matches!(
                    config.store,
                    StoreConfig::Artifact(_) | StoreConfig::Secret { rescue: Some(_) }
                ),
                "`store` / `artifact-key`",
            ),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        if stage == Stage::Main && !unused.is_empty() {
            workflow.info(&format!(
                "Inputs {} are not used: this job runs on an access-only copy and never writes \
                 anything back.",
                unused.join(" and ")
            ));
        }
        Ok(Self {
            config,
            stage,
            copy,
            client: None,
        })
    }
}

#[async_trait(?Send)]
impl Store for AccessCopyStore<'_> {
    fn place(&self) -> Place {
        Place::AccessCopy
    }

    /// A client with input `github-token` (read only), for the repository check when the event
    /// payload does not say whether the repository is private.
    async fn github(&mut self) -> anyhow::Result<&Client> {
        if self.client.is_none() {
            self.client = Some(github_token_client(self.config)?);
        }
        self.client
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no GitHub client"))
    }

    /// The copy must outlive the job: Codex cannot renew it, and an access token that expires
    /// mid-task fails the task after it may already have done half its work.
    async fn preflight(&mut self) -> anyhow::Result<()> {
        let config = self.config;
        let workflow = &config.workflow;
        let now = Timestamp::now();
        let keeper = Place::AccessCopy.reseed_hint();
        let Some(expires) = self.copy.access_expires_at() else {
            return Err(Failure::new(
                "Access-only copy unusable",
                "input `auth-json` is an access-only copy whose access token has no readable \
                 `exp`, so when it stops working cannot be told.",
            )
            .before_codex()
            .fix(keeper)
            .into());
        };
        let limit = SignedDuration::try_from(config.job_timeout).unwrap_or(SignedDuration::MAX);
        let job_ends = now.checked_add(limit).unwrap_or(Timestamp::MAX);
        if expires <= job_ends {
            return Err(Failure::new(
                "Access-only copy expires during the job",
                format!(
                    "the access token in input `auth-json` (an access-only copy) expires at \
                     {expires} ({}), before this job's time limit ends (input \
                     `job-timeout-minutes`: {} min), and nothing can renew a copy.",
                    relative(now, expires),
                    config.job_timeout.as_secs() / 60
                ),
            )
            .before_codex()
            .fix(keeper)
            .fix(
                "Then re-run this job. Schedule the keeper so that it runs at least once a day \
                 (docs/examples/keeper.yml).",
            )
            .into());
        }
        workflow.info(&format!(
            "Input auth-json is an access-only copy (its access token expires at {expires}, {}): \
             no write token is needed, nothing is proven or written back; the keeper job \
             refreshes the login.",
            relative(now, expires)
        ));
        if expires.duration_since(now) < WARN_BEFORE_EXPIRY {
            workflow.warning(
                "Access-only copy expires soon",
                &format!(
                    "the access token in input `auth-json` expires at {expires} ({}): jobs \
                     that start after that fail before Codex runs. The keeper has not published \
                     a newer copy: check that its scheduled runs succeed, or run it now.",
                    relative(now, expires)
                ),
            );
        }
        Ok(())
    }

    async fn load(&mut self) -> anyhow::Result<Loaded> {
        Ok(self.copy.clone().into())
    }

    async fn save(&mut self, _file: &AuthFile) -> Result<Saved, NotSaved> {
        Err(NotSaved::Failed(format!(
            "the {:?} stage of a job on an access-only copy writes nothing back",
            self.stage
        )))
    }
}

/// A client with input `github-token` (read only), for the repository check when the event
/// payload does not say whether the repository is private; a job with no write credential
/// (on the copy, or on a Codex access token) has no other.
pub(crate) fn github_token_client(config: &ActionConfig) -> anyhow::Result<Client> {
    let token = config.github_token.as_ref().ok_or_else(|| {
        Failure::new(
            "Cannot tell whether the repository is public",
            "the event payload does not say whether the repository is public, and input \
             `github-token` is empty.",
        )
        .before_codex()
        .fix("Leave `github-token` at its default (the workflow's token).")
    })?;
    Ok(
        Client::new(&config.transport, &config.api_url, token, config.retry)?
            .credential("input `github-token`"),
    )
}
