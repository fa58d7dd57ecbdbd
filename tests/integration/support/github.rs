//! A local GitHub API server for the Secrets endpoints the action uses, behaving as GitHub
//! does: a real Curve25519 key pair per scope, sealed boxes opened with the private key,
//! `key_id` checked, 201 on create and 204 on update, GitHub's 401/403/404/422 bodies, and
//! `created_at`/`updated_at` kept per secret.
//!
//! Tokens and what they may do, as GitHub tells them apart:
//! - fine-grained tokens (`github_pat_…`) and installation tokens (`ghs_…`) get
//!   `X-Accepted-GitHub-Permissions` on every secrets answer (`secrets=read` for a read,
//!   `secrets=write` for a write; `environments=…`, `organization_secrets=…` by scope); a
//!   read-only one ([`Access::ReadOnly`]) reads keys and metadata and is refused writes with
//!   403 "Resource not accessible by personal access token";
//! - classic tokens ([`GitHub::add_classic_token`]) get `X-OAuth-Scopes` on every answer;
//!   without `repo` (repositories, environments) or `admin:org` (organizations) they may read
//!   but not write. GitHub itself hides a private repository from a classic token without
//!   `repo` (404 on reads too): the server is kinder there, so that the action's own scope
//!   check, not the read, is what refuses;
//! - a fine-grained token made with [`GitHub::add_fine_grained_token`] is limited to one
//!   repository (any other answers 404, as GitHub hides what a token cannot see) and carries
//!   exactly the permissions it was given (`secrets`, `environments`, `organization_secrets`,
//!   `actions`: `read` or `write`): a secrets route without its permission answers 403, a
//!   read-only one is refused writes, workflow runs need `actions`;
//! - an App's installation token carries the permissions the App was given
//!   ([`GitHub::add_app_with`]), or those the token request asked for when it did (each at
//!   most the installation's, else 422, as GitHub answers): `write` writes, `read` reads,
//!   none is refused; workflow runs need `actions`. `DELETE /installation/token` revokes it.
//!
//! Where it is kinder than GitHub: one key pair per scope for every token, no secondary rate
//! limits unless injected ([`Fault`]), and any repository answers the run and repository
//! routes once its scope exists.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use crypto_box::aead::OsRng;
use crypto_box::SecretKey;
use serde_json::{json, Value};

use super::serve::{serve, Server, TestCa};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and write secrets everywhere.
    Write,
    /// Authenticated, but without the Secrets permission.
    NoSecrets,
    /// Secrets only: no "Actions: Read", so workflow runs answer 403.
    SecretsOnly,
    /// "Secrets: Read-only": reads keys and metadata, every write and delete answers 403.
    ReadOnly,
}

/// A secret as GitHub keeps it (the value decrypted, for the tests to check).
#[derive(Debug, Clone)]
pub struct StoredSecret {
    /// The name as written.
    pub name: String,
    /// The decrypted value.
    pub value: String,
    /// The key id it was sealed for.
    pub key_id: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last write (RFC 3339).
    pub updated_at: String,
    /// Organization secrets: the visibility.
    pub visibility: Option<String>,
    /// Organization secrets: the selected repositories.
    pub selected_repository_ids: Vec<u64>,
}

/// One request, as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method.
    pub method: String,
    /// Path and query, as sent (not decoded).
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// The request body.
    pub body: Vec<u8>,
    /// The response's `content-type`, when it had one.
    pub response_type: Option<String>,
    /// The response body.
    pub response: Vec<u8>,
    /// Whether the answer was an injected [`Fault`] rather than the API's own.
    pub injected: bool,
    /// The `authorization` the request carried (the token, for the tests' own checks).
    pub token: Option<String>,
}

struct ScopeState {
    key: SecretKey,
    key_id: String,
    secrets: BTreeMap<String, StoredSecret>,
}

impl ScopeState {
    fn new(generation: u32) -> Self {
        Self {
            key: SecretKey::generate(&mut OsRng),
            key_id: format!("{}", 3_380_204_578_043_523_366u64 + generation as u64),
            secrets: BTreeMap::new(),
        }
    }
}

/// A canned answer for the next request that matches, taking precedence over the normal one.
#[derive(Debug, Clone)]
pub struct Fault {
    /// The method to match.
    pub method: &'static str,
    /// The end of the path to match.
    pub path_suffix: String,
    /// The status to answer.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// The message of GitHub's error body.
    pub message: &'static str,
    /// Answer every matching request so, not only the next one.
    pub always: bool,
}

impl Fault {
    /// A fault with GitHub's error body and no extra header.
    pub fn new(
        method: &'static str,
        path_suffix: &str,
        status: u16,
        message: &'static str,
    ) -> Self {
        Self {
            method,
            path_suffix: path_suffix.to_owned(),
            status,
            headers: Vec::new(),
            message,
            always: false,
        }
    }

