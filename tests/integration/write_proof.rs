//! Never lose a rotation: before Codex may rotate the login, the action proves that the
//! rotated login can be written back, with no effect on the stored one. End to end, with the
//! real Codex CLI and the local GitHub's token kinds (see its module doc for how each differs
//! from GitHub's).

use std::time::Duration;

use pretty_assertions::assert_eq;

use crate::support::github::{self, Access, Fault, Request};
use crate::support::job::{Job, StageRun};
use crate::support::openai::Responses;
use crate::support::world::{annotation, World, REPO, SECRET};

/// A fine-grained token with "Secrets: Read-only", the easy mistake on GitHub's token page.
const READ_ONLY: &str = "github_pat_11READONLY000000000_abcdefghijklmnopqrstuvwxyz";

fn methods(requests: &[Request]) -> Vec<(String, u16)> {
    requests
        .iter()
        .map(|r| (r.method.clone(), r.status))
        .collect()
}

#[test]
fn a_read_only_token_stops_the_job_before_codex_and_names_the_permission() {
    let world = World::new(Responses::Ok);
    world.github.add_token(READ_ONLY, Access::ReadOnly);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.input("token", READ_ONLY);

    let main = job.main();
    assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
    let message = annotation(&main, "Cannot write the secret back");
    for part in [
        "creating the probe repository secret CODEX_AUTH_PROBE_",
        "403: Resource not accessible by personal access token",
        "GitHub says this needs \"Secrets: write\"",
        "\"Secrets: Read and write\"",
        "Codex was not run",
        "refresh_token_reused",
    ] {
        assert!(message.contains(part), "{part:?} missing in {message}");
    }
    assert!(job.codex_calls().is_empty(), "Codex must not run");
    assert_eq!(world.openai.rotations(), 0, "nothing was rotated");
    assert_eq!(world.stored(), seed);
    // The probe was refused: nothing was created, nothing is left for the post stage.
    assert_eq!(
        methods(&world.github.probe_requests()),
        [("PUT".to_owned(), 403)]
    );
    let post = job.post(&main);
    post.assert_ok();
    assert_eq!(world.github.probe_requests().len(), 1);
    world.assert_no_probe_left(&github::repo(REPO));
    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn a_fresh_login_sends_no_probe_and_three_requests() {
    let world = World::new(Responses::Ok);
    // Even a read-only token: with no refresh possible, there is nothing to prove.
    world.github.add_token(READ_ONLY, Access::ReadOnly);
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);
    job.input("token", READ_ONLY);
    let main = job.main();
    main.assert_ok();
    assert!(
        main.stdout
            .contains("Codex will not refresh the login before"),
        "{}",
        main.stdout
    );
    assert_eq!(main.output("refreshed"), "false");
    let paths: Vec<String> = world
        .github
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        paths,
        [
            "GET /repos/octo/repo/actions/secrets/public-key",
            "GET /repos/octo/repo/actions/secrets/CODEX_AUTH_JSON",
            "GET /repos/octo/repo/actions/runs/4242",
        ]
    );
}

#[test]
fn a_token_expiring_within_the_job_limit_is_probed_and_a_short_limit_is_not() {
    let world = World::new(Responses::Ok);
    // Valid for 3 hours: Codex would refresh it during a 6-hour job, not during a 1-hour one.
    let mut seed = world.openai.seed(false);
    let exp = crate::support::now() + 3 * 3600;
    seed["tokens"]["access_token"] = crate::support::jwt(&serde_json::json!({"exp": exp})).into();
    for (minutes, probes) in [("60", 0), ("360", 2)] {
        let before = world.github.probe_requests().len();
        let mut job = world.job(&seed);
        job.input("job-timeout-minutes", minutes)
            .wrap_codex("exit 0");
        let main = job.main();
        main.assert_ok();
        assert_eq!(
            world.github.probe_requests().len() - before,
            probes,
            "job-timeout-minutes {minutes}: {}",
            main.stdout
        );
    }
    world.assert_no_probe_left(&github::repo(REPO));
}

