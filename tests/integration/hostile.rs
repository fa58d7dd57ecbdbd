//! A prompt-injected Codex, tried as an attacker would: the local model asks the real Codex
//! for a hostile shell command through the tool Codex offers, and Codex runs it, in the real
//! image as GitHub runs a container action (root, Docker's default seccomp profile and
//! capabilities, the workspace the runner's user's). Each case checks that the rotation is
//! stored, that nothing the command wrote reaches a later step's environment, the post
//! stage's state or the outputs, and that no token shows in the log read the way the runner
//! reads it ([`RunnerLog`]: masks consumed, stop-commands honoured).
//!
//! How this differs from GitHub: podman runs the container, not Docker (same profile and
//! capabilities, given explicitly); the command files are named `env`, `state`, … where the
//! runner names them `set_env_<guid>`, … (the commands below find them by listing the
//! directory, as an attacker would); the runner would read the command files and the log
//! after the step, here the tests do.

use std::fs;
use std::os::unix::process::CommandExt as _;

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::job::{Job, StageRun, WRITE_TOKEN};
use crate::support::openai::Responses;
use crate::support::runner_log::RunnerLog;
use crate::support::world::{annotation, warning, World};

/// The runner's user on GitHub's hosted runners.
const RUNNER_UID: u32 = 1001;

fn image() -> String {
    std::env::var("CODEX_AUTH_TEST_IMAGE").unwrap_or_else(|_| {
        panic!("CODEX_AUTH_TEST_IMAGE is not set: run the tests with scripts/test")
    })
}

/// A job in the container whose model asks Codex to run `command`.
fn hostile(world: &World, seed: &Value, command: &str) -> Job {
    world.openai.ask_to_run(command);
    let mut job = world.job(seed);
    job.in_container(&image()).owned_by(RUNNER_UID);
    job
}

/// What a later step, or the post stage, would receive: nothing the command wrote.
const PLANTED: &[&str] = &[
    "LD_PRELOAD",
    "HTTPS_PROXY",
    "SSL_CERT_FILE",
    "CODEX_HOME=/github/workspace",
    "forged",
    "/github/workspace",
];

/// The stage's log, read as the runner reads it: no token shows, no command came from Codex
/// (only the action's masks, its fences and its annotations were processed), and the log
/// ends with commands processed again.
fn assert_log_holds(world: &World, run: &StageRun) -> RunnerLog {
    let log = RunnerLog::read(&run.stdout, &run.stderr);
    let mut secrets = world.openai.all_token_values();
    secrets.push(WRITE_TOKEN.to_owned());
    for secret in &secrets {
        assert!(
            !log.shown.contains(secret.as_str()),
            "a token shows in the log as the runner reads it:\n{}",
            log.shown
        );
    }
    for processed in &log.processed {
        match processed.command.as_str() {
            "add-mask" => assert!(
                secrets.iter().any(|s| processed.data.contains(s.as_str()))
                    || processed.data.starts_with('{'),
                "a mask not of the action's: {processed:?}"
            ),
            "stop-commands" => assert!(
                processed.data.len() == 32 && processed.data.chars().all(|c| c.is_ascii_hexdigit()),
                "a stop-commands not of the action's: {processed:?}"
            ),
            "error" | "warning" | "notice" => assert!(
                processed.properties.starts_with("title=codex-auth%3A ")
                    && !processed.data.contains("forged"),
                "an annotation not of the action's: {processed:?}"
            ),
            other => panic!("the runner would have processed {other:?}: {processed:?}"),
        }
    }
    assert!(!log.stopped(), "the log ends with commands stopped");
    log
}

/// The hostile command ran, and its output holds `expected`: Codex did what it was told.
fn assert_ran(world: &World, expected: &str) {
    let reported = world.openai.tool_outputs();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(
        reported[0].contains("Process exited with code 0") && reported[0].contains(expected),
        "the hostile command did not run as meant: {reported:?}"
    );
}

