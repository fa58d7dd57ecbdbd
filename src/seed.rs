//! `codex-auth seed`: on a trusted machine, after `codex login`, write the login into the
//! secret the action restores from: validated, compact, sealed with the target's public key.
//! It replaces copying auth.json into a secret by hand.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use jiff::Timestamp;

use crate::auth_file::AuthFile;
use crate::auth_file::{relative, Kind};
use crate::config::validate::{
    validate_api_url, validate_repository, validate_secret_name, validate_slug,
};
use crate::config::{self, ConfigError};
use crate::failure::Failure;
use crate::github::{ApiError, Client, RetryPolicy, Scope, SecretTarget, WriteOutcome};
use crate::inspect;
use crate::redacted::Redacted;
use crate::store::secret::{write_login, Values};

/// The API when `GITHUB_API_URL` is not set: GitHub's own.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// What to seed, and where.
#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// The repository (`OWNER/REPO`) whose secret to write, or whose environment's. With
    /// `--org`: the repository a new organization secret is made visible to.
    #[arg(long, value_name = "OWNER/REPO", required_unless_present = "org")]
    pub repo: Option<String>,
    /// Write an environment secret of this environment of `--repo`.
    #[arg(long, visible_alias = "env", value_name = "ENV", requires = "repo")]
    pub environment: Option<String>,
    /// Write an organization secret of this organization instead. A new one is made visible
    /// to the repository `--repo` names, alone (widen it in the organization's settings); an
    /// existing one keeps its visibility and repositories.
    #[arg(long, value_name = "ORG", conflicts_with = "environment")]
    pub org: Option<String>,
    /// The secret's name.
    #[arg(long, value_name = "NAME", default_value = config::DEFAULT_SECRET_NAME)]
    pub secret: String,
    /// Also write an access-only copy of the login (no refresh token) to this secret, beside
    /// `--secret`, for task jobs (README, "Many jobs, one login"). The full login is written
    /// first.
    #[arg(long, value_name = "NAME")]
    pub access_secret_name: Option<String>,
    /// The login to store; `-` reads standard input. Default: $CODEX_HOME/auth.json, else
    /// ~/.codex/auth.json.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Seed a public repository's secret anyway (whoever can run its workflows can use the
    /// login).
    #[arg(long)]
    pub allow_public_repository: bool,
}

/// Where the token comes from, for messages.
const GH_TOKEN: &str = "the token in GH_TOKEN";
const GITHUB_TOKEN: &str = "the token in GITHUB_TOKEN";
const PROMPTED: &str = "the token you entered";

/// Validates the login, then writes it to the target secret.
pub fn run(args: &SeedArgs) -> anyhow::Result<()> {
    let mut target = target(args)?;
    let (name, file) = inspect::read_login(args.file.as_deref())?;
    if file.kind() == Kind::AccessOnly {
        return Err(Failure::new(
            "Access-only copy",
            format!(
                "{name} is an access-only copy (auth_mode \"chatgptAuthTokens\", no refresh \
                 token): seed stores the full login the action keeps fresh. Seed from the \
                 auth.json `codex login` wrote. Nothing was written."
            ),
        )
        .into());
    }
    let access = args.access_secret_name.as_ref().map(|n| target.sibling(n));
    let values = Values::of(&file, access.is_some())
        .map_err(|e| Failure::new("Login too large", format!("{name}: {e}")))?;
    let api_url = match std::env::var("GITHUB_API_URL") {
        Ok(url) if !url.trim().is_empty() => validate_api_url(url.trim())?,
        _ => DEFAULT_API_URL.to_owned(),
    };
    let (token, credential) = token()?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The client's connection pool starts on the runtime.
    let _entered = runtime.enter();
    let transport = crate::config::transport_from_process()?;
    let api = Client::new(&transport, &api_url, &token, RetryPolicy::default())
        .map_err(|e| {
            Failure::new(
                "GitHub client not set up",
                format!("cannot set up the GitHub API client for {api_url}: {e:#}"),
            )
        })?
        .credential(credential);
    let (outcome, copy) = runtime.block_on(write(&api, args, &mut target, &values, access))?;
    report(&file, &name, &target, &values, outcome, copy.as_ref());
    Ok(())
}

