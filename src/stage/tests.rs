//! The stages' order and verdicts, fast: an in-memory store and a stand-in for Codex that
//! leaves a login in CODEX_HOME as Codex would, in plain `cargo test` (no network, no external
//! program). The end-to-end suite (`tests/integration`) runs the same stages against the real
//! Codex and local GitHub servers.
//!
//! How the stand-ins differ: the store keeps the login in memory and can be told to refuse a
//! save or the write check; Codex does nothing but replace auth.json (or not) and report an
//! exit code, or, signing in (`mode: login`), hand over a login (or fail) with no device code
//! shown, so nothing here checks what Codex's output or processes can do.

use std::cell::{Cell, RefCell};
use std::ffi::OsString;
use std::path::Path;
use std::rc::Rc;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::main::{run_with, RunCodex, Task};
use super::post;
use super::Phase;
use crate::auth_file::tests::sample;
use crate::auth_file::{AuthFile, AUTH_CLAIM};
use crate::cancel::Cancellation;
use crate::codex::Outcome;
use crate::codex_home::CodexHome;
use crate::config::ActionConfig;
use crate::failure::Failure;
use crate::github::SecretTarget;
use crate::store::{CannotSave, CopyWrite, Loaded, NotLoaded, NotSaved, Place, Saved, Store};

/// What the store was asked, in order.
#[derive(Default)]
struct Log {
    calls: Vec<String>,
    /// The login the store holds.
    held: Option<AuthFile>,
}

struct MemoryStore {
    log: Rc<RefCell<Log>>,
    phase: Phase,
    refuse_save: bool,
    refuse_proof: bool,
    /// The keeper's access-only copy, written with every save (input `access-secret-name`).
    copy: Option<SecretTarget>,
}

impl MemoryStore {
    fn new(log: &Rc<RefCell<Log>>, phase: Phase, refuse_save: bool, refuse_proof: bool) -> Self {
        Self {
            log: log.clone(),
            phase,
            refuse_save,
            refuse_proof,
            copy: None,
        }
    }

    fn note(&self, call: impl Into<String>) {
        self.log.borrow_mut().calls.push(call.into());
    }
}

#[async_trait(?Send)]
impl Store for MemoryStore {
    fn place(&self) -> Place {
        Place::Artifact {
            name: "memory".into(),
        }
    }

    async fn load(&mut self) -> Result<Loaded, NotLoaded> {
        self.note("load");
        let held = self.log.borrow().held.clone();
        held.map(Loaded::from).ok_or(NotLoaded::Nothing)
    }

    async fn prove_can_save(&mut self) -> Result<(), CannotSave> {
        self.note("prove");
        match self.refuse_proof {
            true => Err(CannotSave::Refused("refused".into())),
            false => Ok(()),
        }
    }

    async fn save(&mut self, file: &AuthFile) -> Result<Saved, NotSaved> {
        self.note(format!("save {:?}", self.phase));
        if self.refuse_save {
            return Err(NotSaved::Failed("refused".into()));
        }
        self.log.borrow_mut().held = Some(file.clone());
        Ok(Saved {
            place: self.place(),
            artifact_id: Some(1),
            copy: self.copy.clone().map(|target| CopyWrite {
                target,
                written: Ok(()),
            }),
        })
    }

    async fn close(&mut self) {
        self.note(format!("close {:?}", self.phase));
    }
}

/// Codex: replaces auth.json with `leaves` (when given) and exits with `exit_code`; asked to
/// sign in (`mode: login`), signs in with `leaves` (none: the sign-in fails).
struct StandIn {
    leaves: Option<Value>,
    exit_code: i32,
    ran: RefCell<Vec<Task>>,
    /// How many times it was asked to sign in.
    sign_ins: Cell<u32>,
    /// The titles of the annotations printed before it ran.
    saw: RefCell<Vec<String>>,
}

#[async_trait(?Send)]
impl RunCodex for StandIn {
    async fn run(
        &self,
        _config: &ActionConfig,
        task: Task,
        _request: Option<&crate::codex::Request>,
        home: &CodexHome,
        _cancel: &mut Cancellation,
    ) -> anyhow::Result<Outcome> {
        self.ran.borrow_mut().push(task);
        *self.saw.borrow_mut() = titles(&crate::workflow::printed());
        if let Some(login) = &self.leaves {
            std::fs::write(home.auth_path(), serde_json::to_string_pretty(login)?)?;
        }
        Ok(Outcome {
            exit_code: self.exit_code,
            final_message: String::new(),
            refresh_failure: None,
            commands: None,
        })
    }

    async fn sign_in(
        &self,
        _config: &ActionConfig,
        _cancel: &mut Cancellation,
    ) -> anyhow::Result<AuthFile> {
        self.sign_ins.set(self.sign_ins.get() + 1);
        match &self.leaves {
            Some(login) => Ok(AuthFile::decode(&login.to_string())?),
            None => Err(Failure::new("Sign-in failed", "the sign-in was denied.").into()),
        }
    }
}

/// A job's directories and the stage's environment, as the runner gives them.
struct Job {
    dir: tempfile::TempDir,
}

impl Job {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        for sub in ["home/.codex", "workspace", "files", "temp"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap_or_default();
        }
        let event = dir.path().join("event.json");
        std::fs::write(&event, r#"{"repository":{"private":true}}"#).unwrap_or_default();
        Self { dir }
    }

    fn path(&self, sub: &str) -> String {
        self.dir.path().join(sub).display().to_string()
    }

    /// The configuration of a stage (`main`, `post`): fresh command files for the step, and
    /// `state` from the main stage.
    fn config(&self, step: &str, seed: &Value, state: &[(String, String)]) -> ActionConfig {
        self.config_with(step, seed, state, &[])
    }

