//! `mode: login`: a new sign-in through Codex's own device-code flow (`codex login
//! --device-auth`), never a re-implementation of it.
//!
//! Codex signs in in a fresh, private CODEX_HOME: when it signs in where a login already is,
//! it first revokes that login's refresh token and deletes it, so a denied or abandoned
//! sign-in must never run next to the stored login. It prints the verification URL and a
//! one-time code; they are shown where the person who started the run sees them first (a
//! notice annotation on the run's page, the job summary, the log) as soon as Codex prints
//! them. Then Codex polls until the sign-in is approved, denied, or its own 15 minutes are up;
//! a shorter limit, or a cancelled job, stops it.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};

use super::output::drained;
use super::{codex_command, codex_user, spawn, CodexError};
use crate::auth_file::AuthFile;
use crate::cancel::{self, Cancellation, Interrupt};
use crate::codex_home::{CodexHome, OnDisk};
use crate::failure::Failure;
use crate::workflow::Workflow;

/// How long Codex may take to stop once asked.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A device-code sign-in.
#[derive(Debug)]
pub struct Login<'a> {
    /// The Codex to run ([`super::install`]).
    pub program: &'a Path,
    /// Where Codex runs (its owner is who Codex runs as).
    pub workspace: &'a Path,
    /// Where the sign-in's URL and code are shown.
    pub workflow: &'a Workflow,
    /// How long to wait for the approval.
    pub timeout: Duration,
    /// A ChatGPT account id Codex itself must enforce (`forced_chatgpt_workspace_id`).
    pub workspace_id: Option<&'a str>,
}

/// What Codex printed that the person needs.
#[derive(Debug, Default)]
struct Prompt {
    url: Option<String>,
    code: Option<String>,
    after_code_heading: bool,
    shown: bool,
}

impl Prompt {
    /// Reads one line of Codex's output (colours stripped).
    fn read(&mut self, line: &str) {
        let line = line.trim();
        if self.after_code_heading && !line.is_empty() {
            self.code.get_or_insert_with(|| line.to_owned());
            self.after_code_heading = false;
        }
        if line.contains("one-time code") {
            self.after_code_heading = true;
        }
        if let Some(url) = line
            .split_whitespace()
            .find(|w| w.starts_with("https://") || w.starts_with("http://"))
        {
            self.url.get_or_insert_with(|| url.to_owned());
        }
    }
}