#[test]
fn a_successful_run_leaves_no_probe_in_any_target() {
    let world = World::new(Responses::Ok);
    let environment = github::env(REPO, "prod");
    let organization = github::org("octo-org");
    for scope in [&environment, &organization] {
        world.github.add_scope(scope);
    }
    for (scope, input) in [
        (github::repo(REPO), None),
        (environment.clone(), Some(("environment", "prod"))),
        (organization.clone(), Some(("organization", "octo-org"))),
    ] {
        let seed = world.openai.seed(true);
        world.github.set_secret(&scope, SECRET, &seed.to_string());
        let before = world.github.probe_requests().len();
        let mut job = world.job(&seed);
        world.github.set_secret(&scope, SECRET, &seed.to_string());
        if let Some((name, value)) = input {
            job.input(name, value);
        }
        let main = job.main();
        main.assert_ok();
        assert_eq!(main.output("persisted"), "true", "{scope}");
        let probes = world.github.probe_requests()[before..].to_vec();
        assert_eq!(
            methods(&probes),
            [("PUT".to_owned(), 201), ("DELETE".to_owned(), 204)],
            "{scope}"
        );
        let place = match input {
            None => "/repos/octo/repo/actions/secrets/",
            Some(("environment", _)) => "/repos/octo/repo/environments/prod/secrets/",
            Some(_) => "/orgs/octo-org/actions/secrets/",
        };
        assert!(
            probes[0]
                .path
                .starts_with(&format!("{place}{}", github::PROBE_PREFIX)),
            "{}",
            probes[0].path
        );
        if scope.starts_with("orgs/") {
            // Visible to no repository while it exists.
            let body: serde_json::Value = serde_json::from_slice(&probes[0].body).unwrap();
            assert_eq!(body["visibility"], "selected");
            assert_eq!(body["selected_repository_ids"], serde_json::json!([]));
        }
        world.assert_no_probe_left(&scope);
        let post = job.post(&main);
        post.assert_ok();
    }
}

#[test]
fn a_classic_token_without_the_scope_is_refused_without_a_probe() {
    let world = World::new(Responses::Ok);
    let with_repo = "ghp_classicWithRepo000000000000000000000";
    let without = "ghp_classicPublicRepo00000000000000000000";
    world
        .github
        .add_classic_token(with_repo, &["repo", "workflow"]);
    world
        .github
        .add_classic_token(without, &["public_repo", "workflow"]);

    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.input("token", without);
    let main = job.main();
    assert_eq!(main.code, 1, "{}", main.stdout);
    let message = annotation(&main, "Cannot write the secret back");
    assert!(
        message.contains("classic personal access token with the scopes `public_repo, workflow`")
            && message.contains("needs the `repo` scope")
            && message.contains("Codex was not run"),
        "{message}"
    );
    assert!(job.codex_calls().is_empty());
    assert_eq!(world.openai.rotations(), 0);

    assert!(
        world.github.probe_requests().is_empty(),
        "refused by its scopes: no probe"
    );

    // With the scope, the user's own access to the repository still decides: a write proves it.
    let mut job = world.job(&seed);
    job.input("token", with_repo);
    let main = job.main();
    main.assert_ok();
    assert!(
        main.stdout.contains("classic token with the `repo` scope"),
        "{}",
        main.stdout
    );
    assert_eq!(main.output("persisted"), "true");
    assert_eq!(
        methods(&world.github.probe_requests()),
        [("PUT".to_owned(), 201), ("DELETE".to_owned(), 204)]
    );
}

#[test]
fn a_cancelled_job_between_probe_and_delete_still_deletes_the_probe() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    // The delete is held: the job is cancelled while it is in flight.
    let main = signal_between_probe_and_delete(&world, &mut job, "TERM", 5);
    assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
    assert!(annotation(&main, "Job cancelled").contains("before Codex ran"));
    assert!(job.codex_calls().is_empty());
    assert_eq!(world.openai.rotations(), 0);
    assert_eq!(
        methods(&world.github.probe_requests()),
        [("PUT".to_owned(), 201), ("DELETE".to_owned(), 204)]
    );
    world.assert_no_probe_left(&github::repo(REPO));
    let post = job.post(&main);
    post.assert_ok();
}

