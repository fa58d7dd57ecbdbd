//! The secret store: the login in a repository, environment or organization secret, restored
//! from input `auth-json` and written back sealed with the target's public key, as one line
//! of JSON, by input `token` or a GitHub App's installation token.
//!
//! Loading reads the target's public key (which fails with the same 401/403/404 a write
//! would) and the secret's `updated_at`, which tells a stale copy of the secret from the
//! current one; the login itself is the seed the main stage was given (the secret's value, as
//! the runner passed it).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use jiff::Timestamp;

use super::{CannotSave, CopyWrite, Freshness, Loaded, NotLoaded, NotSaved, Place, Saved, Store};
use crate::auth_file::AuthFile;
use crate::config::{ActionConfig, Credentials};
use crate::github::app::{self, InstallationToken, Permissions};
use crate::github::{ApiError, Client, Scope, SecretTarget, WriteOutcome};
use crate::redacted::Redacted;
use crate::seal::PublicKey;
use crate::workflow::Workflow;

/// `GITHUB_STATE` names. A probe's name is no secret.
pub(crate) mod state {
    /// A probe secret that may still exist (empty once deleted).
    pub const PROBE: &str = "probe_secret";
}

/// The prefix of the secrets the write probe creates (and deletes at once).
pub const PROBE_PREFIX: &str = "CODEX_AUTH_PROBE_";

/// What a probe secret holds.
const PROBE_VALUE: &str = "codex-auth write probe: safe to delete";

/// How long an App's installation token (valid an hour) is used before another is made.
const APP_TOKEN_REUSE: Duration = Duration::from_secs(45 * 60);

/// A client and when its token was made.
struct Connection {
    client: Client,
    made: Instant,
    /// With a GitHub App: the installation token and the permissions GitHub granted it.
    app_token: Option<InstallationToken>,
}

/// How long revoking an installation token may take.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The secret store, as one stage opens it.
pub struct SecretStore<'a> {
    config: &'a ActionConfig,
    target: &'a SecretTarget,
    /// The seed to load (input `auth-json`, decoded and masked, or why it is no login); `None`
    /// when the stage loads nothing.
    seed: Option<Result<AuthFile, String>>,
    /// Whether the stage loads (then its App token may also read the workflow run).
    loads: bool,
    connection: Option<Connection>,
    /// The target's public key, read by `load` or `prove_can_save` (the post stage reads it
    /// again with its write, never from `GITHUB_STATE`).
    key: Option<PublicKey>,
    /// The secret's `updated_at` when the target was read (`None`: it did not exist).
    updated_at: Option<Option<Timestamp>>,
    /// Main stage, a keeper: the access-only copy is missing or older than the login (its
    /// last write failed), so the login and its copy are written whatever Codex does.
    copy_stale: bool,
}

