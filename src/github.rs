//! The GitHub Actions Secrets API: public keys and secret writes, with GitHub's retry rules.
//!
//! Requests go through octocrab (`_get`/`_put`, which return the raw response) because the
//! retry decisions need the status and the rate-limit headers, and because octocrab's own
//! environment-secret routes do not URL-encode the environment name.
//! Routes: <https://docs.github.com/en/rest/actions/secrets>.
//! Rate limits: <https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api>.

use std::fmt;
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};
use jiff::Timestamp;
use octocrab::Octocrab;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Deserialize;
use serde_json::Value;

use crate::seal::{PublicKey, SealError};
use crate::secret::Secret;

/// Where a secret lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A repository secret.
    Repository {
        /// `owner/name`.
        repository: String,
    },
    /// An environment secret of a repository.
    Environment {
        /// `owner/name`.
        repository: String,
        /// The environment's name, as in the workflow.
        environment: String,
    },
    /// An organization secret.
    Organization {
        /// The organization's login.
        organization: String,
    },
}

/// The secret the refreshed `auth.json` is written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretTarget {
    /// Where it lives.
    pub scope: Scope,
    /// Its name.
    pub name: String,
}

impl SecretTarget {
    fn secrets_route(&self) -> String {
        match &self.scope {
            Scope::Repository { repository } => format!("/repos/{repository}/actions/secrets"),
            Scope::Environment {
                repository,
                environment,
            } => format!(
                "/repos/{repository}/environments/{}/secrets",
                utf8_percent_encode(environment, NON_ALPHANUMERIC)
            ),
            Scope::Organization { organization } => {
                format!("/orgs/{organization}/actions/secrets")
            }
        }
    }

    fn public_key_route(&self) -> String {
        format!("{}/public-key", self.secrets_route())
    }

    fn secret_route(&self) -> String {
        format!("{}/{}", self.secrets_route(), self.name)
    }

    /// The permission a token needs to write this secret.
    pub fn permission_needed(&self) -> &'static str {
        match self.scope {
            Scope::Repository { .. } => {
                "a fine-grained personal access token with the repository permission \
                 \"Secrets: Read and write\" (classic: `repo`), or a GitHub App installation \
                 token with the same permission"
            }
            Scope::Environment { .. } => {
                "a fine-grained personal access token with the repository permission \
                 \"Environments: Read and write\" (classic: `repo`), or a GitHub App \
                 installation token with the same permission"
            }
            Scope::Organization { .. } => {
                "a fine-grained personal access token with the organization permission \
                 \"Secrets: Read and write\" (classic: `admin:org`), or a GitHub App \
                 installation token with the same permission"
            }
        }
    }

    /// The input that names this target's scope, for error messages.
    fn scope_input(&self) -> &'static str {
        match self.scope {
            Scope::Repository { .. } => "the repository (GITHUB_REPOSITORY)",
            Scope::Environment { .. } => "input `environment` or the repository",
            Scope::Organization { .. } => "input `organization`",
        }
    }
}

impl ApiError {
    /// The HTTP status behind the error, when GitHub answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Unauthorized { .. } => Some(401),
            ApiError::Forbidden { .. } => Some(403),
            ApiError::NotFound { .. } => Some(404),
            ApiError::Unexpected { status, .. } => Some(*status),
            ApiError::RateLimited { .. }
            | ApiError::GaveUp { .. }
            | ApiError::BadResponse { .. } => None,
        }
    }
}

impl fmt::Display for SecretTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.scope {
            Scope::Repository { repository } => {
                write!(f, "repository secret {} of {repository}", self.name)
            }
            Scope::Environment {
                repository,
                environment,
            } => write!(
                f,
                "environment secret {} of environment \"{environment}\" in {repository}",
                self.name
            ),
            Scope::Organization { organization } => {
                write!(f, "organization secret {} of {organization}", self.name)
            }
        }
    }
}

