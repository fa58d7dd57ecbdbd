//! Which sandbox the commands of a Codex task run in.
//!
//! Codex's Linux sandbox is bubblewrap, which needs user namespaces. GitHub's runner starts a
//! container action under Docker's default seccomp profile and capabilities (it passes no
//! `--security-opt`, `--cap-add` or `--privileged`, and an action cannot add them): that
//! profile refuses `unshare` and `clone` with namespace flags to a process without
//! CAP_SYS_ADMIN, so every command of the default `read-only` sandbox, and of
//! `workspace-write`, fails with `bwrap: No permissions to create a new namespace…`, while
//! `codex exec` still exits 0.
//!
//! So before a task, Codex's own sandbox is tried the way a task would use it: `codex sandbox
//! -- true`, as the user Codex runs as. When it starts, it is kept. When it cannot, and the
//! action runs in a container, Codex runs with `sandbox_mode = "danger-full-access"`: the
//! container, the unprivileged user Codex runs as (no capabilities, no supplementary groups)
//! and its scrubbed environment are the isolation. Outside a container nothing is loosened. A
//! sandbox the user chose in `codex-args` always wins.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::{codex_command, spawn, CodexError};

/// The configuration that turns Codex's sandbox off, given before the user's arguments so
/// that a `--sandbox` of theirs still wins (a second `--sandbox` flag would make Codex exit 2).
pub const FULL_ACCESS: &str = "sandbox_mode=\"danger-full-access\"";

/// How long the sandbox probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// The sandbox a task's commands run in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sandbox {
    /// The user chose it in `codex-args`: the argument that did, and, when Codex's sandbox
    /// cannot start here (and the choice is not to go without it), what bubblewrap said.
    Chosen(String, Option<String>),
    /// Codex's own sandbox, which starts here.
    Codex,
    /// Codex's sandbox cannot start here (what bubblewrap said); the action runs in a
    /// container, so commands run without it.
    FullAccess(String),
    /// Codex's sandbox cannot start here (what bubblewrap said), and the action does not run
    /// in a container, so nothing is loosened: the task's commands will fail.
    Unavailable(String),
}

impl Sandbox {
    /// The `-c` override to pass before the user's arguments, if any.
    pub fn override_config(&self) -> Option<&'static str> {
        matches!(self, Sandbox::FullAccess(_)).then_some(FULL_ACCESS)
    }

    /// Its name, for the job summary.
    pub fn name(&self) -> String {
        match self {
            Sandbox::Chosen(arg, _) => format!("chosen in `codex-args`: `{arg}`"),
            Sandbox::Codex => "Codex's own".to_owned(),
            Sandbox::FullAccess(_) => {
                "none inside the container (Codex's cannot start under Docker's seccomp profile)"
                    .to_owned()
            }
            Sandbox::Unavailable(_) => "Codex's own, which cannot start here".to_owned(),
        }
    }

    /// One line for the log: which sandbox, and why.
    pub fn describe(&self) -> String {
        match self {
            Sandbox::Chosen(arg, None) => {
                format!("Sandbox: as chosen in input `codex-args` (`{arg}`).")
            }
            Sandbox::Chosen(arg, Some(refused)) => format!(
                "Sandbox: as chosen in input `codex-args` (`{arg}`), although Codex's sandbox \
                 cannot start here ({refused}): its commands will fail."
            ),
            Sandbox::Codex => "Sandbox: Codex's own (bubblewrap starts here).".to_owned(),
            Sandbox::FullAccess(refused) => format!(
                "Sandbox: none inside the container (sandbox_mode=danger-full-access). Codex's \
                 sandbox cannot start here ({refused}): Docker's default seccomp profile, which \
                 GitHub's runner applies to container actions, refuses the user namespaces \
                 bubblewrap needs. Codex's commands run in the action's container as the \
                 checkout's owner, with no capabilities, no supplementary groups and no \
                 secret in their environment. Choose a sandbox in `codex-args` to override."
            ),
            Sandbox::Unavailable(refused) => format!(
                "Sandbox: Codex's own, which cannot start here ({refused}); not in a container, \
                 so codex-auth does not run commands without it."
            ),
        }
    }
}

