//! The action's one way out: every request it sends (GitHub's REST API or GitHub Enterprise
//! Server, the artifact service, blob storage, the npm registry) goes through one HTTP client,
//! [`Transport`], built once per run from the runner's own variables: the proxy variables
//! ([`proxy`]: CONNECT for https, the absolute form for http, credentials in the proxy URL sent
//! as `Proxy-Authorization` and never shown) and the CA variables ([`trust`]: trusted besides
//! the built-in roots). GitHub's REST client (`github::Client`, octocrab) and the plain client
//! for other hosts ([`Plain`]) are both built over it.
//!
//! Codex gets the same: the proxy variables reach its environment unchanged, and the trust as
//! one bundle ([`Trust::bundle`]).

pub mod plain;
pub mod proxy;
pub mod retry;
pub mod trust;

use std::fmt;
use std::time::Duration;

pub use plain::{allowed, message, shown, Answer, HttpError, Plain, Streamed};
pub use proxy::Proxies;
pub use retry::RetryPolicy;
pub use trust::{CaVariables, Trust};

/// A proxy or CA variable that cannot be used: which, what is wrong in a few words, and what
/// to set instead.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{variable} {problem}")]
pub struct NetError {
    /// The variable.
    pub variable: &'static str,
    /// What is wrong, in a few words.
    pub title: &'static str,
    /// What is wrong and what to set.
    pub problem: String,
}

/// The runner's proxy and CA variables: the proxies read and checked, the CA variables'
/// values (their files are read by [`CaVariables::load`], when the stage is ready to).
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// The proxy variables.
    pub proxies: Proxies,
    /// The CA variables.
    pub ca: CaVariables,
}

impl Settings {
    /// Reads the variables through `get` (`None` for unset or blank). `in_container`: this
    /// process runs in a container action, whose loopback is not the runner's.
    pub fn read(
        get: &dyn Fn(&str) -> Option<String>,
        in_container: bool,
    ) -> Result<Self, NetError> {
        Ok(Self {
            proxies: Proxies::read(get, in_container)?,
            ca: CaVariables::read(get),
        })
    }
}

/// How long a connection (to the server, or to the proxy and through its tunnel) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The one HTTP client: cheap to clone, every clone shares its connections.
#[derive(Clone)]
pub struct Transport {
    client: reqwest::Client,
    proxies: Proxies,
    passwords: Vec<String>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("proxies", &self.proxies)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// The client for these proxies and this trust: HTTP/1.1, no redirect followed (a caller
    /// that expects one reads its `Location`: a signed blob URL gets no GitHub token).
    pub fn new(proxies: &Proxies, trust: &Trust) -> Result<Self, NetError> {
        let proxies = proxies.clone();
        let route = proxies.clone();
        let client = reqwest::Client::builder()
            .no_proxy()
            .proxy(reqwest::Proxy::custom(move |url| route.for_url(url)))
            .tls_backend_preconfigured(trust.client_config()?)
            .http1_only()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| NetError {
                variable: "TLS",
                title: "HTTP client not available",
                problem: describe(&e),
            })?;
        Ok(Self {
            client,
            passwords: proxies.passwords(),
            proxies,
        })
    }

    /// A client with no proxy and the built-in roots alone (tests, and tools that take no
    /// runner variables).
    pub fn direct() -> Result<Self, NetError> {
        Self::new(&Proxies::default(), &Trust::default())
    }

    /// The client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Why a request to `url` got no answer, in words: the error's chain, the proxy it went
    /// through (without credentials), no proxy password anywhere.
    pub fn describe(&self, error: &dyn std::error::Error, url: &str) -> String {
        let mut text = describe(error);
        if let Some(proxy) = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| self.proxies.describe_for(&u))
        {
            text.push_str(&format!(" (through the proxy {proxy})"));
        }
        if text.contains("certificate") {
            text.push_str(
                "; a proxy that inspects TLS, or a server with a company CA, needs that CA \
                 trusted: set SSL_CERT_FILE or NODE_EXTRA_CA_CERTS to its PEM file",
            );
        }
        self.redact(text)
    }

    /// `text` without the proxy passwords.
    fn redact(&self, mut text: String) -> String {
        for password in &self.passwords {
            text = text.replace(password.as_str(), "***");
        }
        text
    }
}

/// An error and its causes, in one line, without a URL's query (reqwest names the URL, and a
/// signed blob URL's query holds its signature).
pub fn describe(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        let text = without_queries(&cause.to_string());
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = cause.source();
    }
    parts.join(": ")
}

/// `text` with every URL in it shown as [`shown`] shows it.
fn without_queries(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            let trimmed = word
                .trim_start_matches('(')
                .trim_end_matches([')', ',', ':']);
            if trimmed.contains("://") {
                word.replace(trimmed, &shown(trimmed))
            } else {
                word.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_described_error_shows_no_query_and_no_proxy_password() {
        let settings = Settings::read(
            &|name| (name == "HTTPS_PROXY").then(|| "http://me:hunter2@proxy.corp:1".to_owned()),
            false,
        )
        .unwrap();
        let transport = Transport::new(&settings.proxies, &Trust::default()).unwrap();
        let error = std::io::Error::other(
            "error sending request for url (https://blob.example/c?sig=SECRET): proxy \
             http://me:hunter2@proxy.corp:1 refused",
        );
        let text = transport.describe(&error, "https://blob.example/c?sig=SECRET");
        assert!(
            !text.contains("SECRET") && !text.contains("hunter2"),
            "{text}"
        );
        assert!(
            text.ends_with("(through the proxy http://proxy.corp:1/ (HTTPS_PROXY))"),
            "{text}"
        );
    }
}
