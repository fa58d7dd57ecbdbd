//! The one place that reads the outside world: `INPUT_*`, `GITHUB_*`, `STATE_*`, `CODEX_HOME`.
//!
//! The runner passes each input as `INPUT_<NAME>` with the name upper-cased and hyphens kept
//! (`auth-json` → `INPUT_AUTH-JSON`), and passes declared inputs without a value as empty
//! strings, so an empty input means "not given" here. Defaults live here as well as in
//! `action.yml`, so the binary behaves the same when run by hand.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use crate::artifact::crypt::ArtifactKey;
use crate::github::{RetryPolicy, Scope, SecretTarget};
use crate::secret::Secret;
use crate::workflow::Workflow;

/// The default secret name.
pub const DEFAULT_SECRET_NAME: &str = "CODEX_AUTH_JSON";
/// The default prompt: the cheapest model call that proves the login works.
pub const DEFAULT_PROMPT: &str = "Reply with the single word OK.";

/// An input or runner variable that is not usable, with the fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required input is empty.
    #[error("input `{input}` is empty: {fix}")]
    Missing {
        /// The input's name.
        input: &'static str,
        /// What to pass.
        fix: &'static str,
    },
    /// An input with a value it cannot have.
    #[error("input `{input}` {problem}")]
    Invalid {
        /// The input's name.
        input: &'static str,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// A runner variable that is missing or malformed.
    #[error("{variable} {problem}")]
    Runner {
        /// The variable.
        variable: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// What the main stage does with the restored login (input `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `codex exec` with the prompt (default).
    Exec,
    /// Keep-fresh: make Codex refresh the login through its app-server, with no model call.
    Refresh,
    /// Restore only: later steps of the job run Codex on the host; the post stage persists.
    Restore,
}

/// What the action authenticates to the Secrets API with.
pub enum Credentials {
    /// Input `token`: a personal access token or an installation token made beforehand.
    Token(Secret),
    /// Inputs `app-id` and `app-private-key`: a GitHub App whose installation token the
    /// action makes itself, for the target's repository or organization.
    App {
        /// The App's numeric id.
        app_id: u64,
        /// The App's private key, PEM.
        private_key: Secret,
    },
}

impl Credentials {
    /// The secret part: the token, or the App's private key.
    pub fn secret(&self) -> &Secret {
        match self {
            Credentials::Token(token) => token,
            Credentials::App { private_key, .. } => private_key,
        }
    }
}

/// Where the refreshed login is kept (input `store`).
pub enum Store {
    /// A repository, environment or organization secret (default).
    Secret,
    /// An encrypted workflow artifact of this repository.
    Artifact(ArtifactStore),
}

/// The artifact store's settings.
pub struct ArtifactStore {
    /// Input `artifact-key`.
    pub key: ArtifactKey,
    /// Input `artifact-name`.
    pub name: String,
    /// Input `retention-days`; the repository's retention when `None`.
    pub retention_days: Option<u32>,
    /// `GITHUB_RETENTION_DAYS`: the longest retention the repository allows.
    pub max_retention_days: Option<u32>,
    /// Input `github-token`: reads the repository's artifacts.
    pub github_token: Secret,
    /// `GITHUB_REPOSITORY_ID`, which the encryption binds the artifact to.
    pub repository_id: u64,
    /// `ACTIONS_RESULTS_URL`, for uploading.
    pub results_url: Option<String>,
    /// `ACTIONS_RUNTIME_TOKEN`, for uploading.
    pub runtime_token: Option<Secret>,
}

/// The default artifact name.
pub const DEFAULT_ARTIFACT_NAME: &str = "codex-auth";

/// The workflow run and the event that started it.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    /// `GITHUB_EVENT_NAME`.
    pub event_name: Option<String>,
    /// The event payload (`GITHUB_EVENT_PATH`), when readable.
    pub payload: Option<serde_json::Value>,
    /// `GITHUB_RUN_ID`.
    pub run_id: Option<u64>,
    /// `GITHUB_RUN_ATTEMPT` (1 when absent).
    pub run_attempt: u32,
}

