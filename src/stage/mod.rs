//! The action's two stages, each the order of its steps and nothing else:
//!
//! - [`main`]: restore the login from the store, run Codex (or hand the login to later
//!   steps), and save what Codex refreshed right away; in `mode: login`, sign in anew and
//!   store the new login instead (`sign_in`);
//! - [`post`]: on every outcome of the job, save whatever changed since.
//!
//! They talk to the store only through [`crate::store::Store`], to Codex only through
//! [`crate::codex`]. What both need (outputs, the summary, reading the refreshed file,
//! cleaning up) is here.

mod handoff;
pub mod main;
pub mod post;
mod sign_in;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use jiff::Timestamp;

use crate::auth_file::{relative, Account, AuthFile};
use crate::cancel::Cancellation;
use crate::codex;
use crate::codex_home::{CodexHome, OnDisk};
use crate::config::ActionConfig;
use crate::context;
use crate::failure::Failure;
use crate::store::{NotSaved, Place, Saved, Stage, Store};
use crate::workflow::{fence, Workflow};
use handoff::Handoff;

/// Refuses the contexts every mode refuses, before anything reaches the store: events whose
/// code the author of a pull request controls, and public repositories (read with the store's
/// own client when the event payload does not say).
async fn refuse_unsafe_contexts(
    config: &ActionConfig,
    store: &mut dyn Store,
) -> anyhow::Result<()> {
    context::check_event(&config.run).map_err(|e| Failure::new("Unsafe event", e.to_string()))?;
    let api = match context::visibility_needs_api(config) {
        true => Some(store.github().await?),
        false => None,
    };
    context::refuse_public_repository(config, api).await
}

/// The Codex input `codex-version` names (`None`: none is named, the `codex` on PATH runs),
/// settled after the refusals and before any login is restored ([`codex::install`]): reused
/// or fetched and verified, then its own `--version` said in the log, with a warning when a
/// copy had been changed or the binary reports another version. A fetched Codex that does not
/// run stops the job here, as does a job cancelled during the fetch. `for_later_steps`
/// (restore mode): the copy is for the job's host steps, so the `codex` on PATH (in the
/// container, the image's) never stands in for it.
async fn named_codex(
    config: &ActionConfig,
    for_later_steps: bool,
    cancel: &mut Cancellation,
) -> Result<Option<codex::install::Codex>, Failure> {
    use codex::install::{self, Codex, Origin};
    let Some(named) = &config.codex.version else {
        return Ok(None);
    };
    let workflow = &config.workflow;
    let environment = codex::environment(
        &config.environment,
        config
            .credentials
            .as_ref()
            .map(crate::config::Credentials::secret),
    );
    let run_as = codex::codex_user(&config.workspace);
    if !for_later_steps {
        let on_path = install::version_line(Path::new("codex"), &environment, run_as).await;
        if let Some(line) = on_path.filter(|l| install::reported_version(l) == Some(named)) {
            workflow.info(&format!(
                "Codex: {line}, the codex on PATH, which is the version `codex-version` names: \
                 nothing to fetch."
            ));
            return Ok(Some(Codex::on_path()));
        }
    }
    // A fetch can take minutes: a cancelled job stops it rather than wait for the runner's
    // kill. The download is dropped with it (an unpack already under way finishes first).
    let codex = tokio::select! {
        codex = install::named(&config.codex, &config.transport, named) => codex?,
        _ = cancel.next() => {
            return Err(Failure::new(
                "Job cancelled",
                format!(
                    "the job was cancelled while Codex {named} was being fetched: nothing was \
                     restored or changed."
                ),
            )
            .before_codex())
        }
    };
    if let Origin::Fetched {
        replaced: Some(why),
        version,
        ..
    } = &codex.origin
    {
        workflow.warning(
            "Cached Codex changed",
            &format!(
                "The copy of Codex {version} an earlier step fetched was not as it was verified \
                 ({why}): something in the job changed it. It was fetched and verified again; \
                 check what the job's earlier steps ran."
            ),
        );
    }
    let line = install::version_line(&codex.program, &environment, run_as)
        .await
        .ok_or_else(|| {
            Failure::new(
                "Fetched Codex does not run",
                format!(
                    "{} passed its checks, but `{} --version` did not run or named no version.",
                    codex.describe(),
                    codex.program.display()
                ),
            )
            .before_codex()
            .fix("Name another version in `codex-version`, or leave it empty to run the pinned Codex.")
        })?;
    workflow.info(&format!("Codex: {line}, {}.", codex.describe()));
    if install::reported_version(&line) != Some(named.as_str()) {
        workflow.warning(
            "Codex reports another version",
            &format!(
                "Input `codex-version` names {named}, and the binary of that package reports \
                 \"{line}\". It is the package the registry publishes under that version (its \
                 integrity was checked); tell whoever runs the registry if you did not expect \
                 this."
            ),
        );
    }
    Ok(Some(codex))
}