impl Login<'_> {
    /// The arguments after `codex`.
    pub fn arguments(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "login".into(),
            "--device-auth".into(),
            "-c".into(),
            "cli_auth_credentials_store=\"file\"".into(),
        ];
        if let Some(id) = self.workspace_id {
            args.extend([
                "-c".into(),
                format!("forced_chatgpt_workspace_id=\"{id}\"").into(),
            ]);
        }
        args
    }

    /// Runs the sign-in; returns the new login, validated like a restored one and masked.
    pub async fn run(
        &self,
        environment: Vec<(OsString, OsString)>,
        cancel: &mut Cancellation,
    ) -> anyhow::Result<AuthFile> {
        let workflow = self.workflow;
        let run_as = codex_user(self.workspace);
        // Private to this process (mode 0700), and never where a login is kept.
        let home = tempfile::Builder::new()
            .prefix("codex-auth-login-")
            .tempdir()?;
        let home_dir = home.path().to_owned();
        let mut command = codex_command(self.program, self.workspace, &home_dir, environment);
        command.args(self.arguments()).stdin(Stdio::null());
        let mut child = spawn(command, &home_dir, run_as)?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let deadline = Timestamp::now()
            .checked_add(SignedDuration::try_from(self.timeout).unwrap_or(SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX);
        let prompt = std::sync::Mutex::new(Prompt::default());
        let said = std::sync::Mutex::new(Vec::<String>::new());
        let show = |line: &str| {
            workflow.info(line);
            if let Ok(mut prompt) = prompt.lock() {
                prompt.read(line);
                if let (false, Some(url), Some(code)) =
                    (prompt.shown, prompt.url.clone(), prompt.code.clone())
                {
                    prompt.shown = true;
                    self.announce(&url, &code, deadline);
                }
            }
        };
        let keep = |line: &str| {
            workflow.info(line);
            if let Ok(mut said) = said.lock() {
                said.push(line.to_owned());
            }
        };
        enum End {
            Exited(std::io::Result<std::process::ExitStatus>),
            TimedOut,
            Cancelled,
        }
        let (ended, ended_seen) = tokio::sync::watch::channel(false);
        // Codex is stopped here, not after: its output ends only when it does.
        let wait = async {
            let end = tokio::select! {
                status = child.wait() => End::Exited(status),
                () = tokio::time::sleep(self.timeout) => End::TimedOut,
                _ = cancel.next() => End::Cancelled,
            };
            if !matches!(end, End::Exited(_)) {
                stop(&mut child).await;
            }
            let _ = ended.send(true);
            end
        };
        let (end, (), ()) = tokio::join!(
            wait,
            lines(stdout, show, ended_seen.clone()),
            lines(stderr, keep, ended_seen)
        );
        let said: Vec<String> = said.into_inner().unwrap_or_default();
        match end {
            End::Exited(status) => {
                let status = status.map_err(CodexError::Io)?;
                if !status.success() {
                    return Err(failed(status.code(), &said).into());
                }
            }
            End::TimedOut | End::Cancelled => {
                let minutes = self.timeout.as_secs().div_ceil(60);
                return Err(match end {
                    End::TimedOut => Failure::new(
                        "Sign-in timed out",
                        format!(
                            "nobody approved the sign-in within {} s (input `login-timeout`; \
                             about {minutes} min). Nothing was stored, and the stored login, if \
                             any, is unchanged. Run the workflow again for a new code, and enter \
                             it while the job waits.",
                            self.timeout.as_secs()
                        ),
                    ),
                    _ => Failure::new(
                        "Job cancelled",
                        "the job was cancelled during the sign-in; Codex was stopped and \
                         nothing was stored.",
                    ),
                }
                .into());
            }
        }
        let on_disk = CodexHome::new(&home_dir).read()?;
        let login = match on_disk {
            OnDisk::Valid(login) => login,
            OnDisk::Invalid(error) => {
                return Err(Failure::new(
                    "Sign-in failed",
                    format!(
                        "Codex reported a sign-in, but the login it wrote is not usable \
                         ({error}). Nothing was stored; run the workflow again."
                    ),
                )
                .into())
            }
            OnDisk::Missing => {
                return Err(Failure::new(
                    "Sign-in failed",
                    "Codex exited without writing a login. Nothing was stored; run the \
                     workflow again.",
                )
                .into())
            }
        };
        workflow.mask_login(&login)?;
        Ok(login)
    }

    /// Shows the URL and code where the person sees them first.
    fn announce(&self, url: &str, code: &str, deadline: Timestamp) {
        let workflow = self.workflow;
        let until = deadline.strftime("%H:%M UTC");
        workflow.notice(
            "Sign in to ChatGPT",
            &format!(
                "Open {url} and enter the code {code}, signed in to the ChatGPT account this \
                 repository's workflows should use. The job waits until {until}."
            ),
        );
        let mut md = String::from("### codex-auth: sign in to ChatGPT\n\n");
        let _ = writeln!(
            md,
            "1. Open <{url}> and sign in to the ChatGPT account the workflows should use."
        );
        let _ = writeln!(md, "2. Enter the code **`{code}`**.");
        let _ = writeln!(
            md,
            "\nThe job waits for the approval until {until}; then it stores the new login."
        );
        if let Err(error) = workflow.summary(&md) {
            workflow.warning("Summary not written", &format!("{error}"));
        }
        workflow.info(&format!(
            "Waiting for the sign-in to be approved (until {until})…"
        ));
    }
}

