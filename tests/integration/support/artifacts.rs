//! A local GitHub Actions artifact service, speaking the artifact protocol v4 as the real
//! client, `@actions/artifact` (actions/toolkit, `packages/artifact`), speaks it; checked
//! against that client in `artifact_protocol.rs`. One server on 127.0.0.1 plays three hosts:
//!
//! - the results service (`ACTIONS_RESULTS_URL`): twirp JSON at
//!   `POST /twirp/github.actions.results.api.v1.ArtifactService/{Method}`, authorized by the
//!   job's runtime token (`ACTIONS_RUNTIME_TOKEN`, a JWT whose `scp` claim holds
//!   `Actions.Results:{workflowRunBackendId}:{workflowJobRunBackendId}`). Request bodies use
//!   protobuf field names (`workflow_run_backend_id`), wrappers as bare values
//!   (`"hash": "sha256:…"`), int64 as strings; answers use the same names, as twirp's
//!   protojson does. Errors are twirp's `{"code", "msg"}` with twirp's HTTP status.
//! - blob storage (`/blob/…`), as Azure Blob Storage behind a SAS URL: the query's `sig` must
//!   sign the path, the permissions `sp` and the expiry `se`, so an unsigned, altered or
//!   expired URL is refused with Azure's 403 `AuthenticationFailed`. Uploads: "Put Blob" (one
//!   `PUT` with `x-ms-blob-type: BlockBlob`), or "Put Block" (`?comp=block&blockid=…`) then
//!   "Put Block List" (`?comp=blocklist`, XML), which is what the client's
//!   `BlockBlobClient.uploadStream` sends.
//! - the REST API (`GITHUB_API_URL`): `GET /repos/{o}/{r}/actions/artifacts` (`name`,
//!   `per_page`, `page`), `…/actions/artifacts/{id}`, `…/actions/runs/{run_id}/artifacts`, and
//!   `…/actions/artifacts/{id}/zip`, which answers 302 to a signed blob URL, 410 once the
//!   artifact has expired. GitHub's bodies and statuses; every exchange is recorded as a
//!   [`Request`] for [`assert_conforms`](super::openapi::assert_conforms).
//!
//! Protocol reference: actions/toolkit `packages/artifact/src/internal/upload/upload-artifact.ts`,
//! `…/upload/blob-upload.ts`, `…/download/download-artifact.ts`, `…/shared/util.ts`
//! (`getBackendIdsFromToken`) and the generated `…/generated/results/api/v1/artifact.ts`.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jiff::Timestamp;
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::github::Request;
use super::serve::{serve, Server};

/// The twirp service every artifact call goes to.
pub const SERVICE: &str = "github.actions.results.api.v1.ArtifactService";

/// The variable that holds the install prefix of the pinned `@actions/artifact`.
pub const CLIENT_VAR: &str = "CODEX_AUTH_TEST_ARTIFACT_CLIENT";

/// How long an artifact is kept without a retention in `CreateArtifact` (GitHub's default).
const DEFAULT_RETENTION_SECONDS: i64 = 90 * 24 * 3600;
/// How long an upload URL is valid.
const UPLOAD_URL_SECONDS: i64 = 3600;
/// How long a download URL is valid: GitHub documents one minute for the REST redirect.
const DOWNLOAD_URL_SECONDS: i64 = 60;

/// A job of a workflow run, as its runtime token describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// `owner/repo`: the repository the run belongs to.
    pub repository: String,
    /// The workflow run id (`GITHUB_RUN_ID`).
    pub run_id: u64,
    /// The job's id.
    pub job_id: u64,
}

impl Job {
    /// A job of run `run_id` in `repository`.
    pub fn new(repository: &str, run_id: u64, job_id: u64) -> Self {
        Self {
            repository: repository.to_owned(),
            run_id,
            job_id,
        }
    }

    /// The run's backend id, a UUID as in the real token's `scp` (derived from the run id, so
    /// tests can predict it).
    pub fn run_backend_id(&self) -> String {
        format!("ce7f54c7-61c7-4aae-887f-{:012x}", self.run_id)
    }

    /// The job's backend id.
    pub fn job_backend_id(&self) -> String {
        format!("ca395085-040a-526b-2ce8-{:012x}", self.job_id)
    }
}

/// An artifact as the service keeps it.
#[derive(Debug, Clone)]
pub struct StoredArtifact {
    /// The id (`database_id` in twirp, `id` in REST).
    pub id: u64,
    /// The name.
    pub name: String,
    /// The job that uploaded it.
    pub job: Job,
    /// The id of the repository the run belongs to.
    pub repository_id: u64,
    /// The id of the repository the run's commit came from: another one for a fork's pull
    /// request.
    pub head_repository_id: u64,
    /// The run's branch.
    pub head_branch: String,
    /// The run's commit.
    pub head_sha: String,
    /// `mime_type` from `CreateArtifact`.
    pub mime_type: Option<String>,
    /// `version` from `CreateArtifact` (the client sends 7).
    pub version: Option<i64>,
    /// Where its zip is stored in blob storage (a path on this server).
    pub blob_path: String,
    /// `size` from `FinalizeArtifact`.
    pub size: u64,
    /// `hash` from `FinalizeArtifact`: `sha256:` and the hex digest of the zip.
    pub digest: Option<String>,
    /// Whether `FinalizeArtifact` accepted it; until then it is invisible.
    pub finalized: bool,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was finalized.
    pub updated_at: Timestamp,
    /// When it expires.
    pub expires_at: Timestamp,
}

impl StoredArtifact {
    /// Whether it has expired.
    pub fn expired(&self) -> bool {
        self.expires_at <= Timestamp::now()
    }
}

/// An artifact to put in the store directly, as if a run had uploaded it ([`Artifacts::add`]).
#[derive(Debug, Clone)]
pub struct Seed {
    job: Job,
    name: String,
    zip: Vec<u8>,
    head_repository_id: Option<u64>,
    head_branch: Option<String>,
    age_seconds: i64,
    retention_seconds: i64,
}

