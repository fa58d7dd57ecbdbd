//! Concurrency, unsafe contexts and injected faults: nothing lost, nothing leaked, every failure
//! loud and bounded.

use std::time::{Duration, Instant};

use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use crate::support::github::{self, Access, Fault, Run};
use crate::support::openai::Responses;
use crate::support::raw::{self, Broken, Relay};
use crate::support::world::{annotation, warning, World, REPO, SECRET};

// ---- Concurrency: one credential, one serialized stream ----

#[test]
fn a_secret_written_after_the_run_was_queued_stops_the_job_before_codex() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    // Another job wrote the secret 5 s ago; this run was queued a minute ago.
    world
        .github
        .set_secret_at(&github::repo(REPO), SECRET, "{\"newer\":true}", -5);
    let main = job.main();
    assert_eq!(main.code, 1, "{}", main.stdout);
    assert_eq!(main.output("persisted"), "false");
    let message = annotation(&main, "Secret changed after this run was queued");
    for part in [
        "another job refreshed the login",
        "Codex was not run",
        "Re-run the job",
        "concurrency:",
    ] {
        assert!(message.contains(part), "{part:?} missing in {message}");
    }
    assert!(job.codex_calls().is_empty());
    assert_eq!(world.openai.rotations(), 0);
    let post = job.post(&main);
    assert_eq!(post.code, 0, "{}", post.stdout);
    assert_eq!(world.github.count("PUT"), 0);
}

#[test]
fn a_rerun_queued_after_the_write_proceeds() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    world
        .github
        .set_secret_at(&github::repo(REPO), SECRET, &seed.to_string(), -30);
    // Attempt 2 of the same run started after that write, so it received the new value.
    world.github.add_run(
        4242,
        Run {
            created_at: world.github.timestamp(-600),
            run_started_at: world.github.timestamp(-10),
            run_attempt: 2,
        },
    );
    job.env("GITHUB_RUN_ATTEMPT", "2");
    let main = job.main();
    main.assert_ok();
    assert_eq!(main.output("persisted"), "true");
}

#[test]
fn without_actions_read_the_check_is_skipped_with_a_warning() {
    let world = World::new(Responses::Ok);
    let token = "github_pat_11SECRETSONLY00000000_qwertyuiopasdfghjklzxcvbnm";
    world.github.add_token(token, Access::SecretsOnly);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.input("token", token);
    let main = job.main();
    main.assert_ok();
    let message = warning(&main, "Concurrent-use check skipped");
    assert!(message.contains("\"Actions: Read\""), "{message}");
    assert_eq!(main.output("persisted"), "true", "{}", main.stdout);
}

/// While Codex runs, another job writes the secret (through the test server's control door).
const OTHER_JOB_WRITES: &str = "\"$REAL\" \"$@\"; code=$?\ncurl -fsS -X POST --data '{\"other\":\"job\"}' \"$GITHUB_API_URL/_control/write-secret/repos/octo/repo/CODEX_AUTH_JSON\" || exit 99\nexit $code";

#[test]
fn a_write_by_another_job_during_this_one_warns_and_keeps_our_rotation() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.wrap_codex(OTHER_JOB_WRITES);
    let main = job.main();
    main.assert_ok();
    let message = warning(&main, "Concurrent use of the login");
    assert!(
        message.contains("written by another job while this one ran"),
        "{message}"
    );
    world.assert_secret_holds_the_latest_login();
}

#[test]
fn a_write_by_another_job_with_our_tokens_unchanged_writes_nothing() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);
    job.wrap_codex(OTHER_JOB_WRITES);
    let main = job.main();
    main.assert_ok();
    assert_eq!(main.output("persisted"), "false");
    let post = job.post(&main);
    assert_eq!(post.code, 0, "{}", post.stdout);
    assert_eq!(
        world.stored(),
        json!({"other": "job"}),
        "the other job's write stays"
    );
}

// ---- Unsafe contexts ----

#[test]
fn a_public_repository_is_refused_unless_allowed() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let public =
        json!({"repository": {"full_name": REPO, "private": false, "visibility": "public"}});
    let mut job = world.job(&seed);
    job.event("push", &public);
    let main = job.main();
    assert_eq!(main.code, 1, "{}", main.stdout);
    let message = annotation(&main, "Public repository");
    assert!(
        message.contains("allow-public-repository: true"),
        "{message}"
    );
    assert!(job.codex_calls().is_empty());
    assert!(
        world.github.requests().is_empty(),
        "decided from the payload alone"
    );

    let mut job = world.job(&seed);
    job.event("push", &public)
        .input("allow-public-repository", "true");
    let main = job.main();
    main.assert_ok();
}

