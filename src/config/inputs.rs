//! The action's inputs, parsed and checked: what to run (`mode`, the prompt, `codex exec`'s
//! settings, `codex-args`),
//! where the login is kept (`store`, the secret's scope and name, the artifact settings), and
//! what can write it (`token`, or a GitHub App).

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::validate::{parse_bool, validate_repository, validate_secret_name, validate_slug};
use super::{ConfigError, Vars};
use crate::github::{RetryPolicy, Scope, SecretTarget};
use crate::redacted::Redacted;
use crate::seal::artifact::ArtifactKey;

/// The default secret name.
pub const DEFAULT_SECRET_NAME: &str = "CODEX_AUTH_JSON";
/// The default prompt: the cheapest model call that proves the login works.
pub const DEFAULT_PROMPT: &str = "Reply with the single word OK.";
/// The default artifact name.
pub const DEFAULT_ARTIFACT_NAME: &str = "codex-auth";

/// What the main stage does with the restored login (input `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `codex exec` with the prompt (default).
    Exec,
    /// Keep-fresh: make Codex refresh the login through its app-server, with no model call.
    Refresh,
    /// Restore only: later steps of the job run Codex on the host; the post stage persists.
    Restore,
    /// Sign in anew through Codex's device-code sign-in, and store the new login.
    Login,
}

/// The account a new sign-in must be of (input `expected-account`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedAccount {
    /// The account's email, compared without case.
    Email(String),
    /// The ChatGPT account (workspace) id, which Codex itself enforces.
    AccountId(String),
}

/// What the action authenticates to the Secrets API with.
pub enum Credentials {
    /// Input `token`: a personal access token or an installation token made beforehand.
    Token(Redacted),
    /// Inputs `app-id` and `app-private-key`: a GitHub App whose installation token the
    /// action makes itself, for the target's repository or organization.
    App {
        /// The App's numeric id.
        app_id: u64,
        /// The App's private key, PEM.
        private_key: Redacted,
    },
}

impl Credentials {
    /// The secret part: the token, or the App's private key.
    pub fn secret(&self) -> &Redacted {
        match self {
            Credentials::Token(token) => token,
            Credentials::App { private_key, .. } => private_key,
        }
    }
}

/// Where the refreshed login is kept (input `store`).
pub enum StoreConfig {
    /// A repository, environment or organization secret (default).
    Secret {
        /// With input `artifact-key`: where a login goes when writing the secret fails after
        /// Codex rotated it, an encrypted artifact that the next run restores from.
        rescue: Option<ArtifactSettings>,
    },
    /// An encrypted workflow artifact of this repository.
    Artifact(ArtifactSettings),
}

/// The artifact store's settings.
pub struct ArtifactSettings {
    /// Input `artifact-key`.
    pub key: ArtifactKey,
    /// Input `artifact-name`.
    pub name: String,
    /// Input `retention-days`; the repository's retention when `None`.
    pub retention_days: Option<u32>,
    /// `GITHUB_RETENTION_DAYS`: the longest retention the repository allows.
    pub max_retention_days: Option<u32>,
    /// Input `github-token`: reads the repository's artifacts.
    pub github_token: Redacted,
    /// `GITHUB_REPOSITORY_ID`, which the encryption binds the artifact to.
    pub repository_id: u64,
    /// `ACTIONS_RESULTS_URL`, for uploading.
    pub results_url: Option<String>,
    /// `ACTIONS_RUNTIME_TOKEN`, for uploading.
    pub runtime_token: Option<Redacted>,
}

/// Input `access-secret-name`: the keeper's access-only copy, a secret beside `target`
/// (same repository, environment or organization) with another name.
pub(super) fn access_target(
    vars: &Vars,
    target: &SecretTarget,
) -> Result<Option<SecretTarget>, ConfigError> {
    let Some(name) = vars.input("access-secret-name") else {
        return Ok(None);
    };
    validate_secret_name(name).map_err(|error| match error {
        ConfigError::Invalid { title, problem, .. } => ConfigError::Invalid {
            input: "access-secret-name",
            title,
            problem,
        },
        other => other,
    })?;
    if name.eq_ignore_ascii_case(&target.name) {
        return Err(ConfigError::Invalid {
            input: "access-secret-name",
            title: "Copy named like the login",
            problem: format!(
                "is the same secret as `secret-name` ({}): the access-only copy needs a name of \
                 its own, e.g. CODEX_ACCESS_JSON",
                target.name
            ),
        });
    }
    Ok(Some(target.sibling(name)))
}

