//! A GitHub App instead of a token: the action signs a JWT with the App's private key, finds
//! the App's installation on the target, and makes an installation token for the write-back.
//! The local GitHub verifies the JWT's RS256 signature with the App's public key.

use std::process::Command;

use pretty_assertions::assert_eq;

use crate::support::github;
use crate::support::job::{Job, StageRun};
use crate::support::openai::Responses;
use crate::support::world::{annotation, World, REPO, SECRET};

const APP_ID: u64 = 123_456;

/// An RSA key pair as GitHub hands it out: the private key PKCS#1 PEM (`BEGIN RSA PRIVATE
/// KEY`), and the public key for the server.
struct AppKey {
    private_pem: String,
    public_pem: Vec<u8>,
}

impl AppKey {
    fn generate() -> Self {
        let private = Command::new("openssl")
            .args(["genrsa", "-traditional", "2048"])
            .output()
            .expect("openssl (Debian's openssl package) makes the test App's key");
        assert!(private.status.success());
        let mut public = Command::new("openssl")
            .args(["rsa", "-pubout"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut public.stdin.take().unwrap(), &private.stdout).unwrap();
        let public = public.wait_with_output().unwrap();
        assert!(public.status.success());
        let private_pem = String::from_utf8(private.stdout).unwrap();
        assert!(private_pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        Self {
            private_pem,
            public_pem: public.stdout,
        }
    }

    /// The key's base64 lines, which must never show in the log.
    fn body_lines(&self) -> Vec<&str> {
        self.private_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect()
    }
}

/// A job that authenticates as the App rather than with a token.
fn app_job(world: &World, key: &AppKey) -> Job {
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.input("token", "")
        .input("app-id", APP_ID.to_string())
        .input("app-private-key", key.private_pem.clone());
    job
}

fn assert_key_not_shown(key: &AppKey, runs: &[&StageRun]) {
    for run in runs {
        let visible = run.visible();
        for line in key.body_lines() {
            assert!(!visible.contains(line), "the App's key leaked:\n{visible}");
        }
        let masks = run.masks();
        for line in key.body_lines() {
            assert!(masks.iter().any(|m| m == line), "{line} not masked");
        }
    }
}

#[test]
fn app_installed_on_the_repository_writes_the_refreshed_login() {
    let world = World::new(Responses::Ok);
    let key = AppKey::generate();
    world.github.add_app(APP_ID, &key.public_pem);
    let installation = world.github.install_app(APP_ID, REPO);
    let mut job = app_job(&world, &key);

    let main = job.main();
    main.assert_ok();
    assert_eq!(main.output("persisted"), "true");
    world.assert_secret_holds_the_latest_login();

    // One installation token, limited to the target repository.
    let issued = world.github.issued_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].installation, installation);
    assert_eq!(issued[0].repositories, Some(vec!["repo".to_owned()]));
    let requests: Vec<(String, String)> = world
        .github
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .take(3)
        .collect();
    assert_eq!(
        requests,
        [
            ("GET".into(), "/repos/octo/repo/installation".into()),
            (
                "POST".into(),
                format!("/app/installations/{installation}/access_tokens")
            ),
            (
                "GET".into(),
                "/repos/octo/repo/actions/secrets/public-key".into()
            ),
        ]
    );
    // The installation token is masked, and neither it nor the key shows anywhere.
    let token = format!("ghs_test{installation}0");
    assert!(main.masks().contains(&token));
    assert!(!main.visible().contains(&token));
    assert_key_not_shown(&key, &[&main]);
    world.assert_no_secret_leaked(&[&main]);

    // The token's answer said `secrets: write`: no probe was needed.
    assert!(
        main.stdout.contains("has `secrets: write`"),
        "{}",
        main.stdout
    );
    assert!(world.github.probe_requests().is_empty());

    // The token asked for what the main stage does and nothing more, and was revoked at the
    // stage's end, after its last use.
    let issued = &world.github.issued_tokens()[0];
    let main_needs = serde_json::json!({"secrets": "write", "actions": "read"});
    assert_eq!(issued.requested.as_ref(), Some(&main_needs));
    assert_eq!(issued.granted, main_needs);
    assert!(issued.revoked, "main's token is revoked");
    let last = world.github.requests().last().cloned().unwrap();
    assert_eq!(
        (last.method.as_str(), last.path.as_str(), last.status),
        ("DELETE", "/installation/token", 204)
    );
    assert!(last.token.as_deref().is_some_and(|t| t.ends_with(&token)));
    assert!(main
        .stdout
        .contains("Revoked the GitHub App's installation token."));

