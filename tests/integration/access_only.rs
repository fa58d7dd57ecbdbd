//! Access-only copies with the real Codex CLI: a login whose `auth_mode` is
//! `chatgptAuthTokens` and whose refresh token is empty, as `AuthFile::to_access_only` makes
//! it, is used as it is. `codex exec` sends its access token, runs a real tool call and
//! finishes, and never asks the token endpoint for new tokens, even when the access token's
//! `exp` is past; auth.json stays byte for byte as it was (docs/facts.md, "Access-only
//! logins"). The same login in full is refreshed before the first model call, which shows
//! that these cases would see a refresh if Codex made one.
//!
//! How the local OpenAI differs from the real one where it matters here: the real backend
//! refuses an access token past its `exp`, so a real copy stops working then; these cases make
//! the local one accept it ([`OpenAi::accept_expired_access_tokens`]), so that what they
//! observe is Codex's own decision not to refresh, which is what lets any number of jobs use
//! one copy at once. The token endpoint is reached through `CODEX_REFRESH_TOKEN_URL_OVERRIDE`
//! and the backend through `config.toml`, as in the other end-to-end cases; the model answers
//! with one `exec_command` call, then a final message ([`OpenAi::ask_to_run`]). Codex runs
//! here on the host, unsandboxed (`danger-full-access`), in a loopback-only network namespace.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use codex_auth::auth_file::{AuthFile, Kind};
use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::job::{assert_loopback_only, real_codex};
use crate::support::openai::{OpenAi, Responses};

/// What the model asks Codex to run: it leaves a file in the workspace.
const COMMAND: &str = "echo ran-on-a-copy > made-by-codex.txt";

