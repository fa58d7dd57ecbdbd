//! The whole loop, end to end, with the real Codex CLI: restore → run Codex → persist.
//! Each case asserts what the local GitHub finally stores after decrypting it.

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::github::{self, Access, Fault};
use crate::support::job::{Job, WRITE_TOKEN};
use crate::support::openai::Responses;
use crate::support::world::{annotation, warning, World, REPO, SECRET};

const SECRET_PATH: &str = "/repos/octo/repo/actions/secrets/CODEX_AUTH_JSON";

fn requests(world: &World) -> Vec<(String, String)> {
    world
        .github
        .requests()
        .into_iter()
        .map(|r| (r.method, github::normalize_probe(&r.path)))
        .collect()
}

/// The write probe of a fine-grained token: a probe secret created beside the target, then
/// deleted.
const PROBE_PATH: &str = "/repos/octo/repo/actions/secrets/CODEX_AUTH_PROBE_*";

fn get(path: &str) -> (String, String) {
    ("GET".to_owned(), path.to_owned())
}

fn put(path: &str) -> (String, String) {
    ("PUT".to_owned(), path.to_owned())
}

#[test]
fn stale_token_is_refreshed_by_codex_and_written_back() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    let config_before = std::fs::read_to_string(job.codex_home().join("config.toml")).unwrap();

    let main = job.main();
    main.assert_ok();
    assert_eq!(main.output("exit-code"), "0");
    assert_eq!(main.output("final-message"), "OK");
    assert_eq!(main.output("refreshed"), "true");
    assert_eq!(main.output("persisted"), "true");
    assert!(world.openai.rotations() >= 1);
    // Masks come first: nothing is printed before every token is masked.
    let first = main.stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("::add-mask::"), "{first}");
    let masks = main.masks();
    for value in [&seed, &world.stored()]
        .iter()
        .flat_map(|f| ["id_token", "access_token", "refresh_token"].map(|t| f["tokens"][t].clone()))
    {
        assert!(
            masks.iter().any(|m| Some(m.as_str()) == value.as_str()),
            "{value} not masked"
        );
    }
    assert!(
        masks.iter().any(|m| m == WRITE_TOKEN),
        "the write token is masked too"
    );

    world.assert_secret_holds_the_latest_login();
    let stored = world.stored();
    assert_eq!(
        stored["tokens"]["account_id"],
        world.openai.account_id().as_str()
    );
    assert_ne!(
        stored["tokens"]["refresh_token"],
        seed["tokens"]["refresh_token"]
    );
    // Before Codex: the public key (preflight), the secret's metadata, the run, and (the
    // access token has expired, so Codex refreshes) the write probe. After: the metadata again
    // (another job's write?) and the PUT, with the key from the preflight.
    assert_eq!(
        requests(&world),
        [
            get("/repos/octo/repo/actions/secrets/public-key"),
            get(SECRET_PATH),
            get("/repos/octo/repo/actions/runs/4242"),
            put(PROBE_PATH),
            ("DELETE".to_owned(), PROBE_PATH.to_owned()),
            get(SECRET_PATH),
            put(SECRET_PATH),
        ]
    );
    world.assert_no_probe_left(&github::repo(REPO));
    assert!(
        main.summary.contains("| ChatGPT plan | pro |"),
        "{}",
        main.summary
    );
    assert!(main.summary.contains("| Refreshed in this job | yes |"));
    assert!(main
        .summary
        .contains("| Written back | yes, to the repository secret CODEX_AUTH_JSON of octo/repo |"));

    // Post: nothing changed since main wrote, so no request; then auth.json is removed.
    let post = job.post(&main);
    post.assert_ok();
    assert!(post.stdout.contains("nothing to write"), "{}", post.stdout);
    assert_eq!(requests(&world).len(), 7);
    assert!(
        !job.codex_home().join("auth.json").exists(),
        "auth.json must be removed"
    );
    let config_after = std::fs::read_to_string(job.codex_home().join("config.toml")).unwrap();
    assert_eq!(
        config_after, config_before,
        "config.toml must be kept as it was"
    );

    let calls = job.task_calls();
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
    // JSON events, read back into the log; Codex's own sandbox starts on this host, so it is
    // kept (and the sandbox probe ran with a home of its own, not this login's).
    assert!(call.args.contains(&"--json".to_owned()));
    assert!(!call.args.iter().any(|a| a.contains("sandbox_mode")));
    assert!(
        main.stdout.contains("Sandbox: Codex's own"),
        "{}",
        main.stdout
    );
    let probe = job
        .codex_calls()
        .into_iter()
        .find(|c| c.args.first().is_some_and(|a| a == "sandbox"))
        .expect("the sandbox probe ran");
    assert_ne!(
        probe.env.get("CODEX_HOME"),
        call.env.get("CODEX_HOME"),
        "the probe must not see the login"
    );
    assert_eq!(
        call.args.last().map(String::as_str),
        Some("Reply with the single word OK.")
    );
    let leaked: Vec<&String> = call
        .env
        .keys()
        .filter(|k| {
            k.starts_with("INPUT_")
                || k.starts_with("STATE_")
                || [
                    "OPENAI_API_KEY",
                    "CODEX_API_KEY",
                    "CODEX_ACCESS_TOKEN",
                    "ACTIONS_RUNTIME_TOKEN",
                    "GITHUB_STATE",
                    "GITHUB_OUTPUT",
                    "GITHUB_ENV",
                    "GITHUB_STEP_SUMMARY",
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
    main.assert_ok();
    assert_eq!(main.output("refreshed"), "false");
    assert_eq!(main.output("persisted"), "false");
    assert!(main
        .stdout
        .contains("The tokens did not change: nothing written"));
    assert!(main
        .summary
        .contains("| Written back | no: the tokens did not change |"));
    let post = job.post(&main);
    post.assert_ok();

    assert_eq!(world.openai.rotations(), 0);
    assert_eq!(world.github.count("PUT"), 0);
    let after = world.github.secret(&github::repo(REPO), SECRET).unwrap();
    assert_eq!(after.updated_at, before.updated_at);
    assert_eq!(after.value, before.value);
    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn custom_prompt_codex_args_and_base64_input_reach_codex() {
    use base64::Engine as _;
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);
    let pretty = serde_json::to_string_pretty(&seed).unwrap();
    job.input(
        "auth-json",
        base64::engine::general_purpose::STANDARD.encode(pretty),
    )
    .input("prompt", "-n is not an option; say OK")
    .input(
        "codex-args",
        "--ephemeral -c 'model_reasoning_effort=\"low\"'",
    );
    let main = job.main();
    main.assert_ok();
    assert_eq!(main.output("final-message"), "OK");
    let args = &job.task_calls()[0].args;
    let tail: Vec<&str> = args[args.len() - 5..].iter().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "--ephemeral",
            "-c",
            "model_reasoning_effort=\"low\"",
            "--",
            "-n is not an option; say OK"
        ]
    );
}

