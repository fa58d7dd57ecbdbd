//! Running Codex with the restored login, and nothing that can write secrets: the only place
//! that starts Codex. One module per mode: [`exec`] (`codex exec`), [`refresh`] (a keep-fresh
//! refresh through `codex app-server`), and [`hand_over`] for the restore mode, where the
//! job's later steps run Codex themselves.
//!
//! Codex runs shell commands the model asks for, so its environment is the action's minus
//! every input, the write token, and the variables that would switch Codex to another login
//! (`OPENAI_API_KEY`, `CODEX_API_KEY`, `CODEX_ACCESS_TOKEN`; see `codex-rs/login`); when the
//! action runs as root Codex never does (the workspace's owner, else nobody); and once Codex
//! exits, whatever it left running is ended ([`end_leftovers`]).
//!
//! It must not know where the login is stored, nor write it anywhere but CODEX_HOME.

pub mod events;
mod exec;
pub mod install;
mod login;
mod output;
mod refresh;
pub mod sandbox;
pub mod schedule;

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;

pub use events::Commands;
pub use exec::{Exec, Request, MAX_PROMPT_BYTES};
pub use login::Login;
pub use refresh::Refresh;
pub use sandbox::Sandbox;

use crate::redacted::Redacted;
use crate::workflow::Workflow;

/// Where Codex reads a Codex access token (`at-…`): the main stage sets it, from input
/// `codex-access-token`, for Codex's process alone; the action's own is never passed on.
pub const ACCESS_TOKEN_VARIABLE: &str = "CODEX_ACCESS_TOKEN";

/// The variable Codex reads a CA bundle from (before `SSL_CERT_FILE`).
pub const CA_VARIABLE: &str = "CODEX_CA_CERTIFICATE";

/// Hands Codex the action's trust: where the runner's CA variables named certificates
/// (`SSL_CERT_FILE`, `SSL_CERT_DIR`, `NODE_EXTRA_CA_CERTS`; Codex itself reads only the first),
/// Codex gets every root the action trusts as one bundle in `CODEX_CA_CERTIFICATE`, a file of this process's in a directory of its own under
/// `temp_dir` that Codex's user can read and not change. Nothing when the workflow set
/// `CODEX_CA_CERTIFICATE` itself, or no CA variable is set. The directory lives as long as the
/// returned guard.
pub(crate) fn hand_trust(
    environment: &mut Vec<(OsString, OsString)>,
    trust: &crate::net::Trust,
    temp_dir: &Path,
) -> io::Result<Option<tempfile::TempDir>> {
    if environment.iter().any(|(name, _)| name == CA_VARIABLE) {
        return Ok(None);
    }
    let Some(bundle) = trust.bundle() else {
        return Ok(None);
    };
    let dir = tempfile::Builder::new()
        .prefix("codex-auth-ca-")
        .tempdir_in(temp_dir)?;
    let path = dir.path().join("ca-bundle.pem");
    std::fs::write(&path, bundle)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    }
    environment.push((CA_VARIABLE.into(), path.into()));
    Ok(Some(dir))
}