impl Seed {
    /// An artifact `name` holding `zip`, uploaded by `job` just now.
    pub fn new(job: &Job, name: &str, zip: Vec<u8>) -> Self {
        Self {
            job: job.clone(),
            name: name.to_owned(),
            zip,
            head_repository_id: None,
            head_branch: None,
            age_seconds: 0,
            retention_seconds: DEFAULT_RETENTION_SECONDS,
        }
    }

    /// Uploaded by a run of a fork's pull request: the run belongs to the job's repository,
    /// its head to `head_repository_id`.
    // A builder step read as "a seed from a fork", not a conversion.
    #[allow(clippy::wrong_self_convention)]
    pub fn from_fork(mut self, head_repository_id: u64) -> Self {
        self.head_repository_id = Some(head_repository_id);
        self
    }

    /// Uploaded by a run of `branch` (default: `main`, the repository's default branch).
    pub fn on_branch(mut self, branch: &str) -> Self {
        self.head_branch = Some(branch.to_owned());
        self
    }

    /// Uploaded `seconds` ago.
    pub fn created_ago(mut self, seconds: i64) -> Self {
        self.age_seconds = seconds;
        self
    }

    /// Kept for `seconds` after its creation (negative with [`Self::created_ago`]: expired).
    pub fn retention(mut self, seconds: i64) -> Self {
        self.retention_seconds = seconds;
        self
    }
}

/// Which of the three hosts a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// The twirp results service.
    Twirp,
    /// Blob storage.
    Blob,
    /// The REST API.
    Rest,
}

/// One call, as the service saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// Which host.
    pub host: Host,
    /// Method.
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Request headers (names lower-case).
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Vec<u8>,
    /// The status answered.
    pub status: u16,
    /// The response body.
    pub response: Vec<u8>,
}

impl Call {
    /// A short description for comparing call sequences: `twirp CreateArtifact 200`,
    /// `blob PUT block 201` (`blob`, `block`, `blocklist`; `GET`), `rest GET
    /// /repos/o/r/actions/artifacts/1/zip 302` (the path without its query).
    pub fn step(&self) -> String {
        match self.host {
            Host::Twirp => {
                let method = self.path.rsplit('/').next().unwrap_or_default();
                format!("twirp {method} {}", self.status)
            }
            Host::Blob => {
                let operation = match query(&self.path).get("comp") {
                    Some(comp) => format!(" {comp}"),
                    None if self.method == "PUT" => " blob".to_owned(),
                    None => String::new(),
                };
                format!("blob {}{operation} {}", self.method, self.status)
            }
            Host::Rest => {
                let path = self.path.split('?').next().unwrap_or_default();
                format!("rest {} {path} {}", self.method, self.status)
            }
        }
    }

    /// The request body as JSON (twirp), or `Null`.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A request header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A blob: its committed content and the blocks staged for it.
#[derive(Default)]
struct Blob {
    content: Option<Vec<u8>>,
    content_type: Option<String>,
    staged: BTreeMap<String, Vec<u8>>,
}

/// A REST token and what it may read.
#[derive(Clone)]
struct Grant {
    repository: String,
    actions_read: bool,
}

struct Inner {
    base: String,
    key: [u8; 32],
    repositories: BTreeMap<String, u64>,
    runtime_tokens: BTreeMap<String, Job>,
    tokens: BTreeMap<String, Grant>,
    artifacts: BTreeMap<u64, StoredArtifact>,
    blobs: BTreeMap<String, Blob>,
    next_id: u64,
    calls: Vec<Call>,
    rest: Vec<Request>,
    /// Answers to give instead, for the next requests whose path contains the text.
    faults: Vec<(String, u16)>,
}

/// The running service.
pub struct Artifacts {
    inner: Arc<Mutex<Inner>>,
    server: Server,
}

impl Artifacts {
    /// Starts a service that knows no repository and no token yet, over plain HTTP (the client
    /// accepts `http://` for `ACTIONS_RESULTS_URL`, `GITHUB_API_URL` and blob URLs).
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// The same service over HTTPS, with a certificate `ca` signed, known to its clients by
    /// `host` (port 443: a proxy maps the name to this server, and every URL it hands out,
    /// blob URLs included, names that host).
    pub fn start_tls(ca: &super::serve::TestCa, host: &str) -> Self {
        Self::start_with(Some((ca, host)))
    }

    fn start_with(tls: Option<(&super::serve::TestCa, &str)>) -> Self {
        let key = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng).to_bytes();
        let inner = Arc::new(Mutex::new(Inner {
            base: String::new(),
            key,
            repositories: BTreeMap::new(),
            runtime_tokens: BTreeMap::new(),
            tokens: BTreeMap::new(),
            artifacts: BTreeMap::new(),
            blobs: BTreeMap::new(),
            next_id: 7_000_001,
            calls: Vec::new(),
            rest: Vec::new(),
            faults: Vec::new(),
        }));
        let router = Router::new().fallback(handle).with_state(inner.clone());
        let server = serve(router, tls.map(|(ca, _)| ca));
        inner.lock().unwrap().base = match tls {
            Some((_, host)) => format!("https://{host}"),
            None => format!("http://127.0.0.1:{}", server.addr.port()),
        };
        Self { inner, server }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// The server's address on loopback.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }

    /// `ACTIONS_RESULTS_URL` (the client keeps only its origin).
    pub fn results_url(&self) -> String {
        format!("{}/", self.lock().base)
    }

    /// `GITHUB_API_URL`.
    pub fn api_url(&self) -> String {
        self.lock().base.clone()
    }

    /// Adds a repository (`owner/repo`) with its numeric id.
    pub fn add_repository(&self, repository: &str, id: u64) {
        self.lock().repositories.insert(repository.to_owned(), id);
    }

    /// A runtime token for `job` (`ACTIONS_RUNTIME_TOKEN`): an unsigned JWT whose `scp`
    /// claim carries the job's backend ids as the real one does. The job's repository must
    /// have been added.
    pub fn runtime_token(&self, job: &Job) -> String {
        let mut inner = self.lock();
        assert!(
            inner.repositories.contains_key(&job.repository),
            "add_repository({:?}, id) before making a runtime token for it",
            job.repository
        );
        let now = super::now();
        let token = super::jwt(&json!({
            "scp": format!(
                "Actions.ExampleScope Actions.Results:{}:{}",
                job.run_backend_id(),
                job.job_backend_id()
            ),
            "iss": "vstoken.actions.example",
            "aud": "vso:00000000-0000-0000-0000-000000000000",
            "nbf": now - 60,
            "iat": now - 60,
            "exp": now + 6 * 3600,
            // Distinguishes two tokens for the same job.
            "jti": inner.runtime_tokens.len(),
        }));
        inner.runtime_tokens.insert(token.clone(), job.clone());
        token
    }