impl<'a> SecretStore<'a> {
    /// The store, starting from `seed` when the stage loads one. Masks the credentials.
    pub fn open(config: &'a ActionConfig, seed: Option<Result<AuthFile, String>>) -> Self {
        if let Some(credentials) = &config.credentials {
            mask(&config.workflow, credentials);
        }
        // The post stage reads the public key again rather than take it from GITHUB_STATE,
        // which a process of the job (Codex's commands among them) can append to: a forged key
        // with the right key id would make GitHub store a value nobody can open.
        Self {
            config,
            target: &config.target,
            loads: seed.is_some(),
            seed,
            connection: None,
            key: None,
            updated_at: None,
            copy_stale: false,
        }
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
            match client(self.config, self.loads).await {
                Ok((client, app_token)) => {
                    let replaced = self.connection.replace(Connection {
                        client,
                        made: Instant::now(),
                        app_token,
                    });
                    if let Some(InstallationToken { token, .. }) =
                        replaced.and_then(|c| c.app_token)
                    {
                        let revoked = app::revoke(
                            &self.config.transport,
                            &self.config.api_url,
                            &token,
                            REVOKE_TIMEOUT,
                        );
                        report_revoke(&self.config.workflow, revoked.await);
                    }
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

    /// Proves that the token can write secrets where the target lives, without touching the
    /// target: creates a probe secret beside it and deletes it at once. Its name is recorded
    /// first, so that the post stage deletes it when this stage cannot (a failed delete, a
    /// job cancelled in between: the cancellation watch lets the delete finish).
    async fn probe(&mut self) -> Result<(), CannotSave> {
        let config = self.config;
        let workflow = &config.workflow;
        let name = probe_name(config.run.run_id, config.run.run_attempt);
        let probe = self.target.sibling(&name);
        workflow.info(&format!(
            "Proving that {} can write secrets there: creating and deleting the {probe}…",
            self.credential()
        ));
        let unrecorded = |e: std::io::Error| {
            CannotSave::Refused(format!("GITHUB_STATE cannot record the probe's name: {e}."))
        };
        workflow
            .save_state(state::PROBE, &name)
            .map_err(unrecorded)?;
        let key = self.key.clone();
        let api = self.connect().await.map_err(CannotSave::Credentials)?;
        if let Err(error) = api
            .write_probe(&probe, &Redacted::new(PROBE_VALUE), key)
            .await
        {
            // Refused: nothing was created. Otherwise it may exist; the post stage deletes it.
            if matches!(error.status(), Some(401 | 403 | 404 | 422)) {
                workflow.save_state(state::PROBE, "").map_err(unrecorded)?;
            }
            return Err(CannotSave::Refused(format!(
                "creating the probe {probe} failed: {error}"
            )));
        }
        match api.delete_secret(&probe).await {
            Ok(()) => {
                workflow.save_state(state::PROBE, "").map_err(unrecorded)?;
                workflow.info(&format!(
                    "Write access proven; deleted the probe secret {name}."
                ));
            }
            Err(error) => workflow.warning(
                "Probe secret not deleted",
                &format!(
                    "write access is proven, but deleting the {probe} failed: {error} The post \
                     stage tries again; if it stays, delete it by hand: it holds no credential."
                ),
            ),
        }
        Ok(())
    }

    /// Where the token came from, for messages.
    fn credential(&self) -> &'static str {
        match self.config.credentials {
            Some(Credentials::App { .. }) => "the GitHub App's installation token",
            _ => "input `token`",
        }
    }

    /// Repository and organization secrets are resolved when a run is queued: a secret written
    /// after that means another job rotated the login, and this job's copy is stale (its
    /// refresh token most likely already used). Environment secrets are resolved when the job
    /// starts, which the API does not tell precisely, so they are not checked here.
    async fn freshness(&mut self, updated_at: Timestamp) -> Result<Freshness, NotLoaded> {
        let config = self.config;
        if matches!(config.target.scope, Scope::Environment { .. }) {
            return Ok(Freshness::Current);
        }
        let (Some(repository), Some(run_id)) = (&config.repository, config.run.run_id) else {
            return Ok(Freshness::Current);
        };
        let api = self
            .connect()
            .await
            .map_err(|e| NotLoaded::CannotSave(CannotSave::Credentials(e)))?;
        Ok(
            match api
                .run_queued_at(repository, run_id, config.run.run_attempt)
                .await
            {
                Ok(queued) if updated_at > queued => Freshness::WrittenAfterQueued {
                    written: updated_at,
                    queued,
                },
                Ok(_) => Freshness::Current,
                Err(error @ (ApiError::Forbidden { .. } | ApiError::NotFound { .. })) => {
                    Freshness::NotChecked {
                        request: format!("GET /repos/{repository}/actions/runs/{run_id}"),
                        status: error.status().unwrap_or_default(),
                    }
                }
                Err(error) => Freshness::Unknown(error.to_string()),
            },
        )
    }

    /// Reads the target's public key (which fails with the same 401/403/404 as a write would
    /// when the token cannot reach the target) and the secret's `updated_at`; a keeper also
    /// reads its copy's.
    async fn read_target(&mut self) -> Result<(), CannotSave> {
        let target = self.target;
        let config = self.config;
        config
            .workflow
            .info(&format!("Checking that the {target} can be written…"));
        let cannot_persist = |error: ApiError| CannotSave::Refused(error.to_string());
        let api = self.connect().await.map_err(CannotSave::Credentials)?;
        let key = api.public_key(target).await.map_err(cannot_persist)?;
        let updated_at = api
            .secret_updated_at(target)
            .await
            .map_err(cannot_persist)?;
        can_create(target, updated_at.is_some()).map_err(cannot_persist)?;
        // The keeper's copy is written right after the login: one older than the login (or
        // none) means that write failed, and task jobs run on an older copy until this job
        // writes it again.
        let mut copy_stale = false;
        if let (Some(access), Some(login_at)) = (&config.access_target, updated_at) {
            let copy_at = api
                .secret_updated_at(access)
                .await
                .map_err(cannot_persist)?;
            can_create(access, copy_at.is_some()).map_err(cannot_persist)?;
            match copy_at {
                // A first keeper run after a seed without `--access-secret-name`.
                None => config.workflow.info(&format!(
                    "The {access} does not exist yet: this job writes it after the login, \
                     whether or not Codex refreshes."
                )),
                Some(copy_at) if copy_at < login_at => config.workflow.warning(
                    "Access-only copy behind the login",
                    &format!(
                        "the {access} was written at {copy_at}, before the {target} (written \
                         {login_at}): the login was last stored without its copy (the copy's \
                         write failed, or a job without `access-secret-name` stored it). This \
                         job writes the login and its copy again, whether or not Codex \
                         refreshes."
                    ),
                ),
                Some(_) => {}
            }
            copy_stale = copy_at.is_none_or(|copy_at| copy_at < login_at);
        }
        self.key = Some(key);
        self.updated_at = Some(updated_at);
        self.copy_stale = copy_stale;
        Ok(())
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
    fn place(&self) -> Place {
        Place::Secret(self.target.clone())
    }

    /// The seed, once the target is proven reachable with the credential (its public key
    /// read), with whether another job wrote the secret since this run was queued.
    async fn load(&mut self) -> Result<Loaded, NotLoaded> {
        let seed = match self.seed.clone() {
            None => return Err(NotLoaded::Nothing),
            Some(Err(why)) => return Err(NotLoaded::InvalidSeed(why)),
            Some(Ok(seed)) => seed,
        };
        self.read_target().await.map_err(NotLoaded::CannotSave)?;
        let freshness = match self.updated_at {
            Some(Some(updated_at)) => self.freshness(updated_at).await?,
            _ => Freshness::Current,
        };
        Ok(Loaded {
            // No fingerprint matches "": the save happens whether or not Codex refreshes.
            baseline: match self.copy_stale {
                true => String::new(),
                false => seed.fingerprint(),
            },
            login: seed,
            freshness,
        })
    }

    async fn prove_can_save(&mut self) -> Result<(), CannotSave> {
        let target = self.target;
        let config = self.config;
        let workflow = &config.workflow;
        // A sign-in proves without loading: the target is read here first.
        if self.key.is_none() {
            self.read_target().await?;
        }
        self.connect().await.map_err(CannotSave::Credentials)?;
        let Some(connection) = &self.connection else {
            return Err(CannotSave::Credentials(anyhow::anyhow!("no GitHub client")));
        };
        if let Some(InstallationToken { permissions, .. }) = &connection.app_token {
            let name = target.app_permission();
            return match permissions.get(name).map(String::as_str) {
                Some("write") => {
                    workflow.info(&format!(
                        "The GitHub App's installation token has `{name}: write`: it can write \
                         the {target}."
                    ));
                    Ok(())
                }
                level => Err(CannotSave::Refused(format!(
                    "the GitHub App's installation token was granted `{name}: {}`, and writing \
                     the {target} needs `{name}: write`. In the App's settings (Permissions & \
                     events) set its {} to \"Read and write\", then approve the new \
                     permission on its installation (Settings → GitHub Apps → Configure).",
                    level.unwrap_or("none"),
                    app_permission_words(name)
                ))),
            };
        }
        if let Some(scopes) = classic_scopes(config, &connection.client) {
            let needed = target.classic_scope();
            if scopes.iter().any(|s| s == needed) {
                // The scope is needed, not enough: writing also takes the user's write access
                // to the repository (or the organization's admin), which no header tells.
                workflow.info(&format!(
                    "Input `token` is a classic token with the `{needed}` scope; its user's \
                     access is proven by a write."
                ));
                return self.probe().await;
            }
            let listed = match scopes.is_empty() {
                true => "no scope".to_owned(),
                false => format!("the scopes `{}`", scopes.join(", ")),
            };
            return Err(CannotSave::Refused(format!(
                "input `token` is a classic personal access token with {listed}, and writing the \
                 {target} needs the `{needed}` scope. Give the token `{needed}` (Settings → \
                 Developer settings → Personal access tokens), or use {} instead.",
                target.permission_needed()
            )));
        }
        self.probe().await
    }

    async fn save(&mut self, file: &AuthFile) -> Result<Saved, NotSaved> {
        self.write(file).await.map_err(NotSaved::Failed)
    }

    /// Deletes a probe secret an earlier stage left, then revokes the App's installation
    /// token (it lives an hour: the stage that made it revokes it). Failures are warnings:
    /// the probe holds no credential, the token still expires.
    async fn close(&mut self) {
        self.delete_left_probe().await;
        let Some(InstallationToken { token, .. }) =
            self.connection.take().and_then(|c| c.app_token)
        else {
            return;
        };
        let revoked = app::revoke(
            &self.config.transport,
            &self.config.api_url,
            &token,
            REVOKE_TIMEOUT,
        )
        .await;
        report_revoke(&self.config.workflow, revoked);
    }
}

impl SecretStore<'_> {
    /// Deletes a probe secret the main stage recorded and could not delete (a failed delete,
    /// a cancelled job). Only names [`probe_name`] makes are deleted, whatever else
    /// `GITHUB_STATE` says.
    async fn delete_left_probe(&mut self) {
        let config = self.config;
        let workflow = &config.workflow;
        let Some(name) = config.state.get(state::PROBE).filter(|n| is_probe_name(n)) else {
            return;
        };
        let probe = self.target.sibling(name);
        let deleted = match self.connect().await {
            Ok(api) => api.delete_secret(&probe).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("{e:#}")),
        };
        match deleted {
            Ok(()) => workflow.info(&format!(
                "Deleted the {probe}, which the main stage could not delete."
            )),
            Err(error) => workflow.warning(
                "Probe secret not deleted",
                &format!(
                    "deleting the {probe} failed: {error} It holds no credential: delete it by \
                     hand (Settings → Secrets and variables → Actions)."
                ),
            ),
        }
    }

    /// Writes `file` to the target secret, compact and sealed; on failure, why.
    async fn write(&mut self, file: &AuthFile) -> Result<Saved, String> {
        let (config, target) = (self.config, self.target);
        let access = config.access_target.as_ref();
        let values = Values::of(file, access.is_some()).map_err(|e| format!("{e}."))?;
        // Only the post stage connects here; the main stage connected before Codex ran.
        self.connect().await.map_err(|e| format!("{e:#}"))?;
        // The post stage sends two requests, the public key and the write: it runs in every
        // job, so it skips the concurrent-write check (a GET) that main's save makes. A job
        // that overlapped another is still caught: by the stale-seed check when it started, or
        // by Codex's `refresh_token_reused` in whichever job lost. A sign-in does not load,
        // and a new login is not compared.
        if let (true, Some(at_restore)) = (self.loads, self.updated_at) {
            self.warn_if_written_meanwhile(at_restore).await;
        }
        let key = self.key.clone();
        let api = self.connect().await.map_err(|e| format!("{e:#}"))?;
        let workflow = &config.workflow;
        let written = write_login(api, key, target, &values, access)
            .await
            .map_err(|e| e.to_string())?;
        workflow.info(&format!(
            "{} the {target} with the login.",
            written.login.verb()
        ));
        let copy = written.copy.map(|(access, outcome)| {
            if let Ok(outcome) = &outcome {
                workflow.info(&format!(
                    "{} the {access} with an access-only copy of the login.",
                    outcome.verb()
                ));
            }
            CopyWrite {
                target: access,
                written: outcome.map(|_| ()).map_err(|e| e.to_string()),
            }
        });
        Ok(Saved {
            place: self.place(),
            artifact_id: None,
            copy,
        })
    }
}

/// A login as the secret store writes it, each value one line of JSON: the full login, and
/// the keeper's access-only copy when one is wanted. Made before any request, so that a login
/// too large for a secret fails before anything is written.
pub struct Values {
    login: Redacted,
    copy: Option<Redacted>,
}

impl Values {
    /// The values of `file`, with its access-only copy when `with_copy`.
    pub fn of(file: &AuthFile, with_copy: bool) -> Result<Self, TooLarge> {
        let login = file
            .to_secret_value()
            .map_err(|e| TooLarge(format!("the login as one line: {e}")))?;
        let copy = match with_copy {
            true => Some(
                file.to_access_only()
                    .to_secret_value()
                    .map_err(|e| TooLarge(format!("the copy as one line: {e}")))?,
            ),
            false => None,
        };
        Ok(Self { login, copy })
    }