/// Inputs `secret-name`, `environment` and `organization`, with `GITHUB_REPOSITORY` and
/// `GITHUB_REPOSITORY_ID`.
pub(super) fn target(vars: &Vars, repository: Option<&str>) -> Result<SecretTarget, ConfigError> {
    let name = vars
        .input("secret-name")
        .unwrap_or(DEFAULT_SECRET_NAME)
        .to_owned();
    validate_secret_name(&name)?;
    if let Some(repository) = repository {
        validate_repository(repository)?;
    }
    let scope = match (vars.input("environment"), vars.input("organization")) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Invalid {
                input: "environment",
                title: "Environment and organization both given",
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
            let repository = repository.ok_or(ConfigError::Runner {
                variable: "GITHUB_REPOSITORY",
                title: "GITHUB_REPOSITORY not set",
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
    Ok(SecretTarget {
        scope,
        name,
        // Needed only to create an organization secret; the write says so when it is missing.
        repository_id: vars
            .get("GITHUB_REPOSITORY_ID")
            .and_then(|v| v.parse().ok()),
    })
}

/// Input `codex-args`: a JSON array of strings when it starts with `[`, else split like a
/// shell would (openai/codex-action takes both).
pub(super) fn codex_args(vars: &Vars) -> Result<Vec<String>, ConfigError> {
    match vars.input("codex-args") {
        None => Ok(Vec::new()),
        Some(args) if args.starts_with('[') => {
            serde_json::from_str::<Vec<String>>(args).map_err(|e| ConfigError::Invalid {
                input: "codex-args",
                title: "Invalid codex-args array",
                problem: format!(
                    "starts with `[` but is not a JSON array of strings ({e}); write it as \
                     `[\"--flag\", \"value\"]`, or as a shell-like string without the brackets"
                ),
            })
        }
        Some(args) => shlex::split(args).ok_or_else(|| ConfigError::Invalid {
            input: "codex-args",
            title: "Unclosed quote in codex-args",
            problem: "has an unclosed quote or a trailing backslash; quote it as you would in a \
                      shell"
                .into(),
        }),
    }
}

/// The prompt for `codex exec`: input `prompt`, or the file input `prompt-file` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Input `prompt` ([`DEFAULT_PROMPT`] when neither is given).
    Text(String),
    /// Input `prompt-file`: a file in the workspace, relative to it, read before any login is
    /// restored.
    File(PathBuf),
}

/// The JSON Schema for Codex's final message (`codex exec --output-schema`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSchema {
    /// Input `output-schema`: the schema itself, as compact JSON.
    Inline(String),
    /// Input `output-schema-file`: a file in the workspace, relative to it.
    File(PathBuf),
}

/// The values of Codex's `model_reasoning_effort` (the Responses API's reasoning efforts;
/// Codex 0.171.0 passes any word on, and the model refuses the ones it does not know).
pub const EFFORTS: &[&str] = &["none", "minimal", "low", "medium", "high", "xhigh"];

/// A path input relative to the workspace (GITHUB_WORKSPACE), as a plain relative path: `.`
/// dropped, `..` resolved, an absolute path inside the workspace made relative. A path that
/// leaves the workspace is refused; links are refused where the path is used
/// ([`crate::untrusted`]). An empty result is the workspace itself.
pub(super) fn workspace_path(
    vars: &Vars,
    input: &'static str,
    workspace: &Path,
) -> Result<Option<PathBuf>, ConfigError> {
    let Some(value) = vars.input(input) else {
        return Ok(None);
    };
    let path = Path::new(value);
    let relative = match path.is_absolute() {
        true => path
            .strip_prefix(workspace)
            .map_err(|_| ConfigError::Invalid {
                input,
                title: outside_title(input),
                problem: format!(
                    "is \"{value}\", outside the workspace ({}); give a path relative to the \
                     workspace, such as `{}` (in the container action, `${{{{ \
                     github.workspace }}}}` and `${{{{ runner.temp }}}}` are the runner's paths, \
                     not the container's)",
                    workspace.display(),
                    match input {
                        "prompt-file" => ".github/codex/prompt.md",
                        "output-schema-file" => ".github/codex/schema.json",
                        "output-file" => "codex-answer.md",
                        _ => "services/api",
                    }
                ),
            })?,
        false => path,
    };
    let mut normal = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(name) => normal.push(name),
            Component::CurDir => {}
            Component::ParentDir if normal.pop() => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(ConfigError::Invalid {
                    input,
                    title: outside_title(input),
                    problem: format!(
                        "\"{value}\" leaves the workspace ({}); give a path inside it",
                        workspace.display()
                    ),
                })
            }
        }
    }
    Ok(Some(normal))
}