/// Everything the two action stages read from their environment. Its `Debug` shows no value
/// of the environment: it holds the write token and the seed.
pub struct ActionConfig {
    /// Input `auth-json`: the secret's value, not yet decoded.
    pub auth_json: Option<Secret>,
    /// Input `token`, or inputs `app-id` and `app-private-key`: what can write the secret.
    pub credentials: Option<Credentials>,
    /// The secret to write back to.
    pub target: SecretTarget,
    /// Input `store`: a secret (`target`) or an artifact.
    pub store: Store,
    /// `GITHUB_REPOSITORY` (`owner/name`), the repository the workflow runs in.
    pub repository: Option<String>,
    /// Input `mode`.
    pub mode: Mode,
    /// Input `prompt`.
    pub prompt: String,
    /// Input `codex-args`, split like a shell would.
    pub codex_args: Vec<String>,
    /// Input `keep`: leave auth.json in CODEX_HOME after the job (persistent runners).
    pub keep: bool,
    /// Input `allow-public-repository`: run even where the repository is public.
    pub allow_public_repository: bool,
    /// The workflow run and the event that started it.
    pub run: RunContext,
    /// `GITHUB_API_URL`.
    pub api_url: String,
    /// Retry bounds for the API.
    pub retry: RetryPolicy,
    /// Where Codex keeps auth.json: `CODEX_HOME`, else `$HOME/.codex`.
    pub codex_home: PathBuf,
    /// `GITHUB_WORKSPACE`, where Codex runs.
    pub workspace: PathBuf,
    /// `RUNNER_TEMP`, for scratch files.
    pub temp_dir: PathBuf,
    /// `RUNNER_WORKSPACE`: a host path even inside a container action (the runner does not
    /// translate it), from which the host path of `/github/home` follows.
    pub runner_workspace: Option<PathBuf>,
    /// The runner's command files.
    pub workflow: Workflow,
    /// `STATE_*` values saved by the main stage.
    pub state: BTreeMap<String, String>,
    /// The whole environment, for deriving Codex's (which drops the secrets).
    pub environment: Vec<(OsString, OsString)>,
}

impl std::fmt::Debug for ActionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionConfig")
            .field("target", &self.target)
            .field("codex_home", &self.codex_home)
            .field("workspace", &self.workspace)
            .field("api_url", &self.api_url)
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

impl ActionConfig {
    /// Reads the configuration from this process's environment.
    pub fn from_process() -> Result<Self, ConfigError> {
        Self::from_env(std::env::vars_os().collect())
    }

