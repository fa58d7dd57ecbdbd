//! `codex-auth seed` against the local GitHub: the login on disk, validated, compact and
//! sealed into the chosen secret, which the action then restores and keeps fresh.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::github::{self, Access, StoredSecret};
use crate::support::job::{Job, WRITE_TOKEN};
use crate::support::openai::Responses;
use crate::support::world::{World, REPO, SECRET};

/// Runs `codex-auth seed ARGS` with the local API and `token` in GH_TOKEN (none when empty),
/// stdin and stderr not a terminal.
fn seed(world: &World, home: &Path, token: &str, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_codex-auth"));
    command
        .arg("seed")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GITHUB_API_URL", world.github.url())
        .stdin(Stdio::null());
    if !token.is_empty() {
        command.env("GH_TOKEN", token);
    }
    command.output().unwrap()
}

/// A home whose ~/.codex/auth.json is `login`, pretty-printed as Codex writes it.
fn home_with(login: &Value) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".codex")).unwrap();
    std::fs::write(
        home.path().join(".codex/auth.json"),
        serde_json::to_string_pretty(login).unwrap(),
    )
    .unwrap();
    home
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_no_token_shown(world: &World, output: &Output) {
    let shown = text(output);
    let mut secrets = world.openai.all_token_values();
    secrets.push(WRITE_TOKEN.to_owned());
    for secret in secrets {
        assert!(!shown.contains(&secret), "a token was printed:\n{shown}");
    }
}

fn stored(world: &World, scope: &str) -> StoredSecret {
    world.github.secret(scope, SECRET).unwrap()
}

#[test]
fn seeds_a_repository_secret_that_the_action_then_keeps_fresh() {
    let world = World::new(Responses::Ok);
    let login = world.openai.seed(true);
    let home = home_with(&login);

    let output = seed(&world, home.path(), WRITE_TOKEN, &["--repo", REPO]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains(&format!(
            "Created the repository secret {SECRET} of {REPO} from {}",
            home.path().join(".codex/auth.json").display()
        )),
        "{}",
        text(&output)
    );
    assert!(text(&output).contains("Never run `codex logout`"));
    assert_no_token_shown(&world, &output);
    // One line, the same login.
    let secret = stored(&world, &github::repo(REPO));
    assert!(!secret.value.contains('\n'));
    assert_eq!(serde_json::from_str::<Value>(&secret.value).unwrap(), login);
    let requests: Vec<(String, String)> = world
        .github
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        requests,
        [
            ("GET".into(), "/repos/octo/repo".into()),
            (
                "GET".into(),
                "/repos/octo/repo/actions/secrets/public-key".into()
            ),
            (
                "PUT".into(),
                "/repos/octo/repo/actions/secrets/CODEX_AUTH_JSON".into()
            ),
        ]
    );

    // The action restores exactly that value in a run queued after the seed, Codex refreshes
    // it, and it is written back.
    world.github.add_first_attempt(4242, 100);
    let mut job = Job::new(&world.github, &world.openai);
    job.input("auth-json", secret.value)
        .input("token", WRITE_TOKEN);
    let main = job.main();
    main.assert_ok();
    assert_eq!(main.output("persisted"), "true");
    world.assert_secret_holds_the_latest_login();
}

#[test]
fn updates_an_environment_secret_named_with_spaces() {
    let world = World::new(Responses::Ok);
    world.github.add_scope(&github::env(REPO, "prod east"));
    world
        .github
        .set_secret(&github::env(REPO, "prod east"), SECRET, "old");
    let login = world.openai.seed(false);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), login.to_string()).unwrap();
    let home = tempfile::tempdir().unwrap();

    let output = seed(
        &world,
        home.path(),
        WRITE_TOKEN,
        &[
            "--repo",
            REPO,
            "--env",
            "prod east",
            "--file",
            file.path().to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("Updated the environment secret"));
    let secret = stored(&world, &github::env(REPO, "prod east"));
    assert_eq!(serde_json::from_str::<Value>(&secret.value).unwrap(), login);
    assert!(world
        .github
        .requests()
        .iter()
        .any(|r| r.path == "/repos/octo/repo/environments/prod%20east/secrets/CODEX_AUTH_JSON"));
}

#[test]
fn an_organization_secret_keeps_its_selected_repositories() {
    let world = World::new(Responses::Ok);
    world.github.add_scope(&github::org("octo"));
    world.github.set_secret(&github::org("octo"), SECRET, "old");
    world
        .github
        .set_visibility(&github::org("octo"), SECRET, "selected", &[7, 9]);
    let home = home_with(&world.openai.seed(false));

    let output = seed(&world, home.path(), WRITE_TOKEN, &["--org", "octo"]);
    assert!(output.status.success(), "{}", text(&output));
    let secret = stored(&world, &github::org("octo"));
    assert_eq!(secret.visibility.as_deref(), Some("selected"));
    assert_eq!(secret.selected_repository_ids, [7, 9]);
}

