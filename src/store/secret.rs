//! The secret store: the login in a repository, environment or organization secret, restored
//! from input `auth-json` and written back sealed with the target's public key, as one line
//! of JSON, by input `token` or a GitHub App's installation token.
//!
//! Before Codex runs, the main stage reads the target's public key (which fails with the same
//! 401/403/404 a write would) and the secret's `updated_at`, which tells a stale copy of the
//! secret from the current one.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jiff::Timestamp;

use super::{decode_seed, Saved, Stage, Store};
use crate::auth_file::{AuthFile, MAX_BYTES};
use crate::config::{ActionConfig, Credentials};
use crate::failure::Failure;
use crate::github::{app, ApiError, Client, Scope, SecretTarget, WriteOutcome};
use crate::seal::PublicKey;
use crate::secret::Secret;
use crate::workflow::Workflow;

/// `GITHUB_STATE` names. The public key is not a secret.
mod state {
    /// The target's public key id, from the main stage's preflight.
    pub const KEY_ID: &str = "key_id";
    /// The target's public key (base64), from the main stage's preflight.
    pub const KEY: &str = "key";
}

/// How long an App's installation token (valid an hour) is used before another is made.
const APP_TOKEN_REUSE: Duration = Duration::from_secs(45 * 60);

/// A client and when its token was made.
struct Connection {
    client: Client,
    made: Instant,
}

/// The secret store of one job stage.
pub struct SecretStore<'a> {
    config: &'a ActionConfig,
    target: &'a SecretTarget,
    /// Main stage: input `auth-json`, decoded and masked.
    seed: Option<AuthFile>,
    connection: Option<Connection>,
    /// The target's public key: read by the main stage, passed to the post stage in state.
    key: Option<PublicKey>,
    /// Main stage: the secret's `updated_at` when it was read (`None`: it did not exist).
    updated_at: Option<Option<Timestamp>>,
}

impl<'a> SecretStore<'a> {
    /// The store; the main stage decodes input `auth-json`, which it requires.
    pub fn open(config: &'a ActionConfig, stage: Stage) -> anyhow::Result<Self> {
        let workflow = &config.workflow;
        let target = &config.target;
        let seed = match stage {
            Stage::Post => None,
            Stage::Main => {
                let input = config.auth_json.as_ref().ok_or_else(|| {
                    Failure::new(
                        "Missing auth-json",
                        format!(
                            "input `auth-json` is empty: pass the secret that holds Codex's \
                             auth.json, e.g. `auth-json: ${{{{ secrets.{} }}}}`. If the secret \
                             does not exist yet: {}",
                            target.name,
                            reseed_hint(target)
                        ),
                    )
                })?;
                Some(decode_seed(workflow, input, &reseed_hint(target))?)
            }
        };
        if let Some(credentials) = &config.credentials {
            mask(workflow, credentials);
        }
        let key = match (
            config.state.get(state::KEY_ID),
            config.state.get(state::KEY),
        ) {
            (Some(id), Some(key)) => PublicKey::new(id.clone(), key.clone()).ok(),
            _ => None,
        };
        Ok(Self {
            config,
            target,
            seed,
            connection: None,
            key,
            updated_at: None,
        })
    }

    fn auth_path(&self) -> PathBuf {
        self.config.codex_home.join(crate::codex_home::AUTH_FILE)
    }

    /// Connects, or reconnects when an App's installation token is about to expire (after a
    /// long Codex run); a failed reconnect keeps the old token, which may still work.
    async fn connect(&mut self) -> anyhow::Result<&Client> {
        let stale = match &self.connection {
            None => true,
            Some(connection) => {
                matches!(self.config.credentials, Some(Credentials::App { .. }))
                    && connection.made.elapsed() > APP_TOKEN_REUSE
            }
        };
        if stale {
            match client(self.config).await {
                Ok(client) => {
                    self.connection = Some(Connection {
                        client,
                        made: Instant::now(),
                    })
                }
                Err(error) if self.connection.is_none() => return Err(error),
                Err(_) => {}
            }
        }
        match &self.connection {
            Some(connection) => Ok(&connection.client),
            None => Err(anyhow::anyhow!("no GitHub client")),
        }
    }

