//! One keeper, many users (issue 20), end to end with the real Codex CLI: a keeper job
//! (`mode: refresh`, input `access-secret-name`) stores the rotated login, then its
//! access-only copy; task jobs run on the copy with no write token, in parallel, and write
//! nothing; what a copy cannot serve is refused before Codex runs.

use std::time::{Duration, Instant};

use base64::Engine as _;
use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::github::{self, Fault};
use crate::support::job::{Job, StageRun, WRITE_TOKEN};
use crate::support::openai::Responses;
use crate::support::world::{annotation, warning, World, REPO, SECRET};
use crate::support::{jwt, now};

/// The secret the keeper writes the copy to.
const ACCESS: &str = "CODEX_ACCESS_JSON";
const SECRET_PATH: &str = "/repos/octo/repo/actions/secrets/CODEX_AUTH_JSON";
const ACCESS_PATH: &str = "/repos/octo/repo/actions/secrets/CODEX_ACCESS_JSON";

/// What the model asks each task job's Codex to run.
const COMMAND: &str = "echo ran-on-a-copy";

/// A keeper job on the stored login: `mode: refresh`, writing the copy to [`ACCESS`].
fn keeper(world: &World, login: &Value) -> Job {
    let mut job = world.job(login);
    job.input("mode", "refresh")
        .input("access-secret-name", ACCESS);
    job
}

/// A task job on `copy`: no token, no App, nothing but the copy.
fn user(world: &World, copy: &str) -> Job {
    let mut job = Job::new(&world.github, &world.openai);
    job.input("auth-json", copy);
    job
}

/// The stored copy, parsed.
fn stored_copy(world: &World) -> Value {
    let secret = world
        .github
        .secret(&github::repo(REPO), ACCESS)
        .expect("the copy was stored");
    assert!(!secret.value.contains('\n'), "the copy must be one line");
    serde_json::from_str(&secret.value).unwrap()
}

/// `login` as an access-only copy, made here by hand (not by the code under test).
fn copy_of(login: &Value) -> Value {
    let mut copy = login.clone();
    copy["auth_mode"] = "chatgptAuthTokens".into();
    copy["tokens"]["refresh_token"] = "".into();
    copy
}

/// The `exp` claim of a JWT.
fn exp_of(token: &str) -> i64 {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["exp"].as_i64().unwrap()
}

/// The secret writes (PUT, probes aside), in order.
fn secret_puts(world: &World) -> Vec<String> {
    world
        .github
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && !r.path.contains(github::PROBE_PREFIX))
        .map(|r| r.path)
        .collect()
}

/// Requests that change anything on the local GitHub.
fn changes(world: &World) -> Vec<(String, String)> {
    world
        .github
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method, r.path))
        .collect()
}

fn token_requests(world: &World) -> usize {
    world
        .openai
        .requests()
        .iter()
        .filter(|r| r.ends_with("/oauth/token"))
        .count()
}

fn model_calls(world: &World) -> usize {
    world
        .openai
        .requests()
        .iter()
        .filter(|r| *r == "POST /backend-api/codex/responses")
        .count()
}

/// The lines of `run`'s log that contain `text`.
fn lines_with(run: &StageRun, text: &str) -> usize {
    run.stdout.lines().filter(|l| l.contains(text)).count()
}

