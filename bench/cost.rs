//! The action's own cost per job, side by side with `gh secret set`, in one run: see
//! `bench/run`, which runs this on loopback only against the binary the image ships (static,
//! release profile, named by `CODEX_AUTH_BENCH_BINARY`).
//!
//! This harness and the local GitHub it starts are built in the test profile (the tests' build,
//! reused): the server answers more slowly than an optimized one would, and both contenders
//! (codex-auth and `gh`) pay that the same, on the same requests.
//!
//! Against the local GitHub API server of the tests, over HTTPS on 127.0.0.1:
//! - the post stage (validate, seal, write a changed auth.json) and `gh secret set` writing the
//!   same value, interleaved A/B;
//! - the main stage up to where Codex would start (`mode: restore`: restore, validate,
//!   preflight, stale-seed check, hand-over), for a fresh login and for one about to refresh
//!   (which adds the write probe: a probe secret created and deleted);
//! - the same for a task job on an access-only copy (issue 20), whose event payload says the
//!   repository is private: no GitHub request at all (checked, not timed);
//! - the main stage with `codex-version` naming a version the job has no copy of (issue 21):
//!   the fetch from a local npm registry (the real 172 MB linux-x64 package and the registry's
//!   own document of it), the sha512 check and the unpacking, then the same steps; and a later
//!   step of the job that reuses the copy. Fewer runs: each moves 172 MB in and 320 MB out;
//! - requests and body bytes per stage, from the server's log;
//! - peak RSS per process (`/usr/bin/time -f %M`), and the binary's size.
//!
//! Figures go to stdout as a table and to `bench/results.json`. Nothing here asserts a time.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/integration/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use support::github::{self, Access, GitHub};
use support::job::{assert_loopback_only, Job, WRITE_TOKEN};
use support::openai::{OpenAi, Responses};
use support::serve::TestCa;
use support::world::{REPO, SECRET};

/// Timed runs of each contender (the issue asks for at least 30).
const RUNS: usize = 31;
/// Runs under `/usr/bin/time` for peak RSS (not timed).
const RSS_RUNS: usize = 5;
/// Timed runs of the `codex-version` fetch, and its runs for peak RSS.
const FETCH_RUNS: usize = 7;
const FETCH_RSS_RUNS: usize = 2;

struct Bench {
    github: GitHub,
    openai: OpenAi,
    ca_file: PathBuf,
    gh_dir: tempfile::TempDir,
    gh: PathBuf,
}

/// What one kind of process cost.
#[derive(Default)]
struct Cost {
    wall: Vec<Duration>,
    requests: Vec<usize>,
    bytes: Vec<usize>,
    rss_kb: Vec<u64>,
}

impl Cost {
    fn median_ms(&self) -> f64 {
        let mut wall = self.wall.clone();
        wall.sort();
        wall[wall.len() / 2].as_secs_f64() * 1000.0
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let mut wall = self.wall.clone();
        wall.sort();
        let at = ((wall.len() - 1) as f64 * p).round() as usize;
        wall[at].as_secs_f64() * 1000.0
    }

    fn json(&self) -> Value {
        json!({
            "runs": self.wall.len(),
            "median_ms": self.median_ms(),
            "p10_ms": self.percentile_ms(0.1),
            "p90_ms": self.percentile_ms(0.9),
            "requests": self.requests.iter().max(),
            "body_bytes": self.bytes.iter().max(),
            "peak_rss_kb": self.rss_kb.iter().max(),
        })
    }
}

