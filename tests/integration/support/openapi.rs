//! GitHub's own description of its REST API, and a check that the traffic the local GitHub saw
//! is what that description allows.
//!
//! The description is GitHub's OpenAPI description as the npm package `@octokit/openapi`
//! ships it (generated from github/rest-api-description). `scripts/test` installs a pinned
//! version and exports the path of its `generated/api.github.com.json` in
//! `CODEX_AUTH_TEST_OPENAPI`. That file is OpenAPI 3.0: its schemas are JSON Schema draft 4
//! plus `nullable`, which [`json_schema`] turns into draft 4 types before validating.
//!
//! For every request: the operation must exist (path template and method), and the path and
//! query parameters and the body must match their schemas in the description. For
//! every answer that is the server's own (not an injected [`Fault`](super::github::Fault)):
//! the status must be one the operation declares, and the body must match that status's schema.
//!
//! GitHub answers 401, 403, 404 and 422 on any operation (bad credentials, a missing permission
//! or a rate limit, a resource the token may not see, a rejected body:
//! <https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api>), but its
//! description declares them on some operations only (on none of the Actions secrets
//! operations). Where an operation leaves one out, the answer is checked against the
//! description's own shared response for that status ([`GENERAL_ERRORS`]); any other status
//! the operation does not declare fails.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, Validator};
use percent_encoding::percent_decode_str;
use serde_json::{json, Map, Value};

use super::github::Request;

/// The variable that holds the path of the description (`api.github.com.json`).
pub const DESCRIPTION_VAR: &str = "CODEX_AUTH_TEST_OPENAPI";

/// Statuses GitHub may answer on any operation, with the description's shared response for
/// each (`#/components/responses/…`).
pub const GENERAL_ERRORS: &[(u16, &str)] = &[
    (401, "requires_authentication"),
    (403, "forbidden"),
    (404, "not_found"),
    (422, "validation_failed"),
];

/// Schema errors shown per body; the rest are counted.
const ERRORS_SHOWN: usize = 8;

/// Fails, listing every mismatch, unless each request and each of the server's own answers is
/// what GitHub's OpenAPI description allows.
pub fn assert_conforms(requests: &[Request]) {
    let violations = violations(requests);
    assert!(
        violations.is_empty(),
        "{} of {} requests to the local GitHub do not match GitHub's OpenAPI description \
         ({DESCRIPTION_VAR}):\n- {}",
        violations.len(),
        requests.len(),
        violations.join("\n- ")
    );
}

/// One line per request that does not match the description: the request, the operation, what
/// is wrong.
pub fn violations(requests: &[Request]) -> Vec<String> {
    let description = Description::get();
    requests
        .iter()
        .filter_map(|request| {
            let problems = description.check(request);
            let operation = description
                .operation(&request.method, &request.path)
                .map_or_else(|_| "no operation".to_owned(), |o| o.id.to_owned());
            (!problems.is_empty()).then(|| {
                format!(
                    "{} {} → {}{} ({operation}): {}",
                    request.method,
                    request.path,
                    request.status,
                    if request.injected { " injected" } else { "" },
                    problems.join("; ")
                )
            })
        })
        .collect()
}

/// The loaded description, with the validators compiled so far.
pub struct Description {
    doc: Value,
    templates: Vec<Template>,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

/// A path template split at `/`, each segment into literal text and `{parameters}`.
struct Template {
    path: String,
    segments: Vec<Vec<Piece>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Parameter(String),
}

/// A request matched to its operation.
pub struct Operation<'a> {
    /// `operationId`, such as `actions/get-repo-public-key`.
    pub id: &'a str,
    /// The path template, such as `/repos/{owner}/{repo}`.
    pub template: &'a str,
    operation: &'a Value,
    /// Path parameter values, percent-decoded.
    path_values: Vec<(String, String)>,
}