/// Nothing planted reaches the files the runner reads after the step.
fn assert_files_clean(run: &StageRun) {
    for file in [
        &run.env_file,
        &run.path_file,
        &run.state_file,
        &run.output_file,
        &run.summary,
    ] {
        for planted in PLANTED {
            assert!(
                !file.contains(planted),
                "{planted:?} reached a command file:\n{file}"
            );
        }
    }
}

#[test]
fn lines_written_to_the_command_files_reach_no_later_step() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let command = "{ cd /github/file_commands && ls -la && for f in *; do printf \
        'LD_PRELOAD=/github/workspace/evil.so\\nHTTPS_PROXY=http://127.0.0.1:9\\n\
        SSL_CERT_FILE=/github/workspace/ca.pem\\nCODEX_HOME=/github/workspace/evil\\n\
        handoff=forged\\npersisted=forged\\n' >> \"$f\"; done && \
        for f in *output*; do ln -sf /github/workspace/leak \"$f\"; done; ls -la; } 2>&1; \
        printf 'x\\n' >> /github/workflow/event.json 2>&1; echo tried";
    let mut job = hostile(&world, &seed, command);
    let main = job.main();
    main.assert_ok();
    // The directory is root's while Codex runs: the command cannot even list it, nor change
    // the event payload later steps read.
    assert_ran(&world, "Permission denied");
    let reported = world.openai.tool_outputs().join("\n");
    assert!(!reported.contains("output -> "), "{reported}");
    assert!(
        !main
            .stdout
            .contains("Codex wrote to the step's command files"),
        "{}",
        main.stdout
    );
    assert_files_clean(&main);
    // The outputs are the action's, in the file the runner reads.
    assert_eq!(main.output("persisted"), "true");
    assert_eq!(main.output("refreshed"), "true");
    assert!(!job.workspace.join("leak").exists());
    let event = fs::read_to_string(job.runner_temp().join("_github_workflow/event.json")).unwrap();
    assert!(!event.contains('x'), "{event}");
    world.assert_secret_holds_the_latest_login();
    assert_log_holds(&world, &main);
    let post = job.post(&main);
    post.assert_ok();
    assert_log_holds(&world, &post);
}

#[test]
fn stop_commands_before_a_mid_task_rotation_leaves_no_token_in_the_log() {
    let world = World::new(Responses::Ok);
    // A fresh login: Codex refreshes only when the backend revokes the access token, right
    // after the command printed its stop-commands lines.
    let seed = world.openai.seed(false);
    world.openai.expire_access_after_tool_call();
    let command =
        "echo '::stop-commands::x'; echo '  ::stop-commands::y'; echo 'a ##[stop-commands]z'";
    let mut job = hostile(&world, &seed, command);
    let main = job.main();
    main.assert_ok();
    assert_ran(&world, "::stop-commands::x");
    assert!(world.openai.rotations() >= 1, "{:?}", world.openai.log());
    assert_eq!(main.output("refreshed"), "true");
    world.assert_secret_holds_the_latest_login();
    // The command's lines are in the log, as plain text.
    let log = assert_log_holds(&world, &main);
    assert!(log.shown.contains("::stop-commands::x"), "{}", log.shown);
    let post = job.post(&main);
    post.assert_ok();
    assert_log_holds(&world, &post);
}

#[test]
fn workflow_commands_in_codexs_output_are_not_obeyed() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let command = "printf '%s\\n' '::save-state name=handoff::{\"baseline\":\"forged\"}' \
        '::set-output name=persisted::forged' '::add-mask::OK' 'x ##[add-mask]Done' \
        '  ::set-env name=LD_PRELOAD::/x.so' '::error title=codex-auth%3A Fake::forged' \
        '::add-path::/github/workspace/forged'";
    let mut job = hostile(&world, &seed, command);
    let main = job.main();
    main.assert_ok();
    assert_ran(&world, "::set-output name=persisted::forged");
    assert_log_holds(&world, &main);
    assert_files_clean(&main);
    assert_eq!(main.output("persisted"), "true");
    assert_eq!(main.output("final-message"), "Done.");
    world.assert_secret_holds_the_latest_login();
    let post = job.post(&main);
    post.assert_ok();
}

