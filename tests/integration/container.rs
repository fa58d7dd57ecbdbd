//! The real image, run exactly as the runner runs a container action (podman standing in for
//! docker), against the local GitHub and OpenAI servers on the host's loopback.

use pretty_assertions::assert_eq;

use crate::support::openai::Responses;
use crate::support::world::World;

/// The image `scripts/test` built from the project's Dockerfile.
fn image() -> String {
    std::env::var("CODEX_AUTH_TEST_IMAGE").unwrap_or_else(|_| {
        panic!("CODEX_AUTH_TEST_IMAGE is not set: run the tests with scripts/test, which builds the image with tests/container/build")
    })
}

#[test]
fn stale_token_is_refreshed_inside_the_container_and_written_back() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    // The checkout and home belong to the runner's user (uid 1001 on GitHub's runners).
    job.in_container(&image()).owned_by(1001);
    let main = job.main();
    main.assert_ok();
    assert_eq!(main.output("final-message"), "OK");
    assert_eq!(main.output("refreshed"), "true");
    assert_eq!(main.output("persisted"), "true");
    let stored = world.stored();
    assert_eq!(
        stored["tokens"]["refresh_token"],
        world.openai.latest().refresh_token.as_str()
    );
    assert_ne!(
        stored["tokens"]["refresh_token"],
        seed["tokens"]["refresh_token"]
    );
    // Codex ran as the runner's user: the refreshed file is theirs, for later host steps.
    let owner = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(job.codex_home().join("auth.json")).unwrap(),
    );
    assert_eq!(owner, 1001);
    let post = job.post(&main);
    post.assert_ok();
    assert!(
        !job.codex_home().join("auth.json").exists(),
        "post removes auth.json"
    );
    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn fresh_token_writes_nothing_from_the_container() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);
    job.in_container(&image()).owned_by(1001);
    let main = job.main();
    main.assert_ok();
    assert_eq!(main.output("refreshed"), "false");
    assert_eq!(main.output("persisted"), "false");
    let post = job.post(&main);
    post.assert_ok();
    assert_eq!(world.github.count("PUT"), 0);
    assert_eq!(world.stored(), seed);
    world.assert_no_secret_leaked(&[&main, &post]);
}

/// `keep: true` in the container action keeps nothing (its home is `RUNNER_TEMP/_github_home`,
/// which the runner empties between jobs, and the container goes with the step): refused
/// before any login is restored, saying that the secret is the store.
#[test]
fn keep_in_the_container_is_refused_saying_the_secret_is_the_store() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.in_container(&image())
        .owned_by(1001)
        .input("keep", "true");
    let main = job.main();
    assert_ne!(main.code, 0);
    let error = crate::support::world::annotation(&main, "Nothing to keep in the container");
    assert!(error.contains("The secret"), "{error}");
    assert!(error.contains("is where the login is kept"), "{error}");
    assert!(!job.codex_home().join("auth.json").exists());
    assert_eq!(world.github.requests().len(), 0, "no request to GitHub");
    assert_eq!(world.stored(), seed);
}
