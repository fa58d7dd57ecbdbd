//! A job on a Codex access token (input `codex-access-token`): the real Codex in the real
//! image, under Docker's seccomp profile, checks the token with the local OpenAI and runs a
//! task with a command; nothing is stored, written back or shown.

use crate::support::job::{Job, Seccomp};
use crate::support::openai::Responses;
use crate::support::runner_log::RunnerLog;
use crate::support::world::World;

/// The runner's user on GitHub's hosted runners.
const RUNNER_UID: u32 = 1001;

fn image() -> String {
    std::env::var("CODEX_AUTH_TEST_IMAGE").unwrap_or_else(|_| {
        panic!("CODEX_AUTH_TEST_IMAGE is not set: run the tests with scripts/test, which builds the image with tests/container/build")
    })
}

/// A container job that passes `token` as `codex-access-token`, and nothing that writes.
fn job(world: &World, token: &str) -> Job {
    let mut job = Job::new(&world.github, &world.openai);
    job.input("codex-access-token", token)
        .env("CODEX_AUTHAPI_BASE_URL", world.openai.authapi_url());
    job.in_container(&image())
        .owned_by(RUNNER_UID)
        .seccomp(Seccomp::Docker);
    job
}

#[test]
fn codex_runs_a_task_on_an_access_token_and_nothing_is_written_back() {
    let world = World::new(Responses::Ok);
    let token = world.openai.issue_codex_access_token();
    world
        .openai
        .ask_to_run("echo ran-on-the-token; printenv CODEX_ACCESS_TOKEN >/dev/null && echo token-in-env || echo not-in-env");
    let mut job = job(&world, &token);
    let main = job.main();
    main.assert_ok();
    // Codex checked the token, then ran the command the model asked for and finished.
    let log = world.openai.log();
    assert!(log.contains(&"whoami ok".to_owned()), "{log:?}");
    let outputs = world.openai.tool_outputs();
    assert!(
        outputs.iter().any(|o| o.contains("ran-on-the-token")),
        "{outputs:?}"
    );
    assert_eq!(main.output("final-message"), "Done.");
    assert_eq!(main.output("exit-code"), "0");
    assert_eq!(main.output("commands-run"), "1");
    assert_eq!(main.output("persisted"), "false");
    // The sandbox probe ran without the token: it did not wait for the workspace's policies.
    assert!(
        !main.stdout.contains("cloud config bundle"),
        "{}",
        main.stdout
    );
    // Nothing was written to GitHub, and no auth.json was left behind.
    assert_eq!(world.github.count("PUT"), 0);
    assert!(!job.codex_home().join("auth.json").exists());
    let post = job.post(&main);
    post.assert_ok();
    assert_eq!(world.github.count("PUT"), 0);
    // The token was masked first, and shows nowhere in the log as the runner reads it.
    for run in [&main, &post] {
        let shown = RunnerLog::read(&run.stdout, &run.stderr).shown;
        assert!(!shown.contains(&token), "the token shows:\n{shown}");
        assert!(!run
            .visible()
            .replace(&format!("::add-mask::{token}"), "")
            .contains(&token));
    }
    assert!(main.masks().contains(&token), "{:?}", main.masks());
    world.assert_no_secret_leaked(&[&main, &post]);
    // What a prompt injection can take: the commands Codex runs inherit the token from its
    // environment (Codex 0.171.0's default `shell_environment_policy`), docs/security.md.
    assert!(outputs[0].contains("token-in-env"), "{outputs:?}");
}

#[test]
fn a_token_the_issuer_does_not_know_fails_the_step_and_writes_nothing() {
    let world = World::new(Responses::Ok);
    let mut job = job(&world, "at-not-issued-by-anyone");
    let main = job.main();
    assert_ne!(main.code, 0, "{}", main.stdout);
    assert!(world.openai.log().contains(&"whoami refused".to_owned()));
    assert_eq!(world.github.count("PUT"), 0);
    let post = job.post(&main);
    post.assert_ok();
}
