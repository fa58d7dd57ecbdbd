//! Codex's `auth.json`: decoding, validation, and the facts the summary shows.
//!
//! The checks mirror what Codex itself needs to use and refresh a ChatGPT login (see
//! `codex-rs/login/src/auth/storage.rs` in openai/codex): an `id_token` that decodes as a JWT,
//! an `account_id` (without it Codex never refreshes) and a `last_refresh` timestamp (without it
//! Codex sends no `Authorization` header). Error messages name the check and never the value.
//!
//! A login is either full ([`Kind::Full`]: it can be refreshed) or an access-only copy of one
//! ([`Kind::AccessOnly`], auth mode [`ACCESS_ONLY_MODE`] with an empty refresh token), which
//! Codex uses as it is and never refreshes (docs/facts.md, "Access-only logins").

use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::redacted::Redacted;

/// A GitHub secret holds at most 48 KB, so neither the input nor the file written back may be
/// larger. <https://docs.github.com/en/actions/reference/limits>
pub const MAX_BYTES: usize = 48 * 1024;

/// The largest `auth.json` file read from disk: Codex writes it pretty-printed, larger than
/// its compact form, and the login a 48 KB secret holds is far smaller.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// The `auth_mode` of an access-only copy: Codex sends its access token and never tries to
/// refresh it (docs/facts.md, "Access-only logins").
pub const ACCESS_ONLY_MODE: &str = "chatgptAuthTokens";

/// What kind of ChatGPT login an [`AuthFile`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A login Codex can refresh: `auth_mode` `chatgpt` (or none) and a refresh token. Whoever
    /// holds it can rotate it, and so lock every other holder out.
    Full,
    /// An access-only copy ([`AuthFile::to_access_only`]): `auth_mode` `chatgptAuthTokens` and
    /// an empty refresh token. Codex uses its access token until that expires and never
    /// refreshes it, so any number of jobs may use one copy at once.
    AccessOnly,
}

/// Why a value is not a usable Codex ChatGPT login. The messages never contain the value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// Nothing but whitespace.
    #[error("it is empty")]
    Empty,
    /// Larger than a secret can be.
    #[error("it is {0} bytes, more than the 48 KB (49152 bytes) a GitHub secret can hold")]
    TooLarge(usize),
    /// A UTF-8 byte-order mark in front of the JSON.
    #[error("it starts with a UTF-8 byte-order mark; save the file without a BOM")]
    ByteOrderMark,
    /// Bytes that are not UTF-8.
    #[error("it is not UTF-8 text")]
    NotUtf8,
    /// Does not start with `{` and does not decode as base64.
    #[error("it is neither a JSON object (it does not start with `{{`) nor base64")]
    NeitherJsonNorBase64,
    /// Base64 that decodes to something other than a JSON object.
    #[error("it is base64, but what it decodes to is not a JSON object")]
    Base64NotJson,
    /// JSON syntax error.
    #[error("it is not valid JSON: {0}")]
    Syntax(String),
    /// Valid JSON, but not an object.
    #[error("it is a JSON {0}, not an object")]
    NotObject(&'static str),
    /// An API-key login: nothing to refresh, and it would spend API credits instead.
    #[error(
        "it is an API-key login (auth_mode \"apikey\" or only OPENAI_API_KEY); codex-auth keeps a \
         ChatGPT login alive, and an API key needs no refreshing: pass it to Codex as a secret instead"
    )]
    ApiKeyLogin,
    /// A Codex access token (`at-…`), or the auth.json `codex login --with-access-token`
    /// writes from one (`personal_access_token`, no `tokens`): nothing rotates.
    #[error(
        "it is a Codex access token (`at-…`), or a login Codex made from one with `codex login \
         --with-access-token`: it never rotates, so there is nothing to keep fresh or store; pass \
         the token itself as input `codex-access-token` (a secret holding the `at-…` value)"
    )]
    CodexAccessToken,
    /// A login kind Codex knows but this tool cannot keep alive.
    #[error("auth_mode \"{0}\" is not a ChatGPT login; only \"chatgpt\" logins can be kept fresh")]
    UnsupportedMode(&'static str),
    /// An `auth_mode` Codex itself would refuse to parse.
    #[error("auth_mode has a value Codex does not know; expected \"chatgpt\"")]
    UnknownMode,
    /// A field of the wrong JSON type.
    #[error("`{field}` is {found}, expected {expected}")]
    WrongType {
        /// The field's path, such as `tokens.access_token`.
        field: &'static str,
        /// The JSON type found.
        found: &'static str,
        /// The JSON type needed.
        expected: &'static str,
    },
    /// A required field that is absent, null or empty.
    #[error("`{0}` is missing or empty")]
    Missing(&'static str),
    /// `tokens.id_token` is not shaped like a JWT.
    #[error("`tokens.id_token` is not a JWT: it needs three non-empty parts separated by dots")]
    IdTokenShape,
    /// The JWT payload of `tokens.id_token` does not decode.
    #[error("the payload of `tokens.id_token` is not base64url-encoded JSON")]
    IdTokenPayload,
    /// The same key twice in one object: JSON parsers disagree on which one wins.
    #[error(
        "it has a duplicate key at line {line} column {column}: JSON readers disagree on which \
         value wins, so the file is ambiguous"
    )]
    DuplicateKey {
        /// Line of the second occurrence.
        line: usize,
        /// Column of the second occurrence.
        column: usize,
    },
    /// `last_refresh` lies in the future.
    #[error(
        "`last_refresh` is more than an hour in the future; the file was edited or made on a \
         machine with a wrong clock"
    )]
    LastRefreshInFuture,
    /// `last_refresh` is not a timestamp.
    #[error("`last_refresh` is not an RFC 3339 timestamp such as 2026-01-31T12:00:00Z")]
    LastRefreshFormat,
    /// `auth_mode` `chatgptAuthTokens` with a refresh token: half a full login, half a copy.
    #[error(
        "auth_mode \"chatgptAuthTokens\" marks an access-only copy, but `tokens.refresh_token` \
         is not empty, so it is neither a full login nor a copy: for the full login, set auth_mode \
         to \"chatgpt\"; for a copy, make it again from the full login (the keeper's input \
         `access-secret-name` writes one)"
    )]
    RefreshTokenInCopy,
}

