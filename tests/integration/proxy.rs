//! A runner whose only way to GitHub is the company's forward proxy: the local proxy
//! (`support::proxy`) is the only route to the local GitHub, whose API URL names a host that
//! resolves nowhere (the tests run in a loopback-only network namespace with no DNS: going
//! direct fails at the name), and it may inspect TLS with a CA of its own.
//!
//! How this differs from a runner behind a real proxy: the container runs with
//! `--network host` (as every container test here does) and reaches the proxy by a name
//! `--add-host` maps to 127.0.0.1, where GitHub's runner puts the container on a bridge network
//! of its own; the proxy resolves only the names it is given; Codex's own requests go to the
//! local OpenAI on loopback, which no proxy is asked for.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pretty_assertions::assert_eq;

use codex_auth::seal::artifact::ArtifactKey;

use crate::support::artifacts::Artifacts;
use crate::support::github::{Fault, GitHub};
use crate::support::job::{Job, GITHUB_TOKEN};
use crate::support::npm::Registry;
use crate::support::openai::Responses;
use crate::support::proxy::{Inspection, Proxy, ProxyOptions, Seen};
use crate::support::serve::TestCa;
use crate::support::world::{annotation, warning, World, SECRET};

/// The API's host name: known to the proxy alone.
const API_HOST: &str = "api.github.proxied.test";
/// The proxy's credentials: the password has what must be percent-encoded in a URL.
const USER: &str = "runner";
const PASSWORD: &str = "pr0xy@pa:ss/word";

fn image() -> String {
    std::env::var("CODEX_AUTH_TEST_IMAGE").unwrap_or_else(|_| {
        panic!("CODEX_AUTH_TEST_IMAGE is not set: run the tests with scripts/test")
    })
}

/// A GitHub over TLS whose certificate names `host`, a world around it, and the CA's file in
/// the job's RUNNER_TEMP (which the container sees too).
struct Behind {
    world: World,
    ca: TestCa,
}

impl Behind {
    fn new(host: &str) -> Self {
        let ca = TestCa::with_names(&[host]);
        let world = World::with_github(GitHub::start_tls(&ca), Responses::Ok);
        Self { world, ca }
    }

    /// A job on a stale login (Codex refreshes it: the login must be written back) whose API
    /// URL is `https://{host}/api/v3`.
    fn job(&self, host: &str) -> Job {
        let seed = self.world.openai.seed(true);
        let mut job = self.world.job(&seed);
        job.env("GITHUB_API_URL", format!("https://{host}/api/v3"));
        job
    }

    /// Writes a PEM into the job's RUNNER_TEMP and returns its path.
    fn file(job: &Job, name: &str, pem: &str) -> PathBuf {
        let path = job.runner_temp().join(name);
        std::fs::write(&path, pem).unwrap();
        path
    }
}

fn proxy(hosts: &[(&str, std::net::SocketAddr)], inspect: Option<Inspection>) -> Proxy {
    Proxy::start(ProxyOptions {
        hosts: hosts
            .iter()
            .map(|(h, a)| ((*h).to_owned(), *a))
            .collect::<BTreeMap<_, _>>(),
        credentials: Some((USER.to_owned(), PASSWORD.to_owned())),
        inspect,
    })
}

/// The job in the image, its HTTPS_PROXY the proxy by a name `--add-host` points at it (a
/// loopback address would be refused in the container, as on a runner).
fn in_the_container_behind<'j>(job: &'j mut Job, proxy: &Proxy) -> &'j mut Job {
    job.in_container(&image())
        .owned_by(1001)
        .container_option("--add-host=proxy.corp.test:127.0.0.1")
        .env("HTTPS_PROXY", proxy.url_as("proxy.corp.test"))
}

fn connects_to(seen: &[Seen], host: &str) -> Vec<Seen> {
    seen.iter()
        .filter(|s| s.method == "CONNECT" && s.target.starts_with(&format!("{host}:")))
        .cloned()
        .collect()
}