#[test]
fn visibility_comes_from_the_api_when_the_payload_is_silent() {
    let world = World::new(Responses::Ok);
    world.github.make_public(REPO);
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);
    job.event("schedule", &json!({"schedule": "17 6 * * 1"}));
    let main = job.main();
    assert_eq!(main.code, 1, "{}", main.stdout);
    annotation(&main, "Public repository");
    let paths: Vec<String> = world
        .github
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, ["/repos/octo/repo"]);
    assert!(job.codex_calls().is_empty());
}

#[test]
fn pull_request_target_and_fork_pull_requests_are_refused() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);
    job.event(
        "pull_request_target",
        &json!({"repository": {"private": true}}),
    );
    let main = job.main();
    assert_eq!(main.code, 1);
    assert!(annotation(&main, "Unsafe event").contains("`pull_request_target`"));

    let mut job = world.job(&seed);
    job.event(
        "pull_request",
        &json!({
            "repository": {"full_name": REPO, "private": true},
            "pull_request": {
                "head": {"repo": {"full_name": "mallory/repo", "fork": true}},
                "base": {"repo": {"full_name": REPO}}
            }
        }),
    );
    let main = job.main();
    assert_eq!(main.code, 1);
    assert!(annotation(&main, "Unsafe event").contains("from a fork (mallory/repo)"));
    assert!(job.codex_calls().is_empty());
    assert!(world.github.requests().is_empty());
}

#[test]
fn workflow_run_triggered_by_a_forks_pull_request_is_refused() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let triggered_by = |head: &str, fork: bool| {
        json!({
            "repository": {"full_name": REPO, "private": true, "default_branch": "main"},
            "workflow_run": {
                "event": "pull_request",
                "head_branch": "patch-1",
                "head_repository": {"full_name": head, "fork": fork},
                "repository": {"full_name": REPO}
            }
        })
    };
    let mut job = world.job(&seed);
    job.input("mode", "restore")
        .event("workflow_run", &triggered_by("mallory/repo", true));
    let main = job.main();
    assert_eq!(main.code, 1);
    let message = annotation(&main, "Unsafe event");
    assert!(
        message.contains(
            "`workflow_run` triggered by a run from a fork (mallory/repo, event `pull_request`)"
        ),
        "{message}"
    );
    assert!(!job.codex_home().join("auth.json").exists());
    assert!(world.github.requests().is_empty());

    // A run of one of this repository's own branches may trigger it.
    let mut job = world.job(&seed);
    job.input("mode", "restore")
        .event("workflow_run", &triggered_by(REPO, false));
    job.main().assert_ok();
    assert_eq!(job.auth_on_disk(), seed);
}

// ---- Faults ----

#[test]
fn rate_limit_reset_is_waited_for_then_persisted() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    let reset = (crate::support::now() + 2).to_string();
    world.github.inject(
        Fault::new(
            "PUT",
            &format!("/actions/secrets/{SECRET}"),
            403,
            "API rate limit exceeded",
        )
        .header("x-ratelimit-remaining", "0")
        .header("x-ratelimit-reset", reset),
    );
    let main = job.main();
    main.assert_ok();
    assert!(
        main.stdout
            .contains("rate limited (403 API rate limit exceeded); retrying in"),
        "{}",
        main.stdout
    );
    assert_eq!(main.output("persisted"), "true");
}

#[test]
fn a_wait_longer_than_api_timeout_fails_at_once_and_post_tries_again() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.input("api-timeout", "5");
    world.github.inject(
        Fault::new(
            "PUT",
            &format!("/actions/secrets/{SECRET}"),
            429,
            "API rate limit exceeded",
        )
        .header("retry-after", "3600"),
    );
    let started = Instant::now();
    let main = job.main();
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "it must not wait"
    );
    assert_eq!(main.code, 1, "{}", main.stdout);
    let message = annotation(&main, "Refreshed login not saved");
    assert!(
        message.contains("wait 3600 s") && message.contains("`api-timeout`"),
        "{message}"
    );
    assert_eq!(
        job.auth_on_disk()["tokens"]["refresh_token"],
        world.openai.latest().refresh_token.as_str()
    );
    let post = job.post(&main);
    assert_eq!(post.code, 0, "{}", post.stdout);
    world.assert_secret_holds_the_latest_login();
}

#[test]
fn unknown_environment_and_organization_name_the_input() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    for (input, value, named) in [
        ("environment", "nope", "input `environment`"),
        ("organization", "nope-org", "input `organization`"),
    ] {
        let mut job = world.job(&seed);
        job.input(input, value);
        let main = job.main();
        assert_eq!(main.code, 1, "{}", main.stdout);
        let message = annotation(&main, "Cannot write the secret back");
        assert!(
            message.contains("404 Not Found") && message.contains(named),
            "{message}"
        );
        assert!(job.codex_calls().is_empty());
    }
}