    /// Accepts `token` on the REST API for `repository` with "Actions: read".
    pub fn add_token(&self, token: &str, repository: &str) {
        self.grant(token, repository, true);
    }

    /// Accepts `token` on the REST API for `repository`, without "Actions: read" (403).
    pub fn add_token_without_actions(&self, token: &str, repository: &str) {
        self.grant(token, repository, false);
    }

    fn grant(&self, token: &str, repository: &str, actions_read: bool) {
        self.lock().tokens.insert(
            token.to_owned(),
            Grant {
                repository: repository.to_owned(),
                actions_read,
            },
        );
    }

    /// Stores a finalized artifact directly, as if a run had uploaded it; returns its id.
    pub fn add(&self, seed: Seed) -> u64 {
        let mut inner = self.lock();
        let repository_id = inner.repository_id(&seed.job.repository);
        let created_at = Timestamp::from_second(super::now() - seed.age_seconds).unwrap();
        let id = inner.next_id;
        inner.next_id += 1;
        let blob_path = blob_path(&seed.job, &seed.name, id);
        let digest = format!("sha256:{}", hex(&Sha256::digest(&seed.zip)));
        let size = seed.zip.len() as u64;
        inner.blobs.insert(
            blob_key(&blob_path),
            Blob {
                content: Some(seed.zip),
                content_type: Some("application/zip".to_owned()),
                staged: BTreeMap::new(),
            },
        );
        inner.artifacts.insert(
            id,
            StoredArtifact {
                id,
                name: seed.name,
                repository_id,
                head_repository_id: seed.head_repository_id.unwrap_or(repository_id),
                head_branch: seed.head_branch.unwrap_or_else(|| "main".to_owned()),
                head_sha: head_sha(seed.job.run_id),
                job: seed.job,
                mime_type: Some("application/zip".to_owned()),
                version: Some(7),
                blob_path,
                size,
                digest: Some(digest),
                finalized: true,
                created_at,
                updated_at: created_at,
                expires_at: Timestamp::from_second(created_at.as_second() + seed.retention_seconds)
                    .unwrap(),
            },
        );
        id
    }

    /// Answers the next request whose path contains `path_part` with `status` (a twirp
    /// `unavailable` or an Azure `ServerBusy`), instead of serving it.
    pub fn fail_next(&self, path_part: &str, status: u16) {
        self.lock().faults.push((path_part.to_owned(), status));
    }

    /// Drops the faults not yet answered.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Makes an artifact expire now.
    pub fn expire(&self, id: u64) {
        let now = Timestamp::from_second(super::now() - 1).unwrap();
        self.lock().artifacts.get_mut(&id).unwrap().expires_at = now;
    }

    /// An artifact, finalized or not.
    pub fn artifact(&self, id: u64) -> Option<StoredArtifact> {
        self.lock().artifacts.get(&id).cloned()
    }

    /// Every artifact, by id.
    pub fn artifacts(&self) -> Vec<StoredArtifact> {
        self.lock().artifacts.values().cloned().collect()
    }

    /// The stored zip of an artifact (its committed blob), if any.
    pub fn zip(&self, id: u64) -> Option<Vec<u8>> {
        let inner = self.lock();
        let artifact = inner.artifacts.get(&id)?;
        inner
            .blobs
            .get(&blob_key(&artifact.blob_path))?
            .content
            .clone()
    }

    /// A signed URL for an artifact's blob, valid for `seconds` (negative: already expired),
    /// with permissions `sp` (`r` to read, `cw` to write).
    pub fn signed_url(&self, id: u64, sp: &str, seconds: i64) -> String {
        let inner = self.lock();
        let path = inner.artifacts.get(&id).unwrap().blob_path.clone();
        inner.sign(&path, sp, seconds)
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The steps of every call so far ([`Call::step`]).
    pub fn steps(&self) -> Vec<String> {
        self.calls().iter().map(Call::step).collect()
    }

    /// The REST exchanges so far, for
    /// [`assert_conforms`](super::openapi::assert_conforms).
    pub fn rest_requests(&self) -> Vec<Request> {
        self.lock().rest.clone()
    }

    /// Gives `job` what the runner gives a step of job `job_id` of run `run_id` in the
    /// repository with id `repository_id`: the ids, the results service's URL and a runtime
    /// token for that job, which it returns.
    pub fn enroll(
        &self,
        job: &mut super::job::Job,
        repository_id: u64,
        run_id: u64,
        job_id: u64,
    ) -> String {
        let repository = self
            .lock()
            .repositories
            .iter()
            .find(|(_, id)| **id == repository_id)
            .map(|(name, _)| name.clone())
            .unwrap_or_else(|| panic!("add_repository(…, {repository_id}) first"));
        let runtime = self.runtime_token(&Job::new(&repository, run_id, job_id));
        job.env("GITHUB_REPOSITORY_ID", repository_id.to_string())
            .env("GITHUB_RUN_ID", run_id.to_string())
            .env("ACTIONS_RESULTS_URL", self.results_url())
            .env("ACTIONS_RUNTIME_TOKEN", runtime.clone());
        runtime
    }

    /// The login in the newest finalized artifact named `name`, opened with `key` as bound
    /// to `repository_id`.
    pub fn newest_login(
        &self,
        name: &str,
        key: &codex_auth::seal::artifact::ArtifactKey,
        repository_id: u64,
    ) -> Value {
        use codex_auth::seal::artifact::{open, Binding};
        let newest = self
            .artifacts()
            .into_iter()
            .filter(|a| a.name == name)
            .max_by_key(|a| a.id)
            .expect("an artifact");
        let zip = self.zip(newest.id).unwrap();
        let sealed = codex_auth::store::artifact::archive::unzip(&zip).unwrap();
        let binding = Binding {
            repository_id,
            artifact_name: name,
        };
        let plain = open(key, &binding, &sealed).unwrap();
        serde_json::from_str(plain.expose()).unwrap()
    }

    /// The REST half of the service, to mount on another local server: the action reads
    /// artifacts and writes secrets through one `GITHUB_API_URL`, so a local GitHub serving
    /// the Secrets API can hand the artifact routes ([`RestApi::serves`]) to
    /// [`RestApi::answer`]. Tokens are those given to [`Self::add_token`]; the `url` and
    /// `archive_download_url` in its bodies point at this service, which answers them too.
    pub fn rest_api(&self) -> RestApi {
        RestApi(self.inner.clone())
    }
}

/// The service's REST routes, shared with another server ([`Artifacts::rest_api`]).
#[derive(Clone)]
pub struct RestApi(Arc<Mutex<Inner>>);

impl RestApi {
    /// Whether `path` is one of the artifact routes: `/repos/{o}/{r}/actions/artifacts…` or
    /// `/repos/{o}/{r}/actions/runs/{id}/artifacts`.
    pub fn serves(path: &str) -> bool {
        let path = path.split('?').next().unwrap_or_default();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        matches!(
            segments.as_slice(),
            ["repos", _, _, "actions", "artifacts", ..]
                | ["repos", _, _, "actions", "runs", _, "artifacts"]
        )
    }