    /// Reads the configuration from the given variables.
    pub fn from_env(environment: Vec<(OsString, OsString)>) -> Result<Self, ConfigError> {
        let auth_json_not_utf8 = environment
            .iter()
            .any(|(k, v)| k == "INPUT_AUTH-JSON" && v.to_str().is_none());
        if auth_json_not_utf8 {
            return Err(ConfigError::Invalid {
                input: "auth-json",
                problem: "is not UTF-8 text; store auth.json as it is (UTF-8 JSON) or as base64"
                    .into(),
            });
        }
        let vars: BTreeMap<String, String> = environment
            .iter()
            .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v.to_str()?.to_owned())))
            .collect();
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let input = |name: &str| get(&format!("INPUT_{}", name.to_ascii_uppercase()));

        let name = input("secret-name")
            .unwrap_or(DEFAULT_SECRET_NAME)
            .to_owned();
        validate_secret_name(&name)?;
        let repository = get("GITHUB_REPOSITORY").map(str::to_owned);
        if let Some(repository) = &repository {
            validate_repository(repository)?;
        }
        let scope = match (input("environment"), input("organization")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    input: "environment",
                    problem: "and input `organization` are both set: a secret lives in one \
                              place; set only the one that holds it"
                        .into(),
                })
            }
            (None, Some(organization)) => {
                validate_slug("organization", organization)?;
                Scope::Organization {
                    organization: organization.to_owned(),
                }
            }
            (environment, None) => {
                let repository = repository.as_deref().ok_or(ConfigError::Runner {
                    variable: "GITHUB_REPOSITORY",
                    problem: "is not set; the runner sets it to owner/name".into(),
                })?;
                match environment {
                    Some(environment) => Scope::Environment {
                        repository: repository.to_owned(),
                        environment: environment.to_owned(),
                    },
                    None => Scope::Repository {
                        repository: repository.to_owned(),
                    },
                }
            }
        };

        let codex_args = match input("codex-args") {
            None => Vec::new(),
            Some(args) => shlex::split(args).ok_or_else(|| ConfigError::Invalid {
                input: "codex-args",
                problem: "has an unclosed quote or a trailing backslash; quote it as you \
                          would in a shell"
                    .into(),
            })?,
        };
        let mode = match input("mode") {
            None | Some("exec") => Mode::Exec,
            Some("refresh") => Mode::Refresh,
            Some("restore") => Mode::Restore,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    input: "mode",
                    problem: format!(
                        "is \"{other}\"; expected exec (run codex exec with the prompt), \
                         refresh (keep the login fresh without a model call) or restore (only \
                         restore auth.json for later steps)"
                    ),
                })
            }
        };
        let keep = match input("keep") {
            None => false,
            Some(value) => parse_bool("keep", value)?,
        };
        let allow_public_repository = match input("allow-public-repository") {
            None => false,
            Some(value) => parse_bool("allow-public-repository", value)?,
        };
        let mut retry = RetryPolicy::default();
        if let Some(value) = input("api-timeout") {
            let seconds = value
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=3600).contains(s))
                .ok_or_else(|| ConfigError::Invalid {
                    input: "api-timeout",
                    problem: format!("is \"{value}\"; expected a number of seconds from 1 to 3600"),
                })?;
            retry = retry.within(std::time::Duration::from_secs(seconds));
        }
        let run = RunContext {
            event_name: get("GITHUB_EVENT_NAME").map(str::to_owned),
            payload: get("GITHUB_EVENT_PATH")
                .and_then(|path| std::fs::read(path).ok())
                .and_then(|bytes| serde_json::from_slice(&bytes).ok()),
            run_id: get("GITHUB_RUN_ID").and_then(|v| v.parse().ok()),
            run_attempt: get("GITHUB_RUN_ATTEMPT")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
        };
        let store = match input("store") {
            None | Some("secret") => Store::Secret,
            Some("artifact") => Store::Artifact(artifact_store(&get, &input, &vars)?),
            Some(other) => {
                return Err(ConfigError::Invalid {
                    input: "store",
                    problem: format!(
                        "is \"{other}\"; expected secret (write the login back to a secret) or \
                         artifact (keep it as an encrypted workflow artifact)"
                    ),
                })
            }
        };
        let api_url = get("GITHUB_API_URL").ok_or(ConfigError::Runner {
            variable: "GITHUB_API_URL",
            problem: "is not set; the runner sets it (outside a runner, set it to your \
                      GitHub API base URL)"
                .into(),
        })?;
        let api_url = validate_api_url(api_url)?;

        let home = get("HOME").map(PathBuf::from);
        let codex_home = match get("CODEX_HOME") {
            Some(dir) => PathBuf::from(dir),
            None => home
                .ok_or(ConfigError::Runner {
                    variable: "HOME",
                    problem: "is not set, and neither is CODEX_HOME".into(),
                })?
                .join(".codex"),
        };
        if !codex_home.is_absolute() {
            return Err(ConfigError::Runner {
                variable: "CODEX_HOME",
                problem: "must be an absolute path".into(),
            });
        }
        let workspace = get("GITHUB_WORKSPACE")
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("."));
        let temp_dir = get("RUNNER_TEMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let path = |name: &str| get(name).map(PathBuf::from);
        let state = vars
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("STATE_")?.to_owned(), v.clone())))
            .collect();

        Ok(Self {
            auth_json: vars
                .get("INPUT_AUTH-JSON")
                .filter(|v| !v.trim().is_empty())
                .map(|v| Secret::new(v.as_str())),
            credentials: credentials(input("token"), input("app-id"), input("app-private-key"))?,
            target: SecretTarget { scope, name },
            store,
            repository,
            mode,
            prompt: input("prompt").unwrap_or(DEFAULT_PROMPT).to_owned(),
            codex_args,
            keep,
            allow_public_repository,
            run,
            api_url,
            retry,
            codex_home,
            workspace,
            temp_dir,
            runner_workspace: get("RUNNER_WORKSPACE").map(PathBuf::from),
            workflow: Workflow {
                output_file: path("GITHUB_OUTPUT"),
                state_file: path("GITHUB_STATE"),
                summary_file: path("GITHUB_STEP_SUMMARY"),
                env_file: path("GITHUB_ENV"),
            },
            state,
            environment,
        })
    }

    /// Input `token` or the App inputs, which both stages need.
    pub fn credentials(&self) -> Result<&Credentials, ConfigError> {
        self.credentials.as_ref().ok_or(ConfigError::Missing {
            input: "token",
            fix: "pass a token that can write the secret, e.g. `token: ${{ secrets.CODEX_AUTH_WRITE_TOKEN }}` \
                  holding a fine-grained personal access token with \"Secrets: Read and write\" \
                  (the workflow's GITHUB_TOKEN cannot write secrets), or a GitHub App's \
                  `app-id` and `app-private-key`",
        })
    }
}