#[test]
fn another_accounts_login_is_never_stored() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let own = world.openai.account_id();
    world
        .openai
        .sign_in_as("mallory@example.test", "acc-99999999-mallory");
    let foreign = world.openai.seed(false);
    world.openai.sign_in_as("dev@example.test", &own);
    let mut job = hostile(
        &world,
        &seed,
        "cp /github/workspace/foreign.json /github/home/.codex/auth.json",
    );
    fs::write(job.workspace.join("foreign.json"), foreign.to_string()).unwrap();
    let main = job.main();
    assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
    assert_ran(&world, "");
    assert!(annotation(&main, "Another account's login").contains("acc-9999"));
    let post = job.post(&main);
    assert_eq!(post.code, 1, "{}", post.stdout);
    annotation(&post, "Another account's login");
    assert_eq!(world.writes(), 0);
    assert_eq!(world.stored(), seed);
    assert_log_holds(&world, &main);
    assert_log_holds(&world, &post);
}

#[test]
fn a_process_left_behind_writes_nothing_after_codex() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    // A detached loop that keeps trying to append to every command file, long after Codex
    // exits.
    let command = "setsid sh -c 'while :; do for f in /github/file_commands/*; do \
        echo LD_PRELOAD=/x.so >> \"$f\"; done; sleep 0.05; done' </dev/null >/dev/null 2>&1 & \
        sleep 1; echo started";
    let mut job = hostile(&world, &seed, command);
    let main = job.main();
    main.assert_ok();
    assert_ran(&world, "started");
    assert!(
        main.stdout.contains("Ended what Codex left running"),
        "{}",
        main.stdout
    );
    assert_files_clean(&main);
    world.assert_secret_holds_the_latest_login();
    assert_log_holds(&world, &main);
}

#[test]
fn on_a_root_owned_workspace_codex_runs_as_nobody() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    world.openai.ask_to_run("id -u; id -G");
    let mut job = world.job(&seed);
    // A self-hosted runner running as root: the checkout is root's.
    job.in_container(&image());
    let main = job.main();
    main.assert_ok();
    assert!(
        main.stdout.contains("Codex runs as nobody"),
        "{}",
        main.stdout
    );
    let reported = world.openai.tool_outputs();
    assert!(
        reported[0].contains("\n65534\n65534"),
        "Codex's command did not run as nobody: {reported:?}"
    );
}

#[test]
fn the_post_stage_ignores_what_a_later_step_put_in_its_environment() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.in_container(&image()).owned_by(RUNNER_UID);
    job.input("mode", "restore");
    let mut main = job.main();
    main.assert_ok();
    // A later step (Codex on the host, in restore mode) rotated the login...
    let output = job.host_step_codex(&main.env_file, RUNNER_UID);
    assert!(output.status.success(), "{output:?}");
    // ... and planted, through GITHUB_ENV, a library to preload, a CA of its own, and another
    // CODEX_HOME holding a login it keeps.
    let library = job.workspace.join("evil.so");
    let source = job.runner_temp().join("evil.c");
    fs::write(
        &source,
        "#include <stdio.h>\n__attribute__((constructor)) static void own(void) {\n  FILE *f = \
         fopen(\"/github/workspace/preloaded\", \"w\");\n  if (f) { fputs(\"preloaded\", f); \
         fclose(f); }\n}\n",
    )
    .unwrap();
    let built = std::process::Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&source)
        .status()
        .unwrap();
    assert!(built.success());
    fs::create_dir_all(job.workspace.join("evil")).unwrap();
    fs::write(job.workspace.join("evil/auth.json"), seed.to_string()).unwrap();
    main.env_file.push_str(
        "LD_PRELOAD=/github/workspace/evil.so\nSSL_CERT_FILE=/github/workspace/ca.pem\n\
         CODEX_HOME=/github/workspace/evil\n",
    );
    let post = job.post(&main);
    post.assert_ok();
    // The static binary loaded nothing...
    assert!(!job.workspace.join("preloaded").exists());
    // ... trusted no CA a later step named, and saved the login from where main restored it.
    assert!(warning(&post, "Variable ignored").contains("SSL_CERT_FILE"));
    world.assert_secret_holds_the_latest_login();
    assert_log_holds(&world, &post);

    // The same library does load into a dynamically linked program of the image: the check
    // above could fail.
    let control = std::process::Command::new("podman")
        .args([
            "run",
            "--rm",
            "--pull=never",
            "--network",
            "none",
            "-e",
            "LD_PRELOAD=/github/workspace/evil.so",
        ])
        .arg("-v")
        .arg(format!("{}:/github/workspace", job.workspace.display()))
        .args(["--entrypoint", "/bin/true", &image()])
        .status()
        .unwrap();
    assert!(control.success());
    assert!(job.workspace.join("preloaded").exists());
}

