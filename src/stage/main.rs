//! The main stage: load the login from the store, refuse unsafe contexts, restore it into
//! CODEX_HOME, run Codex (or, in restore mode, hand the login to later steps), and save the
//! refreshed login right away.
//!
//! Order matters: nothing is printed before the tokens are masked, Codex (which may rotate the
//! refresh token, killing the old one) never runs unless the save can work, and the save comes
//! before anything else that could fail after Codex. [`run`] reads as those steps; which
//! failure the user reads is one pure function, [`verdict`].

use std::time::Duration;

use anyhow::Context as _;
use jiff::Timestamp;

use super::handoff::Handoff;
use super::{
    contain, copy_not_written, copy_rows, load, named_codex, prove_can_save, read_refreshed,
    record_saved, refuse_another_account, refuse_unsafe_contexts, reseed_hint, save, saved_where,
    set_outputs, sign_in, stop_if_cancelled, summary, wording, Phase,
};
use crate::auth_file::Kind;
use crate::auth_file::{Account, AuthFile};
use crate::cancel::Cancellation;
use crate::checkout;
use crate::codex::schedule::{self, Outlook};
use crate::codex::{self, Commands, Exec, Outcome, Refresh, RefreshFailure, Request, Sandbox};
use crate::codex_home::{CodexHome, Plan};
use crate::config::{ActionConfig, ConfigError, Credentials, Mode, StoreConfig};
use crate::failure::Failure;
use crate::store::{self, access::AccessCopyStore, Loaded, NotLoaded, Place, Saved, Store};
use crate::workflow::Workflow;

/// What the main stage does with the restored login (`mode: login` has its own steps, in
/// [`super::sign_in`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Task {
    /// `codex exec` with the prompt.
    Exec,
    /// The app-server refresh.
    Refresh,
    /// The login handed to the job's later steps.
    Restore,
}

/// How long the keep-fresh exchange with the app-server may take.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(120);

/// The login in CODEX_HOME, as the main stage restored it.
struct Restored {
    home: CodexHome,
    /// The fingerprint of the restored tokens: Codex refreshed when the file's differ.
    fingerprint: String,
    /// What the post stage needs; its baseline is what the store holds.
    handoff: Handoff,
}

/// What the write-back after Codex did.
struct WriteBack {
    file: AuthFile,
    /// Codex rotated the tokens in this stage.
    refreshed: bool,
    /// The tokens differ from what the store holds.
    changed: bool,
    /// Where they were saved, when they were.
    saved: Option<Saved>,
    /// The login was saved, but the keeper's access-only copy was not (already reported).
    copy_failed: bool,
}

/// Before anything else: the proxy variables can be used, and the CA files the variables name
/// are read (the main stage runs before any step Codex could have touched them).
pub fn connect(config: &mut ActionConfig) -> Result<(), Failure> {
    config.check_network()?;
    match config.load_trust().into_iter().next() {
        Some(problem) => Err(problem.into()),
        None => Ok(()),
    }
}

/// Masks the passwords of the proxy URLs (`HTTPS_PROXY=http://user:password@…`): the runner
/// then hides them wherever a line shows them.
pub(super) fn mask_proxy_passwords(config: &ActionConfig) {
    for password in config.network.proxies.passwords() {
        config
            .workflow
            .mask(&crate::redacted::Redacted::new(password));
    }
}

/// Runs the main stage: restore, run Codex, write back, report, and the verdict.
pub async fn run(config: &ActionConfig) -> anyhow::Result<()> {
    // Masked before anything is printed.
    if let Some(token) = &config.access_token {
        config.workflow.mask(token);
    }
    config.check_keep().map_err(Failure::from)?;
    mask_proxy_passwords(config);
    warn_inputs_not_used(config);
    // From here on a cancelled job stops between steps, not in the middle of one.
    let mut cancel = Cancellation::watch()?;
    if config.mode == Mode::Login {
        return sign_in::run(config, &TheCodex::default(), &mut cancel).await;
    }
    initial_outputs(&config.workflow)?;
    let codex = TheCodex::default();
    if config.access_token.is_some() {
        return on_access_token(config, &codex, &mut cancel).await;
    }
    let mut store = open_store(config)?;
    let result = run_with(config, store.as_mut(), &codex, &mut cancel).await;
    store.close().await;
    result
}