impl Description {
    /// The description named by [`DESCRIPTION_VAR`], loaded once.
    pub fn get() -> &'static Self {
        static DESCRIPTION: OnceLock<Description> = OnceLock::new();
        DESCRIPTION.get_or_init(Self::load)
    }

    fn load() -> Self {
        let path = std::env::var_os(DESCRIPTION_VAR)
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!(
                    "{DESCRIPTION_VAR} is not set. It names GitHub's OpenAPI description \
                     (generated/api.github.com.json in the npm package @octokit/openapi), which \
                     the tests check every request to the local GitHub against: run the tests \
                     with scripts/test, which installs the pinned package and sets it"
                )
            });
        let text = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{DESCRIPTION_VAR}={}: cannot read it: {e}", path.display())
        });
        let doc: Value = serde_json::from_slice(&text)
            .unwrap_or_else(|e| panic!("{DESCRIPTION_VAR}={}: not JSON: {e}", path.display()));
        let version = doc["openapi"].as_str().unwrap_or_default();
        assert!(
            version.starts_with("3.0."),
            "{DESCRIPTION_VAR}={}: OpenAPI {version:?}; this checker reads OpenAPI 3.0 \
             schemas (draft 4 with `nullable`)",
            path.display()
        );
        let templates = doc["paths"]
            .as_object()
            .map(|paths| paths.keys().map(|p| Template::new(p)).collect())
            .unwrap_or_default();
        Self {
            doc,
            templates,
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// The operation a request is for: the path template that matches (literal segments win
    /// over parameters, as GitHub routes `…/secrets/public-key`), and the method.
    pub fn operation(&self, method: &str, path_and_query: &str) -> Result<Operation<'_>, String> {
        let path = path_and_query.split('?').next().unwrap_or_default();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (template, values) = self
            .templates
            .iter()
            .filter_map(|t| t.matches(&segments).map(|values| (t, values)))
            .max_by_key(|(t, _)| t.specificity())
            .ok_or_else(|| format!("the description has no path that matches {path}"))?;
        let item = &self.doc["paths"][&template.path];
        let operation = item
            .get(method.to_ascii_lowercase())
            .ok_or_else(|| format!("the description has no {method} for {}", template.path))?;
        Ok(Operation {
            id: operation["operationId"].as_str().unwrap_or("?"),
            template: &template.path,
            operation,
            path_values: values,
        })
    }

    /// What is wrong with one request and its answer.
    pub fn check(&self, request: &Request) -> Vec<String> {
        let operation = match self.operation(&request.method, &request.path) {
            Ok(operation) => operation,
            Err(problem) => return vec![problem],
        };
        let mut problems = self.check_parameters(&operation, &request.path);
        problems.extend(self.check_request_body(&operation, &request.body));
        // An injected fault is the test's answer, not GitHub's.
        if !request.injected {
            problems.extend(self.check_response(&operation, request));
        }
        problems
    }

    fn check_parameters(&self, operation: &Operation<'_>, path_and_query: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let parameters = self.parameters(operation);
        for (name, value) in &operation.path_values {
            match parameters
                .iter()
                .find(|p| p["in"] == "path" && p["name"] == *name)
            {
                None => problems.push(format!("path parameter {name} is not described")),
                Some(parameter) => problems.extend(
                    self.schema_errors(&parameter["schema"], &self.typed(parameter, value))
                        .into_iter()
                        .map(|e| format!("path parameter {name}={value:?}: {e}")),
                ),
            }
        }
        let query: Vec<(String, String)> = path_and_query
            .split_once('?')
            .map(|(_, query)| query)
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode_query(name), decode_query(value))
            })
            .collect();
        for (name, value) in &query {
            match parameters
                .iter()
                .find(|p| p["in"] == "query" && p["name"] == *name)
            {
                None => problems.push(format!("query parameter {name} is not described")),
                Some(parameter) => problems.extend(
                    self.schema_errors(&parameter["schema"], &self.typed(parameter, value))
                        .into_iter()
                        .map(|e| format!("query parameter {name}={value:?}: {e}")),
                ),
            }
        }
        for parameter in &parameters {
            let name = parameter["name"].as_str().unwrap_or_default();
            if parameter["in"] == "query"
                && parameter["required"] == true
                && !query.iter().any(|(n, _)| n == name)
            {
                problems.push(format!("required query parameter {name} is missing"));
            }
        }
        problems
    }

    fn check_request_body(&self, operation: &Operation<'_>, body: &[u8]) -> Vec<String> {
        let described = operation
            .operation
            .get("requestBody")
            .map(|b| self.resolve(b));
        let Some(described) = described else {
            return match body.is_empty() {
                true => Vec::new(),
                false => vec!["request has a body; the operation takes none".to_owned()],
            };
        };
        if body.is_empty() {
            return match described["required"] == true {
                true => vec!["request body is required but missing".to_owned()],
                false => Vec::new(),
            };
        }
        let Some(schema) = described["content"]
            .get("application/json")
            .map(|c| &c["schema"])
        else {
            return vec!["request body: the operation takes no application/json body".to_owned()];
        };
        match serde_json::from_slice::<Value>(body) {
            Err(e) => vec![format!("request body is not JSON: {e}")],
            Ok(instance) => self
                .schema_errors(schema, &instance)
                .into_iter()
                .map(|e| format!("request body {e}"))
                .collect(),
        }
    }

    fn check_response(&self, operation: &Operation<'_>, request: &Request) -> Vec<String> {
        let responses = &operation.operation["responses"];
        let status = request.status.to_string();
        let general = GENERAL_ERRORS
            .iter()
            .find(|(s, _)| *s == request.status)
            .map(|(_, name)| &self.doc["components"]["responses"][*name]);
        let Some(described) = responses
            .get(&status)
            .or_else(|| responses.get("default"))
            .or(general)
            .map(|r| self.resolve(r))
        else {
            let declared: Vec<&String> = responses
                .as_object()
                .map(|r| r.keys().collect())
                .unwrap_or_default();
            return vec![format!(
                "answered {status}, which the operation does not declare (it declares {declared:?})"
            )];
        };
        let Some(content) = described.get("content").and_then(Value::as_object) else {
            return match request.response.is_empty() {
                true => Vec::new(),
                false => vec![format!(
                    "response {status} has a body; the description declares none"
                )],
            };
        };
        let Some((media, schema)) = content
            .get_key_value("application/json")
            .or_else(|| content.iter().next())
            .map(|(media, c)| (media, &c["schema"]))
        else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        let answered = request
            .response_type
            .as_deref()
            .unwrap_or("no content-type");
        if answered.split(';').next().map(str::trim) != Some(media.as_str()) {
            problems.push(format!("response {status} is {answered}, not {media}"));
        }
        match serde_json::from_slice::<Value>(&request.response) {
            Err(e) => problems.push(format!("response {status} body is not JSON: {e}")),
            Ok(instance) => problems.extend(
                self.schema_errors(schema, &instance)
                    .into_iter()
                    .map(|e| format!("response {status} body {e}")),
            ),
        }
        problems
    }

    /// The operation's parameters with the path item's, `$ref`s resolved; the operation's own
    /// win (OpenAPI: same name and location).
    fn parameters<'a>(&'a self, operation: &Operation<'a>) -> Vec<&'a Value> {
        let listed = |v: &'a Value| -> Vec<&'a Value> {
            v.as_array()
                .map(|ps| ps.iter().map(|p| self.resolve(p)).collect())
                .unwrap_or_default()
        };
        let own = listed(&operation.operation["parameters"]);
        let mut all = own.clone();
        for p in listed(&self.doc["paths"][operation.template]["parameters"]) {
            if !own
                .iter()
                .any(|o| o["name"] == p["name"] && o["in"] == p["in"])
            {
                all.push(p);
            }
        }
        all
    }

    /// A parameter's text as the JSON value its schema types it.
    fn typed(&self, parameter: &Value, text: &str) -> Value {
        let schema = self.resolve(&parameter["schema"]);
        let parsed = match schema["type"].as_str() {
            Some("integer") => text.parse::<i64>().ok().map(Value::from),
            Some("number") => text.parse::<f64>().ok().map(Value::from),
            Some("boolean") => text.parse::<bool>().ok().map(Value::from),
            Some("array") => Some(text.split(',').map(Value::from).collect()),
            _ => None,
        };
        parsed.unwrap_or_else(|| Value::from(text))
    }

    /// Follows `#/…` references (to components: responses, parameters, request bodies).
    fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        while let Some(reference) = value.get("$ref").and_then(Value::as_str) {
            value = reference
                .strip_prefix('#')
                .and_then(|pointer| self.doc.pointer(pointer))
                .unwrap_or_else(|| panic!("the description has no {reference}"));
        }
        value
    }

    /// The schema errors of `instance`, each with where it is in the instance and in the
    /// schema; missing required properties are listed together, and past [`ERRORS_SHOWN`]
    /// errors only counted.
    fn schema_errors(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let validator = self.validator(schema);
        let mut errors: Vec<(String, String, String)> = Vec::new();
        let mut missing: Vec<(String, String, Vec<String>)> = Vec::new();
        for error in validator.iter_errors(instance) {
            let at = match error.instance_path().as_str() {
                "" => "/".to_owned(),
                path => path.to_owned(),
            };
            let schema_path = error.schema_path().as_str().to_owned();
            if let ValidationErrorKind::Required { property } = error.kind() {
                let property = property.as_str().unwrap_or_default().to_owned();
                match missing
                    .iter_mut()
                    .find(|(a, s, _)| *a == at && *s == schema_path)
                {
                    Some((_, _, properties)) => properties.push(property),
                    None => missing.push((at, schema_path, vec![property])),
                }
                continue;
            }
            let mut message = error.to_string();
            if message.len() > 200 {
                let cut = (0..=200).rev().find(|i| message.is_char_boundary(*i));
                message.truncate(cut.unwrap_or(0));
                message.push('…');
            }
            errors.push((at, message, schema_path));
        }
        let mut lines: Vec<String> = missing
            .into_iter()
            .map(|(at, schema_path, properties)| {
                let message = match properties.as_slice() {
                    [one] => format!("{one:?} is a required property"),
                    many => format!("required properties are missing: {}", many.join(", ")),
                };
                format!("at {at}: {message} (schema {schema_path})")
            })
            .chain(
                errors
                    .into_iter()
                    .map(|(at, message, path)| format!("at {at}: {message} (schema {path})")),
            )
            .collect();
        if lines.len() > ERRORS_SHOWN {
            let more = lines.len() - ERRORS_SHOWN;
            lines.truncate(ERRORS_SHOWN);
            lines.push(format!("and {more} more errors"));
        }
        lines
    }

    fn validator(&self, schema: &Value) -> Arc<Validator> {
        let key = schema.to_string();
        if let Some(validator) = self.validators.lock().unwrap().get(&key) {
            return validator.clone();
        }
        let document = self.json_schema(schema);
        let validator = jsonschema::options()
            .with_draft(Draft::Draft4)
            .should_validate_formats(true)
            .build(&document)
            .unwrap_or_else(|e| panic!("the description's schema {key} does not compile: {e}"));
        let validator = Arc::new(validator);
        self.validators
            .lock()
            .unwrap()
            .insert(key, validator.clone());
        validator
    }

    /// A self-contained draft 4 document for one of the description's schemas: the schema,
    /// with every component schema it reaches under `components/schemas`, where its `$ref`s
    /// point.
    pub fn json_schema(&self, schema: &Value) -> Value {
        let mut references = Vec::new();
        let mut document = json_schema(schema, &mut references);
        let mut components = Map::new();
        while let Some(reference) = references.pop() {
            let Some(name) = reference.strip_prefix("#/components/schemas/") else {
                panic!("a schema refers to {reference}, outside #/components/schemas");
            };
            let name = name.replace("~1", "/").replace("~0", "~");
            if components.contains_key(&name) {
                continue;
            }
            let target = self.resolve(&self.doc["components"]["schemas"][&name]);
            components.insert(name, json_schema(target, &mut references));
        }
        if let Value::Object(map) = &mut document {
            map.insert("components".into(), json!({ "schemas": components }));
        }
        document
    }
}

