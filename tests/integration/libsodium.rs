//! Real libsodium (through PyNaCl) opens what codex-auth seals: the proof that GitHub, which
//! uses libsodium, can read our secrets.

use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use codex_auth::redacted::Redacted;
use codex_auth::seal::PublicKey;
use crypto_box::aead::OsRng;
use crypto_box::SecretKey;

fn python() -> String {
    std::env::var("CODEX_AUTH_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

#[test]
fn libsodium_opens_our_sealed_box() {
    let private = SecretKey::generate(&mut OsRng);
    let key = PublicKey::new(
        "kid".into(),
        STANDARD.encode(private.public_key().as_bytes()),
    )
    .unwrap();
    let value = "{\"auth_mode\":\"chatgpt\",\"tokens\":{\"refresh_token\":\"rt_é\"}}";
    let sealed = key.seal(&Redacted::new(value)).unwrap();
    let script = "import sys, base64\n\
        from nacl.public import PrivateKey, SealedBox\n\
        key = PrivateKey(base64.b64decode(sys.argv[1]))\n\
        sys.stdout.write(SealedBox(key).decrypt(base64.b64decode(sys.argv[2])).decode())\n";
    let out = Command::new(python())
        .args([
            "-c",
            script,
            &STANDARD.encode(private.to_bytes()),
            &sealed.encrypted_value,
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "PyNaCl could not open the box (scripts/test installs PyNaCl): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), value);
    // Standard, padded base64, 48 bytes of overhead: what GitHub expects.
    let raw = STANDARD.decode(&sealed.encrypted_value).unwrap();
    assert_eq!(raw.len(), value.len() + 48);
}

#[test]
fn libsodium_sealed_box_opens_with_our_key_crate() {
    // The other direction: the local GitHub server opens boxes with crypto_box; it must open
    // what libsodium seals, as `gh secret set` and GitHub's own clients produce them.
    let private = SecretKey::generate(&mut OsRng);
    let script = "import sys, base64\n\
        from nacl.public import PublicKey, SealedBox\n\
        box = SealedBox(PublicKey(base64.b64decode(sys.argv[1]))).encrypt(b'hello from libsodium')\n\
        sys.stdout.write(base64.b64encode(box).decode())\n";
    let out = Command::new(python())
        .args([
            "-c",
            script,
            &STANDARD.encode(private.public_key().as_bytes()),
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sealed = STANDARD.decode(out.stdout).unwrap();
    assert_eq!(private.unseal(&sealed).unwrap(), b"hello from libsodium");
}
