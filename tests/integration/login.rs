//! `mode: login`: the real `codex login --device-auth`, pointed at the local issuer (its
//! hidden `--experimental_issuer` flag, added by the test's `codex` wrapper, the only test
//! seam), approved or denied by the test while the action waits, as a person would in the
//! browser.

use std::time::{Duration, Instant};

use crate::support::github::{self, Access};
use crate::support::job::{Job, Spawned, WRITE_TOKEN};
use crate::support::openai::Responses;
use crate::support::world::{annotation, World, REPO, SECRET};
use pretty_assertions::assert_eq;

/// A `mode: login` job of `octo/repo`.
pub(crate) fn login_job(world: &World) -> Job {
    let mut job = Job::new(&world.github, &world.openai);
    job.input("mode", "login")
        .input("token", WRITE_TOKEN)
        .input("expected-account", "dev@example.test");
    let issuer = world.openai.issuer();
    job.wrap_codex(&format!(
        "if [ \"$1\" = login ]; then exec \"$REAL\" \"$@\" --experimental_issuer {issuer}; fi\n\
         exec \"$REAL\" \"$@\""
    ));
    job
}

/// Waits until the local issuer handed out a code and the action has announced it (the notice,
/// the summary, then the waiting line, printed last); returns the code and what the action had
/// printed by then.
pub(crate) fn code_shown(world: &World, spawned: &Spawned) -> (String, String) {
    let started = Instant::now();
    loop {
        let stdout = spawned.stdout_so_far();
        if let Some(code) = world.openai.pending_codes().pop() {
            if stdout.contains("Waiting for the sign-in to be approved") {
                return (code, stdout);
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no code shown:\n{stdout}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_nothing_stored(world: &World, before: &Option<String>) {
    let now = world
        .github
        .secret(&github::repo(REPO), SECRET)
        .map(|s| s.value);
    assert_eq!(&now, before, "nothing may be stored");
}

#[test]
fn an_approved_sign_in_is_stored_and_the_next_job_runs_with_it() {
    let world = World::new(Responses::Ok);
    let mut job = login_job(&world);
    let spawned = job.spawn_main_recording();
    let (code, stdout) = code_shown(&world, &spawned);
    // The URL and the code, where the person who started the run sees them first.
    let url = format!("{}/codex/device", world.openai.issuer());
    let notice = stdout
        .lines()
        .find(|l| l.starts_with("::notice"))
        .unwrap()
        .to_owned();
    assert!(notice.contains(&url) && notice.contains(&code), "{notice}");
    let summary = spawned.summary_so_far();
    assert!(
        summary.contains(&format!("<{url}>")) && summary.contains(&format!("**`{code}`**")),
        "{summary}"
    );
    // (`code_shown` waited for the line saying the job waits for the approval.)

    world.openai.approve(&code);
    let main = spawned.finish();
    main.assert_ok();
    assert_eq!(main.output("persisted"), "true");
    assert_eq!(main.output("account"), "d***@example.test (pro)");
    assert!(main
        .stdout
        .contains("Signed in as d***@example.test (pro)."));
    // The announcement the action wrote while Codex waited is its own: kept, not taken for
    // something Codex wrote.
    assert!(
        main.summary.contains(&format!("**`{code}`**")),
        "{}",
        main.summary
    );
    assert!(
        !main
            .stdout
            .contains("Codex wrote to the step's command files"),
        "{}",
        main.stdout
    );
    world.assert_secret_holds_the_latest_login();
    let stored = world.stored();
    let post = job.post(&main);
    post.assert_ok();
    world.assert_no_secret_leaked(&[&main, &post]);
    world.assert_no_probe_left(&github::repo(REPO));

    // The next job restores the new login and runs Codex with it.
    let mut next = world.job(&stored);
    let run = next.main();
    run.assert_ok();
    assert_eq!(run.output("final-message"), "OK");
}

#[test]
fn a_denied_sign_in_stores_nothing_and_says_so() {
    let world = World::new(Responses::Ok);
    let old = world.openai.seed(false);
    world
        .github
        .set_secret(&github::repo(REPO), SECRET, &old.to_string());
    let before = Some(old.to_string());
    let mut job = login_job(&world);
    let spawned = job.spawn_main_recording();
    let (code, _) = code_shown(&world, &spawned);
    world.openai.deny(&code);
    let main = spawned.finish();
    assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
    let message = annotation(&main, "Sign-in failed");
    for part in [
        "device auth failed with status 400",
        "denied",
        "Nothing was stored",
    ] {
        assert!(message.contains(part), "{part:?} missing in {message}");
    }
    assert_eq!(main.output("persisted"), "false");
    assert_nothing_stored(&world, &before);
}

#[test]
fn a_sign_in_nobody_approves_ends_at_the_limit_and_leaves_no_codex_running() {
    let world = World::new(Responses::Ok);
    let mut job = login_job(&world);
    job.input("login-timeout", "3");
    let started = Instant::now();
    let main = job.main();
    // Well past the 3 s limit and the grace Codex is given, well short of Codex's own 15
    // minutes.
    assert!(started.elapsed() < Duration::from_secs(120));
    assert_eq!(main.code, 1, "{}", main.stdout);
    let message = annotation(&main, "Sign-in timed out");
    assert!(
        message.contains("within 3 s") && message.contains("Nothing was stored"),
        "{message}"
    );
    assert_nothing_stored(&world, &None);
    let calls = job.task_calls();
    assert_eq!(calls.len(), 1);
    let alive = std::path::Path::new(&format!("/proc/{}", calls[0].pid)).exists();
    assert!(!alive, "Codex's sign-in is still running");
}

#[test]
fn a_sign_in_of_another_account_is_refused() {
    let world = World::new(Responses::Ok);
    world
        .openai
        .sign_in_as("mallory@example.test", &world.openai.account_id());
    let mut job = login_job(&world);
    job.input("expected-account", "Dev@example.test");
    let spawned = job.spawn_main_recording();
    let (code, _) = code_shown(&world, &spawned);
    world.openai.approve(&code);
    let main = spawned.finish();
    assert_eq!(main.code, 1, "{}", main.stdout);
    let message = annotation(&main, "Wrong account");
    assert!(
        message.contains("approved for m***@example.test (pro)")
            && message.contains("Nothing was stored"),
        "{message}"
    );
    assert!(
        !main.visible().contains("mallory@"),
        "the other account's email is shown only partly"
    );
    assert_nothing_stored(&world, &None);

    // An account id is enforced by Codex itself.
    let mut job = login_job(&world);
    job.input(
        "expected-account",
        "acc-99999999-0000-0000-0000-000000000000",
    );
    let spawned = job.spawn_main_recording();
    let (code, _) = code_shown(&world, &spawned);
    world.openai.approve(&code);
    let main = spawned.finish();
    assert_eq!(main.code, 1, "{}", main.stdout);
    assert!(annotation(&main, "Wrong account").contains("restricted to workspace"));
    assert_nothing_stored(&world, &None);
}

#[test]
fn a_sign_in_without_an_expected_account_is_refused_before_anything() {
    let world = World::new(Responses::Ok);
    let mut job = login_job(&world);
    job.input("expected-account", "");
    let main = job.main();
    assert_eq!(main.code, 1, "{}", main.stdout);
    assert!(
        main.stdout.contains("input `expected-account` is empty")
            && main
                .stdout
                .contains("approve it with an account of their own"),
        "{}",
        main.stdout
    );
    assert!(world.github.requests().is_empty());
    assert!(job.codex_calls().is_empty());
    assert!(world.openai.pending_codes().is_empty());
}

#[test]
fn a_refused_write_preflight_never_starts_the_sign_in() {
    let world = World::new(Responses::Ok);
    let reader = "github_pat_11READONLYLOGIN0000000_abcdefghijklmnopqrstuvwxyz";
    world.github.add_token(reader, Access::ReadOnly);
    let mut job = login_job(&world);
    job.input("token", reader);
    let main = job.main();
    assert_eq!(main.code, 1, "{}", main.stdout);
    assert!(annotation(&main, "Cannot write the secret back").contains("\"Secrets: write\""));
    assert!(
        job.codex_calls().is_empty(),
        "Codex's sign-in must not start"
    );
    assert!(world.openai.pending_codes().is_empty());
    assert!(!world.openai.log().iter().any(|l| l.starts_with("device")));
}

#[test]
fn a_cancelled_sign_in_stops_codex_and_stores_nothing() {
    let world = World::new(Responses::Ok);
    let mut job = login_job(&world);
    let spawned = job.spawn_main_recording();
    code_shown(&world, &spawned);
    crate::support::send_signal(spawned.child.id(), "TERM");
    let main = spawned.finish();
    assert_eq!(main.code, 1, "{}", main.stdout);
    assert!(annotation(&main, "Job cancelled").contains("Codex was stopped"));
    let pid = job.task_calls()[0].pid;
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_nothing_stored(&world, &None);
}
