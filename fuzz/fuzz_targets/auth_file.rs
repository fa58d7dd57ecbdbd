//! The auth.json parser and validator: no input may panic, and whatever it accepts must
//! survive the trip through the compact form stored in the secret.
#![no_main]

use codex_auth::auth_file::AuthFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for parsed in [AuthFile::decode_bytes(data), AuthFile::parse_file(data)] {
        if let Ok(file) = parsed {
            let compact = file.to_compact_json().expect("a parsed file serializes");
            let again = AuthFile::decode(compact.expose()).expect("the compact form parses");
            assert_eq!(again.fingerprint(), file.fingerprint());
            let _ = file.claims();
        }
    }
});
