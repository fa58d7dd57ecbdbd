//! A local npm registry on 127.0.0.1 serving `@openai/codex`'s platform packages as the real
//! registry does: `GET /@openai%2fcodex/<version>` answers the version's document (404 when
//! there is none), `GET /@openai/codex/-/codex-<version>.tgz` the tarball.
//!
//! It starts with the pinned version's real `linux-x64` package: the tarball `npm pack`
//! fetched (`CODEX_AUTH_TEST_CODEX_PACKAGE`) and the registry's own document of it, captured
//! by `scripts/tools` (`CODEX_AUTH_TEST_CODEX_DOCUMENT`), so the integrity the action checks
//! is the registry's. Tests add what the real registry would never serve (a tampered
//! tarball, a wrong integrity) or a copy of the real package under another version.
//!
//! How it differs from the real registry, and why that hides nothing here:
//! - Plain HTTP on loopback, not HTTPS (unless started with [`Registry::start_tls`], as the
//!   proxy tests do): the action's client allows plain HTTP for loopback only (`net::Plain`),
//!   and speaks HTTPS to anything else, over the transport the GitHub tests exercise.
//! - The document's `dist.tarball` still names the real registry's host, as captured: the
//!   action must not follow it (it fetches the standard path on the configured registry),
//!   which this makes observable: a request that followed it would fail in the loopback-only
//!   network.
//! - Only the version documents and tarballs are served (no packument, no search, no
//!   dist-tags): the action asks for nothing else.
//! - Faults are injected only on request ([`Registry::fail_next`], a 503 with an empty JSON
//!   error; [`Registry::rate_limit_next`], a 429 with a `retry-after`;
//!   [`Registry::redirect_tarballs`], a same-host 302; [`Registry::stall_tarballs`], a
//!   download that sends its first mebibyte and then nothing, as a connection gone quiet):
//!   the real registry's own outages and a mirror's redirect to another host look the same
//!   to the client.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::{Bytes, Frame};
use serde_json::Value;

use super::serve::{serve, Server};

/// The version the image pins (scripts/tools' CODEX_VERSION, which the captured files are of).
pub fn pinned_version() -> String {
    let tools = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/tools"),
    )
    .unwrap();
    tools
        .lines()
        .find_map(|l| l.strip_prefix("CODEX_VERSION="))
        .unwrap()
        .trim()
        .to_owned()
}