#[test]
fn failing_codex_still_persists_the_last_rotation() {
    let world = World::new(Responses::Unauthorized);
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);

    let main = job.main();
    assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
    assert_ne!(main.output("exit-code"), "0");
    assert_eq!(main.output("persisted"), "true");
    let message = annotation(&main, "Codex failed");
    assert!(
        message.contains("The refreshed login was written back first"),
        "{message}"
    );
    assert!(world.openai.rotations() >= 2, "{:?}", world.openai.log());
    assert_eq!(
        world.stored()["tokens"]["refresh_token"],
        world.openai.latest().refresh_token.as_str(),
        "the secret must hold the last rotated token"
    );

    let post = job.post(&main);
    post.assert_ok();
    assert_eq!(world.writes(), 1);
    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn reused_refresh_token_writes_nothing_and_says_how_to_reseed() {
    // In both modes that run Codex: `codex exec` and the app-server refresh.
    for mode in ["exec", "refresh"] {
        let world = World::new(Responses::Ok);
        let seed = world.openai.seed_already_used();
        let mut job = world.job(&seed);
        job.input("mode", mode);

        let main = job.main();
        assert_eq!(main.code, 1, "{mode}: {}\n{}", main.stdout, main.stderr);
        assert_eq!(main.output("persisted"), "false");
        let message = annotation(&main, "Codex login is no longer valid");
        assert!(
            message.contains("the refresh token was already used"),
            "{mode}: {message}"
        );
        assert!(message.contains("concurrency:"), "{mode}: {message}");
        assert!(
            message.contains("To reseed from the browser: run the sign-in workflow (`mode: login`")
                && message.contains("on a trusted machine, run `codex login`")
                && message.contains("gh secret set CODEX_AUTH_JSON --repo octo/repo"),
            "{mode}: {message}"
        );

        let post = job.post(&main);
        post.assert_ok();
        assert_eq!(world.writes(), 0);
        world.assert_no_probe_left(&github::repo(REPO));
        assert_eq!(world.stored(), seed);
        world.assert_no_secret_leaked(&[&main, &post]);
    }
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
        assert_eq!(main.output("refreshed"), "false", "outputs are always set");
        assert_eq!(main.output("persisted"), "false", "outputs are always set");
        let message = annotation(&main, "Invalid auth-json");
        assert!(message.contains(expected), "{message}");
        assert!(message.contains("Codex was not run"), "{message}");
        assert!(message.contains("To reseed"), "{message}");
        assert!(job.codex_calls().is_empty(), "Codex must not run");
        assert!(!job.codex_home().join("auth.json").exists());
        let post = job.post(&main);
        post.assert_ok();
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
    assert_eq!(main.output("persisted"), "false");
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
    post.assert_ok();
    assert_eq!(world.github.count("PUT"), 0);
    for run in [&main, &post] {
        assert!(!run.visible().contains(reader));
    }
    world.assert_no_secret_leaked(&[&main, &post]);
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
    job.event(
        "push",
        &serde_json::json!({"repository": {"private": true}}),
    );
    let main = job.main();
    assert_eq!(main.code, 1);
    let message = annotation(&main, "Cannot write the secret back");
    assert!(
        message.contains("404 Not Found") && message.contains("GITHUB_REPOSITORY"),
        "{message}"
    );
    assert!(
        message.contains("GITHUB_TOKEN cannot write secrets"),
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
    main.assert_ok();
    assert_eq!(main.output("persisted"), "true");
    let stored: Value =
        serde_json::from_str(&world.github.secret(&scope, "CODEX_LOGIN").unwrap().value).unwrap();
    assert_eq!(
        stored["tokens"]["refresh_token"],
        world.openai.latest().refresh_token.as_str()
    );
    assert!(world.github.requests().iter().any(|r| r.method == "PUT"
        && r.path == "/repos/octo/repo/environments/prod%20east/secrets/CODEX_LOGIN"));
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
    main.assert_ok();
    assert_eq!(main.output("persisted"), "true");
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
fn a_new_organization_secret_is_visible_to_this_repository_alone() {
    let world = World::new(Responses::Ok);
    let scope = github::org("octo-org");
    world.github.add_scope(&scope);
    let seed = world.openai.seed(true);
    let mut job = Job::new(&world.github, &world.openai);
    job.input("auth-json", seed.to_string())
        .input("token", WRITE_TOKEN)
        .input("organization", "octo-org")
        .env("GITHUB_REPOSITORY_ID", "4711");
    let main = job.main();
    main.assert_ok();
    assert_eq!(main.output("persisted"), "true");
    let stored = world.github.secret(&scope, SECRET).unwrap();
    assert_eq!(stored.visibility.as_deref(), Some("selected"));
    assert_eq!(stored.selected_repository_ids, [4711]);

    // Without the repository's id it is not created at all, rather than made visible to
    // more repositories: the job stops before Codex, and says which variable is missing.
    let scope = github::org("other-org");
    world.github.add_scope(&scope);
    let mut job = Job::new(&world.github, &world.openai);
    job.input("auth-json", world.openai.seed(true).to_string())
        .input("token", WRITE_TOKEN)
        .input("organization", "other-org")
        .env("GITHUB_REPOSITORY_ID", "");
    let main = job.main();
    assert_eq!(main.code, 1);
    let message = annotation(&main, "Cannot write the secret back");
    assert!(message.contains("GITHUB_REPOSITORY_ID"), "{message}");
    assert!(message.contains("Codex was not run"), "{message}");
    assert!(job.codex_calls().is_empty());
    assert!(world.github.secret(&scope, SECRET).is_none());
    assert!(!world
        .github
        .requests()
        .iter()
        .any(|r| r.method != "GET" && r.path.starts_with("/orgs/other-org/")));
}

/// `keep: true` on a persistent runner, in the runner's real layout: RUNNER_TEMP (and with it
/// the container action's home, `RUNNER_TEMP/_github_home`) is emptied at the start and end of
/// every job, so only a CODEX_HOME of the runner's own outside it keeps a login between jobs.
#[test]
fn persistent_runner_keeps_a_newer_file_and_keep_leaves_it() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let kept = tempfile::tempdir().unwrap();
    let codex_home = kept.path().join("codex-home");
    // First job on a persistent runner: refreshes, persists, keeps the file.
    let mut job = world.job(&seed);
    job.persistent_codex_home(&codex_home).input("keep", "true");
    let main = job.main();
    main.assert_ok();
    let post = job.post(&main);
    post.assert_ok();
    let refreshed = world.stored();
    // The runner empties RUNNER_TEMP when the job ends, and again when the next one starts.
    job.empty_runner_temp();
    assert!(
        codex_home.join("auth.json").exists(),
        "keep: true leaves auth.json in a CODEX_HOME outside RUNNER_TEMP"
    );

    // The next job on the same runner still gets the old seed (its run was queued before the
    // write), while the disk holds the newer file: the disk wins, and Codex runs with the
    // live token.
    // (A new job: its RUNNER_TEMP is a new, empty directory, as the runner leaves it.)
    let mut next = Job::new(&world.github, &world.openai);
    next.persistent_codex_home(&codex_home)
        .input("auth-json", seed.to_string())
        .input("token", WRITE_TOKEN)
        .input("keep", "true");
    let main = next.main();
    main.assert_ok();
    assert!(
        main.stdout.contains("after the login in auth-json"),
        "{}",
        main.stdout
    );
    assert_eq!(
        main.output("refreshed"),
        "false",
        "Codex did not refresh in this job"
    );
    let on_disk = next.auth_on_disk();
    assert_eq!(
        on_disk["tokens"]["refresh_token"],
        refreshed["tokens"]["refresh_token"]
    );
    assert_eq!(
        world.stored()["tokens"]["refresh_token"],
        refreshed["tokens"]["refresh_token"]
    );
    let post = next.post(&main);
    post.assert_ok();
    world.assert_no_secret_leaked(&[&main, &post]);
}

/// `keep: true` is the main stage's to check: when a later step points CODEX_HOME into
/// RUNNER_TEMP (through GITHUB_ENV), the post stage still writes back what the main stage
/// restored and a later step refreshed.
#[test]
fn keep_does_not_stop_the_post_stage_when_a_later_step_moves_codex_home() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let kept = tempfile::tempdir().unwrap();
    let mut job = world.job(&seed);
    job.persistent_codex_home(&kept.path().join("codex-home"))
        .input("mode", "restore")
        .input("keep", "true");
    let main = job.main();
    main.assert_ok();
    let step = job.host_step_codex(&main.env_file, 0);
    assert!(
        step.status.success(),
        "{}",
        String::from_utf8_lossy(&step.stderr)
    );
    assert!(world.openai.rotations() >= 1, "the later step refreshed");
    // A later step's `echo "CODEX_HOME=…" >> "$GITHUB_ENV"`, after the main stage's own.
    let mut main = main;
    let moved = job.runner_temp().join("elsewhere");
    main.env_file
        .push_str(&format!("CODEX_HOME={}\n", moved.display()));
    let post = job.post(&main);
    post.assert_ok();
    world.assert_secret_holds_the_latest_login();
}

