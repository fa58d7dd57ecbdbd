//! A local HTTPS stand-in for OpenAI's token endpoint and the ChatGPT backend, enough for the
//! real Codex CLI to refresh its login and finish a turn (what it must answer is in
//! docs/facts.md, "Running the real Codex offline against a local mock"). Refresh tokens are
//! single-use, as OpenAI's are: a used one answers 401 `refresh_token_reused`.
//!
//! It is also the issuer of Codex's device-code sign-in (`codex login --device-auth`, pointed
//! here with Codex's hidden `--experimental_issuer`): a user code is handed out, the token
//! endpoint answers 403 (pending) until the test approves the code as the person would ([`OpenAi::approve`]),
//! 400 once denied, and the authorization code is exchanged at `/oauth/token` for a login of
//! the account [`OpenAi::sign_in_as`] names. Unlike the real issuer it has no browser page and
//! no PKCE check of its own (Codex sends the verifier it was handed back).
//!
//! The model can also ask for a command ([`OpenAi::ask_to_run`]): the first turn answers with
//! a `function_call` of the shell tool Codex offers in that request's `tools` (0.171.0 offers
//! `exec_command`, taking `cmd`), and the turn that carries the `function_call_output` is
//! answered with a final message, the output kept for the test to check. How it differs from
//! the real backend: one fixed call per turn, no reasoning items, no streaming deltas, no
//! websocket (it answers 426, and Codex falls back to SSE). It can revoke the access tokens
//! right after a command ran ([`OpenAi::expire_access_after_tool_call`]), as an access token
//! that expires mid-task: Codex then refreshes between the command and the next turn, which
//! is when a hostile command's output has already been printed.
//!
//! Its tokens are unsigned JWTs (`alg: none`), which Codex accepts, as it verifies no signature;
//! OpenAI signs its tokens and refuses one whose signature does not verify, so a forged claim is
//! worth nothing there, while this server accepts exactly the tokens it issued. Like OpenAI's,
//! the access token and the id token both name the account in their auth claim ([`AUTH_CLAIM`]:
//! `chatgpt_account_id`, `chatgpt_user_id`, `chatgpt_plan_type`); the real ones carry more
//! claims. Tokens are issued for the account [`OpenAi::sign_in_as`] named last, whatever refresh
//! token was presented, where the real issuer keeps each refresh token to its own account.
//!
//! It also knows Codex access tokens (`at-…`, [`OpenAi::issue_codex_access_token`]), which a
//! workspace admin creates and Codex never refreshes: `GET
//! /api/accounts/v1/user-auth-credential/whoami` (Codex's `CODEX_AUTHAPI_BASE_URL`, pointed at
//! [`OpenAi::authapi_url`]) answers with the account of a token it issued and 401 otherwise,
//! and the backend and model accept such a token with that account's `ChatGPT-Account-Id`.
//! How it differs from the real issuer: no expiry or revocation of its own, a fixed
//! `enterprise` plan, and no FedRAMP accounts; `wham/config/bundle` (the workspace's managed
//! policies, which Codex fetches for an enterprise plan) is always `{}`.
//!
//! Like the real backend it refuses an access token past its `exp`, unless a test asks it to
//! accept one ([`OpenAi::accept_expired_access_tokens`]): then what Codex does with such a
//! token on its own side (refresh first, or send it as it is) shows apart from what the
//! server would answer. Every request is recorded ([`OpenAi::requests`]).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::serve::{serve, Server, TestCa};
use super::{jwt, now};

/// The claim under which OpenAI's access and id tokens name the ChatGPT account, user and plan.
const AUTH_CLAIM: &str = "https://api.openai.com/auth";

/// How long the access tokens this server issues are valid: well past a job's six hours, so
/// that a fresh login is one Codex does not refresh during a job (the action then proves no
/// write access); a stale one is already expired.
pub const ACCESS_TOKEN_SECONDS: i64 = 10 * 86_400;

/// How the model endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Responses {
    /// A turn that says "OK".
    Ok,
    /// Always 401, as when the account lost access: Codex refreshes, retries, then fails.
    Unauthorized,
}

/// A set of tokens the server issued.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The id token.
    pub id_token: String,
    /// The access token.
    pub access_token: String,
    /// The refresh token.
    pub refresh_token: String,
}

