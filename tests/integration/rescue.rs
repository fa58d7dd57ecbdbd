//! The rescue (`store: secret` with `artifact-key`): a rotation the secret could not take is
//! kept as the encrypted artifact, and the next run restores it, refreshes with it and writes
//! the secret again. End to end with the real Codex CLI: the local OpenAI's refresh tokens are
//! single-use, so a run that restored anything but the rescued login would fail with
//! `refresh_token_reused`. The local GitHub serves the secrets and (mounted) the local
//! artifact service's REST routes under one `GITHUB_API_URL`, as GitHub does.

use pretty_assertions::assert_eq;
use serde_json::Value;

use codex_auth::seal::artifact::ArtifactKey;

use crate::support::artifacts::Artifacts;
use crate::support::github::Fault;
use crate::support::job::{Job, GITHUB_TOKEN};
use crate::support::openai::Responses;
use crate::support::world::{annotation, World, REPO, SECRET};

const REPOSITORY_ID: u64 = 4711;
const NAME: &str = "codex-auth";

struct Rescue {
    world: World,
    artifacts: Artifacts,
    key: ArtifactKey,
}

impl Rescue {
    fn new() -> Self {
        let world = World::new(Responses::Ok);
        let artifacts = Artifacts::start();
        artifacts.add_repository(REPO, REPOSITORY_ID);
        artifacts.add_token(GITHUB_TOKEN, REPO);
        world.github.mount_artifacts(artifacts.rest_api());
        Self {
            world,
            artifacts,
            key: ArtifactKey::generate(),
        }
    }

    /// A job of run `run_id` whose secret holds `seed`, with the rescue turned on.
    fn job(&self, run_id: u64, seed: &Value) -> Job {
        self.world.github.add_first_attempt(run_id, -60);
        let mut job = self.world.job(seed);
        self.artifacts
            .enroll(&mut job, REPOSITORY_ID, run_id, run_id * 10);
        job.input("artifact-key", self.key.to_base64().expose())
            .input("api-timeout", "3");
        job
    }

    /// The newest rescue artifact, opened with the key.
    fn rescued(&self) -> Value {
        self.artifacts.newest_login(NAME, &self.key, REPOSITORY_ID)
    }
}

/// Every write of the secret answers 502, as when GitHub is down past every retry.
fn secret_writes_fail() -> Fault {
    Fault::new(
        "PUT",
        &format!("/actions/secrets/{SECRET}"),
        502,
        "Server Error",
    )
    .always()
}

#[test]
fn a_rotation_the_secret_cannot_take_is_rescued_and_written_by_the_next_run() {
    let rescue = Rescue::new();
    let world = &rescue.world;
    let seed = world.openai.seed(true);

    // Run 1: Codex rotates the login; every write of the secret fails.
    let mut job = rescue.job(5001, &seed);
    world.github.inject(secret_writes_fail());
    let main = job.main();
    assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
    assert_eq!(main.output("persisted"), "false");
    assert_eq!(world.openai.rotations(), 1);
    let message = annotation(&main, "Refreshed login rescued");
    for part in [
        "server error 502",
        "uploaded as artifact codex-auth",
        "The next run restores it",
    ] {
        assert!(message.contains(part), "{part:?} missing in {message}");
    }
    assert_eq!(world.stored(), seed, "the secret still holds the old login");
    let rescued = rescue.rescued();
    assert_eq!(
        rescued["tokens"]["refresh_token"],
        world.openai.latest().refresh_token.as_str(),
        "the rescue holds the rotated login"
    );
    // The post stage tries the secret again; the login is already rescued.
    let post = job.post(&main);
    assert_eq!(post.code, 1, "{}", post.stdout);
    assert!(annotation(&post, "Refreshed login rescued").contains("already rescued"));
    assert_eq!(rescue.artifacts.artifacts().len(), 1, "uploaded once");
    world.assert_no_secret_leaked(&[&main, &post]);

    // Run 2, GitHub back: the secret's copy is older than the rescue, so the rescue is
    // restored; Codex refreshes with its (single-use) refresh token and the secret is written.
    world.github.clear_faults();
    let mut job = rescue.job(5002, &seed);
    job.input("mode", "refresh");
    let main = job.main();
    main.assert_ok();
    assert!(
        main.stdout
            .contains("Restoring the login rescued in artifact codex-auth"),
        "{}",
        main.stdout
    );
    assert_eq!(main.output("persisted"), "true");
    assert_eq!(world.openai.rotations(), 2);
    assert!(
        !world
            .openai
            .log()
            .iter()
            .any(|l| l.contains("refresh_token_reused")),
        "{:?}",
        world.openai.log()
    );
    world.assert_secret_holds_the_latest_login();
    let post = job.post(&main);
    post.assert_ok();

    // Run 3: the secret is current again; the older rescue is left alone.
    let fresh = world.stored();
    let mut job = rescue.job(5003, &fresh);
    job.wrap_codex("exit 0");
    let main = job.main();
    main.assert_ok();
    assert!(!main.stdout.contains("Restoring the login rescued"));
}