#[test]
fn keeper_stores_the_login_then_its_copy_and_dates_it() {
    let world = World::new(Responses::Ok);
    // About to refresh (its access token expired): Codex refreshes it as it starts, then the
    // keeper's forced refresh rotates it again; what is stored is the last rotation.
    let seed = world.openai.seed(true);
    let mut job = keeper(&world, &seed);

    let main = job.main();
    main.assert_ok();
    assert_eq!(main.output("refreshed"), "true");
    assert_eq!(main.output("persisted"), "true");
    assert!(world.openai.rotations() >= 1, "{:?}", world.openai.log());
    // The full login first, then the copy: a failed copy never leaves the login unstored.
    assert_eq!(secret_puts(&world), [SECRET_PATH, ACCESS_PATH]);
    world.assert_secret_holds_the_latest_login();
    let stored = world.stored();
    let copy = stored_copy(&world);
    assert_eq!(copy, copy_of(&stored));
    assert_eq!(copy["auth_mode"], "chatgptAuthTokens");
    assert_eq!(copy["tokens"]["refresh_token"], "");
    assert_eq!(
        copy["tokens"]["access_token"],
        world.openai.latest().access_token.as_str()
    );
    assert_eq!(
        copy["tokens"]["account_id"],
        world.openai.account_id().as_str()
    );
    // The summary dates the copy and the keeper's next run (a day before it expires, when
    // task jobs start to warn).
    let exp = exp_of(copy["tokens"]["access_token"].as_str().unwrap());
    let expires = jiff::Timestamp::from_second(exp).unwrap();
    let latest = jiff::Timestamp::from_second(exp - 86_400).unwrap();
    for row in [
        "| Access-only copy | written to the repository secret CODEX_ACCESS_JSON of octo/repo |"
            .to_owned(),
        format!("| Copy expires | {expires} ("),
        format!("| Next keeper run, at the latest | {latest} ("),
    ] {
        assert!(main.summary.contains(&row), "{row}\n{}", main.summary);
    }

    // Post: both were written in main; nothing more.
    let post = job.post(&main);
    post.assert_ok();
    assert_eq!(secret_puts(&world).len(), 2);
    world.assert_no_probe_left(&github::repo(REPO));
    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn keeper_whose_copy_cannot_be_written_keeps_the_login_and_fails() {
    // Refused outright, and failing until the step's API time runs out.
    for (status, message, api_timeout) in [
        (
            403,
            "Resource not accessible by personal access token",
            "300",
        ),
        (502, "Bad Gateway", "3"),
    ] {
        let world = World::new(Responses::Ok);
        let seed = world.openai.seed(false);
        let mut job = keeper(&world, &seed);
        job.input("api-timeout", api_timeout);
        world
            .github
            .inject(Fault::new("PUT", &format!("/secrets/{ACCESS}"), status, message).always());

        let main = job.main();
        assert_eq!(main.code, 1, "{status}: {}\n{}", main.stdout, main.stderr);
        // The rotated login is stored; the copy is not.
        assert_eq!(main.output("persisted"), "true", "{status}");
        world.assert_secret_holds_the_latest_login();
        assert_ne!(
            world.stored()["tokens"]["refresh_token"],
            seed["tokens"]["refresh_token"]
        );
        assert!(world.github.secret(&github::repo(REPO), ACCESS).is_none());
        let puts = secret_puts(&world);
        assert_eq!(
            puts.first().map(String::as_str),
            Some(SECRET_PATH),
            "{puts:?}"
        );
        assert!(puts[1..].iter().all(|p| p == ACCESS_PATH), "{puts:?}");
        let error = annotation(&main, "Access-only copy not written");
        assert!(
            error.contains("the login was stored in")
                && error.contains("repository secret CODEX_ACCESS_JSON")
                && error.contains(&status.to_string())
                && error.contains("run the keeper again"),
            "{status}: {error}"
        );
        assert!(
            main.summary.contains(
                "| Access-only copy | NOT written to the repository secret CODEX_ACCESS_JSON of \
                 octo/repo (see the error) |"
            ),
            "{}",
            main.summary
        );
        assert!(
            !main.summary.contains("| Copy expires |"),
            "{}",
            main.summary
        );

        // The post stage loses nothing: the stored login stays the latest, nothing is deleted.
        let post = job.post(&main);
        post.assert_ok();
        world.assert_secret_holds_the_latest_login();
        assert_eq!(world.writes(), 1, "{status}");
        let deleted: Vec<(String, String)> = changes(&world)
            .into_iter()
            .filter(|(method, path)| method == "DELETE" && !path.contains(github::PROBE_PREFIX))
            .collect();
        assert_eq!(deleted, Vec::<(String, String)>::new(), "{status}");
        assert!(!job.codex_home().join("auth.json").exists());
        world.assert_no_probe_left(&github::repo(REPO));

        // The keeper's next run, once the cause is gone, finds the copy missing and writes
        // the login and its copy, even as a `codex exec` keeper whose fresh login Codex does
        // not refresh.
        world.github.clear_faults();
        world.github.add_first_attempt(4243, 60);
        let rotations = world.openai.rotations();
        let login = world
            .github
            .secret(&github::repo(REPO), SECRET)
            .unwrap()
            .value;
        let mut next = Job::new(&world.github, &world.openai);
        next.env("GITHUB_RUN_ID", "4243");
        next.input("auth-json", login)
            .input("token", WRITE_TOKEN)
            .input("access-secret-name", ACCESS);
        let again = next.main();
        again.assert_ok();
        assert!(
            again
                .stdout
                .contains("does not exist yet: this job writes it after the login"),
            "{status}: {}",
            again.stdout
        );
        assert_eq!(world.openai.rotations(), rotations, "{status}");
        let puts = secret_puts(&world);
        assert_eq!(
            puts[puts.len() - 2..],
            [SECRET_PATH, ACCESS_PATH],
            "{status}"
        );
        world.assert_secret_holds_the_latest_login();
        assert_eq!(stored_copy(&world), copy_of(&world.stored()), "{status}");
        let after = next.post(&again);
        after.assert_ok();
        world.assert_no_secret_leaked(&[&main, &post, &again, &after]);
    }
}

/// Eight task jobs start at once on one copy, each running a real `codex exec` in which the
/// model asks for a command; while every one of them waits between its command and its next
/// turn, the keeper rotates the login; then they all finish, on the copy's access token.
///
/// How the local OpenAI differs from the real one here: it keeps every access token it
/// issued valid until its `exp` (a rotation revokes none; it revokes only when a test asks,
/// [`crate::support::openai::OpenAi::expire_access_after_tool_call`], which this one does
/// not). The design relies on the real backend doing the same with an access token, a JWT
/// that works until its `exp` (docs/facts.md, "Access-only logins": a copy "works until its
/// access token expires"); that a refresh does not revoke the access token it replaces is
/// not observed here, only assumed. If the real backend revoked it, task jobs would fail
/// with 401 after each keeper run, as this case does against a fake that revokes on
/// rotation (tried by hand). The hold between a command and the next turn is the fake's
/// ([`crate::support::openai::OpenAi::hold_tool_outputs`]), so that the rotation falls in
/// the middle of every job and not just maybe.
#[test]
fn eight_task_jobs_on_one_copy_while_the_keeper_rotates() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    // The keeper publishes the copy the users get.
    let first = keeper(&world, &seed).main();
    first.assert_ok();
    let copy = world
        .github
        .secret(&github::repo(REPO), ACCESS)
        .unwrap()
        .value;
    let github_before = world.github.requests().len();
    assert_eq!(token_requests(&world), 1);

    world.openai.ask_to_run(COMMAND);
    world.openai.hold_tool_outputs();
    let started = Instant::now();
    let mut users: Vec<(Job, _)> = (0..8)
        .map(|_| {
            let mut job = user(&world, &copy);
            let run = job.spawn_main_recording();
            (job, run)
        })
        .collect();
    // Every user ran its command and waits to hand the output to the model.
    while world.openai.held() < 8 {
        if started.elapsed() > Duration::from_secs(300) {
            world.openai.release_tool_outputs();
            let logs: Vec<String> = users.iter().map(|(_, r)| r.stdout_so_far()).collect();
            panic!(
                "only {} of 8 task jobs reached their command: {:?}\n{}",
                world.openai.held(),
                world.openai.requests(),
                logs.join("\n---\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(model_calls(&world), 8);
    // The keeper rotates the login in between (its next scheduled run: [`keeper`] gives it the
    // stored login, as set before that run was queued).
    let stored = world.stored();
    let rotation = keeper(&world, &stored).main();
    rotation.assert_ok();
    assert_eq!(world.openai.rotations(), 2, "{:?}", world.openai.log());
    world.openai.release_tool_outputs();
    let runs: Vec<StageRun> = users.drain(..).map(|(_, run)| run.finish()).collect();
    let elapsed = started.elapsed();

    for run in &runs {
        run.assert_ok();
        assert_eq!(run.output("exit-code"), "0");
        assert_eq!(run.output("final-message"), "Done.");
        assert_eq!(run.output("persisted"), "false");
        assert_eq!(lines_with(run, "writes nothing back"), 1, "{}", run.stdout);
    }
    // Every command ran, and every job's next turn went out after the rotation, on the
    // copy's access token, which the rotation left valid.
    let outputs = world.openai.tool_outputs();
    assert_eq!(outputs.len(), 8, "{outputs:?}");
    assert!(
        outputs
            .iter()
            .all(|o| o.contains("exited with code 0") && o.contains("ran-on-a-copy")),
        "{outputs:?}"
    );
    assert_eq!(model_calls(&world), 16);
    // No user asked for new tokens: the two refreshes are the keeper's.
    assert_eq!(token_requests(&world), 2, "{:?}", world.openai.requests());
    // The keeper's login is the latest, and so is its copy.
    world.assert_secret_holds_the_latest_login();
    assert_eq!(stored_copy(&world), copy_of(&world.stored()));
    // No user sent GitHub anything: every request since the users started is the keeper's,
    // with its write token, and the writes are the keeper's two.
    let since: Vec<_> = world.github.requests()[github_before..].to_vec();
    assert!(
        since
            .iter()
            .all(|r| r.token.as_deref().is_some_and(|t| t.ends_with(WRITE_TOKEN))),
        "{since:?}"
    );
    assert_eq!(
        secret_puts(&world),
        [SECRET_PATH, ACCESS_PATH, SECRET_PATH, ACCESS_PATH]
    );
    let mut all: Vec<&StageRun> = runs.iter().collect();
    all.extend([&first, &rotation]);
    world.assert_no_secret_leaked(&all);
    eprintln!("eight task jobs and a keeper: {elapsed:?}");
}

/// A job given a copy it cannot use, and what it must say.
struct Refusal {
    case: &'static str,
    /// Input `auth-json`.
    copy: String,
    /// Inputs beyond `auth-json`.
    inputs: &'static [(&'static str, &'static str)],
    /// The error annotation's title.
    title: &'static str,
    /// What its message says, among other things.
    says: &'static [&'static str],
}

#[test]
fn copies_a_job_cannot_use_are_refused_before_codex() {
    let world = World::new(Responses::Ok);
    let login = world.openai.seed(false);
    let with_access_token = |claims: Value| {
        let mut copy = copy_of(&login);
        copy["tokens"]["access_token"] = jwt(&claims).into();
        copy.to_string()
    };
    let copy = copy_of(&login).to_string();
    let mut half = login.clone();
    half["auth_mode"] = "chatgptAuthTokens".into();
    let cases = [
        Refusal {
            case: "expires within the job",
            // 30 minutes left; the job may run 360.
            copy: with_access_token(serde_json::json!({"exp": now() + 1800, "sub": "user-1"})),
            inputs: &[],
            title: "Access-only copy expires during the job",
            says: &[
                "before this job's time limit ends",
                "`job-timeout-minutes`: 360 min",
                "keeper",
            ],
        },
        Refusal {
            case: "no exp",
            copy: with_access_token(serde_json::json!({"sub": "user-1"})),
            inputs: &[],
            title: "Access-only copy unusable",
            says: &["has no readable `exp`", "keeper"],
        },
        Refusal {
            case: "a refresh token",
            copy: half.to_string(),
            inputs: &[],
            title: "Invalid auth-json",
            says: &[
                "`tokens.refresh_token` is not empty",
                "`access-secret-name`",
            ],
        },
        Refusal {
            case: "mode: refresh",
            copy: copy.clone(),
            inputs: &[("mode", "refresh"), ("token", WRITE_TOKEN)],
            title: "Access-only copy not usable here",
            says: &[
                "`mode: refresh`",
                "a copy cannot be refreshed",
                "the full login",
            ],
        },
        Refusal {
            case: "a keeper",
            copy,
            inputs: &[("access-secret-name", ACCESS), ("token", WRITE_TOKEN)],
            title: "Access-only copy not usable here",
            says: &["`access-secret-name` (CODEX_ACCESS_JSON)", "remove"],
        },
    ];
    for Refusal {
        case,
        copy,
        inputs,
        title,
        says,
    } in cases
    {
        let mut job = user(&world, &copy);
        for (name, value) in inputs {
            job.input(name, *value);
        }
        let main = job.main();
        assert_eq!(main.code, 1, "{case}: {}\n{}", main.stdout, main.stderr);
        let message = annotation(&main, title);
        for said in says {
            assert!(message.contains(said), "{case}: {said:?} not in {message}");
        }
        assert!(message.contains("Codex was not run"), "{case}: {message}");
        assert!(job.codex_calls().is_empty(), "{case}: Codex ran");
        assert!(!job.codex_home().join("auth.json").exists(), "{case}");
        assert_eq!(main.output("persisted"), "false", "{case}");
        let post = job.post(&main);
        post.assert_ok();
        world.assert_no_secret_leaked(&[&main, &post]);
    }
    assert_eq!(world.openai.requests(), Vec::<String>::new());
    assert_eq!(changes(&world), Vec::<(String, String)>::new());
}

#[test]
fn a_task_job_with_a_token_and_a_copy_writes_nothing() {
    let world = World::new(Responses::Ok);
    let login = world.openai.seed(false);
    world
        .github
        .set_secret(&github::repo(REPO), SECRET, &login.to_string());
    let before = world.github.secret(&github::repo(REPO), SECRET).unwrap();
    let mut job = user(&world, &copy_of(&login).to_string());
    job.input("token", WRITE_TOKEN);

    let main = job.main();
    main.assert_ok();
    assert_eq!(main.output("final-message"), "OK");
    assert_eq!(main.output("persisted"), "false");
    assert_eq!(main.output("refreshed"), "false");
    assert_eq!(
        lines_with(&main, "writes nothing back"),
        1,
        "{}",
        main.stdout
    );
    assert_eq!(
        lines_with(&main, "Inputs `token` / `app-id` are not used"),
        1
    );
    let post = job.post(&main);
    post.assert_ok();
    assert_eq!(
        lines_with(&post, "nothing to write back"),
        1,
        "{}",
        post.stdout
    );
    assert!(!job.codex_home().join("auth.json").exists());

    // Not a request: the event payload says the repository is private, and nothing is proven
    // or written.
    assert_eq!(changes(&world), Vec::<(String, String)>::new());
    assert_eq!(
        world.github.requests().len(),
        0,
        "{:?}",
        world.github.requests()
    );
    assert_eq!(token_requests(&world), 0);
    let after = world.github.secret(&github::repo(REPO), SECRET).unwrap();
    assert_eq!(
        (after.value, after.updated_at),
        (before.value, before.updated_at)
    );
    world.assert_no_secret_leaked(&[&main, &post]);
}

/// The keeper's main stage cannot store the rotated login (refused once): the post stage
/// stores it, then its copy, and dates the copy in its own summary.
#[test]
fn keeper_whose_main_write_fails_writes_both_in_post() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let mut job = keeper(&world, &seed);
    world.github.inject(Fault::new(
        "PUT",
        &format!("/secrets/{SECRET}"),
        403,
        "Resource not accessible by personal access token",
    ));

    let main = job.main();
    assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
    assert_eq!(main.output("persisted"), "false");
    assert!(world.github.secret(&github::repo(REPO), ACCESS).is_none());

    let post = job.post(&main);
    post.assert_ok();
    assert_eq!(secret_puts(&world), [SECRET_PATH, SECRET_PATH, ACCESS_PATH]);
    world.assert_secret_holds_the_latest_login();
    assert_eq!(stored_copy(&world), copy_of(&world.stored()));
    let exp = exp_of(world.openai.latest().access_token.as_str());
    let expires = jiff::Timestamp::from_second(exp).unwrap();
    assert!(
        post.summary
            .contains(&format!("| Copy expires | {expires} (")),
        "{}",
        post.summary
    );
    world.assert_no_secret_leaked(&[&main, &post]);
}

/// `codex-auth seed --access-secret-name` from a trusted machine, then a task job on the copy
/// it stored: Codex runs on it, and nobody refreshes.
#[test]
fn a_seeded_copy_runs_a_task_job() {
    let world = World::new(Responses::Ok);
    let login = world.openai.seed(false);
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".codex")).unwrap();
    std::fs::write(
        home.path().join(".codex/auth.json"),
        serde_json::to_string_pretty(&login).unwrap(),
    )
    .unwrap();
    let seeded = std::process::Command::new(env!("CARGO_BIN_EXE_codex-auth"))
        .args(["seed", "--repo", REPO, "--access-secret-name", ACCESS])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("GITHUB_API_URL", world.github.url())
        .env("GH_TOKEN", WRITE_TOKEN)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        seeded.status.success(),
        "{}{}",
        String::from_utf8_lossy(&seeded.stdout),
        String::from_utf8_lossy(&seeded.stderr)
    );
    assert_eq!(secret_puts(&world), [SECRET_PATH, ACCESS_PATH]);
    let copy = stored_copy(&world);
    assert_eq!(copy, copy_of(&login));

    world.openai.ask_to_run(COMMAND);
    let mut job = user(&world, &copy.to_string());
    let main = job.main();
    main.assert_ok();
    assert_eq!(main.output("final-message"), "Done.");
    let outputs = world.openai.tool_outputs();
    assert!(
        outputs.len() == 1 && outputs[0].contains("ran-on-a-copy"),
        "{outputs:?}"
    );
    let post = job.post(&main);
    post.assert_ok();
    assert_eq!(token_requests(&world), 0);
    assert_eq!(secret_puts(&world).len(), 2);
    world.assert_no_secret_leaked(&[&main, &post]);
}