/// The token part of `auth.json`.
#[derive(Clone, Serialize)]
pub struct Tokens {
    /// The OpenID id token (a JWT whose claims name the account and plan).
    pub id_token: Redacted,
    /// The bearer token for the ChatGPT backend.
    pub access_token: Redacted,
    /// The single-use token Codex trades for new tokens.
    pub refresh_token: Redacted,
    /// The ChatGPT account (workspace) id.
    pub account_id: String,
    /// Fields this tool does not know, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A validated ChatGPT-mode `auth.json`, full or an access-only copy ([`Kind`]). Unknown
/// fields are kept for the write-back.
#[derive(Clone, Serialize)]
pub struct AuthFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_mode: Option<Value>,
    #[serde(rename = "OPENAI_API_KEY", skip_serializing_if = "Option::is_none")]
    openai_api_key: Option<Value>,
    tokens: Tokens,
    last_refresh: String,
    #[serde(flatten)]
    extra: Map<String, Value>,
    #[serde(skip)]
    refreshed_at: Timestamp,
    /// Follows `auth_mode`; an access-only copy's refresh token is empty.
    #[serde(skip)]
    kind: Kind,
}

impl fmt::Debug for AuthFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthFile")
            .field("kind", &self.kind)
            .field("account_id", &self.tokens.account_id)
            .field("last_refresh", &self.last_refresh)
            .finish_non_exhaustive()
    }
}

/// The claim under which OpenAI's tokens name the ChatGPT account, user and plan.
pub const AUTH_CLAIM: &str = "https://api.openai.com/auth";

/// The ChatGPT account a login is of, as its tokens name it ([`AuthFile::account`]).
///
/// The plain `tokens.account_id` field proves nothing: anyone who writes auth.json can type
/// the restored account's id into a login of another account. The tokens' claims can be forged
/// as well (Codex verifies no signature), but OpenAI checks its tokens' signatures, so a login
/// whose claims were forged is one OpenAI refuses: whoever has a login that works has the
/// claims of its own account. The ids are the claims' values, or digests of them
/// ([`Account::map_ids`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Account {
    /// The account every token that carries a `chatgpt_account_id` claim names: the access
    /// token's, the id token's, or both (then they agree).
    Claimed(String),
    /// No token carries the claim: the plain `tokens.account_id`. OpenAI's access tokens always
    /// carry it, so only a login that came from the store (a seed made by hand) is like this,
    /// never one OpenAI just issued.
    Unclaimed(String),
    /// The access token and the id token name different accounts: tokens of two logins put
    /// together, or a forged claim. Such a login is of no account.
    Mixed {
        /// The account the access token names (the one OpenAI's backend serves).
        access: String,
        /// The account the id token names.
        id: String,
    },
}

impl Account {
    /// Whether `other` is a login of this account, where this one is the trusted side (the
    /// login restored, stored or expected). A login its tokens name an account of admits only
    /// a login whose tokens name the same one; a login with no claim, known only by its plain
    /// field, admits the same id, claimed or not (OpenAI's refresh adds the claims). A mixed
    /// login admits nothing and is admitted by nothing.
    pub fn admits(&self, other: &Account) -> bool {
        match (self, other) {
            (Account::Claimed(trusted), Account::Claimed(other)) => trusted == other,
            (Account::Unclaimed(trusted), Account::Claimed(other) | Account::Unclaimed(other)) => {
                trusted == other
            }
            _ => false,
        }
    }

    /// The same account with every id passed through `f` (a digest, for the handoff).
    pub fn map_ids(&self, f: impl Fn(&str) -> String) -> Account {
        match self {
            Account::Claimed(id) => Account::Claimed(f(id)),
            Account::Unclaimed(id) => Account::Unclaimed(f(id)),
            Account::Mixed { access, id } => Account::Mixed {
                access: f(access),
                id: f(id),
            },
        }
    }
}

/// Facts read from the tokens' JWT claims, for the summary and `inspect`. None is secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// `chatgpt_plan_type` from the id token, such as `plus` or `pro`.
    pub plan: Option<String>,
    /// The access token's `exp`, when it has one.
    pub access_expires_at: Option<Timestamp>,
    /// The account's email, from the id token (`email`, or the profile claim's).
    pub email: Option<String>,
}

impl Claims {
    /// The email as the action shows it in a log: the first character of the name, then
    /// `***` (`j***@example.com`); `unknown` without one.
    pub fn masked_email(&self) -> String {
        let Some(email) = &self.email else {
            return "unknown".to_owned();
        };
        match email.split_once('@') {
            Some((name, domain)) => {
                let first: String = name.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => "***".to_owned(),
        }
    }
}

impl AuthFile {
    /// Decodes a secret's value given as bytes (a file, standard input).
    pub fn decode_bytes(input: &[u8]) -> Result<Self, AuthError> {
        if input.len() > MAX_BYTES {
            return Err(AuthError::TooLarge(input.len()));
        }
        if input.starts_with(b"\xEF\xBB\xBF") {
            return Err(AuthError::ByteOrderMark);
        }
        Self::decode(std::str::from_utf8(input).map_err(|_| AuthError::NotUtf8)?)
    }

