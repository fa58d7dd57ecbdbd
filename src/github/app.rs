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

use serde::Deserialize;
use serde_json::json;

use octocrab::models::AppId;
use octocrab::Octocrab;

use super::retry::{backoff, Attempt, Exhausted};
use super::{RetryPolicy, Scope, SecretTarget};
use crate::failure::Failure;
use crate::secret::Secret;
use crate::workflow::Workflow;

/// An installation token and the permissions GitHub granted it.
pub struct InstallationToken {
    /// The token (masked when made).
    pub token: Secret,
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
pub async fn installation_token(
    api_url: &str,
    app_id: u64,
    private_key: &Secret,
    target: &SecretTarget,
    wanted: &Permissions,
    policy: RetryPolicy,
    workflow: &Workflow,
) -> anyhow::Result<InstallationToken> {
    let app = Octocrab::builder()
        .base_uri(api_url)?
        .app_from_rsa_pem(AppId(app_id), private_key.expose())
        .map_err(|_| {
            Failure::new(
                "Invalid app-private-key",
                "input `app-private-key` is not an RSA private key in PEM form. Pass the whole \
                 .pem file GitHub generated for the App (App settings → Private keys → \
                 Generate a private key), line breaks included.",
            )
        })?
        .set_connect_timeout(Some(Duration::from_secs(10)))
        .set_read_timeout(Some(policy.attempt_timeout))
        .build()?;
    let (account, repositories) = match &target.scope {
        Scope::Repository { repository } | Scope::Environment { repository, .. } => {
            let name = repository.split_once('/').map_or("", |(_, name)| name);
            (repository.as_str(), Some(vec![name.to_owned()]))
        }
        Scope::Organization { organization } => (organization.as_str(), None),
    };
    let fail =
        |step: &str, error: octocrab::Error| app_failure(app_id, account, target, step, &error);
    let lookup = match &target.scope {
        Scope::Organization { organization } => format!("/orgs/{organization}/installation"),
        Scope::Repository { repository } | Scope::Environment { repository, .. } => {
            format!("/repos/{repository}/installation")
        }
    };
    let installation: Installation =
        retrying(policy, || async { app.get(&lookup, None::<&()>).await })
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
    let answer: TokenAnswer = retrying(policy, || async { app.post(&route, Some(&request)).await })
        .await
        .map_err(|e| fail("making an installation token", e))?;
    let token = Secret::new(answer.token);
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
pub async fn revoke(api_url: &str, token: &Secret, timeout: Duration) -> Result<(), String> {
    let client = Octocrab::builder()
        .base_uri(api_url)
        .map_err(|e| super::describe_error(&e))?
        .personal_token(token.expose().to_owned())
        .set_connect_timeout(Some(Duration::from_secs(10)))
        .set_read_timeout(Some(timeout))
        .build()
        .map_err(|e| super::describe_error(&e))?;
    let response =
        tokio::time::timeout(timeout, client._delete("/installation/token", None::<&()>))
            .await
            .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
            .map_err(|e| super::describe_error(&e))?;
    match response.status().as_u16() {
        204 => Ok(()),
        status => Err(format!("GitHub answered {status}")),
    }
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

/// Repeats `call` on server errors, transport failures and attempts that took longer than
/// the policy allows, within its bounds.
async fn retrying<T, F, Fut>(policy: RetryPolicy, mut call: F) -> octocrab::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = octocrab::Result<T>>,
{
    let mut bounded = || {
        let attempt = call();
        async move {
            tokio::time::timeout(policy.attempt_timeout, attempt)
                .await
                .unwrap_or_else(|elapsed| {
                    Err(octocrab::Error::Other {
                        source: Box::new(elapsed),
                        backtrace: std::backtrace::Backtrace::capture(),
                    })
                })
        }
    };
    let transient = |error: &octocrab::Error| match error {
        octocrab::Error::GitHub { source, .. } => source.status_code.is_server_error(),
        octocrab::Error::Hyper { .. } | octocrab::Error::Service { .. } => true,
        octocrab::Error::Other { source, .. } => source.is::<tokio::time::error::Elapsed>(),
        _ => false,
    };
    policy
        .run(
            "GitHub App",
            || {
                let attempt = bounded();
                async move {
                    match attempt.await {
                        Ok(value) => Attempt::Done(value),
                        Err(error) if transient(&error) => backoff(Described(error)),
                        Err(error) => Attempt::Fail(error),
                    }
                }
            },
            |exhausted| match exhausted {
                // Only backoff waits here: a wait GitHub asked for never reaches this.
                Exhausted::GaveUp { last, .. } => last.0,
                Exhausted::WaitTooLong { wait } => octocrab::Error::Other {
                    source: format!("GitHub asked to wait {} s", wait.as_secs()).into(),
                    backtrace: std::backtrace::Backtrace::capture(),
                },
            },
        )
        .await
}

/// An octocrab error, shown as the action describes it in the log's retry lines.
struct Described(octocrab::Error);

impl std::fmt::Display for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&super::describe_error(&self.0))
    }
}

fn app_failure(
    app_id: u64,
    account: &str,
    target: &SecretTarget,
    step: &str,
    error: &octocrab::Error,
) -> Failure {
    let Some((status, message)) = (match error {
        octocrab::Error::GitHub { source, .. } => {
            Some((source.status_code.as_u16(), source.message.as_str()))
        }
        _ => None,
    }) else {
        return Failure::new(
            "GitHub App authentication failed",
            format!(
                "{step} for GitHub App {app_id} failed: {}. Check that GITHUB_API_URL reaches \
                 GitHub.",
                super::describe_error(error)
            ),
        );
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