    /// The login's value, as written.
    pub fn login(&self) -> &Redacted {
        &self.login
    }
}

/// A login (or its copy) that cannot be a secret's value: why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TooLarge(String);

/// What [`write_login`] wrote.
pub struct LoginWritten {
    /// The login's write.
    pub login: WriteOutcome,
    /// The copy's target and its write, when a copy was asked for. The login is stored
    /// whatever happened to the copy.
    pub copy: Option<(SecretTarget, Result<WriteOutcome, ApiError>)>,
}

/// Writes the login in `values` to `target`, then its copy to `access` beside it, sealed with
/// the target's public key (`key`, read again when `None` or rotated): the one way a login and
/// its copy reach secrets, for the store's saves and for `codex-auth seed`. A new copy is made
/// visible to the repositories a new login is (`target.repository_id`). Fails only when the
/// login was not written.
pub async fn write_login(
    api: &Client,
    key: Option<PublicKey>,
    target: &SecretTarget,
    values: &Values,
    access: Option<&SecretTarget>,
) -> Result<LoginWritten, ApiError> {
    let login = api.write_secret(target, &values.login, key.clone()).await?;
    let copy = match (access, &values.copy) {
        (Some(access), Some(value)) => {
            let mut access = access.clone();
            access.repository_id = access.repository_id.or(target.repository_id);
            let written = api.write_secret(&access, value, key).await;
            Some((access, written))
        }
        _ => None,
    };
    Ok(LoginWritten { login, copy })
}

/// Says whether the installation token was revoked.
fn report_revoke(workflow: &Workflow, revoked: Result<(), String>) {
    match revoked {
        Ok(()) => workflow.info("Revoked the GitHub App's installation token."),
        Err(error) => workflow.warning(
            "Installation token not revoked",
            &format!(
                "revoking the GitHub App's installation token (DELETE /installation/token) \
                 failed: {error}. It expires within the hour on its own; nothing else is \
                 affected."
            ),
        ),
    }
}

/// What a stage's installation token may do, and nothing more: write the target's secrets
/// (every stage may save, and the post stage deletes a probe); when the stage loads, also read
/// the workflow run (the stale-seed check, which an environment secret skips). The
/// repository's visibility is read with input `github-token`, not with this token.
fn app_permissions(config: &ActionConfig, loads: bool) -> Permissions {
    let mut wanted = Permissions::new();
    wanted.insert(
        config.target.app_permission().to_owned(),
        "write".to_owned(),
    );
    if loads && !matches!(config.target.scope, Scope::Environment { .. }) {
        wanted.insert("actions".to_owned(), "read".to_owned());
    }
    wanted
}

/// A client for the configured credentials. With an App, this makes an installation token
/// with the stage's permissions (two requests) and masks it, and returns it with the
/// permissions GitHub granted it.
async fn client(
    config: &ActionConfig,
    loads: bool,
) -> anyhow::Result<(Client, Option<InstallationToken>)> {
    match config.credentials()? {
        Credentials::Token(token) => Ok((
            Client::new(&config.transport, &config.api_url, token, config.retry)?,
            None,
        )),
        Credentials::App {
            app_id,
            private_key,
        } => {
            let token = app::installation_token(
                &config.transport,
                &config.api_url,
                *app_id,
                private_key,
                &config.target,
                &app_permissions(config, loads),
                config.retry,
                &config.workflow,
            )
            .await?;
            let client = Client::new(
                &config.transport,
                &config.api_url,
                &token.token,
                config.retry,
            )?
            .credential("the GitHub App's installation token (input `app-id`)");
            Ok((client, Some(token)))
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
                    workflow.mask(&Redacted::new(line));
                }
            }
        }
    }
}