/// Checks the repository whose jobs read the secret (refused when public, and the one a new
/// organization secret is made visible to), then writes the login and its copy through the
/// secret store ([`write_login`]): the target's outcome, and the copy's.
async fn write(
    api: &Client,
    args: &SeedArgs,
    target: &mut SecretTarget,
    values: &Values,
    access: Option<SecretTarget>,
) -> anyhow::Result<(WriteOutcome, Option<(SecretTarget, WriteOutcome)>)> {
    let repository = match &target.scope {
        Scope::Repository { repository } | Scope::Environment { repository, .. } => {
            Some(repository.clone())
        }
        Scope::Organization { .. } => args.repo.clone(),
    };
    if let Some(repository) = repository {
        let found = api
            .repository(&repository)
            .await
            .map_err(|e| Failure::new("Repository not readable", e.to_string()))?;
        target.repository_id = Some(found.id);
        if !found.private && !args.allow_public_repository {
            return Err(crate::context::public_repository(
                &repository,
                "pass --allow-public-repository",
            )
            .into());
        }
    }
    let key = api
        .public_key(target)
        .await
        .map_err(|e| Failure::new("Public key not readable", e.to_string()))?;
    let written = write_login(api, Some(key), target, values, access.as_ref())
        .await
        .map_err(|e| match e {
            ApiError::NoRepositoryForNewSecret { .. } => Failure::new(
                "New organization secret",
                format!(
                    "the {target} does not exist yet: pass --repo OWNER/REPO, the repository \
                     whose workflows use it. A new organization secret is made visible to \
                     that repository alone (add others in the organization's settings). \
                     Nothing was written."
                ),
            ),
            e => Failure::new("Secret not written", e.to_string()),
        })?;
    let outcome = written.login;
    // The copy, beside it: the same public key, the same repositories for a new one.
    let copy = match written.copy {
        Some((access, Ok(copied))) => Some((access, copied)),
        Some((access, Err(e))) => {
            let fix = match e {
                ApiError::NoRepositoryForNewSecret { .. } => {
                    "The copy does not exist yet: run seed again with --repo OWNER/REPO, \
                     the repository a new organization secret is made visible to."
                }
                _ => "Run seed again: it writes both.",
            };
            return Err(Failure::new(
                "Access-only copy not written",
                format!(
                    "{} the {target}, but writing its access-only copy to the {access} \
                     failed: {e}",
                    outcome.verb()
                ),
            )
            .fix(fix)
            .into());
        }
        None => None,
    };
    Ok((outcome, copy))
}

/// Says what was written, and what CI owning the login means for this machine.
fn report(
    file: &AuthFile,
    name: &str,
    target: &SecretTarget,
    values: &Values,
    outcome: WriteOutcome,
    copy: Option<&(SecretTarget, WriteOutcome)>,
) {
    let verb = outcome.verb();
    let claims = file.claims();
    let now = Timestamp::now();
    let last = file.last_refresh();
    println!("{verb} the {target} from {name}.");
    if let Some((access, written)) = copy {
        let expires = file.access_expires_at().map_or_else(
            || "unknown (no exp)".to_owned(),
            |at| format!("{at} ({})", relative(now, at)),
        );
        println!(
            "{} the {access} with an access-only copy; its access token expires {expires}. \
             Keep it fresh with the keeper workflow (docs/examples/keeper.yml).",
            written.verb()
        );
    }
    println!(
        "  login: ChatGPT plan {}, last refreshed {last} ({}), {} bytes as one line",
        claims.plan.as_deref().unwrap_or("unknown"),
        relative(now, last),
        values.login().expose().len()
    );
    println!(
        "From now on CI owns this login: each refresh there rotates its refresh token. Do not \
         keep using the same file with Codex on this machine (a refresh here would end the CI \
         copy); sign in again locally for your own use. Never run `codex logout` with it: that \
         revokes it."
    );
}

