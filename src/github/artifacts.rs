//! Finding and downloading artifacts through the REST API, with the workflow's `GITHUB_TOKEN`
//! ("Actions: Read"): `GET /repos/{owner}/{repo}/actions/artifacts?name=…`, then
//! `GET …/artifacts/{id}/zip`, whose 302 points at a signed blob URL that is fetched without
//! the token; and the repository's default branch (`GET /repos/{owner}/{repo}`) when the
//! event payload does not name it.
//! <https://docs.github.com/en/rest/actions/artifacts>

use http::StatusCode;
use jiff::Timestamp;
use serde::Deserialize;

use super::{Answer, Client, Exhausted, Method};
use crate::net::{message, HttpError, Plain};

/// Pages of 100 artifacts looked through at most: the name filter makes one page the norm.
const MAX_PAGES: u32 = 5;

/// An artifact, as the list describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Artifact {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Whether it expired (its blob is gone).
    pub expired: bool,
    /// When it was created.
    pub created_at: Option<Timestamp>,
    /// The run that uploaded it.
    pub workflow_run: Option<WorkflowRun>,
}

/// The run that uploaded an artifact.
#[derive(Debug, Clone, Deserialize)]
pub struct WorkflowRun {
    /// The run's id.
    pub id: Option<u64>,
    /// The repository the run belongs to.
    pub repository_id: Option<u64>,
    /// The repository its head commit came from (a fork's, for a pull request from a fork).
    pub head_repository_id: Option<u64>,
    /// The branch the run ran on.
    pub head_branch: Option<String>,
}

#[derive(Deserialize)]
struct RepositoryBody {
    default_branch: String,
}

#[derive(Deserialize)]
struct Page {
    total_count: u64,
    artifacts: Vec<Artifact>,
}

/// Why finding or downloading failed.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// GitHub refused or failed.
    #[error("{call}: GitHub answered {status}: {message}{hint}")]
    Refused {
        /// Which call.
        call: String,
        /// The HTTP status.
        status: u16,
        /// GitHub's message.
        message: String,
        /// What to do, when known.
        hint: &'static str,
    },
    /// No answer.
    #[error("{call}: {source}")]
    Http {
        /// Which call.
        call: String,
        /// Why.
        source: HttpError,
    },
    /// No answer through octocrab.
    #[error("{call}: request failed: {detail}")]
    Transport {
        /// Which call.
        call: String,
        /// Why.
        detail: String,
    },
    /// An answer that is not what the API documents.
    #[error("{call}: unexpected answer: {detail}")]
    BadAnswer {
        /// Which call.
        call: String,
        /// What was wrong.
        detail: String,
    },
}

/// The REST side of the artifact store for one repository.
pub struct Artifacts {
    client: Client,
    blobs: Plain,
    repository: String,
}

impl Artifacts {
    /// The artifacts of `repository` (`owner/name`), read with `client` (the workflow's
    /// `GITHUB_TOKEN` is enough); blobs are fetched over the same transport, without it.
    pub fn new(client: &Client, repository: &str) -> Self {
        Self {
            blobs: Plain::new(client.transport(), client.policy.attempt_timeout),
            client: client.clone(),
            repository: repository.to_owned(),
        }
    }

    /// The repository's default branch (`GET /repos/{owner}/{repo}`; any token that can read
    /// the repository's artifacts can read this).
    pub async fn default_branch(&self) -> Result<String, RestError> {
        let route = format!("/repos/{}", self.repository);
        let call = format!("reading the default branch of {}", self.repository);
        let Answer { status, body, .. } = self.get(&route, &call).await?;
        if status != StatusCode::OK {
            return Err(refused(call, status, &body));
        }
        serde_json::from_slice::<RepositoryBody>(&body)
            .map(|r| r.default_branch)
            .map_err(|e| RestError::BadAnswer {
                call,
                detail: e.to_string(),
            })
    }