/// The keeper's loop in the container with the runner's HTTPS_PROXY (credentials in it) and
/// SSL_CERT_FILE: every request to GitHub goes through the proxy as CONNECT with
/// Proxy-Authorization, the rotated login is written back, and the password shows nowhere.
#[test]
fn the_container_writes_the_rotation_back_through_the_proxy() {
    let behind = Behind::new(API_HOST);
    let proxy = proxy(&[(API_HOST, behind.world.github.addr())], None);
    let mut job = behind.job(API_HOST);
    let ca = Behind::file(&job, "company-ca.pem", &behind.ca.ca_pem);
    in_the_container_behind(&mut job, &proxy).env("SSL_CERT_FILE", ca.display().to_string());
    let main = job.main();
    main.assert_ok();
    assert_eq!(main.output("persisted"), "true");
    let post = job.post(&main);
    post.assert_ok();
    behind.world.assert_secret_holds_the_latest_login();
    let tunnels = connects_to(&proxy.seen(), API_HOST);
    assert!(
        !tunnels.is_empty(),
        "no CONNECT to {API_HOST}: {:?}",
        proxy.seen()
    );
    for tunnel in &tunnels {
        assert_eq!(tunnel.status, 200, "{tunnel:?}");
        assert!(
            tunnel
                .proxy_authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic ")),
            "{tunnel:?}"
        );
    }
    for run in [&main, &post] {
        assert!(
            !run.visible().contains(PASSWORD) && !run.visible().contains("pa:ss"),
            "the proxy password shows:\n{}",
            run.visible()
        );
        assert!(run.masks().iter().any(|m| m == PASSWORD), "not masked");
    }
    behind.world.assert_no_secret_leaked(&[&main, &post]);
}

/// A proxy that inspects TLS presents certificates of its own CA: without that CA the step
/// fails before any login is restored, saying which variable to set (on the host); with it in
/// NODE_EXTRA_CA_CERTS the write-back goes through (in the container), and the proxy saw the
/// secret's PUT inside the tunnel.
#[test]
fn a_tls_inspecting_proxy_is_trusted_through_node_extra_ca_certs() {
    let behind = Behind::new(API_HOST);
    let inspect = Some(Inspection {
        upstream_ca_pem: behind.ca.ca_pem.clone(),
    });
    let proxy = proxy(&[(API_HOST, behind.world.github.addr())], inspect);
    let company = proxy.ca_pem().unwrap();

    // Without the proxy's CA: refused before Codex, nothing restored.
    let mut refused = behind.job(API_HOST);
    refused
        .env("HTTPS_PROXY", proxy.url())
        // Codex's own requests (the local OpenAI, on loopback) go direct.
        .env("NO_PROXY", "localhost,127.0.0.1")
        .input("api-timeout", "5");
    let main = refused.main();
    assert_ne!(main.code, 0, "{}", main.stdout);
    assert!(
        main.visible().contains("NODE_EXTRA_CA_CERTS"),
        "the failure says which variable to set:\n{}",
        main.visible()
    );
    assert!(!refused.codex_home().join("auth.json").exists());
    assert_eq!(behind.world.writes(), 0);

    // With it, in the container.
    let mut job = behind.job(API_HOST);
    let ca = Behind::file(&job, "inspecting-ca.pem", &company);
    in_the_container_behind(&mut job, &proxy)
        .env("NO_PROXY", "localhost,127.0.0.1")
        .env("NODE_EXTRA_CA_CERTS", ca.display().to_string());
    let main = job.main();
    main.assert_ok();
    job.post(&main).assert_ok();
    behind.world.assert_secret_holds_the_latest_login();
    let inside: Vec<String> = connects_to(&proxy.seen(), API_HOST)
        .into_iter()
        .flat_map(|s| s.inside)
        .collect();
    assert!(
        inside
            .iter()
            .any(|r| r == "PUT /api/v3/repos/octo/repo/actions/secrets/CODEX_AUTH_JSON"),
        "{inside:?}"
    );
}

/// A host NO_PROXY names (a suffix) is reached directly, in the container; the proxy is never
/// asked for it.
#[test]
fn no_proxy_sends_its_hosts_directly() {
    const DIRECT: &str = "api.github.corp.test";
    let behind = Behind::new(DIRECT);
    let proxy = proxy(&[], None);
    let mut job = behind.job(DIRECT);
    let ca = Behind::file(&job, "company-ca.pem", &behind.ca.ca_pem);
    job.in_container(&image())
        .owned_by(1001)
        .container_option("--add-host=proxy.corp.test:127.0.0.1")
        .container_option(&format!("--add-host={DIRECT}:127.0.0.1"))
        .env(
            "GITHUB_API_URL",
            format!(
                "https://{DIRECT}:{}/api/v3",
                behind.world.github.addr().port()
            ),
        )
        .env("https_proxy", proxy.url_as("proxy.corp.test"))
        .env("no_proxy", ".corp.test")
        .env("SSL_CERT_FILE", ca.display().to_string());
    let main = job.main();
    main.assert_ok();
    job.post(&main).assert_ok();
    behind.world.assert_secret_holds_the_latest_login();
    // (Codex's own requests to the local OpenAI may take the proxy: they are not GitHub's.)
    assert_eq!(connects_to(&proxy.seen(), DIRECT), Vec::<Seen>::new());
}