/// A task job on the keeper's access-only copy (docs: "Many jobs, one login"), in the container
/// under Docker's profile: what a prompt-injected Codex can carry off is the copy's access
/// token, and nothing else. No refresh token is on the runner, no write token was given, no
/// request reaches GitHub (the event payload says the repository is private), and nothing is
/// refreshed or written back.
#[test]
fn on_an_access_only_copy_codex_finds_no_refresh_token_and_no_write_token() {
    let world = World::new(Responses::Ok);
    let login = world.openai.seed(false);
    let mut copy = login.clone();
    copy["auth_mode"] = "chatgptAuthTokens".into();
    copy["tokens"]["refresh_token"] = "".into();
    world
        .openai
        .ask_to_run("cat \"${CODEX_HOME:-$HOME/.codex}/auth.json\"; env; echo exfiltrated");
    let mut job = Job::new(&world.github, &world.openai);
    job.input("auth-json", copy.to_string());
    job.in_container(&image()).owned_by(RUNNER_UID);
    let main = job.main();
    main.assert_ok();
    assert_ran(&world, "exfiltrated");
    let reported = world.openai.tool_outputs().join("\n");
    let access = login["tokens"]["access_token"].as_str().unwrap();
    let refresh = login["tokens"]["refresh_token"].as_str().unwrap();
    assert!(
        reported.contains(access),
        "the command did not read the copy"
    );
    assert!(!reported.contains(refresh), "a refresh token reached Codex");
    assert!(
        !reported.contains(WRITE_TOKEN),
        "a write token reached Codex"
    );
    assert_eq!(world.openai.rotations(), 0);
    assert_eq!(main.output("persisted"), "false");
    assert_log_holds(&world, &main);
    let post = job.post(&main);
    post.assert_ok();
    assert!(
        post.stdout.contains("nothing to write back"),
        "{}",
        post.stdout
    );
    assert!(
        world.github.requests().is_empty(),
        "a job on a copy sent GitHub requests: {:?}",
        world.github.requests()
    );
}

