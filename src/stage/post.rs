//! The post stage: runs on every outcome of the job (`post-if: always()`) and saves whatever
//! changed since the store last saved: a main stage that was cancelled or failed to save,
//! later steps of the job that ran Codex themselves. Then it removes auth.json unless input
//! `keep` says otherwise.
//!
//! The main stage saves as soon as Codex exits, so that its `persisted` output is real (GitHub
//! Actions drops outputs set by post steps) and the rotated token spends as little time as
//! possible only on disk.
//!
//! It holds the write token and runs after steps that may have run Codex, so it trusts
//! nothing they could set (see [`super::handoff`]): where the login is, where the API is, the
//! CA and proxy settings come from the main stage's handoff, and only a login of the account
//! the main stage restored is stored.

use super::handoff::{self, Handoff, Received};
use super::{
    clean_up, copy_not_written, copy_rows, read_refreshed, refuse_another_account, save,
    saved_where, summary, Phase,
};
use crate::auth_file::{Account, AuthFile};
use crate::codex::install::remove_fetched;
use crate::codex_home::CodexHome;
use crate::config::{ActionConfig, ConfigError, Mode};
use crate::failure::Failure;
use crate::store::{self, Store};
use crate::workflow::print_line;

/// Runs the post stage.
pub async fn run(config: ActionConfig) -> anyhow::Result<()> {
    let fetched = config
        .codex
        .cache_is_temp
        .then(|| config.codex.cache_root.clone());
    let temp_dir = config.temp_dir.clone();
    let result = run_with(config, |config| Ok(store::open(config, None, true))).await;
    crate::codex::remove_trust_bundles(&temp_dir);
    // Every main stage of the job has run: no step needs a Codex fetched into RUNNER_TEMP any
    // more, and the runner, which empties RUNNER_TEMP, cannot remove what root made.
    if let Some(dir) = fetched {
        remove_fetched(&dir);
    }
    result
}

/// What the post stage says when the main stage restored no login.
const NOTHING_RESTORED: &str =
    "The main stage stopped before restoring auth.json: nothing to write back.";

/// The `GITHUB_STATE` names the main stage saves: its handoff as soon as it restored a login,
/// a write probe's name before making the probe, a rescue's fingerprint. With none of them,
/// the main stage stopped before restoring anything.
pub const MAIN_STATE: &[&str] = &[
    super::handoff::HANDOFF,
    super::handoff::HANDOFF_MAC,
    crate::store::secret::state::PROBE,
    crate::store::rescue::RESCUED,
];

/// The post stage when its configuration cannot be read (`error`). When the main stage saved
/// no state, it restored no login (it stopped on this same error, which its annotation already
/// showed, or on another before restoring): there is nothing to write back, said in one plain
/// line, and the stage succeeds, as it would with a configuration ([`Received::None`]). When
/// it did, a rotated login or a probe secret may be left unsaved: the error stands.
pub fn unconfigured(error: ConfigError, main_saved_state: bool) -> Result<(), Failure> {
    if !main_saved_state {
        print_line(NOTHING_RESTORED);
        return Ok(());
    }
    Err(Failure::from(error).fix(
        "The main stage restored a login (or made a write probe), and the post stage cannot \
         read its configuration: nothing that changed since the main stage stored the login \
         was written back. Fix what this names (a step between the stages may have changed it \
         through GITHUB_ENV); if the next run finds the stored login no longer valid, reseed \
         it.",
    ))
}

