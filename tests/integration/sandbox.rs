//! Codex tasks in the container as GitHub runs it: the real image, as root, with Docker's
//! default capabilities and seccomp profile (`tests/container/seccomp-docker-default.json`),
//! and a local model that asks for a shell command through the tool Codex offers. podman's own
//! profile, which allows what Docker's refuses, is used only where a case says so.

use std::os::unix::fs::MetadataExt as _;

use pretty_assertions::assert_eq;

use crate::support::job::{Job, Seccomp, StageRun};
use crate::support::openai::Responses;
use crate::support::world::World;

/// The runner's user on GitHub's hosted runners.
const RUNNER_UID: u32 = 1001;

fn image() -> String {
    std::env::var("CODEX_AUTH_TEST_IMAGE").unwrap_or_else(|_| {
        panic!("CODEX_AUTH_TEST_IMAGE is not set: run the tests with scripts/test")
    })
}

/// A job in the container whose model asks Codex to run `command`.
fn task(world: &World, command: &str) -> Job {
    world.openai.ask_to_run(command);
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);
    job.in_container(&image()).owned_by(RUNNER_UID);
    job
}

fn outputs(main: &StageRun) -> (&str, &str) {
    (main.output("commands-run"), main.output("commands-failed"))
}

#[test]
fn under_dockers_profile_commands_run_in_the_workspace_as_its_owner() {
    let world = World::new(Responses::Ok);
    let mut job = task(
        &world,
        "echo made-by-codex > made-by-codex.txt && id -u && id -G && grep CapEff /proc/self/status",
    );
    let main = job.main();
    main.assert_ok();
    assert!(
        main.stdout.contains("Sandbox: none inside the container")
            && main
                .stdout
                .contains("bwrap: No permissions to create a new namespace"),
        "{}",
        main.stdout
    );
    // The command ran: its file is in the workspace, the runner's user's.
    let made = job.workspace.join("made-by-codex.txt");
    assert_eq!(std::fs::read_to_string(&made).unwrap(), "made-by-codex\n");
    assert_eq!(std::fs::metadata(&made).unwrap().uid(), RUNNER_UID);
    // What Codex sent back to the model: the command ran as that user, in `nogroup` only (not
    // the runner's primary group, `docker` on GitHub's runners), with no capabilities.
    let reported = world.openai.tool_outputs();
    assert_eq!(reported.len(), 1, "{reported:?}");
    for part in [
        "Process exited with code 0",
        "\n1001\n65534\n",
        "CapEff:\t0000000000000000",
    ] {
        assert!(
            reported[0].contains(part),
            "{part:?} missing in {reported:?}"
        );
    }
    assert_eq!(outputs(&main), ("1", "0"));
    assert!(
        main.summary.contains("| Commands run (failed) | 1 (0) |"),
        "{}",
        main.summary
    );
    // The log shows the command and its output, not the JSON events.
    assert!(
        main.stdout
            .contains("$ /usr/bin/bash -lc 'echo made-by-codex"),
        "{}",
        main.stdout
    );
    assert!(!main.stdout.contains("\"type\":\"item.completed\""));
    world.assert_no_secret_leaked(&[&main]);
}

#[test]
fn under_podmans_profile_codexs_own_sandbox_is_kept() {
    let world = World::new(Responses::Ok);
    let mut job = task(&world, "echo sandboxed > sandbox-check.txt; echo status=$?");
    job.seccomp(Seccomp::Podman);
    let main = job.main();
    main.assert_ok();
    assert!(
        main.stdout
            .contains("Sandbox: Codex's own (bubblewrap starts here)."),
        "{}",
        main.stdout
    );
    // Codex's default sandbox is read-only, and it was enforced.
    assert!(!job.workspace.join("sandbox-check.txt").exists());
    let reported = world.openai.tool_outputs();
    assert!(
        reported[0].contains("Read-only file system") && reported[0].contains("status=1"),
        "{reported:?}"
    );
}

#[test]
fn patches_land_in_the_workspace() {
    let world = World::new(Responses::Ok);
    let patch = "apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: patched.txt\n+patched by \
                 codex\n*** End Patch\nEOF\n";
    let mut job = task(&world, patch);
    let main = job.main();
    main.assert_ok();
    let patched = job.workspace.join("patched.txt");
    assert_eq!(
        std::fs::read_to_string(&patched).unwrap(),
        "patched by codex\n"
    );
    assert_eq!(std::fs::metadata(&patched).unwrap().uid(), RUNNER_UID);
    assert!(
        main.stdout
            .contains("Patch completed: add /github/workspace/patched.txt"),
        "{}",
        main.stdout
    );
    assert_eq!(outputs(&main), ("1", "0"));
}

/// What a task's commands rely on in the image, after what the Dockerfile keeps out of it
/// (Perl's module library, git's server-side programs): git for the local work and its HTTPS
/// transport, bash, perl-base's `perl`, the CA bundle, and git's trust in a checkout another
/// user owns. The HTTPS remote is a closed port: reaching it proves the transport loads.
#[test]
fn a_tasks_commands_find_git_bash_perl_and_the_ca_bundle() {
    let world = World::new(Responses::Ok);
    let command = "set -e\n\
        git --version\n\
        bash --version | head -n 1\n\
        test -s /etc/ssl/certs/ca-certificates.crt && echo ca-bundle-present\n\
        git config --system --get-all safe.directory\n\
        cd \"$(mktemp -d)\"\n\
        git init -q\n\
        printf 'one\\n' > notes.txt\n\
        git add notes.txt\n\
        git -c user.name=Codex -c user.email=codex@example.invalid commit -q -m one\n\
        printf 'two\\n' >> notes.txt\n\
        git status --short\n\
        perl -pi -e 's/two/three/' notes.txt\n\
        git diff --numstat\n\
        git diff | grep '^+three$'\n\
        git ls-remote https://127.0.0.1:9/none 2>&1 | grep -c 'Failed to connect'\n\
        echo all-ran\n";
    let mut job = task(&world, command);
    let main = job.main();
    main.assert_ok();
    let reported = world.openai.tool_outputs();
    assert_eq!(reported.len(), 1, "{reported:?}");
    for part in [
        "Process exited with code 0",
        "git version 2.",
        "GNU bash, version 5.",
        "\nca-bundle-present\n",
        "\n*\n",
        "\n M notes.txt\n",
        "\n1\t0\tnotes.txt\n",
        "\n+three\n",
        "\n1\nall-ran\n",
    ] {
        assert!(
            reported[0].contains(part),
            "{part:?} missing in {reported:?}"
        );
    }
    assert_eq!(outputs(&main), ("1", "0"));
}