/// A device-code sign-in in progress.
#[derive(Debug, Clone)]
struct DeviceAuth {
    device_auth_id: String,
    user_code: String,
    state: DeviceState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DeviceState {
    Pending,
    Approved,
    Denied,
    Exchanged,
}

struct Inner {
    account_id: String,
    email: String,
    devices: Vec<DeviceAuth>,
    /// A command the model asks Codex to run, once per turn.
    tool_command: Option<String>,
    /// The names of the tools Codex offered in its last model request.
    offered_tools: Vec<String>,
    /// The `function_call_output`s Codex sent back.
    tool_outputs: Vec<String>,
    /// Answer the turn that carries a command's output with 401 once, every access token
    /// revoked, so that Codex refreshes the login in the middle of its task.
    expire_after_tool: bool,
    /// Accept an issued access token whose `exp` is past.
    accept_expired: bool,
    /// Hold every model request that carries a command's output until released.
    hold_outputs: bool,
    /// How many such requests are held now.
    held: usize,
    /// `METHOD path` of every request, in order.
    requests: Vec<String>,
    /// The JSON body of every model request (`POST …/responses`) answered, in order.
    model_requests: Vec<Value>,
    responses: Responses,
    live_refresh: BTreeSet<String>,
    used_refresh: BTreeSet<String>,
    live_access: BTreeSet<String>,
    issued: Vec<Issued>,
    /// The Codex access tokens (`at-…`) issued, valid until the test ends.
    codex_access_tokens: BTreeSet<String>,
    log: Vec<String>,
    counter: u64,
}

/// The running server.
pub struct OpenAi {
    inner: Arc<Mutex<Inner>>,
    ca: TestCa,
    server: Server,
}

impl OpenAi {
    /// Starts the server.
    pub fn start(responses: Responses) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            account_id: "acc-11111111-2222-3333-4444-555555555555".to_owned(),
            email: "dev@example.test".to_owned(),
            devices: Vec::new(),
            tool_command: None,
            offered_tools: Vec::new(),
            tool_outputs: Vec::new(),
            expire_after_tool: false,
            accept_expired: false,
            hold_outputs: false,
            held: 0,
            requests: Vec::new(),
            model_requests: Vec::new(),
            responses,
            live_refresh: BTreeSet::new(),
            used_refresh: BTreeSet::new(),
            live_access: BTreeSet::new(),
            issued: Vec::new(),
            codex_access_tokens: BTreeSet::new(),
            log: Vec::new(),
            counter: 0,
        }));
        let ca = TestCa::new();
        let router = Router::new().fallback(handle).with_state(inner.clone());
        let server = serve(router, Some(&ca));
        Self { inner, ca, server }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// The CA certificate that signed the server's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca.ca_pem
    }

    /// The server's origin.
    pub fn origin(&self) -> String {
        format!("https://127.0.0.1:{}", self.server.addr.port())
    }

    /// The `config.toml` that points Codex at this server. The model is named: with the
    /// server's empty model list, Codex 0.171.0's default model gets no tools, while
    /// `gpt-5.1-codex` gets its shell tool (`exec_command`), as a real ChatGPT login does.
    pub fn codex_config(&self) -> String {
        let origin = self.origin();
        format!(
            "model = \"gpt-5.1-codex\"\n\
             openai_base_url = \"{origin}/backend-api/codex\"\n\
             chatgpt_base_url = \"{origin}/backend-api/\"\n\
             cli_auth_credentials_store = \"file\"\n\
             \n[analytics]\nenabled = false\n"
        )
    }

    /// The URL for `CODEX_AUTHAPI_BASE_URL`, where Codex checks a Codex access token.
    pub fn authapi_url(&self) -> String {
        format!("{}/api/accounts", self.origin())
    }

    /// A new Codex access token of the account, as a workspace admin would create one.
    pub fn issue_codex_access_token(&self) -> String {
        let mut inner = self.lock();
        inner.counter += 1;
        let token = format!("at-{:016x}{:04}", rand_u64(), inner.counter);
        inner.codex_access_tokens.insert(token.clone());
        token
    }

    /// The URL for `CODEX_REFRESH_TOKEN_URL_OVERRIDE`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.origin())
    }

    /// The ChatGPT account id of the login.
    pub fn account_id(&self) -> String {
        self.lock().account_id.clone()
    }

    /// A seed auth.json whose refresh token is live. `stale` makes the access token expired,
    /// so Codex refreshes at start-up; otherwise it is valid for [`ACCESS_TOKEN_SECONDS`].
    pub fn seed(&self, stale: bool) -> Value {
        let mut inner = self.lock();
        let exp = if stale {
            now() - 3600
        } else {
            now() + ACCESS_TOKEN_SECONDS
        };
        let tokens = inner.issue(exp);
        inner.auth_json(&tokens, now() - 86_400)
    }

    /// A seed whose refresh token was already used (another job rotated it).
    pub fn seed_already_used(&self) -> Value {
        let mut inner = self.lock();
        let tokens = inner.issue(now() - 3600);
        inner.live_refresh.remove(&tokens.refresh_token);
        inner.used_refresh.insert(tokens.refresh_token.clone());
        inner.auth_json(&tokens, now() - 86_400)
    }

    /// The refresh token issued last (the only live one after a rotation).
    pub fn latest(&self) -> Issued {
        self.lock().issued.last().cloned().unwrap()
    }

    /// Every token ever issued: none may appear in a log.
    pub fn all_token_values(&self) -> Vec<String> {
        self.lock()
            .issued
            .iter()
            .flat_map(|t| {
                [
                    t.id_token.clone(),
                    t.access_token.clone(),
                    t.refresh_token.clone(),
                ]
            })
            .collect()
    }

    /// The issuer URL for Codex's `--experimental_issuer`.
    pub fn issuer(&self) -> String {
        self.origin()
    }

    /// Sign-ins approved from now on are of this account.
    pub fn sign_in_as(&self, email: &str, account_id: &str) {
        let mut inner = self.lock();
        inner.email = email.to_owned();
        inner.account_id = account_id.to_owned();
    }

    /// The user codes handed out and not yet approved or denied.
    pub fn pending_codes(&self) -> Vec<String> {
        self.lock()
            .devices
            .iter()
            .filter(|d| d.state == DeviceState::Pending)
            .map(|d| d.user_code.clone())
            .collect()
    }

    /// Approves the sign-in with `user_code`, as the person does in the browser.
    pub fn approve(&self, user_code: &str) {
        self.decide(user_code, DeviceState::Approved);
    }

    /// Denies the sign-in with `user_code`.
    pub fn deny(&self, user_code: &str) {
        self.decide(user_code, DeviceState::Denied);
    }

    fn decide(&self, user_code: &str, state: DeviceState) {
        let mut inner = self.lock();
        let device = inner
            .devices
            .iter_mut()
            .find(|d| d.user_code == user_code)
            .unwrap_or_else(|| panic!("no sign-in with code {user_code}"));
        device.state = state;
    }

    /// Makes the model ask Codex to run `command` (one shell call per turn), then finish.
    pub fn ask_to_run(&self, command: &str) {
        self.lock().tool_command = Some(command.to_owned());
    }

    /// Once the command the model asked for has run, revokes every access token and answers
    /// the next model request 401: Codex refreshes the login mid-task (after whatever the
    /// command printed) and retries with the new access token.
    pub fn expire_access_after_tool_call(&self) {
        self.lock().expire_after_tool = true;
    }

    /// From now on, accepts an access token the server issued even when its `exp` is past,
    /// which the real backend refuses: a test can then see whether Codex refreshes such a
    /// token before using it, apart from how the server would answer it.
    pub fn accept_expired_access_tokens(&self) {
        self.lock().accept_expired = true;
    }

    /// From now on, holds every model request that carries a command's output (Codex's turn
    /// after the command ran) until [`OpenAi::release_tool_outputs`]: a test can act while
    /// Codex waits between a command and the next turn. The request is recorded once released.
    pub fn hold_tool_outputs(&self) {
        self.lock().hold_outputs = true;
    }

    /// Lets the held requests through, and holds no more.
    pub fn release_tool_outputs(&self) {
        self.lock().hold_outputs = false;
    }

    /// How many requests [`OpenAi::hold_tool_outputs`] holds now.
    pub fn held(&self) -> usize {
        self.lock().held
    }

    /// `METHOD path` of every request the server received, in order (bodies and headers,
    /// which hold tokens, are left out).
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// The JSON body of every model request answered (the prompt, model, reasoning, text
    /// format, instructions; the login is in the headers, not here).
    pub fn model_requests(&self) -> Vec<Value> {
        self.lock().model_requests.clone()
    }

    /// The tool names Codex offered in its last model request.
    pub fn offered_tools(&self) -> Vec<String> {
        self.lock().offered_tools.clone()
    }

    /// What Codex reported back for each command the model asked for.
    pub fn tool_outputs(&self) -> Vec<String> {
        self.lock().tool_outputs.clone()
    }

    /// How many refreshes succeeded.
    pub fn rotations(&self) -> usize {
        self.lock()
            .log
            .iter()
            .filter(|l| l.starts_with("refresh ok"))
            .count()
    }

    /// The request log.
    pub fn log(&self) -> Vec<String> {
        self.lock().log.clone()
    }
}

