//! Running `codex exec` with the restored login, and nothing that can write secrets.
//!
//! Codex runs shell commands the model asks for, so its environment is the action's minus
//! every input, the write token, and the variables that would switch Codex to another login
//! (`OPENAI_API_KEY`, `CODEX_API_KEY`, `CODEX_ACCESS_TOKEN`; see `codex-rs/login`).

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};

use crate::secret::Secret;

/// Variables Codex must not see, besides every `INPUT_*`.
const HIDDEN: &[&str] = &[
    // Would make Codex use an API key instead of the restored login.
    "OPENAI_API_KEY",
    "CODEX_API_KEY",
    "CODEX_ACCESS_TOKEN",
    // Tokens a shell command could use against GitHub.
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
];

/// How a refresh failed for good, as Codex reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshFailure {
    /// The refresh token was already used: another job or machine rotated it.
    Reused,
    /// The refresh token expired.
    Expired,
    /// The refresh token was revoked (a logout, a password change).
    Invalidated,
}

/// What a Codex run left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Codex's exit code; 128 + the signal number when a signal ended it.
    pub exit_code: i32,
    /// The agent's last message (`--output-last-message`), empty when there was none.
    pub final_message: String,
    /// A permanent refresh failure Codex printed, if any.
    pub refresh_failure: Option<RefreshFailure>,
}

/// Why Codex could not be started.
#[derive(Debug, thiserror::Error)]
pub enum CodexError {
    /// No `codex` on PATH.
    #[error(
        "`codex` was not found on PATH; the action's image installs it, and outside the image \
         install it with `npm install -g @openai/codex`"
    )]
    NotFound,
    /// Another spawn or I/O failure.
    #[error("running codex failed: {0}")]
    Io(#[from] io::Error),
}

/// A `codex exec` invocation.
#[derive(Debug)]
pub struct Exec<'a> {
    /// The prompt.
    pub prompt: &'a str,
    /// Extra arguments from input `codex-args`.
    pub extra_args: &'a [String],
    /// Where Codex runs.
    pub workspace: &'a Path,
    /// The home holding the restored auth.json.
    pub codex_home: &'a Path,
    /// Scratch space for the last-message file.
    pub temp_dir: &'a Path,
}

impl Exec<'_> {
    /// The arguments after `codex`.
    pub fn arguments(&self, last_message: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["exec".into()];
        if !inside_git_repository(self.workspace) {
            args.push("--skip-git-repo-check".into());
        }
        args.extend([
            "-c".into(),
            "cli_auth_credentials_store=\"file\"".into(),
            "--output-last-message".into(),
            last_message.into(),
        ]);
        args.extend(self.extra_args.iter().map(OsString::from));
        args.push("--".into());
        args.push(self.prompt.into());
        args
    }

    /// Runs Codex with stdin from /dev/null, streaming its output to ours.
    pub async fn run(&self, environment: Vec<(OsString, OsString)>) -> Result<Outcome, CodexError> {
        let scratch = tempfile::Builder::new()
            .prefix("codex-auth-")
            .tempdir_in(self.temp_dir)?;
        let last_message = scratch.path().join("last-message.txt");
        let mut child = tokio::process::Command::new("codex")
            .args(self.arguments(&last_message))
            .env_clear()
            .envs(environment)
            .env("CODEX_HOME", self.codex_home)
            .current_dir(self.workspace)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => CodexError::NotFound,
                _ => CodexError::Io(e),
            })?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (out_failure, err_failure) = tokio::join!(
            forward(stdout, tokio::io::stdout()),
            forward(stderr, tokio::io::stderr()),
        );
        let status = child.wait().await?;
        let exit_code = status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(1);
        let final_message = match tokio::fs::read_to_string(&last_message).await {
            Ok(text) => text.trim_end().to_owned(),
            Err(_) => String::new(),
        };
        Ok(Outcome {
            exit_code,
            final_message,
            refresh_failure: out_failure?.or(err_failure?),
        })
    }
}

