//! A job that runs the action's two stages as the runner does: every declared input as
//! `INPUT_<NAME>` (empty when not given), fresh `GITHUB_OUTPUT`/`GITHUB_STATE`/
//! `GITHUB_STEP_SUMMARY` files per step, state saved by main passed to post as `STATE_<name>`,
//! `HOME` as the container's `/github/home`, and nothing else from the test's environment.
//!
//! `codex` on PATH is a wrapper that records its arguments and environment, then runs the
//! real Codex CLI.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::github::GitHub;
use super::openai::OpenAi;

/// The inputs `action.yml` declares: the runner passes each one, empty when not given.
pub const DECLARED_INPUTS: &[&str] = &[
    "auth-json",
    "token",
    "app-id",
    "app-private-key",
    "codex-access-token",
    "secret-name",
    "access-secret-name",
    "environment",
    "organization",
    "mode",
    "prompt",
    "prompt-file",
    "model",
    "effort",
    "output-file",
    "output-schema",
    "output-schema-file",
    "working-directory",
    "codex-args",
    "codex-version",
    "keep",
    "allow-public-repository",
    "api-timeout",
    "job-timeout-minutes",
    "expected-account",
    "login-timeout",
    "store",
    "artifact-key",
    "artifact-name",
    "retention-days",
    "github-token",
];

/// The workflow's `GITHUB_TOKEN`, as `${{ github.token }}` evaluates in action.yml defaults.
pub const GITHUB_TOKEN: &str = "ghs_workflowtoken0000000000000000000000";

/// The write token the tests use.
pub const WRITE_TOKEN: &str = "github_pat_11TESTWRITE0000000000_abcdefghijklmnopqrstuvwxyz";

/// The real Codex binary (installed by `scripts/test`).
pub fn real_codex() -> PathBuf {
    let path = std::env::var_os("CODEX_AUTH_TEST_CODEX")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(
                ".tools/codex/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex",
            )
        });
    assert!(
        path.is_file(),
        "the real Codex CLI is not at {}: run the tests with scripts/test, which installs the pinned @openai/codex",
        path.display()
    );
    path
}

/// The end-to-end tests must not reach any network but loopback: Codex itself tries hosts on
/// the internet. `scripts/test` runs them in a loopback-only network namespace.
pub fn assert_loopback_only() {
    // /proc/self/net/dev follows the network namespace (sysfs may not).
    let interfaces: Vec<String> = fs::read_to_string("/proc/self/net/dev")
        .unwrap_or_default()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|name| name.trim().to_owned())
        .collect();
    assert!(
        interfaces == ["lo"],
        "the end-to-end tests run the real Codex CLI, which reaches for hosts on the internet; \
         run them with scripts/test, which isolates them in a loopback-only network namespace \
         (interfaces here: {interfaces:?})"
    );
}

/// What one stage left behind.
#[derive(Debug, Clone)]
pub struct StageRun {
    /// Exit code.
    pub code: i32,
    /// Standard output (the log, with workflow commands).
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// `GITHUB_OUTPUT`, raw.
    pub output_file: String,
    /// `GITHUB_STATE`, raw.
    pub state_file: String,
    /// `GITHUB_STEP_SUMMARY`.
    pub summary: String,
    /// `GITHUB_ENV`, raw.
    pub env_file: String,
    /// `GITHUB_PATH`, raw.
    pub path_file: String,
    /// Parsed outputs.
    pub outputs: BTreeMap<String, String>,
    /// Parsed state.
    pub state: BTreeMap<String, String>,
}

impl StageRun {
    /// Everything the stage wrote that reaches a log or a file, minus the `::add-mask::`
    /// commands (the runner consumes those; they never reach the log).
    pub fn visible(&self) -> String {
        let log: String = format!("{}\n{}", self.stdout, self.stderr)
            .lines()
            .filter(|l| !l.starts_with("::add-mask::"))
            .map(|l| format!("{l}\n"))
            .collect();
        format!(
            "{log}{}{}{}",
            self.output_file, self.state_file, self.summary
        )
    }

