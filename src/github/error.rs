//! Why a GitHub API call failed, with what to do about it.

use crate::seal::SealError;

use super::Subject;

/// Why an API call failed, with what to do about it. Transient failures are retried before
/// one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401.
    #[error(
        "GitHub rejected the token (401 Bad credentials) while accessing {target}. Check \
         {credential}: it must be {permission}."
    )]
    Unauthorized {
        /// What the call was about ([`Subject::what`]).
        target: String,
        /// Where the token came from.
        credential: &'static str,
        /// What the token needs.
        permission: String,
    },
    /// 403 that is not a rate limit.
    #[error(
        "{credential} may not access {target} (403: {message}{}). It must be {permission}.",
        accepted_note(.accepted.as_deref())
    )]
    Forbidden {
        /// What the call was about ([`Subject::what`]).
        target: String,
        /// Where the token came from.
        credential: &'static str,
        /// GitHub's message.
        message: String,
        /// What the token needs.
        permission: String,
        /// `X-Accepted-GitHub-Permissions`: the fine-grained permissions the call needs, as
        /// GitHub names them (`secrets=write`; alternatives separated by `;`).
        accepted: Option<String>,
    },
    /// 404.
    #[error(
        "GitHub answered 404 Not Found for {target}: check {scope_input}, and that \
         {credential} is {permission} (GitHub answers 404, not 403, when a token may not see the \
         repository or organization)."
    )]
    NotFound {
        /// What the call was about ([`Subject::what`]).
        target: String,
        /// Where the token came from.
        credential: &'static str,
        /// Which input to check.
        scope_input: &'static str,
        /// What the token needs.
        permission: String,
    },
    /// A rate limit asked for a longer wait than allowed.
    #[error(
        "GitHub's rate limit asks to wait {wait_secs} s before accessing {target}, longer \
         than input `api-timeout` allows ({max_secs} s); space out the jobs that share the \
         token, or raise `api-timeout`."
    )]
    RateLimited {
        /// What the call was about ([`Subject::what`]).
        target: String,
        /// Seconds GitHub asked for.
        wait_secs: u64,
        /// Seconds allowed.
        max_secs: u64,
    },
    /// Still failing after every retry.
    #[error(
        "GitHub kept failing for {target} ({seconds} s of retries, bounded by input \
         `api-timeout`): {last}. If GitHub is having an outage, re-run the job later; if the \
         address is wrong, check GITHUB_API_URL."
    )]
    GaveUp {
        /// What the call was about ([`Subject::what`]).
        target: String,
        /// How long the retries took.
        seconds: u64,
        /// The last failure.
        last: String,
    },
    /// Another status.
    #[error("GitHub answered {status} for {target}: {message}")]
    Unexpected {
        /// What the call was about ([`Subject::what`]).
        target: String,
        /// The HTTP status.
        status: u16,
        /// GitHub's message.
        message: String,
    },
    /// A new organization secret, and no repository to make it visible to.
    #[error(
        "{target} does not exist yet, and a new organization secret is made visible to the \
         repository that uses it alone, whose id is not known here: GITHUB_REPOSITORY_ID is not \
         set to a number (the runner sets it). Nothing was written. Create the secret first \
         (Settings → Secrets and variables → Actions → New organization secret, choosing the \
         repositories that may read it), or run where GITHUB_REPOSITORY_ID is set."
    )]
    NoRepositoryForNewSecret {
        /// What the call was about ([`Subject::what`]).
        target: String,
    },
    /// A body that is not what the API documents.
    #[error("GitHub's answer for {target} is not what the API documents: {source}")]
    BadResponse {
        /// What the call was about ([`Subject::what`]).
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
    pub(crate) fn bad_response(subject: &Subject, source: impl Into<BadResponse>) -> Self {
        ApiError::BadResponse {
            target: subject.what.clone(),
            source: source.into(),
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
            | ApiError::NoRepositoryForNewSecret { .. }
            | ApiError::BadResponse { .. } => None,
        }
    }
}

/// The permissions GitHub says a call needs, as words: `secrets=write` → `"Secrets: write"`.
/// <https://github.blog/changelog/2023-08-10-x-accepted-github-permissions-header-for-fine-grained-permission-actors>
pub fn describe_permissions(accepted: &str) -> String {
    let set = |set: &str| {
        set.split(',')
            .filter_map(|permission| {
                let (name, level) = permission.trim().split_once('=')?;
                let name = match name {
                    "secrets" => "Secrets".to_owned(),
                    "environments" => "Environments".to_owned(),
                    "organization_secrets" => "organization Secrets".to_owned(),
                    "actions" => "Actions".to_owned(),
                    "metadata" => "Metadata".to_owned(),
                    other => other.replace('_', " "),
                };
                Some(format!("\"{name}: {level}\""))
            })
            .collect::<Vec<_>>()
            .join(" and ")
    };
    accepted
        .split(';')
        .map(set)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", or ")
}

fn accepted_note(accepted: Option<&str>) -> String {
    match accepted.map(describe_permissions) {
        Some(needed) if !needed.is_empty() => format!("; GitHub says this needs {needed}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_permissions_read_as_words() {
        assert_eq!(describe_permissions("secrets=write"), "\"Secrets: write\"");
        assert_eq!(
            describe_permissions("repository_projects=write; organization_projects=admin"),
            "\"repository projects: write\", or \"organization projects: admin\""
        );
        assert_eq!(
            describe_permissions("environments=write,secrets=read"),
            "\"Environments: write\" and \"Secrets: read\""
        );
        assert_eq!(describe_permissions(""), "");
    }
}
