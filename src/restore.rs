//! The main stage: validate the seed, refuse unsafe contexts, check the write-back can work
//! and that the seed is not stale, restore auth.json into CODEX_HOME, run Codex (or, in
//! restore mode, hand the login to later steps), and write the refreshed login back.
//!
//! Order matters: nothing is printed before the tokens are masked, Codex (which may rotate the
//! refresh token, killing the old one) never runs unless the write-back can work, and the
//! write-back comes before anything else that could fail after Codex.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use jiff::Timestamp;

use crate::app;
use crate::artifact;
use crate::auth_file::AuthFile;
use crate::codex::{self, Exec, Refresh, RefreshFailure};
use crate::codex_home::{CodexHome, OnDisk};
use crate::config::{ActionConfig, ArtifactStore, Credentials, Mode, Store};
use crate::context::{self, UnsafeContext};
use crate::failure::{reseed_hint, Failure};
use crate::github::{ApiError, Scope, SecretsApi};
use crate::persist;
use crate::seal::PublicKey;
use crate::secret::Secret;
use crate::workflow::Workflow;

/// `GITHUB_STATE` names shared with the post stage. None holds a secret: the runner logs state.
pub mod state {
    /// Fingerprint of the tokens the secret holds.
    pub const BASELINE: &str = "baseline";
    /// The target's public key id, from the preflight.
    pub const KEY_ID: &str = "key_id";
    /// The target's public key (base64), from the preflight.
    pub const KEY: &str = "key";
}

/// How long after Codex started an App's installation token (valid an hour) is still used for
/// the write-back.
const APP_TOKEN_REUSE: std::time::Duration = std::time::Duration::from_secs(45 * 60);

/// Where the main stage writes the refreshed login back.
enum WriteBack<'a> {
    /// The secret, with the key and `updated_at` read by the preflight.
    Secret {
        api: Box<SecretsApi>,
        key: PublicKey,
        updated_at: String,
    },
    /// The artifact store: a new artifact of this run, replaced by the post stage if the
    /// tokens change again.
    Artifact(&'a ArtifactStore),
}