    /// [`Job::config`] with more variables (inputs as `INPUT_…`).
    fn config_with(
        &self,
        step: &str,
        seed: &Value,
        state: &[(String, String)],
        more: &[(&str, &str)],
    ) -> ActionConfig {
        let files = Path::new(&self.path("files")).join(step);
        std::fs::create_dir_all(&files).unwrap_or_default();
        let mut env: Vec<(OsString, OsString)> = [
            ("GITHUB_REPOSITORY", "octo/repo".to_owned()),
            ("GITHUB_API_URL", "http://127.0.0.1:9".to_owned()),
            ("HOME", self.path("home")),
            ("GITHUB_WORKSPACE", self.path("workspace")),
            ("RUNNER_TEMP", self.path("temp")),
            ("GITHUB_EVENT_NAME", "push".to_owned()),
            ("GITHUB_EVENT_PATH", self.path("event.json")),
            ("INPUT_AUTH-JSON", seed.to_string()),
            ("INPUT_TOKEN", "github_pat_memory".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        for (variable, file) in [
            ("GITHUB_OUTPUT", "output"),
            ("GITHUB_STATE", "state"),
            ("GITHUB_ENV", "env"),
            ("GITHUB_PATH", "path"),
            ("GITHUB_STEP_SUMMARY", "summary"),
        ] {
            let path = files.join(file);
            std::fs::write(&path, "").unwrap_or_default();
            env.push((variable.into(), path.into()));
        }
        env.extend(
            state
                .iter()
                .map(|(k, v)| (format!("STATE_{k}").into(), v.into())),
        );
        env.extend(more.iter().map(|(k, v)| ((*k).into(), (*v).into())));
        ActionConfig::from_env(env).unwrap_or_else(|e| panic!("config: {e}"))
    }

    /// A command file of the main stage.
    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join("files/main").join(name)).unwrap_or_default()
    }