/// The store the main stage loads from, with input `auth-json` as its seed, decoded and its
/// tokens masked before anything else is printed. A seed that is an access-only copy makes
/// this a task job on the copy, refused where a copy cannot serve.
pub(super) fn open_store(config: &ActionConfig) -> anyhow::Result<Box<dyn Store + '_>> {
    let seed = config
        .auth_json
        .as_ref()
        .map(|input| decode_seed(config, input))
        .transpose()?;
    if let Some(Ok(copy)) = &seed {
        if copy.kind() == Kind::AccessOnly {
            wording::refuse_copy_here(config, false)?;
            return Ok(Box::new(AccessCopyStore::new(copy.clone())));
        }
    }
    // The secret store's login is the seed: without a usable one the job stops here, before
    // anything is fetched or asked (an artifact may still hold a login).
    if let StoreConfig::Secret { .. } = config.store {
        let place = Place::Secret(config.target.clone());
        match &seed {
            None => return Err(wording::not_loaded(config, &place, NotLoaded::Nothing)),
            Some(Err(why)) => {
                let why = NotLoaded::InvalidSeed(why.clone());
                return Err(wording::not_loaded(config, &place, why));
            }
            Some(Ok(_)) => {}
        }
    }
    wording::warn_of_unused_credentials(config);
    Ok(store::open(config, seed, true))
}

/// Decodes input `auth-json` and masks its tokens (and the input itself) before anything else
/// is printed: the login, or why it is none.
pub(super) fn decode_seed(
    config: &ActionConfig,
    input: &crate::redacted::Redacted,
) -> anyhow::Result<Result<AuthFile, String>> {
    let workflow = &config.workflow;
    let seed = match AuthFile::decode(input.expose()) {
        Ok(seed) => seed,
        Err(error) => return Ok(Err(error.to_string())),
    };
    workflow.mask_login(&seed)?;
    if !input.expose().contains('\n') {
        workflow.mask(input);
    }
    Ok(Ok(seed))
}

/// Warns about inputs this job's mode does not read: a newcomer's `prompt` on the keeper does
/// nothing, and should not seem to.
fn warn_inputs_not_used(config: &ActionConfig) {
    let unused = config.inputs_not_used();
    if unused.is_empty() {
        return;
    }
    let names: Vec<String> = unused.iter().map(|n| format!("`{n}`")).collect();
    let mode = match config.mode {
        Mode::Exec => "exec",
        Mode::Refresh => "refresh",
        Mode::Restore => "restore",
        Mode::Login => "login",
    };
    let (what, verb, it) = match names.len() {
        1 => ("input", "is", "it"),
        _ => ("inputs", "are", "them"),
    };
    config.workflow.warning(
        "Inputs not used in this mode",
        &format!(
            "{what} {} {verb} not read with `mode: {mode}` (the `codex exec` inputs are for \
             `mode: exec`, `expected-account` for `mode: login`): remove {it} from this step, \
             or set the mode {it} belong{s} to.",
            names.join(", "),
            s = if names.len() == 1 { "s" } else { "" },
        ),
    );
}

/// Runs Codex for a task, or for `mode: login`'s sign-in: the real Codex ([`TheCodex`]), or,
/// in the stages' own tests, a stand-in that leaves a login in CODEX_HOME (or signs in) as
/// Codex would.
#[async_trait::async_trait(?Send)]
pub(crate) trait RunCodex {
    /// Runs `task` on the login in `home`; `request` is what `codex exec` is asked
    /// ([`Task::Exec`]).
    async fn run(
        &self,
        config: &ActionConfig,
        task: Task,
        request: Option<&Request>,
        home: &CodexHome,
        cancel: &mut Cancellation,
    ) -> anyhow::Result<Outcome>;

    /// Settles which Codex runs (input `codex-version`), after the refusals and before any
    /// login is restored (or, signing in, before the write checks): a version that cannot be
    /// fetched or verified, or a job cancelled while it is fetched, stops the job with nothing
    /// restored and nothing written. `for_later_steps` (restore mode): the Codex is for the
    /// job's later steps ([`named_codex`]).
    async fn prepare(
        &self,
        _config: &ActionConfig,
        _for_later_steps: bool,
        _cancel: &mut Cancellation,
    ) -> anyhow::Result<()> {
        Ok(())
    }

    /// `mode: login`: Codex's device-code sign-in in a private CODEX_HOME, contained; the new
    /// login, validated like a restored one and masked, or why there is none. Asked once the
    /// store has proven it can save; [`RunCodex::contained`] then says how the command files
    /// fared.
    async fn sign_in(
        &self,
        _config: &ActionConfig,
        _cancel: &mut Cancellation,
    ) -> anyhow::Result<AuthFile> {
        anyhow::bail!("this Codex cannot sign in")
    }

