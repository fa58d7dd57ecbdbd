//! `store: artifact`, end to end with the real Codex CLI against the local artifact service:
//! seed → refreshed → uploaded (sealed for this repository) → the next run restores the newest
//! artifact and its refresh is uploaded again. And every way an artifact can be unusable.

use pretty_assertions::assert_eq;
use serde_json::Value;

use codex_auth::redacted::Redacted;
use codex_auth::seal::artifact::{self as crypt, ArtifactKey, Binding};
use codex_auth::store::artifact::archive;

use crate::support::artifacts::{self, Artifacts, Seed};
use crate::support::job::{Job, StageRun, GITHUB_TOKEN};
use crate::support::openai::Responses;
use crate::support::world::{annotation, World, REPO};

const REPOSITORY_ID: u64 = 4711;
const NAME: &str = "codex-auth";

struct Store {
    world: World,
    artifacts: Artifacts,
    key: ArtifactKey,
    runtime_tokens: std::cell::RefCell<Vec<String>>,
}

impl Store {
    fn new() -> Self {
        let artifacts = Artifacts::start();
        artifacts.add_repository(REPO, REPOSITORY_ID);
        artifacts.add_token(GITHUB_TOKEN, REPO);
        Self {
            world: World::new(Responses::Ok),
            artifacts,
            key: ArtifactKey::generate(),
            runtime_tokens: Default::default(),
        }
    }

    /// A job of run `run_id` using the artifact store, with `seed` as auth-json when given.
    fn job(&self, run_id: u64, seed: Option<&Value>) -> Job {
        self.job_in(run_id, run_id * 10, seed)
    }

    /// The same, for a given job of the run (a re-run's job has a new id).
    fn job_in(&self, run_id: u64, job_id: u64, seed: Option<&Value>) -> Job {
        let mut job = Job::new(&self.world.github, &self.world.openai);
        let runtime = self
            .artifacts
            .enroll(&mut job, REPOSITORY_ID, run_id, job_id);
        self.runtime_tokens.borrow_mut().push(runtime);
        job.input("store", "artifact")
            .input("artifact-key", self.key.to_base64().expose())
            .input("auth-json", seed.map(Value::to_string).unwrap_or_default())
            .env("GITHUB_API_URL", self.artifacts.api_url());
        job
    }

    /// The newest finalized artifact, opened with the key.
    fn newest_login(&self) -> Value {
        self.artifacts.newest_login(NAME, &self.key, REPOSITORY_ID)
    }

    /// Stores `login` as if an earlier run had uploaded it, sealed with `key` for `bound_to`.
    fn add_artifact(&self, login: &Value, key: &ArtifactKey, bound_to: u64) -> Seed {
        let sealed = crypt::seal(
            key,
            &binding(bound_to, NAME),
            &Redacted::new(login.to_string()),
        );
        Seed::new(
            &artifacts::Job::new(REPO, 100, 1000),
            NAME,
            archive::zip(&sealed),
        )
    }

    /// The newest artifact holds the login the OpenAI server issued last.
    fn assert_newest_holds_the_latest_login(&self) {
        assert_eq!(
            self.newest_login()["tokens"]["refresh_token"],
            self.world.openai.latest().refresh_token.as_str()
        );
    }

    /// The artifact service answered each of `steps` (`twirp CreateArtifact 200`, …).
    fn assert_steps_include(&self, steps: &[&str]) {
        let seen = self.artifacts.steps();
        for step in steps {
            assert!(
                seen.iter().any(|s| s.starts_with(step)),
                "no {step:?} in {seen:?}"
            );
        }
    }

    fn assert_nothing_leaked(&self, runs: &[&StageRun]) {
        self.world.assert_no_secret_leaked(runs);
        let key = self.key.to_base64();
        let runtime_tokens = self.runtime_tokens.borrow();
        for run in runs {
            let visible = run.visible();
            let secrets = [key.expose(), GITHUB_TOKEN, "sig="]
                .into_iter()
                .chain(runtime_tokens.iter().map(String::as_str));
            for secret in secrets {
                assert!(!visible.contains(secret), "leaked {secret:?}:\n{visible}");
            }
        }
    }
}

fn binding(repository_id: u64, name: &str) -> Binding<'_> {
    Binding {
        repository_id,
        artifact_name: name,
    }
}