/// How long and how often to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// First backoff after a server error; doubled each time.
    pub backoff: Duration,
    /// The longest single wait a rate limit may ask for before we give up.
    pub max_wait: Duration,
    /// Time allowed for one attempt (connect, send, read).
    pub attempt_timeout: Duration,
    /// Time allowed for one request, its retries and waits included.
    pub deadline: Duration,
}

impl RetryPolicy {
    /// The policy bounded by `total`: no single attempt or wait may exceed it.
    pub fn within(self, total: Duration) -> Self {
        Self {
            max_wait: self.max_wait.min(total),
            attempt_timeout: self.attempt_timeout.min(total),
            deadline: total,
            ..self
        }
    }

    /// Repeats `call` while its error is `transient`, backing off exponentially, within
    /// [`Self::attempts`] and [`Self::deadline`]; says so before each new attempt.
    pub async fn retry<T, E, F, Fut>(
        &self,
        transient: impl Fn(&E) -> bool,
        mut call: F,
    ) -> Result<T, E>
    where
        E: fmt::Display,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let started = Instant::now();
        let mut backoff = self.backoff;
        let mut attempt = 1;
        loop {
            match call().await {
                Err(error)
                    if transient(&error)
                        && attempt < self.attempts
                        && started.elapsed() + backoff <= self.deadline =>
                {
                    println!(
                        "{error}; retrying in {:.1} s (attempt {}/{})",
                        backoff.as_secs_f64(),
                        attempt + 1,
                        self.attempts
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            backoff: Duration::from_secs(1),
            max_wait: Duration::from_secs(120),
            attempt_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(300),
        }
    }
}

/// Why an API call failed, with what to do about it. Transient failures are retried before
/// one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401.
    #[error(
        "GitHub rejected the token (401 Bad credentials) while accessing the {target}. Check \
         {credential}: it must be {permission}. The workflow's GITHUB_TOKEN cannot write secrets."
    )]
    Unauthorized {
        /// The secret.
        target: String,
        /// Where the token came from.
        credential: &'static str,
        /// What the token needs.
        permission: &'static str,
    },
    /// 403 that is not a rate limit.
    #[error(
        "{credential} may not access the {target} (403: {message}). It must be {permission}. \
         The workflow's GITHUB_TOKEN cannot write secrets."
    )]
    Forbidden {
        /// The secret.
        target: String,
        /// Where the token came from.
        credential: &'static str,
        /// GitHub's message.
        message: String,
        /// What the token needs.
        permission: &'static str,
    },
    /// 404.
    #[error(
        "GitHub answered 404 Not Found for the {target}: check {scope_input}, and that \
         {credential} is {permission} (GitHub answers 404, not 403, when a token may not see the \
         repository or organization). The workflow's GITHUB_TOKEN cannot write secrets."
    )]
    NotFound {
        /// The secret.
        target: String,
        /// Where the token came from.
        credential: &'static str,
        /// Which input to check.
        scope_input: &'static str,
        /// What the token needs.
        permission: &'static str,
    },
    /// A rate limit asked for a longer wait than allowed.
    #[error(
        "GitHub's rate limit asks to wait {wait_secs} s before accessing the {target}, longer \
         than input `api-timeout` allows ({max_secs} s); space out the jobs that share the \
         token, or raise `api-timeout`."
    )]
    RateLimited {
        /// The secret.
        target: String,
        /// Seconds GitHub asked for.
        wait_secs: u64,
        /// Seconds allowed.
        max_secs: u64,
    },
    /// Still failing after every retry.
    #[error(
        "GitHub kept failing for the {target} ({seconds} s of retries, bounded by input \
         `api-timeout`): {last}. If GitHub is having an outage, re-run the job later; if the \
         address is wrong, check GITHUB_API_URL."
    )]
    GaveUp {
        /// The secret.
        target: String,
        /// How long the retries took.
        seconds: u64,
        /// The last failure.
        last: String,
    },
    /// Another status.
    #[error("GitHub answered {status} for the {target}: {message}")]
    Unexpected {
        /// The secret.
        target: String,
        /// The HTTP status.
        status: u16,
        /// GitHub's message.
        message: String,
    },
    /// A body that is not what the API documents.
    #[error("GitHub's answer for the {target} is not what the API documents: {source}")]
    BadResponse {
        /// The secret.
        target: String,
        /// What was wrong.
        #[source]
        source: BadResponse,
    },
}