    /// GitHub's answer, not recorded here (the server that forwards it records it).
    pub fn answer(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
        rest(&mut self.0.lock().unwrap(), method, uri, headers)
    }
}

impl Inner {
    fn repository_id(&self, repository: &str) -> u64 {
        *self
            .repositories
            .get(repository)
            .unwrap_or_else(|| panic!("add_repository({repository:?}, id) first"))
    }

    /// The signature of a blob URL: a keyed SHA-256 of what it grants, as a SAS `sig` is an
    /// HMAC of the same. The path is signed percent-decoded, so that a client re-encoding it changes nothing.
    fn signature(&self, path: &str, sp: &str, se: &str) -> String {
        let path = percent_decode_str(path).decode_utf8_lossy();
        let mut hash = Sha256::new();
        hash.update(self.key);
        for part in [&*path, sp, se] {
            hash.update(part.as_bytes());
            hash.update(b"\n");
        }
        URL_SAFE_NO_PAD.encode(hash.finalize())
    }

    /// A SAS-style URL for `path`: `sv`, `se` (expiry), `sr=b`, `sp` (permissions), `sig`.
    fn sign(&self, path: &str, sp: &str, seconds: i64) -> String {
        let se = Timestamp::from_second(super::now() + seconds)
            .unwrap()
            .to_string();
        let sig = self.signature(path, sp, &se);
        let encode = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        format!(
            "{}{path}?sv=2025-01-05&se={}&sr=b&sp={sp}&sig={}",
            self.base,
            encode(&se),
            encode(&sig)
        )
    }