/// The sandbox argument in `codex-args`, when the user chose one: `--sandbox`/`-s`,
/// `--dangerously-bypass-approvals-and-sandbox`, `-c sandbox_mode=…`, or a profile (`-p`),
/// which may set one.
pub fn chosen(args: &[String]) -> Option<String> {
    let mut args = args.iter().peekable();
    while let Some(arg) = args.next() {
        let arg = arg.as_str();
        if arg == "--" {
            break;
        }
        let with_value = |flag: &str, value: Option<&&String>| match value {
            Some(value) => format!("{flag} {value}"),
            None => flag.to_owned(),
        };
        match arg {
            "-s" | "--sandbox" | "-p" | "--profile" => {
                return Some(with_value(arg, args.peek()));
            }
            "--dangerously-bypass-approvals-and-sandbox" => return Some(arg.to_owned()),
            "-c" | "--config" => {
                if let Some(value) = args.next() {
                    if value.trim_start().starts_with("sandbox_mode") {
                        return Some(format!("{arg} {value}"));
                    }
                }
            }
            _ => {
                let attached = ["--sandbox=", "--profile=", "-s", "-p"]
                    .iter()
                    .any(|p| arg.starts_with(p) && arg.len() > p.len());
                let config = ["--config=", "-c"]
                    .iter()
                    .filter_map(|p| arg.strip_prefix(p))
                    .any(|value| value.trim_start().starts_with("sandbox_mode"));
                if attached || config {
                    return Some(arg.to_owned());
                }
            }
        }
    }
    None
}

/// The sandbox modes that need bubblewrap's user namespaces.
const NEEDS_NAMESPACES: &[&str] = &["read-only", "workspace-write"];

/// The argument of `codex-args` (before `--`) that chooses a sandbox mode needing user
/// namespaces (`--sandbox`/`-s`, `-c sandbox_mode=…`, `read-only` or `workspace-write`),
/// which Docker's seccomp profile refuses in the action's container.
pub fn needing_namespaces(args: &[String]) -> Option<String> {
    let mode = |value: &str| {
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        NEEDS_NAMESPACES.contains(&value)
    };
    let config = |value: &str| {
        value
            .split_once('=')
            .is_some_and(|(key, value)| key.trim() == "sandbox_mode" && mode(value))
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let arg = arg.as_str();
        match arg {
            "--" => break,
            "-s" | "--sandbox" | "-c" | "--config" => {
                let Some(value) = args.next() else { break };
                let chosen = match arg {
                    "-s" | "--sandbox" => mode(value),
                    _ => config(value),
                };
                if chosen {
                    return Some(format!("{arg} {value}"));
                }
            }
            _ => {
                let attached = ["--sandbox=", "-s"]
                    .iter()
                    .filter_map(|p| arg.strip_prefix(p))
                    .any(mode)
                    || ["--config=", "-c"]
                        .iter()
                        .filter_map(|p| arg.strip_prefix(p))
                        .any(config);
                if attached {
                    return Some(arg.to_owned());
                }
            }
        }
    }
    None
}

/// Whether this process runs in a container (Docker's `/.dockerenv`, podman's
/// `/run/.containerenv`).
pub fn in_container() -> bool {
    Path::new("/.dockerenv").exists() || Path::new("/run/.containerenv").exists()
}

/// Decides the sandbox: the user's choice, else Codex's own if it starts here. The probe runs
/// in `scratch` (an empty directory, as its CODEX_HOME): it never sees the login, so it can
/// neither refresh nor print it.
pub async fn decide(
    program: &Path,
    extra_args: &[String],
    workspace: &Path,
    scratch: &Path,
    environment: Vec<(OsString, OsString)>,
    run_as: Option<(u32, u32)>,
) -> Result<Sandbox, CodexError> {
    if let Some(arg) = chosen(extra_args) {
        let without = arg.contains("danger-full-access") || arg.contains("dangerously-bypass");
        let refused = match without {
            true => None,
            false => probe(program, workspace, scratch, environment, run_as).await?,
        };
        return Ok(Sandbox::Chosen(arg, refused));
    }
    Ok(
        match probe(program, workspace, scratch, environment, run_as).await? {
            None => Sandbox::Codex,
            Some(refused) if in_container() => Sandbox::FullAccess(refused),
            Some(refused) => Sandbox::Unavailable(refused),
        },
    )
}

