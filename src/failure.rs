//! A failure the user must act on: a short title for the annotation, and a message that says
//! what failed and what to do next.

use crate::github::{Scope, SecretTarget};

/// An error shown as `::error title=…::message`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// The annotation's title.
    pub title: &'static str,
    /// What failed, why, and the next step.
    pub message: String,
}

impl Failure {
    /// A failure with a title and a message.
    pub fn new(title: &'static str, message: impl Into<String>) -> Self {
        Self {
            title,
            message: message.into(),
        }
    }
}

/// How to put a fresh login into the target secret.
pub fn reseed_hint(target: &SecretTarget) -> String {
    let (seed, gh) = match &target.scope {
        Scope::Repository { repository } => (
            format!("--repo {repository}"),
            format!("--repo {repository}"),
        ),
        Scope::Environment {
            repository,
            environment,
        } => (
            format!("--repo {repository} --environment \"{environment}\""),
            format!("--repo {repository} --env \"{environment}\""),
        ),
        Scope::Organization { organization } => (
            format!("--org {organization}"),
            format!("--org {organization}"),
        ),
    };
    format!(
        "To reseed: on a trusted machine run `codex login`, then `codex-auth seed {seed} \
         --secret {name}` (or store the file as one line with `jq -c . ~/.codex/auth.json | gh \
         secret set {name} {gh}`).",
        name = target.name
    )
}