    /// `name=value` lines of a command file of the main stage.
    fn pairs(&self, name: &str) -> Vec<(String, String)> {
        self.file(name)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn output(&self, name: &str) -> Option<String> {
        self.pairs("output")
            .into_iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
        .block_on(future)
}

/// A JWT with these claims (unsigned, as Codex never checks).
fn jwt(claims: Value) -> String {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("e30.{}.sig", engine.encode(claims.to_string()))
}

/// A login of `account` whose access token expires in `seconds` (negative: expired): both
/// tokens name the account in their claims, as OpenAI's do, and so does the plain field.
fn login(refresh_token: &str, seconds: i64, account: &str) -> Value {
    let mut login = sample();
    let exp = jiff::Timestamp::now().as_second() + seconds;
    let auth = json!({"chatgpt_plan_type": "pro", "chatgpt_account_id": account});
    login["tokens"]["access_token"] = json!(jwt(json!({
        "exp": exp,
        AUTH_CLAIM: auth
    })));
    login["tokens"]["refresh_token"] = json!(refresh_token);
    login["tokens"]["account_id"] = json!(account);
    login["tokens"]["id_token"] = json!(jwt(json!({
        "email": "dev@example.com",
        AUTH_CLAIM: auth
    })));
    login
}

/// `login` with `account_id` typed into its plain `tokens.account_id` field, as a
/// prompt-injected Codex would pass another account's login off as the restored one's.
fn under_id(mut login: Value, account_id: &str) -> Value {
    login["tokens"]["account_id"] = json!(account_id);
    login
}

struct Ran {
    main: anyhow::Result<()>,
    post: anyhow::Result<()>,
    calls: Vec<String>,
    codex_ran: bool,
    /// The titles of the annotations printed before Codex ran.
    saw_before_codex: Vec<String>,
    held: Option<String>,
    job: Job,
}

/// One job: main with the stand-in Codex, then post, against one in-memory store.
fn job(seed: &Value, codex: StandIn, refuse_save: bool, refuse_proof: bool) -> Ran {
    job_in(
        Job::new(),
        seed,
        codex,
        (refuse_save, refuse_proof),
        &[],
        |_| {},
    )
}

/// [`job`] in a job made beforehand (files already in its workspace or CODEX_HOME, say), with
/// `more` variables (inputs as `INPUT_…`) and `between` changing the state main hands post;
/// `refuse` is (the save, the write check).
fn job_in(
    job: Job,
    seed: &Value,
    codex: StandIn,
    (refuse_save, refuse_proof): (bool, bool),
    more: &[(&str, &str)],
    between: impl FnOnce(&mut Vec<(String, String)>),
) -> Ran {
    let log = Rc::new(RefCell::new(Log {
        held: AuthFile::decode(&seed.to_string()).ok(),
        ..Log::default()
    }));
    let config = job.config_with("main", seed, &[], more);
    let main = block_on(async {
        let mut cancel = Cancellation::watch()?;
        let mut store = MemoryStore::new(&log, Phase::Main, refuse_save, refuse_proof);
        let result = run_with(&config, &mut store, &codex, &mut cancel).await;
        store.close().await;
        result
    });
    log.borrow_mut().calls.push("post".into());
    let mut state = job.pairs("state");
    between(&mut state);
    let config = job.config_with("post", seed, &state, more);
    let post = block_on(post::run_with(config, |_| {
        Ok(Box::new(MemoryStore::new(&log, Phase::Post, refuse_save, false)) as Box<dyn Store>)
    }));
    let log = log.borrow();
    Ran {
        main,
        post,
        calls: log.calls.clone(),
        codex_ran: !codex.ran.borrow().is_empty(),
        saw_before_codex: codex.saw.borrow().clone(),
        held: log
            .held
            .as_ref()
            .map(|f| f.secret_values()[2].expose().to_owned()),
        job,
    }
}

fn title(result: &anyhow::Result<()>) -> Option<&'static str> {
    result
        .as_ref()
        .err()
        .and_then(|e| e.chain().find_map(|c| c.downcast_ref::<Failure>()))
        .map(|f| f.title)
}

fn stand_in(leaves: Option<Value>, exit_code: i32) -> StandIn {
    StandIn {
        leaves,
        exit_code,
        ran: RefCell::new(Vec::new()),
        sign_ins: Cell::new(0),
        saw: RefCell::new(Vec::new()),
    }
}

/// The titles of `printed` annotations.
fn titles(printed: &[(String, String, String)]) -> Vec<String> {
    printed.iter().map(|(_, title, _)| title.clone()).collect()
}

/// The message of the warning titled `title` printed on this test's thread, if any.
fn warning(title: &str) -> Option<String> {
    crate::workflow::printed()
        .into_iter()
        .find(|(kind, t, _)| kind == "warning" && t == title)
        .map(|(_, _, message)| message)
}

#[test]
fn a_rotation_is_saved_by_main_and_not_again_by_post() {
    let seed = login("rt_1", -60, "acc-1");
    let ran = job(
        &seed,
        stand_in(Some(login("rt_2", 86_400, "acc-1")), 0),
        false,
        false,
    );
    assert!(ran.main.is_ok(), "{:?}", ran.main);
    assert!(ran.post.is_ok(), "{:?}", ran.post);
    // An expired access token: Codex may refresh, so the write is proven first.
    assert_eq!(
        ran.calls,
        [
            "load",
            "prove",
            "save Main",
            "close Main",
            "post",
            "close Post"
        ]
    );
    assert_eq!(ran.held.as_deref(), Some("rt_2"));
    assert_eq!(ran.job.output("refreshed").as_deref(), Some("true"));
    assert_eq!(ran.job.output("persisted").as_deref(), Some("true"));
}

#[test]
fn a_fresh_login_needs_no_write_proof_and_nothing_is_saved_when_nothing_changed() {
    let seed = login("rt_1", 30 * 86_400, "acc-1");
    let ran = job(&seed, stand_in(None, 0), false, false);
    assert!(
        ran.main.is_ok() && ran.post.is_ok(),
        "{:?} {:?}",
        ran.main,
        ran.post
    );
    assert_eq!(ran.calls, ["load", "close Main", "post", "close Post"]);
    assert_eq!(ran.held.as_deref(), Some("rt_1"));
}

#[test]
fn codex_never_runs_when_the_write_cannot_be_proven() {
    let seed = login("rt_1", -60, "acc-1");
    let ran = job(
        &seed,
        stand_in(Some(login("rt_2", 86_400, "acc-1")), 0),
        false,
        true,
    );
    assert_eq!(title(&ran.main), Some("Cannot upload artifacts"));
    assert!(!ran.codex_ran);
    // The post stage finds no handoff: nothing restored, nothing to save.
    assert!(ran.post.is_ok(), "{:?}", ran.post);
    assert_eq!(
        ran.calls,
        ["load", "prove", "close Main", "post", "close Post"]
    );
    assert_eq!(ran.held.as_deref(), Some("rt_1"));
}

#[test]
fn a_rotation_main_could_not_save_is_said_and_tried_again_by_post() {
    let seed = login("rt_1", -60, "acc-1");
    let ran = job(
        &seed,
        stand_in(Some(login("rt_2", 86_400, "acc-1")), 0),
        true,
        false,
    );
    assert_eq!(title(&ran.main), Some("Refreshed login not saved yet"));
    assert_eq!(
        ran.calls,
        [
            "load",
            "prove",
            "save Main",
            "close Main",
            "post",
            "save Post",
            "close Post"
        ]
    );
    assert_eq!(ran.job.output("persisted").as_deref(), Some("false"));
}

#[test]
fn a_failed_codex_still_saves_the_rotation_first() {
    let seed = login("rt_1", -60, "acc-1");
    let ran = job(
        &seed,
        stand_in(Some(login("rt_2", 86_400, "acc-1")), 1),
        false,
        false,
    );
    assert_eq!(title(&ran.main), Some("Codex failed"));
    let message = ran
        .main
        .as_ref()
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    assert!(message.contains("written back first"), "{message}");
    assert_eq!(
        ran.calls,
        [
            "load",
            "prove",
            "save Main",
            "close Main",
            "post",
            "close Post"
        ]
    );
    assert_eq!(ran.held.as_deref(), Some("rt_2"));
}

#[test]
fn another_accounts_login_is_saved_by_neither_stage() {
    let seed = login("rt_1", 30 * 86_400, "acc-1");
    let ran = job(
        &seed,
        stand_in(Some(login("rt_evil", 86_400, "acc-evil")), 0),
        false,
        false,
    );
    assert_eq!(title(&ran.main), Some("Another account's login"));
    assert_eq!(title(&ran.post), Some("Another account's login"));
    assert_eq!(ran.calls, ["load", "close Main", "post", "close Post"]);
    assert_eq!(ran.held.as_deref(), Some("rt_1"));
}

fn message(result: &anyhow::Result<()>) -> String {
    result
        .as_ref()
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default()
}

/// A prompt-injected Codex writes a login of the attacker's account with the restored
/// account's id typed into the plain field: the tokens' claims name the attacker's account,
/// and neither stage stores it.
#[test]
fn another_accounts_login_under_the_restored_accounts_id_is_saved_by_neither_stage() {
    let seed = login("rt_1", 30 * 86_400, "acc-1");
    let forged = under_id(login("rt_evil", 86_400, "acc-evil-0"), "acc-1");
    let ran = job(&seed, stand_in(Some(forged), 0), false, false);
    for result in [&ran.main, &ran.post] {
        assert_eq!(title(result), Some("Another account's login"), "{result:?}");
        // The account the tokens name, not the id typed beside them.
        assert!(
            message(result).contains("(account id acc-evil…)"),
            "{result:?}"
        );
    }
    assert_eq!(ran.calls, ["load", "close Main", "post", "close Post"]);
    assert_eq!(ran.held.as_deref(), Some("rt_1"));
}

/// A login whose tokens name no account (only the plain field does), or two, is not the
/// restored login's, whose tokens named its account.
#[test]
fn a_login_whose_tokens_name_no_account_or_two_is_saved_by_neither_stage() {
    let seed = login("rt_1", 30 * 86_400, "acc-1");
    let mut unclaimed = login("rt_evil", 86_400, "acc-1");
    unclaimed["tokens"]["access_token"] = json!(jwt(json!({"exp": 2_000_000_000})));
    unclaimed["tokens"]["id_token"] = json!(jwt(json!({"email": "dev@example.com"})));
    let mut mixed = login("rt_evil", 86_400, "acc-1");
    mixed["tokens"]["access_token"] =
        login("rt_evil", 86_400, "acc-evil-0")["tokens"]["access_token"].clone();
    for (left, says) in [
        (unclaimed, "its tokens name no account"),
        (mixed, "its tokens name two accounts"),
    ] {
        let ran = job(&seed, stand_in(Some(left), 0), false, false);
        for result in [&ran.main, &ran.post] {
            assert_eq!(title(result), Some("Another account's login"), "{result:?}");
            assert!(message(result).contains(says), "{result:?}");
        }
        assert_eq!(ran.held.as_deref(), Some("rt_1"));
    }
}

/// When the main stage's handoff does not verify, the post stage knows the account from input
/// `auth-json` alone: by its tokens' claims too.
#[test]
fn post_checks_the_tokens_against_the_seed_when_the_handoff_does_not_verify() {
    let seed = login("rt_1", 30 * 86_400, "acc-1");
    let forged = under_id(login("rt_evil", 86_400, "acc-evil-0"), "acc-1");
    let ran = job_in(
        Job::new(),
        &seed,
        stand_in(Some(forged), 0),
        (false, false),
        &[],
        |state| {
            for (name, value) in state.iter_mut() {
                if name == "handoff_mac" {
                    *value = "00".repeat(32);
                }
            }
        },
    );
    assert_eq!(title(&ran.main), Some("Another account's login"));
    assert_eq!(
        title(&ran.post),
        Some("Another account's login"),
        "{:?}",
        ran.post
    );
    assert!(message(&ran.post).contains("(account id acc-evil…)"));
    assert_eq!(ran.held.as_deref(), Some("rt_1"));
}

/// A persistent runner's CODEX_HOME holds a newer login of another account under the stored
/// account's id (a hostile job left it there): it is replaced by the stored login, never kept
/// and saved as the account's.
#[test]
fn a_newer_login_of_another_account_in_codex_home_is_replaced_not_kept() {
    let seed = login("rt_1", 30 * 86_400, "acc-1");
    let mut left = under_id(login("rt_evil", 30 * 86_400, "acc-evil-0"), "acc-1");
    left["last_refresh"] = json!(jiff::Timestamp::now().to_string());
    let job = Job::new();
    let path = Path::new(&job.path("home")).join(".codex/auth.json");
    std::fs::write(&path, left.to_string()).unwrap_or_default();
    let ran = job_in(job, &seed, stand_in(None, 0), (false, false), &[], |_| {});
    assert!(ran.main.is_ok(), "{:?}", ran.main);
    assert!(ran.post.is_ok(), "{:?}", ran.post);
    assert_eq!(ran.calls, ["load", "close Main", "post", "close Post"]);
    assert_eq!(ran.held.as_deref(), Some("rt_1"));
}

/// A stored login whose tokens name two accounts is of neither: refused before Codex, since
/// nothing Codex left could be written back.
#[test]
fn a_stored_login_whose_tokens_name_two_accounts_is_refused_before_codex() {
    let mut seed = login("rt_1", -60, "acc-1");
    seed["tokens"]["access_token"] =
        login("rt_1", -60, "acc-evil-0")["tokens"]["access_token"].clone();
    let ran = job(
        &seed,
        stand_in(Some(login("rt_2", 86_400, "acc-1")), 0),
        false,
        false,
    );
    assert_eq!(
        title(&ran.main),
        Some("Login of two accounts"),
        "{:?}",
        ran.main
    );
    let said = message(&ran.main);
    assert!(
        said.contains("acc-evil… in the access token, acc-1… in the id token")
            && said.contains("Codex was not run"),
        "{said}"
    );
    assert!(!ran.codex_ran);
    assert!(ran.post.is_ok(), "{:?}", ran.post);
    assert_eq!(ran.calls, ["load", "close Main", "post", "close Post"]);
    assert_eq!(ran.held.as_deref(), Some("rt_1"));
}

/// Every way a save can fail, in every stage: the failure says where the login is now and what
/// to do, in the stage's words (the store only says what happened).
#[test]
fn every_unsaved_login_is_said_with_where_it_is_and_what_to_do() {
    let job = Job::new();
    let config = job.config("main", &login("rt_1", 60, "acc-1"), &[]);
    let secret = Place::Secret(config.target.clone());
    let artifact = Place::Artifact {
        name: "codex-auth".into(),
    };
    let failed = NotSaved::Failed("GitHub answered 503".into());
    let rescued = |id| NotSaved::Rescued {
        cause: "GitHub answered 503.".into(),
        artifact: "codex-auth-rescue".into(),
        id,
    };
    let rescue_failed = NotSaved::RescueFailed {
        cause: "GitHub answered 503.".into(),
        artifact: "codex-auth-rescue".into(),
        error: "no runtime token".into(),
    };
    let cases = [
        (
            Phase::Main,
            &secret,
            failed.clone(),
            "Refreshed login not saved",
            "The post stage tries again",
        ),
        (
            Phase::Post,
            &secret,
            failed.clone(),
            "Refreshed login not saved",
            "refresh_token_reused",
        ),
        (
            Phase::Post,
            &artifact,
            failed.clone(),
            "Refreshed login not saved",
            "as input `auth-json` once",
        ),
        (
            Phase::SignIn,
            &secret,
            failed.clone(),
            "New login not saved",
            "run the sign-in again",
        ),
        (
            Phase::SignIn,
            &artifact,
            failed,
            "New login not saved",
            "run the sign-in again",
        ),
        (
            Phase::Main,
            &secret,
            rescued(Some(7)),
            "Refreshed login rescued",
            "The post stage also tries",
        ),
        (
            Phase::Post,
            &secret,
            rescued(Some(7)),
            "Refreshed login rescued",
            "(id 7)",
        ),
        (
            Phase::Post,
            &secret,
            rescued(None),
            "Refreshed login rescued",
            "already rescued",
        ),
        (
            Phase::Post,
            &secret,
            rescue_failed,
            "Refreshed login not saved",
            "failed too: no runtime token",
        ),
    ];
    for (phase, place, not_saved, title, says) in cases {
        let case = format!("{phase:?} {place} {not_saved:?}");
        let failure = super::not_saved(&config, phase, place, not_saved);
        let message = failure.message();
        assert_eq!(failure.title, title, "{case}");
        assert!(message.contains(says), "{case}: {message}");
        assert!(
            message.contains("GitHub answered 503."),
            "{case}: {message}"
        );
        assert!(!message.contains("Codex was not run"), "{case}: {message}");
        // Causes with and without their own full stop read as one sentence each.
        assert!(!message.contains(".."), "{case}: {message}");
        assert!(!message.contains("503 "), "{case}: {message}");
        if phase != Phase::SignIn {
            let path = config.codex_home.join("auth.json");
            assert!(
                message.contains(&path.display().to_string()),
                "{case}: {message}"
            );
        }
    }
}

/// A copy of `login` as the keeper publishes it.
fn copy_of(login: &Value) -> Value {
    let mut copy = login.clone();
    copy["auth_mode"] = json!("chatgptAuthTokens");
    copy["tokens"]["refresh_token"] = json!("");
    copy
}

/// Main (the stand-in Codex) then post on an access-only copy, with `more` variables.
fn job_on_copy(
    copy: &Value,
    codex: &StandIn,
    more: &[(&str, &str)],
) -> (Job, anyhow::Result<()>, anyhow::Result<()>) {
    job_on_copy_in(Job::new(), copy, codex, more)
}

/// [`job_on_copy`] in a job made beforehand (files already in its CODEX_HOME, say).
fn job_on_copy_in(
    job: Job,
    copy: &Value,
    codex: &StandIn,
    more: &[(&str, &str)],
) -> (Job, anyhow::Result<()>, anyhow::Result<()>) {
    let config = job.config_with("main", copy, &[], more);
    let main = block_on(async {
        let mut cancel = Cancellation::watch()?;
        let mut store = super::main::open_store(&config)?;
        run_with(&config, store.as_mut(), codex, &mut cancel).await
    });
    let state = job.pairs("state");
    let config = job.config_with("post", copy, &state, more);
    let post = block_on(post::run(config));
    (job, main, post)
}

/// An artifact key: 32 bytes, base64.
const ARTIFACT_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The secret store's login is the seed: an empty or unusable `auth-json` stops the main
/// stage when the store is opened, before any check is made or Codex fetched; the artifact
/// store opens (an artifact may hold a login).
#[test]
fn a_secret_job_without_a_usable_seed_stops_when_the_store_opens() {
    let job = Job::new();
    for (seed, title) in [
        (json!(""), "Missing auth-json"),
        (json!({"tokens": {}}), "Invalid auth-json"),
    ] {
        // An empty input reads as none.
        let more: &[(&str, &str)] = match seed.as_str() {
            Some("") => &[("INPUT_AUTH-JSON", "")],
            _ => &[],
        };
        let config = job.config_with("main", &seed, &[], more);
        let refused = super::main::open_store(&config).map(|_| ());
        assert_eq!(super::tests::title(&refused), Some(title), "{seed}");
        let message = refused.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(message.contains("Codex was not run."), "{message}");
        let artifact = job.config_with(
            "main",
            &seed,
            &[],
            &[
                more,
                &[
                    ("INPUT_STORE", "artifact"),
                    ("INPUT_ARTIFACT-KEY", ARTIFACT_KEY),
                    ("INPUT_GITHUB-TOKEN", "ghs_workflow"),
                    ("GITHUB_REPOSITORY_ID", "42"),
                ][..],
            ]
            .concat(),
        );
        assert!(super::main::open_store(&artifact).is_ok(), "{seed}");
    }
}

#[test]
fn a_job_on_an_access_only_copy_runs_codex_and_writes_nothing() {
    let copy = copy_of(&login("rt_1", 3 * 86_400, "acc-1"));
    let codex = stand_in(None, 0);
    // A token is given too: it is not used (the local GitHub at :9 would refuse any request).
    let (job, main, post) = job_on_copy(&copy, &codex, &[]);
    assert!(main.is_ok(), "{main:?}");
    assert!(post.is_ok(), "{post:?}");
    assert_eq!(*codex.ran.borrow(), [Task::Exec]);
    assert_eq!(job.output("persisted").as_deref(), Some("false"));
    let home = Path::new(&job.path("home")).join(".codex/auth.json");
    assert!(!home.exists(), "post removes the copy");
}

#[test]
fn a_copy_that_expires_within_the_job_or_has_no_exp_is_refused_before_codex() {
    let expiring = copy_of(&login("rt_1", 30 * 60, "acc-1"));
    let mut no_exp = copy_of(&login("rt_1", 86_400, "acc-1"));
    no_exp["tokens"]["access_token"] = json!("e30.e30.sig");
    for (copy, expected) in [
        (expiring, "Access-only copy expires during the job"),
        (no_exp, "Access-only copy unusable"),
    ] {
        let codex = stand_in(None, 0);
        let (_, main, _) = job_on_copy(&copy, &codex, &[("INPUT_JOB-TIMEOUT-MINUTES", "60")]);
        assert_eq!(title(&main), Some(expected), "{main:?}");
        let message = main.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(
            message.contains("Codex was not run") && message.contains("keeper"),
            "{message}"
        );
        assert!(codex.ran.borrow().is_empty());
    }
}

#[test]
fn a_keeper_or_a_refresh_given_a_copy_is_refused_before_codex() {
    let copy = copy_of(&login("rt_1", 3 * 86_400, "acc-1"));
    for more in [
        [("INPUT_MODE", "refresh")],
        [("INPUT_ACCESS-SECRET-NAME", "CODEX_ACCESS_JSON")],
    ] {
        let codex = stand_in(None, 0);
        let (_, main, _) = job_on_copy(&copy, &codex, &more);
        assert_eq!(
            title(&main),
            Some("Access-only copy not usable here"),
            "{main:?}"
        );
        assert!(codex.ran.borrow().is_empty());
    }
}

/// A persistent runner the keeper also uses: a task job on a copy never replaces the full login
/// in CODEX_HOME (it may hold a rotation stored nowhere else), and its post stage, which
/// restored nothing, removes nothing.
#[test]
fn a_copy_job_leaves_a_full_login_in_codex_home_alone() {
    let full = login("rt_kept", 3 * 86_400, "acc-1");
    let job = Job::new();
    let path = Path::new(&job.path("home")).join(".codex/auth.json");
    let written = serde_json::to_string_pretty(&full).unwrap_or_default();
    std::fs::write(&path, &written).unwrap_or_default();
    let codex = stand_in(None, 0);
    let copy = copy_of(&login("rt_1", 3 * 86_400, "acc-1"));
    let (_job, main, post) = job_on_copy_in(job, &copy, &codex, &[]);
    assert_eq!(title(&main), Some("Full login in CODEX_HOME"), "{main:?}");
    assert!(post.is_ok(), "{post:?}");
    assert!(codex.ran.borrow().is_empty());
    assert_eq!(std::fs::read_to_string(&path).ok(), Some(written));
}

const WRITE_TOKEN_REACHABLE: &str = "Write token reachable from Codex";

/// Restore mode hands the full login to later steps that run Codex on the host, while the job
/// holds the write token for the post stage: the warning says so and points at the copy.
#[test]
fn restore_mode_on_the_full_login_with_a_write_token_warns_that_codex_can_reach_it() {
    let seed = login("rt_1", 30 * 86_400, "acc-1");
    let codex = stand_in(None, 0);
    let ran = job_in(
        Job::new(),
        &seed,
        codex,
        (false, false),
        &[("INPUT_MODE", "restore")],
        |_| {},
    );
    assert!(ran.main.is_ok(), "{:?}", ran.main);
    assert!(!ran.codex_ran, "restore mode runs no Codex itself");
    // No checkout in this workspace: nothing persisted to warn of.
    assert_eq!(warning(PERSISTED), None);
    let said = warning(WRITE_TOKEN_REACHABLE)
        .unwrap_or_else(|| panic!("not warned: {:?}", crate::workflow::printed()));
    for says in [
        "later steps run Codex",
        "`sudo`",
        "access-only copy",
        "`access-secret-name: CODEX_ACCESS_JSON`",
        "the copy (`auth-json: ${{ secrets.CODEX_ACCESS_JSON }}`) with no `token`",
    ] {
        assert!(said.contains(says), "{says:?} not in {said}");
    }
    assert!(!said.contains("github_pat_memory"), "{said}");
}

/// A task job on the access-only copy holds no write token worth taking (the one given is not
/// used), and a job with no write credential has none: neither is warned.
#[test]
fn restore_mode_on_a_copy_or_without_a_write_token_is_not_warned_of_one() {
    let copy = copy_of(&login("rt_1", 3 * 86_400, "acc-1"));
    let codex = stand_in(None, 0);
    let (_job, main, _post) = job_on_copy(&copy, &codex, &[("INPUT_MODE", "restore")]);
    assert!(main.is_ok(), "{main:?}");
    assert_eq!(warning(WRITE_TOKEN_REACHABLE), None);

    let seed = login("rt_1", 30 * 86_400, "acc-1");
    let ran = job_in(
        Job::new(),
        &seed,
        stand_in(None, 0),
        (false, false),
        &[("INPUT_MODE", "restore"), ("INPUT_TOKEN", "")],
        |_| {},
    );
    assert!(ran.main.is_ok(), "{:?}", ran.main);
    assert_eq!(warning(WRITE_TOKEN_REACHABLE), None);
    // Nor is a job that runs Codex in the action, where the write token stays out of reach.
    let ran = job(&seed, stand_in(None, 0), false, false);
    assert!(ran.main.is_ok(), "{:?}", ran.main);
    assert_eq!(warning(WRITE_TOKEN_REACHABLE), None);
}

const PERSISTED: &str = "Job token persisted by the checkout";

/// actions/checkout's header for the token `ghs_persisted` (`persist-credentials: true`).
const CHECKOUT_BASIC: &str = "eC1hY2Nlc3MtdG9rZW46Z2hzX3BlcnNpc3RlZA==";

/// A job whose checkout persisted the job's token in `.git/config` (actions/checkout v4).
fn checked_out_with_the_token() -> Job {
    let job = Job::new();
    let git = Path::new(&job.path("workspace")).join(".git");
    std::fs::create_dir_all(&git).unwrap_or_default();
    std::fs::write(
        git.join("config"),
        format!(
            "[core]\n\tbare = false\n[http \"https://ghe.example/\"]\n\textraheader = \
             AUTHORIZATION: basic {CHECKOUT_BASIC}\n"
        ),
    )
    .unwrap_or_default();
    job
}

/// The warning comes before Codex runs, names the fix, and never shows the header.
#[test]
fn a_job_token_the_checkout_persisted_is_warned_about_before_codex_runs() {
    let seed = login("rt_1", 30 * 86_400, "acc-1");
    let codex = stand_in(None, 0);
    let ran = job_in(
        checked_out_with_the_token(),
        &seed,
        codex,
        (false, false),
        &[],
        |_| {},
    );
    assert!(ran.main.is_ok(), "{:?}", ran.main);
    assert!(ran.codex_ran);
    let said = warning(PERSISTED)
        .unwrap_or_else(|| panic!("not warned: {:?}", crate::workflow::printed()));
    for says in [
        ".git/config holds an `http.<url>.extraheader`",
        "`persist-credentials: false` on actions/checkout",
        "Codex can read it and use the job's GITHUB_TOKEN",
    ] {
        assert!(said.contains(says), "{says:?} not in {said}");
    }
    assert!(
        ran.saw_before_codex.iter().any(|t| t == PERSISTED),
        "not before Codex ran: {:?}",
        ran.saw_before_codex
    );
    for (_, _, message) in crate::workflow::printed() {
        assert!(!message.contains(CHECKOUT_BASIC), "{message}");
    }
}

/// In restore mode, the later steps' Codex is the one that can read it.
#[test]
fn restore_mode_warns_of_a_persisted_job_token_for_the_later_steps() {
    let seed = login("rt_1", 30 * 86_400, "acc-1");
    let ran = job_in(
        checked_out_with_the_token(),
        &seed,
        stand_in(None, 0),
        (false, false),
        &[("INPUT_MODE", "restore")],
        |_| {},
    );
    assert!(ran.main.is_ok(), "{:?}", ran.main);
    let said = warning(PERSISTED)
        .unwrap_or_else(|| panic!("not warned: {:?}", crate::workflow::printed()));
    assert!(
        said.contains("Codex in the job's later steps can read it"),
        "{said}"
    );
    assert!(!said.contains(CHECKOUT_BASIC), "{said}");
}

/// The sign-in (`mode: login`, expecting `expected`) with the stand-in Codex, against an
/// in-memory store that holds `held` and publishes the keeper's copy when input
/// `access-secret-name` is in `more`; `refuse` is (the save, the write check). (The post stage
/// of a sign-in does nothing.)
fn sign_in(
    held: &Value,
    codex: &StandIn,
    expected: &str,
    (refuse_save, refuse_proof): (bool, bool),
    more: &[(&str, &str)],
) -> Ran {
    let job = Job::new();
    let log = Rc::new(RefCell::new(Log {
        held: AuthFile::decode(&held.to_string()).ok(),
        ..Log::default()
    }));
    let mut vars = vec![
        ("INPUT_MODE", "login"),
        ("INPUT_EXPECTED-ACCOUNT", expected),
    ];
    vars.extend_from_slice(more);
    let config = job.config_with("main", held, &[], &vars);
    let main = block_on(async {
        let mut cancel = Cancellation::watch()?;
        let mut store = MemoryStore::new(&log, Phase::SignIn, refuse_save, refuse_proof);
        store.copy = config.access_target.clone();
        let result = super::sign_in::run_with(&config, &mut store, codex, &mut cancel).await;
        store.close().await;
        result
    });
    let log = log.borrow();
    Ran {
        main,
        post: Ok(()),
        calls: log.calls.clone(),
        codex_ran: codex.sign_ins.get() > 0,
        saw_before_codex: Vec::new(),
        held: log
            .held
            .as_ref()
            .map(|f| f.secret_values()[2].expose().to_owned()),
        job,
    }
}

/// The calls of a sign-in that stopped before anything was stored.
const NOTHING_STORED: [&str; 2] = ["prove", "close SignIn"];

#[test]
fn a_new_sign_in_is_stored_with_the_keepers_copy_and_said_in_the_outputs() {
    let codex = stand_in(Some(login("rt_new", 86_400, "acc-1")), 0);
    let ran = sign_in(
        &login("rt_old", 86_400, "acc-1"),
        &codex,
        "dev@example.com",
        (false, false),
        &[("INPUT_ACCESS-SECRET-NAME", "CODEX_ACCESS_JSON")],
    );
    assert!(ran.main.is_ok(), "{:?}", ran.main);
    assert_eq!(codex.sign_ins.get(), 1);
    assert_eq!(ran.calls, ["prove", "save SignIn", "close SignIn"]);
    assert_eq!(ran.held.as_deref(), Some("rt_new"));
    assert_eq!(
        ran.job.output("account").as_deref(),
        Some("d***@example.com (pro)")
    );
    assert_eq!(ran.job.output("persisted").as_deref(), Some("true"));
    assert_eq!(ran.job.output("refreshed").as_deref(), Some("false"));
    let summary = ran.job.file("summary");
    for says in [
        "| Account | d***@example.com (pro) |",
        "| Stored | yes, as artifact memory (id 1) |",
        "| Access-only copy | written to the repository secret CODEX_ACCESS_JSON",
        "| Next keeper run, at the latest |",
    ] {
        assert!(summary.contains(says), "{says:?} not in {summary}");
    }
}

/// A sign-in approved for another account than input `expected-account`, by its email or by
/// the account its tokens claim (the expected id typed into the plain field does not pass),
/// stores nothing.
#[test]
fn a_sign_in_of_another_account_than_expected_is_refused_and_nothing_is_stored() {
    let mut elsewhere = login("rt_new", 86_400, "acc-1");
    elsewhere["tokens"]["id_token"] = json!(jwt(json!({
        "email": "mallory@example.com",
        AUTH_CLAIM: {"chatgpt_plan_type": "pro", "chatgpt_account_id": "acc-1"}
    })));
    let forged = under_id(login("rt_new", 86_400, "acc-evil-0"), "acc-1");
    for (signed_in, expected, says) in [
        (
            elsewhere,
            "dev@example.com",
            "the email in input `expected-account`",
        ),
        (
            forged,
            "acc-1",
            "the account id in input `expected-account`",
        ),
    ] {
        let codex = stand_in(Some(signed_in), 0);
        let ran = sign_in(
            &login("rt_old", 86_400, "acc-1"),
            &codex,
            expected,
            (false, false),
            &[],
        );
        assert_eq!(title(&ran.main), Some("Wrong account"), "{:?}", ran.main);
        assert!(message(&ran.main).contains(says), "{:?}", ran.main);
        assert!(ran.codex_ran);
        assert_eq!(ran.calls, NOTHING_STORED);
        assert_eq!(ran.held.as_deref(), Some("rt_old"));
        assert_eq!(ran.job.output("persisted").as_deref(), None);
        assert_eq!(ran.job.output("account").as_deref(), None);
    }
}

/// A new login whose access and id tokens name two accounts is of neither, whichever way
/// input `expected-account` names the account.
#[test]
fn a_sign_in_whose_tokens_name_two_accounts_is_refused() {
    let mut mixed = login("rt_new", 86_400, "acc-1");
    mixed["tokens"]["access_token"] =
        login("rt_new", 86_400, "acc-evil-0")["tokens"]["access_token"].clone();
    for expected in ["acc-1", "dev@example.com"] {
        let codex = stand_in(Some(mixed.clone()), 0);
        let ran = sign_in(
            &login("rt_old", 86_400, "acc-1"),
            &codex,
            expected,
            (false, false),
            &[],
        );
        assert_eq!(title(&ran.main), Some("Wrong account"), "{expected}");
        assert!(
            message(&ran.main).contains("acc-evil… in the access token, acc-1… in the id token"),
            "{expected}: {:?}",
            ran.main
        );
        assert_eq!(ran.calls, NOTHING_STORED, "{expected}");
        assert_eq!(ran.held.as_deref(), Some("rt_old"), "{expected}");
    }
}

#[test]
fn a_new_login_the_store_refuses_is_said_in_the_sign_ins_words_and_the_stored_one_is_kept() {
    let codex = stand_in(Some(login("rt_new", 86_400, "acc-1")), 0);
    let ran = sign_in(
        &login("rt_old", 86_400, "acc-1"),
        &codex,
        "dev@example.com",
        (true, false),
        &[],
    );
    assert_eq!(
        title(&ran.main),
        Some("New login not saved"),
        "{:?}",
        ran.main
    );
    let said = message(&ran.main);
    assert!(said.contains(super::wording::SIGN_IN_NOT_SAVED), "{said}");
    assert!(said.contains("refused"), "{said}");
    assert_eq!(ran.calls, ["prove", "save SignIn", "close SignIn"]);
    assert_eq!(ran.held.as_deref(), Some("rt_old"));
    assert_eq!(ran.job.output("persisted").as_deref(), None);
}

/// Nobody is asked to approve a sign-in whose login could not be stored.
#[test]
fn the_sign_in_never_starts_when_the_write_cannot_be_proven() {
    let codex = stand_in(Some(login("rt_new", 86_400, "acc-1")), 0);
    let ran = sign_in(
        &login("rt_old", 86_400, "acc-1"),
        &codex,
        "dev@example.com",
        (false, true),
        &[],
    );
    assert_eq!(title(&ran.main), Some("Cannot upload artifacts"));
    assert_eq!(codex.sign_ins.get(), 0);
    assert_eq!(ran.calls, NOTHING_STORED);
    assert_eq!(ran.held.as_deref(), Some("rt_old"));
}

#[test]
fn a_sign_in_codex_did_not_complete_stores_nothing() {
    let codex = stand_in(None, 0);
    let ran = sign_in(
        &login("rt_old", 86_400, "acc-1"),
        &codex,
        "dev@example.com",
        (false, false),
        &[],
    );
    assert_eq!(title(&ran.main), Some("Sign-in failed"), "{:?}", ran.main);
    assert_eq!(codex.sign_ins.get(), 1);
    assert_eq!(ran.calls, NOTHING_STORED);
    assert_eq!(ran.held.as_deref(), Some("rt_old"));
    assert_eq!(ran.job.output("persisted").as_deref(), None);
}
