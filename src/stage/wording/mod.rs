//! What the stages tell the user: which Codex runs, or why none can ([`settled`],
//! [`not_settled`]); why a login could not be loaded or a save cannot be proven ([`load`]:
//! `not_loaded`, `cannot_save`, and where a fresh login goes); where a login went, what an
//! unsaved login means for the job and what to do ([`not_saved`]); the keeper's copy rows, and
//! the job summary. The stages decide; this words it.

mod load;

use std::fmt::Write as _;

use jiff::Timestamp;

use super::Phase;
use crate::auth_file::{relative, AuthFile};
use crate::codex::install::{Codex, NotSettled, Origin, Settled};
use crate::codex_home::CodexHome;
use crate::config::ActionConfig;
use crate::failure::{sentence, Failure};
use crate::store::{NotSaved, Place, Saved};
use crate::workflow::Workflow;
pub use load::{
    cannot_save, not_loaded, refuse_copy_here, refuse_expiring_copy, refuse_stale, reseed_hint,
    warn_of_unused_credentials, WARN_BEFORE_EXPIRY,
};

/// What to do when a new sign-in could not be saved.
pub(super) const SIGN_IN_NOT_SAVED: &str =
    "The new login was not stored (and is not kept anywhere else); \
     the stored login, if any, is unchanged. Fix the cause, then run the sign-in again.";

/// Tells the Codex `codex-version` names, settled ([`crate::codex::install::settle`]): its own
/// `--version` and where it came from, with a warning when the copy an earlier step fetched
/// had been changed, or when the binary reports another version.
pub(super) fn settled(workflow: &Workflow, settled: &Settled) {
    let Settled {
        codex,
        named,
        version_line: line,
    } = settled;
    if codex.origin == Origin::Path {
        workflow.info(&format!(
            "Codex: {line}, the codex on PATH, which is the version `codex-version` names: \
             nothing to fetch."
        ));
        return;
    }
    warn_if_replaced(workflow, codex);
    workflow.info(&format!("Codex: {line}, {}.", codex.describe()));
    if settled.reports_another_version() {
        workflow.warning(
            "Codex reports another version",
            &format!(
                "Input `codex-version` names {named}, and the binary of that package reports \
                 \"{line}\". It is the package the registry publishes under that version (its \
                 integrity was checked); tell whoever runs the registry if you did not expect \
                 this."
            ),
        );
    }
}

/// Why the job stops when the Codex `codex-version` names cannot run (nothing was restored
/// yet); a fetched copy that replaced a changed one is warned of first.
pub(super) fn not_settled(workflow: &Workflow, not: NotSettled) -> Failure {
    match not {
        NotSettled::Cancelled { version } => Failure::new(
            "Job cancelled",
            format!(
                "the job was cancelled while Codex {version} was being fetched: nothing was \
                 restored or changed."
            ),
        )
        .before_codex(),
        NotSettled::Fetch(failure) => failure,
        NotSettled::DoesNotRun(codex) => {
            warn_if_replaced(workflow, &codex);
            Failure::new(
                "Fetched Codex does not run",
                format!(
                    "{} passed its checks, but `{} --version` did not run or named no version.",
                    codex.describe(),
                    codex.program.display()
                ),
            )
            .before_codex()
            .fix(
                "Name another version in `codex-version`, or leave it empty to run the pinned \
                 Codex.",
            )
        }
    }
}

/// Warns when `codex` was fetched in place of a copy an earlier step fetched that was not as
/// verified.
fn warn_if_replaced(workflow: &Workflow, codex: &Codex) {
    if let Origin::Fetched {
        replaced: Some(why),
        version,
        ..
    } = &codex.origin
    {
        workflow.warning(
            "Cached Codex changed",
            &format!(
                "The copy of Codex {version} an earlier step fetched was not as it was verified \
                 ({why}): something in the job changed it. It was fetched and verified again; \
                 check what the job's earlier steps ran."
            ),
        );
    }
}

/// Where a saved login went, for the summary and the log ("to the repository secret …").
pub fn saved_where(saved: &Saved) -> String {
    match (&saved.place, saved.artifact_id) {
        (Place::Artifact { name }, Some(id)) => format!("as artifact {name} (id {id})"),
        (Place::Artifact { name }, None) => format!("as artifact {name}"),
        (place, _) => format!("to {place}"),
    }
}

