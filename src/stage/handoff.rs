//! What the main stage hands the post stage, bound to the main stage.
//!
//! The post stage holds the write token, so it trusts nothing a later step of the job could
//! set: a later step's process (Codex, in `mode: restore`) can add lines to `GITHUB_ENV`, which
//! reach the post stage's environment (`CODEX_HOME`, `SSL_CERT_FILE`, `GITHUB_API_URL`, …).
//! So the main stage records what the post stage needs (where the login is, which account it
//! is of, what the store held, where the API is, and the CA and proxy settings the workflow
//! itself gave) in one `GITHUB_STATE` value with a MAC keyed from the write credential, which
//! neither Codex nor a later step ever sees.
//!
//! A handoff that does not verify fails toward writing, never toward skipping: the post
//! stage then saves whatever valid login of the restored account it finds, as if nothing had
//! been stored yet. The runner logs state: the handoff holds digests and paths, no secret.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::auth_file::Account;
use crate::config::{ActionConfig, StoreConfig};

/// `GITHUB_STATE` name of the handoff.
pub const HANDOFF: &str = "handoff";
/// `GITHUB_STATE` name of its MAC.
pub const HANDOFF_MAC: &str = "handoff_mac";

/// Variables that change where the post stage's requests go or whom they trust (the ones
/// `net` reads). Only the values the main stage saw are kept in the post stage; one a later
/// step added or changed is dropped.
pub const WATCHED: &[&str] = &[
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// What the post stage needs of the main stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// The fingerprint of the tokens the store holds: the post stage saves when the file's
    /// differ.
    pub baseline: String,
    /// Where the login was restored.
    pub codex_home: PathBuf,
    /// The account the restored login's tokens name, its ids digested ([`account_digest`]):
    /// only a login this account admits ([`Account::admits`]) is ever stored.
    pub account: Account,
    /// `GITHUB_API_URL` as the main stage saw it.
    pub api_url: String,
    /// A digest of the repository and the target the main stage wrote to.
    pub target: String,
    /// Digests of the [`WATCHED`] variables the main stage saw set.
    pub watched: BTreeMap<String, String>,
    /// The main stage restored an access-only copy: nothing is ever written back.
    #[serde(default)]
    pub access_copy: bool,
    /// Digests of the certificates each CA variable named when the main stage read them: the
    /// post stage trusts no certificate that changed since.
    #[serde(default)]
    pub trust: BTreeMap<String, String>,
}

/// How the post stage found the handoff.
#[derive(Debug)]
pub enum Received {
    /// The main stage wrote none: it stopped before restoring the login.
    None,
    /// Verified: written by the main stage of this job.
    Verified(Box<Handoff>),
    /// Present but not verified (changed after the main stage, or no credential to check it
    /// with): the post stage trusts none of it.
    Unverified,
}

/// A digest for the handoff: values that are not secret but need not be in a log either.
pub fn digest(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// An account as the handoff records it: how the tokens name it, the ids digested.
pub fn account_digest(account: &Account) -> Account {
    account.map_ids(digest)
}

/// The MAC key, from every credential this job was given to write with (inputs the post
/// stage receives as well); `None` when it has none.
fn key(config: &ActionConfig) -> Option<Vec<u8>> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(credentials) = &config.credentials {
        parts.push(credentials.secret().expose().to_owned());
    }
    let artifact = match &config.store {
        StoreConfig::Artifact(settings) => Some(settings),
        StoreConfig::Secret { rescue } => rescue.as_ref(),
    };
    if let Some(settings) = artifact {
        parts.push(settings.key.to_base64().expose().to_owned());
    }
    if parts.is_empty() {
        return None;
    }
    let mut hasher = Sha256::new();
    hasher.update(b"codex-auth handoff v1");
    for part in &parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    Some(hasher.finalize().to_vec())
}

fn mac(key: &[u8], text: &str) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(text.as_bytes());
    Some(mac)
}

/// The digest of where a stage writes: the repository, the target and the access-only copy.
pub fn target_digest(config: &ActionConfig) -> String {
    digest(&format!(
        "{:?} {:?} {:?}",
        config.repository, config.target, config.access_target
    ))
}

