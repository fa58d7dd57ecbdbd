//! `codex exec` with the prompt: the model may run commands in the workspace.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;

use super::events::Events;
use super::output::{forward, AuthWatcher};
use super::sandbox::{self, Sandbox};
use super::{
    codex_command, codex_user, give_to, inside_git_repository, spawn, CodexError, Outcome,
};
use crate::cancel::{self, Cancellation};
use crate::codex_home::{read_untrusted, AUTH_FILE};
use crate::workflow::Workflow;

/// A `codex exec` invocation.
#[derive(Debug)]
pub struct Exec<'a> {
    /// The Codex to run ([`super::install`]).
    pub program: &'a Path,
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
    /// The arguments after `codex`: JSON events (shown as text, and counted), the sandbox
    /// override when there is one, then the user's arguments, which win over both.
    pub fn arguments(&self, last_message: &Path, sandbox: &Sandbox) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["exec".into()];
        if !inside_git_repository(self.workspace) {
            args.push("--skip-git-repo-check".into());
        }
        args.extend(["-c".into(), "cli_auth_credentials_store=\"file\"".into()]);
        // A second `--output-last-message` would make Codex refuse its arguments: the user's
        // own, when given, is read instead.
        if self.user_last_message().is_none() {
            args.extend(["--output-last-message".into(), last_message.into()]);
        }
        if let Some(config) = sandbox.override_config() {
            args.extend(["-c".into(), config.into()]);
        }
        // A second `--json` would make Codex refuse its arguments.
        if !self.extra_args.iter().any(|a| a == "--json") {
            args.push("--json".into());
        }
        args.extend(self.extra_args.iter().map(OsString::from));
        args.push("--".into());
        args.push(self.prompt.into());
        args
    }

    /// The `--output-last-message` (`-o`) file the user named in `codex-args`, if any.
    fn user_last_message(&self) -> Option<&str> {
        let mut args = self.extra_args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--" => return None,
                "-o" | "--output-last-message" => return args.next().map(String::as_str),
                other => {
                    if let Some(path) = other
                        .strip_prefix("--output-last-message=")
                        .or_else(|| other.strip_prefix("-o").filter(|p| !p.is_empty()))
                    {
                        return Some(path);
                    }
                }
            }
        }
        None
    }

    /// Runs Codex with stdin from /dev/null, streaming its output to ours. Tokens Codex
    /// writes to auth.json are masked before any later line of its output is printed. A
    /// SIGTERM or SIGINT (a cancelled job) is passed on to Codex, and its exit awaited, so
    /// that a refresh in flight lands in auth.json and can still be written back.
    pub async fn run(
        &self,
        environment: Vec<(OsString, OsString)>,
        cancel: &mut Cancellation,
    ) -> Result<Outcome, CodexError> {
        let run_as = codex_user(self.workspace);
        if run_as.is_some_and(|(uid, _)| uid == super::NOBODY) {
            self.workflow.info(
                "The workspace belongs to root: Codex runs as nobody (uid 65534), never as root. \
                 Its commands can read the checkout but not change it; run the runner as a \
                 user other than root for tasks that edit it.",
            );
        }
        let scratch = tempfile::Builder::new()
            .prefix("codex-auth-")
            .tempdir_in(self.temp_dir)?;
        if let Some((uid, gid)) = run_as {
            give_to(scratch.path(), uid, gid)?;
        }
        let sandbox = sandbox::decide(
            self.program,
            self.extra_args,
            self.workspace,
            scratch.path(),
            environment.clone(),
            run_as,
        )
        .await?;
        self.workflow.info(&sandbox.describe());
        let last_message = scratch.path().join("last-message.txt");
        let mut command = codex_command(self.program, self.workspace, self.codex_home, environment);
        command
            .args(self.arguments(&last_message, &sandbox))
            .stdin(Stdio::null());
        let mut child = spawn(command, self.codex_home, run_as)?;
        let watcher = Mutex::new(AuthWatcher::new(self.codex_home.join(AUTH_FILE)));
        let out = tokio::io::stdout();
        let out = tokio::sync::Mutex::new(out);
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (exited, exit_seen) = tokio::sync::watch::channel(false);
        let wait = async {
            let status = wait_passing_signals(&mut child, cancel).await;
            let _ = exited.send(true);
            status
        };
        let broken = match &sandbox {
            Sandbox::Chosen(_, refused) => refused.clone(),
            Sandbox::Unavailable(refused) => Some(refused.clone()),
            Sandbox::Codex | Sandbox::FullAccess(_) => None,
        };
        let mut events = Events::new(broken);
        let (exit, out_failure, err_failure) = tokio::join!(
            wait,
            forward(
                stdout,
                &out,
                &watcher,
                self.workflow,
                exit_seen.clone(),
                Some(&mut events)
            ),
            forward(stderr, &out, &watcher, self.workflow, exit_seen, None),
        );
        let status = exit?;
        let exit_code = exit_code(&status);
        // Codex's user owns the scratch directory: a link there could point at this process's
        // own environment, so the file is read as untrusted.
        let last_message = match self.user_last_message() {
            Some(path) => self.workspace.join(path),
            None => last_message,
        };
        let final_message = match read_untrusted(&last_message, 1 << 20) {
            Ok(Some(text)) => String::from_utf8_lossy(&text).trim_end().to_owned(),
            _ => String::new(),
        };
        Ok(Outcome {
            exit_code,
            final_message,
            refresh_failure: out_failure?.or(err_failure?),
            commands: Some((sandbox, events.commands().clone())),
        })
    }
}

