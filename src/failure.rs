//! A failure the user must act on: a short title for the annotation, what failed, and what to
//! do next. The sentence most failures before Codex share, that Codex did not run, is written
//! here once; how to put a fresh login where the store keeps it, the store's `Place` says.

/// An error shown as `::error title=…::message`, the message being [`Failure::message`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct Failure {
    /// The annotation's title.
    pub title: &'static str,
    /// What failed, and why.
    pub what: String,
    /// Whether the failure came before Codex ran (said after `what`).
    pub codex_not_run: bool,
    /// What to do next, in order.
    pub fixes: Vec<String>,
}

impl Failure {
    /// A failure with a title and what failed (which may already say what to do).
    pub fn new(title: &'static str, what: impl Into<String>) -> Self {
        Self {
            title,
            what: what.into(),
            codex_not_run: false,
            fixes: Vec::new(),
        }
    }

    /// Says that Codex was not run because of it.
    pub fn before_codex(mut self) -> Self {
        self.codex_not_run = true;
        self
    }

    /// Adds what to do next.
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fixes.push(fix.into());
        self
    }

    /// The whole message: what failed, that Codex was not run, then the fixes.
    pub fn message(&self) -> String {
        let mut message = self.what.trim_end().to_owned();
        if self.codex_not_run {
            message.push_str(" Codex was not run.");
        }
        for fix in &self.fixes {
            message.push(' ');
            message.push_str(fix.trim());
        }
        message
    }
}

/// `text` as a sentence: trimmed, ending with a full stop unless it ends with one already
/// (causes come from many places, and are said one after another).
pub fn sentence(text: &str) -> String {
    let text = text.trim_end();
    match text.ends_with(['.', '!', '?']) {
        true => text.to_owned(),
        false => format!("{text}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_what_then_that_codex_did_not_run_then_the_fixes() {
        let failure = Failure::new("Invalid auth-json", "the key is wrong. ")
            .before_codex()
            .fix("Fix the key.")
            .fix(" Then run again. ");
        let message = failure.message();
        assert_eq!(
            message,
            "the key is wrong. Codex was not run. Fix the key. Then run again."
        );
        assert_eq!(failure.to_string(), message);
        assert_eq!(
            Failure::new("Invalid auth-json", "plain.").message(),
            "plain."
        );
    }
}