/// The artifact store's inputs and runner variables.
fn artifact_store<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    input: &impl Fn(&str) -> Option<&'a str>,
    vars: &BTreeMap<String, String>,
) -> Result<ArtifactStore, ConfigError> {
    let key = match input("artifact-key") {
        None => {
            return Err(ConfigError::Missing {
                input: "artifact-key",
                fix: "`store: artifact` encrypts the login with it: run `codex-auth keygen`, \
                      store the key it prints as a secret (e.g. CODEX_AUTH_ARTIFACT_KEY) and pass \
                      `artifact-key: ${{ secrets.CODEX_AUTH_ARTIFACT_KEY }}`",
            })
        }
        Some(text) => ArtifactKey::parse(text).map_err(|e| ConfigError::Invalid {
            input: "artifact-key",
            problem: e.to_string(),
        })?,
    };
    let name = input("artifact-name")
        .unwrap_or(DEFAULT_ARTIFACT_NAME)
        .to_owned();
    // @actions/artifact's rules (upload/path-and-artifact-name-validation.ts).
    if let Some(bad) = name.chars().find(|c| {
        matches!(
            c,
            '"' | ':' | '<' | '>' | '|' | '*' | '?' | '\r' | '\n' | '\\' | '/'
        )
    }) {
        return Err(ConfigError::Invalid {
            input: "artifact-name",
            problem: format!(
                "\"{}\" contains {bad:?}, which artifact names may not",
                name.escape_debug()
            ),
        });
    }
    let retention_days = match input("retention-days") {
        None => None,
        Some(value) => Some(
            value
                .parse::<u32>()
                .ok()
                .filter(|d| (1..=400).contains(d))
                .ok_or_else(|| ConfigError::Invalid {
                    input: "retention-days",
                    problem: format!(
                        "is \"{value}\"; expected a number of days from 1 to 400 (GitHub's \
                         limit for private repositories; empty: the repository's retention)"
                    ),
                })?,
        ),
    };
    // The repository's (or organization's) maximum, which the runner passes on, as the
    // official client reads it.
    let max_retention_days = get("GITHUB_RETENTION_DAYS").and_then(|v| v.parse::<u32>().ok());
    let github_token = input("github-token").ok_or(ConfigError::Missing {
        input: "github-token",
        fix: "`store: artifact` reads the repository's artifacts with it; its default is the \
              workflow's token (`${{ github.token }}`), which needs `permissions: actions: read`",
    })?;
    let repository_id = get("GITHUB_REPOSITORY_ID")
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or(ConfigError::Runner {
            variable: "GITHUB_REPOSITORY_ID",
            problem: "is not set to a number; the runner sets it (the artifact is bound to the \
                      repository's id)"
                .into(),
        })?;
    Ok(ArtifactStore {
        key,
        name,
        retention_days,
        max_retention_days,
        github_token: Secret::new(github_token),
        repository_id,
        results_url: get("ACTIONS_RESULTS_URL").map(str::to_owned),
        runtime_token: vars
            .get("ACTIONS_RUNTIME_TOKEN")
            .filter(|v| !v.trim().is_empty())
            .map(|v| Secret::new(v.trim())),
    })
}

