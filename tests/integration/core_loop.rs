//! The whole loop, end to end, with the real Codex CLI: restore → run Codex → persist.
//! Each case asserts what the local GitHub finally stores after decrypting it.

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::github::{self, Access, Fault};
use crate::support::job::{Job, WRITE_TOKEN};
use crate::support::openai::Responses;
use crate::support::world::{annotation, World, REPO, SECRET};

#[test]
fn stale_token_is_refreshed_by_codex_and_written_back() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    let config_before = std::fs::read_to_string(job.codex_home().join("config.toml")).unwrap();

    let main = job.main();
    assert_eq!(main.code, 0, "{}\n{}", main.stdout, main.stderr);
    assert_eq!(main.output("exit-code"), "0");
    assert_eq!(main.output("final-message"), "OK");
    assert_eq!(main.output("refreshed"), "true");
    assert!(world.openai.rotations() >= 1);
    // Masks come first: nothing is printed before every token is masked.
    let first = main.stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("::add-mask::"), "{first}");
    for token in ["id_token", "access_token", "refresh_token"] {
        let value = seed["tokens"][token].as_str().unwrap();
        assert!(
            main.masks().iter().any(|m| m == value),
            "{token} not masked"
        );
    }
    // Before Codex ran: the public key (preflight), the secret's metadata and the run.
    let paths: Vec<String> = world
        .github
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(
        paths,
        [
            "/repos/octo/repo/actions/secrets/public-key",
            "/repos/octo/repo/actions/secrets/CODEX_AUTH_JSON",
            "/repos/octo/repo/actions/runs/4242",
        ]
    );

    let post = job.post(&main);
    assert_eq!(post.code, 0, "{}\n{}", post.stdout, post.stderr);
    assert_eq!(post.output("refreshed"), "true");
    assert_eq!(post.output("persisted"), "true");
    if std::env::var_os("SHOW").is_some() {
        eprintln!(
            "MAIN STDOUT\n{}\nMAIN STDERR\n{}\nPOST\n{}\n{}\nSUMMARY\n{}\nSTATE\n{}",
            main.stdout, main.stderr, post.stdout, post.stderr, post.summary, main.state_file
        );
    }

    let stored = world.stored();
    let latest = world.openai.latest();
    assert_eq!(
        stored["tokens"]["refresh_token"],
        latest.refresh_token.as_str()
    );
    assert_eq!(
        stored["tokens"]["access_token"],
        latest.access_token.as_str()
    );
    assert_eq!(
        stored["tokens"]["account_id"],
        world.openai.account_id().as_str()
    );
    assert_ne!(
        stored["tokens"]["refresh_token"],
        seed["tokens"]["refresh_token"]
    );
    // The post stage used the key main fetched: the secret's metadata, then one PUT.
    let post_requests: Vec<(String, String)> = world.github.requests()[3..]
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    let secret_path = "/repos/octo/repo/actions/secrets/CODEX_AUTH_JSON".to_owned();
    assert_eq!(
        post_requests,
        [
            ("GET".to_owned(), secret_path.clone()),
            ("PUT".to_owned(), secret_path)
        ]
    );

    assert!(
        !job.codex_home().join("auth.json").exists(),
        "auth.json must be removed"
    );
    let config_after = std::fs::read_to_string(job.codex_home().join("config.toml")).unwrap();
    assert_eq!(
        config_after, config_before,
        "config.toml must be kept as it was"
    );
    assert!(
        post.summary.contains("| ChatGPT plan | pro |"),
        "{}",
        post.summary
    );
    assert!(post
        .summary
        .contains("| Written back | yes, to the repository secret CODEX_AUTH_JSON of octo/repo |"));

    let calls = job.codex_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert!(
        call.args.contains(&"--skip-git-repo-check".to_owned()),
        "{:?}",
        call.args
    );
    assert!(call
        .args
        .contains(&"cli_auth_credentials_store=\"file\"".to_owned()));
    assert_eq!(
        call.args.last().map(String::as_str),
        Some("Reply with the single word OK.")
    );
    let leaked: Vec<&String> = call
        .env
        .keys()
        .filter(|k| {
            k.starts_with("INPUT_")
                || [
                    "OPENAI_API_KEY",
                    "CODEX_API_KEY",
                    "CODEX_ACCESS_TOKEN",
                    "ACTIONS_RUNTIME_TOKEN",
                ]
                .contains(&k.as_str())
        })
        .collect();
    assert!(leaked.is_empty(), "Codex saw {leaked:?}");
    assert!(call.env.values().all(|v| !v.contains(WRITE_TOKEN)));
    assert_eq!(
        call.env.get("CODEX_HOME").map(String::as_str),
        job.codex_home().to_str()
    );

    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn fresh_token_writes_nothing() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);
    let before = world.github.secret(&github::repo(REPO), SECRET).unwrap();

    let main = job.main();
    assert_eq!(main.code, 0, "{}\n{}", main.stdout, main.stderr);
    assert_eq!(main.output("refreshed"), "false");
    let post = job.post(&main);
    assert_eq!(post.code, 0, "{}\n{}", post.stdout, post.stderr);
    assert_eq!(post.output("refreshed"), "false");
    assert_eq!(post.output("persisted"), "false");
    assert!(post
        .stdout
        .contains("The tokens did not change: nothing written"));

    assert_eq!(world.openai.rotations(), 0);
    assert_eq!(world.github.count("PUT"), 0);
    let after = world.github.secret(&github::repo(REPO), SECRET).unwrap();
    assert_eq!(after.updated_at, before.updated_at);
    assert_eq!(after.value, before.value);
    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn failing_codex_still_persists_the_last_rotation() {
    let world = World::new(Responses::Unauthorized);
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);

    let main = job.main();
    assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
    assert_ne!(main.output("exit-code"), "0");
    let message = annotation(&main, "Codex failed");
    assert!(message.contains("still written back"), "{message}");
    assert!(world.openai.rotations() >= 2, "{:?}", world.openai.log());

    let post = job.post(&main);
    assert_eq!(post.code, 0, "{}\n{}", post.stdout, post.stderr);
    assert_eq!(post.output("persisted"), "true");
    let stored = world.stored();
    assert_eq!(
        stored["tokens"]["refresh_token"],
        world.openai.latest().refresh_token.as_str(),
        "the secret must hold the last rotated token"
    );
    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn reused_refresh_token_writes_nothing_and_says_how_to_reseed() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed_already_used();
    let mut job = world.job(&seed);

    let main = job.main();
    assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
    let message = annotation(&main, "Codex login is no longer valid");
    assert!(
        message.contains("the refresh token was already used"),
        "{message}"
    );
    assert!(message.contains("concurrency:"), "{message}");
    assert!(
        message.contains("To reseed: on a trusted machine run `codex login`")
            && message.contains("gh secret set CODEX_AUTH_JSON --repo octo/repo"),
        "{message}"
    );

    let post = job.post(&main);
    assert_eq!(post.code, 0, "{}\n{}", post.stdout, post.stderr);
    assert_eq!(post.output("persisted"), "false");
    assert_eq!(world.github.count("PUT"), 0);
    assert_eq!(world.stored(), seed);
    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn invalid_or_api_key_input_fails_before_codex_runs() {
    let world = World::new(Responses::Ok);
    let live = world.openai.seed(true);
    let mut api_key = live.clone();
    api_key["auth_mode"] = "apikey".into();
    let mut no_account = live.clone();
    no_account["tokens"]["account_id"] = "".into();
    let cases = [
        (api_key.to_string(), "it is an API-key login"),
        (
            no_account.to_string(),
            "`tokens.account_id` is missing or empty",
        ),
        (
            "{\"tokens\": ".to_owned(),
            "it is not valid JSON: EOF while parsing",
        ),
        (
            "bm90IGpzb24=".to_owned(),
            "it is base64, but what it decodes to is not a JSON object",
        ),
    ];
    for (input, expected) in cases {
        let mut job = Job::new(&world.github, &world.openai);
        job.input("auth-json", input.clone())
            .input("token", WRITE_TOKEN);
        let main = job.main();
        assert_eq!(main.code, 1, "{}", main.stdout);
        let message = annotation(&main, "Invalid auth-json");
        assert!(message.contains(expected), "{message}");
        assert!(message.contains("Codex was not run"), "{message}");
        assert!(message.contains("To reseed"), "{message}");
        assert!(job.codex_calls().is_empty(), "Codex must not run");
        assert!(!job.codex_home().join("auth.json").exists());
        let post = job.post(&main);
        assert_eq!(post.code, 0, "{}", post.stdout);
        assert_eq!(post.output("persisted"), "false");
        world.assert_no_secret_leaked(&[&main, &post]);
    }
    assert!(
        world.github.requests().is_empty(),
        "{:?}",
        world.github.requests()
    );
    assert_eq!(world.openai.rotations(), 0);
}