    /// Why a blob URL does not grant `permission`, if it does not.
    fn refuse(
        &self,
        path: &str,
        query: &BTreeMap<String, String>,
        permission: char,
    ) -> Option<String> {
        let (Some(sig), Some(sp), Some(se)) = (query.get("sig"), query.get("sp"), query.get("se"))
        else {
            return Some("The request is not signed: sig, sp and se are required.".to_owned());
        };
        if *sig != self.signature(path, sp, se) {
            return Some("Signature did not match.".to_owned());
        }
        match se.parse::<Timestamp>() {
            Ok(expiry) if expiry > Timestamp::now() => {}
            _ => {
                return Some(format!(
                    "Signed expiry time [{se}] must be after the current time."
                ))
            }
        }
        (!sp.contains(permission)).then(|| {
            "This request is not authorized to perform this operation using this permission."
                .to_owned()
        })
    }
}

/// Where an artifact's zip lives: a container per run, a folder per job, as the real
/// service does.
fn blob_path(job: &Job, name: &str, id: u64) -> String {
    let name = utf8_percent_encode(name, NON_ALPHANUMERIC);
    format!(
        "/blob/actions-results/{}/{}/{id}/{name}.zip",
        job.run_backend_id(),
        job.job_backend_id()
    )
}

/// The key a blob is kept by: its path, percent-decoded.
fn blob_key(path: &str) -> String {
    percent_decode_str(path).decode_utf8_lossy().into_owned()
}

/// A commit id for a run (any 40 hex digits).
fn head_sha(run_id: u64) -> String {
    format!("{:040x}", run_id)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The query of a path, percent-decoded (`+` left as is: SAS values never hold one).
fn query(path_and_query: &str) -> BTreeMap<String, String> {
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    path_and_query
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let host = if path.starts_with("/twirp/") {
        Host::Twirp
    } else if path.starts_with("/blob/") {
        Host::Blob
    } else {
        Host::Rest
    };
    let (response, injected) = {
        let mut inner = inner.lock().unwrap();
        let fault = inner
            .faults
            .iter()
            .position(|(part, _)| path.contains(part.as_str()));
        let fault = fault.map(|at| inner.faults.remove(at).1);
        let injected = fault.is_some();
        // Signed blob URLs carry their own authorization: a token sent there is a leak.
        let token_to_blob = host == Host::Blob && headers.contains_key("authorization");
        let response = match host {
            _ if token_to_blob => azure_error(
                StatusCode::BAD_REQUEST,
                "InvalidAuthenticationInfo",
                "A signed URL must not carry an Authorization header.",
            ),
            _ if fault.is_some() => {
                let status = StatusCode::from_u16(fault.unwrap_or(500)).unwrap();
                match host {
                    Host::Twirp => (
                        status,
                        Json(json!({"code": "unavailable", "msg": "injected fault"})),
                    )
                        .into_response(),
                    // GitHub's REST API answers errors as JSON with a message.
                    Host::Rest => {
                        (status, Json(json!({"message": "injected fault"}))).into_response()
                    }
                    Host::Blob => azure_error(status, "ServerBusy", "injected fault"),
                }
            }
            Host::Twirp => twirp(&mut inner, &method, uri.path(), &headers, &body),
            Host::Blob => blob(&mut inner, &method, &uri, &headers, &body),
            Host::Rest => rest(&mut inner, &method, &uri, &headers),
        };
        (response, injected)
    };
    let (parts, response_body) = response.into_parts();
    let response_body = axum::body::to_bytes(response_body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut inner = inner.lock().unwrap();
    if host == Host::Rest {
        inner.rest.push(Request {
            method: method.to_string(),
            path: path.clone(),
            status: parts.status.as_u16(),
            body: body.to_vec(),
            response_type: parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            response: response_body.to_vec(),
            injected,
            token: None,
        });
    }
    inner.calls.push(Call {
        host,
        method: method.to_string(),
        path,
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        status: parts.status.as_u16(),
        response: response_body.to_vec(),
    });
    Response::from_parts(parts, Body::from(response_body))
}

/// A twirp error: `{"code", "msg"}` with the HTTP status twirp maps the code to.
fn twirp_error(code: &str, msg: &str) -> Response {
    let status = match code {
        "unauthenticated" => StatusCode::UNAUTHORIZED,
        "permission_denied" => StatusCode::FORBIDDEN,
        "not_found" | "bad_route" => StatusCode::NOT_FOUND,
        "already_exists" => StatusCode::CONFLICT,
        "failed_precondition" => StatusCode::PRECONDITION_FAILED,
        "invalid_argument" | "malformed" => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(json!({"code": code, "msg": msg}))).into_response()
}

/// The token of an `authorization: Bearer …` (or `token …`) header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("token "))
        })
}

fn twirp(
    inner: &mut Inner,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let Some(rpc) = path
        .strip_prefix("/twirp/")
        .and_then(|p| p.strip_prefix(SERVICE))
        .and_then(|p| p.strip_prefix('/'))
        .filter(|_| method == Method::POST)
    else {
        return twirp_error("bad_route", &format!("no handler for path {path:?}"));
    };
    let Some(job) = bearer(headers)
        .and_then(|t| inner.runtime_tokens.get(t))
        .cloned()
    else {
        return twirp_error("unauthenticated", "the runtime token is missing or invalid");
    };
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return twirp_error("malformed", "the body is not JSON");
    };
    let text = |field: &str| request[field].as_str().unwrap_or_default().to_owned();
    let (run, job_run, name) = (
        text("workflow_run_backend_id"),
        text("workflow_job_run_backend_id"),
        text("name"),
    );
    // Every call is about the token's run; uploads also about the token's job. A download may
    // name another job of the same run (the one that uploaded the artifact).
    if run != job.run_backend_id() {
        return twirp_error(
            "permission_denied",
            "workflow_run_backend_id is not the token's run",
        );
    }
    let own_job = job_run == job.job_backend_id();
    let now = Timestamp::from_second(super::now()).unwrap();
    match rpc {
        "CreateArtifact" => {
            if !own_job {
                return twirp_error(
                    "permission_denied",
                    "workflow_job_run_backend_id is not the token's job",
                );
            }
            if name.is_empty() {
                return twirp_error("invalid_argument", "name is required");
            }
            if inner
                .artifacts
                .values()
                .any(|a| a.finalized && a.job.run_id == job.run_id && a.name == name)
            {
                return twirp_error(
                    "already_exists",
                    "an artifact with this name already exists on the workflow run",
                );
            }
            let expires_at = match request.get("expires_at").and_then(Value::as_str) {
                Some(at) => match at.parse::<Timestamp>() {
                    Ok(at) => at,
                    Err(_) => {
                        return twirp_error("invalid_argument", "expires_at is not a timestamp")
                    }
                },
                None => {
                    Timestamp::from_second(now.as_second() + DEFAULT_RETENTION_SECONDS).unwrap()
                }
            };
            let repository_id = inner.repository_id(&job.repository);
            let id = inner.next_id;
            inner.next_id += 1;
            let blob_path = blob_path(&job, &name, id);
            // A new CreateArtifact for the same name replaces an unfinished one.
            inner
                .artifacts
                .retain(|_, a| a.finalized || a.job != job || a.name != name);
            inner.artifacts.insert(
                id,
                StoredArtifact {
                    id,
                    name,
                    job: job.clone(),
                    repository_id,
                    head_repository_id: repository_id,
                    head_branch: "main".to_owned(),
                    head_sha: head_sha(job.run_id),
                    mime_type: request["mime_type"].as_str().map(str::to_owned),
                    version: request["version"].as_i64(),
                    blob_path: blob_path.clone(),
                    size: 0,
                    digest: None,
                    finalized: false,
                    created_at: now,
                    updated_at: now,
                    expires_at,
                },
            );
            let url = inner.sign(&blob_path, "cw", UPLOAD_URL_SECONDS);
            Json(json!({"ok": true, "signed_upload_url": url})).into_response()
        }
        "FinalizeArtifact" => {
            if !own_job {
                return twirp_error(
                    "permission_denied",
                    "workflow_job_run_backend_id is not the token's job",
                );
            }
            let Some(id) = inner
                .artifacts
                .values()
                .find(|a| !a.finalized && a.job == job && a.name == name)
                .map(|a| a.id)
            else {
                return twirp_error(
                    "not_found",
                    "no artifact with this name is being uploaded by this job",
                );
            };
            let path = inner.artifacts[&id].blob_path.clone();
            let Some(content) = inner
                .blobs
                .get(&blob_key(&path))
                .and_then(|b| b.content.clone())
            else {
                return twirp_error(
                    "failed_precondition",
                    "nothing was uploaded to the artifact's blob",
                );
            };
            let size = request["size"]
                .as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .or_else(|| request["size"].as_u64());
            if size != Some(content.len() as u64) {
                return twirp_error(
                    "invalid_argument",
                    &format!(
                        "size {:?} is not the uploaded size {}",
                        request["size"],
                        content.len()
                    ),
                );
            }
            let digest = format!("sha256:{}", hex(&Sha256::digest(&content)));
            if let Some(hash) = request.get("hash") {
                if hash.as_str() != Some(digest.as_str()) {
                    return twirp_error(
                        "invalid_argument",
                        &format!("hash {hash} is not the uploaded content's {digest}"),
                    );
                }
            }
            let artifact = inner.artifacts.get_mut(&id).unwrap();
            artifact.size = content.len() as u64;
            artifact.digest = Some(digest);
            artifact.finalized = true;
            artifact.updated_at = now;
            Json(json!({"ok": true, "artifact_id": id.to_string()})).into_response()
        }
        "ListArtifacts" => {
            let name_filter = request.get("name_filter").and_then(Value::as_str);
            let id_filter = request.get("id_filter").and_then(|v| {
                v.as_str()
                    .and_then(|s| s.parse::<u64>().ok())
                    .or_else(|| v.as_u64())
            });
            let artifacts: Vec<Value> = inner
                .artifacts
                .values()
                .filter(|a| a.finalized && !a.expired() && a.job.run_id == job.run_id)
                .filter(|a| name_filter.is_none_or(|n| a.name == n))
                .filter(|a| id_filter.is_none_or(|i| a.id == i))
                .map(|a| {
                    json!({
                        "workflow_run_backend_id": a.job.run_backend_id(),
                        "workflow_job_run_backend_id": a.job.job_backend_id(),
                        "database_id": a.id.to_string(),
                        "name": a.name,
                        "size": a.size.to_string(),
                        "created_at": a.created_at.to_string(),
                        "digest": a.digest,
                    })
                })
                .collect();
            Json(json!({"artifacts": artifacts})).into_response()
        }
        "GetSignedArtifactURL" => {
            let found = inner.artifacts.values().find(|a| {
                a.finalized
                    && !a.expired()
                    && a.job.run_id == job.run_id
                    && a.job.job_backend_id() == job_run
                    && a.name == name
            });
            match found.map(|a| a.blob_path.clone()) {
                None => twirp_error("not_found", "artifact not found"),
                Some(path) => {
                    let url = inner.sign(&path, "r", DOWNLOAD_URL_SECONDS);
                    Json(json!({"signed_url": url})).into_response()
                }
            }
        }
        "DeleteArtifact" => {
            // The artifact's own ids, as the client takes them from ListArtifacts.
            let found = inner
                .artifacts
                .values()
                .find(|a| {
                    a.finalized
                        && a.job.run_id == job.run_id
                        && a.job.job_backend_id() == job_run
                        && a.name == name
                })
                .map(|a| a.id);
            match found {
                None => twirp_error("not_found", "artifact not found"),
                Some(id) => {
                    inner.artifacts.remove(&id);
                    Json(json!({"ok": true, "artifact_id": id.to_string()})).into_response()
                }
            }
        }
        other => twirp_error("bad_route", &format!("no handler for method {other:?}")),
    }
}

