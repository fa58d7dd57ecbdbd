//! Writing a refreshed login back — to the secret, sealed and compact, or as an encrypted
//! artifact ([`crate::artifact`]), only when the tokens changed — and the post stage, which
//! does it on every outcome of the job.
//!
//! The main stage writes back as soon as Codex exits, so that its `persisted` output is real
//! (GitHub Actions drops outputs set by post steps) and the rotated token spends as little
//! time as possible only on disk. The post stage runs whatever happened (`post-if: always()`)
//! and writes whatever changed since: a main stage that was cancelled or failed to write,
//! later steps of the job that ran Codex themselves.

use std::fmt::Write as _;

use anyhow::Context as _;
use jiff::Timestamp;

use crate::auth_file::{AuthFile, MAX_BYTES};
use crate::codex_home::{CodexHome, OnDisk};
use crate::config::{ActionConfig, Store};
use crate::failure::{reseed_hint, Failure};
use crate::github::{SecretsApi, WriteOutcome};
use crate::restore::{bool_str, mask, state};
use crate::seal::PublicKey;
use crate::workflow::Workflow;

/// Runs the post stage.
pub async fn run(config: &ActionConfig) -> anyhow::Result<()> {
    let workflow = &config.workflow;
    let Some(baseline) = config.state.get(state::BASELINE) else {
        workflow.info("The main stage stopped before restoring auth.json: nothing to write back.");
        return Ok(());
    };
    let home = CodexHome::new(&config.codex_home);
    let file = read_refreshed(config, &home)?;
    mask(workflow, &file)?;

    if file.fingerprint() == *baseline {
        workflow.info("The tokens did not change since they were last stored: nothing to write.");
        return clean_up(config, &home);
    }
    if let Store::Artifact(store) = &config.store {
        let uploaded = crate::artifact::stage::upload(config, store, &file)
            .await
            .map_err(|error| {
                Failure::new(
                    "Refreshed login not saved",
                    format!(
                        "uploading the refreshed login in {} as artifact {} failed: {error:#}. \
                         The file is still there; the artifact from before this job holds a \
                         refresh token that no longer works if the login was refreshed. Fix the \
                         cause, then pass a fresh login as input `auth-json` once.",
                        home.auth_path().display(),
                        store.name
                    ),
                )
            });
        let where_ = match &uploaded {
            Ok(id) => format!("yes, as artifact {} (id {id})", store.name),
            Err(_) => "no: the upload failed (see the error)".to_owned(),
        };
        summary(workflow, &file, true, &where_)?;
        let id = uploaded?;
        workflow.info(&format!(
            "Uploaded the refreshed login as artifact {} (id {id}), sealed for this repository.",
            store.name
        ));
        return clean_up(config, &home);
    }
    if let Some(credentials) = &config.credentials {
        crate::app::mask(workflow, credentials);
    }
    let api = crate::app::secrets_api(config).await.map_err(|error| {
        Failure::new(
            "Refreshed login not saved",
            format!(
                "{error} The refreshed login in {} was not written back; the file is still \
                 there. {}",
                home.auth_path().display(),
                reseed_hint(&config.target)
            ),
        )
    })?;
    let key = match (
        config.state.get(state::KEY_ID),
        config.state.get(state::KEY),
    ) {
        (Some(id), Some(key)) => PublicKey::new(id.clone(), key.clone()).ok(),
        _ => None,
    };
    // One request, the write, with the key main read: the post stage runs in every job, so
    // it skips the concurrent-write check (a GET) that main's write-back makes. A job that
    // overlapped another is still caught: by the stale-seed check when it started, or by
    // Codex's `refresh_token_reused` in whichever job lost.
    let written = write_back(config, &api, (&home, &file), key, None, Stage::Post).await;
    let where_ = match &written {
        Ok(_) => format!("yes, to the {}", config.target),
        Err(_) => "no: the write failed (see the error)".to_owned(),
    };
    summary(workflow, &file, true, &where_)?;
    written?;
    clean_up(config, &home)
}

/// Reads the file Codex left, refusing a missing or damaged one: it is never written back.
pub fn read_refreshed(config: &ActionConfig, home: &CodexHome) -> anyhow::Result<AuthFile> {
    let path = home.auth_path();
    let on_disk = home
        .read()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let failure = match on_disk {
        OnDisk::Valid(file) => return Ok(file),
        OnDisk::Missing => Failure::new(
            "auth.json disappeared",
            format!(
                "{} is gone: something deleted it during the job (`codex logout` does, and \
                 revokes the login). Nothing was written back; the stored login keeps its old \
                 value, which works only if no refresh happened and the login was not revoked. {}",
                path.display(),
                reseed(config)
            ),
        ),
        OnDisk::Invalid(error) => Failure::new(
            "auth.json is damaged",
            format!(
                "{} is no longer a usable login ({error}), so it was not written back and was \
                 left in place for inspection. The stored login keeps its old value. {}",
                path.display(),
                reseed(config)
            ),
        ),
    };
    set_outputs(&config.workflow, false, false)?;
    config
        .workflow
        .summary(&format!("### codex-auth\n\n{}\n", failure.message))?;
    Err(failure.into())
}

/// How to put a fresh login where this job's store keeps it.
fn reseed(config: &ActionConfig) -> String {
    match config.store {
        Store::Secret => reseed_hint(&config.target),
        Store::Artifact(_) => crate::artifact::stage::RESEED.to_owned(),
    }
}

