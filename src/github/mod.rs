//! The GitHub REST client: one token, GitHub's retry and rate-limit rules, and the endpoints
//! the stores use (secrets, artifacts, the results service, App installation tokens). It
//! knows nothing of Codex or of the action's stages.
//!
//! Requests go through octocrab (`_get`/`_put`, which return the raw response) because the
//! retry decisions need the status and the rate-limit headers, and because octocrab's own
//! environment-secret routes do not URL-encode the environment name.

pub mod app;
pub mod artifacts;
mod error;
pub mod results;
mod secrets;

use std::fmt;
use std::sync::{Arc, Mutex};

use ::http::{HeaderMap, StatusCode};
use jiff::Timestamp;
use octocrab::Octocrab;
use serde::Deserialize;
use serde_json::Value;

pub(crate) use crate::net::retry::Exhausted;
pub use crate::net::retry::RetryPolicy;
use crate::net::retry::{self, backoff, rate_limit_wait};
pub use error::{describe_permissions, ApiError, BadResponse};
pub use secrets::{Scope, SecretTarget, WriteOutcome};

use crate::net::Transport;
use crate::redacted::Redacted;

#[derive(Deserialize)]
struct WorkflowRun {
    created_at: Timestamp,
    run_started_at: Option<Timestamp>,
    run_attempt: Option<u32>,
}

/// A repository, the fields used (`GET /repos/{owner}/{repo}`).
#[derive(Debug, Clone, Deserialize)]
pub struct Repository {
    /// Its id (`GITHUB_REPOSITORY_ID` in its workflows).
    pub id: u64,
    /// Whether it is private or internal.
    pub private: bool,
}

/// What a REST call is about, for its errors: they say which call failed and what to do,
/// without assuming it was about the secret.
#[derive(Debug, Clone)]
pub struct Subject {
    /// What the call reads or writes, with its article ("the repository secret X of o/r").
    pub what: String,
    /// What the token needs for it.
    pub permission: String,
    /// Which input or variable names it.
    pub input: &'static str,
}

impl Subject {
    /// A repository, read with any token that may see it.
    fn repository(repository: &str) -> Self {
        Self {
            what: format!("the repository {repository}"),
            permission: "a token whose repository access includes it (fine-grained: the \
                         repository selected; a GitHub App: installed on it)"
                .to_owned(),
            input: "the repository (GITHUB_REPOSITORY)",
        }
    }

    /// A workflow run of a repository.
    fn workflow_run(repository: &str, run_id: u64) -> Self {
        Self {
            what: format!("workflow run {run_id} of {repository}"),
            permission: "a token with the repository permission \"Actions: Read\" (classic: \
                         `repo`)"
                .to_owned(),
            input: "the repository (GITHUB_REPOSITORY)",
        }
    }
}

/// An answer of the REST API: its status, headers and body.
pub(crate) struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

/// A client of GitHub's REST API for one token: octocrab over the one [`Transport`]. Clones
/// share the connections.
#[derive(Clone)]
pub struct Client {
    client: Octocrab,
    transport: Transport,
    base_url: String,
    policy: RetryPolicy,
    credential: &'static str,
    /// The `X-OAuth-Scopes` header of the last answer that had one: GitHub sends it for
    /// classic personal access tokens and OAuth tokens, listing the token's scopes.
    scopes: Arc<Mutex<Option<String>>>,
}

impl Client {
    /// A client for the API at `base_url` (such as `GITHUB_API_URL`), authenticated by
    /// `token`, sending through `transport`.
    pub fn new(
        transport: &Transport,
        base_url: &str,
        token: &Redacted,
        policy: RetryPolicy,
    ) -> anyhow::Result<Self> {
        let client = Octocrab::builder()
            .base_uri(base_url)?
            .personal_token(token.expose().to_owned())
            .build_with_reqwest(transport.client().clone())?;
        Ok(Self::over(
            client,
            transport,
            base_url,
            policy,
            "input `token`",
        ))
    }