/// The target from the flags, validated like the action's inputs.
fn target(args: &SeedArgs) -> Result<SecretTarget, Failure> {
    // The rule the action's input breaks, said of the flag.
    let invalid = |flag: &str, error: ConfigError| {
        let title = error.title();
        let problem = match error {
            ConfigError::Invalid { problem, .. } | ConfigError::Runner { problem, .. } => problem,
            ConfigError::Missing { fix, .. } => fix.to_owned(),
        };
        Failure::new(title, format!("{flag} {problem}"))
    };
    validate_secret_name(&args.secret).map_err(|e| invalid("--secret", e))?;
    if let Some(access) = &args.access_secret_name {
        validate_secret_name(access).map_err(|e| invalid("--access-secret-name", e))?;
        if access.eq_ignore_ascii_case(&args.secret) {
            return Err(Failure::new(
                "Copy named like the login",
                "--access-secret-name names the same secret as --secret: give the copy a name \
                 of its own, e.g. CODEX_ACCESS_JSON",
            ));
        }
    }
    if let Some(repo) = &args.repo {
        validate_repository(repo).map_err(|e| invalid("--repo", e))?;
    }
    let scope = match (&args.org, &args.repo, &args.environment) {
        (Some(org), _, _) => {
            validate_slug("organization", org).map_err(|e| invalid("--org", e))?;
            Scope::Organization {
                organization: org.clone(),
            }
        }
        (None, Some(repo), environment) => match environment {
            Some(environment) if environment.trim().is_empty() => {
                return Err(Failure::new(
                    "Environment empty",
                    "--environment is empty: name the environment, or leave the flag out",
                ))
            }
            Some(environment) => Scope::Environment {
                repository: repo.clone(),
                environment: environment.clone(),
            },
            None => Scope::Repository {
                repository: repo.clone(),
            },
        },
        (None, None, _) => return Err(Failure::new(
            "Target missing",
            "name the target: --repo OWNER/REPO (optionally with --environment ENV) or --org ORG",
        )),
    };
    Ok(SecretTarget {
        scope,
        name: args.secret.clone(),
        // Read from the API when the repository is named.
        repository_id: None,
    })
}

/// The token: `GH_TOKEN`, else `GITHUB_TOKEN`, else asked for on the terminal (never an
/// argument, which would land in the shell's history and the process list).
fn token() -> anyhow::Result<(Redacted, &'static str)> {
    for (variable, credential) in [("GH_TOKEN", GH_TOKEN), ("GITHUB_TOKEN", GITHUB_TOKEN)] {
        if let Some(token) = std::env::var(variable)
            .ok()
            .filter(|t| !t.trim().is_empty())
        {
            return Ok((Redacted::new(token.trim()), credential));
        }
    }
    if !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal() {
        return Err(Failure::new(
            "No GitHub token",
            "set GH_TOKEN to a token that can write the secret (a fine-grained personal access \
             token with \"Secrets: Read and write\", or `GH_TOKEN=$(gh auth token)`), or run \
             in a terminal to be asked for one",
        )
        .into());
    }
    let token = rpassword::prompt_password(
        "GitHub token that can write the secret (input hidden; or set GH_TOKEN): ",
    )
    .map_err(|e| {
        Failure::new(
            "Token not read",
            format!("cannot read the token from the terminal: {e}"),
        )
        .fix("Set GH_TOKEN instead.")
    })?;
    let token = Redacted::new(token.trim());
    if token.expose().is_empty() {
        return Err(Failure::new("No GitHub token", "no token entered").into());
    }
    Ok((token, PROMPTED))
}