/// Which stage writes back: the main stage's failure leaves a retry to the post stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Right after Codex.
    Main,
    /// At the end of the job.
    Post,
}

/// Seals `file` and writes it to the target secret. On failure the message says what
/// happened and how to recover; the file stays on disk.
///
/// `updated_at_restore` is the secret's `updated_at` as read at restore (`none` when it did
/// not exist): a different value now means another job wrote it meanwhile. `None` skips that
/// check.
pub async fn write_back(
    config: &ActionConfig,
    api: &SecretsApi,
    (home, file): (&CodexHome, &AuthFile),
    key: Option<PublicKey>,
    updated_at_restore: Option<&str>,
    stage: Stage,
) -> Result<WriteOutcome, Failure> {
    let path = home.auth_path();
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
                "writing the login in {} to the {} failed: {cause} The file is still there; {next}. {}",
                path.display(),
                config.target,
                reseed_hint(&config.target)
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
    if let Some(at_restore) = updated_at_restore {
        warn_if_written_meanwhile(config, api, at_restore).await;
    }
    let outcome = api
        .write_secret(&config.target, &compact, key)
        .await
        .map_err(|e| not_saved(e.to_string()))?;
    let verb = match outcome {
        WriteOutcome::Created => "Created",
        WriteOutcome::Updated => "Updated",
    };
    let workflow = &config.workflow;
    workflow.info(&format!(
        "{verb} the {} with the refreshed login.",
        config.target
    ));
    // The post stage must compare against what the secret holds now. Failing to record it
    // costs at most a second write.
    if let Err(error) = workflow.save_state(state::BASELINE, &file.fingerprint()) {
        workflow.warning(
            "Write not recorded",
            &format!("the write succeeded, but GITHUB_STATE could not record it ({error}); the post stage may write the same login again."),
        );
    }
    Ok(outcome)
}

/// Another job wrote the secret while this one ran: both jobs used the login at once. This
/// job's file carries the last rotation it saw succeed, so it is still written, with a warning.
async fn warn_if_written_meanwhile(config: &ActionConfig, api: &SecretsApi, at_restore: &str) {
    let Ok(now) = api.secret_updated_at(&config.target).await else {
        return;
    };
    let now = now.map_or_else(|| "none".to_owned(), |t| t.to_string());
    if now != *at_restore {
        config.workflow.warning(
            "Concurrent use of the login",
            &format!(
                "the {} was written by another job while this one ran (at {now}): two jobs used \
                 the same login at once, and one of them may have lost its refresh. Writing this \
                 job's refreshed login, which carries the last rotation it saw succeed. Give \
                 every workflow that uses the secret the same `concurrency:` group.",
                config.target
            ),
        );
    }
}

/// Sets the `refreshed` and `persisted` outputs.
pub fn set_outputs(workflow: &Workflow, refreshed: bool, persisted: bool) -> anyhow::Result<()> {
    workflow.set_output("refreshed", bool_str(refreshed))?;
    workflow.set_output("persisted", bool_str(persisted))?;
    Ok(())
}

/// Removes auth.json unless input `keep` is true.
pub fn clean_up(config: &ActionConfig, home: &CodexHome) -> anyhow::Result<()> {
    if config.keep {
        config.workflow.info(&format!(
            "Left {} in place (input `keep` is true).",
            home.auth_path().display()
        ));
        return Ok(());
    }
    home.remove_auth()
        .with_context(|| format!("cannot remove {}", home.auth_path().display()))?;
    config
        .workflow
        .info(&format!("Removed {}.", home.auth_path().display()));
    Ok(())
}

/// The job summary: facts about the login, no secret.
pub fn summary(
    workflow: &Workflow,
    file: &AuthFile,
    refreshed: bool,
    written: &str,
) -> anyhow::Result<()> {
    let claims = file.claims();
    let now = Timestamp::now();
    let mut md = String::from("### codex-auth\n\n| | |\n|---|---|\n");
    let plan = claims.plan.as_deref().unwrap_or("unknown");
    let expiry = match claims.access_expires_at {
        Some(at) => format!("{at} ({})", relative(now, at)),
        None => "unknown (the access token has no `exp`)".to_owned(),
    };
    let refreshed = if refreshed { "yes" } else { "no" };
    let last = file.last_refresh();
    writeln!(md, "| ChatGPT plan | {plan} |")?;
    writeln!(md, "| Access token expires | {expiry} |")?;
    writeln!(md, "| Last refresh | {last} ({}) |", relative(now, last))?;
    writeln!(md, "| Refreshed in this job | {refreshed} |")?;
    writeln!(md, "| Written back | {written} |")?;
    workflow.summary(&md)?;
    Ok(())
}

/// "in 3 days", "2 hours ago".
pub fn relative(now: Timestamp, at: Timestamp) -> String {
    let seconds = at.as_second() - now.as_second();
    let magnitude = seconds.unsigned_abs();
    let amount = match magnitude {
        0..=119 => format!("{magnitude} s"),
        120..=7199 => format!("{} min", magnitude / 60),
        7200..=172_799 => format!("{} h", magnitude / 3600),
        _ => format!("{} days", magnitude / 86_400),
    };
    if seconds >= 0 {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}