/// Runs Codex (`run`) as a prompt-injected Codex can do least harm: its output behind the
/// fence, so that the runner reads no command from it; the step's command files in custody
/// (in a container action, locked out of Codex's reach for the whole run: see
/// [`crate::workflow::command_files`]); afterwards every process it left running ended, then
/// the files put back to what the action had written and given back, so that nothing Codex
/// wrote there reaches a later step, the post stage or the outputs. Says in the log when Codex
/// had written to them. A guard does the same on every way out, a panic included.
async fn contain<T>(
    config: &ActionConfig,
    run: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<Ran<T>> {
    let workflow = &config.workflow;
    let lock = codex::sandbox::in_container() && codex::codex_user(&config.workspace).is_some();
    let custody = workflow.take_custody(lock).context(
        "cannot take the step's command files out of Codex's reach before it runs; Codex was \
         not run",
    )?;
    let mut guard = Guard(Some(custody));
    let fenced = fence::raise();
    let result = run.await;
    let left = codex::end_leftovers();
    drop(fenced);
    if left.ended > 0 {
        workflow.info(&format!(
            "Ended what Codex left running ({} process{}).",
            left.ended,
            if left.ended == 1 { "" } else { "es" }
        ));
    }
    let restored = match guard.0.take() {
        Some(custody) => custody.restore(left.survivors == 0),
        None => Ok(Vec::new()),
    };
    let changed = match &restored {
        Ok(changed) => changed,
        Err(not) => &not.changed,
    };
    if !changed.is_empty() {
        workflow.warning(
            "Codex wrote to the step's command files",
            &format!(
                "{} changed while Codex ran. Each was put back to exactly what codex-auth had \
                 written, so nothing written there reaches a later step, the post stage, its \
                 state or the outputs. Codex does this only when its prompt, or text it read, \
                 tells it to: check what the task read.",
                changed.join(", ")
            ),
        );
    }
    let contained = restored.map(drop).map_err(|not| {
        anyhow::Error::new(not).context(
            "cannot put the step's command files back after Codex ran (what Codex left was \
             still saved)",
        )
    });
    Ok(Ran { result, contained })
}

/// What [`contain`] ran: Codex's result, and whether the command files were put back and
/// given back. The stage saves what Codex left before it fails on the latter: the login
/// Codex refreshed must not be lost because the files could not be given back.
struct Ran<T> {
    result: anyhow::Result<T>,
    contained: anyhow::Result<()>,
}

/// The guard of [`contain`]: on a way out that skipped the restore (a panic unwinding, the
/// stage's future dropped), ends what Codex left and puts the command files back.
struct Guard(Option<crate::workflow::command_files::Custody>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(custody) = self.0.take() {
            let left = codex::end_leftovers();
            let _ = custody.restore(left.survivors == 0);
        }
    }
}

/// Stops the stage when the job was cancelled before `what` (nothing was changed yet).
async fn stop_if_cancelled(cancel: &mut Cancellation, what: &str) -> anyhow::Result<()> {
    if cancel.requested().await {
        return Err(Failure::new(
            "Job cancelled",
            format!("the job was cancelled before {what}: nothing was changed."),
        )
        .into());
    }
    Ok(())
}

/// Records what the store holds now, after a save: the post stage compares against it.
/// Failing to record it costs at most a second save.
fn record_saved(config: &ActionConfig, handoff: &mut Handoff, file: &AuthFile) {
    handoff.baseline = file.fingerprint();
    if let Err(error) = handoff.save(config) {
        config.workflow.warning(
            "Write not recorded",
            &format!(
                "the save succeeded, but GITHUB_STATE could not record it ({error:#}); the post \
                 stage may save the same login again."
            ),
        );
    }
}

/// Refuses a login of another account than the one restored: Codex (or a command it ran) can
/// replace auth.json with a valid login of an account an attacker owns, and every later job
/// would then send the repository's code and prompts to that account. Which account a login is
/// of is what its tokens claim ([`AuthFile::account`]), never the plain `tokens.account_id`,
/// which the attacker can set to the restored account's id. Nothing is written; the stored
/// login keeps its value. `restored` is the restored login's account as the handoff records
/// it ([`Handoff::account`], ids digested).
pub fn refuse_another_account(
    file: &AuthFile,
    restored: &Account,
    place: &Place,
) -> anyhow::Result<()> {
    let account = file.account();
    if restored.admits(&handoff::account_digest(&account)) {
        return Ok(());
    }
    let prefix = |id: &str| id.chars().take(8).collect::<String>();
    let named = match &account {
        Account::Claimed(id) => format!("account id {}…", prefix(id)),
        Account::Unclaimed(id) => format!(
            "its tokens name no account, only the plain account_id field does ({}…), which \
             anyone can type",
            prefix(id)
        ),
        Account::Mixed { access, id } => format!(
            "its tokens name two accounts: {}… in the access token, {}… in the id token",
            prefix(access),
            prefix(id)
        ),
    };
    Err(Failure::new(
        "Another account's login",
        format!(
            "auth.json now holds a login of another ChatGPT account than the one restored \
             ({named}), so it was not written back: something in the job replaced the login, \
             which only a command Codex was told to run, or a later step, would do. The stored \
             login keeps its value.",
        ),
    )
    .fix("Check what the task read; if you meant to switch accounts, reseed instead.")
    .fix(place.reseed_hint())
    .into())
}

