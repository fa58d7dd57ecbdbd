//! The check of the local GitHub's traffic against GitHub's OpenAPI description: it passes
//! what GitHub would send, fails what GitHub would not, and the local GitHub passes it on every
//! route the action's client uses, errors included.

use std::time::Duration;

use codex_auth::github::{Client, RetryPolicy, Scope, SecretTarget, WriteOutcome};
use codex_auth::redacted::Redacted;
use serde_json::{json, Value};

use crate::support::github::{self, Access, GitHub, Request, Run};
use crate::support::openapi::{assert_conforms, violations};

const KEY_PATH: &str = "/repos/octo/repo/actions/secrets/public-key";
const SECRET_PATH: &str = "/repos/octo/repo/actions/secrets/CODEX_AUTH_JSON";

/// A request and its answer as the local GitHub records them; a null `response` is no body.
fn exchange(
    method: &str,
    path: &str,
    body: Option<Value>,
    status: u16,
    response: Value,
) -> Request {
    Request {
        method: method.to_owned(),
        path: path.to_owned(),
        status,
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        response_type: (!response.is_null()).then(|| "application/json".to_owned()),
        response: match response {
            Value::Null => Vec::new(),
            response => response.to_string().into_bytes(),
        },
        injected: false,
        token: None,
    }
}

/// A write's body: a sealed value (base64) and the key it was sealed for.
fn sealed() -> Value {
    json!({"encrypted_value": "c2VjcmV0", "key_id": "3380204578043523367"})
}

#[test]
fn what_github_would_send_passes() {
    let requests = [
        exchange(
            "GET",
            KEY_PATH,
            None,
            200,
            json!({"key_id": "3380204578043523367", "key": "hBT5WZEj8ZoOv6TYJsfWq7MxTEQopZO5/IT3ZCVQPzs="}),
        ),
        exchange("PUT", SECRET_PATH, Some(sealed()), 201, json!({})),
        exchange("PUT", SECRET_PATH, Some(sealed()), 204, Value::Null),
        // Undeclared on this operation, but answered by GitHub everywhere: checked against the
        // description's shared 404 response.
        exchange(
            "GET",
            SECRET_PATH,
            None,
            404,
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}),
        ),
        exchange(
            "GET",
            "/orgs/octo-org/actions/secrets/CODEX_AUTH_JSON/repositories?per_page=100&page=1",
            None,
            200,
            json!({"total_count": 0, "repositories": []}),
        ),
    ];
    assert_eq!(violations(&requests), Vec::<String>::new());
    assert_conforms(&requests);
}

