//! Every example is run: each workflow in `docs/examples/`, and each fenced `yaml` block of
//! README.md and `docs/**/*.md` that holds a codex-auth step (`uses: <owner>/codex-auth@…` or
//! `<owner>/codex-auth/host@…`), is parsed, its `with:` keys checked against action.yml (or
//! host/action.yml), its expressions resolved, and each codex-auth step run through its main
//! and post stages with the real Codex, against the local GitHub and OpenAI, with the secrets
//! and variables the page tells the user to create and nothing else. A yaml block that does
//! not parse fails, naming the page and line.
//!
//! **What the page tells the user to create.** A file in `docs/examples/` says it in its
//! header comment, on one line of this form (either part may be left out; `# Create: nothing`
//! for none), and names the secrets another example writes (the sign-in, the keeper) on a
//! `# From:` line:
//!
//! ```text
//! # Create: secrets CODEX_AUTH_WRITE_TOKEN; variable CODEX_AUTH_ACCOUNT
//! # From: CODEX_AUTH_JSON, CODEX_ACCESS_JSON (login.yml)
//! ```
//!
//! Every `secrets.X` and `vars.X` the workflow uses outside comment lines must be listed on
//! one of them, and every name listed must be used; a `# From:` example must hold a
//! codex-auth step that stores each secret it names (its `secret-name` with a write
//! credential, its `access-secret-name`). A block in README.md or `docs/` must name each secret and variable it uses in
//! the page's prose, outside code fences. The job then gets exactly those: a name the page does
//! not tell the user to create resolves to the empty string, as GitHub resolves a secret nobody
//! created (an example file without any `# Create:` line gets what it uses, so that its run
//! still shows what the step itself does). `GITHUB_TOKEN` needs no creating. What each name
//! holds:
//!
//! - `CODEX_AUTH_JSON`: a full login whose access token has expired (Codex refreshes it at
//!   once), also stored as that repository secret in the local GitHub;
//! - `CODEX_ACCESS_JSON`: an access-only copy of a fresh login, as the keeper writes it
//!   (`chatgptAuthTokens`, no refresh token), also stored as that secret;
//! - `CODEX_AUTH_WRITE_TOKEN`: a fine-grained token limited to the repository, with exactly
//!   the permissions the README's Quickstart names in bold beside it (today **Secrets: Read and
//!   write** and **Actions: Read**);
//! - `CODEX_AUTH_ARTIFACT_KEY`: what `codex-auth keygen` prints;
//! - `CODEX_AUTH_ORG_TOKEN`: a classic token with `admin:org` (the organization keeper's);
//!   with `organization: ${{ github.repository_owner }}` the secrets are the organization's
//!   (`octo`), visible to the repository alone, as the sign-in leaves them;
//! - `CODEX_AUTH_APP_ID` / `CODEX_AUTH_APP_KEY`: a GitHub App installed on the repository with
//!   the permissions docs/stores.md's table gives it (Secrets: write, Actions: read, Metadata:
//!   read), and its private key;
//! - `vars.CODEX_AUTH_ACCOUNT`: the email of the account the local OpenAI signs in.
//!
//! Any other name fails, saying to teach this test what a user stores in it.
//!
//! **Expressions.** `secrets.X`, `vars.X`, `inputs.X` (the workflow's `workflow_dispatch`
//! inputs: their default, else a realistic task), `matrix.X` (every entry is resolved, the
//! first one is run) and `github.token`; any other expression fails, so that a new example
//! cannot slip past. `steps.<id>.outputs.<name>` of a codex-auth step must name an output of
//! its action.yml.
//!
//! **How each step runs.** On a Linux runner (`ubuntu-*`, a label `linux`, or no `runs-on` in a
//! fragment, as the container action needs Linux) the stages run in the action's image as the
//! runner runs a container action, with Docker's seccomp profile (`Job::in_container`), the
//! workspace the runner's user's (uid 1001). The host face runs as `node main.js`/`post.js` on
//! this machine. A `uses: actions/checkout@…` before the step makes the workspace a git
//! checkout of a few files. The local model asks Codex to run one command (`cat README.md` on a
//! checkout, else an `echo`): an `exec` step must succeed with `commands-failed` 0, and the
//! command's output must reach the model. A `refresh` must store the rotation (and the
//! access-only copy with `access-secret-name`); a `login` is approved as the person would, by
//! its code, and must be stored; a step on an access-only copy must write nothing. After a
//! `restore`, the job's later `run:` lines that call `codex` run with the example's own
//! arguments, as the user the restored login belongs to, and the same checks apply to their
//! command; a `npm install -g @openai/codex@VERSION` line must name the pinned version
//! (Dockerfile `ARG CODEX_VERSION`). Examples run a few at a time.
//!
//! **How the stand-ins differ from GitHub.**
//! - podman runs the image for docker, with Docker's default seccomp profile: what it refuses
//!   (the user namespaces bubblewrap needs) is what GitHub's runners refuse.
//! - A later `codex` step of a Linux job runs in a container of the test image (its pinned
//!   Codex), as the restored login's owner, under Docker's seccomp profile: user namespaces
//!   are refused to it as hosted Ubuntu 24.04 refuses them to unprivileged users (there
//!   AppArmor denies what an unprivileged namespace would need, here seccomp refuses to create
//!   it; either way bubblewrap cannot start and every sandboxed command fails). A job that
//!   first runs `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` (what
//!   openai/codex-action runs on hosted Linux runners) has its later `codex` steps run under
//!   podman's profile, where bubblewrap starts: that the sysctl lifts the restriction on hosted
//!   Ubuntu is taken from openai/codex-action, not run here. A macOS job's
//!   step runs there under podman's profile, where bubblewrap starts, standing in for macOS's
//!   own sandbox (Seatbelt), which starts on hosted macOS. Windows is not modelled.
//! - The login's sign-in is pointed at the local issuer by a `codex` wrapper first on PATH in
//!   the container (Codex's hidden `--experimental_issuer`, the seam login.rs uses).
//! - `codex-version` is served by the local npm registry: the pinned package, relabelled when
//!   the example names another version.
//! - The local GitHub, OpenAI and artifact service differ as their own module docs say.
//! - Event: `workflow_dispatch` with its inputs when the workflow has that trigger, else
//!   `schedule`, else a push (fragments), on a private repository.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use yaml_rust2::{Yaml, YamlLoader};

use crate::host_face::Release;
use crate::support::artifacts::Artifacts;
use crate::support::github;
use crate::support::job::{Job, StageRun, GITHUB_TOKEN};
use crate::support::npm;
use crate::support::openai::Responses;
use crate::support::world::{World, REPO};

/// The runner's user on GitHub's hosted runners.
const RUNNER_UID: u32 = 1001;
/// The fine-grained token the Quickstart tells the user to make.
const WRITE_TOKEN: &str = "github_pat_11EXAMPLEWRITE00000000_abcdefghijklmnopqrstuvwxyz";
/// The id the local GitHub gives the repository (`GITHUB_REPOSITORY_ID`).
const REPOSITORY_ID: u64 = 1;
/// The run every job belongs to (`World::new`).
const RUN_ID: u64 = 4242;
const APP_ID: u64 = 314_159;
/// The owner of [`REPO`]: an organization, for the examples that keep organization secrets.
const OWNER: &str = "octo";
/// The classic token with `admin:org` the organization keeper's page tells the admin to make.
const ORG_TOKEN: &str = "ghp_EXAMPLEORGANIZATIONTOKEN0000000000000";
/// A task for a `workflow_dispatch` input without a default.
const TASK: &str = "Read README.md and say in one sentence what this repository is for.";
/// How many examples run at once.
const PARALLEL: usize = 3;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(root().join(relative)).unwrap()
}