/// The title of a path input's refusal as outside the workspace (or naming the workspace
/// itself, where a file is wanted).
fn outside_title(input: &'static str) -> &'static str {
    match input {
        "prompt-file" => "Prompt file outside the workspace",
        "output-schema-file" => "Output schema file outside the workspace",
        "output-file" => "Output file outside the workspace",
        _ => "Working directory outside the workspace",
    }
}

/// [`workspace_path`] that must name a file, not the workspace itself.
pub(super) fn workspace_file(
    vars: &Vars,
    input: &'static str,
    workspace: &Path,
) -> Result<Option<PathBuf>, ConfigError> {
    let path = workspace_path(vars, input, workspace)?;
    if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
        return Err(ConfigError::Invalid {
            input,
            title: outside_title(input),
            problem: "names the workspace itself; give the path of a file in it".into(),
        });
    }
    Ok(path)
}

/// Inputs `prompt` and `prompt-file`: one or the other; the default prompt when neither.
pub(super) fn prompt(vars: &Vars, workspace: &Path) -> Result<Prompt, ConfigError> {
    let file = workspace_file(vars, "prompt-file", workspace)?;
    match (vars.input("prompt"), file) {
        (Some(_), Some(_)) => Err(ConfigError::Invalid {
            input: "prompt-file",
            title: "Prompt given twice",
            problem: "and input `prompt` are both set; give the prompt inline or in a file, not \
                      both"
                .into(),
        }),
        (Some(text), None) => Ok(Prompt::Text(text.to_owned())),
        (None, Some(file)) => Ok(Prompt::File(file)),
        (None, None) => Ok(Prompt::Text(DEFAULT_PROMPT.to_owned())),
    }
}

/// Inputs `output-schema` and `output-schema-file`: one or the other. An inline schema must
/// be a JSON object; a file is read (and checked alike) before any login is restored.
pub(super) fn output_schema(
    vars: &Vars,
    workspace: &Path,
) -> Result<Option<OutputSchema>, ConfigError> {
    let file = workspace_file(vars, "output-schema-file", workspace)?;
    match (vars.input("output-schema"), file) {
        (Some(_), Some(_)) => Err(ConfigError::Invalid {
            input: "output-schema-file",
            title: "Output schema given twice",
            problem: "and input `output-schema` are both set; give the schema inline or in a \
                      file, not both"
                .into(),
        }),
        (Some(text), None) => Ok(Some(OutputSchema::Inline(schema_json(text).map_err(
            |problem| ConfigError::Invalid {
                input: "output-schema",
                title: "Invalid output schema",
                problem,
            },
        )?))),
        (None, Some(file)) => Ok(Some(OutputSchema::File(file))),
        (None, None) => Ok(None),
    }
}

/// A JSON Schema's text as compact JSON: it must be a JSON object. The error completes
/// "input `output-schema` …".
pub fn schema_json(text: &str) -> Result<String, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("is not valid JSON ({e}); give a JSON Schema object"))?;
    let kind = match &value {
        serde_json::Value::Object(_) => return Ok(value.to_string()),
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
    };
    Err(format!(
        "is a JSON {kind}, not an object; give a JSON Schema object such as \
         `{{\"type\":\"object\",\"properties\":{{…}}}}`"
    ))
}

/// Input `model`: one word, as Codex's `--model` takes it.
pub(super) fn model(vars: &Vars) -> Result<Option<String>, ConfigError> {
    let Some(value) = vars.input("model") else {
        return Ok(None);
    };
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) || value.starts_with('-') {
        return Err(ConfigError::Invalid {
            input: "model",
            title: "Invalid model",
            problem: format!(
                "is \"{}\"; expected one model name, such as `gpt-5.1-codex`, without spaces",
                value.escape_debug()
            ),
        });
    }
    Ok(Some(value.to_owned()))
}