#[test]
fn a_new_organization_secret_is_visible_to_the_named_repository_alone() {
    let world = World::new(Responses::Ok);
    world.github.add_scope(&github::org("octo"));
    let home = home_with(&world.openai.seed(false));

    // Without --repo there is no repository to make it visible to: nothing is written.
    let output = seed(&world, home.path(), WRITE_TOKEN, &["--org", "octo"]);
    assert!(!output.status.success());
    let shown = text(&output);
    assert!(shown.contains("pass --repo OWNER/REPO"), "{shown}");
    assert!(world.github.secret(&github::org("octo"), SECRET).is_none());

    // With it: `selected`, that repository alone (its id read from the API).
    let output = seed(
        &world,
        home.path(),
        WRITE_TOKEN,
        &["--org", "octo", "--repo", REPO],
    );
    assert!(output.status.success(), "{}", text(&output));
    let secret = stored(&world, &github::org("octo"));
    assert_eq!(secret.visibility.as_deref(), Some("selected"));
    assert_eq!(secret.selected_repository_ids, [1]);
    assert!(world
        .github
        .requests()
        .iter()
        .any(|r| r.method == "GET" && r.path == format!("/repos/{REPO}")));
    assert_no_token_shown(&world, &output);
}

#[test]
fn refuses_what_it_must_not_write_before_writing_anything() {
    let world = World::new(Responses::Ok);
    let home = home_with(&world.openai.seed(false));
    let api_key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        api_key.path(),
        r#"{"OPENAI_API_KEY":"sk-test","tokens":null,"last_refresh":null}"#,
    )
    .unwrap();
    let api_key = api_key.path().to_str().unwrap();
    let mut copy = world.openai.seed(false);
    copy["auth_mode"] = "chatgptAuthTokens".into();
    copy["tokens"]["refresh_token"] = "".into();
    let copy_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(copy_file.path(), copy.to_string()).unwrap();
    let copy_file = copy_file.path().to_str().unwrap();
    world.github.add_token("read-only", Access::NoSecrets);
    let cases: [(&str, Vec<&str>, &str); 7] = [
        (
            WRITE_TOKEN,
            vec!["--repo", REPO, "--file", api_key],
            "is not a usable Codex ChatGPT login",
        ),
        (
            WRITE_TOKEN,
            vec!["--repo", REPO, "--file", copy_file],
            "is an access-only copy (auth_mode \"chatgptAuthTokens\", no refresh token): seed stores the full login",
        ),
        (
            "",
            vec!["--repo", REPO],
            "set GH_TOKEN to a token that can write the secret",
        ),
        (
            WRITE_TOKEN,
            vec!["--repo", "octo"],
            "--repo \"octo\" is not of the form owner/name",
        ),
        (
            WRITE_TOKEN,
            vec!["--repo", REPO, "--secret", "GITHUB_X"],
            "--secret \"GITHUB_X\" must not start with GITHUB_",
        ),
        (
            "wrong",
            vec!["--repo", REPO],
            "GitHub rejected the token (401 Bad credentials) while accessing the repository octo/repo. Check the token in GH_TOKEN",
        ),
        (
            "read-only",
            vec!["--repo", REPO],
            "the token in GH_TOKEN may not access the repository secret",
        ),
    ];
    for (token, args, expected) in cases {
        let output = seed(&world, home.path(), token, &args);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", text(&output));
        assert!(
            text(&output).contains(expected),
            "{args:?}: expected {expected:?} in:\n{}",
            text(&output)
        );
    }
    assert_eq!(world.github.count("PUT"), 0);

    world.github.make_public(REPO);
    let output = seed(&world, home.path(), WRITE_TOKEN, &["--repo", REPO]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("the public repository octo/repo")
            && text(&output).contains("or pass --allow-public-repository if you accept"),
        "{}",
        text(&output)
    );
    assert_eq!(world.github.count("PUT"), 0);
    let output = seed(
        &world,
        home.path(),
        WRITE_TOKEN,
        &["--repo", REPO, "--allow-public-repository"],
    );
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn asks_for_the_token_on_a_terminal_when_none_is_set() {
    let world = World::new(Responses::Ok);
    let login = world.openai.seed(false);
    let home = home_with(&login);
    let logs = tempfile::tempdir().unwrap();
    let [tty, out, err] = ["tty", "out", "err"].map(|f| logs.path().join(f));
    // `script` gives the command a terminal whose input is our stdin; the shell it starts
    // names that terminal in a file first, so the test can watch its echo setting.
    let mut child = Command::new("script")
        .args([
            "-qec",
            &format!(
                "tty > '{}' && exec '{}' seed --repo {REPO}",
                tty.display(),
                env!("CARGO_BIN_EXE_codex-auth")
            ),
            "/dev/null",
        ])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("GITHUB_API_URL", world.github.url())
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("script (util-linux) runs the command on a terminal");
    // Type only once the prompt is shown and the terminal's echo is off, as a person would;
    // anything typed earlier is echoed by the terminal itself, whatever the tool does.
    let read = |path: &Path| String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
    let started = std::time::Instant::now();
    while !(read(&out).contains("input hidden") && echo_off(&read(&tty))) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no hidden prompt within 30 s:\n{}{}",
            read(&out),
            read(&err)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        format!("{WRITE_TOKEN}\n").as_bytes(),
    )
    .unwrap();
    let status = child.wait().unwrap();
    let output = Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    };
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("GitHub token that can write the secret (input hidden"));
    assert_no_token_shown(&world, &output);
    let secret = stored(&world, &github::repo(REPO));
    assert_eq!(serde_json::from_str::<Value>(&secret.value).unwrap(), login);
}

