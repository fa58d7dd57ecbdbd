//! A cancelled job, as the runner signals it: SIGINT, then SIGTERM (and at last SIGKILL,
//! which nothing can catch).
//!
//! The main stage watches for them from its start, so that no signal ends it between two
//! requests that belong together (a probe secret and its deletion) or after Codex rotated the
//! login and before it was saved; it stops at the next step instead. In a container the stage
//! is PID 1, which ignores these signals unless it handles them, so this is also what makes
//! cancelling reach Codex there.

use std::io;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// The signals that cancel a job.
pub struct Cancellation {
    term: Signal,
    int: Signal,
    seen: Option<rustix::process::Signal>,
}

impl Cancellation {
    /// Starts watching. From now on SIGTERM and SIGINT no longer end the process by
    /// themselves.
    pub fn watch() -> io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            seen: None,
        })
    }

    /// Whether a cancelling signal arrived since watching began (without waiting).
    pub async fn requested(&mut self) -> bool {
        if self.seen.is_none() {
            self.seen = tokio::select! {
                biased;
                Some(()) = self.term.recv() => Some(rustix::process::Signal::TERM),
                Some(()) = self.int.recv() => Some(rustix::process::Signal::INT),
                () = std::future::ready(()) => None,
            };
        }
        self.seen.is_some()
    }

    /// Waits for the next cancelling signal; returns which, to pass on to a child.
    pub async fn next(&mut self) -> rustix::process::Signal {
        if let Some(seen) = self.seen.take() {
            return seen;
        }
        loop {
            tokio::select! {
                Some(()) = self.term.recv() => return rustix::process::Signal::TERM,
                Some(()) = self.int.recv() => return rustix::process::Signal::INT,
                else => std::future::pending::<()>().await,
            }
        }
    }
}