/// Input `effort`: one of [`EFFORTS`].
pub(super) fn effort(vars: &Vars) -> Result<Option<String>, ConfigError> {
    let Some(value) = vars.input("effort") else {
        return Ok(None);
    };
    if !EFFORTS.contains(&value) {
        return Err(ConfigError::Invalid {
            input: "effort",
            title: "Invalid effort",
            problem: format!(
                "is \"{}\"; expected one of {} (Codex's `model_reasoning_effort`; which a \
                 model supports depends on the model)",
                value.escape_debug(),
                EFFORTS.join(", ")
            ),
        });
    }
    Ok(Some(value.to_owned()))
}

/// What an input sets that `codex-args` could set too: its flags and its configuration key.
struct Setting {
    input: &'static str,
    flags: &'static [&'static str],
    key: Option<&'static str>,
}

/// The inputs `codex-args` must not set a second time.
const SETTINGS: &[Setting] = &[
    Setting {
        input: "model",
        flags: &["-m", "--model"],
        key: Some("model"),
    },
    Setting {
        input: "effort",
        flags: &[],
        key: Some("model_reasoning_effort"),
    },
    Setting {
        input: "working-directory",
        flags: &["-C", "--cd"],
        key: None,
    },
    Setting {
        input: "output-schema",
        flags: &["--output-schema"],
        key: None,
    },
    Setting {
        input: "output-schema-file",
        flags: &["--output-schema"],
        key: None,
    },
    Setting {
        input: "output-file",
        flags: &["-o", "--output-last-message"],
        key: None,
    },
];

/// Refuses an input that `codex-args` sets as well (`input` names the inputs given): Codex
/// would take one of the two, or refuse a flag given twice.
pub(super) fn refuse_twice(args: &[String], given: &[&'static str]) -> Result<(), ConfigError> {
    for setting in SETTINGS.iter().filter(|s| given.contains(&s.input)) {
        if let Some(arg) = sets(args, setting) {
            return Err(ConfigError::Invalid {
                input: setting.input,
                title: "Set twice in codex-args",
                problem: format!(
                    "is set, and input `codex-args` sets the same (`{arg}`); set it in one place"
                ),
            });
        }
    }
    Ok(())
}

/// The argument of `args` (before `--`) that sets what `setting` sets, if any.
fn sets(args: &[String], setting: &Setting) -> Option<String> {
    let sets_key = |value: &str| {
        setting
            .key
            .is_some_and(|key| value.split_once('=').is_some_and(|(k, _)| k.trim() == key))
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let arg = arg.as_str();
        if arg == "--" {
            break;
        }
        if arg == "-c" || arg == "--config" {
            match args.next() {
                Some(value) if sets_key(value) => return Some(format!("{arg} {value}")),
                _ => continue,
            }
        }
        let config = ["--config=", "-c"]
            .iter()
            .filter_map(|p| arg.strip_prefix(p))
            .any(sets_key);
        let flag = setting.flags.iter().any(|flag| {
            arg == *flag
                || match flag.starts_with("--") {
                    true => arg.starts_with(&format!("{flag}=")),
                    false => arg.starts_with(flag) && arg.len() > flag.len(),
                }
        });
        if config || flag {
            return Some(arg.to_owned());
        }
    }
    None
}

/// The suffixes of `@openai/codex`'s platform packages (`0.171.0-linux-x64`), which are
/// versions of the package too, but not a version of Codex to name.
const PLATFORM_SUFFIXES: &[&str] = &[
    "-linux-x64",
    "-linux-arm64",
    "-darwin-x64",
    "-darwin-arm64",
    "-win32-x64",
    "-win32-arm64",
];

/// Input `codex-version`: one exact version of `@openai/codex` (`0.171.0`, or a prerelease
/// such as `0.162.0-alpha.15`). A range or a tag would let the registry pick what runs with
/// the login, and change it between two steps of one job.
pub(super) fn codex_version(vars: &Vars) -> Result<Option<String>, ConfigError> {
    let Some(value) = vars.input("codex-version") else {
        return Ok(None);
    };
    let invalid = |problem: String| ConfigError::Invalid {
        input: "codex-version",
        title: "Codex version not exact",
        problem,
    };
    if let Some(bare) = value.strip_prefix(['v', 'V']) {
        if semver::Version::parse(bare).is_ok() {
            return Err(invalid(format!(
                "is \"{value}\"; write the version without the `v`: `{bare}`"
            )));
        }
    }
    let Ok(version) = semver::Version::parse(value) else {
        let wildcard = value.split('.').any(|part| matches!(part, "x" | "X" | "*"));
        let what = if wildcard || value.chars().any(|c| "^~<>=*| ".contains(c)) {
            "a range"
        } else if value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            "a tag"
        } else {
            "not a version"
        };
        return Err(invalid(format!(
            "is \"{value}\", {what}; name one exact version of @openai/codex, such as \
             `0.171.0` (`npm view @openai/codex versions` lists them): the version that runs \
             with the login is the one the workflow names, never one the registry picks"
        )));
    };
    if !version.build.is_empty() {
        return Err(invalid(format!(
            "is \"{value}\"; npm versions carry no build metadata: drop `+{}`",
            version.build
        )));
    }
    if let Some(suffix) = PLATFORM_SUFFIXES.iter().find(|s| value.ends_with(*s)) {
        return Err(invalid(format!(
            "is \"{value}\", a platform package; name the version itself (`{}`): the action \
             takes the package for the runner's platform",
            &value[..value.len() - suffix.len()]
        )));
    }
    Ok(Some(version.to_string()))
}

