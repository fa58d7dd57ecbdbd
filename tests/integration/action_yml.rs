//! `action.yml`, the Dockerfile and the binary agree: the inputs the runner passes, their
//! defaults, the outputs, and the two entrypoints.

use std::collections::BTreeMap;
use std::path::Path;

use codex_auth::config::{DEFAULT_PROMPT, DEFAULT_SECRET_NAME};
use pretty_assertions::assert_eq;
use yaml_rust2::{Yaml, YamlLoader};

use crate::support::job::DECLARED_INPUTS;

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

fn action() -> Yaml {
    YamlLoader::load_from_str(&read("action.yml"))
        .unwrap()
        .remove(0)
}

fn keys(map: &Yaml) -> Vec<String> {
    map.as_hash()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn inputs_and_defaults_match_the_binary() {
    let action = action();
    let inputs = &action["inputs"];
    let mut declared: Vec<String> = keys(inputs);
    declared.sort();
    let mut expected: Vec<String> = DECLARED_INPUTS.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(declared, expected);

    let defaults: BTreeMap<String, Option<String>> = keys(inputs)
        .into_iter()
        .map(|name| {
            let default = inputs[name.as_str()]["default"].as_str().map(str::to_owned);
            (name, default)
        })
        .collect();
    assert_eq!(
        defaults["secret-name"].as_deref(),
        Some(DEFAULT_SECRET_NAME)
    );
    // The runner always passes a default: the prompt's lives in the binary, so that `prompt`
    // and `prompt-file` can be refused together.
    assert_eq!(defaults["prompt"], None);
    assert!(inputs["prompt"]["description"]
        .as_str()
        .is_some_and(|d| d.contains(DEFAULT_PROMPT)));
    assert_eq!(defaults["keep"].as_deref(), Some("false"));
    assert_eq!(defaults["mode"].as_deref(), Some("exec"));
    assert_eq!(
        defaults["allow-public-repository"].as_deref(),
        Some("false")
    );
    let timeout = codex_auth::github::RetryPolicy::default()
        .deadline
        .as_secs()
        .to_string();
    assert_eq!(defaults["api-timeout"].as_deref(), Some(timeout.as_str()));
    assert_eq!(defaults["store"].as_deref(), Some("secret"));
    assert_eq!(
        defaults["artifact-name"].as_deref(),
        Some(codex_auth::config::DEFAULT_ARTIFACT_NAME)
    );
    assert_eq!(
        defaults["github-token"].as_deref(),
        Some("${{ github.token }}")
    );
    for name in [
        "environment",
        "organization",
        "codex-args",
        "codex-version",
        "access-secret-name",
    ] {
        assert_eq!(defaults[name].as_deref(), Some(""), "{name}");
    }
    // Which of these is needed depends on the store and on how the secret is written: none is
    // required alone, and the binary says which is missing.
    for name in [
        "auth-json",
        "token",
        "app-id",
        "app-private-key",
        "prompt-file",
        "model",
        "effort",
        "output-file",
        "output-schema",
        "output-schema-file",
        "working-directory",
    ] {
        assert_eq!(defaults[name], None, "{name}");
    }
    for name in ["auth-json", "token", "app-id", "app-private-key"] {
        assert_eq!(inputs[name]["required"].as_bool(), Some(false), "{name}");
    }
    for name in keys(inputs) {
        let description = inputs[name.as_str()]["description"].as_str().unwrap_or("");
        assert!(description.len() > 20, "input {name} needs a description");
    }
}

#[test]
fn outputs_are_declared_and_described() {
    let action = action();
    assert_eq!(
        keys(&action["outputs"]),
        [
            "exit-code",
            "final-message",
            "commands-run",
            "commands-failed",
            "refreshed",
            "persisted",
            "account",
            "codex-home"
        ]
    );
    for name in keys(&action["outputs"]) {
        assert!(action["outputs"][name.as_str()]["description"]
            .as_str()
            .is_some());
    }
}

#[test]
fn stages_have_distinct_entrypoints_that_the_image_provides() {
    let action = action();
    let runs = &action["runs"];
    assert_eq!(runs["using"].as_str(), Some("docker"));
    assert_eq!(runs["image"].as_str(), Some("Dockerfile"));
    assert_eq!(runs["post-if"].as_str(), Some("always()"));
    let main = runs["entrypoint"].as_str().unwrap();
    let post = runs["post-entrypoint"].as_str().unwrap();
    assert_ne!(main, post);
    let dockerfile = read("Dockerfile");
    for (path, stage) in [
        (main, codex_auth::cli::ActionStage::Main),
        (post, codex_auth::cli::ActionStage::Post),
    ] {
        let name = Path::new(path).file_name().unwrap().to_str().unwrap();
        assert!(
            dockerfile.contains(&format!("/usr/local/bin/{name}")),
            "the image must provide {path}"
        );
        let cli = codex_auth::cli::parse(vec![path.into(), "same-args-for-every-stage".into()]);
        assert!(
            matches!(cli.command, codex_auth::cli::Command::Action { stage: s } if s == stage),
            "{path} must run the {stage:?} stage"
        );
    }
}

/// The rows of the table in docs/inputs.md that follows `heading`: (name, default) per row.
fn inputs_table(heading: &str) -> Vec<(String, String)> {
    let page = read("docs/inputs.md");
    let section = page.split(heading).nth(1).unwrap();
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_owned(),
                cells[2].trim_matches('`').to_owned(),
            )
        })
        .collect()
}

