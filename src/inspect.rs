//! `codex-auth inspect`: a health report of an auth.json, with no secret in it.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::auth_file::{relative, AuthFile, Kind, MAX_BYTES};
use crate::failure::Failure;

/// Where `inspect` looks without an argument: `$CODEX_HOME/auth.json`, else
/// `~/.codex/auth.json`.
pub fn default_path() -> Option<PathBuf> {
    let home = std::env::var_os("CODEX_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".codex")))?;
    Some(home.join("auth.json"))
}

/// Prints the report for `path` (`-` reads standard input) and fails when the file is not a
/// usable login: not one at all, or an access-only copy that is expired or has no readable
/// expiry.
pub fn run(path: Option<&Path>) -> anyhow::Result<()> {
    let (name, file) = read_login(path)?;
    let now = Timestamp::now();
    print!("{}", report(&name, &file, now));
    refuse_unusable_copy(&name, &file, now)?;
    Ok(())
}

/// Reads and validates a login: `path`, `-` for standard input, or the [`default_path`].
/// Returns how to name it in messages, and the login.
pub fn read_login(path: Option<&Path>) -> anyhow::Result<(String, AuthFile)> {
    let path = match path {
        Some(path) => path.to_owned(),
        None => default_path().ok_or_else(|| {
            Failure::new(
                "No auth.json path",
                "neither CODEX_HOME nor HOME is set, so there is no default auth.json: pass a file",
            )
        })?,
    };
    let stdin = path == Path::new("-");
    let bytes = if stdin {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map_err(|e| {
            Failure::new(
                "Standard input not readable",
                format!("cannot read standard input: {e}"),
            )
        })?;
        bytes
    } else {
        match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let message = format!(
                    "{} does not exist: run `codex login` (ChatGPT sign-in) first, or pass a file",
                    path.display()
                );
                return Err(Failure::new("No auth.json", message).into());
            }
            Err(e) => {
                let message = format!("cannot read {}: {e}", path.display());
                return Err(Failure::new("auth.json not readable", message).into());
            }
        }
    };
    let bytes = zeroize::Zeroizing::new(bytes);
    let name = match stdin {
        true => "standard input".to_owned(),
        false => path.display().to_string(),
    };
    // A file on disk is what Codex wrote (pretty JSON, whose compact form is what must fit in a
    // secret); anything else is a secret's value (JSON or base64).
    let parsed = match stdin {
        true => AuthFile::decode_bytes(&bytes),
        false => AuthFile::parse_file(&bytes).or_else(|_| AuthFile::decode_bytes(&bytes)),
    };
    let file = parsed.map_err(|e| {
        Failure::new(
            "Invalid auth.json",
            format!("{name} is not a usable Codex ChatGPT login: {e}"),
        )
    })?;
    Ok((name, file))
}

/// The report's text.
pub fn report(name: &str, file: &AuthFile, now: Timestamp) -> String {
    let claims = file.claims();
    let compact_len = file
        .to_compact_json()
        .map(|c| c.expose().len())
        .unwrap_or(0);
    let last = file.last_refresh();
    let days = (now.as_second() - last.as_second()).max(0) / 86_400;
    let (what, kind, mode, expiry) = match file.kind() {
        Kind::Full => (
            "a usable Codex ChatGPT login".to_owned(),
            "full login: Codex refreshes it, rotating its refresh token, so only one job at a time may use it",
            "ChatGPT mode, tokens present",
            match claims.access_expires_at {
                Some(at) if at > now => format!("expires {at} ({})", relative(now, at)),
                Some(at) => format!(
                    "expires {at} ({}; Codex refreshes it on its next start)",
                    relative(now, at)
                ),
                None => {
                    "expires unknown (no `exp` claim; Codex refreshes 8 days after last_refresh)"
                        .to_owned()
                }
            },
        ),
        Kind::AccessOnly => {
            let (state, expiry) = match claims.access_expires_at {
                Some(at) if at > now => {
                    let soon = match at.as_second() - now.as_second() < 86_400 {
                        true => "; less than a day left",
                        false => "",
                    };
                    (
                        "usable",
                        format!(
                            "expires {at} ({}{soon}); no refresh token, so nothing can renew it",
                            relative(now, at)
                        ),
                    )
                }
                Some(at) => (
                    "expired",
                    format!(
                        "expired {at} ({}); no refresh token, so nothing can renew it",
                        relative(now, at)
                    ),
                ),
                None => (
                    "unusable for the action",
                    "expires unknown (no readable `exp` claim): the action refuses a copy it \
                     cannot date"
                        .to_owned(),
                ),
            };
            (
                format!("an access-only copy of a Codex ChatGPT login, {state}"),
                "access-only copy (auth_mode \"chatgptAuthTokens\"): Codex cannot refresh it, so \
                 any number of jobs may use it at once",
                "access-only mode, tokens present (refresh token empty)",
                expiry,
            )
        }
    };
    format!(
        "{name}: {what}\n\
         \x20 kind:          {kind}\n\
         \x20 checks:        JSON object, {mode}, id_token is a JWT, account_id set, last_refresh is RFC 3339\n\
         \x20 plan:          {}\n\
         \x20 access token:  {expiry}\n\
         \x20 last_refresh:  {last} ({days} days ago)\n\
         \x20 as a secret:   {compact_len} bytes on one line (limit {MAX_BYTES})\n",
        claims.plan.as_deref().unwrap_or("unknown"),
    )
}

