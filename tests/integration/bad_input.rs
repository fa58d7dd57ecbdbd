//! A corpus of malformed and hostile `auth-json` values. Each is rejected with its own precise
//! message, by the library and by the binary (`inspect -`, and the action's main stage for a
//! sample), with no panic and without echoing the value.

use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use codex_auth::auth_file::AuthFile;
use serde_json::{json, Value};

use crate::support::job::{Job, StageRun, WRITE_TOKEN};
use crate::support::jwt;
use crate::support::openai::Responses;
use crate::support::world::{annotation, World};

/// A marker inside every token: it must never appear in any output.
const CANARY: &str = "CANARYc4n4ry";

fn valid() -> Value {
    json!({
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": null,
        "tokens": {
            "id_token": jwt(&json!({"email": "a@example.test", "note": CANARY})),
            "access_token": format!("at_{CANARY}"),
            "refresh_token": format!("rt_{CANARY}"),
            "account_id": "acc-1"
        },
        "last_refresh": "2026-11-01T00:00:00Z"
    })
}

fn with(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value = valid();
    edit(&mut value);
    value.to_string().into_bytes()
}

fn without(path: &[&str]) -> Vec<u8> {
    with(|v| {
        let (last, parents) = path.split_last().unwrap();
        let mut at = v;
        for p in parents {
            at = &mut at[*p];
        }
        at.as_object_mut().unwrap().remove(*last);
    })
}

