//! The inputs openai/codex-action users expect (`prompt-file`, `model`, `effort`,
//! `output-file`, `output-schema`/`output-schema-file`, `working-directory`, `codex-args` as a
//! JSON array): they reach Codex's request as the local OpenAI records it, in the real image
//! under Docker's seccomp profile; and a bad one is refused before any login is restored.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

use pretty_assertions::assert_eq;
use serde_json::json;

use crate::support::job::{Job, StageRun};
use crate::support::openai::Responses;
use crate::support::world::World;

/// The runner's user on GitHub's hosted runners.
const RUNNER_UID: u32 = 1001;

fn image() -> String {
    std::env::var("CODEX_AUTH_TEST_IMAGE").unwrap_or_else(|_| {
        panic!("CODEX_AUTH_TEST_IMAGE is not set: run the tests with scripts/test")
    })
}

/// A job in the container, as GitHub runs it, on a workspace of the runner's user.
fn in_container(world: &World, stale: bool) -> Job {
    let seed = world.openai.seed(stale);
    let mut job = world.job(&seed);
    job.in_container(&image()).owned_by(RUNNER_UID);
    job
}

/// Writes a file of the workspace, the runner's user's, as a checkout would.
fn checkout_file(job: &Job, relative: &str, contents: &str) {
    let path = job.workspace.join(relative);
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(&path, contents).unwrap();
    for made in [dir, path.as_path()] {
        std::os::unix::fs::chown(made, Some(RUNNER_UID), Some(RUNNER_UID)).unwrap();
    }
}

#[test]
fn the_new_inputs_reach_codexs_request() {
    let world = World::new(Responses::Ok);
    let mut job = in_container(&world, false);
    let schema = json!({
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": false
    });
    checkout_file(
        &job,
        ".github/codex/prompt.md",
        "Summarise the repository in one word: prompt-file-canary.\n",
    );
    checkout_file(&job, ".github/codex/schema.json", &schema.to_string());
    checkout_file(&job, "sub/dir/README", "a subdirectory\n");
    job.input("prompt-file", ".github/codex/prompt.md")
        .input("model", "gpt-5.2-codex")
        .input("effort", "high")
        .input("output-schema-file", "./.github/codex/schema.json")
        .input("working-directory", "sub/dir")
        .input("output-file", "/github/workspace/sub/answer.md")
        .input(
            "codex-args",
            r#"["-c", "developer_instructions=\"json array canary\""]"#,
        );
    let main = job.main();
    main.assert_ok();

    let requests = world.openai.model_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request["model"], "gpt-5.2-codex");
    assert_eq!(request["reasoning"]["effort"], "high");
    assert_eq!(request["text"]["format"]["type"], "json_schema");
    assert_eq!(request["text"]["format"]["schema"], schema);
    let input = request["input"].to_string();
    assert!(input.contains("prompt-file-canary"), "{input}");
    // Codex tells the model where it works in its environment context.
    assert!(
        input.contains("<cwd>/github/workspace/sub/dir</cwd>"),
        "{input}"
    );
    // `codex-args` as a JSON array: its value, with its space, reached Codex as one argument.
    assert!(input.contains("json array canary"), "{input}");

    // The final message, for the runner's user's later steps.
    let answer = job.workspace.join("sub/answer.md");
    assert_eq!(std::fs::read_to_string(&answer).unwrap(), "OK\n");
    let meta = std::fs::metadata(&answer).unwrap();
    assert_eq!(meta.uid(), RUNNER_UID);
    assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
    world.assert_no_secret_leaked(&[&main]);
}

#[test]
fn a_link_codex_plants_at_the_output_file_is_not_followed_and_the_login_is_saved() {
    let world = World::new(Responses::Ok);
    // A stale access token: Codex refreshes, so the login must be written back.
    let mut job = in_container(&world, true);
    let outside = job.home.join("outside.txt");
    std::fs::write(&outside, "untouched\n").unwrap();
    // The model asks the real Codex to plant the link where the output file goes.
    world
        .openai
        .ask_to_run("ln -s /github/home/outside.txt answer.md && echo planted");
    job.input("output-file", "answer.md");
    let main = job.main();
    assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
    let reported = world.openai.tool_outputs();
    assert!(reported[0].contains("planted"), "{reported:?}");
    // Not followed: the file outside the workspace is as it was, the link still a link.
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "untouched\n");
    let link = std::fs::symlink_metadata(job.workspace.join("answer.md")).unwrap();
    assert!(link.file_type().is_symlink());
    assert!(
        main.stdout.contains("input `output-file` was not written")
            && main.stdout.contains("is a symbolic link"),
        "{}",
        main.stdout
    );
    // The rotated login was saved all the same, before the output file was tried.
    assert!(world.openai.rotations() >= 1);
    assert_eq!(main.output("persisted"), "true");
    world.assert_secret_holds_the_latest_login();
}

