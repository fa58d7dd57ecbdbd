//! The keep-fresh refresh: Codex refreshes the login through its app-server, with no model
//! call.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use super::output::{forward, AuthWatcher, DRAIN};
use super::{codex_command, codex_user, spawn, CodexError, Outcome};
use crate::cancel::Cancellation;
use crate::codex_home::AUTH_FILE;
use crate::workflow::Workflow;

/// A keep-fresh refresh without a model call: `codex app-server` over stdio, `initialize`,
/// `initialized`, then `account/read` with `refreshToken: true`, which makes Codex refresh the
/// login itself (`refresh_reason: forced`) and rewrite auth.json.
/// Protocol: codex-rs/app-server-protocol in openai/codex (newline-delimited JSON-RPC
/// without the `jsonrpc` field).
#[derive(Debug)]
pub struct Refresh<'a> {
    /// The Codex to run ([`super::install`]).
    pub program: &'a Path,
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
    /// A cancelled job ends the exchange at the runner's second signal: the server is then
    /// asked to stop, and killed if it lingers, so that the step's command files are given
    /// back before the runner's kill.
    pub async fn run(
        &self,
        environment: Vec<(OsString, OsString)>,
        cancel: &mut Cancellation,
    ) -> Result<Outcome, CodexError> {
        let run_as = codex_user(self.workspace);
        let logs_set = environment.iter().any(|(name, _)| name == "RUST_LOG");
        let mut command = codex_command(self.program, self.workspace, self.codex_home, environment);
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
            // The runner's first signal lets a refresh in flight finish (OpenAI may already have
            // rotated the token); its second, 7.5 s later, ends the exchange.
            let second_signal = async {
                cancel.next().await;
                cancel.next().await;
            };
            let result = tokio::select! {
                result = tokio::time::timeout(self.timeout, converse(stdin, stdout)) => Some(result),
                () = second_signal => None,
            };
            // The answer is in (or time is up) and stdin is closed: let the server finish
            // writing auth.json and exit; stop it only if it lingers. On a cancel, within the
            // runner's last 2.5 s.
            if result.is_none() {
                let _ = super::stop_on_cancel(&mut child).await;
            } else if tokio::time::timeout(DRAIN, child.wait()).await.is_err() {
                crate::cancel::kill_group(&mut child);
                let _ = child.wait().await;
            }
            let _ = exited.send(true);
            result
        };
        let (answer, failure) = tokio::join!(
            exchange,
            forward(stderr, &out, &watcher, self.workflow, exit_seen, None)
        );
        let failure = failure?;
        let (exit_code, final_message) = match answer {
            None => (
                1,
                "The job was cancelled during the refresh: Codex was stopped.".to_owned(),
            ),
            Some(Ok(Ok(Some(plan)))) => (
                0,
                format!("Codex refreshed the login (ChatGPT plan: {plan})."),
            ),
            Some(Ok(Ok(None))) => (
                1,
                "Codex could not refresh the login: it reports no signed-in account.".to_owned(),
            ),
            Some(Ok(Err(e))) => (1, format!("The Codex app-server exchange failed: {e}.")),
            Some(Err(_)) => (
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
        crate::workflow::print_line(&final_message);
        Ok(Outcome {
            exit_code,
            final_message,
            refresh_failure: failure,
            commands: None,
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