/// Input `mode`.
pub(super) fn mode(vars: &Vars) -> Result<Mode, ConfigError> {
    match vars.input("mode") {
        None | Some("exec") => Ok(Mode::Exec),
        Some("refresh") => Ok(Mode::Refresh),
        Some("restore") => Ok(Mode::Restore),
        Some("login") => Ok(Mode::Login),
        Some(other) => Err(ConfigError::Invalid {
            input: "mode",
            title: "Unknown mode",
            problem: format!(
                "is \"{other}\"; expected exec (run codex exec with the prompt), refresh (keep \
                 the login fresh without a model call), restore (only restore auth.json for \
                 later steps) or login (sign in anew from the browser and store the login)"
            ),
        }),
    }
}

/// A boolean input, `false` when not given.
pub(super) fn flag(vars: &Vars, name: &'static str) -> Result<bool, ConfigError> {
    vars.input(name)
        .map_or(Ok(false), |value| parse_bool(name, value))
}

/// Input `api-timeout` bounds the default retry policy.
pub(super) fn retry(vars: &Vars) -> Result<RetryPolicy, ConfigError> {
    let policy = RetryPolicy::default();
    let Some(value) = vars.input("api-timeout") else {
        return Ok(policy);
    };
    let seconds = value
        .parse::<u64>()
        .ok()
        .filter(|s| (1..=3600).contains(s))
        .ok_or_else(|| ConfigError::Invalid {
            input: "api-timeout",
            title: "API timeout out of range",
            problem: format!("is \"{value}\"; expected a number of seconds from 1 to 3600"),
        })?;
    Ok(policy.within(Duration::from_secs(seconds)))
}

/// Input `expected-account`: an email, or a ChatGPT account id.
pub(super) fn expected_account(vars: &Vars) -> Result<Option<ExpectedAccount>, ConfigError> {
    let Some(value) = vars.input("expected-account") else {
        return Ok(None);
    };
    if value.contains('@') {
        let valid = value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !value.contains(char::is_whitespace)
        });
        return match valid {
            true => Ok(Some(ExpectedAccount::Email(value.to_owned()))),
            false => Err(ConfigError::Invalid {
                input: "expected-account",
                title: "Expected account not an email",
                problem: format!("\"{value}\" is not an email address"),
            }),
        };
    }
    if value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Ok(Some(ExpectedAccount::AccountId(value.to_owned())));
    }
    Err(ConfigError::Invalid {
        input: "expected-account",
        title: "Expected account not valid",
        problem: format!(
            "is \"{value}\"; expected the email of the ChatGPT account, or its account id \
             (`tokens.account_id` in auth.json, as `codex-auth inspect` shows it)"
        ),
    })
}

/// Codex's own limit for a device-code sign-in: 15 minutes.
pub const MAX_LOGIN_SECONDS: u64 = 900;

/// Input `login-timeout`: how long `mode: login` waits for the sign-in to be approved.
pub(super) fn login_timeout(vars: &Vars) -> Result<Duration, ConfigError> {
    let Some(value) = vars.input("login-timeout") else {
        return Ok(Duration::from_secs(MAX_LOGIN_SECONDS));
    };
    value
        .parse::<u64>()
        .ok()
        .filter(|s| (1..=MAX_LOGIN_SECONDS).contains(s))
        .map(Duration::from_secs)
        .ok_or_else(|| ConfigError::Invalid {
            input: "login-timeout",
            title: "Login timeout out of range",
            problem: format!(
                "is \"{value}\"; expected a number of seconds from 1 to 900 (Codex's own \
                 limit for a device-code sign-in is 15 minutes)"
            ),
        })
}