    // Nothing changed since main wrote: the post stage makes no token.
    let post = job.post(&main);
    post.assert_ok();
    assert_eq!(world.github.issued_tokens().len(), 1);
}

#[test]
fn the_installation_token_gets_none_of_the_apps_other_permissions() {
    let world = World::new(Responses::Ok);
    let key = AppKey::generate();
    // An App that may also push code and write pull requests.
    world.github.add_app_with(
        APP_ID,
        &key.public_pem,
        serde_json::json!({"secrets": "write", "contents": "write", "pull_requests": "write",
                           "actions": "write", "metadata": "read"}),
    );
    world.github.install_app(APP_ID, REPO);
    let mut job = app_job(&world, &key);
    job.main().assert_ok();
    let issued = world.github.issued_tokens();
    assert_eq!(
        issued[0].granted,
        serde_json::json!({"secrets": "write", "actions": "read"})
    );
    assert!(issued[0].revoked);
}

#[test]
fn the_local_github_grants_what_is_asked_within_the_installation_and_revokes() {
    use crate::support::artifacts::send;
    let world = World::new(Responses::Ok);
    let key = AppKey::generate();
    world.github.add_app_with(
        APP_ID,
        &key.public_pem,
        serde_json::json!({"secrets": "read", "metadata": "read"}),
    );
    let installation = world.github.install_app(APP_ID, REPO);
    let now = jsonwebtoken::get_current_timestamp();
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &serde_json::json!({"iat": now - 60, "exp": now + 540, "iss": APP_ID}),
        &jsonwebtoken::EncodingKey::from_rsa_pem(key.private_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    let url = format!(
        "{}/app/installations/{installation}/access_tokens",
        world.github.url()
    );
    let ask = |permissions: serde_json::Value| {
        send(
            "POST",
            &url,
            &[
                ("authorization", &format!("Bearer {jwt}")),
                ("content-type", "application/json"),
            ],
            serde_json::json!({"repositories": ["repo"], "permissions": permissions})
                .to_string()
                .as_bytes(),
        )
    };
    // More than the installation has: 422, as GitHub answers.
    assert_eq!(ask(serde_json::json!({"secrets": "write"})).status, 422);
    assert_eq!(ask(serde_json::json!({"contents": "read"})).status, 422);
    // Within it: exactly what was asked.
    let answer = ask(serde_json::json!({"secrets": "read"}));
    assert_eq!(answer.status, 201);
    let body = answer.json();
    assert_eq!(body["permissions"], serde_json::json!({"secrets": "read"}));
    let token = body["token"].as_str().unwrap().to_owned();
    let key_url = format!(
        "{}/repos/{REPO}/actions/secrets/public-key",
        world.github.url()
    );
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    assert_eq!(send("GET", &key_url, &auth, b"").status, 200);
    // Revoked: 204, then the token no longer works.
    let revoke = format!("{}/installation/token", world.github.url());
    assert_eq!(send("DELETE", &revoke, &auth, b"").status, 204);
    assert_eq!(send("GET", &key_url, &auth, b"").status, 401);
    assert!(world.github.issued_tokens()[0].revoked);
    crate::support::openapi::assert_conforms(&world.github.requests());
}

#[test]
fn an_app_that_may_only_read_secrets_stops_before_codex_without_a_probe() {
    let world = World::new(Responses::Ok);
    let key = AppKey::generate();
    world.github.add_app_with(
        APP_ID,
        &key.public_pem,
        serde_json::json!({"secrets": "read", "actions": "read", "metadata": "read"}),
    );
    world.github.install_app(APP_ID, REPO);
    let mut job = app_job(&world, &key);
    let main = job.main();
    assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
    let message = annotation(&main, "Cannot write the secret back");
    for part in [
        "granted `secrets: read`",
        "needs `secrets: write`",
        "set its repository permission \"Secrets\" to \"Read and write\"",
        "Codex was not run",
    ] {
        assert!(message.contains(part), "{part:?} missing in {message}");
    }
    assert!(job.codex_calls().is_empty());
    assert_eq!(world.openai.rotations(), 0);
    assert!(
        world.github.probe_requests().is_empty(),
        "the token's answer said enough: no probe"
    );
    assert_eq!(world.github.count("PUT"), 0);
}

#[test]
fn app_installed_on_the_organization_writes_an_organization_secret() {
    let world = World::new(Responses::Ok);
    let key = AppKey::generate();
    world.github.add_app(APP_ID, &key.public_pem);
    world.github.add_scope(&github::org("octo"));
    let installation = world.github.install_app(APP_ID, "octo");
    let mut job = app_job(&world, &key);
    job.input("organization", "octo");

    let main = job.main();
    main.assert_ok();
    let stored = world.github.secret(&github::org("octo"), SECRET).unwrap();
    // New: visible to the job's repository alone.
    assert_eq!(stored.visibility.as_deref(), Some("selected"));
    assert_eq!(stored.selected_repository_ids, [1]);
    let stored: serde_json::Value = serde_json::from_str(&stored.value).unwrap();
    assert_eq!(
        stored["tokens"]["refresh_token"],
        world.openai.latest().refresh_token.as_str()
    );
    let issued = world.github.issued_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].installation, installation);
    assert_eq!(issued[0].repositories, None, "an organization-wide token");
    assert!(world
        .github
        .requests()
        .iter()
        .any(|r| r.path == "/orgs/octo/installation"));
}

