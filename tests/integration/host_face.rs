//! The host face (`host/`, a node24 action) end to end on this Linux machine, as the runner
//! runs a JavaScript action: `node main.js`, later steps, `node post.js`, with `INPUT_*`,
//! `GITHUB_STATE` and the tool cache. It downloads the binary from a local release server (the
//! binary these tests built, pinned in a checksums.json written for it, as the release commit
//! pins the released ones), and the real Codex CLI runs in a later host step.
//!
//! How the release server differs from GitHub's: plain HTTP on 127.0.0.1 (HTTPS with the
//! tests' own CA behind the proxy, [`Release::behind`]), no redirect to another host
//! (host/test/ covers the redirect), and the binary is this build's, not a release's static
//! musl one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use pretty_assertions::assert_eq;
use sha2::{Digest as _, Sha256};

use crate::support::job::Job;
use crate::support::openai::Responses;
use crate::support::proxy::{Proxy, ProxyOptions, Seen};
use crate::support::serve::{serve, Server, TestCa};
use crate::support::world::{annotation, World};

const VERSION: &str = "0.0.1-test";
const REPOSITORY: &str = "octo/codex-auth";
const TARGET: &str = "x86_64-unknown-linux-musl";

/// The host face as a release commit has it: `host/`'s scripts and a checksums.json pinning
/// the binary the release server hands out.
pub(crate) struct Release {
    action: tempfile::TempDir,
    server: Server,
    /// GITHUB_SERVER_URL for the jobs that run it.
    url: String,
}

impl Release {
    /// A release on a plain-HTTP server, at http://127.0.0.1:PORT.
    pub(crate) fn new() -> Self {
        Self::serve(None)
    }

    /// A release on an HTTPS server with `ca`'s certificate, known to the jobs as
    /// `https://{name}`: a made-up name that only a proxy mapping it to [`Release::addr`]
    /// resolves.
    pub(crate) fn behind(name: &str, ca: &TestCa) -> Self {
        let mut release = Self::serve(Some(ca));
        release.url = format!("https://{name}");
        release
    }

    /// Where the release server listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    fn serve(ca: Option<&TestCa>) -> Self {
        let binary = std::fs::read(env!("CARGO_BIN_EXE_codex-auth")).unwrap();
        let name = format!("codex-auth-{VERSION}-{TARGET}");
        let action = tempfile::tempdir().unwrap();
        let host = Path::new(env!("CARGO_MANIFEST_DIR")).join("host");
        for file in ["lib.js", "main.js", "post.js", "action.yml"] {
            std::fs::copy(host.join(file), action.path().join(file)).unwrap();
        }
        let sha256: String = Sha256::digest(&binary)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(
            action.path().join("checksums.json"),
            serde_json::json!({
                "version": VERSION,
                "assets": {TARGET: {"name": name, "sha256": sha256}},
            })
            .to_string(),
        )
        .unwrap();
        let route = format!("/{REPOSITORY}/releases/download/v{VERSION}/{name}");
        let router = Router::new().route(&route, get(move || async move { binary.clone() }));
        let server = serve(router, ca);
        let scheme = if ca.is_some() { "https" } else { "http" };
        Self {
            url: format!("{scheme}://127.0.0.1:{}", server.addr.port()),
            action,
            server,
        }
    }

    fn job(&self, world: &World, seed: &serde_json::Value) -> Job {
        let mut job = world.job(seed);
        self.runs(&mut job);
        job
    }

    /// Makes `job` run the host face of this release, as a step `uses:` it.
    pub(crate) fn runs(&self, job: &mut Job) {
        job.host_face(self.action.path())
            .env("GITHUB_SERVER_URL", self.url.clone())
            .env("GITHUB_ACTION_REPOSITORY", REPOSITORY);
    }
}