#[test]
fn transport_failures_are_bounded_and_keep_the_refreshed_file() {
    let world = World::new(Responses::Ok);
    let github_port: u16 = world
        .github
        .url()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap();
    for (kind, broken, expected) in [
        ("refused", Broken::Refused, "Connection refused"),
        ("silent", Broken::Silent, "no answer within 3 s"),
        ("cut short", Broken::CutShort, "request failed"),
    ] {
        let seed = world.openai.seed(true);
        let mut job = world.job(&seed);
        // The API works for the main stage and breaks, at the same address, before the post
        // stage (which talks to the address the main stage saw).
        let relay = Relay::to(github_port);
        job.input("api-timeout", "3").env(
            "GITHUB_API_URL",
            format!("http://127.0.0.1:{}", relay.port()),
        );
        // Main's write is refused, so the refreshed file is left for the post stage...
        world.github.inject(Fault::new(
            "PUT",
            &format!("/actions/secrets/{SECRET}"),
            403,
            "Resource not accessible by personal access token",
        ));
        let main = job.main();
        assert_eq!(main.code, 1, "{kind}: {}\n{}", main.stdout, main.stderr);
        // ... whose API is now unreachable in one of three ways.
        relay.r#break(broken);
        let started = Instant::now();
        let post = job.post(&main);
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{kind}: took {:?}",
            started.elapsed()
        );
        assert_eq!(post.code, 1, "{kind}: {}", post.stdout);
        let message = annotation(&post, "Refreshed login not saved");
        assert!(message.contains(expected), "{kind}: {message}");
        assert!(message.contains("GITHUB_API_URL"), "{kind}: {message}");
        // Nothing lost: the refreshed file is still on disk.
        let on_disk = job.auth_on_disk();
        assert_eq!(
            on_disk["tokens"]["refresh_token"],
            world.openai.latest().refresh_token.as_str(),
            "{kind}"
        );
        world.assert_no_secret_leaked(&[&main, &post]);
    }
}

#[test]
fn an_unreachable_api_fails_the_preflight_before_codex() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    let refused = raw::RefusedPort::new();
    job.input("api-timeout", "2").env(
        "GITHUB_API_URL",
        format!("http://127.0.0.1:{}", refused.port()),
    );
    let started = Instant::now();
    let main = job.main();
    assert!(started.elapsed() < Duration::from_secs(60));
    // Within `api-timeout`'s 2 s there is room for one retry at most (the default policy
    // would try five times).
    assert!(
        main.stdout.matches("; retrying in ").count() <= 1,
        "{}",
        main.stdout
    );
    assert_eq!(main.code, 1);
    let message = annotation(&main, "Cannot write the secret back");
    assert!(
        message.contains("Connection refused") && message.contains("GITHUB_API_URL"),
        "{message}"
    );
    assert!(job.codex_calls().is_empty());
}

#[test]
fn codex_killed_by_a_signal_mid_run_never_leads_to_a_bad_write() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    // Let Codex start (and maybe refresh), then kill it and the wrapper with SIGKILL.
    job.wrap_codex("\"$REAL\" \"$@\" & pid=$!\nsleep 0.3\nkill -KILL $pid\nkill -KILL $$");
    let main = job.main();
    assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
    assert_eq!(main.output("exit-code"), "137");
    let on_disk = job.auth_on_disk();
    let post = job.post(&main);
    post.assert_ok();
    // Whatever Codex got to, the secret holds a valid login: the one Codex left on disk,
    // whose refresh token is the live one once Codex wrote its refresh. (A kill between
    // OpenAI's rotation and Codex's write loses that rotation before any file holds it:
    // nothing can keep it, and it is not asserted here.)
    let stored = world.stored();
    assert_eq!(stored["tokens"], on_disk["tokens"]);
    if on_disk["tokens"]["refresh_token"] != seed["tokens"]["refresh_token"] {
        let live = world.openai.latest().refresh_token;
        assert_eq!(stored["tokens"]["refresh_token"], live.as_str());
    }
    codex_auth::auth_file::AuthFile::decode(&stored.to_string()).unwrap();
}

