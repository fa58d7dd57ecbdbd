//! What the stages say when a login cannot be loaded, when a save cannot be proven, and when a
//! loaded login cannot serve this job: the store answers with facts ([`NotLoaded`],
//! [`CannotSave`], [`Freshness`]); every word the user reads about them is here, with where a
//! fresh login goes ([`reseed_hint`]).

use jiff::{SignedDuration, Timestamp};

use crate::auth_file::relative;
use crate::config::ActionConfig;
use crate::failure::{sentence, Failure};
use crate::github::Scope;
use crate::store::{CannotSave, Freshness, NotLoaded, Place};

/// Less than this left on a copy's access token draws a warning: the keeper is late.
pub const WARN_BEFORE_EXPIRY: SignedDuration = SignedDuration::from_hours(24);

/// How to put a fresh login at `place`.
pub fn reseed_hint(place: &Place) -> String {
    match place {
        Place::Secret(target) => {
            let (seed, gh) = match &target.scope {
                Scope::Repository { repository } => (
                    format!("--repo {repository}"),
                    format!("--repo {repository}"),
                ),
                Scope::Environment {
                    repository,
                    environment,
                } => (
                    format!("--repo {repository} --environment \"{environment}\""),
                    format!("--repo {repository} --env \"{environment}\""),
                ),
                Scope::Organization { organization } => (
                    format!("--org {organization}"),
                    format!("--org {organization}"),
                ),
            };
            format!(
                "To reseed from the browser: run the sign-in workflow (`mode: login`, \
                 docs/examples/login.yml in codex-auth) from the Actions tab and approve the \
                 sign-in it shows. Or, on a trusted machine, run `codex login`, then \
                 `codex-auth seed {seed} --secret {name}` (or store the file as one line with \
                 `jq -c . ~/.codex/auth.json | gh secret set {name} {gh}`).",
                name = target.name
            )
        }
        Place::AccessCopy => "Run the keeper workflow (the job with input \
             `access-secret-name`, docs/examples/keeper.yml in codex-auth) from the Actions \
             tab: it refreshes the login and publishes a fresh copy."
            .to_owned(),
        Place::Artifact { .. } => "To reseed from the browser: run the sign-in workflow \
             (`mode: login` with `store: artifact`, docs/examples/login.yml in codex-auth) from \
             the Actions tab and approve the sign-in it shows. Or, on a trusted machine, run \
             `codex login`, store the file as a secret (`codex-auth seed`), and pass it as input \
             `auth-json`: a seed newer than the newest artifact wins."
            .to_owned(),
    }
}

/// Why the store at `place` had no login for the main stage, as the failure it reports:
/// Codex does not run.
pub fn not_loaded(config: &ActionConfig, place: &Place, not_loaded: NotLoaded) -> anyhow::Error {
    let failure = match (not_loaded, place) {
        (NotLoaded::CannotSave(cannot), place) => return cannot_save(place, cannot),
        (NotLoaded::Nothing, Place::Artifact { name }) => Failure::new(
            "No login to restore",
            format!(
                "there is no usable artifact named {name} in {} yet (or it expired), and input \
                 `auth-json` is empty.",
                config.repository.as_deref().unwrap_or("this repository")
            ),
        )
        .before_codex()
        .fix(reseed_hint(place)),
        (NotLoaded::Nothing, Place::Secret(_) | Place::AccessCopy) => {
            missing_auth_json(config, place)
        }
        (NotLoaded::InvalidSeed(why), place) => Failure::new(
            "Invalid auth-json",
            format!("input `auth-json` is not a usable Codex ChatGPT login: {why}."),
        )
        .before_codex()
        .fix(reseed_hint(place)),
        (NotLoaded::Unusable(why), place) => Failure::new("Artifact not usable", sentence(&why))
            .before_codex()
            .fix(reseed_hint(place)),
        (NotLoaded::Unreadable(why), _) => Failure::new("Cannot read artifacts", sentence(&why))
            .before_codex()
            .fix(
                "Re-run the job; if it keeps failing, check input `github-token` and \
                 `permissions: actions: read`.",
            ),
    };
    failure.into()
}