/// The post stage with `open` opening the store (once the handoff is applied).
pub(crate) async fn run_with(
    mut config: ActionConfig,
    open: impl for<'c> FnOnce(&'c ActionConfig) -> anyhow::Result<Box<dyn Store + 'c>>,
) -> anyhow::Result<()> {
    if config.access_token.is_some() {
        config
            .workflow
            .info("This job ran on a Codex access token: nothing to write back.");
        return Ok(());
    }
    let received = Handoff::receive(&config);
    // A job on an access-only copy saves nothing: a copy never rotates. The verified handoff
    // says so; without one, input `auth-json` does (a keeper's handoff always verifies).
    let copy_home = match &received {
        Received::Verified(handoff) => handoff.access_copy.then(|| handoff.codex_home.clone()),
        // The main stage restored nothing: nothing of this job's to remove either.
        Received::None => None,
        Received::Unverified => store::access::given(&config).then(|| config.codex_home.clone()),
    };
    if let Some(home) = copy_home {
        config
            .workflow
            .info("This job ran on an access-only copy: nothing to write back.");
        return clean_up(&config, &CodexHome::new(&home));
    }
    let handoff = settle(&mut config, received)?;
    super::main::mask_proxy_passwords(&config);
    if let Some(problem) = &config.network_problem {
        // Not expected: the main stage refused such a value, and a changed one was dropped.
        config.workflow.warning(
            "Proxy variable not used",
            &format!("{problem}. The post stage sends without a proxy."),
        );
    }
    let config = &config;
    let mut store = open(config)?;
    let result = save_changes(config, store.as_mut(), handoff).await;
    store.close().await;
    result
}

/// Saves the login if it changed since it was last stored, and removes auth.json (input
/// `keep`). What the main stage's checks left behind the store removes when it closes.
async fn save_changes(
    config: &ActionConfig,
    store: &mut dyn Store,
    handoff: Option<Expected>,
) -> anyhow::Result<()> {
    let workflow = &config.workflow;
    if config.mode == Mode::Login {
        workflow.info("`mode: login` stored the new login in the main stage: nothing to do here.");
        return Ok(());
    }
    let Some(Expected { baseline, account }) = handoff else {
        workflow.info(NOTHING_RESTORED);
        return Ok(());
    };
    let home = CodexHome::new(&config.codex_home);
    let place = store.place();
    let file = read_refreshed(config, &home, &place)?;
    workflow.mask_login(&file)?;
    refuse_another_account(&file, &account, &place)?;

    if baseline.as_deref() == Some(file.fingerprint().as_str()) {
        workflow.info("The tokens did not change since they were last stored: nothing to write.");
        return clean_up(config, &home);
    }
    let saved = save(config, Phase::Post, store, &file).await;
    let (where_, rows) = match &saved {
        Ok(saved) => (
            format!("yes, {}", saved_where(saved)),
            copy_rows(saved, &file),
        ),
        Err(_) => (
            "no: the write failed (see the error)".to_owned(),
            Vec::new(),
        ),
    };
    summary(workflow, &file, true, &where_, &rows)?;
    let saved = saved?;
    clean_up(config, &home)?;
    match copy_not_written(&saved) {
        Some(failure) => Err(failure.into()),
        None => Ok(()),
    }
}

/// What the post stage expects of the login it finds, from the main stage's handoff.
struct Expected {
    /// The fingerprint of what the store holds; `None` when unknown (then any valid login of
    /// the account is saved).
    baseline: Option<String>,
    /// The account whose login may be saved, its ids digested.
    account: Account,
}