/// Azure Blob Storage's error: XML, with `x-ms-error-code`.
fn azure_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code>\
         <Message>{message}\nRequestId:00000000-0000-0000-0000-000000000000\nTime:{}</Message>\
         </Error>",
        Timestamp::now()
    );
    (
        status,
        [
            ("content-type", "application/xml"),
            ("x-ms-error-code", code),
            ("x-ms-version", "2025-01-05"),
        ],
        body,
    )
        .into_response()
}

/// Azure's answer to a write (without the `Content-MD5` it also sends: no client here
/// checks it).
fn azure_created() -> Response {
    (
        StatusCode::CREATED,
        [
            ("x-ms-version", "2025-01-05".to_owned()),
            ("x-ms-request-server-encrypted", "true".to_owned()),
            ("etag", format!("\"0x8DC{:012X}\"", super::now())),
            (
                "last-modified",
                jiff::fmt::rfc2822::DateTimePrinter::new()
                    .timestamp_to_rfc9110_string(&Timestamp::now())
                    .unwrap_or_default(),
            ),
        ],
    )
        .into_response()
}

fn blob(
    inner: &mut Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    // Blobs are kept by their decoded path, as signed.
    let key = blob_key(uri.path());
    let query = query(uri.path_and_query().map(|p| p.as_str()).unwrap_or_default());
    let permission = if method == Method::PUT { 'w' } else { 'r' };
    if let Some(reason) = inner.refuse(&key, &query, permission) {
        return azure_error(
            StatusCode::FORBIDDEN,
            "AuthenticationFailed",
            &format!(
                "Server failed to authenticate the request. Make sure the value of \
                 Authorization header is formed correctly including the signature. {reason}"
            ),
        );
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    match (method.as_str(), query.get("comp").map(String::as_str)) {
        ("PUT", None) => {
            if header("x-ms-blob-type").as_deref() != Some("BlockBlob") {
                return azure_error(
                    StatusCode::BAD_REQUEST,
                    "MissingRequiredHeader",
                    "An HTTP header that's mandatory for this request is not specified: x-ms-blob-type.",
                );
            }
            let blob = inner.blobs.entry(key).or_default();
            blob.content = Some(body.to_vec());
            blob.content_type = header("x-ms-blob-content-type").or_else(|| header("content-type"));
            blob.staged.clear();
            azure_created()
        }
        ("PUT", Some("block")) => {
            let Some(id) = query.get("blockid").filter(|id| !id.is_empty()) else {
                return azure_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidQueryParameterValue",
                    "blockid is required.",
                );
            };
            let blob = inner.blobs.entry(key).or_default();
            blob.staged.insert(id.clone(), body.to_vec());
            azure_created()
        }
        ("PUT", Some("blocklist")) => {
            let list = String::from_utf8_lossy(body);
            let blob = inner.blobs.entry(key).or_default();
            let mut content = Vec::new();
            for id in block_ids(&list) {
                match blob.staged.get(&id) {
                    Some(block) => content.extend_from_slice(block),
                    None => {
                        return azure_error(
                            StatusCode::BAD_REQUEST,
                            "InvalidBlockList",
                            "The specified block list is invalid.",
                        )
                    }
                }
            }
            blob.content = Some(content);
            blob.content_type = header("x-ms-blob-content-type");
            blob.staged.clear();
            azure_created()
        }
        ("GET" | "HEAD", None) => match inner
            .blobs
            .get(&key)
            .and_then(|b| b.content.clone().map(|c| (c, b.content_type.clone())))
        {
            None => azure_error(
                StatusCode::NOT_FOUND,
                "BlobNotFound",
                "The specified blob does not exist.",
            ),
            Some((content, content_type)) => {
                let length = content.len();
                let mut response = (
                    StatusCode::OK,
                    [
                        (
                            "content-type",
                            content_type.unwrap_or_else(|| "application/octet-stream".to_owned()),
                        ),
                        ("x-ms-blob-type", "BlockBlob".to_owned()),
                        ("x-ms-version", "2025-01-05".to_owned()),
                    ],
                    if method == Method::HEAD {
                        Vec::new()
                    } else {
                        content
                    },
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert("content-length", length.into());
                response
            }
        },
        _ => azure_error(
            StatusCode::BAD_REQUEST,
            "UnsupportedHttpVerb",
            "The resource doesn't support the specified HTTP verb.",
        ),
    }
}

/// The block ids of a "Put Block List" body, in order (`<Latest>`, `<Uncommitted>` or
/// `<Committed>` entries: here all mean the staged blocks).
fn block_ids(list: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = list;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let Some(end) = rest.find('>') else { break };
        let tag = &rest[..end];
        rest = &rest[end + 1..];
        if matches!(tag, "Latest" | "Uncommitted" | "Committed") {
            if let Some(close) = rest.find("</") {
                ids.push(rest[..close].trim().to_owned());
            }
        }
    }
    ids
}

