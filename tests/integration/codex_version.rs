//! Input `codex-version`: a Codex other than the one on PATH, fetched from a local npm
//! registry (support/npm.rs) that serves the pinned version's real `linux-x64` tarball with
//! the registry's own document, so the integrity checked is the real one and the binary that
//! runs is the real Codex. The job runs without a `codex` of its own on PATH (as on the host
//! face, or a runner without Codex), so naming the pinned version drives the whole fetch.
//!
//! Each refusal is checked to come before any login is restored: GitHub sees no request,
//! CODEX_HOME gets no auth.json, the post stage gets no handoff, and OpenAI sees nothing.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use pretty_assertions::assert_eq;

use crate::support::job::{Job, StageRun};
use crate::support::npm::{pinned_version, Registry};
use crate::support::openai::Responses;
use crate::support::world::{annotation, warning, World};

/// A job that names `version`, with the registry configured and no codex of its own.
fn job(world: &World, registry: &Registry, version: &str) -> Job {
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.without_codex_on_path()
        .input("codex-version", version)
        .env("npm_config_registry", registry.url());
    job
}

/// Where the job keeps a fetched version.
fn copy(job: &Job, version: &str) -> PathBuf {
    job.runner_temp()
        .join("codex-auth-codex")
        .join(version)
        .join("linux-x64")
}

/// Nothing of the login was touched: no request to GitHub, no auth.json, no handoff, no
/// request to OpenAI.
fn assert_nothing_restored(world: &World, job: &Job, run: &StageRun) {
    assert_login_untouched(world, job, run);
    assert!(run.stdout.contains("Codex was not run."), "{}", run.stdout);
}

/// The step failed, and nothing of the login was touched: no request to GitHub, no auth.json,
/// no handoff, no request to OpenAI.
fn assert_login_untouched(world: &World, job: &Job, run: &StageRun) {
    assert_ne!(run.code, 0);
    assert_eq!(world.github.requests().len(), 0, "GitHub was asked");
    assert!(!job.codex_home().join("auth.json").exists());
    assert!(run.state.is_empty(), "{:?}", run.state);
    assert_eq!(world.openai.requests(), Vec::<String>::new());
}

#[test]
fn a_named_version_is_fetched_verified_and_run_then_reused() {
    let world = World::new(Responses::Ok);
    let registry = Registry::start();
    let version = pinned_version();
    let mut job = job(&world, &registry, &version);

    let main = job.main();
    main.assert_ok();
    assert!(
        main.stdout.contains(&format!(
            "Codex: codex-cli {version}, Codex {version}, fetched from the npm registry, \
             checked against its sha512 integrity"
        )),
        "{}",
        main.stdout
    );
    // The real Codex ran the task against the local OpenAI.
    assert_eq!(main.output("exit-code"), "0");
    assert!(!world.openai.requests().is_empty());
    // One document and one tarball, from the configured registry (the document's own tarball
    // address names another host, which is not followed).
    assert_eq!(
        registry.requests(),
        [
            format!("/@openai%2fcodex/{version}-linux-x64"),
            format!("/@openai/codex/-/codex-{version}-linux-x64.tgz"),
        ]
    );
    let copy = copy(&job, &version);
    assert!(copy.join("bin/codex").is_file());
    assert!(copy.join("codex-path/rg").is_file());
    assert!(
        !copy.join("codex-resources/voice").exists(),
        "trimmed as the image is"
    );
    assert!(!copy.join("bin/codex-code-mode-host").exists());

    // A later step of the job reuses the copy, once its files hash as they were unpacked:
    // nothing downloaded again.
    let again = job.main();
    again.assert_ok();
    assert!(
        again.stdout.contains(&format!(
            "Codex {version}, fetched and verified by an earlier step"
        )) && again.stdout.contains("its files' SHA-256 checked again in"),
        "{}",
        again.stdout
    );
    assert_eq!(registry.downloads(), 1);

    // The post stage removes what root fetched into RUNNER_TEMP (the runner could not).
    job.post(&again).assert_ok();
    assert!(!job.runner_temp().join("codex-auth-codex").exists());
    world.assert_no_secret_leaked(&[&main, &again]);
}

