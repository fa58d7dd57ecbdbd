//! A real GitHub client against the local GitHub: Debian's `gh` (docs/sign-in.md seeds the
//! secret with `gh secret set`) talks to it over HTTPS as to a GitHub Enterprise Server
//! host. The server must open the sealed boxes gh makes (Go's `x/crypto/nacl/box`), as GitHub
//! does; then the action restores what gh wrote, reads the metadata gh's write left, and
//! writes the refreshed login back over the same API, which gh reads back.
//!
//! gh builds the REST base of an enterprise host as `https://HOST/api/v3/` and takes
//! `GH_ENTERPRISE_TOKEN` for it (cli/cli `internal/ghinstance/host.go`, go-gh `pkg/auth`);
//! `HOST` may carry a port. Go's TLS stack reads `SSL_CERT_FILE`, and so does the action's
//! (rustls with the native roots).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use jiff::{SignedDuration, Timestamp};
use pretty_assertions::assert_eq;
use serde_json::Value;
use tempfile::TempDir;

use crate::support::github::{self, Access, GitHub, StoredSecret};
use crate::support::job::{assert_loopback_only, Job, WRITE_TOKEN};
use crate::support::openai::{OpenAi, Responses};
use crate::support::openapi;
use crate::support::serve::TestCa;
use crate::support::world::{annotation, REPO, SECRET};

/// Debian's `gh`, which `scripts/test` installs and names in `CODEX_AUTH_TEST_GH`.
fn gh_binary() -> PathBuf {
    let path = std::env::var_os("CODEX_AUTH_TEST_GH").map(PathBuf::from);
    match path {
        Some(path) if path.is_file() => path,
        _ => panic!(
            "CODEX_AUTH_TEST_GH must name the gh binary (now {path:?}): run the tests with \
             scripts/test, which installs Debian's gh and sets it"
        ),
    }
}

/// `gh`, configured for the local GitHub only: its own config directory and home, the local
/// server as its (enterprise) host, the test CA as its only trust anchor, no prompt, no update
/// check, and nothing else from the test's environment (no `GH_TOKEN`/`GITHUB_TOKEN`).
struct Gh {
    bin: PathBuf,
    dir: TempDir,
    host: String,
    token: String,
}

impl Gh {
    fn new(github: &GitHub, ca: &TestCa, token: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("config")).unwrap();
        fs::write(dir.path().join("ca.pem"), &ca.ca_pem).unwrap();
        Self {
            bin: gh_binary(),
            dir,
            host: github.host(),
            token: token.to_owned(),
        }
    }

    /// Runs `gh ARGS` with `stdin`, giving up after a minute.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let root = self.dir.path();
        let mut child = Command::new(&self.bin)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", root)
            .env("GH_CONFIG_DIR", root.join("config"))
            .env("GH_HOST", &self.host)
            .env("GH_ENTERPRISE_TOKEN", &self.token)
            .env("SSL_CERT_FILE", root.join("ca.pem"))
            .env("GH_NO_UPDATE_NOTIFIER", "1")
            .env("GH_PROMPT_DISABLED", "1")
            .env("NO_COLOR", "1")
            .current_dir(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let id = child.id();
        let (done, waiting) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(child.wait_with_output());
        });
        match waiting.recv_timeout(Duration::from_secs(60)) {
            Ok(output) => output.unwrap(),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &id.to_string()])
                    .status();
                panic!("gh {args:?} did not finish within a minute");
            }
        }
    }

    /// Runs `gh ARGS` and fails unless it exits 0; returns its standard output.
    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "gh {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `gh secret set NAME TARGET…` with the value on standard input, one line as
    /// `jq -c . auth.json | gh secret set …` sends it (gh drops the final newline).
    fn secret_set(&self, name: &str, target: &[&str], value: &str) {
        let mut args = vec!["secret", "set", name];
        args.extend_from_slice(target);
        self.ok(&args, &format!("{value}\n"));
    }
}

/// A local GitHub over HTTPS with the write token and one scope, and a gh talking to it.
fn github_and_gh(scope: &str) -> (GitHub, Gh) {
    assert_loopback_only();
    let ca = TestCa::new();
    let github = GitHub::start_tls(&ca);
    github.add_token(WRITE_TOKEN, Access::Write);
    github.add_scope(scope);
    let gh = Gh::new(&github, &ca, WRITE_TOKEN);
    (github, gh)
}

/// Method and path of each request since the `skip`th.
fn requests_since(github: &GitHub, skip: usize) -> Vec<(String, String)> {
    github
        .requests()
        .into_iter()
        .skip(skip)
        .map(|r| (r.method, github::normalize_probe(&r.path)))
        .collect()
}

fn request(method: &str, path: &str) -> (String, String) {
    (method.to_owned(), path.to_owned())
}