/// The runner passes a proxy on its own loopback into the container unchanged, where nothing
/// listens: refused before any login is restored, naming the runner's `.env`.
#[test]
fn a_loopback_proxy_in_the_container_is_refused_naming_the_runners_env() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.in_container(&image())
        .owned_by(1001)
        .env("HTTPS_PROXY", "http://runner:secret@127.0.0.1:3128");
    let main = job.main();
    assert_ne!(main.code, 0);
    let message = annotation(&main, "Proxy on the runner's loopback");
    assert!(message.contains("`.env`"), "{message}");
    assert!(!main.visible().contains("secret@"), "{}", main.visible());
    assert!(!job.codex_home().join("auth.json").exists());
    assert_eq!(world.github.requests().len(), 0);
    job.post(&main).assert_ok();
}

/// A CA variable naming a file that is not there fails the step before anything is restored,
/// naming the variable.
#[test]
fn an_unreadable_ca_file_is_refused_naming_its_variable() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.env("SSL_CERT_FILE", "/nonexistent/company-ca.pem");
    let main = job.main();
    assert_ne!(main.code, 0);
    let message = annotation(&main, "CA file not readable");
    assert!(
        message.starts_with("SSL_CERT_FILE names /nonexistent"),
        "{message}"
    );
    assert!(!job.codex_home().join("auth.json").exists());
    assert_eq!(world.github.requests().len(), 0);
}

/// `store: artifact` behind the proxy, in the container: the first run uploads the rotated
/// login (the results service's twirp calls, the blob upload), the next restores it (the REST
/// listing, its 302, the signed blob URL), every request through the proxy to hosts only it
/// resolves.
#[test]
fn the_artifact_store_uploads_and_restores_through_the_proxy() {
    const HOST: &str = "results.proxied.test";
    let ca = TestCa::with_names(&[HOST]);
    let artifacts = Artifacts::start_tls(&ca, HOST);
    artifacts.add_repository("octo/repo", 4711);
    artifacts.add_token(GITHUB_TOKEN, "octo/repo");
    let world = World::new(Responses::Ok);
    let proxy = proxy(&[(HOST, artifacts.addr())], None);
    let key = ArtifactKey::generate();
    let run = |run_id: u64, seed: &serde_json::Value| {
        let mut job = Job::new(&world.github, &world.openai);
        artifacts.enroll(&mut job, 4711, run_id, run_id * 10);
        let ca_file = Behind::file(&job, "company-ca.pem", &ca.ca_pem);
        in_the_container_behind(&mut job, &proxy)
            .input("store", "artifact")
            .input("artifact-key", key.to_base64().expose())
            .input("auth-json", seed.to_string())
            .env("GITHUB_API_URL", artifacts.api_url())
            .env("SSL_CERT_FILE", ca_file.display().to_string());
        let main = job.main();
        main.assert_ok();
        job.post(&main).assert_ok();
        main
    };
    let seed = world.openai.seed(true);
    let first = run(5001, &seed);
    assert_eq!(first.output("persisted"), "true");
    assert_eq!(artifacts.artifacts().len(), 1);
    let second = run(5002, &seed);
    assert!(
        second.stdout.contains("Restoring artifact"),
        "{}",
        second.stdout
    );
    let tunnels = connects_to(&proxy.seen(), HOST);
    assert!(tunnels.len() >= 2, "{:?}", proxy.seen());
    assert!(tunnels.iter().all(|t| t.status == 200), "{tunnels:?}");
    let steps = artifacts.steps();
    for step in ["twirp CreateArtifact 200", "twirp FinalizeArtifact 200"] {
        assert!(
            steps.iter().any(|s| s.starts_with(step)),
            "{step}: {steps:?}"
        );
    }
    assert!(
        artifacts
            .rest_requests()
            .iter()
            .any(|r| r.path.ends_with("/zip")),
        "the restore downloaded no artifact"
    );
}

