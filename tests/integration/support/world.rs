//! One GitHub, one OpenAI, one repository with its secret and a workflow run: the world
//! most end-to-end cases start from.

use serde_json::Value;

use super::github::{self, Access, GitHub};
use super::job::{assert_loopback_only, Job, StageRun, GITHUB_TOKEN, WRITE_TOKEN};
use super::openai::{OpenAi, Responses};
use super::openapi;

pub const REPO: &str = "octo/repo";
pub const SECRET: &str = "CODEX_AUTH_JSON";

/// The servers. Dropping the world checks every request the local GitHub saw against GitHub's
/// OpenAPI description (unless the case already failed).
pub struct World {
    /// GitHub.
    pub github: GitHub,
    /// OpenAI.
    pub openai: OpenAi,
}

impl World {
    /// Starts both servers.
    pub fn new(responses: Responses) -> Self {
        assert_loopback_only();
        Self::with_github(GitHub::start(), responses)
    }

    /// The world with this GitHub (over TLS, say) and an OpenAI started for it.
    pub fn with_github(github: GitHub, responses: Responses) -> Self {
        assert_loopback_only();
        github.add_token(WRITE_TOKEN, Access::Write);
        // The workflow's own token (input `github-token`'s default): it reads its repository,
        // and, like GitHub's, can write no secret.
        github.add_token(GITHUB_TOKEN, Access::NoSecrets);
        github.add_scope(&github::repo(REPO));
        // The run every job belongs to, queued a minute ago (before any secret write below).
        github.add_first_attempt(4242, -60);
        Self {
            github,
            openai: OpenAi::start(responses),
        }
    }

    /// A job whose secret holds `seed`, as the workflow would pass it.
    pub fn job(&self, seed: &Value) -> Job {
        self.github
            .set_secret(&github::repo(REPO), SECRET, &seed.to_string());
        let mut job = Job::new(&self.github, &self.openai);
        job.input("auth-json", seed.to_string())
            .input("token", WRITE_TOKEN);
        job
    }

    /// The stored secret, parsed.
    pub fn stored(&self) -> Value {
        let secret = self.github.secret(&github::repo(REPO), SECRET).unwrap();
        assert!(!secret.value.contains('\n'), "the secret must be one line");
        serde_json::from_str(&secret.value).unwrap()
    }

    /// How many times the action wrote the login to the secret (probe writes aside).
    pub fn writes(&self) -> usize {
        self.github.writes(SECRET)
    }

    /// No write-probe secret is left in `scope`, and every probe made was deleted.
    pub fn assert_no_probe_left(&self, scope: &str) {
        let left: Vec<String> = self
            .github
            .secret_names(scope)
            .into_iter()
            .filter(|n| n.starts_with(github::PROBE_PREFIX))
            .collect();
        assert_eq!(left, Vec::<String>::new(), "a probe secret was left behind");
    }

    /// The secret holds the login the OpenAI server issued last: the live refresh token.
    pub fn assert_secret_holds_the_latest_login(&self) {
        let stored = self.stored();
        let latest = self.openai.latest();
        assert_eq!(
            stored["tokens"]["refresh_token"],
            latest.refresh_token.as_str()
        );
        assert_eq!(
            stored["tokens"]["access_token"],
            latest.access_token.as_str()
        );
        assert_eq!(stored["tokens"]["id_token"], latest.id_token.as_str());
    }

    /// No token ever issued, nor the write token, shows in anything a stage printed or wrote.
    pub fn assert_no_secret_leaked(&self, runs: &[&StageRun]) {
        let mut secrets = self.openai.all_token_values();
        secrets.push(WRITE_TOKEN.to_owned());
        for run in runs {
            let visible = run.visible();
            for secret in &secrets {
                assert!(
                    !visible.contains(secret.as_str()),
                    "a token leaked into the output:\n{visible}"
                );
            }
        }
    }

    /// Every request the action sent to the local GitHub, and every answer the server gave
    /// (injected faults aside), is what GitHub's OpenAPI description allows.
    pub fn assert_api_conforms(&self) {
        openapi::assert_conforms(&self.github.requests());
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // After every case, whatever it asserted; a case that already failed has said why.
        if !std::thread::panicking() {
            self.assert_api_conforms();
        }
    }
}

/// The message of the error annotation with this title.
pub fn annotation(run: &StageRun, title: &str) -> String {
    annotation_of(run, "error", title)
}

/// The message of the warning annotation with this title.
pub fn warning(run: &StageRun, title: &str) -> String {
    annotation_of(run, "warning", title)
}

fn annotation_of(run: &StageRun, kind: &str, title: &str) -> String {
    let prefix = format!("::{kind} title=codex-auth%3A {title}::");
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {kind} annotation titled {title:?} in:\n{}", run.stdout))
        .replace("%0A", "\n")
        .replace("%25", "%")
}
