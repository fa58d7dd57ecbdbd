//! Command-line interface.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::ConfigError;
use crate::failure::Failure;

/// Keep a Codex CLI ChatGPT login alive on CI.
#[derive(Debug, Parser)]
#[command(name = "codex-auth", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a stage of the GitHub Action, reading INPUT_*, GITHUB_* and STATE_* as the
    /// runner sets them.
    Action {
        /// `main` restores auth.json, runs Codex and writes the refreshed login back; `post`
        /// writes back whatever changed since (always runs).
        stage: ActionStage,
    },
    /// Print a health report of an auth.json (no secrets): the checks, plan, expiry and age.
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect {
        /// The file; `-` reads standard input. Default: $CODEX_HOME/auth.json, else
        /// ~/.codex/auth.json.
        file: Option<PathBuf>,
    },
    /// Write a local Codex login (after `codex login`) into the secret the action restores
    /// from: validated, compact, sealed. The token comes from GH_TOKEN or GITHUB_TOKEN, or is
    /// asked for; the API from GITHUB_API_URL (GitHub Enterprise Server), else GitHub's.
    #[command(after_help = SEED_EXAMPLES)]
    Seed(crate::seed::SeedArgs),
    /// Print a new key for `store: artifact` (32 random bytes, base64). Store it as a secret
    /// and pass it as input `artifact-key`; it never needs to rotate.
    #[command(after_help = KEYGEN_EXAMPLES)]
    Keygen,
}

const KEYGEN_EXAMPLES: &str = "\
Examples:
  codex-auth keygen | gh secret set CODEX_AUTH_ARTIFACT_KEY --repo octo/app";

const INSPECT_EXAMPLES: &str = "\
Examples:
  codex-auth inspect
  codex-auth inspect ~/.codex/auth.json
  pbpaste | codex-auth inspect -";

const SEED_EXAMPLES: &str = "\
Examples:
  # A login of its own for CI, which your own Codex never refreshes (deleting the file
  # afterwards is safe; `codex logout` would revoke the login):
  dir=$(mktemp -d)
  CODEX_HOME=$dir codex login
  CODEX_HOME=$dir GH_TOKEN=$(gh auth token) codex-auth seed --repo octo/app
  rm -r \"$dir\"

  # With a keeper: the login, and the access-only copy the task jobs take
  codex-auth seed --repo octo/app --access-secret-name CODEX_ACCESS_JSON

  # One keeper for an organization: both secrets visible to the keeper's repository alone
  # (share the copy, never the login, with the task repositories in the organization's
  # settings)
  codex-auth seed --org octo --repo octo/keeper --access-secret-name CODEX_ACCESS_JSON

  codex-auth seed --repo octo/app --environment production --secret CODEX_AUTH_JSON
  codex-auth seed --org octo --repo octo/app --file ./auth.json
  GITHUB_API_URL=https://ghe.example/api/v3 codex-auth seed --repo octo/app";

/// A stage of the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActionStage {
    /// Restore, preflight, run Codex, write back.
    Main,
    /// Write back what changed since main (always runs).
    Post,
}

/// Parses the command line. The runner passes the same `args` to every stage of a container
/// action, so the stages are told apart by the executable's name: the image links
/// `codex-auth-main` and `codex-auth-post` to the binary.
pub fn parse(args: Vec<OsString>) -> Cli {
    let invoked_as = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let stage = match invoked_as.as_str() {
        "codex-auth-main" => Some(ActionStage::Main),
        "codex-auth-post" => Some(ActionStage::Post),
        _ => None,
    };
    match stage {
        Some(stage) => Cli {
            command: Command::Action { stage },
        },
        None => Cli::parse_from(args),
    }
}

/// The title of an error with none of its own: an error no input or step foresaw (each of
/// those has a title). Its row in docs/troubleshooting.md says to report it.
pub const UNFORESEEN: &str = "codex-auth failed";

/// The title of `error`: that of the first [`Failure`] or [`ConfigError`] in its chain, else
/// [`UNFORESEEN`].
pub fn title(error: &anyhow::Error) -> &'static str {
    error
        .chain()
        .find_map(|e| {
            e.downcast_ref::<Failure>()
                .map(|f| f.title)
                .or_else(|| e.downcast_ref::<ConfigError>().map(ConfigError::title))
        })
        .unwrap_or(UNFORESEEN)
}

/// How the command line shows an error: `error: <title>: <message>`, on one line.
pub fn error_line(error: &anyhow::Error) -> String {
    format!("error: {}: {error:#}", title(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_is_the_first_failure_or_input_error_in_the_chain() {
        use anyhow::Context as _;
        let input = ConfigError::Missing {
            input: "token",
            title: "Write token missing",
            fix: "pass one",
        };
        let wrapped = Err::<(), _>(input).context("cannot connect").unwrap_err();
        assert_eq!(title(&wrapped), "Write token missing");
        assert_eq!(
            error_line(&wrapped),
            "error: Write token missing: cannot connect: input `token` is empty: pass one"
        );
        let failure = anyhow::Error::from(Failure::new("No auth.json", "there is none"));
        assert_eq!(error_line(&failure), "error: No auth.json: there is none");
        assert_eq!(title(&anyhow::anyhow!("unforeseen")), UNFORESEEN);
    }

    #[test]
    fn stage_follows_the_executable_name_whatever_the_args() {
        let cli = parse(vec![
            "/usr/local/bin/codex-auth-post".into(),
            "ignored".into(),
        ]);
        assert!(matches!(
            cli.command,
            Command::Action {
                stage: ActionStage::Post
            }
        ));
        let cli = parse(vec!["codex-auth".into(), "action".into(), "main".into()]);
        assert!(matches!(
            cli.command,
            Command::Action {
                stage: ActionStage::Main
            }
        ));
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