/// Removes CA bundles a killed stage left in `temp_dir` ([`hand_trust`]'s directories; the
/// runner, which empties RUNNER_TEMP, cannot remove what root made in the container). Only
/// directories by that name, never followed through a link.
pub fn remove_trust_bundles(temp_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(temp_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let ours = entry
            .file_name()
            .to_string_lossy()
            .starts_with("codex-auth-ca-")
            && entry.file_type().is_ok_and(|t| t.is_dir());
        if ours {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

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
    /// `codex exec`: the sandbox its commands ran in, and what they did.
    pub commands: Option<(Sandbox, Commands)>,
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

/// `program` (`codex` on PATH, or a fetched copy: [`install`]) with the given environment
/// (nothing else), CODEX_HOME, the workspace as working directory, and its output piped.
pub(crate) fn codex_command(
    program: &Path,
    workspace: &Path,
    codex_home: &Path,
    environment: Vec<(OsString, OsString)>,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
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
/// environment (the write token) from /proc; as another user it cannot. It leads a process
/// group of its own (a cancel kills the group), and this process is the subreaper of all it
/// starts, so that what it leaves behind can be ended ([`end_leftovers`]).
pub(crate) fn spawn(
    mut command: tokio::process::Command,
    codex_home: &Path,
    run_as: Option<(u32, u32)>,
) -> Result<tokio::process::Child, CodexError> {
    if let Some((uid, gid)) = run_as {
        give_to(codex_home, uid, gid)?;
        #[cfg(unix)]
        command.uid(uid).gid(gid);
    }
    #[cfg(unix)]
    command.process_group(0);
    become_subreaper();
    command.spawn().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => CodexError::NotFound,
        _ => CodexError::Io(e),
    })
}

/// How long Codex has after the runner's second cancelling signal before its whole process
/// group is killed. The runner sends SIGINT, SIGTERM 7.5 s later, kills the step 2.5 s after
/// that and reads the step's command files at once (actions/runner, `ProcessInvoker`,
/// `ActionRunner`): by then Codex and what it left must be ended and the files given back
/// ([`crate::workflow::command_files`]), or the runner reads none of them.
pub(crate) const CANCEL_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Stops Codex on a cancelled job's last signal: it has [`CANCEL_GRACE`] to exit, then its
/// process group is killed; either way every process it left is killed at once
/// ([`end_leftovers`]), since one that ignores signals or holds Codex's output open would
/// otherwise hold the stage past the runner's kill.
pub(crate) async fn stop_on_cancel(
    child: &mut tokio::process::Child,
) -> io::Result<std::process::ExitStatus> {
    let exited = tokio::time::timeout(CANCEL_GRACE, child.wait()).await;
    if exited.is_err() {
        crate::cancel::kill_group(child);
    }
    end_leftovers();
    match exited {
        Ok(status) => status,
        Err(_) => child.wait().await,
    }
}

/// How long [`end_leftovers`] waits for the processes it ended to be gone.
#[cfg(target_os = "linux")]
const LEFTOVERS_GONE: std::time::Duration = std::time::Duration::from_secs(5);

/// What [`end_leftovers`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leftovers {
    /// How many processes Codex started were still running, and were killed.
    pub ended: usize,
    /// How many were still running after the kill and the wait.
    pub survivors: usize,
}

/// Makes this process the subreaper of every process it starts (Linux's
/// `PR_SET_CHILD_SUBREAPER`): a process Codex starts that leaves its group and its parent
/// (`setsid`, a double fork) is re-parented to this process, never to PID 1 or an init, so
/// that [`end_leftovers`] finds it among this process's descendants.
fn become_subreaper() {
    #[cfg(target_os = "linux")]
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
}

/// Ends every process Codex started that is still running (a server, a background job a
/// command left), so that none can write to the command files, or anything else, after the
/// action put them back: every descendant of this process, however it left Codex's process
/// group (this process is their subreaper: [`spawn`]), is killed, again until none is left or
/// [`LEFTOVERS_GONE`] has passed. In a container action, where this process is PID 1, that is
/// every other process in the container. Blocking, so that the guard of a stage that unwinds
/// can call it too.
pub fn end_leftovers() -> Leftovers {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{kill_process, Pid, Signal};
        let me = std::process::id();
        let ended = descendants(me).len();
        let deadline = std::time::Instant::now() + LEFTOVERS_GONE;
        loop {
            let left = descendants(me);
            if left.is_empty() || std::time::Instant::now() >= deadline {
                return Leftovers {
                    ended,
                    survivors: left.len(),
                };
            }
            // A process that forks as it is killed is caught on the next round.
            for pid in left {
                if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
                    let _ = kill_process(pid, Signal::KILL);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        Leftovers {
            ended: 0,
            survivors: 0,
        }
    }
}

/// The processes that descend from `ancestor` and still run (zombies, which can do nothing,
/// aside), from `/proc/<pid>/stat` (`pid (comm) S ppid …`).
#[cfg(target_os = "linux")]
fn descendants(ancestor: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let processes: Vec<(u32, u32, bool)> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
            let state = fields.next()?.chars().next()?;
            let parent = fields.next()?.parse().ok()?;
            Some((pid, parent, state != 'Z' && state != 'X'))
        })
        .collect();
    let mut found = vec![ancestor];
    let mut next = 0;
    while let Some(&parent) = found.get(next) {
        let children: Vec<u32> = processes
            .iter()
            .filter(|(pid, ppid, _)| *ppid == parent && !found.contains(pid))
            .map(|(pid, _, _)| *pid)
            .collect();
        found.extend(children);
        next += 1;
    }
    processes
        .iter()
        .filter(|(pid, _, running)| *running && *pid != ancestor && found.contains(pid))
        .map(|(pid, _, _)| *pid)
        .collect()
}

