//! What a checkout left in the workspace for Codex to find: the job's token, persisted in the
//! git configuration so that later steps can push.
//!
//! actions/checkout does that unless told `persist-credentials: false` (its default is `true`;
//! actions/checkout, `src/git-auth-helper.ts`, `configureToken`). It stores an HTTP header,
//! `AUTHORIZATION: basic <base64 of x-access-token:TOKEN>`, under the key
//! `http.<server>/.extraheader`:
//!
//! - v4 and v5 write it into the workspace's `.git/config`;
//! - v6 and later write it into a file of its own in `RUNNER_TEMP`
//!   (`git-credentials-<uuid>.config`) and include that file from `.git/config` with
//!   `includeIf "gitdir:…".path`, once with the host's path and once with the container's
//!   (`/github/runner_temp/…`).
//!
//! (docs/facts.md, "What the job holds while later steps run".) Either way Codex, which runs
//! in the workspace, can read the header and use the token. The files are read as untrusted
//! ([`crate::untrusted`]): an earlier step of the job wrote them. Nothing here keeps a value:
//! only whether a header is there, and where.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::untrusted::read_untrusted;

/// At most this much of one git configuration file is read.
const MAX_BYTES: u64 = 1024 * 1024;

/// How deep includes are followed (git's own limit is 10; checkout includes once).
const MAX_DEPTH: usize = 3;

/// At most this many files are read, whatever they include.
const MAX_FILES: usize = 16;

/// A git configuration file that holds an HTTP header for git (`http.….extraheader`): a
/// credential a checkout persisted. It never holds the header's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedToken {
    /// The file that holds the header.
    pub file: PathBuf,
    /// The workspace's `.git/config`, when it includes that file rather than holding the
    /// header itself.
    pub included_by: Option<PathBuf>,
}

impl fmt::Display for PersistedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.included_by {
            None => write!(f, "{}", self.file.display()),
            Some(by) => write!(f, "{} (included by {})", self.file.display(), by.display()),
        }
    }
}

/// Whether the git configuration of the checkout in `workspace` persists a credential: an
/// `extraheader` key in an `http` section of `.git/config`, or of a file it includes
/// (`include.path`, `includeIf.<condition>.path`, whatever the condition: Codex can read the
/// file either way). `here` turns an absolute include path, written by a step on the host,
/// into this process's path for it (the container action sees the runner's temporary
/// directory at `/github/runner_temp`). `Ok(None)` when there is no `.git/config`; an error
/// when it cannot be read (an included file that cannot be read is passed over).
pub fn persisted_token(
    workspace: &Path,
    here: &dyn Fn(&Path) -> PathBuf,
) -> io::Result<Option<PersistedToken>> {
    let config = workspace.join(".git").join("config");
    let bytes = match read_untrusted(&config, MAX_BYTES) {
        Ok(Some(bytes)) => bytes,
        // No checkout, or `.git` is a file (a worktree's or a submodule's link).
        Ok(None) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(None),
        Err(e) => return Err(e),
    };
    let top = Parsed::from(String::from_utf8_lossy(&bytes).as_ref());
    if top.extraheader {
        return Ok(Some(PersistedToken {
            file: config,
            included_by: None,
        }));
    }
    let mut seen = vec![config.clone()];
    let mut queue: VecDeque<(PathBuf, usize)> = includes(&config, &top, here)
        .into_iter()
        .map(|path| (path, 1))
        .collect();
    while let Some((file, depth)) = queue.pop_front() {
        if seen.contains(&file) || seen.len() >= MAX_FILES {
            continue;
        }
        seen.push(file.clone());
        let Ok(Some(bytes)) = read_untrusted(&file, MAX_BYTES) else {
            continue;
        };
        let parsed = Parsed::from(String::from_utf8_lossy(&bytes).as_ref());
        if parsed.extraheader {
            return Ok(Some(PersistedToken {
                file,
                included_by: Some(config),
            }));
        }
        if depth < MAX_DEPTH {
            queue.extend(
                includes(&file, &parsed, here)
                    .into_iter()
                    .map(|path| (path, depth + 1)),
            );
        }
    }
    Ok(None)
}

/// The files `parsed` (read from `file`) includes, as this process reaches them: a relative
/// path is relative to `file`'s directory, as git reads it; `~/…` is left out (whose home is
/// meant cannot be told here).
fn includes(file: &Path, parsed: &Parsed, here: &dyn Fn(&Path) -> PathBuf) -> Vec<PathBuf> {
    parsed
        .includes
        .iter()
        .filter(|path| !path.is_empty() && !path.starts_with('~'))
        .map(|path| {
            let path = Path::new(path);
            if path.is_absolute() {
                here(path)
            } else {
                file.parent().unwrap_or(Path::new("/")).join(path)
            }
        })
        .collect()
}

