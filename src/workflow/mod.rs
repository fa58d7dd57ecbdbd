//! GitHub Actions workflow commands and runner files: masks, annotations, outputs, state and
//! the step summary.
//!
//! See <https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-commands>.
//! Every method writes to the runner's files or to stdout, never a secret in the clear: masks
//! are the only place a token value is printed, and the runner removes them from the log.
//!
//! What Codex can reach of them is guarded here too: [`fence`] keeps the runner from reading
//! commands in Codex's output, [`command_files`] puts the command files back after Codex.

pub mod command_files;
pub mod fence;

use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::PathBuf;

use crate::auth_file::AuthFile;
use crate::redacted::Redacted;

/// The runner's command files (`GITHUB_OUTPUT`, `GITHUB_STATE`, `GITHUB_STEP_SUMMARY`,
/// `GITHUB_ENV`, `GITHUB_PATH`).
#[derive(Debug, Clone, Default)]
pub struct Workflow {
    /// `GITHUB_OUTPUT`: step outputs.
    pub output_file: Option<PathBuf>,
    /// `GITHUB_STATE`: values the post stage receives as `STATE_<name>`.
    pub state_file: Option<PathBuf>,
    /// `GITHUB_STEP_SUMMARY`: Markdown shown on the run's page.
    pub summary_file: Option<PathBuf>,
    /// `GITHUB_ENV`: variables for the job's later steps.
    pub env_file: Option<PathBuf>,
    /// `GITHUB_PATH`: directories for the job's later steps' PATH (the action writes none;
    /// held only to be put back after Codex).
    pub path_file: Option<PathBuf>,
}

impl Workflow {
    /// Masks a value in every later line of the log.
    pub fn mask(&self, secret: &Redacted) {
        if !secret.is_empty() {
            fence::command(&format!("::add-mask::{}", escape_data(secret.expose())));
        }
    }

    /// Masks every token of a login, and the login as one line, before anything else is
    /// printed.
    pub fn mask_login(&self, file: &AuthFile) -> Result<(), serde_json::Error> {
        for value in file.secret_values() {
            self.mask(&value);
        }
        self.mask(&file.to_compact_json()?);
        Ok(())
    }

    /// A plain log line ([`print_line`]).
    pub fn info(&self, message: &str) {
        print_line(message);
    }

    /// An error annotation.
    pub fn error(&self, title: &str, message: &str) {
        annotation("error", title, message);
    }

    /// A notice annotation: shown on the run's page, for what a person should see first.
    pub fn notice(&self, title: &str, message: &str) {
        annotation("notice", title, message);
    }

    /// A warning annotation.
    pub fn warning(&self, title: &str, message: &str) {
        annotation("warning", title, message);
    }

    /// Sets a step output (multi-line values use a delimiter absent from the value).
    pub fn set_output(&self, name: &str, value: &str) -> io::Result<()> {
        append_key_value(self.output_file.as_ref(), "GITHUB_OUTPUT", name, value)
    }

    /// Sets a step output to `true` or `false`.
    pub fn set_flag(&self, name: &str, value: bool) -> io::Result<()> {
        self.set_output(name, if value { "true" } else { "false" })
    }

    /// Saves a value for the post stage. The runner logs state: never pass a secret.
    pub fn save_state(&self, name: &str, value: &str) -> io::Result<()> {
        append_key_value(self.state_file.as_ref(), "GITHUB_STATE", name, value)
    }

    /// Sets an environment variable for the job's later steps.
    pub fn set_env(&self, name: &str, value: &str) -> io::Result<()> {
        append_key_value(self.env_file.as_ref(), "GITHUB_ENV", name, value)
    }

    /// Puts a directory first on PATH for the job's later steps (GITHUB_PATH: one path per
    /// line, so one with a line break is refused).
    pub fn add_path(&self, dir: &str) -> io::Result<()> {
        if dir.contains(['\n', '\r']) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{dir:?} has a line break and cannot go to GITHUB_PATH"),
            ));
        }
        append(
            self.path_file.as_ref(),
            "GITHUB_PATH",
            format!("{dir}\n").as_bytes(),
        )
    }

    /// Appends Markdown to the step summary.
    pub fn summary(&self, markdown: &str) -> io::Result<()> {
        match &self.summary_file {
            Some(_) => append(
                self.summary_file.as_ref(),
                "GITHUB_STEP_SUMMARY",
                markdown.as_bytes(),
            ),
            None => Ok(()),
        }
    }
}

/// Prints an annotation; every title starts with `codex-auth: ` so that it is clear which
/// step speaks in the run's summary.
pub fn annotation(kind: &str, title: &str, message: &str) {
    #[cfg(test)]
    PRINTED.with(|printed| {
        printed
            .borrow_mut()
            .push((kind.to_owned(), title.to_owned(), message.to_owned()));
    });
    fence::command(&format!(
        "::{kind} title={}::{}",
        escape_property(&format!("codex-auth: {title}")),
        escape_data(message)
    ));
}