/// Input `token`, or a GitHub App's `app-id` and `app-private-key`: one or the other.
fn credentials(
    token: Option<&str>,
    app_id: Option<&str>,
    private_key: Option<&str>,
) -> Result<Option<Credentials>, ConfigError> {
    let app_id =
        match app_id {
            None => None,
            Some(value) => Some(value.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(
                || ConfigError::Invalid {
                    input: "app-id",
                    problem: format!(
                        "is \"{value}\"; expected the App's numeric ID (App settings → General → \
                         \"App ID\"), not its client ID or name"
                    ),
                },
            )?),
        };
    match (token, app_id, private_key) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ConfigError::Invalid {
            input: "token",
            problem: "and the GitHub App inputs (`app-id`, `app-private-key`) are both set; \
                      pass one way of writing the secret: either a token or the App"
                .into(),
        }),
        (Some(token), None, None) => Ok(Some(Credentials::Token(Secret::new(token)))),
        (None, Some(_), None) => Err(ConfigError::Missing {
            input: "app-private-key",
            fix: "`app-id` is set, so pass the App's private key too, e.g. \
                  `app-private-key: ${{ secrets.CODEX_AUTH_APP_KEY }}` holding the .pem file \
                  GitHub generated (App settings → Private keys)",
        }),
        (None, None, Some(_)) => Err(ConfigError::Missing {
            input: "app-id",
            fix: "`app-private-key` is set, so pass the App's numeric ID too, e.g. \
                  `app-id: ${{ vars.CODEX_AUTH_APP_ID }}` (App settings → General → \"App ID\")",
        }),
        (None, Some(app_id), Some(key)) => {
            if !key.contains("-----BEGIN") || !key.contains("PRIVATE KEY-----") {
                return Err(ConfigError::Invalid {
                    input: "app-private-key",
                    problem: "is not a PEM private key; pass the whole .pem file GitHub \
                              generated for the App, from -----BEGIN RSA PRIVATE KEY----- to \
                              the END line, with its line breaks"
                        .into(),
                });
            }
            Ok(Some(Credentials::App {
                app_id,
                private_key: Secret::new(key),
            }))
        }
        (None, None, None) => Ok(None),
    }
}

/// GitHub's rules for secret names: letters, digits and `_`, not starting with a digit or
/// `GITHUB_`. <https://docs.github.com/en/actions/how-tos/write-workflows/choose-what-workflows-do/use-secrets#naming-your-secrets>
pub(crate) fn validate_secret_name(name: &str) -> Result<(), ConfigError> {
    let invalid = |problem: &str| ConfigError::Invalid {
        input: "secret-name",
        problem: format!("\"{name}\" {problem}"),
    };
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(invalid("may only contain letters, digits and `_`"));
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(invalid("must not start with a digit"));
    }
    if name.to_ascii_uppercase().starts_with("GITHUB_") {
        return Err(invalid("must not start with GITHUB_ (reserved by GitHub)"));
    }
    Ok(())
}

pub(crate) fn validate_slug(input: &'static str, value: &str) -> Result<(), ConfigError> {
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            input,
            problem: format!("\"{value}\" is not a GitHub login (letters, digits, `-`, `_`, `.`)"),
        })
    }
}

pub(crate) fn validate_repository(value: &str) -> Result<(), ConfigError> {
    let valid = value.split_once('/').is_some_and(|(owner, name)| {
        let part = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        };
        part(owner) && part(name)
    });
    if valid {
        Ok(())
    } else {
        Err(ConfigError::Runner {
            variable: "GITHUB_REPOSITORY",
            problem: format!("\"{value}\" is not of the form owner/name"),
        })
    }
}