#[test]
fn restore_on_the_host_keeps_what_a_later_step_refreshed() {
    let world = World::new(Responses::Ok);
    let release = Release::new();
    let seed = world.openai.seed(true);
    let mut job = release.job(&world, &seed);
    job.input("mode", "restore");
    // The host face's CODEX_HOME is job-scoped, under RUNNER_TEMP; the config there points
    // Codex at the local OpenAI, as the job's own config.toml would at OpenAI.
    let home = job.runner_temp().join("codex-auth/codex-home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("config.toml"), world.openai.codex_config()).unwrap();

    let main = job.main();
    main.assert_ok();
    assert!(
        main.stdout.contains(&format!(
            "Installed codex-auth {VERSION} ({TARGET}) in the tool cache"
        )),
        "{}",
        main.stdout
    );
    let binary: PathBuf = main.state["codex_auth_binary"].clone().into();
    assert!(binary.starts_with(job.home.parent().unwrap().parent().unwrap()));
    // A job-scoped CODEX_HOME, exported for the later steps.
    let exported = crate::support::job::parse_file_command(&main.env_file);
    assert_eq!(exported["CODEX_HOME"], home.display().to_string());
    assert!(home.join("auth.json").exists());
    assert_eq!(world.writes(), 0);

    // A later step runs the real Codex on the host: it refreshes the login.
    let step = job.host_step_codex(&main.env_file, 0);
    assert!(
        step.status.success(),
        "{}",
        String::from_utf8_lossy(&step.stderr)
    );
    assert!(world.openai.rotations() >= 1);

    let post = job.post(&main);
    post.assert_ok();
    world.assert_secret_holds_the_latest_login();
    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn a_mode_the_host_cannot_keep_safe_is_refused_before_any_download() {
    let world = World::new(Responses::Ok);
    let release = Release::new();
    let seed = world.openai.seed(true);
    for mode in ["exec", "refresh", "login"] {
        let mut job = release.job(&world, &seed);
        job.input("mode", mode);
        let main = job.main();
        assert_eq!(main.code, 1, "{mode}: {}", main.stdout);
        let message = annotation(&main, "Mode not available on the host");
        assert!(
            message.contains(&format!("`mode: {mode}` is not available in the host face")),
            "{message}"
        );
        assert!(job.codex_calls().is_empty());
        let post = job.post(&main);
        post.assert_ok();
    }
    assert_eq!(world.openai.rotations(), 0);
    assert_eq!(world.github.requests().len(), 0, "nothing reached GitHub");
}

/// An input error in the host face stops main under its own title, and post, which finds
/// only the host face's own state (the binary it installed), does not repeat it: `keep: true`
/// with the face's job-scoped CODEX_HOME, which is inside RUNNER_TEMP.
#[test]
fn an_input_error_in_the_host_face_is_not_repeated_by_post() {
    let world = World::new(Responses::Ok);
    let release = Release::new();
    let seed = world.openai.seed(true);
    let mut job = release.job(&world, &seed);
    job.input("mode", "restore").input("keep", "true");
    let main = job.main();
    assert_eq!(main.code, 1, "{}", main.stdout);
    let message = annotation(&main, "Nothing to keep in RUNNER_TEMP");
    assert!(message.contains("is inside RUNNER_TEMP"), "{message}");
    assert!(main.state.contains_key("codex_auth_binary"));
    let post = job.post(&main);
    post.assert_ok();
    assert!(
        !post.stdout.contains("::error"),
        "post repeated the error:\n{}",
        post.stdout
    );
    assert!(
        post.stdout
            .contains("The main stage stopped before restoring auth.json: nothing to write back."),
        "{}",
        post.stdout
    );
    assert_eq!(world.github.requests().len(), 0, "nothing reached GitHub");
    assert_eq!(world.openai.rotations(), 0);
}

#[test]
fn a_named_codex_is_fetched_into_the_tool_cache_and_put_on_the_later_steps_path() {
    let world = World::new(Responses::Ok);
    let release = Release::new();
    let registry = crate::support::npm::Registry::start();
    let version = crate::support::npm::pinned_version();
    let seed = world.openai.seed(false);
    let mut job = release.job(&world, &seed);
    job.without_codex_on_path()
        .input("mode", "restore")
        .input("codex-version", version.as_str())
        .env("npm_config_registry", registry.url());
    let main = job.main();
    main.assert_ok();
    // The runner's tool cache (Job::host_face), not RUNNER_TEMP: kept for later jobs of a
    // persistent runner.
    let tool_cache = job
        .home
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("tool-cache");
    let bin = tool_cache
        .join("codex-auth-codex")
        .join(&version)
        .join("linux-x64/bin");
    assert_eq!(main.path_file.trim(), bin.display().to_string());
    let ran = std::process::Command::new(bin.join("codex"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout).trim(),
        format!("codex-cli {version}")
    );
    let post = job.post(&main);
    post.assert_ok();
    assert!(bin.join("codex").is_file(), "the tool cache is kept");
    assert_eq!(registry.downloads(), 1);
}

/// Behind a company proxy, the only route to the release (a made-up name the proxy alone
/// resolves, over TLS with a CA the runner trusts through SSL_CERT_FILE): the host face
/// downloads through it with the proxy URL's credentials; without them, or with wrong ones, it
/// fails naming the proxy and its variable, never the password; and without the proxy it
/// cannot reach the release at all. The binary it runs sees the same variables, and reaches
/// the local GitHub (on loopback) directly.
#[test]
fn the_host_face_downloads_through_the_runners_proxy() {
    const NAME: &str = "releases.proxied.test";
    const PASSWORD: &str = "proxy-p@ss word";
    let world = World::new(Responses::Ok);
    let ca = TestCa::with_names(&[NAME]);
    let release = Release::behind(NAME, &ca);
    let proxy = Proxy::start(ProxyOptions {
        hosts: [(NAME.to_owned(), release.addr())].into(),
        credentials: Some(("me".to_owned(), PASSWORD.to_owned())),
        ..ProxyOptions::default()
    });
    let trusted = tempfile::tempdir().unwrap();
    let ca_file = trusted.path().join("company-ca.pem");
    std::fs::write(&ca_file, &ca.ca_pem).unwrap();
    let seed = world.openai.seed(false);
    let job = |proxy_url: Option<String>| {
        let mut job = release.job(&world, &seed);
        job.input("mode", "restore")
            .env("SSL_CERT_FILE", ca_file.display().to_string());
        if let Some(url) = proxy_url {
            job.env("HTTPS_PROXY", url);
        }
        job
    };

    let mut through = job(Some(proxy.url()));
    let main = through.main();
    main.assert_ok();
    assert!(
        main.stdout.contains(&format!(
            "Installed codex-auth {VERSION} ({TARGET}) in the tool cache"
        )),
        "{}",
        main.stdout
    );
    let authorization = format!("Basic {}", STANDARD.encode(format!("me:{PASSWORD}")));
    assert_eq!(
        proxy.seen(),
        vec![Seen {
            method: "CONNECT".to_owned(),
            target: format!("{NAME}:443"),
            proxy_authorization: Some(authorization),
            status: 200,
            inside: Vec::new(),
        }],
        "one tunnel, for the download; the binary went to the local GitHub directly"
    );
    let post = through.post(&main);
    post.assert_ok();
    world.assert_no_secret_leaked(&[&main, &post]);
    // As the proxy URL holds it.
    let encoded = utf8_percent_encode(PASSWORD, NON_ALPHANUMERIC).to_string();
    for run in [&main, &post] {
        let visible = run.visible();
        assert!(
            !visible.contains(PASSWORD) && !visible.contains(&encoded),
            "the proxy password leaked:\n{visible}"
        );
    }

    let shown = format!("http://{}", proxy.addr);
    for (url, password) in [
        (shown.clone(), None),
        (
            format!("http://me:wrong-password@{}", proxy.addr),
            Some("wrong-password"),
        ),
    ] {
        let main = job(Some(url)).main();
        assert_eq!(main.code, 1, "{}", main.stdout);
        let message = annotation(&main, "Cannot download codex-auth");
        assert!(
            message.contains(&format!(
                "GET https://{NAME}/{REPOSITORY}/releases/download/v{VERSION}/codex-auth-{VERSION}-{TARGET} \
                 through the proxy {shown} (HTTPS_PROXY) failed: proxy answered 407 to CONNECT"
            )),
            "{message}"
        );
        assert!(
            message.contains(&format!(
                "that the proxy {shown} (HTTPS_PROXY) lets the runner reach https://{NAME}"
            )),
            "{message}"
        );
        if let Some(password) = password {
            assert!(!main.visible().contains(password), "{}", main.visible());
        }
    }

    // No proxy: the name resolves nowhere.
    let direct = job(None).main();
    assert_eq!(direct.code, 1, "{}", direct.stdout);
    let message = annotation(&direct, "Cannot download codex-auth");
    assert!(
        message.starts_with(&format!("GET https://{NAME}/")) && !message.contains("proxy"),
        "{message}"
    );
    assert_eq!(
        proxy.seen().len(),
        1 + 2 * 3,
        "three attempts of each failing run"
    );
}