    /// Repository and organization secrets are resolved when a run is queued: a secret written
    /// after that means another job rotated the login, and this job's copy is stale (its
    /// refresh token most likely already used). Environment secrets are resolved when the job
    /// starts, which the API does not tell precisely, so they are not checked here.
    async fn check_not_stale(&mut self, updated_at: Timestamp) -> anyhow::Result<()> {
        let config = self.config;
        let workflow = &config.workflow;
        if matches!(config.target.scope, Scope::Environment { .. }) {
            return Ok(());
        }
        let (Some(repository), Some(run_id)) = (&config.repository, config.run.run_id) else {
            return Ok(());
        };
        let api = self.connect().await?;
        match api
            .run_queued_at(&config.target, repository, run_id, config.run.run_attempt)
            .await
        {
            Ok(queued_at) if updated_at > queued_at => Err(Failure::new(
                "Secret changed after this run was queued",
                format!(
                    "the {} was written at {updated_at}, after this run was queued \
                     ({queued_at}): another job refreshed the login and stored a newer one, so \
                     the copy this job received is stale and its refresh token is most likely \
                     used up. Codex was not run. Re-run the job: a re-run receives the new \
                     value. To prevent this, give every workflow that uses the secret the same \
                     concurrency group, e.g. `concurrency: {{ group: codex-auth-{}, \
                     cancel-in-progress: false }}`.",
                    config.target, config.target.name
                ),
            )
            .into()),
            Ok(_) => Ok(()),
            Err(error @ (ApiError::Forbidden { .. } | ApiError::NotFound { .. })) => {
                let status = error.status().unwrap_or_default();
                workflow.warning(
                    "Concurrent-use check skipped",
                    &format!(
                        "could not read this workflow run (GET /repos/{repository}/actions/runs/\
                         {run_id} answered {status}) to compare its start with the secret's \
                         last write. Give input `token` the repository permission \"Actions: \
                         Read\" to enable the check."
                    ),
                );
                Ok(())
            }
            Err(error) => Err(Failure::new(
                "Cannot read the workflow run",
                format!("{error} Codex was not run."),
            )
            .into()),
        }
    }

    /// Another job wrote the secret while this one ran: both jobs used the login at once. This
    /// job's file carries the last rotation it saw succeed, so it is still written, with a
    /// warning.
    async fn warn_if_written_meanwhile(&mut self, at_restore: Option<Timestamp>) {
        let target = self.target;
        let workflow = &self.config.workflow;
        let Ok(api) = self.connect().await else {
            return;
        };
        let Ok(now) = api.secret_updated_at(target).await else {
            return;
        };
        if now != at_restore {
            let now = now.map_or_else(|| "none".to_owned(), |t| t.to_string());
            workflow.warning(
                "Concurrent use of the login",
                &format!(
                    "the {target} was written by another job while this one ran (at {now}): two \
                     jobs used the same login at once, and one of them may have lost its \
                     refresh. Writing this job's refreshed login, which carries the last \
                     rotation it saw succeed. Give every workflow that uses the secret the same \
                     `concurrency:` group."
                ),
            );
        }
    }
}