#[test]
fn seed_refresh_upload_then_the_next_run_restores_the_newest_artifact() {
    let store = Store::new();
    let seed = store.world.openai.seed(true);

    // First run: no artifact yet, so auth-json seeds the loop; Codex refreshes the stale login.
    let mut first = store.job(5001, Some(&seed));
    let main = first.main();
    main.assert_ok();
    assert_eq!(main.output("refreshed"), "true");
    assert_eq!(
        main.output("persisted"),
        "true",
        "uploaded right after Codex"
    );
    assert_eq!(store.artifacts.artifacts().len(), 1);
    // Nothing changed since: the post stage uploads nothing more.
    let post = first.post(&main);
    post.assert_ok();
    assert_eq!(store.artifacts.artifacts().len(), 1);
    store.assert_newest_holds_the_latest_login();
    store.assert_steps_include(&["twirp CreateArtifact 200", "twirp FinalizeArtifact 200"]);
    store.assert_nothing_leaked(&[&main, &post]);

    // Second run, still given the old seed (whose refresh token is now used up): the artifact
    // is newer and wins, and a forced refresh works only with its live refresh token.
    let mut second = store.job(5002, Some(&seed));
    second.input("mode", "refresh");
    let main = second.main();
    main.assert_ok();
    assert!(
        main.stdout.contains("Restoring artifact"),
        "{}",
        main.stdout
    );
    let post = second.post(&main);
    post.assert_ok();
    assert_eq!(store.artifacts.artifacts().len(), 2);
    store.assert_newest_holds_the_latest_login();
    store.assert_nothing_leaked(&[&main, &post]);
    crate::support::openapi::assert_conforms(&store.artifacts.rest_requests());
}

#[test]
fn unusable_artifacts_fail_before_codex_with_what_to_do() {
    let store = Store::new();
    let login = store.world.openai.seed(false);

    // Sealed with another key two days ago: without a seed, the run stops and says why.
    store.artifacts.add(
        store
            .add_artifact(&login, &ArtifactKey::generate(), REPOSITORY_ID)
            .created_ago(2 * 86_400),
    );
    let mut job = store.job(6001, None);
    let main = job.main();
    assert_eq!(main.code, 1);
    assert!(job.codex_calls().is_empty());
    let message = annotation(&main, "Artifact not usable");
    assert!(message.contains("artifact-key"), "{message}");

    // A seed refreshed after the artifact was written (a reseed with a new key): a warning,
    // and the seed is used.
    let mut job = store.job(6002, Some(&login));
    job.input("mode", "restore");
    let main = job.main();
    main.assert_ok();
    assert!(
        main.stdout
            .contains("::warning title=codex-auth%3A Artifact not usable::"),
        "{}",
        main.stdout
    );
    assert_eq!(job.auth_on_disk(), login);

    // A seed older than the artifact is not a way out: its refresh token was rotated away.
    let store = Store::new();
    let login = store.world.openai.seed(false);
    store
        .artifacts
        .add(store.add_artifact(&login, &ArtifactKey::generate(), REPOSITORY_ID));
    let mut job = store.job(6003, Some(&login));
    let main = job.main();
    assert_eq!(main.code, 1);
    annotation(&main, "Artifact not usable");
    assert!(job.codex_calls().is_empty());
}

#[test]
fn artifacts_of_other_repositories_forks_and_expired_ones_are_never_restored() {
    let store = Store::new();
    let login = store.world.openai.seed(false);
    // Sealed for another repository id, but stored here: the binding refuses it.
    store
        .artifacts
        .add(store.add_artifact(&login, &store.key, 999));
    let mut job = store.job(7001, None);
    let main = job.main();
    assert_eq!(main.code, 1);
    annotation(&main, "Artifact not usable");

    // The newest usable one wins over a newer one from a fork's run and a newer expired one.
    let store = Store::new();
    let good = store.world.openai.seed(false);
    let other = store.world.openai.seed(false);
    store.artifacts.add(
        store
            .add_artifact(&good, &store.key, REPOSITORY_ID)
            .created_ago(3600),
    );
    store.artifacts.add(
        store
            .add_artifact(&other, &store.key, REPOSITORY_ID)
            .from_fork(31337),
    );
    let expired = store
        .artifacts
        .add(store.add_artifact(&other, &store.key, REPOSITORY_ID));
    store.artifacts.expire(expired);
    let mut job = store.job(7003, None);
    job.input("mode", "restore");
    job.main().assert_ok();
    assert_eq!(job.auth_on_disk(), good);

    // With only those two, there is nothing to restore.
    let store = Store::new();
    store.artifacts.add(
        store
            .add_artifact(&login, &store.key, REPOSITORY_ID)
            .from_fork(31337),
    );
    let expired = store
        .artifacts
        .add(store.add_artifact(&login, &store.key, REPOSITORY_ID));
    store.artifacts.expire(expired);
    let mut job = store.job(7002, None);
    let main = job.main();
    assert_eq!(main.code, 1);
    let message = annotation(&main, "No login to restore");
    assert!(message.contains("auth-json"), "{message}");
    assert!(job.codex_calls().is_empty());
}