    /// Decodes a secret's value: compact or pretty JSON, or base64 of it.
    pub fn decode(input: &str) -> Result<Self, AuthError> {
        if input.len() > MAX_BYTES {
            return Err(AuthError::TooLarge(input.len()));
        }
        if input.starts_with('\u{feff}') {
            return Err(AuthError::ByteOrderMark);
        }
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(AuthError::Empty);
        }
        if trimmed.starts_with('{') {
            return Self::parse(trimmed.as_bytes());
        }
        // A Codex access token itself, never base64 of a login.
        if trimmed.starts_with("at-") {
            return Err(AuthError::CodexAccessToken);
        }
        // JSON, but not an object (`[]`, `"…"`, `null`, a number).
        if let Ok(Strict(value)) = serde_json::from_str(trimmed) {
            return Self::from_value(value);
        }
        let compact: String = trimmed.split_ascii_whitespace().collect();
        let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(&compact).ok())
            .ok_or(AuthError::NeitherJsonNorBase64)?;
        let bytes = zeroize::Zeroizing::new(bytes);
        match std::str::from_utf8(&bytes) {
            Ok(text) if text.trim_start().starts_with('{') => Self::parse(text.trim().as_bytes()),
            _ => Err(AuthError::Base64NotJson),
        }
    }

    /// Parses the bytes of an `auth.json` value or file of at most 48 KB.
    pub fn parse(bytes: &[u8]) -> Result<Self, AuthError> {
        if bytes.len() > MAX_BYTES {
            return Err(AuthError::TooLarge(bytes.len()));
        }
        Self::parse_file(bytes)
    }

    /// Parses an `auth.json` file on disk, which Codex writes pretty-printed: it may be larger
    /// than its compact form, which is what must fit in a secret (checked at write time).
    pub fn parse_file(bytes: &[u8]) -> Result<Self, AuthError> {
        if bytes.len() > MAX_FILE_BYTES {
            return Err(AuthError::TooLarge(bytes.len()));
        }
        if bytes.starts_with(b"\xEF\xBB\xBF") {
            return Err(AuthError::ByteOrderMark);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| AuthError::NotUtf8)?;
        if text.trim().is_empty() {
            return Err(AuthError::Empty);
        }
        let Strict(value) = serde_json::from_str(text).map_err(describe_syntax_error)?;
        Self::from_value(value)
    }

    fn from_value(value: Value) -> Result<Self, AuthError> {
        let Value::Object(mut root) = value else {
            let kind = json_kind(&value);
            return Err(AuthError::NotObject(
                kind.trim_start_matches("an ").trim_start_matches("a "),
            ));
        };
        let auth_mode = root.remove("auth_mode").filter(|v| !v.is_null());
        let openai_api_key = root.remove("OPENAI_API_KEY");
        let has_api_key = matches!(&openai_api_key, Some(Value::String(k)) if !k.is_empty());
        let kind = match &auth_mode {
            None => Kind::Full,
            Some(Value::String(mode)) => match mode.as_str() {
                "chatgpt" => Kind::Full,
                ACCESS_ONLY_MODE => Kind::AccessOnly,
                "apikey" => return Err(AuthError::ApiKeyLogin),
                "agentIdentity" => return Err(AuthError::UnsupportedMode("agentIdentity")),
                _ => return Err(AuthError::UnknownMode),
            },
            Some(other) => {
                return Err(AuthError::WrongType {
                    field: "auth_mode",
                    found: json_kind(other),
                    expected: "a string",
                })
            }
        };
        let access_token =
            matches!(root.get("personal_access_token"), Some(Value::String(t)) if !t.is_empty());
        let tokens = match root.remove("tokens") {
            None | Some(Value::Null) if access_token => return Err(AuthError::CodexAccessToken),
            None | Some(Value::Null) if has_api_key => return Err(AuthError::ApiKeyLogin),
            None | Some(Value::Null) => return Err(AuthError::Missing("tokens")),
            Some(Value::Object(tokens)) => tokens,
            Some(other) => {
                return Err(AuthError::WrongType {
                    field: "tokens",
                    found: json_kind(&other),
                    expected: "an object",
                })
            }
        };
        let tokens = Tokens::from_map(tokens, kind)?;
        let last_refresh = take_string(&mut root, "last_refresh", "last_refresh")?;
        let refreshed_at: Timestamp = last_refresh
            .parse()
            .map_err(|_| AuthError::LastRefreshFormat)?;
        // An hour of clock skew is tolerated; a file from the future would win every
        // "which login is newer" comparison.
        if refreshed_at.as_second() > Timestamp::now().as_second() + 3600 {
            return Err(AuthError::LastRefreshInFuture);
        }
        Ok(Self {
            auth_mode,
            openai_api_key,
            tokens,
            last_refresh,
            extra: root,
            refreshed_at,
            kind,
        })
    }

    /// Whether this is a full login or an access-only copy.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// An access-only copy of this login: `auth_mode` [`ACCESS_ONLY_MODE`], an empty refresh
    /// token, a null `OPENAI_API_KEY`, no token fields beyond the known ones, and every other
    /// field (unknown top-level ones included) as it is here. A copy of a copy is the same copy.
    pub fn to_access_only(&self) -> AuthFile {
        let mut copy = self.clone();
        copy.auth_mode = Some(Value::String(ACCESS_ONLY_MODE.to_owned()));
        copy.tokens.refresh_token = Redacted::new(String::new());
        // Nothing that outlives the access token: no API key, no token field Codex may add
        // later (either could be a credential of its own).
        if copy.openai_api_key.is_some() {
            copy.openai_api_key = Some(Value::Null);
        }
        copy.tokens.extra.clear();
        copy.kind = Kind::AccessOnly;
        copy
    }

    /// When the access token expires: its JWT `exp` claim, when it has a readable one. An
    /// access-only copy is useless from then on.
    pub fn access_expires_at(&self) -> Option<Timestamp> {
        crate::jwt::claims(self.tokens.access_token.expose())
            .and_then(|c| c.get("exp").and_then(Value::as_i64))
            .and_then(|exp| Timestamp::from_second(exp).ok())
    }

    /// The plain `tokens.account_id` field, which Codex sends along with the access token.
    /// Anyone can type any id here: which account the login is of is [`Self::account`].
    pub fn account_id(&self) -> &str {
        &self.tokens.account_id
    }

    /// The account the login's tokens name: the `chatgpt_account_id` claim of the access token
    /// and of the id token (a claim that is missing, empty or not a string counts as absent).
    /// Every claim present must agree, or the login is [`Account::Mixed`]; the plain field
    /// counts only when no token carries a claim ([`Account::Unclaimed`]).
    pub fn account(&self) -> Account {
        let claimed = |token: &Redacted| -> Option<String> {
            crate::jwt::claims(token.expose())?
                .get(AUTH_CLAIM)?
                .get("chatgpt_account_id")?
                .as_str()
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
        };
        match (
            claimed(&self.tokens.access_token),
            claimed(&self.tokens.id_token),
        ) {
            (Some(access), Some(id)) if access != id => Account::Mixed { access, id },
            (Some(id), _) | (None, Some(id)) => Account::Claimed(id),
            (None, None) => Account::Unclaimed(self.tokens.account_id.clone()),
        }
    }

    /// When Codex last refreshed the tokens (`last_refresh`).
    pub fn last_refresh(&self) -> Timestamp {
        self.refreshed_at
    }

    /// Every value that must be masked in logs: the three tokens (two in an access-only copy,
    /// whose refresh token is empty), every other string under `tokens` (a newer Codex may keep
    /// another credential there; only the account id, which the log names, is left out), and a
    /// non-empty `OPENAI_API_KEY`. None is empty.
    pub fn secret_values(&self) -> Vec<Redacted> {
        let mut values: Vec<Redacted> = [
            &self.tokens.id_token,
            &self.tokens.access_token,
            &self.tokens.refresh_token,
        ]
        .into_iter()
        .filter(|token| !token.is_empty())
        .cloned()
        .collect();
        let mut unknown = Vec::new();
        for value in self.tokens.extra.values() {
            strings_in(value, &mut unknown);
        }
        if let Some(key) = &self.openai_api_key {
            strings_in(key, &mut unknown);
        }
        values.extend(
            unknown
                .into_iter()
                .filter(|s| s.chars().count() >= MIN_MASKED_CHARS && *s != self.account_id())
                .map(Redacted::new),
        );
        values
    }

    /// The file as one line of JSON, the form to store in a secret: a multi-line secret makes
    /// GitHub mask every line of it separately, `{` included, which garbles the logs.
    pub fn to_compact_json(&self) -> Result<Redacted, serde_json::Error> {
        serde_json::to_string(self).map(Redacted::new)
    }

    /// The value a secret holds: the compact form ([`Self::to_compact_json`]), refused when it
    /// is larger than a secret can be ([`MAX_BYTES`]).
    pub fn to_secret_value(&self) -> Result<Redacted, AuthError> {
        let compact = self
            .to_compact_json()
            .map_err(|e| AuthError::Syntax(e.to_string()))?;
        match compact.expose().len() {
            len if len > MAX_BYTES => Err(AuthError::TooLarge(len)),
            _ => Ok(compact),
        }
    }

    /// The file as Codex writes it (pretty JSON with a final newline).
    pub fn to_pretty_json(&self) -> Result<Redacted, serde_json::Error> {
        serde_json::to_string_pretty(self).map(|mut s| {
            s.push('\n');
            Redacted::new(s)
        })
    }

    /// A SHA-256 over the token fields: equal fingerprints mean equal tokens. It can go into
    /// `GITHUB_STATE`, which the runner logs, because tokens are far too long to guess. A copy's
    /// differs from its full login's (its refresh token is empty, which a full login's never
    /// is) and equals its own copy's.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [
            self.tokens.id_token.expose(),
            self.tokens.access_token.expose(),
            self.tokens.refresh_token.expose(),
            self.tokens.account_id.as_str(),
        ] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// The plan and the access token's expiry, read from the JWT claims.
    pub fn claims(&self) -> Claims {
        let id = crate::jwt::claims(self.tokens.id_token.expose());
        let plan = id
            .as_ref()
            .and_then(|c| c.get(AUTH_CLAIM))
            .and_then(|auth| auth.get("chatgpt_plan_type"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let access_expires_at = self.access_expires_at();
        let email = id.as_ref().and_then(|c| {
            c.get("email")
                .or_else(|| c.get("https://api.openai.com/profile")?.get("email"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        Claims {
            plan,
            access_expires_at,
            email,
        }
    }
}

impl Tokens {
    fn from_map(mut map: Map<String, Value>, kind: Kind) -> Result<Self, AuthError> {
        let id_token = Redacted::new(take_string(&mut map, "id_token", "tokens.id_token")?);
        let access_token = Redacted::new(take_string(
            &mut map,
            "access_token",
            "tokens.access_token",
        )?);
        let refresh_token = match kind {
            Kind::Full => Redacted::new(take_string(
                &mut map,
                "refresh_token",
                "tokens.refresh_token",
            )?),
            Kind::AccessOnly => take_empty_refresh_token(&mut map)?,
        };
        let account_id = take_string(&mut map, "account_id", "tokens.account_id")?;
        let parts: Vec<&str> = id_token.expose().split('.').collect();
        if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(AuthError::IdTokenShape);
        }
        if crate::jwt::claims(id_token.expose()).is_none() {
            return Err(AuthError::IdTokenPayload);
        }
        Ok(Self {
            id_token,
            access_token,
            refresh_token,
            account_id,
            extra: map,
        })
    }
}

/// The shortest unknown value that is masked: no credential is shorter, and a mask of a short
/// value (`1`, `v2`) would hide every occurrence of it in the log.
const MIN_MASKED_CHARS: usize = 8;

/// Every string in `value`, at any depth.
fn strings_in<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => found.push(s),
        Value::Array(items) => items.iter().for_each(|v| strings_in(v, found)),
        Value::Object(map) => map.values().for_each(|v| strings_in(v, found)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Moves a non-empty string out of `map` (moving, not copying, so that a token's only heap copy
/// ends up in a [`Redacted`]).
fn take_string(
    map: &mut Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<String, AuthError> {
    match map.remove(key) {
        None | Some(Value::Null) => Err(AuthError::Missing(field)),
        Some(Value::String(s)) if s.is_empty() => Err(AuthError::Missing(field)),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(AuthError::WrongType {
            field,
            found: json_kind(&other),
            expected: "a string",
        }),
    }
}

/// An access-only copy's refresh token: present (Codex's `TokenData` has no default for it,
/// `codex-rs/login/src/token_data.rs` in openai/codex) and empty.
fn take_empty_refresh_token(map: &mut Map<String, Value>) -> Result<Redacted, AuthError> {
    let found = match map.remove("refresh_token") {
        Some(Value::String(s)) if s.is_empty() => return Ok(Redacted::new(s)),
        // Moved into a Redacted so that it is zeroized when dropped.
        Some(Value::String(s)) => {
            drop(Redacted::new(s));
            return Err(AuthError::RefreshTokenInCopy);
        }
        None => "missing",
        Some(other) => json_kind(&other),
    };
    Err(AuthError::WrongType {
        field: "tokens.refresh_token",
        found,
        expected: "an empty string (an access-only copy keeps the field, empty)",
    })
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const DUPLICATE_KEY: &str = "duplicate key";

/// A JSON value read strictly: an object with the same key twice is an error, not "the last
/// one wins" as `serde_json::Value` would have it.
struct Strict(Value);

impl<'de> serde::Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(DUPLICATE_KEY));
            }
            let Strict(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// serde_json's syntax messages are fixed texts plus a position; its data messages can quote
/// the input, so only the former are shown.
fn describe_syntax_error(error: serde_json::Error) -> AuthError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Data if error.to_string().starts_with(DUPLICATE_KEY) => AuthError::DuplicateKey {
            line: error.line(),
            column: error.column(),
        },
        Category::Syntax | Category::Eof => AuthError::Syntax(error.to_string()),
        Category::Io | Category::Data => AuthError::Syntax(format!(
            "unreadable at line {} column {}",
            error.line(),
            error.column()
        )),
    }
}

/// "in 3 days", "2 hours ago".
pub fn relative(now: Timestamp, at: Timestamp) -> String {
    let seconds = at.as_second() - now.as_second();
    let magnitude = seconds.unsigned_abs();
    let amount = match magnitude {
        0..=119 => format!("{magnitude} s"),
        120..=7199 => format!("{} min", magnitude / 60),
        7200..=172_799 => format!("{} h", magnitude / 3600),
        _ => format!("{} days", magnitude / 86_400),
    };
    if seconds >= 0 {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    pub(crate) fn jwt(claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{payload}.sig")
    }

    pub(crate) fn sample() -> Value {
        serde_json::json!({
            "auth_mode": "chatgpt",
            "OPENAI_API_KEY": null,
            "tokens": {
                "id_token": jwt(&serde_json::json!({
                    "email": "dev@example.com",
                    AUTH_CLAIM: {"chatgpt_plan_type": "pro", "chatgpt_account_id": "acc-1"}
                })),
                "access_token": jwt(&serde_json::json!({"exp": 1_900_000_000})),
                "refresh_token": "rt_first",
                "account_id": "acc-1"
            },
            "last_refresh": "2026-11-01T10:00:00Z",
            "future_field": {"kept": true}
        })
    }

    fn decode(value: &Value) -> Result<AuthFile, AuthError> {
        AuthFile::decode(&value.to_string())
    }

    #[test]
    fn accepts_compact_pretty_and_base64() {
        let compact = sample().to_string();
        let pretty = serde_json::to_string_pretty(&sample()).unwrap_or_default();
        let b64 = STANDARD.encode(&pretty);
        let wrapped: String = b64
            .as_bytes()
            .chunks(76)
            .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
            .collect();
        for input in [
            &compact,
            &pretty,
            &b64,
            &wrapped,
            &URL_SAFE_NO_PAD.encode(&compact),
        ] {
            let file = AuthFile::decode(input).map_err(|e| e.to_string());
            assert_eq!(
                file.map(|f| f.account_id().to_owned()),
                Ok("acc-1".to_owned())
            );
        }
    }

    #[test]
    fn keeps_unknown_fields_and_round_trips_compactly() {
        let file = decode(&sample())
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let compact = file.to_compact_json().unwrap_or_else(|e| panic!("{e}"));
        assert!(!compact.expose().contains('\n'));
        let back: Value = serde_json::from_str(compact.expose()).unwrap_or_default();
        assert_eq!(back, sample());
    }

    #[test]
    fn every_credential_in_the_file_is_masked() {
        let mut value = sample();
        value["tokens"]["session_token"] = "st_unknown_credential".into();
        value["tokens"]["oauth_provenance"] =
            serde_json::json!({"issuer": "https://issuer.example", "client_id": "app_client_1"});
        value["tokens"]["short"] = "v2".into();
        value["OPENAI_API_KEY"] = "sk-proj-abcdef123456".into();
        let file = decode(&value).unwrap_or_else(|e| panic!("{e}"));
        let masked: Vec<String> = file
            .secret_values()
            .iter()
            .map(|s| s.expose().to_owned())
            .collect();
        for expected in [
            file.tokens.id_token.expose(),
            file.tokens.access_token.expose(),
            "rt_first",
            "st_unknown_credential",
            "https://issuer.example",
            "app_client_1",
            "sk-proj-abcdef123456",
        ] {
            assert!(
                masked.iter().any(|m| m == expected),
                "{expected} not masked"
            );
        }
        // The account id is named in the log; a two-character value would mask too much.
        assert!(
            !masked.iter().any(|m| m == "acc-1" || m == "v2"),
            "{masked:?}"
        );
        // A null OPENAI_API_KEY and a file without unknown token fields: the three tokens.
        assert_eq!(decode(&sample()).map(|f| f.secret_values().len()), Ok(3));
    }

    #[test]
    fn emails_are_shown_only_partly() {
        let claims = |email: Option<&str>| Claims {
            email: email.map(str::to_owned),
            ..Claims::default()
        };
        assert_eq!(
            claims(Some("jane@example.com")).masked_email(),
            "j***@example.com"
        );
        assert_eq!(
            claims(Some("j@example.com")).masked_email(),
            "j***@example.com"
        );
        assert_eq!(claims(Some("no-at-sign")).masked_email(), "***");
        assert_eq!(claims(None).masked_email(), "unknown");
    }

    #[test]
    fn reads_plan_and_expiry() {
        let file = decode(&sample()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            file.claims(),
            Claims {
                plan: Some("pro".into()),
                access_expires_at: Timestamp::from_second(1_900_000_000).ok(),
                email: Some("dev@example.com".to_owned()),
            }
        );
    }

    /// `sample()` with the access token's and the id token's `chatgpt_account_id` claims
    /// (`None`: the token carries no auth claim) and the plain field.
    fn naming(access: Option<&str>, id: Option<&str>, field: &str) -> AuthFile {
        let auth = |account: Option<&str>| match account {
            Some(account) => {
                serde_json::json!({"chatgpt_plan_type": "pro", "chatgpt_account_id": account})
            }
            None => serde_json::json!({"chatgpt_plan_type": "pro"}),
        };
        let mut value = sample();
        value["tokens"]["access_token"] = jwt(&serde_json::json!({
            "exp": 1_900_000_000, AUTH_CLAIM: auth(access)
        }))
        .into();
        value["tokens"]["id_token"] = jwt(&serde_json::json!({
            "email": "dev@example.com", AUTH_CLAIM: auth(id)
        }))
        .into();
        value["tokens"]["account_id"] = field.into();
        decode(&value).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_account_is_the_one_the_tokens_claim() {
        let claimed = |id: &str| Account::Claimed(id.to_owned());
        assert_eq!(
            naming(Some("acc-1"), Some("acc-1"), "acc-1").account(),
            claimed("acc-1")
        );
        // A plain field that disagrees counts for nothing: the claims win.
        assert_eq!(
            naming(Some("acc-evil"), Some("acc-evil"), "acc-1").account(),
            claimed("acc-evil")
        );
        // One token's claim is enough; the other may carry none.
        assert_eq!(
            naming(Some("acc-evil"), None, "acc-1").account(),
            claimed("acc-evil")
        );
        assert_eq!(
            naming(None, Some("acc-evil"), "acc-1").account(),
            claimed("acc-evil")
        );
        // Tokens of two accounts: of no account.
        assert_eq!(
            naming(Some("acc-evil"), Some("acc-1"), "acc-1").account(),
            Account::Mixed {
                access: "acc-evil".into(),
                id: "acc-1".into()
            }
        );
        // No claim at all: only then the plain field.
        assert_eq!(
            naming(None, None, "acc-1").account(),
            Account::Unclaimed("acc-1".into())
        );
        // An empty claim, or one that is not a string, is no claim.
        let mut value = sample();
        value["tokens"]["id_token"] = jwt(&serde_json::json!({
            AUTH_CLAIM: {"chatgpt_account_id": ""}
        }))
        .into();
        value["tokens"]["access_token"] = jwt(&serde_json::json!({
            AUTH_CLAIM: {"chatgpt_account_id": 7}
        }))
        .into();
        assert_eq!(
            decode(&value).map(|f| f.account()),
            Ok(Account::Unclaimed("acc-1".into()))
        );
        // The sample's access token has no claim; its id token names acc-1.
        assert_eq!(decode(&sample()).map(|f| f.account()), Ok(claimed("acc-1")));
    }

    #[test]
    fn a_claimed_account_admits_only_the_same_claim() {
        let claimed = Account::Claimed("acc-1".into());
        let unclaimed = Account::Unclaimed("acc-1".into());
        let mixed = Account::Mixed {
            access: "acc-1".into(),
            id: "acc-1".into(),
        };
        let cases = [
            (&claimed, &claimed, true),
            (&claimed, &Account::Claimed("acc-2".into()), false),
            // Claimed before, a plain field alone now: that says nothing.
            (&claimed, &unclaimed, false),
            (&claimed, &mixed, false),
            // Known only by its plain field before: the same id, claimed or not.
            (&unclaimed, &claimed, true),
            (&unclaimed, &unclaimed, true),
            (&unclaimed, &Account::Claimed("acc-2".into()), false),
            (&unclaimed, &Account::Unclaimed("acc-2".into()), false),
            (&unclaimed, &mixed, false),
            (&mixed, &mixed, false),
            (&mixed, &claimed, false),
        ];
        for (trusted, other, admits) in cases {
            assert_eq!(trusted.admits(other), admits, "{trusted:?} {other:?}");
            // Digests keep the rule.
            let digest = |id: &str| format!("#{id}");
            assert_eq!(
                trusted.map_ids(digest).admits(&other.map_ids(digest)),
                admits
            );
        }
    }

    #[test]
    fn fingerprint_follows_the_tokens_only() {
        let a = decode(&sample()).unwrap_or_else(|e| panic!("{e}"));
        let mut later = sample();
        later["last_refresh"] = "2026-11-02T10:00:00Z".into();
        let b = decode(&later).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.fingerprint(), b.fingerprint());
        later["tokens"]["refresh_token"] = "rt_second".into();
        let c = decode(&later).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    /// `sample()` as an access-only copy of it should read.
    fn sample_copy() -> Value {
        let mut value = sample();
        value["auth_mode"] = ACCESS_ONLY_MODE.into();
        value["tokens"]["refresh_token"] = "".into();
        value
    }

    fn json_of(file: &AuthFile) -> Value {
        let compact = file.to_compact_json().unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_str(compact.expose()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_copy_changes_the_mode_and_the_refresh_token_only() {
        let full = decode(&sample()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(full.kind(), Kind::Full);
        let copy = full.to_access_only();
        assert_eq!(copy.kind(), Kind::AccessOnly);
        // Unknown fields, the null OPENAI_API_KEY and last_refresh stay as they were.
        assert_eq!(json_of(&copy), sample_copy());
        assert_eq!(copy.account_id(), full.account_id());
        assert_eq!(copy.last_refresh(), full.last_refresh());
        assert_eq!(copy.claims(), full.claims());
        // A login without auth_mode (older Codex) gains it.
        let mut bare = sample();
        if let Some(root) = bare.as_object_mut() {
            root.remove("auth_mode");
        }
        let bare = decode(&bare).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bare.kind(), Kind::Full);
        assert_eq!(json_of(&bare.to_access_only()), sample_copy());
    }

    /// A copy holds nothing that outlives its access token: not an API key Codex stored, not a
    /// token field a newer Codex may add.
    #[test]
    fn a_copy_carries_no_api_key_and_no_unknown_token() {
        let mut login = sample();
        login["OPENAI_API_KEY"] = Value::String("sk-proj-kept-by-codex".into());
        login["tokens"]["agent_token"] = Value::String("at-long-lived".into());
        let full = decode(&login).unwrap_or_else(|e| panic!("{e}"));
        let copy = json_of(&full.to_access_only());
        let text = copy.to_string();
        assert!(!text.contains("sk-proj-kept-by-codex"), "{text}");
        assert!(!text.contains("at-long-lived"), "{text}");
        assert_eq!(copy["OPENAI_API_KEY"], Value::Null);
        assert_eq!(
            copy["tokens"]["access_token"],
            login["tokens"]["access_token"]
        );
    }

    #[test]
    fn a_copy_round_trips_and_a_copy_of_a_copy_is_the_same_copy() {
        let copy = decode(&sample())
            .unwrap_or_else(|e| panic!("{e}"))
            .to_access_only();
        let stored = copy.to_secret_value().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Some(stored.expose()),
            copy.to_compact_json().ok().as_ref().map(Redacted::expose)
        );
        let pretty = copy.to_pretty_json().unwrap_or_else(|e| panic!("{e}"));
        for back in [
            AuthFile::decode(stored.expose()),
            AuthFile::decode(&STANDARD.encode(stored.expose())),
            AuthFile::parse_file(pretty.expose().as_bytes()),
        ] {
            let back = back.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back.kind(), Kind::AccessOnly);
            assert_eq!(json_of(&back), sample_copy());
            assert_eq!(back.fingerprint(), copy.fingerprint());
        }
        let again = copy.to_access_only();
        assert_eq!(again.kind(), Kind::AccessOnly);
        assert_eq!(json_of(&again), json_of(&copy));
        assert_eq!(again.fingerprint(), copy.fingerprint());
    }

    #[test]
    fn a_copy_has_its_own_fingerprint_and_no_empty_mask() {
        let full = decode(&sample()).unwrap_or_else(|e| panic!("{e}"));
        let copy = full.to_access_only();
        assert_ne!(copy.fingerprint(), full.fingerprint());
        let exposed = |file: &AuthFile| -> Vec<String> {
            file.secret_values()
                .iter()
                .map(|s| s.expose().to_owned())
                .collect()
        };
        assert_eq!(
            exposed(&copy),
            vec![
                full.tokens.id_token.expose().to_owned(),
                full.tokens.access_token.expose().to_owned(),
            ]
        );
        assert_eq!(exposed(&full).len(), 3);
    }

    #[test]
    fn reads_the_access_tokens_expiry() {
        let with_access = |token: String| {
            let mut value = sample();
            value["tokens"]["access_token"] = token.into();
            decode(&value)
                .unwrap_or_else(|e| panic!("{e}"))
                .access_expires_at()
        };
        assert_eq!(
            with_access(jwt(&serde_json::json!({"exp": 1_900_000_000}))),
            Timestamp::from_second(1_900_000_000).ok()
        );
        assert_eq!(with_access(jwt(&serde_json::json!({"sub": "x"}))), None);
        assert_eq!(with_access(jwt(&serde_json::json!({"exp": "soon"}))), None);
        assert_eq!(with_access("opaque-access-token".to_owned()), None);
    }

    #[test]
    fn refuses_a_copy_with_a_refresh_token_and_a_full_login_without_one() {
        type Mutation = Box<dyn Fn(&mut Value)>;
        let wrong = |found| AuthError::WrongType {
            field: "tokens.refresh_token",
            found,
            expected: "an empty string (an access-only copy keeps the field, empty)",
        };
        let cases: Vec<(Mutation, AuthError)> = vec![
            (
                Box::new(|v| v["tokens"]["refresh_token"] = "rt_first".into()),
                AuthError::RefreshTokenInCopy,
            ),
            (
                Box::new(|v| v["tokens"]["refresh_token"] = Value::Null),
                wrong("null"),
            ),
            (
                Box::new(|v| {
                    if let Some(t) = v["tokens"].as_object_mut() {
                        t.remove("refresh_token");
                    }
                }),
                wrong("missing"),
            ),
            (
                Box::new(|v| v["tokens"]["refresh_token"] = 0.into()),
                wrong("a number"),
            ),
            // A full login's checks are as before.
            (
                Box::new(|v| v["auth_mode"] = "chatgpt".into()),
                AuthError::Missing("tokens.refresh_token"),
            ),
            (
                Box::new(|v| {
                    if let Some(root) = v.as_object_mut() {
                        root.remove("auth_mode");
                    }
                }),
                AuthError::Missing("tokens.refresh_token"),
            ),
            (
                Box::new(|v| v["tokens"]["access_token"] = "".into()),
                AuthError::Missing("tokens.access_token"),
            ),
        ];
        for (mutate, expected) in cases {
            let mut value = sample_copy();
            mutate(&mut value);
            assert_eq!(decode(&value).err(), Some(expected));
        }
        let message = AuthError::RefreshTokenInCopy.to_string();
        assert!(
            message.contains("set auth_mode to \"chatgpt\""),
            "{message}"
        );
        assert!(message.contains("`access-secret-name`"), "{message}");
    }

    #[test]
    fn a_codex_access_token_is_told_apart_from_a_login() {
        // The token itself, as a secret holds it, and the auth.json Codex 0.171.0 writes after
        // `codex login --with-access-token` (docs/facts.md, "Codex access tokens").
        let written = r#"{
  "OPENAI_API_KEY": null,
  "personal_access_token": "at-0123456789abcdef"
}"#;
        for input in ["at-0123456789abcdef", " at-0123456789abcdef\n", written] {
            let error = AuthFile::decode(input).err();
            assert_eq!(error, Some(AuthError::CodexAccessToken), "{input}");
        }
        assert_eq!(
            AuthFile::parse_file(written.as_bytes()).err(),
            Some(AuthError::CodexAccessToken)
        );
        let message = AuthError::CodexAccessToken.to_string();
        assert!(message.contains("input `codex-access-token`"), "{message}");
        assert!(!message.contains("0123456789abcdef"), "{message}");
    }

    #[test]
    fn each_check_has_its_own_message() {
        type Mutation = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Mutation, AuthError)> = vec![
            (
                Box::new(|v| v["auth_mode"] = "apikey".into()),
                AuthError::ApiKeyLogin,
            ),
            (
                Box::new(|v| {
                    v["tokens"] = Value::Null;
                    v["auth_mode"] = Value::Null;
                    v["OPENAI_API_KEY"] = "sk-x".into();
                }),
                AuthError::ApiKeyLogin,
            ),
            (
                Box::new(|v| v["auth_mode"] = "weird".into()),
                AuthError::UnknownMode,
            ),
            (
                Box::new(|v| v["auth_mode"] = "agentIdentity".into()),
                AuthError::UnsupportedMode("agentIdentity"),
            ),
            (
                Box::new(|v| v["tokens"]["access_token"] = "".into()),
                AuthError::Missing("tokens.access_token"),
            ),
            (
                Box::new(|v| {
                    if let Some(t) = v["tokens"].as_object_mut() {
                        t.remove("account_id");
                    }
                }),
                AuthError::Missing("tokens.account_id"),
            ),
            (
                Box::new(|v| v["tokens"]["refresh_token"] = 5.into()),
                AuthError::WrongType {
                    field: "tokens.refresh_token",
                    found: "a number",
                    expected: "a string",
                },
            ),
            (
                Box::new(|v| v["tokens"]["id_token"] = "a.b".into()),
                AuthError::IdTokenShape,
            ),
            (
                Box::new(|v| v["tokens"]["id_token"] = "a..c".into()),
                AuthError::IdTokenShape,
            ),
            (
                Box::new(|v| v["tokens"]["id_token"] = "a.!!.c".into()),
                AuthError::IdTokenPayload,
            ),
            (
                Box::new(|v| v["last_refresh"] = "yesterday".into()),
                AuthError::LastRefreshFormat,
            ),
            (
                Box::new(|v| v["tokens"] = "x".into()),
                AuthError::WrongType {
                    field: "tokens",
                    found: "a string",
                    expected: "an object",
                },
            ),
        ];
        for (mutate, expected) in cases {
            let mut value = sample();
            mutate(&mut value);
            assert_eq!(decode(&value).err(), Some(expected));
        }
    }

    #[test]
    fn rejects_non_objects_and_garbage_without_echoing() {
        let secret = "rt_do-not-echo";
        let cases = [
            ("", AuthError::Empty),
            ("  \n ", AuthError::Empty),
            ("[1]", AuthError::NotObject("array")),
            ("\u{feff}{}", AuthError::ByteOrderMark),
            (&STANDARD.encode("not json"), AuthError::Base64NotJson),
        ];
        for (input, expected) in cases {
            assert_eq!(AuthFile::decode(input).err(), Some(expected));
        }
        let truncated = format!("{{\"tokens\": {{\"refresh_token\": \"{secret}");
        let err = AuthFile::decode(&truncated)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("it is not valid JSON: EOF while parsing"),
            "{err}"
        );
        assert!(!err.contains(secret));
        let big = format!("{{\"x\": \"{}\"}}", "a".repeat(MAX_BYTES));
        assert_eq!(
            AuthFile::decode(&big).err(),
            Some(AuthError::TooLarge(big.len()))
        );
    }
}