/// What one git configuration file says that matters here (git-config(1), "Syntax").
#[derive(Debug, Default)]
struct Parsed {
    /// An `extraheader` key in an `http` section (`[http]`, `[http "URL"]`, `[http.URL]`).
    extraheader: bool,
    /// The `path` values of `[include]` and `[includeIf "…"]` sections.
    includes: Vec<String>,
}

impl From<&str> for Parsed {
    fn from(text: &str) -> Self {
        let mut parsed = Self::default();
        // The current section's name, lower-cased, without its subsection.
        let mut section = String::new();
        for line in text.lines() {
            let mut line = line.trim_start();
            if let Some(header) = line.strip_prefix('[') {
                let Some(end) = header_end(header) else {
                    continue;
                };
                section = section_name(&header[..end]);
                // A key may follow the header on the same line.
                line = header[end + 1..].trim_start();
            }
            if line.is_empty() || line.starts_with(['#', ';']) {
                continue;
            }
            let (key, value) = match line.split_once('=') {
                Some((key, value)) => (key, Some(value)),
                None => (line, None),
            };
            let key = key.trim().to_ascii_lowercase();
            match (section.as_str(), key.as_str()) {
                ("http", "extraheader") => parsed.extraheader = true,
                ("include" | "includeif", "path") => {
                    if let Some(value) = value {
                        parsed.includes.push(unquote(value));
                    }
                }
                _ => {}
            }
        }
        parsed
    }
}