/// The digests of the [`WATCHED`] variables set in `environment`.
pub fn watched(
    environment: &[(std::ffi::OsString, std::ffi::OsString)],
) -> BTreeMap<String, String> {
    environment
        .iter()
        .filter_map(|(name, value)| {
            let name = name.to_str()?;
            WATCHED
                .contains(&name)
                .then(|| (name.to_owned(), digest(&value.to_string_lossy())))
        })
        .collect()
}

impl Handoff {
    /// The handoff of this main stage, with `baseline` what the store holds now.
    pub fn new(
        config: &ActionConfig,
        codex_home: PathBuf,
        account: &Account,
        baseline: String,
        access_copy: bool,
    ) -> Self {
        Self {
            baseline,
            codex_home,
            account: account_digest(account),
            api_url: config.api_url.clone(),
            target: target_digest(config),
            watched: watched(&config.environment),
            access_copy,
            trust: config.trust.digests(),
        }
    }

    /// Writes it to `GITHUB_STATE` (a later write replaces an earlier one).
    pub fn save(&self, config: &ActionConfig) -> anyhow::Result<()> {
        let text = serde_json::to_string(self)?;
        config.workflow.save_state(HANDOFF, &text)?;
        let mac = key(config)
            .and_then(|key| mac(&key, &text))
            .map(|mac| hex::encode(mac.finalize().into_bytes()))
            .unwrap_or_default();
        config.workflow.save_state(HANDOFF_MAC, &mac)?;
        Ok(())
    }

    /// Reads it in the post stage.
    pub fn receive(config: &ActionConfig) -> Received {
        let Some(text) = config.state.get(HANDOFF) else {
            return Received::None;
        };
        let given = config
            .state
            .get(HANDOFF_MAC)
            .and_then(|m| hex::decode(m).ok());
        let verified = match (key(config).and_then(|key| mac(&key, text)), given) {
            // Compared in constant time.
            (Some(mac), Some(given)) => mac.verify_slice(&given).is_ok(),
            _ => false,
        };
        match (verified, serde_json::from_str(text)) {
            (true, Ok(handoff)) => Received::Verified(Box::new(handoff)),
            _ => Received::Unverified,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn config(extra: &[(&str, &str)]) -> ActionConfig {
        let mut env: Vec<(OsString, OsString)> = [
            ("GITHUB_REPOSITORY", "octo/repo"),
            ("GITHUB_API_URL", "https://api.github.com"),
            ("HOME", "/github/home"),
            ("INPUT_TOKEN", "github_pat_write"),
            ("HTTPS_PROXY", "http://proxy.corp:3128"),
        ]
        .iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        env.extend(extra.iter().map(|(k, v)| (k.into(), v.into())));
        let Ok(config) = ActionConfig::from_env(env) else {
            panic!("test config");
        };
        config
    }

    fn state_of(config: &mut ActionConfig, handoff: &Handoff) -> BTreeMap<String, String> {
        let dir = tempfile::tempdir().ok();
        let path = dir.as_ref().map(|d| d.path().join("state"));
        config.workflow.state_file = path.clone();
        assert!(handoff.save(config).is_ok());
        let text = path
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn the_post_stage_trusts_only_what_the_main_stage_signed() {
        let mut main = config(&[]);
        let handoff = Handoff::new(
            &main,
            "/github/home/.codex".into(),
            &Account::Claimed("acc-1".into()),
            "fp".into(),
            false,
        );
        assert_eq!(handoff.watched.len(), 1);
        let state = state_of(&mut main, &handoff);
        let post = |state: &BTreeMap<String, String>, extra: &[(&str, &str)]| {
            let mut post = config(extra);
            post.state = state.clone();
            Handoff::receive(&post)
        };
        assert!(matches!(post(&state, &[]), Received::Verified(h) if *h == handoff));

        // A later step's forged handoff: another home, no baseline.
        let mut forged = state.clone();
        forged.insert(
            HANDOFF.into(),
            state[HANDOFF].replace("/github/home/.codex", "/github/workspace/evil"),
        );
        assert!(matches!(post(&forged, &[]), Received::Unverified));

        // Another write token: another key.
        assert!(matches!(
            post(&state, &[("INPUT_TOKEN", "github_pat_other")]),
            Received::Unverified
        ));
        assert!(matches!(post(&BTreeMap::new(), &[]), Received::None));
    }
}
