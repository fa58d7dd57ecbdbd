//! `codex exec` with the prompt: the model may run commands in the workspace.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
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
use crate::config::{ActionConfig, ConfigError, OutputSchema, Prompt};
use crate::untrusted;
use crate::workflow::Workflow;

/// The longest prompt: Codex takes it as one argument, and Linux passes at most 128 KiB
/// (`MAX_ARG_STRLEN`, its closing NUL included) in one.
pub const MAX_PROMPT_BYTES: u64 = 128 * 1024 - 1;

/// The largest output schema file read.
pub const MAX_SCHEMA_BYTES: u64 = 1 << 20;

/// What `codex exec` is asked, settled before any login is restored: the prompt (input
/// `prompt-file` read), the model, the reasoning effort, the output schema (input
/// `output-schema-file` read and checked) and the working directory (checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The prompt.
    pub prompt: String,
    /// `--model`.
    pub model: Option<String>,
    /// `-c model_reasoning_effort=…`.
    pub effort: Option<String>,
    /// The output schema, compact JSON, written to a file Codex can read (`--output-schema`).
    pub output_schema: Option<String>,
    /// `--cd`: the working directory, inside the workspace.
    pub working_directory: Option<PathBuf>,
}

impl Request {
    /// Reads and checks what the inputs name in the workspace, never through a link (the
    /// checkout, or a Codex of an earlier step, can plant one: a prompt file linked to
    /// `/proc/self/environ` would send this process's environment to the model).
    pub fn prepare(config: &ActionConfig) -> Result<Self, ConfigError> {
        if let Some(arg) = sandbox::needing_namespaces(&config.codex_args) {
            if config.in_container_action() {
                return Err(ConfigError::Invalid {
                    input: "codex-args",
                    title: "Sandbox refused in the container",
                    problem: format!(
                        "chooses Codex's sandbox (`{arg}`), which cannot start in the action's \
                         container: Docker's default seccomp profile, which the runner gives \
                         container actions, refuses the user namespaces it needs, so every \
                         command Codex ran would fail. The container is the sandbox: drop the \
                         flag, and codex-auth runs Codex's commands in the container as the \
                         checkout's owner, with no capabilities and no secret in their \
                         environment (or run Codex in a later step on the host, with \
                         `mode: restore`)"
                    ),
                });
            }
        }
        let workspace = &config.workspace;
        let prompt = match &config.prompt {
            Prompt::Text(text) => text.clone(),
            Prompt::File(path) => {
                let text = read_text(workspace, "prompt-file", path, MAX_PROMPT_BYTES)?;
                if text.trim().is_empty() {
                    return Err(ConfigError::Invalid {
                        input: "prompt-file",
                        title: "Prompt file unreadable",
                        problem: format!(
                            "names {}, which is empty",
                            workspace.join(path).display()
                        ),
                    });
                }
                text
            }
        };
        let output_schema = match &config.output_schema {
            None => None,
            Some(OutputSchema::Inline(json)) => Some(json.clone()),
            Some(OutputSchema::File(path)) => {
                let text = read_text(workspace, "output-schema-file", path, MAX_SCHEMA_BYTES)?;
                let json =
                    crate::config::schema_json(&text).map_err(|problem| ConfigError::Invalid {
                        input: "output-schema-file",
                        title: "Invalid output schema file",
                        problem: format!(
                            "names {}, which {problem}",
                            workspace.join(path).display()
                        ),
                    })?;
                Some(json)
            }
        };
        let working_directory = match &config.working_directory {
            None => None,
            Some(path) => {
                untrusted::is_dir_beneath(workspace, path).map_err(|e| ConfigError::Invalid {
                    input: "working-directory",
                    title: "Working directory missing",
                    problem: format!(
                        "is not a directory of the workspace reached without a link ({e}); \
                         give an existing directory, relative to the workspace"
                    ),
                })?;
                Some(workspace.join(path))
            }
        };
        if let Some(path) = &config.output_file {
            let parent = path.parent().unwrap_or(Path::new(""));
            untrusted::is_dir_beneath(workspace, parent).map_err(|e| ConfigError::Invalid {
                input: "output-file",
                title: "Output file directory missing",
                problem: format!(
                    "is in no directory of the workspace reached without a link ({e}); create \
                     the directory first, or write to the workspace itself"
                ),
            })?;
        }
        Ok(Self {
            prompt,
            model: config.model.clone(),
            effort: config.effort.clone(),
            output_schema,
            working_directory,
        })
    }
}