/// `codex-version` behind the proxy: the registry's document and the tarball come through it
/// (the registry named by a host only the proxy resolves), checked and run.
#[test]
fn codex_version_is_fetched_through_the_proxy() {
    const HOST: &str = "registry.proxied.test";
    let ca = TestCa::with_names(&[HOST]);
    let registry = Registry::start_tls(&ca, HOST);
    registry.relabel("0.170.0");
    let world = World::new(Responses::Ok);
    let proxy = proxy(&[(HOST, registry.addr())], None);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    let ca_file = Behind::file(&job, "company-ca.pem", &ca.ca_pem);
    in_the_container_behind(&mut job, &proxy)
        .without_codex_on_path()
        .input("codex-version", "0.170.0")
        .env("npm_config_registry", registry.url())
        .env("SSL_CERT_FILE", ca_file.display().to_string());
    let main = job.main();
    main.assert_ok();
    assert!(
        main.stdout
            .contains("Codex 0.170.0, fetched from the npm registry"),
        "{}",
        main.stdout
    );
    job.post(&main).assert_ok();
    assert_eq!(registry.downloads(), 1);
    assert!(
        !connects_to(&proxy.seen(), HOST).is_empty(),
        "{:?}",
        proxy.seen()
    );
}

/// Makes the main stage's write of the secret fail once: the post stage must write it.
fn fail_mains_write(world: &World) {
    world.github.inject(Fault::new(
        "PUT",
        &format!("/actions/secrets/{SECRET}"),
        403,
        "Resource not accessible by personal access token",
    ));
}

/// The post stage writes the rotation through the main stage's proxy; a CA variable a later
/// step set (`/dev/zero`, which a careless read would never finish) is dropped, not read.
#[test]
fn the_post_stage_writes_through_the_proxy_and_ignores_a_ca_set_later() {
    let behind = Behind::new(API_HOST);
    let proxy = proxy(&[(API_HOST, behind.world.github.addr())], None);
    let mut job = behind.job(API_HOST);
    let ca = Behind::file(&job, "company-ca.pem", &behind.ca.ca_pem);
    in_the_container_behind(&mut job, &proxy).env("SSL_CERT_FILE", ca.display().to_string());
    fail_mains_write(&behind.world);
    let main = job.main();
    assert_eq!(main.output("persisted"), "false", "{}", main.stdout);
    let before = connects_to(&proxy.seen(), API_HOST).len();
    // A later step's GITHUB_ENV line.
    job.env("NODE_EXTRA_CA_CERTS", "/dev/zero");
    let post = job.post(&main);
    post.assert_ok();
    assert!(
        warning(&post, "Variable ignored").contains("NODE_EXTRA_CA_CERTS"),
        "{}",
        post.stdout
    );
    behind.world.assert_secret_holds_the_latest_login();
    assert!(
        connects_to(&proxy.seen(), API_HOST).len() > before,
        "the post stage did not go through the proxy: {:?}",
        proxy.seen()
    );
}

/// A proxy a later step set is never used by the post stage, which holds the write token: it
/// writes as the main stage did (directly here), and the proxy sees nothing.
#[test]
fn a_proxy_set_after_the_main_stage_never_sees_the_write_token() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    fail_mains_write(&world);
    let main = job.main();
    assert_eq!(main.output("persisted"), "false", "{}", main.stdout);
    let evil = Proxy::start(ProxyOptions::default());
    // The main stage's GitHub is on loopback, which no proxy is asked for: the later step
    // points the API at a name only its proxy would resolve, which the post stage also
    // ignores (the main stage's GITHUB_API_URL stands).
    job.env("HTTPS_PROXY", evil.url())
        .env("GITHUB_API_URL", format!("https://{API_HOST}/api/v3"));
    let post = job.post(&main);
    post.assert_ok();
    assert!(warning(&post, "Variable ignored").contains("HTTPS_PROXY"));
    world.assert_secret_holds_the_latest_login();
    assert_eq!(evil.seen(), Vec::<Seen>::new());
}

/// Certificates a CA variable names that changed between the stages (a step, Codex among
/// them, appended its own CA to a file in the workspace) are not trusted by the post stage.
#[test]
fn a_ca_file_changed_after_the_main_stage_is_not_trusted_by_the_post_stage() {
    let ca = TestCa::new();
    let world = World::with_github(GitHub::start_tls(&ca), Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    let file = job.runner_temp().join("company-ca.pem");
    std::fs::write(&file, &ca.ca_pem).unwrap();
    job.env("SSL_CERT_FILE", file.display().to_string())
        .input("api-timeout", "5");
    fail_mains_write(&world);
    let main = job.main();
    assert_eq!(main.output("persisted"), "false", "{}", main.stdout);
    let attacker = TestCa::new();
    std::fs::write(&file, format!("{}{}", ca.ca_pem, attacker.ca_pem)).unwrap();
    let post = job.post(&main);
    let left_out = warning(&post, "CA variable left out");
    assert!(
        left_out.contains("SSL_CERT_FILE names changed"),
        "{left_out}"
    );
    // Without it the local GitHub's certificate is not trusted: nothing was written.
    assert_ne!(post.code, 0);
    assert_eq!(world.stored(), seed);
}