#[async_trait(?Send)]
impl Store for SecretStore<'_> {
    fn describe(&self) -> String {
        format!("the {}", self.target)
    }

    fn reseed_hint(&self) -> String {
        reseed_hint(self.target)
    }

    async fn github(&mut self) -> anyhow::Result<&Client> {
        self.connect().await
    }

    async fn load(&mut self) -> anyhow::Result<AuthFile> {
        let target = self.target;
        let seed = self
            .seed
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the post stage loads no login"))?;
        self.config
            .workflow
            .info(&format!("Checking that the {target} can be written…"));
        let cannot_persist = |error: ApiError| {
            Failure::new(
                "Cannot write the secret back",
                format!(
                    "{error} Codex was not run: it may rotate the refresh token, and a rotated \
                     token that cannot be saved makes the next run fail with \
                     refresh_token_reused."
                ),
            )
        };
        let api = self.connect().await?;
        let key = api.public_key(target).await.map_err(cannot_persist)?;
        let updated_at = api
            .secret_updated_at(target)
            .await
            .map_err(cannot_persist)?;
        self.key = Some(key);
        self.updated_at = Some(updated_at);
        Ok(seed)
    }

    async fn check_current(&mut self) -> anyhow::Result<()> {
        match self.updated_at {
            Some(Some(updated_at)) => self.check_not_stale(updated_at).await,
            _ => Ok(()),
        }
    }

    fn state(&self) -> Vec<(&'static str, String)> {
        match &self.key {
            Some(key) => vec![
                (state::KEY_ID, key.key_id.clone()),
                (state::KEY, key.key.clone()),
            ],
            None => Vec::new(),
        }
    }

    async fn save(&mut self, file: &AuthFile, stage: Stage) -> Result<Saved, Failure> {
        let target = self.target;
        let path = self.auth_path();
        let not_saved = |cause: String| {
            let next = match stage {
                Stage::Main => "the post stage tries again at the end of the job",
                Stage::Post => {
                    "the secret still holds the login from before this job, whose refresh token \
                     no longer works if the login was refreshed: fix the cause above, then reseed"
                }
            };
            Failure::new(
                "Refreshed login not saved",
                format!(
                    "writing the login in {} to the {target} failed: {cause} The file is still \
                     there; {next}. {}",
                    path.display(),
                    reseed_hint(target)
                ),
            )
        };
        let compact = file
            .to_compact_json()
            .map_err(|e| not_saved(e.to_string()))?;
        if compact.expose().len() > MAX_BYTES {
            return Err(not_saved(format!(
                "the login is {} bytes as one line, more than the 48 KB a secret holds.",
                compact.expose().len()
            )));
        }
        if let Err(error) = self.connect().await {
            // Only the post stage connects here; the main stage connected before Codex ran.
            return Err(Failure::new(
                "Refreshed login not saved",
                format!(
                    "{error} The refreshed login in {} was not written back; the file is still \
                     there. {}",
                    path.display(),
                    reseed_hint(target)
                ),
            ));
        }
        // The post stage sends one request, the write, with the key main read: it runs in
        // every job, so it skips the concurrent-write check (a GET) that main's save makes. A
        // job that overlapped another is still caught: by the stale-seed check when it
        // started, or by Codex's `refresh_token_reused` in whichever job lost.
        if let (Stage::Main, Some(at_restore)) = (stage, self.updated_at) {
            self.warn_if_written_meanwhile(at_restore).await;
        }
        let key = self.key.clone();
        let api = self
            .connect()
            .await
            .map_err(|e| not_saved(format!("{e:#}")))?;
        let outcome = api
            .write_secret(target, &compact, key)
            .await
            .map_err(|e| not_saved(e.to_string()))?;
        let verb = match outcome {
            WriteOutcome::Created => "Created",
            WriteOutcome::Updated => "Updated",
        };
        self.config
            .workflow
            .info(&format!("{verb} the {target} with the refreshed login."));
        Ok(Saved {
            place: format!("to the {target}"),
        })
    }
}

/// A client for the configured credentials. With an App, this makes an installation token
/// (two requests) and masks it.
async fn client(config: &ActionConfig) -> anyhow::Result<Client> {
    match config.credentials()? {
        Credentials::Token(token) => Client::new(&config.api_url, token, config.retry),
        Credentials::App {
            app_id,
            private_key,
        } => {
            let token = app::installation_token(
                &config.api_url,
                *app_id,
                private_key,
                &config.target,
                config.retry,
                &config.workflow,
            )
            .await?;
            Ok(Client::new(&config.api_url, &token, config.retry)?
                .credential("the GitHub App's installation token (input `app-id`)"))
        }
    }
}

/// Masks the credentials' secret parts: the token, or every line of the App's private key.
fn mask(workflow: &Workflow, credentials: &Credentials) {
    match credentials {
        Credentials::Token(token) => workflow.mask(token),
        Credentials::App { private_key, .. } => {
            for line in private_key.expose().lines() {
                let line = line.trim();
                if !line.is_empty() && !line.starts_with("-----") {
                    workflow.mask(&Secret::new(line));
                }
            }
        }
    }
}

/// How to put a fresh login into the target secret.
pub fn reseed_hint(target: &SecretTarget) -> String {
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
        "To reseed: on a trusted machine run `codex login`, then `codex-auth seed {seed} \
         --secret {name}` (or store the file as one line with `jq -c . ~/.codex/auth.json | gh \
         secret set {name} {gh}`).",
        name = target.name
    )
}