/// Runs the main stage.
pub async fn run(config: &ActionConfig) -> anyhow::Result<()> {
    let workflow = &config.workflow;
    // Set before anything can fail (outputs go to a file, not the log); the post stage's
    // outputs never reach the workflow.
    persist::set_outputs(workflow, false, false)?;
    let home = CodexHome::new(&config.codex_home);
    let (seed, write_back) = match &config.store {
        Store::Secret => prepare_secret(config, &home).await?,
        Store::Artifact(store) => {
            let seed = artifact::stage::prepare(config, store).await?;
            let plan = plan_restore(workflow, &home, &seed)?;
            apply(workflow, &home, &seed, plan)?;
            (seed, WriteBack::Artifact(store))
        }
    };
    // From here on the post stage must look at CODEX_HOME, whatever happens next.
    let baseline = seed.fingerprint();
    workflow.save_state(state::BASELINE, &baseline)?;
    if let WriteBack::Secret { key, .. } = &write_back {
        workflow.save_state(state::KEY_ID, &key.key_id)?;
        workflow.save_state(state::KEY, &key.key)?;
    }
    if home.ensure_config()? {
        workflow.info("Wrote config.toml pinning cli_auth_credentials_store = \"file\".");
    }

    let restored = match home.read()? {
        OnDisk::Valid(file) => file.fingerprint(),
        _ => baseline.clone(),
    };
    let started = std::time::Instant::now();
    let environment = codex::environment(
        &config.environment,
        config.credentials.as_ref().map(Credentials::secret),
    );
    let outcome = match config.mode {
        Mode::Exec => {
            workflow.info("Running codex exec…");
            let exec = Exec {
                prompt: &config.prompt,
                extra_args: &config.codex_args,
                workspace: &config.workspace,
                codex_home: home.dir(),
                temp_dir: &config.temp_dir,
                workflow,
            };
            exec.run(environment).await?
        }
        Mode::Restore => return hand_over(config, &home),
        Mode::Refresh => {
            workflow.info("Refreshing the login through codex app-server (no model call)…");
            let refresh = Refresh {
                workspace: &config.workspace,
                codex_home: home.dir(),
                workflow,
                timeout: std::time::Duration::from_secs(120),
            };
            refresh.run(environment).await?
        }
    };
    // Write back now, before anything else can fail: outputs of the post stage never reach
    // the workflow, and the rotated token should not live only on this runner a moment longer
    // than needed.
    let file = persist::read_refreshed(config, &home)?;
    mask(workflow, &file)?;
    let refreshed = file.fingerprint() != restored;
    let changed = file.fingerprint() != baseline;
    let written = match (&write_back, changed) {
        (
            WriteBack::Secret {
                api,
                key,
                updated_at,
            },
            true,
        ) => {
            // An App's installation token lasts an hour: after a long Codex run, make another.
            let fresh = match &config.credentials {
                Some(Credentials::App { .. }) if started.elapsed() > APP_TOKEN_REUSE => {
                    app::secrets_api(config).await.ok()
                }
                _ => None,
            };
            let written = persist::write_back(
                config,
                fresh.as_ref().unwrap_or(api),
                (&home, &file),
                Some(key.clone()),
                Some(updated_at),
                persist::Stage::Main,
            )
            .await;
            if let Err(failure) = &written {
                workflow.error(failure.title, &failure.message);
            }
            written.is_ok()
        }
        (WriteBack::Artifact(store), true) => {
            match artifact::stage::upload(config, store, &file).await {
                Ok(id) => {
                    workflow.info(&format!(
                        "Uploaded the refreshed login as artifact {} (id {id}), sealed for this \
                         repository.",
                        store.name
                    ));
                    // The post stage compares against what the artifact holds now.
                    if let Err(error) = workflow.save_state(state::BASELINE, &file.fingerprint()) {
                        workflow.warning(
                            "Write not recorded",
                            &format!("the upload succeeded, but GITHUB_STATE could not record it ({error}); the post stage may upload the same login again."),
                        );
                    }
                    true
                }
                Err(error) => {
                    workflow.error(
                        "Refreshed login not saved",
                        &format!(
                            "uploading the refreshed login in {} as artifact {} failed: \
                             {error:#}. The file is still there; the post stage tries again at \
                             the end of the job.",
                            home.auth_path().display(),
                            store.name
                        ),
                    );
                    false
                }
            }
        }
        (_, false) => {
            let to = match &config.store {
                Store::Secret => format!("the {}", config.target),
                Store::Artifact(store) => format!("artifact {}", store.name),
            };
            workflow.info(&format!(
                "The tokens did not change: nothing written to {to}."
            ));
            false
        }
    };
    workflow.set_output("exit-code", &outcome.exit_code.to_string())?;
    workflow.set_output("final-message", &outcome.final_message)?;
    persist::set_outputs(workflow, refreshed, written)?;
    let where_ = match (changed, written, &config.store) {
        (false, _, _) => "no: the tokens did not change".to_owned(),
        (true, true, Store::Artifact(store)) => format!("yes, as artifact {}", store.name),
        (true, true, Store::Secret) => format!("yes, to the {}", config.target),
        (true, false, _) => "no: the write failed; the post stage tries again".to_owned(),
    };
    persist::summary(workflow, &file, refreshed, &where_)?;

    if outcome.exit_code != 0 && !changed {
        if let Some(failure) = outcome.refresh_failure {
            return Err(Failure::new(
                "Codex login is no longer valid",
                format!(
                    "{} Nothing was written back. {}",
                    describe(failure),
                    reseed_hint(&config.target)
                ),
            )
            .into());
        }
    }
    if outcome.exit_code != 0 {
        let saved = if written {
            " The refreshed login was written back first."
        } else {
            ""
        };
        let what = match config.mode {
            Mode::Exec => format!(
                "codex exec exited with code {}; see its output above.",
                outcome.exit_code
            ),
            Mode::Refresh | Mode::Restore => outcome.final_message.clone(),
        };
        return Err(Failure::new("Codex failed", format!("{what}{saved}")).into());
    }
    if changed && !written {
        return Err(Failure::new(
            "Refreshed login not saved yet",
            "the write-back failed (see the error above); the post stage tries again.",
        )
        .into());
    }
    if config.mode == Mode::Refresh && !refreshed {
        return Err(Failure::new(
            "Login not refreshed",
            "Codex reported the account but did not rotate the tokens, so the keep-fresh run \
             kept nothing fresh. Check Codex's output above; run it again later.",
        )
        .into());
    }
    Ok(())
}