/// What was wrong with a response body.
#[derive(Debug, thiserror::Error)]
pub enum BadResponse {
    /// Not the JSON expected.
    #[error("unexpected JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A key that is not a key.
    #[error(transparent)]
    Key(#[from] SealError),
}

impl ApiError {
    /// A response body that is not what the API documents.
    fn bad_response(target: &SecretTarget, source: impl Into<BadResponse>) -> Self {
        ApiError::BadResponse {
            target: target.to_string(),
            source: source.into(),
        }
    }
}

/// What a successful write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// 201: the secret did not exist.
    Created,
    /// 204: an existing secret was replaced.
    Updated,
}

#[derive(Deserialize)]
struct KeyBody {
    key_id: String,
    key: String,
}

#[derive(Deserialize)]
struct OrgSecret {
    visibility: String,
}

#[derive(Deserialize)]
struct SecretMetadata {
    updated_at: Timestamp,
}

#[derive(Deserialize)]
struct WorkflowRun {
    created_at: Timestamp,
    run_started_at: Option<Timestamp>,
    run_attempt: Option<u32>,
}

#[derive(Deserialize)]
struct Repository {
    private: bool,
}

#[derive(Deserialize)]
struct SelectedRepositories {
    total_count: u64,
    repositories: Vec<RepositoryId>,
}

#[derive(Deserialize)]
struct RepositoryId {
    id: u64,
}

/// One attempt's result: what the retry loop acts on.
enum Attempt {
    Done(StatusCode, Vec<u8>),
    Retry { wait: Wait, why: String },
    Fail(ApiError),
}

/// How long to wait before the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// As long as GitHub said (`retry-after`, `x-ratelimit-reset`).
    Told(Duration),
    /// Exponential backoff, but at least this long.
    Backoff { at_least: Duration },
}

/// A client of the Secrets API for one token.
pub struct SecretsApi {
    client: Octocrab,
    policy: RetryPolicy,
    credential: &'static str,
}