#[test]
fn app_not_installed_fails_before_codex_and_says_where_to_install() {
    let world = World::new(Responses::Ok);
    let key = AppKey::generate();
    world.github.add_app(APP_ID, &key.public_pem);
    let mut job = app_job(&world, &key);

    let main = job.main();
    assert_eq!(main.code, 1);
    assert!(job.codex_calls().is_empty(), "Codex must not run");
    let message = annotation(&main, "GitHub App authentication failed");
    assert!(
        message.contains(&format!(
            "GitHub App {APP_ID} is not installed on octo/repo. Install it there"
        )),
        "{message}"
    );
    assert!(message.contains("\"Secrets: Read and write\""), "{message}");
    assert_key_not_shown(&key, &[&main]);
}

#[test]
fn key_of_another_app_is_refused_with_what_to_check() {
    let world = World::new(Responses::Ok);
    let registered = AppKey::generate();
    world.github.add_app(APP_ID, &registered.public_pem);
    world.github.install_app(APP_ID, REPO);
    let other = AppKey::generate();
    let mut job = app_job(&world, &other);

    let main = job.main();
    assert_eq!(main.code, 1);
    assert!(job.codex_calls().is_empty(), "Codex must not run");
    let message = annotation(&main, "GitHub App authentication failed");
    assert!(
        message.contains("(401): GitHub did not accept the App's credentials"),
        "{message}"
    );
    assert!(world.github.issued_tokens().is_empty());
    assert_key_not_shown(&other, &[&main]);
}

#[test]
fn a_key_that_is_not_pem_is_refused_before_any_request() {
    let world = World::new(Responses::Ok);
    let key = AppKey::generate();
    let mut job = app_job(&world, &key);
    // PEM markers around something that is not a key.
    job.input(
        "app-private-key",
        "-----BEGIN RSA PRIVATE KEY-----\nbm90IGEga2V5\n-----END RSA PRIVATE KEY-----",
    );
    let main = job.main();
    assert_eq!(main.code, 1);
    let message = annotation(&main, "Invalid app-private-key");
    assert!(
        message.contains("not an RSA private key in PEM form"),
        "{message}"
    );
    assert!(world.github.requests().is_empty());
}

#[test]
fn post_stage_makes_its_own_installation_token() {
    let world = World::new(Responses::Ok);
    let key = AppKey::generate();
    world.github.add_app(APP_ID, &key.public_pem);
    world.github.install_app(APP_ID, REPO);
    let mut job = app_job(&world, &key);
    job.input("mode", "restore").owned_by(65534);

    let main = job.main();
    main.assert_ok();
    // A later step runs Codex on the host, which refreshes the login; post writes it back.
    let step = job.host_step_codex(&main.env_file, 65534);
    assert!(step.status.success());
    let post = job.post(&main);
    post.assert_ok();
    world.assert_secret_holds_the_latest_login();
    assert_eq!(
        world.github.issued_tokens().len(),
        2,
        "one installation token per stage: main's is not passed on"
    );
    // Each narrowed to its stage's needs (`mode: restore` skips nothing of main's checks;
    // the post stage only writes) and revoked at its end.
    let issued = world.github.issued_tokens();
    assert_eq!(
        issued[0].requested,
        Some(serde_json::json!({"secrets": "write", "actions": "read"}))
    );
    assert_eq!(
        issued[1].requested,
        Some(serde_json::json!({"secrets": "write"}))
    );
    assert!(issued.iter().all(|i| i.revoked), "{issued:?}");
    for run in [&main, &post] {
        assert!(
            run.stdout
                .contains("Revoked the GitHub App's installation token."),
            "{}",
            run.stdout
        );
    }
    assert_key_not_shown(&key, &[&main, &post]);
    world.assert_no_secret_leaked(&[&main, &post]);
}
