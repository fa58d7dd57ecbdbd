//! The action's two stages, each the order of its steps and nothing else:
//!
//! - [`main`]: restore the login from the store, run Codex (or hand the login to later
//!   steps), and save what Codex refreshed right away; in `mode: login`, sign in anew and
//!   store the new login instead (`sign_in`);
//! - [`post`]: on every outcome of the job, save whatever changed since.
//!
//! They talk to the store only through [`crate::store::Store`], to Codex only through
//! [`crate::codex`]. What both need (outputs, reading the refreshed file, cleaning up) is
//! here; what they tell the user is worded in `wording`.

mod handoff;
pub mod main;
pub mod post;
mod sign_in;
#[cfg(test)]
mod tests;
mod wording;

use anyhow::Context as _;

use crate::auth_file::{Account, AuthFile};
use crate::cancel::Cancellation;
use crate::codex;
use crate::codex_home::{CodexHome, OnDisk};
use crate::config::ActionConfig;
use crate::context;
use crate::failure::Failure;
use crate::store::{Loaded, Place, Saved, Store};
use crate::workflow::{fence, Workflow};
use handoff::Handoff;
pub use wording::{copy_not_written, copy_rows, saved_where, summary};
use wording::{not_saved, reseed_hint};

/// Which of the action's runs saves a login, for what a failed save means: the main stage
/// after Codex, the post stage at the end of the job, or the main stage of `mode: login`
/// storing a new sign-in (whose loss is only the sign-in's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Restore, Codex, the first save.
    Main,
    /// At the end of the job, on every outcome.
    Post,
    /// `mode: login`'s main stage.
    SignIn,
}

/// Refuses the contexts every mode refuses, before anything reaches the store: events whose
/// code the author of a pull request controls, and public repositories (read with input
/// `github-token` when the event payload does not say).
async fn refuse_unsafe_contexts(config: &ActionConfig) -> anyhow::Result<()> {
    context::check_event(&config.run).map_err(|e| Failure::new("Unsafe event", e.to_string()))?;
    let api = match context::visibility_needs_api(config) {
        true => Some(context::github_token_client(config)?),
        false => None,
    };
    context::refuse_public_repository(config, api.as_ref()).await
}

/// The login the store holds, or the failure that says why there is none ([`wording`]).
async fn load(config: &ActionConfig, store: &mut dyn Store) -> anyhow::Result<Loaded> {
    store
        .load()
        .await
        .map_err(|not_loaded| wording::not_loaded(config, &store.place(), not_loaded))
}

/// Proves the store can take a login, or fails with what is missing ([`wording`]).
async fn prove_can_save(store: &mut dyn Store) -> anyhow::Result<()> {
    store
        .prove_can_save()
        .await
        .map_err(|cannot| wording::cannot_save(&store.place(), cannot))
}

/// The Codex input `codex-version` names (`None`: none is named, the `codex` on PATH runs),
/// settled after the refusals and before any login is restored ([`codex::install::settle`]),
/// and told in the log ([`wording::settled`]). A Codex that cannot run stops the job here, as
/// does a job cancelled during the fetch ([`wording::not_settled`]). `for_later_steps`
/// (restore mode): the copy is for the job's host steps.
async fn named_codex(
    config: &ActionConfig,
    for_later_steps: bool,
    cancel: &mut Cancellation,
) -> Result<Option<codex::install::Codex>, Failure> {
    let environment = codex::environment(
        &config.environment,
        config
            .credentials
            .as_ref()
            .map(crate::config::Credentials::secret),
    );
    let settled = codex::install::settle(
        &config.codex,
        &config.transport,
        &environment,
        codex::codex_user(&config.workspace),
        for_later_steps,
        cancel.next(),
    )
    .await
    .map_err(|not| wording::not_settled(&config.workflow, not))?;
    Ok(settled.map(|settled| {
        wording::settled(&config.workflow, &settled);
        settled.codex
    }))
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
    .fix(reseed_hint(place))
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
        .fix(reseed_hint(place)),
        OnDisk::Invalid(error) => Failure::new(
            "auth.json is damaged",
            format!(
                "{} is no longer a usable login ({error}), so it was not written back and was \
                 left in place for inspection. The stored login keeps its old value.",
                path.display(),
            ),
        )
        .fix(reseed_hint(place)),
    };
    set_outputs(&config.workflow, false, false)?;
    config
        .workflow
        .summary(&format!("### codex-auth\n\n{}\n", failure.message()))?;
    Err(failure.into())
}

/// Saves `file` in `phase`: where it went, or the failure to report (see [`not_saved`]).
async fn save(
    config: &ActionConfig,
    phase: Phase,
    store: &mut dyn Store,
    file: &AuthFile,
) -> Result<Saved, Failure> {
    store
        .save(file)
        .await
        .map_err(|failed| not_saved(config, phase, &store.place(), failed))
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