/// Runs `true` in Codex's own sandbox (`codex sandbox -- true`), as Codex would run a
/// command; `None` when it started, else what it said. Its output goes to files: a process it
/// left behind cannot hold up the task.
async fn probe(
    program: &Path,
    workspace: &Path,
    scratch: &Path,
    environment: Vec<(OsString, OsString)>,
    run_as: Option<(u32, u32)>,
) -> Result<Option<String>, CodexError> {
    let home = scratch.join("sandbox-probe");
    std::fs::create_dir_all(&home)?;
    let said_path = scratch.join("sandbox-probe.err");
    let said_file = std::fs::File::create(&said_path)?;
    let mut command = codex_command(program, workspace, &home, environment);
    command
        .args(["sandbox", "--", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(said_file);
    let mut child = spawn(command, &home, run_as)?;
    let status = match tokio::time::timeout(PROBE_TIMEOUT, child.wait()).await {
        Ok(status) => status?,
        Err(_) => {
            let _ = child.start_kill();
            return Ok(Some(format!(
                "`codex sandbox -- true` did not finish within {} s",
                PROBE_TIMEOUT.as_secs()
            )));
        }
    };
    if status.success() {
        return Ok(None);
    }
    let said = std::fs::read(&said_path).unwrap_or_default();
    let said = String::from_utf8_lossy(&said);
    // bubblewrap's own line says why; Codex's warnings around it do not.
    let line = said
        .lines()
        .find(|l| l.starts_with("bwrap:"))
        .or_else(|| said.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("no message");
    Ok(Some(format!(
        "`codex sandbox -- true` exited with {}: {}",
        status.code().unwrap_or(-1),
        line.trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        shlex::split(line).unwrap_or_default()
    }

    #[test]
    fn a_sandbox_in_codex_args_is_the_users_choice() {
        for (line, chosen_arg) in [
            ("--sandbox read-only", Some("--sandbox read-only")),
            ("-m gpt-5 -s workspace-write", Some("-s workspace-write")),
            ("--sandbox=read-only", Some("--sandbox=read-only")),
            ("-sread-only", Some("-sread-only")),
            (
                "-c sandbox_mode=\"read-only\"",
                Some("-c sandbox_mode=read-only"),
            ),
            (
                "--config=sandbox_mode=read-only",
                Some("--config=sandbox_mode=read-only"),
            ),
            (
                "--dangerously-bypass-approvals-and-sandbox",
                Some("--dangerously-bypass-approvals-and-sandbox"),
            ),
            ("-p ci", Some("-p ci")),
            ("-m gpt-5 -c model_reasoning_effort=high", None),
            ("--skip-git-repo-check -- --sandbox", None),
            ("", None),
        ] {
            assert_eq!(chosen(&args(line)).as_deref(), chosen_arg, "{line}");
        }
    }

    #[test]
    fn the_sandbox_modes_that_need_namespaces_are_found_however_they_are_set() {
        for (line, found) in [
            ("--sandbox read-only", Some("--sandbox read-only")),
            ("-m gpt-5 -s workspace-write", Some("-s workspace-write")),
            (
                "--sandbox=workspace-write",
                Some("--sandbox=workspace-write"),
            ),
            ("-sread-only", Some("-sread-only")),
            (
                "-c 'sandbox_mode=\"read-only\"'",
                Some("-c sandbox_mode=\"read-only\""),
            ),
            (
                "--config=sandbox_mode=workspace-write",
                Some("--config=sandbox_mode=workspace-write"),
            ),
            // Another setting first does not hide it.
            (
                "-c model=x -c sandbox_mode='read-only'",
                Some("-c sandbox_mode=read-only"),
            ),
            ("--sandbox danger-full-access", None),
            ("-c sandbox_mode=danger-full-access", None),
            ("--dangerously-bypass-approvals-and-sandbox", None),
            ("-p ci", None),
            ("-c model_reasoning_effort=high", None),
            ("-- --sandbox read-only", None),
        ] {
            assert_eq!(needing_namespaces(&args(line)).as_deref(), found, "{line}");
        }
    }

    #[test]
    fn only_a_sandbox_that_cannot_start_in_a_container_is_turned_off() {
        assert_eq!(
            Sandbox::FullAccess("x".into()).override_config(),
            Some(FULL_ACCESS)
        );
        for kept in [
            Sandbox::Codex,
            Sandbox::Chosen("--sandbox read-only".into(), None),
            Sandbox::Unavailable("x".into()),
        ] {
            assert_eq!(kept.override_config(), None);
        }
    }
}
