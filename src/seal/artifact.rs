//! Encrypting `auth.json` for the workflow artifact that holds it.
//!
//! A workflow artifact is readable by anyone with `actions: read` on the repository (and on a
//! public repository, by anyone), so the login is sealed with XChaCha20-Poly1305 under the
//! `artifact-key` secret before it is uploaded. The key never rotates; a 24-byte random nonce
//! per seal makes reusing it safe.
//!
//! A sealed blob is
//!
//! ```text
//! [VERSION: 1 byte][nonce: 24 bytes][ciphertext of auth.json][Poly1305 tag: 16 bytes]
//! ```
//!
//! and its associated data binds it to a [`Binding`] (repository id and artifact name), so a
//! blob copied into another repository or artifact slot fails to open just like a tampered one.

use std::fmt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::rand_core::RngCore as _;
use chacha20poly1305::aead::{AeadCore, AeadInPlace, KeyInit, OsRng};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize as _, Zeroizing};

use crate::redacted::Redacted;

/// The format version this codex-auth writes and reads: the blob's first byte.
pub const VERSION: u8 = 1;

/// The length of an [`ArtifactKey`] in bytes.
pub const KEY_LEN: usize = 32;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + NONCE_LEN;

/// The shortest well-formed blob: version, nonce and the tag of an empty plaintext.
pub const MIN_BLOB_LEN: usize = HEADER_LEN + TAG_LEN;

/// Separates this use of the key from any other, should the key ever be reused elsewhere.
const DOMAIN: &[u8] = b"codex-auth artifact v1\0";

/// The key that seals the artifact: 32 bytes, kept in the `artifact-key` secret as base64.
///
/// `Debug` never shows the bytes, and they are zeroed on drop.
#[derive(Clone)]
pub struct ArtifactKey(Zeroizing<[u8; KEY_LEN]>);

/// Why a text is not an artifact key. The messages never contain the text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// Nothing but whitespace.
    #[error(
        "the artifact key is empty: generate one with `codex-auth keygen`, store it in a secret \
         and pass that secret as input `artifact-key`"
    )]
    Empty,
    /// Not standard or URL-safe base64, padded or not.
    #[error(
        "the artifact key is not base64: pass the line `codex-auth keygen` printed, unchanged \
         (no quotes or `name=` prefix), as input `artifact-key`"
    )]
    NotBase64,
    /// Base64, but of the wrong number of bytes.
    #[error(
        "the artifact key is {len} bytes; expected 32: pass the line `codex-auth keygen` printed, \
         or run `codex-auth keygen` for a new key (a new key cannot open an artifact sealed with \
         the old one: reseed with input `auth-json` then)"
    )]
    WrongLength {
        /// How many bytes the base64 decoded to.
        len: usize,
    },
}

impl ArtifactKey {
    /// Parses a key from base64: standard or URL-safe alphabet, padded or not, surrounding
    /// whitespace ignored. It must decode to exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyError::Empty);
        }
        let decoded = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(text).ok())
            .map(Zeroizing::new)
            // The decoder's own error names the offending character: not shown, it is the key's.
            .ok_or(KeyError::NotBase64)?;
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        if decoded.len() != KEY_LEN {
            return Err(KeyError::WrongLength { len: decoded.len() });
        }
        bytes.copy_from_slice(&decoded);
        Ok(Self(bytes))
    }

    /// A new random key from the operating system's random number generator.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(bytes.as_mut_slice());
        Self(bytes)
    }

    /// The key as standard, padded base64: the form `codex-auth keygen` prints.
    pub fn to_base64(&self) -> Redacted {
        Redacted::new(STANDARD.encode(self.0.as_slice()))
    }

    /// Every base64 spelling [`ArtifactKey::parse`] accepts (standard or URL-safe, padded or
    /// not): each must be masked, whichever one the secret holds.
    pub fn spellings(&self) -> [Redacted; 4] {
        [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .map(|engine| Redacted::new(engine.encode(self.0.as_slice())))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        // The cipher keeps its own copy of the key and zeroizes it on drop.
        XChaCha20Poly1305::new(Key::from_slice(self.0.as_slice()))
    }
}

impl fmt::Debug for ArtifactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArtifactKey(…)")
    }
}

/// Where a blob belongs: a blob sealed for one binding opens under no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding<'a> {
    /// The numeric id of the repository (`GITHUB_REPOSITORY_ID`), which survives renames and
    /// transfers, unlike `owner/name`.
    pub repository_id: u64,
    /// The name of the artifact the blob is uploaded as.
    pub artifact_name: &'a str,
}