    fn over(
        client: Octocrab,
        transport: &Transport,
        base_url: &str,
        policy: RetryPolicy,
        credential: &'static str,
    ) -> Self {
        Self {
            client,
            transport: transport.clone(),
            base_url: base_url.to_owned(),
            policy,
            credential,
            scopes: Arc::new(Mutex::new(None)),
        }
    }

    /// A client authenticated as GitHub App `app_id` (a JWT signed with `private_key`, made
    /// by octocrab for each request), for the App's own calls; fails when the key is not an
    /// RSA private key in PEM form.
    pub(crate) fn for_app(
        transport: &Transport,
        base_url: &str,
        app_id: u64,
        private_key: &Redacted,
        policy: RetryPolicy,
    ) -> anyhow::Result<Self> {
        let client = Octocrab::builder()
            .base_uri(base_url)?
            .app_from_rsa_pem(octocrab::models::AppId(app_id), private_key.expose())?
            .build_with_reqwest(transport.client().clone())?;
        let credential = "the GitHub App's credentials (inputs `app-id`, `app-private-key`)";
        Ok(Self::over(client, transport, base_url, policy, credential))
    }

    /// The transport this client sends through.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The token's OAuth scopes, when an answer so far listed them (`X-OAuth-Scopes`, which
    /// GitHub sends for classic personal access tokens and OAuth tokens, not for fine-grained
    /// or installation tokens).
    pub fn oauth_scopes(&self) -> Option<Vec<String>> {
        let header = self.scopes.lock().ok()?.clone()?;
        Some(
            header
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// Names where the token came from in error messages (default: input `token`).
    pub fn credential(mut self, described: &'static str) -> Self {
        self.credential = described;
        self
    }

    /// When this attempt of the workflow run was queued, which is when GitHub resolved its
    /// repository and organization secrets: the run's `created_at`, or for a re-run the
    /// attempt's `run_started_at`. Needs "Actions: Read".
    pub async fn run_queued_at(
        &self,
        repository: &str,
        run_id: u64,
        attempt: u32,
    ) -> Result<Timestamp, ApiError> {
        let subject = Subject::workflow_run(repository, run_id);
        let route = format!("/repos/{repository}/actions/runs/{run_id}");
        let (_, body) = self.send(&subject, Method::Get, &route, None).await?;
        let run: WorkflowRun =
            serde_json::from_slice(&body).map_err(|e| ApiError::bad_response(&subject, e))?;
        Ok(match (attempt, run.run_attempt, run.run_started_at) {
            (a, Some(b), Some(started)) if a > 1 && a == b => started,
            _ => run.created_at,
        })
    }

    /// Whether a repository is private or internal (`GET /repos/{owner}/{repo}`).
    pub async fn repository_is_private(&self, repository: &str) -> Result<bool, ApiError> {
        Ok(self.repository(repository).await?.private)
    }

    /// A repository's id and visibility (`GET /repos/{owner}/{repo}`).
    pub async fn repository(&self, repository: &str) -> Result<Repository, ApiError> {
        let subject = Subject::repository(repository);
        let route = format!("/repos/{repository}");
        let (_, body) = self.send(&subject, Method::Get, &route, None).await?;
        serde_json::from_slice::<Repository>(&body).map_err(|e| ApiError::bad_response(&subject, e))
    }

    /// Sends one request, retrying server errors, rate limits and transport failures within
    /// the policy's bounds ([`RetryPolicy::run`]); any other answer but a success is an
    /// [`ApiError`] that says what the token needs.
    async fn send(
        &self,
        subject: &Subject,
        method: Method,
        route: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Vec<u8>), ApiError> {
        let answer = self
            .answer(method, route, body, |exhausted| match exhausted {
                Exhausted::WaitTooLong { wait } => ApiError::RateLimited {
                    target: subject.what.clone(),
                    wait_secs: wait.as_secs(),
                    max_secs: self.policy.max_wait.as_secs(),
                },
                Exhausted::GaveUp { seconds, last } => ApiError::GaveUp {
                    target: subject.what.clone(),
                    seconds,
                    last,
                },
            })
            .await?;
        if answer.status.is_success() {
            return Ok((answer.status, answer.body));
        }
        Err(refusal(subject, self.credential, &answer))
    }

    /// The one request-and-classify of every REST call: sends `method route` with the token,
    /// retries what is transient (a transport failure, no answer in time, a server error, a
    /// rate limit, waiting as GitHub asks) within the policy, and hands back any other answer,
    /// an error status included, for the caller to read. `exhausted` words giving up.
    pub(crate) async fn answer<E>(
        &self,
        method: Method,
        route: &str,
        body: Option<&Value>,
        exhausted: impl FnOnce(Exhausted<String>) -> E,
    ) -> Result<Answer, E> {
        self.policy
            .run(
                &format!("{method} {route}"),
                || self.attempt(method, route, body),
                exhausted,
            )
            .await
    }

    async fn attempt<E>(
        &self,
        method: Method,
        route: &str,
        body: Option<&Value>,
    ) -> retry::Attempt<Answer, String, E> {
        let request = async {
            let response = match method {
                Method::Get => self.client._get(route).await?,
                Method::Put => self.client._put(route, body).await?,
                Method::Post => self.client._post(route, body).await?,
                Method::Delete => self.client._delete(route, None::<&()>).await?,
            };
            let status = response.status();
            let headers = response.headers().clone();
            let body = self.client.body_to_string(response).await?.into_bytes();
            Ok::<_, octocrab::Error>(Answer {
                status,
                headers,
                body,
            })
        };
        let answer = match tokio::time::timeout(self.policy.attempt_timeout, request).await {
            Err(_) => {
                return backoff(format!(
                    "no answer within {} s",
                    self.policy.attempt_timeout.as_secs()
                ))
            }
            Ok(Err(error)) => {
                let why = self.transport.describe(&error, &self.base_url);
                return backoff(format!("request failed: {why}"));
            }
            Ok(Ok(answer)) => answer,
        };
        if let Some(scopes) = answer
            .headers
            .get("x-oauth-scopes")
            .and_then(|v| v.to_str().ok())
        {
            if let Ok(mut seen) = self.scopes.lock() {
                *seen = Some(scopes.to_owned());
            }
        }
        let message = github_message(&answer.body);
        if let Some(wait) = rate_limit_wait(answer.status, &answer.headers, &message) {
            return retry::Attempt::Retry {
                wait,
                why: format!("rate limited ({} {message})", answer.status.as_u16()),
            };
        }
        if answer.status.is_server_error() {
            return backoff(format!("server error {}", answer.status.as_u16()));
        }
        retry::Attempt::Done(answer)
    }
}

/// What an error answer (not a server error or rate limit: those were retried) means for the
/// call, and what the token needs.
fn refusal(subject: &Subject, credential: &'static str, answer: &Answer) -> ApiError {
    let message = github_message(&answer.body);
    let target = subject.what.clone();
    let permission = subject.permission.clone();
    match answer.status.as_u16() {
        401 => ApiError::Unauthorized {
            target,
            credential,
            permission,
        },
        403 => ApiError::Forbidden {
            target,
            credential,
            message,
            permission,
            accepted: answer
                .headers
                .get("x-accepted-github-permissions")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        },
        404 => ApiError::NotFound {
            target,
            credential,
            scope_input: subject.input,
            permission,
        },
        code => ApiError::Unexpected {
            target,
            status: code,
            message,
        },
    }
}

/// GitHub's `message` in an error answer.
pub(crate) fn github_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: String,
    }
    serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.message)
        .unwrap_or_else(|_| "no message".to_owned())
}

/// The methods the REST calls use.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Method {
    /// GET.
    Get,
    /// PUT.
    Put,
    /// POST.
    Post,
    /// DELETE.
    Delete,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        })
    }
}