/// `keep: true` where CODEX_HOME is inside RUNNER_TEMP (the job's own home here, the host
/// face's default there) would keep nothing: refused before any login is restored.
#[test]
fn keep_inside_runner_temp_is_refused_before_anything() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.input("keep", "true");
    let main = job.main();
    assert_ne!(main.code, 0);
    let error = annotation(&main, "Nothing to keep in RUNNER_TEMP");
    assert!(error.contains("is inside RUNNER_TEMP"), "{error}");
    assert!(!job.codex_home().join("auth.json").exists());
    assert_eq!(world.github.requests().len(), 0, "no request to GitHub");
    assert!(world.openai.requests().is_empty(), "Codex never ran");
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
    main.assert_ok();
    assert_eq!(main.output("persisted"), "true");
    for logged in [
        "server error 502; retrying in 1.0 s (attempt 2/5)",
        "server error 503; retrying in 2.0 s (attempt 3/5)",
        "rate limited (429 API rate limit exceeded); retrying in 1.0 s (attempt 4/5)",
        "rate limited (403 You have exceeded a secondary rate limit); retrying in 1.0 s (attempt 5/5)",
    ] {
        assert!(main.stdout.contains(logged), "missing {logged:?} in:\n{}", main.stdout);
    }
    world.assert_secret_holds_the_latest_login();
}