    /// Answers every matching request, not only the next one.
    pub fn always(mut self) -> Self {
        self.always = true;
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// A workflow run, as `GET …/actions/runs/{id}` describes it.
#[derive(Debug, Clone)]
pub struct Run {
    /// When the run was created (queued), RFC 3339.
    pub created_at: String,
    /// When the latest attempt started, RFC 3339.
    pub run_started_at: String,
    /// The latest attempt.
    pub run_attempt: u32,
}

/// A request held before it is answered: the test acts while the action waits.
#[derive(Debug, Clone)]
struct Hold {
    method: &'static str,
    path_contains: String,
    delay: std::time::Duration,
}

#[derive(Default)]
struct Inner {
    /// Installation tokens and the permissions they were granted.
    app_tokens: BTreeMap<String, Value>,
    /// Fine-grained tokens: the one repository each may reach, and its permissions.
    fine_grained: BTreeMap<String, (String, Value)>,
    faults: Vec<Fault>,
    holds: Vec<Hold>,
    classic: BTreeMap<String, Vec<String>>,
    artifacts: Option<super::artifacts::RestApi>,
    runs: BTreeMap<u64, Run>,
    public: Vec<String>,
    tokens: BTreeMap<String, Access>,
    scopes: BTreeMap<String, ScopeState>,
    requests: Vec<Request>,
    generation: u32,
    clock: u32,
    apps: BTreeMap<u64, App>,
    issued: Vec<IssuedToken>,
}

/// A GitHub App: its public key and where it is installed.
struct App {
    key: jsonwebtoken::DecodingKey,
    /// What its installation tokens may do (`{"secrets": "write", …}`).
    permissions: Value,
    /// Installation id → the account (`owner/repo` for a repository installation, `org`
    /// for an organization's, whose repositories are all included).
    installations: BTreeMap<u64, String>,
}

/// An installation token the server made.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The App.
    pub app_id: u64,
    /// The installation.
    pub installation: u64,
    /// The repositories it was limited to, if any.
    pub repositories: Option<Vec<String>>,
    /// The token.
    pub token: String,
    /// The permissions the request asked for (`None`: it asked for none, and got the
    /// installation's).
    pub requested: Option<Value>,
    /// The permissions it was granted.
    pub granted: Value,
    /// Whether it was revoked (`DELETE /installation/token`).
    pub revoked: bool,
}

/// The running server.
pub struct GitHub {
    inner: Arc<Mutex<Inner>>,
    server: Server,
    tls: bool,
}

/// The prefix of the action's write-probe secrets.
pub const PROBE_PREFIX: &str = "CODEX_AUTH_PROBE_";

/// `path` with a probe secret's name (random in part) as `CODEX_AUTH_PROBE_*`, for comparing
/// request sequences.
pub fn normalize_probe(path: &str) -> String {
    match path.find(PROBE_PREFIX) {
        None => path.to_owned(),
        Some(at) => {
            let rest = &path[at + PROBE_PREFIX.len()..];
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            format!("{}{PROBE_PREFIX}*{}", &path[..at], &rest[end..])
        }
    }
}

/// The scope key of a repository.
pub fn repo(repository: &str) -> String {
    format!("repos/{repository}")
}

/// The scope key of an environment.
pub fn env(repository: &str, environment: &str) -> String {
    format!("repos/{repository}/environments/{environment}")
}

/// The scope key of an organization.
pub fn org(organization: &str) -> String {
    format!("orgs/{organization}")
}

impl GitHub {
    /// Starts a server that knows no token and no scope yet, over plain HTTP.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// The same server over HTTPS, with a certificate for `localhost` signed by `ca`. It also
    /// answers under `/api/v3`, as GitHub Enterprise Server does, for clients such as `gh`.
    pub fn start_tls(ca: &TestCa) -> Self {
        Self::start_with(Some(ca))
    }

    fn start_with(ca: Option<&TestCa>) -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let router = Router::new().fallback(handle).with_state(inner.clone());
        Self {
            inner,
            server: serve(router, ca),
            tls: ca.is_some(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// The API base URL, as `GITHUB_API_URL` would hold it.
    pub fn url(&self) -> String {
        match self.tls {
            true => format!("https://localhost:{}/api/v3", self.server.addr.port()),
            false => format!("http://127.0.0.1:{}", self.server.addr.port()),
        }
    }

    /// The server's address on loopback (for a proxy that maps a host name to it).
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }

    /// `localhost:PORT`: the host a GitHub Enterprise client (`gh`'s `GH_HOST`) is given.
    pub fn host(&self) -> String {
        format!("localhost:{}", self.server.addr.port())
    }

    /// Accepts `token` with the given access.
    pub fn add_token(&self, token: &str, access: Access) {
        self.lock().tokens.insert(token.to_owned(), access);
    }

    /// Creates a scope (a repository, environment or organization) with its own key pair.
    pub fn add_scope(&self, scope: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        let state = ScopeState::new(inner.generation);
        inner.scopes.insert(scope.to_owned(), state);
    }

    /// Stores a secret directly, as if a person had set it an hour ago.
    pub fn set_secret(&self, scope: &str, name: &str, value: &str) {
        self.set_secret_at(scope, name, value, -3600);
    }

    /// Stores a secret directly, as if written `offset_seconds` from now (another job's
    /// write-back, say).
    pub fn set_secret_at(&self, scope: &str, name: &str, value: &str, offset_seconds: i64) {
        self.lock().store(scope, name, value, offset_seconds);
    }

    /// Sets an organization secret's visibility and selected repositories.
    pub fn set_visibility(&self, scope: &str, name: &str, visibility: &str, ids: &[u64]) {
        let mut inner = self.lock();
        let secret = inner
            .scopes
            .get_mut(scope)
            .and_then(|s| s.secrets.get_mut(&name.to_ascii_uppercase()))
            .unwrap();
        secret.visibility = Some(visibility.to_owned());
        secret.selected_repository_ids = ids.to_vec();
    }

    /// A stored secret.
    pub fn secret(&self, scope: &str, name: &str) -> Option<StoredSecret> {
        self.lock()
            .scopes
            .get(scope)?
            .secrets
            .get(&name.to_ascii_uppercase())
            .cloned()
    }

    /// The private key of a scope (for cross-checks with libsodium).
    pub fn private_key(&self, scope: &str) -> SecretKey {
        self.lock().scopes.get(scope).unwrap().key.clone()
    }

    /// Adds a workflow run of `octo/repo`-style repositories (any repository answers it).
    pub fn add_run(&self, id: u64, run: Run) {
        self.lock().runs.insert(id, run);
    }

    /// Adds the first attempt of a run, queued and started `offset_seconds` from now.
    pub fn add_first_attempt(&self, id: u64, offset_seconds: i64) {
        let at = self.timestamp(offset_seconds);
        self.add_run(
            id,
            Run {
                created_at: at.clone(),
                run_started_at: at,
                run_attempt: 1,
            },
        );
    }

    /// Makes a repository public (repositories are private by default).
    pub fn make_public(&self, repository: &str) {
        self.lock().public.push(repository.to_owned());
    }

    /// The current time as the server writes timestamps, for setting up runs.
    pub fn timestamp(&self, offset_seconds: i64) -> String {
        jiff::Timestamp::from_second(super::now() + offset_seconds)
            .unwrap()
            .to_string()
    }

    /// Answers the next matching request with `fault` instead.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Drops every fault not yet answered, and every hold.
    pub fn clear_faults(&self) {
        let mut inner = self.lock();
        inner.faults.clear();
        inner.holds.clear();
    }

    /// Replaces a scope's key pair, as GitHub does from time to time.
    pub fn rotate_key(&self, scope: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        let generation = inner.generation;
        let state = inner.scopes.get_mut(scope).unwrap();
        let fresh = ScopeState::new(generation);
        state.key = fresh.key;
        state.key_id = fresh.key_id;
    }

    /// Registers a GitHub App by its id and RSA public key (PEM), installed nowhere yet, with
    /// the permissions to write secrets anywhere.
    pub fn add_app(&self, app_id: u64, public_key_pem: &[u8]) {
        self.add_app_with(
            app_id,
            public_key_pem,
            json!({"secrets": "write", "environments": "write", "organization_secrets": "write",
                   "actions": "read", "metadata": "read"}),
        );
    }

    /// Registers a GitHub App with the permissions its installation tokens get.
    pub fn add_app_with(&self, app_id: u64, public_key_pem: &[u8], permissions: Value) {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_key_pem).unwrap();
        self.lock().apps.insert(
            app_id,
            App {
                key,
                permissions,
                installations: BTreeMap::new(),
            },
        );
    }