/// Reads the file Codex left, refusing a missing or damaged one: it is never written back.
pub fn read_refreshed(
    config: &ActionConfig,
    home: &CodexHome,
    place: &Place,
) -> anyhow::Result<AuthFile> {
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
                 value, which works only if no refresh happened and the login was not revoked.",
                path.display(),
            ),
        )
        .fix(place.reseed_hint()),
        OnDisk::Invalid(error) => Failure::new(
            "auth.json is damaged",
            format!(
                "{} is no longer a usable login ({error}), so it was not written back and was \
                 left in place for inspection. The stored login keeps its old value.",
                path.display(),
            ),
        )
        .fix(place.reseed_hint()),
    };
    set_outputs(&config.workflow, false, false)?;
    config
        .workflow
        .summary(&format!("### codex-auth\n\n{}\n", failure.message()))?;
    Err(failure.into())
}

/// What to do when a new sign-in could not be saved.
const SIGN_IN_NOT_SAVED: &str = "The new login was not stored (and is not kept anywhere else); \
     the stored login, if any, is unchanged. Fix the cause, then run the sign-in again.";

/// Where a saved login went, for the summary and the log ("to the repository secret …").
pub fn saved_where(saved: &Saved) -> String {
    match (&saved.place, saved.artifact_id) {
        (Place::Artifact { name }, Some(id)) => format!("as artifact {name} (id {id})"),
        (Place::Artifact { name }, None) => format!("as artifact {name}"),
        (place, _) => format!("to {place}"),
    }
}

/// A save that did not store the login, as the failure `stage` reports: what happened to the
/// login, where it is now, and what to do. The file is still on disk in every case.
fn not_saved(config: &ActionConfig, stage: Stage, place: &Place, not_saved: NotSaved) -> Failure {
    // The causes come from many places; each is said as one sentence.
    let not_saved = match not_saved {
        NotSaved::Failed(cause) => NotSaved::Failed(sentence(&cause)),
        NotSaved::Rescued {
            cause,
            artifact,
            id,
        } => NotSaved::Rescued {
            cause: sentence(&cause),
            artifact,
            id,
        },
        NotSaved::RescueFailed {
            cause,
            artifact,
            error,
        } => NotSaved::RescueFailed {
            cause: sentence(&cause),
            artifact,
            error: error.trim_end().trim_end_matches('.').to_owned(),
        },
    };
    let path = CodexHome::new(&config.codex_home).auth_path();
    let path = path.display();
    let write = match place {
        Place::Artifact { .. } => format!("uploading the login in {path} as {place}"),
        Place::Secret(_) | Place::AccessCopy => format!("writing the login in {path} to {place}"),
    };
    match (not_saved, stage) {
        (NotSaved::Failed(cause), Stage::SignIn) => {
            let rescue = match (&config.store, place) {
                (crate::config::StoreConfig::Secret { rescue: Some(_) }, Place::Secret(_)) => {
                    " A new sign-in is not kept as a rescue artifact (the next run would not \
                     restore it in place of a missing secret or one of another account)."
                }
                _ => "",
            };
            Failure::new(
                "New login not saved",
                format!(
                    "{} of the new login to {place} failed: {cause}{rescue}",
                    match place {
                        Place::Artifact { .. } => "uploading",
                        Place::Secret(_) | Place::AccessCopy => "writing",
                    },
                ),
            )
            .fix(SIGN_IN_NOT_SAVED)
        }
        (NotSaved::Failed(cause), Stage::Main) => Failure::new(
            "Refreshed login not saved",
            format!("{write} failed: {cause} The file is still there."),
        )
        .fix("The post stage tries again at the end of the job."),
        (NotSaved::Failed(cause), Stage::Post) => {
            let failure = Failure::new(
                "Refreshed login not saved",
                format!(
                    "{write} failed: {cause} The file is still there; {place} still holds the \
                     login from before this job, whose refresh token no longer works if Codex \
                     rotated it in this job (every refresh does): the next run would fail with \
                     refresh_token_reused."
                ),
            );
            match place {
                Place::Secret(_) | Place::AccessCopy => failure
                    .fix("Fix the cause above, then reseed.")
                    .fix(
                        "To keep such a rotation next time instead, set input `artifact-key` \
                         (see docs/stores.md, \"Rescue\").",
                    )
                    .fix(place.reseed_hint()),
                Place::Artifact { .. } => {
                    failure.fix("Fix the cause, then pass a fresh login as input `auth-json` once.")
                }
            }
        }
        (
            NotSaved::Rescued {
                cause,
                artifact,
                id: None,
            },
            _,
        ) => Failure::new(
            "Refreshed login rescued",
            format!(
                "{write} failed: {cause} The same login is already rescued in artifact \
                 {artifact} (uploaded by the main stage): the next run restores it from there \
                 and writes the secret again."
            ),
        )
        .fix("Fix the cause before then."),
        (
            NotSaved::Rescued {
                cause,
                artifact,
                id: Some(id),
            },
            stage,
        ) => {
            let failure = Failure::new(
                "Refreshed login rescued",
                format!(
                    "{write} failed: {cause} The login was rescued instead: uploaded as \
                     artifact {artifact} (id {id}), encrypted for this repository. The next run \
                     restores it from there (it is newer than the secret) and writes the secret \
                     again."
                ),
            )
            .fix("Fix the cause before then.");
            match stage {
                Stage::Main => failure.fix("The post stage also tries the secret again."),
                Stage::Post | Stage::SignIn => failure,
            }
        }
        (
            NotSaved::RescueFailed {
                cause,
                artifact,
                error,
            },
            _,
        ) => Failure::new(
            "Refreshed login not saved",
            format!(
                "{write} failed: {cause} Rescuing it as artifact {artifact} failed too: {error}. \
                 The file is still there. If Codex rotated the login in this job, the stored \
                 copies no longer work."
            ),
        )
        .fix("Fix the cause, then reseed.")
        .fix(place.reseed_hint()),
    }
}