#[test]
fn a_key_rotated_while_codex_runs_is_fetched_again() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.wrap_codex(
        "\"$REAL\" \"$@\"; code=$?\ncurl -fsS -X POST \"$GITHUB_API_URL/_control/rotate-key/repos/octo/repo\" || exit 99\nexit $code",
    );
    let main = job.main();
    main.assert_ok();
    assert!(
        main.stdout.contains("GitHub refused the public key"),
        "{}",
        main.stdout
    );
    let statuses: Vec<(String, u16)> = world
        .github
        .requests()
        .into_iter()
        .map(|r| (r.method, r.status))
        .collect();
    // After the preflight and the probe (PUT, DELETE): the secret's metadata, the PUT with the
    // old key (422), the new key, the PUT.
    assert_eq!(
        statuses[5..],
        [
            ("GET".into(), 200),
            ("PUT".into(), 422),
            ("GET".into(), 200),
            ("PUT".into(), 204)
        ]
    );
    world.assert_secret_holds_the_latest_login();
}

#[test]
fn a_failed_write_is_retried_by_the_post_stage() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    let put = format!("/actions/secrets/{SECRET}");
    world.github.inject(Fault::new(
        "PUT",
        &put,
        403,
        "Resource not accessible by personal access token",
    ));
    let main = job.main();
    assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
    assert_eq!(main.output("refreshed"), "true");
    assert_eq!(main.output("persisted"), "false");
    let message = annotation(&main, "Refreshed login not saved");
    assert!(message.contains("\"Secrets: Read and write\""), "{message}");
    assert!(
        message.contains("still there") && message.contains("post stage tries again"),
        "{message}"
    );
    assert_eq!(world.stored(), seed, "the secret keeps the old value");

    let post = job.post(&main);
    post.assert_ok();
    assert!(
        post.stdout.contains("Updated the repository secret"),
        "{}",
        post.stdout
    );
    world.assert_secret_holds_the_latest_login();
    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn a_write_that_fails_twice_fails_the_job_and_keeps_the_file() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    let put = format!("/actions/secrets/{SECRET}");
    for _ in 0..2 {
        world.github.inject(Fault::new(
            "PUT",
            &put,
            403,
            "Resource not accessible by personal access token",
        ));
    }
    let main = job.main();
    assert_eq!(main.code, 1);
    let post = job.post(&main);
    assert_eq!(post.code, 1, "{}\n{}", post.stdout, post.stderr);
    let message = annotation(&post, "Refreshed login not saved");
    assert!(message.contains("To reseed"), "{message}");
    let on_disk = job.auth_on_disk();
    assert_eq!(
        on_disk["tokens"]["refresh_token"],
        world.openai.latest().refresh_token.as_str()
    );
    assert_eq!(world.stored(), seed);
    assert!(
        post.summary.contains("no: the write failed"),
        "{}",
        post.summary
    );
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
    main.assert_ok();
    assert_eq!(main.output("final-message"), "OK");
    let calls = job.task_calls();
    assert!(
        !calls[0].args.contains(&"--skip-git-repo-check".to_owned()),
        "{:?}",
        calls[0].args
    );
}