/// The group Codex runs in when the action drops from root: `nogroup`. Not the workspace's
/// group: on GitHub's hosted runners the runner's user's primary group is `docker` (gid 121),
/// which owns `/var/run/docker.sock`, mounted into every container action; with it, a command
/// Codex runs could ask Docker for this container's environment (the write token) or start a
/// privileged container.
pub const CODEX_GID: u32 = 65534;

/// The user Codex runs as when this process is root: nobody's uid (65534) on a workspace that
/// root owns (a self-hosted runner running as root), so that Codex never runs as root.
pub const NOBODY: u32 = 65534;

/// When this process is root and the workspace belongs to someone else (the runner's user, in
/// a container action), that owner. Never on Windows.
#[cfg(unix)]
pub fn workspace_owner(workspace: &Path) -> Option<(u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let meta = std::fs::metadata(workspace).ok()?;
    let uid = std::os::unix::fs::MetadataExt::uid(&meta);
    (uid != 0).then_some((uid, CODEX_GID))
}

/// Never on Windows, which has no such drop.
#[cfg(not(unix))]
pub fn workspace_owner(_workspace: &Path) -> Option<(u32, u32)> {
    None
}

/// The user Codex runs as when this process is root: the workspace's owner (Codex edits the
/// checkout as host steps would), else nobody, in [`CODEX_GID`]. Codex never runs as root:
/// as root it could read this process's memory and environment, the write token, and the
/// Docker socket. `None` when this process is not root (Codex runs as this user).
#[cfg(unix)]
pub fn codex_user(workspace: &Path) -> Option<(u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    Some(workspace_owner(workspace).unwrap_or((NOBODY, CODEX_GID)))
}

/// Never on Windows, which has no such drop.
#[cfg(not(unix))]
pub fn codex_user(_workspace: &Path) -> Option<(u32, u32)> {
    None
}

/// Hands a directory and what it holds (one level, as CODEX_HOME is when restored) to a user.
/// As root, through the directory opened without following a link
/// ([`crate::untrusted::open_dir`]) and each
/// entry changed by name inside it, never followed: a CODEX_HOME that Codex turned into a link
/// to `/run` is refused, and a link inside is changed itself, not what it points at.
#[cfg(unix)]
pub fn give_to(dir: &Path, uid: u32, gid: u32) -> io::Result<()> {
    use rustix::fs::{chownat, fchown, AtFlags, Dir, Gid, Uid};
    let (uid, gid) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
    let fd = crate::untrusted::open_dir(dir)?;
    fchown(&fd, uid, gid)?;
    for entry in Dir::read_from(&fd)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() != b"." && name.to_bytes() != b".." {
            chownat(&fd, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)?;
        }
    }
    Ok(())
}

/// Nothing to hand over on Windows ([`unprivileged_owner`] is never set there).
#[cfg(not(unix))]
pub fn give_to(_dir: &Path, _uid: u32, _gid: u32) -> io::Result<()> {
    Ok(())
}

