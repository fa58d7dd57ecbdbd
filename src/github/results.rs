//! Uploading an artifact from inside the job with the Actions artifact protocol v4, as
//! `@actions/artifact` (actions/toolkit, packages/artifact) does: twirp JSON calls to the
//! results service at `ACTIONS_RESULTS_URL` with the job's `ACTIONS_RUNTIME_TOKEN`,
//! `CreateArtifact` → the zip to the signed blob URL → `FinalizeArtifact` with its size and
//! sha256. Request fields use the proto names (`useProtoFieldName`), as that client sends them.

use http::Method;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::RetryPolicy;
use crate::net::retry::{backoff, Attempt, Exhausted};
use crate::net::{message, shown, HttpError, Plain};
use crate::redacted::Redacted;

const SERVICE: &str = "github.actions.results.api.v1.ArtifactService";
/// The protocol version `@actions/artifact` sends in `CreateArtifact`.
const VERSION: u32 = 7;
/// Twirp answers are small; this bounds a misbehaving server.
const MAX_ANSWER: usize = 1 << 20;

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// `ACTIONS_RUNTIME_TOKEN` is not the runner's JWT with an `Actions.Results` scope.
    #[error(
        "ACTIONS_RUNTIME_TOKEN is missing or is not the runner's token with an Actions.Results \
         scope: the artifact store needs the runner to pass it (it does for container and \
         JavaScript actions on GitHub-hosted and self-hosted runners, not on GitHub Enterprise \
         Server, which has no artifact protocol v4)"
    )]
    RuntimeToken,
    /// A request failed.
    #[error("{call}: {source}")]
    Http {
        /// Which call.
        call: &'static str,
        /// Why.
        source: HttpError,
    },
    /// The service refused.
    #[error("{call}: the artifact service answered {status}: {message}")]
    Refused {
        /// Which call.
        call: &'static str,
        /// The HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// An answer that is not what the protocol says.
    #[error("{call}: unexpected answer from the artifact service: {detail}")]
    BadAnswer {
        /// Which call.
        call: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl ResultsError {
    /// Worth another attempt: a server error, a rate limit, no answer.
    fn is_transient(&self) -> bool {
        match self {
            ResultsError::Http { source, .. } => {
                matches!(
                    source,
                    HttpError::Timeout(_) | HttpError::Stalled(_) | HttpError::Transport(_)
                )
            }
            ResultsError::Refused { status, .. } => *status == 429 || *status >= 500,
            ResultsError::RuntimeToken | ResultsError::BadAnswer { .. } => false,
        }
    }
}

/// The workflow run and job the runtime token is for (its `scp` claim holds
/// `Actions.Results:<run backend id>:<job backend id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendIds {
    /// `workflow_run_backend_id`.
    pub run: String,
    /// `workflow_job_run_backend_id`.
    pub job: String,
}

impl BackendIds {
    /// Reads the ids from the runtime token's claims (not verified: the service does that).
    pub fn from_runtime_token(token: &Redacted) -> Result<Self, ResultsError> {
        let payload = crate::jwt::claims(token.expose()).ok_or(ResultsError::RuntimeToken)?;
        let scopes = payload
            .get("scp")
            .and_then(Value::as_str)
            .ok_or(ResultsError::RuntimeToken)?;
        scopes
            .split(' ')
            .find_map(|scope| {
                let mut parts = scope.split(':');
                match (parts.next(), parts.next(), parts.next(), parts.next()) {
                    (Some("Actions.Results"), Some(run), Some(job), None)
                        if !run.is_empty() && !job.is_empty() =>
                    {
                        Some(Self {
                            run: run.to_owned(),
                            job: job.to_owned(),
                        })
                    }
                    _ => None,
                }
            })
            .ok_or(ResultsError::RuntimeToken)
    }
}

/// The results service of one job.
pub struct Results {
    http: Plain,
    base: String,
    token: Redacted,
    ids: BackendIds,
    policy: RetryPolicy,
}

// Answers in protojson: the proto field names, or the lowerCamelCase JSON names (which the
// official client also accepts).
#[derive(Deserialize)]
struct Created {
    ok: bool,
    #[serde(alias = "signedUploadUrl")]
    signed_upload_url: String,
}

#[derive(Deserialize)]
struct Listed {
    #[serde(default)]
    artifacts: Vec<Listing>,
}

#[derive(Deserialize)]
struct Listing {
    #[serde(alias = "workflowRunBackendId")]
    workflow_run_backend_id: String,
    #[serde(alias = "workflowJobRunBackendId")]
    workflow_job_run_backend_id: String,
    name: String,
    #[serde(default, alias = "databaseId")]
    database_id: Value,
}

#[derive(Deserialize)]
struct Finalized {
    ok: bool,
    /// int64 travels as a string in protojson; accept a number too.
    #[serde(alias = "artifactId")]
    artifact_id: Value,
}

impl Finalized {
    fn id(self) -> Result<u64, ResultsError> {
        match (self.ok, as_u64(&self.artifact_id)) {
            (true, Some(id)) => Ok(id),
            _ => Err(ResultsError::BadAnswer {
                call: "FinalizeArtifact",
                detail: format!("ok {} and artifact_id {}", self.ok, self.artifact_id),
            }),
        }
    }
}

fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

impl Results {
    /// A client for `ACTIONS_RESULTS_URL` (only its origin is used, as the official client
    /// does) with the job's runtime token.
    pub fn new(
        results_url: &str,
        token: Redacted,
        http: Plain,
        policy: RetryPolicy,
    ) -> Result<Self, ResultsError> {
        let ids = BackendIds::from_runtime_token(&token)?;
        let uri: http::Uri = results_url.parse().map_err(|_| ResultsError::BadAnswer {
            call: "ACTIONS_RESULTS_URL",
            detail: format!("\"{}\" is not a URL", shown(results_url)),
        })?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(ResultsError::BadAnswer {
                call: "ACTIONS_RESULTS_URL",
                detail: format!("\"{}\" has no scheme or host", shown(results_url)),
            });
        };
        Ok(Self {
            http,
            base: format!("{scheme}://{authority}"),
            token,
            ids,
            policy,
        })
    }

    /// Uploads `zip` as the artifact `name` of this run, expiring at `expires_at` (the
    /// repository's retention when `None`); returns the artifact's id. Server errors, rate
    /// limits and lost connections are retried with backoff within the policy's deadline.
    pub async fn upload(
        &self,
        name: &str,
        zip: &[u8],
        expires_at: Option<Timestamp>,
    ) -> Result<u64, ResultsError> {
        let mut create = json!({
            "workflow_run_backend_id": self.ids.run,
            "workflow_job_run_backend_id": self.ids.job,
            "name": name,
            "mime_type": "application/zip",
            "version": VERSION,
        });
        if let Some(at) = expires_at {
            create["expires_at"] = json!(at.to_string());
        }
        let created: Created = match self
            .retrying(|| self.twirp("CreateArtifact", &create))
            .await
        {
            // A re-run of the job: this run already holds an artifact of that name, whose
            // login this job restored and has since refreshed. Replace it, as
            // `upload-artifact`'s `overwrite` does; the file stays on disk until the new one
            // is finalized.
            Err(ResultsError::Refused { status: 409, .. }) => {
                crate::workflow::print_line(&format!(
                    "This run already holds an artifact named {name} (a re-run): replacing it."
                ));
                self.delete(name).await?;
                self.retrying(|| self.twirp("CreateArtifact", &create))
                    .await?
            }
            other => other?,
        };
        if !created.ok {
            return Err(ResultsError::BadAnswer {
                call: "CreateArtifact",
                detail: "ok is false".into(),
            });
        }
        self.retrying(|| self.put_blob(&created.signed_upload_url, zip))
            .await?;
        let finalize = json!({
            "workflow_run_backend_id": self.ids.run,
            "workflow_job_run_backend_id": self.ids.job,
            "name": name,
            "size": zip.len().to_string(),
            "hash": format!("sha256:{}", hex::encode(Sha256::digest(zip))),
        });
        let mut first = true;
        let finalize = &finalize;
        let finalized = self
            .retrying(|| {
                let retry = !std::mem::replace(&mut first, false);
                async move {
                    match self.twirp::<Finalized>("FinalizeArtifact", finalize).await {
                        // An earlier attempt went through but its answer was lost.
                        Err(ResultsError::Refused { status: 404, .. }) if retry => {
                            self.finalized_id(name).await
                        }
                        other => other.and_then(|f| f.id()),
                    }
                }
            })
            .await?;
        Ok(finalized)
    }

    async fn put_blob(&self, url: &str, zip: &[u8]) -> Result<(), ResultsError> {
        let call = "uploading to blob storage";
        let put = self
            .http
            .send(
                Method::PUT,
                url,
                &[
                    ("x-ms-blob-type", "BlockBlob".into()),
                    ("content-type", "application/zip".into()),
                ],
                zip.to_vec(),
                MAX_ANSWER,
            )
            .await
            .map_err(|source| ResultsError::Http { call, source })?;
        if !put.status.is_success() {
            return Err(ResultsError::Refused {
                call,
                status: put.status.as_u16(),
                message: message(&put.body, "msg"),
            });
        }
        Ok(())
    }

    /// The id of this run's finalized artifact `name`, when a finalize whose answer was lost
    /// went through.
    async fn finalized_id(&self, name: &str) -> Result<u64, ResultsError> {
        let list = json!({
            "workflow_run_backend_id": self.ids.run,
            "workflow_job_run_backend_id": self.ids.job,
            "name_filter": name,
        });
        let listed: Listed = self.twirp("ListArtifacts", &list).await?;
        listed
            .artifacts
            .iter()
            .filter(|a| a.name == name && a.workflow_job_run_backend_id == self.ids.job)
            .filter_map(|a| as_u64(&a.database_id))
            .max()
            .ok_or(ResultsError::BadAnswer {
                call: "FinalizeArtifact",
                detail: "the artifact was neither finalized nor found".into(),
            })
    }

    /// Repeats `call` on server errors, rate limits and transport failures
    /// ([`RetryPolicy::run`]).
    async fn retrying<T, F, Fut>(&self, mut call: F) -> Result<T, ResultsError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ResultsError>>,
    {
        self.policy
            .run(
                "the artifact service",
                || {
                    let attempt = call();
                    async move {
                        match attempt.await {
                            Ok(value) => Attempt::Done(value),
                            Err(error) if error.is_transient() => backoff(error),
                            Err(error) => Attempt::Fail(error),
                        }
                    }
                },
                |exhausted| match exhausted {
                    Exhausted::GaveUp { last, .. } => last,
                    Exhausted::WaitTooLong { wait } => ResultsError::BadAnswer {
                        call: "the artifact service",
                        detail: format!("asked to wait {} s", wait.as_secs()),
                    },
                },
            )
            .await
    }

    /// Deletes this run's artifact `name` (ListArtifacts for its ids, then DeleteArtifact).
    async fn delete(&self, name: &str) -> Result<(), ResultsError> {
        let list = json!({
            "workflow_run_backend_id": self.ids.run,
            "workflow_job_run_backend_id": self.ids.job,
            "name_filter": name,
        });
        let listed: Listed = self.twirp("ListArtifacts", &list).await?;
        for artifact in listed.artifacts.iter().filter(|a| a.name == name) {
            let delete = json!({
                "workflow_run_backend_id": artifact.workflow_run_backend_id,
                "workflow_job_run_backend_id": artifact.workflow_job_run_backend_id,
                "name": name,
            });
            let _: Value = self.twirp("DeleteArtifact", &delete).await?;
        }
        Ok(())
    }

    async fn twirp<T: serde::de::DeserializeOwned>(
        &self,
        call: &'static str,
        body: &Value,
    ) -> Result<T, ResultsError> {
        let url = format!("{}/twirp/{SERVICE}/{call}", self.base);
        let answer = self
            .http
            .send(
                Method::POST,
                &url,
                &[
                    ("content-type", "application/json".into()),
                    ("authorization", format!("Bearer {}", self.token.expose())),
                ],
                body.to_string().into_bytes(),
                MAX_ANSWER,
            )
            .await
            .map_err(|source| ResultsError::Http { call, source })?;
        if !answer.status.is_success() {
            // Twirp errors: {"code": "...", "msg": "..."}.
            return Err(ResultsError::Refused {
                call,
                status: answer.status.as_u16(),
                message: message(&answer.body, "msg"),
            });
        }
        serde_json::from_slice(&answer.body).map_err(|e| ResultsError::BadAnswer {
            call,
            detail: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    fn token(claims: &Value) -> Redacted {
        Redacted::new(format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        ))
    }

    #[test]
    fn backend_ids_come_from_the_results_scope() {
        let ids = BackendIds::from_runtime_token(&token(&json!({
            "scp": "Actions.ExampleScope Actions.Results:ce7f54c7-61c7:ca395085-040a"
        })));
        assert_eq!(
            ids.ok(),
            Some(BackendIds {
                run: "ce7f54c7-61c7".into(),
                job: "ca395085-040a".into()
            })
        );
        for claims in [
            json!({}),
            json!({"scp": "Actions.ExampleScope"}),
            json!({"scp": "Actions.Results:only-one"}),
            json!({"scp": "Actions.Results:a:b:c"}),
        ] {
            assert!(BackendIds::from_runtime_token(&token(&claims)).is_err());
        }
        assert!(BackendIds::from_runtime_token(&Redacted::new("not a jwt")).is_err());
    }
}