    /// Accepts a fine-grained personal access token for `repository` (`owner/repo`) alone,
    /// with exactly `permissions` (`{"secrets": "write", "actions": "read"}`).
    pub fn add_fine_grained_token(&self, token: &str, repository: &str, permissions: Value) {
        let mut inner = self.lock();
        inner
            .fine_grained
            .insert(token.to_owned(), (repository.to_owned(), permissions));
        inner.tokens.insert(token.to_owned(), Access::Write);
    }

    /// Accepts a classic personal access token with these OAuth scopes.
    pub fn add_classic_token(&self, token: &str, scopes: &[&str]) {
        let mut inner = self.lock();
        inner.classic.insert(
            token.to_owned(),
            scopes.iter().map(|s| (*s).to_owned()).collect(),
        );
        inner.tokens.insert(token.to_owned(), Access::Write);
    }

    /// Holds every request whose method matches and whose path contains `path_contains` for
    /// `delay` before answering it.
    pub fn hold(&self, method: &'static str, path_contains: &str, delay: std::time::Duration) {
        self.lock().holds.push(Hold {
            method,
            path_contains: path_contains.to_owned(),
            delay,
        });
    }

    /// Serves the artifact routes of `artifacts` too, as GitHub serves them beside the
    /// secrets: one `GITHUB_API_URL` for both.
    pub fn mount_artifacts(&self, artifacts: super::artifacts::RestApi) {
        self.lock().artifacts = Some(artifacts);
    }

    /// The names of the secrets a scope holds.
    pub fn secret_names(&self, scope: &str) -> Vec<String> {
        self.lock()
            .scopes
            .get(scope)
            .map(|s| s.secrets.values().map(|v| v.name.clone()).collect())
            .unwrap_or_default()
    }

    /// Installs the App on a repository (`owner/repo`) or an organization; returns the
    /// installation id.
    pub fn install_app(&self, app_id: u64, account: &str) -> u64 {
        let mut inner = self.lock();
        let id = 70_000
            + inner
                .apps
                .values()
                .map(|a| a.installations.len() as u64)
                .sum::<u64>();
        inner
            .apps
            .get_mut(&app_id)
            .unwrap()
            .installations
            .insert(id, account.to_owned());
        id
    }

    /// The installation tokens made so far.
    pub fn issued_tokens(&self) -> Vec<IssuedToken> {
        self.lock().issued.clone()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// Writes (PUT) of the secret `name` in any scope: the login's writes, not the probe's.
    pub fn writes(&self, name: &str) -> usize {
        let suffix = format!("/secrets/{name}");
        self.requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.path.ends_with(&suffix))
            .count()
    }

    /// The requests about write-probe secrets.
    pub fn probe_requests(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.contains(PROBE_PREFIX))
            .collect()
    }

    /// Requests with a given method.
    pub fn count(&self, method: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method)
            .count()
    }
}

impl Inner {
    /// Stores a secret as if written `offset_seconds` from now.
    fn store(&mut self, scope: &str, name: &str, value: &str, offset_seconds: i64) {
        let stamp = jiff::Timestamp::from_second(super::now() + offset_seconds)
            .unwrap()
            .to_string();
        let scope = self.scopes.get_mut(scope).unwrap();
        let key_id = scope.key_id.clone();
        scope.secrets.insert(
            name.to_ascii_uppercase(),
            StoredSecret {
                name: name.to_owned(),
                value: value.to_owned(),
                key_id,
                created_at: stamp.clone(),
                updated_at: stamp,
                visibility: None,
                selected_repository_ids: Vec::new(),
            },
        );
    }

    /// A strictly increasing timestamp, so "written after" is never a tie.
    fn tick(&mut self) -> String {
        self.clock += 1;
        let now = super::now() + self.clock as i64;
        jiff::Timestamp::from_second(now).unwrap().to_string()
    }
}

