//! The local artifact service (support/artifacts.rs) against the real client, `@actions/artifact`
//! at the version `scripts/tools` pins: what it uploads comes back byte for byte, through the
//! results service and through the REST API's redirect; the service checks sizes, hashes,
//! tokens, signatures and expiry as GitHub does.

use std::path::Path;

use axum::http::{HeaderMap, Method};
use pretty_assertions::assert_eq;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::support::artifacts::{
    hex, make_zip, send, zip_entries, Artifacts, Job, RealClient, RestApi, Seed,
};
use crate::support::openapi::assert_conforms;

const REPO: &str = "octo/repo";
const REPO_ID: u64 = 101;
const READ_TOKEN: &str = "ghs_actions_read";

/// A service that knows `octo/repo`, a job of run 4242 there, and a token that reads its
/// artifacts.
fn service() -> (Artifacts, Job, String) {
    let service = Artifacts::start();
    service.add_repository(REPO, REPO_ID);
    service.add_token(READ_TOKEN, REPO);
    let job = Job::new(REPO, 4242, 77);
    let token = service.runtime_token(&job);
    (service, job, token)
}

/// Bytes that do not compress to nothing, like a sealed auth.json.
fn payload() -> Vec<u8> {
    (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn what_the_real_client_uploads_it_downloads_back_both_ways() {
    let (service, job, token) = service();
    let client = RealClient::new(&service, &token).github_token(READ_TOKEN);
    let file = client.workspace().join("auth.sealed");
    std::fs::write(&file, payload()).unwrap();

    let uploaded = client.upload("codex-auth", &[&file]).unwrap();

    // CreateArtifact, the zip staged as blocks and committed, FinalizeArtifact.
    assert_eq!(
        service.steps(),
        [
            "twirp CreateArtifact 200",
            "blob PUT block 201",
            "blob PUT blocklist 201",
            "twirp FinalizeArtifact 200",
        ]
    );
    let calls = service.calls();
    assert_eq!(
        calls[0].json(),
        json!({
            "workflow_run_backend_id": job.run_backend_id(),
            "workflow_job_run_backend_id": job.job_backend_id(),
            "name": "codex-auth",
            "version": 7,
            "mime_type": "application/zip",
        })
    );
    assert_eq!(
        calls[0].header("authorization"),
        Some(&*format!("Bearer {token}"))
    );
    assert_eq!(
        calls[2].header("x-ms-blob-content-type"),
        Some("application/zip")
    );
    let id = uploaded["id"].as_u64().unwrap();
    let stored = service.artifact(id).unwrap();
    let zip = service.zip(id).unwrap();
    let digest = hex(&Sha256::digest(&zip));
    assert_eq!(
        calls[3].json(),
        json!({
            "workflow_run_backend_id": job.run_backend_id(),
            "workflow_job_run_backend_id": job.job_backend_id(),
            "name": "codex-auth",
            "size": zip.len().to_string(),
            "hash": format!("sha256:{digest}"),
        })
    );
    assert_eq!(
        uploaded,
        json!({"id": id, "size": zip.len(), "digest": digest})
    );
    assert!(stored.finalized);
    assert_eq!(stored.digest, Some(format!("sha256:{digest}")));
    assert_eq!(zip_entries(&zip), [("auth.sealed".to_owned(), payload())]);

    // Found and listed through the results service, with the finalized size and digest.
    assert_eq!(client.get("codex-auth").unwrap()["artifact"]["id"], id);
    let listed = client.list().unwrap();
    assert_eq!(listed["artifacts"][0]["id"], id);
    assert_eq!(listed["artifacts"][0]["name"], "codex-auth");
    assert_eq!(listed["artifacts"][0]["size"], zip.len());
    assert_eq!(listed["artifacts"][0]["digest"], format!("sha256:{digest}"));
    assert_eq!(listed["artifacts"].as_array().unwrap().len(), 1);

    // Downloaded through the results service: ListArtifacts by id, GetSignedArtifactURL.
    let before = service.calls().len();
    let internal = client.workspace().join("internal");
    let downloaded = client.download(id, &internal).unwrap();
    assert_eq!(downloaded["digestMismatch"], false);
    assert_eq!(read(&internal.join("auth.sealed")), payload());
    assert_eq!(
        service.steps()[before..],
        [
            "twirp ListArtifacts 200",
            "twirp GetSignedArtifactURL 200",
            "blob GET 200",
        ]
    );
    assert_eq!(
        service.calls()[before].json(),
        json!({
            "workflow_run_backend_id": job.run_backend_id(),
            "workflow_job_run_backend_id": job.job_backend_id(),
            "id_filter": id.to_string(),
        })
    );

    // Downloaded through the REST API: 302 to a signed blob URL.
    let before = service.calls().len();
    let public = client.workspace().join("public");
    client
        .download_public(id, &public, REPO, job.run_id)
        .unwrap();
    assert_eq!(read(&public.join("auth.sealed")), payload());
    assert_eq!(
        service.steps()[before..],
        [
            format!("rest GET /repos/{REPO}/actions/artifacts/{id}/zip 302"),
            "blob GET 200".to_owned(),
        ]
    );

    // Listed through the REST API for the run.
    let listed = client.list_public(REPO, job.run_id).unwrap();
    assert_eq!(listed["artifacts"][0]["id"], id);
    assert_eq!(listed["artifacts"][0]["digest"], format!("sha256:{digest}"));

    assert_conforms(&service.rest_requests());
}

#[test]
fn finalize_checks_the_size_and_the_hash_of_a_put_blob() {
    let (service, job, token) = service();
    let ids = json!({
        "workflow_run_backend_id": job.run_backend_id(),
        "workflow_job_run_backend_id": job.job_backend_id(),
        "name": "codex-auth",
    });
    let with = |extra: Value| {
        let mut body = ids.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };

    // The twirp service wants the job's own token and backend ids.
    let (status, body) = service.twirp(
        "not-a-token",
        "CreateArtifact",
        &with(json!({"version": 7})),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let other = service.runtime_token(&Job::new(REPO, 4243, 78));
    let (status, body) = service.twirp(&other, "CreateArtifact", &with(json!({"version": 7})));
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("permission_denied"))
    );

    let (status, created) = service.twirp(
        &token,
        "CreateArtifact",
        &with(json!({"version": 7, "mime_type": "application/zip"})),
    );
    assert_eq!((status, created["ok"].as_bool()), (200, Some(true)));
    let url = created["signed_upload_url"].as_str().unwrap().to_owned();

    // "Put Blob": one PUT of the whole zip.
    let zip = make_zip(&[("auth.sealed", &payload())]);
    let put = send(
        "PUT",
        &url,
        &[
            ("x-ms-blob-type", "BlockBlob"),
            ("x-ms-blob-content-type", "application/zip"),
        ],
        &zip,
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));

    let hash = format!("sha256:{}", hex(&Sha256::digest(&zip)));
    let size = zip.len().to_string();
    let wrong_hash = format!("sha256:{}", hex(&Sha256::digest(b"something else")));
    let (status, body) = service.twirp(
        &token,
        "FinalizeArtifact",
        &with(json!({"size": size, "hash": wrong_hash})),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_argument"))
    );
    let (status, body) = service.twirp(
        &token,
        "FinalizeArtifact",
        &with(json!({"size": (zip.len() + 1).to_string(), "hash": hash})),
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_argument"))
    );
    // Refused finalizes leave it unfinished: invisible.
    assert_eq!(
        service.twirp(&token, "ListArtifacts", &ids).1,
        json!({"artifacts": []})
    );

    let (status, finalized) = service.twirp(
        &token,
        "FinalizeArtifact",
        &with(json!({"size": size, "hash": hash})),
    );
    assert_eq!((status, finalized["ok"].as_bool()), (200, Some(true)));
    let id: u64 = finalized["artifact_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(service.artifact(id).unwrap().digest, Some(hash.clone()));

    // A second artifact of the same name in the same run is refused, as v4 does.
    let (status, body) = service.twirp(&token, "CreateArtifact", &with(json!({"version": 7})));
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("already_exists"))
    );

    // The real client reads what a Rust uploader stored that way.
    let client = RealClient::new(&service, &token);
    let dir = client.workspace().join("out");
    let downloaded = client.download(id, &dir).unwrap();
    assert_eq!(downloaded["digestMismatch"], false);
    assert_eq!(read(&dir.join("auth.sealed")), payload());
}

