//! A string that holds a credential.
//!
//! The tokens this tool works with live in a [`Redacted`]: its `Debug` and `Display` print
//! `[redacted]`, its memory is zeroed when it is dropped, and reading it takes an explicit
//! call to [`Redacted::expose`], so a token never reaches a log through a stray `{:?}`. (The
//! process environment still holds the inputs as the runner passed them.)

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A credential: redacted when formatted, zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(Zeroizing<String>);

impl Redacted {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The credential itself. Callers must not print it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the credential is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Zeroize for Redacted {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

/// The inner `Zeroizing` wipes the buffer when a `Redacted` is dropped.
impl ZeroizeOnDrop for Redacted {}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redacted([redacted])")
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Redacted {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for Redacted {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Redacted::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let secret = Redacted::new("rt_very-secret-value");
        let shown = format!("{secret} {secret:?} {secret:#?} {:?}", Some(&secret));
        assert!(!shown.contains("very-secret"), "{shown}");
        assert_eq!(
            shown,
            "[redacted] Redacted([redacted]) Redacted([redacted]) Some(Redacted([redacted]))"
        );
    }

    #[test]
    fn zeroizes_its_buffer() {
        fn wiped_on_drop<T: ZeroizeOnDrop>() {}
        wiped_on_drop::<Redacted>();
        let mut secret = Redacted::new("rt_to-be-wiped");
        secret.zeroize();
        assert_eq!(secret.expose(), "");
    }

    #[test]
    fn serializes_the_value_for_the_file_it_belongs_to() {
        let secret = Redacted::new("abc");
        assert_eq!(
            serde_json::to_string(&secret).ok().as_deref(),
            Some("\"abc\"")
        );
    }
}