#[test]
fn what_github_would_not_send_fails_and_says_why() {
    let mut fault = exchange(
        "PUT",
        SECRET_PATH,
        Some(json!({"encrypted_value": "not base64!"})),
        503,
        json!("an injected fault's body is not checked"),
    );
    fault.injected = true;
    let requests = [
        // A public key without its key_id.
        exchange(
            "GET",
            KEY_PATH,
            None,
            200,
            json!({"key": "hBT5WZEj8ZoOv6TYJsfWq7MxTEQopZO5/IT3ZCVQPzs="}),
        ),
        // A write without key_id, whose value is not base64.
        exchange(
            "PUT",
            SECRET_PATH,
            Some(json!({"encrypted_value": "not base64!"})),
            201,
            json!({}),
        ),
        // An operation GitHub does not have.
        exchange(
            "GET",
            "/repos/octo/repo/actions/secretz",
            None,
            200,
            json!({}),
        ),
        // A method the path does not take.
        exchange("POST", KEY_PATH, None, 200, json!({})),
        // A status the write does not answer, with a body it never has.
        exchange("PUT", SECRET_PATH, Some(sealed()), 200, json!({"ok": true})),
        // 204 with a body.
        exchange("PUT", SECRET_PATH, Some(sealed()), 204, json!({})),
        // A run id that is not a number, and a query parameter the operation does not take.
        exchange(
            "GET",
            "/repos/octo/repo/actions/runs/latest?verbose=1",
            None,
            404,
            json!({"message": "Not Found"}),
        ),
        // A selected-repositories page whose repositories lack most required fields.
        exchange(
            "GET",
            "/orgs/octo-org/actions/secrets/S/repositories",
            None,
            200,
            json!({"total_count": 1, "repositories": [{"id": 1, "name": "r", "full_name": "o/r"}]}),
        ),
        // A secret whose last write is not a date-time.
        exchange(
            "GET",
            SECRET_PATH,
            None,
            200,
            json!({"name": "CODEX_AUTH_JSON", "created_at": "2025-01-15T08:00:00Z", "updated_at": "yesterday"}),
        ),
        fault,
    ];
    let found = violations(&requests);
    let expected: [&[&str]; 10] = [
        &[
            "GET /repos/octo/repo/actions/secrets/public-key → 200 (actions/get-repo-public-key)",
            "response 200 body at /: \"key_id\" is a required property",
        ],
        &[
            "PUT /repos/octo/repo/actions/secrets/CODEX_AUTH_JSON → 201 (actions/create-or-update-repo-secret)",
            "request body at /: \"key_id\" is a required property",
            "request body at /encrypted_value: \"not base64!\" does not match",
        ],
        &["the description has no path that matches /repos/octo/repo/actions/secretz"],
        &["the description has no POST for /repos/{owner}/{repo}/actions/secrets/public-key"],
        &[
            "→ 200 (actions/create-or-update-repo-secret)",
            "answered 200, which the operation does not declare (it declares [\"201\", \"204\"])",
        ],
        &["→ 204 (actions/create-or-update-repo-secret): response 204 has a body; the description declares none"],
        &[
            "(actions/get-workflow-run)",
            "path parameter run_id=\"latest\": at /: \"latest\" is not of type \"integer\"",
            "query parameter verbose is not described",
        ],
        &[
            "(actions/list-selected-repos-for-org-secret)",
            "response 200 body at /repositories/0: required properties are missing: ",
            "node_id",
        ],
        &[
            "(actions/get-repo-secret)",
            "response 200 body at /updated_at: \"yesterday\" is not a \"date-time\"",
        ],
        &[
            "→ 503 injected (actions/create-or-update-repo-secret)",
            "request body at /: \"key_id\" is a required property",
        ],
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for (line, parts) in found.iter().zip(expected) {
        for part in parts {
            assert!(line.contains(part), "{part:?} not in:\n{line}");
        }
    }
    assert!(
        !found[9].contains("503 body"),
        "an injected answer is not GitHub's: {}",
        found[9]
    );

    let failure = std::panic::catch_unwind(|| assert_conforms(&requests)).unwrap_err();
    let message = failure
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(
        message.starts_with(
            "10 of 10 requests to the local GitHub do not match GitHub's OpenAPI description"
        ),
        "{message}"
    );
    for line in &found {
        assert!(message.contains(line.as_str()), "{line} not in:\n{message}");
    }
}

/// Every route the action's client uses, through the client itself, against the local GitHub:
/// each answer, errors included, is one GitHub's description allows.
#[test]
fn the_local_github_answers_as_the_description_says() {
    let github = GitHub::start();
    let writer = "github_pat_11OPENAPIWRITE0000000_abcdefghijklmnopqrstuvwxyz";
    let no_secrets = "github_pat_11OPENAPINOSECRETS00000_abcdefghijklmnopqrstuvwx";
    let secrets_only = "github_pat_11OPENAPISECRETSONLY000_abcdefghijklmnopqrstuvwx";
    github.add_token(writer, Access::Write);
    github.add_token(no_secrets, Access::NoSecrets);
    github.add_token(secrets_only, Access::SecretsOnly);
    github.add_scope(&github::repo("octo/repo"));
    github.add_scope(&github::env("octo/repo", "prod east"));
    github.add_scope(&github::org("octo-org"));
    github.make_public("octo/repo");
    github.set_secret(&github::org("octo-org"), "SELECTED", "old");
    github.set_visibility(
        &github::org("octo-org"),
        "SELECTED",
        "selected",
        &[101, 202],
    );
    github.set_secret(&github::org("octo-org"), "ALL", "old");
    github.set_visibility(&github::org("octo-org"), "ALL", "all", &[]);
    github.add_run(
        4242,
        Run {
            created_at: github.timestamp(-120),
            run_started_at: github.timestamp(-60),
            run_attempt: 2,
        },
    );
    let target = |scope: Scope, name: &str| SecretTarget {
        scope,
        name: name.to_owned(),
        repository_id: Some(1),
    };
    let repository = target(
        Scope::Repository {
            repository: "octo/repo".into(),
        },
        "CODEX_AUTH_JSON",
    );
    let environment = target(
        Scope::Environment {
            repository: "octo/repo".into(),
            environment: "prod east".into(),
        },
        "CODEX_AUTH_JSON",
    );
    let organization = |name: &str| {
        target(
            Scope::Organization {
                organization: "octo-org".into(),
            },
            name,
        )
    };
    let missing = target(
        Scope::Repository {
            repository: "octo/missing".into(),
        },
        "CODEX_AUTH_JSON",
    );
    let policy = RetryPolicy {
        attempts: 1,
        ..RetryPolicy::default()
    }
    .within(Duration::from_secs(20));
    let transport = codex_auth::net::Transport::direct().unwrap();
    let client = |token: &str| {
        Client::new(&transport, &github.url(), &Redacted::new(token), policy).unwrap()
    };
    let value = Redacted::new("{\"tokens\":{}}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let api = client(writer);
        assert!(!api.repository_is_private("octo/repo").await.unwrap());
        api.run_queued_at("octo/repo", 4242, 2).await.unwrap();
        let targets = [
            (&repository, false),
            (&environment, false),
            (&organization("SELECTED"), true),
            (&organization("ALL"), true),
            (&organization("NEW"), false),
        ];
        for (target, existed) in targets {
            let first = match existed {
                true => WriteOutcome::Updated,
                false => WriteOutcome::Created,
            };
            assert_eq!(
                api.secret_updated_at(target).await.unwrap().is_some(),
                existed
            );
            api.public_key(target).await.unwrap();
            assert_eq!(api.write_secret(target, &value, None).await.unwrap(), first);
            assert_eq!(
                api.write_secret(target, &value, None).await.unwrap(),
                WriteOutcome::Updated
            );
        }
        // 401, 403 (no Secrets permission; no Actions: Read), 404.
        client("github_pat_unknown")
            .public_key(&repository)
            .await
            .unwrap_err();
        client(no_secrets)
            .public_key(&repository)
            .await
            .unwrap_err();
        client(secrets_only)
            .run_queued_at("octo/repo", 4242, 1)
            .await
            .unwrap_err();
        api.run_queued_at("octo/repo", 1, 1).await.unwrap_err();
        api.public_key(&missing).await.unwrap_err();
        // An error names the call it is about, not the secret.
        let error = api
            .repository_is_private("octo/missing")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("404 Not Found for the repository octo/missing")
                && !error.contains("secret"),
            "{error}"
        );
        // 422: a key that rotated after it was read is refused once, then read again.
        let key = api.public_key(&repository).await.unwrap();
        github.rotate_key(&github::repo("octo/repo"));
        api.write_secret(&repository, &value, Some(key))
            .await
            .unwrap();
    });

    let statuses: Vec<u16> = github.requests().iter().map(|r| r.status).collect();
    for status in [200, 201, 204, 401, 403, 404, 422] {
        assert!(statuses.contains(&status), "no {status} in {statuses:?}");
    }
    assert_conforms(&github.requests());
}