/// GitHub's limit for a job on its hosted runners: 6 hours.
pub const DEFAULT_JOB_TIMEOUT_MINUTES: u64 = 360;

/// Input `job-timeout-minutes`: how long the job may run, which bounds when Codex may
/// refresh the login during it.
pub(super) fn job_timeout(vars: &Vars) -> Result<Duration, ConfigError> {
    let minutes = match vars.input("job-timeout-minutes") {
        None => DEFAULT_JOB_TIMEOUT_MINUTES,
        Some(value) => value
            .parse::<u64>()
            .ok()
            .filter(|m| (1..=7200).contains(m))
            .ok_or_else(|| ConfigError::Invalid {
                input: "job-timeout-minutes",
                title: "Job timeout out of range",
                problem: format!(
                    "is \"{value}\"; expected the job's time limit in minutes, from 1 to 7200 \
                     (the job's `timeout-minutes`; GitHub stops jobs on its runners after 360, \
                     on self-hosted runners after 5 days)"
                ),
            })?,
    };
    Ok(Duration::from_secs(minutes * 60))
}

/// Input `store`, with the artifact store's settings.
pub(super) fn store(vars: &Vars) -> Result<StoreConfig, ConfigError> {
    match vars.input("store") {
        None | Some("secret") => Ok(StoreConfig::Secret {
            rescue: match vars.input("artifact-key") {
                Some(_) => Some(artifact_settings(vars)?),
                None => None,
            },
        }),
        Some("artifact") => Ok(StoreConfig::Artifact(artifact_settings(vars)?)),
        Some(other) => Err(ConfigError::Invalid {
            input: "store",
            title: "Unknown store",
            problem: format!(
                "is \"{other}\"; expected secret (write the login back to a secret) or \
                 artifact (keep it as an encrypted workflow artifact)"
            ),
        }),
    }
}

