//! The action's input decoding: arbitrary values for every input and runner variable must
//! give a configuration or a clear error, never a panic.
#![no_main]

use std::ffi::OsString;

use codex_auth::config::ActionConfig;
use codex_auth::auth_file::AuthFile;
use libfuzzer_sys::fuzz_target;

const NAMES: &[&str] = &[
    "INPUT_AUTH-JSON",
    "INPUT_TOKEN",
    "INPUT_SECRET-NAME",
    "INPUT_ENVIRONMENT",
    "INPUT_ORGANIZATION",
    "INPUT_MODE",
    "INPUT_PROMPT",
    "INPUT_CODEX-ARGS",
    "INPUT_KEEP",
    "INPUT_ALLOW-PUBLIC-REPOSITORY",
    "INPUT_API-TIMEOUT",
    "INPUT_APP-ID",
    "INPUT_APP-PRIVATE-KEY",
    "INPUT_STORE",
    "INPUT_ARTIFACT-KEY",
    "INPUT_ARTIFACT-NAME",
    "INPUT_RETENTION-DAYS",
    "INPUT_GITHUB-TOKEN",
    "GITHUB_REPOSITORY_ID",
    "GITHUB_REPOSITORY",
    "GITHUB_API_URL",
    "CODEX_HOME",
    "GITHUB_RUN_ID",
    "GITHUB_RUN_ATTEMPT",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut environment: Vec<(OsString, OsString)> = vec![("HOME".into(), "/github/home".into())];
    for (name, value) in NAMES.iter().zip(text.split('\u{1}')) {
        environment.push((name.into(), value.into()));
    }
    if let Ok(config) = ActionConfig::from_env(environment) {
        if let Some(seed) = &config.auth_json {
            let _ = AuthFile::decode(seed.expose());
        }
        let _ = format!("{config:?} {}", config.target);
    }
});
