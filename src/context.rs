//! Contexts where the action refuses to run: public repositories, pull requests from forks,
//! `workflow_run` triggered by a fork's run, and `pull_request_target`.
//!
//! A ChatGPT login is a personal credential. On a public repository anyone who can get a
//! workflow to run with the secret can use it; `pull_request_target` runs with secrets in the
//! context of a pull request whose code the attacker controls (GitHub Security Lab, "Keeping
//! your GitHub Actions and workflows secure: Preventing pwn requests").

use serde_json::Value;

use crate::config::{ActionConfig, RunContext};
use crate::failure::Failure;
use crate::github::Client;

/// Why the run's context is unsafe for a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsafeContext {
    /// `pull_request_target`.
    #[error(
        "codex-auth refuses to run on `pull_request_target`: that event runs with the \
         repository's secrets for a pull request whose author controls the code Codex would \
         see. Run it on `push`, `schedule` or `workflow_dispatch` instead."
    )]
    PullRequestTarget,
    /// A pull request whose head is in a fork.
    #[error(
        "codex-auth refuses to run for a pull request from a fork ({head}): its author controls \
         the code and prompts Codex would run with your login. Run it on `push`, `schedule` or \
         `workflow_dispatch` instead."
    )]
    ForkPullRequest {
        /// The fork's `owner/name`.
        head: String,
    },
    /// `workflow_run` triggered by a run whose head is in a fork (a fork's pull request).
    #[error(
        "codex-auth refuses to run on a `workflow_run` triggered by a run from a fork ({head}, \
         event `{event}`): the fork's author controls that run's code, its artifacts and the \
         text a triggered workflow passes on, and this run has your secrets. Run it on `push`, \
         `schedule` or `workflow_dispatch`, or guard the job with `if: \
         github.event.workflow_run.head_repository.full_name == github.repository`."
    )]
    ForkWorkflowRun {
        /// The triggering run's head repository (`owner/name`).
        head: String,
        /// The event that started the triggering run.
        event: String,
    },
}