#[test]
fn token_without_permission_fails_at_preflight() {
    let world = World::new(Responses::Ok);
    let reader = "github_pat_11READONLY000000000_zyxwvutsrqponmlkjihgfedcba";
    world.github.add_token(reader, Access::NoSecrets);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.input("token", reader);

    let main = job.main();
    assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
    let message = annotation(&main, "Cannot write the secret back");
    assert!(message.contains("403"), "{message}");
    assert!(message.contains("\"Secrets: Read and write\""), "{message}");
    assert!(
        message.contains("GITHUB_TOKEN cannot write secrets"),
        "{message}"
    );
    assert!(message.contains("Codex was not run"), "{message}");
    assert!(job.codex_calls().is_empty(), "Codex must not run");
    assert_eq!(world.openai.rotations(), 0);

    let post = job.post(&main);
    assert_eq!(post.code, 0, "{}", post.stdout);
    assert_eq!(post.output("persisted"), "false");
    assert_eq!(world.github.count("PUT"), 0);
    assert!(!main.visible().contains(reader));
}

#[test]
fn unknown_token_and_unknown_repository_name_what_to_fix() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.input("token", "github_pat_unknown");
    let main = job.main();
    assert_eq!(main.code, 1);
    let message = annotation(&main, "Cannot write the secret back");
    assert!(
        message.contains("401 Bad credentials") && message.contains("input `token`"),
        "{message}"
    );

    let mut job = world.job(&seed);
    job.env("GITHUB_REPOSITORY", "octo/missing");
    let main = job.main();
    assert_eq!(main.code, 1);
    let message = annotation(&main, "Cannot write the secret back");
    assert!(
        message.contains("404 Not Found") && message.contains("GITHUB_REPOSITORY"),
        "{message}"
    );
    assert!(job.codex_calls().is_empty());
}