#[test]
fn hostile_zips_are_refused() {
    type MakeZip = fn(&[u8]) -> Vec<u8>;
    let cases: [(&str, MakeZip); 3] = [
        ("it holds 2 (`auth.json.enc`, `extra.txt`)", |sealed| {
            artifacts::make_zip(&[(archive::ENTRY, sealed), ("extra.txt", b"x")])
        }),
        ("decompresses to more than 65536 bytes", |_| {
            artifacts::make_zip(&[(archive::ENTRY, &vec![0u8; 8 << 20])])
        }),
        (
            "it holds 1 (`other`), expected only `auth.json.enc`",
            |sealed| artifacts::make_zip(&[("other", sealed)]),
        ),
    ];
    for (expected, make) in cases {
        let store = Store::new();
        let login = store.world.openai.seed(false);
        let sealed = crypt::seal(
            &store.key,
            &binding(REPOSITORY_ID, NAME),
            &Redacted::new(login.to_string()),
        );
        store.artifacts.add(Seed::new(
            &artifacts::Job::new(REPO, 100, 1000),
            NAME,
            make(&sealed),
        ));
        let mut job = store.job(8001, None);
        let main = job.main();
        assert_eq!(main.code, 1, "{}", main.stdout);
        let message = annotation(&main, "Artifact not usable");
        assert!(message.contains(expected), "{message}");
        assert!(job.codex_calls().is_empty());
    }
}

#[test]
fn no_runtime_token_or_no_read_permission_stops_before_codex() {
    let store = Store::new();
    let seed = store.world.openai.seed(true);
    let mut job = store.job(9001, Some(&seed));
    job.env("ACTIONS_RUNTIME_TOKEN", "");
    let main = job.main();
    assert_eq!(main.code, 1);
    annotation(&main, "Cannot upload artifacts");
    assert!(job.codex_calls().is_empty());

    let store = Store::new();
    store
        .artifacts
        .add_token_without_actions("ghs_noactions", REPO);
    let mut job = store.job(9002, Some(&seed));
    job.input("github-token", "ghs_noactions");
    let main = job.main();
    assert_eq!(main.code, 1);
    let message = annotation(&main, "Cannot read artifacts");
    assert!(message.contains("actions: read"), "{message}");
    assert!(job.codex_calls().is_empty());
}

#[test]
fn the_action_restores_what_the_real_client_uploaded() {
    let store = Store::new();
    let login = store.world.openai.seed(false);
    // An earlier job's step uploads the sealed login with @actions/artifact itself (which
    // deflates its zip and stages the blob in blocks).
    let uploader = artifacts::Job::new(REPO, 300, 3000);
    let client =
        artifacts::RealClient::new(&store.artifacts, &store.artifacts.runtime_token(&uploader));
    let file = client.workspace().join(archive::ENTRY);
    std::fs::write(
        &file,
        crypt::seal(
            &store.key,
            &binding(REPOSITORY_ID, NAME),
            &Redacted::new(login.to_string()),
        ),
    )
    .unwrap();
    client.upload(NAME, &[&file]).unwrap();

    // The action finds it through the REST API, follows the 302, unzips, decrypts.
    let mut job = store.job(301, None);
    job.input("mode", "restore");
    let main = job.main();
    main.assert_ok();
    assert!(
        main.stdout.contains("Restoring artifact"),
        "{}",
        main.stdout
    );
    assert_eq!(job.auth_on_disk(), login);
}