/// Refuses `pull_request_target`, pull requests from forks, and `workflow_run` triggered by a
/// fork's run.
pub fn check_event(run: &RunContext) -> Result<(), UnsafeContext> {
    match run.event_name.as_deref() {
        Some("pull_request_target") => Err(UnsafeContext::PullRequestTarget),
        Some("workflow_run") => check_workflow_run(run.payload.as_ref()),
        Some("pull_request" | "pull_request_review" | "pull_request_review_comment") => {
            let payload = run.payload.as_ref();
            let head = payload
                .and_then(|p| p.pointer("/pull_request/head/repo/full_name"))
                .and_then(Value::as_str);
            let base = payload
                .and_then(|p| p.pointer("/pull_request/base/repo/full_name"))
                .and_then(Value::as_str);
            let fork = payload
                .and_then(|p| p.pointer("/pull_request/head/repo/fork"))
                .and_then(Value::as_bool);
            match (head, base) {
                (Some(head), Some(base)) if head != base || fork == Some(true) => {
                    Err(UnsafeContext::ForkPullRequest {
                        head: head.to_owned(),
                    })
                }
                // A pull request whose head repository is gone (deleted fork) or unknown.
                (None, _) => Err(UnsafeContext::ForkPullRequest {
                    head: "an unknown repository".to_owned(),
                }),
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// A `workflow_run` event runs with this repository's secrets whatever started the run that
/// triggered it, a fork's pull request included (GitHub Security Lab, "Keeping your GitHub
/// Actions and workflows secure Part 1"). Refused when the triggering run's head repository
/// is not this repository, is a fork, or is unknown (a deleted fork, no payload).
fn check_workflow_run(payload: Option<&Value>) -> Result<(), UnsafeContext> {
    let text = |pointer: &str| {
        payload
            .and_then(|p| p.pointer(pointer))
            .and_then(Value::as_str)
    };
    let head = text("/workflow_run/head_repository/full_name");
    let this = text("/repository/full_name");
    let fork = payload
        .and_then(|p| p.pointer("/workflow_run/head_repository/fork"))
        .and_then(Value::as_bool);
    let event = text("/workflow_run/event").unwrap_or("unknown");
    let from_fork = match (head, this) {
        (Some(head), Some(this)) => !head.eq_ignore_ascii_case(this) || fork == Some(true),
        _ => true,
    };
    if !from_fork {
        return Ok(());
    }
    Err(UnsafeContext::ForkWorkflowRun {
        head: head.unwrap_or("an unknown repository").to_owned(),
        event: event.to_owned(),
    })
}

/// Whether the event payload says the repository is private: `repository.private`, or
/// `repository.visibility` (`public`, `private`, `internal`). `None` when it does not say.
pub fn payload_says_private(run: &RunContext) -> Option<bool> {
    let repository = run.payload.as_ref()?.get("repository")?;
    if let Some(private) = repository.get("private").and_then(Value::as_bool) {
        return Some(private);
    }
    match repository.get("visibility").and_then(Value::as_str)? {
        "public" => Some(false),
        "private" | "internal" => Some(true),
        _ => None,
    }
}

/// Whether [`refuse_public_repository`] must ask the API: the check applies and the event
/// payload does not say whether the repository is private.
pub fn visibility_needs_api(config: &ActionConfig) -> bool {
    !config.allow_public_repository
        && config.repository.is_some()
        && payload_says_private(&config.run).is_none()
}

/// Refuses public repositories unless `allow-public-repository` is true. The event payload
/// says whether the repository is private; when it does not, the API does (`api`, which
/// [`visibility_needs_api`] tells the caller to give).
pub async fn refuse_public_repository(
    config: &ActionConfig,
    api: Option<&Client>,
) -> anyhow::Result<()> {
    if config.allow_public_repository {
        return Ok(());
    }
    let Some(repository) = &config.repository else {
        return Ok(());
    };
    let private = match (payload_says_private(&config.run), api) {
        (Some(private), _) => private,
        (None, None) => anyhow::bail!("no client to read the repository's visibility with"),
        (None, Some(api)) => api
            .repository_is_private(repository)
            .await
            .map_err(|error| {
                let cause = match error.status() {
                    Some(status) => format!("GET /repos/{repository} answered {status}"),
                    None => error.to_string(),
                };
                Failure::new(
                    "Cannot tell whether the repository is public",
                    format!(
                        "the event payload does not say whether {repository} is public, and \
                         reading it failed ({cause})."
                    ),
                )
                .before_codex()
                .fix(
                    "Leave input `github-token` at its default (the workflow's token, which reads \
                     its own repository), or give the token it names read access to the \
                     repository.",
                )
            })?,
    };
    if private {
        return Ok(());
    }
    Err(public_repository(repository, "set input `allow-public-repository: true`").into())
}

/// The refusal of a public repository, one wording for the action and `codex-auth seed`;
/// `allow` says how to accept the risk anyway.
pub fn public_repository(repository: &str, allow: &str) -> Failure {
    Failure::new(
        "Public repository",
        format!(
            "codex-auth refuses to run on the public repository {repository}: anyone who can get \
             a workflow run with the secret could use or leak the ChatGPT login, and OpenAI's \
             guidance is to never use it on public repositories. Move the workflow to a private \
             repository, or {allow} if you accept that risk."
        ),
    )
}

/// A client with input `github-token` (read only), for the repository check when the event
/// payload does not say whether the repository is private: the workflow's token can always
/// read its own repository, whatever credential writes the login.
pub fn github_token_client(config: &ActionConfig) -> anyhow::Result<Client> {
    let token = config.github_token.as_ref().ok_or_else(|| {
        Failure::new(
            "Cannot tell whether the repository is public",
            "the event payload does not say whether the repository is public, and input \
             `github-token` is empty.",
        )
        .before_codex()
        .fix("Leave `github-token` at its default (the workflow's token).")
    })?;
    Ok(
        Client::new(&config.transport, &config.api_url, token, config.retry)?
            .credential("input `github-token`"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(event: &str, payload: Value) -> RunContext {
        RunContext {
            event_name: Some(event.to_owned()),
            payload: Some(payload),
            run_id: Some(1),
            run_attempt: 1,
        }
    }

    #[test]
    fn refuses_pull_request_target_and_forks() {
        assert_eq!(
            check_event(&run("pull_request_target", json!({}))),
            Err(UnsafeContext::PullRequestTarget)
        );
        let pr = |head: &str, fork: bool| {
            json!({"pull_request": {
                "head": {"repo": {"full_name": head, "fork": fork}},
                "base": {"repo": {"full_name": "octo/repo"}}}})
        };
        assert_eq!(
            check_event(&run("pull_request", pr("mallory/repo", true))),
            Err(UnsafeContext::ForkPullRequest {
                head: "mallory/repo".into()
            })
        );
        assert_eq!(
            check_event(&run("pull_request", pr("octo/repo", false))),
            Ok(())
        );
        assert_eq!(check_event(&run("push", json!({}))), Ok(()));
        assert_eq!(check_event(&run("schedule", json!({}))), Ok(()));
    }

    #[test]
    fn refuses_workflow_run_triggered_from_a_fork() {
        let triggered = |head: Option<&str>, fork: bool, event: &str| {
            let head_repository = match head {
                Some(name) => json!({"full_name": name, "fork": fork}),
                None => Value::Null,
            };
            run(
                "workflow_run",
                json!({
                    "workflow_run": {"event": event, "head_branch": "main",
                                     "head_repository": head_repository},
                    "repository": {"full_name": "octo/repo"}}),
            )
        };
        let refused = |head: &str, event: &str| {
            Err(UnsafeContext::ForkWorkflowRun {
                head: head.into(),
                event: event.into(),
            })
        };
        // A fork's pull request.
        assert_eq!(
            check_event(&triggered(Some("mallory/repo"), true, "pull_request")),
            refused("mallory/repo", "pull_request")
        );
        // Another repository's head, whatever it says about being a fork.
        assert_eq!(
            check_event(&triggered(Some("mallory/repo"), false, "pull_request")),
            refused("mallory/repo", "pull_request")
        );
        // The same name, but GitHub says it is a fork.
        assert_eq!(
            check_event(&triggered(Some("octo/repo"), true, "push")),
            refused("octo/repo", "push")
        );
        // A deleted fork, or no payload at all: not known to be safe.
        assert_eq!(
            check_event(&triggered(None, false, "pull_request")),
            refused("an unknown repository", "pull_request")
        );
        assert_eq!(
            check_event(&RunContext {
                event_name: Some("workflow_run".into()),
                ..RunContext::default()
            }),
            refused("an unknown repository", "unknown")
        );
        // A run of this repository's own branches.
        assert_eq!(
            check_event(&triggered(Some("octo/repo"), false, "push")),
            Ok(())
        );
        assert_eq!(
            check_event(&triggered(Some("Octo/Repo"), false, "pull_request")),
            Ok(())
        );
        let message = refused("mallory/repo", "pull_request")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("workflow_dispatch"), "{message}");
    }

    #[test]
    fn reads_visibility_from_the_payload() {
        let says = |repository: Value| {
            payload_says_private(&run("push", json!({"repository": repository})))
        };
        assert_eq!(says(json!({"private": false})), Some(false));
        assert_eq!(
            says(json!({"private": true, "visibility": "private"})),
            Some(true)
        );
        assert_eq!(says(json!({"visibility": "internal"})), Some(true));
        assert_eq!(says(json!({"name": "repo"})), None);
        assert_eq!(
            payload_says_private(&run("schedule", json!({"schedule": "0 0 * * *"}))),
            None
        );
    }
}
