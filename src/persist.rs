//! The post stage: on every outcome of the job, write the login Codex refreshed back to the
//! secret — sealed, compact, and only when the tokens changed.

use std::fmt::Write as _;

use anyhow::Context as _;
use jiff::Timestamp;

use crate::auth_file::{AuthFile, MAX_BYTES};
use crate::codex_home::{CodexHome, OnDisk};
use crate::config::ActionConfig;
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
        return set_outputs(workflow, false, false);
    };
    let home = CodexHome::new(&config.codex_home);
    let path = home.auth_path();
    let file = match home
        .read()
        .with_context(|| format!("cannot read {}", path.display()))?
    {
        OnDisk::Valid(file) => file,
        OnDisk::Missing => {
            set_outputs(workflow, false, false)?;
            return Err(Failure::new(
                "auth.json disappeared",
                format!(
                    "{} is gone: something deleted it during the job (`codex logout` does, and \
                     revokes the login). Nothing was written back; the secret keeps its old \
                     value, which works only if no refresh happened and the login was not \
                     revoked. {}",
                    path.display(),
                    reseed_hint(&config.target)
                ),
            )
            .into());
        }
        OnDisk::Invalid(error) => {
            set_outputs(workflow, false, false)?;
            return Err(Failure::new(
                "auth.json is damaged",
                format!(
                    "{} is no longer a usable login ({error}), so it was not written back and \
                     was left in place for inspection. The secret keeps its old value. {}",
                    path.display(),
                    reseed_hint(&config.target)
                ),
            )
            .into());
        }
    };
    mask(workflow, &file)?;

    if file.fingerprint() == *baseline {
        workflow.info(&format!(
            "The tokens did not change: nothing written to the {}.",
            config.target
        ));
        set_outputs(workflow, false, false)?;
        summary(workflow, &file, false, "no: the tokens did not change")?;
        return clean_up(config, &home);
    }

    let compact = file.to_compact_json()?;
    if compact.expose().len() > MAX_BYTES {
        set_outputs(workflow, true, false)?;
        return Err(Failure::new(
            "Refreshed auth.json is too large",
            format!(
                "the refreshed login is {} bytes as one line, more than the 48 KB a secret holds; \
                 it was left at {}. {}",
                compact.expose().len(),
                path.display(),
                reseed_hint(&config.target)
            ),
        )
        .into());
    }
    let token = config.token()?;
    let api = SecretsApi::new(&config.api_url, token, config.retry)
        .context("cannot set up the GitHub API client")?;
    warn_if_written_meanwhile(config, &api).await;
    let key = match (
        config.state.get(state::KEY_ID),
        config.state.get(state::KEY),
    ) {
        (Some(id), Some(key)) => PublicKey::new(id.clone(), key.clone()).ok(),
        _ => None,
    };
    match api.write_secret(&config.target, &compact, key).await {
        Ok(outcome) => {
            let verb = match outcome {
                WriteOutcome::Created => "Created",
                WriteOutcome::Updated => "Updated",
            };
            workflow.info(&format!(
                "{verb} the {} with the refreshed login.",
                config.target
            ));
            set_outputs(workflow, true, true)?;
            summary(
                workflow,
                &file,
                true,
                &format!("yes, to the {}", config.target),
            )?;
            clean_up(config, &home)
        }
        Err(error) => {
            set_outputs(workflow, true, false)?;
            summary(
                workflow,
                &file,
                true,
                "no: the write failed (see the error)",
            )?;
            Err(Failure::new(
                "Refreshed login not saved",
                format!(
                    "Codex refreshed the login, but writing it to the {} failed: {error} The \
                     refreshed file is still at {} on this runner. The secret now holds a \
                     refresh token that no longer works, so the next run will fail: fix the \
                     cause above, then reseed. {}",
                    config.target,
                    path.display(),
                    reseed_hint(&config.target)
                ),
            )
            .into())
        }
    }
}

/// Another job wrote the secret while this one ran: both jobs used the login at once. This
/// job's file carries the last rotation it saw succeed, so it is still written, with a warning.
async fn warn_if_written_meanwhile(config: &ActionConfig, api: &SecretsApi) {
    let Some(at_restore) = config.state.get(state::SECRET_UPDATED_AT) else {
        return;
    };
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

fn set_outputs(workflow: &Workflow, refreshed: bool, persisted: bool) -> anyhow::Result<()> {
    workflow.set_output("refreshed", bool_str(refreshed))?;
    workflow.set_output("persisted", bool_str(persisted))?;
    Ok(())
}

fn clean_up(config: &ActionConfig, home: &CodexHome) -> anyhow::Result<()> {
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
fn summary(
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