#[test]
fn environment_secret_with_a_space_in_its_name() {
    let world = World::new(Responses::Ok);
    let scope = github::env(REPO, "prod east");
    world.github.add_scope(&scope);
    let seed = world.openai.seed(true);
    world
        .github
        .set_secret(&scope, "CODEX_LOGIN", &seed.to_string());
    let mut job = Job::new(&world.github, &world.openai);
    job.input("auth-json", seed.to_string())
        .input("token", WRITE_TOKEN)
        .input("environment", "prod east")
        .input("secret-name", "CODEX_LOGIN");
    let main = job.main();
    assert_eq!(main.code, 0, "{}\n{}", main.stdout, main.stderr);
    let post = job.post(&main);
    assert_eq!(post.code, 0, "{}\n{}", post.stdout, post.stderr);
    let stored: Value =
        serde_json::from_str(&world.github.secret(&scope, "CODEX_LOGIN").unwrap().value).unwrap();
    assert_eq!(
        stored["tokens"]["refresh_token"],
        world.openai.latest().refresh_token.as_str()
    );
    assert!(world
        .github
        .requests()
        .iter()
        .any(|r| r.path == "/repos/octo/repo/environments/prod%20east/secrets/CODEX_LOGIN"));
    assert!(world
        .github
        .secret(&github::repo(REPO), "CODEX_LOGIN")
        .is_none());
}