/// Whether `target` could be written: a new organization secret is made visible to this
/// repository alone, so without the repository's id its write would fail after Codex rotated
/// the login.
fn can_create(target: &SecretTarget, exists: bool) -> Result<(), ApiError> {
    if !exists
        && matches!(target.scope, Scope::Organization { .. })
        && target.repository_id.is_none()
    {
        return Err(ApiError::NoRepositoryForNewSecret {
            target: target.subject().what,
        });
    }
    Ok(())
}

/// The App permission as GitHub's settings page names it.
fn app_permission_words(name: &str) -> &'static str {
    match name {
        "environments" => "repository permission \"Environments\"",
        "organization_secrets" => "organization permission \"Secrets\"",
        _ => "repository permission \"Secrets\"",
    }
}

/// The scopes of a classic token (or an OAuth token), from an answer already received; `None`
/// for fine-grained personal access tokens and App tokens, whose permissions no header lists.
fn classic_scopes(config: &ActionConfig, client: &Client) -> Option<Vec<String>> {
    let Some(Credentials::Token(token)) = &config.credentials else {
        return None;
    };
    // github_pat_: fine-grained; ghs_, ghu_, ghr_: a GitHub App's tokens.
    let fine_grained = ["github_pat_", "ghs_", "ghu_", "ghr_"]
        .iter()
        .any(|prefix| token.expose().starts_with(prefix));
    if fine_grained {
        return None;
    }
    client.oauth_scopes()
}

