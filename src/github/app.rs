//! GitHub App installation tokens, made for the target's repository or organization.
//!
//! <https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app-installation>

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use octocrab::models::apps::CreateInstallationAccessToken;
use octocrab::models::AppId;
use octocrab::Octocrab;

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

/// The answer of `POST /app/installations/{id}/access_tokens`, the fields used. (octocrab's
/// model of it lists only some permissions, not the secrets ones.)
#[derive(Deserialize)]
struct TokenAnswer {
    token: String,
    #[serde(default)]
    permissions: BTreeMap<String, String>,
}

/// Looks up the App's installation on the target's repository (or organization) and makes an
/// installation token, limited to that repository when the target is one.
pub async fn installation_token(
    api_url: &str,
    app_id: u64,
    private_key: &Secret,
    target: &SecretTarget,
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
    let installation = retrying(policy, || async {
        match &target.scope {
            Scope::Organization { organization } => {
                app.apps().get_org_installation(organization).await
            }
            Scope::Repository { repository } | Scope::Environment { repository, .. } => {
                let (owner, name) = repository.split_once('/').unwrap_or((repository, ""));
                app.apps().get_repository_installation(owner, name).await
            }
        }
    })
    .await
    .map_err(|e| fail("finding the App's installation", e))?;
    let request = CreateInstallationAccessToken {
        repositories,
        ..Default::default()
    };
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

/// Repeats `call` on server errors, transport failures and attempts that took longer than
/// the policy allows, within its bounds.
async fn retrying<T, F, Fut>(policy: RetryPolicy, mut call: F) -> octocrab::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = octocrab::Result<T>>,
{
    let bounded = || {
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
    policy.retry(transient, bounded).await
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