/// The secret store's restore: the seed from input `auth-json`, the public repository and
/// event checks, the preflight (the target's public key and the secret's `updated_at`), the
/// stale-seed check, and the seed written to CODEX_HOME.
async fn prepare_secret<'a>(
    config: &'a ActionConfig,
    home: &CodexHome,
) -> anyhow::Result<(AuthFile, WriteBack<'a>)> {
    let workflow = &config.workflow;
    let input = config.auth_json.as_ref().ok_or_else(|| {
        Failure::new(
            "Missing auth-json",
            format!(
                "input `auth-json` is empty: pass the secret that holds Codex's auth.json, e.g. \
                 `auth-json: ${{{{ secrets.{} }}}}`. If the secret does not exist yet: {}",
                config.target.name,
                reseed_hint(&config.target)
            ),
        )
    })?;
    let seed = decode_seed(config, input)?;
    if let Some(credentials) = &config.credentials {
        app::mask(workflow, credentials);
    }

    context::check_event(&config.run).map_err(|e| Failure::new("Unsafe event", e.to_string()))?;

    let api = app::secrets_api(config).await?;
    refuse_public_repository(config, &api).await?;

    workflow.info(&format!(
        "Checking that the {} can be written…",
        config.target
    ));
    let cannot_persist = |error: ApiError| {
        Failure::new(
            "Cannot write the secret back",
            format!(
                "{error} Codex was not run: it may rotate the refresh token, and a rotated token \
                 that cannot be saved makes the next run fail with refresh_token_reused."
            ),
        )
    };
    let key = api
        .public_key(&config.target)
        .await
        .map_err(cannot_persist)?;
    let secret_updated_at = api
        .secret_updated_at(&config.target)
        .await
        .map_err(cannot_persist)?;

    let plan = plan_restore(workflow, home, &seed)?;
    if let Some(updated_at) = secret_updated_at {
        if !matches!(plan, Plan::KeepDisk(_)) {
            check_not_stale(config, &api, updated_at).await?;
        }
    }
    apply(workflow, home, &seed, plan)?;
    let updated_at = secret_updated_at.map_or_else(|| "none".to_owned(), |t| t.to_string());
    Ok((
        seed,
        WriteBack::Secret {
            api: Box::new(api),
            key,
            updated_at,
        },
    ))
}

/// Decodes input `auth-json` and masks its tokens before anything else is printed.
pub fn decode_seed(config: &ActionConfig, input: &Secret) -> anyhow::Result<AuthFile> {
    let workflow = &config.workflow;
    let seed = AuthFile::decode(input.expose()).map_err(|error| {
        Failure::new(
            "Invalid auth-json",
            format!(
                "input `auth-json` is not a usable Codex ChatGPT login: {error}. Codex was not run. {}",
                reseed_hint(&config.target)
            ),
        )
    })?;
    mask(workflow, &seed)?;
    if !input.expose().contains('\n') {
        workflow.mask(input);
    }
    Ok(seed)
}