/// GitHub's error body.
fn github_error(status: StatusCode, message: &str, docs: &str) -> Response {
    (
        status,
        Json(json!({
            "message": message,
            "documentation_url": format!("https://docs.github.com/rest/actions/artifacts{docs}"),
            "status": status.as_u16().to_string(),
        })),
    )
        .into_response()
}

fn artifact_json(base: &str, a: &StoredArtifact) -> Value {
    let url = format!(
        "{base}/repos/{}/actions/artifacts/{}",
        a.job.repository, a.id
    );
    json!({
        "id": a.id,
        "node_id": format!("MDg6QXJ0aWZhY3Q{}", a.id),
        "name": a.name,
        "size_in_bytes": a.size,
        "url": url,
        "archive_download_url": format!("{url}/zip"),
        "expired": a.expired(),
        "created_at": a.created_at.to_string(),
        "updated_at": a.updated_at.to_string(),
        "expires_at": a.expires_at.to_string(),
        "digest": a.digest,
        "workflow_run": {
            "id": a.job.run_id,
            "repository_id": a.repository_id,
            "head_repository_id": a.head_repository_id,
            "head_branch": a.head_branch,
            "head_sha": a.head_sha,
        },
    })
}

fn rest(inner: &mut Inner, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    let Some(token) = bearer(headers) else {
        return github_error(StatusCode::UNAUTHORIZED, "Requires authentication", "");
    };
    let Some(grant) = inner.tokens.get(token).cloned() else {
        return github_error(StatusCode::UNAUTHORIZED, "Bad credentials", "");
    };
    let segments: Vec<String> = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (repository, rest) = match segments.as_slice() {
        ["repos", o, r, "actions", rest @ ..] if method == Method::GET => {
            (format!("{o}/{r}"), rest)
        }
        _ => return github_error(StatusCode::NOT_FOUND, "Not Found", ""),
    };
    // A token that cannot see the repository sees nothing there.
    if !inner.repositories.contains_key(&repository) || grant.repository != repository {
        return github_error(StatusCode::NOT_FOUND, "Not Found", "");
    }
    if !grant.actions_read {
        return github_error(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
            "",
        );
    }
    let query = query(uri.path_and_query().map(|p| p.as_str()).unwrap_or_default());
    let visible = |a: &&StoredArtifact| a.finalized && a.job.repository == repository;
    let find = |id: &str| {
        id.parse::<u64>()
            .ok()
            .and_then(|id| inner.artifacts.get(&id))
            .filter(visible)
    };
    match rest {
        ["artifacts"] | ["runs", _, "artifacts"] => {
            let run = match rest {
                ["runs", run, _] => match run.parse::<u64>() {
                    Ok(run) => Some(run),
                    Err(_) => return github_error(StatusCode::NOT_FOUND, "Not Found", ""),
                },
                _ => None,
            };
            let per_page = query
                .get("per_page")
                .and_then(|p| p.parse::<usize>().ok())
                .unwrap_or(30)
                .clamp(1, 100);
            let page = query
                .get("page")
                .and_then(|p| p.parse::<usize>().ok())
                .unwrap_or(1)
                .max(1);
            let mut matching: Vec<&StoredArtifact> = inner
                .artifacts
                .values()
                .filter(visible)
                .filter(|a| run.is_none_or(|r| a.job.run_id == r))
                .filter(|a| query.get("name").is_none_or(|n| a.name == *n))
                .collect();
            // Newest first, as GitHub lists them.
            matching.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
            if query.get("direction").map(String::as_str) == Some("asc") {
                matching.reverse();
            }
            let total = matching.len();
            let artifacts: Vec<Value> = matching
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|a| artifact_json(&inner.base, a))
                .collect();
            let mut response =
                Json(json!({"total_count": total, "artifacts": artifacts})).into_response();
            let last = total.div_ceil(per_page).max(1);
            if page < last {
                let here = format!("{}{}", inner.base, uri.path());
                let link = |p: usize, rel: &str| {
                    let mut q: Vec<String> = query
                        .iter()
                        .filter(|(k, _)| *k != "page")
                        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC)))
                        .collect();
                    q.push(format!("page={p}"));
                    format!("<{here}?{}>; rel=\"{rel}\"", q.join("&"))
                };
                let value = format!("{}, {}", link(page + 1, "next"), link(last, "last"));
                response
                    .headers_mut()
                    .insert("link", value.parse().unwrap());
            }
            response
        }
        ["artifacts", id] => match find(id) {
            None => github_error(StatusCode::NOT_FOUND, "Not Found", "#get-an-artifact"),
            Some(a) => Json(artifact_json(&inner.base, a)).into_response(),
        },
        ["artifacts", id, format] => {
            let Some(a) = find(id).filter(|_| *format == "zip") else {
                return github_error(StatusCode::NOT_FOUND, "Not Found", "#download-an-artifact");
            };
            if a.expired() {
                return github_error(
                    StatusCode::GONE,
                    "Artifact has expired",
                    "#download-an-artifact",
                );
            }
            let location = inner.sign(&a.blob_path.clone(), "r", DOWNLOAD_URL_SECONDS);
            (StatusCode::FOUND, [("location", location)]).into_response()
        }
        _ => github_error(StatusCode::NOT_FOUND, "Not Found", ""),
    }
}