/// Where a section header's closing `]` is: the first outside the quoted subsection.
fn header_end(header: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in header.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ']' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// A section's name, lower-cased as git compares it: `http "URL"` and the older `http.URL`
/// are both `http`.
fn section_name(header: &str) -> String {
    header
        .trim()
        .split(|c: char| c.is_whitespace() || c == '"' || c == '.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// A value as git reads it: surrounding white space dropped, quotes removed, escapes
/// resolved, a comment (`#`, `;` outside quotes) cut off.
fn unquote(value: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = value.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('b') => {
                    out.pop();
                }
                Some(other) => out.push(other),
                None => {}
            },
            '#' | ';' if !quoted => break,
            c => out.push(c),
        }
    }
    if quoted {
        out
    } else {
        out.trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header as actions/checkout writes it, for the token `ghs_persisted`.
    const HEADER: &str = "AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46Z2hzX3BlcnNpc3RlZA==";
    const BASIC: &str = "eC1hY2Nlc3MtdG9rZW46Z2hzX3BlcnNpc3RlZA==";

    /// A workspace with `.git/config` holding `config`, and the runner's temporary directory.
    fn checkout(config: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let workspace = root.path().join("work/repo/repo");
        let temp = root.path().join("runner_temp");
        std::fs::create_dir_all(workspace.join(".git")).unwrap_or_default();
        std::fs::create_dir_all(&temp).unwrap_or_default();
        std::fs::write(workspace.join(".git/config"), config).unwrap_or_default();
        (root, workspace, temp)
    }

    fn same(path: &Path) -> PathBuf {
        path.to_owned()
    }

    const CORE: &str = "[core]\n\trepositoryformatversion = 0\n\tbare = false\n";

    #[test]
    fn the_header_v4_writes_into_git_config_is_found() -> io::Result<()> {
        let config = format!(
            "{CORE}[remote \"origin\"]\n\turl = https://ghe.example/octo/repo\n\
             [http \"https://ghe.example/\"]\n\textraheader = {HEADER}\n"
        );
        let (_root, workspace, _) = checkout(&config);
        assert_eq!(
            persisted_token(&workspace, &same)?,
            Some(PersistedToken {
                file: workspace.join(".git/config"),
                included_by: None,
            })
        );
        Ok(())
    }

    /// v6: `.git/config` includes a file in RUNNER_TEMP by the host's path (which the
    /// container sees elsewhere) and by the container's.
    #[test]
    fn the_header_v6_includes_from_runner_temp_is_found_through_the_hosts_path() -> io::Result<()> {
        let (_root, workspace, temp) = checkout("");
        let credentials = temp.join("git-credentials-0f3c.config");
        std::fs::write(
            &credentials,
            format!("[http \"https://ghe.example/\"]\n\textraheader = {HEADER}\n"),
        )?;
        let host_temp = Path::new("/home/runner/work/_temp");
        let config = format!(
            "{CORE}[includeIf \"gitdir:/home/runner/work/repo/repo/.git\"]\n\
             \tpath = {host}/git-credentials-0f3c.config\n\
             [includeIf \"gitdir:/home/runner/work/repo/repo/.git/worktrees/*\"]\n\
             \tpath = {host}/git-credentials-0f3c.config\n",
            host = host_temp.display()
        );
        std::fs::write(workspace.join(".git/config"), config)?;
        let here = |path: &Path| match path.strip_prefix(host_temp) {
            Ok(rest) => temp.join(rest),
            Err(_) => path.to_owned(),
        };
        let expected = Some(PersistedToken {
            file: credentials.clone(),
            included_by: Some(workspace.join(".git/config")),
        });
        assert_eq!(persisted_token(&workspace, &here)?, expected);
        // Without the mapping the host's path leads nowhere here.
        assert_eq!(persisted_token(&workspace, &same)?, None);
        // A relative include, quoted, in the older section syntax, with a comment.
        std::fs::write(
            workspace.join(".git/config"),
            "[include]\n\tpath = \"../../../../runner_temp/git-credentials-0f3c.config\" # creds\n",
        )?;
        let found = persisted_token(&workspace, &same)?;
        assert_eq!(
            found.map(|f| f.file.canonicalize().ok()),
            Some(credentials.canonicalize().ok())
        );
        Ok(())
    }

    #[test]
    fn a_checkout_without_persisted_credentials_has_none() -> io::Result<()> {
        // What `persist-credentials: false` leaves, and headers that are not git's.
        let config = format!(
            "{CORE}[remote \"origin\"]\n\turl = https://ghe.example/octo/repo\n\
             \tfetch = +refs/heads/*:refs/remotes/origin/*\n\
             [branch \"main\"]\n\textraheader = not an http section\n\
             # [http] extraheader = commented out\n\
             [user]\n\tname = extraheader\n[include]\n\tpath = missing.config\n"
        );
        let (_root, workspace, _) = checkout(&config);
        assert_eq!(persisted_token(&workspace, &same)?, None);
        // No checkout at all.
        let empty = tempfile::tempdir()?;
        assert_eq!(persisted_token(empty.path(), &same)?, None);
        Ok(())
    }

    #[test]
    fn every_spelling_of_the_key_is_found() -> io::Result<()> {
        for config in [
            format!("[HTTP]\n\tExtraHeader = {HEADER}\n"),
            format!("[http.https://ghe.example/]\n  extraheader={HEADER}\n"),
            format!("[http \"https://ghe.ex]ample/\"] extraheader = {HEADER}\n"),
        ] {
            let (_root, workspace, _) = checkout(&config);
            assert!(
                persisted_token(&workspace, &same)?.is_some(),
                "not found in {config:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn the_headers_value_is_never_kept() -> io::Result<()> {
        let (_root, workspace, temp) = checkout("");
        let credentials = temp.join("creds.config");
        std::fs::write(
            &credentials,
            format!("[http \"https://ghe.example/\"]\n\textraheader = {HEADER}\n"),
        )?;
        std::fs::write(
            workspace.join(".git/config"),
            format!(
                "[includeIf \"gitdir:/x\"]\n\tpath = {}\n",
                credentials.display()
            ),
        )?;
        let found = persisted_token(&workspace, &same)?
            .unwrap_or_else(|| panic!("the included header is not found"));
        for shown in [found.to_string(), format!("{found:?}")] {
            assert!(!shown.contains(BASIC), "{shown}");
            assert!(!shown.contains("AUTHORIZATION"), "{shown}");
        }
        assert_eq!(
            found.to_string(),
            format!(
                "{} (included by {})",
                credentials.display(),
                workspace.join(".git/config").display()
            )
        );
        Ok(())
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_git_config_is_not_followed() -> io::Result<()> {
        let (_root, workspace, temp) = checkout("");
        let elsewhere = temp.join("elsewhere");
        std::fs::write(&elsewhere, format!("[http]\n\textraheader = {HEADER}\n"))?;
        std::fs::remove_file(workspace.join(".git/config"))?;
        std::os::unix::fs::symlink(&elsewhere, workspace.join(".git/config"))?;
        assert!(persisted_token(&workspace, &same).is_err());
        Ok(())
    }
}