/// A refused case: what it puts in the workspace before the job, its inputs, what the
/// refusal says.
type Case = (
    Box<dyn FnOnce(&Job)>,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

/// Runs the main stage with `inputs` on a fresh world, and checks the refusal: exit 1, the
/// message, and nothing touched (no auth.json, no request to GitHub or OpenAI).
fn refused(container: bool, prepare: impl FnOnce(&Job), inputs: &[(&str, &str)], says: &str) {
    let world = World::new(Responses::Ok);
    let mut job = match container {
        true => in_container(&world, false),
        false => world.job(&world.openai.seed(false)),
    };
    prepare(&job);
    for (name, value) in inputs {
        job.input(name, *value);
    }
    let main: StageRun = job.main();
    assert_eq!(main.code, 1, "{inputs:?}: {}\n{}", main.stdout, main.stderr);
    assert!(
        main.stdout.contains(says),
        "{inputs:?}: {says:?} missing in {}",
        main.stdout
    );
    assert!(
        !job.codex_home().join("auth.json").exists(),
        "{inputs:?}: a login was restored"
    );
    assert_eq!(world.github.requests().len(), 0, "{inputs:?}");
    assert_eq!(world.openai.requests(), Vec::<String>::new(), "{inputs:?}");
}

#[test]
fn bad_inputs_are_refused_before_any_login_is_restored() {
    let nothing = |_: &Job| {};
    let cases: Vec<Case> = vec![
        (
            // The checkout can plant a link: it would send this process's environment, the
            // write token among it, to the model.
            Box::new(|job: &Job| {
                std::os::unix::fs::symlink("/proc/self/environ", job.workspace.join("p.md"))
                    .unwrap()
            }),
            vec![("prompt-file", "p.md")],
            "input `prompt-file` cannot be read (",
        ),
        (
            Box::new(nothing),
            vec![("prompt-file", "missing.md")],
            "input `prompt-file` names ",
        ),
        (
            Box::new(nothing),
            vec![("prompt-file", "../outside.md")],
            "input `prompt-file` \"../outside.md\" leaves the workspace",
        ),
        (
            Box::new(nothing),
            vec![("prompt", "hi"), ("prompt-file", "p.md")],
            "input `prompt-file` and input `prompt` are both set",
        ),
        (
            Box::new(|job: &Job| {
                std::fs::write(job.workspace.join("s.json"), "{\"type\": object}").unwrap()
            }),
            vec![("output-schema-file", "s.json")],
            "input `output-schema-file` names ",
        ),
        (
            Box::new(nothing),
            vec![("working-directory", "no/such/dir")],
            "input `working-directory` is not a directory of the workspace",
        ),
        (
            Box::new(nothing),
            vec![("model", "gpt 5")],
            "input `model` is \"gpt 5\"",
        ),
        (
            Box::new(nothing),
            vec![("effort", "max")],
            "input `effort` is \"max\"",
        ),
        (
            Box::new(nothing),
            vec![("codex-args", "[\"--ephemeral\", 1]")],
            "input `codex-args` starts with `[` but is not a JSON array of strings",
        ),
        (
            Box::new(nothing),
            vec![("model", "gpt-5"), ("codex-args", "-m o3")],
            "input `model` is set, and input `codex-args` sets the same (`-m`)",
        ),
    ];
    for (prepare, inputs, says) in cases {
        refused(false, prepare, &inputs, says);
    }
}

#[test]
fn in_the_container_a_sandbox_that_cannot_start_is_refused_up_front() {
    for args in [
        "--sandbox read-only",
        "-s workspace-write",
        "-c sandbox_mode=\"workspace-write\"",
    ] {
        refused(
            true,
            |_| {},
            &[("codex-args", args)],
            "which cannot start in the action's container",
        );
    }
}