#[test]
fn a_probe_the_main_stage_could_not_delete_is_deleted_by_the_post_stage() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);

    // Killed outright between probe and delete: only the post stage is left to delete it.
    let mut job = world.job(&seed);
    let main = signal_between_probe_and_delete(&world, &mut job, "KILL", 30);
    world.github.clear_faults();
    let probe = main.state.get("probe_secret").cloned().unwrap_or_default();
    assert!(probe.starts_with(github::PROBE_PREFIX), "{:?}", main.state);
    let post = job.post(&main);
    post.assert_ok();
    assert!(
        post.stdout
            .contains("Deleted the repository secret CODEX_AUTH_PROBE_"),
        "{}",
        post.stdout
    );
    world.assert_no_probe_left(&github::repo(REPO));

    // The delete fails past every retry: a warning, Codex runs, the post stage deletes it.
    let mut job = world.job(&seed);
    job.input("api-timeout", "3");
    world
        .github
        .inject(Fault::new("DELETE", "", 502, "Server Error").always());
    let main = job.main();
    main.assert_ok();
    assert!(
        main.stdout
            .contains("::warning title=codex-auth%3A Probe secret not deleted::"),
        "{}",
        main.stdout
    );
    assert_eq!(main.output("persisted"), "true");
    world.github.clear_faults();
    let post = job.post(&main);
    post.assert_ok();
    world.assert_no_probe_left(&github::repo(REPO));
    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn forged_state_neither_deletes_a_secret_nor_seals_for_another_key() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);
    let mut main = job.main();
    main.assert_ok();
    // A process of the job appended to GITHUB_STATE: the post stage must not obey it.
    main.state
        .insert("probe_secret".to_owned(), SECRET.to_owned());
    let post = job.post(&main);
    post.assert_ok();
    assert_eq!(world.github.count("DELETE"), 0);
    assert_eq!(world.stored(), seed);

    // A key of the attacker's with GitHub's key id: the post stage reads the real key again,
    // so what it writes opens with GitHub's (the local GitHub refuses any other seal).
    let mut job = world.job(&seed);
    job.wrap_codex("exit 0");
    let mut main = job.main();
    main.assert_ok();
    let key_id = world
        .github
        .secret(&github::repo(REPO), SECRET)
        .unwrap()
        .key_id;
    main.state.insert("key_id".to_owned(), key_id);
    main.state.insert(
        "key".to_owned(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned(),
    );
    let refreshed = world.openai.seed(false);
    std::fs::write(
        job.codex_home().join("auth.json"),
        serde_json::to_string_pretty(&refreshed).unwrap(),
    )
    .unwrap();
    let before = world.github.requests().len();
    let post = job.post(&main);
    post.assert_ok();
    assert_eq!(world.stored(), refreshed);
    // The real key, read again, and one write that GitHub took at once.
    let sent: Vec<(String, u16)> = world.github.requests()[before..]
        .iter()
        .map(|r| (format!("{} {}", r.method, r.path), r.status))
        .collect();
    assert_eq!(
        sent,
        [
            (
                "GET /repos/octo/repo/actions/secrets/public-key".to_owned(),
                200
            ),
            (
                "PUT /repos/octo/repo/actions/secrets/CODEX_AUTH_JSON".to_owned(),
                204
            ),
        ]
    );
}

/// Runs the main stage with the probe's delete held for `hold_seconds`, and sends it `signal`
/// once the probe secret exists.
fn signal_between_probe_and_delete(
    world: &World,
    job: &mut Job,
    signal: &str,
    hold_seconds: u64,
) -> StageRun {
    world.github.hold(
        "DELETE",
        github::PROBE_PREFIX,
        Duration::from_secs(hold_seconds),
    );
    let spawned = job.spawn_main_recording();
    let started = std::time::Instant::now();
    while !world
        .github
        .probe_requests()
        .iter()
        .any(|r| r.method == "PUT")
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no probe was made"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    crate::support::send_signal(spawned.child.id(), signal);
    spawned.finish()
}
