//! Which requests go through a proxy: the runner's `https_proxy` (else `all_proxy`) and
//! `no_proxy`, lower case first, then upper case, as the runner and curl read them. The action
//! sends plain http only to loopback, which never goes through a proxy: `http_proxy` is not
//! read (Codex, and the host face's download, read it themselves).
//!
//! `no_proxy` entries are host names that also match their subdomains (`corp.example`,
//! `.corp.example`), `*` for every host, IP addresses and CIDR ranges (the matching itself is
//! hyper-util's, which follows curl), each optionally with `:port`, which then matches that
//! port only (as the runner's own `NO_PROXY` handling and `@actions/http-client` read it).
//! A loopback destination never goes through a proxy: the proxy cannot reach the runner's
//! own loopback.

use std::fmt;

use hyper_util::client::proxy::matcher::Matcher;

use super::NetError;

/// The proxy variables, read and checked.
#[derive(Clone, Default)]
pub struct Proxies {
    /// For `https://` requests.
    https: Option<Proxy>,
    /// `no_proxy`'s entries.
    bypass: Vec<Bypass>,
}

/// One proxy: its URL (with credentials, never shown) and the variable that named it.
#[derive(Clone)]
struct Proxy {
    url: reqwest::Url,
    variable: &'static str,
}

/// A `no_proxy` entry: the host rule and the port it is limited to.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Bypass {
    host: String,
    port: Option<u16>,
}

/// The variables, in the order each is looked for.
const HTTPS: [&str; 4] = ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];
const NO_PROXY: [&str; 2] = ["no_proxy", "NO_PROXY"];

impl Proxies {
    /// Reads the variables through `get` (`None` for unset or blank). `in_container`: this
    /// process runs in a container action, whose loopback is not the runner's.
    pub fn read(
        get: &dyn Fn(&str) -> Option<String>,
        in_container: bool,
    ) -> Result<Self, NetError> {
        let first = |names: &[&'static str]| {
            names
                .iter()
                .find_map(|name| get(name).map(|value| (*name, value)))
        };
        let proxy = |names: &[&'static str]| -> Result<Option<Proxy>, NetError> {
            first(names)
                .map(|(variable, value)| Proxy::parse(variable, &value, in_container))
                .transpose()
        };
        let bypass = first(&NO_PROXY)
            .map(|(variable, value)| parse_bypass(variable, &value))
            .transpose()?
            .unwrap_or_default();
        Ok(Self {
            https: proxy(&HTTPS)?,
            bypass,
        })
    }

    /// The proxy `url` goes through, with its credentials; `None` to connect directly.
    pub fn for_url(&self, url: &reqwest::Url) -> Option<reqwest::Url> {
        let proxy = match url.scheme() {
            "https" => self.https.as_ref()?,
            _ => return None,
        };
        let host = url.host_str()?;
        if is_loopback(host) {
            return None;
        }
        let port = url.port_or_known_default();
        let rules: Vec<&str> = self
            .bypass
            .iter()
            .filter(|b| b.port.is_none() || b.port == port)
            .map(|b| b.host.as_str())
            .collect();
        // `*` is every host, IP addresses included (hyper-util's matcher applies it to names).
        if rules.contains(&"*") {
            return None;
        }
        let uri: http::Uri = url.as_str().parse().ok()?;
        // hyper-util's matcher decides the host rules; the proxy it is given is a placeholder.
        Matcher::builder()
            .https("http://proxy.invalid")
            .http("http://proxy.invalid")
            .no(rules.join(","))
            .build()
            .intercept(&uri)
            .map(|_| proxy.url.clone())
    }

    /// The secret parts of the proxy URL, to be masked and kept out of every message: its
    /// password as written (percent-encoded, as Codex's environment shows it) and decoded, or
    /// its user name when it has no password (a token carried as the user).
    pub fn passwords(&self) -> Vec<String> {
        let Some(proxy) = &self.https else {
            return Vec::new();
        };
        let url = &proxy.url;
        let secret = url.password().unwrap_or(url.username());
        let mut parts = vec![secret.to_owned(), decoded(secret)];
        parts.retain(|p| !p.is_empty());
        parts.dedup();
        parts
    }

    /// The proxy for `url` as it may be shown: its variable and its URL without credentials.
    pub fn describe_for(&self, url: &reqwest::Url) -> Option<String> {
        self.for_url(url)?;
        let proxy = self.https.as_ref()?;
        Some(format!("{} ({})", shown(&proxy.url), proxy.variable))
    }
}

impl fmt::Debug for Proxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxies")
            .field("https", &self.https.as_ref().map(|p| shown(&p.url)))
            .field("bypass", &self.bypass)
            .finish()
    }
}

