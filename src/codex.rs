//! Running Codex with the restored login — `codex exec`, or a keep-fresh refresh through
//! `codex app-server` — and nothing that can write secrets.
//!
//! Codex runs shell commands the model asks for, so its environment is the action's minus
//! every input, the write token, and the variables that would switch Codex to another login
//! (`OPENAI_API_KEY`, `CODEX_API_KEY`, `CODEX_ACCESS_TOKEN`; see `codex-rs/login`), and when
//! the action runs as root Codex runs as the workspace's owner.

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWriteExt as _, BufReader};

use crate::auth_file::AuthFile;
use crate::codex_home::AUTH_FILE;
use crate::secret::Secret;
use crate::workflow::Workflow;

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
    // The runner's command files: no need to hand Codex their paths (it can still find them
    // under /github/file_commands; the write-back does not rely on state Codex could forge,
    // since main compares the tokens itself right after Codex exits).
    "GITHUB_STATE",
    "GITHUB_OUTPUT",
    "GITHUB_ENV",
    "GITHUB_PATH",
    "GITHUB_STEP_SUMMARY",
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
    /// Where masks for tokens Codex writes are printed.
    pub workflow: &'a Workflow,
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

    /// Runs Codex with stdin from /dev/null, streaming its output to ours. Tokens Codex
    /// writes to auth.json are masked before any later line of its output is printed. A
    /// SIGTERM or SIGINT (a cancelled job) is passed on to Codex, and its exit awaited, so
    /// that a refresh in flight lands in auth.json and can still be written back.
    pub async fn run(&self, environment: Vec<(OsString, OsString)>) -> Result<Outcome, CodexError> {
        let run_as = unprivileged_owner(self.workspace);
        let scratch = tempfile::Builder::new()
            .prefix("codex-auth-")
            .tempdir_in(self.temp_dir)?;
        let last_message = scratch.path().join("last-message.txt");
        let mut command = codex_command(self.workspace, self.codex_home, environment);
        command
            .args(self.arguments(&last_message))
            .stdin(Stdio::null());
        if let Some((uid, gid)) = run_as {
            give_to(scratch.path(), uid, gid)?;
        }
        let mut child = spawn(command, self.codex_home, run_as)?;
        let watcher = Mutex::new(AuthWatcher::new(self.codex_home.join(AUTH_FILE)));
        let out = tokio::io::stdout();
        let out = tokio::sync::Mutex::new(out);
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let pid = child.id();
        let (exited, exit_seen) = tokio::sync::watch::channel(false);
        let wait = async {
            let status = wait_passing_signals(&mut child, pid).await;
            let _ = exited.send(true);
            status
        };
        let (exit, out_failure, err_failure) = tokio::join!(
            wait,
            forward(stdout, &out, &watcher, self.workflow, exit_seen.clone()),
            forward(stderr, &out, &watcher, self.workflow, exit_seen),
        );
        let status = exit?;
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

/// `codex` with the given environment (nothing else), CODEX_HOME, the workspace as working
/// directory, and its output piped.
fn codex_command(
    workspace: &Path,
    codex_home: &Path,
    environment: Vec<(OsString, OsString)>,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("codex");
    command
        .env_clear()
        .envs(environment)
        .env("CODEX_HOME", codex_home)
        .current_dir(workspace)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Starts Codex, as `run_as` when given: running as root, Codex could read this process's
/// environment (the write token) from /proc; as the workspace's owner it cannot, and it can
/// still edit the checkout, as host steps do.
fn spawn(
    mut command: tokio::process::Command,
    codex_home: &Path,
    run_as: Option<(u32, u32)>,
) -> Result<tokio::process::Child, CodexError> {
    if let Some((uid, gid)) = run_as {
        give_to(codex_home, uid, gid)?;
        command.uid(uid).gid(gid);
    }
    command.spawn().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => CodexError::NotFound,
        _ => CodexError::Io(e),
    })
}

/// A keep-fresh refresh without a model call: `codex app-server` over stdio, `initialize`,
/// `initialized`, then `account/read` with `refreshToken: true`, which makes Codex refresh the
/// login itself (`refresh_reason: forced`) and rewrite auth.json.
/// Protocol: codex-rs/app-server-protocol in openai/codex (newline-delimited JSON-RPC
/// without the `jsonrpc` field).
#[derive(Debug)]
pub struct Refresh<'a> {
    /// Where Codex runs.
    pub workspace: &'a Path,
    /// The home holding the restored auth.json.
    pub codex_home: &'a Path,
    /// Where masks for tokens Codex writes are printed.
    pub workflow: &'a Workflow,
    /// How long the whole exchange may take.
    pub timeout: std::time::Duration,
}

