//! `codex-auth inspect`: a health report of an auth.json, with no secret in it.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use jiff::Timestamp;

use crate::auth_file::{relative, AuthFile, MAX_BYTES};
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
/// usable login.
pub fn run(path: Option<&Path>) -> anyhow::Result<()> {
    let (name, file) = read_login(path)?;
    print!("{}", report(&name, &file, Timestamp::now()));
    Ok(())
}

/// Reads and validates a login: `path`, `-` for standard input, or the [`default_path`].
/// Returns how to name it in messages, and the login.
pub fn read_login(path: Option<&Path>) -> anyhow::Result<(String, AuthFile)> {
    let path = match path {
        Some(path) => path.to_owned(),
        None => default_path().context("neither CODEX_HOME nor HOME is set; pass a file")?,
    };
    let stdin = path == Path::new("-");
    let bytes = if stdin {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read standard input")?;
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
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
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
    let expiry = match claims.access_expires_at {
        Some(at) if at > now => format!("{at} ({})", relative(now, at)),
        Some(at) => format!(
            "{at} ({}; Codex refreshes it on its next start)",
            relative(now, at)
        ),
        None => "unknown (no `exp` claim; Codex refreshes 8 days after last_refresh)".into(),
    };
    let days = (now.as_second() - last.as_second()).max(0) / 86_400;
    format!(
        "{}: a usable Codex ChatGPT login\n\
         \x20 checks:        JSON object, ChatGPT mode, tokens present, id_token is a JWT, account_id set, last_refresh is RFC 3339\n\
         \x20 plan:          {}\n\
         \x20 access token:  expires {expiry}\n\
         \x20 last_refresh:  {last} ({days} days ago)\n\
         \x20 as a secret:   {compact_len} bytes on one line (limit {MAX_BYTES})\n",
        name,
        claims.plan.as_deref().unwrap_or("unknown"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_shows_health_but_no_secret() -> Result<(), Box<dyn std::error::Error>> {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/auth.sample.json"),
        )?;
        let file = AuthFile::decode(&text)?;
        let now: Timestamp = "2026-11-28T12:00:00Z".parse()?;
        let report = report("auth.json", &file, now);
        for secret in file.secret_values() {
            assert!(!report.contains(secret.expose()));
        }
        insta::assert_snapshot!(report, @r"
        auth.json: a usable Codex ChatGPT login
          checks:        JSON object, ChatGPT mode, tokens present, id_token is a JWT, account_id set, last_refresh is RFC 3339
          plan:          plus
          access token:  expires 2030-12-31T23:59:59Z (in 1494 days)
          last_refresh:  2026-11-01T09:30:00Z (27 days ago)
          as a secret:   584 bytes on one line (limit 49152)
        ");
        Ok(())
    }
}