    /// The masked values, in order.
    pub fn masks(&self) -> Vec<String> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("::add-mask::"))
            .map(str::to_owned)
            .collect()
    }

    /// Fails, showing the stage's output, unless it exited 0.
    pub fn assert_ok(&self) {
        assert_eq!(self.code, 0, "{}\n{}", self.stdout, self.stderr);
    }

    /// An output, or "" when not set.
    pub fn output(&self, name: &str) -> &str {
        self.outputs.get(name).map_or("", String::as_str)
    }
}

/// One Codex invocation, as the wrapper recorded it.
#[derive(Debug, Clone)]
pub struct CodexCall {
    /// Its process id (the wrapper execs the real Codex in the same process).
    pub pid: u32,
    /// The user Codex ran as.
    pub uid: Option<String>,
    /// What Codex could read of the action's environment through /proc (empty when denied).
    pub parent_environ: Option<String>,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment.
    pub env: BTreeMap<String, String>,
}

/// A job on an (ephemeral or persistent) runner.
pub struct Job {
    dir: TempDir,
    /// `/github/home`.
    pub home: PathBuf,
    /// `/github/workspace`.
    pub workspace: PathBuf,
    runner_temp: PathBuf,
    bin: PathBuf,
    calls: PathBuf,
    env: BTreeMap<String, String>,
    inputs: BTreeMap<String, String>,
    steps: u32,
    /// The runner's user, when the job's files are theirs ([`Job::owned_by`]).
    owner: Option<u32>,
    container: Option<String>,
    /// Options added to `podman run` ([`Job::container_option`]).
    container_options: Vec<String>,
    /// The name of the last container started ([`Job::container_name`]).
    container_name: Option<String>,
    seccomp: Seccomp,
    host_face: Option<PathBuf>,
}

/// The seccomp profile a container runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seccomp {
    /// Docker's default (`tests/container/seccomp-docker-default.json`), as on GitHub's runner.
    Docker,
    /// podman's own default, which allows the user namespaces Docker's refuses.
    Podman,
}

