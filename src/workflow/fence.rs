//! The fence around text that is not the action's own: while it stands, the runner reads no
//! workflow command from the log.
//!
//! The runner reads a command from any line of a step's output (after leading white space;
//! `##[cmd]` anywhere in a line), and Codex's output carries text a prompt injection controls:
//! the model's messages, the output of the commands it runs. One `::stop-commands::x` there,
//! and the masks the action prints for a token Codex rotates later are shown as they are,
//! the token in clear. So Codex's output is printed between `::stop-commands::<token>` and
//! `::<token>::`, with a fresh random token Codex cannot know, and the fence is lifted only
//! around the action's own commands (masks, annotations), each time with a new token
//! (actions/runner, `ActionCommandManager.TryProcessCommand`: while stopped, only a command
//! named like the token resumes, compared without case).
//!
//! stdout is one per process, so the fence is too: a process-wide state.

use std::io::{self, Write as _};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chacha20poly1305::aead::rand_core::RngCore as _;
use chacha20poly1305::aead::OsRng;

/// The token of the fence that stands now, if any.
static FENCE: Mutex<Option<String>> = Mutex::new(None);

fn fence_state() -> MutexGuard<'static, Option<String>> {
    FENCE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A stop token no other process can guess: 128 random bits, hex.
fn fresh_token() -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A fence that stands until this guard is dropped: everything printed meanwhile is plain
/// text to the runner, except the action's own commands ([`command`]).
#[must_use = "the fence falls when the guard is dropped"]
pub struct Fence {
    /// Whether this guard raised the fence (a nested one leaves it to the outer).
    raised: bool,
}

/// Raises the fence (a no-op when one already stands).
pub fn raise() -> Fence {
    let mut fence = fence_state();
    if fence.is_some() {
        return Fence { raised: false };
    }
    let token = fresh_token();
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "::stop-commands::{token}");
    let _ = out.flush();
    *fence = Some(token);
    Fence { raised: true }
}

impl Drop for Fence {
    fn drop(&mut self) {
        if !self.raised {
            return;
        }
        let mut fence = fence_state();
        if let Some(token) = fence.take() {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "::{token}::");
            let _ = out.flush();
        }
    }
}

/// Prints one of the action's own workflow commands: with a fence standing, it is lifted for
/// this line only and raised again with a new token. Whoever prints text behind the fence
/// ends every piece of it with a line break, so that the token stands on a line of its own.
pub fn command(line: &str) {
    let mut fence = fence_state();
    let mut out = io::stdout().lock();
    match fence.as_mut() {
        None => {
            let _ = writeln!(out, "{line}");
        }
        Some(token) => {
            let next = fresh_token();
            let _ = writeln!(out, "::{token}::\n{line}\n::stop-commands::{next}");
            *token = next;
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_and_long() {
        let (a, b) = (fresh_token(), fresh_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
