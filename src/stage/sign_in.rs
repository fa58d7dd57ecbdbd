//! The main stage in `mode: login`: seed or reseed the login from the browser, through
//! Codex's own device-code sign-in, with no laptop and no copy-paste.
//!
//! The order: the same unsafe-context refusals and the same write preflight as the other
//! modes, **before** the sign-in starts (a person should not approve a login that cannot be
//! saved); then Codex's sign-in in a private CODEX_HOME; the new login validated like a
//! restored one and checked against input `expected-account`; then stored. Nothing is stored
//! on any other outcome, and the stored login is never touched until the new one is saved.

use std::path::Path;

use super::main::RunCodex;
use super::{
    contain, copy_not_written, copy_rows, prove_can_save, refuse_unsafe_contexts, save,
    saved_where, set_outputs, stop_if_cancelled, wording, Phase, Ran,
};
use crate::auth_file::{Account, AuthFile, Kind};
use crate::cancel::Cancellation;
use crate::codex::{self, Login};
use crate::config::{ActionConfig, Credentials, ExpectedAccount};
use crate::failure::Failure;
use crate::store::{self, Store};

/// Runs the main stage of `mode: login`, with `codex` signing in.
pub(super) async fn run(
    config: &ActionConfig,
    codex: &dyn RunCodex,
    cancel: &mut Cancellation,
) -> anyhow::Result<()> {
    let workflow = &config.workflow;
    set_outputs(workflow, false, false)?;
    workflow.set_output("account", "")?;
    // A login in input `auth-json` is not used, but its tokens are masked all the same; a
    // copy there is refused.
    if let Some(input) = &config.auth_json {
        if let Ok(given) = super::main::decode_seed(config, input)? {
            if given.kind() == Kind::AccessOnly {
                wording::refuse_copy_here(config, true)?;
            }
        }
    }
    wording::warn_of_unused_credentials(config);
    // A new sign-in is never rescued: the next run restores a rescue only over the secret it
    // was rescued from (it stops at a missing secret, and refuses a login of another
    // account), and nothing is lost by not keeping it: the sign-in happened in an empty
    // CODEX_HOME, so the stored login, if any, still works.
    let mut store = store::open(config, None, false);
    let result = run_with(config, store.as_mut(), codex, cancel).await;
    store.close().await;
    result
}

/// The sign-in's steps, with the store open and `codex` signing in.
pub(super) async fn run_with(
    config: &ActionConfig,
    store: &mut dyn Store,
    codex: &dyn RunCodex,
    cancel: &mut Cancellation,
) -> anyhow::Result<()> {
    let workflow = &config.workflow;
    refuse_unsafe_contexts(config).await?;
    codex.prepare(config, false, cancel).await?;
    prove_can_save(store).await?;
    stop_if_cancelled(cancel, "the sign-in started").await?;

    workflow.info(&format!(
        "Signing in anew with Codex's device-code sign-in; the login goes to {}.",
        store.place()
    ));
    let file = codex.sign_in(config, cancel).await?;
    let claims = file.claims();
    let account = format!(
        "{} ({})",
        claims.masked_email(),
        claims.plan.as_deref().unwrap_or("plan unknown")
    );
    workflow.info(&format!("Signed in as {account}."));
    refuse_unexpected(config.expected_account.as_ref(), &file, &account)?;

    let stored = save(config, Phase::SignIn, store, &file).await;
    // The new login is stored first; then a failure to give the command files back fails
    // the step (the runner reads none of them).
    if let Err(custody) = codex.contained() {
        return Err(match stored {
            Ok(_) => custody,
            Err(e) => custody.context(format!("and storing the new login failed: {e:#}")),
        });
    }
    let stored = stored?;
    let saved = saved_where(&stored);
    workflow.set_output("account", &account)?;
    set_outputs(workflow, false, true)?;
    let mut summary = format!(
        "### codex-auth: signed in\n\n| | |\n|---|---|\n| Account | {account} |\n| Stored | \
         yes, {saved} |\n"
    );
    for (name, value) in copy_rows(&stored, &file) {
        summary.push_str(&format!("| {name} | {} |\n", value.replace('|', "\\|")));
    }
    workflow.summary(&summary)?;
    workflow.info(&format!(
        "The new login ({account}) was written {saved}. Jobs that start from now on use it; a \
         job already queued received the old value."
    ));
    match copy_not_written(&stored) {
        Some(failure) => Err(failure.into()),
        None => Ok(()),
    }
}

