//! GitHub App installation tokens, made for the target's repository or organization, with only
//! the permissions the stage asks for, and revoked when the stage is done with them.
//!
//! <https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app-installation>
//!
//! An installation token is valid for an hour and can do whatever its permissions allow: the
//! App may have been given more than writing this secret (contents, pull requests, …). So the
//! token asks for the stage's needs only (`permissions` in the request; GitHub answers 422
//! when the installation lacks one, so they are first cut down to what the installation has),
//! and [`revoke`] ends it when the stage ends
//! (<https://docs.github.com/en/rest/apps/installations#revoke-an-installation-access-token>).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{github_message, Client, Exhausted, Method, RetryPolicy, Scope, SecretTarget};
use crate::failure::Failure;
use crate::net::Transport;
use crate::redacted::Redacted;
use crate::workflow::Workflow;

/// An installation token and the permissions GitHub granted it.
pub struct InstallationToken {
    /// The token (masked when made).
    pub token: Redacted,
    /// The answer's `permissions`: `secrets` → `write`, …
    pub permissions: BTreeMap<String, String>,
}

/// What a token may do: permission (as the API names it: `secrets`, `actions`, …) → `read` or
/// `write`.
pub type Permissions = BTreeMap<String, String>;

/// `GET …/installation`, the fields used. (octocrab's models list only some permissions, not
/// the secrets ones.)
#[derive(Deserialize)]
struct Installation {
    id: u64,
    #[serde(default)]
    permissions: Permissions,
}

/// The answer of `POST /app/installations/{id}/access_tokens`, the fields used.
#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
    #[serde(default)]
    permissions: BTreeMap<String, String>,
}

/// Looks up the App's installation on the target's repository (or organization) and makes an
/// installation token, limited to that repository when the target is one, with the
/// permissions in `wanted` that the installation has (a `write` it has only as `read` is
/// asked as `read`, so that the answer shows what is missing).
#[allow(clippy::too_many_arguments)]
pub async fn installation_token(
    transport: &Transport,
    api_url: &str,
    app_id: u64,
    private_key: &Redacted,
    target: &SecretTarget,
    wanted: &Permissions,
    policy: RetryPolicy,
    workflow: &Workflow,
) -> anyhow::Result<InstallationToken> {
    let app = Client::for_app(transport, api_url, app_id, private_key, policy).map_err(|_| {
        Failure::new(
            "Invalid app-private-key",
            "input `app-private-key` is not an RSA private key in PEM form. Pass the whole \
             .pem file GitHub generated for the App (App settings → Private keys → \
             Generate a private key), line breaks included.",
        )
    })?;
    let (account, repositories) = match &target.scope {
        Scope::Repository { repository } | Scope::Environment { repository, .. } => {
            let name = repository.split_once('/').map_or("", |(_, name)| name);
            (repository.as_str(), Some(vec![name.to_owned()]))
        }
        Scope::Organization { organization } => (organization.as_str(), None),
    };
    let fail = |step: &str, error: AppError| app_failure(app_id, account, target, step, &error);
    let lookup = match &target.scope {
        Scope::Organization { organization } => format!("/orgs/{organization}/installation"),
        Scope::Repository { repository } | Scope::Environment { repository, .. } => {
            format!("/repos/{repository}/installation")
        }
    };
    let installation: Installation = call(&app, Method::Get, &lookup, None)
        .await
        .map_err(|e| fail("finding the App's installation", e))?;
    let permissions = narrow(wanted, &installation.permissions);
    if permissions.is_empty() {
        return Err(Failure::new(
            "GitHub App authentication failed",
            format!(
                "the installation of GitHub App {app_id} on {account} has none of the \
                 permissions this step needs ({}). Give the App {} and approve the new \
                 permission on its installation (Settings → GitHub Apps → Configure).",
                describe(wanted),
                target.permission_needed()
            ),
        )
        .into());
    }
    let mut request = json!({ "permissions": permissions });
    if let Some(repositories) = repositories {
        request["repositories"] = json!(repositories);
    }
    let route = format!("/app/installations/{}/access_tokens", installation.id);
    let answer: TokenAnswer = call(&app, Method::Post, &route, Some(&request))
        .await
        .map_err(|e| fail("making an installation token", e))?;
    let token = Redacted::new(answer.token);
    workflow.mask(&token);
    workflow.info(&format!(
        "Authenticated as GitHub App {app_id} (installation {} on {account}).",
        installation.id
    ));
    Ok(InstallationToken {
        token,
        permissions: answer.permissions,
    })
}