impl Proxy {
    fn parse(variable: &'static str, value: &str, in_container: bool) -> Result<Self, NetError> {
        // curl and the runner take a proxy without a scheme as http://.
        let text = if value.contains("://") {
            value.to_owned()
        } else {
            format!("http://{value}")
        };
        let bad = |problem: String| NetError {
            variable,
            title: "Proxy variable not usable",
            problem,
        };
        let url = reqwest::Url::parse(&text).map_err(|e| {
            bad(format!(
                "is not a proxy URL ({e}): set it to http://HOST:PORT (credentials as \
                 http://USER:PASSWORD@HOST:PORT, percent-encoded), or unset it"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(format!(
                "names a {} proxy ({}); codex-auth speaks to HTTP proxies only \
                 (http:// or https://): set it to the company's HTTP proxy",
                url.scheme(),
                shown(&url)
            )));
        }
        let host = url.host_str().unwrap_or_default();
        if host.is_empty() {
            return Err(bad(format!(
                "names no proxy host ({}): set it to http://HOST:PORT",
                shown(&url)
            )));
        }
        if in_container && is_loopback(host) {
            return Err(NetError {
                variable,
                title: "Proxy on the runner's loopback",
                problem: format!(
                    "is {}, an address on the runner's own loopback, which a container action \
                     cannot reach: the runner passes the proxy variables of its environment or \
                     its `.env` file into the container unchanged, and the container has a \
                     loopback of its own. Set {variable} (in the runner's `.env`, or the job's \
                     `env:`) to an address the container reaches: the proxy's host name or IP \
                     on the network, or the runner host's address on the Docker network with \
                     the proxy listening there; or use the host face \
                     (`uses: org/codex-auth/host@v1`), which runs on the runner itself",
                    shown(&url)
                ),
            });
        }
        Ok(Self { url, variable })
    }
}

fn parse_bypass(variable: &'static str, value: &str) -> Result<Vec<Bypass>, NetError> {
    let mut entries = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, port) = split_port(entry).ok_or_else(|| NetError {
            variable,
            title: "NO_PROXY entry not usable",
            problem: format!(
                "holds \"{entry}\", whose port is not a number: write entries as HOST, \
                 .DOMAIN, HOST:PORT, an IP address or CIDR range, or *, separated by commas"
            ),
        })?;
        // curl ignores a leading "*." as a leading ".".
        let host = host
            .strip_prefix("*.")
            .map_or(host.to_owned(), |h| format!(".{h}"));
        entries.push(Bypass { host, port });
    }
    Ok(entries)
}

/// `host[:port]`, `[v6]:port`, a bare IPv6 address or a CIDR range; `None` for a port that is
/// not a number.
fn split_port(entry: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match entry.matches(':').count() {
        // One colon: host:port. More: a bare IPv6 address (or range).
        1 => {
            let (host, port) = entry.split_once(':')?;
            Some((host, Some(port.parse().ok()?)))
        }
        _ => Some((entry, None)),
    }
}

/// `localhost`, a `.localhost` name, 127.0.0.0/8, ::1, or the unspecified address.
pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let lower = host.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