impl Template {
    fn new(path: &str) -> Self {
        let segments = path
            .trim_start_matches('/')
            .split('/')
            .map(|segment| {
                let mut pieces = Vec::new();
                let mut rest = segment;
                while let Some(open) = rest.find('{') {
                    let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
                    if open > 0 {
                        pieces.push(Piece::Literal(rest[..open].to_owned()));
                    }
                    pieces.push(Piece::Parameter(rest[open + 1..close].to_owned()));
                    rest = rest.get(close + 1..).unwrap_or_default();
                }
                if !rest.is_empty() || pieces.is_empty() {
                    pieces.push(Piece::Literal(rest.to_owned()));
                }
                pieces
            })
            .collect();
        Self {
            path: path.to_owned(),
            segments,
        }
    }

    /// The parameter values when `segments` (as sent, percent-encoded) fit this template.
    fn matches(&self, segments: &[&str]) -> Option<Vec<(String, String)>> {
        if segments.len() != self.segments.len() {
            return None;
        }
        let mut values = Vec::new();
        for (pieces, segment) in self.segments.iter().zip(segments) {
            values.extend(match_pieces(pieces, segment)?);
        }
        Some(
            values
                .into_iter()
                .map(|(name, raw)| (name, percent_decode_str(&raw).decode_utf8_lossy().into()))
                .collect(),
        )
    }