/// Reads a stream of Codex's line by line, colours stripped.
/// Stops when [`drained`] says so after Codex ended: a process it left may hold the pipe open.
async fn lines(
    from: Option<impl AsyncRead + Unpin>,
    mut each: impl FnMut(&str),
    ended: tokio::sync::watch::Receiver<bool>,
) {
    let Some(from) = from else { return };
    let mut lines = BufReader::new(from).lines();
    let deadline = drained(ended);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => each(&strip_ansi(&line)),
                _ => return,
            },
            () = &mut deadline => return,
        }
    }
}

/// Asks Codex to stop (SIGTERM), then kills it if it lingers.
async fn stop(child: &mut tokio::process::Child) {
    cancel::pass_on(child, Interrupt::Terminate);
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

/// Why Codex's sign-in ended without a login, from what it printed on stderr.
fn failed(code: Option<i32>, said: &[String]) -> Failure {
    let text = said.join("\n");
    let last = said
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map_or("no message", String::as_str);
    if text.contains("restricted to workspace") {
        return Failure::new(
            "Wrong account",
            format!(
                "Codex refused the sign-in: {last}. It was approved for another ChatGPT account \
                 or workspace than input `expected-account`. Nothing was stored. Run the \
                 workflow again and sign in to the expected account."
            ),
        );
    }
    if said
        .iter()
        .any(|l| l.starts_with("Error logging in") && l.contains("not enabled"))
    {
        return Failure::new(
            "Device-code sign-in not allowed",
            format!(
                "Codex could not start the sign-in: {last}. The ChatGPT account (or its \
                 workspace) may have to allow device-code sign-in for Codex first, in ChatGPT's \
                 security settings. Nothing was stored."
            ),
        );
    }
    if text.contains("timed out") {
        return Failure::new(
            "Sign-in timed out",
            format!(
                "{last}. Nobody approved the sign-in within Codex's 15 minutes. Nothing was \
                 stored; run the workflow again for a new code."
            ),
        );
    }
    Failure::new(
        "Sign-in failed",
        format!(
            "Codex's sign-in ended without a login (exit code {}): {last}. The sign-in was \
             denied, or the code expired. Nothing was stored, and the stored login, if any, is \
             unchanged. Run the workflow again for a new code.",
            code.unwrap_or(-1)
        ),
    )
}

/// Codex colours its output even when it is not a terminal.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters and intermediates, up to the final byte.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_and_code_are_read_from_codexs_coloured_output() {
        let printed = [
            "\u{1b}[1mFollow these steps to sign in with ChatGPT using device code authorization:\u{1b}[0m",
            "",
            "1. Open this link in your browser and sign in to your account",
            "   \u{1b}[94mhttps://auth.example/codex/device\u{1b}[0m",
            "",
            "2. Enter this one-time code \u{1b}[90m(expires in 15 minutes)\u{1b}[0m",
            "   \u{1b}[94mABCD-1234\u{1b}[0m",
        ];
        let mut prompt = Prompt::default();
        for line in printed {
            prompt.read(&strip_ansi(line));
        }
        assert_eq!(
            prompt.url.as_deref(),
            Some("https://auth.example/codex/device")
        );
        assert_eq!(prompt.code.as_deref(), Some("ABCD-1234"));
    }

    #[test]
    fn codexs_refusals_become_failures_that_say_what_happened() {
        let said = |line: &str| vec![line.to_owned()];
        assert_eq!(
            failed(
                Some(1),
                &said("Error logging in: device auth failed with status 400 Bad Request")
            )
            .title,
            "Sign-in failed"
        );
        assert_eq!(
            failed(
                Some(1),
                &said("Login is restricted to workspace id(s) acc-1")
            )
            .title,
            "Wrong account"
        );
        assert_eq!(
            failed(
                Some(1),
                &said("Error logging in: device code login is not enabled for this Codex server")
            )
            .title,
            "Device-code sign-in not allowed"
        );
    }
}