fn corpus() -> Vec<(&'static str, Vec<u8>, String)> {
    let text = valid().to_string();
    let large = format!("{{\"pad\":\"{}\"}}", "x".repeat(10 * 1024 * 1024));
    let bomb = format!("{{\"a\":{}{}}}", "[".repeat(20_000), "]".repeat(20_000));
    let half = text.len() / 2;
    let truncated =
        format!("it is not valid JSON: EOF while parsing a string at line 1 column {half}");
    let trailing = format!(
        "it is not valid JSON: trailing characters at line 1 column {}",
        text.len() + 2
    );
    let duplicate = format!("{{\"last_refresh\":\"2026-11-01T00:00:00Z\",{}", &text[1..]);
    let duplicate_at = duplicate.rfind("\"last_refresh\"").unwrap() + 14;
    let twice = text.replacen(
        "\"account_id\":\"acc-1\"",
        "\"account_id\":\"acc-1\",\"account_id\":\"acc-2\"",
        1,
    );
    let twice_at = twice.rfind("\"account_id\"").unwrap() + 12;
    let duplicate_token = format!("it has a duplicate key at line 1 column {twice_at}: JSON readers disagree on which value wins, so the file is ambiguous");
    let too_large = format!(
        "it is {} bytes, more than the 48 KB (49152 bytes) a GitHub secret can hold",
        large.len()
    );
    let duplicate_top = format!("it has a duplicate key at line 1 column {duplicate_at}: JSON readers disagree on which value wins, so the file is ambiguous");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", b"".to_vec(), "it is empty"),
        ("whitespace", b" \n\t \r\n".to_vec(), "it is empty"),
        ("null", b"null".to_vec(), "it is a JSON null, not an object"),
        ("array", b"[1,2]".to_vec(), "it is a JSON array, not an object"),
        ("string", format!("\"{CANARY}\"").into_bytes(), "it is a JSON string, not an object"),
        ("number", b"42".to_vec(), "it is a JSON number, not an object"),
        ("boolean", b"true".to_vec(), "it is a JSON boolean, not an object"),
        ("truncated", text.as_bytes()[..text.len() / 2].to_vec(), &truncated),
        ("trailing garbage", format!("{text} {CANARY}").into_bytes(), &trailing),
        ("single quotes", b"{'tokens': 1}".to_vec(), "it is not valid JSON: key must be a string at line 1 column 2"),
        ("trailing comma", b"{\"a\": 1,}".to_vec(), "it is not valid JSON: trailing comma at line 1 column 9"),
        ("comment", b"// login\n{}".to_vec(), "it is neither a JSON object (it does not start with `{`) nor base64"),
        ("control character", b"{\"a\": \"x\x01y\"}".to_vec(), "it is not valid JSON: control character (\\u0000-\\u001F) found while parsing a string at line 1 column 9"),
        ("nested bomb", bomb.into_bytes(), "it is not valid JSON: recursion limit exceeded at line 1 column 132"),
        ("10 MB", large.clone().into_bytes(), &too_large),
        ("invalid UTF-8", b"{\"tokens\": \"\xff\xfe\"}".to_vec(), "it is not UTF-8 text"),
        ("byte-order mark", [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(), "it starts with a UTF-8 byte-order mark; save the file without a BOM"),
        ("duplicate top-level key", duplicate.clone().into_bytes(), &duplicate_top),
        ("duplicate token key", twice.clone().into_bytes(), &duplicate_token),
        ("api-key mode", with(|v| v["auth_mode"] = "apikey".into()), "it is an API-key login (auth_mode \"apikey\" or only OPENAI_API_KEY); codex-auth keeps a ChatGPT login alive, and an API key needs no refreshing: pass it to Codex as a secret instead"),
        ("api key only", format!("{{\"OPENAI_API_KEY\":\"sk-{CANARY}\"}}").into_bytes(), "it is an API-key login (auth_mode \"apikey\" or only OPENAI_API_KEY); codex-auth keeps a ChatGPT login alive, and an API key needs no refreshing: pass it to Codex as a secret instead"),
        ("unknown auth_mode", with(|v| v["auth_mode"] = CANARY.into()), "auth_mode has a value Codex does not know; expected \"chatgpt\""),
        ("copy with a refresh token", with(|v| v["auth_mode"] = "chatgptAuthTokens".into()), "auth_mode \"chatgptAuthTokens\" marks an access-only copy, but `tokens.refresh_token` is not empty, so it is neither a full login nor a copy: for the full login, set auth_mode to \"chatgpt\"; for a copy, make it again from the full login (the keeper's input `access-secret-name` writes one)"),
        ("copy without refresh_token", with(|v| { v["auth_mode"] = "chatgptAuthTokens".into(); v["tokens"].as_object_mut().unwrap().remove("refresh_token"); }), "`tokens.refresh_token` is missing, expected an empty string (an access-only copy keeps the field, empty)"),
        ("copy with a null refresh_token", with(|v| { v["auth_mode"] = "chatgptAuthTokens".into(); v["tokens"]["refresh_token"] = Value::Null; }), "`tokens.refresh_token` is null, expected an empty string (an access-only copy keeps the field, empty)"),
        ("full login with an empty refresh_token", with(|v| v["tokens"]["refresh_token"] = "".into()), "`tokens.refresh_token` is missing or empty"),
        ("agentIdentity mode", with(|v| v["auth_mode"] = "agentIdentity".into()), "auth_mode \"agentIdentity\" is not a ChatGPT login; only \"chatgpt\" logins can be kept fresh"),
        ("auth_mode number", with(|v| v["auth_mode"] = 1.into()), "`auth_mode` is a number, expected a string"),
        ("tokens missing", without(&["tokens"]), "`tokens` is missing or empty"),
        ("tokens array", with(|v| v["tokens"] = json!([CANARY])), "`tokens` is an array, expected an object"),
        ("access_token missing", without(&["tokens", "access_token"]), "`tokens.access_token` is missing or empty"),
        ("access_token empty", with(|v| v["tokens"]["access_token"] = "".into()), "`tokens.access_token` is missing or empty"),
        ("refresh_token null", with(|v| v["tokens"]["refresh_token"] = Value::Null), "`tokens.refresh_token` is missing or empty"),
        ("refresh_token number", with(|v| v["tokens"]["refresh_token"] = 7.into()), "`tokens.refresh_token` is a number, expected a string"),
        ("account_id missing", without(&["tokens", "account_id"]), "`tokens.account_id` is missing or empty"),
        ("account_id object", with(|v| v["tokens"]["account_id"] = json!({"id": CANARY})), "`tokens.account_id` is an object, expected a string"),
        ("id_token two parts", with(|v| v["tokens"]["id_token"] = format!("a.{CANARY}").into()), "`tokens.id_token` is not a JWT: it needs three non-empty parts separated by dots"),
        ("id_token four parts", with(|v| v["tokens"]["id_token"] = format!("a.b.c.{CANARY}").into()), "`tokens.id_token` is not a JWT: it needs three non-empty parts separated by dots"),
        ("id_token empty part", with(|v| v["tokens"]["id_token"] = format!("a..{CANARY}").into()), "`tokens.id_token` is not a JWT: it needs three non-empty parts separated by dots"),
        ("id_token bad base64", with(|v| v["tokens"]["id_token"] = format!("a.!!{CANARY}!!.c").into()), "the payload of `tokens.id_token` is not base64url-encoded JSON"),
        ("id_token payload not JSON", with(|v| v["tokens"]["id_token"] = format!("a.{}.c", STANDARD.encode("not json").trim_end_matches('=')).into()), "the payload of `tokens.id_token` is not base64url-encoded JSON"),
        ("id_token payload array", with(|v| v["tokens"]["id_token"] = format!("a.{}.c", STANDARD.encode("[1]").trim_end_matches('=')).into()), "the payload of `tokens.id_token` is not base64url-encoded JSON"),
        ("last_refresh missing", without(&["last_refresh"]), "`last_refresh` is missing or empty"),
        ("last_refresh words", with(|v| v["last_refresh"] = "yesterday".into()), "`last_refresh` is not an RFC 3339 timestamp such as 2026-01-31T12:00:00Z"),
        ("last_refresh month 13", with(|v| v["last_refresh"] = "2026-13-01T00:00:00Z".into()), "`last_refresh` is not an RFC 3339 timestamp such as 2026-01-31T12:00:00Z"),
        ("last_refresh no offset", with(|v| v["last_refresh"] = "2026-01-01T00:00:00".into()), "`last_refresh` is not an RFC 3339 timestamp such as 2026-01-31T12:00:00Z"),
        ("last_refresh number", with(|v| v["last_refresh"] = 1_700_000_000.into()), "`last_refresh` is a number, expected a string"),
        ("last_refresh future", with(|v| v["last_refresh"] = "2099-01-01T00:00:00Z".into()), "`last_refresh` is more than an hour in the future; the file was edited or made on a machine with a wrong clock"),
        ("base64 of garbage", STANDARD.encode([0u8, 1, 2, 3, 250, 251]).into_bytes(), "it is base64, but what it decodes to is not a JSON object"),
        ("base64 of invalid UTF-8", STANDARD.encode(b"{\xff\xfe}").into_bytes(), "it is base64, but what it decodes to is not a JSON object"),
        ("base64 of an api-key file", STANDARD.encode(format!("{{\"auth_mode\":\"apikey\",\"OPENAI_API_KEY\":\"sk-{CANARY}\"}}")).into_bytes(), "it is an API-key login (auth_mode \"apikey\" or only OPENAI_API_KEY); codex-auth keeps a ChatGPT login alive, and an API key needs no refreshing: pass it to Codex as a secret instead"),
        ("not base64", format!("%%{CANARY}%%").into_bytes(), "it is neither a JSON object (it does not start with `{`) nor base64"),
        ("base64 of truncated JSON", STANDARD.encode(&text[..40]).into_bytes(), "it is not valid JSON: EOF while parsing a string at line 1 column 40"),
    ];
    cases
        .into_iter()
        .map(|(name, input, expected)| (name, input, expected.to_owned()))
        .collect()
}