/// Whether the terminal `tty` names (the output of `tty`, empty until written) has its echo
/// off, as `stty` reads it.
fn echo_off(tty: &str) -> bool {
    let tty = tty.trim();
    if !tty.starts_with("/dev/") {
        return false;
    }
    Command::new("stty")
        .args(["-F", tty, "-a"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .any(|setting| setting == "-echo")
        })
}

#[test]
fn seeds_the_full_login_then_its_access_only_copy() {
    let world = World::new(Responses::Ok);
    let login = world.openai.seed(false);
    let home = home_with(&login);

    let args = ["--repo", REPO, "--access-secret-name", "CODEX_ACCESS_JSON"];
    let output = seed(&world, home.path(), WRITE_TOKEN, &args);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains(&format!(
            "Created the repository secret CODEX_ACCESS_JSON of {REPO} with an access-only copy"
        )),
        "{}",
        text(&output)
    );
    assert_no_token_shown(&world, &output);
    assert_eq!(
        serde_json::from_str::<Value>(&stored(&world, &github::repo(REPO)).value).unwrap(),
        login
    );
    let copy = world
        .github
        .secret(&github::repo(REPO), "CODEX_ACCESS_JSON")
        .unwrap();
    let copy: Value = serde_json::from_str(&copy.value).unwrap();
    assert_eq!(copy["auth_mode"], "chatgptAuthTokens");
    assert_eq!(copy["tokens"]["refresh_token"], "");
    assert_eq!(
        copy["tokens"]["access_token"],
        login["tokens"]["access_token"]
    );
    assert_eq!(copy["tokens"]["account_id"], login["tokens"]["account_id"]);
    // The full login first, then the copy.
    let puts: Vec<String> = world
        .github
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.path)
        .collect();
    assert_eq!(
        puts,
        [
            "/repos/octo/repo/actions/secrets/CODEX_AUTH_JSON",
            "/repos/octo/repo/actions/secrets/CODEX_ACCESS_JSON"
        ]
    );

    // The same name twice is refused before anything is sent.
    let same = ["--repo", REPO, "--access-secret-name", SECRET];
    let output = seed(&world, home.path(), WRITE_TOKEN, &same);
    assert!(!output.status.success());
    assert!(
        text(&output).contains("a name of its own"),
        "{}",
        text(&output)
    );
}

#[test]
fn each_refusal_is_titled_and_sends_nothing() {
    let world = World::new(Responses::Ok);
    let home = home_with(&world.openai.seed(false));
    let repo = ["--repo", REPO];
    let cases: [(&[&str], &str, &str); 6] = [
        (
            &["--repo", REPO, "--secret", "1ABC"],
            WRITE_TOKEN,
            "Secret name not allowed: --secret \"1ABC\" must not start with a digit",
        ),
        (
            &["--repo", REPO, "--access-secret-name", "codex_auth_json"],
            WRITE_TOKEN,
            "Copy named like the login: --access-secret-name names the same secret as \
             --secret: give the copy a name of its own, e.g. CODEX_ACCESS_JSON",
        ),
        (
            &["--repo", "octo"],
            WRITE_TOKEN,
            "Repository not owner/name: --repo \"octo\" is not of the form owner/name",
        ),
        (
            &["--org", "oc to"],
            WRITE_TOKEN,
            "Organization name not valid: --org \"oc to\" is not a GitHub login (letters, \
             digits, `-`, `_`, `.`)",
        ),
        (
            &["--repo", REPO, "--environment", " "],
            WRITE_TOKEN,
            "Environment empty: --environment is empty: name the environment, or leave the \
             flag out",
        ),
        (
            &repo,
            "",
            "No GitHub token: set GH_TOKEN to a token that can write the secret (a \
             fine-grained personal access token with \"Secrets: Read and write\", or \
             `GH_TOKEN=$(gh auth token)`), or run in a terminal to be asked for one",
        ),
    ];
    for (args, token, expected) in cases {
        let output = seed(&world, home.path(), token, args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!("error: {expected}\n"),
            "{args:?}"
        );
    }
    // A repository the token cannot see: GitHub's answer, under a title of its own.
    let output = seed(&world, home.path(), WRITE_TOKEN, &["--repo", "octo/none"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: Repository not readable: GitHub answered 404 Not Found"),
        "{stderr}"
    );
    assert!(
        world.github.requests().iter().all(|r| r.method == "GET"),
        "nothing may be written"
    );
}