#[test]
fn a_task_cannot_replace_the_codex_a_later_step_runs() {
    // On GitHub, RUNNER_TEMP belongs to the runner's user, whom Codex runs as. While Codex runs
    // the action makes it root's with the sticky bit: Codex can neither change the copy nor
    // move it aside. A step of that user on the host, after it, can move it aside (though not
    // change it). (This harness makes RUNNER_TEMP as root, which would be kinder: it is given
    // to that user here.)
    let world = World::new(Responses::Ok);
    let registry = crate::support::npm::Registry::start();
    // The real package under a version the image's Codex is not (see codex_version.rs).
    registry.relabel("0.170.0");
    let copy = "/github/runner_temp/codex-auth-codex/0.170.0/linux-x64";
    world.openai.ask_to_run(&format!(
        "{{ printf x >> {copy}/.codex-auth-verified.json && echo write-allowed; }} 2>/dev/null || echo write-refused; \
         {{ touch {copy}/bin/planted && echo create-allowed; }} 2>/dev/null || echo create-refused; \
         {{ mv /github/runner_temp/codex-auth-codex /github/runner_temp/aside && echo move-allowed; }} 2>/dev/null || echo move-refused"
    ));
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);
    job.in_container(&image())
        .owned_by(RUNNER_UID)
        .input("codex-version", "0.170.0")
        .env("npm_config_registry", registry.url());
    std::os::unix::fs::chown(job.runner_temp(), Some(RUNNER_UID), Some(RUNNER_UID)).unwrap();

    let first = job.main();
    first.assert_ok();
    let reported = world.openai.tool_outputs().join("\n");
    assert!(
        reported.contains("write-refused")
            && reported.contains("create-refused")
            && reported.contains("move-refused"),
        "the hostile command did not run as meant: {reported}"
    );
    assert!(!reported.contains("-allowed"), "{reported}");
    assert_log_holds(&world, &first);
    // RUNNER_TEMP is the runner's user's again.
    let temp = fs::metadata(job.runner_temp()).unwrap();
    assert_eq!(
        (
            std::os::unix::fs::MetadataExt::uid(&temp),
            std::os::unix::fs::MetadataExt::mode(&temp) & 0o7777
        ),
        (RUNNER_UID, 0o755)
    );

    // A later step on the host, as the runner's user, moves the copy aside and plants its own.
    let rt = job.runner_temp().display().to_string();
    let host_copy = format!("{rt}/codex-auth-codex/0.170.0/linux-x64");
    let planted = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "mv {rt}/codex-auth-codex {rt}/aside && mkdir -p {host_copy}/bin && \
             printf '#!/bin/sh\\necho pwned\\n' > {host_copy}/bin/codex && \
             chmod 755 {host_copy}/bin/codex && \
             cp {rt}/aside/0.170.0/linux-x64/.codex-auth-verified.json {host_copy}/"
        ))
        .uid(RUNNER_UID)
        .gid(RUNNER_UID)
        .status()
        .unwrap();
    assert!(planted.success());

    // The next step of the job: the planted copy is never run; the package is fetched and
    // verified again, and the real Codex runs the task.
    world.openai.ask_to_run("echo second-step");
    let second = job.main();
    second.assert_ok();
    let said = warning(&second, "Cached Codex changed");
    assert!(
        said.contains(&format!("belongs to uid {RUNNER_UID}")),
        "{said}"
    );
    assert_eq!(registry.downloads(), 2);
    assert!(
        second.stdout.contains(&format!(
            "Codex: codex-cli {}, Codex 0.170.0, fetched from the npm registry",
            crate::support::npm::pinned_version()
        )),
        "{}",
        second.stdout
    );
    assert!(!second.stdout.contains("pwned"));
    assert!(world
        .openai
        .tool_outputs()
        .iter()
        .any(|o| o.contains("second-step")));
    assert_log_holds(&world, &second);
}

/// The login of another account, its plain `tokens.account_id` set to the restored account's id:
/// the account is the one its tokens claim, so neither stage stores it.
#[test]
fn a_forged_account_field_does_not_pass_for_the_restored_account() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let own = world.openai.account_id();
    world
        .openai
        .sign_in_as("mallory@example.test", "acc-99999999-mallory");
    let mut foreign = world.openai.seed(false);
    world.openai.sign_in_as("dev@example.test", &own);
    foreign["tokens"]["account_id"] = own.clone().into();
    let mut job = hostile(
        &world,
        &seed,
        "cp /github/workspace/foreign.json /github/home/.codex/auth.json",
    );
    fs::write(job.workspace.join("foreign.json"), foreign.to_string()).unwrap();
    let main = job.main();
    assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
    assert_ran(&world, "");
    // Named by the account its tokens claim, not the id typed beside them.
    let refused = annotation(&main, "Another account's login");
    assert!(refused.contains("acc-9999"), "{refused}");
    let post = job.post(&main);
    assert_eq!(post.code, 1, "{}", post.stdout);
    assert!(annotation(&post, "Another account's login").contains("acc-9999"));
    assert_eq!(world.writes(), 0);
    assert_eq!(world.stored(), seed);
    assert_log_holds(&world, &main);
    assert_log_holds(&world, &post);
}