#[test]
fn the_corpus_is_large_enough() {
    assert!(corpus().len() >= 40, "{} cases", corpus().len());
}

#[test]
fn every_value_is_rejected_with_its_own_message_by_the_library() {
    for (name, input, expected) in corpus() {
        let error = AuthFile::decode_bytes(&input).err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some(expected.as_str()), "case {name:?}");
        assert!(!expected.contains(CANARY), "case {name:?} echoes the value");
    }
}

#[test]
fn every_value_is_rejected_by_the_binary_without_panic_or_echo() {
    for (name, input, expected) in corpus() {
        let mut child = Command::new(env!("CARGO_BIN_EXE_codex-auth"))
            .args(["inspect", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&input).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "case {name:?}: {stderr}");
        assert_eq!(
            stderr,
            format!(
                "error: Invalid auth.json: standard input is not a usable Codex ChatGPT login: \
                 {expected}\n"
            ),
            "case {name:?}"
        );
        assert!(out.stdout.is_empty(), "case {name:?}");
        assert!(!stderr.contains(CANARY), "case {name:?}");
    }
}

#[test]
fn inspect_titles_a_missing_file_and_an_unreadable_one() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("auth.json");
    let inspect = |path: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_codex-auth"))
            .arg("inspect")
            .arg(path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert_eq!(
        inspect(&missing),
        format!(
            "error: No auth.json: {} does not exist: run `codex login` (ChatGPT sign-in) first, \
             or pass a file\n",
            missing.display()
        )
    );
    // A directory: read fails with an error of the system's.
    assert_eq!(
        inspect(dir.path()),
        format!(
            "error: auth.json not readable: cannot read {}: Is a directory (os error 21)\n",
            dir.path().display()
        )
    );
}