impl Job {
    /// A job whose Codex talks to `openai` and whose action writes to `github`, for
    /// repository `octo/repo`.
    pub fn new(github: &GitHub, openai: &OpenAi) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        // The runner's layout: <work>/_temp is RUNNER_TEMP, holding the container action's
        // home, workflow and file-command directories; <work>/repo/repo is the workspace.
        let [home, workspace, runner_temp, bin, calls, workflow] = [
            "_temp/_github_home",
            "repo/repo",
            "_temp",
            "bin",
            "calls",
            "_temp/_github_workflow",
        ]
        .map(|d| {
            let path = root.join(d);
            fs::create_dir_all(&path).unwrap();
            path
        });
        // The tests run as root, and the action never runs Codex as root: on a workspace root
        // owns, Codex runs as nobody, who must reach the job's directories (as on a runner,
        // where they are the runner's user's and readable) and write the wrapper's records.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&calls, fs::Permissions::from_mode(0o777)).unwrap();
        // A push to a private repository, unless a test says otherwise.
        let event = workflow.join("event.json");
        fs::write(
            &event,
            r#"{"ref":"refs/heads/main","repository":{"full_name":"octo/repo","private":true,"visibility":"private","default_branch":"main"}}"#,
        )
        .unwrap();
        let ca = runner_temp.join("ca.pem");
        fs::write(&ca, openai.ca_pem()).unwrap();
        let wrapper = bin.join("codex");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nlog=\"{calls}/$$\"\nprintf '%s\\n' \"$@\" > \"$log.args\"\nenv -0 > \"$log.env\"\nid -u > \"$log.uid\"\ncat /proc/$PPID/environ > \"$log.parent\" 2>/dev/null\nexec \"{real}\" \"$@\"\n",
                calls = calls.display(),
                real = real_codex().display()
            ),
        )
        .unwrap();
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
        // Codex reads its endpoints from config.toml in CODEX_HOME; the action must keep it.
        let codex_home = home.join(".codex");
        fs::create_dir_all(&codex_home).unwrap();
        fs::write(codex_home.join("config.toml"), openai.codex_config()).unwrap();

        let env: BTreeMap<String, String> = [
            (
                "PATH",
                format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
            ),
            ("HOME", home.display().to_string()),
            ("GITHUB_ACTIONS", "true".into()),
            ("CI", "true".into()),
            ("GITHUB_REPOSITORY", "octo/repo".into()),
            // The id the local GitHub gives every repository.
            ("GITHUB_REPOSITORY_ID", "1".into()),
            ("GITHUB_API_URL", github.url()),
            ("GITHUB_WORKSPACE", workspace.display().to_string()),
            ("RUNNER_WORKSPACE", root.join("repo").display().to_string()),
            ("RUNNER_TEMP", runner_temp.display().to_string()),
            (
                "ACTIONS_RUNTIME_TOKEN",
                "actions-runtime-token-value".into(),
            ),
            ("OPENAI_API_KEY", "sk-should-never-reach-codex".into()),
            ("CODEX_REFRESH_TOKEN_URL_OVERRIDE", openai.token_url()),
            ("CODEX_CA_CERTIFICATE", ca.display().to_string()),
            ("GITHUB_EVENT_NAME", "push".into()),
            ("GITHUB_EVENT_PATH", event.display().to_string()),
            ("GITHUB_RUN_ID", "4242".into()),
            ("GITHUB_RUN_ATTEMPT", "1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Self {
            dir,
            home,
            workspace,
            runner_temp,
            bin,
            calls,
            env,
            inputs: BTreeMap::new(),
            steps: 0,
            owner: None,
            container: None,
            container_options: Vec::new(),
            container_name: None,
            seccomp: Seccomp::Docker,
            host_face: None,
        }
    }

    /// Sets an input.
    pub fn input(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        assert!(
            DECLARED_INPUTS.contains(&name),
            "{name} is not declared in action.yml"
        );
        self.inputs.insert(name.to_owned(), value.into());
        self
    }

    /// Sets an environment variable of the step.
    pub fn env(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.env.insert(name.to_owned(), value.into());
        self
    }

    /// Replaces the `codex` on PATH with a script that records the call like the default
    /// wrapper, then runs `body` (in which `$REAL` is the real Codex binary).
    pub fn wrap_codex(&mut self, body: &str) -> &mut Self {
        let wrapper = self.bin.join("codex");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nlog=\"{calls}/$$\"\nprintf '%s\\n' \"$@\" > \"$log.args\"\nenv -0 > \"$log.env\"\nREAL=\"{real}\"\n{body}\n",
                calls = self.calls.display(),
                real = real_codex().display()
            ),
        )
        .unwrap();
        self
    }

    /// Takes the `codex` wrapper off PATH: the job has no Codex of its own (a runner without
    /// one, or the host face), so a `codex-version` is fetched.
    pub fn without_codex_on_path(&mut self) -> &mut Self {
        fs::remove_file(self.bin.join("codex")).unwrap();
        self
    }

    /// Makes the workspace and home belong to `uid` (as on a runner, where they belong to the
    /// runner's user while the container action runs as root), and the job's directories
    /// reachable by that user.
    pub fn owned_by(&mut self, uid: u32) -> &mut Self {
        fs::set_permissions(self.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&self.calls, fs::Permissions::from_mode(0o777)).unwrap();
        for dir in [&self.workspace, &self.home] {
            std::os::unix::fs::chown(dir, Some(uid), Some(uid)).unwrap();
        }
        self.owner = Some(uid);
        self
    }

    /// Runs the stages in `image` exactly as the runner runs a container action, instead of
    /// running the binary on the host: as root, with Docker's default capabilities and
    /// seccomp profile.
    pub fn in_container(&mut self, image: &str) -> &mut Self {
        self.container = Some(image.to_owned());
        self
    }

    /// Runs the stages as the runner runs the host face, a node24 action in `action` (its
    /// `main.js` and `post.js`), on the host; `RUNNER_TOOL_CACHE` is the job's.
    pub fn host_face(&mut self, action: &Path) -> &mut Self {
        self.host_face = Some(action.to_owned());
        let cache = self.dir.path().join("tool-cache");
        fs::create_dir_all(&cache).unwrap();
        self.env("RUNNER_TOOL_CACHE", cache.display().to_string())
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
    }

    /// Adds an option to `podman run` that the runner does not pass but the machine may set
    /// for every container (a daemon's default ulimits: `--ulimit nofile=256:256`), or that a
    /// workflow's step `env:` does (`-e PATH=…`).
    pub fn container_option(&mut self, option: &str) -> &mut Self {
        self.container_options.push(option.to_owned());
        self
    }

    /// The name of the container last started (`podman wait`, `podman inspect`).
    pub fn container_name(&self) -> Option<&str> {
        self.container_name.as_deref()
    }

    /// Runs the container under another seccomp profile than Docker's default.
    pub fn seccomp(&mut self, profile: Seccomp) -> &mut Self {
        self.seccomp = profile;
        self
    }

    /// A later step of the job, on the host as the runner's user `uid`: the real Codex with
    /// the CODEX_HOME the action exported (`codex exec`, as the user's own step would run it).
    pub fn host_step_codex(&self, env_file: &str, uid: u32) -> std::process::Output {
        let exported = parse_file_command(env_file);
        let codex_home = exported.get("CODEX_HOME").expect("CODEX_HOME exported");
        let mut command = Command::new(real_codex());
        command
            .args([
                "exec",
                "--skip-git-repo-check",
                "Reply with the single word OK.",
            ])
            .env_clear()
            .envs(self.env.iter().filter(|(k, _)| {
                [
                    "PATH",
                    "HOME",
                    "CODEX_REFRESH_TOKEN_URL_OVERRIDE",
                    "CODEX_CA_CERTIFICATE",
                ]
                .contains(&k.as_str())
            }))
            .env("CODEX_HOME", codex_home)
            .current_dir(&self.workspace)
            .stdin(std::process::Stdio::null())
            .uid(uid)
            .gid(uid);
        command.output().unwrap()
    }

    /// Replaces the event that started the run.
    pub fn event(&mut self, name: &str, payload: &serde_json::Value) -> &mut Self {
        let path = self.dir.path().join("_temp/_github_workflow/event.json");
        fs::write(&path, payload.to_string()).unwrap();
        self.env("GITHUB_EVENT_NAME", name)
    }

    /// The auth.json in the job's Codex home, parsed.
    pub fn auth_on_disk(&self) -> serde_json::Value {
        let text = fs::read_to_string(self.codex_home().join("auth.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// `RUNNER_TEMP`.
    pub fn runner_temp(&self) -> &Path {
        &self.runner_temp
    }

    /// The Codex home of the job: `CODEX_HOME` when the job sets it
    /// ([`Job::persistent_codex_home`]), else `$HOME/.codex`.
    pub fn codex_home(&self) -> PathBuf {
        match self.env.get("CODEX_HOME") {
            Some(dir) => PathBuf::from(dir),
            None => self.home.join(".codex"),
        }
    }

    /// Sets `CODEX_HOME` to `dir`, a directory of the runner's own outside this job's
    /// directories (on a persistent runner, one that outlives the job), holding Codex's
    /// config.toml as the job's own home does.
    pub fn persistent_codex_home(&mut self, dir: &Path) -> &mut Self {
        fs::create_dir_all(dir).unwrap();
        fs::copy(
            self.home.join(".codex/config.toml"),
            dir.join("config.toml"),
        )
        .unwrap();
        self.env("CODEX_HOME", dir.display().to_string())
    }

    /// Empties `RUNNER_TEMP`, as the runner does at the start and end of every job
    /// (actions/runner, TempDirectoryManager): the container action's home goes with it.
    pub fn empty_runner_temp(&self) {
        for entry in fs::read_dir(&self.runner_temp).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                fs::remove_dir_all(&path).unwrap();
            } else {
                fs::remove_file(&path).unwrap();
            }
        }
    }

    /// Runs the main stage.
    pub fn main(&mut self) -> StageRun {
        self.stage("main", &BTreeMap::new())
    }

    /// Runs the post stage with the state main saved. Its outputs are dropped, as the runner
    /// drops outputs set by post steps (they have no step context to attach them to).
    pub fn post(&mut self, main: &StageRun) -> StageRun {
        // Variables main exported through GITHUB_ENV reach later steps, this one included
        // (inside the container, translated to container paths like the rest).
        for (name, value) in parse_file_command(&main.env_file) {
            self.env.insert(name, value);
        }
        let mut run = self.stage("post", &main.state);
        run.outputs.clear();
        run
    }

    /// The command that runs `stage` with `state` as the runner would start it, for callers
    /// that time or measure the process themselves (the benchmark).
    pub fn stage_command(&mut self, stage: &str, state: &BTreeMap<String, String>) -> Command {
        self.command(stage, state).0
    }

    /// Starts the main stage without waiting (for signal tests); output is discarded.
    pub fn spawn_main(&mut self) -> std::process::Child {
        let (mut command, _) = self.command("main", &BTreeMap::new());
        command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Starts the main stage without waiting, keeping what it writes, for a test that acts
    /// while it runs (a signal at a chosen moment); [`Spawned::finish`] waits and reads it.
    pub fn spawn_main_recording(&mut self) -> Spawned {
        let (mut command, files) = self.command("main", &BTreeMap::new());
        let log = self.dir.path().join(format!("spawned-{}", self.steps));
        let stdout = fs::File::create(log.with_extension("out")).unwrap();
        let stderr = fs::File::create(log.with_extension("err")).unwrap();
        let child = command.stdout(stdout).stderr(stderr).spawn().unwrap();
        Spawned { child, files, log }
    }

    fn command(
        &mut self,
        stage: &str,
        state: &BTreeMap<String, String>,
    ) -> (Command, [PathBuf; 5]) {
        self.steps += 1;
        let files = self
            .dir
            .path()
            .join(format!("_temp/_runner_file_commands/{}", self.steps));
        fs::create_dir_all(&files).unwrap();
        let [output, state_file, summary, env_file, path_file] =
            ["output", "state", "summary", "env", "path"].map(|f| files.join(f));
        for f in [&output, &state_file, &summary, &env_file, &path_file] {
            fs::write(f, "").unwrap();
        }
        // The runner creates the step's command files, and their directory, as its own user
        // (mode 0644): a process of that user in the container can write to them.
        if let Some(uid) = self.owner {
            for path in [
                &files,
                &output,
                &state_file,
                &summary,
                &env_file,
                &path_file,
            ] {
                std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
            }
        }
        let mut vars: BTreeMap<String, String> = self.env.clone();
        vars.insert("GITHUB_OUTPUT".into(), output.display().to_string());
        vars.insert("GITHUB_STATE".into(), state_file.display().to_string());
        vars.insert("GITHUB_STEP_SUMMARY".into(), summary.display().to_string());
        vars.insert("GITHUB_ENV".into(), env_file.display().to_string());
        vars.insert("GITHUB_PATH".into(), path_file.display().to_string());
        let defaults = action_defaults();
        for name in DECLARED_INPUTS {
            // Inputs not given take action.yml's default, or the empty string.
            let value = self
                .inputs
                .get(*name)
                .or_else(|| defaults.get(*name))
                .map_or("", String::as_str);
            vars.insert(
                format!("INPUT_{}", name.to_ascii_uppercase()),
                value.to_owned(),
            );
        }
        for (name, value) in state {
            vars.insert(format!("STATE_{name}"), value.clone());
        }
        let command = match (self.container.clone(), &self.host_face) {
            (None, Some(action)) => {
                // A node24 action: the runner runs `node <action>/<main|post>.js`.
                let mut command = Command::new("node");
                command
                    .arg(action.join(format!("{stage}.js")))
                    .env_clear()
                    .envs(&vars)
                    .current_dir(&self.workspace);
                command
            }
            (None, None) => {
                let mut command = Command::new(codex_auth());
                command
                    .args(["action", stage])
                    .env_clear()
                    .envs(&vars)
                    .current_dir(&self.workspace);
                command
            }
            (Some(image), _) => self.container_command(&image, stage, vars, &files),
        };
        (command, [output, state_file, summary, env_file, path_file])
    }

    /// `docker run` as the runner's ContainerActionHandler builds it (actions/runner,
    /// src/Runner.Worker/Handlers/ContainerActionHandler.cs and Container/DockerCommandManager.cs):
    /// `--rm`, the workspace as workdir, every variable passed by name, the runner's mounts,
    /// the stage's entrypoint from action.yml, no args. Host paths become container paths.
    fn container_command(
        &mut self,
        image: &str,
        stage: &str,
        mut vars: BTreeMap<String, String>,
        files: &Path,
    ) -> Command {
        let root = self.dir.path();
        let mounts = [
            (self.home.clone(), "/github/home"),
            (self.workspace.clone(), "/github/workspace"),
            (files.to_owned(), "/github/file_commands"),
            (root.join("_temp/_github_workflow"), "/github/workflow"),
            (self.runner_temp.clone(), "/github/runner_temp"),
        ];
        let to_container = |value: &str| {
            mounts.iter().fold(value.to_owned(), |v, (host, inside)| {
                v.replace(&host.display().to_string(), inside)
            })
        };
        // The runner sets HOME to the mounted home and passes no PATH (the image's applies).
        vars.remove("PATH");
        vars.insert("HOME".into(), "/github/home".into());
        for value in vars.values_mut() {
            *value = to_container(value);
        }
        let entrypoint = action_entrypoint(stage);
        // The runner names each container (`<image>_<6 hex>`); here the name is unique to
        // this test process and step.
        let name = format!(
            "codex-auth-test-{}-{}-{}",
            std::process::id(),
            root.file_name().unwrap_or_default().to_string_lossy(),
            self.steps
        )
        .to_ascii_lowercase()
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-");
        let mut command = Command::new("podman");
        command.args([
            "run",
            "--rm",
            "--pull=never",
            "--name",
            &name,
            "--workdir",
            "/github/workspace",
            "--network",
            "host",
        ]);
        command.args(&self.container_options);
        if self.seccomp == Seccomp::Docker {
            let profile = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/container/seccomp-docker-default.json");
            command.args(["--security-opt", &format!("seccomp={}", profile.display())]);
        }
        for name in vars.keys() {
            command.args(["-e", name]);
        }
        for (host, inside) in &mounts {
            command.args(["-v", &format!("{}:{inside}", host.display())]);
        }
        command
            .args(["--entrypoint", &entrypoint, image])
            .env_clear()
            .envs(std::env::vars().filter(|(k, _)| k.starts_with("CONTAINERS_") || k == "PATH"))
            .envs(&vars);
        self.container_name = Some(name);
        command
    }

    fn stage(&mut self, stage: &str, state: &BTreeMap<String, String>) -> StageRun {
        let (command, files) = self.command(stage, state);
        let out = run_bounded(command, Duration::from_secs(300));
        stage_run(out, &files)
    }

    /// The Codex invocations that ran a task or a refresh: all but the sandbox probe
    /// (`codex sandbox -- true`).
    pub fn task_calls(&self) -> Vec<CodexCall> {
        self.codex_calls()
            .into_iter()
            .filter(|c| c.args.first().is_none_or(|a| a != "sandbox"))
            .collect()
    }

    /// A file the `codex` wrapper of the call `pid` wrote beside its records (`"$log.EXT"`).
    pub fn call_file(&self, pid: u32, ext: &str) -> PathBuf {
        self.calls.join(format!("{pid}.{ext}"))
    }

    /// The Codex invocations so far.
    pub fn codex_calls(&self) -> Vec<CodexCall> {
        let mut calls = Vec::new();
        for entry in fs::read_dir(&self.calls).unwrap().filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "args") {
                let args = fs::read_to_string(&path).unwrap();
                let extra = |ext: &str| fs::read_to_string(path.with_extension(ext)).ok();
                let env = fs::read(path.with_extension("env")).unwrap_or_default();
                calls.push(CodexCall {
                    pid: path
                        .file_stem()
                        .and_then(|s| s.to_str())
                        .and_then(|s| s.parse().ok())
                        .unwrap_or_default(),
                    uid: extra("uid").map(|u| u.trim().to_owned()),
                    parent_environ: extra("parent"),
                    args: args.lines().map(str::to_owned).collect(),
                    env: String::from_utf8_lossy(&env)
                        .split('\0')
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                });
            }
        }
        calls
    }
}

