//! The one place that reads the outside world: `INPUT_*`, `GITHUB_*`, `RUNNER_*`, `STATE_*`,
//! `CODEX_HOME`. Everything below takes an [`ActionConfig`], never `std::env`.
//!
//! - [`inputs`]: the action's inputs, parsed and checked;
//! - the runner's variables are read here, in [`ActionConfig::from_env`];
//! - [`validate`]: rules for names GitHub gives things, shared with the `seed` subcommand.
//!
//! The runner passes each input as `INPUT_<NAME>` with the name upper-cased and hyphens kept
//! (`auth-json` → `INPUT_AUTH-JSON`), and passes declared inputs without a value as empty
//! strings, so an empty input means "not given" here. Defaults live here as well as in
//! `action.yml`, so the binary behaves the same when run by hand.

mod inputs;
pub(crate) mod validate;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use inputs::{
    schema_json, ArtifactSettings, Credentials, ExpectedAccount, Mode, OutputSchema, Prompt,
    StoreConfig, DEFAULT_ARTIFACT_NAME, DEFAULT_JOB_TIMEOUT_MINUTES, DEFAULT_PROMPT,
    DEFAULT_SECRET_NAME, EFFORTS, MAX_LOGIN_SECONDS,
};

use crate::failure::Failure;
use crate::github::{RetryPolicy, SecretTarget};
use crate::net;
use crate::redacted::Redacted;
use crate::workflow::Workflow;

/// An input or runner variable that is not usable, with the fix.
///
/// Every error has a title of its own, required by each variant: the annotation's title
/// (`::error title=codex-auth: <title>::`) and the CLI's (`error: <title>: …`), a few words
/// saying what is wrong ("Expected account missing"), each with a row in
/// docs/troubleshooting.md. Two problems never share a title; the same problem of two inputs
/// may (the message names the input).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required input is empty.
    #[error("input `{input}` is empty: {fix}")]
    Missing {
        /// The input's name.
        input: &'static str,
        /// What is wrong, in a few words.
        title: &'static str,
        /// What to pass.
        fix: &'static str,
    },
    /// An input with a value it cannot have.
    #[error("input `{input}` {problem}")]
    Invalid {
        /// The input's name.
        input: &'static str,
        /// What is wrong, in a few words.
        title: &'static str,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// A runner variable that is missing or malformed.
    #[error("{variable} {problem}")]
    Runner {
        /// The variable.
        variable: &'static str,
        /// What is wrong, in a few words.
        title: &'static str,
        /// What is wrong.
        problem: String,
    },
}

impl ConfigError {
    /// The error's title: what is wrong, in a few words.
    pub fn title(&self) -> &'static str {
        match self {
            ConfigError::Missing { title, .. }
            | ConfigError::Invalid { title, .. }
            | ConfigError::Runner { title, .. } => title,
        }
    }
}

impl From<ConfigError> for Failure {
    /// The failure, its message a sentence (the fixes a caller adds follow it).
    fn from(error: ConfigError) -> Self {
        Failure::new(error.title(), crate::failure::sentence(&error.to_string()))
    }
}

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
    pub auth_json: Option<Redacted>,
    /// Input `token`, or inputs `app-id` and `app-private-key`: what can write the secret.
    pub credentials: Option<Credentials>,
    /// Input `codex-access-token`: a Codex access token (`at-…`) that Codex runs on instead of
    /// a login; then nothing is restored, stored or written back.
    pub access_token: Option<Redacted>,
    /// The secret to write back to.
    pub target: SecretTarget,
    /// Input `access-secret-name`: the secret beside `target` that gets an access-only copy of
    /// every login stored (the keeper's); `None` when empty.
    pub access_target: Option<SecretTarget>,
    /// Input `github-token` (the workflow's token by default): reads what the job may read
    /// without a write token (the repository's visibility, whatever the store; the artifacts).
    pub github_token: Option<Redacted>,
    /// Input `store`: a secret (`target`) or an artifact.
    pub store: StoreConfig,
    /// `GITHUB_REPOSITORY` (`owner/name`), the repository the workflow runs in.
    pub repository: Option<String>,
    /// Input `mode`.
    pub mode: Mode,
    /// Input `prompt` or `prompt-file`.
    pub prompt: Prompt,
    /// Input `model`: `codex exec --model`.
    pub model: Option<String>,
    /// Input `effort`: Codex's `model_reasoning_effort`.
    pub effort: Option<String>,
    /// Input `output-schema` or `output-schema-file`: `codex exec --output-schema`.
    pub output_schema: Option<OutputSchema>,
    /// Input `output-file`: where the final message is written, relative to the workspace.
    pub output_file: Option<PathBuf>,
    /// Input `working-directory`: `codex exec --cd`, relative to the workspace (empty: the
    /// workspace itself).
    pub working_directory: Option<PathBuf>,
    /// Input `codex-args`: a JSON array, or split like a shell would.
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
    /// Input `job-timeout-minutes`: how long the job may run, during which Codex may refresh.
    pub job_timeout: std::time::Duration,
    /// Input `expected-account`: the account a new sign-in (`mode: login`) must be of.
    pub expected_account: Option<ExpectedAccount>,
    /// Input `login-timeout`: how long `mode: login` waits for the sign-in to be approved.
    pub login_timeout: std::time::Duration,
    /// Where Codex keeps auth.json: `CODEX_HOME`, else `$HOME/.codex`.
    pub codex_home: PathBuf,
    /// `GITHUB_WORKSPACE`, where Codex runs.
    pub workspace: PathBuf,
    /// `RUNNER_TEMP`, for scratch files.
    pub temp_dir: PathBuf,
    /// `RUNNER_WORKSPACE`: a host path even inside a container action (the runner does not
    /// translate it), from which the host path of `/github/home` follows.
    pub runner_workspace: Option<PathBuf>,
    /// `RUNNER_TEMP` as the runner set it (`None` outside a runner), which the runner empties
    /// at the start and end of every job.
    pub runner_temp: Option<PathBuf>,
    /// The runner's command files.
    pub workflow: Workflow,
    /// `STATE_*` values saved by the main stage.
    pub state: BTreeMap<String, String>,
    /// The whole environment, for deriving Codex's (which drops the secrets).
    pub environment: Vec<(OsString, OsString)>,
    /// Input `codex-version`, and where a version not on PATH comes from.
    pub codex: CodexSource,
    /// The runner's proxy and CA variables (`HTTPS_PROXY`, `NO_PROXY`, `SSL_CERT_FILE`, …):
    /// the CA files are not read yet ([`Self::load_trust`]).
    pub network: net::Settings,
    /// The certificates the CA variables named, once [`Self::load_trust`] read them.
    pub trust: net::Trust,
    /// The one HTTP client of every request: the proxies, and the built-in roots with
    /// [`Self::trust`].
    pub transport: net::Transport,
    /// A proxy variable that cannot be used: the main stage refuses to start
    /// ([`Self::check_network`]); the post stage first drops the variables a later step set,
    /// and never fails for one (it would lose a rotated login). Meanwhile [`Self::transport`]
    /// takes no proxy.
    pub network_problem: Option<ConfigError>,
}