/// The real Codex's sign-in ([`super::main::RunCodex::sign_in`]): `codex login
/// --device-auth` as `program` ([`Login`]), with Codex's environment and the CA bundle it
/// trusts (removed once the sign-in ended), contained ([`contain`]).
pub(super) async fn device_code(
    config: &ActionConfig,
    program: &Path,
    cancel: &mut Cancellation,
) -> anyhow::Result<Ran<AuthFile>> {
    let mut environment = codex::environment(
        &config.environment,
        config.credentials.as_ref().map(Credentials::secret),
    );
    let _trust = codex::hand_trust(&mut environment, &config.trust, &config.temp_dir)
        .map_err(|e| anyhow::anyhow!("writing the CA bundle for Codex: {e}"))?;
    let login = Login {
        program,
        workspace: &config.workspace,
        workflow: &config.workflow,
        timeout: config.login_timeout,
        workspace_id: match &config.expected_account {
            Some(ExpectedAccount::AccountId(id)) => Some(id),
            _ => None,
        },
    };
    contain(config, login.run(environment, cancel)).await
}

/// Refuses a sign-in of another account than input `expected-account` names: by the email
/// the id token claims, or by the account the tokens claim ([`AuthFile::account`]), never by
/// the plain `tokens.account_id`, which anyone can type. A login whose tokens name two
/// accounts ([`Account::Mixed`]) is of neither, whatever its email: every later job would
/// refuse it. `shown` is how the log names the signed-in account.
fn refuse_unexpected(
    expected: Option<&ExpectedAccount>,
    file: &AuthFile,
    shown: &str,
) -> anyhow::Result<()> {
    if let Account::Mixed { access, id } = file.account() {
        let prefix = |id: &str| id.chars().take(8).collect::<String>();
        return Err(Failure::new(
            "Wrong account",
            format!(
                "the sign-in was approved for {shown}, but the new login's tokens name two \
                 ChatGPT accounts ({}… in the access token, {}… in the id token), so it is of \
                 neither: tokens of two logins were put together, or a claim was forged. \
                 Nothing was stored. Run the workflow again.",
                prefix(&access),
                prefix(&id)
            ),
        )
        .into());
    }
    match expected {
        Some(ExpectedAccount::Email(expected))
            if !file
                .claims()
                .email
                .as_deref()
                .is_some_and(|email| email.eq_ignore_ascii_case(expected)) =>
        {
            Err(refused(shown, "the email in input `expected-account`"))
        }
        Some(ExpectedAccount::AccountId(expected))
            if !Account::Claimed(expected.clone()).admits(&file.account()) =>
        {
            Err(refused(shown, "the account id in input `expected-account`"))
        }
        _ => Ok(()),
    }
}

/// A sign-in of another account than the expected one: nothing is stored.
fn refused(account: &str, expected: &str) -> anyhow::Error {
    Failure::new(
        "Wrong account",
        format!(
            "the sign-in was approved for {account}, which is not {expected}. Nothing was \
             stored. Run the workflow again and sign in to the expected ChatGPT account (sign \
             out of this one in the browser first)."
        ),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::auth_file::tests::{jwt, sample};
    use crate::auth_file::AUTH_CLAIM;

    /// A login whose tokens claim `claimed` (both of them) and whose plain field says `field`.
    fn login(claimed: &str, field: &str) -> AuthFile {
        let auth = json!({"chatgpt_plan_type": "pro", "chatgpt_account_id": claimed});
        let mut login = sample();
        login["tokens"]["access_token"] = jwt(&json!({
            "exp": 1_900_000_000,
            AUTH_CLAIM: auth
        }))
        .into();
        login["tokens"]["id_token"] = jwt(&json!({
            "email": "dev@example.com",
            AUTH_CLAIM: auth
        }))
        .into();
        login["tokens"]["account_id"] = field.into();
        AuthFile::decode(&login.to_string()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_expected_account_id_is_the_one_the_tokens_claim() {
        let expected = ExpectedAccount::AccountId("acc-1".into());
        let check = |file: &AuthFile| refuse_unexpected(Some(&expected), file, "d***@example.com");
        assert!(check(&login("acc-1", "acc-1")).is_ok());
        // Another account's login with the expected id typed into the plain field.
        let refused = check(&login("acc-evil", "acc-1"));
        let message = refused.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(
            message.contains("not the account id in input `expected-account`"),
            "{message}"
        );
        // The claims win over a plain field that disagrees.
        assert!(check(&login("acc-1", "acc-other")).is_ok());
        assert!(refuse_unexpected(None, &login("acc-evil", "acc-1"), "x").is_ok());
    }
}