fn image() -> String {
    std::env::var("CODEX_AUTH_TEST_IMAGE").unwrap_or_else(|_| {
        panic!("CODEX_AUTH_TEST_IMAGE is not set: run the tests with scripts/test")
    })
}

// ---------------------------------------------------------------------------------------------
// Collecting the examples

/// One workflow (a file) or one fenced yaml block of a page.
#[derive(Debug, Clone)]
struct Source {
    /// The page, relative to the repository.
    page: String,
    /// The line of the page the yaml starts on (1-based).
    line: usize,
    /// The yaml, its fence's indentation removed.
    text: String,
    /// A file of `docs/examples/` (else a block of a page).
    file: bool,
}

impl Source {
    fn at(&self) -> String {
        format!("{}:{}", self.page, self.line)
    }
}

/// README.md and every Markdown page under `docs/`.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    let mut dirs = vec![root().join("docs")];
    while let Some(dir) = dirs.pop() {
        for path in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    pages.sort();
    pages
}

/// The fenced `yaml`/`yml` blocks of a page: (first line of the yaml, 1-based; text).
fn yaml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, usize, String, bool)> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let info = info.trim().to_ascii_lowercase();
                    let yaml = info == "yaml" || info == "yml";
                    open = Some((n + 2, indent, String::new(), yaml));
                }
            }
            Some((start, fence_indent, body, yaml)) => {
                if trimmed.starts_with("```") {
                    if *yaml {
                        blocks.push((*start, std::mem::take(body)));
                    }
                    open = None;
                } else {
                    let cut = line.len() - line.trim_start_matches(' ').len();
                    body.push_str(&line[cut.min(*fence_indent)..]);
                    body.push('\n');
                }
            }
        }
    }
    blocks
}

/// A page's text outside code fences.
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Every example file and every yaml block of the pages.
fn sources() -> Vec<Source> {
    let mut sources = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("docs/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    for path in files {
        sources.push(Source {
            page: relative(&path),
            line: 1,
            text: std::fs::read_to_string(&path).unwrap(),
            file: true,
        });
    }
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for (line, block) in yaml_blocks(&text) {
            sources.push(Source {
                page: relative(&page),
                line,
                text: block,
                file: false,
            });
        }
    }
    sources
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap().display().to_string()
}

/// Which action a `uses:` names: the container action or its host face (any owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Face {
    Container,
    Host,
}

fn face(uses: &str) -> Option<Face> {
    let (path, _) = uses.split_once('@')?;
    match path.split('/').collect::<Vec<_>>().as_slice() {
        [_, "codex-auth"] => Some(Face::Container),
        [_, "codex-auth", "host"] => Some(Face::Host),
        _ => None,
    }
}

/// Whether any mapping in `yaml` has a `uses:` of codex-auth.
fn holds_codex_auth(yaml: &Yaml) -> bool {
    match yaml {
        Yaml::Hash(hash) => hash.iter().any(|(k, v)| {
            (k.as_str() == Some("uses") && v.as_str().and_then(face).is_some())
                || holds_codex_auth(v)
        }),
        Yaml::Array(items) => items.iter().any(holds_codex_auth),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The workflow

/// One job of a workflow, or the job a fragment stands for.
#[derive(Debug, Clone)]
struct JobSpec {
    name: String,
    /// `runs-on` labels; empty when the fragment has none.
    runs_on: Vec<String>,
    /// The job's `permissions:`, else the workflow's, else none given.
    permissions: Option<Yaml>,
    /// `strategy.matrix`.
    matrix: Option<Yaml>,
    steps: Vec<Yaml>,
}

#[derive(Debug, Clone, Default)]
struct Workflow {
    /// `on:` triggers.
    triggers: Vec<String>,
    /// `workflow_dispatch` inputs: name → value the test gives.
    dispatch_inputs: BTreeMap<String, String>,
    jobs: Vec<JobSpec>,
}

fn key<'a>(yaml: &'a Yaml, name: &str) -> &'a Yaml {
    &yaml[name]
}

fn job_spec(name: &str, job: &Yaml, workflow_permissions: Option<&Yaml>) -> JobSpec {
    let runs_on = match key(job, "runs-on") {
        Yaml::String(s) => vec![s.clone()],
        Yaml::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let permissions = match key(job, "permissions") {
        Yaml::BadValue => workflow_permissions.cloned(),
        p => Some(p.clone()),
    };
    let matrix = match &job["strategy"]["matrix"] {
        Yaml::BadValue => None,
        m => Some(m.clone()),
    };
    JobSpec {
        name: name.to_owned(),
        runs_on,
        permissions,
        matrix,
        steps: job["steps"].as_vec().cloned().unwrap_or_default(),
    }
}

/// The workflow a document is: a whole workflow, a job's body (`steps:`), or a list of steps.
fn workflow(doc: &Yaml) -> Result<Workflow, String> {
    if let Some(jobs) = doc["jobs"].as_hash() {
        let mut workflow = Workflow::default();
        match &doc["on"] {
            Yaml::String(s) => workflow.triggers.push(s.clone()),
            Yaml::Array(items) => workflow
                .triggers
                .extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned))),
            Yaml::Hash(hash) => workflow
                .triggers
                .extend(hash.keys().filter_map(|k| k.as_str().map(str::to_owned))),
            _ => {}
        }
        if let Some(inputs) = doc["on"]["workflow_dispatch"]["inputs"].as_hash() {
            for (name, spec) in inputs {
                let name = name.as_str().ok_or("an input's name is not a string")?;
                let value = match &spec["default"] {
                    Yaml::BadValue | Yaml::Null => TASK.to_owned(),
                    other => scalar(other)?,
                };
                workflow.dispatch_inputs.insert(name.to_owned(), value);
            }
        }
        let permissions = match &doc["permissions"] {
            Yaml::BadValue => None,
            p => Some(p),
        };
        for (name, job) in jobs {
            let name = name.as_str().ok_or("a job's name is not a string")?;
            workflow.jobs.push(job_spec(name, job, permissions));
        }
        return Ok(workflow);
    }
    if doc["steps"].as_vec().is_some() {
        return Ok(Workflow {
            jobs: vec![job_spec("(fragment)", doc, None)],
            ..Workflow::default()
        });
    }
    if let Some(steps) = doc.as_vec() {
        return Ok(Workflow {
            jobs: vec![JobSpec {
                name: "(steps)".to_owned(),
                runs_on: Vec::new(),
                permissions: None,
                matrix: None,
                steps: steps.clone(),
            }],
            ..Workflow::default()
        });
    }
    Err(
        "it holds a codex-auth step but is neither a workflow, a job's body nor a list of \
         steps: teach tests/integration/examples.rs its shape"
            .to_owned(),
    )
}

/// A scalar as the runner passes it to an input.
fn scalar(yaml: &Yaml) -> Result<String, String> {
    Ok(match yaml {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        Yaml::Null => String::new(),
        other => return Err(format!("{other:?} is not a scalar")),
    })
}