fn decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// A URL without its credentials, query or fragment.
fn shown(url: &reqwest::Url) -> String {
    super::shown(url.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn proxies(vars: &[(&str, &str)], in_container: bool) -> Result<Proxies, NetError> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Proxies::read(&|name| vars.get(name).cloned(), in_container)
    }

    fn via(p: &Proxies, url: &str) -> Option<String> {
        p.for_url(&reqwest::Url::parse(url).unwrap())
            .map(|u| u.to_string())
    }

    #[test]
    fn https_takes_its_variable_lower_case_first_then_all_proxy() {
        let p = proxies(
            &[
                ("https_proxy", "http://lower:3128"),
                ("HTTPS_PROXY", "http://upper:3128"),
                ("ALL_PROXY", "socks5://unused:1080"),
                // Never used by the action (plain http goes to loopback only): not even read.
                ("HTTP_PROXY", "socks5://[oops"),
            ],
            false,
        )
        .unwrap();
        assert_eq!(
            via(&p, "https://api.github.com/x").as_deref(),
            Some("http://lower:3128/")
        );
        assert_eq!(via(&p, "http://ghes.corp/api/v3"), None);
        let upper = proxies(&[("HTTPS_PROXY", "http://upper:3128")], false).unwrap();
        assert_eq!(
            via(&upper, "https://api.github.com").as_deref(),
            Some("http://upper:3128/")
        );
        let all = proxies(&[("ALL_PROXY", "http://all:1")], false).unwrap();
        assert_eq!(
            via(&all, "https://ghes.corp").as_deref(),
            Some("http://all:1/")
        );
        assert_eq!(
            via(&proxies(&[], false).unwrap(), "https://api.github.com"),
            None
        );
        assert!(proxies(&[("http_proxy", "http://127.0.0.1:3128")], true).is_ok());
    }

    #[test]
    fn no_proxy_follows_curl_with_ports() {
        let p = proxies(
            &[
                ("HTTPS_PROXY", "http://proxy:3128"),
                (
                    "no_proxy",
                    "corp.example, .internal,ghes.other:8443, 10.0.0.0/8,[fd00::1]:443",
                ),
            ],
            false,
        )
        .unwrap();
        let direct = |url: &str| via(&p, url).is_none();
        assert!(direct("https://corp.example/x"));
        assert!(direct("https://api.corp.example/x"));
        assert!(!direct("https://notcorp.example/x"));
        assert!(direct("https://ghes.internal/x"));
        assert!(direct("https://ghes.other:8443/x"));
        assert!(
            !direct("https://ghes.other/x"),
            "the entry is for port 8443 only"
        );
        assert!(direct("https://10.1.2.3/x"));
        assert!(!direct("https://11.1.2.3/x"));
        assert!(direct("https://[fd00::1]/x"));
        assert!(
            !direct("https://[fd00::1]:8443/x"),
            "the entry is for port 443 only"
        );
        assert!(direct("https://127.0.0.1:9/x"), "loopback is never proxied");
        assert!(direct("https://localhost/x"));
        let star = proxies(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "*")], false).unwrap();
        assert_eq!(via(&star, "https://api.github.com"), None);
        assert_eq!(
            via(&star, "https://10.0.0.5"),
            None,
            "* is every host, IPs too"
        );
        let upper = proxies(
            &[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "*.github.com")],
            false,
        )
        .unwrap();
        assert_eq!(via(&upper, "https://api.github.com"), None);
        assert!(via(&upper, "https://github.com.evil").is_some());
    }

    #[test]
    fn credentials_are_kept_for_the_request_and_never_shown() {
        let p = proxies(
            &[("HTTPS_PROXY", "http://me:p%40ss@proxy.corp:3128")],
            false,
        )
        .unwrap();
        let url = reqwest::Url::parse("https://api.github.com/").unwrap();
        let chosen = p.for_url(&url).unwrap();
        assert_eq!(
            (chosen.username(), chosen.password()),
            ("me", Some("p%40ss"))
        );
        assert_eq!(p.passwords(), ["p%40ss", "p@ss"]);
        let token = proxies(
            &[("HTTPS_PROXY", "http://ghp_token@proxy.corp:3128")],
            false,
        );
        assert_eq!(token.unwrap().passwords(), ["ghp_token"]);
        let shown = format!("{p:?} {}", p.describe_for(&url).unwrap());
        assert!(
            !shown.contains("p%40ss") && !shown.contains("me:"),
            "{shown}"
        );
        assert!(
            shown.contains("http://proxy.corp:3128/ (HTTPS_PROXY)"),
            "{shown}"
        );
    }

    #[test]
    fn a_loopback_proxy_is_refused_in_a_container_only() {
        for value in [
            "http://127.0.0.1:3128",
            "localhost:3128",
            "http://[::1]:3128",
            "http://u:secret@127.0.0.1:3128",
        ] {
            let error = proxies(&[("https_proxy", value)], true).unwrap_err();
            assert_eq!(error.title, "Proxy on the runner's loopback");
            assert_eq!(error.variable, "https_proxy");
            assert!(error.problem.contains("`.env`"), "{error}");
            assert!(!error.problem.contains("secret"), "{error}");
            assert!(proxies(&[("https_proxy", value)], false).is_ok());
        }
        assert!(proxies(&[("https_proxy", "http://proxy.corp:3128")], true).is_ok());
    }

    #[test]
    fn unusable_values_say_what_to_write() {
        let socks = proxies(&[("ALL_PROXY", "socks5://p:1080")], false).unwrap_err();
        assert_eq!(socks.title, "Proxy variable not usable");
        assert!(socks.problem.contains("socks5"), "{socks}");
        let bad = proxies(&[("HTTPS_PROXY", "http://[oops")], false).unwrap_err();
        assert_eq!(bad.title, "Proxy variable not usable");
        let port = proxies(&[("NO_PROXY", "ghes:https")], false).unwrap_err();
        assert_eq!(port.title, "NO_PROXY entry not usable");
    }
}