/// Why a save to `place` cannot be proven to work, as the failure the stage reports: Codex
/// does not run (or the sign-in does not start). The credentials' own failures stand as
/// they are.
pub fn cannot_save(place: &Place, cannot: CannotSave) -> anyhow::Error {
    let what = match cannot {
        CannotSave::Credentials(error) => return error,
        CannotSave::Refused(what) => what,
    };
    match place {
        Place::Artifact { .. } => Failure::new(
            "Cannot upload artifacts",
            format!("{what}: a login Codex refreshed could not be kept."),
        )
        .before_codex()
        .fix("Use `store: secret` where the runner provides no artifact service."),
        Place::Secret(_) | Place::AccessCopy => Failure::new(
            "Cannot write the secret back",
            format!(
                "{what} Codex may rotate the refresh token, and a rotated token that cannot be \
                 saved makes the next run fail with refresh_token_reused."
            ),
        )
        .before_codex(),
    }
    .into()
}

/// Input `auth-json` is empty, and the store needs it. With a write credential the job keeps
/// the full login, which is to be seeded; without one it is a task job, which runs on the
/// keeper's access-only copy: then the copy is what is missing (never written, or an
/// organization secret this repository may not read, which reads as empty), and seeding the
/// full login would not help.
fn missing_auth_json(config: &ActionConfig, place: &Place) -> Failure {
    if config.credentials.is_none() {
        let repository = config.repository.as_deref().unwrap_or("this repository");
        return Failure::new(
            "Missing auth-json",
            format!(
                "input `auth-json` is empty, and there is no `token` or GitHub App: this is a \
                 task job, which runs on the keeper's access-only copy, and the secret it \
                 passes as `auth-json` (e.g. `${{{{ secrets.CODEX_ACCESS_JSON }}}}`) is empty or \
                 not set for {repository}."
            ),
        )
        .before_codex()
        .fix(
            "The keeper writes that secret: check that its job sets `access-secret-name` to \
             the name this job reads (docs/examples/keeper.yml in codex-auth) and has run since \
             (run it now from the Actions tab).",
        )
        .fix(format!(
            "For an organization secret, add {repository} to the secret's Repository access \
             (the organization's Settings → Secrets and variables → Actions): an organization \
             secret not shared with a repository reads as empty there."
        ));
    }
    Failure::new("Missing auth-json", "input `auth-json` is empty.")
        .before_codex()
        .fix(format!(
            "Pass the secret that holds Codex's auth.json, e.g. `auth-json: \
             ${{{{ secrets.{} }}}}`. If the secret does not exist yet, create it.",
            config.target.name
        ))
        .fix(reseed_hint(place))
}

/// What the main stage makes of the loaded login's [`Freshness`] when Codex starts from it
/// (`starts_from_it`; not from a newer file already on disk, when nothing is said): a login
/// another job replaced after this run was queued is refused, a check that could not be made
/// is a warning.
pub fn refuse_stale(
    config: &ActionConfig,
    freshness: &Freshness,
    starts_from_it: bool,
) -> Result<(), Failure> {
    let target = &config.target;
    match freshness {
        Freshness::Current => Ok(()),
        _ if !starts_from_it => Ok(()),
        Freshness::NotChecked { request, status } => {
            config.workflow.warning(
                "Concurrent-use check skipped",
                &format!(
                    "could not read this workflow run ({request} answered {status}) to compare \
                     its start with the secret's last write. Give input `token` the repository \
                     permission \"Actions: Read\" to enable the check."
                ),
            );
            Ok(())
        }
        Freshness::WrittenAfterQueued { written, queued } => Err(Failure::new(
            "Secret changed after this run was queued",
            format!(
                "the {target} was written at {written}, after this run was queued ({queued}): \
                 another job refreshed the login and stored a newer one, so the copy this job \
                 received is stale and its refresh token is most likely used up."
            ),
        )
        .before_codex()
        .fix("Re-run the job: a re-run receives the new value.")
        .fix(format!(
            "To prevent this, give every workflow that uses the secret the same concurrency \
             group, e.g. `concurrency: {{ group: codex-auth-{}, cancel-in-progress: false }}`.",
            target.name
        ))),
        Freshness::Unknown(why) => {
            Err(Failure::new("Cannot read the workflow run", why.clone()).before_codex())
        }
    }
}