#[test]
fn the_real_client_downloads_what_the_action_uploaded() {
    let store = Store::new();
    let seed = store.world.openai.seed(true);
    let mut job = store.job(400, Some(&seed));
    let main = job.main();
    main.assert_ok();
    job.post(&main).assert_ok();
    let id = store.artifacts.artifacts()[0].id;

    // Another job downloads it with @actions/artifact, by the REST API as a later run would.
    let reader = artifacts::Job::new(REPO, 401, 4010);
    let client =
        artifacts::RealClient::new(&store.artifacts, &store.artifacts.runtime_token(&reader))
            .github_token(GITHUB_TOKEN);
    let dir = client.workspace().join("out");
    client.download_public(id, &dir, REPO, 400).unwrap();
    let sealed = std::fs::read(dir.join(archive::ENTRY)).unwrap();
    let plain = crypt::open(&store.key, &binding(REPOSITORY_ID, NAME), &sealed).unwrap();
    let uploaded: Value = serde_json::from_str(plain.expose()).unwrap();
    assert_eq!(
        uploaded["tokens"]["refresh_token"],
        store.world.openai.latest().refresh_token.as_str()
    );
}

#[test]
fn a_rerun_replaces_its_runs_artifact() {
    let store = Store::new();
    let seed = store.world.openai.seed(true);
    let mut first = store.job(500, Some(&seed));
    let main = first.main();
    main.assert_ok();
    first.post(&main).assert_ok();
    let first_id = store.artifacts.artifacts()[0].id;

    // A re-run of the same run: it restores that artifact, refreshes, and must replace it
    // (artifact names are unique within a run).
    let mut rerun = store.job_in(500, 5001, None);
    rerun
        .input("mode", "refresh")
        .env("GITHUB_RUN_ATTEMPT", "2");
    let main = rerun.main();
    main.assert_ok();
    rerun.post(&main).assert_ok();
    let artifacts = store.artifacts.artifacts();
    assert_eq!(artifacts.len(), 1, "replaced, not added");
    assert_ne!(artifacts[0].id, first_id);
    store.assert_newest_holds_the_latest_login();
    store.assert_steps_include(&["twirp CreateArtifact 409", "twirp DeleteArtifact 200"]);
}

#[test]
fn a_tampered_artifact_is_refused() {
    let store = Store::new();
    let login = store.world.openai.seed(false);
    let mut sealed = crypt::seal(
        &store.key,
        &binding(REPOSITORY_ID, NAME),
        &Redacted::new(login.to_string()),
    );
    let middle = sealed.len() / 2;
    sealed[middle] ^= 0x01;
    store.artifacts.add(Seed::new(
        &artifacts::Job::new(REPO, 100, 1000),
        NAME,
        archive::zip(&sealed),
    ));
    let mut job = store.job(600, None);
    let main = job.main();
    assert_eq!(main.code, 1);
    let message = annotation(&main, "Artifact not usable");
    assert!(message.contains("artifact-key"), "{message}");
    assert!(job.codex_calls().is_empty());
}

#[test]
fn failed_uploads_are_retried_and_the_post_stage_saves_what_main_could_not() {
    let store = Store::new();
    let seed = store.world.openai.seed(true);
    // One 503 from CreateArtifact and one from blob storage: retried, uploaded in main.
    store.artifacts.fail_next("CreateArtifact", 503);
    store.artifacts.fail_next("/blob/", 500);
    let mut job = store.job(700, Some(&seed));
    let main = job.main();
    main.assert_ok();
    assert_eq!(main.output("persisted"), "true");
    store.assert_steps_include(&["twirp CreateArtifact 503"]);

    // Blob storage down for all of main's attempts: main fails, the file stays, and the post
    // stage uploads it.
    let store = Store::new();
    let seed = store.world.openai.seed(true);
    for _ in 0..10 {
        store.artifacts.fail_next("/blob/", 503);
    }
    let mut job = store.job(701, Some(&seed));
    job.input("api-timeout", "4");
    let main = job.main();
    assert_eq!(main.code, 1);
    let message = annotation(&main, "Refreshed login not saved");
    assert!(message.contains("The post stage tries again"), "{message}");
    assert!(job.codex_home().join("auth.json").exists());
    store.artifacts.clear_faults();
    let post = job.post(&main);
    post.assert_ok();
    store.assert_newest_holds_the_latest_login();
    store.assert_nothing_leaked(&[&main, &post]);
}