    /// Segment by segment: literal (2) over mixed (1) over a bare parameter (0).
    fn specificity(&self) -> Vec<u8> {
        self.segments
            .iter()
            .map(|pieces| match pieces.as_slice() {
                [Piece::Literal(_)] => 2,
                [Piece::Parameter(_)] => 0,
                _ => 1,
            })
            .collect()
    }
}

/// Matches one path segment against its pieces; a parameter takes at least one character.
fn match_pieces(pieces: &[Piece], segment: &str) -> Option<Vec<(String, String)>> {
    match pieces {
        [] => segment.is_empty().then(Vec::new),
        [Piece::Literal(literal), rest @ ..] => {
            match_pieces(rest, segment.strip_prefix(literal.as_str())?)
        }
        [Piece::Parameter(name)] => {
            (!segment.is_empty()).then(|| vec![(name.clone(), segment.to_owned())])
        }
        [Piece::Parameter(name), rest @ ..] => (1..segment.len())
            .filter(|i| segment.is_char_boundary(*i))
            .find_map(|i| {
                let mut values = match_pieces(rest, &segment[i..])?;
                values.insert(0, (name.clone(), segment[..i].to_owned()));
                Some(values)
            }),
    }
}

fn decode_query(text: &str) -> String {
    percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// An OpenAPI 3.0 schema as JSON Schema draft 4, collecting the `$ref`s it holds.
///
/// OpenAPI 3.0 adds `nullable: true` to draft 4: null is allowed besides the `type`. It
/// becomes `type: [T, "null"]` (with null added to an `enum`, as GitHub's OpenAPI 3.1
/// description writes the same schemas), or, where there is no single `type` (`allOf` and
/// the like), `anyOf: [{type: null}, schema]`. OpenAPI's other keywords (`discriminator`,
/// `readOnly`, `example`, `x-…`) are annotations draft 4 ignores.
pub fn json_schema(schema: &Value, references: &mut Vec<String>) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut converted = Map::new();
    for (key, value) in map {
        let value = match (key.as_str(), value) {
            ("properties" | "patternProperties", Value::Object(properties)) => Value::Object(
                properties
                    .iter()
                    .map(|(name, s)| (name.clone(), json_schema(s, references)))
                    .collect(),
            ),
            ("items" | "additionalProperties" | "not", Value::Object(_)) => {
                json_schema(value, references)
            }
            ("items" | "allOf" | "anyOf" | "oneOf", Value::Array(schemas)) => {
                schemas.iter().map(|s| json_schema(s, references)).collect()
            }
            ("$ref", Value::String(reference)) => {
                references.push(reference.clone());
                value.clone()
            }
            ("nullable", _) => continue,
            _ => value.clone(),
        };
        converted.insert(key.clone(), value);
    }
    if map.get("nullable") != Some(&Value::Bool(true)) {
        return Value::Object(converted);
    }
    let composite = ["$ref", "allOf", "anyOf", "oneOf", "not"]
        .iter()
        .any(|k| converted.contains_key(*k));
    match converted.get("type").and_then(Value::as_str) {
        Some(single) if !composite => {
            let types = json!([single, "null"]);
            converted.insert("type".into(), types);
            if let Some(Value::Array(values)) = converted.get_mut("enum") {
                if !values.contains(&Value::Null) {
                    values.push(Value::Null);
                }
            }
            Value::Object(converted)
        }
        _ => json!({ "anyOf": [{ "type": "null" }, converted] }),
    }
}