#[test]
fn expired_unsigned_and_unauthorized_requests_are_refused() {
    let (service, job, token) = service();
    let zip = make_zip(&[("auth.sealed", b"sealed")]);
    let old = service.add(Seed::new(&job, "codex-auth", zip.clone()).created_ago(7200));
    let fork = service.add(
        Seed::new(&job, "codex-auth", zip.clone())
            .created_ago(3600)
            .from_fork(999),
    );
    let newest = service.add(Seed::new(&job, "codex-auth", zip.clone()));
    service.expire(old);
    let api = service.api_url();
    let get = |path: &str, token: Option<&str>| {
        let authorization = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|a| ("authorization", a.as_str()))
            .collect();
        send("GET", &format!("{api}{path}"), &headers, b"")
    };

    // The repository's list by name: newest first, expired ones marked, forks' runs told apart
    // by head_repository_id.
    let listed = get(
        &format!("/repos/{REPO}/actions/artifacts?name=codex-auth&per_page=100&page=1"),
        Some(READ_TOKEN),
    );
    assert_eq!(listed.status, 200);
    let summary: Vec<Value> = listed.json()["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            json!([
                a["id"],
                a["expired"],
                a["workflow_run"]["repository_id"],
                a["workflow_run"]["head_repository_id"]
            ])
        })
        .collect();
    assert_eq!(
        summary,
        [
            json!([newest, false, REPO_ID, REPO_ID]),
            json!([fork, false, REPO_ID, 999]),
            json!([old, true, REPO_ID, REPO_ID]),
        ]
    );
    assert_eq!(listed.json()["total_count"], 3);
    let paged = get(
        &format!("/repos/{REPO}/actions/artifacts?name=codex-auth&per_page=1&page=2"),
        Some(READ_TOKEN),
    );
    assert_eq!(paged.json()["artifacts"][0]["id"], fork);
    assert!(paged
        .header("link")
        .unwrap()
        .contains("page=3>; rel=\"next\""));

    // Not usable once expired: neither listed by the results service nor downloadable.
    let client = RealClient::new(&service, &token).github_token(READ_TOKEN);
    let ids: Vec<u64> = client.list().unwrap()["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [fork, newest]);
    let gone = get(
        &format!("/repos/{REPO}/actions/artifacts/{old}/zip"),
        Some(READ_TOKEN),
    );
    assert_eq!(
        (gone.status, gone.json()["message"].as_str()),
        (410, Some("Artifact has expired"))
    );
    let error = client
        .download_public(old, &client.workspace().join("old"), REPO, job.run_id)
        .unwrap_err();
    assert!(error.contains("Artifact has expired"), "{error}");
    let error = client
        .download(old, &client.workspace().join("old"))
        .unwrap_err();
    assert!(
        error.contains(&format!("No artifacts found for ID: {old}")),
        "{error}"
    );

    // GitHub's answers without a token, with a bad one, for an unknown artifact, to a token
    // of another repository or without "Actions: read".
    let zip_path = format!("/repos/{REPO}/actions/artifacts/{newest}/zip");
    service.add_repository("octo/other", 102);
    service.add_token("ghs_other", "octo/other");
    service.add_token_without_actions("ghs_secrets_only", REPO);
    let statuses: Vec<(u16, String)> = [
        get(&zip_path, None),
        get(&zip_path, Some("ghs_unknown")),
        get(
            &format!("/repos/{REPO}/actions/artifacts/1/zip"),
            Some(READ_TOKEN),
        ),
        get(&zip_path, Some("ghs_other")),
        get(&zip_path, Some("ghs_secrets_only")),
    ]
    .iter()
    .map(|a| {
        (
            a.status,
            a.json()["message"].as_str().unwrap_or_default().to_owned(),
        )
    })
    .collect();
    assert_eq!(
        statuses,
        [
            (401, "Requires authentication".to_owned()),
            (401, "Bad credentials".to_owned()),
            (404, "Not Found".to_owned()),
            (404, "Not Found".to_owned()),
            (
                403,
                "Resource not accessible by personal access token".to_owned()
            ),
        ]
    );

    // The same answers, mounted on another server (the local GitHub of the end-to-end tests).
    assert!(RestApi::serves(&zip_path));
    assert!(!RestApi::serves(&format!(
        "/repos/{REPO}/actions/secrets/CODEX_AUTH_JSON"
    )));
    let mut headers = HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {READ_TOKEN}").parse().unwrap(),
    );
    let mounted = service
        .rest_api()
        .answer(&Method::GET, &zip_path.parse().unwrap(), &headers);
    assert_eq!(mounted.status(), 302);

    // The redirect's signed URL works; unsigned, expired or altered, it is refused.
    let found = get(&zip_path, Some(READ_TOKEN));
    assert_eq!(found.status, 302);
    let location = found.header("location").unwrap().to_owned();
    assert_eq!(send("GET", &location, &[], b"").body, zip);
    let unsigned = location.split('?').next().unwrap().to_owned();
    let expired = service.signed_url(newest, "r", -1);
    let altered = location.replace("sig=", "sig=A");
    let write_only = service.signed_url(newest, "cw", 60);
    for url in [&unsigned, &expired, &altered, &write_only] {
        let refused = send("GET", url, &[], b"");
        assert_eq!(refused.status, 403, "{url}");
        assert_eq!(
            refused.header("x-ms-error-code"),
            Some("AuthenticationFailed"),
            "{url}"
        );
    }
    // Nor can a read URL write.
    let overwrite = send(
        "PUT",
        &location,
        &[("x-ms-blob-type", "BlockBlob")],
        b"evil",
    );
    assert_eq!(overwrite.status, 403);
    assert_eq!(service.zip(newest).unwrap(), zip);

    assert_conforms(&service.rest_requests());
}