/// An HTTP answer, from [`send`].
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The headers (names lower-case).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// A header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or `Null`.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One plain-HTTP/1.1 request to 127.0.0.1 (redirects are not followed), for a test to speak
/// the protocol directly: a twirp call with a wrong hash, an unsigned blob URL.
pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut stream = TcpStream::connect(authority).unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&raw[..end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        body.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
    body
}

impl Artifacts {
    /// Calls a twirp method with `token` as the runtime token; the answer's status and JSON.
    pub fn twirp(&self, token: &str, method: &str, request: &Value) -> (u16, Value) {
        let url = format!("{}/twirp/{SERVICE}/{method}", self.api_url());
        let authorization = format!("Bearer {token}");
        let answer = send(
            "POST",
            &url,
            &[
                ("authorization", &authorization),
                ("content-type", "application/json"),
            ],
            request.to_string().as_bytes(),
        );
        (answer.status, answer.json())
    }
}

/// The entries of a zip archive, name and content, in archive order: what a restore finds in
/// a downloaded artifact. Panics on anything but a readable archive.
pub fn zip_entries(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            let mut content = Vec::new();
            file.read_to_end(&mut content).unwrap();
            (file.name().to_owned(), content)
        })
        .collect()
}

/// A zip archive of `entries`, deflated, as `upload-artifact` makes one.
pub fn make_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// The real client, `@actions/artifact` at the version `scripts/tools` pins, driven through
/// `tests/artifact-client/client.mjs` as one job of a run would use it.
pub struct RealClient {
    prefix: PathBuf,
    env: Vec<(String, String)>,
    workspace: tempfile::TempDir,
}

/// What the driver printed: its JSON result, or the error it failed with.
pub type Outcome = Result<Value, String>;

impl RealClient {
    /// The client in a job holding `runtime_token`, pointed at `service`
    /// (`ACTIONS_RESULTS_URL`, `GITHUB_API_URL`).
    pub fn new(service: &Artifacts, runtime_token: &str) -> Self {
        let prefix = std::env::var_os(CLIENT_VAR)
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!(
                    "{CLIENT_VAR} is not set. It names the install prefix of the pinned npm \
                     package @actions/artifact (.tools/artifact-client): run the tests with \
                     scripts/test, which installs it and sets it"
                )
            });
        let workspace = tempfile::tempdir().unwrap();
        let env = vec![
            ("ACTIONS_RUNTIME_TOKEN", runtime_token.to_owned()),
            ("ACTIONS_RESULTS_URL", service.results_url()),
            ("GITHUB_API_URL", service.api_url()),
            // Not GitHub Enterprise Server, which the client refuses: a `.localhost` host
            // counts as GitHub. Nothing is ever sent there.
            ("GITHUB_SERVER_URL", "http://github.localhost".to_owned()),
            ("GITHUB_WORKSPACE", workspace.path().display().to_string()),
            ("ACTIONS_ARTIFACT_UPLOAD_CONCURRENCY", "2".to_owned()),
        ];
        Self {
            prefix,
            env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            workspace,
        }
    }

    /// Also holds `token` as `GITHUB_TOKEN`, for the REST ("findBy") paths.
    pub fn github_token(mut self, token: &str) -> Self {
        self.env.push(("GITHUB_TOKEN".to_owned(), token.to_owned()));
        self
    }

    /// The job's workspace (a temporary directory).
    pub fn workspace(&self) -> &Path {
        self.workspace.path()
    }

    /// Runs the driver with `args`.
    pub fn run(&self, args: &[&str]) -> Outcome {
        let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifact-client/client.mjs");
        let output = Command::new("node")
            .arg(driver)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.workspace.path())
            .env(CLIENT_VAR, &self.prefix)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(self.workspace.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        match output.status.success() {
            true => serde_json::from_slice(&output.stdout).map_err(|e| {
                format!(
                    "the driver printed no JSON ({e}): {}\n{stderr}",
                    String::from_utf8_lossy(&output.stdout)
                )
            }),
            false => Err(stderr),
        }
    }

    /// `uploadArtifact(name, files, dirname(files[0]))`: `{id, size, digest}`.
    pub fn upload(&self, name: &str, files: &[&Path]) -> Outcome {
        let mut args = vec!["upload".to_owned(), name.to_owned()];
        args.extend(files.iter().map(|f| f.display().to_string()));
        self.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `downloadArtifact(id, {path})` through twirp: `{downloadPath, digestMismatch}`.
    pub fn download(&self, id: u64, dir: &Path) -> Outcome {
        self.run(&["download", &id.to_string(), &dir.display().to_string()])
    }

    /// `downloadArtifact(id, {path, findBy})` through the REST API and its 302 (needs
    /// [`Self::github_token`]).
    pub fn download_public(&self, id: u64, dir: &Path, repository: &str, run_id: u64) -> Outcome {
        self.run(&[
            "download",
            &id.to_string(),
            &dir.display().to_string(),
            "--repo",
            repository,
            "--run",
            &run_id.to_string(),
        ])
    }

    /// `listArtifacts()` through twirp: `{artifacts: [{id, name, size, createdAt, digest}]}`.
    pub fn list(&self) -> Outcome {
        self.run(&["list"])
    }

    /// `getArtifact(name)` through twirp: `{artifact: {id, name, size, createdAt, digest}}`.
    pub fn get(&self, name: &str) -> Outcome {
        self.run(&["get", name])
    }

    /// `listArtifacts({findBy})` through the REST API, for one run.
    pub fn list_public(&self, repository: &str, run_id: u64) -> Outcome {
        self.run(&["list", "--repo", repository, "--run", &run_id.to_string()])
    }
}
