//! The Actions secrets endpoints: where a secret lives, its public key, its metadata, and
//! writing it sealed. Routes: <https://docs.github.com/en/rest/actions/secrets>.

use std::fmt;

use http::StatusCode;
use jiff::Timestamp;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Deserialize;
use serde_json::Value;

use super::{ApiError, BadResponse, Client, Method};
use crate::redacted::Redacted;
use crate::seal::PublicKey;

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
    /// The id of the repository the login is for (`GITHUB_REPOSITORY_ID`): a new organization
    /// secret is made visible to it alone. `None` when unknown: a new organization secret is
    /// then refused rather than made visible to more repositories.
    pub repository_id: Option<u64>,
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

    /// The GitHub App permission (as the installation token's `permissions` names it) that
    /// must be `write` to write this secret.
    pub fn app_permission(&self) -> &'static str {
        match self.scope {
            Scope::Repository { .. } => "secrets",
            Scope::Environment { .. } => "environments",
            Scope::Organization { .. } => "organization_secrets",
        }
    }

    /// The classic token scope that writes this secret (`X-OAuth-Scopes`).
    pub fn classic_scope(&self) -> &'static str {
        match self.scope {
            Scope::Repository { .. } | Scope::Environment { .. } => "repo",
            Scope::Organization { .. } => "admin:org",
        }
    }

    /// Another secret in the same place.
    pub fn sibling(&self, name: &str) -> SecretTarget {
        SecretTarget {
            scope: self.scope.clone(),
            name: name.to_owned(),
            repository_id: self.repository_id,
        }
    }

    /// The input that names this target's scope, for error messages.
    /// What calls about this secret are about, for their errors.
    pub fn subject(&self) -> super::Subject {
        super::Subject {
            what: format!("the {self}"),
            permission: format!(
                "{}. The workflow's GITHUB_TOKEN cannot write secrets",
                self.permission_needed()
            ),
            input: self.scope_input(),
        }
    }

    pub(crate) fn scope_input(&self) -> &'static str {
        match self.scope {
            Scope::Repository { .. } => "the repository (GITHUB_REPOSITORY)",
            Scope::Environment { .. } => "input `environment` or the repository",
            Scope::Organization { .. } => "input `organization`",
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

/// What a successful write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// 201: the secret did not exist.
    Created,
    /// 204: an existing secret was replaced.
    Updated,
}

impl WriteOutcome {
    /// The past tense for the log: "Created", "Updated".
    pub fn verb(self) -> &'static str {
        match self {
            WriteOutcome::Created => "Created",
            WriteOutcome::Updated => "Updated",
        }
    }
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
struct SelectedRepositories {
    total_count: u64,
    repositories: Vec<RepositoryId>,
}

#[derive(Deserialize)]
struct RepositoryId {
    id: u64,
}

impl Client {
    /// `GET …/secrets/public-key`. Doubles as the preflight: it fails with the same
    /// 401/403/404 as a write would when the token lacks access to the target.
    pub async fn public_key(&self, target: &SecretTarget) -> Result<PublicKey, ApiError> {
        let (_, body) = self
            .send(
                &target.subject(),
                Method::Get,
                &target.public_key_route(),
                None,
            )
            .await?;
        let bad = |source: BadResponse| ApiError::bad_response(&target.subject(), source);
        let key: KeyBody = serde_json::from_slice(&body).map_err(|e| bad(e.into()))?;
        PublicKey::new(key.key_id, key.key).map_err(|e| bad(e.into()))
    }