/// The keeper's summary rows about the access-only copy it published with `file`: where it
/// went, when it expires, and when the keeper must run again at the latest.
pub fn copy_rows(saved: &Saved, file: &AuthFile) -> Vec<(&'static str, String)> {
    let Some(copy) = &saved.copy else {
        return Vec::new();
    };
    let now = Timestamp::now();
    let mut rows = vec![(
        "Access-only copy",
        match &copy.written {
            Ok(()) => format!("written to the {}", copy.target),
            Err(_) => format!("NOT written to the {} (see the error)", copy.target),
        },
    )];
    if copy.written.is_ok() {
        if let Some(expires) = file.access_expires_at() {
            let latest = expires
                .checked_sub(crate::store::access::WARN_BEFORE_EXPIRY)
                .unwrap_or(expires);
            rows.push((
                "Copy expires",
                format!("{expires} ({})", relative(now, expires)),
            ));
            rows.push((
                "Next keeper run, at the latest",
                format!(
                    "{latest} ({}): task jobs warn from then on, and refuse a copy that expires \
                     within their time limit",
                    relative(now, latest)
                ),
            ));
        }
    }
    rows
}

/// The failure to report when the full login was stored but its access-only copy was not.
pub fn copy_not_written(saved: &Saved) -> Option<Failure> {
    let copy = saved.copy.as_ref()?;
    let cause = copy.written.as_ref().err()?;
    Some(
        Failure::new(
            "Access-only copy not written",
            format!(
                "the login was stored in {}, but writing its access-only copy to the {} failed: \
                 {} Task jobs keep using the copy written before, until it expires.",
                saved.place,
                copy.target,
                sentence(cause)
            ),
        )
        .fix(
            "Fix the cause, then run the keeper again: every run that stores a login writes the \
             copy too.",
        ),
    )
}

/// `text` as a sentence: trimmed, ending with a full stop unless it ends with one already.
fn sentence(text: &str) -> String {
    let text = text.trim_end();
    match text.ends_with(['.', '!', '?']) {
        true => text.to_owned(),
        false => format!("{text}."),
    }
}

/// Saves `file` in `stage`: where it went, or the failure to report (see [`not_saved`]).
async fn save(
    config: &ActionConfig,
    stage: Stage,
    store: &mut dyn Store,
    file: &AuthFile,
) -> Result<Saved, Failure> {
    store
        .save(file)
        .await
        .map_err(|failed| not_saved(config, stage, &store.place(), failed))
}

/// Sets the `refreshed` and `persisted` outputs.
pub fn set_outputs(workflow: &Workflow, refreshed: bool, persisted: bool) -> anyhow::Result<()> {
    workflow.set_flag("refreshed", refreshed)?;
    workflow.set_flag("persisted", persisted)?;
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
    more: &[(&str, String)],
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
    for (name, value) in more {
        writeln!(md, "| {name} | {} |", value.replace('|', "\\|"))?;
    }
    workflow.summary(&md)?;
    Ok(())
}