/// The matrix's entries (the cartesian product of its lists), in order.
fn matrix_entries(matrix: Option<&Yaml>) -> Result<Vec<BTreeMap<String, String>>, String> {
    let Some(matrix) = matrix else {
        return Ok(vec![BTreeMap::new()]);
    };
    let hash = matrix
        .as_hash()
        .ok_or("`strategy.matrix` is not a mapping")?;
    let mut entries = vec![BTreeMap::new()];
    for (name, values) in hash {
        let name = name.as_str().ok_or("a matrix key is not a string")?;
        if name == "include" || name == "exclude" {
            return Err(format!(
                "`strategy.matrix.{name}`: teach tests/integration/examples.rs to expand it"
            ));
        }
        let values = values
            .as_vec()
            .ok_or(format!("`strategy.matrix.{name}` is not a list"))?;
        let mut next = Vec::new();
        for entry in &entries {
            for value in values {
                let mut entry = entry.clone();
                entry.insert(name.to_owned(), scalar(value)?);
                next.push(entry);
            }
        }
        entries = next;
    }
    Ok(entries)
}

/// The runner's OS by the job's labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Os {
    Linux,
    MacOs,
}

fn runner_os(labels: &[String]) -> Result<Os, String> {
    let lower: Vec<String> = labels.iter().map(|l| l.to_ascii_lowercase()).collect();
    if lower.is_empty()
        || lower
            .iter()
            .any(|l| l == "linux" || l.starts_with("ubuntu"))
    {
        return Ok(Os::Linux);
    }
    if lower.iter().any(|l| l.starts_with("macos")) {
        return Ok(Os::MacOs);
    }
    Err(format!(
        "runs-on {labels:?}: the test cannot run a job on this runner; teach \
         tests/integration/examples.rs how it runs there"
    ))
}

// ---------------------------------------------------------------------------------------------
// Expressions

/// The contents of every `${{ … }}` in `text`, or an error for one left open.
fn expressions(text: &str) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("${{") {
        let after = &rest[at + 3..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("`{}` is never closed", &rest[at..]))?;
        found.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    Ok(found)
}

/// The text without its comment lines: what a comment says is not run.
fn without_comments(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `secrets.X` and `vars.X` names a text's expressions use (`secrets.X` form), outside
/// comment lines.
fn used_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let text = without_comments(text);
    let mut rest = text.as_str();
    while let Some(at) = rest.find("${{") {
        let after = &rest[at + 3..];
        let end = after.find("}}").unwrap_or(after.len());
        let expression = &after[..end];
        for prefix in ["secrets.", "vars."] {
            for (i, _) in expression.match_indices(prefix) {
                let boundary = expression[..i]
                    .chars()
                    .last()
                    .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'));
                let name: String = expression[i + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                // GITHUB_TOKEN is the workflow's own: nobody creates it.
                if boundary && !name.is_empty() && name != "GITHUB_TOKEN" {
                    names.insert(format!("{prefix}{name}"));
                }
            }
        }
        rest = &after[end.min(after.len())..];
    }
    names
}

/// What expressions resolve against.
struct Context<'a> {
    /// `secrets.X` / `vars.X` → value, for the names provided.
    values: &'a BTreeMap<String, String>,
    inputs: &'a BTreeMap<String, String>,
    matrix: &'a BTreeMap<String, String>,
}

impl Context<'_> {
    fn resolve(&self, text: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("${{") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 3..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("`{}` is never closed", &rest[at..]))?;
            out.push_str(&self.value(after[..end].trim())?);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn value(&self, expression: &str) -> Result<String, String> {
        let simple = |prefix: &str| {
            expression.strip_prefix(prefix).filter(|name| {
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
        };
        if expression == "github.token" || expression == "secrets.GITHUB_TOKEN" {
            return Ok(GITHUB_TOKEN.to_owned());
        }
        if expression == "github.repository_owner" {
            return Ok(OWNER.to_owned());
        }
        if simple("secrets.").or_else(|| simple("vars.")).is_some() {
            // A secret or variable nobody created is the empty string on GitHub.
            return Ok(self.values.get(expression).cloned().unwrap_or_default());
        }
        if let Some(name) = simple("inputs.").or_else(|| simple("github.event.inputs.")) {
            return self.inputs.get(name).cloned().ok_or_else(|| {
                format!("`${{{{ {expression} }}}}`: the workflow has no workflow_dispatch input `{name}`")
            });
        }
        if let Some(name) = simple("matrix.") {
            return self.matrix.get(name).cloned().ok_or_else(|| {
                format!("`${{{{ {expression} }}}}`: the job's matrix has no `{name}`")
            });
        }
        Err(format!(
            "`${{{{ {expression} }}}}` cannot be resolved: teach tests/integration/examples.rs \
             what it evaluates to"
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// What the page tells the user to create

/// The `# From:` line of an example file's header: secrets another example writes, and that
/// example (`# From: CODEX_AUTH_JSON, CODEX_ACCESS_JSON (login.yml)`).
fn from_line(text: &str) -> Result<Option<(BTreeSet<String>, String)>, String> {
    let header = text
        .lines()
        .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    for line in header {
        let Some(rest) = line
            .trim_start()
            .trim_start_matches('#')
            .trim()
            .strip_prefix("From:")
        else {
            continue;
        };
        let (names, file) = rest
            .rsplit_once('(')
            .and_then(|(names, file)| Some((names, file.trim().strip_suffix(')')?)))
            .ok_or_else(|| {
                format!("`# From:{rest}` is not `# From: SECRET_A, SECRET_B (example.yml)`")
            })?;
        let names = names
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| format!("secrets.{n}"))
            .collect();
        return Ok(Some((names, file.trim().to_owned())));
    }
    Ok(None)
}

/// The secrets a codex-auth step of the example file `file` stores: its `secret-name`
/// (`CODEX_AUTH_JSON` by default) where it stores a login (a sign-in, a refresh, or a task on
/// the full login with a write credential), and its `access-secret-name`.
fn written_by(file: &str) -> Result<BTreeSet<String>, String> {
    let path = format!("docs/examples/{file}");
    let text = std::fs::read_to_string(root().join(&path))
        .map_err(|e| format!("`# From:` names {path}, which cannot be read: {e}"))?;
    let docs = YamlLoader::load_from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let mut written = BTreeSet::new();
    for (_, job) in docs[0]["jobs"].as_hash().into_iter().flatten() {
        for step in job["steps"].as_vec().into_iter().flatten() {
            if step["uses"].as_str().and_then(face).is_none() {
                continue;
            }
            let with = &step["with"];
            let get = |name: &str| with[name].as_str().unwrap_or_default().to_owned();
            let writes = matches!(get("mode").as_str(), "login" | "refresh" | "" | "exec")
                && (!get("token").is_empty() || !get("app-id").is_empty())
                && get("store") != "artifact";
            if writes {
                let name = match get("secret-name") {
                    n if n.is_empty() => "CODEX_AUTH_JSON".to_owned(),
                    n => n,
                };
                written.insert(format!("secrets.{name}"));
                if !get("access-secret-name").is_empty() {
                    written.insert(format!("secrets.{}", get("access-secret-name")));
                }
            }
        }
    }
    Ok(written)
}

/// The `# Create:` line of an example file's header: `secrets.X`/`vars.X` names (`# Create:
/// nothing` for none).
fn create_line(text: &str) -> Result<Option<BTreeSet<String>>, String> {
    let header = text
        .lines()
        .take_while(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
    let mut found = None;
    for line in header {
        let Some(list) = line
            .trim_start()
            .trim_start_matches('#')
            .trim()
            .strip_prefix("Create:")
        else {
            continue;
        };
        if found.is_some() {
            return Err("the header has two `# Create:` lines".to_owned());
        }
        let mut names = BTreeSet::new();
        if list.trim() == "nothing" {
            found = Some(names);
            continue;
        }
        for part in list.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (kind, rest) = part.split_once(' ').unwrap_or((part, ""));
            let prefix = match kind {
                "secret" | "secrets" => "secrets.",
                "variable" | "variables" => "vars.",
                _ => {
                    return Err(format!(
                        "`# Create:` part `{part}` is neither `secrets A, B` nor `variables C`"
                    ))
                }
            };
            for name in rest.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                names.insert(format!("{prefix}{name}"));
            }
        }
        found = Some(names);
    }
    Ok(found)
}

/// Whether `word` appears in `text` as a whole word.
fn names_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        text[..i].chars().last().is_none_or(|c| !is_word(c))
            && text[i + word.len()..]
                .chars()
                .next()
                .is_none_or(|c| !is_word(c))
    })
}