/// The action's environment as Codex gets it: without inputs, without the write token, and
/// without anything that would switch Codex to another login.
pub fn environment(
    environment: &[(OsString, OsString)],
    write_token: Option<&Secret>,
) -> Vec<(OsString, OsString)> {
    let token = write_token.map(|t| t.expose()).filter(|t| !t.is_empty());
    environment
        .iter()
        .filter(|(name, value)| {
            let name = name.to_string_lossy();
            let hidden = name.starts_with("INPUT_")
                || name.starts_with("STATE_")
                || HIDDEN.contains(&name.as_ref());
            let holds_token = token.is_some_and(|t| value.to_string_lossy().contains(t));
            !hidden && !holds_token
        })
        .cloned()
        .collect()
}

/// Codex refuses to run outside a git repository unless told to; it looks for `.git` in the
/// directory and its ancestors.
fn inside_git_repository(dir: &Path) -> bool {
    dir.ancestors().any(|d| d.join(".git").exists())
}

/// Copies a child's stream to ours line by line, noting permanent refresh failures.
async fn forward(
    from: Option<impl AsyncRead + Unpin>,
    mut to: impl AsyncWrite + Unpin,
) -> io::Result<Option<RefreshFailure>> {
    let Some(from) = from else { return Ok(None) };
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    let mut failure = None;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            break;
        }
        failure = failure.or_else(|| refresh_failure(&String::from_utf8_lossy(&line)));
        to.write_all(&line).await?;
        to.flush().await?;
    }
    Ok(failure)
}

/// Recognises Codex's messages for a refresh token that can never work again
/// (`codex-rs/login/src/auth/manager.rs`, `classify_refresh_token_failure`).
fn refresh_failure(line: &str) -> Option<RefreshFailure> {
    let line = line.to_ascii_lowercase();
    if line.contains("refresh_token_reused") || line.contains("refresh token was already used") {
        Some(RefreshFailure::Reused)
    } else if line.contains("refresh_token_expired") || line.contains("refresh token has expired") {
        Some(RefreshFailure::Expired)
    } else if line.contains("refresh_token_invalidated")
        || line.contains("refresh token was revoked")
    {
        Some(RefreshFailure::Invalidated)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_sees_no_inputs_and_no_tokens() {
        let env: Vec<(OsString, OsString)> = [
            ("PATH", "/usr/bin"),
            ("INPUT_TOKEN", "ghp_write"),
            ("INPUT_AUTH-JSON", "{}"),
            ("OPENAI_API_KEY", "sk-1"),
            ("CODEX_API_KEY", "sk-2"),
            ("CODEX_ACCESS_TOKEN", "at"),
            ("ACTIONS_RUNTIME_TOKEN", "rt"),
            ("MY_COPY", "Bearer ghp_write"),
            ("GITHUB_REPOSITORY", "o/r"),
        ]
        .iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        let kept: Vec<_> = environment(&env, Some(&Secret::new("ghp_write")))
            .into_iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(kept, ["PATH", "GITHUB_REPOSITORY"]);
    }

    #[test]
    fn arguments_pin_file_storage_and_end_options_before_the_prompt() {
        let dir = Path::new("/nonexistent/workspace");
        let exec = Exec {
            prompt: "--not-an-option",
            extra_args: &["-m".into(), "gpt-5".into()],
            workspace: dir,
            codex_home: dir,
            temp_dir: dir,
        };
        let args: Vec<String> = exec
            .arguments(Path::new("/tmp/last"))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "exec",
                "--skip-git-repo-check",
                "-c",
                "cli_auth_credentials_store=\"file\"",
                "--output-last-message",
                "/tmp/last",
                "-m",
                "gpt-5",
                "--",
                "--not-an-option"
            ]
        );
    }

    #[test]
    fn recognises_permanent_refresh_failures() {
        assert_eq!(
            refresh_failure("ERROR: Your access token could not be refreshed because your refresh token was already used. Please log out and sign in again."),
            Some(RefreshFailure::Reused)
        );
        assert_eq!(refresh_failure("all good"), None);
    }
}