impl Refresh<'_> {
    /// Runs the refresh; `exit_code` is 0 when Codex reports a signed-in ChatGPT account
    /// afterwards, 1 otherwise. `final_message` says which.
    pub async fn run(&self, environment: Vec<(OsString, OsString)>) -> Result<Outcome, CodexError> {
        let run_as = unprivileged_owner(self.workspace);
        let logs_set = environment.iter().any(|(name, _)| name == "RUST_LOG");
        let mut command = codex_command(self.workspace, self.codex_home, environment);
        command
            .args(["app-server", "-c", "cli_auth_credentials_store=\"file\""])
            .stdin(Stdio::piped());
        if !logs_set {
            // The app-server reports a failed refresh only in its log; this makes it print why
            // (refresh token reused, expired, revoked), which the summary error then names.
            command.env("RUST_LOG", "codex_login=error");
        }
        let mut child = spawn(command, self.codex_home, run_as)?;
        let watcher = Mutex::new(AuthWatcher::new(self.codex_home.join(AUTH_FILE)));
        let out = tokio::sync::Mutex::new(tokio::io::stdout());
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (exited, exit_seen) = tokio::sync::watch::channel(false);
        let exchange = async {
            let result = tokio::time::timeout(self.timeout, converse(stdin, stdout)).await;
            // The answer is in (or time is up) and stdin is closed: let the server finish
            // writing auth.json and exit; stop it only if it lingers.
            if tokio::time::timeout(DRAIN, child.wait()).await.is_err() {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
            let _ = exited.send(true);
            result
        };
        let (answer, failure) = tokio::join!(
            exchange,
            forward(stderr, &out, &watcher, self.workflow, exit_seen)
        );
        let failure = failure?;
        let (exit_code, final_message) = match answer {
            Ok(Ok(Some(plan))) => (
                0,
                format!("Codex refreshed the login (ChatGPT plan: {plan})."),
            ),
            Ok(Ok(None)) => (
                1,
                "Codex could not refresh the login: it reports no signed-in account.".to_owned(),
            ),
            Ok(Err(e)) => (1, format!("The Codex app-server exchange failed: {e}.")),
            Err(_) => (
                1,
                format!(
                    "The Codex app-server did not answer within {} s.",
                    self.timeout.as_secs()
                ),
            ),
        };
        if let Ok(mut watcher) = watcher.lock() {
            watcher.mask_if_changed(self.workflow);
        }
        println!("{final_message}");
        Ok(Outcome {
            exit_code,
            final_message,
            refresh_failure: failure,
        })
    }
}

/// The app-server exchange. Returns the plan of the account Codex reports after the forced
/// refresh, `None` when it reports none (the refresh failed).
async fn converse(
    stdin: Option<tokio::process::ChildStdin>,
    stdout: Option<tokio::process::ChildStdout>,
) -> io::Result<Option<String>> {
    use serde_json::{json, Value};
    let (Some(mut stdin), Some(stdout)) = (stdin, stdout) else {
        return Err(io::Error::other("no pipe to the app-server"));
    };
    let mut lines = BufReader::new(stdout).lines();
    let send = |message: Value| {
        let mut line = message.to_string();
        line.push('\n');
        line
    };
    let version = env!("CARGO_PKG_VERSION");
    stdin
        .write_all(
            send(json!({"id": 1, "method": "initialize", "params": {
                "clientInfo": {"name": "codex-auth", "title": "codex-auth", "version": version}}}))
            .as_bytes(),
        )
        .await?;
    answer(&mut lines, 1).await?;
    stdin
        .write_all(send(json!({"method": "initialized"})).as_bytes())
        .await?;
    stdin
        .write_all(
            send(json!({"id": 2, "method": "account/read", "params": {"refreshToken": true}}))
                .as_bytes(),
        )
        .await?;
    stdin.flush().await?;
    let result = answer(&mut lines, 2).await?;
    let account = result.get("account").filter(|a| !a.is_null());
    Ok(account.map(|a| {
        a.get("planType")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned()
    }))
}

