//! When Codex refreshes a login by itself, and so may rotate its refresh token: before its
//! first backend call, when the access token's `exp` is within about five minutes, or, for an
//! access token without `exp`, when `last_refresh` is older than eight days; and again
//! whenever the access token runs out later in the job (`codex-rs/login/src/auth/manager.rs`;
//! measured with the real CLI, see docs/facts.md, "Codex CLI and auth.json").
//!
//! A refresh can also follow a 401 from the backend (`unauthorized_recovery`), which no clock
//! predicts: a login revoked on the server side. The rescue store covers that case.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::auth_file::AuthFile;

/// How long before the access token's `exp` Codex refreshes it.
pub const REFRESH_WINDOW: SignedDuration = SignedDuration::from_mins(5);
/// How old `last_refresh` may be, for an access token without `exp`.
pub const REFRESH_INTERVAL: SignedDuration = SignedDuration::from_hours(8 * 24);
/// Slack for a runner's clock that is a little off.
const CLOCK_MARGIN: SignedDuration = SignedDuration::from_mins(5);

/// Whether Codex may refresh (rotate) the login before the job ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outlook {
    /// It may: why, in words.
    Possible(String),
    /// It will not before this time, which is after the job's time limit.
    NotBefore(Timestamp),
}

/// The outlook for `login` in a job that may run `within` from `now`. `forced`: the mode
/// refreshes whatever the clock says (`mode: refresh`).
pub fn outlook(login: &AuthFile, forced: bool, now: Timestamp, within: Duration) -> Outlook {
    if forced {
        return Outlook::Possible("`mode: refresh` makes Codex refresh the login".to_owned());
    }
    let minutes = within.as_secs() / 60;
    let end = now
        .checked_add(SignedDuration::try_from(within).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX);
    let (due, what) = match login.claims().access_expires_at {
        Some(exp) => (
            exp.checked_sub(REFRESH_WINDOW).unwrap_or(Timestamp::MIN),
            format!("the access token expires at {exp}"),
        ),
        None => (
            login
                .last_refresh()
                .checked_add(REFRESH_INTERVAL)
                .unwrap_or(Timestamp::MAX),
            format!(
                "the access token has no expiry and the login was last refreshed at {}",
                login.last_refresh()
            ),
        ),
    };
    let due_with_margin = due.checked_sub(CLOCK_MARGIN).unwrap_or(Timestamp::MIN);
    if due_with_margin <= now {
        Outlook::Possible(format!("{what}: Codex refreshes it when it starts"))
    } else if due_with_margin <= end {
        Outlook::Possible(format!(
            "{what}, within this job's time limit ({minutes} min, input \
             `job-timeout-minutes`): Codex may refresh it during the job"
        ))
    } else {
        Outlook::NotBefore(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth_file::tests::{jwt, sample};
    use serde_json::json;

    fn login(exp: Option<i64>, last_refresh: &str) -> AuthFile {
        let mut value = sample();
        let access = match exp {
            Some(exp) => jwt(&json!({"exp": exp})),
            None => jwt(&json!({"sub": "user"})),
        };
        value["tokens"]["access_token"] = json!(access);
        value["last_refresh"] = json!(last_refresh);
        AuthFile::decode(&value.to_string()).unwrap()
    }

    #[test]
    fn a_refresh_is_possible_when_the_token_expires_before_the_job_ends() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let six_hours = Duration::from_secs(6 * 3600);
        let at = |offset: i64| Some(now.as_second() + offset);
        // Expired, or inside Codex's window: at start-up.
        let expired = outlook(
            &login(at(-60), "2026-11-01T00:00:00Z"),
            false,
            now,
            six_hours,
        );
        assert!(matches!(&expired, Outlook::Possible(why) if why.ends_with("when it starts")));
        // Expiring during the job.
        let later = outlook(
            &login(at(3 * 3600), "2026-11-01T00:00:00Z"),
            false,
            now,
            six_hours,
        );
        assert!(matches!(&later, Outlook::Possible(why) if why.contains("during the job")));
        // Valid well past the job's end: not before the window opens.
        let exp = now.as_second() + 10 * 86_400;
        let fresh = outlook(
            &login(Some(exp), "2026-11-01T00:00:00Z"),
            false,
            now,
            six_hours,
        );
        assert_eq!(
            fresh,
            Outlook::NotBefore(Timestamp::from_second(exp - 300).unwrap())
        );
        // The clock margin: five minutes past the end still counts.
        let edge = now.as_second() + 6 * 3600 + 300 + 240;
        assert!(matches!(
            outlook(
                &login(Some(edge), "2026-11-01T00:00:00Z"),
                false,
                now,
                six_hours
            ),
            Outlook::Possible(_)
        ));
        // A forced refresh, whatever the token.
        assert!(matches!(
            outlook(
                &login(Some(exp), "2026-11-01T00:00:00Z"),
                true,
                now,
                six_hours
            ),
            Outlook::Possible(_)
        ));
    }

    #[test]
    fn without_an_expiry_the_age_of_the_login_decides() {
        // `last_refresh` may not lie in the future, so this case runs on the real clock.
        let now = Timestamp::now();
        let hour = Duration::from_secs(3600);
        let days_ago = |days: i64| {
            Timestamp::from_second(now.as_second() - days * 86_400)
                .unwrap()
                .to_string()
        };
        assert!(matches!(
            outlook(&login(None, &days_ago(9)), false, now, hour),
            Outlook::Possible(_)
        ));
        assert!(matches!(
            outlook(&login(None, &days_ago(2)), false, now, hour),
            Outlook::NotBefore(_)
        ));
    }
}