fn error(status: StatusCode, message: &str, docs: &str) -> Response {
    (
        status,
        Json(json!({
            "message": message,
            "documentation_url": format!("https://docs.github.com/rest/actions/secrets{docs}"),
            "status": status.as_u16().to_string(),
        })),
    )
        .into_response()
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // GitHub Enterprise Server serves the REST API under /api/v3.
    let uri: Uri = match uri.path_and_query().map(|p| p.as_str()) {
        Some(p) if p.starts_with("/api/v3/") => p["/api/v3".len()..].parse().unwrap(),
        _ => uri,
    };
    // Test controls, for events that happen while Codex runs (not part of GitHub's API).
    if let Some(control) = uri.path().strip_prefix("/_control/") {
        let mut inner = inner.lock().unwrap();
        if let Some(scope) = control.strip_prefix("rotate-key/") {
            inner.generation += 1;
            let fresh = ScopeState::new(inner.generation);
            let state = inner.scopes.get_mut(scope).unwrap();
            state.key = fresh.key;
            state.key_id = fresh.key_id;
        } else if let Some(rest) = control.strip_prefix("write-secret/") {
            let (scope, name) = rest.rsplit_once('/').unwrap();
            inner.store(scope, name, &String::from_utf8_lossy(&body), 1);
        }
        return StatusCode::NO_CONTENT.into_response();
    }
    let (fault, hold, artifacts) = {
        let mut inner = inner.lock().unwrap();
        let at = inner
            .faults
            .iter()
            .position(|f| f.method == method.as_str() && uri.path().ends_with(&f.path_suffix));
        let fault = match at {
            Some(i) if inner.faults[i].always => Some(inner.faults[i].clone()),
            Some(i) => Some(inner.faults.remove(i)),
            None => None,
        };
        let hold = inner
            .holds
            .iter()
            .find(|h| h.method == method.as_str() && uri.path().contains(&h.path_contains))
            .map(|h| h.delay);
        let artifacts = inner
            .artifacts
            .clone()
            .filter(|_| super::artifacts::RestApi::serves(uri.path()));
        (fault, hold, artifacts)
    };
    if let Some(delay) = hold {
        tokio::time::sleep(delay).await;
    }
    let injected = fault.is_some();
    let response = match fault {
        Some(fault) => {
            let status = StatusCode::from_u16(fault.status).unwrap();
            let mut response = error(status, fault.message, "");
            for (name, value) in fault.headers {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
        None => match artifacts {
            Some(artifacts) => artifacts.answer(&method, &uri, &headers),
            None => route(&inner, &method, &uri, &headers, &body),
        },
    };
    let (parts, response_body) = response.into_parts();
    let response_body = axum::body::to_bytes(response_body, usize::MAX)
        .await
        .unwrap_or_default();
    inner.lock().unwrap().requests.push(Request {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        status: parts.status.as_u16(),
        body: body.to_vec(),
        response_type: parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        response: response_body.to_vec(),
        injected,
        token: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    });
    Response::from_parts(parts, axum::body::Body::from(response_body))
}

/// The API's answer, with the headers GitHub adds for the kind of token: `X-OAuth-Scopes`
/// for classic tokens, `X-Accepted-GitHub-Permissions` for fine-grained and installation
/// tokens on the secrets routes.
fn route(
    inner: &Mutex<Inner>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let token = super::artifacts::bearer(headers).map(str::to_owned);
    let mut response = answer(inner, method, uri, headers, body);
    let inner = inner.lock().unwrap();
    let Some(token) = token else {
        return response;
    };
    if let Some(scopes) = inner.classic.get(&token) {
        response
            .headers_mut()
            .insert("x-oauth-scopes", scopes.join(", ").parse().unwrap());
    } else if token.starts_with("github_pat_") || token.starts_with("ghs_") {
        if let Some((permission, _)) = secrets_permission(uri.path()) {
            let level = if method == Method::GET {
                "read"
            } else {
                "write"
            };
            response.headers_mut().insert(
                "x-accepted-github-permissions",
                format!("{permission}={level}").parse().unwrap(),
            );
        }
    }
    response
}

/// For a secrets route: the fine-grained permission it needs, and the classic scope.
fn secrets_permission(path: &str) -> Option<(&'static str, &'static str)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["repos", _, _, "actions", "secrets", ..] => Some(("secrets", "repo")),
        ["repos", _, _, "environments", _, "secrets", ..] => Some(("environments", "repo")),
        ["orgs", _, "actions", "secrets", ..] => Some(("organization_secrets", "admin:org")),
        _ => None,
    }
}