impl Inner {
    fn issue(&mut self, exp: i64) -> Issued {
        self.counter += 1;
        let n = self.counter;
        let account = self.account_id.clone();
        let id_token = jwt(&json!({
            "iss": "https://auth.example.test",
            "email": self.email,
            "exp": now() + 3600,
            AUTH_CLAIM: {
                "chatgpt_plan_type": "pro",
                "chatgpt_user_id": "user-1",
                "chatgpt_account_id": account,
            },
            "n": n,
        }));
        // Both tokens name the account, as OpenAI's do: codex-auth reads which account a login
        // is of from these claims, not from the plain `tokens.account_id`.
        let access_token = jwt(&json!({
            "exp": exp,
            "sub": "user-1",
            AUTH_CLAIM: {
                "chatgpt_account_id": account,
                "chatgpt_user_id": "user-1",
                "chatgpt_plan_type": "pro",
            },
            "n": n,
        }));
        let refresh_token = format!("rt_{n}_{:016x}", rand_u64());
        self.live_refresh.insert(refresh_token.clone());
        self.live_access.insert(access_token.clone());
        let issued = Issued {
            id_token,
            access_token,
            refresh_token,
        };
        self.issued.push(issued.clone());
        issued
    }

    fn auth_json(&self, tokens: &Issued, last_refresh: i64) -> Value {
        json!({
            "auth_mode": "chatgpt",
            "OPENAI_API_KEY": null,
            "tokens": {
                "id_token": tokens.id_token,
                "access_token": tokens.access_token,
                "refresh_token": tokens.refresh_token,
                "account_id": self.account_id,
            },
            "last_refresh": jiff::Timestamp::from_second(last_refresh).unwrap().to_string(),
        })
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i64(now());
    hasher.finish()
}

/// Whether a bearer token is one the server issued and it has not expired, as the real
/// backend checks.
fn authorized(inner: &Inner, headers: &HeaderMap) -> bool {
    let Some(token) = bearer(headers) else {
        return false;
    };
    // A Codex access token goes with its account's id, from the token check.
    if inner.codex_access_tokens.contains(&token) {
        return headers
            .get("chatgpt-account-id")
            .is_some_and(|id| id.as_bytes() == inner.account_id.as_bytes());
    }
    let exp = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|c| c["exp"].as_i64())
        .unwrap_or(0);
    inner.live_access.contains(&token) && (inner.accept_expired || exp > now())
}