/// A stage started by [`Job::spawn_main_recording`].
pub struct Spawned {
    /// The process.
    pub child: std::process::Child,
    files: [PathBuf; 5],
    log: PathBuf,
}

impl Spawned {
    /// What the stage printed so far.
    pub fn stdout_so_far(&self) -> String {
        fs::read_to_string(self.log.with_extension("out")).unwrap_or_default()
    }

    /// The step's command files: output, state, summary, env, path.
    pub fn files(&self) -> &[PathBuf; 5] {
        &self.files
    }

    /// The step summary so far.
    pub fn summary_so_far(&self) -> String {
        fs::read_to_string(&self.files[2]).unwrap_or_default()
    }

    /// Waits for the stage and reads what it left, as [`Job::main`] does.
    pub fn finish(mut self) -> StageRun {
        let status = self.child.wait().unwrap();
        let out = std::process::Output {
            status,
            stdout: fs::read(self.log.with_extension("out")).unwrap_or_default(),
            stderr: fs::read(self.log.with_extension("err")).unwrap_or_default(),
        };
        stage_run(out, &self.files)
    }
}

/// What a finished stage left: its output and the runner's files.
fn stage_run(out: std::process::Output, files: &[PathBuf; 5]) -> StageRun {
    let [output, state_file, summary, env_file, path_file] = files;
    let read = |p: &Path| fs::read_to_string(p).unwrap_or_default();
    let output_file = read(output);
    let state_text = read(state_file);
    StageRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        outputs: parse_file_command(&output_file),
        state: parse_file_command(&state_text),
        output_file,
        state_file: state_text,
        summary: read(summary),
        env_file: read(env_file),
        path_file: read(path_file),
    }
}

