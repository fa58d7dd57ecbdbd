//! Sealing a secret's value for the GitHub Actions Secrets API.
//!
//! GitHub takes `encrypted_value`: the standard, padded base64 of a libsodium sealed box
//! (`crypto_box_seal`) made with the target's Curve25519 public key, plus that key's `key_id`.
//! <https://docs.github.com/en/rest/guides/encrypting-secrets-for-the-rest-api>
//!
//! [`artifact`] seals the login for the artifact store, under a symmetric key.

pub mod artifact;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use crypto_box::aead::OsRng;

use crate::redacted::Redacted;

/// Why a public key or a seal failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The API's key is not 32 bytes of base64.
    #[error("the public key GitHub returned is not a base64 Curve25519 key")]
    BadKey,
    /// The cipher failed (it does not for valid keys).
    #[error("sealing the value failed")]
    Cipher,
}

/// A target's public key, as `GET …/secrets/public-key` returns it. Public: safe to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The id GitHub expects back with the ciphertext.
    pub key_id: String,
    /// The key, base64 as the API gives it.
    pub key: String,
}

/// A value sealed for one public key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SealedSecret {
    /// Standard base64 of the sealed box.
    pub encrypted_value: String,
    /// The id of the key it was sealed with.
    pub key_id: String,
}

impl PublicKey {
    /// Checks that the key decodes to a Curve25519 public key.
    pub fn new(key_id: String, key: String) -> Result<Self, SealError> {
        let this = Self { key_id, key };
        this.curve_key()?;
        Ok(this)
    }

    fn curve_key(&self) -> Result<crypto_box::PublicKey, SealError> {
        let bytes = STANDARD.decode(&self.key).map_err(|_| SealError::BadKey)?;
        crypto_box::PublicKey::from_slice(&bytes).map_err(|_| SealError::BadKey)
    }

    /// Seals `value` so that only the holder of the matching private key can open it.
    pub fn seal(&self, value: &Redacted) -> Result<SealedSecret, SealError> {
        let sealed = self
            .curve_key()?
            .seal(&mut OsRng, value.expose().as_bytes())
            .map_err(|_| SealError::Cipher)?;
        Ok(SealedSecret {
            encrypted_value: STANDARD.encode(sealed),
            key_id: self.key_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_private_key_opens_the_box() -> Result<(), Box<dyn std::error::Error>> {
        let private = crypto_box::SecretKey::generate(&mut OsRng);
        let key = PublicKey::new(
            "kid-1".into(),
            STANDARD.encode(private.public_key().as_bytes()),
        )?;
        let sealed = key.seal(&Redacted::new("{\"a\":1}"))?;
        assert_eq!(sealed.key_id, "kid-1");
        let opened = private
            .unseal(&STANDARD.decode(&sealed.encrypted_value)?)
            .map_err(|_| "unseal failed")?;
        assert_eq!(opened, b"{\"a\":1}");
        Ok(())
    }

    #[test]
    fn rejects_keys_that_are_not_curve25519() {
        assert!(PublicKey::new("k".into(), "not base64!".into()).is_err());
        assert!(PublicKey::new("k".into(), STANDARD.encode([1u8; 31])).is_err());
    }
}