#[test]
fn organization_secret_keeps_its_visibility_and_repositories() {
    let world = World::new(Responses::Ok);
    let scope = github::org("octo-org");
    world.github.add_scope(&scope);
    let seed = world.openai.seed(true);
    world.github.set_secret(&scope, SECRET, &seed.to_string());
    world
        .github
        .set_visibility(&scope, SECRET, "selected", &[101, 202]);
    let mut job = Job::new(&world.github, &world.openai);
    job.input("auth-json", seed.to_string())
        .input("token", WRITE_TOKEN)
        .input("organization", "octo-org");
    let main = job.main();
    assert_eq!(main.code, 0, "{}\n{}", main.stdout, main.stderr);
    let post = job.post(&main);
    assert_eq!(post.code, 0, "{}\n{}", post.stdout, post.stderr);
    let stored = world.github.secret(&scope, SECRET).unwrap();
    assert_eq!(stored.visibility.as_deref(), Some("selected"));
    assert_eq!(stored.selected_repository_ids, [101, 202]);
    let value: Value = serde_json::from_str(&stored.value).unwrap();
    assert_eq!(
        value["tokens"]["refresh_token"],
        world.openai.latest().refresh_token.as_str()
    );
}

#[test]
fn persistent_runner_keeps_a_newer_file_and_keep_leaves_it() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    // First job on a persistent runner: refreshes, persists, keeps the file.
    let mut job = world.job(&seed);
    job.input("keep", "true");
    let main = job.main();
    assert_eq!(main.code, 0, "{}\n{}", main.stdout, main.stderr);
    let post = job.post(&main);
    assert_eq!(post.code, 0, "{}\n{}", post.stdout, post.stderr);
    assert!(
        job.codex_home().join("auth.json").exists(),
        "keep: true leaves auth.json"
    );
    let refreshed = world.stored();

    // The next job still gets the old seed (its run was queued before the write), while the
    // disk holds the newer file: the disk wins, and Codex runs with the live token.
    let mut next = Job::new(&world.github, &world.openai);
    std::fs::remove_dir_all(next.codex_home()).unwrap();
    std::fs::rename(job.codex_home(), next.codex_home()).unwrap();
    next.input("auth-json", seed.to_string())
        .input("token", WRITE_TOKEN)
        .input("keep", "true");
    let main = next.main();
    assert_eq!(main.code, 0, "{}\n{}", main.stdout, main.stderr);
    assert!(
        main.stdout.contains("after the login in auth-json"),
        "{}",
        main.stdout
    );
    let on_disk: Value = serde_json::from_str(
        &std::fs::read_to_string(next.codex_home().join("auth.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        on_disk["tokens"]["refresh_token"],
        refreshed["tokens"]["refresh_token"]
    );
    // The disk file differs from the seed the job was given, so post writes it back.
    let post = next.post(&main);
    assert_eq!(post.code, 0, "{}\n{}", post.stdout, post.stderr);
    assert_eq!(
        world.stored()["tokens"]["refresh_token"],
        refreshed["tokens"]["refresh_token"]
    );
    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn server_errors_and_rate_limits_are_retried_then_persisted() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    let put = format!("/actions/secrets/{SECRET}");
    world
        .github
        .inject(Fault::new("PUT", &put, 502, "Server Error"));
    world
        .github
        .inject(Fault::new("PUT", &put, 503, "Service Unavailable"));
    world
        .github
        .inject(Fault::new("PUT", &put, 429, "API rate limit exceeded").header("retry-after", "1"));
    world.github.inject(
        Fault::new("PUT", &put, 403, "You have exceeded a secondary rate limit")
            .header("retry-after", "1"),
    );
    let main = job.main();
    assert_eq!(main.code, 0, "{}\n{}", main.stdout, main.stderr);
    let post = job.post(&main);
    assert_eq!(post.code, 0, "{}\n{}", post.stdout, post.stderr);
    assert_eq!(post.output("persisted"), "true");
    for logged in [
        "server error 502; retrying in 1.0 s (attempt 2/5)",
        "server error 503; retrying in 2.0 s (attempt 3/5)",
        "rate limited (429 API rate limit exceeded); retrying in 1.0 s (attempt 4/5)",
        "rate limited (403 You have exceeded a secondary rate limit); retrying in 1.0 s (attempt 5/5)",
    ] {
        assert!(post.stdout.contains(logged), "missing {logged:?} in:\n{}", post.stdout);
    }
    assert_eq!(
        world.stored()["tokens"]["refresh_token"],
        world.openai.latest().refresh_token.as_str()
    );
}

#[test]
fn a_key_rotated_between_main_and_post_is_fetched_again() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    let main = job.main();
    assert_eq!(main.code, 0, "{}\n{}", main.stdout, main.stderr);
    world.github.rotate_key(&github::repo(REPO));
    let post = job.post(&main);
    assert_eq!(post.code, 0, "{}\n{}", post.stdout, post.stderr);
    assert!(
        post.stdout.contains("GitHub refused the public key"),
        "{}",
        post.stdout
    );
    let statuses: Vec<(String, u16)> = world
        .github
        .requests()
        .into_iter()
        .map(|r| (r.method, r.status))
        .collect();
    // Main: key, secret, run. Post: secret, PUT with the old key (422), new key, PUT.
    assert_eq!(
        statuses[3..],
        [
            ("GET".into(), 200),
            ("PUT".into(), 422),
            ("GET".into(), 200),
            ("PUT".into(), 204)
        ]
    );
    assert_eq!(statuses.len(), 7);
    assert_eq!(
        world.stored()["tokens"]["refresh_token"],
        world.openai.latest().refresh_token.as_str()
    );
}