/// A save that did not store the login, as the failure `phase` reports: what happened to the
/// login, where it is now, and what to do. The file is still on disk in every case.
pub(super) fn not_saved(
    config: &ActionConfig,
    phase: Phase,
    place: &Place,
    not_saved: NotSaved,
) -> Failure {
    // The causes come from many places; each is said as one sentence.
    let not_saved = match not_saved {
        NotSaved::Failed(cause) => NotSaved::Failed(sentence(&cause)),
        NotSaved::Rescued {
            cause,
            artifact,
            id,
        } => NotSaved::Rescued {
            cause: sentence(&cause),
            artifact,
            id,
        },
        NotSaved::RescueFailed {
            cause,
            artifact,
            error,
        } => NotSaved::RescueFailed {
            cause: sentence(&cause),
            artifact,
            error: error.trim_end().trim_end_matches('.').to_owned(),
        },
    };
    let path = CodexHome::new(&config.codex_home).auth_path();
    let path = path.display();
    let write = match place {
        Place::Artifact { .. } => format!("uploading the login in {path} as {place}"),
        Place::Secret(_) | Place::AccessCopy => format!("writing the login in {path} to {place}"),
    };
    match (not_saved, phase) {
        (NotSaved::Failed(cause), Phase::SignIn) => {
            let rescue = match (&config.store, place) {
                (crate::config::StoreConfig::Secret { rescue: Some(_) }, Place::Secret(_)) => {
                    " A new sign-in is not kept as a rescue artifact (the next run would not \
                     restore it in place of a missing secret or one of another account)."
                }
                _ => "",
            };
            Failure::new(
                "New login not saved",
                format!(
                    "{} of the new login to {place} failed: {cause}{rescue}",
                    match place {
                        Place::Artifact { .. } => "uploading",
                        Place::Secret(_) | Place::AccessCopy => "writing",
                    },
                ),
            )
            .fix(SIGN_IN_NOT_SAVED)
        }
        (NotSaved::Failed(cause), Phase::Main) => Failure::new(
            "Refreshed login not saved",
            format!("{write} failed: {cause} The file is still there."),
        )
        .fix("The post stage tries again at the end of the job."),
        (NotSaved::Failed(cause), Phase::Post) => {
            let failure = Failure::new(
                "Refreshed login not saved",
                format!(
                    "{write} failed: {cause} The file is still there; {place} still holds the \
                     login from before this job, whose refresh token no longer works if Codex \
                     rotated it in this job (every refresh does): the next run would fail with \
                     refresh_token_reused."
                ),
            );
            match place {
                Place::Secret(_) | Place::AccessCopy => failure
                    .fix("Fix the cause above, then reseed.")
                    .fix(
                        "To keep such a rotation next time instead, set input `artifact-key` \
                         (see docs/stores.md, \"Rescue\").",
                    )
                    .fix(reseed_hint(place)),
                Place::Artifact { .. } => {
                    failure.fix("Fix the cause, then pass a fresh login as input `auth-json` once.")
                }
            }
        }
        (
            NotSaved::Rescued {
                cause,
                artifact,
                id: None,
            },
            _,
        ) => Failure::new(
            "Refreshed login rescued",
            format!(
                "{write} failed: {cause} The same login is already rescued in artifact \
                 {artifact} (uploaded by the main stage): the next run restores it from there \
                 and writes the secret again."
            ),
        )
        .fix("Fix the cause before then."),
        (
            NotSaved::Rescued {
                cause,
                artifact,
                id: Some(id),
            },
            phase,
        ) => {
            let failure = Failure::new(
                "Refreshed login rescued",
                format!(
                    "{write} failed: {cause} The login was rescued instead: uploaded as \
                     artifact {artifact} (id {id}), encrypted for this repository. The next run \
                     restores it from there (it is newer than the secret) and writes the secret \
                     again."
                ),
            )
            .fix("Fix the cause before then.");
            match phase {
                Phase::Main => failure.fix("The post stage also tries the secret again."),
                Phase::Post | Phase::SignIn => failure,
            }
        }
        (
            NotSaved::RescueFailed {
                cause,
                artifact,
                error,
            },
            _,
        ) => Failure::new(
            "Refreshed login not saved",
            format!(
                "{write} failed: {cause} Rescuing it as artifact {artifact} failed too: {error}. \
                 The file is still there. If Codex rotated the login in this job, the stored \
                 copies no longer work."
            ),
        )
        .fix("Fix the cause, then reseed.")
        .fix(reseed_hint(place)),
    }
}

/// The keeper's summary rows about the access-only copy it published with `file`: where it
/// went, when it expires, and when the keeper must run again at the latest.
pub fn copy_rows(saved: &Saved, file: &AuthFile) -> Vec<(&'static str, String)> {
    let Some(copy) = &saved.copy else {
        return Vec::new();
    };
    let now = Timestamp::now();
    let mut rows = vec![(
        "Access-only copy",
        match &copy.written {
            Ok(()) => format!("written to the {}", copy.target),
            Err(_) => format!("NOT written to the {} (see the error)", copy.target),
        },
    )];
    if copy.written.is_ok() {
        if let Some(expires) = file.access_expires_at() {
            let latest = expires.checked_sub(WARN_BEFORE_EXPIRY).unwrap_or(expires);
            rows.push((
                "Copy expires",
                format!("{expires} ({})", relative(now, expires)),
            ));
            rows.push((
                "Next keeper run, at the latest",
                format!(
                    "{latest} ({}): task jobs warn from then on, and refuse a copy that expires \
                     within their time limit",
                    relative(now, latest)
                ),
            ));
        }
    }
    rows
}