impl Binding<'_> {
    /// The associated data: domain, version, repository id, then the length-prefixed name, so
    /// no two bindings share an encoding.
    fn associated_data(&self, version: u8) -> Vec<u8> {
        let name = self.artifact_name.as_bytes();
        let mut aad = Vec::with_capacity(DOMAIN.len() + 1 + 8 + 8 + name.len());
        aad.extend_from_slice(DOMAIN);
        aad.push(version);
        aad.extend_from_slice(&self.repository_id.to_be_bytes());
        aad.extend_from_slice(&(name.len() as u64).to_be_bytes());
        aad.extend_from_slice(name);
        aad
    }
}

/// Why a blob did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    /// The artifact holds no bytes.
    #[error("the sealed login in the artifact is empty")]
    Empty,
    /// Shorter than any sealed login can be.
    #[error(
        "the sealed login in the artifact is {len} bytes, shorter than any sealed login can be \
         (41 bytes): it is truncated or not a codex-auth artifact"
    )]
    TooShort {
        /// The blob's length.
        len: usize,
    },
    /// A format version this codex-auth does not know.
    #[error(
        "the sealed login in the artifact has format version {0}, which this codex-auth does not \
         know: it was written by a newer codex-auth (upgrade this one) or is not a codex-auth \
         artifact"
    )]
    UnknownVersion(u8),
    /// Authentication failed. A wrong key, a changed byte and another binding all look alike.
    #[error(
        "the sealed login in the artifact did not decrypt: the key is not the one it was sealed \
         with, the artifact was modified, or it was sealed for another repository or artifact \
         name (these cannot be told apart). If the `artifact-key` secret changed since the \
         artifact was written, restore the old key or reseed the login with input `auth-json`; \
         if the artifact was copied from another repository or artifact name, reseed with input \
         `auth-json`"
    )]
    Rejected,
    /// Authentic, but not text: written by a faulty codex-auth.
    #[error(
        "the sealed login in the artifact decrypted but is not UTF-8 text: it was not written by \
         this codex-auth"
    )]
    NotUtf8,
}

/// Seals `plaintext` (the contents of `auth.json`) for `binding`.
///
/// # Panics
///
/// If `plaintext` exceeds 256 GiB, the most XChaCha20 encrypts under one nonce. A login is
/// smaller than 48 KiB.
pub fn seal(key: &ArtifactKey, binding: &Binding<'_>, plaintext: &Redacted) -> Vec<u8> {
    let plaintext = plaintext.expose().as_bytes();
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let aad = binding.associated_data(VERSION);

    // Sized up front so that the buffer, which holds plaintext until it is encrypted in place,
    // is never reallocated (and the old allocation left unwiped).
    let mut blob = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    blob.push(VERSION);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(plaintext);
    let tag = key
        .cipher()
        .encrypt_in_place_detached(&nonce, &aad, &mut blob[HEADER_LEN..])
        .map_err(|_| blob.zeroize());
    #[allow(
        clippy::expect_used,
        reason = "fails only beyond 256 GiB of plaintext, documented under Panics"
    )]
    let tag: Tag = tag.expect("the plaintext is too large for XChaCha20-Poly1305");
    blob.extend_from_slice(&tag);
    blob
}