/// Refuses an access-only copy that cannot work: its access token expired (Codex cannot
/// refresh a copy), or has no readable `exp` (the action cannot tell whether it outlives a
/// job, so it refuses it too). A full login is never refused here.
pub fn refuse_unusable_copy(name: &str, file: &AuthFile, now: Timestamp) -> Result<(), Failure> {
    if file.kind() == Kind::Full {
        return Ok(());
    }
    match file.access_expires_at() {
        Some(at) if at > now => Ok(()),
        Some(at) => Err(Failure::new(
            "Expired access-only copy",
            format!(
                "{name} is an access-only copy whose access token expired at {at} ({}), and a \
                 copy cannot be refreshed: use the copy the keeper wrote since, or run the \
                 keeper's workflow now",
                relative(now, at)
            ),
        )),
        None => Err(Failure::new(
            "Undated access-only copy",
            format!(
                "{name} is an access-only copy whose access token has no readable `exp`, so \
                 nothing can tell when it stops working and the action refuses it: make a new \
                 copy from the full login (the keeper's `access-secret-name` writes one)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth_file::tests::jwt;
    use pretty_assertions::assert_eq;

    fn sample() -> Result<AuthFile, Box<dyn std::error::Error>> {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/auth.sample.json"),
        )?;
        Ok(AuthFile::decode(&text)?)
    }

    /// The sample with `access_token` replaced.
    fn with_access_token(token: &str) -> Result<AuthFile, Box<dyn std::error::Error>> {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/auth.sample.json"),
        )?;
        let mut value: serde_json::Value = serde_json::from_str(&text)?;
        value["tokens"]["access_token"] = token.into();
        Ok(AuthFile::decode(&value.to_string())?)
    }

    fn assert_no_secret(report: &str, file: &AuthFile) {
        for secret in file.secret_values() {
            assert!(!report.contains(secret.expose()));
        }
    }

    #[test]
    fn report_shows_health_but_no_secret() -> Result<(), Box<dyn std::error::Error>> {
        let file = sample()?;
        let now: Timestamp = "2026-11-28T12:00:00Z".parse()?;
        let report = report("auth.json", &file, now);
        assert_no_secret(&report, &file);
        assert!(refuse_unusable_copy("auth.json", &file, now).is_ok());
        insta::assert_snapshot!(report, @r"
        auth.json: a usable Codex ChatGPT login
          kind:          full login: Codex refreshes it, rotating its refresh token, so only one job at a time may use it
          checks:        JSON object, ChatGPT mode, tokens present, id_token is a JWT, account_id set, last_refresh is RFC 3339
          plan:          plus
          access token:  expires 2030-12-31T23:59:59Z (in 1494 days)
          last_refresh:  2026-11-01T09:30:00Z (27 days ago)
          as a secret:   584 bytes on one line (limit 49152)
        ");
        Ok(())
    }

    #[test]
    fn a_copy_shows_when_it_runs_out() -> Result<(), Box<dyn std::error::Error>> {
        let full = sample()?;
        let copy = full.to_access_only();
        let now: Timestamp = "2026-11-28T12:00:00Z".parse()?;
        let report = report("copy.json", &copy, now);
        // The full login's refresh token too: a copy must not carry it.
        assert_no_secret(&report, &full);
        assert!(refuse_unusable_copy("copy.json", &copy, now).is_ok());
        insta::assert_snapshot!(report, @r#"
        copy.json: an access-only copy of a Codex ChatGPT login, usable
          kind:          access-only copy (auth_mode "chatgptAuthTokens"): Codex cannot refresh it, so any number of jobs may use it at once
          checks:        JSON object, access-only mode, tokens present (refresh token empty), id_token is a JWT, account_id set, last_refresh is RFC 3339
          plan:          plus
          access token:  expires 2030-12-31T23:59:59Z (in 1494 days); no refresh token, so nothing can renew it
          last_refresh:  2026-11-01T09:30:00Z (27 days ago)
          as a secret:   568 bytes on one line (limit 49152)
        "#);
        let soon: Timestamp = "2030-12-31T20:00:00Z".parse()?;
        let line = report_line(&copy, soon);
        assert!(
            line.contains("expires 2030-12-31T23:59:59Z (in 3 h; less than a day left);"),
            "{line}"
        );
        Ok(())
    }

    #[test]
    fn an_expired_copy_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let copy = sample()?.to_access_only();
        let now: Timestamp = "2031-01-02T00:00:00Z".parse()?;
        let report = report("copy.json", &copy, now);
        assert_no_secret(&report, &copy);
        insta::assert_snapshot!(report, @r#"
        copy.json: an access-only copy of a Codex ChatGPT login, expired
          kind:          access-only copy (auth_mode "chatgptAuthTokens"): Codex cannot refresh it, so any number of jobs may use it at once
          checks:        JSON object, access-only mode, tokens present (refresh token empty), id_token is a JWT, account_id set, last_refresh is RFC 3339
          plan:          plus
          access token:  expired 2030-12-31T23:59:59Z (24 h ago); no refresh token, so nothing can renew it
          last_refresh:  2026-11-01T09:30:00Z (1522 days ago)
          as a secret:   568 bytes on one line (limit 49152)
        "#);
        let refused = refuse_unusable_copy("copy.json", &copy, now).err();
        insta::assert_snapshot!(
            refused.map(|f| format!("{}: {}", f.title, f.message())).unwrap_or_default(),
            @"Expired access-only copy: copy.json is an access-only copy whose access token expired at 2030-12-31T23:59:59Z (24 h ago), and a copy cannot be refreshed: use the copy the keeper wrote since, or run the keeper's workflow now"
        );
        // The same tokens as a full login: Codex refreshes them, nothing is refused.
        let full = sample()?;
        assert!(refuse_unusable_copy("auth.json", &full, now).is_ok());
        assert!(report_line(&full, now).contains("Codex refreshes it on its next start"));
        Ok(())
    }

    #[test]
    fn a_copy_without_exp_is_unusable_for_the_action() -> Result<(), Box<dyn std::error::Error>> {
        let now: Timestamp = "2026-11-28T12:00:00Z".parse()?;
        for token in [jwt(&serde_json::json!({"sub": "x"})), "opaque".to_owned()] {
            let full = with_access_token(&token)?;
            assert!(refuse_unusable_copy("auth.json", &full, now).is_ok());
            let copy = full.to_access_only();
            let report = report("copy.json", &copy, now);
            assert!(
                report.starts_with(
                    "copy.json: an access-only copy of a Codex ChatGPT login, unusable for the action\n"
                ),
                "{report}"
            );
            assert!(
                report.contains(
                    "access token:  expires unknown (no readable `exp` claim): the action \
                     refuses a copy it cannot date\n"
                ),
                "{report}"
            );
            let refused = refuse_unusable_copy("copy.json", &copy, now).err();
            assert_eq!(
                refused.map(|f| format!("{}: {}", f.title, f.message())),
                Some(
                    "Undated access-only copy: copy.json is an access-only copy whose access \
                     token has no readable `exp`, so nothing can tell when it stops working and \
                     the action refuses it: make a new copy from the full login (the keeper's \
                     `access-secret-name` writes one)"
                        .to_owned()
                )
            );
        }
        Ok(())
    }

    /// The report's `access token:` line.
    fn report_line(file: &AuthFile, now: Timestamp) -> String {
        report("auth.json", file, now)
            .lines()
            .find(|l| l.trim_start().starts_with("access token:"))
            .unwrap_or_default()
            .to_owned()
    }
}