/// Restore mode: leaves the restored login to the job's later steps, which run Codex on the
/// host as the runner's user. CODEX_HOME is handed to the workspace's owner and its host path
/// exported as `CODEX_HOME` (GITHUB_ENV) and output `codex-home`.
pub fn hand_over(
    workflow: &Workflow,
    codex_home: &Path,
    workspace: &Path,
    runner_workspace: Option<&Path>,
    codex: Option<&install::Codex>,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    if let Some((uid, gid)) = workspace_owner(workspace) {
        give_to(codex_home, uid, gid).with_context(|| {
            format!("cannot hand {} to the runner's user", codex_home.display())
        })?;
    }
    let host = host_path(codex_home, runner_workspace);
    let host = host.display().to_string();
    workflow.set_env("CODEX_HOME", &host)?;
    workflow.set_output("codex-home", &host)?;
    workflow.info(&format!(
        "Restored the login for the job's later steps: CODEX_HOME={host}. The post stage writes \
         it back if they refresh it."
    ));
    if let Some(bin) = codex.and_then(install::Codex::bin_dir) {
        let host = host_path(bin, runner_workspace);
        workflow.add_path(&host.display().to_string())?;
        workflow.info(&format!(
            "That Codex is first on PATH for the job's later steps: {}.",
            host.display()
        ));
    }
    Ok(())
}

/// The host path of a path in the container action's home or temporary directory. The runner
/// mounts `<work>/_temp/_github_home` at `/github/home` and `<work>/_temp` at
/// `/github/runner_temp`, and passes `RUNNER_WORKSPACE` (`<work>/<repo>`) untranslated
/// (actions/runner, ContainerActionHandler.cs, JobExtension.cs; docs/facts.md). Outside a
/// container the path is already the host's.
pub fn host_path(path: &Path, runner_workspace: Option<&Path>) -> PathBuf {
    let Some(temp) = host_temp(runner_workspace) else {
        return path.to_owned();
    };
    if let Ok(rest) = path.strip_prefix("/github/home") {
        temp.join("_github_home").join(rest)
    } else if let Ok(rest) = path.strip_prefix("/github/runner_temp") {
        temp.join(rest)
    } else {
        path.to_owned()
    }
}

/// The path here of a host path in the runner's temporary directory (`<work>/_temp`), as a
/// step on the host wrote it (actions/checkout's credentials file, included from
/// `.git/config`): `temp_dir` (`RUNNER_TEMP`) is that directory as this process sees it,
/// `/github/runner_temp` in the container action, the same directory on the host. The
/// inverse of [`host_path`] for that directory; any other path is kept.
pub fn path_here(path: &Path, runner_workspace: Option<&Path>, temp_dir: &Path) -> PathBuf {
    match host_temp(runner_workspace).and_then(|temp| path.strip_prefix(temp).ok()) {
        Some(rest) => temp_dir.join(rest),
        None => path.to_owned(),
    }
}

/// The runner's temporary directory on the host, `<work>/_temp`, from `RUNNER_WORKSPACE`
/// (`<work>/<repo>`).
fn host_temp(runner_workspace: Option<&Path>) -> Option<PathBuf> {
    runner_workspace
        .and_then(Path::parent)
        .map(|work| work.join("_temp"))
}