fn answer(
    inner: &Mutex<Inner>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    // Bodies as GitHub's OpenAPI description has them: every required field, with the values
    // GitHub would give (its API and web URLs replaced by reserved example hosts).
    const API: &str = "https://api.example";
    const WEB: &str = "https://web.example";
    /// A `simple-user` (here an organization account).
    fn account(login: &str) -> Value {
        let id = 9_000 + login.len() as u64;
        let url = format!("{API}/users/{login}");
        json!({
            "login": login,
            "id": id,
            "node_id": format!("O_kgDO{id:06}"),
            "avatar_url": format!("https://avatars.example/u/{id}?v=4"),
            "gravatar_id": "",
            "url": url,
            "html_url": format!("{WEB}/{login}"),
            "followers_url": format!("{url}/followers"),
            "following_url": format!("{url}/following{{/other_user}}"),
            "gists_url": format!("{url}/gists{{/gist_id}}"),
            "starred_url": format!("{url}/starred{{/owner}}{{/repo}}"),
            "subscriptions_url": format!("{url}/subscriptions"),
            "organizations_url": format!("{url}/orgs"),
            "repos_url": format!("{url}/repos"),
            "events_url": format!("{url}/events{{/privacy}}"),
            "received_events_url": format!("{url}/received_events"),
            "type": "Organization",
            "user_view_type": "public",
            "site_admin": false,
        })
    }
    /// A `minimal-repository`, or with `full` a `full-repository` (`GET /repos/{o}/{r}`).
    fn repository(full_name: &str, id: u64, private: bool, full: bool) -> Value {
        let (owner, name) = full_name.split_once('/').unwrap_or((full_name, full_name));
        let url = format!("{API}/repos/{full_name}");
        let html_url = format!("{WEB}/{full_name}");
        let mut body = json!({
            "id": id,
            "node_id": format!("R_kgDO{id:06}"),
            "name": name,
            "full_name": full_name,
            "owner": account(owner),
            "private": private,
            "html_url": html_url,
            "description": null,
            "fork": false,
            "url": url,
            "visibility": if private { "private" } else { "public" },
        });
        // The URL templates (split from the rest: one `json!` this long exceeds the macro's
        // recursion limit).
        let urls = json!({
            "archive_url": format!("{url}/{{archive_format}}{{/ref}}"),
            "assignees_url": format!("{url}/assignees{{/user}}"),
            "blobs_url": format!("{url}/git/blobs{{/sha}}"),
            "branches_url": format!("{url}/branches{{/branch}}"),
            "collaborators_url": format!("{url}/collaborators{{/collaborator}}"),
            "comments_url": format!("{url}/comments{{/number}}"),
            "commits_url": format!("{url}/commits{{/sha}}"),
            "compare_url": format!("{url}/compare/{{base}}...{{head}}"),
            "contents_url": format!("{url}/contents/{{+path}}"),
            "contributors_url": format!("{url}/contributors"),
            "deployments_url": format!("{url}/deployments"),
            "downloads_url": format!("{url}/downloads"),
            "events_url": format!("{url}/events"),
            "forks_url": format!("{url}/forks"),
            "git_commits_url": format!("{url}/git/commits{{/sha}}"),
            "git_refs_url": format!("{url}/git/refs{{/sha}}"),
            "git_tags_url": format!("{url}/git/tags{{/sha}}"),
            "git_url": format!("git://web.example/{full_name}.git"),
            "issue_comment_url": format!("{url}/issues/comments{{/number}}"),
            "issue_events_url": format!("{url}/issues/events{{/number}}"),
            "issues_url": format!("{url}/issues{{/number}}"),
            "keys_url": format!("{url}/keys{{/key_id}}"),
            "labels_url": format!("{url}/labels{{/name}}"),
            "languages_url": format!("{url}/languages"),
            "merges_url": format!("{url}/merges"),
            "milestones_url": format!("{url}/milestones{{/number}}"),
            "notifications_url": format!("{url}/notifications{{?since,all,participating}}"),
            "pulls_url": format!("{url}/pulls{{/number}}"),
            "releases_url": format!("{url}/releases{{/id}}"),
            "ssh_url": format!("git@web.example:{full_name}.git"),
            "stargazers_url": format!("{url}/stargazers"),
            "statuses_url": format!("{url}/statuses/{{sha}}"),
            "subscribers_url": format!("{url}/subscribers"),
            "subscription_url": format!("{url}/subscription"),
            "tags_url": format!("{url}/tags"),
            "teams_url": format!("{url}/teams"),
            "trees_url": format!("{url}/git/trees{{/sha}}"),
            "clone_url": format!("{html_url}.git"),
            "hooks_url": format!("{url}/hooks"),
        });
        let mut extend = |more: Value| {
            if let (Value::Object(body), Value::Object(more)) = (&mut body, more) {
                body.extend(more);
            }
        };
        extend(urls);
        if full {
            extend(json!({
                "mirror_url": null,
                "svn_url": html_url,
                "homepage": null,
                "language": "Rust",
                "forks_count": 0,
                "stargazers_count": 0,
                "watchers_count": 0,
                "size": 108,
                "default_branch": "main",
                "open_issues_count": 0,
                "is_template": false,
                "topics": [],
                "has_issues": true,
                "has_projects": true,
                "has_wiki": false,
                "has_pages": false,
                "has_downloads": true,
                "has_discussions": false,
                "archived": false,
                "disabled": false,
                "pushed_at": "2025-06-02T09:30:00Z",
                "created_at": "2025-01-15T08:00:00Z",
                "updated_at": "2025-06-02T09:30:00Z",
                "permissions": {
                    "admin": false,
                    "maintain": false,
                    "push": false,
                    "triage": false,
                    "pull": true,
                },
                "allow_forking": false,
                "web_commit_signoff_required": false,
                "subscribers_count": 1,
                "network_count": 0,
                "license": null,
                "forks": 0,
                "open_issues": 0,
                "watchers": 0,
            }));
        }
        body
    }

    let mut inner = inner.lock().unwrap();
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        });
    if let Some(jwt) = token.filter(|t| t.matches('.').count() == 2) {
        return app_route(&mut inner, method, uri, jwt, body);
    }
    let Some(token) = token.map(str::to_owned) else {
        return error(StatusCode::UNAUTHORIZED, "Requires authentication", "");
    };
    let mut access = match inner.tokens.get(&token) {
        Some(access) => *access,
        None => return error(StatusCode::UNAUTHORIZED, "Bad credentials", ""),
    };
    // What the token may do with the secrets on this path: a classic token by its scopes, an
    // installation token by the permissions its App was granted.
    if let Some((permission, scope)) = secrets_permission(uri.path()) {
        if let Some(scopes) = inner.classic.get(&token) {
            if !scopes.iter().any(|s| s == scope) {
                access = Access::ReadOnly;
            }
        }
        let granted = inner
            .app_tokens
            .get(&token)
            .or_else(|| inner.fine_grained.get(&token).map(|(_, p)| p));
        if let Some(granted) = granted {
            access = match granted[permission].as_str() {
                Some("write") => Access::Write,
                Some("read") => Access::ReadOnly,
                _ => Access::NoSecrets,
            };
        }
    }
    let segments: Vec<String> = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    // A fine-grained token sees its one repository, and no organization.
    if let Some((repository, _)) = inner.fine_grained.get(&token) {
        let reachable = match segments.as_slice() {
            ["repos", o, r, ..] => format!("{o}/{r}") == *repository,
            ["orgs", ..] => false,
            _ => true,
        };
        if !reachable {
            return error(StatusCode::NOT_FOUND, "Not Found", "");
        }
    }
    match (method, segments.as_slice()) {
        (&Method::DELETE, ["installation", "token"]) => {
            if inner.app_tokens.remove(&token).is_none() {
                return error(
                    StatusCode::FORBIDDEN,
                    "Resource not accessible by personal access token",
                    "",
                );
            }
            inner.tokens.remove(&token);
            for issued in inner.issued.iter_mut().filter(|i| i.token == token) {
                issued.revoked = true;
            }
            return StatusCode::NO_CONTENT.into_response();
        }
        (&Method::GET, ["repos", o, r]) => {
            let full_name = format!("{o}/{r}");
            if !inner.scopes.contains_key(&repo(&full_name)) {
                return error(StatusCode::NOT_FOUND, "Not Found", "");
            }
            let private = !inner.public.contains(&full_name);
            return Json(repository(&full_name, 1, private, true)).into_response();
        }
        (&Method::GET, ["repos", o, r, "actions", "runs", id]) => {
            if !inner.scopes.contains_key(&repo(&format!("{o}/{r}"))) {
                return error(StatusCode::NOT_FOUND, "Not Found", "");
            }
            let granted = inner
                .app_tokens
                .get(&token)
                .or_else(|| inner.fine_grained.get(&token).map(|(_, p)| p));
            let actions = match granted {
                Some(granted) => matches!(granted["actions"].as_str(), Some("read" | "write")),
                None => access == Access::Write,
            };
            if !actions {
                return error(
                    StatusCode::FORBIDDEN,
                    "Resource not accessible by personal access token",
                    "",
                );
            }
            let run = id
                .parse()
                .ok()
                .and_then(|id: u64| inner.runs.get(&id).map(|r| (id, r)));
            return match run {
                None => error(StatusCode::NOT_FOUND, "Not Found", ""),
                Some((id, run)) => {
                    let full_name = format!("{o}/{r}");
                    let private = !inner.public.contains(&full_name);
                    let repo_url = format!("{API}/repos/{full_name}");
                    let url = format!("{repo_url}/actions/runs/{id}");
                    let (workflow_id, check_suite_id) = (161_335u64, 42_000_000_000 + id);
                    let sha = "009b8a3a9ccbb128af87f9b1c0f4c62e8a304f6d";
                    let author =
                        json!({"name": "Octo Cat", "email": "octocat@users.noreply.example"});
                    Json(json!({
                        "id": id,
                        "name": "codex",
                        "node_id": format!("WFR_kwLO{id:06}"),
                        "check_suite_id": check_suite_id,
                        "check_suite_node_id": format!("CS_kwDO{check_suite_id}"),
                        "head_branch": "main",
                        "head_sha": sha,
                        "path": ".github/workflows/codex.yml",
                        "run_number": 17,
                        "run_attempt": run.run_attempt,
                        "referenced_workflows": [],
                        "event": "push",
                        "status": "in_progress",
                        "conclusion": null,
                        "workflow_id": workflow_id,
                        "url": url,
                        "html_url": format!("{WEB}/{full_name}/actions/runs/{id}"),
                        "pull_requests": [],
                        "created_at": run.created_at,
                        "updated_at": run.run_started_at,
                        "actor": account(o),
                        "triggering_actor": account(o),
                        "run_started_at": run.run_started_at,
                        "jobs_url": format!("{url}/jobs"),
                        "logs_url": format!("{url}/logs"),
                        "check_suite_url": format!("{repo_url}/check-suites/{check_suite_id}"),
                        "artifacts_url": format!("{url}/artifacts"),
                        "cancel_url": format!("{url}/cancel"),
                        "rerun_url": format!("{url}/rerun"),
                        "previous_attempt_url": (run.run_attempt > 1)
                            .then(|| format!("{url}/attempts/{}", run.run_attempt - 1)),
                        "workflow_url": format!("{repo_url}/actions/workflows/{workflow_id}"),
                        "head_commit": {
                            "id": sha,
                            "tree_id": "2a6b6c7a0d4d3e1f5b8c9a0e1d2c3b4a5f6e7d8c",
                            "message": "Keep the Codex login fresh",
                            "timestamp": run.created_at,
                            "author": author,
                            "committer": author,
                        },
                        "repository": repository(&full_name, 1, private, false),
                        "head_repository": repository(&full_name, 1, private, false),
                        "head_repository_id": 1,
                        "display_title": "Keep the Codex login fresh",
                    }))
                    .into_response()
                }
            };
        }
        _ => {}
    }
    // Split the path into the scope and what follows `…/secrets`.
    let (scope, rest) = match segments.as_slice() {
        ["repos", o, r, "actions", "secrets", rest @ ..] => (repo(&format!("{o}/{r}")), rest),
        ["repos", o, r, "environments", e, "secrets", rest @ ..] => {
            (env(&format!("{o}/{r}"), e), rest)
        }
        ["orgs", o, "actions", "secrets", rest @ ..] => (org(o), rest),
        _ => return error(StatusCode::NOT_FOUND, "Not Found", ""),
    };
    if !inner.scopes.contains_key(&scope) {
        return error(StatusCode::NOT_FOUND, "Not Found", "");
    }
    if access == Access::NoSecrets {
        return error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
            "",
        );
    }
    let organization = scope.starts_with("orgs/");
    if access == Access::ReadOnly && method != Method::GET {
        return error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
            "",
        );
    }
    match (method, rest) {
        (&Method::GET, ["public-key"]) => {
            let state = &inner.scopes[&scope];
            Json(json!({
                "key_id": state.key_id,
                "key": STANDARD.encode(state.key.public_key().as_bytes()),
            }))
            .into_response()
        }
        (&Method::GET, [name]) => {
            match inner.scopes[&scope].secrets.get(&name.to_ascii_uppercase()) {
                None => error(StatusCode::NOT_FOUND, "Not Found", ""),
                Some(secret) => {
                    let mut body = json!({
                        "name": secret.name,
                        "created_at": secret.created_at,
                        "updated_at": secret.updated_at,
                    });
                    if organization {
                        body["visibility"] =
                            json!(secret.visibility.as_deref().unwrap_or("private"));
                        if secret.visibility.as_deref() == Some("selected") {
                            body["selected_repositories_url"] =
                                json!(format!("{API}/{scope}/actions/secrets/{name}/repositories"));
                        }
                    }
                    Json(body).into_response()
                }
            }
        }
        (&Method::GET, [name, "repositories"]) if organization => {
            match inner.scopes[&scope].secrets.get(&name.to_ascii_uppercase()) {
                None => error(StatusCode::NOT_FOUND, "Not Found", ""),
                Some(secret) => {
                    let organization = scope.trim_start_matches("orgs/");
                    let repositories: Vec<Value> = secret
                        .selected_repository_ids
                        .iter()
                        .map(|id| repository(&format!("{organization}/repo{id}"), *id, true, false))
                        .collect();
                    Json(json!({"total_count": repositories.len(), "repositories": repositories}))
                        .into_response()
                }
            }
        }
        (&Method::PUT, [name]) => put_secret(&mut inner, &scope, name, body, organization),
        (&Method::DELETE, [name]) => {
            let state = inner.scopes.get_mut(&scope).unwrap();
            match state.secrets.remove(&name.to_ascii_uppercase()) {
                Some(_) => StatusCode::NO_CONTENT.into_response(),
                None => error(StatusCode::NOT_FOUND, "Not Found", ""),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found", ""),
    }
}

fn put_secret(
    inner: &mut Inner,
    scope: &str,
    name: &str,
    body: &Bytes,
    organization: bool,
) -> Response {
    let valid_name = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.to_ascii_uppercase().starts_with("GITHUB_");
    if !valid_name {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid secret name", "");
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "Problems parsing JSON", "");
    };
    let (Some(encrypted), Some(key_id)) = (
        body.get("encrypted_value").and_then(Value::as_str),
        body.get("key_id").and_then(Value::as_str),
    ) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"encrypted_value\" and \"key_id\" are required.",
            "",
        );
    };
    let visibility = body.get("visibility").and_then(Value::as_str);
    if organization && !matches!(visibility, Some("all" | "private" | "selected")) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"visibility\" is required and must be all, private or selected.",
            "",
        );
    }
    let state = inner.scopes.get(scope).unwrap();
    if key_id != state.key_id {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Bad request - the key_id does not match the current public key",
            "",
        );
    }
    let plain = STANDARD
        .decode(encrypted)
        .ok()
        .and_then(|sealed| state.key.unseal(&sealed).ok())
        .and_then(|plain| String::from_utf8(plain).ok());
    let Some(value) = plain else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Bad request - encrypted_value is not a sealed box for this key",
            "",
        );
    };
    if value.len() > 48 * 1024 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Secret value is too large",
            "",
        );
    }
    let selected: Vec<u64> = body
        .get("selected_repository_ids")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let stamp = inner.tick();
    let state = inner.scopes.get_mut(scope).unwrap();
    let key = name.to_ascii_uppercase();
    let existing = state.secrets.get(&key).cloned();
    state.secrets.insert(
        key,
        StoredSecret {
            name: name.to_owned(),
            value,
            key_id: key_id.to_owned(),
            created_at: existing
                .as_ref()
                .map_or_else(|| stamp.clone(), |e| e.created_at.clone()),
            updated_at: stamp,
            visibility: visibility.map(str::to_owned),
            selected_repository_ids: selected,
        },
    );
    if existing.is_some() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (StatusCode::CREATED, Json(json!({}))).into_response()
    }
}