/// The real `linux-x64` tarball of the pinned version.
pub fn real_tarball() -> PathBuf {
    let path = std::env::var_os("CODEX_AUTH_TEST_CODEX_PACKAGE")
        .map(PathBuf::from)
        .expect("CODEX_AUTH_TEST_CODEX_PACKAGE: run the tests through scripts/test");
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// The registry's own document of the pinned `linux-x64` package.
pub fn real_document() -> Value {
    let path = std::env::var_os("CODEX_AUTH_TEST_CODEX_DOCUMENT")
        .map(PathBuf::from)
        .expect("CODEX_AUTH_TEST_CODEX_DOCUMENT: run the tests through scripts/test");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[derive(Default)]
struct State {
    /// Version → document.
    documents: BTreeMap<String, Value>,
    /// Tarball file name (`codex-<version>.tgz`) → where its bytes are.
    tarballs: BTreeMap<String, Tarball>,
    /// Every request's path.
    requests: Vec<String>,
    /// How many of the next requests get a 503.
    failures: usize,
    /// The next request gets a 429 with this `retry-after` (seconds), before any 503.
    rate_limited: Option<u64>,
    /// Tarballs are answered with a redirect to `/blobs/…`, as a mirror keeping them in blob
    /// storage would.
    redirect: bool,
    /// Tarballs send their first mebibyte, then nothing more.
    stall: bool,
}

/// A body that sends its first bytes and then waits for ever: a download gone quiet.
struct Stalled(Option<Bytes>);

impl hyper::body::Body for Stalled {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.0.take() {
            Some(first) => Poll::Ready(Some(Ok(Frame::data(first)))),
            None => Poll::Pending,
        }
    }
}

#[derive(Clone)]
enum Tarball {
    File(PathBuf),
    Bytes(Arc<Vec<u8>>),
}

/// The registry.
pub struct Registry {
    server: Server,
    state: Arc<Mutex<State>>,
    url: String,
}

impl Registry {
    /// A registry holding the pinned version's real `linux-x64` package (and the version's
    /// own document, so that the version exists).
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// The same registry over HTTPS, with a certificate `ca` signed, known by `host` (port
    /// 443: a proxy maps the name to this server).
    pub fn start_tls(ca: &super::serve::TestCa, host: &str) -> Self {
        Self::start_with(Some((ca, host)))
    }

    fn start_with(tls: Option<(&super::serve::TestCa, &str)>) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let router = Router::new().fallback(move |uri: Uri| {
            let state = shared.clone();
            async move { answer(&state, &uri) }
        });
        let server = serve(router, tls.map(|(ca, _)| ca));
        let url = match tls {
            Some((_, host)) => format!("https://{host}/"),
            None => format!("http://127.0.0.1:{}/", server.addr.port()),
        };
        let registry = Self { server, state, url };
        let version = pinned_version();
        let document = real_document();
        assert_eq!(document["version"], format!("{version}-linux-x64"));
        registry.add_version(&version);
        registry.add_package(
            &format!("{version}-linux-x64"),
            document,
            Tarball::File(real_tarball()),
        );
        registry
    }

    /// The registry's URL (`npm_config_registry`).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The server's address on loopback.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }

    /// The version's own document (the package without a platform suffix).
    pub fn add_version(&self, version: &str) {
        self.state.lock().unwrap().documents.insert(
            version.to_owned(),
            serde_json::json!({"name": "@openai/codex", "version": version}),
        );
    }

    /// The real package under another version (`0.170.0-linux-x64`): its document is the
    /// real one with the version and tarball renamed, its integrity the real tarball's.
    pub fn relabel(&self, version: &str) {
        let mut document = real_document();
        let package = format!("{version}-linux-x64");
        document["version"] = package.clone().into();
        document["_id"] = format!("@openai/codex@{package}").into();
        self.add_version(version);
        self.add_package(&package, document, Tarball::File(real_tarball()));
    }

    /// A package (`<version>-<platform>`) with this document and tarball bytes.
    pub fn add_bytes(&self, package: &str, document: Value, bytes: Vec<u8>) {
        self.add_package(package, document, Tarball::Bytes(Arc::new(bytes)));
    }

    fn add_package(&self, package: &str, document: Value, tarball: Tarball) {
        let mut state = self.state.lock().unwrap();
        state.documents.insert(package.to_owned(), document);
        state
            .tarballs
            .insert(format!("codex-{package}.tgz"), tarball);
    }

    /// Replaces a package's document (a wrong integrity, say).
    pub fn set_document(&self, package: &str, document: Value) {
        self.state
            .lock()
            .unwrap()
            .documents
            .insert(package.to_owned(), document);
    }

    /// Answers the next `n` requests with a 503, as a registry having a bad moment.
    pub fn fail_next(&self, n: usize) {
        self.state.lock().unwrap().failures = n;
    }

    /// Answers the next request with a 429 and `retry-after: seconds`, as a registry
    /// limiting its clients does.
    pub fn rate_limit_next(&self, seconds: u64) {
        self.state.lock().unwrap().rate_limited = Some(seconds);
    }

    /// Answers tarballs with a 302 to `/blobs/<file>`, which serves them.
    pub fn redirect_tarballs(&self) {
        self.state.lock().unwrap().redirect = true;
    }

    /// Tarballs send their first mebibyte, then nothing more (the connection stays open).
    pub fn stall_tarballs(&self) {
        self.state.lock().unwrap().stall = true;
    }

    /// The paths requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    /// How many tarballs were asked for (a redirect and its target count once).
    pub fn downloads(&self) -> usize {
        self.requests()
            .iter()
            .filter(|p| p.starts_with("/@openai/codex/-/"))
            .count()
    }
}

fn answer(state: &Mutex<State>, uri: &Uri) -> Response {
    let path = uri.path().to_owned();
    let mut state = state.lock().unwrap();
    state.requests.push(path.clone());
    if let Some(seconds) = state.rate_limited.take() {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("content-type", "application/json".to_owned()),
                ("retry-after", seconds.to_string()),
            ],
            "{\"error\":\"Too Many Requests\"}".to_owned(),
        )
            .into_response();
    }
    if state.failures > 0 {
        state.failures -= 1;
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [("content-type", "application/json")],
            "{\"error\":\"Service Unavailable\"}".to_owned(),
        )
            .into_response();
    }
    if let Some(version) = path.strip_prefix("/@openai%2fcodex/") {
        return match state.documents.get(version) {
            Some(document) => {
                ([("content-type", "application/json")], document.to_string()).into_response()
            }
            None => (
                StatusCode::NOT_FOUND,
                [("content-type", "application/json")],
                format!("\"version not found: {version}\""),
            )
                .into_response(),
        };
    }
    if let Some(file) = path.strip_prefix("/@openai/codex/-/") {
        if state.redirect && state.tarballs.contains_key(file) {
            return (
                StatusCode::FOUND,
                [("location", format!("/blobs/{file}"))],
                String::new(),
            )
                .into_response();
        }
    }
    let tarball = path
        .strip_prefix("/@openai/codex/-/")
        .or_else(|| path.strip_prefix("/blobs/"));
    if let Some(file) = tarball {
        if let Some(tarball) = state.tarballs.get(file).cloned() {
            let stall = state.stall;
            drop(state);
            let mut bytes = match tarball {
                Tarball::File(path) => std::fs::read(path).unwrap(),
                Tarball::Bytes(bytes) => bytes.to_vec(),
            };
            let body = if stall {
                bytes.truncate(1 << 20);
                Body::new(Stalled(Some(Bytes::from(bytes))))
            } else {
                Body::from(bytes)
            };
            return ([("content-type", "application/octet-stream")], body).into_response();
        }
    }
    (
        StatusCode::NOT_FOUND,
        [("content-type", "application/json")],
        "{\"error\":\"Not found\"}".to_owned(),
    )
        .into_response()
}