/// Refuses the jobs an access-only copy cannot serve: a sign-in (`signing_in`), a keeper
/// (`mode: refresh`, or input `access-secret-name`). Says which inputs it leaves unused.
pub fn refuse_copy_here(config: &ActionConfig, signing_in: bool) -> Result<(), Failure> {
    use crate::config::{Mode, StoreConfig};
    let refused = |what: &str, fix: &str| {
        Failure::new("Access-only copy not usable here", what)
            .before_codex()
            .fix(fix)
    };
    if signing_in {
        return Err(refused(
            "input `auth-json` is an access-only copy, and `mode: login` signs in anew and \
             stores a full login: it takes no `auth-json`.",
            "Remove `auth-json` from the sign-in workflow.",
        ));
    }
    if config.mode == Mode::Refresh {
        return Err(refused(
            "input `auth-json` is an access-only copy (no refresh token), and `mode: refresh` \
             keeps a login fresh by refreshing it: a copy cannot be refreshed.",
            "Give the keeper the full login (the secret named by `secret-name`, e.g. \
             `auth-json: ${{ secrets.CODEX_AUTH_JSON }}`); only task jobs take the copy.",
        ));
    }
    if let Some(access) = &config.access_target {
        return Err(refused(
            &format!(
                "input `access-secret-name` ({}) makes this job the keeper, which publishes \
                 copies of the full login, but input `auth-json` is itself an access-only copy.",
                access.name
            ),
            "Give the keeper the full login in `auth-json`, or remove `access-secret-name` \
             from task jobs.",
        ));
    }
    let unused: Vec<&str> = [
        (config.credentials.is_some(), "`token` / `app-id`"),
        (
            matches!(
                config.store,
                StoreConfig::Artifact(_) | StoreConfig::Secret { rescue: Some(_) }
            ),
            "`store` / `artifact-key`",
        ),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    if !unused.is_empty() {
        config.workflow.info(&format!(
            "Inputs {} are not used: this job runs on an access-only copy and never writes \
             anything back.",
            unused.join(" and ")
        ));
    }
    Ok(())
}

/// A copy must outlive the job: Codex cannot renew it, and an access token that expires
/// mid-task fails the task after it may already have done half its work. `expires`: its
/// access token's `exp`. Warns when the keeper is late.
pub fn refuse_expiring_copy(
    config: &ActionConfig,
    expires: Option<Timestamp>,
) -> Result<(), Failure> {
    let workflow = &config.workflow;
    let now = Timestamp::now();
    let keeper = reseed_hint(&Place::AccessCopy);
    let Some(expires) = expires else {
        return Err(Failure::new(
            "Access-only copy unusable",
            "input `auth-json` is an access-only copy whose access token has no readable `exp`, \
             so when it stops working cannot be told.",
        )
        .before_codex()
        .fix(keeper));
    };
    let limit = SignedDuration::try_from(config.job_timeout).unwrap_or(SignedDuration::MAX);
    let job_ends = now.checked_add(limit).unwrap_or(Timestamp::MAX);
    if expires <= job_ends {
        return Err(Failure::new(
            "Access-only copy expires during the job",
            format!(
                "the access token in input `auth-json` (an access-only copy) expires at \
                 {expires} ({}), before this job's time limit ends (input \
                 `job-timeout-minutes`: {} min), and nothing can renew a copy.",
                relative(now, expires),
                config.job_timeout.as_secs() / 60
            ),
        )
        .before_codex()
        .fix(keeper)
        .fix(
            "Then re-run this job. Schedule the keeper so that it runs at least once a day \
             (docs/examples/keeper.yml).",
        ));
    }
    workflow.info(&format!(
        "Input auth-json is an access-only copy (its access token expires at {expires}, {}): no \
         write token is needed, nothing is proven or written back; the keeper job refreshes \
         the login.",
        relative(now, expires)
    ));
    if expires.duration_since(now) < WARN_BEFORE_EXPIRY {
        workflow.warning(
            "Access-only copy expires soon",
            &format!(
                "the access token in input `auth-json` expires at {expires} ({}): jobs that \
                 start after that fail before Codex runs. The keeper has not published a newer \
                 copy: check that its scheduled runs succeed, or run it now.",
                relative(now, expires)
            ),
        );
    }
    Ok(())
}

/// `store: artifact` writes no secret: a write credential given to it is not used.
pub fn warn_of_unused_credentials(config: &ActionConfig) {
    if matches!(config.store, crate::config::StoreConfig::Artifact(_))
        && config.credentials.is_some()
    {
        config.workflow.warning(
            "Inputs ignored",
            "`store: artifact` writes no secret: inputs `token`, `app-id` and `app-private-key` \
             are not used (and need not exist); remove them.",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    /// A main stage's configuration with these inputs.
    fn config_with(inputs: &[(&str, &str)]) -> ActionConfig {
        let env = [
            ("GITHUB_REPOSITORY", "octo/repo"),
            ("GITHUB_API_URL", "https://ghe.example/api/v3"),
            ("HOME", "/github/home"),
        ]
        .iter()
        .chain(inputs)
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        ActionConfig::from_env(env).unwrap()
    }

    /// The failure `not_loaded` words for the secret store, with these inputs.
    fn secret_not_loaded(inputs: &[(&str, &str)], why: NotLoaded) -> Failure {
        let config = config_with(inputs);
        let place = Place::Secret(config.target.clone());
        not_loaded(&config, &place, why)
            .downcast::<Failure>()
            .unwrap()
    }

    #[test]
    fn a_task_job_without_auth_json_is_told_the_copy_is_missing() {
        let failure = secret_not_loaded(&[], NotLoaded::Nothing);
        assert_eq!(failure.title, "Missing auth-json");
        assert_eq!(
            failure.message(),
            "input `auth-json` is empty, and there is no `token` or GitHub App: this is a task \
             job, which runs on the keeper's access-only copy, and the secret it passes as \
             `auth-json` (e.g. `${{ secrets.CODEX_ACCESS_JSON }}`) is empty or not set for \
             octo/repo. Codex was not run. The keeper writes that secret: check that its job \
             sets `access-secret-name` to the name this job reads (docs/examples/keeper.yml in \
             codex-auth) and has run since (run it now from the Actions tab). For an \
             organization secret, add octo/repo to the secret's Repository access (the \
             organization's Settings → Secrets and variables → Actions): an organization secret \
             not shared with a repository reads as empty there."
        );
    }

    #[test]
    fn a_job_with_a_write_token_and_no_auth_json_is_told_to_seed_the_login() {
        for inputs in [
            &[("INPUT_TOKEN", "github_pat_x")][..],
            &[
                ("INPUT_APP-ID", "7"),
                (
                    "INPUT_APP-PRIVATE-KEY",
                    "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
                ),
            ],
        ] {
            let failure = secret_not_loaded(inputs, NotLoaded::Nothing);
            assert_eq!(failure.title, "Missing auth-json");
            let message = failure.message();
            assert!(
                message.starts_with(
                    "input `auth-json` is empty. Codex was not run. Pass the secret that holds \
                     Codex's auth.json, e.g. `auth-json: ${{ secrets.CODEX_AUTH_JSON }}`. If the \
                     secret does not exist yet, create it. To reseed from the browser: run the \
                     sign-in workflow"
                ),
                "{message}"
            );
            assert!(
                message.contains("codex-auth seed --repo octo/repo"),
                "{message}"
            );
            assert!(!message.contains("CODEX_ACCESS_JSON"), "{message}");
        }
    }

    /// Every fact a store can answer a load with is worded here, before Codex, with what to
    /// do; a credential's own failure stands as it is.
    #[test]
    fn every_failed_load_says_codex_did_not_run_and_what_to_do() {
        let config = config_with(&[("INPUT_TOKEN", "github_pat_x")]);
        let secret = Place::Secret(config.target.clone());
        let artifact = Place::Artifact {
            name: "codex-auth".into(),
        };
        let cases = [
            (
                &artifact,
                NotLoaded::Nothing,
                "No login to restore",
                "artifact named codex-auth in octo/repo",
            ),
            (
                &secret,
                NotLoaded::InvalidSeed("not JSON".into()),
                "Invalid auth-json",
                "codex-auth seed --repo octo/repo",
            ),
            (
                &artifact,
                NotLoaded::InvalidSeed("not JSON".into()),
                "Invalid auth-json",
                "`store: artifact`",
            ),
            (
                &artifact,
                NotLoaded::Unusable("artifact 7 cannot be restored: the key is wrong.".into()),
                "Artifact not usable",
                "`store: artifact`",
            ),
            (
                &artifact,
                NotLoaded::Unreadable("GitHub answered 503.".into()),
                "Cannot read artifacts",
                "Re-run the job",
            ),
            (
                &artifact,
                NotLoaded::CannotSave(CannotSave::Refused("no runtime token".into())),
                "Cannot upload artifacts",
                "Use `store: secret`",
            ),
            (
                &secret,
                NotLoaded::CannotSave(CannotSave::Refused("GitHub answered 403.".into())),
                "Cannot write the secret back",
                "refresh_token_reused",
            ),
        ];
        for (place, why, title, says) in cases {
            let case = format!("{place} {why:?}");
            let failure = not_loaded(&config, place, why)
                .downcast::<Failure>()
                .unwrap();
            assert_eq!(failure.title, title, "{case}");
            let message = failure.message();
            assert!(message.contains("Codex was not run."), "{case}: {message}");
            assert!(message.contains(says), "{case}: {message}");
        }
        let own = Failure::new("GitHub App authentication failed", "the key is revoked");
        let passed = not_loaded(
            &config,
            &secret,
            NotLoaded::CannotSave(CannotSave::Credentials(own.clone().into())),
        );
        assert_eq!(passed.downcast::<Failure>().unwrap(), own);
    }

    /// A login another job replaced after this run was queued stops the job only when Codex
    /// would start from it; a check that could not be made is a warning either way.
    #[test]
    fn a_stale_login_is_refused_only_when_codex_starts_from_it() {
        let config = config_with(&[("INPUT_TOKEN", "github_pat_x")]);
        let stale = Freshness::WrittenAfterQueued {
            written: "2026-12-06T10:00:00Z".parse().unwrap(),
            queued: "2026-12-06T09:00:00Z".parse().unwrap(),
        };
        let failure = refuse_stale(&config, &stale, true).unwrap_err();
        assert_eq!(failure.title, "Secret changed after this run was queued");
        assert!(failure
            .message()
            .contains("concurrency: { group: codex-auth-CODEX_AUTH_JSON"));
        refuse_stale(&config, &stale, false).unwrap();
        let unknown = Freshness::Unknown("GitHub answered 500.".into());
        assert_eq!(
            refuse_stale(&config, &unknown, true).unwrap_err().title,
            "Cannot read the workflow run"
        );
        refuse_stale(&config, &unknown, false).unwrap();
        let not_checked = Freshness::NotChecked {
            request: "GET /repos/octo/repo/actions/runs/1".into(),
            status: 403,
        };
        refuse_stale(&config, &not_checked, true).unwrap();
        refuse_stale(&config, &not_checked, false).unwrap();
        refuse_stale(&config, &Freshness::Current, true).unwrap();
    }
}