/// A checkout that kept `persist-credentials: true` (actions/checkout's default; v4 and v5
/// write the job token's header into `.git/config`, as the runner's user): the main stage
/// warns, before Codex runs, that Codex can read and use it, and never prints the header. The
/// command shows Codex can read it indeed.
#[test]
fn a_checkout_that_persisted_the_job_token_is_warned_about() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let mut job = hostile(
        &world,
        &seed,
        "grep -qi extraheader /github/workspace/.git/config && echo header-readable",
    );
    // base64 of `x-access-token:ghs_persisted`, as actions/checkout writes it.
    let basic = "eC1hY2Nlc3MtdG9rZW46Z2hzX3BlcnNpc3RlZA==";
    let git = job.workspace.join(".git");
    fs::create_dir_all(git.join("objects")).unwrap();
    fs::create_dir_all(git.join("refs/heads")).unwrap();
    fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    fs::write(
        git.join("config"),
        format!(
            "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\
             [http \"https://ghe.example/\"]\n\textraheader = AUTHORIZATION: basic {basic}\n"
        ),
    )
    .unwrap();
    for path in ["", "objects", "refs", "refs/heads", "HEAD", "config"] {
        std::os::unix::fs::chown(git.join(path), Some(RUNNER_UID), Some(RUNNER_UID)).unwrap();
    }

    let main = job.main();
    main.assert_ok();
    assert_ran(&world, "header-readable");
    let title = "Job token persisted by the checkout";
    let said = warning(&main, title);
    assert!(
        said.contains("/github/workspace/.git/config holds an `http.<url>.extraheader`")
            && said.contains("`persist-credentials: false` on actions/checkout"),
        "{said}"
    );
    let warned = main
        .stdout
        .find(&format!("::warning title=codex-auth%3A {title}::"))
        .unwrap();
    let codex = main.stdout.find("Running codex exec").unwrap();
    assert!(
        warned < codex,
        "not warned before Codex ran:\n{}",
        main.stdout
    );
    assert!(
        !main.stdout.contains(basic) && !main.stderr.contains(basic),
        "the header shows in the log:\n{}\n{}",
        main.stdout,
        main.stderr
    );
    assert_log_holds(&world, &main);
    world.assert_secret_holds_the_latest_login();
}

/// The image's PATH (Debian's), which a step's `env:` may put a directory of its own before.
const IMAGE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the command tries to plant in place of every command file: a tree 1500 directories
/// deep (far deeper than a recursive removal can go with 512 file descriptors, the limit the
/// container gets here, as a daemon's default ulimits could set it) or a link. In the container
/// the directory is root's while Codex runs, so the command is refused outright; the files
/// hold what the action wrote, as regular files, and the post stage runs. (With the directory
/// left open, the custody would still rename the tree aside in one step: the unit tests of
/// `workflow::command_files` try that layer alone.)
#[test]
fn a_deep_tree_and_a_link_in_place_of_the_command_files_change_nothing() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let command = "{ cd /github/file_commands && i=0 && for f in *; do i=$((i+1)); unlink \"$f\"; \
        if [ $((i % 2)) = 0 ]; then ln -s /github/workspace/leak \"$f\"; else mkdir \"$f\" && \
        ( cd \"$f\" && d=0 && while [ $d -lt 1500 ]; do mkdir d && cd d && d=$((d+1)); done ); \
        fi; done && echo planted; } 2>&1; echo tried";
    let mut job = hostile(&world, &seed, command);
    job.container_option("--ulimit=nofile=512:512")
        .container_option("--ulimit=nproc=32768:32768");
    let main = job.main();
    main.assert_ok();
    assert_ran(&world, "Permission denied");
    let reported = world.openai.tool_outputs().join("\n");
    assert!(!reported.contains("planted"), "{reported}");
    assert_files_clean(&main);
    assert_eq!(main.output("persisted"), "true");
    assert!(main.state.contains_key("handoff"), "{:?}", main.state);
    world.assert_secret_holds_the_latest_login();
    assert_log_holds(&world, &main);
    let post = job.post(&main);
    post.assert_ok();
    assert_log_holds(&world, &post);
}