/// Restore mode: leaves the restored login to the job's later steps, which run Codex on the
/// host as the runner's user. CODEX_HOME is handed to the workspace's owner and its host path
/// exported as `CODEX_HOME` (GITHUB_ENV) and output `codex-home`.
fn hand_over(config: &ActionConfig, home: &CodexHome) -> anyhow::Result<()> {
    let workflow = &config.workflow;
    if let Some((uid, gid)) = codex::unprivileged_owner(&config.workspace) {
        codex::give_to(home.dir(), uid, gid).with_context(|| {
            format!("cannot hand {} to the runner's user", home.dir().display())
        })?;
    }
    let host = host_path(home.dir(), config.runner_workspace.as_deref());
    let host = host.display().to_string();
    workflow.set_env("CODEX_HOME", &host)?;
    workflow.set_output("codex-home", &host)?;
    workflow.info(&format!(
        "Restored the login for the job's later steps: CODEX_HOME={host}. The post stage writes \
         it back if they refresh it."
    ));
    Ok(())
}

/// The host path of a path in the container action's home. The runner mounts
/// `<work>/_temp/_github_home` at `/github/home` and passes `RUNNER_WORKSPACE` (`<work>/<repo>`)
/// untranslated (actions/runner, ContainerActionHandler.cs, JobExtension.cs). Outside a
/// container the path is already the host's.
pub fn host_path(path: &Path, runner_workspace: Option<&Path>) -> PathBuf {
    let work = runner_workspace.and_then(Path::parent);
    match (path.strip_prefix("/github/home"), work) {
        (Ok(rest), Some(work)) => work.join("_temp").join("_github_home").join(rest),
        _ => path.to_owned(),
    }
}