/// Checks one `gh secret set`, given the requests it sent (`GET …/public-key`, `PUT …/NAME`):
/// the server opened exactly `value`, sealed for the key it handed out, and answered `status`.
fn assert_written_by_gh(sent: &[github::Request], secret: &StoredSecret, value: &str, status: u16) {
    let [get_key, put] = sent else {
        panic!("gh sent {sent:?}")
    };
    assert_eq!((get_key.status, put.status), (200, status));
    let key: Value = serde_json::from_slice(&get_key.response).unwrap();
    let body: Value = serde_json::from_slice(&put.body).unwrap();
    assert_eq!(secret.value, value, "the server opened a different value");
    assert_eq!(body["key_id"], key["key_id"]);
    assert_eq!(secret.key_id, key["key_id"].as_str().unwrap());
    // A sealed box: an ephemeral public key and a MAC, 48 bytes, around the value.
    let sealed = STANDARD
        .decode(body["encrypted_value"].as_str().unwrap())
        .unwrap();
    assert_eq!(sealed.len(), value.len() + 48);
}

fn stamp(value: &str) -> Timestamp {
    value.parse().unwrap()
}

#[test]
fn gh_secret_set_writes_a_repository_secret_the_server_opens() {
    let scope = github::repo(REPO);
    let (github, gh) = github_and_gh(&scope);
    let openai = OpenAi::start(Responses::Ok);
    let seed = openai.seed(false).to_string();

    gh.secret_set(SECRET, &["--repo", REPO], &seed);
    let path = format!("/repos/{REPO}/actions/secrets/{SECRET}");
    let key_path = format!("/repos/{REPO}/actions/secrets/public-key");
    assert_eq!(
        requests_since(&github, 0),
        [request("GET", &key_path), request("PUT", &path)]
    );
    let created = github.secret(&scope, SECRET).unwrap();
    assert_written_by_gh(&github.requests(), &created, &seed, 201);
    assert_eq!(created.name, SECRET);
    assert_eq!(created.created_at, created.updated_at);
    let age = Timestamp::now().duration_since(stamp(&created.updated_at));
    assert!(age.abs() < SignedDuration::from_secs(60), "{age}");

    // A second write updates the same secret: 204, a later updated_at, the same created_at.
    let newer = openai.seed(false).to_string();
    gh.secret_set(SECRET, &["--repo", REPO], &newer);
    assert_eq!(
        requests_since(&github, 2),
        [request("GET", &key_path), request("PUT", &path)]
    );
    let updated = github.secret(&scope, SECRET).unwrap();
    assert_written_by_gh(&github.requests()[2..], &updated, &newer, 204);
    assert_eq!(updated.created_at, created.created_at);
    assert!(stamp(&updated.updated_at) > stamp(&created.updated_at));
    // Every request and answer is what GitHub's OpenAPI description allows.
    openapi::assert_conforms(&github.requests());
}

#[test]
fn gh_secret_set_writes_an_environment_secret_the_server_opens() {
    let scope = github::env(REPO, "production");
    let (github, gh) = github_and_gh(&scope);
    let seed = OpenAi::start(Responses::Ok).seed(false).to_string();

    gh.secret_set(SECRET, &["--repo", REPO, "--env", "production"], &seed);
    let base = format!("/repos/{REPO}/environments/production/secrets");
    assert_eq!(
        requests_since(&github, 0),
        [
            request("GET", &format!("{base}/public-key")),
            request("PUT", &format!("{base}/{SECRET}")),
        ]
    );
    let stored = github.secret(&scope, SECRET).unwrap();
    assert_written_by_gh(&github.requests(), &stored, &seed, 201);
    assert_eq!(stored.created_at, stored.updated_at);
    assert_eq!(stored.visibility, None);
    // Every request and answer is what GitHub's OpenAPI description allows.
    openapi::assert_conforms(&github.requests());
}

#[test]
fn gh_secret_set_writes_a_private_organization_secret_the_server_opens() {
    let scope = github::org("octo");
    let (github, gh) = github_and_gh(&scope);
    let seed = OpenAi::start(Responses::Ok).seed(false).to_string();

    gh.secret_set(SECRET, &["--org", "octo", "--visibility", "private"], &seed);
    assert_eq!(
        requests_since(&github, 0),
        [
            request("GET", "/orgs/octo/actions/secrets/public-key"),
            request("PUT", &format!("/orgs/octo/actions/secrets/{SECRET}")),
        ]
    );
    let stored = github.secret(&scope, SECRET).unwrap();
    assert_written_by_gh(&github.requests(), &stored, &seed, 201);
    assert_eq!(stored.visibility.as_deref(), Some("private"));
    assert!(stored.selected_repository_ids.is_empty());
    // Every request and answer is what GitHub's OpenAPI description allows.
    openapi::assert_conforms(&github.requests());
}