impl Bench {
    fn new() -> Self {
        assert_loopback_only();
        let ca = TestCa::new();
        let github = GitHub::start_tls(&ca);
        github.add_token(WRITE_TOKEN, Access::Write);
        github.add_scope(&github::repo(REPO));
        let gh_dir = tempfile::tempdir().unwrap();
        let ca_file = gh_dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca.ca_pem).unwrap();
        let gh = std::env::var_os("CODEX_AUTH_TEST_GH")
            .map(PathBuf::from)
            .expect("CODEX_AUTH_TEST_GH names Debian's gh: run bench/run");
        Self {
            github,
            openai: OpenAi::start(Responses::Ok),
            ca_file,
            gh_dir,
            gh,
        }
    }

    /// A job for this repository, trusting the test CA, in `mode: restore`.
    fn job(&self, seed: &Value) -> Job {
        self.github
            .set_secret(&github::repo(REPO), SECRET, &seed.to_string());
        // Queued after the seed was written: the stale-seed check passes.
        self.github.add_first_attempt(4242, 60);
        let mut job = Job::new(&self.github, &self.openai);
        job.input("auth-json", seed.to_string())
            .input("token", WRITE_TOKEN)
            .input("mode", "restore")
            .env("SSL_CERT_FILE", self.ca_file.display().to_string());
        job
    }

    /// A task job on `copy`, an access-only copy, in `mode: restore`: no token, no secret.
    fn copy_job(&self, copy: &Value) -> Job {
        let mut job = Job::new(&self.github, &self.openai);
        job.input("auth-json", copy.to_string())
            .input("mode", "restore")
            .env("SSL_CERT_FILE", self.ca_file.display().to_string());
        job
    }

    /// `gh secret set CODEX_AUTH_JSON --repo octo/repo`, the value on stdin, as a GitHub
    /// Enterprise host.
    fn gh_command(&self) -> Command {
        let mut command = Command::new(&self.gh);
        command
            .args(["secret", "set", SECRET, "--repo", REPO])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.gh_dir.path())
            .env("GH_CONFIG_DIR", self.gh_dir.path().join("config"))
            .env("GH_HOST", self.github.host())
            .env("GH_ENTERPRISE_TOKEN", WRITE_TOKEN)
            .env("SSL_CERT_FILE", &self.ca_file)
            .env("GH_NO_UPDATE_NOTIFIER", "1")
            .env("GH_PROMPT_DISABLED", "1")
            .env("NO_COLOR", "1");
        command
    }

    /// Runs `command` with `stdin`, returning its wall time, the requests it sent and their
    /// body bytes (request and response).
    fn measure(&self, mut command: Command, stdin: &str) -> (Duration, usize, usize) {
        let before = self.github.requests().len();
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = command.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        let wall = started.elapsed();
        assert!(
            output.status.success(),
            "{:?} failed:\n{}\n{}",
            command.get_program(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let sent = &self.github.requests()[before..];
        let bytes = sent.iter().map(|r| r.body.len() + r.response.len()).sum();
        (wall, sent.len(), bytes)
    }
}

/// Peak RSS of `command` in KiB, from GNU time.
fn peak_rss_kb(command: &Command, stdin: &str) -> u64 {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut timed = Command::new("/usr/bin/time");
    timed
        .args(["-f", "%M", "-o"])
        .arg(out.path())
        .arg(command.get_program())
        .args(command.get_args())
        .env_clear();
    for (name, value) in command.get_envs() {
        if let Some(value) = value {
            timed.env(name, value);
        }
    }
    if let Some(dir) = command.get_current_dir() {
        timed.current_dir(dir);
    }
    let mut child = timed
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("/usr/bin/time (Debian's time package): run bench/run");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    std::fs::read_to_string(out.path())
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A new login (other tokens than the job's seed) in the job's CODEX_HOME, as Codex leaves
/// it after a refresh; returns it compact, as a secret holds it.
fn refreshed_login(bench: &Bench, job: &Job) -> String {
    let login = bench.openai.seed(false);
    let path = job.codex_home().join("auth.json");
    std::fs::write(&path, serde_json::to_string_pretty(&login).unwrap()).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    login.to_string()
}

/// The main stage until Codex would start, a fresh job each run; `stale`: a login Codex
/// refreshes at once.
fn main_until_codex(bench: &Bench, stale: bool) -> Cost {
    let empty = BTreeMap::new();
    let mut cost = Cost::default();
    for _ in 0..RUNS {
        let seed = bench.openai.seed(stale);
        let mut job = bench.job(&seed);
        let (wall, requests, bytes) = bench.measure(job.stage_command("main", &empty), "");
        cost.wall.push(wall);
        cost.requests.push(requests);
        cost.bytes.push(bytes);
    }
    for _ in 0..RSS_RUNS {
        let seed = bench.openai.seed(stale);
        let mut job = bench.job(&seed);
        cost.rss_kb
            .push(peak_rss_kb(&job.stage_command("main", &empty), ""));
    }
    cost
}

/// A fresh login's access-only copy, as the keeper writes it.
fn access_only_copy(bench: &Bench) -> Value {
    let mut copy = bench.openai.seed(false);
    copy["auth_mode"] = "chatgptAuthTokens".into();
    copy["tokens"]["refresh_token"] = "".into();
    copy
}

/// A task job's main stage on an access-only copy (`mode: restore`), a fresh job each run.
/// The job's event payload says the repository is private, so it sends GitHub nothing.
fn main_on_a_copy(bench: &Bench) -> Cost {
    let empty = BTreeMap::new();
    let mut cost = Cost::default();
    for _ in 0..RUNS {
        let mut job = bench.copy_job(&access_only_copy(bench));
        let (wall, requests, bytes) = bench.measure(job.stage_command("main", &empty), "");
        assert_eq!(requests, 0, "a task job on a copy sent GitHub a request");
        cost.wall.push(wall);
        cost.requests.push(requests);
        cost.bytes.push(bytes);
    }
    for _ in 0..RSS_RUNS {
        let mut job = bench.copy_job(&access_only_copy(bench));
        cost.rss_kb
            .push(peak_rss_kb(&job.stage_command("main", &empty), ""));
    }
    cost
}

/// The main stage (`mode: restore`) with `codex-version` naming the pinned version and no
/// Codex on PATH, from `registry`: with `reuse`, a later step of a job that already fetched it.
fn main_with_a_named_version(
    bench: &Bench,
    registry: &support::npm::Registry,
    reuse: bool,
) -> Cost {
    let empty = BTreeMap::new();
    let version = support::npm::pinned_version();
    let job = || {
        let mut job = bench.job(&bench.openai.seed(false));
        job.without_codex_on_path()
            .input("codex-version", version.as_str())
            .env("npm_config_registry", registry.url());
        if reuse {
            job.main().assert_ok();
        }
        job
    };
    let mut cost = Cost::default();
    for _ in 0..FETCH_RUNS {
        let mut job = job();
        let downloads = registry.downloads();
        let (wall, requests, bytes) = bench.measure(job.stage_command("main", &empty), "");
        assert_eq!(registry.downloads(), downloads + usize::from(!reuse));
        cost.wall.push(wall);
        cost.requests.push(requests);
        cost.bytes.push(bytes);
    }
    for _ in 0..FETCH_RSS_RUNS {
        let mut job = job();
        cost.rss_kb
            .push(peak_rss_kb(&job.stage_command("main", &empty), ""));
    }
    cost
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let bench = Bench::new();
    let binary = support::job::codex_auth();

    // Main stage up to where Codex would start: a fresh job each run, for a fresh login and
    // for one about to refresh (the write probe comes in).
    let main = main_until_codex(&bench, false);
    let refreshing = main_until_codex(&bench, true);
    // A task job's main stage on an access-only copy.
    let on_a_copy = main_on_a_copy(&bench);
    // The same with a version of Codex the job fetches, and a later step that reuses it.
    let registry = support::npm::Registry::start();
    let fetching = main_with_a_named_version(&bench, &registry, false);
    let reusing = main_with_a_named_version(&bench, &registry, true);

    // Post stage and gh, interleaved (ABAB, then BABA), writing the same refreshed value.
    let seed = bench.openai.seed(false);
    let mut job = bench.job(&seed);
    let restored = job.main();
    restored.assert_ok();
    let (mut post, mut gh) = (Cost::default(), Cost::default());
    for i in 0..RUNS {
        let value = refreshed_login(&bench, &job);
        let mut post_command = Some(job.stage_command("post", &restored.state));
        let order = match i % 2 {
            0 => [true, false],
            _ => [false, true],
        };
        for is_post in order {
            let (cost, command, stdin) = match is_post {
                true => (&mut post, post_command.take().unwrap(), ""),
                false => (&mut gh, bench.gh_command(), value.as_str()),
            };
            let (wall, requests, bytes) = bench.measure(command, stdin);
            cost.wall.push(wall);
            cost.requests.push(requests);
            cost.bytes.push(bytes);
        }
        // The same login, whoever wrote last (codex-auth writes its own compact form).
        let stored = bench
            .github
            .secret(&github::repo(REPO), SECRET)
            .unwrap()
            .value;
        assert_eq!(
            serde_json::from_str::<Value>(&stored).unwrap(),
            serde_json::from_str::<Value>(&value).unwrap()
        );
    }
    for _ in 0..RSS_RUNS {
        let value = refreshed_login(&bench, &job);
        post.rss_kb
            .push(peak_rss_kb(&job.stage_command("post", &restored.state), ""));
        gh.rss_kb.push(peak_rss_kb(&bench.gh_command(), &value));
    }

    let binary_bytes = std::fs::metadata(&binary).unwrap().len();
    let ratio = gh.median_ms() / post.median_ms();
    let results = json!({
        "binary": binary.display().to_string(),
        "binary_bytes": binary_bytes,
        "main_until_codex": main.json(),
        "main_until_codex_about_to_refresh": refreshing.json(),
        "main_until_codex_access_only_copy": on_a_copy.json(),
        "main_until_codex_codex_version_fetched": fetching.json(),
        "main_until_codex_codex_version_reused": reusing.json(),
        "post": post.json(),
        "gh_secret_set": gh.json(),
        "gh_over_post_median": ratio,
        "gh_version": Command::new(&bench.gh).arg("--version").output().ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").to_owned()),
    });
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results).unwrap()).unwrap();

    let row = |name: &str, cost: &Cost| {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {} | {} | {:.1} |",
            cost.median_ms(),
            cost.percentile_ms(0.1),
            cost.percentile_ms(0.9),
            cost.requests.iter().max().unwrap(),
            cost.bytes.iter().max().unwrap(),
            *cost.rss_kb.iter().max().unwrap() as f64 / 1024.0,
        );
    };
    println!();
    println!(
        "| {RUNS} runs each ({FETCH_RUNS} with `codex-version`), HTTPS on loopback | median ms | p10 ms | p90 ms | requests | body bytes | peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|");
    row(
        "main stage until Codex (`mode: restore`), fresh login",
        &main,
    );
    row(
        "main stage until Codex, login about to refresh (write probe)",
        &refreshing,
    );
    row(
        "a user job's main stage (access-only copy, `mode: restore`)",
        &on_a_copy,
    );
    row(
        "main stage until Codex, `codex-version` fetched (172 MB from a loopback registry, sha512, unpack)",
        &fetching,
    );
    row(
        "main stage until Codex, `codex-version` reused (a later step of the job)",
        &reusing,
    );
    println!(
        "`codex-version`, extra per job: {:.0} ms to fetch, check and unpack; {:.0} ms for a later step",
        fetching.median_ms() - main.median_ms(),
        reusing.median_ms() - main.median_ms()
    );
    row("post stage: public key + seal + write", &post);
    row("`gh secret set`", &gh);
    println!();
    println!("gh secret set / post stage, median wall: {ratio:.1}x");
    println!(
        "release binary: {binary_bytes} bytes ({:.1} MiB)",
        binary_bytes as f64 / 1_048_576.0
    );
    println!("written to {}", path.display());
}