/// An organization keeper: a new copy is visible to the keeper's repository alone, like a new
/// login; once the user selects the task repositories for the copy, later writes keep that
/// selection, and the full login's never widens.
#[test]
fn an_organization_keeper_keeps_the_copy_selection_and_never_widens_the_login() {
    let world = World::new(Responses::Ok);
    let scope = github::org("octo-org");
    world.github.add_scope(&scope);
    let seed = world.openai.seed(false);
    world.github.set_secret(&scope, SECRET, &seed.to_string());
    world
        .github
        .set_visibility(&scope, SECRET, "selected", &[4711]);
    // Two scheduled runs of the keeper: 4242, and 4243, queued after the first one stored the
    // login (added just before it runs, so a slow first run cannot outlast its queue time).
    let run_keeper = |login: &str, run: &str| {
        let mut job = Job::new(&world.github, &world.openai);
        job.env("GITHUB_RUN_ID", run);
        job.input("auth-json", login)
            .input("token", WRITE_TOKEN)
            .input("organization", "octo-org")
            .input("mode", "refresh")
            .input("access-secret-name", ACCESS)
            .env("GITHUB_REPOSITORY_ID", "4711");
        let main = job.main();
        main.assert_ok();
        assert_eq!(main.output("persisted"), "true");
        main
    };
    let selection = |name: &str| {
        let secret = world.github.secret(&scope, name).unwrap();
        (secret.visibility, secret.selected_repository_ids)
    };

    let first = run_keeper(&seed.to_string(), "4242");
    assert_eq!(selection(ACCESS), (Some("selected".into()), vec![4711]));
    // The person selects the task repositories for the copy alone.
    world
        .github
        .set_visibility(&scope, ACCESS, "selected", &[4711, 101, 202]);
    let login = world.github.secret(&scope, SECRET).unwrap().value;
    world.github.add_first_attempt(4243, 60);
    let second = run_keeper(&login, "4243");

    assert_eq!(
        selection(ACCESS),
        (Some("selected".into()), vec![4711, 101, 202])
    );
    assert_eq!(selection(SECRET), (Some("selected".into()), vec![4711]));
    let stored: Value =
        serde_json::from_str(&world.github.secret(&scope, SECRET).unwrap().value).unwrap();
    assert_eq!(
        stored["tokens"]["refresh_token"],
        world.openai.latest().refresh_token.as_str()
    );
    let copy: Value =
        serde_json::from_str(&world.github.secret(&scope, ACCESS).unwrap().value).unwrap();
    assert_eq!(copy, copy_of(&stored));
    world.assert_no_secret_leaked(&[&first, &second]);
}

/// The refusal's boundary is the job's own limit: the copy that is refused above (30 minutes
/// left) serves a job that may run 10 minutes, with a warning that the keeper is late.
#[test]
fn a_copy_that_outlives_a_short_job_serves_it_with_a_warning() {
    let world = World::new(Responses::Ok);
    let mut copy = copy_of(&world.openai.seed(false));
    copy["tokens"]["access_token"] =
        jwt(&serde_json::json!({"exp": now() + 1800, "sub": "user-1"})).into();
    let mut job = user(&world, &copy.to_string());
    job.input("mode", "restore")
        .input("job-timeout-minutes", "10");

    let main = job.main();
    main.assert_ok();
    let warned = warning(&main, "Access-only copy expires soon");
    assert!(
        warned.contains("The keeper has not published a newer copy"),
        "{warned}"
    );
    let restored: Value =
        serde_json::from_str(&std::fs::read_to_string(job.codex_home().join("auth.json")).unwrap())
            .unwrap();
    assert_eq!(restored, copy);
    let post = job.post(&main);
    post.assert_ok();
    assert!(!job.codex_home().join("auth.json").exists());
    assert_eq!(world.github.requests().len(), 0);
    assert_eq!(world.openai.requests(), Vec::<String>::new());
}
