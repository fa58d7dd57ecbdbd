//! The main stage: validate the seed, check the write-back can work, restore auth.json into
//! CODEX_HOME, and run Codex.
//!
//! Order matters: nothing is printed before the tokens are masked, and Codex (which may rotate
//! the refresh token, killing the old one) never runs unless the post stage can save the result.

use anyhow::Context as _;

use crate::auth_file::AuthFile;
use crate::codex::{self, Exec, RefreshFailure};
use crate::codex_home::{CodexHome, OnDisk};
use crate::config::ActionConfig;
use crate::failure::{reseed_hint, Failure};
use crate::github::SecretsApi;
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

/// Runs the main stage.
pub async fn run(config: &ActionConfig) -> anyhow::Result<()> {
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

    let token = config.token()?;
    let api = SecretsApi::new(&config.api_url, token, config.retry)
        .context("cannot set up the GitHub API client")?;
    workflow.info(&format!(
        "Checking that the {} can be written…",
        config.target
    ));
    let key = api.public_key(&config.target).await.map_err(|error| {
        Failure::new(
            "Cannot write the secret back",
            format!(
                "{error} Codex was not run: it may rotate the refresh token, and a rotated token \
                 that cannot be saved makes the next run fail with refresh_token_reused."
            ),
        )
    })?;

    let home = CodexHome::new(&config.codex_home);
    restore(workflow, &home, &seed)?;
    // From here on the post stage must look at CODEX_HOME, whatever happens next.
    let baseline = seed.fingerprint();
    workflow.save_state(state::BASELINE, &baseline)?;
    workflow.save_state(state::KEY_ID, &key.key_id)?;
    workflow.save_state(state::KEY, &key.key)?;
    if home.ensure_config()? {
        workflow.info("Wrote config.toml pinning cli_auth_credentials_store = \"file\".");
    }

    let exec = Exec {
        prompt: &config.prompt,
        extra_args: &config.codex_args,
        workspace: &config.workspace,
        codex_home: home.dir(),
        temp_dir: &config.temp_dir,
    };
    workflow.info("Running codex exec…");
    let outcome = exec
        .run(codex::environment(&config.environment, Some(token)))
        .await?;

    let refreshed = match home.read()? {
        OnDisk::Valid(now) => {
            mask(workflow, &now)?;
            now.fingerprint() != baseline
        }
        OnDisk::Missing | OnDisk::Invalid(_) => false,
    };
    workflow.set_output("exit-code", &outcome.exit_code.to_string())?;
    workflow.set_output("final-message", &outcome.final_message)?;
    workflow.set_output("refreshed", bool_str(refreshed))?;
    workflow.set_output("persisted", "false")?;

    if let Some(failure) = outcome.refresh_failure {
        return Err(Failure::new(
            "Codex login is no longer valid",
            format!(
                "{} Nothing will be written back. {}",
                describe(failure),
                reseed_hint(&config.target)
            ),
        )
        .into());
    }
    if outcome.exit_code != 0 {
        return Err(Failure::new(
            "Codex failed",
            format!(
                "codex exec exited with code {}; see its output above. Any refreshed login is \
                 still written back by this action's post stage.",
                outcome.exit_code
            ),
        )
        .into());
    }
    Ok(())
}

/// Writes the seed into CODEX_HOME, unless the home already holds a newer login of the same
/// account (a persistent runner whose file Codex refreshed after the secret was last written).
fn restore(workflow: &Workflow, home: &CodexHome, seed: &AuthFile) -> anyhow::Result<()> {
    let path = home.auth_path();
    let on_disk = home
        .read()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let replaced = match on_disk {
        OnDisk::Valid(disk) => {
            mask(workflow, &disk)?;
            if disk.account_id() == seed.account_id() && disk.last_refresh() > seed.last_refresh() {
                workflow.info(&format!(
                    "Kept {}: it was refreshed at {}, after the login in auth-json ({}).",
                    path.display(),
                    disk.last_refresh(),
                    seed.last_refresh()
                ));
                return Ok(());
            }
            if disk.account_id() == seed.account_id() {
                "an older login of the same account"
            } else {
                "a login of another account"
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
            "an invalid file"
        }
        OnDisk::Missing => "",
    };
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
    Ok(())
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