/// A UTF-8 text file beneath the workspace, read without following a link.
fn read_text(
    workspace: &Path,
    input: &'static str,
    path: &Path,
    max_bytes: u64,
) -> Result<String, ConfigError> {
    let shown = workspace.join(path);
    let title = match input {
        "prompt-file" => "Prompt file unreadable",
        _ => "Invalid output schema file",
    };
    // Read as root, for Codex's user: only what that user could read itself.
    let reader = super::codex_user(workspace).map(|(uid, _)| uid);
    let bytes = match untrusted::read_beneath(workspace, path, max_bytes, reader) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return Err(ConfigError::Invalid {
                input,
                title,
                problem: format!("names {}, which does not exist", shown.display()),
            })
        }
        Err(e) => {
            return Err(ConfigError::Invalid {
                input,
                title,
                problem: format!(
                    "cannot be read ({e}); give a regular file of the workspace, at most \
                     {max_bytes} bytes, reached without a link"
                ),
            })
        }
    };
    String::from_utf8(bytes.to_vec()).map_err(|_| ConfigError::Invalid {
        input,
        title,
        problem: format!("names {}, which is not UTF-8 text", shown.display()),
    })
}

/// A `codex exec` invocation.
#[derive(Debug)]
pub struct Exec<'a> {
    /// The Codex to run ([`super::install`]).
    pub program: &'a Path,
    /// What Codex is asked ([`Request::prepare`]).
    pub request: &'a Request,
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
    /// override when there is one, the request's settings (`output_schema`: the file that
    /// holds its schema), then the user's arguments, which win over the override.
    pub fn arguments(
        &self,
        last_message: &Path,
        output_schema: Option<&Path>,
        sandbox: &Sandbox,
    ) -> Vec<OsString> {
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
        let request = self.request;
        if let Some(model) = &request.model {
            args.extend(["--model".into(), model.into()]);
        }
        if let Some(effort) = &request.effort {
            // One word of [`crate::config::EFFORTS`]: nothing to escape in the TOML string.
            args.extend([
                "-c".into(),
                format!("model_reasoning_effort=\"{effort}\"").into(),
            ]);
        }
        if let Some(dir) = &request.working_directory {
            args.extend(["--cd".into(), dir.into()]);
        }
        if let Some(schema) = output_schema {
            args.extend(["--output-schema".into(), schema.into()]);
        }
        // A second `--json` would make Codex refuse its arguments.
        if !self.extra_args.iter().any(|a| a == "--json") {
            args.push("--json".into());
        }
        args.extend(self.extra_args.iter().map(OsString::from));
        args.push("--".into());
        args.push(self.request.prompt.as_str().into());
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
        // The schema goes where Codex's user can read it: the scratch directory, made here
        // and not yet its.
        let output_schema = match &self.request.output_schema {
            Some(json) => {
                let path = scratch.path().join("output-schema.json");
                write_new(&path, json.as_bytes())?;
                Some(path)
            }
            None => None,
        };
        if let Some((uid, gid)) = run_as {
            give_to(scratch.path(), uid, gid)?;
        }
        // The probe needs no login: a Codex access token there would only send Codex to the
        // backend for the workspace's policies first (and wait for them).
        let probe_environment = environment
            .iter()
            .filter(|(name, _)| name != super::ACCESS_TOKEN_VARIABLE)
            .cloned()
            .collect();
        let sandbox = sandbox::decide(
            self.program,
            self.extra_args,
            self.workspace,
            scratch.path(),
            probe_environment,
            run_as,
        )
        .await?;
        self.workflow.info(&sandbox.describe());
        let last_message = scratch.path().join("last-message.txt");
        let mut command = codex_command(self.program, self.workspace, self.codex_home, environment);
        command
            .args(self.arguments(&last_message, output_schema.as_deref(), &sandbox))
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
        // A path of the user's own in the workspace: read beneath it, never through a link
        // Codex planted on the way, and only as Codex's user could read it.
        let read = match self.user_last_message().map(Path::new) {
            Some(path) if path.is_relative() => {
                untrusted::read_beneath(self.workspace, path, 1 << 20, run_as.map(|(uid, _)| uid))
            }
            Some(path) => read_untrusted(path, 1 << 20),
            None => read_untrusted(&last_message, 1 << 20),
        };
        let final_message = match read {
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

/// A new file, readable by all (mode 0644), never through a link.
fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
    options.open(path)?.write_all(contents)
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

    fn request(prompt: &str) -> Request {
        Request {
            prompt: prompt.to_owned(),
            model: None,
            effort: None,
            output_schema: None,
            working_directory: None,
        }
    }

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn arguments_pin_file_storage_and_end_options_before_the_prompt() {
        let dir = Path::new("/nonexistent/workspace");
        let workflow = Workflow::default();
        let request = request("--not-an-option");
        let exec = Exec {
            program: Path::new("codex"),
            request: &request,
            extra_args: &["-p".into(), "ci".into()],
            workspace: dir,
            codex_home: dir,
            temp_dir: dir,
            workflow: &workflow,
        };
        let args = strings(exec.arguments(
            Path::new("/tmp/last"),
            None,
            &Sandbox::FullAccess("bwrap: refused".into()),
        ));
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
                "-p",
                "ci",
                "--",
                "--not-an-option"
            ]
        );
    }

    #[test]
    fn the_requests_settings_come_before_the_users_arguments() {
        let dir = Path::new("/nonexistent/workspace");
        let workflow = Workflow::default();
        let request = Request {
            model: Some("gpt-5.1-codex".into()),
            effort: Some("high".into()),
            output_schema: Some("{}".into()),
            working_directory: Some(dir.join("sub")),
            ..request("p")
        };
        let exec = Exec {
            program: Path::new("codex"),
            request: &request,
            extra_args: &["--ephemeral".into()],
            workspace: dir,
            codex_home: dir,
            temp_dir: dir,
            workflow: &workflow,
        };
        let args = strings(exec.arguments(
            Path::new("/tmp/last"),
            Some(Path::new("/tmp/schema.json")),
            &Sandbox::Codex,
        ));
        assert_eq!(
            args[6..],
            [
                "--model",
                "gpt-5.1-codex",
                "-c",
                "model_reasoning_effort=\"high\"",
                "--cd",
                "/nonexistent/workspace/sub",
                "--output-schema",
                "/tmp/schema.json",
                "--json",
                "--ephemeral",
                "--",
                "p"
            ]
        );
    }

    #[test]
    fn a_last_message_file_of_the_users_replaces_ours() {
        let dir = Path::new("/nonexistent/workspace");
        let workflow = Workflow::default();
        let request = request("p");
        for extra in [
            vec!["-o".to_owned(), "out.txt".to_owned()],
            vec!["--output-last-message=out.txt".to_owned()],
        ] {
            let exec = Exec {
                program: Path::new("codex"),
                request: &request,
                extra_args: &extra,
                workspace: dir,
                codex_home: dir,
                temp_dir: dir,
                workflow: &workflow,
            };
            assert_eq!(exec.user_last_message(), Some("out.txt"));
            let args = exec.arguments(Path::new("/tmp/last"), None, &Sandbox::Codex);
            assert!(!args.iter().any(|a| a == "/tmp/last"), "{args:?}");
        }
    }
}