/// Revokes an installation token (`DELETE /installation/token`, authenticated by the token
/// itself): one attempt, bounded by `timeout`. The error says why, without the token.
pub async fn revoke(
    transport: &Transport,
    api_url: &str,
    token: &Redacted,
    timeout: Duration,
) -> Result<(), String> {
    let once = RetryPolicy {
        attempts: 1,
        ..RetryPolicy::default()
    }
    .within(timeout);
    let client = Client::new(transport, api_url, token, once).map_err(|e| format!("{e:#}"))?;
    let answer = client
        .answer(
            Method::Delete,
            "/installation/token",
            None,
            |exhausted| match exhausted {
                Exhausted::GaveUp { last, .. } => last,
                Exhausted::WaitTooLong { wait } => {
                    format!("GitHub asked to wait {} s", wait.as_secs())
                }
            },
        )
        .await?;
    match answer.status.as_u16() {
        204 => Ok(()),
        status => Err(format!("GitHub answered {status}")),
    }
}

/// Why a call of the App's failed.
enum AppError {
    /// GitHub answered with this status and message.
    Refused(u16, String),
    /// No usable answer: the last transport failure, or an answer that is not the API's.
    NoAnswer(String),
}

/// One call with the App's credentials ([`Client::answer`]: what is transient retried), its
/// answer read as `T`.
async fn call<T: DeserializeOwned>(
    app: &Client,
    method: Method,
    route: &str,
    body: Option<&Value>,
) -> Result<T, AppError> {
    let answer = app
        .answer(method, route, body, |exhausted| match exhausted {
            Exhausted::GaveUp { last, .. } => AppError::NoAnswer(last),
            Exhausted::WaitTooLong { wait } => AppError::NoAnswer(format!(
                "GitHub's rate limit asks to wait {} s",
                wait.as_secs()
            )),
        })
        .await?;
    if !answer.status.is_success() {
        return Err(AppError::Refused(
            answer.status.as_u16(),
            github_message(&answer.body),
        ));
    }
    serde_json::from_slice(&answer.body)
        .map_err(|e| AppError::NoAnswer(format!("unexpected answer: {e}")))
}

/// The permissions of `wanted` that `granted` (the installation's) has, each at most at the
/// installation's level.
fn narrow(wanted: &Permissions, granted: &Permissions) -> Permissions {
    wanted
        .iter()
        .filter_map(|(name, level)| {
            let has = granted.get(name)?;
            let level = match (level.as_str(), has.as_str()) {
                ("write", "read") => "read",
                _ => level.as_str(),
            };
            Some((name.clone(), level.to_owned()))
        })
        .collect()
}

/// `secrets: write, actions: read`.
fn describe(permissions: &Permissions) -> String {
    permissions
        .iter()
        .map(|(name, level)| format!("`{name}: {level}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn app_failure(
    app_id: u64,
    account: &str,
    target: &SecretTarget,
    step: &str,
    error: &AppError,
) -> Failure {
    let (status, message) = match error {
        AppError::Refused(status, message) => (*status, message.as_str()),
        AppError::NoAnswer(why) => {
            return Failure::new(
                "GitHub App authentication failed",
                format!(
                    "{step} for GitHub App {app_id} failed: {why}. Check that GITHUB_API_URL \
                     reaches GitHub (through the proxy the runner's HTTPS_PROXY names, if it \
                     sets one)."
                ),
            )
        }
    };
    let what = match status {
        401 => format!(
            "GitHub did not accept the App's credentials: `app-id` {app_id} and \
             `app-private-key` do not belong together, or that key was deleted. Check the App's \
             settings (General → App ID, Private keys) and update the secrets."
        ),
        404 => format!(
            "GitHub App {app_id} is not installed on {account}. Install it there (App settings → \
             Install App) with {}.",
            target.permission_needed()
        ),
        403 | 422 => format!(
            "the App's installation on {account} may not be given a token for it: {message}. \
             Give the installation access to that repository and {}.",
            target.permission_needed()
        ),
        _ => format!("GitHub answered {status}: {message}."),
    };
    Failure::new(
        "GitHub App authentication failed",
        format!("{step} for GitHub App {app_id} failed ({status}): {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permissions(pairs: &[(&str, &str)]) -> Permissions {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn asks_only_for_what_the_installation_has() {
        let wanted = permissions(&[
            ("secrets", "write"),
            ("actions", "read"),
            ("metadata", "read"),
        ]);
        let installation = permissions(&[
            ("secrets", "write"),
            ("contents", "write"),
            ("metadata", "read"),
        ]);
        assert_eq!(
            narrow(&wanted, &installation),
            permissions(&[("secrets", "write"), ("metadata", "read")])
        );
        // A write it has only as read is asked as read: the answer then shows the shortfall.
        let read_only = permissions(&[("secrets", "read"), ("actions", "write")]);
        assert_eq!(
            narrow(&wanted, &read_only),
            permissions(&[("secrets", "read"), ("actions", "read")])
        );
        assert!(narrow(&wanted, &Permissions::new()).is_empty());
    }
}