impl SecretsApi {
    /// A client for the API at `base_url` (such as `GITHUB_API_URL`), authenticated by `token`.
    pub fn new(base_url: &str, token: &Secret, policy: RetryPolicy) -> anyhow::Result<Self> {
        let client = Octocrab::builder()
            .base_uri(base_url)?
            .personal_token(token.expose().to_owned())
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(policy.attempt_timeout))
            .set_write_timeout(Some(policy.attempt_timeout))
            .build()?;
        Ok(Self {
            client,
            policy,
            credential: "input `token`",
        })
    }

    /// Names where the token came from in error messages (default: input `token`).
    pub fn credential(mut self, described: &'static str) -> Self {
        self.credential = described;
        self
    }

    /// `GET …/secrets/public-key`. Doubles as the preflight: it fails with the same
    /// 401/403/404 as a write would when the token lacks access to the target.
    pub async fn public_key(&self, target: &SecretTarget) -> Result<PublicKey, ApiError> {
        let (_, body) = self
            .send(target, Method::Get, &target.public_key_route(), None)
            .await?;
        let bad = |source: BadResponse| ApiError::bad_response(target, source);
        let key: KeyBody = serde_json::from_slice(&body).map_err(|e| bad(e.into()))?;
        PublicKey::new(key.key_id, key.key).map_err(|e| bad(e.into()))
    }

    /// When the secret was last written (`GET …/secrets/{name}`); `None` when it does not exist.
    pub async fn secret_updated_at(
        &self,
        target: &SecretTarget,
    ) -> Result<Option<Timestamp>, ApiError> {
        match self
            .send(target, Method::Get, &target.secret_route(), None)
            .await
        {
            Ok((_, body)) => serde_json::from_slice::<SecretMetadata>(&body)
                .map(|m| Some(m.updated_at))
                .map_err(|e| ApiError::bad_response(target, e)),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// When this attempt of the workflow run was queued, which is when GitHub resolved its
    /// repository and organization secrets: the run's `created_at`, or for a re-run the
    /// attempt's `run_started_at`. Needs "Actions: Read".
    pub async fn run_queued_at(
        &self,
        target: &SecretTarget,
        repository: &str,
        run_id: u64,
        attempt: u32,
    ) -> Result<Timestamp, ApiError> {
        let route = format!("/repos/{repository}/actions/runs/{run_id}");
        let (_, body) = self.send(target, Method::Get, &route, None).await?;
        let run: WorkflowRun =
            serde_json::from_slice(&body).map_err(|e| ApiError::bad_response(target, e))?;
        Ok(match (attempt, run.run_attempt, run.run_started_at) {
            (a, Some(b), Some(started)) if a > 1 && a == b => started,
            _ => run.created_at,
        })
    }

    /// Whether a repository is private or internal (`GET /repos/{owner}/{repo}`).
    pub async fn repository_is_private(
        &self,
        target: &SecretTarget,
        repository: &str,
    ) -> Result<bool, ApiError> {
        let route = format!("/repos/{repository}");
        let (_, body) = self.send(target, Method::Get, &route, None).await?;
        serde_json::from_slice::<Repository>(&body)
            .map(|r| r.private)
            .map_err(|e| ApiError::bad_response(target, e))
    }

    /// Seals `value` with `key` and writes it. When GitHub rejects the key (422, because the
    /// key rotated since it was read) the key is fetched again once and the write repeated.
    pub async fn write_secret(
        &self,
        target: &SecretTarget,
        value: &Secret,
        key: Option<PublicKey>,
    ) -> Result<WriteOutcome, ApiError> {
        let org_fields = self.org_fields(target).await?;
        let mut key = match key {
            Some(key) => key,
            None => self.public_key(target).await?,
        };
        let mut refetched = false;
        loop {
            let sealed = key
                .seal(value)
                .map_err(|e| ApiError::bad_response(target, e))?;
            let mut body = serde_json::to_value(&sealed).unwrap_or(Value::Null);
            if let (Value::Object(body), Some(fields)) = (&mut body, &org_fields) {
                body.extend(fields.clone());
            }
            match self
                .send(target, Method::Put, &target.secret_route(), Some(&body))
                .await
            {
                Ok((StatusCode::CREATED, _)) => return Ok(WriteOutcome::Created),
                Ok(_) => return Ok(WriteOutcome::Updated),
                Err(ApiError::Unexpected { status: 422, .. }) if !refetched => {
                    println!(
                        "GitHub refused the public key {} (422); fetching the current key and writing again",
                        key.key_id
                    );
                    key = self.public_key(target).await?;
                    refetched = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// An organization secret's PUT must restate its visibility (and its selected
    /// repositories), or the update would change who can read it.
    async fn org_fields(
        &self,
        target: &SecretTarget,
    ) -> Result<Option<serde_json::Map<String, Value>>, ApiError> {
        if !matches!(target.scope, Scope::Organization { .. }) {
            return Ok(None);
        }
        let bad = |e: serde_json::Error| ApiError::bad_response(target, e);
        let mut fields = serde_json::Map::new();
        let visibility = match self
            .send(target, Method::Get, &target.secret_route(), None)
            .await
        {
            Ok((_, body)) => {
                serde_json::from_slice::<OrgSecret>(&body)
                    .map_err(bad)?
                    .visibility
            }
            // A new organization secret: readable by the organization's private repositories,
            // GitHub's own default in its settings page.
            Err(ApiError::NotFound { .. }) => "private".to_owned(),
            Err(e) => return Err(e),
        };
        if visibility == "selected" {
            let mut ids = Vec::new();
            for page in 1u32.. {
                let route = format!(
                    "{}/repositories?per_page=100&page={page}",
                    target.secret_route()
                );
                let (_, body) = self.send(target, Method::Get, &route, None).await?;
                let list: SelectedRepositories = serde_json::from_slice(&body).map_err(bad)?;
                let done = list.repositories.is_empty();
                ids.extend(list.repositories.into_iter().map(|r| Value::from(r.id)));
                if done || ids.len() as u64 >= list.total_count {
                    break;
                }
            }
            fields.insert("selected_repository_ids".into(), Value::Array(ids));
        }
        fields.insert("visibility".into(), Value::String(visibility));
        Ok(Some(fields))
    }

    /// Sends one request, retrying server errors, rate limits and transport failures within
    /// the policy's bounds.
    async fn send(
        &self,
        target: &SecretTarget,
        method: Method,
        route: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Vec<u8>), ApiError> {
        let started = Instant::now();
        let mut backoff = self.policy.backoff;
        let mut last = String::new();
        for attempt in 1..=self.policy.attempts {
            match self.attempt(target, method, route, body).await {
                Attempt::Done(status, body) => return Ok((status, body)),
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry { wait, why } => {
                    // Only a wait GitHub asked for is refused outright; backoff is bounded by
                    // the deadline below.
                    let wait = match wait {
                        Wait::Told(wait) if wait > self.policy.max_wait => {
                            return Err(ApiError::RateLimited {
                                target: target.to_string(),
                                wait_secs: wait.as_secs(),
                                max_secs: self.policy.max_wait.as_secs(),
                            })
                        }
                        Wait::Told(wait) => wait,
                        Wait::Backoff { at_least } => backoff.max(at_least),
                    };
                    last = why;
                    if attempt == self.policy.attempts
                        || started.elapsed() + wait > self.policy.deadline
                    {
                        break;
                    }
                    println!(
                        "{method} {route}: {last}; retrying in {:.1} s (attempt {}/{})",
                        wait.as_secs_f64(),
                        attempt + 1,
                        self.policy.attempts
                    );
                    tokio::time::sleep(wait).await;
                    backoff = backoff.saturating_mul(2);
                }
            }
        }
        Err(ApiError::GaveUp {
            target: target.to_string(),
            seconds: started.elapsed().as_secs(),
            last,
        })
    }

    async fn attempt(
        &self,
        target: &SecretTarget,
        method: Method,
        route: &str,
        body: Option<&Value>,
    ) -> Attempt {
        let request = async {
            let response = match method {
                Method::Get => self.client._get(route).await?,
                Method::Put => self.client._put(route, body).await?,
            };
            let status = response.status();
            let headers = response.headers().clone();
            let body = self.client.body_to_string(response).await?.into_bytes();
            Ok::<_, octocrab::Error>((status, headers, body))
        };
        let (status, headers, body) =
            match tokio::time::timeout(self.policy.attempt_timeout, request).await {
                Err(_) => {
                    return Attempt::Retry {
                        wait: Wait::Backoff {
                            at_least: Duration::ZERO,
                        },
                        why: format!(
                            "no answer within {} s",
                            self.policy.attempt_timeout.as_secs()
                        ),
                    }
                }
                Ok(Err(error)) => {
                    return Attempt::Retry {
                        wait: Wait::Backoff {
                            at_least: Duration::ZERO,
                        },
                        why: format!("request failed: {}", describe_error(&error)),
                    }
                }
                Ok(Ok(answer)) => answer,
            };
        classify(target, self.credential, status, &headers, body)
    }
}

/// An error with its chain of causes.
pub fn describe_error(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Turns a response into success, a retry with its wait, or a permanent error.
fn classify(
    target: &SecretTarget,
    credential: &'static str,
    status: StatusCode,
    headers: &HeaderMap,
    body: Vec<u8>,
) -> Attempt {
    if status.is_success() {
        return Attempt::Done(status, body);
    }
    let message = github_message(&body);
    let rate_limit = rate_limit_wait(status, headers, &message);
    if let Some(wait) = rate_limit {
        return Attempt::Retry {
            wait,
            why: format!("rate limited ({} {message})", status.as_u16()),
        };
    }
    let target_name = target.to_string();
    let permission = target.permission_needed();
    match status.as_u16() {
        401 => Attempt::Fail(ApiError::Unauthorized {
            target: target_name,
            credential,
            permission,
        }),
        403 => Attempt::Fail(ApiError::Forbidden {
            target: target_name,
            credential,
            message,
            permission,
        }),
        404 => Attempt::Fail(ApiError::NotFound {
            target: target_name,
            credential,
            scope_input: target.scope_input(),
            permission,
        }),
        500..=599 => Attempt::Retry {
            wait: Wait::Backoff {
                at_least: Duration::ZERO,
            },
            why: format!("server error {}", status.as_u16()),
        },
        code => Attempt::Fail(ApiError::Unexpected {
            target: target_name,
            status: code,
            message,
        }),
    }
}

/// GitHub's rules: honour `retry-after`; else, with `x-ratelimit-remaining: 0`, wait until
/// `x-ratelimit-reset`; else a secondary rate limit waits at least a minute.
fn rate_limit_wait(status: StatusCode, headers: &HeaderMap, message: &str) -> Option<Wait> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(seconds) = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Wait::Told(Duration::from_secs(seconds)));
    }
    if header("x-ratelimit-remaining") == Some("0") {
        let reset = header("x-ratelimit-reset").and_then(|v| v.trim().parse::<i64>().ok())?;
        let now = Timestamp::now().as_second();
        return Some(Wait::Told(Duration::from_secs(
            reset.saturating_sub(now).max(1) as u64,
        )));
    }
    let secondary = message
        .to_ascii_lowercase()
        .contains("secondary rate limit");
    (status == StatusCode::TOO_MANY_REQUESTS || secondary).then_some(Wait::Backoff {
        at_least: Duration::from_secs(60),
    })
}

fn github_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: String,
    }
    serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.message)
        .unwrap_or_else(|_| "no message".to_owned())
}