/// Which Codex runs: the one on PATH (the image's pinned version), or the version input
/// `codex-version` names, fetched from the npm registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodexSource {
    /// Input `codex-version`: one exact version; `None` runs the `codex` on PATH.
    pub version: Option<String>,
    /// The npm registry: `npm_config_registry` (as npm reads it), else the one the image was
    /// built from ([`IMAGE_REGISTRY_FILE`]); `None` outside the image (npm is asked then).
    pub registry: Option<String>,
    /// Where fetched versions are unpacked and reused: `RUNNER_TOOL_CACHE` where that
    /// directory exists (on the host), else `RUNNER_TEMP` (in the container, which sees no
    /// tool cache).
    pub cache_root: PathBuf,
    /// `cache_root` is `RUNNER_TEMP`, which the runner empties after the job: the post stage
    /// removes what it fetched there (as root it owns it, and the runner could not).
    pub cache_is_temp: bool,
}

/// The npm registry the image was built from, written by the Dockerfile (`npm config get
/// registry` in its node stage): where a version other than the pinned one is fetched from
/// when the workflow sets no `npm_config_registry`.
pub const IMAGE_REGISTRY_FILE: &str = "/usr/local/share/codex-auth/npm-registry";

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

/// The proxy and CA variables, and a client with the proxies and the built-in roots (the CA
/// files are read later: [`ActionConfig::load_trust`]). In the container action (its
/// workspace is `/github/workspace`) a proxy on loopback is refused: it is the runner's.
fn network(vars: &Vars, workspace: &Path) -> Result<(net::Settings, net::Transport), ConfigError> {
    let in_container = workspace == Path::new(CONTAINER_WORKSPACE);
    let settings = net::Settings::read(&|name| vars.get(name).map(str::to_owned), in_container)?;
    let transport = net::Transport::new(&settings.proxies, &net::Trust::default())?;
    Ok((settings, transport))
}

/// The one HTTP client for a command-line tool (`seed`), from this process's proxy and CA
/// variables.
pub fn transport_from_process() -> Result<net::Transport, ConfigError> {
    let environment: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let (settings, _) = network(&Vars::of(&environment), Path::new("."))?;
    let (trust, problems) = settings.ca.load();
    if let Some(problem) = problems.into_iter().next() {
        return Err(problem.into());
    }
    Ok(net::Transport::new(&settings.proxies, &trust)?)
}

impl From<net::NetError> for ConfigError {
    fn from(error: net::NetError) -> Self {
        ConfigError::Runner {
            variable: error.variable,
            title: error.title,
            problem: error.problem,
        }
    }
}

/// The step's environment as UTF-8 text.
struct Vars(BTreeMap<String, String>);