/// The permissions the README's Quickstart names, in bold, beside `CODEX_AUTH_WRITE_TOKEN`:
/// `**Secrets: Read and write**` → `{"secrets": "write"}`.
fn quickstart_permissions() -> Result<Value, String> {
    let readme = read("README.md");
    let start = readme
        .find("## Quickstart")
        .ok_or("README.md has no Quickstart section")?;
    let section = &readme[start + 3..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let paragraph = section
        .split("\n\n")
        .find(|p| p.contains("CODEX_AUTH_WRITE_TOKEN"))
        .ok_or("README.md's Quickstart does not say how to make CODEX_AUTH_WRITE_TOKEN")?;
    let mut permissions = serde_json::Map::new();
    for (i, bold) in paragraph.split("**").enumerate() {
        let Some((name, level)) = bold.split_once(':').filter(|_| i % 2 == 1) else {
            continue;
        };
        let name = match name.trim() {
            "Secrets" => "secrets",
            "Actions" => "actions",
            "Environments" => "environments",
            "Metadata" => "metadata",
            other => {
                return Err(format!(
                    "the Quickstart names the permission `{other}`: teach \
                     tests/integration/examples.rs what it grants"
                ))
            }
        };
        let level = match level.trim() {
            "Read and write" => "write",
            "Read" | "Read-only" => "read",
            other => return Err(format!("the Quickstart's permission level `{other}`")),
        };
        permissions.insert(name.to_owned(), level.into());
    }
    if permissions.is_empty() {
        return Err(
            "README.md's Quickstart names no permission (in bold, `**Secrets: Read and write**`) \
             for CODEX_AUTH_WRITE_TOKEN"
                .to_owned(),
        );
    }
    Ok(Value::Object(permissions))
}

/// The pinned Codex (Dockerfile `ARG CODEX_VERSION`).
fn pinned_codex() -> String {
    read("Dockerfile")
        .lines()
        .find_map(|l| l.trim().strip_prefix("ARG CODEX_VERSION="))
        .unwrap()
        .trim()
        .to_owned()
}

/// Input and output names of an action.yml.
fn action_names(face: Face) -> (BTreeSet<String>, BTreeSet<String>) {
    let path = match face {
        Face::Container => "action.yml",
        Face::Host => "host/action.yml",
    };
    let action = YamlLoader::load_from_str(&read(path)).unwrap().remove(0);
    let names = |section: &str| -> BTreeSet<String> {
        action[section]
            .as_hash()
            .map(|h| {
                h.keys()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    (names("inputs"), names("outputs"))
}

// ---------------------------------------------------------------------------------------------
// Running a job

/// The servers and secrets of one example's job.
struct Stage {
    world: World,
    /// Where the secrets are: the repository, or the organization an example names.
    scope: String,
    artifacts: Option<Artifacts>,
    /// `secrets.X` / `vars.X` → value.
    values: BTreeMap<String, String>,
    artifact_key: Option<String>,
    problems: Vec<String>,
}

/// An access-only copy of `login`, as the keeper writes it: `chatgptAuthTokens`, no refresh
/// token, and of the tokens only the id, access token and account (a sign-in's
/// `oauth_provenance` and `login_owner_id` are dropped).
fn copy_of(login: &Value) -> Value {
    let mut copy = login.clone();
    copy["auth_mode"] = "chatgptAuthTokens".into();
    let tokens = &login["tokens"];
    copy["tokens"] = json!({
        "id_token": tokens["id_token"],
        "access_token": tokens["access_token"],
        "refresh_token": "",
        "account_id": tokens["account_id"],
    });
    copy
}

/// Whether the effective `permissions:` give the job's `GITHUB_TOKEN` `actions: read`.
/// None given: GitHub's restricted default (contents and packages read), without it.
fn actions_read(permissions: Option<&Yaml>) -> bool {
    match permissions {
        Some(Yaml::String(all)) => all == "read-all" || all == "write-all",
        Some(p) => matches!(p["actions"].as_str(), Some("read" | "write")),
        None => false,
    }
}

impl Stage {
    /// The world, with each of `names` (`secrets.X`, `vars.X`) created as the page says.
    fn new(
        names: &BTreeSet<String>,
        permissions: Option<&Yaml>,
        organization: Option<&str>,
    ) -> Self {
        let world = World::new(Responses::Ok);
        let scope = match organization {
            Some(organization) => {
                let scope = github::org(organization);
                world.github.add_scope(&scope);
                scope
            }
            None => github::repo(REPO),
        };
        let mut stage = Self {
            world,
            scope: scope.clone(),
            artifacts: None,
            values: BTreeMap::new(),
            artifact_key: None,
            problems: Vec::new(),
        };
        // As the sign-in left them: an organization secret visible to this repository alone.
        let store = |stage: &Self, name: &str, value: &str| {
            stage.world.github.set_secret(&scope, name, value);
            if organization.is_some() {
                stage
                    .world
                    .github
                    .set_visibility(&scope, name, "selected", &[REPOSITORY_ID]);
            }
        };
        // The access copy first: the stale login is the one Codex refreshes.
        let mut ordered: Vec<&String> = names.iter().collect();
        ordered.sort_by_key(|n| n.as_str() != "secrets.CODEX_ACCESS_JSON");
        for name in ordered {
            let value = match name.as_str() {
                "secrets.CODEX_AUTH_JSON" => {
                    let seed = stage.world.openai.seed(true).to_string();
                    store(&stage, "CODEX_AUTH_JSON", &seed);
                    seed
                }
                "secrets.CODEX_ACCESS_JSON" => {
                    let copy = copy_of(&stage.world.openai.seed(false)).to_string();
                    store(&stage, "CODEX_ACCESS_JSON", &copy);
                    copy
                }
                "secrets.CODEX_AUTH_WRITE_TOKEN" => {
                    let permissions = quickstart_permissions().unwrap_or_else(|e| {
                        stage.problems.push(e);
                        json!({})
                    });
                    stage
                        .world
                        .github
                        .add_fine_grained_token(WRITE_TOKEN, REPO, permissions);
                    WRITE_TOKEN.to_owned()
                }
                "secrets.CODEX_AUTH_ORG_TOKEN" => {
                    // The README's organization keeper: a classic token with `admin:org` (the
                    // local GitHub's fine-grained tokens reach no organization).
                    stage
                        .world
                        .github
                        .add_classic_token(ORG_TOKEN, &["admin:org"]);
                    ORG_TOKEN.to_owned()
                }
                "secrets.CODEX_AUTH_ARTIFACT_KEY" => {
                    let out = Command::new(env!("CARGO_BIN_EXE_codex-auth"))
                        .arg("keygen")
                        .output()
                        .unwrap();
                    assert!(out.status.success(), "codex-auth keygen failed");
                    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
                    stage.artifact_key = Some(key.clone());
                    key
                }
                "vars.CODEX_AUTH_ACCOUNT" => "dev@example.test".to_owned(),
                "vars.CODEX_AUTH_APP_ID" => APP_ID.to_string(),
                "secrets.CODEX_AUTH_APP_KEY" => {
                    let private = Command::new("openssl")
                        .args(["genrsa", "-traditional", "2048"])
                        .output()
                        .unwrap();
                    let mut public = Command::new("openssl")
                        .args(["rsa", "-pubout"])
                        .stdin(std::process::Stdio::piped())
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .unwrap();
                    std::io::Write::write_all(&mut public.stdin.take().unwrap(), &private.stdout)
                        .unwrap();
                    let public = public.wait_with_output().unwrap();
                    // As docs/stores.md's table has it.
                    stage.world.github.add_app_with(
                        APP_ID,
                        &public.stdout,
                        json!({"secrets": "write", "actions": "read", "metadata": "read"}),
                    );
                    stage.world.github.install_app(APP_ID, REPO);
                    String::from_utf8(private.stdout).unwrap()
                }
                other => {
                    stage.problems.push(format!(
                        "uses `{other}`, which tests/integration/examples.rs does not know: teach \
                         it what a user stores there"
                    ));
                    continue;
                }
            };
            stage.values.insert(name.clone(), value);
        }
        if stage.artifact_key.is_some() {
            let artifacts = Artifacts::start();
            artifacts.add_repository(REPO, REPOSITORY_ID);
            if actions_read(permissions) {
                artifacts.add_token(GITHUB_TOKEN, REPO);
            } else {
                artifacts.add_token_without_actions(GITHUB_TOKEN, REPO);
            }
            stage.world.github.mount_artifacts(artifacts.rest_api());
            stage.artifacts = Some(artifacts);
        }
        stage
    }
}

/// Makes the workspace a checkout of a few files (a git repository, as actions/checkout
/// leaves it), whose README holds `marker`.
fn checkout(workspace: &Path, marker: &str) {
    std::fs::write(
        workspace.join("README.md"),
        format!("# octo/repo\n\n{marker}\n"),
    )
    .unwrap();
    std::fs::create_dir_all(workspace.join("src")).unwrap();
    std::fs::write(
        workspace.join("src/lib.rs"),
        "/// Adds.\npub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n",
    )
    .unwrap();
    std::fs::write(workspace.join(".gitignore"), "target/\n").unwrap();
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "."],
        &[
            "-c",
            "user.name=Octo Cat",
            "-c",
            "user.email=octocat@example.test",
            "commit",
            "-qm",
            "Initial commit",
        ],
    ] {
        let status = Command::new("git")
            .args(args)
            .current_dir(workspace)
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }
}

fn chown_tree(path: &Path, uid: u32) {
    let status = Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}"), &path.display().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// What one example's codex-auth step is, resolved.
struct Step {
    face: Face,
    /// Resolved `with:`.
    with: BTreeMap<String, String>,
    /// Its index in the job's steps.
    index: usize,
}

impl Step {
    fn get(&self, name: &str) -> &str {
        self.with.get(name).map_or("", String::as_str)
    }

    fn mode(&self) -> &str {
        match (self.get("mode"), self.face) {
            ("", Face::Container) => "exec",
            ("", Face::Host) => "restore",
            (mode, _) => mode,
        }
    }
}

/// The step that lifts hosted Ubuntu's AppArmor restriction of unprivileged user namespaces,
/// as openai/codex-action runs it (docs/facts.md, "Sandbox on a hosted Ubuntu runner").
const USERNS_SYSCTL: &str = "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0";

/// What the output of the command Codex runs must hold without a checkout.
const ECHOED: &str = "codex-auth-example";

/// The command the local model asks Codex to run, and what its output must hold: the
/// checkout's README (holding `marker`), else an echo.
fn command_for(checked_out: bool, marker: &str) -> (String, String) {
    if checked_out {
        ("cat README.md".to_owned(), marker.to_owned())
    } else {
        (format!("echo {ECHOED}"), ECHOED.to_owned())
    }
}

/// The command ran and its output reached the model (since `before` outputs).
fn assert_command_reached_the_model(
    stage: &Stage,
    before: usize,
    marker: &str,
) -> Result<(), String> {
    let outputs = stage.world.openai.tool_outputs();
    let new = &outputs[before.min(outputs.len())..];
    if new
        .iter()
        .any(|o| o.contains(marker) && o.contains("exited with code 0"))
    {
        Ok(())
    } else {
        Err(format!(
            "the command Codex ran did not reach the model with its output (`{marker}`): {new:?}"
        ))
    }
}

/// A sign-in: started, its code approved once shown, then finished.
fn sign_in(stage: &Stage, job: &mut Job) -> StageRun {
    let mut spawned = job.spawn_main_recording();
    let started = Instant::now();
    loop {
        if matches!(spawned.child.try_wait(), Ok(Some(_))) {
            break;
        }
        if let Some(code) = stage.world.openai.pending_codes().pop() {
            if spawned.stdout_so_far().contains(&code) {
                stage.world.openai.approve(&code);
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = spawned.child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    spawned.finish()
}

/// A later `run:` line's `codex …`, as the runner's user runs it on the runner: in a container
/// of the test image, with the same paths, under `seccomp` (see the module doc).
fn host_codex(
    stage: &Stage,
    job: &Job,
    codex_home: &str,
    args: &[String],
    namespaces_refused: bool,
) -> std::process::Output {
    let owner = std::fs::metadata(Path::new(codex_home).join("auth.json"))
        .map(|m| m.uid())
        .unwrap_or(RUNNER_UID);
    let ca = job.runner_temp().join("ca.pem");
    let workspace = job.workspace.display().to_string();
    let mut command = Command::new("timeout");
    command.args([
        "300",
        "podman",
        "run",
        "--rm",
        "--pull=never",
        "--network",
        "host",
        "--user",
        &format!("{owner}:{owner}"),
        "--workdir",
        &workspace,
        "-v",
        &format!("{workspace}:{workspace}"),
        "-v",
        &format!("{codex_home}:{codex_home}"),
        "-v",
        &format!("{}:{}:ro", ca.display(), ca.display()),
        "-e",
        &format!("CODEX_HOME={codex_home}"),
        "-e",
        &format!("CODEX_CA_CERTIFICATE={}", ca.display()),
        "-e",
        &format!(
            "CODEX_REFRESH_TOKEN_URL_OVERRIDE={}",
            stage.world.openai.token_url()
        ),
        "-e",
        "HOME=/tmp",
    ]);
    if namespaces_refused {
        let profile = root().join("tests/container/seccomp-docker-default.json");
        command.args(["--security-opt", &format!("seccomp={}", profile.display())]);
    }
    command
        .args(["--entrypoint", "/opt/codex/bin/codex", &image()])
        .args(args)
        .stdin(std::process::Stdio::null());
    command.output().unwrap()
}

/// The secret `name` of the repository, parsed.
fn stored(stage: &Stage, name: &str) -> Option<Value> {
    stage
        .world
        .github
        .secret(&stage.scope, name)
        .and_then(|s| serde_json::from_str(&s.value).ok())
}

/// One job of an example as it runs: its servers, what its steps left, and what is wrong.
struct Run<'a> {
    source: &'a Source,
    workflow: &'a Workflow,
    spec: &'a JobSpec,
    os: Os,
    stage: Stage,
    matrix: &'a BTreeMap<String, String>,
    /// What the checkout's README holds.
    marker: String,
    checked_out: bool,
    /// The `mode: restore` step whose post stage runs at the job's end.
    restored: Option<(Job, StageRun, Step)>,
    /// A step lifted hosted Ubuntu's restriction of user namespaces (see the module doc).
    userns_allowed: bool,
    ran: bool,
    problems: Vec<String>,
    /// Servers and files kept alive while the job runs.
    keep: Vec<Box<dyn std::any::Any>>,
}

/// The organization whose secrets a job's codex-auth steps keep (input `organization`).
fn organization_of(
    spec: &JobSpec,
    workflow: &Workflow,
    matrix: &BTreeMap<String, String>,
) -> Option<String> {
    let context = Context {
        values: &BTreeMap::new(),
        inputs: &workflow.dispatch_inputs,
        matrix,
    };
    spec.steps
        .iter()
        .filter(|s| s["uses"].as_str().and_then(face).is_some())
        .find_map(|s| s["with"]["organization"].as_str())
        .and_then(|raw| context.resolve(raw).ok())
        .filter(|o| !o.is_empty())
}

/// Runs one job (with one matrix entry) of an example; returns its problems.
fn run_job(
    source: &Source,
    workflow: &Workflow,
    spec: &JobSpec,
    provided: &BTreeSet<String>,
    matrix: &BTreeMap<String, String>,
) -> Vec<String> {
    let os = match runner_os(&spec.runs_on) {
        Ok(os) => os,
        Err(e) => return vec![e],
    };
    let organization = organization_of(spec, workflow, matrix);
    let stage = Stage::new(provided, spec.permissions.as_ref(), organization.as_deref());
    let mut run = Run {
        source,
        workflow,
        spec,
        os,
        problems: stage.problems.clone(),
        stage,
        matrix,
        marker: format!("example-checkout-{}", std::process::id()),
        checked_out: false,
        restored: None,
        userns_allowed: false,
        ran: false,
        keep: Vec::new(),
    };
    for (index, raw) in spec.steps.iter().enumerate() {
        let uses = raw["uses"].as_str().unwrap_or_default();
        if uses.starts_with("actions/checkout@") {
            run.checked_out = true;
        } else if let Some(script) = raw["run"].as_str() {
            for line in script.lines().map(str::trim) {
                run.run_line(index, line);
            }
        } else if let Some(face) = face(uses) {
            run.codex_auth_step(index, raw, face);
        }
    }
    if let Some((mut job, main, step)) = run.restored.take() {
        let post = job.post(&main);
        if post.code != 0 {
            run.problems.push(format!(
                "step {} (mode restore): the post stage failed:\n{}",
                step.index + 1,
                post.stdout
            ));
        }
        let stored = check_stored(&run.stage, &step, 0);
        run.problems.extend(stored);
    }
    if !run.ran {
        run.problems.push("no codex-auth step ran".to_owned());
    }
    run.problems
}

impl Run<'_> {
    fn context(&self) -> Context<'_> {
        Context {
            values: &self.stage.values,
            inputs: &self.workflow.dispatch_inputs,
            matrix: self.matrix,
        }
    }

    /// One line of a `run:` step: an `npm install` of Codex is checked, a `codex …` is run
    /// as the later step would run it; anything else is not the test's business.
    fn run_line(&mut self, index: usize, line: &str) {
        let step = index + 1;
        if line.is_empty() || line.starts_with('#') {
            return;
        }
        if let Some(at) = line.find("@openai/codex") {
            let version = line[at + "@openai/codex".len()..]
                .strip_prefix('@')
                .and_then(|v| v.split_whitespace().next());
            if version != Some(pinned_codex().as_str()) {
                self.problems.push(format!(
                    "step {step}: `{line}` installs {version:?}, not the pinned Codex {}",
                    pinned_codex()
                ));
            }
            return;
        }
        if line == USERNS_SYSCTL {
            self.userns_allowed = true;
            return;
        }
        if line != "codex" && !line.starts_with("codex ") {
            return;
        }
        // The later step's stdin: /dev/null either way (host_codex).
        let line = line.strip_suffix("< /dev/null").map_or(line, str::trim_end);
        let words = match self.context().resolve(line).map(|l| shlex::split(&l)) {
            Ok(Some(words)) => words,
            Ok(None) => {
                self.problems.push(format!(
                    "step {step}: `{line}` does not split like a shell line"
                ));
                return;
            }
            Err(e) => {
                self.problems.push(format!("step {step}: {e}"));
                return;
            }
        };
        if words
            .iter()
            .any(|w| ["|", "&&", "||", ";", ">", "<"].contains(&w.as_str()))
        {
            self.problems.push(format!(
                "step {step}: `{line}`: teach tests/integration/examples.rs to run this shell line"
            ));
            return;
        }
        let Some((job, main, _)) = &self.restored else {
            self.problems.push(format!(
                "step {step}: `{line}` runs Codex, but no codex-auth `mode: restore` step before \
                 it restored a login"
            ));
            return;
        };
        let exported = crate::support::job::parse_file_command(&main.env_file);
        let Some(codex_home) = exported.get("CODEX_HOME") else {
            self.problems
                .push("the restore step exported no CODEX_HOME".to_owned());
            return;
        };
        let before = self.stage.world.openai.tool_outputs().len();
        let refused = self.os == Os::Linux && !self.userns_allowed;
        let out = host_codex(&self.stage, job, codex_home, &words[1..], refused);
        self.ran = true;
        if !out.status.success() {
            self.problems.push(format!(
                "step {step}: `{line}` exited {:?}:\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let (_, expected) = command_for(self.checked_out, &self.marker);
        if let Err(e) = assert_command_reached_the_model(&self.stage, before, &expected) {
            self.problems.push(format!("step {step} `{line}`: {e}"));
        }
    }

    /// The step's `with:`, checked against its action.yml and resolved.
    fn with(&mut self, index: usize, raw: &Yaml, face: Face) -> BTreeMap<String, String> {
        let (inputs, outputs) = action_names(face);
        let action = match face {
            Face::Container => "action.yml",
            Face::Host => "host/action.yml",
        };
        let mut with = BTreeMap::new();
        for (k, v) in raw["with"].as_hash().into_iter().flatten() {
            let Some(name) = k.as_str() else { continue };
            if !inputs.contains(name) {
                self.problems.push(format!(
                    "step {}: `with: {name}` is not an input of {action}",
                    index + 1
                ));
                continue;
            }
            match scalar(v).and_then(|v| self.context().resolve(&v)) {
                Ok(value) => {
                    with.insert(name.to_owned(), value);
                }
                Err(e) => self
                    .problems
                    .push(format!("step {} `{name}`: {e}", index + 1)),
            }
        }
        // The outputs of this step that later steps read must exist.
        if let Some(id) = raw["id"].as_str() {
            let prefix = format!("steps.{id}.outputs.");
            for expression in expressions(&self.source.text).unwrap_or_default() {
                if let Some(output) = expression.strip_prefix(&prefix) {
                    if !outputs.contains(output) {
                        self.problems.push(format!(
                            "`${{{{ {expression} }}}}`: {action} has no output `{output}`"
                        ));
                    }
                }
            }
        }
        with
    }

    /// The job a codex-auth step runs in, as the runner would start it.
    fn job_for(&mut self, step: &Step) -> Job {
        let stage = &self.stage;
        let mut job = Job::new(&stage.world.github, &stage.world.openai);
        for (name, value) in &step.with {
            // (An input action.yml declares and the test's Job does not is reported by
            // action_yml.rs.)
            if crate::support::job::DECLARED_INPUTS.contains(&name.as_str()) {
                job.input(name, value.clone());
            }
        }
        let repository = json!({"full_name": REPO, "private": true, "visibility": "private",
                                "default_branch": "main"});
        let triggers = &self.workflow.triggers;
        if triggers.iter().any(|t| t == "workflow_dispatch") {
            job.event(
                "workflow_dispatch",
                &json!({"ref": "refs/heads/main", "inputs": self.workflow.dispatch_inputs,
                        "repository": repository}),
            );
        } else if triggers.iter().any(|t| t == "schedule") {
            job.event(
                "schedule",
                &json!({"schedule": "17 6 * * 1", "repository": repository}),
            );
        }
        if let Some(artifacts) = &stage.artifacts {
            artifacts.enroll(&mut job, REPOSITORY_ID, RUN_ID, RUN_ID * 10);
        }
        if self.checked_out {
            checkout(&job.workspace, &self.marker);
        }
        let version = step.get("codex-version");
        if !version.is_empty() {
            let registry = npm::Registry::start();
            if version != npm::pinned_version() {
                registry.relabel(version);
            }
            job.env("npm_config_registry", registry.url());
            self.keep.push(Box::new(registry));
        }
        match step.face {
            Face::Container => {
                if self.checked_out {
                    chown_tree(&job.workspace, RUNNER_UID);
                }
                job.in_container(&image()).owned_by(RUNNER_UID);
                if step.mode() == "login" {
                    self.point_sign_in_at_local_issuer(&mut job);
                }
            }
            Face::Host => {
                let release = Release::new();
                release.runs(&mut job);
                // The host face's job-scoped CODEX_HOME gets the config that points Codex at
                // the local OpenAI, as the job's own would point it at OpenAI.
                let home = job.runner_temp().join("codex-auth/codex-home");
                std::fs::create_dir_all(&home).unwrap();
                std::fs::write(home.join("config.toml"), stage.world.openai.codex_config())
                    .unwrap();
                self.keep.push(Box::new(release));
            }
        }
        job
    }

    /// Puts a `codex` first on the container's PATH that points the sign-in at the local
    /// issuer (see the module doc).
    fn point_sign_in_at_local_issuer(&mut self, job: &mut Job) {
        let dir = tempfile::tempdir().unwrap();
        let wrapper = dir.path().join("codex");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nif [ \"$1\" = login ]; then exec /opt/codex/bin/codex \"$@\" \
                 --experimental_issuer {}; fi\nexec /opt/codex/bin/codex \"$@\"\n",
                self.stage.world.openai.issuer()
            ),
        )
        .unwrap();
        for path in [dir.path(), wrapper.as_path()] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        job.container_option(&format!(
            "--volume={}:/codex-auth-test-bin:ro",
            dir.path().display()
        ))
        .container_option(
            "--env=PATH=/codex-auth-test-bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:\
             /sbin:/bin",
        );
        self.keep.push(Box::new(dir));
    }

    /// Runs a codex-auth step's main stage (and its post stage, unless later steps need the
    /// restored login first) and checks what it did.
    fn codex_auth_step(&mut self, index: usize, raw: &Yaml, face: Face) {
        let with = self.with(index, raw, face);
        let step = Step { face, with, index };
        if face == Face::Container && self.os != Os::Linux {
            self.problems.push(format!(
                "step {}: the container action runs on Linux runners only, and this job runs \
                 on {:?}",
                index + 1,
                self.spec.runs_on
            ));
            return;
        }
        let mut job = self.job_for(&step);
        let (command, expected) = command_for(self.checked_out, &self.marker);
        let openai = &self.stage.world.openai;
        openai.ask_to_run(&command);
        let before = openai.tool_outputs().len();
        let rotations_before = openai.rotations();
        let mode = step.mode().to_owned();
        let main = match mode.as_str() {
            "login" => sign_in(&self.stage, &mut job),
            _ => job.main(),
        };
        self.ran = true;
        let label = format!("step {} (mode {mode})", index + 1);
        if main.code != 0 {
            let annotations: Vec<&str> = main
                .stdout
                .lines()
                .filter(|l| l.starts_with("::error") || l.starts_with("::warning"))
                .collect();
            self.problems.push(format!(
                "{label}: the main stage failed (exit {}): {}",
                main.code,
                annotations.join(" | ")
            ));
        }
        let codex_ran = !matches!(main.output("commands-run"), "" | "0");
        if mode == "exec" && (main.code == 0 || codex_ran) {
            if main.output("commands-failed") != "0" || !codex_ran {
                self.problems.push(format!(
                    "{label}: commands-run {:?}, commands-failed {:?} (expected at least one \
                     command run and none failed)",
                    main.output("commands-run"),
                    main.output("commands-failed")
                ));
            }
            if let Err(e) = assert_command_reached_the_model(&self.stage, before, &expected) {
                self.problems.push(format!("{label}: {e}"));
            }
        }
        if mode == "login" && main.output("persisted") != "true" {
            self.problems
                .push(format!("{label}: the new login was not stored"));
        }
        if mode == "restore" && main.code == 0 {
            // Its post stage runs after the job's later steps.
            self.restored = Some((job, main, step));
            return;
        }
        let post = job.post(&main);
        if post.code != 0 {
            self.problems
                .push(format!("{label}: the post stage failed:\n{}", post.stdout));
        }
        if main.code == 0 {
            let stored = check_stored(&self.stage, &step, rotations_before);
            self.problems.extend(stored);
        }
    }
}

/// What the step must have stored: the rotation (in the secret, or the artifact), the
/// access-only copy; nothing at all from an access-only copy.
fn check_stored(stage: &Stage, step: &Step, rotations_before: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let label = format!("step {} (mode {})", step.index + 1, step.mode());
    let from_copy = serde_json::from_str::<Value>(step.get("auth-json"))
        .is_ok_and(|a| a["auth_mode"] == "chatgptAuthTokens");
    let rotated = stage.world.openai.rotations() > rotations_before || step.mode() == "login";
    if from_copy {
        let writes = stage.world.github.count("PUT");
        if writes != 0 {
            problems.push(format!(
                "{label}: a job on the access-only copy wrote {writes} time(s)"
            ));
        }
        return problems;
    }
    if !rotated {
        return problems;
    }
    let latest = stage.world.openai.latest().refresh_token;
    if step.get("store") == "artifact" {
        let (Some(artifacts), Some(key)) = (&stage.artifacts, &stage.artifact_key) else {
            problems.push(format!(
                "{label}: `store: artifact` without an artifact key"
            ));
            return problems;
        };
        let Ok(key) = codex_auth::seal::artifact::ArtifactKey::parse(key) else {
            problems.push(format!("{label}: the artifact key does not parse"));
            return problems;
        };
        let name = match step.get("artifact-name") {
            "" => "codex-auth",
            name => name,
        };
        let newest = std::panic::catch_unwind(AssertUnwindSafe(|| {
            artifacts.newest_login(name, &key, REPOSITORY_ID)
        }));
        match newest {
            Ok(login) if login["tokens"]["refresh_token"] == latest.as_str() => {}
            Ok(_) => problems.push(format!("{label}: the newest artifact is not the rotation")),
            Err(_) => problems.push(format!("{label}: no artifact holds the rotation")),
        }
        return problems;
    }
    let name = match step.get("secret-name") {
        "" => "CODEX_AUTH_JSON",
        name => name,
    };
    match stored(stage, name) {
        Some(login) if login["tokens"]["refresh_token"] == latest.as_str() => {
            let access = step.get("access-secret-name");
            if !access.is_empty() && stored(stage, access) != Some(copy_of(&login)) {
                problems.push(format!(
                    "{label}: {access} does not hold the access-only copy of the stored login"
                ));
            }
        }
        _ => problems.push(format!(
            "{label}: the rotated login was not stored in {name} (the latest refresh token is \
             lost)"
        )),
    }
    problems
}

/// Checks one source and runs its jobs; returns its problems, each prefixed with where.
fn check(source: &Source) -> Vec<String> {
    let at = source.at();
    let docs = match YamlLoader::load_from_str(&source.text) {
        Ok(docs) => docs,
        Err(e) => {
            return vec![format!(
                "{}:{}: the yaml does not parse: {e}",
                source.page,
                source.line + e.marker().line().saturating_sub(1)
            )]
        }
    };
    let Some(doc) = docs.first() else {
        return Vec::new();
    };
    if !holds_codex_auth(doc) {
        return Vec::new();
    }
    let workflow = match workflow(doc) {
        Ok(w) => w,
        Err(e) => return vec![format!("{at}: {e}")],
    };
    let mut problems = Vec::new();
    // What the page tells the user to create, and what the job then gets.
    let used = used_names(&source.text);
    let mut provided = BTreeSet::new();
    if source.file {
        let from = match from_line(&source.text) {
            Ok(Some((names, file))) => match written_by(&file) {
                Ok(written) => {
                    for name in names.difference(&written) {
                        problems.push(format!(
                            "its `# From:` line says docs/examples/{file} writes `{name}`, \
                             which no codex-auth step there stores"
                        ));
                    }
                    names
                }
                Err(e) => {
                    problems.push(e);
                    BTreeSet::new()
                }
            },
            Ok(None) => BTreeSet::new(),
            Err(e) => {
                problems.push(e);
                BTreeSet::new()
            }
        };
        match create_line(&source.text) {
            Ok(Some(created)) => {
                let listed: BTreeSet<String> = created.union(&from).cloned().collect();
                for name in used.difference(&listed) {
                    problems.push(format!(
                        "uses `{name}`, which neither its `# Create:` nor its `# From:` line \
                         lists"
                    ));
                }
                for name in listed.difference(&used) {
                    problems.push(format!(
                        "its `# Create:` or `# From:` line lists `{name}`, which it does not use"
                    ));
                }
                provided = used.intersection(&listed).cloned().collect();
            }
            Ok(None) => {
                let list = |prefix: &str| -> Vec<String> {
                    used.iter()
                        .filter_map(|n| n.strip_prefix(prefix).map(str::to_owned))
                        .collect()
                };
                problems.push(format!(
                    "its header does not say what to create: add a line `# Create: secrets {}{}`",
                    list("secrets.").join(", "),
                    match list("vars.").join(", ") {
                        v if v.is_empty() => String::new(),
                        v => format!("; variables {v}"),
                    }
                ));
                provided = used.clone();
            }
            Err(e) => problems.push(e),
        }
    } else {
        let page = prose(&read(&source.page));
        for name in &used {
            let bare = name.split_once('.').map_or(name.as_str(), |(_, n)| n);
            if names_word(&page, bare) {
                provided.insert(name.clone());
            } else {
                problems.push(format!(
                    "uses `{name}`, which the page's prose never names: say what the user \
                     stores in it"
                ));
            }
        }
    }
    for spec in &workflow.jobs {
        if !spec
            .steps
            .iter()
            .any(|s| s["uses"].as_str().and_then(face).is_some())
        {
            continue;
        }
        let entries = match matrix_entries(spec.matrix.as_ref()) {
            Ok(entries) => entries,
            Err(e) => {
                problems.push(format!("job `{}`: {e}", spec.name));
                continue;
            }
        };
        // Every entry resolves; the first one runs.
        for entry in &entries[1..] {
            let context = Context {
                values: &BTreeMap::new(),
                inputs: &workflow.dispatch_inputs,
                matrix: entry,
            };
            for step in &spec.steps {
                if let Some(with) = step["with"].as_hash() {
                    for value in with.values() {
                        if let Err(e) = scalar(value).and_then(|v| context.resolve(&v)) {
                            problems.push(format!("job `{}` matrix {entry:?}: {e}", spec.name));
                        }
                    }
                }
            }
        }
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            run_job(source, &workflow, spec, &provided, &entries[0])
        }));
        match outcome {
            Ok(found) => problems.extend(
                found
                    .into_iter()
                    .map(|p| format!("job `{}`: {p}", spec.name)),
            ),
            Err(panic) => problems.push(format!(
                "job `{}`: the run panicked: {}",
                spec.name,
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default()
            )),
        }
    }
    problems.into_iter().map(|p| format!("{at}: {p}")).collect()
}

#[test]
fn every_example_runs_as_the_page_tells_the_user() {
    let sources = sources();
    // The example files and the README's Quickstart are found.
    assert!(
        sources.iter().filter(|s| s.file).count() >= 8,
        "{sources:?}"
    );
    assert!(
        sources
            .iter()
            .any(|s| s.page == "README.md" && s.text.contains("codex-auth@")),
        "the README's workflow block was not found"
    );
    let next = AtomicUsize::new(0);
    let found: Mutex<Vec<(usize, Vec<String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(source) = sources.get(i) else { break };
                let problems = check(source);
                found.lock().unwrap().push((i, problems));
            });
        }
    });
    let mut found = found.into_inner().unwrap();
    found.sort_by_key(|(i, _)| *i);
    let problems: Vec<String> = found.into_iter().flat_map(|(_, p)| p).collect();
    assert!(
        problems.is_empty(),
        "{} problem(s) in the examples:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

#[test]
fn a_create_line_lists_secrets_and_variables() {
    let text =
        "# A workflow.\n# Create: secrets CODEX_AUTH_JSON, CODEX_AUTH_WRITE_TOKEN; variable \
                CODEX_AUTH_ACCOUNT\nname: x\n# Create: secrets NOT_IN_THE_HEADER\n";
    let names: Vec<String> = create_line(text).unwrap().unwrap().into_iter().collect();
    pretty_assertions::assert_eq!(
        names,
        [
            "secrets.CODEX_AUTH_JSON",
            "secrets.CODEX_AUTH_WRITE_TOKEN",
            "vars.CODEX_AUTH_ACCOUNT"
        ]
    );
    assert_eq!(create_line("name: x\n").unwrap(), None);
    assert!(create_line("# Create: tokens X\n").is_err());
}

#[test]
fn an_expression_the_test_cannot_resolve_fails() {
    let values = BTreeMap::from([("secrets.A".to_owned(), "a".to_owned())]);
    let inputs = BTreeMap::from([("prompt".to_owned(), "p".to_owned())]);
    let matrix = BTreeMap::from([("task".to_owned(), "t".to_owned())]);
    let context = Context {
        values: &values,
        inputs: &inputs,
        matrix: &matrix,
    };
    assert_eq!(
        context
            .resolve("${{ secrets.A }}/${{secrets.B}}/${{ inputs.prompt }}/${{ matrix.task }}")
            .unwrap(),
        "a//p/t"
    );
    assert_eq!(
        context.resolve("${{ github.token }}").unwrap(),
        GITHUB_TOKEN
    );
    for bad in [
        "${{ github.event.pull_request.title }}",
        "${{ inputs.other }}",
        "${{ matrix.other }}",
        "${{ secrets.A",
        "${{ format('{0}', secrets.A) }}",
    ] {
        assert!(context.resolve(bad).is_err(), "{bad} resolved");
    }
}

#[test]
fn yaml_blocks_lose_their_fence_indentation() {
    let page = "text\n\n   ```yaml\n   on: push\n   jobs:\n     a: {}\n   ```\n```sh\nx\n```\n";
    let blocks = yaml_blocks(page);
    assert_eq!(blocks, [(4, "on: push\njobs:\n  a: {}\n".to_owned())]);
    assert_eq!(
        used_names(
            "a: ${{ secrets.X }} ${{ vars.Y || secrets.Z }} secrets.W ${{ secrets.GITHUB_TOKEN }}"
        ),
        BTreeSet::from(["secrets.X", "vars.Y", "secrets.Z"].map(str::to_owned))
    );
}