#[test]
fn inputs_page_tables_match_action_yml() {
    let action = action();
    let inputs: Vec<(String, String)> = keys(&action["inputs"])
        .into_iter()
        .map(|name| {
            let input = &action["inputs"][name.as_str()];
            let default = match (input["default"].as_str(), input["required"].as_bool()) {
                (Some(default), _) => default.to_owned(),
                (None, Some(true)) => "(required)".to_owned(),
                (None, _) => String::new(),
            };
            (name, default)
        })
        .collect();
    assert_eq!(inputs_table("## Inputs"), inputs);
    let outputs: Vec<String> = inputs_table("## Outputs")
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(outputs, keys(&action["outputs"]));
}

#[test]
fn every_error_and_warning_title_is_in_the_troubleshooting_table() {
    let page = read("docs/troubleshooting.md");
    let troubleshooting = page.split("# Troubleshooting").nth(1).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for path in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    // The title of an error no check foresaw.
    let mut titles = vec![codex_auth::cli::UNFORESEEN.to_owned()];
    for path in files {
        let text = std::fs::read_to_string(path).unwrap();
        // A `Failure`'s or a warning's title, and an input error's (`ConfigError`'s `title`
        // field), in every module: the command line's (`seed`, `inspect`) show theirs too.
        for marker in ["Failure::new(", "workflow.warning(", ".warning(", "title: "] {
            for (at, _) in text.match_indices(marker) {
                let rest = text[at + marker.len()..].trim_start();
                if let Some(literal) = rest.strip_prefix('"') {
                    titles.push(literal.split('"').next().unwrap().to_owned());
                }
            }
        }
    }
    titles.sort();
    titles.dedup();
    assert!(titles.len() >= 15, "{titles:?}");
    // An input error's, a command line error's, a warning's: each kind is found.
    for title in [
        "Expected account missing",
        "Repository not readable",
        "No auth.json",
        "Variable ignored",
    ] {
        assert!(titles.iter().any(|t| t == title), "{title}: {titles:?}");
    }
    let missing: Vec<&String> = titles
        .iter()
        .filter(|t| !troubleshooting.contains(&format!("`{t}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "titles missing from docs/troubleshooting.md: {missing:?}"
    );
}

/// The container action's inputs that only `mode: exec` or `mode: login` read: the host face,
/// which runs `mode: restore` alone, does not declare them.
const NOT_IN_RESTORE_MODE: &[&str] = &[
    "prompt",
    "prompt-file",
    "codex-args",
    "model",
    "effort",
    "output-file",
    "output-schema",
    "output-schema-file",
    "working-directory",
    "expected-account",
    "login-timeout",
    // Only `mode: exec` runs on an access token.
    "codex-access-token",
];

#[test]
fn the_host_face_declares_only_what_restore_mode_reads() {
    let container = action();
    let text = read("host/action.yml");
    let host = yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap()
        .remove(0);
    // Every input of the container action that restore mode reads, by the same name; a new
    // input of the container action fails here until it is added to the host face or to
    // NOT_IN_RESTORE_MODE.
    let restore: Vec<String> = keys(&container["inputs"])
        .into_iter()
        .filter(|name| !NOT_IN_RESTORE_MODE.contains(&name.as_str()))
        .collect();
    assert_eq!(keys(&host["inputs"]), restore);
    // Restore mode sets one output in the main stage; the others belong to exec and login.
    assert_eq!(keys(&host["outputs"]), ["codex-home"]);
    for name in restore {
        let default =
            |action: &yaml_rust2::Yaml| action["inputs"][name.as_str()]["default"].clone();
        if name == "mode" {
            // The one mode the host face runs.
            assert_eq!(default(&host).as_str(), Some("restore"));
        } else {
            assert_eq!(default(&host), default(&container), "input {name}");
        }
    }
    assert_eq!(host["runs"]["using"].as_str(), Some("node24"));
    assert_eq!(host["runs"]["main"].as_str(), Some("main.js"));
    assert_eq!(host["runs"]["post"].as_str(), Some("post.js"));
    assert_eq!(host["runs"]["post-if"].as_str(), Some("always()"));
    // No npm dependencies, and a few hundred lines at most (most of them the download
    // through the runner's proxy and CAs, with the rules of src/net/proxy.rs and trust.rs).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("host");
    assert!(!dir.join("package.json").exists() && !dir.join("node_modules").exists());
    let lines: usize = ["lib.js", "main.js", "post.js"]
        .iter()
        .map(|f| read(&format!("host/{f}")).lines().count())
        .sum();
    assert!(lines <= 500, "{lines} lines");
    for line in read("host/lib.js").lines() {
        if let Some(module) = line.split("require(\"").nth(1) {
            assert!(
                module.starts_with("node:") || module.starts_with("./"),
                "{line}"
            );
        }
    }
}
