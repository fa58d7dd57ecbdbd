//! Reading a JWT's claims without verifying it: Codex does not verify its id token either, and
//! the results service verifies the runtime token itself. Never a basis for trust here, only
//! for facts the token's issuer already checks (an expiry, an account id, backend ids).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

/// The claims (the decoded middle part) of a JWT, unverified; `None` when it is not one.
pub fn claims(jwt: &str) -> Option<Map<String, Value>> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(claims) => Some(claims),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_middle_part() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"exp":1,"sub":"x"}"#);
        let claims = claims(&format!("e30.{payload}.sig"));
        assert_eq!(
            claims.and_then(|c| c.get("exp").cloned()),
            Some(Value::from(1))
        );
        assert!(super::claims("no-dots").is_none());
        assert!(super::claims("a.bm90IGpzb24.c").is_none());
    }
}
