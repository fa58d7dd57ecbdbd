//! Codex's output on its way to the log: tokens Codex writes to auth.json are masked before
//! the next line is printed, and permanent refresh failures are recognised. The stage prints
//! it behind the fence ([`crate::workflow::fence`]): no line of it is read as a command.

use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWriteExt as _, BufReader};

use super::events::Events;
use super::RefreshFailure;
use crate::auth_file::{AuthFile, MAX_FILE_BYTES};
use crate::codex_home::read_untrusted;
use crate::workflow::Workflow;

/// Masks the tokens of auth.json whenever it changes.
pub(super) struct AuthWatcher {
    path: PathBuf,
    seen: Option<(u64, std::time::SystemTime, u64)>,
}

impl AuthWatcher {
    pub(super) fn new(path: PathBuf) -> Self {
        let mut watcher = Self { path, seen: None };
        watcher.seen = watcher.stamp();
        watcher
    }

    fn stamp(&self) -> Option<(u64, std::time::SystemTime, u64)> {
        let meta = std::fs::metadata(&self.path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some((inode, meta.modified().ok()?, meta.len()))
    }

    pub(super) fn mask_if_changed(&mut self, workflow: &Workflow) {
        let stamp = self.stamp();
        if stamp == self.seen {
            return;
        }
        self.seen = stamp;
        let Ok(Some(bytes)) = read_untrusted(&self.path, MAX_FILE_BYTES as u64) else {
            return;
        };
        if let Ok(file) = AuthFile::parse_file(&bytes) {
            let _ = workflow.mask_login(&file);
        }
    }
}

/// How long Codex's output is still read after it exited.
pub(super) const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Ends [`DRAIN`] after `exited` says the child ended: how long its output is still read, a
/// process it left behind may hold the pipe open forever.
pub(super) async fn drained(mut exited: tokio::sync::watch::Receiver<bool>) {
    let _ = exited.wait_for(|exited| *exited).await;
    tokio::time::sleep(DRAIN).await;
}

/// Copies a child's stream to our stdout line by line (both streams share it, so a mask
/// printed before a line is processed before it), masking tokens Codex has just written and
/// noting permanent refresh failures. With `events`, the lines are `codex exec --json`
/// events, shown as [`Events::render`] turns them into text.
///
/// Stops at most [`DRAIN`] after Codex exited: a process Codex started (an MCP server, a
/// background job) may hold the pipes open forever, and the write-back must not wait for it.
pub(super) async fn forward(
    from: Option<impl AsyncRead + Unpin>,
    to: &tokio::sync::Mutex<tokio::io::Stdout>,
    watcher: &Mutex<AuthWatcher>,
    workflow: &Workflow,
    exited: tokio::sync::watch::Receiver<bool>,
    mut events: Option<&mut Events>,
) -> io::Result<Option<RefreshFailure>> {
    let Some(from) = from else { return Ok(None) };
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    let mut failure = None;
    let deadline = drained(exited);
    tokio::pin!(deadline);
    loop {
        line.clear();
        let read = tokio::select! {
            read = reader.read_until(b'\n', &mut line) => read?,
            () = &mut deadline => break,
        };
        if read == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        // With JSON events, a command's output or the model's text is no report of Codex's.
        if events.is_none() || Events::reports_errors(&text) {
            failure = failure.or_else(|| refresh_failure(&text));
        }
        let shown = match events.as_deref_mut() {
            // Each piece ends a line: the fence's token must stand on a line of its own.
            None => Some(line.clone()).map(|mut shown| {
                if !shown.ends_with(b"\n") {
                    shown.push(b'\n');
                }
                shown
            }),
            Some(events) => events.render(&text).map(|mut shown| {
                shown.push('\n');
                shown.into_bytes()
            }),
        };
        let mut to = to.lock().await;
        to.flush().await?;
        if let Ok(mut watcher) = watcher.lock() {
            watcher.mask_if_changed(workflow);
        }
        if let Some(shown) = shown {
            to.write_all(&shown).await?;
        }
        to.flush().await?;
    }
    Ok(failure)
}

/// Recognises Codex's messages for a refresh token that can never work again
/// (`codex-rs/login/src/auth/manager.rs`, `classify_refresh_token_failure`).
fn refresh_failure(line: &str) -> Option<RefreshFailure> {
    let line = line.to_ascii_lowercase();
    if line.contains("refresh_token_reused") || line.contains("refresh token was already used") {
        Some(RefreshFailure::Reused)
    } else if line.contains("refresh_token_expired") || line.contains("refresh token has expired") {
        Some(RefreshFailure::Expired)
    } else if line.contains("refresh_token_invalidated")
        || line.contains("refresh token was revoked")
    {
        Some(RefreshFailure::Invalidated)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_permanent_refresh_failures() {
        assert_eq!(
            refresh_failure("ERROR: Your access token could not be refreshed because your refresh token was already used. Please log out and sign in again."),
            Some(RefreshFailure::Reused)
        );
        assert_eq!(refresh_failure("all good"), None);
    }
}