/// A form-encoded body.
fn url_form(body: &str) -> std::collections::BTreeMap<String, String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

/// A model request's JSON body, which Codex may send zstd-compressed.
fn request_json(headers: &HeaderMap, body: &[u8]) -> Value {
    let zstd = headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("zstd"));
    let bytes = match zstd {
        true => zstd::decode_all(body).unwrap_or_default(),
        false => body.to_vec(),
    };
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// The model's answer to one request: the final message, or (once per turn, when a command
/// was asked for) a call of the shell tool Codex offered.
fn model_turn(inner: &mut Inner, request: &Value) -> Value {
    let tools: Vec<&Value> = request["tools"]
        .as_array()
        .map(|t| t.iter().collect())
        .unwrap_or_default();
    inner.offered_tools = tools
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_owned))
        .collect();
    let input = request["input"].as_array().cloned().unwrap_or_default();
    let outputs: Vec<String> = input
        .iter()
        .filter(|i| i["type"] == "function_call_output")
        .map(|i| match &i["output"] {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect();
    let message = |text: &str| {
        json!({"type": "message", "role": "assistant", "id": "msg_1",
               "content": [{"type": "output_text", "text": text}]})
    };
    if !outputs.is_empty() {
        inner.tool_outputs.extend(outputs);
        return message("Done.");
    }
    let Some(command) = inner.tool_command.clone() else {
        return message("OK");
    };
    // The shell tool as offered: `exec_command` takes `cmd`, an older `shell` takes `command`.
    let offered = |name: &str| tools.iter().any(|t| t["name"] == name);
    let (name, arguments) = if offered("exec_command") {
        ("exec_command", json!({"cmd": command}))
    } else if offered("shell") {
        ("shell", json!({"command": ["bash", "-lc", command]}))
    } else {
        return message("no shell tool was offered");
    };
    json!({"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": name,
           "arguments": arguments.to_string()})
}

/// Waits while [`OpenAi::hold_tool_outputs`] holds, counted in `held` meanwhile.
async fn hold(inner: &Mutex<Inner>) {
    let mut counted = false;
    loop {
        {
            let mut inner = inner.lock().unwrap();
            if !inner.hold_outputs {
                if counted {
                    inner.held -= 1;
                }
                return;
            }
            if !counted {
                inner.held += 1;
                counted = true;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_owned)
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::POST
        && uri.path() == "/backend-api/codex/responses"
        && request_json(&headers, &body)["input"]
            .as_array()
            .is_some_and(|input| input.iter().any(|i| i["type"] == "function_call_output"))
    {
        hold(&inner).await;
    }
    let mut inner = inner.lock().unwrap();
    let path = uri.path().to_owned();
    inner.requests.push(format!("{method} {path}"));
    match (&method, path.as_str()) {
        (&Method::POST, "/api/accounts/deviceauth/usercode") => {
            let n = inner.devices.len() + 1;
            let device = DeviceAuth {
                device_auth_id: format!("deviceauth_{n}"),
                user_code: format!("CODE-{n:04}"),
                state: DeviceState::Pending,
            };
            inner
                .log
                .push(format!("device usercode {}", device.user_code));
            let answer = json!({
                "device_auth_id": device.device_auth_id,
                "user_code": device.user_code,
                // A string, as the real issuer sends it.
                "interval": "1",
            });
            inner.devices.push(device);
            Json(answer).into_response()
        }
        (&Method::POST, "/api/accounts/deviceauth/token") => {
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let id = request["device_auth_id"].as_str().unwrap_or_default();
            let device = inner
                .devices
                .iter_mut()
                .find(|d| d.device_auth_id == id && request["user_code"] == d.user_code.as_str());
            match device.map(|d| (d.state, d)) {
                Some((DeviceState::Pending, _)) => StatusCode::FORBIDDEN.into_response(),
                Some((DeviceState::Approved, device)) => {
                    device.state = DeviceState::Exchanged;
                    Json(json!({
                        "authorization_code": format!("authcode_{id}"),
                        "code_challenge": "challenge",
                        "code_verifier": "verifier",
                    }))
                    .into_response()
                }
                _ => (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": "access_denied"})),
                )
                    .into_response(),
            }
        }
        (&Method::POST, "/oauth/token")
            if headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded")) =>
        {
            let form: std::collections::BTreeMap<String, String> =
                url_form(&String::from_utf8_lossy(&body));
            let exchanged = form.get("grant_type").map(String::as_str)
                == Some("authorization_code")
                && form.get("code").is_some_and(|code| {
                    inner.devices.iter().any(|d| {
                        d.state == DeviceState::Exchanged
                            && *code == format!("authcode_{}", d.device_auth_id)
                    })
                });
            if !exchanged {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": "invalid_grant"})),
                )
                    .into_response();
            }
            let fresh = inner.issue(now() + ACCESS_TOKEN_SECONDS);
            inner.log.push("device login ok".to_owned());
            Json(json!({
                "id_token": fresh.id_token,
                "access_token": fresh.access_token,
                "refresh_token": fresh.refresh_token,
            }))
            .into_response()
        }
        (&Method::POST, "/oauth/token") => {
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let token = request["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let reason = request["refresh_reason"]
                .as_str()
                .unwrap_or("none")
                .to_owned();
            if request["grant_type"] != "refresh_token" {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": "unsupported_grant_type"})),
                )
                    .into_response();
            }
            let code = if inner.live_refresh.remove(&token) {
                inner.used_refresh.insert(token);
                let fresh = inner.issue(now() + ACCESS_TOKEN_SECONDS);
                inner.log.push(format!("refresh ok ({reason})"));
                return Json(json!({
                    "id_token": fresh.id_token,
                    "access_token": fresh.access_token,
                    "refresh_token": fresh.refresh_token,
                }))
                .into_response();
            } else if inner.used_refresh.contains(&token) {
                "refresh_token_reused"
            } else {
                "refresh_token_invalidated"
            };
            inner.log.push(format!("refresh failed {code} ({reason})"));
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": {"code": code, "message": "refresh failed", "type": "invalid_request_error"}})),
            )
                .into_response()
        }
        (&Method::GET, "/api/accounts/v1/user-auth-credential/whoami") => {
            let known = bearer(&headers).is_some_and(|t| inner.codex_access_tokens.contains(&t));
            inner
                .log
                .push(format!("whoami {}", if known { "ok" } else { "refused" }));
            if !known {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            Json(json!({
                "email": inner.email,
                "chatgpt_user_id": "user-codex-access-token",
                "chatgpt_account_id": inner.account_id,
                "chatgpt_plan_type": "enterprise",
                "chatgpt_account_is_fedramp": false,
            }))
            .into_response()
        }
        (&Method::GET, "/backend-api/wham/config/bundle") => {
            if !authorized(&inner, &headers) {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            Json(json!({})).into_response()
        }
        (&Method::GET, "/backend-api/wham/accounts/check") => {
            inner.log.push("accounts/check".to_owned());
            if !authorized(&inner, &headers) {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            let id = inner.account_id.clone();
            Json(json!({
                "accounts": [{
                    "id": id,
                    "plan_type": "pro",
                    "workspace_backend_origin": "NO_CONSTRAINT",
                    "account_routing_override": "NO_CONSTRAINT",
                }],
                "account_ordering": [id],
                "default_account_id": id,
            }))
            .into_response()
        }
        (&Method::GET, "/backend-api/codex/responses") => {
            // The websocket upgrade: refusing it makes Codex fall back to SSE at once.
            StatusCode::UPGRADE_REQUIRED.into_response()
        }
        (&Method::POST, "/backend-api/codex/responses") => {
            inner.log.push("responses".to_owned());
            if inner.responses == Responses::Unauthorized || !authorized(&inner, &headers) {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": {"message": "Unauthorized", "code": "invalid_api_key"}})),
                )
                    .into_response();
            }
            let request = request_json(&headers, &body);
            let carries_output = request["input"]
                .as_array()
                .is_some_and(|input| input.iter().any(|i| i["type"] == "function_call_output"));
            if inner.expire_after_tool && carries_output {
                inner.expire_after_tool = false;
                inner.live_access.clear();
                inner.log.push("access revoked".to_owned());
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": {"message": "Unauthorized", "code": "token_expired"}})),
                )
                    .into_response();
            }
            inner.model_requests.push(request.clone());
            let item = model_turn(&mut inner, &request);
            let events = [
                json!({"type": "response.created", "response": {"id": "resp_1"}}),
                json!({"type": "response.output_item.done", "item": item}),
                json!({"type": "response.completed", "response": {"id": "resp_1", "usage": {
                    "input_tokens": 10, "output_tokens": 1, "total_tokens": 11,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens_details": {"reasoning_tokens": 0}}}}),
            ];
            let body: String = events
                .iter()
                .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or("")))
                .collect();
            ([("content-type", "text/event-stream")], body).into_response()
        }
        (&Method::GET, "/backend-api/codex/models") => Json(json!({"models": []})).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