#[test]
fn codex_deleting_or_truncating_auth_json_is_never_written_back() {
    let world = World::new(Responses::Ok);
    for (damage, title) in [
        ("rm \"$CODEX_HOME/auth.json\"", "auth.json disappeared"),
        ("head -c 100 \"$CODEX_HOME/auth.json\" > /tmp/half.$$ && mv /tmp/half.$$ \"$CODEX_HOME/auth.json\"", "auth.json is damaged"),
    ] {
        let seed = world.openai.seed(true);
        let mut job = world.job(&seed);
        job.wrap_codex(&format!("\"$REAL\" \"$@\"; code=$?\n{damage}\nexit $code"));
        let main = job.main();
        assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
        assert_eq!(main.output("persisted"), "false");
        assert!(annotation(&main, title).contains("To reseed"));
        let post = job.post(&main);
        assert_eq!(post.code, 1, "{}\n{}", post.stdout, post.stderr);
        assert!(annotation(&post, title).contains("To reseed"));
        assert_eq!(world.writes(), 0);
        world.assert_no_secret_leaked(&[&main, &post]);
    }
}

/// A `codex exec` input on a job of another mode (a prompt on the keeper) does nothing: the
/// job runs, and says so.
#[test]
fn inputs_another_mode_reads_draw_a_warning() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);
    job.input("mode", "refresh")
        .input("prompt", "Fix the failing test")
        .input("model", "gpt-5.1-codex");
    let main = job.main();
    main.assert_ok();
    let message = warning(&main, "Inputs not used in this mode");
    assert!(
        message.starts_with("inputs `prompt`, `model` are not read with `mode: refresh`"),
        "{message}"
    );
    assert!(!world.openai.log().iter().any(|l| l == "responses"));
    let post = job.post(&main);
    post.assert_ok();
}

#[test]
fn refresh_mode_keeps_the_login_fresh_without_a_model_call() {
    let world = World::new(Responses::Ok);
    // Even a fresh login is rotated: the weekly job keeps the refresh token in use.
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);
    job.input("mode", "refresh");
    let main = job.main();
    main.assert_ok();
    assert!(!main.stdout.contains("Inputs not used"), "{}", main.stdout);
    assert_eq!(main.output("refreshed"), "true");
    assert_eq!(main.output("persisted"), "true");
    assert!(main
        .output("final-message")
        .starts_with("Codex refreshed the login (ChatGPT plan: pro)"));
    let log = world.openai.log();
    assert!(log.iter().any(|l| l == "refresh ok (forced)"), "{log:?}");
    assert!(
        !log.iter().any(|l| l == "responses"),
        "no model call: {log:?}"
    );
    world.assert_secret_holds_the_latest_login();
    assert_eq!(
        job.task_calls()[0].args,
        ["app-server", "-c", "cli_auth_credentials_store=\"file\""]
    );
    let post = job.post(&main);
    post.assert_ok();
    world.assert_no_secret_leaked(&[&main, &post]);
}