#[test]
fn a_rescue_older_than_a_reseed_is_not_restored() {
    let rescue = Rescue::new();
    let world = &rescue.world;
    let seed = world.openai.seed(true);
    // A rotation rescued, then the secret reseeded by hand with a newer login.
    let mut job = rescue.job(5101, &seed);
    world.github.inject(secret_writes_fail());
    let main = job.main();
    assert_eq!(main.code, 1);
    world.github.clear_faults();
    let mut reseeded = world.openai.seed(true);
    reseeded["last_refresh"] = jiff::Timestamp::now().to_string().into();
    let mut job = rescue.job(5102, &reseeded);
    job.wrap_codex("exit 0");
    let main = job.main();
    main.assert_ok();
    assert!(
        !main.stdout.contains("Restoring the login rescued"),
        "{}",
        main.stdout
    );
}

#[test]
fn without_a_rescue_the_error_says_what_was_lost() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.input("api-timeout", "3");
    world.github.inject(secret_writes_fail());
    let main = job.main();
    assert_eq!(main.code, 1, "{}", main.stdout);
    assert!(annotation(&main, "Refreshed login not saved").contains("The post stage tries again"));
    let post = job.post(&main);
    assert_eq!(post.code, 1);
    let message = annotation(&post, "Refreshed login not saved");
    for part in [
        "server error 502",
        "refresh_token_reused",
        "then reseed",
        "`artifact-key`",
        "To reseed from the browser:",
    ] {
        assert!(message.contains(part), "{part:?} missing in {message}");
    }
    assert_eq!(world.stored(), seed);
}

#[test]
fn a_sign_in_the_secret_cannot_take_is_not_rescued_and_says_what_to_do() {
    let rescue = Rescue::new();
    let world = &rescue.world;
    world.github.add_first_attempt(5301, -60);
    let mut job = crate::login::login_job(world);
    rescue
        .artifacts
        .enroll(&mut job, REPOSITORY_ID, 5301, 53010);
    job.input("artifact-key", rescue.key.to_base64().expose())
        .input("api-timeout", "3");
    // The write check before the sign-in passes (a probe secret); the write of the new login
    // itself fails past every retry.
    world.github.inject(secret_writes_fail());
    let spawned = job.spawn_main_recording();
    let (code, _) = crate::login::code_shown(world, &spawned);
    world.openai.approve(&code);
    let main = spawned.finish();
    assert_eq!(main.code, 1, "{}", main.stdout);
    let message = annotation(&main, "New login not saved");
    for part in [
        "is not kept as a rescue artifact",
        "the stored login, if any, is unchanged",
        "run the sign-in again",
    ] {
        assert!(message.contains(part), "{part:?} missing in {message}");
    }
    assert!(rescue.artifacts.artifacts().is_empty(), "nothing uploaded");
    assert!(world
        .github
        .secret(&crate::support::github::repo(REPO), SECRET)
        .is_none());
}