/// The failure to report when the full login was stored but its access-only copy was not.
pub fn copy_not_written(saved: &Saved) -> Option<Failure> {
    let copy = saved.copy.as_ref()?;
    let cause = copy.written.as_ref().err()?;
    Some(
        Failure::new(
            "Access-only copy not written",
            format!(
                "the login was stored in {}, but writing its access-only copy to the {} failed: \
                 {} Task jobs keep using the copy written before, until it expires.",
                saved.place,
                copy.target,
                sentence(cause)
            ),
        )
        .fix(
            "Fix the cause, then run the keeper again: every run that stores a login writes the \
             copy too.",
        ),
    )
}

/// The job summary: facts about the login, no secret.
pub fn summary(
    workflow: &Workflow,
    file: &AuthFile,
    refreshed: bool,
    written: &str,
    more: &[(&str, String)],
) -> anyhow::Result<()> {
    let claims = file.claims();
    let now = Timestamp::now();
    let mut md = String::from("### codex-auth\n\n| | |\n|---|---|\n");
    let plan = claims.plan.as_deref().unwrap_or("unknown");
    let expiry = match claims.access_expires_at {
        Some(at) => format!("{at} ({})", relative(now, at)),
        None => "unknown (the access token has no `exp`)".to_owned(),
    };
    let refreshed = if refreshed { "yes" } else { "no" };
    let last = file.last_refresh();
    writeln!(md, "| ChatGPT plan | {plan} |")?;
    writeln!(md, "| Access token expires | {expiry} |")?;
    writeln!(md, "| Last refresh | {last} ({}) |", relative(now, last))?;
    writeln!(md, "| Refreshed in this job | {refreshed} |")?;
    writeln!(md, "| Written back | {written} |")?;
    for (name, value) in more {
        writeln!(md, "| {name} | {} |", value.replace('|', "\\|"))?;
    }
    workflow.summary(&md)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    /// Codex 1.2.3 fetched now in place of a copy that was not as verified.
    fn fetched_in_place_of_a_changed_copy() -> Codex {
        Codex {
            program: PathBuf::from("/cache/codex-auth-codex/1.2.3/linux-x64/bin/codex"),
            origin: Origin::Fetched {
                version: "1.2.3".to_owned(),
                bytes: 80_000_000,
                took: Duration::from_secs(4),
                replaced: Some("bin/codex has the SHA-256 00…, not ff…".to_owned()),
            },
        }
    }

    /// The annotations printed on this test's thread, one line each.
    fn annotations() -> String {
        crate::workflow::printed()
            .iter()
            .map(|(kind, title, message)| format!("{kind} {title}: {message}\n"))
            .collect()
    }

    #[test]
    fn a_fetched_codex_that_does_not_run_stops_the_job_after_the_changed_copy_is_warned_of() {
        let failure = not_settled(
            &Workflow::default(),
            NotSettled::DoesNotRun(fetched_in_place_of_a_changed_copy()),
        );
        insta::assert_snapshot!(annotations(), @"warning Cached Codex changed: The copy of Codex 1.2.3 an earlier step fetched was not as it was verified (bin/codex has the SHA-256 00…, not ff…): something in the job changed it. It was fetched and verified again; check what the job's earlier steps ran.");
        assert_eq!(failure.title, "Fetched Codex does not run");
        insta::assert_snapshot!(failure.message(), @r"Codex 1.2.3, fetched from the npm registry, checked against its sha512 integrity and unpacked in 4.0 s (80 MB) passed its checks, but `/cache/codex-auth-codex/1.2.3/linux-x64/bin/codex --version` did not run or named no version. Codex was not run. Name another version in `codex-version`, or leave it empty to run the pinned Codex.");
    }

    #[test]
    fn a_job_cancelled_during_the_fetch_stops_before_anything_is_restored() {
        let failure = not_settled(
            &Workflow::default(),
            NotSettled::Cancelled {
                version: "1.2.3".to_owned(),
            },
        );
        assert_eq!(failure.title, "Job cancelled");
        insta::assert_snapshot!(failure.message(), @r"the job was cancelled while Codex 1.2.3 was being fetched: nothing was restored or changed. Codex was not run.");
        assert_eq!(annotations(), "");
    }

    #[test]
    fn a_codex_that_reports_another_version_is_warned_of() {
        let settled_as = |version_line: &str| Settled {
            codex: fetched_in_place_of_a_changed_copy(),
            named: "1.2.3".to_owned(),
            version_line: version_line.to_owned(),
        };
        settled(&Workflow::default(), &settled_as("codex-cli 1.2.3"));
        let replaced = annotations();
        settled(&Workflow::default(), &settled_as("codex-cli 9.9.9"));
        let another = annotations()
            .strip_prefix(&format!("{replaced}{replaced}"))
            .map(str::to_owned);
        insta::assert_snapshot!(replaced, @r"warning Cached Codex changed: The copy of Codex 1.2.3 an earlier step fetched was not as it was verified (bin/codex has the SHA-256 00…, not ff…): something in the job changed it. It was fetched and verified again; check what the job's earlier steps ran.");
        insta::assert_snapshot!(another.unwrap_or_default(), @r#"warning Codex reports another version: Input `codex-version` names 1.2.3, and the binary of that package reports "codex-cli 9.9.9". It is the package the registry publishes under that version (its integrity was checked); tell whoever runs the registry if you did not expect this."#);
    }
}