#[test]
fn a_changed_copy_is_never_run_and_is_fetched_again() {
    let world = World::new(Responses::Ok);
    let registry = Registry::start();
    let version = pinned_version();
    let mut job = job(&world, &registry, &version);
    job.main().assert_ok();

    // What a Codex in an earlier step, as the runner's user, could do to a copy it can reach:
    // put its own file there (here, a script that would print the login).
    let binary = copy(&job, &version).join("bin/codex");
    std::fs::write(&binary, "#!/bin/sh\ncat \"$CODEX_HOME/auth.json\"\n").unwrap();
    std::os::unix::fs::chown(&binary, Some(1001), Some(1001)).unwrap();

    let main = job.main();
    main.assert_ok();
    let said = warning(&main, "Cached Codex changed");
    assert!(said.contains("belongs to uid 1001"), "{said}");
    assert_eq!(registry.downloads(), 2, "fetched and verified again");
    let meta = std::fs::metadata(&binary).unwrap();
    assert_eq!(meta.uid(), 0);
    assert!(meta.len() > 1_000_000, "the real binary is back");
    world.assert_no_secret_leaked(&[&main]);
}

#[test]
fn a_copy_changed_in_place_by_its_owner_is_never_run_and_is_fetched_again() {
    use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
    let world = World::new(Responses::Ok);
    let registry = Registry::start();
    let version = pinned_version();
    let mut job = job(&world, &registry, &version);
    job.main().assert_ok();

    // What only the copy's owner could do (root, in the container; the runner's user, in a
    // host's tool cache): one byte of the binary changed in place. Its size, owner and mode,
    // and the marker, are as they were.
    let binary = copy(&job, &version).join("bin/codex");
    let before = std::fs::metadata(&binary).unwrap();
    let at = before.len() / 2;
    let byte = |file: &mut std::fs::File| {
        let mut byte = [0u8];
        file.seek(SeekFrom::Start(at)).unwrap();
        file.read_exact(&mut byte).unwrap();
        byte[0]
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&binary)
        .unwrap();
    let verified = byte(&mut file);
    file.seek(SeekFrom::Start(at)).unwrap();
    file.write_all(&[!verified]).unwrap();
    drop(file);
    let after = std::fs::metadata(&binary).unwrap();
    let kept = |m: &std::fs::Metadata| (m.len(), m.uid(), m.mode());
    assert_eq!(kept(&after), kept(&before));

    let main = job.main();
    main.assert_ok();
    let said = warning(&main, "Cached Codex changed");
    assert!(said.contains("bin/codex has the SHA-256 "), "{said}");
    assert_eq!(registry.downloads(), 2, "fetched and verified again");
    let mut file = std::fs::File::open(&binary).unwrap();
    assert_eq!(byte(&mut file), verified, "the verified binary is back");
    world.assert_no_secret_leaked(&[&main]);
}

#[test]
fn a_tampered_tarball_or_wrong_integrity_is_refused_before_restore() {
    let version = pinned_version();
    let package = format!("{version}-linux-x64");
    // The document is the registry's; the tarball is not what it describes.
    let tampered = |registry: &Registry| {
        let mut bytes = std::fs::read(crate::support::npm::real_tarball()).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        registry.add_bytes(&package, crate::support::npm::real_document(), bytes);
    };
    // The tarball is real; the document's integrity is another one.
    let wrong_integrity = |registry: &Registry| {
        let mut document = crate::support::npm::real_document();
        let other = base64::engine::general_purpose::STANDARD.encode([9u8; 64]);
        document["dist"]["integrity"] = format!("sha512-{other}").into();
        registry.set_document(&package, document);
    };
    for (case, spoil) in [
        ("tampered", &tampered as &dyn Fn(&Registry)),
        ("wrong integrity", &wrong_integrity),
    ] {
        let world = World::new(Responses::Ok);
        let registry = Registry::start();
        spoil(&registry);
        let mut job = job(&world, &registry, &version);
        let main = job.main();
        let said = annotation(&main, "Codex package does not match its integrity");
        assert!(
            said.contains("Nothing of it was unpacked or run"),
            "{case}: {said}"
        );
        assert_nothing_restored(&world, &job, &main);
        assert!(!copy(&job, &version).exists(), "{case}: nothing unpacked");
        let leftovers: Vec<_> = std::fs::read_dir(copy(&job, &version).parent().unwrap())
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(
            leftovers,
            Vec::<std::ffi::OsString>::new(),
            "{case}: no download left"
        );
        // The post stage finds no handoff and writes nothing.
        let post = job.post(&main);
        post.assert_ok();
        assert_eq!(world.writes(), 0);
    }
}