/// `login` as if Codex had refreshed it `seconds` ago.
fn refreshed_ago(mut login: Value, seconds: i64) -> Value {
    let at = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() - seconds).unwrap();
    login["last_refresh"] = at.to_string().into();
    login
}

/// The artifact ids the action downloaded, in order.
fn downloads(store: &Store) -> Vec<u64> {
    store
        .artifacts
        .rest_requests()
        .iter()
        .filter_map(|r| {
            let path = r.path.strip_suffix("/zip")?;
            path.rsplit('/').next()?.parse().ok()
        })
        .collect()
}

fn has_warning(run: &StageRun, title: &str) -> bool {
    run.stdout
        .contains(&format!("::warning title=codex-auth%3A {title}::"))
}

#[test]
fn artifact_rollback_an_older_valid_artifact_uploaded_later_is_not_restored() {
    let store = Store::new();
    // The live login: refreshed and uploaded by the keep-fresh run two hours ago.
    let live = refreshed_ago(store.world.openai.seed(false), 2 * 3600 + 60);
    let live_id = store.artifacts.add(
        store
            .add_artifact(&live, &store.key, REPOSITORY_ID)
            .created_ago(2 * 3600),
    );
    // A week-old login, sealed with the right key (its artifact was downloadable from the old
    // run), uploaded again just now by another run of the default branch: newest by date.
    let spent = refreshed_ago(store.world.openai.seed(false), 7 * 86_400);
    let spent_id = store
        .artifacts
        .add(store.add_artifact(&spent, &store.key, REPOSITORY_ID));
    // Uploads from before the live login's refresh cannot hold a newer login: not downloaded.
    let ancient = refreshed_ago(store.world.openai.seed(false), 30 * 86_400);
    store.artifacts.add(
        store
            .add_artifact(&ancient, &store.key, REPOSITORY_ID)
            .created_ago(30 * 86_400 - 60),
    );

    let mut job = store.job(7101, None);
    job.input("mode", "restore");
    let main = job.main();
    main.assert_ok();
    assert_eq!(
        job.auth_on_disk(),
        live,
        "the newest login, not the newest upload"
    );
    assert!(
        main.stdout
            .contains(&format!("Restoring artifact {live_id}")),
        "{}",
        main.stdout
    );
    assert!(
        has_warning(&main, "Older login uploaded later"),
        "{}",
        main.stdout
    );
    assert_eq!(downloads(&store), [spent_id, live_id]);
    store.assert_nothing_leaked(&[&main]);
    crate::support::openapi::assert_conforms(&store.artifacts.rest_requests());
}

#[test]
fn artifacts_of_other_branches_are_not_restored() {
    let store = Store::new();
    let live = refreshed_ago(store.world.openai.seed(false), 3 * 3600);
    store.artifacts.add(
        store
            .add_artifact(&live, &store.key, REPOSITORY_ID)
            .created_ago(3 * 3600 - 60),
    );
    // Newer by date and by `last_refresh`, sealed with the right key, but uploaded by a run of
    // another branch, whose workflow whoever pushed the branch wrote.
    let pushed = refreshed_ago(store.world.openai.seed(false), 60);
    let pushed_id = store.artifacts.add(
        store
            .add_artifact(&pushed, &store.key, REPOSITORY_ID)
            .on_branch("feature"),
    );
    let mut job = store.job(7201, None);
    job.input("mode", "restore");
    job.main().assert_ok();
    assert_eq!(job.auth_on_disk(), live);
    assert!(!downloads(&store).contains(&pushed_id));

    // With only another branch's artifact there is nothing to restore.
    let store = Store::new();
    store.artifacts.add(
        store
            .add_artifact(&pushed, &store.key, REPOSITORY_ID)
            .on_branch("feature"),
    );
    let mut job = store.job(7202, None);
    let main = job.main();
    assert_eq!(main.code, 1);
    annotation(&main, "No login to restore");
    assert!(downloads(&store).is_empty());
    assert!(job.codex_calls().is_empty());
}