/// Reads the app-server's messages until the response to request `id`.
async fn answer(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    id: u64,
) -> io::Result<serde_json::Value> {
    use serde_json::Value;
    while let Some(line) = lines.next_line().await? {
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if message.get("id").and_then(Value::as_u64) == Some(id) {
            if let Some(error) = message.get("error") {
                let text = error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("error");
                return Err(io::Error::other(text.to_owned()));
            }
            return Ok(message.get("result").cloned().unwrap_or(Value::Null));
        }
    }
    Err(io::Error::other("the app-server closed its output"))
}

/// When this process is root and the workspace belongs to someone else (the runner's user, in
/// a container action), that owner.
pub fn unprivileged_owner(workspace: &Path) -> Option<(u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let meta = std::fs::metadata(workspace).ok()?;
    (meta.uid() != 0).then(|| (meta.uid(), meta.gid()))
}

/// Hands a directory and what it holds (one level, as CODEX_HOME is when restored) to a user.
pub fn give_to(dir: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    for entry in std::fs::read_dir(dir)? {
        std::os::unix::fs::lchown(entry?.path(), Some(uid), Some(gid))?;
    }
    Ok(())
}

/// Waits for Codex, passing on SIGTERM and SIGINT.
async fn wait_passing_signals(
    child: &mut tokio::process::Child,
    pid: Option<u32>,
) -> io::Result<std::process::ExitStatus> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        let passed = tokio::select! {
            status = child.wait() => return status,
            _ = term.recv() => rustix::process::Signal::TERM,
            _ = int.recv() => rustix::process::Signal::INT,
        };
        let pid = pid
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, passed);
        }
    }
}

/// Masks the tokens of auth.json whenever it changes.
struct AuthWatcher {
    path: PathBuf,
    seen: Option<(u64, std::time::SystemTime, u64)>,
}

impl AuthWatcher {
    fn new(path: PathBuf) -> Self {
        let mut watcher = Self { path, seen: None };
        watcher.seen = watcher.stamp();
        watcher
    }

    fn stamp(&self) -> Option<(u64, std::time::SystemTime, u64)> {
        let meta = std::fs::metadata(&self.path).ok()?;
        Some((meta.ino(), meta.modified().ok()?, meta.len()))
    }

    fn mask_if_changed(&mut self, workflow: &Workflow) {
        let stamp = self.stamp();
        if stamp == self.seen {
            return;
        }
        self.seen = stamp;
        let Ok(bytes) = std::fs::read(&self.path) else {
            return;
        };
        let bytes = zeroize::Zeroizing::new(bytes);
        if let Ok(file) = AuthFile::parse_file(&bytes) {
            let _ = crate::restore::mask(workflow, &file);
        }
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

/// How long Codex's output is still read after it exited.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Copies a child's stream to our stdout line by line (both streams share it, so a mask
/// printed before a line is processed before it), masking tokens Codex has just written and
/// noting permanent refresh failures.
///
/// Stops at most [`DRAIN`] after Codex exited: a process Codex started (an MCP server, a
/// background job) may hold the pipes open forever, and the write-back must not wait for it.
async fn forward(
    from: Option<impl AsyncRead + Unpin>,
    to: &tokio::sync::Mutex<tokio::io::Stdout>,
    watcher: &Mutex<AuthWatcher>,
    workflow: &Workflow,
    mut exited: tokio::sync::watch::Receiver<bool>,
) -> io::Result<Option<RefreshFailure>> {
    let Some(from) = from else { return Ok(None) };
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    let mut failure = None;
    let deadline = async {
        let _ = exited.wait_for(|exited| *exited).await;
        tokio::time::sleep(DRAIN).await;
    };
    tokio::pin!(deadline);
    loop {
        line.clear();
        let read = tokio::select! {
            read = reader.read_until(b'\n', &mut line) => read?,
            () = &mut deadline => break,
        };
        if read == 0 {
            break;
        }
        failure = failure.or_else(|| refresh_failure(&String::from_utf8_lossy(&line)));
        let mut to = to.lock().await;
        to.flush().await?;
        if let Ok(mut watcher) = watcher.lock() {
            watcher.mask_if_changed(workflow);
        }
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
            ("GITHUB_STATE", "/github/file_commands/state"),
            ("GITHUB_ENV", "/github/file_commands/env"),
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
        let workflow = Workflow::default();
        let exec = Exec {
            prompt: "--not-an-option",
            extra_args: &["-m".into(), "gpt-5".into()],
            workspace: dir,
            codex_home: dir,
            temp_dir: dir,
            workflow: &workflow,
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