#[test]
fn a_job_cancelled_during_the_fetch_stops_at_once_with_nothing_restored() {
    let world = World::new(Responses::Ok);
    let registry = Registry::start();
    registry.stall_tarballs();
    let version = pinned_version();
    let mut job = job(&world, &registry, &version);
    let mut spawned = job.spawn_main_recording();
    // The download is under way: its first bytes are in the job's file.
    let versions = copy(&job, &version).parent().unwrap().to_owned();
    let started = Instant::now();
    while leftovers(&versions).iter().all(|(_, len)| *len < 1 << 20) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no download under way: {:?}\n{}",
            registry.requests(),
            spawned.stdout_so_far()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The runner's first signal when a job is cancelled. The stalled download would hold the
    // step until the runner's kill, which leaves the download behind and says nothing.
    crate::support::send_signal(spawned.child.id(), "INT");
    let cancelled = Instant::now();
    while spawned.child.try_wait().unwrap().is_none() {
        if cancelled.elapsed() > Duration::from_secs(30) {
            let _ = spawned.child.kill();
            panic!(
                "still fetching 30 s after the cancel:\n{}",
                spawned.stdout_so_far()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let main = spawned.finish();
    let said = annotation(&main, "Job cancelled");
    assert!(
        said.contains(&format!("while Codex {version} was being fetched")),
        "{said}"
    );
    assert_nothing_restored(&world, &job, &main);
    assert_eq!(leftovers(&versions), [], "the download is removed");
    job.post(&main).assert_ok();
}

/// The files in `dir` (a version's directory of the cache) and their sizes.
fn leftovers(dir: &Path) -> Vec<(std::ffi::OsString, u64)> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| (e.file_name(), e.metadata().map_or(0, |m| m.len())))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_missing_version_a_missing_platform_and_a_range_are_refused_before_restore() {
    let world = World::new(Responses::Ok);
    let registry = Registry::start();
    let mut job = job(&world, &registry, "0.999.0");
    let main = job.main();
    let said = annotation(&main, "No such Codex version");
    assert!(said.contains("The registry has no Codex 0.999.0"), "{said}");
    assert_nothing_restored(&world, &job, &main);

    // The version exists, its package for this platform does not.
    registry.add_version("0.998.0");
    let mut job = self::job(&world, &registry, "0.998.0");
    let main = job.main();
    let said = annotation(&main, "No such Codex version");
    assert!(
        said.contains(
            "Codex 0.998.0 exists, but the registry has no native package of it for linux-x64"
        ),
        "{said}"
    );
    assert_nothing_restored(&world, &job, &main);

    // A range is refused before anything is asked of anyone.
    let before = registry.requests().len();
    let mut job = self::job(&world, &registry, "^0.171.0");
    let main = job.main();
    assert!(
        main.stdout
            .contains("input `codex-version` is \"^0.171.0\", a range"),
        "{}",
        main.stdout
    );
    // A refusal of the inputs: no step ran, so there is no "Codex was not run." line.
    assert_login_untouched(&world, &job, &main);
    assert_eq!(registry.requests().len(), before);
}

#[test]
fn restore_mode_puts_the_fetched_codex_first_on_the_later_steps_path() {
    let world = World::new(Responses::Ok);
    let registry = Registry::start();
    let version = pinned_version();
    let mut job = job(&world, &registry, &version);
    job.input("mode", "restore");
    let main = job.main();
    main.assert_ok();
    let bin = copy(&job, &version).join("bin");
    assert_eq!(main.path_file.trim(), bin.display().to_string());
    let ran = std::process::Command::new(Path::new(main.path_file.trim()).join("codex"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout).trim(),
        format!("codex-cli {version}")
    );
}

#[test]
fn in_the_container_another_version_is_fetched_and_handed_to_the_host() {
    let image = std::env::var("CODEX_AUTH_TEST_IMAGE")
        .expect("CODEX_AUTH_TEST_IMAGE: run the tests with scripts/test, which builds the image");
    // The real package under another version: the image's own Codex is not that version, so
    // the action fetches it, as it would a real other release (which would be one more
    // 170 MB download for this suite). The binary still says it is the pinned version, which
    // the action reports.
    let world = World::new(Responses::Ok);
    let registry = Registry::start();
    registry.relabel("0.170.0");
    let mut job = job(&world, &registry, "0.170.0");
    job.in_container(&image).owned_by(1001);
    let main = job.main();
    main.assert_ok();
    assert!(
        main.stdout
            .contains("Codex 0.170.0, fetched from the npm registry"),
        "{}",
        main.stdout
    );
    let said = warning(&main, "Codex reports another version");
    assert!(
        said.contains(&format!("codex-cli {}", pinned_version())),
        "{said}"
    );
    assert_eq!(main.output("exit-code"), "0");

    // Restore mode in the container: the later steps, on the host, get the host path.
    let mut restore = self::job(&world, &registry, "0.170.0");
    restore
        .input("mode", "restore")
        .in_container(&image)
        .owned_by(1001);
    let main = restore.main();
    main.assert_ok();
    let host_bin = copy(&restore, "0.170.0").join("bin");
    assert_eq!(main.path_file.trim(), host_bin.display().to_string());
    // Root made it; the runner's user can run it, and cannot change it.
    let meta = std::fs::metadata(host_bin.join("codex")).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o755));
    let post = restore.post(&main);
    post.assert_ok();
    assert!(!restore.runner_temp().join("codex-auth-codex").exists());
}