/// A probe secret's name: unique to this run attempt, and saying what it is.
fn probe_name(run_id: Option<u64>, attempt: u32) -> String {
    use crypto_box::aead::rand_core::RngCore as _;
    let random = crypto_box::aead::OsRng.next_u32();
    format!(
        "{PROBE_PREFIX}{}_{attempt}_{random:08X}",
        run_id.unwrap_or_default()
    )
}

/// Whether `name` is one [`probe_name`] makes: the post stage deletes only those, whatever
/// else `GITHUB_STATE` says (a process in the job could append to it).
fn is_probe_name(name: &str) -> bool {
    name.strip_prefix(PROBE_PREFIX).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_digit() || c == '_' || ('A'..='F').contains(&c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_names_are_unique_and_recognised() {
        let a = probe_name(Some(4242), 2);
        let b = probe_name(Some(4242), 2);
        assert_ne!(a, b);
        assert!(a.starts_with("CODEX_AUTH_PROBE_4242_2_"), "{a}");
        assert!(is_probe_name(&a) && is_probe_name(&b));
        crate::config::validate::validate_secret_name(&a).unwrap();
        for forged in [
            "CODEX_AUTH_JSON",
            "CODEX_AUTH_PROBE_",
            "CODEX_AUTH_PROBE_1_x",
            "OTHER",
        ] {
            assert!(!is_probe_name(forged), "{forged}");
        }
    }
}