/// The GitHub App endpoints, authenticated by the App's JWT (RS256, `iss` = the App id,
/// at most ten minutes long, as GitHub requires).
fn app_route(inner: &mut Inner, method: &Method, uri: &Uri, jwt: &str, body: &Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Claims {
        iss: Value,
        iat: i64,
        exp: i64,
    }
    let app_id = jsonwebtoken::decode_header(jwt)
        .ok()
        .filter(|h| h.alg == jsonwebtoken::Algorithm::RS256)
        .and_then(|_| jsonwebtoken::dangerous::insecure_decode::<Claims>(jwt).ok())
        .and_then(|data| match data.claims.iss {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        });
    let Some(app) = app_id.and_then(|id| inner.apps.get(&id)) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "'Issuer' claim ('iss') must be an Integer",
            "",
        );
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    // `iss` (a number, as GitHub allows) was read above; jsonwebtoken only checks strings.
    validation.set_required_spec_claims(&["exp", "iat"]);
    let verified = jsonwebtoken::decode::<Claims>(jwt, &app.key, &validation);
    let Ok(verified) = verified else {
        return error(
            StatusCode::UNAUTHORIZED,
            "A JSON web token could not be decoded",
            "",
        );
    };
    if verified.claims.exp - verified.claims.iat > 660 {
        return error(
            StatusCode::UNAUTHORIZED,
            "'Expiration time' claim ('exp') is too far in the future",
            "",
        );
    }
    let app_id = app_id.unwrap_or_default();
    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let installed = |account: &str| {
        app.installations
            .iter()
            .find(|(_, on)| on.as_str() == account)
            .map(|(id, _)| *id)
    };
    match (method, segments.as_slice()) {
        (&Method::GET, ["repos", o, r, "installation"]) => {
            let full_name = format!("{o}/{r}");
            match installed(&full_name).or_else(|| installed(o)) {
                None => error(StatusCode::NOT_FOUND, "Not Found", ""),
                Some(id) => {
                    Json(installation_body(id, app_id, o, &app.permissions)).into_response()
                }
            }
        }
        (&Method::GET, ["orgs", o, "installation"]) => match installed(o) {
            None => error(StatusCode::NOT_FOUND, "Not Found", ""),
            Some(id) => Json(installation_body(id, app_id, o, &app.permissions)).into_response(),
        },
        (&Method::POST, ["app", "installations", id, "access_tokens"]) => {
            let Some((id, account)) = id
                .parse::<u64>()
                .ok()
                .and_then(|id| Some((id, app.installations.get(&id)?.clone())))
            else {
                return error(StatusCode::NOT_FOUND, "Not Found", "");
            };
            let request: Value = if body.is_empty() {
                json!({})
            } else {
                match serde_json::from_slice(body) {
                    Ok(value) => value,
                    Err(_) => return error(StatusCode::BAD_REQUEST, "Problems parsing JSON", ""),
                }
            };
            let repositories: Option<Vec<String>> = request
                .get("repositories")
                .and_then(Value::as_array)
                .map(|names| {
                    names
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                });
            let owner = account.split('/').next().unwrap_or_default().to_owned();
            let accessible = |name: &String| {
                account == format!("{owner}/{name}")
                    || (!account.contains('/')
                        && inner.scopes.contains_key(&repo(&format!("{owner}/{name}"))))
            };
            if repositories
                .as_ref()
                .is_some_and(|r| !r.iter().all(accessible))
            {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "There is at least one repository that does not exist or is not accessible to the parent installation.",
                    "",
                );
            }
            // Each requested permission at most at the installation's level, else 422; the
            // token gets what was asked, or everything the installation has.
            let requested = request.get("permissions").cloned();
            let rank = |level: Option<&str>| match level {
                Some("read") => 1,
                Some("write") => 2,
                Some("admin") => 3,
                _ => 0,
            };
            let permissions =
                match &requested {
                    None => app.permissions.clone(),
                    Some(Value::Object(asked)) => {
                        let exceeds = asked.iter().any(|(name, level)| {
                            rank(level.as_str()) == 0
                                || rank(level.as_str()) > rank(app.permissions[name].as_str())
                        });
                        if exceeds {
                            return error(
                                StatusCode::UNPROCESSABLE_ENTITY,
                                "The permissions requested are not granted to this installation.",
                                "",
                            );
                        }
                        Value::Object(asked.clone())
                    }
                    Some(_) => return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Invalid request.\n\nFor 'properties/permissions', it is not an object.",
                        "",
                    ),
                };
            let token = format!("ghs_test{}{}", id, inner.issued.len());
            inner.tokens.insert(token.clone(), Access::Write);
            inner.app_tokens.insert(token.clone(), permissions.clone());
            inner.issued.push(IssuedToken {
                app_id,
                installation: id,
                repositories,
                token: token.clone(),
                requested,
                granted: permissions.clone(),
                revoked: false,
            });
            let expires = jiff::Timestamp::from_second(super::now() + 3600)
                .unwrap()
                .to_string();
            (
                StatusCode::CREATED,
                Json(json!({
                    "token": token,
                    "expires_at": expires,
                    "permissions": permissions,
                    "repository_selection": "selected",
                })),
            )
                .into_response()
        }
        _ => error(
            StatusCode::UNAUTHORIZED,
            "A JSON web token can only be used for the App's own endpoints",
            "",
        ),
    }
}