/// Waits for Codex, passing on SIGTERM and SIGINT; after the second, it is stopped
/// ([`super::stop_on_cancel`]).
async fn wait_passing_signals(
    child: &mut tokio::process::Child,
    cancel: &mut Cancellation,
) -> io::Result<std::process::ExitStatus> {
    let mut signals = 0u8;
    loop {
        let passed = tokio::select! {
            status = child.wait() => return status,
            signal = cancel.next() => signal,
        };
        cancel::pass_on(child, passed);
        signals = signals.saturating_add(1);
        if signals >= 2 {
            return super::stop_on_cancel(child).await;
        }
    }
}

/// Codex's exit code; 128 + the signal number when a signal ended it (on Unix).
fn exit_code(status: &std::process::ExitStatus) -> i32 {
    #[cfg(unix)]
    {
        if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(status) {
            return 128 + signal;
        }
    }
    status.code().unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_pin_file_storage_and_end_options_before_the_prompt() {
        let dir = Path::new("/nonexistent/workspace");
        let workflow = Workflow::default();
        let exec = Exec {
            program: Path::new("codex"),
            prompt: "--not-an-option",
            extra_args: &["-m".into(), "gpt-5".into()],
            workspace: dir,
            codex_home: dir,
            temp_dir: dir,
            workflow: &workflow,
        };
        let args: Vec<String> = exec
            .arguments(
                Path::new("/tmp/last"),
                &Sandbox::FullAccess("bwrap: refused".into()),
            )
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
                "-c",
                "sandbox_mode=\"danger-full-access\"",
                "--json",
                "-m",
                "gpt-5",
                "--",
                "--not-an-option"
            ]
        );
    }

    #[test]
    fn a_last_message_file_of_the_users_replaces_ours() {
        let dir = Path::new("/nonexistent/workspace");
        let workflow = Workflow::default();
        for extra in [
            vec!["-o".to_owned(), "out.txt".to_owned()],
            vec!["--output-last-message=out.txt".to_owned()],
        ] {
            let exec = Exec {
                program: Path::new("codex"),
                prompt: "p",
                extra_args: &extra,
                workspace: dir,
                codex_home: dir,
                temp_dir: dir,
                workflow: &workflow,
            };
            assert_eq!(exec.user_last_message(), Some("out.txt"));
            let args = exec.arguments(Path::new("/tmp/last"), &Sandbox::Codex);
            assert!(!args.iter().any(|a| a == "/tmp/last"), "{args:?}");
        }
    }
}