/// A Codex home and a workspace for one `codex exec`.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    /// A home whose auth.json is `auth_json` (written as given) and whose config.toml points
    /// Codex at `openai`.
    fn new(openai: &OpenAi, auth_json: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = Self { dir };
        std::fs::create_dir_all(home.codex_home()).unwrap();
        std::fs::create_dir_all(home.workspace()).unwrap();
        std::fs::write(home.codex_home().join("config.toml"), openai.codex_config()).unwrap();
        std::fs::write(home.auth_path(), auth_json).unwrap();
        std::fs::write(home.dir.path().join("ca.pem"), openai.ca_pem()).unwrap();
        home
    }

    fn codex_home(&self) -> PathBuf {
        self.dir.path().join("codex-home")
    }

    fn workspace(&self) -> PathBuf {
        self.dir.path().join("workspace")
    }

    fn auth_path(&self) -> PathBuf {
        self.codex_home().join("auth.json")
    }

    fn auth_bytes(&self) -> Vec<u8> {
        std::fs::read(self.auth_path()).unwrap()
    }

    /// `codex exec` as a task job's step would run it, with nothing from the test's
    /// environment but PATH.
    fn exec(&self, openai: &OpenAi) -> Output {
        Command::new(real_codex())
            .args([
                "exec",
                "--skip-git-repo-check",
                "--json",
                "-c",
                "cli_auth_credentials_store=\"file\"",
                "-s",
                "danger-full-access",
                "--",
                "Make the file the task needs.",
            ])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("CODEX_HOME", self.codex_home())
            .env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", openai.token_url())
            .env("CODEX_CA_CERTIFICATE", self.dir.path().join("ca.pem"))
            .current_dir(self.workspace())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The copy of `seed` the library makes, checked against the form the FACTS describe: the
/// seed with `auth_mode` `chatgptAuthTokens` and an empty refresh token, nothing else changed.
/// Returned pretty-printed, as it would sit in a Codex home.
fn copy_of(seed: &Value) -> String {
    let copy = AuthFile::decode(&seed.to_string())
        .unwrap()
        .to_access_only();
    assert_eq!(copy.kind(), Kind::AccessOnly);
    let pretty = copy.to_pretty_json().unwrap();
    let mut expected = seed.clone();
    expected["auth_mode"] = "chatgptAuthTokens".into();
    expected["tokens"]["refresh_token"] = "".into();
    let written: Value = serde_json::from_str(pretty.expose()).unwrap();
    assert_eq!(written, expected);
    pretty.expose().to_owned()
}

/// Requests to the token endpoint (refreshes, or any other grant).
fn token_requests(openai: &OpenAi) -> Vec<String> {
    openai
        .requests()
        .into_iter()
        .filter(|r| r.ends_with("/oauth/token"))
        .collect()
}

fn model_calls(openai: &OpenAi) -> usize {
    openai
        .requests()
        .iter()
        .filter(|r| *r == "POST /backend-api/codex/responses")
        .count()
}

#[test]
fn a_copy_past_its_exp_runs_a_tool_call_without_refreshing() {
    assert_loopback_only();
    let openai = OpenAi::start(Responses::Ok);
    openai.accept_expired_access_tokens();
    openai.ask_to_run(COMMAND);
    // The access token's `exp` lies an hour in the past.
    let seed = openai.seed(true);
    let home = Home::new(&openai, &copy_of(&seed));
    let before = home.auth_bytes();

    let out = home.exec(&openai);

    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The tool call ran, and its output went back to the model.
    assert_eq!(
        std::fs::read_to_string(home.workspace().join("made-by-codex.txt")).unwrap(),
        "ran-on-a-copy\n"
    );
    let outputs = openai.tool_outputs();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert!(outputs[0].contains("exited with code 0"), "{outputs:?}");
    assert_eq!(model_calls(&openai), 2, "{:?}", openai.requests());
    // No request for new tokens, and the login is untouched.
    assert_eq!(token_requests(&openai), Vec::<String>::new());
    assert_eq!(openai.rotations(), 0);
    assert!(home.auth_bytes() == before, "auth.json changed");
}

/// The control: the same login in full, its access token equally past `exp`, is refreshed
/// before the first model call, and the refresh lands in auth.json.
#[test]
fn the_same_login_in_full_is_refreshed_first() {
    assert_loopback_only();
    let openai = OpenAi::start(Responses::Ok);
    openai.accept_expired_access_tokens();
    openai.ask_to_run(COMMAND);
    let seed = openai.seed(true);
    let home = Home::new(&openai, &serde_json::to_string_pretty(&seed).unwrap());
    let before = home.auth_bytes();

    let out = home.exec(&openai);

    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(token_requests(&openai), vec!["POST /oauth/token"]);
    assert_eq!(openai.rotations(), 1, "{:?}", openai.log());
    let requests = openai.requests();
    let refresh_at = requests.iter().position(|r| r == "POST /oauth/token");
    let first_model_call = requests
        .iter()
        .position(|r| r == "POST /backend-api/codex/responses");
    assert!(refresh_at < first_model_call, "{requests:?}");
    assert!(home.auth_bytes() != before, "auth.json was not rewritten");
    let after: Value = serde_json::from_slice(&home.auth_bytes()).unwrap();
    assert_eq!(
        after["tokens"]["refresh_token"].as_str(),
        Some(openai.latest().refresh_token.as_str())
    );
}

/// A copy the backend refuses (the account lost access, or the token really expired): Codex
/// retries, fails, and still asks for no new tokens and leaves auth.json as it was.
#[test]
fn a_refused_copy_fails_without_refreshing() {
    assert_loopback_only();
    let openai = OpenAi::start(Responses::Unauthorized);
    let seed = openai.seed(false);
    let home = Home::new(&openai, &copy_of(&seed));
    let before = home.auth_bytes();

    let out = home.exec(&openai);

    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(model_calls(&openai) >= 1, "{:?}", openai.requests());
    assert_eq!(token_requests(&openai), Vec::<String>::new());
    assert!(home.auth_bytes() == before, "auth.json changed");
}

/// `codex-auth inspect` on copies: a live one is usable (exit 0) and says so; one past its
/// `exp` is refused (exit 1) though Codex would still send it.
#[test]
fn inspect_dates_a_copy() {
    let openai = OpenAi::start(Responses::Ok);
    let inspect = |auth_json: &str| -> Output {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), auth_json).unwrap();
        Command::new(env!("CARGO_BIN_EXE_codex-auth"))
            .arg("inspect")
            .arg(file.path())
            .env_clear()
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let live = inspect(&copy_of(&openai.seed(false)));
    assert_eq!(live.status.code(), Some(0), "{}", text(&live));
    let shown = String::from_utf8_lossy(&live.stdout);
    assert!(
        shown.contains(": an access-only copy of a Codex ChatGPT login, usable\n")
            && shown.contains(" days); no refresh token, so nothing can renew it"),
        "{shown}"
    );
    let expired = inspect(&copy_of(&openai.seed(true)));
    assert_eq!(expired.status.code(), Some(1), "{}", text(&expired));
    assert!(
        String::from_utf8_lossy(&expired.stderr).contains("whose access token expired at"),
        "{}",
        text(&expired)
    );
    for output in [&live, &expired] {
        let shown = text(output);
        for token in openai.all_token_values() {
            assert!(!shown.contains(&token), "a token was printed:\n{shown}");
        }
    }
}