/// Reads each file as the runner's user does after the step: what it holds, or `None` when
/// that user cannot read it (the directory is locked: the runner reads nothing).
fn as_the_runner_reads(files: &[std::path::PathBuf]) -> Vec<Option<String>> {
    files
        .iter()
        .map(|file| {
            let out = std::process::Command::new("cat")
                .arg(file)
                .uid(RUNNER_UID)
                .gid(RUNNER_UID)
                .output()
                .unwrap();
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
        })
        .collect()
}

/// Nothing planted in what the runner's user can read of `files` at `moment`.
fn assert_nothing_planted(files: &[std::path::PathBuf], moment: &str) {
    for (file, read) in files.iter().zip(as_the_runner_reads(files)) {
        if let Some(text) = read {
            for planted in PLANTED.iter().chain(&["LD_PRELOAD", "forged"]) {
                assert!(
                    !text.contains(planted),
                    "{moment}: {planted:?} in {}:\n{text}",
                    file.display()
                );
            }
        }
    }
}

fn signal(pid: u32, name: &str) {
    let sent = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{name} {pid}");
}

/// A job cancelled while a Codex that ignores the runner's signals holds the step, and a
/// process it left keeps appending to every command file and the event payload: the files
/// are read as the runner's user at the runner's moments (before its SIGINT, at its SIGTERM
/// 7.5 s later, and right after its SIGKILL of the client 2.5 s after that, when the runner
/// reads the command files at once) and hold nothing of Codex's at any of them. The stage ends
/// Codex after the second signal rather than wait for it, gives the directory back to the
/// runner's user with the action's state in it, and the post stage then stores the login
/// Codex refreshed.
///
/// How it differs from GitHub: the runner signals the `docker run` client, which passes the
/// signals to the container (its default `--sig-proxy`); here `podman run` does the same. The
/// container outlives the killed client there too (actions/runner, `ProcessInvoker`); here
/// the test waits for it by name.
#[test]
fn a_cancel_at_the_runners_deadlines_finds_nothing_of_codexs_in_the_command_files() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let command = "setsid sh -c 'trap \"\" INT TERM HUP; while :; do \
        for f in /github/file_commands/* /github/workflow/event.json; do \
        echo LD_PRELOAD=/x.so >> \"$f\"; echo forged >> \"$f\"; done; sleep 0.05; done' \
        </dev/null >/dev/null 2>&1 & echo started";
    let mut job = hostile(&world, &seed, command);
    // A Codex that ignores SIGINT and SIGTERM and stays on once its task is done (a step's
    // `env:` may put a directory before the image's PATH).
    let bin = job.runner_temp().join("stubborn");
    fs::create_dir_all(&bin).unwrap();
    fs::write(
        bin.join("codex"),
        "#!/bin/sh\n[ \"$1\" = exec ] || exec /usr/local/bin/codex \"$@\"\ntrap '' INT TERM\n\
         /usr/local/bin/codex \"$@\"\nsleep 600\n",
    )
    .unwrap();
    fs::set_permissions(
        bin.join("codex"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    job.container_option(&format!(
        "--env=PATH=/github/runner_temp/stubborn:{IMAGE_PATH}"
    ));
    let spawned = job.spawn_main_recording();
    let name = job.container_name().unwrap().to_owned();
    let _removed = RemovedOnDrop(name.clone());
    let event = job.runner_temp().join("_github_workflow/event.json");
    let mut files: Vec<_> = spawned.files().to_vec();
    files.push(event.clone());

    // The task ran, and Codex's turn is over (the model's answer to the tool's output).
    let started = std::time::Instant::now();
    while world.openai.tool_outputs().is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(240),
            "the task did not run: {}",
            spawned.stdout_so_far()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_ran(&world, "started");
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_nothing_planted(&files, "while Codex runs");
    let pid = spawned.child.id();
    signal(pid, "INT");
    std::thread::sleep(std::time::Duration::from_millis(7500));
    assert_nothing_planted(&files, "at the runner's SIGTERM");
    signal(pid, "TERM");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    signal(pid, "KILL");
    // The runner reads the files now: they are back, the action's own state in them.
    let read = as_the_runner_reads(&files);
    let state = read[1]
        .as_deref()
        .unwrap_or_else(|| panic!("at the runner's kill the state is out of reach: {read:?}"));
    assert!(state.contains("handoff"), "{state}");
    assert_nothing_planted(&files, "at the runner's kill, when it reads the files");

    // The container outlives its client; the stage ends by itself, soon.
    let gone = std::time::Instant::now();
    while std::process::Command::new("podman")
        .args(["container", "exists", &name])
        .status()
        .unwrap()
        .success()
    {
        assert!(
            gone.elapsed() < std::time::Duration::from_secs(60),
            "the stage still waits for a Codex that ignores signals"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_nothing_planted(&files, "after the stage ended");
    let main = spawned.finish();
    // Given back to the runner's user, with the action's own state in it.
    let dir = fs::metadata(main_dir(&files)).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&dir), RUNNER_UID);
    let read = as_the_runner_reads(&files);
    let state = read[1]
        .as_deref()
        .unwrap_or_else(|| panic!("state unreadable: {read:?}"));
    assert!(state.contains("handoff"), "{state}");
    let post = job.post(&main);
    post.assert_ok();
    world.assert_secret_holds_the_latest_login();
    assert_log_holds(&world, &post);
}

/// Removes a container when the test ends, passed or not: a failed assertion must not leave a
/// stage that ignores signals running.
struct RemovedOnDrop(String);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("podman")
            .args(["rm", "--force", "--time", "0", &self.0])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn main_dir(files: &[std::path::PathBuf]) -> &std::path::Path {
    files[0].parent().unwrap()
}

/// CODEX_HOME turned into a link by Codex (to `/run`, which holds the Docker socket on a
/// runner; here a directory of root's with such a file): a later step's stage, as root,
/// restores nothing through it and hands nothing there to Codex's user.
#[test]
fn a_codex_home_turned_into_a_link_is_not_followed_by_a_later_stage() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let command = "mv /github/home/.codex /github/home/.codex-moved && \
        ln -s /github/runner_temp/run /github/home/.codex && echo linked";
    let mut job = hostile(&world, &seed, command);
    let run = job.runner_temp().join("run");
    fs::create_dir(&run).unwrap();
    fs::write(run.join("docker.sock"), "").unwrap();
    // Codex loses its own home mid-run; the link is there for the job's later steps.
    let first = job.main();
    assert!(
        fs::symlink_metadata(job.home.join(".codex"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "{}",
        first.stdout
    );
    assert_log_holds(&world, &first);

    // A later step of the job, restoring the login again.
    world.openai.ask_to_run("echo second-step");
    let second = job.main();
    assert_eq!(second.code, 1, "{}\n{}", second.stdout, second.stderr);
    assert!(second.stdout.contains("symbolic link"), "{}", second.stdout);
    let names: Vec<_> = fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["docker.sock"]);
    let socket = fs::symlink_metadata(run.join("docker.sock")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&socket), 0);
    let dir = fs::symlink_metadata(&run).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&dir), 0);
    assert!(!world
        .openai
        .tool_outputs()
        .iter()
        .any(|o| o.contains("second-step")));
    assert_eq!(world.writes(), 0);
    assert_log_holds(&world, &second);
}

/// A later step sets, through GITHUB_ENV, a CODEX_HOME that carries a legacy
/// `##[stop-commands]`: the post stage names it in a plain line, which the runner reads as
/// text, so the masks of the tokens a host step's Codex rotated still hold.
#[test]
fn a_legacy_stop_command_in_a_later_steps_variable_stops_nothing() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(true);
    let mut job = world.job(&seed);
    job.in_container(&image()).owned_by(RUNNER_UID);
    job.input("mode", "restore");
    let mut main = job.main();
    main.assert_ok();
    let output = job.host_step_codex(&main.env_file, RUNNER_UID);
    assert!(output.status.success(), "{output:?}");
    main.env_file
        .push_str("CODEX_HOME=/github/workspace/x##[stop-commands]zz\n");
    let post = job.post(&main);
    post.assert_ok();
    assert!(
        post.stdout.contains("x##\\[stop-commands]zz"),
        "{}",
        post.stdout
    );
    assert_log_holds(&world, &post);
    world.assert_secret_holds_the_latest_login();
}