#[derive(Debug, Clone, Copy)]
enum Method {
    Get,
    Put,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Put => "PUT",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> SecretTarget {
        SecretTarget {
            scope: Scope::Repository {
                repository: "o/r".into(),
            },
            name: "CODEX_AUTH_JSON".into(),
        }
    }

    #[test]
    fn routes_encode_environment_names() {
        let env = SecretTarget {
            scope: Scope::Environment {
                repository: "o/r".into(),
                environment: "prod east/1".into(),
            },
            name: "S".into(),
        };
        assert_eq!(
            env.public_key_route(),
            "/repos/o/r/environments/prod%20east%2F1/secrets/public-key"
        );
        assert_eq!(
            repo().secret_route(),
            "/repos/o/r/actions/secrets/CODEX_AUTH_JSON"
        );
    }

    #[test]
    fn rate_limits_follow_githubs_rules() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &headers, "Resource not accessible"),
            None
        );
        assert_eq!(
            rate_limit_wait(
                StatusCode::FORBIDDEN,
                &headers,
                "You have exceeded a secondary rate limit"
            ),
            Some(Wait::Backoff {
                at_least: Duration::from_secs(60)
            })
        );
        headers.insert("retry-after", http::HeaderValue::from_static("3"));
        assert_eq!(
            rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &headers, ""),
            Some(Wait::Told(Duration::from_secs(3)))
        );
        assert_eq!(
            rate_limit_wait(StatusCode::INTERNAL_SERVER_ERROR, &headers, ""),
            None
        );
    }
}