/// The image `scripts/test` built from the project's Dockerfile.
fn image() -> String {
    std::env::var("CODEX_AUTH_TEST_IMAGE").unwrap_or_else(|_| {
        panic!("CODEX_AUTH_TEST_IMAGE is not set: run the tests with scripts/test, which builds the image with tests/container/build")
    })
}

/// The lines of a stage's log that are error annotations.
fn errors(run: &StageRun) -> Vec<&str> {
    run.stdout
        .lines()
        .filter(|l| l.starts_with("::error"))
        .collect()
}

#[test]
fn an_input_error_stops_main_under_its_own_title_and_post_does_not_repeat_it() {
    let world = World::new(Responses::Ok);
    // The sign-in workflow without its repository variable: `expected-account` is empty.
    let mut job = Job::new(&world.github, &world.openai);
    job.input("mode", "login")
        .input("token", WRITE_TOKEN)
        .input("expected-account", "")
        .in_container(&image())
        .owned_by(1001);
    let main = job.main();
    assert_eq!(main.code, 1, "{}\n{}", main.stdout, main.stderr);
    assert_eq!(errors(&main).len(), 1, "{}", main.stdout);
    let message = annotation(&main, "Expected account missing");
    assert!(
        message.starts_with(
            "input `expected-account` is empty: `mode: login` needs the email or ChatGPT \
             account id of the account the workflows should use"
        ),
        "{message}"
    );
    assert!(main.state.is_empty(), "{:?}", main.state);

    let post = job.post(&main);
    post.assert_ok();
    assert_eq!(errors(&post), Vec::<&str>::new(), "{}", post.stdout);
    assert_eq!(
        post.stdout,
        "The main stage stopped before restoring auth.json: nothing to write back.\n"
    );
    assert!(post.stderr.is_empty(), "{}", post.stderr);
    // Neither stage reached GitHub or Codex.
    assert_eq!(world.github.requests().len(), 0);
    assert_eq!(job.codex_calls().len(), 0);
    world.assert_no_secret_leaked(&[&main, &post]);
}

#[test]
fn post_fails_loudly_when_main_restored_a_login_and_its_configuration_breaks() {
    let world = World::new(Responses::Ok);
    let seed = world.openai.seed(false);
    let mut job = world.job(&seed);
    job.input("mode", "restore")
        .in_container(&image())
        .owned_by(1001);
    let main = job.main();
    main.assert_ok();
    assert!(main.state.contains_key("handoff"), "{:?}", main.state);
    // A later step of the job breaks what the post stage reads (through GITHUB_ENV).
    job.env("GITHUB_API_URL", "http://ghe.example/api/v3");
    let post = job.post(&main);
    assert_eq!(post.code, 1, "{}\n{}", post.stdout, post.stderr);
    assert_eq!(errors(&post).len(), 1, "{}", post.stdout);
    let message = annotation(&post, "GITHUB_API_URL not usable");
    assert!(
        message.starts_with(
            "GITHUB_API_URL \"http://ghe.example/api/v3\" must use https (plain http is only \
             for loopback). The main stage restored a login (or made a \
             write probe), and the post stage cannot read its configuration: nothing that \
             changed since the main stage stored the login was written back."
        ),
        "{message}"
    );
    world.assert_no_secret_leaked(&[&main, &post]);
}