/// An installation, as `GET …/installation` describes it.
fn installation_body(id: u64, app_id: u64, login: &str, permissions: &Value) -> Value {
    let now = jiff::Timestamp::from_second(super::now())
        .unwrap()
        .to_string();
    json!({
        "id": id,
        "account": {
            "login": login,
            "id": 9001,
            "node_id": "O_kgDOAAAjKQ",
            "avatar_url": "https://avatars.example/u/9001",
            "gravatar_id": "",
            "url": format!("https://api.example/users/{login}"),
            "html_url": format!("https://web.example/{login}"),
            "followers_url": format!("https://api.example/users/{login}/followers"),
            "following_url": format!("https://api.example/users/{login}/following{{/other_user}}"),
            "gists_url": format!("https://api.example/users/{login}/gists{{/gist_id}}"),
            "starred_url": format!("https://api.example/users/{login}/starred{{/owner}}{{/repo}}"),
            "subscriptions_url": format!("https://api.example/users/{login}/subscriptions"),
            "organizations_url": format!("https://api.example/users/{login}/orgs"),
            "repos_url": format!("https://api.example/users/{login}/repos"),
            "events_url": format!("https://api.example/users/{login}/events{{/privacy}}"),
            "received_events_url": format!("https://api.example/users/{login}/received_events"),
            "type": "Organization",
            "site_admin": false,
        },
        "repository_selection": "selected",
        "access_tokens_url": format!("https://api.example/app/installations/{id}/access_tokens"),
        "repositories_url": "https://api.example/installation/repositories",
        "html_url": format!("https://web.example/organizations/{login}/settings/installations/{id}"),
        "app_id": app_id,
        "app_slug": "codex-auth-writer",
        "target_id": 9001,
        "target_type": "Organization",
        "permissions": permissions,
        "events": [],
        "created_at": now,
        "updated_at": now,
        "single_file_name": null,
        "has_multiple_single_files": false,
        "single_file_paths": [],
        "suspended_by": null,
        "suspended_at": null,
    })
}