#[test]
fn sigterm_while_writing_auth_json_leaves_the_old_or_the_new_file() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let old = {
        let mut old = seed.clone();
        old["tokens"]["refresh_token"] = "rt_older_file_on_disk".into();
        old["last_refresh"] = "2026-01-01T00:00:00Z".into();
        old
    };
    let fingerprint = |v: &Value| v["tokens"]["refresh_token"].as_str().unwrap().to_owned();
    let prepare = || {
        let mut job = world.job(&seed);
        job.wrap_codex("exit 0");
        let path = job.codex_home().join("auth.json");
        std::fs::write(&path, serde_json::to_string_pretty(&old).unwrap()).unwrap();
        (job, path)
    };
    // How long a whole main stage takes here; the signals land across that span.
    let (mut job, _) = prepare();
    let started = Instant::now();
    job.spawn_main().wait().unwrap();
    let span = started.elapsed();
    let mut outcomes = std::collections::BTreeMap::<String, u32>::new();
    // At least 40 signals, up to 1.2 spans; then on, further out, until both outcomes are
    // seen (a loaded machine can make later stages slower than the measured one).
    for i in 0..120u32 {
        if i >= 40 && outcomes.len() == 2 {
            break;
        }
        let (mut job, path) = prepare();
        let mut child = job.spawn_main();
        std::thread::sleep(span * i / 32);
        let _ = nix_kill(child.id(), "TERM");
        let _ = child.wait();
        let text = std::fs::read_to_string(&path).unwrap();
        let on_disk: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("iteration {i}: partial file ({e}): {text}"));
        let which = fingerprint(&on_disk);
        assert!(
            which == fingerprint(&old) || which == fingerprint(&seed),
            "iteration {i}"
        );
        *outcomes.entry(which).or_default() += 1;
    }
    // The signals landed both before and after the write: the window was really crossed.
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
}

fn nix_kill(pid: u32, signal: &str) -> std::io::Result<std::process::ExitStatus> {
    std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
}

// ---- Secret hygiene ----

#[test]
fn codex_runs_as_the_workspace_owner_and_cannot_read_the_write_token() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    // As in a container action: the action runs as root, the checkout belongs to the runner.
    job.owned_by(65534);
    let main = job.main();
    main.assert_ok();
    assert_eq!(
        main.output("final-message"),
        "OK",
        "the real Codex works as that user"
    );
    assert_eq!(main.output("persisted"), "true");
    let call = &job.task_calls()[0];
    assert_eq!(call.uid.as_deref(), Some("65534"));
    let parent = call.parent_environ.clone().unwrap_or_default();
    assert!(
        !parent.contains(crate::support::job::WRITE_TOKEN),
        "Codex read the write token from /proc"
    );
    assert!(
        !parent.contains("INPUT_"),
        "Codex read the action's inputs from /proc"
    );
    // Host steps (as the runner's user) can read and update what Codex left.
    let owner = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(job.codex_home().join("auth.json")).unwrap(),
    );
    assert_eq!(owner, 65534);
    let post = job.post(&main);
    assert_eq!(post.code, 0, "{}", post.stdout);
    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn tokens_codex_prints_are_masked_before_they_reach_the_log() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    // A prompt-injected `cat ~/.codex/auth.json`, right after Codex refreshed.
    job.wrap_codex("\"$REAL\" \"$@\"; code=$?\ncat \"$CODEX_HOME/auth.json\"\nexit $code");
    let main = job.main();
    main.assert_ok();
    let latest = world.openai.latest();
    let printed = main
        .stdout
        .lines()
        .position(|l| l.contains(&latest.refresh_token) && !l.starts_with("::add-mask::"))
        .expect("the wrapper printed the refreshed file");
    let masked = main
        .stdout
        .lines()
        .position(|l| l == format!("::add-mask::{}", latest.refresh_token))
        .expect("the new refresh token is masked");
    assert!(
        masked < printed,
        "the mask must come before the line that shows the token"
    );
}

/// A process that left Codex's process group and its parent (`setsid` after Codex exited) is
/// ended on the host too: the stage is the subreaper of all it starts, so the process is still
/// its descendant.
#[test]
fn a_process_that_left_codexs_group_is_ended_on_the_host_too() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);
    job.wrap_codex(
        "\"$REAL\" \"$@\"; code=$?\nsetsid sh -c 'sleep 300' </dev/null >/dev/null 2>&1 &\n\
         echo $! > \"$log.left\"\nexit $code",
    );
    let main = job.main();
    main.assert_ok();
    assert!(
        main.stdout.contains("Ended what Codex left running"),
        "{}",
        main.stdout
    );
    let calls = job.task_calls();
    assert_eq!(calls.len(), 1);
    let left = std::fs::read_to_string(job.call_file(calls[0].pid, "left")).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", left.trim())).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("gone");
    assert!(
        state == "gone" || state == "Z",
        "the process Codex left ({}) still runs: {stat}",
        left.trim()
    );
}

#[test]
fn a_process_codex_left_running_does_not_hold_up_the_write_back() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    // Something Codex started (an MCP server, a background job) keeps its output open.
    // It outlives the bound by far: the stage reads Codex's output for a few seconds more
    // (output::DRAIN), then ends what is left.
    job.wrap_codex("\"$REAL\" \"$@\"; code=$?\nsleep 300 &\nexit $code");
    let started = Instant::now();
    let main = job.main();
    main.assert_ok();
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(main.output("persisted"), "true");
    world.assert_secret_holds_the_latest_login();
}