/// A job of the action against the HTTPS GitHub, trusting the test CA as a runner trusts its
/// system store, with `auth-json` holding what the secret holds (as the runner passes it).
fn job(github: &GitHub, openai: &OpenAi, ca_file: &Path, run_id: u64) -> Job {
    let value = github.secret(&github::repo(REPO), SECRET).unwrap().value;
    let mut job = Job::new(github, openai);
    job.input("auth-json", value)
        .input("token", WRITE_TOKEN)
        .env("SSL_CERT_FILE", ca_file.display().to_string())
        .env("GITHUB_RUN_ID", run_id.to_string());
    job
}

#[test]
fn the_action_restores_what_gh_wrote_and_gh_reads_back_its_write() {
    assert_loopback_only();
    let ca = TestCa::new();
    let github = GitHub::start_tls(&ca);
    github.add_token(WRITE_TOKEN, Access::Write);
    let scope = github::repo(REPO);
    github.add_scope(&scope);
    let openai = OpenAi::start(Responses::Ok);
    let gh = Gh::new(&github, &ca, WRITE_TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("github-ca.pem");
    fs::write(&ca_file, &ca.ca_pem).unwrap();

    // A seeded login whose access token has expired, so Codex refreshes it.
    let seed = openai.seed(true);
    gh.secret_set(SECRET, &["--repo", REPO], &seed.to_string());
    let written = github.secret(&scope, SECRET).unwrap();
    assert_eq!(written.value, seed.to_string());

    // A run queued before gh's write received an older value: the action must see gh's
    // updated_at and stop before Codex.
    github.add_first_attempt(4242, -60);
    let mut early = job(&github, &openai, &ca_file, 4242);
    let refused = early.main();
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    let message = annotation(&refused, "Secret changed after this run was queued");
    assert!(
        message.contains(&format!("was written at {}", written.updated_at)),
        "{message}"
    );
    assert!(early.codex_calls().is_empty());
    assert_eq!(openai.rotations(), 0);

    // A run queued after gh's write: restore what gh wrote, run Codex, write the refresh back.
    github.add_first_attempt(4243, 60);
    let before = github.requests().len();
    let mut job = job(&github, &openai, &ca_file, 4243);
    let seen = dir.path().join("auth-codex-saw.json");
    // Codex runs as nobody here (the tests run as root, and Codex never does).
    let mut perms = fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o777);
    fs::set_permissions(dir.path(), perms).unwrap();
    job.wrap_codex(&format!(
        "[ -e '{seen}' ] || cp \"$CODEX_HOME/auth.json\" '{seen}'\nexec \"$REAL\" \"$@\"",
        seen = seen.display()
    ));
    let main = job.main();
    main.assert_ok();
    assert_eq!(main.output("final-message"), "OK");
    assert_eq!(main.output("refreshed"), "true");
    assert_eq!(main.output("persisted"), "true");
    assert_eq!(job.task_calls().len(), 1);
    let restored: Value = serde_json::from_str(&fs::read_to_string(&seen).unwrap()).unwrap();
    assert_eq!(restored, seed, "Codex must start from the login gh wrote");

    let path = format!("/repos/{REPO}/actions/secrets/{SECRET}");
    assert_eq!(
        requests_since(&github, before),
        [
            request("GET", &format!("/repos/{REPO}/actions/secrets/public-key")),
            request("GET", &path),
            request("GET", &format!("/repos/{REPO}/actions/runs/4243")),
            // The write probe: the access token has expired, so Codex refreshes.
            request(
                "PUT",
                &format!("/repos/{REPO}/actions/secrets/CODEX_AUTH_PROBE_*")
            ),
            request(
                "DELETE",
                &format!("/repos/{REPO}/actions/secrets/CODEX_AUTH_PROBE_*")
            ),
            request("GET", &path),
            request("PUT", &path),
        ]
    );
    let put = github.requests().pop().unwrap();
    assert_eq!(put.status, 204, "an update of the secret gh created");
    let stored = github.secret(&scope, SECRET).unwrap();
    let refreshed: Value = serde_json::from_str(&stored.value).unwrap();
    let latest = openai.latest();
    assert_eq!(
        refreshed["tokens"]["refresh_token"],
        latest.refresh_token.as_str()
    );
    assert_ne!(
        refreshed["tokens"]["refresh_token"],
        seed["tokens"]["refresh_token"]
    );
    assert_eq!(stored.key_id, written.key_id);
    assert_eq!(stored.created_at, written.created_at);
    assert!(stamp(&stored.updated_at) > stamp(&written.updated_at));

    let post = job.post(&main);
    post.assert_ok();
    assert_eq!(github.writes(SECRET), 2, "post has nothing left to write");

    // gh reads back the metadata of the action's write.
    let metadata: Value = serde_json::from_str(&gh.ok(
        &["api", &format!("repos/{REPO}/actions/secrets/{SECRET}")],
        "",
    ))
    .unwrap();
    assert_eq!(
        metadata,
        serde_json::json!({
            "name": SECRET,
            "created_at": written.created_at,
            "updated_at": stored.updated_at,
        })
    );
    // Every request and answer is what GitHub's OpenAPI description allows.
    openapi::assert_conforms(&github.requests());
}