    /// When the secret was last written (`GET …/secrets/{name}`); `None` when it does not exist.
    pub async fn secret_updated_at(
        &self,
        target: &SecretTarget,
    ) -> Result<Option<Timestamp>, ApiError> {
        match self
            .send(&target.subject(), Method::Get, &target.secret_route(), None)
            .await
        {
            Ok((_, body)) => serde_json::from_slice::<SecretMetadata>(&body)
                .map(|m| Some(m.updated_at))
                .map_err(|e| ApiError::bad_response(&target.subject(), e)),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Seals `value` with `key` and writes it. When GitHub rejects the key (422, because the
    /// key rotated since it was read) the key is fetched again once and the write repeated.
    pub async fn write_secret(
        &self,
        target: &SecretTarget,
        value: &Redacted,
        key: Option<PublicKey>,
    ) -> Result<WriteOutcome, ApiError> {
        let org_fields = self.org_fields(target).await?;
        self.put_sealed(target, value, key, org_fields).await
    }

    /// Creates a secret that proves the token can write where `target` lives, with no effect
    /// on anything else: an organization secret is made visible to no repository
    /// (`selected`, none selected).
    pub async fn write_probe(
        &self,
        probe: &SecretTarget,
        value: &Redacted,
        key: Option<PublicKey>,
    ) -> Result<WriteOutcome, ApiError> {
        let org_fields = matches!(probe.scope, Scope::Organization { .. }).then(|| {
            let mut fields = serde_json::Map::new();
            fields.insert("visibility".into(), Value::String("selected".into()));
            fields.insert("selected_repository_ids".into(), Value::Array(Vec::new()));
            fields
        });
        self.put_sealed(probe, value, key, org_fields).await
    }

    /// Deletes a secret (`DELETE …/secrets/{name}`); one that does not exist counts as
    /// deleted.
    pub async fn delete_secret(&self, target: &SecretTarget) -> Result<(), ApiError> {
        match self
            .send(
                &target.subject(),
                Method::Delete,
                &target.secret_route(),
                None,
            )
            .await
        {
            Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn put_sealed(
        &self,
        target: &SecretTarget,
        value: &Redacted,
        key: Option<PublicKey>,
        org_fields: Option<serde_json::Map<String, Value>>,
    ) -> Result<WriteOutcome, ApiError> {
        let mut key = match key {
            Some(key) => key,
            None => self.public_key(target).await?,
        };
        let mut refetched = false;
        loop {
            let sealed = key
                .seal(value)
                .map_err(|e| ApiError::bad_response(&target.subject(), e))?;
            let mut body = serde_json::to_value(&sealed).unwrap_or(Value::Null);
            if let (Value::Object(body), Some(fields)) = (&mut body, &org_fields) {
                body.extend(fields.clone());
            }
            match self
                .send(
                    &target.subject(),
                    Method::Put,
                    &target.secret_route(),
                    Some(&body),
                )
                .await
            {
                Ok((StatusCode::CREATED, _)) => return Ok(WriteOutcome::Created),
                Ok(_) => return Ok(WriteOutcome::Updated),
                Err(ApiError::Unexpected { status: 422, .. }) if !refetched => {
                    crate::workflow::print_line(&format!(
                        "GitHub refused the public key {} (422); fetching the current key and writing again",
                        key.key_id
                    ));
                    key = self.public_key(target).await?;
                    refetched = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// An organization secret's PUT must restate its visibility (and its selected
    /// repositories), or the update would change who can read it. A new one is made visible
    /// to the target's repository alone (`selected`): GitHub's own default, `private`, would
    /// let every private repository of the organization read the login.
    async fn org_fields(
        &self,
        target: &SecretTarget,
    ) -> Result<Option<serde_json::Map<String, Value>>, ApiError> {
        if !matches!(target.scope, Scope::Organization { .. }) {
            return Ok(None);
        }
        let bad = |e: serde_json::Error| ApiError::bad_response(&target.subject(), e);
        let mut fields = serde_json::Map::new();
        let visibility = match self
            .send(&target.subject(), Method::Get, &target.secret_route(), None)
            .await
        {
            Ok((_, body)) => {
                serde_json::from_slice::<OrgSecret>(&body)
                    .map_err(bad)?
                    .visibility
            }
            Err(ApiError::NotFound { .. }) => {
                let id =
                    target
                        .repository_id
                        .ok_or_else(|| ApiError::NoRepositoryForNewSecret {
                            target: target.subject().what,
                        })?;
                fields.insert(
                    "selected_repository_ids".into(),
                    Value::Array(vec![Value::from(id)]),
                );
                fields.insert("visibility".into(), Value::String("selected".into()));
                return Ok(Some(fields));
            }
            Err(e) => return Err(e),
        };
        if visibility == "selected" {
            let mut ids = Vec::new();
            for page in 1u32.. {
                let route = format!(
                    "{}/repositories?per_page=100&page={page}",
                    target.secret_route()
                );
                let (_, body) = self
                    .send(&target.subject(), Method::Get, &route, None)
                    .await?;
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
            repository_id: None,
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
            repository_id: None,
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
}