/// The action's environment as Codex gets it: without inputs, without the write token, and
/// without anything that would switch Codex to another login.
pub fn environment(
    environment: &[(OsString, OsString)],
    write_token: Option<&Redacted>,
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
pub(crate) fn inside_git_repository(dir: &Path) -> bool {
    dir.ancestors().any(|d| d.join(".git").exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn codex_is_handed_the_actions_trust_as_a_bundle_it_can_read_and_not_change() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("company.pem");
        let der = &webpki_root_certs::TLS_SERVER_ROOT_CERTS[0];
        let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
        std::fs::write(
            &pem,
            format!("-----BEGIN CERTIFICATE-----\n{encoded}\n-----END CERTIFICATE-----\n"),
        )
        .unwrap();
        let variables = crate::net::CaVariables::read(&|name| {
            (name == "NODE_EXTRA_CA_CERTS").then(|| pem.display().to_string())
        });
        let (trust, problems) = variables.load();
        assert!(problems.is_empty());
        let mut environment: Vec<(OsString, OsString)> = vec![("PATH".into(), "/bin".into())];
        let guard = hand_trust(&mut environment, &trust, dir.path())
            .unwrap()
            .unwrap();
        let (_, path) = environment.iter().find(|(k, _)| k == CA_VARIABLE).unwrap();
        let bundle = std::fs::read_to_string(path).unwrap();
        assert_eq!(bundle, trust.bundle().unwrap());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(Path::new(path)), 0o644);
        assert_eq!(mode(guard.path()), 0o755);
        let path = PathBuf::from(path);
        drop(guard);
        assert!(!path.exists(), "removed after Codex");
        // What a killed stage left is swept by the post stage; nothing else is.
        let left = dir.path().join("codex-auth-ca-left");
        std::fs::create_dir(&left).unwrap();
        std::fs::write(left.join("ca-bundle.pem"), "x").unwrap();
        remove_trust_bundles(dir.path());
        assert!(!left.exists());
        assert!(pem.exists());
        // The workflow's own CODEX_CA_CERTIFICATE is left as it is; no CA variable, no bundle.
        let mut own: Vec<(OsString, OsString)> = vec![(CA_VARIABLE.into(), "/mine.pem".into())];
        assert!(hand_trust(&mut own, &trust, dir.path()).unwrap().is_none());
        assert_eq!(own.len(), 1);
        let mut none = Vec::new();
        let default = crate::net::Trust::default();
        assert!(hand_trust(&mut none, &default, dir.path())
            .unwrap()
            .is_none());
        assert!(none.is_empty());
    }

    #[test]
    fn a_path_in_the_runners_temp_is_found_where_this_process_sees_it() {
        let work = Path::new("/home/runner/work/repo");
        let host = Path::new("/home/runner/work/_temp/git-credentials-1.config");
        let container = Path::new("/github/runner_temp");
        assert_eq!(
            path_here(host, Some(work), container),
            container.join("git-credentials-1.config")
        );
        assert_eq!(
            host_path(&path_here(host, Some(work), container), Some(work)),
            host
        );
        // On the host, RUNNER_TEMP is that directory itself.
        let temp = Path::new("/home/runner/work/_temp");
        assert_eq!(path_here(host, Some(work), temp), host);
        // Other paths, or no RUNNER_WORKSPACE: as they are.
        let elsewhere = Path::new("/home/runner/.gitconfig");
        assert_eq!(path_here(elsewhere, Some(work), container), elsewhere);
        assert_eq!(path_here(host, None, container), host);
    }

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
        let kept: Vec<_> = environment(&env, Some(&Redacted::new("ghp_write")))
            .into_iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(kept, ["PATH", "GITHUB_REPOSITORY"]);
    }

    /// Handing CODEX_HOME over never follows a link: not CODEX_HOME itself (Codex turned it
    /// into a link to `/run`), and inside it a link is handed over itself, not what it points
    /// at.
    #[cfg(unix)]
    #[test]
    fn handing_over_changes_a_link_not_its_target() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::MetadataExt as _;
        assert!(
            rustix::process::geteuid().is_root(),
            "handing over needs root, as the container action is: run the tests as root"
        );
        let root = tempfile::tempdir()?;
        let outside = root.path().join("outside");
        std::fs::write(&outside, "")?;
        let home = root.path().join(".codex");
        std::fs::create_dir(&home)?;
        std::fs::write(home.join("auth.json"), "{}")?;
        std::os::unix::fs::symlink(&outside, home.join("sessions"))?;
        give_to(&home, 1001, 65534)?;
        for path in [home.clone(), home.join("auth.json"), home.join("sessions")] {
            let meta = std::fs::symlink_metadata(&path)?;
            assert_eq!(
                (meta.uid(), meta.gid()),
                (1001, 65534),
                "{}",
                path.display()
            );
        }
        assert_eq!(std::fs::metadata(&outside)?.uid(), 0);
        Ok(())
    }
}
