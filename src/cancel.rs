//! A cancelled job, as the runner signals it: SIGINT, then SIGTERM (and at last SIGKILL,
//! which nothing can catch); on Windows, Ctrl+C and Ctrl+Break.
//!
//! The main stage watches for them from its start, so that no signal ends it between two
//! requests that belong together (a probe secret and its deletion) or after Codex rotated the
//! login and before it was saved; it stops at the next step instead. In a container the stage
//! is PID 1, which ignores these signals unless it handles them, so this is also what makes
//! cancelling reach Codex there.

use std::io;

/// A cancelling signal, to pass on to a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// SIGTERM (Ctrl+Break on Windows).
    Terminate,
    /// SIGINT (Ctrl+C).
    Interrupt,
}

#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn watch() -> io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) -> Interrupt {
        loop {
            tokio::select! {
                Some(()) = self.term.recv() => return Interrupt::Terminate,
                Some(()) = self.int.recv() => return Interrupt::Interrupt,
                else => std::future::pending::<()>().await,
            }
        }
    }
}

#[cfg(windows)]
struct Signals {
    brk: tokio::signal::windows::CtrlBreak,
    c: tokio::signal::windows::CtrlC,
}

#[cfg(windows)]
impl Signals {
    fn watch() -> io::Result<Self> {
        Ok(Self {
            brk: tokio::signal::windows::ctrl_break()?,
            c: tokio::signal::windows::ctrl_c()?,
        })
    }

    async fn recv(&mut self) -> Interrupt {
        loop {
            tokio::select! {
                Some(()) = self.brk.recv() => return Interrupt::Terminate,
                Some(()) = self.c.recv() => return Interrupt::Interrupt,
                else => std::future::pending::<()>().await,
            }
        }
    }
}

/// The signals that cancel a job.
pub struct Cancellation {
    signals: Signals,
    seen: Option<Interrupt>,
}

impl Cancellation {
    /// Starts watching. From now on these signals no longer end the process by themselves.
    pub fn watch() -> io::Result<Self> {
        Ok(Self {
            signals: Signals::watch()?,
            seen: None,
        })
    }

    /// Whether a cancelling signal arrived since watching began (without waiting).
    pub async fn requested(&mut self) -> bool {
        if self.seen.is_none() {
            self.seen = tokio::select! {
                biased;
                signal = self.signals.recv() => Some(signal),
                () = std::future::ready(()) => None,
            };
        }
        self.seen.is_some()
    }

    /// Waits for the next cancelling signal; returns which, to pass on to a child.
    pub async fn next(&mut self) -> Interrupt {
        match self.seen.take() {
            Some(seen) => seen,
            None => self.signals.recv().await,
        }
    }
}

/// Passes a cancelling signal on to a child process (on Windows, which has no signals to
/// pass, the child is ended).
pub fn pass_on(child: &mut tokio::process::Child, signal: Interrupt) {
    #[cfg(unix)]
    {
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let signal = match signal {
                Interrupt::Terminate => rustix::process::Signal::TERM,
                Interrupt::Interrupt => rustix::process::Signal::INT,
            };
            let _ = rustix::process::kill_process(pid, signal);
        }
    }
    #[cfg(not(unix))]
    {
        let _ = signal;
        let _ = child.start_kill();
    }
}

/// Kills a child and its process group (it leads one: `codex::spawn`), which no signal
/// handler can delay; on Windows the child alone.
pub fn kill_group(child: &mut tokio::process::Child) {
    #[cfg(unix)]
    {
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
    let _ = child.start_kill();
}