/// The artifact store's inputs and runner variables.
fn artifact_settings(vars: &Vars) -> Result<ArtifactSettings, ConfigError> {
    let input = |name: &str| vars.input(name);
    let get = |name: &str| vars.get(name);
    let key = match input("artifact-key") {
        None => {
            return Err(ConfigError::Missing {
                input: "artifact-key",
                title: "Artifact key missing",
                fix: "`store: artifact` encrypts the login with it: run `codex-auth keygen`, \
                      store the key it prints as a secret (e.g. CODEX_AUTH_ARTIFACT_KEY) and pass \
                      `artifact-key: ${{ secrets.CODEX_AUTH_ARTIFACT_KEY }}`",
            })
        }
        Some(text) => ArtifactKey::parse(text).map_err(|e| ConfigError::Invalid {
            input: "artifact-key",
            title: "Artifact key not valid",
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
            title: "Artifact name not allowed",
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
                    title: "Retention days out of range",
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
        title: "GitHub token missing",
        fix: "`store: artifact` reads the repository's artifacts with it; its default is the \
              workflow's token (`${{ github.token }}`), which needs `permissions: actions: read`",
    })?;
    let repository_id = get("GITHUB_REPOSITORY_ID")
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or(ConfigError::Runner {
            variable: "GITHUB_REPOSITORY_ID",
            title: "GITHUB_REPOSITORY_ID not set",
            problem: "is not set to a number; the runner sets it (the artifact is bound to the \
                      repository's id)"
                .into(),
        })?;
    Ok(ArtifactSettings {
        key,
        name,
        retention_days,
        max_retention_days,
        github_token: Redacted::new(github_token),
        repository_id,
        results_url: get("ACTIONS_RESULTS_URL").map(str::to_owned),
        runtime_token: get("ACTIONS_RUNTIME_TOKEN").map(Redacted::new),
    })
}

/// Input `token`, or a GitHub App's `app-id` and `app-private-key`: one or the other.
pub(super) fn credentials(vars: &Vars) -> Result<Option<Credentials>, ConfigError> {
    let (token, app_id, private_key) = (
        vars.input("token"),
        vars.input("app-id"),
        vars.input("app-private-key"),
    );
    let app_id =
        match app_id {
            None => None,
            Some(value) => Some(value.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(
                || ConfigError::Invalid {
                    input: "app-id",
                    title: "App ID not a number",
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
            title: "Token and App both given",
            problem: "and the GitHub App inputs (`app-id`, `app-private-key`) are both set; \
                      pass one way of writing the secret: either a token or the App"
                .into(),
        }),
        (Some(token), None, None) => Ok(Some(Credentials::Token(Redacted::new(token)))),
        (None, Some(_), None) => Err(ConfigError::Missing {
            input: "app-private-key",
            title: "App private key missing",
            fix: "`app-id` is set, so pass the App's private key too, e.g. \
                  `app-private-key: ${{ secrets.CODEX_AUTH_APP_KEY }}` holding the .pem file \
                  GitHub generated (App settings → Private keys)",
        }),
        (None, None, Some(_)) => Err(ConfigError::Missing {
            input: "app-id",
            title: "App ID missing",
            fix: "`app-private-key` is set, so pass the App's numeric ID too, e.g. \
                  `app-id: ${{ vars.CODEX_AUTH_APP_ID }}` (App settings → General → \"App ID\")",
        }),
        (None, Some(app_id), Some(key)) => {
            if !key.contains("-----BEGIN") || !key.contains("PRIVATE KEY-----") {
                return Err(ConfigError::Invalid {
                    input: "app-private-key",
                    title: "Invalid app-private-key",
                    problem: "is not a PEM private key; pass the whole .pem file GitHub \
                              generated for the App, from -----BEGIN RSA PRIVATE KEY----- to \
                              the END line, with its line breaks"
                        .into(),
                });
            }
            Ok(Some(Credentials::App {
                app_id,
                private_key: Redacted::new(key),
            }))
        }
        (None, None, None) => Ok(None),
    }
}

/// Input `codex-access-token`: a Codex access token (`at-…`) of a ChatGPT Business or
/// Enterprise workspace, which Codex reads from `CODEX_ACCESS_TOKEN` and never refreshes
/// (docs/facts.md, "Codex access tokens"). Nothing rotates, so nothing is stored or written
/// back: every input that would restore or store a login, or write a secret, is refused with
/// it, as is every mode but `exec`, each naming what to remove.
pub(super) fn access_token(
    vars: &Vars,
    mode: Mode,
    artifact_store: bool,
) -> Result<Option<Redacted>, ConfigError> {
    let Some(token) = vars.input("codex-access-token") else {
        return Ok(None);
    };
    // Nothing rotates: there is no login to restore, store or write back.
    const WHY: &str = "Codex runs on the access token itself, which nothing rotates: there is \
                       no login to restore, store or write back";
    if vars.input("auth-json").is_some() {
        return Err(ConfigError::Invalid {
            input: "codex-access-token",
            title: "Access token with auth-json",
            problem: format!(
                "is set with `auth-json`: pass one or the other (remove `auth-json` to run on \
                 the token, or `codex-access-token` to run on the login). {WHY}"
            ),
        });
    }
    if let Some(input) = ["token", "app-id", "app-private-key"]
        .into_iter()
        .find(|input| vars.input(input).is_some())
    {
        return Err(ConfigError::Invalid {
            input: "codex-access-token",
            title: "Access token with a write credential",
            problem: format!(
                "is set with `{input}`, a credential that can write secrets: remove it, so \
                 that no job running on the token holds one. {WHY}"
            ),
        });
    }
    if artifact_store || vars.input("access-secret-name").is_some() {
        let input = match artifact_store {
            true => "`store: artifact`",
            false => "`access-secret-name`",
        };
        return Err(ConfigError::Invalid {
            input: "codex-access-token",
            title: "Access token with a store",
            problem: format!("is set with {input}, which keeps a login: remove it. {WHY}"),
        });
    }
    if mode != Mode::Exec {
        return Err(ConfigError::Invalid {
            input: "codex-access-token",
            title: "Access token outside exec mode",
            problem: "is only read with `mode: exec`: an access token has nothing to refresh \
                      or sign in to, and later steps that run Codex themselves take it as it \
                      is (`env: CODEX_ACCESS_TOKEN: ${{ secrets.CODEX_ACCESS_TOKEN }}` on \
                      those steps); remove `mode`, or this input"
                .into(),
        });
    }
    Ok(Some(Redacted::new(token)))
}