#[test]
fn an_artifact_that_does_not_open_is_skipped_with_a_warning() {
    let store = Store::new();
    let live = refreshed_ago(store.world.openai.seed(false), 3600);
    let live_id = store.artifacts.add(
        store
            .add_artifact(&live, &store.key, REPOSITORY_ID)
            .created_ago(1800),
    );
    // Newer, but sealed with another key.
    let junk_id = store.artifacts.add(store.add_artifact(
        &store.world.openai.seed(false),
        &ArtifactKey::generate(),
        REPOSITORY_ID,
    ));
    let mut job = store.job(7301, None);
    job.input("mode", "restore");
    let main = job.main();
    main.assert_ok();
    assert_eq!(job.auth_on_disk(), live);
    let skipped = main
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("::warning title=codex-auth%3A Artifact skipped::"))
        .unwrap_or_else(|| panic!("no warning:\n{}", main.stdout));
    assert!(
        skipped.contains(&format!("artifact {junk_id}")),
        "{skipped}"
    );
    assert!(
        skipped.contains(&format!("Restoring artifact {live_id} instead")),
        "{skipped}"
    );
    assert_eq!(downloads(&store), [junk_id, live_id]);
}

#[test]
fn the_default_branch_comes_from_the_api_when_the_event_does_not_name_it() {
    let store = Store::new();
    // GitHub serves the artifacts and the repository on one API URL.
    let github = crate::support::github::GitHub::start();
    github.add_scope(&crate::support::github::repo(REPO));
    github.add_token(GITHUB_TOKEN, crate::support::github::Access::Write);
    github.mount_artifacts(store.artifacts.rest_api());
    let live = refreshed_ago(store.world.openai.seed(false), 3600);
    store.artifacts.add(
        store
            .add_artifact(&live, &store.key, REPOSITORY_ID)
            .created_ago(1800),
    );
    store.artifacts.add(
        store
            .add_artifact(&store.world.openai.seed(false), &store.key, REPOSITORY_ID)
            .on_branch("feature"),
    );
    let mut job = store.job(7401, None);
    job.input("mode", "restore")
        .env("GITHUB_API_URL", github.url())
        .event(
            "schedule",
            &serde_json::json!({"schedule": "17 4 * * *", "repository": {"private": true}}),
        );
    job.main().assert_ok();
    assert_eq!(job.auth_on_disk(), live);
    let repository_reads = github
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path == format!("/repos/{REPO}"))
        .count();
    assert_eq!(repository_reads, 1);
    crate::support::openapi::assert_conforms(&github.requests());
}

#[test]
fn every_credential_is_masked_the_key_in_any_spelling_included() {
    let store = Store::new();
    let mut seed = store.world.openai.seed(false);
    // Fields a newer Codex may write: another credential under `tokens`, an API key.
    seed["tokens"]["session_token"] = "st_unknown_credential_0001".into();
    seed["OPENAI_API_KEY"] = "sk-proj-test-key-0001".into();
    let mut job = store.job(7501, Some(&seed));
    // The key as the secret may hold it: URL-safe, unpadded.
    let [_, _, _, url_safe] = store.key.spellings();
    job.input("mode", "restore")
        .input("artifact-key", url_safe.expose());
    let main = job.main();
    main.assert_ok();
    let masks = main.masks();
    for expected in [
        url_safe.expose(),
        store.key.to_base64().expose(),
        "st_unknown_credential_0001",
        "sk-proj-test-key-0001",
    ] {
        assert!(masks.iter().any(|m| m == expected), "{expected} not masked");
    }
}

#[test]
fn a_502_while_listing_or_downloading_artifacts_is_retried() {
    let store = Store::new();
    let seed = store.world.openai.seed(true);
    let mut first = store.job(5101, Some(&seed));
    first.main().assert_ok();

    // GitHub's API answers 502 once to the listing and once to the download: the next run
    // still restores the artifact, through the same retry loop as every other call.
    store.artifacts.fail_next("/actions/artifacts", 502);
    store.artifacts.fail_next("/zip", 502);
    let mut second = store.job(5102, Some(&seed));
    second.input("mode", "refresh");
    let main = second.main();
    main.assert_ok();
    for call in [
        "GET /repos/octo/repo/actions/artifacts",
        "/zip: server error 502",
    ] {
        assert!(
            main.stdout
                .lines()
                .any(|l| l.contains(call) && l.contains("retrying in")),
            "{call}: {}",
            main.stdout
        );
    }
    assert!(
        main.stdout.contains("Restoring artifact"),
        "{}",
        main.stdout
    );
    store.assert_newest_holds_the_latest_login();
    crate::support::openapi::assert_conforms(&store.artifacts.rest_requests());
}
