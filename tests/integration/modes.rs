//! `mode: restore`: the action only restores the login; later steps of the job run Codex on
//! the host as the runner's user, and the post stage writes back what they refreshed.

use pretty_assertions::assert_eq;

use crate::support::job::{Job, StageRun};
use crate::support::openai::Responses;
use crate::support::world::World;

fn restore_then_host_step(world: &World, job: &mut Job, runner_uid: u32) -> (StageRun, StageRun) {
    let main = job.main();
    main.assert_ok();
    assert!(
        job.codex_calls().is_empty(),
        "restore mode runs no Codex itself"
    );
    assert_eq!(main.output("persisted"), "false");
    // The exported CODEX_HOME is the host path of the restored home.
    let exported = main.output("codex-home").to_owned();
    assert_eq!(exported, job.codex_home().display().to_string());
    assert!(
        main.env_file.contains(&format!("CODEX_HOME={exported}")),
        "{}",
        main.env_file
    );
    let owner = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(job.codex_home().join("auth.json")).unwrap(),
    );
    assert_eq!(
        owner, runner_uid,
        "the runner's user owns the restored file"
    );

    // A later step on the host, as the runner's user, runs Codex: it refreshes the login.
    let step = job.host_step_codex(&main.env_file, runner_uid);
    assert!(
        step.status.success(),
        "{}",
        String::from_utf8_lossy(&step.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&step.stdout).trim(), "OK");
    assert!(world.openai.rotations() >= 1);
    assert_eq!(world.writes(), 0, "nothing written before the post stage");

    let post = job.post(&main);
    post.assert_ok();
    (main, post)
}

#[test]
fn restore_mode_persists_what_a_host_step_refreshed() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.input("mode", "restore").owned_by(65534);
    let (main, post) = restore_then_host_step(&world, &mut job, 65534);
    world.assert_secret_holds_the_latest_login();
    assert!(!job.codex_home().join("auth.json").exists());
    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn restore_mode_in_the_container_exports_the_host_path() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    let image = std::env::var("CODEX_AUTH_TEST_IMAGE")
        .expect("CODEX_AUTH_TEST_IMAGE: run the tests with scripts/test, which builds the image");
    job.input("mode", "restore")
        .in_container(&image)
        .owned_by(1001);
    let (main, post) = restore_then_host_step(&world, &mut job, 1001);
    world.assert_secret_holds_the_latest_login();
    world.assert_no_secret_leaked(&[&main, &post]);
}