#[test]
fn a_registry_having_a_bad_moment_or_redirecting_the_tarball_still_serves_it() {
    let world = World::new(Responses::Ok);
    let registry = Registry::start();
    let version = pinned_version();
    // A 429 whose retry-after is waited for (a backoff would wait 1 s), a 503 (the
    // document, then its retries), and the tarball behind a redirect.
    registry.rate_limit_next(3);
    registry.fail_next(1);
    registry.redirect_tarballs();
    let mut job = job(&world, &registry, &version);
    job.input("mode", "restore");
    let main = job.main();
    main.assert_ok();
    for retry in [
        "the registry answered 429 Too Many Requests; retrying in 3.0 s (attempt 2/3)",
        "the registry answered 503 Service Unavailable; retrying in 2.0 s (attempt 3/3)",
    ] {
        assert!(main.stdout.contains(retry), "{retry:?} in {}", main.stdout);
    }
    let document = format!("/@openai%2fcodex/{version}-linux-x64");
    let tarball = format!("codex-{version}-linux-x64.tgz");
    assert_eq!(
        registry.requests(),
        [
            document.clone(),
            document.clone(),
            document,
            format!("/@openai/codex/-/{tarball}"),
            format!("/blobs/{tarball}"),
        ]
    );
    assert!(copy(&job, &version).join("bin/codex").is_file());
}

#[test]
fn a_registry_asking_to_wait_longer_than_a_minute_is_not_waited_for() {
    let world = World::new(Responses::Ok);
    let registry = Registry::start();
    registry.rate_limit_next(3600);
    let mut job = job(&world, &registry, &pinned_version());
    let started = Instant::now();
    let main = job.main();
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "it must not wait"
    );
    assert_eq!(main.code, 1, "{}", main.stdout);
    let message = annotation(&main, "Cannot fetch Codex");
    assert!(
        message.contains(
            "asked to wait 3600 s before trying again, longer than the 60 s the action waits."
        ),
        "{message}"
    );
    assert_eq!(registry.requests().len(), 1);
    assert_nothing_restored(&world, &job, &main);
}

#[test]
fn restore_mode_and_a_refused_context_stop_before_any_login_is_restored() {
    // Restore mode takes the same way: a version that is not there stops it before restore.
    let world = World::new(Responses::Ok);
    let registry = Registry::start();
    let mut job = job(&world, &registry, "0.999.0");
    job.input("mode", "restore");
    let main = job.main();
    annotation(&main, "No such Codex version");
    assert_nothing_restored(&world, &job, &main);
    assert!(main.path_file.trim().is_empty());

    // A context the action refuses is refused first: nothing is fetched for it.
    let world = World::new(Responses::Ok);
    let registry = Registry::start();
    let mut job = self::job(&world, &registry, &pinned_version());
    job.event(
        "push",
        &serde_json::json!({"repository": {"full_name": "octo/repo", "private": false, "visibility": "public"}}),
    );
    let main = job.main();
    annotation(&main, "Public repository");
    assert_eq!(registry.requests(), Vec::<String>::new());
    assert!(!job.codex_home().join("auth.json").exists());
}