/// Opens a blob [`seal`] made for `binding`.
pub fn open(key: &ArtifactKey, binding: &Binding<'_>, blob: &[u8]) -> Result<Redacted, OpenError> {
    let Some(&version) = blob.first() else {
        return Err(OpenError::Empty);
    };
    if blob.len() < MIN_BLOB_LEN {
        return Err(OpenError::TooShort { len: blob.len() });
    }
    if version != VERSION {
        return Err(OpenError::UnknownVersion(version));
    }
    let (nonce, sealed) = blob[1..].split_at(NONCE_LEN);
    let (ciphertext, tag) = sealed.split_at(sealed.len() - TAG_LEN);

    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    // The tag is checked before anything is decrypted: on failure `plaintext` is still the
    // ciphertext.
    key.cipher()
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            &binding.associated_data(version),
            &mut plaintext,
            Tag::from_slice(tag),
        )
        .map_err(|_| OpenError::Rejected)?;
    match String::from_utf8(std::mem::take(&mut *plaintext)) {
        Ok(text) => Ok(Redacted::new(text)),
        Err(err) => {
            err.into_bytes().zeroize();
            Err(OpenError::NotUtf8)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const REPO: u64 = 123_456_789;
    const NAME: &str = "codex-auth";

    fn binding() -> Binding<'static> {
        Binding {
            repository_id: REPO,
            artifact_name: NAME,
        }
    }

    fn login() -> Redacted {
        Redacted::new(r#"{"tokens":{"refresh_token":"rt_secret"}}"#)
    }

    #[test]
    fn round_trip() {
        let key = ArtifactKey::generate();
        let blob = seal(&key, &binding(), &login());
        assert_eq!(blob[0], VERSION);
        assert_eq!(blob.len(), MIN_BLOB_LEN + login().expose().len());
        assert_eq!(open(&key, &binding(), &blob).unwrap(), login());
    }

    #[test]
    fn round_trips_an_empty_and_a_large_plaintext() {
        let key = ArtifactKey::generate();
        for text in [String::new(), "x".repeat(64 * 1024)] {
            let blob = seal(&key, &binding(), &Redacted::new(text.clone()));
            assert_eq!(open(&key, &binding(), &blob).unwrap().expose(), text);
        }
    }

    #[test]
    fn the_ciphertext_does_not_contain_the_plaintext() {
        let blob = seal(&ArtifactKey::generate(), &binding(), &login());
        assert!(!blob.windows(9).any(|w| w == b"rt_secret"));
    }

    #[test]
    fn every_flipped_byte_is_rejected() {
        let key = ArtifactKey::generate();
        let blob = seal(&key, &binding(), &login());
        for index in 0..blob.len() {
            for bit in [0x01, 0x80, 0xff] {
                let mut bad = blob.clone();
                bad[index] ^= bit;
                let err = open(&key, &binding(), &bad).unwrap_err();
                if index == 0 {
                    assert_eq!(err, OpenError::UnknownVersion(VERSION ^ bit));
                } else {
                    assert_eq!(err, OpenError::Rejected, "byte {index} ^ {bit:#x}");
                }
            }
        }
    }

    #[test]
    fn appended_or_removed_bytes_are_rejected() {
        let key = ArtifactKey::generate();
        let blob = seal(&key, &binding(), &login());
        let mut longer = blob.clone();
        longer.push(0);
        assert_eq!(open(&key, &binding(), &longer), Err(OpenError::Rejected));
        assert_eq!(
            open(&key, &binding(), &blob[..blob.len() - 1]),
            Err(OpenError::Rejected)
        );
    }

    #[test]
    fn a_wrong_key_is_rejected() {
        let blob = seal(&ArtifactKey::generate(), &binding(), &login());
        assert_eq!(
            open(&ArtifactKey::generate(), &binding(), &blob),
            Err(OpenError::Rejected)
        );
    }

    #[test]
    fn another_repository_is_rejected() {
        let key = ArtifactKey::generate();
        let blob = seal(&key, &binding(), &login());
        for repository_id in [0, REPO - 1, REPO + 1, u64::MAX] {
            let other = Binding {
                repository_id,
                ..binding()
            };
            assert_eq!(open(&key, &other, &blob), Err(OpenError::Rejected));
        }
    }

    #[test]
    fn another_artifact_name_is_rejected() {
        let key = ArtifactKey::generate();
        let blob = seal(&key, &binding(), &login());
        for artifact_name in [
            "",
            "codex-auth-2",
            "Codex-auth",
            "codex-aut",
            "codex-auth\0",
        ] {
            let other = Binding {
                artifact_name,
                ..binding()
            };
            assert_eq!(open(&key, &other, &blob), Err(OpenError::Rejected));
        }
    }

    #[test]
    fn bindings_have_distinct_associated_data() {
        // Without the length prefix, shifting bytes between the id and the name could collide.
        let a = Binding {
            repository_id: 1,
            artifact_name: "ab",
        };
        let b = Binding {
            repository_id: 1,
            artifact_name: "a",
        };
        assert_ne!(a.associated_data(VERSION), b.associated_data(VERSION));
        assert_ne!(a.associated_data(1), a.associated_data(2));
    }

    #[test]
    fn truncated_blobs_are_too_short() {
        let key = ArtifactKey::generate();
        let blob = seal(&key, &binding(), &login());
        assert_eq!(open(&key, &binding(), &[]), Err(OpenError::Empty));
        for len in 1..MIN_BLOB_LEN {
            assert_eq!(
                open(&key, &binding(), &blob[..len]),
                Err(OpenError::TooShort { len })
            );
        }
        for len in MIN_BLOB_LEN..blob.len() {
            assert_eq!(
                open(&key, &binding(), &blob[..len]),
                Err(OpenError::Rejected)
            );
        }
    }

    #[test]
    fn an_unknown_version_asks_for_an_upgrade() {
        let key = ArtifactKey::generate();
        let mut blob = seal(&key, &binding(), &login());
        blob[0] = 2;
        let err = open(&key, &binding(), &blob).unwrap_err();
        assert_eq!(err, OpenError::UnknownVersion(2));
        assert!(err.to_string().contains("upgrade"), "{err}");
    }

    #[test]
    fn a_rejection_says_what_to_do() {
        let message = OpenError::Rejected.to_string();
        for needle in ["artifact-key", "auth-json", "another repository"] {
            assert!(message.contains(needle), "{message}");
        }
    }

    #[test]
    fn authentic_bytes_that_are_not_utf8_are_reported() {
        // A faulty writer is the only way to get here: seal raw bytes by hand.
        let key = ArtifactKey::generate();
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut body = vec![0xff, 0xfe];
        let tag = key
            .cipher()
            .encrypt_in_place_detached(&nonce, &binding().associated_data(VERSION), &mut body)
            .unwrap();
        let blob = [&[VERSION][..], &nonce, &body, &tag].concat();
        assert_eq!(open(&key, &binding(), &blob), Err(OpenError::NotUtf8));
    }

    #[test]
    fn two_seals_differ() {
        let key = ArtifactKey::generate();
        let a = seal(&key, &binding(), &login());
        let b = seal(&key, &binding(), &login());
        assert_ne!(a, b);
        assert_ne!(a[1..HEADER_LEN], b[1..HEADER_LEN]);
    }

    #[test]
    fn parses_every_base64_spelling() {
        // 0xfbefbe encodes as `++++`, 0xffffff as `////`: the alphabets differ.
        let bytes: Vec<u8> = [0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff]
            .into_iter()
            .cycle()
            .take(32)
            .collect();
        let standard = STANDARD.encode(&bytes);
        assert!(
            standard.contains('+') || standard.contains('/'),
            "{standard}"
        );
        for text in [
            standard.clone(),
            STANDARD_NO_PAD.encode(&bytes),
            URL_SAFE.encode(&bytes),
            URL_SAFE_NO_PAD.encode(&bytes),
            format!("  {standard}\n"),
            format!("\t{standard}\r\n"),
        ] {
            let key = ArtifactKey::parse(&text).unwrap();
            assert_eq!(key.0.as_slice(), bytes.as_slice(), "{text:?}");
            assert_eq!(key.to_base64().expose(), standard);
            // Whichever spelling the input used, one of the masked ones is it.
            assert!(key.spellings().iter().any(|s| s.expose() == text.trim()));
        }
    }

    #[test]
    fn rejects_bad_keys_without_echoing_them() {
        let cases = [
            ("", KeyError::Empty),
            (" \n\t ", KeyError::Empty),
            (
                "c2VjcmV0LWJ1dC1zaG9ydA==",
                KeyError::WrongLength { len: 16 },
            ),
            (
                "c2VjcmV0LWtleS10aGF0LWlzLWZhci10b28tbG9uZy10by1iZS1vbmU=",
                KeyError::WrongLength { len: 41 },
            ),
            ("secret-not-base64!", KeyError::NotBase64),
            ("\"c2VjcmV0LWJ1dC1zaG9ydA==\"", KeyError::NotBase64),
            ("c2VjcmV0 LWJ1dC1zaG9ydA==", KeyError::NotBase64),
            ("c2VjcmV0LWJ1dC1zaG9ydA=", KeyError::NotBase64),
        ];
        for (text, expected) in cases {
            let err = ArtifactKey::parse(text).unwrap_err();
            assert_eq!(err, expected, "{text:?}");
            let message = err.to_string();
            assert!(message.contains("codex-auth keygen"), "{message}");
            let trimmed = text.trim().trim_matches('"');
            if !trimmed.is_empty() {
                assert!(!message.contains(trimmed), "{message}");
                assert!(!message.contains("c2Vjc"), "{message}");
                assert!(!message.contains("secret"), "{message}");
            }
        }
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let key = ArtifactKey::parse(&STANDARD.encode([0xab; 32])).unwrap();
        let shown = format!("{key:?} {key:#?} {:?}", Some(&key));
        assert_eq!(shown, "ArtifactKey(…) ArtifactKey(…) Some(ArtifactKey(…))");
        assert_eq!(format!("{:?}", key.to_base64()), "Redacted([redacted])");
    }

    #[test]
    fn generated_keys_differ_and_parse_back() {
        let a = ArtifactKey::generate();
        let b = ArtifactKey::generate();
        assert_ne!(a.0.as_slice(), b.0.as_slice());
        let parsed = ArtifactKey::parse(a.to_base64().expose()).unwrap();
        assert_eq!(parsed.0.as_slice(), a.0.as_slice());
        assert_eq!(a.to_base64().expose().len(), 44);
        // A blob sealed with the key opens with its parsed copy.
        let blob = seal(&a, &binding(), &login());
        assert_eq!(open(&parsed, &binding(), &blob).unwrap(), login());
    }
}