fn action_yml() -> yaml_rust2::Yaml {
    let text =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml")).unwrap();
    yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap()
        .remove(0)
}

/// The inputs' defaults in action.yml.
fn action_defaults() -> BTreeMap<String, String> {
    let action = action_yml();
    action["inputs"]
        .as_hash()
        .unwrap()
        .iter()
        .filter_map(|(name, spec)| {
            // The runner evaluates expressions in defaults; this is the only one action.yml uses.
            let default = spec["default"]
                .as_str()?
                .replace("${{ github.token }}", GITHUB_TOKEN);
            Some((name.as_str()?.to_owned(), default))
        })
        .collect()
}

/// The entrypoint action.yml gives a stage.
fn action_entrypoint(stage: &str) -> String {
    let key = if stage == "post" {
        "post-entrypoint"
    } else {
        "entrypoint"
    };
    action_yml()["runs"][key].as_str().unwrap().to_owned()
}

/// Runs a command to completion, killing it if it outlives `limit`.
fn run_bounded(mut command: Command, limit: Duration) -> std::process::Output {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    let (done, waiting) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if waiting.recv_timeout(limit).is_err() {
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
        }
    });
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buffer = Vec::new();
            let _ = r.read_to_end(&mut buffer);
            buffer
        })
    };
    let (out, err) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let status = child.wait().unwrap();
    let _ = done.send(());
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Parses a `GITHUB_OUTPUT`/`GITHUB_STATE` file as the runner does (`name=value` and
/// `name<<DELIMITER` blocks).
pub fn parse_file_command(text: &str) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for line in lines.by_ref() {
                if line == delimiter {
                    break;
                }
                value.push(line);
            }
            values.insert(name.to_owned(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            values.insert(name.to_owned(), value.to_owned());
        }
    }
    values
}

/// The codex-auth a job runs: the one cargo built with these tests, or, for `bench/run`, the
/// binary named by `CODEX_AUTH_BENCH_BINARY` (the static release build the image ships).
pub fn codex_auth() -> std::path::PathBuf {
    std::env::var_os("CODEX_AUTH_BENCH_BINARY")
        .map_or_else(|| env!("CARGO_BIN_EXE_codex-auth").into(), Into::into)
}