impl Vars {
    /// The variables of `environment` that are UTF-8 text.
    fn of(environment: &[(OsString, OsString)]) -> Self {
        Self(
            environment
                .iter()
                .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v.to_str()?.to_owned())))
                .collect(),
        )
    }

    /// A variable, trimmed; `None` when unset or blank.
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// An input (`INPUT_<NAME>`), trimmed; `None` when not given.
    fn input(&self, name: &str) -> Option<&str> {
        self.get(&format!("INPUT_{}", name.to_ascii_uppercase()))
    }

    /// A path variable.
    fn path(&self, name: &str) -> Option<PathBuf> {
        self.get(name).map(PathBuf::from)
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
                title: "auth-json not UTF-8",
                problem: "is not UTF-8 text; store auth.json as it is (UTF-8 JSON) or as base64"
                    .into(),
            });
        }
        let vars = Vars::of(&environment);
        let repository = vars.get("GITHUB_REPOSITORY").map(str::to_owned);
        let target = inputs::target(&vars, repository.as_deref())?;
        let access_target = inputs::access_target(&vars, &target)?;
        let workspace = vars
            .path("GITHUB_WORKSPACE")
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("."));
        let codex_args = inputs::codex_args(&vars)?;
        let prompt = inputs::prompt(&vars, &workspace)?;
        let model = inputs::model(&vars)?;
        let effort = inputs::effort(&vars)?;
        let output_schema = inputs::output_schema(&vars, &workspace)?;
        let output_file = inputs::workspace_file(&vars, "output-file", &workspace)?;
        let working_directory = inputs::workspace_path(&vars, "working-directory", &workspace)?;
        let given: Vec<&'static str> = [
            ("model", model.is_some()),
            ("effort", effort.is_some()),
            ("working-directory", working_directory.is_some()),
            (
                "output-schema",
                matches!(output_schema, Some(OutputSchema::Inline(_))),
            ),
            (
                "output-schema-file",
                matches!(output_schema, Some(OutputSchema::File(_))),
            ),
            ("output-file", output_file.is_some()),
        ]
        .into_iter()
        .filter_map(|(input, set)| set.then_some(input))
        .collect();
        inputs::refuse_twice(&codex_args, &given)?;
        let mode = inputs::mode(&vars)?;
        let keep = inputs::flag(&vars, "keep")?;
        let allow_public_repository = inputs::flag(&vars, "allow-public-repository")?;
        let retry = inputs::retry(&vars)?;
        let job_timeout = inputs::job_timeout(&vars)?;
        let expected_account = inputs::expected_account(&vars)?;
        if mode == Mode::Login && expected_account.is_none() {
            return Err(ConfigError::Missing {
                input: "expected-account",
                title: "Expected account missing",
                fix: "`mode: login` needs the email or ChatGPT account id of the account the \
                      workflows should use, e.g. `expected-account: ${{ vars.CODEX_AUTH_ACCOUNT }}` \
                      with that repository variable set. Everyone who can read the run's page \
                      sees the sign-in code: without it, any of them could approve it with an \
                      account of their own, and every later job would send its code there",
            });
        }
        let login_timeout = inputs::login_timeout(&vars)?;
        let run = RunContext {
            event_name: vars.get("GITHUB_EVENT_NAME").map(str::to_owned),
            payload: vars
                .get("GITHUB_EVENT_PATH")
                .and_then(|path| std::fs::read(path).ok())
                .and_then(|bytes| serde_json::from_slice(&bytes).ok()),
            run_id: vars.get("GITHUB_RUN_ID").and_then(|v| v.parse().ok()),
            run_attempt: vars
                .get("GITHUB_RUN_ATTEMPT")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
        };
        let store = inputs::store(&vars)?;
        if access_target.is_some() && matches!(store, StoreConfig::Artifact(_)) {
            return Err(ConfigError::Invalid {
                input: "access-secret-name",
                title: "Copy needs a secret store",
                problem: "is set with `store: artifact`, which writes no secret: the keeper \
                          that publishes an access-only copy keeps its login in a secret \
                          (`store: secret`, the default)"
                    .into(),
            });
        }
        let access_token =
            inputs::access_token(&vars, mode, matches!(store, StoreConfig::Artifact(_)))?;
        let api_url = vars.get("GITHUB_API_URL").ok_or(ConfigError::Runner {
            variable: "GITHUB_API_URL",
            title: "GITHUB_API_URL not set",
            problem: "is not set; the runner sets it (outside a runner, set it to your \
                      GitHub API base URL)"
                .into(),
        })?;
        let api_url = validate::validate_api_url(api_url)?;
        let codex_home = match vars.path("CODEX_HOME") {
            Some(dir) => dir,
            None => vars
                .path("HOME")
                .ok_or(ConfigError::Runner {
                    variable: "HOME",
                    title: "HOME not set",
                    problem: "is not set, and neither is CODEX_HOME".into(),
                })?
                .join(".codex"),
        };
        if !codex_home.is_absolute() {
            return Err(ConfigError::Runner {
                variable: "CODEX_HOME",
                title: "CODEX_HOME not absolute",
                problem: "must be an absolute path".into(),
            });
        }
        let temp_dir = vars.path("RUNNER_TEMP").unwrap_or_else(std::env::temp_dir);
        let codex = codex_source(&vars, &temp_dir)?;
        let state = vars
            .0
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("STATE_")?.to_owned(), v.clone())))
            .collect();
        let (network, transport, network_problem) = match network(&vars, &workspace) {
            Ok((network, transport)) => (network, transport, None),
            Err(problem) => (
                net::Settings::default(),
                net::Transport::direct()?,
                Some(problem),
            ),
        };

        Ok(Self {
            auth_json: vars
                .0
                .get("INPUT_AUTH-JSON")
                .filter(|v| !v.trim().is_empty())
                .map(|v| Redacted::new(v.as_str())),
            credentials: inputs::credentials(&vars)?,
            access_token,
            access_target,
            github_token: vars.input("github-token").map(Redacted::new),
            target,
            store,
            repository,
            mode,
            prompt,
            model,
            effort,
            output_schema,
            output_file,
            working_directory,
            codex_args,
            keep,
            allow_public_repository,
            run,
            api_url,
            retry,
            job_timeout,
            expected_account,
            login_timeout,
            codex_home,
            workspace,
            temp_dir,
            runner_workspace: vars.path("RUNNER_WORKSPACE"),
            runner_temp: vars.path("RUNNER_TEMP"),
            workflow: Workflow {
                output_file: vars.path("GITHUB_OUTPUT"),
                state_file: vars.path("GITHUB_STATE"),
                summary_file: vars.path("GITHUB_STEP_SUMMARY"),
                env_file: vars.path("GITHUB_ENV"),
                path_file: vars.path("GITHUB_PATH"),
            },
            state,
            environment,
            codex,
            network,
            trust: net::Trust::default(),
            transport,
            network_problem,
        })
    }

    /// Reads the files the CA variables name and makes the client trust them besides the
    /// built-in roots. Returns why a variable was left out (the main stage refuses to go on;
    /// the post stage warns and goes on without it, its proxy kept).
    pub fn load_trust(&mut self) -> Vec<ConfigError> {
        let (trust, problems) = self.network.ca.load();
        self.set_trust(trust);
        problems.into_iter().map(ConfigError::from).collect()
    }

    /// Trusts `trust` from now on (the post stage's, without a variable that changed).
    pub fn set_trust(&mut self, trust: net::Trust) {
        self.trust = trust;
        self.rebuild_transport();
    }

    fn rebuild_transport(&mut self) {
        let proxies = match self.network_problem {
            Some(_) => net::Proxies::default(),
            None => self.network.proxies.clone(),
        };
        if let Ok(transport) = net::Transport::new(&proxies, &self.trust) {
            self.transport = transport;
        }
    }

    /// The proxy and CA variables can be used (checked by the main stage before anything
    /// else).
    pub fn check_network(&self) -> Result<(), ConfigError> {
        match &self.network_problem {
            Some(problem) => Err(problem.clone()),
            None => Ok(()),
        }
    }

    /// Drops a proxy or CA variable (the post stage's, when a later step set it): the settings
    /// and the client are made again without it.
    pub fn forget_variable(&mut self, name: &str) {
        self.environment.retain(|(k, _)| k != name);
        match network(&Vars::of(&self.environment), &self.workspace) {
            Ok((network, _)) => (self.network, self.network_problem) = (network, None),
            Err(problem) => self.network_problem = Some(problem),
        }
        self.rebuild_transport();
    }

    /// Input `token` or the App inputs, which both stages need.
    pub fn credentials(&self) -> Result<&Credentials, ConfigError> {
        self.credentials.as_ref().ok_or(ConfigError::Missing {
            input: "token",
            title: "Write token missing",
            fix: "pass a token that can write the secret, e.g. `token: ${{ secrets.CODEX_AUTH_WRITE_TOKEN }}` \
                  holding a fine-grained personal access token with \"Secrets: Read and write\" \
                  (the workflow's GITHUB_TOKEN cannot write secrets), or a GitHub App's \
                  `app-id` and `app-private-key`",
        })
    }
}

/// The container action's workspace: its other mounts (`/github/home`, `/github/runner_temp`)
/// are in the runner's RUNNER_TEMP, and everything else dies with the container.
const CONTAINER_WORKSPACE: &str = "/github/workspace";

impl ActionConfig {
    /// The inputs given that this job's mode does not read: those of `codex exec` outside
    /// `mode: exec`, `expected-account` outside `mode: login` (a `prompt` on the keeper, say).
    pub fn inputs_not_used(&self) -> Vec<&'static str> {
        let mut unused = Vec::new();
        if self.mode != Mode::Exec {
            let prompt = match &self.prompt {
                Prompt::Text(text) if text == DEFAULT_PROMPT => None,
                Prompt::Text(_) => Some("prompt"),
                Prompt::File(_) => Some("prompt-file"),
            };
            let given = [
                (prompt.is_some(), prompt.unwrap_or_default()),
                (self.model.is_some(), "model"),
                (self.effort.is_some(), "effort"),
                (self.output_file.is_some(), "output-file"),
                (
                    matches!(self.output_schema, Some(OutputSchema::Inline(_))),
                    "output-schema",
                ),
                (
                    matches!(self.output_schema, Some(OutputSchema::File(_))),
                    "output-schema-file",
                ),
                (self.working_directory.is_some(), "working-directory"),
                (!self.codex_args.is_empty(), "codex-args"),
            ];
            unused.extend(
                given
                    .into_iter()
                    .filter(|(set, _)| *set)
                    .map(|(_, name)| name),
            );
        }
        if self.mode != Mode::Login && self.expected_account.is_some() {
            unused.push("expected-account");
        }
        unused
    }

    /// Whether this is the container action as the runner starts it (its workspace is
    /// `/github/workspace`), whatever the machine: a runner on a host that is itself a
    /// container runs its host steps elsewhere.
    pub fn in_container_action(&self) -> bool {
        self.workspace == std::path::Path::new(CONTAINER_WORKSPACE)
    }

    /// Input `keep: true` keeps a login only where one can outlive the job
    /// ([`check_keep`]). Checked by the main stage before anything else, never by the post
    /// stage: a later step may change CODEX_HOME through GITHUB_ENV, and the post stage must
    /// still write back what the main stage restored.
    pub fn check_keep(&self) -> Result<(), ConfigError> {
        if !self.keep {
            return Ok(());
        }
        check_keep(
            &self.codex_home,
            &self.workspace,
            self.runner_temp.as_deref(),
        )
    }
}