    /// The artifacts named `name` that may hold the login, newest first: not expired, and
    /// uploaded by a run of this repository (`repository_id`) from its own commits (never a
    /// fork's) on `branch`, the default branch, whose workflows only those who can push there
    /// change.
    pub async fn candidates(
        &self,
        name: &str,
        repository_id: u64,
        branch: &str,
    ) -> Result<Vec<Artifact>, RestError> {
        let mut found: Vec<Artifact> = Vec::new();
        let encoded =
            percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
        for page in 1..=MAX_PAGES {
            let route = format!(
                "/repos/{}/actions/artifacts?name={encoded}&per_page=100&page={page}",
                self.repository
            );
            let call = format!("listing the artifacts named {name} of {}", self.repository);
            let Answer { status, body, .. } = self.get(&route, &call).await?;
            if status != StatusCode::OK {
                return Err(refused(call, status, &body));
            }
            let list: Page = serde_json::from_slice(&body).map_err(|e| RestError::BadAnswer {
                call: call.clone(),
                detail: e.to_string(),
            })?;
            let done = list.artifacts.is_empty()
                || (found.len() + list.artifacts.len()) as u64 >= list.total_count;
            found.extend(list.artifacts);
            if done {
                break;
            }
        }
        let mut candidates: Vec<Artifact> = found
            .into_iter()
            .filter(|a| a.name == name && !a.expired)
            .filter(|a| {
                a.workflow_run.as_ref().is_some_and(|run| {
                    run.repository_id == Some(repository_id)
                        && run.head_repository_id == Some(repository_id)
                        && run.head_branch.as_deref() == Some(branch)
                })
            })
            .collect();
        candidates.sort_by_key(|a| std::cmp::Reverse((a.created_at, a.id)));
        Ok(candidates)
    }

    /// Downloads an artifact's zip: the API answers 302 to a signed URL, fetched without the
    /// token, at most `max_bytes` long.
    pub async fn download(
        &self,
        artifact: &Artifact,
        max_bytes: usize,
    ) -> Result<Vec<u8>, RestError> {
        let route = format!(
            "/repos/{}/actions/artifacts/{}/zip",
            self.repository, artifact.id
        );
        let call = format!("downloading artifact {} ({})", artifact.id, artifact.name);
        let Answer {
            status,
            headers,
            body,
        } = self.get(&route, &call).await?;
        let location = headers
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if !status.is_redirection() {
            return Err(refused(call, status, &body));
        }
        let location = location.ok_or_else(|| RestError::BadAnswer {
            call: call.clone(),
            detail: format!("{status} without a Location"),
        })?;
        let blob = self
            .blobs
            .send(http::Method::GET, &location, &[], Vec::new(), max_bytes)
            .await
            .map_err(|source| RestError::Http {
                call: call.clone(),
                source,
            })?;
        if !blob.status.is_success() {
            return Err(RestError::Refused {
                call,
                status: blob.status.as_u16(),
                message: message(&blob.body, "message"),
                hint: "",
            });
        }
        Ok(blob.body)
    }

    /// `GET route` with the token, its body read; what is transient retried
    /// ([`Client::answer`]). Any other answer is the caller's to read.
    async fn get(&self, route: &str, call: &str) -> Result<Answer, RestError> {
        self.client
            .answer(Method::Get, route, None, |exhausted| match exhausted {
                Exhausted::GaveUp { seconds, last } => transport(
                    call,
                    format!(
                        "{last} (still failing after {seconds} s of retries, bounded by input \
                         `api-timeout`)"
                    ),
                ),
                Exhausted::WaitTooLong { wait } => transport(
                    call,
                    format!(
                        "GitHub's rate limit asks to wait {} s, longer than input \
                         `api-timeout` allows",
                        wait.as_secs()
                    ),
                ),
            })
            .await
    }
}

fn transport(call: &str, detail: String) -> RestError {
    RestError::Transport {
        call: call.to_owned(),
        detail,
    }
}

fn refused(call: String, status: StatusCode, body: &[u8]) -> RestError {
    let message = message(body, "message");
    let hint = match status.as_u16() {
        401 => ". Check input `github-token` (default: the workflow's GITHUB_TOKEN).",
        403 | 404 => {
            ". Give the workflow `permissions: actions: read` (the artifact store reads \
             artifacts with GITHUB_TOKEN)."
        }
        410 => ". The artifact expired: raise `retention-days`, or reseed with input `auth-json`.",
        _ => "",
    };
    RestError::Refused {
        call,
        status: status.as_u16(),
        message,
        hint,
    }
}