#[cfg(test)]
thread_local! {
    /// The annotations printed on this thread (kind, title, message): each test runs on a
    /// thread of its own, and the stages' tests run them on it.
    static PRINTED: std::cell::RefCell<Vec<(String, String, String)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The annotations printed so far on this thread, for the tests of what users see.
#[cfg(test)]
pub(crate) fn printed() -> Vec<(String, String, String)> {
    PRINTED.with(|printed| printed.borrow().clone())
}

/// What the action itself appended to each command file in custody ([`command_files`]), by
/// path: the custody counts these bytes as the action's own, not as something Codex wrote
/// (the sign-in's announcement goes to the step summary while Codex waits for the code). A
/// path is recorded only while a custody holds it.
static OWN_WRITES: std::sync::Mutex<Vec<(PathBuf, Vec<u8>)>> = std::sync::Mutex::new(Vec::new());

fn own_writes() -> std::sync::MutexGuard<'static, Vec<(PathBuf, Vec<u8>)>> {
    OWN_WRITES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Starts recording the action's own writes to `paths`.
fn record_own_writes<'a>(paths: impl IntoIterator<Item = &'a PathBuf>) {
    let mut own = own_writes();
    for path in paths {
        own.retain(|(p, _)| p != path);
        own.push((path.clone(), Vec::new()));
    }
}

/// Stops recording the action's own writes to `path`; returns what was written.
fn own_writes_to(path: &PathBuf) -> Vec<u8> {
    let mut own = own_writes();
    let at = own.iter().position(|(p, _)| p == path);
    at.map(|at| own.swap_remove(at).1).unwrap_or_default()
}

/// Appends `bytes` to the runner's command file `variable` names, in one write.
fn append(file: Option<&PathBuf>, variable: &str, bytes: &[u8]) -> io::Result<()> {
    let Some(path) = file else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{variable} is not set; the runner sets it for every step"),
        ));
    };
    let mut own = own_writes();
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(bytes)?;
    if let Some((_, written)) = own.iter_mut().find(|(p, _)| p == path) {
        written.extend_from_slice(bytes);
    }
    Ok(())
}

fn append_key_value(
    file: Option<&PathBuf>,
    variable: &str,
    name: &str,
    value: &str,
) -> io::Result<()> {
    let line = if value.contains('\n') || value.contains('\r') {
        let delimiter = (0u32..)
            .map(|n| format!("ghadelimiter_codex_auth_{n}"))
            .find(|d| !value.contains(d.as_str()))
            .unwrap_or_default();
        format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
    } else {
        format!("{name}={value}\n")
    };
    append(file, variable, line.as_bytes())
}

/// Prints a plain log line that the runner reads as no command, whatever the message carries
/// (a path read from the environment, which an earlier step may have set through GITHUB_ENV;
/// a line a server answered): see [`inert`].
pub fn print_line(message: &str) {
    println!("{}", inert(message));
}

/// `message` as one line the runner reads as text: its line breaks turned into spaces (a line
/// break would start a line of its own), every `##[` written `##\[` (the runner honours a
/// legacy `##[command]` anywhere in a line: `CODEX_HOME=/x##[stop-commands]z` would stop the
/// masks that follow), and a `::` that would start the line (after white space, which the
/// runner trims) preceded by `\` (actions/runner, `ActionCommand.TryParse`/`TryParseV2`).
pub fn inert(message: &str) -> String {
    let line = one_line(message).replace("##[", "##\\[");
    if line.trim_start().starts_with("::") {
        format!("\\{line}")
    } else {
        line
    }
}

/// `message` with its line breaks (`\n`, `\r`, and the other breaks a log viewer may honour)
/// turned into spaces.
fn one_line(message: &str) -> std::borrow::Cow<'_, str> {
    let breaks = [
        '\n', '\r', '\u{0b}', '\u{0c}', '\u{85}', '\u{2028}', '\u{2029}',
    ];
    if message.contains(breaks) {
        message.replace(breaks, " ").into()
    } else {
        message.into()
    }
}

/// Escapes a workflow command's message, as `@actions/core` does.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_stays_one_line() {
        assert_eq!(
            one_line("CODEX_HOME=/tmp/x\n::add-mask::y\r::stop-commands::z"),
            "CODEX_HOME=/tmp/x ::add-mask::y ::stop-commands::z"
        );
        assert!(matches!(
            one_line("plain"),
            std::borrow::Cow::Borrowed("plain")
        ));
    }

    #[test]
    fn a_plain_line_holds_no_command() {
        assert_eq!(
            inert("Restored to CODEX_HOME=/x##[stop-commands]z, ###[add-mask]a"),
            "Restored to CODEX_HOME=/x##\\[stop-commands]z, ###\\[add-mask]a"
        );
        assert_eq!(inert("  ::add-mask::x"), "\\  ::add-mask::x");
        assert_eq!(inert("a\n::stop-commands::z"), "a ::stop-commands::z");
        assert_eq!(inert("plain: a::b"), "plain: a::b");
    }

    #[test]
    fn escapes_like_actions_core() {
        assert_eq!(escape_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
        assert_eq!(escape_property("a: b, c"), "a%3A b%2C c");
    }

    #[test]
    fn multi_line_outputs_use_a_fresh_delimiter() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let workflow = Workflow {
            output_file: Some(dir.path().join("out")),
            ..Workflow::default()
        };
        workflow.set_output("one", "x")?;
        workflow.set_output("two", "a\nghadelimiter_codex_auth_0\nb")?;
        let written = std::fs::read_to_string(dir.path().join("out"))?;
        assert_eq!(
            written,
            "one=x\ntwo<<ghadelimiter_codex_auth_1\na\nghadelimiter_codex_auth_0\nb\nghadelimiter_codex_auth_1\n"
        );
        Ok(())
    }
}