/// Input `keep: true` keeps a login only where one can outlive the job. The runner empties
/// RUNNER_TEMP at the start and end of every job (actions/runner, TempDirectoryManager), and
/// the container action's home is `RUNNER_TEMP/_github_home`: there nothing outlives the job.
fn check_keep(
    codex_home: &std::path::Path,
    workspace: &std::path::Path,
    runner_temp: Option<&std::path::Path>,
) -> Result<(), ConfigError> {
    if workspace == std::path::Path::new(CONTAINER_WORKSPACE) {
        return Err(ConfigError::Invalid {
            input: "keep",
            title: "Nothing to keep in the container",
            problem: "is true, but in the container action no file outlives the job: \
                      CODEX_HOME is in /github/home, the runner's RUNNER_TEMP/_github_home, \
                      which the runner empties at the start and end of every job, and the rest \
                      of the container is removed with it. The secret (or, with \
                      `store: artifact`, the artifact) is where the login is kept: every run \
                      writes the refreshed login there. Remove `keep: true`. To keep a login on \
                      the disk of a persistent self-hosted runner, use the host face \
                      (`codex-auth/host`, `mode: restore`) with CODEX_HOME set to a directory \
                      outside RUNNER_TEMP (docs/host-face.md)"
                .into(),
        });
    }
    if let Some(temp) = runner_temp.filter(|temp| codex_home.starts_with(temp)) {
        return Err(ConfigError::Invalid {
            input: "keep",
            title: "Nothing to keep in RUNNER_TEMP",
            problem: format!(
                "is true, but CODEX_HOME ({}) is inside RUNNER_TEMP ({}), which the runner \
                 empties at the start and end of every job: nothing would be kept. Set \
                 CODEX_HOME in the job's `env:` to a directory of the runner's own outside \
                 RUNNER_TEMP (for example /var/lib/codex-auth/codex-home), or remove \
                 `keep: true`: the secret keeps the login",
                codex_home.display(),
                temp.display()
            ),
        });
    }
    Ok(())
}

/// Whether the main stage saved any of `names` for the post stage: a `STATE_<name>` variable
/// in this process's environment (the runner passes each `GITHUB_STATE` value the main stage
/// wrote as one, empty ones too). Only the binary's own names count: the host face saves the
/// path of the binary it installed before the binary runs at all.
pub fn main_stage_saved(names: &[&str]) -> bool {
    std::env::vars_os().any(|(name, _)| {
        name.to_str()
            .and_then(|n| n.strip_prefix("STATE_"))
            .is_some_and(|n| names.contains(&n))
    })
}