    /// Restore mode: the Codex fetched for the job's later steps, which goes first on their
    /// PATH; `None` when they run their own.
    fn for_later_steps(&self) -> Option<codex::install::Codex> {
        None
    }

    /// Whether the step's command files were put back and given back after the last run
    /// ([`contain`]); asked once what Codex left is saved.
    fn contained(&self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The real Codex, contained ([`contain`]): the one `codex-version` names ([`named_codex`],
/// restore mode: for the later steps), else the `codex` on PATH.
#[derive(Default)]
pub(super) struct TheCodex {
    named: std::cell::RefCell<Option<codex::install::Codex>>,
    /// How the last run's [`contain`] ended for the command files.
    contained: std::cell::RefCell<Option<anyhow::Error>>,
}

#[async_trait::async_trait(?Send)]
impl RunCodex for TheCodex {
    async fn run(
        &self,
        config: &ActionConfig,
        task: Task,
        request: Option<&Request>,
        home: &CodexHome,
        cancel: &mut Cancellation,
    ) -> anyhow::Result<Outcome> {
        let codex = self.named.borrow().clone();
        let program = codex.unwrap_or_else(codex::install::Codex::on_path).program;
        let ran = run_codex(config, &program, task, request, home, cancel).await?;
        *self.contained.borrow_mut() = ran.contained.err();
        ran.result
    }

    async fn prepare(
        &self,
        config: &ActionConfig,
        for_later_steps: bool,
        cancel: &mut Cancellation,
    ) -> anyhow::Result<()> {
        let codex = named_codex(config, for_later_steps, cancel).await?;
        *self.named.borrow_mut() = codex;
        Ok(())
    }

    async fn sign_in(
        &self,
        config: &ActionConfig,
        cancel: &mut Cancellation,
    ) -> anyhow::Result<AuthFile> {
        let codex = self.named.borrow().clone();
        let program = codex.unwrap_or_else(codex::install::Codex::on_path).program;
        let ran = sign_in::device_code(config, &program, cancel).await?;
        *self.contained.borrow_mut() = ran.contained.err();
        ran.result
    }

    fn for_later_steps(&self) -> Option<codex::install::Codex> {
        self.named.borrow().clone()
    }

    fn contained(&self) -> anyhow::Result<()> {
        self.contained.borrow_mut().take().map_or(Ok(()), Err)
    }
}

/// The main stage's steps after the store is open, with `codex` running the task.
pub(crate) async fn run_with(
    config: &ActionConfig,
    store: &mut dyn Store,
    codex: &dyn RunCodex,
    cancel: &mut Cancellation,
) -> anyhow::Result<()> {
    let task = match config.mode {
        Mode::Exec => Task::Exec,
        Mode::Refresh => Task::Refresh,
        Mode::Restore | Mode::Login => Task::Restore,
    };
    // What the inputs name in the workspace is read and checked first: a refusal there
    // touches nothing and calls no API.
    let request = match task {
        Task::Exec => Some(Request::prepare(config)?),
        Task::Refresh | Task::Restore => None,
    };
    refuse_unsafe_contexts(config).await?;
    codex.prepare(config, task == Task::Restore, cancel).await?;
    let mut restored = restore(config, store, task, cancel).await?;
    warn_of_a_persisted_job_token(config, task);
    if task == Task::Restore {
        if store.place() != Place::AccessCopy && config.credentials.is_some() {
            warn_of_a_reachable_write_token(&config.workflow);
        }
        return codex::hand_over(
            &config.workflow,
            restored.home.dir(),
            &config.workspace,
            config.runner_workspace.as_deref(),
            codex.for_later_steps().as_ref(),
        );
    }
    let outcome = codex
        .run(config, task, request.as_ref(), &restored.home, cancel)
        .await?;
    let write_back = write_back(config, store, &mut restored).await;
    // After the save, so that nothing here can stop it.
    let output_file = match task {
        Task::Exec => write_output_file(config, &outcome),
        Task::Refresh | Task::Restore => Ok(()),
    };
    // What Codex left is saved first; then a failure to give the command files back fails
    // the step (the runner reads none of them).
    if let Err(custody) = codex.contained() {
        return Err(match write_back {
            Ok(_) => custody,
            Err(e) => custody.context(format!("and writing the login back failed: {e:#}")),
        });
    }
    let write_back = write_back?;
    report(config, &outcome, &write_back, &store.place())?;
    let verdict = verdict(task, &outcome, &write_back.summary(), &store.place());
    match (verdict, output_file) {
        (Ok(()), Err(refused)) => return Err(refused.into()),
        (Err(mut failure), Err(refused)) => {
            failure.what = format!("{} Also, {refused}.", failure.what.trim_end());
            return Err(failure.into());
        }
        (verdict, Ok(())) => verdict?,
    }
    if write_back.copy_failed {
        return Err(Failure::new(
            "Access-only copy not written",
            "the login was stored, but its access-only copy was not: see the error above.",
        )
        .into());
    }
    Ok(())
}

/// `codex exec` on a Codex access token (input `codex-access-token`): no store is opened and
/// no login restored, since nothing rotates (docs/facts.md, "Codex access tokens"); Codex gets
/// the token as `CODEX_ACCESS_TOKEN` ([`run_codex`]) in a CODEX_HOME with no auth.json, and
/// nothing is written back. The refusals are a login's: the event, a public repository.
async fn on_access_token(
    config: &ActionConfig,
    codex: &dyn RunCodex,
    cancel: &mut Cancellation,
) -> anyhow::Result<()> {
    let workflow = &config.workflow;
    let request = Request::prepare(config)?;
    crate::context::check_event(&config.run)
        .map_err(|e| Failure::new("Unsafe event", e.to_string()))?;
    let client = match crate::context::visibility_needs_api(config) {
        false => None,
        true => Some(crate::context::github_token_client(config)?),
    };
    crate::context::refuse_public_repository(config, client.as_ref()).await?;
    codex.prepare(config, false, cancel).await?;
    let home = CodexHome::new(&config.codex_home);
    if home.ensure_config()? {
        workflow.info("Wrote config.toml pinning cli_auth_credentials_store = \"file\".");
    }
    workflow.info(
        "Running on a Codex access token (input `codex-access-token`): nothing to restore, \
         and nothing is written back.",
    );
    let mut outcome = codex
        .run(config, Task::Exec, Some(&request), &home, cancel)
        .await?;
    let output_file = write_output_file(config, &outcome);
    codex.contained()?;
    workflow.set_output("exit-code", &outcome.exit_code.to_string())?;
    workflow.set_output("final-message", &outcome.final_message)?;
    if let Some((_, commands)) = &outcome.commands {
        workflow.set_output("commands-run", &commands.run.to_string())?;
        workflow.set_output("commands-failed", &commands.failed.to_string())?;
    }
    // Codex refreshes no access token: a failure is Codex's, never a login's to reseed.
    outcome.refresh_failure = None;
    let saving = Saving {
        refreshed: false,
        changed: false,
        written: false,
    };
    verdict(Task::Exec, &outcome, &saving, &Place::AccessCopy)?;
    Ok(output_file?)
}

/// Restore mode on a full login with a write credential: the job's later steps run Codex on
/// the host while the runner holds the write token (or the App's key) for the post stage.
/// There nothing contains Codex: on GitHub's hosted runners the runner's user may `sudo`
/// without a password and is in the `docker` group, so a command Codex runs can read the
/// runner's memory, or the post stage's container's environment (`docker inspect`). The way
/// out is the access-only copy, which needs no write token (README, "Many jobs, one login";
/// docs/facts.md, "What the job holds while later steps run").
fn warn_of_a_reachable_write_token(workflow: &Workflow) {
    workflow.warning(
        "Write token reachable from Codex",
        "In `mode: restore` the job's later steps run Codex on the host with the full login, \
         while the job still holds the write token (input `token`, or the GitHub App's key) \
         for the post stage, which writes the refreshed login back. On a GitHub-hosted runner, \
         whose user may `sudo` and is in the `docker` group, a command Codex runs there \
         (unless its sandbox stops it) can read the token from the runner's memory, or from \
         the post stage's container (`docker inspect`): a prompt injection could take it, and \
         with it overwrite any secret it can write, the stored login among them. Give the \
         steps that run Codex the keeper's access-only copy instead (README, \"Many jobs, one \
         login\"): one keeper job (`mode: refresh` with `access-secret-name: \
         CODEX_ACCESS_JSON`) holds the full login and the write token and runs no model; the \
         jobs that run Codex restore the copy (`auth-json: ${{ secrets.CODEX_ACCESS_JSON }}`) \
         with no `token`.",
    );
}

/// Before Codex runs (restore mode: before the later steps can run it), warns when the
/// checkout left the job's token in the workspace's git configuration, where Codex can read
/// it ([`checkout`]). Never the header's value: the check keeps none.
fn warn_of_a_persisted_job_token(config: &ActionConfig, task: Task) {
    let workflow = &config.workflow;
    let here = |path: &std::path::Path| {
        codex::path_here(path, config.runner_workspace.as_deref(), &config.temp_dir)
    };
    let found = match checkout::persisted_token(&config.workspace, &here) {
        Ok(Some(found)) => found,
        Ok(None) => return,
        Err(e) => {
            workflow.info(&format!(
                "Could not check the workspace's git configuration for a persisted job token: \
                 {e}."
            ));
            return;
        }
    };
    let who = match task {
        Task::Restore => "Codex in the job's later steps",
        Task::Exec | Task::Refresh => "Codex",
    };
    workflow.warning(
        "Job token persisted by the checkout",
        &format!(
            "The workspace's git configuration persists a credential: {found} holds an \
             `http.<url>.extraheader`, where actions/checkout leaves the job's token with \
             `persist-credentials: true`, its default. {who} can read it and use the job's \
             GITHUB_TOKEN (or the token the checkout was given), with every permission it \
             has. Set `persist-credentials: false` on actions/checkout; a step that pushes can \
             pass the token itself."
        ),
    );
}

/// Outputs are set before anything can fail (they go to a file, not the log); the post
/// stage's outputs never reach the workflow.
fn initial_outputs(workflow: &Workflow) -> anyhow::Result<()> {
    set_outputs(workflow, false, false)?;
    for name in ["commands-run", "commands-failed"] {
        workflow.set_output(name, "0")?;
    }
    Ok(())
}

/// Loads the login, checks it is current, proves the store can take a rotation when Codex
/// may refresh, restores it into CODEX_HOME and hands the post stage what it needs.
async fn restore(
    config: &ActionConfig,
    store: &mut dyn Store,
    task: Task,
    cancel: &mut Cancellation,
) -> anyhow::Result<Restored> {
    let workflow = &config.workflow;
    let Loaded {
        login: stored,
        baseline,
        freshness,
    } = load(config, store).await?;
    if store.place() == Place::AccessCopy {
        wording::refuse_expiring_copy(config, stored.access_expires_at())?;
    }
    refuse_two_accounts(&stored, &store.place())?;
    let home = CodexHome::new(&config.codex_home);
    let plan = home
        .plan_restore(workflow, &stored)
        .with_context(|| format!("cannot read {}", home.auth_path().display()))?;
    if matches!(plan, Plan::FullLoginThere) {
        return Err(Failure::new(
            "Full login in CODEX_HOME",
            format!(
                "{} holds a full login, and this job runs on an access-only copy: restoring the \
                 copy would replace it, and on a persistent runner that file may hold a \
                 rotation stored nowhere else. It was left as it is.",
                home.auth_path().display()
            ),
        )
        .before_codex()
        .fix(
            "Give task jobs a CODEX_HOME of their own (`env: CODEX_HOME: ...`), apart from the \
             keeper's, or move the file away after storing it.",
        )
        .into());
    }
    wording::refuse_stale(config, &freshness, plan.uses_stored())?;
    // Codex may rotate the refresh token, killing the stored one: only when the store is
    // proven to take the new one may it run.
    let outlook = schedule::outlook(
        plan.starting_login(&stored),
        task == Task::Refresh,
        Timestamp::now(),
        config.job_timeout,
    );
    match outlook {
        // Codex never refreshes an access-only copy (checked above to outlive the job).
        _ if store.place() == Place::AccessCopy => {}
        Outlook::Possible(why) => {
            workflow.info(&format!("Codex may refresh the login in this job: {why}."));
            prove_can_save(store).await?;
        }
        Outlook::NotBefore(at) => workflow.info(&format!(
            "Codex will not refresh the login before {at}, after this job's time limit \
             (input `job-timeout-minutes`): no write check needed."
        )),
    }
    stop_if_cancelled(cancel, "Codex ran").await?;
    let file = home
        .restore(workflow, &stored, plan)
        .with_context(|| format!("cannot write {}", home.auth_path().display()))?;
    // From here on the post stage must look at CODEX_HOME, whatever happens next.
    let handoff = Handoff::new(
        config,
        home.dir().to_owned(),
        &file.account(),
        baseline,
        store.place() == Place::AccessCopy,
    );
    handoff.save(config)?;
    if home.ensure_config()? {
        workflow.info("Wrote config.toml pinning cli_auth_credentials_store = \"file\".");
    }
    Ok(Restored {
        home,
        fingerprint: file.fingerprint(),
        handoff,
    })
}

/// Refuses, before Codex, a stored login whose access and id tokens name different accounts:
/// it is of no account ([`Account::Mixed`]), so nothing Codex left could ever be written back,
/// and a rotation in this job would be lost. No login OpenAI issued is like this; tokens of two
/// logins were put together by hand, or a claim was forged.
fn refuse_two_accounts(stored: &AuthFile, place: &Place) -> anyhow::Result<()> {
    let Account::Mixed { access, id } = stored.account() else {
        return Ok(());
    };
    let prefix = |id: &str| id.chars().take(8).collect::<String>();
    Err(Failure::new(
        "Login of two accounts",
        format!(
            "the stored login's tokens name two ChatGPT accounts ({}… in the access token, {}… \
             in the id token), so it is of neither: its tokens were put together from two \
             logins, or one was forged.",
            prefix(&access),
            prefix(&id)
        ),
    )
    .before_codex()
    .fix(reseed_hint(place))
    .into())
}

/// Input `output-file`: the final message (empty when there was none), written once Codex
/// has exited, whatever its exit code, so that a later step never takes an earlier run's file
/// for this one's. Codex's user can write the workspace, so the file is written beneath it
/// without following a link and never over anything but a regular file
/// ([`crate::untrusted::write_beneath`]); it belongs to the workspace's owner (the runner's
/// user, whose later steps read and overwrite it), mode 0644.
fn write_output_file(config: &ActionConfig, outcome: &Outcome) -> Result<(), ConfigError> {
    let Some(path) = &config.output_file else {
        return Ok(());
    };
    let mut message = outcome.final_message.clone();
    if !message.is_empty() {
        message.push('\n');
    }
    crate::untrusted::write_beneath(
        &config.workspace,
        path,
        message.as_bytes(),
        workspace_owner(&config.workspace),
    )
    .map_err(|e| ConfigError::Invalid {
        input: "output-file",
        title: "Output file not written",
        problem: format!(
            "was not written ({e}): something in the job put a link or another kind of file \
             there, or removed its directory; the login was saved as usual"
        ),
    })?;
    config.workflow.info(&format!(
        "Wrote the final message to {}.",
        config.workspace.join(path).display()
    ));
    Ok(())
}

/// The workspace's owner and group when this process is root (and may give a file away).
#[cfg(unix)]
fn workspace_owner(workspace: &std::path::Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt as _;
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let meta = std::fs::metadata(workspace).ok()?;
    Some((meta.uid(), meta.gid()))
}

/// Windows gives no file away.
#[cfg(not(unix))]
fn workspace_owner(_workspace: &std::path::Path) -> Option<(u32, u32)> {
    None
}

/// Runs Codex, contained ([`contain`]), with an environment that holds no write token.
async fn run_codex(
    config: &ActionConfig,
    program: &std::path::Path,
    task: Task,
    request: Option<&Request>,
    home: &CodexHome,
    cancel: &mut Cancellation,
) -> anyhow::Result<super::Ran<Outcome>> {
    let workflow = &config.workflow;
    let mut environment = codex::environment(
        &config.environment,
        config.credentials.as_ref().map(Credentials::secret),
    );
    // A Codex access token goes to Codex's process alone, as Codex reads it.
    if let Some(token) = &config.access_token {
        environment.push((codex::ACCESS_TOKEN_VARIABLE.into(), token.expose().into()));
    }
    let _trust = codex::hand_trust(&mut environment, &config.trust, &config.temp_dir)
        .context("writing the CA bundle for Codex")?;
    contain(config, async {
        Ok(match task {
            Task::Exec => {
                workflow.info("Running codex exec…");
                let request = request.context("codex exec without its request")?;
                let exec = Exec {
                    program,
                    request,
                    extra_args: &config.codex_args,
                    workspace: &config.workspace,
                    codex_home: home.dir(),
                    temp_dir: &config.temp_dir,
                    workflow,
                };
                exec.run(environment, cancel).await?
            }
            // (Restore never runs Codex here.)
            Task::Refresh | Task::Restore => {
                workflow.info("Refreshing the login through codex app-server (no model call)…");
                let refresh = Refresh {
                    program,
                    workspace: &config.workspace,
                    codex_home: home.dir(),
                    workflow,
                    timeout: REFRESH_TIMEOUT,
                };
                refresh.run(environment, cancel).await?
            }
        })
    })
    .await
}

/// Saves what Codex left right away, before anything else can fail: outputs of the post
/// stage never reach the workflow, and the rotated token should not live only on this runner
/// a moment longer than needed. Only a login of the restored account is saved.
async fn write_back(
    config: &ActionConfig,
    store: &mut dyn Store,
    restored: &mut Restored,
) -> anyhow::Result<WriteBack> {
    let workflow = &config.workflow;
    let place = store.place();
    let file = read_refreshed(config, &restored.home, &place)?;
    workflow.mask_login(&file)?;
    refuse_another_account(&file, &restored.handoff.account, &place)?;
    let refreshed = file.fingerprint() != restored.fingerprint;
    let mut changed = file.fingerprint() != restored.handoff.baseline;
    if place == Place::AccessCopy {
        if changed {
            workflow.warning(
                "auth.json changed on an access-only copy",
                "auth.json is not the copy this job restored: something in the job replaced it \
                 (Codex never writes a copy). Nothing is written back from a task job, so the \
                 stored login is unaffected. Check what the task read.",
            );
        }
        changed = false;
    }
    let saved = if changed {
        match save(config, Phase::Main, store, &file).await {
            Ok(saved) => {
                record_saved(config, &mut restored.handoff, &file);
                if let Some(failure) = copy_not_written(&saved) {
                    workflow.error(failure.title, &failure.message());
                }
                Some(saved)
            }
            Err(failure) => {
                workflow.error(failure.title, &failure.message());
                None
            }
        }
    } else if place == Place::AccessCopy {
        workflow.info("A job on an access-only copy writes nothing back.");
        None
    } else {
        workflow.info(&format!(
            "The tokens did not change: nothing written to {place}."
        ));
        None
    };
    let copy_failed = saved
        .as_ref()
        .is_some_and(|saved| copy_not_written(saved).is_some());
    Ok(WriteBack {
        file,
        refreshed,
        changed,
        saved,
        copy_failed,
    })
}

/// The outputs and the job summary.
fn report(
    config: &ActionConfig,
    outcome: &Outcome,
    write_back: &WriteBack,
    place: &Place,
) -> anyhow::Result<()> {
    let workflow = &config.workflow;
    let WriteBack {
        file,
        refreshed,
        changed,
        saved,
        ..
    } = write_back;
    workflow.set_output("exit-code", &outcome.exit_code.to_string())?;
    workflow.set_output("final-message", &outcome.final_message)?;
    set_outputs(workflow, *refreshed, saved.is_some())?;
    let where_ = match (changed, saved) {
        _ if *place == Place::AccessCopy => {
            "no: a job on an access-only copy writes nothing back".to_owned()
        }
        (false, _) => "no: the tokens did not change".to_owned(),
        (true, Some(saved)) => format!("yes, {}", saved_where(saved)),
        (true, None) => "no: the write failed; the post stage tries again".to_owned(),
    };
    let mut rows = saved
        .as_ref()
        .map(|saved| copy_rows(saved, file))
        .unwrap_or_default();
    if let Some((sandbox, commands)) = &outcome.commands {
        workflow.set_output("commands-run", &commands.run.to_string())?;
        workflow.set_output("commands-failed", &commands.failed.to_string())?;
        rows.push(("Sandbox", sandbox.name()));
        rows.push((
            "Commands run (failed)",
            format!("{} ({})", commands.run, commands.failed),
        ));
    }
    summary(workflow, file, *refreshed, &where_, &rows)
}

/// What the verdict needs of the write-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Saving {
    refreshed: bool,
    changed: bool,
    written: bool,
}

impl WriteBack {
    fn summary(&self) -> Saving {
        Saving {
            refreshed: self.refreshed,
            changed: self.changed,
            written: self.saved.is_some(),
        }
    }
}

/// The stage's verdict from Codex's outcome and the save's, in this order: a login that can
/// never refresh again, Codex's failure, commands that could not run, a rotation not saved
/// yet, a keep-fresh run that kept nothing fresh. Whatever the failure named first, a
/// rotation not saved yet is always said as well (the post stage tries again), and one saved
/// first is said too.
fn verdict(task: Task, outcome: &Outcome, saving: &Saving, place: &Place) -> Result<(), Failure> {
    let save = match (saving.changed, saving.written) {
        (true, true) => " The refreshed login was written back first.",
        (true, false) => {
            " The refreshed login is not saved yet: the write-back failed (see the error above); \
             the post stage tries again."
        }
        (false, _) => "",
    };
    if outcome.exit_code != 0 {
        if let (Some(failure), false) = (outcome.refresh_failure, saving.changed) {
            return Err(Failure::new(
                "Codex login is no longer valid",
                format!("{} Nothing was written back.", describe(failure)),
            )
            .fix(reseed_hint(place)));
        }
        let what = match task {
            Task::Exec => format!(
                "codex exec exited with code {}; see its output above.",
                outcome.exit_code
            ),
            Task::Refresh | Task::Restore => outcome.final_message.clone(),
        };
        return Err(Failure::new("Codex failed", format!("{what}{save}")));
    }
    if let Some((sandbox, commands)) = &outcome.commands {
        if commands.sandbox_failed > 0 {
            return Err(Failure::new(
                "Commands could not run",
                format!("{}{save}", sandbox_failure(sandbox, commands)),
            ));
        }
    }
    if saving.changed && !saving.written {
        return Err(Failure::new(
            "Refreshed login not saved yet",
            "the write-back failed (see the error above); the post stage tries again.",
        ));
    }
    if task == Task::Refresh && !saving.refreshed {
        return Err(Failure::new(
            "Login not refreshed",
            "Codex reported the account but did not rotate the tokens, so the keep-fresh run \
             kept nothing fresh. Check Codex's output above; run it again later.",
        ));
    }
    Ok(())
}

/// Why a task's commands could not run, and what to change.
fn sandbox_failure(sandbox: &Sandbox, commands: &Commands) -> String {
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
             commands in its container without Codex's sandbox (see docs/security.md, \
             \"Sandbox\"). Or run Codex in a later step on the host, with `mode: restore`."
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
    format!("{what}{fix}")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codex::events::Commands;

    fn outcome(exit_code: i32, refresh_failure: bool, sandbox_failed: bool) -> Outcome {
        let commands = Commands {
            run: 2,
            failed: u32::from(sandbox_failed),
            sandbox_failed: u32::from(sandbox_failed),
            sandbox_error: sandbox_failed.then(|| "bwrap: refused".to_owned()),
        };
        Outcome {
            exit_code,
            final_message: "The Codex app-server exchange failed.".to_owned(),
            refresh_failure: refresh_failure.then_some(RefreshFailure::Reused),
            commands: Some((Sandbox::Unavailable("bwrap: refused".into()), commands)),
        }
    }

    /// Every combination of Codex's outcome and the save's: the title the rules give, and a
    /// rotation not saved yet is never left unsaid.
    #[test]
    fn the_verdict_names_the_first_failure_and_never_hides_an_unsaved_rotation() {
        let place = Place::Artifact {
            name: "codex-auth".into(),
        };
        let reseed = reseed_hint(&place);
        for task in [Task::Exec, Task::Refresh] {
            for exit_code in [0, 1] {
                for refresh_failure in [false, true] {
                    for sandbox_failed in [false, true] {
                        for (changed, written) in [(false, false), (true, false), (true, true)] {
                            for refreshed in [false, true] {
                                let saving = Saving {
                                    refreshed,
                                    changed,
                                    written,
                                };
                                let outcome = outcome(exit_code, refresh_failure, sandbox_failed);
                                let got = verdict(task, &outcome, &saving, &place);
                                let case = format!(
                                    "{task:?} exit {exit_code} reuse {refresh_failure} sandbox \
                                     {sandbox_failed} changed {changed} written {written} \
                                     refreshed {refreshed}: {got:?}"
                                );
                                let expected = if exit_code != 0 && refresh_failure && !changed {
                                    Some("Codex login is no longer valid")
                                } else if exit_code != 0 {
                                    Some("Codex failed")
                                } else if sandbox_failed {
                                    Some("Commands could not run")
                                } else if changed && !written {
                                    Some("Refreshed login not saved yet")
                                } else if task == Task::Refresh && !refreshed {
                                    Some("Login not refreshed")
                                } else {
                                    None
                                };
                                assert_eq!(got.as_ref().err().map(|f| f.title), expected, "{case}");
                                if let Err(failure) = &got {
                                    let message = &failure.message();
                                    if changed && !written {
                                        assert!(
                                            message.contains("the post stage tries again"),
                                            "{case}"
                                        );
                                    }
                                    if written && failure.title != "Login not refreshed" {
                                        assert!(message.contains("written back first"), "{case}");
                                    }
                                    if failure.title == "Codex login is no longer valid" {
                                        assert!(message.ends_with(&reseed), "{case}");
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