/// Applies the main stage's handoff to the configuration before anything talks to GitHub:
/// its CODEX_HOME and API URL, and only the CA and proxy variables it saw. `None` when the
/// main stage restored nothing.
fn settle(config: &mut ActionConfig, received: Received) -> anyhow::Result<Option<Expected>> {
    let workflow = config.workflow.clone();
    let present = handoff::watched(&config.environment);
    match received {
        Received::None => Ok(None),
        Received::Verified(handoff) => {
            for (name, value) in &present {
                if handoff.watched.get(name) != Some(value) {
                    drop_variable(config, name, "a step after the main stage set it");
                }
            }
            load_trust(config, &handoff.trust);
            if handoff.target != handoff::target_digest(config) {
                return Err(Failure::new(
                    "Target changed after the main stage",
                    "the repository or the secret the post stage would write to is not the one \
                     the main stage wrote to: a step after it changed GITHUB_REPOSITORY or the \
                     inputs through GITHUB_ENV. Nothing was written. Look for a step that \
                     writes these variables to GITHUB_ENV.",
                )
                .into());
            }
            if handoff.api_url != config.api_url {
                workflow.warning(
                    "GITHUB_API_URL changed after the main stage",
                    &format!(
                        "a step after the main stage set GITHUB_API_URL to {}; the post stage \
                         talks to {}, as the main stage did.",
                        config.api_url, handoff.api_url
                    ),
                );
                config.api_url = handoff.api_url.clone();
            }
            if handoff.codex_home != config.codex_home {
                workflow.info(&format!(
                    "Reading the login from {}, where the main stage restored it (CODEX_HOME \
                     here is {}).",
                    handoff.codex_home.display(),
                    config.codex_home.display()
                ));
                config.codex_home = handoff.codex_home.clone();
            }
            Ok(Some(Expected {
                baseline: Some(handoff.baseline),
                account: handoff.account,
            }))
        }
        Received::Unverified => {
            for name in present.keys() {
                drop_variable(config, name, "the main stage's state did not verify");
            }
            // Toward writing, never toward skipping: whatever valid login of the restored
            // account is found is saved, as if nothing had been stored yet.
            let account = config
                .auth_json
                .as_ref()
                .and_then(|seed| AuthFile::decode(seed.expose()).ok())
                .map(|seed| handoff::account_digest(&seed.account()));
            workflow.warning(
                "State of the main stage not verified",
                "GITHUB_STATE held a handoff from the main stage that does not verify with this \
                 job's write credential: a step changed it, or the credential inputs differ \
                 between the stages. The post stage trusts none of it: it reads the login from \
                 CODEX_HOME, saves it if it is valid and of the account in `auth-json`, and \
                 ignores CA and proxy variables.",
            );
            let Some(account) = account else {
                return Err(Failure::new(
                    "Account not known",
                    "the main stage's state did not verify, and input `auth-json` holds no \
                     login to tell which account the job restored, so nothing was written. The \
                     stored login keeps its value; if the job refreshed it, reseed it.",
                )
                .into());
            };
            Ok(Some(Expected {
                baseline: None,
                account,
            }))
        }
    }
}

/// Reads the CA files now that what a later step set is dropped, and trusts only what the main
/// stage trusted (`trusted`: its digests per variable): a file changed since (a step between
/// the stages, Codex among them, could write it) is left out, and so is one that cannot be
/// read any more; the proxy is kept either way, and the post stage goes on (failing would
/// lose a rotated login).
fn load_trust(config: &mut ActionConfig, trusted: &std::collections::BTreeMap<String, String>) {
    let workflow = config.workflow.clone();
    for problem in config.load_trust() {
        workflow.warning(
            "CA variable left out",
            &format!(
                "{problem}. The main stage could read it; the post stage goes on without it, \
                 with its proxy."
            ),
        );
    }
    for (variable, digest) in config.trust.digests() {
        if trusted.get(&variable) != Some(&digest) {
            let trust = config.trust.without(&variable);
            config.set_trust(trust);
            workflow.warning(
                "CA variable left out",
                &format!(
                    "the certificates {variable} names changed after the main stage: a step \
                     between the stages wrote them. The post stage, which holds the write \
                     token, trusts only what the main stage trusted, and goes on without them. \
                     Keep CA files where the job's steps cannot write (not in the workspace)."
                ),
            );
        }
    }
}

/// Removes a CA or proxy variable from this process's environment before any client is made.
fn drop_variable(config: &mut ActionConfig, name: &str, why: &str) {
    // The post stage is single-threaded here: no other thread reads the environment yet.
    std::env::remove_var(name);
    config.forget_variable(name);
    config.workflow.warning(
        "Variable ignored",
        &format!(
            "{name} was ignored: {why}. A CA or proxy variable decides whom the post stage, \
             which holds the write token, trusts; only the values the workflow gave the main \
             stage are kept. Set it in the workflow's `env:` before codex-auth runs."
        ),
    );
}