/// Input `codex-version`, the registry and the cache ([`CodexSource`]). The registry is
/// checked only where a version is fetched (`codex::install`): a job that names none
/// never depends on it.
fn codex_source(vars: &Vars, temp_dir: &std::path::Path) -> Result<CodexSource, ConfigError> {
    let version = inputs::codex_version(vars)?;
    // npm reads `npm_config_*` in any case; the lower-case spelling first, as npm does.
    let registry = vars
        .get("npm_config_registry")
        .or_else(|| vars.get("NPM_CONFIG_REGISTRY"))
        .map(str::to_owned)
        .or_else(|| {
            std::fs::read_to_string(IMAGE_REGISTRY_FILE)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        });
    // A container action sees no tool cache (the variable names the host's path, which the
    // image does not have), only RUNNER_TEMP; on the host the tool cache keeps a copy for
    // later jobs. (Whether this process runs in a container cannot tell: a self-hosted runner
    // may itself run in one.)
    let tool_cache = vars.path("RUNNER_TOOL_CACHE").filter(|dir| dir.is_dir());
    let cache_is_temp = tool_cache.is_none();
    let cache_root = tool_cache.unwrap_or_else(|| temp_dir.to_owned());
    Ok(CodexSource {
        version,
        registry,
        cache_root,
        cache_is_temp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::Scope;
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
        assert_eq!(config.prompt, Prompt::Text(DEFAULT_PROMPT.into()));
        assert_eq!(
            (
                config.model,
                config.effort,
                config.output_schema,
                config.output_file
            ),
            (None, None, None, None)
        );
        assert_eq!(config.working_directory, None);
        assert!(!config.keep);
        assert_eq!(config.codex_home, PathBuf::from("/github/home/.codex"));
        assert_eq!(config.api_url, "https://ghe.example/api/v3");
        Ok(())
    }

    #[test]
    fn codex_version_is_one_exact_version() -> Result<(), ConfigError> {
        for (given, kept) in [
            ("", None),
            ("0.171.0", Some("0.171.0")),
            (" 0.162.0-alpha.15 ", Some("0.162.0-alpha.15")),
        ] {
            let config = config(&[("INPUT_CODEX-VERSION", given)])?;
            assert_eq!(config.codex.version.as_deref(), kept, "{given}");
        }
        for (given, says) in [
            ("latest", "a tag"),
            ("next", "a tag"),
            ("^0.170.0", "a range"),
            ("~0.171", "a range"),
            (">=0.150.0", "a range"),
            ("0.171.x", "a range"),
            ("0.171", "not a version"),
            ("v0.171.0", "without the `v`: `0.171.0`"),
            ("0.171.0+abc", "drop `+abc`"),
            (
                "0.171.0-linux-x64",
                "a platform package; name the version itself (`0.171.0`)",
            ),
            ("0.162.0-alpha.15-win32-arm64", "(`0.162.0-alpha.15`)"),
        ] {
            match config(&[("INPUT_CODEX-VERSION", given)]) {
                Err(ConfigError::Invalid {
                    input: "codex-version",
                    title: "Codex version not exact",
                    problem,
                }) => assert!(problem.contains(says), "{given}: {problem}"),
                other => panic!("{given}: {other:?}"),
            }
        }
        Ok(())
    }

    #[test]
    fn any_registry_is_taken_here_and_checked_only_where_codex_is_fetched(
    ) -> Result<(), ConfigError> {
        // A plain-http mirror in a job that names no version must not stop the job (nor its
        // post stage, which would lose a rotation).
        let mirror = config(&[("npm_config_registry", "http://mirror.internal:4873")])?;
        assert_eq!(
            mirror.codex.registry.as_deref(),
            Some("http://mirror.internal:4873")
        );
        // Both spellings: the lower-case one, as npm.
        let both = config(&[
            ("NPM_CONFIG_REGISTRY", "https://upper.example"),
            ("npm_config_registry", "https://lower.example"),
        ])?;
        assert_eq!(
            both.codex.registry.as_deref(),
            Some("https://lower.example")
        );
        Ok(())
    }

    #[test]
    fn codex_args_split_like_a_shell() -> Result<(), ConfigError> {
        let config = config(&[("INPUT_CODEX-ARGS", r#"-m "gpt 5" --sandbox read-only"#)])?;
        assert_eq!(config.codex_args, ["-m", "gpt 5", "--sandbox", "read-only"]);
        Ok(())
    }

    #[test]
    fn codex_args_may_be_a_json_array() -> Result<(), ConfigError> {
        let array = config(&[("INPUT_CODEX-ARGS", r#"["-m", "gpt 5", "--ephemeral"]"#)])?;
        assert_eq!(array.codex_args, ["-m", "gpt 5", "--ephemeral"]);
        let error = |value: &str| {
            config(&[("INPUT_CODEX-ARGS", value)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            error(r#"["-m", 5]"#),
            "input `codex-args` starts with `[` but is not a JSON array of strings (invalid \
             type: integer `5`, expected a string at line 1 column 8); write it as \
             `[\"--flag\", \"value\"]`, or as a shell-like string without the brackets"
        );
        assert!(
            error(r#"["-m", "gpt-5""#).contains("is not a JSON array of strings (EOF"),
            "{}",
            error(r#"["-m", "gpt-5""#)
        );
        Ok(())
    }

    fn in_workspace(extra: &[(&str, &str)]) -> Result<ActionConfig, ConfigError> {
        let mut all = vec![("GITHUB_WORKSPACE", "/github/workspace")];
        all.extend_from_slice(extra);
        config(&all)
    }

    #[test]
    fn the_new_inputs_are_read_relative_to_the_workspace() -> Result<(), ConfigError> {
        let config = in_workspace(&[
            ("INPUT_PROMPT-FILE", "./.github/codex/../codex/prompt.md"),
            ("INPUT_MODEL", "gpt-5.1-codex"),
            ("INPUT_EFFORT", "xhigh"),
            ("INPUT_OUTPUT-SCHEMA", " {\"type\": \"object\"} "),
            ("INPUT_OUTPUT-FILE", "/github/workspace/out/answer.md"),
            ("INPUT_WORKING-DIRECTORY", "."),
        ])?;
        assert_eq!(
            config.prompt,
            Prompt::File(PathBuf::from(".github/codex/prompt.md"))
        );
        assert_eq!(config.model.as_deref(), Some("gpt-5.1-codex"));
        assert_eq!(config.effort.as_deref(), Some("xhigh"));
        assert_eq!(
            config.output_schema,
            Some(OutputSchema::Inline("{\"type\":\"object\"}".into()))
        );
        assert_eq!(config.output_file, Some(PathBuf::from("out/answer.md")));
        assert_eq!(config.working_directory, Some(PathBuf::new()));
        let file = in_workspace(&[("INPUT_OUTPUT-SCHEMA-FILE", "schema.json")])?;
        assert_eq!(
            file.output_schema,
            Some(OutputSchema::File(PathBuf::from("schema.json")))
        );
        assert_eq!(
            in_workspace(&[("INPUT_PROMPT", "Say hi")])?.prompt,
            Prompt::Text("Say hi".into())
        );
        Ok(())
    }

    #[test]
    fn each_bad_new_input_is_refused_with_its_own_message() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("INPUT_PROMPT", "hi"), ("INPUT_PROMPT-FILE", "p.md")],
                "input `prompt-file` and input `prompt` are both set; give the prompt inline or \
                 in a file, not both",
            ),
            (
                &[("INPUT_PROMPT-FILE", "/etc/passwd")],
                "input `prompt-file` is \"/etc/passwd\", outside the workspace \
                 (/github/workspace); give a path relative to the workspace, such as \
                 `.github/codex/prompt.md` (in the container action, `${{ github.workspace }}` \
                 and `${{ runner.temp }}` are the runner's paths, not the container's)",
            ),
            (
                &[("INPUT_PROMPT-FILE", "a/../../secret")],
                "input `prompt-file` \"a/../../secret\" leaves the workspace (/github/workspace); \
                 give a path inside it",
            ),
            (
                &[("INPUT_PROMPT-FILE", "/github/workspace")],
                "input `prompt-file` names the workspace itself; give the path of a file in it",
            ),
            (
                &[("INPUT_OUTPUT-FILE", "../out.md")],
                "input `output-file` \"../out.md\" leaves the workspace (/github/workspace); give \
                 a path inside it",
            ),
            (
                &[("INPUT_OUTPUT-FILE", "sub/..")],
                "input `output-file` names the workspace itself; give the path of a file in it",
            ),
            (
                &[("INPUT_WORKING-DIRECTORY", "/tmp")],
                "input `working-directory` is \"/tmp\", outside the workspace \
                 (/github/workspace); give a path relative to the workspace, such as \
                 `services/api` (in the container action, `${{ github.workspace }}` and \
                 `${{ runner.temp }}` are the runner's paths, not the container's)",
            ),
            (
                &[("INPUT_OUTPUT-SCHEMA-FILE", "/github/workspace2/s.json")],
                "input `output-schema-file` is \"/github/workspace2/s.json\", outside the \
                 workspace (/github/workspace); give a path relative to the workspace, such as \
                 `.github/codex/schema.json` (in the container action, `${{ github.workspace }}` \
                 and `${{ runner.temp }}` are the runner's paths, not the container's)",
            ),
            (
                &[("INPUT_OUTPUT-SCHEMA", "{\"type\":")],
                "input `output-schema` is not valid JSON (EOF while parsing a value at line 1 \
                 column 8); give a JSON Schema object",
            ),
            (
                &[("INPUT_OUTPUT-SCHEMA", "[1]")],
                "input `output-schema` is a JSON array, not an object; give a JSON Schema object \
                 such as `{\"type\":\"object\",\"properties\":{…}}`",
            ),
            (
                &[
                    ("INPUT_OUTPUT-SCHEMA", "{}"),
                    ("INPUT_OUTPUT-SCHEMA-FILE", "s.json"),
                ],
                "input `output-schema-file` and input `output-schema` are both set; give the \
                 schema inline or in a file, not both",
            ),
            (
                &[("INPUT_MODEL", "gpt 5")],
                "input `model` is \"gpt 5\"; expected one model name, such as `gpt-5.1-codex`, \
                 without spaces",
            ),
            (
                &[("INPUT_MODEL", "gpt-5\n--sandbox")],
                "input `model` is \"gpt-5\\n--sandbox\"; expected one model name, such as \
                 `gpt-5.1-codex`, without spaces",
            ),
            (
                &[("INPUT_MODEL", "--oss")],
                "input `model` is \"--oss\"; expected one model name, such as `gpt-5.1-codex`, \
                 without spaces",
            ),
            (
                &[("INPUT_EFFORT", "HIGH")],
                "input `effort` is \"HIGH\"; expected one of none, minimal, low, medium, high, \
                 xhigh (Codex's `model_reasoning_effort`; which a model supports depends on the \
                 model)",
            ),
            (
                &[("INPUT_MODEL", "gpt-5"), ("INPUT_CODEX-ARGS", "-m o3")],
                "input `model` is set, and input `codex-args` sets the same (`-m`); set it in \
                 one place",
            ),
            (
                &[("INPUT_MODEL", "gpt-5"), ("INPUT_CODEX-ARGS", "--model=o3")],
                "input `model` is set, and input `codex-args` sets the same (`--model=o3`); set \
                 it in one place",
            ),
            (
                &[
                    ("INPUT_MODEL", "gpt-5"),
                    ("INPUT_CODEX-ARGS", r#"["-c", "model=\"o3\""]"#),
                ],
                "input `model` is set, and input `codex-args` sets the same (`-c model=\"o3\"`); \
                 set it in one place",
            ),
            (
                &[
                    ("INPUT_EFFORT", "low"),
                    ("INPUT_CODEX-ARGS", "-c model_reasoning_effort=high"),
                ],
                "input `effort` is set, and input `codex-args` sets the same (`-c \
                 model_reasoning_effort=high`); set it in one place",
            ),
            (
                &[
                    ("INPUT_WORKING-DIRECTORY", "sub"),
                    ("INPUT_CODEX-ARGS", "-C /tmp"),
                ],
                "input `working-directory` is set, and input `codex-args` sets the same (`-C`); \
                 set it in one place",
            ),
            (
                &[
                    ("INPUT_OUTPUT-SCHEMA", "{}"),
                    ("INPUT_CODEX-ARGS", "--output-schema s.json"),
                ],
                "input `output-schema` is set, and input `codex-args` sets the same \
                 (`--output-schema`); set it in one place",
            ),
            (
                &[
                    ("INPUT_OUTPUT-SCHEMA-FILE", "s.json"),
                    ("INPUT_CODEX-ARGS", "--output-schema=x"),
                ],
                "input `output-schema-file` is set, and input `codex-args` sets the same \
                 (`--output-schema=x`); set it in one place",
            ),
            (
                &[
                    ("INPUT_OUTPUT-FILE", "a.md"),
                    ("INPUT_CODEX-ARGS", "-o b.md"),
                ],
                "input `output-file` is set, and input `codex-args` sets the same (`-o`); set it \
                 in one place",
            ),
        ];
        for (inputs, expected) in cases {
            let got = in_workspace(inputs).err().map(|e| e.to_string());
            assert_eq!(got.as_deref(), Some(*expected), "{inputs:?}");
        }
        // What `codex-args` sets only after `--`, or what no input sets, is no conflict.
        for (inputs, args) in [
            (
                &[("INPUT_MODEL", "gpt-5")][..],
                "-c model_reasoning_effort=high -- -m",
            ),
            (
                &[("INPUT_EFFORT", "low")][..],
                "-m o3 -c model_verbosity=low",
            ),
            (&[][..], "-m o3 -C /tmp -o x --output-schema s"),
        ] {
            let mut all = inputs.to_vec();
            all.push(("INPUT_CODEX-ARGS", args));
            assert!(in_workspace(&all).is_ok(), "{all:?}");
        }
    }

    #[test]
    fn bad_inputs_name_the_input() {
        let cases = [
            (("INPUT_SECRET-NAME", "1ABC"), "input `secret-name` \"1ABC\" must not start with a digit"),
            (("INPUT_SECRET-NAME", "github_x"), "input `secret-name` \"github_x\" must not start with GITHUB_ (reserved by GitHub)"),
            (("INPUT_SECRET-NAME", "A-B"), "input `secret-name` \"A-B\" may only contain letters, digits and `_`"),
            (("INPUT_KEEP", "yes"), "input `keep` is \"yes\"; expected true or false"),
            (("INPUT_MODE", "restore-all"), "input `mode` is \"restore-all\"; expected exec (run codex exec with the prompt), refresh (keep the login fresh without a model call), restore (only restore auth.json for later steps) or login (sign in anew from the browser and store the login)"),
            (("INPUT_EXPECTED-ACCOUNT", "a b@c"), "input `expected-account` \"a b@c\" is not an email address"),
            (("INPUT_MODE", "login"), "input `expected-account` is empty: `mode: login` needs the email or ChatGPT account id of the account the workflows should use, e.g. `expected-account: ${{ vars.CODEX_AUTH_ACCOUNT }}` with that repository variable set. Everyone who can read the run's page sees the sign-in code: without it, any of them could approve it with an account of their own, and every later job would send its code there"),
            (("INPUT_LOGIN-TIMEOUT", "901"), "input `login-timeout` is \"901\"; expected a number of seconds from 1 to 900 (Codex's own limit for a device-code sign-in is 15 minutes)"),
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

    /// The error for the base environment with `extra` added and the variables `without`
    /// removed.
    fn error(extra: &[(&str, &str)], without: &[&str]) -> ConfigError {
        let env: Vec<(OsString, OsString)> = [
            ("GITHUB_REPOSITORY", "octo/repo"),
            ("GITHUB_API_URL", "https://ghe.example/api/v3/"),
            ("HOME", "/github/home"),
        ]
        .iter()
        .chain(extra)
        .filter(|(k, _)| !without.contains(k))
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        match ActionConfig::from_env(env) {
            Ok(config) => config
                .check_keep()
                .err()
                .or_else(|| config.credentials().err())
                .unwrap_or_else(|| panic!("{extra:?} without {without:?} is accepted")),
            Err(error) => error,
        }
    }

    /// One case of each problem an input or runner variable can have, and its title.
    fn every_problem() -> Vec<(ConfigError, &'static str)> {
        const KEY: &str = "KasJ/+PTcUQr+7Owz01W1dvTjyqZtVAkkBSvHK5PONs=";
        const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----";
        let artifact = |extra: &[(&'static str, &'static str)], without: &[&str]| {
            let mut env = vec![
                ("INPUT_STORE", "artifact"),
                ("INPUT_ARTIFACT-KEY", KEY),
                ("INPUT_GITHUB-TOKEN", "ghs_x"),
                ("GITHUB_REPOSITORY_ID", "42"),
            ];
            env.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
            env.extend(extra);
            error(&env, without)
        };
        let token = ("INPUT_TOKEN", "ghp_x");
        let not_utf8 = {
            use std::os::unix::ffi::OsStringExt as _;
            let value = OsString::from_vec(vec![0xff, 0xfe]);
            ActionConfig::from_env(vec![("INPUT_AUTH-JSON".into(), value)])
                .err()
                .unwrap()
        };
        let at = ("INPUT_CODEX-ACCESS-TOKEN", "at-test");
        vec![
            (not_utf8, "auth-json not UTF-8"),
            (
                error(&[at, ("INPUT_AUTH-JSON", "{}")], &[]),
                "Access token with auth-json",
            ),
            (
                error(&[at, token], &[]),
                "Access token with a write credential",
            ),
            (
                error(&[at, ("INPUT_ACCESS-SECRET-NAME", "CODEX_ACCESS")], &[]),
                "Access token with a store",
            ),
            (
                error(&[at, ("INPUT_MODE", "refresh")], &[]),
                "Access token outside exec mode",
            ),
            (
                error(&[("INPUT_MODE", "login")], &[]),
                "Expected account missing",
            ),
            (
                artifact(&[("INPUT_ACCESS-SECRET-NAME", "CODEX_ACCESS_JSON")], &[]),
                "Copy needs a secret store",
            ),
            (
                error(&[token], &["GITHUB_API_URL"]),
                "GITHUB_API_URL not set",
            ),
            (
                error(&[("GITHUB_API_URL", "http://ghe.example")], &[]),
                "GITHUB_API_URL not usable",
            ),
            (error(&[token], &["HOME"]), "HOME not set"),
            (
                error(&[("CODEX_HOME", "codex")], &[]),
                "CODEX_HOME not absolute",
            ),
            (error(&[], &[]), "Write token missing"),
            (
                error(&[("INPUT_SECRET-NAME", "1ABC")], &[]),
                "Secret name not allowed",
            ),
            (
                error(&[("INPUT_ACCESS-SECRET-NAME", "codex_auth_json")], &[]),
                "Copy named like the login",
            ),
            (
                error(
                    &[
                        ("INPUT_ENVIRONMENT", "prod"),
                        ("INPUT_ORGANIZATION", "octo"),
                    ],
                    &[],
                ),
                "Environment and organization both given",
            ),
            (
                error(&[("INPUT_ORGANIZATION", "oc to")], &[]),
                "Organization name not valid",
            ),
            (
                error(&[token], &["GITHUB_REPOSITORY"]),
                "GITHUB_REPOSITORY not set",
            ),
            (
                error(&[("GITHUB_REPOSITORY", "octo")], &[]),
                "Repository not owner/name",
            ),
            (
                error(&[("INPUT_CODEX-ARGS", "'open")], &[]),
                "Unclosed quote in codex-args",
            ),
            (
                error(&[("INPUT_CODEX-VERSION", "latest")], &[]),
                "Codex version not exact",
            ),
            (error(&[("INPUT_MODE", "all")], &[]), "Unknown mode"),
            (
                error(&[("INPUT_KEEP", "yes")], &[]),
                "Flag not true or false",
            ),
            (
                error(&[("INPUT_API-TIMEOUT", "0")], &[]),
                "API timeout out of range",
            ),
            (
                error(&[("INPUT_EXPECTED-ACCOUNT", "a b@c")], &[]),
                "Expected account not an email",
            ),
            (
                error(&[("INPUT_EXPECTED-ACCOUNT", "a/b")], &[]),
                "Expected account not valid",
            ),
            (
                error(&[("INPUT_LOGIN-TIMEOUT", "901")], &[]),
                "Login timeout out of range",
            ),
            (
                error(&[("INPUT_JOB-TIMEOUT-MINUTES", "0")], &[]),
                "Job timeout out of range",
            ),
            (error(&[("INPUT_STORE", "s3")], &[]), "Unknown store"),
            (
                artifact(&[], &["INPUT_ARTIFACT-KEY"]),
                "Artifact key missing",
            ),
            (
                artifact(&[("INPUT_ARTIFACT-KEY", "c2hvcnQ=")], &[]),
                "Artifact key not valid",
            ),
            (
                artifact(&[("INPUT_ARTIFACT-NAME", "a/b")], &[]),
                "Artifact name not allowed",
            ),
            (
                artifact(&[("INPUT_RETENTION-DAYS", "401")], &[]),
                "Retention days out of range",
            ),
            (
                artifact(&[], &["INPUT_GITHUB-TOKEN"]),
                "GitHub token missing",
            ),
            (
                artifact(&[], &["GITHUB_REPOSITORY_ID"]),
                "GITHUB_REPOSITORY_ID not set",
            ),
            (
                error(&[("INPUT_APP-ID", "Iv23li")], &[]),
                "App ID not a number",
            ),
            (
                error(&[token, ("INPUT_APP-ID", "7")], &[]),
                "Token and App both given",
            ),
            (
                error(&[("INPUT_APP-ID", "7")], &[]),
                "App private key missing",
            ),
            (
                error(&[("INPUT_APP-PRIVATE-KEY", PEM)], &[]),
                "App ID missing",
            ),
            (
                error(
                    &[
                        ("INPUT_APP-ID", "7"),
                        ("INPUT_APP-PRIVATE-KEY", "ssh-rsa A"),
                    ],
                    &[],
                ),
                "Invalid app-private-key",
            ),
            (
                error(
                    &[
                        ("INPUT_KEEP", "true"),
                        ("GITHUB_WORKSPACE", "/github/workspace"),
                    ],
                    &[],
                ),
                "Nothing to keep in the container",
            ),
            (
                error(
                    &[
                        ("INPUT_KEEP", "true"),
                        ("RUNNER_TEMP", "/home/runner/work/_temp"),
                        ("CODEX_HOME", "/home/runner/work/_temp/codex-home"),
                    ],
                    &[],
                ),
                "Nothing to keep in RUNNER_TEMP",
            ),
            (
                error(&[("INPUT_CODEX-ARGS", "[1, 2]")], &[]),
                "Invalid codex-args array",
            ),
            (
                error(
                    &[
                        ("INPUT_PROMPT", "Fix it"),
                        ("INPUT_PROMPT-FILE", "prompt.md"),
                    ],
                    &[],
                ),
                "Prompt given twice",
            ),
            (
                error(
                    &[
                        ("INPUT_OUTPUT-SCHEMA", "{}"),
                        ("INPUT_OUTPUT-SCHEMA-FILE", "schema.json"),
                    ],
                    &[],
                ),
                "Output schema given twice",
            ),
            (
                error(&[("INPUT_OUTPUT-SCHEMA", "[]")], &[]),
                "Invalid output schema",
            ),
            (error(&[("INPUT_MODEL", "gpt 5")], &[]), "Invalid model"),
            (error(&[("INPUT_EFFORT", "maximal")], &[]), "Invalid effort"),
            (
                error(
                    &[("INPUT_MODEL", "gpt-5"), ("INPUT_CODEX-ARGS", "-m gpt-4")],
                    &[],
                ),
                "Set twice in codex-args",
            ),
        ]
    }

    #[test]
    fn an_access_token_is_refused_with_anything_that_restores_stores_or_writes(
    ) -> Result<(), ConfigError> {
        const KEY: &str = "KasJ/+PTcUQr+7Owz01W1dvTjyqZtVAkkBSvHK5PONs=";
        let at = ("INPUT_CODEX-ACCESS-TOKEN", "at-test");
        // Alone, with the runner's defaults, in exec mode: read, and nothing to write with.
        let config = config(&[at, ("INPUT_MODE", "exec"), ("INPUT_STORE", "secret")])?;
        assert!(config.access_token.is_some());
        assert!(config.credentials.is_none());
        let refused = |extra: &[(&str, &str)]| config_error(&[&[at][..], extra].concat());
        for (extra, title, names) in [
            (
                &[("INPUT_AUTH-JSON", "{}")][..],
                "Access token with auth-json",
                "`auth-json`",
            ),
            (
                &[("INPUT_TOKEN", "ghp_x")],
                "Access token with a write credential",
                "`token`",
            ),
            (
                &[("INPUT_APP-ID", "1")],
                "Access token with a write credential",
                "`app-id`",
            ),
            (
                &[("INPUT_APP-PRIVATE-KEY", "-----BEGIN RSA PRIVATE KEY-----")],
                "Access token with a write credential",
                "`app-private-key`",
            ),
            (
                &[
                    ("INPUT_STORE", "artifact"),
                    ("INPUT_ARTIFACT-KEY", KEY),
                    ("INPUT_GITHUB-TOKEN", "ghs_x"),
                    ("GITHUB_REPOSITORY_ID", "42"),
                ],
                "Access token with a store",
                "`store: artifact`",
            ),
            (
                &[("INPUT_ACCESS-SECRET-NAME", "CODEX_ACCESS")],
                "Access token with a store",
                "`access-secret-name`",
            ),
            (
                &[("INPUT_MODE", "restore")],
                "Access token outside exec mode",
                "`mode: exec`",
            ),
            (
                &[("INPUT_MODE", "refresh")],
                "Access token outside exec mode",
                "`mode: exec`",
            ),
        ] {
            let error = refused(extra);
            assert_eq!(error.title(), title, "{extra:?}: {error}");
            let message = error.to_string();
            assert!(
                message.starts_with("input `codex-access-token`"),
                "{message}"
            );
            assert!(message.contains(names), "{message}");
            // The token itself is never part of the message.
            assert!(!message.contains("at-test"), "{message}");
        }
        Ok(())
    }

    fn config_error(extra: &[(&str, &str)]) -> ConfigError {
        match config(extra) {
            Ok(_) => panic!("{extra:?} is accepted"),
            Err(error) => error,
        }
    }

    #[test]
    fn every_problem_has_a_title_of_its_own() {
        let cases = every_problem();
        let mut titles = std::collections::BTreeSet::new();
        for (error, title) in &cases {
            assert_eq!(error.title(), *title, "{error}");
            assert!(titles.insert(*title), "{title} titles two problems");
            // The message names the input or variable, whatever the title says.
            let named = match error {
                ConfigError::Missing { input, .. } | ConfigError::Invalid { input, .. } => {
                    format!("input `{input}`")
                }
                ConfigError::Runner { variable, .. } => variable.to_string(),
            };
            assert!(error.to_string().starts_with(&named), "{error}");
            let failure = Failure::from(error.clone());
            let sentence = format!("{}.", error.to_string().trim_end_matches('.'));
            assert_eq!((failure.title, failure.message()), (*title, sentence));
        }
        // Every title the source gives an error is one of the cases above: a new error is
        // added with a case here, which checks that its title is not another problem's.
        let source = [
            include_str!("mod.rs"),
            include_str!("inputs.rs"),
            include_str!("validate.rs"),
        ]
        .concat();
        let given: std::collections::BTreeSet<&str> = source
            .match_indices("title: \"")
            .filter_map(|(at, marker)| source[at + marker.len()..].split('"').next())
            .collect();
        assert_eq!(given, titles);
    }

    #[test]
    fn inputs_a_mode_does_not_read_are_named() -> Result<(), ConfigError> {
        let unused = |extra: &[(&str, &str)]| -> Result<Vec<&'static str>, ConfigError> {
            Ok(config(extra)?.inputs_not_used())
        };
        assert_eq!(
            unused(&[
                ("INPUT_MODE", "refresh"),
                ("INPUT_PROMPT", "Fix it"),
                ("INPUT_EFFORT", "high"),
                ("INPUT_CODEX-ARGS", "--ephemeral"),
                ("INPUT_EXPECTED-ACCOUNT", "dev@example.com"),
            ])?,
            ["prompt", "effort", "codex-args", "expected-account"]
        );
        // What a mode reads is not named; nor are defaults.
        assert!(unused(&[("INPUT_MODE", "restore")])?.is_empty());
        assert!(unused(&[("INPUT_PROMPT", "Fix it"), ("INPUT_MODEL", "gpt-5")])?.is_empty());
        assert!(unused(&[
            ("INPUT_MODE", "login"),
            ("INPUT_EXPECTED-ACCOUNT", "dev@example.com")
        ])?
        .is_empty());
        assert_eq!(
            unused(&[
                ("INPUT_MODE", "login"),
                ("INPUT_EXPECTED-ACCOUNT", "dev@example.com"),
                ("INPUT_MODEL", "gpt-5")
            ])?,
            ["model"]
        );
        Ok(())
    }

    #[test]
    fn keep_is_refused_where_nothing_outlives_the_job() -> Result<(), ConfigError> {
        // The configuration reads (the post stage must, whatever a later step did to
        // CODEX_HOME); the main stage's check refuses.
        let keep = |extra: &[(&str, &str)]| -> Result<Result<(), ConfigError>, ConfigError> {
            Ok(config(&[&[("INPUT_KEEP", "true")][..], extra].concat())?.check_keep())
        };
        // In the container action: whatever CODEX_HOME is.
        for home in [
            "/github/home/.codex",
            "/github/workspace/.codex",
            "/var/lib/codex",
        ] {
            let error = keep(&[
                ("GITHUB_WORKSPACE", "/github/workspace"),
                ("RUNNER_TEMP", "/github/runner_temp"),
                ("CODEX_HOME", home),
            ])?
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
            assert!(
                error.contains("in the container action no file outlives the job"),
                "{home}: {error}"
            );
        }
        // On the host: CODEX_HOME inside RUNNER_TEMP (the host face's own default).
        let host = [
            ("GITHUB_WORKSPACE", "/home/runner/work/repo/repo"),
            ("RUNNER_TEMP", "/home/runner/work/_temp"),
        ];
        let inside = keep(
            &[
                &host[..],
                &[(
                    "CODEX_HOME",
                    "/home/runner/work/_temp/codex-auth/codex-home",
                )],
            ]
            .concat(),
        )?;
        assert!(
            matches!(&inside, Err(ConfigError::Invalid { input: "keep", problem, .. }) if problem.contains("is inside RUNNER_TEMP")),
            "{:?}",
            inside.err()
        );
        // On the host, outside RUNNER_TEMP: kept; and `keep: false` is never refused.
        keep(&[&host[..], &[("CODEX_HOME", "/var/lib/codex-auth/home")]].concat())??;
        config(&[
            ("GITHUB_WORKSPACE", "/github/workspace"),
            ("RUNNER_TEMP", "/github/runner_temp"),
            ("INPUT_KEEP", "false"),
        ])?
        .check_keep()?;
        Ok(())
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
        let Ok(StoreConfig::Artifact(store)) = store else {
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
        assert!(matches!(
            config(&[]).map(|c| c.store),
            Ok(StoreConfig::Secret { rescue: None })
        ));
    }
}
