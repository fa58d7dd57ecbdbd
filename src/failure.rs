//! A failure the user must act on: a short title for the annotation, and a message that says
//! what failed and what to do next.

/// An error shown as `::error title=…::message`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// The annotation's title.
    pub title: &'static str,
    /// What failed, why, and the next step.
    pub message: String,
}

impl Failure {
    /// A failure with a title and a message.
    pub fn new(title: &'static str, message: impl Into<String>) -> Self {
        Self {
            title,
            message: message.into(),
        }
    }
}
