//! The main stage: load the login from the store, refuse unsafe contexts, restore it into
//! CODEX_HOME, run Codex (or, in restore mode, hand the login to later steps), and save the
//! refreshed login right away.
//!
//! Order matters: nothing is printed before the tokens are masked, Codex (which may rotate the
//! refresh token, killing the old one) never runs unless the save can work, and the save comes
//! before anything else that could fail after Codex.

use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;

use super::handoff::Handoff;
use super::{
    contain, read_refreshed, record_saved, refuse_another_account, refuse_unsafe_contexts,
    set_outputs, sign_in, stop_if_cancelled, summary,
};
use crate::cancel::Cancellation;
use crate::codex::schedule::{self, Outlook};
use crate::codex::{self, Commands, Exec, Refresh, RefreshFailure, Sandbox};
use crate::codex_home::CodexHome;
use crate::config::{ActionConfig, Credentials, Mode};
use crate::failure::Failure;
use crate::store::{self, Loaded, Stage};

/// What the main stage does with the restored login (`mode: login` has its own steps, in
/// [`super::sign_in`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Task {
    /// `codex exec` with the prompt.
    Exec,
    /// The app-server refresh.
    Refresh,
    /// The login handed to the job's later steps.
    Restore,
}

/// How long the keep-fresh exchange with the app-server may take.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the main stage.
pub async fn run(config: &ActionConfig) -> anyhow::Result<()> {
    let workflow = &config.workflow;
    // From here on a cancelled job stops between steps, not in the middle of one.
    let mut cancel = Cancellation::watch()?;
    let task = match config.mode {
        Mode::Exec => Task::Exec,
        Mode::Refresh => Task::Refresh,
        Mode::Restore => Task::Restore,
        Mode::Login => return sign_in::run(config, &mut cancel).await,
    };
    // Set before anything can fail (outputs go to a file, not the log); the post stage's
    // outputs never reach the workflow.
    set_outputs(workflow, false, false)?;
    for name in ["commands-run", "commands-failed"] {
        workflow.set_output(name, "0")?;
    }
    let mut store = store::open(config, Stage::Main)?;
    refuse_unsafe_contexts(config, store.as_mut()).await?;
    let Loaded {
        login: stored,
        baseline,
    } = store.load().await?;

    let home = CodexHome::new(&config.codex_home);
    let plan = home
        .plan_restore(workflow, &stored)
        .with_context(|| format!("cannot read {}", home.auth_path().display()))?;
    if plan.uses_stored() {
        store.check_current().await?;
    }
    // Codex may rotate the refresh token, killing the stored one: only when the store is
    // proven to take the new one may it run.
    let outlook = schedule::outlook(
        plan.starting_login(&stored),
        task == Task::Refresh,
        Timestamp::now(),
        config.job_timeout,
    );
    match outlook {
        Outlook::Possible(why) => {
            workflow.info(&format!("Codex may refresh the login in this job: {why}."));
            store.prove_can_save().await?;
        }
        Outlook::NotBefore(at) => workflow.info(&format!(
            "Codex will not refresh the login before {at}, after this job's time limit \
             (input `job-timeout-minutes`): no write check needed."
        )),
    }
    stop_if_cancelled(&mut cancel, "Codex ran").await?;
    let restored = home
        .restore(workflow, &stored, plan)
        .with_context(|| format!("cannot write {}", home.auth_path().display()))?;
    let account = restored.account_id().to_owned();
    let restored = restored.fingerprint();
    // From here on the post stage must look at CODEX_HOME, whatever happens next.
    let mut handoff = Handoff::new(config, home.dir().to_owned(), &account, baseline.clone());
    handoff.save(config, workflow)?;
    if home.ensure_config()? {
        workflow.info("Wrote config.toml pinning cli_auth_credentials_store = \"file\".");
    }

    let environment = codex::environment(
        &config.environment,
        config.credentials.as_ref().map(Credentials::secret),
    );
    if task == Task::Restore {
        return codex::hand_over(
            workflow,
            home.dir(),
            &config.workspace,
            config.runner_workspace.as_deref(),
        );
    }
    let outcome = contain(workflow, async {
        Ok(match task {
            Task::Exec => {
                workflow.info("Running codex exec…");
                let exec = Exec {
                    prompt: &config.prompt,
                    extra_args: &config.codex_args,
                    workspace: &config.workspace,
                    codex_home: home.dir(),
                    temp_dir: &config.temp_dir,
                    workflow,
                };
                exec.run(environment, &mut cancel).await?
            }
            // (Restore returned above.)
            Task::Refresh | Task::Restore => {
                workflow.info("Refreshing the login through codex app-server (no model call)…");
                let refresh = Refresh {
                    workspace: &config.workspace,
                    codex_home: home.dir(),
                    workflow,
                    timeout: REFRESH_TIMEOUT,
                };
                refresh.run(environment).await?
            }
        })
    })
    .await?;

    // Save now, before anything else can fail: outputs of the post stage never reach the
    // workflow, and the rotated token should not live only on this runner a moment longer
    // than needed.
    let file = read_refreshed(config, &home, store.as_ref())?;
    workflow.mask_login(&file)?;
    refuse_another_account(&file, &handoff.account, store.as_ref())?;
    let refreshed = file.fingerprint() != restored;
    let changed = file.fingerprint() != baseline;
    let saved = if changed {
        match store.save(&file, Stage::Main).await {
            Ok(saved) => {
                record_saved(config, &mut handoff, &file);
                Some(saved)
            }
            Err(failure) => {
                workflow.error(failure.title, &failure.message);
                None
            }
        }
    } else {
        workflow.info(&format!(
            "The tokens did not change: nothing written to {}.",
            store.describe()
        ));
        None
    };
    let written = saved.is_some();
    workflow.set_output("exit-code", &outcome.exit_code.to_string())?;
    workflow.set_output("final-message", &outcome.final_message)?;
    set_outputs(workflow, refreshed, written)?;
    let where_ = match (changed, &saved) {
        (false, _) => "no: the tokens did not change".to_owned(),
        (true, Some(saved)) => format!("yes, {}", saved.place),
        (true, None) => "no: the write failed; the post stage tries again".to_owned(),
    };
    let mut rows = Vec::new();
    if let Some((sandbox, commands)) = &outcome.commands {
        workflow.set_output("commands-run", &commands.run.to_string())?;
        workflow.set_output("commands-failed", &commands.failed.to_string())?;
        rows.push(("Sandbox", sandbox.name()));
        rows.push((
            "Commands run (failed)",
            format!("{} ({})", commands.run, commands.failed),
        ));
    }
    summary(workflow, &file, refreshed, &where_, &rows)?;

    if outcome.exit_code != 0 && !changed {
        if let Some(failure) = outcome.refresh_failure {
            return Err(Failure::new(
                "Codex login is no longer valid",
                format!(
                    "{} Nothing was written back. {}",
                    describe(failure),
                    store.reseed_hint()
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
        let what = match task {
            Task::Exec => format!(
                "codex exec exited with code {}; see its output above.",
                outcome.exit_code
            ),
            Task::Refresh | Task::Restore => outcome.final_message.clone(),
        };
        return Err(Failure::new("Codex failed", format!("{what}{saved}")).into());
    }
    if let Some((sandbox, commands)) = &outcome.commands {
        if commands.sandbox_failed > 0 {
            return Err(Failure::new(
                "Commands could not run",
                sandbox_failure(sandbox, commands, written),
            )
            .into());
        }
    }
    if changed && !written {
        return Err(Failure::new(
            "Refreshed login not saved yet",
            "the write-back failed (see the error above); the post stage tries again.",
        )
        .into());
    }
    if task == Task::Refresh && !refreshed {
        return Err(Failure::new(
            "Login not refreshed",
            "Codex reported the account but did not rotate the tokens, so the keep-fresh run \
             kept nothing fresh. Check Codex's output above; run it again later.",
        )
        .into());
    }
    Ok(())
}

/// Why a task's commands could not run, and what to change.
fn sandbox_failure(sandbox: &Sandbox, commands: &Commands, written: bool) -> String {
    let what = format!(
        "{} of the {} commands Codex ran failed because its sandbox could not start ({}), so \
         the task did not do what it was asked, although codex exec exited 0.",
        commands.sandbox_failed,
        commands.run,
        commands.sandbox_error.as_deref().unwrap_or("bwrap failed")
    );
    let fix = match sandbox {
        Sandbox::Chosen(arg, _) => format!(
            " The sandbox was chosen in input `codex-args` (`{arg}`), and Docker's default \
             seccomp profile, which GitHub's runner gives container actions, refuses the user \
             namespaces it needs. Remove it from `codex-args`: codex-auth then runs the \
             commands in its container without Codex's sandbox (see \"Sandbox\" in the \
             README). Or run Codex in a later step on the host, with `mode: restore`."
        ),
        Sandbox::Unavailable(_) => " codex-auth is not running in a container, so it does not \
             turn Codex's sandbox off: allow unprivileged user namespaces on this machine \
             (`sysctl kernel.unprivileged_userns_clone=1`; on Ubuntu 24.04 also \
             `kernel.apparmor_restrict_unprivileged_userns=0`), or pass `--sandbox \
             danger-full-access` in `codex-args` if the machine itself is the isolation."
            .to_owned(),
        Sandbox::Codex | Sandbox::FullAccess(_) => " Codex's sandbox started when codex-auth \
             tried it, but not for these commands: check the commands' output above."
            .to_owned(),
    };
    let saved = if written {
        " The refreshed login was written back first."
    } else {
        ""
    };
    format!("{what}{fix}{saved}")
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