/// What the restore will do with CODEX_HOME.
enum Plan {
    /// Keep the file on disk: a newer login of the same account (a persistent runner whose
    /// file Codex refreshed after the secret was last written).
    KeepDisk(Box<AuthFile>),
    /// Write the seed, replacing what the words say ("" when there was nothing).
    WriteSeed(&'static str),
}

/// Decides between the seed and a file already in CODEX_HOME, masking the latter's tokens
/// before anything about it is printed.
fn plan_restore(workflow: &Workflow, home: &CodexHome, seed: &AuthFile) -> anyhow::Result<Plan> {
    let path = home.auth_path();
    let on_disk = home
        .read()
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(match on_disk {
        OnDisk::Valid(disk) => {
            mask(workflow, &disk)?;
            if disk.account_id() != seed.account_id() {
                Plan::WriteSeed("a login of another account")
            } else if disk.last_refresh() > seed.last_refresh() {
                Plan::KeepDisk(Box::new(disk))
            } else {
                Plan::WriteSeed("an older login of the same account")
            }
        }
        OnDisk::Invalid(error) => {
            workflow.warning(
                "Replacing an invalid auth.json",
                &format!(
                    "{} was not a usable login ({error}); replacing it with auth-json.",
                    path.display()
                ),
            );
            Plan::WriteSeed("an invalid file")
        }
        OnDisk::Missing => Plan::WriteSeed(""),
    })
}

fn apply(workflow: &Workflow, home: &CodexHome, seed: &AuthFile, plan: Plan) -> anyhow::Result<()> {
    let path = home.auth_path();
    match plan {
        Plan::KeepDisk(disk) => {
            workflow.info(&format!(
                "Kept {}: it was refreshed at {}, after the login in auth-json ({}).",
                path.display(),
                disk.last_refresh(),
                seed.last_refresh()
            ));
        }
        Plan::WriteSeed(replaced) => {
            home.write(seed)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if replaced.is_empty() {
                workflow.info(&format!("Restored auth-json to {}.", path.display()));
            } else {
                workflow.info(&format!(
                    "Restored auth-json to {}, replacing {replaced}.",
                    path.display()
                ));
            }
        }
    }
    Ok(())
}

/// Repository and organization secrets are resolved when a run is queued: a secret written
/// after that means another job rotated the login, and this job's copy is stale (its refresh
/// token most likely already used). Environment secrets are resolved when the job starts,
/// which the API does not tell precisely, so they are not checked here.
async fn check_not_stale(
    config: &ActionConfig,
    api: &SecretsApi,
    updated_at: Timestamp,
) -> anyhow::Result<()> {
    let workflow = &config.workflow;
    if matches!(config.target.scope, Scope::Environment { .. }) {
        return Ok(());
    }
    let (Some(repository), Some(run_id)) = (&config.repository, config.run.run_id) else {
        return Ok(());
    };
    match api
        .run_queued_at(&config.target, repository, run_id, config.run.run_attempt)
        .await
    {
        Ok(queued_at) if updated_at > queued_at => Err(Failure::new(
            "Secret changed after this run was queued",
            format!(
                "the {} was written at {updated_at}, after this run was queued ({queued_at}): \
                 another job refreshed the login and stored a newer one, so the copy this job \
                 received is stale and its refresh token is most likely used up. Codex was not \
                 run. Re-run the job: a re-run receives the new value. To prevent this, give \
                 every workflow that uses the secret the same concurrency group, e.g. \
                 `concurrency: {{ group: codex-auth-{}, cancel-in-progress: false }}`.",
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
                     {run_id} answered {status}) to compare its start with the secret's last \
                     write. Give input `token` the repository permission \"Actions: Read\" to \
                     enable the check."
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

/// Refuses public repositories unless `allow-public-repository` is true. The event payload
/// says whether the repository is private; when it does not, the API does.
pub(crate) async fn refuse_public_repository(
    config: &ActionConfig,
    api: &SecretsApi,
) -> anyhow::Result<()> {
    if config.allow_public_repository {
        return Ok(());
    }
    let Some(repository) = &config.repository else {
        return Ok(());
    };
    let private = match context::payload_says_private(&config.run) {
        Some(private) => private,
        None => api
            .repository_is_private(&config.target, repository)
            .await
            .map_err(|error| {
                let cause = match error.status() {
                    Some(status) => format!("GET /repos/{repository} answered {status}"),
                    None => error.to_string(),
                };
                Failure::new(
                    "Cannot tell whether the repository is public",
                    format!(
                        "the event payload does not say whether {repository} is public, and \
                         reading it failed ({cause}): include the repository in input `token`'s \
                         repository access. Codex was not run."
                    ),
                )
            })?,
    };
    if private {
        return Ok(());
    }
    Err(Failure::new(
        "Public repository",
        UnsafeContext::PublicRepository {
            repository: repository.clone(),
        }
        .to_string(),
    )
    .into())
}

/// Masks every token of a login, and the compact file, before anything else is printed.
pub fn mask(workflow: &Workflow, file: &AuthFile) -> anyhow::Result<()> {
    for value in file.secret_values() {
        workflow.mask(value);
    }
    workflow.mask(&file.to_compact_json()?);
    Ok(())
}

fn describe(failure: RefreshFailure) -> &'static str {
    match failure {
        RefreshFailure::Reused => {
            "Codex could not refresh the login: the refresh token was already used. Another job \
             or machine refreshed this login after the secret was written (serialize the jobs \
             that share it with a workflow `concurrency:` group), or the secret was never \
             updated after a refresh."
        }
        RefreshFailure::Expired => {
            "Codex could not refresh the login: the refresh token has expired (it was not used \
             for too long; run the keep-fresh workflow more often)."
        }
        RefreshFailure::Invalidated => {
            "Codex could not refresh the login: the refresh token was revoked (a logout or a \
             password change)."
        }
    }
}

/// `true`/`false` for outputs.
pub fn bool_str(value: bool) -> &'static str {
    if value {
        "true"
    } else {
        "false"
    }
}
