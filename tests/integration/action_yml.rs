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
    assert_eq!(defaults["prompt"].as_deref(), Some(DEFAULT_PROMPT));
    assert_eq!(defaults["keep"].as_deref(), Some("false"));
    assert_eq!(
        defaults["allow-public-repository"].as_deref(),
        Some("false")
    );
    let timeout = codex_auth::github::RetryPolicy::default()
        .deadline
        .as_secs()
        .to_string();
    assert_eq!(defaults["api-timeout"].as_deref(), Some(timeout.as_str()));
    for name in ["environment", "organization", "codex-args"] {
        assert_eq!(defaults[name].as_deref(), Some(""), "{name}");
    }
    for name in ["auth-json", "token"] {
        assert_eq!(inputs[name]["required"].as_bool(), Some(true), "{name}");
        assert_eq!(defaults[name], None, "{name}");
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
        ["exit-code", "final-message", "refreshed", "persisted"]
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