/// `https://…`, or `http://` to a loopback address (tests, local proxies).
pub(crate) fn validate_api_url(value: &str) -> Result<String, ConfigError> {
    let invalid = |problem: &str| ConfigError::Runner {
        variable: "GITHUB_API_URL",
        problem: format!("\"{value}\" {problem}"),
    };
    let uri: http::Uri = value
        .parse()
        .map_err(|_| invalid("is not a URL; expected e.g. https://HOST/api/v3"))?;
    let host = uri.host().ok_or_else(|| invalid("has no host"))?;
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1");
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if loopback => {}
        Some("http") => return Err(invalid("must use https (plain http is only for loopback)")),
        _ => return Err(invalid("must start with https://")),
    }
    if uri.query().is_some() {
        return Err(invalid("must not have a query"));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// YAML 1.2 core-schema booleans, as `@actions/core` `getBooleanInput` accepts them.
fn parse_bool(input: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "true" | "True" | "TRUE" => Ok(true),
        "false" | "False" | "FALSE" => Ok(false),
        _ => Err(ConfigError::Invalid {
            input,
            problem: format!("is \"{value}\"; expected true or false"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn config(extra: &[(&str, &str)]) -> Result<ActionConfig, ConfigError> {
        let mut env: Vec<(OsString, OsString)> = [
            ("GITHUB_REPOSITORY", "octo/repo"),
            ("GITHUB_API_URL", "https://ghe.example/api/v3/"),
            ("HOME", "/github/home"),
            ("INPUT_SECRET-NAME", ""),
            ("INPUT_KEEP", ""),
        ]
        .iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        env.extend(extra.iter().map(|(k, v)| (k.into(), v.into())));
        ActionConfig::from_env(env)
    }

    #[test]
    fn empty_inputs_take_the_defaults() -> Result<(), ConfigError> {
        let config = config(&[])?;
        assert_eq!(config.target.name, DEFAULT_SECRET_NAME);
        assert_eq!(config.prompt, DEFAULT_PROMPT);
        assert!(!config.keep);
        assert_eq!(config.codex_home, PathBuf::from("/github/home/.codex"));
        assert_eq!(config.api_url, "https://ghe.example/api/v3");
        Ok(())
    }

    #[test]
    fn codex_args_split_like_a_shell() -> Result<(), ConfigError> {
        let config = config(&[("INPUT_CODEX-ARGS", r#"-m "gpt 5" --sandbox read-only"#)])?;
        assert_eq!(config.codex_args, ["-m", "gpt 5", "--sandbox", "read-only"]);
        Ok(())
    }

    #[test]
    fn bad_inputs_name_the_input() {
        let cases = [
            (("INPUT_SECRET-NAME", "1ABC"), "input `secret-name` \"1ABC\" must not start with a digit"),
            (("INPUT_SECRET-NAME", "github_x"), "input `secret-name` \"github_x\" must not start with GITHUB_ (reserved by GitHub)"),
            (("INPUT_SECRET-NAME", "A-B"), "input `secret-name` \"A-B\" may only contain letters, digits and `_`"),
            (("INPUT_KEEP", "yes"), "input `keep` is \"yes\"; expected true or false"),
            (("INPUT_MODE", "restore-all"), "input `mode` is \"restore-all\"; expected exec (run codex exec with the prompt), refresh (keep the login fresh without a model call) or restore (only restore auth.json for later steps)"),
            (("INPUT_API-TIMEOUT", "0"), "input `api-timeout` is \"0\"; expected a number of seconds from 1 to 3600"),
            (("INPUT_CODEX-ARGS", "'open"), "input `codex-args` has an unclosed quote or a trailing backslash; quote it as you would in a shell"),
            (("GITHUB_API_URL", "http://ghe.example"), "GITHUB_API_URL \"http://ghe.example\" must use https (plain http is only for loopback)"),
        ];
        for ((key, value), expected) in cases {
            assert_eq!(
                config(&[(key, value)])
                    .err()
                    .map(|e| e.to_string())
                    .as_deref(),
                Some(expected)
            );
        }
        let both = config(&[
            ("INPUT_ENVIRONMENT", "prod"),
            ("INPUT_ORGANIZATION", "octo"),
        ]);
        assert!(matches!(
            both,
            Err(ConfigError::Invalid {
                input: "environment",
                ..
            })
        ));
    }

    #[test]
    fn environment_and_organization_targets() -> Result<(), ConfigError> {
        assert_eq!(
            config(&[("INPUT_ENVIRONMENT", "prod")])?.target.scope,
            Scope::Environment {
                repository: "octo/repo".into(),
                environment: "prod".into()
            }
        );
        assert_eq!(
            config(&[("INPUT_ORGANIZATION", "octo")])?.target.scope,
            Scope::Organization {
                organization: "octo".into()
            }
        );
        Ok(())
    }

    #[test]
    fn a_token_or_an_app_but_not_both() {
        const KEY: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----";
        let app = config(&[("INPUT_APP-ID", " 12345 "), ("INPUT_APP-PRIVATE-KEY", KEY)]);
        assert!(matches!(
            app.map(|c| c.credentials),
            Ok(Some(Credentials::App { app_id: 12345, .. }))
        ));
        assert!(matches!(
            config(&[("INPUT_TOKEN", "ghp_x")]).map(|c| c.credentials),
            Ok(Some(Credentials::Token(_)))
        ));
        let cases: [(&[(&str, &str)], &str); 5] = [
            (
                &[("INPUT_TOKEN", "t"), ("INPUT_APP-ID", "1")],
                "input `token` and the GitHub App inputs (`app-id`, `app-private-key`) are both set; pass one way of writing the secret: either a token or the App",
            ),
            (
                &[("INPUT_APP-ID", "Iv23liABC")],
                "input `app-id` is \"Iv23liABC\"; expected the App's numeric ID (App settings → General → \"App ID\"), not its client ID or name",
            ),
            (&[("INPUT_APP-ID", "7")], "input `app-private-key` is empty"),
            (&[("INPUT_APP-PRIVATE-KEY", KEY)], "input `app-id` is empty"),
            (
                &[("INPUT_APP-ID", "7"), ("INPUT_APP-PRIVATE-KEY", "ssh-rsa AAAA")],
                "input `app-private-key` is not a PEM private key",
            ),
        ];
        for (inputs, expected) in cases {
            let error = config(inputs)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.starts_with(expected), "{inputs:?}: {error}");
        }
        assert!(config(&[]).is_ok_and(|c| c.credentials().is_err()));
    }

    #[test]
    fn artifact_store_inputs() {
        const KEY: &str = "KasJ/+PTcUQr+7Owz01W1dvTjyqZtVAkkBSvHK5PONs=";
        let base = [
            ("INPUT_STORE", "artifact"),
            ("INPUT_ARTIFACT-KEY", KEY),
            ("INPUT_GITHUB-TOKEN", "ghs_x"),
            ("GITHUB_REPOSITORY_ID", "42"),
        ];
        let store = config(&base).map(|c| c.store);
        let Ok(Store::Artifact(store)) = store else {
            panic!("expected the artifact store");
        };
        assert_eq!(store.name, DEFAULT_ARTIFACT_NAME);
        assert_eq!(store.repository_id, 42);
        assert_eq!(store.retention_days, None);
        let cases: [(&str, &str, &str); 6] = [
            (
                "INPUT_STORE",
                "s3",
                "input `store` is \"s3\"; expected secret",
            ),
            ("INPUT_ARTIFACT-KEY", "", "input `artifact-key` is empty"),
            ("INPUT_ARTIFACT-KEY", "c2hvcnQ=", "input `artifact-key` "),
            (
                "INPUT_ARTIFACT-NAME",
                "a/b",
                "input `artifact-name` \"a/b\" contains '/'",
            ),
            (
                "INPUT_RETENTION-DAYS",
                "401",
                "input `retention-days` is \"401\"; expected a number of days from 1 to 400",
            ),
            (
                "GITHUB_REPOSITORY_ID",
                "x",
                "GITHUB_REPOSITORY_ID is not set to a number",
            ),
        ];
        for (name, value, expected) in cases {
            let mut env: Vec<(&str, &str)> =
                base.iter().filter(|(k, _)| *k != name).copied().collect();
            env.push((name, value));
            let error = config(&env)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.starts_with(expected), "{name}={value}: {error}");
            assert!(!error.contains(KEY));
        }
        assert!(matches!(config(&[]).map(|c| c.store), Ok(Store::Secret)));
    }
}