#[test]
fn a_failed_write_fails_the_job_and_keeps_the_refreshed_file() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    let main = job.main();
    assert_eq!(main.code, 0, "{}\n{}", main.stdout, main.stderr);
    let put = format!("/actions/secrets/{SECRET}");
    world.github.inject(Fault::new(
        "PUT",
        &put,
        403,
        "Resource not accessible by personal access token",
    ));
    let post = job.post(&main);
    assert_eq!(post.code, 1, "{}\n{}", post.stdout, post.stderr);
    assert_eq!(post.output("refreshed"), "true");
    assert_eq!(post.output("persisted"), "false");
    let message = annotation(&post, "Refreshed login not saved");
    assert!(message.contains("\"Secrets: Read and write\""), "{message}");
    assert!(
        message.contains("still at") && message.contains("To reseed"),
        "{message}"
    );
    // The refreshed file is still there, unchanged.
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(job.codex_home().join("auth.json")).unwrap())
            .unwrap();
    assert_eq!(
        on_disk["tokens"]["refresh_token"],
        world.openai.latest().refresh_token.as_str()
    );
    assert_eq!(world.stored(), seed, "the secret keeps the old value");
    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn runs_in_a_git_checkout_without_skipping_the_repository_check() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);
    let status = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(&job.workspace)
        .status()
        .unwrap();
    assert!(status.success());
    let main = job.main();
    assert_eq!(main.code, 0, "{}\n{}", main.stdout, main.stderr);
    assert_eq!(main.output("final-message"), "OK");
    let calls = job.codex_calls();
    assert!(
        !calls[0].args.contains(&"--skip-git-repo-check".to_owned()),
        "{:?}",
        calls[0].args
    );
}

#[test]
fn codex_deleting_or_truncating_auth_json_is_never_written_back() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    for damage in ["delete", "truncate"] {
        let mut job = world.job(&seed);
        let main = job.main();
        assert_eq!(main.code, 0, "{}\n{}", main.stdout, main.stderr);
        let path = job.codex_home().join("auth.json");
        let title = if damage == "delete" {
            std::fs::remove_file(&path).unwrap();
            "auth.json disappeared"
        } else {
            let text = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&path, &text[..text.len() / 2]).unwrap();
            "auth.json is damaged"
        };
        let post = job.post(&main);
        assert_eq!(post.code, 1, "{}\n{}", post.stdout, post.stderr);
        assert_eq!(post.output("persisted"), "false");
        let message = annotation(&post, title);
        assert!(message.contains("To reseed"), "{message}");
        assert_eq!(world.github.count("PUT"), 0);
        world.assert_no_secret_leaked(&[&main, &post]);
    }
}
